"""Branches that read their own field (`[binary | decimal | pixels from img] by encoding`): parsing,
checks, the graph, codegen under every multiplexer strategy, rows that carry only the fields their
route reads (CSV, JSONL, streamed, predict, query), bad image cells through the CLI, and training."""
from __future__ import annotations

import json

import numpy as np
import pytest

from support import call_tanglec
from tanglec.data.examples import DataError, build_examples
from tanglec.data.needs import FieldNeeds
from tanglec.data.query import parse_fields
from tanglec.lang.diagnostics import TangleError
from tanglec.lang.parser import parse
from tanglec.pipeline import check_spec
from tanglec.spec.graph import describe

SPEC = """\
input x: int 0..3
input img: vector(4)
select encoding: binary | decimal | pixels
select op: plus1 | times2

module binary    : bits(2)   -> latent(8) = dense 8 relu, dense 8
module decimal   : onehot(4) -> latent(8) = dense 8 relu, dense 8
module pixels    : vector(4) -> latent(8) = dense 8 relu, dense 8
module plus1     : latent(8) -> latent(8) = dense 8
module times2    : latent(8) -> latent(8) = dense 8
module to_decimal: latent(8) -> onehot(4) = dense 4

route x -> [binary | decimal | pixels from img] by encoding -> [plus1 | times2] by op -> to_decimal

target y: int 0..3 from data
decode to_decimal as y
data file "rows.csv"
train steps 2 batch 8
"""
EXPR_TARGET = "target y = match op { plus1: (x + 1) % 4, times2: (x * 2) % 4 }"
ROUTE_LINE = 13
HEADER = "x,img,encoding,op,y"
GOOD_ROWS = ["1,,binary,plus1,2", "2,,decimal,times2,0", ",0 0 1 0,pixels,plus1,3", ",0 1 0 0,pixels,times2,2"]


def checked_spec(text: str = SPEC, tmp_path=None, rows: list[str] | None = None, name: str = "rows.csv"):
    """The checked spec, its data file (CSV rows under HEADER, or JSONL lines) written beside it first;
    with no folder, the spec samples its rows (and computes its target)."""
    if tmp_path is None:
        text = text.replace('data file "rows.csv"', "data sample 16").replace("target y: int 0..3 from data",
                                                                                EXPR_TARGET)
        return check_spec(parse(text, "spec.tangle"))
    data = tmp_path / name
    header = HEADER if "from data" in text else HEADER.removesuffix(",y")
    data.write_text("\n".join(([] if name.endswith(".jsonl") else [header]) + (rows or GOOD_ROWS)) + "\n")
    spec = tmp_path / "spec.tangle"
    spec.write_text(text.replace('"rows.csv"', f'"{name}"'))
    return check_spec(parse(spec.read_text(), str(spec)))


def errors(checked) -> list[tuple]:
    return [(d.code, d.span.line, d.span.col, d.message) for d in checked.errors]


# ---- language ---------------------------------------------------------------------------------------

def test_a_branch_names_its_own_field_and_other_branch_forms_still_parse():
    spec = parse("route x -> [a | b: m from img | c from x] by s -> [p | stop: _] by s1, s2 -> d\n", "t.tangle")
    (route,) = spec.statements
    a, b, c = route.stages[0].branches
    assert (a.source, b.module.text, b.source.text, c.source.text) == (None, "m", "img", "x")
    assert (b.source.span.line, b.source.span.col, b.span.col, b.span.end_col) == (1, 27, 17, 30)
    p, stop = route.stages[1].branches
    assert stop.identity and stop.source is None and p.source is None


def test_the_spec_checks_without_e117_or_e128():
    checked = checked_spec()
    assert errors(checked) == []
    g = checked.graph
    assert g.encoded_field("pixels") == "img" and g.encoded_field("binary") == "x"
    edge = g.edge("img", "pixels")
    assert edge["mux"] == g.edge("x", "binary")["mux"] and edge["value"] == "pixels"
    assert g.field_readers("img") == {"encoding": {"pixels"}}
    assert g.field_readers("x") == {"encoding": {"binary", "decimal"}}
    needs = FieldNeeds(checked, with_targets=False)
    assert needs.optional == ["x", "img"]
    assert needs.needed({"encoding": 2, "op": 0}) == {"img"} and needs.needed({"encoding": 1, "op": 1}) == {"x"}
    assert FieldNeeds(checked).optional == ["img"]  # the target reads x: every row carries it
    assert len(g.routes()) == 6


