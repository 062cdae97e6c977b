"""A real terminal: `tanglec explore specs/arith.tangle` inside tmux, driven by keys, read off the pane.

It checks what a person would see: the graph paints quickly (the first-paint time is printed), no
TensorFlow log lines land on the screen, training from the Train view reaches 100%, the Query view
answers x=7 times2 with 4 on the lit route, help opens, and `q` quits with exit status 0.
Skips where tmux is missing (CI installs it). Uses its own tmux server, always killed at the end.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from support import ROOT

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")

WIDTH, HEIGHT = 120, 36


def tanglec_command() -> str:
    script = Path(sys.executable).parent / "tanglec"
    if script.exists():
        return shlex.quote(str(script))
    return f"{shlex.quote(sys.executable)} -m tanglec.cli"


class Terminal:
    def __init__(self) -> None:
        self.socket = f"tanglec-test-{uuid.uuid4().hex[:8]}"

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([TMUX, "-L", self.socket, "-u", *args], capture_output=True, text=True,
                              check=check, timeout=20)

    def start(self, command: str) -> None:
        self.tmux("new-session", "-d", "-s", "main", "-x", str(WIDTH), "-y", str(HEIGHT), command)
        # tmux holds an Escape for 500 ms to see if a sequence follows; a key sent sooner would
        # arrive as alt+key. A person pauses; the test says so.
        self.tmux("set-option", "-s", "escape-time", "0")

    def screen(self) -> str:
        proc = self.tmux("capture-pane", "-p", "-t", "main", check=False)
        return proc.stdout

    def keys(self, *keys: str) -> None:
        for key in keys:
            self.tmux("send-keys", "-t", "main", key)
            # Textual, too, reads Escape + a key sent at once as alt+key
            time.sleep(0.6 if key == "Escape" else 0.15)

    def wait_for(self, pattern: str, timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if re.search(pattern, text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what} ({pattern!r}); "
                                     f"the screen shows:\n{text}")
            time.sleep(0.05)

    def kill(self) -> None:
        self.tmux("kill-server", check=False)
        socket = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}" / self.socket
        socket.unlink(missing_ok=True)


@pytest.mark.slow
def test_explore_in_a_real_terminal(tmp_path):
    run_dir = tmp_path / "run"
    spec = tmp_path / "arith.tangle"  # a copy: the editor saves it before compiling
    spec.write_text((ROOT / "specs" / "arith.tangle").read_text())
    command = (f"cd {shlex.quote(str(ROOT))} && env -u COLUMNS -u LINES LANG=C.UTF-8 LC_ALL=C.UTF-8 "
               f"{tanglec_command()} explore {shlex.quote(str(spec))} -o {shlex.quote(str(run_dir))}; "
               f"echo EXITED $?; sleep 30")
    term = Terminal()
    try:
        started = time.monotonic()
        term.start(command)
        screen = term.wait_for(r"(?s)by encoding.*to_decimal.*Quit", 30, "the graph")
        first_paint = time.monotonic() - started
        print(f"\nfirst paint of the graph: {first_paint:.2f}s (tmux start + Python + Textual + spec)")
        # The graph is up before TensorFlow (a ~5 s import) is: it loads in the background afterwards.
        assert "TensorFlow ready" not in screen
        assert first_paint < 10.0, f"first paint took {first_paint:.2f}s"  # loose: CI machines get busy
        for name in ("x", "binary", "decimal", "plus1", "times2", "to_binary", "to_decimal", "by op"):
            assert name in screen
        assert "Graph 1" in screen and "Quit" in screen  # tabs and the footer's bindings

        # TensorFlow loads in the background, silently
        screen = term.wait_for(r"TensorFlow ready", 180, "TensorFlow")
        for noise in ("absl", "cudart", "oneDNN", "WARNING", "I0000"):
            assert noise not in screen, f"TensorFlow output on screen: {noise}\n{screen}"

        # The editor: an error typed shows up by itself (no key to check it), with its line; fixed, it goes
        term.keys("C-e")
        term.wait_for(r"Leave editor", 30, "the editor")
        term.tmux("send-keys", "-t", "main", "z", "z")
        typed = time.monotonic()
        screen = term.wait_for(r"E\d{3}\s+1:1", 10, "the diagnostic of the typed error")
        print(f"diagnostic shown {time.monotonic() - typed:.2f}s after typing (0.25 s of it is the debounce)")
        assert "1 error" in screen
        term.keys("BSpace", "BSpace")
        term.wait_for(r"no problems", 10, "the diagnostic to go away")

        # compile from the editor (ctrl+b): saved, trained to 100%, the run directory written
        term.keys("C-b")
        screen = term.wait_for(r"done ", 300, "training to finish")
        assert "100%" in screen
        assert (run_dir / "manifest.json").is_file()

        # Query view: x=7, encoding=binary, op=times2 -> 4 on both decoders
        term.keys("3")
        term.wait_for(r"fields", 30, "the Query view")
        term.keys("7", "Tab", "Tab")
        term.wait_for(r"x\s+7\b", 30, "x=7 in the form")
        term.keys("Enter")
        term.wait_for(r"Dismiss menu", 30, "the op choices to open")
        term.keys("Down", "Enter")
        screen = term.wait_for(r"to_decimal\s+y\s+4\s", 30, "the answers for x=7 times2")
        assert re.search(r"to_binary\s+y\s+4\s", screen)
        assert "binary → times2" in screen
        assert "absl" not in screen and "cudart" not in screen

        # help, then quit from the keyboard
        term.keys("Escape", "?")
        term.wait_for(r"pause / resume", 30, "the help screen")
        term.keys("Escape", "q")
        term.wait_for(r"EXITED 0", 30, "the app to exit with status 0")
    finally:
        term.kill()
