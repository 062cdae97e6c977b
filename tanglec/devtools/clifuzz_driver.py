"""Running a command for the CLI fuzzer (`clifuzz`): in a fresh `python -m tanglec.cli` process, or in a
driver process that imports tanglec once (TensorFlow costs seconds per process) and serves many commands.

`python -m tanglec.devtools.clifuzz_driver` is the driver's side (`serve`).
"""
from __future__ import annotations

import io
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass
class Outcome:
    argv: list[str]
    rc: int | None  # None: timed out
    stdout: str
    stderr: str
    seconds: float
    process: str  # "driver" or "fresh"


def fresh_run(argv: list[str], cwd: Path, timeout: float, env: dict | None = None) -> Outcome:
    """`python -m tanglec.cli ARGV` in its own process, as a user runs it."""
    start = time.perf_counter()
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    try:
        proc = subprocess.run([sys.executable, "-m", "tanglec.cli", *argv], cwd=cwd, capture_output=True,
                              timeout=timeout, env=full_env, stdin=subprocess.DEVNULL)
        rc = proc.returncode
        out, err = proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as expired:
        rc, out, err = None, expired.stdout or b"", expired.stderr or b""
    return Outcome(argv, rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
                   time.perf_counter() - start, "fresh")


class Driver:
    """A process that imports tanglec once and runs many commands in it (`serve`), one JSON line each way."""

    def __init__(self, log: Path | None = None):
        self.log = log
        self.proc: subprocess.Popen | None = None
        self.restarts = 0

    def _start(self) -> None:
        stderr = open(self.log, "ab") if self.log else subprocess.DEVNULL
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
        self.proc = subprocess.Popen([sys.executable, "-m", "tanglec.devtools.clifuzz_driver"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=stderr, env=env, cwd=ROOT)

    def run(self, argv: list[str], cwd: Path, timeout: float) -> Outcome:
        """Run one command; a driver that dies or hangs is replaced (rc is then the signal, or None)."""
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        start = time.perf_counter()
        request = json.dumps({"argv": argv, "cwd": str(cwd)}) + "\n"
        try:
            self.proc.stdin.write(request.encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        line = self._read_line(timeout)
        seconds = time.perf_counter() - start
        if line is None:  # died (a signal) or hung
            self.proc.kill()
            rc = self.proc.wait()
            self.proc = None
            self.restarts += 1
            return Outcome(argv, rc if seconds < timeout else None, "", "", seconds, "driver")
        reply = json.loads(line)
        return Outcome(argv, reply["rc"], reply["stdout"], reply["stderr"], seconds, "driver")

    def _read_line(self, timeout: float) -> bytes | None:
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if sel.select(timeout=max(0.0, deadline - time.monotonic())):
                    line = self.proc.stdout.readline()
                    return line or None
        return None

    def close(self) -> None:
        if self.proc is not None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


def serve() -> None:
    """The driver's side: read {"argv", "cwd"} lines, run `tanglec.cli.main` on each, reply {"rc", "stdout",
    "stderr"}."""
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # output below Python (TensorFlow's C++ logging) can't corrupt the replies
    requests = sys.stdin
    # One stdout and one stderr for the driver's life, emptied per case: loggers that kept a reference
    # to sys.stderr (TensorFlow's, absl's) then write into the current case, not into a closed stream.
    sys.stdout, sys.stderr = (io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace",
                                               write_through=True) for _ in range(2))
    from tanglec import cli

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for line in requests:
        request = json.loads(line)
        replies.write(json.dumps(_run_in_process(cli, request["argv"], Path(request["cwd"]))) + "\n")
        replies.flush()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def _captured(stream) -> str:
    """What the case wrote to one of the driver's streams; the stream is emptied."""
    stream.flush()
    text = stream.buffer.getvalue().decode("utf-8", "replace")
    stream.buffer.seek(0)
    stream.buffer.truncate()
    return text


def _run_in_process(cli, argv: list[str], cwd: Path) -> dict:
    """One command as `tanglec ARGV` would run it, in this process; then reset what a command leaves behind."""
    _captured(sys.stdout), _captured(sys.stderr)
    saved = sys.argv, sys.stdin, os.getcwd(), os.environ.get("TMPDIR")
    sys.argv = ["tanglec", *argv]
    sys.stdin = io.StringIO("")
    tmp = cwd / "tmp"
    tmp.mkdir(exist_ok=True)
    os.environ["TMPDIR"] = str(tmp)
    tempfile.tempdir = None
    os.chdir(cwd)
    rc = 0
    try:
        cli.main()
    except SystemExit as stop:
        rc = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:  # main() lets nothing else out on its own: report it as a crash
        import traceback

        sys.stderr.write(traceback.format_exc())
        rc = 3
    finally:
        sys.argv, sys.stdin, cwd_before, tmpdir = saved
        os.chdir(cwd_before)
        if tmpdir is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = tmpdir
        tempfile.tempdir = None
        reset_state()
    return {"rc": rc, "stdout": _captured(sys.stdout), "stderr": _captured(sys.stderr)}


def reset_state() -> None:
    """What one command leaves in the process that a real user's next process would not see."""
    stream = sys.modules.get("tanglec.data.stream")
    if stream is not None:
        stream.FORCED = None
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()



if __name__ == "__main__":
    serve()
