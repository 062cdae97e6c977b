"""Messages the explorer's workers (threads) and widgets post; handlers run on the UI thread.

Workers never touch widgets: they `post_message` one of these (thread-safe in Textual) and the app
updates the screen when it handles it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.message import Message

from .controllers import TrainOutcome, TrainUpdate
from .session import Session


@dataclass
class TensorFlowReady(Message):
    """The background import of TensorFlow finished (`error` is set when it failed)."""

    seconds: float
    error: str | None = None


@dataclass
class ModelLoaded(Message):
    """A model to answer queries with: the run directory's (`error` when it could not be loaded)."""

    model: Any
    origin: str
    error: str | None = None


@dataclass
class ExamplesReady(Message):
    """The example table was built (or its problems found) in the background."""

    examples: Any
    problems: list = field(default_factory=list)


@dataclass
class TrainProgress(Message):
    """One evaluation during training."""

    update: TrainUpdate


@dataclass
class TrainDone(Message):
    """Training ended: finished (run written), stopped (run directory untouched) or failed."""

    outcome: TrainOutcome


@dataclass
class RunSaved(Message):
    """A stopped model was written to the run directory on request."""

    error: str | None = None


@dataclass
class QueryAnswered(Message):
    """Answers for one set of query fields (`seq` orders them: stale answers are dropped)."""

    seq: int
    answers: list | None
    error: str | None = None
    columns: dict | None = None


@dataclass
class SpecChecked(Message):
    """The editor's text was checked: `session` is what it would open as."""

    session: Session


@dataclass
class LightRoute(Message):
    """Ask the app to light up a route (a selection of selector values) in every graph, or none."""

    selection: dict[str, str] | None
    origin: str


@dataclass
class QueryFieldsChanged(Message):
    """The query form has a new set of values: `columns` when they are valid, else the problems."""

    columns: dict | None
    problems: list
