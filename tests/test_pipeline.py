"""The pipeline (tanglec/pipeline.py) keeps no state between calls: overrides are values, not globals."""
from __future__ import annotations

import shutil

import pytest

from support import SPECS
from tanglec import pipeline
from tanglec.data.stream import should_stream
from tanglec.lang.diagnostics import TangleError


def gates_copy(tmp_path, rows: str | None = None):
    """specs/gates.tangle beside its own copy of the data (optionally other rows)."""
    (tmp_path / "data").mkdir(parents=True)
    data = tmp_path / "data" / "gates.csv"
    shutil.copy(SPECS / "data" / "gates.csv", data)
    if rows is not None:
        data.write_text(rows)
    spec = tmp_path / "gates.tangle"
    shutil.copy(SPECS / "gates.tangle", spec)
    return spec


def test_a_failed_streamed_load_leaves_no_state_behind(tmp_path):
    bad = gates_copy(tmp_path / "bad", "pair,gate,out\n0 0 0 0 0 1,and,1\n0 0 0 0 0 1,nand,1\n")  # no gate nand
    good = gates_copy(tmp_path / "good")
    with pytest.raises(TangleError) as err:
        pipeline.load(bad, pipeline.Overrides(stream="always"))
    assert [d.code for d in err.value.diagnostics if d.is_error] == ["E119"]
    checked = pipeline.load(good)  # same process: the spec's own `stream` (auto), a small file read whole
    assert checked.data.stream == "auto" and not should_stream(checked)
    streamed = pipeline.load(good, pipeline.Overrides(stream="always"))
    assert should_stream(streamed) and not should_stream(pipeline.load(good))


def test_checked_is_immutable(tmp_path):
    checked = pipeline.load(gates_copy(tmp_path))
    with pytest.raises(AttributeError):
        checked.init_modules = {}