def test_a_branch_reading_the_wrong_field_is_e117_at_the_branch_with_a_hint():
    checked = checked_spec(SPEC.replace("pixels from img]", "pixels]"))
    (diag,) = checked.errors
    assert (diag.code, diag.span.line, diag.span.col) == ("E117", ROUTE_LINE, 32)
    assert "vector(4) needs a vector(4) field, but 'x' is int 0..3" in diag.message
    assert diag.hints == ["a branch may read its own field: `pixels from img`"]
    assert not any(d.code == "E128" for d in checked.diagnostics)

    checked = checked_spec(SPEC.replace("[binary | decimal |", "[binary | decimal from img |"))
    (diag,) = checked.errors
    assert (diag.code, diag.span.line, diag.span.col) == ("E117", ROUTE_LINE, 22)
    assert "onehot(4) holds ints 0..3, but 'img' is vector(4)" in diag.message
    assert diag.hints == ["a branch may read its own field: `decimal from x`"]


def test_unknown_and_misplaced_sources():
    assert errors(checked_spec(SPEC.replace("from img", "from imgg"))) == [
        ("E101", ROUTE_LINE, 44, "unknown input field 'imgg'")]
    assert checked_spec(SPEC.replace("from img", "from imgg")).errors[0].hints == ["did you mean 'img'?"]
    assert errors(checked_spec(SPEC.replace("from img", "from plus1")))[0][3] == \
        "unknown input field 'plus1' ('plus1' is a module, not an input field)"
    later = errors(checked_spec(SPEC.replace("times2] by op", "times2 from img] by op")))
    assert [(code, line) for code, line, _, _ in later] == [("E135", ROUTE_LINE)]
    assert "only the first stage of a route reads fields" in later[0][3]
    assert errors(checked_spec(SPEC.replace("[binary |", "[binary from x |"))) == []  # the route's own source


def test_from_on_an_identity_branch_or_a_chain_is_e131():
    chain = SPEC.replace("select op: plus1 | times2",
                         "select op: plus1 | times2 | stop\nselect op2: plus1 | times2 | stop")
    chain = chain.replace("[plus1 | times2] by op", "[plus1 | times2 | stop: _ from img] by op, op2").replace(
        "target y: int 0..3 from data",
        "target y = fold v from x by op, op2 { plus1: (v + 1) % 4, times2: (v * 2) % 4, stop: v }")
    assert [e[0] for e in errors(checked_spec(chain))] == ["E135"]
    in_chain = chain.replace("stop: _ from img", "stop: _").replace("[plus1 |", "[plus1 from img |")
    assert [e[0] for e in errors(checked_spec(in_chain))] == ["E135"]


def test_graph_text_and_cli_show_the_field_edge(tmp_path):
    text = describe(checked_spec().graph)
    assert "input  img: vector(4)\n       └─> pixels" in text
    assert "mux    [binary | decimal | pixels from img] by encoding" in text
    checked_spec(SPEC, tmp_path)
    proc = call_tanglec("graph", str(tmp_path / "spec.tangle"))
    assert proc.returncode == 0, proc.stderr
    assert "input  img: vector(4)\n       └─> pixels" in proc.stdout
    assert "pixels → times2" in proc.stdout


# ---- codegen ----------------------------------------------------------------------------------------

def test_each_branch_is_fed_its_own_field_under_every_strategy():
    from tanglec.backend.codegen import build_model, module_layers, serving_model

    checked = checked_spec()
    rng = np.random.default_rng(0)
    batch = {"x": np.array([1, 2, 3, 0, 1, 2], np.int32), "img": rng.normal(size=(6, 4)).astype(np.float32),
             "encoding": np.array([0, 1, 2, 2, 0, 2], np.int32), "op": np.array([0, 1, 0, 1, 1, 0], np.int32)}
    outputs = {}
    for strategy in ("where", "partition", "gather", "stacked"):
        model = build_model(checked, mux=strategy, seed=3)
        assert set(serving_model(checked, model).input) == {"x", "img", "encoding", "op"}
        outputs[strategy] = np.asarray(model(batch)["to_decimal"])
        if strategy == "where":
            parts = module_layers(model)
            latent = parts["pixels"](batch["img"][2:3])
            expected = parts["to_decimal"](parts["plus1"](latent))
            np.testing.assert_allclose(outputs[strategy][2:3], expected, atol=1e-5)
    for strategy, out in outputs.items():
        np.testing.assert_allclose(out, outputs["where"], atol=1e-5, err_msg=strategy)


# ---- data -------------------------------------------------------------------------------------------

