"""What the explorer works on, without any UI: the target (a spec or a run directory), its checked spec and
diagnostics, the run directory training writes, and the pause/stop controls a training worker obeys.

Nothing here imports TensorFlow or Textual, so it loads in the first-paint budget and is easy to test.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..lang.ast import Span
from ..pipeline import check_spec
from ..spec.checks import Checked
from ..lang.diagnostics import Diagnostic, TangleError, sort_key
from ..lang.parser import parse_partial, read_spec_text


@dataclass
class Session:
    target: Path                 # what the user opened
    is_run: bool                 # a run directory (else a .tangle file)
    source: str                  # the spec text shown in the Spec view
    source_file: str             # the file name diagnostics' spans use for that text
    checked: Checked | None      # None when nothing could be checked (a broken run directory)
    diagnostics: list[Diagnostic]
    run_dir: Path                # where training writes (and where a trained model is looked for)
    run_state: str = "none"      # none | current | other | invalid
    run_note: str = ""
    report: dict | None = None   # routes.json of the run when it matches this spec
    data_problems: list[Diagnostic] = field(default_factory=list)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.all_diagnostics if d.is_error]

    @property
    def all_diagnostics(self) -> list[Diagnostic]:
        return self.diagnostics + self.data_problems

    @property
    def ok(self) -> bool:
        """The spec checks: the graph is complete and a model can be built, trained and queried."""
        return self.checked is not None and not any(d.is_error for d in self.diagnostics)

    @property
    def can_train(self) -> bool:
        return self.ok and not self.data_problems

    @property
    def name(self) -> str:
        return self.target.name or str(self.target)

    @property
    def has_trained_run(self) -> bool:
        return self.run_state == "current"

    def output_refusal(self) -> str | None:
        """Why training may not write `run_dir` (the output policy of `tanglec compile`), or None.
        Training a run opened for exploring replaces that run; any other input is protected."""
        from ..util.files import OutputRefused, check_output

        same_run = self.is_run and self.run_dir.resolve() == self.target.resolve()
        inputs = [] if same_run else [self.target]
        if self.checked is not None and self.checked.data.path is not None:
            inputs.append(self.checked.data.path)
        try:
            check_output(self.run_dir, "run", inputs=inputs)
        except OutputRefused as err:
            return f"refusing to write {err.path}: {err.reason} ({err.hint})"
        return None


def display_path(path: Path) -> str:
    """A path relative to the working directory when it is under it (shorter, and stable in tests)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def short_path(path: Path, width: int = 32) -> str:
    """display_path, with the middle cut out when it is long (status lines)."""
    text = display_path(path)
    if len(text) <= width:
        return text
    parts = Path(text).parts
    tail = str(Path(*parts[-2:])) if len(parts) > 1 else text
    return "…/" + tail if len(tail) < width else "…" + text[-(width - 1):]


def open_target(target: Path, run_dir: Path | None = None) -> Session:
    """Load a spec file or a run directory; never raises for problems in them (they become diagnostics)."""
    target = Path(target)
    if target.is_dir():
        return _open_run(target, run_dir)
    return _open_spec(target, run_dir)


def _open_spec(path: Path, run_dir: Path | None) -> Session:
    run_dir = Path(run_dir) if run_dir else Path("runs") / path.stem
    try:
        source = read_spec_text(path)
    except UnicodeDecodeError as err:
        diag = Diagnostic("E006", f"not UTF-8 text: {err.reason} at byte {err.start}", Span(str(path), 1, 1, 1, 2))
        return Session(path, False, "", str(path), None, [diag], run_dir, "none", "unused")
    except OSError as err:
        diag = Diagnostic("E006", f"can't read the spec: {err.strerror or err}", Span(str(path), 1, 1, 1, 2))
        return Session(path, False, "", str(path), None, [diag], run_dir, "none", "unused")
    return open_source(path, source, run_dir)


def open_source(path: Path, source: str, run_dir: Path) -> Session:
    """Check spec text that claims to be `path` (the file, or the editor's unsaved text); TensorFlow-free."""
    spec, syntax = parse_partial(source, str(path))
    checked = check_spec(spec)
    # Like `tanglec check`: with syntax errors, report only those (checks of a partial spec cascade).
    diagnostics = syntax if syntax else list(checked.diagnostics)
    if syntax:
        diagnostics = diagnostics + [d for d in checked.diagnostics if not d.is_error]
    session = Session(path, False, source, str(path), checked, sorted(diagnostics, key=sort_key), run_dir)
    _inspect_run(session)
    return session


def _open_run(run_dir: Path, out: Path | None) -> Session:
    from ..artifacts.run import SPEC, load_checked, load_report, read_run_text

    try:
        checked, manifest = load_checked(run_dir)
    except TangleError as err:
        text = ""
        try:
            text = read_run_text(run_dir, SPEC)  # a link, a FIFO or a huge file is not shown
        except TangleError:
            pass
        return Session(run_dir, True, text, str(run_dir / SPEC), None, sorted(err.diagnostics, key=sort_key),
                       Path(out) if out else run_dir, "invalid", "damaged")
    session = Session(run_dir, True, checked.spec.source, checked.spec.path, checked, list(checked.diagnostics),
                      Path(out) if out else run_dir)
    if session.run_dir.resolve() == run_dir.resolve():
        session.run_state, session.run_note = "current", "trained"
        try:
            session.report = load_report(run_dir, checked)
        except TangleError:
            session.report = None
    else:
        _inspect_run(session)
    return session


def _inspect_run(session: Session) -> None:
    """Is there a trained run of exactly this spec in the run directory?"""
    from ..artifacts.run import SPEC, load_report, read_manifest, read_run_text

    run_dir = session.run_dir
    if not run_dir.exists():
        session.run_state, session.run_note = "none", "not trained yet"
        return
    try:
        read_manifest(run_dir)
        same = read_run_text(run_dir, SPEC) == session.source
    except TangleError as err:
        session.run_state, session.run_note = "invalid", f"unusable ({err.diagnostics[0].message})"
        return
    if not same:
        session.run_state, session.run_note = "other", "another version of this spec"
        return
    session.run_state, session.run_note = "current", "trained"
    try:
        session.report = load_report(run_dir, session.checked)
    except TangleError:
        session.report = None


class TrainControl:
    """Pause, resume and stop for a training worker thread (the UI thread flips them; the worker obeys).

    Training checks in between evaluation chunks (`eval_every` steps): a pause takes effect there and a
    stop ends `fit` there. `wait_if_paused` returns the seconds spent paused, so rates can exclude them.
    """

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self.paused_seconds = 0.0

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def wait_if_paused(self) -> float:
        import time

        if self._running.is_set():
            return 0.0
        started = time.perf_counter()
        self._running.wait()
        waited = time.perf_counter() - started
        self.paused_seconds += waited
        return waited
