#!/usr/bin/env python3
"""One entry point for a fresh checkout: set up `.venv/` and run the demo or the tests.

    python3 dev.py demo    # set up, then train and query the seed task (specs/arith.tangle)
    python3 dev.py test    # set up, then run the whole test suite
    python3 dev.py tools   # the system tools some tests need (tmux, Graphviz): installed, or what skips

`test` first makes sure of the system tools CI has (tmux, Graphviz's `dot`): it installs the missing ones
with apt-get when it can (as root, DEV_NO_INSTALL unset), and otherwise prints which tests will skip and why,
so the README's command gives CI's result or says exactly how it differs.

Uses only the standard library so it runs before anything is installed.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".tanglec-installed"

# command -> (Debian package, the tests that skip without it)
SYSTEM_TOOLS = {"tmux": ("tmux", "tests/test_tmux.py (the TUI in a real terminal)"),
                "dot": ("graphviz", "tests/test_graph_formats.py (svg and png graphs)")}


def run(*cmd: str | os.PathLike) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT)


def setup() -> None:
    """Create the venv and install the project with its dev extras (skipped when pyproject is unchanged)."""
    if not (BIN / "python").exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = (ROOT / "pyproject.toml").read_text()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(BIN / "python", "-m", "pip", "install", "--quiet", "-e", ".[dev]")
    STAMP.write_text(wanted)


def demo() -> None:
    tanglec = BIN / "tanglec"
    run(tanglec, "check", "specs/arith.tangle")
    run(tanglec, "graph", "specs/arith.tangle")
    run(tanglec, "compile", "specs/arith.tangle", "-o", "runs/arith")
    run(tanglec, "eval", "runs/arith")
    run(tanglec, "query", "runs/arith", "x=7", "encoding=binary", "op=times2")


def missing_tools() -> list[str]:
    return [tool for tool in SYSTEM_TOOLS if shutil.which(tool) is None]


def system_tools() -> list[str]:
    """Install the missing system tools when apt-get and root are there; the skip notice for the rest."""
    missing = missing_tools()
    can_install = shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0
    if missing and can_install and not os.environ.get("DEV_NO_INSTALL"):
        packages = sorted({SYSTEM_TOOLS[t][0] for t in missing})
        print("+ apt-get install -y " + " ".join(packages), flush=True)
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        if subprocess.run(["apt-get", "update", "-qq"], **quiet).returncode == 0:
            subprocess.run(["apt-get", "install", "-y", "-qq", *packages], **quiet)
        missing = missing_tools()
    notices = [f"SKIPPED: {SYSTEM_TOOLS[t][1]}: `{t}` is not installed "
               f"(install the `{SYSTEM_TOOLS[t][0]}` package, e.g. `sudo apt-get install {SYSTEM_TOOLS[t][0]}`)"
               for t in missing]
    for line in notices:
        print(line, flush=True)
    return notices


def test(extra: list[str]) -> None:
    notices = system_tools()
    try:
        run(BIN / "python", "-m", "pytest", "-n", "2", "--durations=15", *extra)
    finally:
        for line in notices:  # again at the end, where the summary is read
            print(line, flush=True)


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in {"demo", "test", "setup", "tools"}:
        print(__doc__)
        return 2
    if sys.argv[1] == "tools":
        system_tools()
        return 0
    setup()
    try:
        if sys.argv[1] == "demo":
            demo()
        elif sys.argv[1] == "test":
            test(sys.argv[2:])
    except subprocess.CalledProcessError as err:
        return err.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
