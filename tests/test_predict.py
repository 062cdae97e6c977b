"""`tanglec predict` and several queries per `tanglec query`, through the real CLI."""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from support import call_tanglec

ROWS = [(7, "binary", "times2"), (3, "decimal", "plus1"), (0, "decimal", "times2"), (9, "binary", "plus1")]


def _query_answers(run, rows) -> list[dict]:
    """What `tanglec query` answers for each row (one process, the queries split by `--`)."""
    args = []
    for x, encoding, op in rows:
        args += ["--", f"x={x}", f"encoding={encoding}", f"op={op}"]
    proc = call_tanglec("query", str(run), *args, "--json")
    assert proc.returncode == 0, proc.stderr
    return [{a["decoder"]: a for a in q["answers"]} for q in json.loads(proc.stdout)["queries"]]


def test_predict_answers_as_query_does(arith_run, tmp_path):
    data = tmp_path / "rows.csv"
    data.write_text("op,x,encoding,note\n" + "".join(f"{op},{x},{e},n\n" for x, e, op in ROWS))
    out = tmp_path / "answers.csv"
    proc = call_tanglec("predict", str(arith_run.run), str(data), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"{len(ROWS)} rows answered" in proc.stderr
    table = list(csv.DictReader(out.open()))
    assert list(table[0]) == ["x", "encoding", "op", "to_binary", "to_binary_confidence",
                              "to_decimal", "to_decimal_confidence"]
    for row, (x, encoding, op), asked in zip(table, ROWS, _query_answers(arith_run.run, ROWS)):
        assert (row["x"], row["encoding"], row["op"]) == (str(x), encoding, op)
        for decoder, answer in asked.items():
            assert row[decoder] == str(answer["value"])
            assert abs(float(row[f"{decoder}_confidence"]) - answer["confidence"]) < 1e-5


def test_predict_reads_jsonl_and_writes_stdout(arith_run, tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"x": x, "encoding": e, "op": op}) + "\n" for x, e, op in ROWS))
    proc = call_tanglec("predict", str(arith_run.run), str(data))
    assert proc.returncode == 0, proc.stderr
    table = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [int(r["to_decimal"]) for r in table] == [4, 4, 0, 0]


def test_bad_row_is_e119_at_its_cell_and_nothing_is_written(arith_run, tmp_path):
    data = tmp_path / "rows.csv"
    data.write_text("x,encoding,op\n1,binary,plus1\n4,decimal,times3\n12,binary,plus1\n")
    out = tmp_path / "answers.csv"
    proc = call_tanglec("predict", str(arith_run.run), str(data), "-o", str(out))
    assert proc.returncode == 1
    assert f"{data}:3:11: error[E119]" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == [data]

    skipped = call_tanglec("predict", str(arith_run.run), str(data), "-o", str(out), "--skip-bad", "--json")
    assert skipped.returncode == 0, skipped.stderr
    assert json.loads(skipped.stdout)["rows"] == 1 and json.loads(skipped.stdout)["skipped"] == 2
    assert [r["x"] for r in csv.DictReader(out.open())] == ["1"]


def test_predict_keeps_an_existing_file_without_overwrite(arith_run, tmp_path):
    data = tmp_path / "rows.csv"
    data.write_text("x,encoding,op\n1,binary,plus1\n")
    out = tmp_path / "answers.csv"
    out.write_text("mine\n")
    refused = call_tanglec("predict", str(arith_run.run), str(data), "-o", str(out))
    assert refused.returncode == 1 and "E192" in refused.stderr
    assert out.read_text() == "mine\n"
    assert call_tanglec("predict", str(arith_run.run), str(data), "-o", str(out), "--overwrite").returncode == 0
    assert out.read_text().startswith("x,encoding,op,")


def test_queries_from_stdin_in_one_process(arith_run):
    lines = "".join(f"x={x} encoding={e} op={op}\n" for x, e, op in ROWS) + "\n# a comment\n"
    proc = subprocess.run([sys.executable, "-m", "tanglec.cli", "query", str(arith_run.run), "-", "--json"],
                          input=lines, capture_output=True, text=True, env=os.environ, timeout=300)
    assert proc.returncode == 0, proc.stderr
    queries = json.loads(proc.stdout)["queries"]
    assert [q["route"]["selection"] for q in queries] == [{"encoding": e, "op": op} for _, e, op in ROWS]
    assert queries == [{"route": q["route"], "answers": list(a.values())}
                       for q, a in zip(queries, _query_answers(arith_run.run, ROWS))]


def test_each_bad_query_is_named_by_its_number(arith_run):
    proc = call_tanglec("query", str(arith_run.run), "x=1", "encoding=binary", "op=plus1", "--", "x=12",
                       "encoding=binary", "op=plus1")
    assert proc.returncode == 1
    assert "query 2: x: 12 is outside 0..9" in proc.stderr and "query 1" not in proc.stderr


VECTOR_SPEC = """\
input v: vector(2)
module lin: vector(2) -> vector(2) = dense 2
route v -> lin
target w: vector(2) from data
decode lin as w tolerance 0.001
data file "rows.csv"
train steps 5 seed 0
"""


@pytest.fixture(scope="module")
def vector_run(tmp_path_factory):
    """A vector decoder trained 5 steps: its answers are float32 numbers with no short float64 form."""
    folder = tmp_path_factory.mktemp("vector")
    (folder / "spec.tangle").write_text(VECTOR_SPEC)
    (folder / "rows.csv").write_text("v,w\n" + "".join(f"0.{i} 0.3,0.1 0.{i}\n" for i in range(1, 9)))
    proc = call_tanglec("compile", str(folder / "spec.tangle"), "-o", str(folder / "run"))
    assert proc.returncode == 0, proc.stderr
    return folder


def _shortest_float32(cell: str) -> list[float]:
    """A cell's numbers, each asserted to be the shortest text of the float32 it reads back as."""
    texts = cell.split()
    assert texts == [str(np.float32(float(t))).removesuffix(".0") for t in texts]
    return [float(t) for t in texts]


def test_vector_answers_are_the_shortest_text_of_their_float32_everywhere(vector_run):
    run, rows = vector_run / "run", vector_run / "rows.csv"
    table = list(csv.DictReader(io.StringIO(call_tanglec("predict", str(run), str(rows)).stdout)))
    assert [r["v"] for r in table] == [f"0.{i} 0.3" for i in range(1, 9)]  # read as float32, written back as given
    predicted = [_shortest_float32(r["lin"]) for r in table]
    assert any(len(t.split(".")[-1]) > 6 for r in table for t in r["lin"].split()), "needs more than 6 decimals"
    answer = json.loads(call_tanglec("query", str(run), "v=0.1 0.3", "--json").stdout)["answers"][0]
    assert answer["value"] == predicted[0]
    assert json.dumps(answer["value"]) == "[" + ", ".join(table[0]["lin"].split()) + "]"
    report = json.loads(call_tanglec("eval", str(run), "--failures", "8", "--json").stdout)
    assert len(report["failures"]) == 8, "5 steps answer nothing within 0.001"
    for failure in report["failures"]:
        assert failure["value"] == predicted[failure["row"]]
        assert failure["expected"] == [0.1, float(f"0.{failure['row'] + 1}")]
