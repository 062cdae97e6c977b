#!/usr/bin/env python3
"""One entry point for a fresh checkout: set up `.venv/` and run the demo or the tests.

    python3 dev.py demo    # set up, then train and query the seed task (specs/arith.tangle)
    python3 dev.py test    # set up, then run the whole test suite

Uses only the standard library so it runs before anything is installed.
"""
from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".tanglec-installed"


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


def test(extra: list[str]) -> None:
    run(BIN / "python", "-m", "pytest", "-n", "2", "--durations=15", *extra)


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in {"demo", "test", "setup"}:
        print(__doc__)
        return 2
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
