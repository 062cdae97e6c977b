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


def render_screenshot(target: Path, run_dir: Path | None, svg: Path, size: tuple[int, int],
                      train: bool) -> tuple[int, str]:
    """Run the explorer without a terminal, once checked (and trained, with `train`), and write the
    screen as SVG (atomically). Returns the exit code and a line for the user."""
    import asyncio

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from ..util.files import write_atomic
    from .app import ExploreApp

    app = ExploreApp(target, run_dir, load_tensorflow=train)
    outcome: dict[str, str] = {}

    async def shoot() -> None:
        async with app.run_test(size=size, headless=True) as pilot:
            await app.wait_until_settled(pilot)
            if train and app.session.ok:
                app.action_show("train")
                await pilot.pause()
                app.action_train_start()
                while app.train_state not in ("done", "stopped", "failed"):
                    await pilot.pause(0.2)
                outcome["training"] = app.train_state
                await app.wait_until_settled(pilot)
            write_atomic(svg, app.export_screenshot(title=f"tanglec explore {target}"))

    with _terminal_away_from_fd2():  # TensorFlow's C++ logging would land on stderr
        asyncio.run(shoot())
    s = app.session
    if not s.ok:
        return 1, f"wrote {svg}: the spec has problems ({len(s.errors)} error(s)), shown in the Spec view"
    if outcome.get("training") == "failed":
        return 1, f"wrote {svg}: training failed (shown in the Train view)"
    return 0, f"wrote {svg}" + (f" after training ({outcome['training']})" if train else "")
