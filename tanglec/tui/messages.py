"""Messages the explorer's workers (threads) and widgets post; handlers run on the UI thread.

Workers never touch widgets: they `post_message` one of these (thread-safe in Textual) and the app
updates the screen when it handles it.
"""
from __future__ import annotations

from typing import Any

from textual.message import Message


class TensorFlowReady(Message):
    """The background import of TensorFlow finished (`error` is set when it failed)."""

    def __init__(self, seconds: float, error: str | None = None) -> None:
        super().__init__()
        self.seconds = seconds
        self.error = error


class ModelLoaded(Message):
    """A model to answer queries with: the run directory's, or one just trained."""

    def __init__(self, model: Any, origin: str, error: str | None = None) -> None:
        super().__init__()
        self.model = model
        self.origin = origin
        self.error = error


class ExamplesReady(Message):
    """The example table was built (or its problems found) in the background."""

    def __init__(self, examples: Any, problems: list) -> None:
        super().__init__()
        self.examples = examples
        self.problems = problems


class TrainProgress(Message):
    """One evaluation during training: `progress` is a tanglec.backend.train.Progress."""

    def __init__(self, progress: Any, rate: float) -> None:
        super().__init__()
        self.progress = progress
        self.rate = rate  # steps per second, pauses excluded


class TrainDone(Message):
    """Training ended: finished (run written), stopped (run directory untouched) or failed."""

    def __init__(self, result: Any = None, written: bool = False, error: str | None = None,
                 problems: list | None = None) -> None:
        super().__init__()
        self.result = result
        self.written = written
        self.error = error
        self.problems = problems or []


class RunSaved(Message):
    """A stopped model was written to the run directory on request."""

    def __init__(self, error: str | None = None) -> None:
        super().__init__()
        self.error = error


class QueryAnswered(Message):
    """Answers for one set of query fields (`seq` orders them: stale answers are dropped)."""

    def __init__(self, seq: int, answers: list | None, error: str | None = None, columns: dict | None = None) -> None:
        super().__init__()
        self.seq = seq
        self.columns = columns
        self.answers = answers
        self.error = error


class LightRoute(Message):
    """Ask the app to light up a route (a selection of selector values) in every graph, or none."""

    def __init__(self, selection: dict[str, str] | None, origin: str) -> None:
        super().__init__()
        self.selection = selection
        self.origin = origin


class NodeHighlighted(Message):
    """The graph's cursor moved to a node."""

    def __init__(self, node: str | None) -> None:
        super().__init__()
        self.node = node


class QueryFieldsChanged(Message):
    """The query form has a new set of values: `columns` when they are valid, else the problems."""

    def __init__(self, columns: dict | None, problems: list) -> None:
        super().__init__()
        self.columns = columns
        self.problems = problems
