"""Data files streamed in chunks (tanglec/stream.py): the same validation and messages as in memory,
a seeded split and a bounded evaluation sample, the same training rows and encodings, bounded memory,
and a TF-free `check`. The 1,000,000-row measurement is bench/stream_memory.py (docs/distributed.md).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from support import ROOT, SPECS
from tanglec.devtools.specgen import write_rows
from tanglec.data import examples as data, reader, stream
from tanglec.pipeline import Overrides, check_spec
from tanglec.data.examples import DataError
from tanglec.data.rows import MAX_REPORTED
from tanglec.lang.parser import parse_file


GATES = (SPECS / "gates.tangle").read_text()


def gates_spec(folder: Path, rows: str | bytes | None = None, name: str = "rows.csv", extra: str = "",
               data_line: str | None = None) -> Path:
    """specs/gates.tangle reading `name` in `folder` (written from `rows` when given)."""
    if rows is not None:
        (folder / name).write_bytes(rows if isinstance(rows, bytes) else rows.encode())
    line = data_line or f'data file "{name}" eval 0.25 seed 1'
    text = GATES.replace('data file "data/gates.csv" eval 0.25 seed 1', line)
    spec = folder / "gates.tangle"
    spec.write_text(text + extra)
    return spec


def checked_for(spec: Path, stream_mode: str | None = None):
    # diagnostics are collected, not raised: the readers are compared below
    return check_spec(parse_file(spec), Overrides(stream=stream_mode))


def diagnostics(fn) -> list[tuple]:
    with pytest.raises(DataError) as err:
        fn()
    return [(d.code, d.message, (d.span.file, d.span.line, d.span.col) if d.span else None, tuple(d.hints))
            for d in err.value.diagnostics]


GOOD = "pair,gate,out\n" + "".join(f"0 0 0 0 0 {i % 2},{g},0\n" for i in range(12) for g in ("and", "or"))
BAD_MANY = "pair,gate,out\n" + "".join(f"0 0 0 0 0 1,nand{i},0\n" for i in range(14))

CSV_CASES = {
    "bad selector": GOOD + "0 0 0 0 0 1,nand,0\n",
    "bad vector and int": GOOD + "0 0 1,and,0\n" + "0 0 0 0 0 1,and,x\n" + GOOD.split("\n", 1)[1],
    "out of range": GOOD + "0 0 0 0 0 1,and,9\n",
    "field count": GOOD + "0 0 0 0 0 1,and\n" + "0 0 0 0 0 1,nand,0\n",
    "many problems": BAD_MANY,
    "missing column": "pair,gate\n0 0 0 0 0 1,and\n",
    "column twice": "pair,gate,out,gate\n0 0 0 0 0 1,and,0,and\n",
    "empty": "\n  \n",
    "header only": "pair,gate,out\n\n",
    "crlf": GOOD.replace("\n", "\r\n") + "0 0 0 0 0 1,nor,0\r\n",
    "cr": GOOD.replace("\n", "\r") + "0 0 0 0 0 1,nor,0\r",
    "quoted": 'pair,gate,out\n"0 0 0 0 0 1","and",0\n"0 0 0 0 0 1","or,",0\n',
    "not utf-8": GOOD.encode() + b"0 0 0 0 0 1,\xff\xfe,0\n",
    "not utf-8 after bad rows": BAD_MANY.encode() + b"0 0 0 0 0 1,and,0\n\x00\x9c\xfb\n" + GOOD.encode(),
    "quoted line breaks": 'pair,gate,out\n"0 0 0\n0 0 1","and",0\n"0 0\r\n0","or",0\n0 0 0 0 0 1,"x\nor",5\n',
    "quoted cell never closed": GOOD + '0 0 0 0 0 1,"and,0\n' + GOOD,
    "field count, then cells": GOOD + "0 0 0 0 0 1,and,0,0\n" + "0 0 0 0 0 1,nand,0\n" + "0 1_0 0 0 0 1,and,0\n",
}


@pytest.mark.parametrize("case", list(CSV_CASES))
def test_streamed_csv_validation_matches_in_memory(tmp_path, case):
    """Same codes, messages, file:row:column and hints, whether the file is read whole or in chunks
    of 4 rows (problems on both sides of chunk boundaries)."""
    checked = checked_for(gates_spec(tmp_path, CSV_CASES[case]))
    whole = diagnostics(lambda: data.read_file(checked))
    streamed = diagnostics(lambda: list(reader.Reader(checked, chunk_rows=4).chunks()))
    assert streamed == whole
    if case == "many problems":
        assert len(streamed) == MAX_REPORTED and "4 more problems not shown (14 in all)" in streamed[-1][3]


JSONL_GOOD = "".join(json.dumps({"pair": [0, 0, 0, 0, 0, i % 2], "gate": g, "out": 0}) + "\n"
                     for i in range(5) for g in ("and", "xor"))
JSONL_CASES = {
    "not json": JSONL_GOOD + '{"pair": [0,0,0,0,0,1], "gate": "and", "out": 0\n',
    "not an object": JSONL_GOOD + "[1, 2]\n",
    "missing field": JSONL_GOOD + '{"pair": [0,0,0,0,0,1], "out": 0}\n',
    "wrong type": JSONL_GOOD + '{"pair": [0,0,0,0,0,1], "gate": "and", "out": 1.5}\n',
    "bad selector": JSONL_GOOD + '{"pair": [0,0,0,0,0,1], "gate": "nand", "out": 0}\n' + JSONL_GOOD,
    "vector size": JSONL_GOOD + '{"pair": [0,0,1], "gate": "and", "out": 0}\n',
}


def test_a_fifo_swapped_in_after_check_is_refused_without_blocking(tmp_path):
    """Both readers stat the file before opening it (and open it non-blocking): a FIFO nobody writes
    to is refused at once, in a child process so that a hang fails the test instead of stalling it."""
    spec = gates_spec(tmp_path, GOOD)
    code = ("import os, sys; from tanglec.pipeline import check_spec; from tanglec.lang.parser import parse_file\n"
            "from tanglec.data import examples as data, reader; from tanglec.data.examples import DataError\n"
            "checked = check_spec(parse_file(sys.argv[1])); assert checked.ok\n"
            "os.remove(sys.argv[2]); os.mkfifo(sys.argv[2])\n"
            "for read in (data.read_file, lambda c: list(reader.Reader(c).chunks())):\n"
            "    try:\n        read(checked)\n    except DataError as err:\n"
            "        d = err.diagnostics[0]; print(d.code, d.span.line, d.span.col, d.message)\n")
    r = subprocess.run([sys.executable, "-c", code, str(spec), str(tmp_path / "rows.csv")], capture_output=True,
                       text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["E119 1 1 the data file is not a regular file"] * 2


@pytest.mark.parametrize("case", list(JSONL_CASES))
def test_streamed_jsonl_validation_matches_in_memory(tmp_path, case):
    checked = checked_for(gates_spec(tmp_path, JSONL_CASES[case], name="rows.jsonl"))
    whole = diagnostics(lambda: data.read_file(checked))
    streamed = diagnostics(lambda: list(reader.Reader(checked, chunk_rows=3).chunks()))
    assert streamed == whole


def test_streamed_rows_equal_in_memory_rows(tmp_path):
    """Chunk by chunk, the converted columns are exactly what the in-memory reader returns."""
    write_rows(tmp_path / "rows.csv", 1000, seed=4)
    checked = checked_for(gates_spec(tmp_path))
    inputs, targets = data.read_file(checked)
    chunks = list(reader.Reader(checked, chunk_rows=128).chunks())
    assert [c.start for c in chunks] == list(range(0, 1000, 128))
    for name, col in inputs.items():
        np.testing.assert_array_equal(np.concatenate([c.inputs[name] for c in chunks]), col)
    np.testing.assert_array_equal(np.concatenate([c.data_targets["out"] for c in chunks]), targets["out"])


def test_check_reports_target_ranges_of_a_streamed_file(tmp_path, monkeypatch):
    """E112 (a target outside its decoder's codec) is found over the whole file, as in memory."""
    monkeypatch.setenv("TANGLEC_STREAM_BYTES", "0")  # stream auto: every file is "large"
    rows = "pair,gate,out\n" + "0 0 0 0 0 1,and,1\n" * 30 + "0 0 0 0 0 1,and,7\n"
    narrow = GATES.replace("bits(3)    = dense 32 relu, dense 3", "bits(2)    = dense 32 relu, dense 2")
    assert narrow != GATES
    (tmp_path / "rows.csv").write_text(rows)
    spec = tmp_path / "narrow.tangle"
    spec.write_text(narrow.replace('"data/gates.csv"', '"rows.csv"'))
    streamed = check_spec(parse_file(spec))
    monkeypatch.setenv("TANGLEC_STREAM_BYTES", str(10**12))
    whole = check_spec(parse_file(spec))
    assert [d.message for d in streamed.errors] == [d.message for d in whole.errors]
    assert any(d.code == "E112" and "ranges over 1..7, outside 0..3" in d.message for d in streamed.errors)


def test_split_sample_and_route_counts(tmp_path, monkeypatch):
    monkeypatch.setattr(stream, "EVAL_SAMPLE", 300)
    write_rows(tmp_path / "rows.csv", 5000, seed=2)
    checked = checked_for(gates_spec(tmp_path), "always")
    ex = data.build_examples(checked)
    assert isinstance(ex, stream.StreamedExamples) and ex.stream is not None and ex.file_rows == 5000
    assert ex.n == 300 and len(ex.eval_index) == 300 and len(ex.train_index) == 0  # bounded sample
    whole_inputs, whole_targets = data.read_file(checked)
    is_eval = stream.Split(checked).is_eval(whole_inputs, whole_targets, 5000)
    assert 1240 <= is_eval.sum() <= 1260
    scan = stream.scan(checked)
    assert set(scan.sample_rows.tolist()) <= set(np.flatnonzero(is_eval).tolist())
    # the sample holds the rows' real values
    np.testing.assert_array_equal(ex.columns["gate"], whole_inputs["gate"][scan.sample_rows])
    np.testing.assert_array_equal(ex.targets["out"], whole_targets["out"][scan.sample_rows])
    # training rows per route (gate) over the whole file
    train = ~is_eval
    assert ex.route_rows == [int((whole_inputs["gate"][train] == k).sum()) for k in range(3)]


def test_a_streamed_spec_without_selectors_counts_its_one_routes_rows(tmp_path):
    """With no selector column the route's rows were counted over none: 0 rows, reported `unseen`."""
    (tmp_path / "rows.csv").write_text("pair,out\n" + "".join(f"0 0 0 0 1 {i % 2},{i % 2}\n" for i in range(40)))
    spec = tmp_path / "one.tangle"
    spec.write_text('input pair: vector(6)\nmodule enc: vector(6) -> latent(4) = dense 4\n'
                    'module dec: latent(4) -> onehot(2) = dense 2\nroute pair -> enc -> dec\n'
                    'target out: int 0..1 from data\ndecode dec as out\ndata file "rows.csv" eval 0.25 seed 1\n')
    ex = data.build_examples(checked_for(spec, "always"))
    assert ex.route_rows == [30]


def _rare_class_rows(path: Path, rows: int = 10_000, rare: int = 5) -> np.ndarray:
    """Gates rows whose `out` is 0..6, but 7 on `rare` rows spread over the file; the `out` column."""
    rng = np.random.default_rng(4)
    out = rng.integers(0, 7, rows)
    out[np.linspace(rows // 10, rows - 1, rare).astype(int)] = 7
    pairs = rng.integers(0, 2, (rows, 6))
    gates = rng.choice(["and", "or", "xor"], rows)
    path.write_text("pair,gate,out\n" + "".join(f"{' '.join(map(str, p))},{g},{o}\n"
                                               for p, g, o in zip(pairs, gates, out)))
    return out


def test_the_streamed_split_is_stratified_by_class_whatever_the_chunks(tmp_path, monkeypatch):
    """A class of 5 rows in 10,000 has rows in validation (and in training); every class gives its
    share; the split is the same twice and for any chunk size, in the scan and in training."""
    out = _rare_class_rows(tmp_path / "rows.csv")
    checked = checked_for(gates_spec(tmp_path, data_line='data file "rows.csv" eval 0.1 seed 1'), "always")
    assert stream.class_target(checked) == "out"

    def split(chunk_rows: int) -> np.ndarray:
        splitter = stream.Split(checked)
        return np.concatenate([splitter.is_eval(c.inputs, c.data_targets, c.n)
                               for c in reader.Reader(checked, chunk_rows=chunk_rows).chunks()])

    is_eval = split(50_000)
    for chunk_rows in (50_000, 7, 1000, 4093):
        np.testing.assert_array_equal(split(chunk_rows), is_eval)
    assert 1 <= is_eval[out == 7].sum() < 5
    for value in range(7):
        assert abs(is_eval[out == value].mean() - 0.1) < 0.002
    monkeypatch.setattr(reader, "CHUNK_ROWS", 777)
    scan = stream.scan(checked, sample=50)
    assert len(scan.sample_rows) == 50 and set(scan.sample_targets["out"].tolist()) == set(range(8))
    assert set(scan.sample_rows.tolist()) <= set(np.flatnonzero(is_eval).tolist())
    ex = data.build_examples(checked)
    trained = np.concatenate([y["to_value"] for _, y, _ in ex.stream.chunks(seed=0, epoch=0)])
    assert len(trained) == (~is_eval).sum() and (trained == 7).sum() == (~is_eval[out == 7]).sum()


def test_the_streamed_split_is_not_in_step_with_rows_that_take_turns(tmp_path):
    """Rows of two kinds taking turns within every class (two languages, one row each per number): each
    kind evaluates its share, where taking every 4th row of a class would evaluate one kind only."""
    rows = "".join(f"0 0 0 0 0 {i % 2},{('and', 'or')[i % 2]},{i // 2 % 7}\n" for i in range(5600))
    checked = checked_for(gates_spec(tmp_path, "pair,gate,out\n" + rows), "always")
    inputs, targets = data.read_file(checked)
    is_eval = stream.Split(checked).is_eval(inputs, targets, 5600)
    for out in range(7):
        for gate in (0, 1):
            share = is_eval[(targets["out"] == out) & (inputs["gate"] == gate)].mean()
            assert 0.15 < share < 0.35, (out, gate, share)
    assert abs(is_eval.mean() - 0.25) < 0.01


def test_holdouts_only_and_fewshot_when_streaming(tmp_path):
    write_rows(tmp_path / "rows.csv", 2000, seed=3)
    spec = gates_spec(tmp_path, extra="holdout reader -> xor\n")
    ex = data.build_examples(checked_for(spec, "always"))
    assert ex.route_rows[2] == 0 and ex.route_rows[0] > 0 and ex.route_rows[1] > 0
    spec = gates_spec(tmp_path, data_line='data file "rows.csv" eval 0.25 seed 1 only gate:or')
    ex = data.build_examples(checked_for(spec, "always"))
    assert ex.route_rows[0] == 0 and ex.route_rows[1] > 0 and ex.route_rows[2] == 0
    spec = gates_spec(tmp_path, data_line='data file "rows.csv" eval 0.25 seed 1 per_route 4 limit 10')
    ex = data.build_examples(checked_for(spec, "always"))
    assert ex.stream is None and len(ex.train_index) == 10  # few-shot rows: picked in a pass, held in memory
    gates = ex.columns["gate"][ex.train_index]
    assert max(np.bincount(gates, minlength=3)) <= 4
    spec = gates_spec(tmp_path, extra="holdout reader -> and\nholdout reader -> or\nholdout reader -> xor\n")
    with pytest.raises(DataError) as err:
        data.build_examples(checked_for(spec, "always"))
    assert err.value.diagnostics[0].code == "E163"


def test_check_of_a_streamed_file_is_tf_free(tmp_path):
    write_rows(tmp_path / "rows.csv", 3000, seed=5)
    spec = gates_spec(tmp_path)
    code = ("import sys; from tanglec.pipeline import load; from tanglec.data import stream; c = load(sys.argv[1]); "
            "assert stream.should_stream(c); assert 'tensorflow' not in sys.modules, 'TF loaded'; print('ok')")
    r = subprocess.run([sys.executable, "-c", code, str(spec)], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "TANGLEC_STREAM_BYTES": "1000"}, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_streaming_memory_is_bounded(tmp_path, monkeypatch):
    """Python-heap peak (tracemalloc) of reading 12,000 rows: chunks of 600 vs the whole file."""
    write_rows(tmp_path / "rows.csv", 12_000, seed=6)
    monkeypatch.setattr(reader, "CHUNK_ROWS", 600)
    checked = checked_for(gates_spec(tmp_path), "always")

    def peak(fn) -> float:
        tracemalloc.start()
        try:
            fn()
            return tracemalloc.get_traced_memory()[1] / 2**20
        finally:
            tracemalloc.stop()

    streamed = peak(lambda: stream.scan(checked, sample=300))
    whole = peak(lambda: data.read_file(checked))
    print(f"peak Python heap, 12,000 rows: streamed {streamed:.1f} MB, in memory {whole:.1f} MB")
    assert streamed < 2 and whole > 5 * streamed


# ---- with TensorFlow ------------------------------------------------------------------------------

def test_streamed_training_rows_and_encoding_match_in_memory(tmp_path):
    """Every training row of the file reaches tf.data once per epoch, encoded as training_arrays
    encodes it in memory (targets and per-decoder weights)."""
    from tanglec.data.features import training_arrays

    write_rows(tmp_path / "rows.csv", 700, seed=7)
    checked = checked_for(gates_spec(tmp_path), "always")
    ex = data.build_examples(checked)
    parts = list(ex.stream.chunks(seed=0, epoch=0))
    streamed = {k: np.concatenate([p[i][k] for p in parts]) for i in range(3) for k in parts[0][i]}
    inputs, targets = data.read_file(checked)
    rows = np.flatnonzero(~stream.Split(checked).is_eval(inputs, targets, 700))
    x, y, w = training_arrays(checked, data.Examples(inputs, targets, rows, rows), rows)
    whole = {**x, **y, **w}
    assert set(streamed) == set(whole)

    def table(arrays):
        cols = [arrays[k].reshape(len(rows), -1).astype(np.float64) for k in sorted(arrays)]
        t = np.concatenate(cols, axis=1)
        return t[np.lexsort(t.T[::-1])]

    np.testing.assert_array_equal(table(streamed), table({k: whole[k] for k in streamed}))


def test_streamed_training_runs(tmp_path):
    """train() on a streamed file: tf.data batches from the generator, evaluation on the sample,
    route counts over the whole file."""
    from tanglec.backend.datasets import stream_dataset
    from tanglec.backend.train import train

    write_rows(tmp_path / "rows.csv", 3000, seed=8)
    checked = checked_for(gates_spec(tmp_path), "always")
    ex = data.build_examples(checked)
    batches = stream_dataset(ex.stream, batch=32, seed=0).take(3)
    for xb, yb, wb in batches:
        assert xb["pair"].shape == (32, 6) and yb["to_value"].shape == (32,) and wb["to_bits"].shape == (32,)
    result = train(checked, ex, steps=40)
    assert result.steps_run == 40
    losses = [h["losses"]["total"] for h in result.history]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert result.report["cases"] == ex.n
    assert [r["training_rows"] for r in result.report["routes"]] == ex.route_rows
