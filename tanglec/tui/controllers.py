"""The explorer's stage wiring: everything `tanglec explore` asks of the compiler, without any UI.

The app's thread workers call these functions and hand results back through callbacks; nothing here
imports Textual, and TensorFlow is imported only inside the functions that need it. Each stage is
called from exactly one place below, so they switch to `tanglec.pipeline` in one edit.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import pipeline
from ..lang.diagnostics import Diagnostic, TangleError
from ..spec.checks import Checked
from ..util.cache import use_xla_cache
from .session import Session, TrainControl


# -- examples, TensorFlow, the run's model -----------------------------------------------------------
def build_examples(checked: Checked) -> tuple[Any, list[Diagnostic]]:
    """The example table, or the problems found building it."""
    try:
        return pipeline.prepare(checked), []
    except TangleError as err:
        return None, list(err.diagnostics)


def import_tensorflow() -> str | None:
    """Import TensorFlow, Keras and the stages that use them; returns why that failed, or None."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    use_xla_cache()
    try:
        import keras  # noqa: F401
        import tensorflow  # noqa: F401

        from ..artifacts import run  # noqa: F401
        from ..backend import codegen, train  # noqa: F401
    except Exception as err:  # noqa: BLE001 — shown in the status line, never a crash
        return f"{type(err).__name__}: {err}"
    return None


def load_run_model(session: Session):
    """The run directory's model, for queries (TangleError when the run can't give one)."""
    return pipeline.load_run_model(session.run_dir, session.checked)


def answer(checked: Checked, model, columns: dict) -> list:
    """Every decoder's answer to one set of parsed query fields (what `tanglec query` answers)."""
    return pipeline.ask(checked, model, columns)[1]


# -- the spec text ------------------------------------------------------------------------------------
def format_text(source: str, file: str) -> str:
    """The formatter's output for the editor's text (TangleError when it does not parse)."""
    from ..lang.fmt import format_source

    return format_source(source, file)


class SaveRefused(Exception):
    """The editor's text was not written: why, in words for the status line."""


def save_source(session: Session, opened_text: str, text: str) -> None:
    """Write the editor's text to the spec file it was opened from, atomically.

    Only that file, and only if it still holds what was opened (another program's edits are not
    overwritten); a run directory's spec is never written (it belongs to the run's weights).
    """
    from ..util.files import write_atomic

    path = session.target
    if session.is_run:
        raise SaveRefused("a run's spec is not edited in place: save it as a .tangle file with `tanglec` tools")
    if path.is_symlink() or not path.is_file():
        raise SaveRefused(f"{path} is not a regular file any more")
    try:
        on_disk = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SaveRefused(f"can't read {path} back: {err}") from err
    if on_disk != opened_text:
        raise SaveRefused(f"{path} changed on disk since it was opened: reload (ctrl+r) before saving")
    write_atomic(path, text)


# -- training -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainUpdate:
    """One evaluation during training, as the UI shows it."""

    progress: Any                                   # tanglec.backend.train.Progress
    rate: float                                     # steps per second over the last interval, pauses excluded
    motion: dict[str, float] = field(default_factory=dict)  # module -> relative update size since the last one


@dataclass(frozen=True)
class TrainOutcome:
    """How a training ended: finished (run written), stopped (run untouched) or failed."""

    result: Any = None
    written: bool = False
    error: str | None = None
    problems: list[Diagnostic] = field(default_factory=list)


class ModuleMotion:
    """How far each module's weights moved between two evaluations: ‖Δw‖ / ‖w‖ (0 for frozen ones)."""

    def __init__(self, model, modules: list[str]) -> None:
        layers = module_layers(model)
        self.layers = {m: layers[m] for m in modules if m in layers}
        self.last = {m: self._weights(m) for m in self.layers}

    def _weights(self, name: str) -> list:
        return [w.copy() for w in self.layers[name].get_weights()]

    def measure(self) -> dict[str, float]:
        out = {}
        for name in self.layers:
            now = self._weights(name)
            moved = sum(float(((a - b) ** 2).sum()) for a, b in zip(now, self.last[name]))
            size = sum(float((b ** 2).sum()) for b in self.last[name])
            out[name] = math.sqrt(moved) / max(math.sqrt(size), 1e-12)
            self.last[name] = now
        return out


def module_layers(model) -> dict:
    """Every layer of the model by name, the multiplexers' branch modules included."""
    found, stack = {}, list(model.layers)
    while stack:
        layer = stack.pop()
        found.setdefault(layer.name, layer)
        stack.extend(getattr(layer, "branches", None) or [])
    return found


def train_session(session: Session, examples, control: TrainControl,
                  on_update: Callable[[TrainUpdate], None]) -> TrainOutcome:
    """`tanglec compile`'s training and run writing, obeying `control`; never raises."""
    try:
        return _train(session, examples, control, on_update)
    except TangleError as err:  # e.g. the `init` run can't be loaded: positioned problems
        return TrainOutcome(error=err.diagnostics[0].message if err.diagnostics else str(err),
                            problems=list(err.diagnostics))
    except Exception as err:  # noqa: BLE001 — reported in the Train view; the run directory is intact
        return TrainOutcome(error=f"{type(err).__name__}: {err}")


def _train(session: Session, examples, control: TrainControl, on_update) -> TrainOutcome:
    checked = session.checked
    if examples is None:
        examples, problems = build_examples(checked)
        if problems:
            return TrainOutcome(error="the data has problems", problems=problems)
    model = pipeline.model_to_train(checked)
    motion = ModuleMotion(model, list(checked.graph.modules)) if model is not None else None
    last = {"step": 0, "busy": 0.0, "rate": 0.0}

    def progress(p) -> None:
        # steps/s over the last evaluation interval (the first includes tracing), pauses left out, smoothed
        busy = max(p.elapsed - control.paused_seconds, 1e-9)
        interval = (p.step - last["step"]) / max(busy - last["busy"], 1e-9)
        last["rate"] = interval if not last["rate"] else 0.5 * last["rate"] + 0.5 * interval
        last["step"], last["busy"] = p.step, busy
        on_update(TrainUpdate(p, last["rate"], motion.measure() if motion else {}))
        control.wait_if_paused()

    result = pipeline.compile(checked, examples, out=session.run_dir, on_progress=progress,
                              should_stop=control.should_stop, model=model).result
    return TrainOutcome(result, written=not result.interrupted or result.stopped_early)


def run_metrics(checked: Checked, result, examples, **extra) -> dict:
    """metrics.json as `tanglec compile` writes it."""
    return pipeline.run_metrics(checked, result, examples, **extra)


def write_stopped(session: Session, result, examples) -> None:
    """Write a training the user stopped to the run directory, on request (marked interrupted)."""
    checked = session.checked
    if examples is None:
        examples, problems = build_examples(checked)
        if problems:
            raise TangleError(problems)
    pipeline.save(session.run_dir, checked, result, examples, run_metrics(checked, result, examples, interrupted=True))


def wait_for(event, control: TrainControl, poll: float = 0.1) -> bool:
    """Wait for `event` (TensorFlow loaded) unless a stop comes first; True when it is set."""
    while not event.wait(poll):
        if control.stop_requested:
            return False
    return not control.stop_requested
