"""What the tests share: the repo's paths, a way to run the real `tanglec` command, and one trained arith run.

Test modules import from here (`from support import ...`); conftest.py only turns these into fixtures.
"""
from __future__ import annotations

import asyncio
import fcntl
import json
import os
import shutil
import signal
import subprocess
import time
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
ARITH = SPECS / "arith.tangle"

TUI_SIZE = (110, 34)  # the terminal of the TUI's Pilot tests and snapshots
TUI_BAD_SPEC = """\
input x: int 0..9
select op: plus1 | times2
module enc   : onehot(10) -> latent(8) = dense 16 relu, dense 8
module plus1 : latent(8) -> latent(8) = dense 8
module dec   : latent(8) -> onehot(10) = dense 10
route x -> enc -> [plus1 | times3] by op -> dec
target y = match op { plus1: (x + 1) % 10, times2: (x * 2) % 10 }
decode dec as y
"""


def run_tanglec(*args: str, cwd: Path | None = None, timeout: float = 300, env: dict | None = None):
    """Run `python -m tanglec.cli ARGS` in a fresh process, as a user would run `tanglec`."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "tanglec.cli", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=timeout, env=full_env)


def call_tanglec(*args: str, cwd: Path | None = None, env: dict | None = None, stdin: str = ""):
    """Run `tanglec ARGS` in this test process: the same `main()`, exit-code mapping and output streams as
    the real command, without paying a TensorFlow import per call (seconds each, minutes over the suite).
    For what a separate process shows (signals, lazy imports, peak memory, stdout pipes), use run_tanglec.
    What a command leaves in the process (working directory, environment, signal handlers, Keras's
    session) is put back, as a user's next process would find it."""
    from click.testing import CliRunner

    from tanglec import cli
    from tanglec.devtools.clifuzz_driver import reset_state

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    argv, cwd_before = sys.argv, os.getcwd()
    with CliRunner().isolation(input=stdin, env={"PYTHONUNBUFFERED": "1", **(env or {})}) as (out, err, _):
        sys.argv = ["tanglec", *args]
        os.chdir(cwd or ROOT)
        try:
            cli.main()
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        finally:
            sys.stdout.flush(), sys.stderr.flush()  # what the command wrote without click.echo
            sys.argv = argv
            os.chdir(cwd_before)
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            reset_state()
        stdout, stderr = out.getvalue().decode("utf-8", "replace"), err.getvalue().decode("utf-8", "replace")
    return subprocess.CompletedProcess(["tanglec", *args], code, stdout, stderr)


@dataclass(frozen=True)
class TrainedRun:
    """specs/arith.tangle as `tanglec compile -o run --tensorboard board --json` left it. Shared: read only."""

    run: Path
    board: Path
    compiled: dict

    def copy_to(self, folder: Path) -> Path:
        """A private copy of the run directory at `folder` (for tests that change or replace it)."""
        folder.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(self.run, folder)
        return folder


def rewrite_shipped_csv(script: str, out: Path) -> str:
    """Run a shipped data script (`specs/data/<script>.py`, it needs scikit-learn) writing to `out`; its text."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(script, SPECS / "data" / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main([str(out)]) == 0
    return out.read_text()


def shared_folder(base_temp: Path) -> Path:
    """The folder every worker of this pytest session sees (xdist gives each worker its own basetemp)."""
    return base_temp.parent if os.environ.get("PYTEST_XDIST_WORKER") else base_temp


def trained_arith_run(base_temp: Path) -> TrainedRun:
    """Train specs/arith.tangle once per test session, whatever the number of xdist workers: the first
    worker trains under a file lock, the others wait and reuse it. One folder per run format, and a run
    that no longer verifies is trained again, so a stale basetemp never serves a wrong run."""
    from tanglec.artifacts.run import FORMAT, read_manifest
    from tanglec.lang.diagnostics import TangleError

    folder = shared_folder(base_temp) / f"tanglec-arith-run-{FORMAT.replace('/', '-')}"
    folder.mkdir(parents=True, exist_ok=True)
    run, board, compiled = folder / "runs" / "arith", folder / "board", folder / "compile.json"
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            read_manifest(run)
        except TangleError:
            compiled.unlink(missing_ok=True)
        if not compiled.exists():
            shutil.rmtree(run, ignore_errors=True)
            shutil.rmtree(board, ignore_errors=True)
            proc = run_tanglec("compile", str(ARITH), "-o", str(run), "--tensorboard", str(board), "--json")
            assert proc.returncode == 0, proc.stderr
            compiled.write_text(proc.stdout)
    return TrainedRun(run, board, json.loads(compiled.read_text()))


_MEASURE = """\
import json, os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:], stdout=open(sys.argv[1] + ".out", "wb"), stderr=open(sys.argv[1] + ".err", "wb"),
                        stdin=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(json.dumps({"rc": os.waitstatus_to_exitcode(status), "cpu": usage.ru_utime + usage.ru_stime,
                  "peak_mb": usage.ru_maxrss / 1024}))
"""


def measured_tanglec(*args: str, cwd: Path, output: Path, timeout: float = 120) -> tuple[int, str, str, float, float]:
    """`tanglec ARGS` as a user runs it: (exit code, stdout, stderr, CPU seconds, peak RSS in MB) of that process
    alone. A small launcher starts it, because a child forked straight from this (TensorFlow-sized) test
    process would count the parent's pages in its own peak."""
    proc = subprocess.run([sys.executable, "-c", _MEASURE, str(output), sys.executable, "-m", "tanglec.cli", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=timeout)
    figures = json.loads(proc.stdout)
    stdout, stderr = Path(f"{output}.out").read_text(), Path(f"{output}.err").read_text()
    return figures["rc"], stdout, stderr, figures["cpu"], figures["peak_mb"]


# -- the explorer (Textual Pilot) ------------------------------------------------------------
def screen_text(app) -> str:
    """What the terminal shows, as plain text."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def wait_for(pilot, condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{screen_text(pilot.app)}")
        await pilot.pause(0.1)


def run(coro) -> None:
    asyncio.run(coro)
