"""`tanglec explore`: the terminal UI (Textual). Import `ExploreApp` from tanglec.tui.app.

`run_explore` keeps TensorFlow's C++ logging off the screen: TensorFlow writes straight to file
descriptor 2, which is also where Textual draws. So for the app's lifetime fd 2 points at /dev/null,
and Textual draws on a duplicate of the real terminal instead (a LinuxDriver that writes there).
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def _terminal_away_from_fd2():
    """Yield a text stream on the terminal while fd 2 goes to /dev/null (restored afterwards)."""
    if sys.platform == "win32" or sys.__stderr__ is None:
        yield None
        return
    try:
        fd2 = sys.__stderr__.fileno()
    except (AttributeError, OSError, ValueError):
        yield None
        return
    sys.__stderr__.flush()
    saved = os.dup(fd2)
    term = open(os.dup(saved), "w", encoding=sys.__stderr__.encoding or "utf-8", errors="replace")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd2)
    os.close(devnull)
    try:
        yield term
    finally:
        try:
            term.flush()
        finally:
            os.dup2(saved, fd2)
            os.close(saved)
            term.close()


def _driver_writing_to(stream):
    from textual.drivers.linux_driver import LinuxDriver

    class TerminalDriver(LinuxDriver):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self._file = stream

    return TerminalDriver


def run_explore(target: Path, run_dir: Path | None = None) -> int:
    """Run the explorer on a spec file or a run directory; returns the exit code."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from rich.console import Console

    from .app import ExploreApp

    with _terminal_away_from_fd2() as term:
        driver = _driver_writing_to(term) if term is not None else None
        app = ExploreApp(target, run_dir, driver_class=driver)
        if term is not None:
            app.error_console = Console(file=term, markup=False, highlight=False)
        app.run()
    code = app.return_code or 0
    if app.importing_tensorflow:
        # Quit during the background import: don't wait seconds for it (nor let interpreter shutdown
        # race with TensorFlow's initialisation). The terminal is restored, nothing is being written.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
