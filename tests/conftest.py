"""Shared test helpers: the repo's paths and a way to run the real `tanglec` command."""
from __future__ import annotations

import os
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
