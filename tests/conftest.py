"""Fixtures only; what they are built from lives in support.py (test modules import that, never this file)."""
from __future__ import annotations

from pathlib import Path

import pytest

from support import TrainedRun, trained_arith_run


@pytest.fixture
def write_spec(tmp_path):
    """Write spec text to a file in tmp_path and return its path."""

    def write(text: str, name: str = "spec.tangle") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


@pytest.fixture(scope="session")
def arith_run(tmp_path_factory) -> TrainedRun:
    """specs/arith.tangle trained once for the whole session (shared by xdist workers; read only:
    copy it with `arith_run.copy_to(folder)` to change it)."""
    return trained_arith_run(tmp_path_factory.getbasetemp())


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Work in an empty directory, so `runs/<spec>` never finds someone's trained run."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