def test_rows_carry_only_the_fields_their_route_reads(tmp_path):
    examples = build_examples(checked_spec(SPEC, tmp_path))
    assert examples.present["x"].tolist() == [True, True, False, False]
    assert examples.present["img"].tolist() == [False, False, True, True]
    assert examples.columns["x"].tolist() == [1, 2, 0, 0]  # filled with a neutral value
    assert examples.columns["img"][0].tolist() == [0, 0, 0, 0]
    assert examples.columns["img"][2].tolist() == [0, 0, 1, 0]
    taken = examples.take(np.array([3, 0]))
    assert {k: v.tolist() for k, v in taken.present.items()} == {"x": [False, True], "img": [True, False]}


def test_jsonl_rows_may_leave_out_or_null_a_field_their_route_does_not_read(tmp_path):
    lines = [json.dumps(r) for r in ({"x": 1, "encoding": "binary", "op": "plus1", "y": 2},
                                     {"x": 2, "img": None, "encoding": "decimal", "op": "times2", "y": 0},
                                     {"img": [0, 0, 1, 0], "encoding": "pixels", "op": "plus1", "y": 3})]
    examples = build_examples(checked_spec(SPEC, tmp_path, lines, "rows.jsonl"))
    assert {k: v.tolist() for k, v in examples.present.items()} == {
        "x": [True, True, False], "img": [False, False, True]}
    lines.append(json.dumps({"x": 1, "encoding": "pixels", "op": "plus1", "y": 2}))
    with pytest.raises(DataError) as err:
        build_examples(checked_spec(SPEC, tmp_path, lines, "rows.jsonl"))
    (diag,) = err.value.diagnostics
    assert (diag.code, diag.span.line, diag.span.col) == ("E119", 4, 1)
    assert diag.message == "img: missing, and this row's route (encoding=pixels) reads it"


def test_a_streamed_file_keeps_the_presence_of_its_sample(tmp_path):
    examples = build_examples(checked_spec(SPEC.replace('"rows.csv"', '"rows.csv" stream always'), tmp_path))
    assert examples.stream is not None
    assert {k: v.tolist() for k, v in examples.present.items()} == {
        "x": [True, True, False, False], "img": [False, False, True, True]}
    x, _, _ = examples.stream.probe()
    assert set(x) >= {"x", "img", "encoding", "op"}


def test_a_field_a_target_reads_is_needed_on_every_row(tmp_path):
    spec = SPEC.replace("target y: int 0..3 from data", EXPR_TARGET)
    with pytest.raises(DataError) as err:
        build_examples(checked_spec(spec, tmp_path, [r.rsplit(",", 1)[0] for r in GOOD_ROWS]))
    assert [(d.span.line, d.span.col, d.message) for d in err.value.diagnostics] == [
        (row, 1, "x: missing, and the targets are computed from it on every row") for row in (4, 5)]
    examples = build_examples(checked_spec(spec, tmp_path, ["1,,binary,plus1", "3,0 0 0 1,pixels,times2"]))
    assert examples.present == {"img": examples.present["img"]} and examples.present["img"].tolist() == [False, True]
    assert examples.targets["y"].tolist() == [2, 2]


def test_a_query_names_only_the_fields_its_route_reads():
    checked = checked_spec(SPEC.replace("target y: int 0..3 from data", EXPR_TARGET))
    columns = parse_fields(checked, {"encoding": "pixels", "op": "plus1", "img": "0 0,1 0"})
    assert set(columns) == {"encoding", "op", "img"} and columns["img"].tolist() == [[0, 0, 1, 0]]
    with pytest.raises(TangleError) as err:
        parse_fields(checked, {"encoding": "pixels", "op": "plus1", "x": "2"})
    (diag,) = err.value.diagnostics
    assert diag.message == "missing value for 'img'"
    assert diag.hints == ['give it as img=<value>: vector(4), 4 numbers separated by spaces or commas: img="0 0 0 0"']


def test_a_table_to_predict_may_leave_out_what_a_row_does_not_read():
    from tanglec.pipeline import predict_columns

    checked = checked_spec(SPEC.replace("target y: int 0..3 from data", EXPR_TARGET))
    columns = predict_columns(checked, {"encoding": ["pixels", "binary"], "op": ["plus1", "times2"],
                                        "x": [None, 2], "img": [[0, 0, 1, 0], None]})
    assert columns["x"].tolist() == [0, 2] and columns["img"].tolist() == [[0, 0, 1, 0], [0, 0, 0, 0]]
    assert predict_columns(checked, {"encoding": ["binary"], "op": ["plus1"], "x": [3]})["img"].shape == (1, 4)
    with pytest.raises(TangleError) as err:
        predict_columns(checked, {"encoding": ["pixels"], "op": ["plus1"], "x": [1]})
    assert [d.message for d in err.value.diagnostics] == [
        "row 0: img: missing, and this row's route (encoding=pixels) reads it"]


