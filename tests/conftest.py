"""Shared test helpers: the repo's paths and a way to run the real `tanglec` command."""
from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
ARITH = SPECS / "arith.tangle"


def run_tanglec(*args: str, cwd: Path | None = None, timeout: float = 300, env: dict | None = None):
    """Run `python -m tanglec.cli ARGS` in a fresh process, as a user would run `tanglec`."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "tanglec.cli", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=timeout, env=full_env)


@pytest.fixture
def write_spec(tmp_path):
    """Write spec text to a file in tmp_path and return its path."""

    def write(text: str, name: str = "spec.tangle") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


@pytest.fixture(scope="session")
def trained_specs(tmp_path_factory) -> Path:
    """A copy of specs/ beside a `runs/arith` compiled from it, as a user has after the demo.

    The transfer specs say `init "../runs/arith"`, so they check only once arith is trained; a clean
    checkout (CI) has no runs/, and tests must not write into the repo. Made once per session, even
    under pytest-xdist (a file lock), by the real `tanglec compile` command (click, in-process).
    """
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    root = shared / "trained-specs"
    with open(shared / "trained-specs.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (root / "runs" / "arith" / "manifest.json").exists():
                from click.testing import CliRunner

                from tanglec.cli import cli

                shutil.rmtree(root, ignore_errors=True)
                shutil.copytree(SPECS, root / "specs")
                result = CliRunner().invoke(cli, ["compile", str(root / "specs" / "arith.tangle"),
                                                  "-o", str(root / "runs" / "arith"), "--json"])
                assert result.exit_code == 0, result.output
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return root