def test_predict_writes_an_absent_field_as_an_empty_cell(tmp_path):
    from tanglec.data import predictions

    checked = checked_spec(SPEC.replace("target y: int 0..3 from data", EXPR_TARGET), tmp_path,
                           ["1,,binary,plus1", ",0 0 1 0,pixels,plus1"])
    (chunk,) = predictions.reader(checked, tmp_path / "rows.csv", skip_bad=False).chunks()
    outputs = {"to_decimal": np.eye(4, dtype=np.float32)[[2, 3]]}
    rows = predictions.rows(checked, chunk, outputs)
    assert [row[:4] for row in rows] == [["1", "", "binary", "plus1"], ["", "0 0 1 0", "pixels", "plus1"]]
    assert [row[4] for row in rows] == ["2", "3"]


# ---- bad image cells through the CLI (acceptance 4) ------------------------------------------------

@pytest.mark.parametrize("row, col, message", [
    (",0 0 1,pixels,plus1,2", 2, "img: 3 values, expected 4"),
    (",0 nan 1 0,pixels,plus1,2", 2, "img: a vector holds finite numbers only"),
    (",0 a 1 0,pixels,plus1,2", 2, "img: a vector holds numbers only"),
    ("1,,pixels,plus1,2", 3, "img: missing, and this row's route (encoding=pixels) reads it"),
], ids=["wrong-length", "nan", "not-a-number", "route-field-missing"])
def test_a_bad_image_row_stops_compile_and_writes_nothing(tmp_path, row, col, message):
    checked_spec(SPEC, tmp_path, GOOD_ROWS + [row])
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = call_tanglec("compile", str(tmp_path / "spec.tangle"), "-o", str(tmp_path / "run"))
    assert proc.returncode == 1, proc.stderr
    assert f"{tmp_path / 'rows.csv'}:6:{col}: error[E119]: {message}" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no run directory


# ---- training ---------------------------------------------------------------------------------------

PIXELS = """\
input x: int 0..9
input img: vector(10)
select encoding: binary | decimal | pixels
select op: plus1 | times2

module binary    : bits(4)    -> latent(12) = dense 32 relu, dense 12
module decimal   : onehot(10) -> latent(12) = dense 32 relu, dense 12
module pixels    : vector(10) -> latent(12) = dense 32 relu, dense 12
module plus1     : latent(12) -> latent(12) = dense 32 relu, dense 12
module times2    : latent(12) -> latent(12) = dense 32 relu, dense 12
module to_decimal: latent(12) -> onehot(10) = dense 32 relu, dense 10

route x -> [binary | decimal | pixels from img] by encoding -> [plus1 | times2] by op -> to_decimal

target y = match op { plus1: (x + 1) % 10, times2: (x * 2) % 10 }
decode to_decimal as y

data file "rows.csv"
train steps 300 batch 64 adam 0.01 seed 0
"""


def test_an_image_encoder_trains_to_every_route(tmp_path):
    """`pixels from img`, img a noisy one-hot of x: every route exact after a few hundred steps."""
    from tanglec import pipeline

    rng = np.random.default_rng(0)
    lines = ["x,img,encoding,op"]
    for _ in range(2):
        for x in range(10):
            for encoding in ("binary", "decimal", "pixels"):
                for op in ("plus1", "times2"):
                    img = " ".join(f"{v:.3f}" for v in np.eye(10)[x] + rng.uniform(-0.1, 0.1, 10)) \
                        if encoding == "pixels" else ""
                    lines.append(f"{x},{img},{encoding},{op}")
    (tmp_path / "rows.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "spec.tangle").write_text(PIXELS)
    pipeline.train(tmp_path / "spec.tangle", tmp_path / "run")
    run = pipeline.open_run(tmp_path / "run")
    report = run.evaluate()
    exact = {r["name"]: r["accuracy"] for r in report["routes"]}
    assert len(exact) == 6 and all(v == 1.0 for v in exact.values()), exact
    answer = run.query(encoding="pixels", op="times2", img=" ".join(["0"] * 3 + ["1"] + ["0"] * 6))
    assert [a["value"] for a in answer["answers"]] == [6]
