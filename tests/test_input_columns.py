"""`input NAME: TYPE from columns`: a field read from columns of other names, a vector spread over
several (a run `pixel0..pixel63` too), as data sets lay their files out: checked (E136), read from CSV and
JSONL with each bad cell at its own column, streamed the same as read whole, written back by `predict`
and kept by a run; the iris data set, one column per reading, learnt through the CLI."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from tanglec.data.examples import whole_file
from tanglec.data.rows import DataError
from tanglec.lang.fmt import format_source
from tanglec.lang.parser import parse
from tanglec.pipeline import check_spec
from tanglec.spec.columns import source_columns

from support import call_tanglec

SPEC = """\
input m: vector(3) from "a b", c1..c2
input k: int 0..9 from "the k"
select view: whole | k_only
module enc: vector(3) -> latent(4) = dense 4
module kenc: onehot(10) -> latent(4) = dense 4
module dec: latent(4) -> onehot(2) = dense 2
route m -> [whole: enc | k_only: kenc from k] by view -> dec
target y: int 0..1 from data
decode dec as y
data file "rows.csv"
"""
ROWS = 'a b,c1,c2,the k,view,y\n1,2,3,4,whole,0\n,,,5,k_only,1\n0.5,-1,1e3,,whole,1\n'


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rows.csv").write_text(ROWS)


def checked(text: str = SPEC):
    return check_spec(parse(text, "spec.tangle"))


def errors(text: str) -> list[tuple[str, str, int, int]]:
    return [(d.code, d.message, d.span.line, d.span.col) for d in checked(text).diagnostics if d.is_error]


def read(text: str = SPEC):
    return whole_file(checked(text))


def problems(text: str = SPEC) -> list[str]:
    with pytest.raises(DataError) as err:
        read(text)
    return [f"{d.span.line}:{d.span.col} {d.message}" for d in err.value.diagnostics]


def test_columns_are_parsed_with_positions_and_runs_are_counted_up():
    decl = parse('input v: vector(6) from "x y", px08..px10, q\ninput z: float from a7..a9', "s").statements[0]
    assert [c.first.text for c in decl.columns] == ["x y", "px08", "q"]
    assert (decl.columns[1].span.col, decl.columns[1].span.end_col) == (32, 42)
    assert source_columns(decl) == ["x y", "px08", "px09", "px10", "q"]


def test_formatting_keeps_the_columns():
    source = 'input   v : vector(3)  from "a b" ,c1 .. c2\n'
    assert format_source(source, "s") == 'input v: vector(3) from "a b", c1..c2\n'


@pytest.mark.parametrize("field, message, col", [
    ("input m: vector(3) from c1..c2", "vector(3) is read from 3 columns (or one holding all 3 numbers); "
                                       "`from` names 2", 25),
    ("input m: int 0..9 from a, b", "int 0..9 is read from one column; `from` names 2", 24),
    ('input m: vector(3) from x1, x1..x2', "column 'x1' is named twice", 29),
    ("input m: vector(3) from a1..b3", "'a1..b3' is not a run of numbered columns", 25),
    ("input m: vector(3) from x3..x1", "'x3..x1' counts down", 25),
    ("input m: vector(3) from x01..x3", "the same number of digits", 25),
    ("input m: vector(3) from x1..x1000001", "`from` names 1,000,001", 25),
    ("input m: vector(3) from x1..x" + "9" * 5000, "is not a run of numbered columns", 25),
])
def test_columns_that_cant_be_read_are_E136_at_their_place(field, message, col):
    found = errors(SPEC.replace(SPEC.splitlines()[0], field))
    assert [(c, line, at) for c, m, line, at in found if message in m] == [("E136", 1, col)], found


def test_a_vector_spread_over_columns_and_a_renamed_field_are_read_as_written():
    chunk = read()
    np.testing.assert_array_equal(chunk.inputs["m"], np.array([[1, 2, 3], [0, 0, 0], [0.5, -1, 1000]], np.float32))
    assert chunk.inputs["k"].tolist()[:2] == [4, 5]
    assert chunk.present["m"].tolist() == [True, False, True]
    assert chunk.present["k"].tolist() == [True, True, False]


def test_one_column_holding_the_whole_vector_still_reads():
    (open("rows.csv", "w")).write('vec,the k,view,y\n1 2 3,4,whole,0\n')
    chunk = read(SPEC.replace('from "a b", c1..c2', "from vec"))
    assert chunk.inputs["m"].tolist() == [[1, 2, 3]]


@pytest.mark.parametrize("rows, expected", [
    (ROWS.replace("1,2,3,4", "1,x,3,4"), "2:3 m: column c1: 'x' is not a number"),
    (ROWS.replace("1,2,3,4", "1,,3,4"), "2:3 m: column c1: missing, and this row's other columns of it are not"),
    (ROWS.replace("0.5,-1,1e3", "0.5,-1,inf"), "4:8 m: column c2: inf is not a finite number"),
    (ROWS.replace("0.5,-1,1e3", ",,"), "4:1 m: missing, and this row's route (view=whole) reads it"),
    (ROWS.replace("a b,c1", "a b,cx"), "1:1 missing column: c1"),
])
def test_a_bad_cell_of_a_spread_vector_is_E119_at_its_own_column(rows, expected):
    open("rows.csv", "w").write(rows)
    assert problems() == [expected]


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def test_jsonl_reads_the_columns_as_keys():
    spec = SPEC.replace('"rows.csv"', '"rows.jsonl"')
    good = [{"a b": 1, "c1": 2, "c2": 3, "the k": 4, "view": "whole", "y": 0},
            {"the k": 5, "view": "k_only", "y": 1}]
    open("rows.jsonl", "w").write(jsonl(good))
    chunk = read(spec)
    assert chunk.inputs["m"].tolist() == [[1, 2, 3], [0, 0, 0]] and chunk.present["m"].tolist() == [True, False]
    open("rows.jsonl", "w").write(jsonl([{**good[0], "c1": "2"}, {**good[0], "c2": None}]))
    assert problems(spec) == ['1:12 c1: expected a number, got a string ("2")',
                              "2:1 m: some of its columns are missing, and others are not"]


def test_a_streamed_read_gives_what_a_whole_read_gives(tmp_path):
    rng = np.random.default_rng(0)
    with open("rows.csv", "w") as f:
        f.write("a b,c1,c2,the k,view,y\n")
        for i in range(3000):
            f.write(",".join(f"{v:.3f}" for v in rng.normal(size=3)) + f",{i % 10},whole,{i % 2}\n")
    from tanglec.data.reader import Reader

    chunks = list(Reader(checked(), chunk_rows=700).chunks())
    whole = read()
    np.testing.assert_array_equal(np.concatenate([c.inputs["m"] for c in chunks]), whole.inputs["m"])
    assert len(chunks) == 5


IRIS_SPEC = """\
input flower: vector(4) from "sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"
module measure: vector(4) -> latent(8) = standardize, dense 16 relu, dense 8
module to_species: latent(8) -> onehot(3) = dense 3
route flower -> measure -> to_species
target species: category setosa | versicolor | virginica from data
decode to_species as species
data file "iris.csv" eval 0.3 seed 0
train steps 400 batch 32 adam 0.01 seed 0
"""


def test_the_iris_data_set_as_published_trains_predicts_and_keeps_its_rows(tmp_path):
    """sklearn's iris, one column per reading under its own headers: read as it is, ≥ 85% held out."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    with open("iris.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow([*iris.feature_names, "species"])
        out.writerows([*x, iris.target_names[y]] for x, y in zip(iris.data.tolist(), iris.target))
    (tmp_path / "iris.tangle").write_text(IRIS_SPEC)
    compiled = call_tanglec("compile", "iris.tangle", "-o", "run", "--json", cwd=tmp_path)
    assert compiled.returncode == 0, compiled.stderr
    assert json.loads(compiled.stdout)["accuracy"] >= 0.85  # 41/45 here: four flowers of the two close species
    kept = [json.loads(line) for line in (tmp_path / "run" / "eval_rows.jsonl").read_text().splitlines()]
    assert len(kept) == 45 and set(kept[0]) == {*iris.feature_names, "species"}
    assert call_tanglec("eval", "run", cwd=tmp_path).returncode == 0
    predicted = call_tanglec("predict", "run", "iris.csv", cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    rows = list(csv.reader(predicted.stdout.splitlines()))
    assert rows[0] == [*iris.feature_names, "to_species", "to_species_confidence"]
    assert rows[1][:4] == ["5.1", "3.5", "1.4", "0.2"]
    right = sum(row[4] == iris.target_names[y] for row, y in zip(rows[1:], iris.target))
    assert right >= 0.9 * 150


UCI_SPEC = """\
input flower: vector(2) from "petal length", "petal width"
input size: category small | "very big"
select view: petals | sizes
module enc: vector(2) -> latent(4) = dense 4
module senc: sized -> latent(4) = dense 4
module to_class: latent(4) -> onehot(2) = dense 2
route flower -> [petals: enc | sizes: senc from size] by view -> to_class
target class: category "Iris-setosa" | "Iris-virginica" from data
target big = match size { small: 0, "very big": 1 }
decode to_class as class
codec sized: bits(2) table { small: 01, "very big": 10 }
data file "uci.csv"
"""


def test_category_values_as_the_data_spells_them_are_quoted_everywhere_they_are_named(tmp_path):
    (tmp_path / "uci.csv").write_text("petal length,petal width,size,view,class\n1.4,0.2,small,petals,Iris-setosa\n"
                                      "6.0,2.5, very big ,sizes,Iris-virginica\n")
    decl = parse(UCI_SPEC, "s").statements[7]
    assert [v.text for v in decl.type.values] == ["Iris-setosa", "Iris-virginica"]
    assert errors(UCI_SPEC) == []
    chunk = read(UCI_SPEC)
    assert chunk.data_targets["class"].tolist() == [0, 1] and chunk.inputs["size"].tolist() == [0, 1]
    formatted = format_source(UCI_SPEC, "s")
    assert 'category "Iris-setosa" | "Iris-virginica"' in formatted and '"very big": 1' in formatted
    assert format_source(formatted, "s") == formatted


@pytest.mark.parametrize("values", ['"" | b', '" a" | b', 'a | "b "'])
def test_a_quoted_category_value_that_no_cell_can_hold_is_E116(values):
    found = errors(UCI_SPEC.replace('small | "very big"', values))
    assert [c for c, m, _, _ in found if "empty or starts or ends with a space" in m] == ["E116"], found


def test_long_column_lists_fill_lines_of_the_formatters_width():
    columns = ", ".join(f"pixel_column_{i}" for i in range(40))
    formatted = format_source(f"input img: vector(40) from {columns}\n", "s")
    lines = formatted.splitlines()
    assert len(lines) == 7 and max(map(len, lines)) <= 120 and all(line.startswith("    ") for line in lines[1:])
    assert format_source(formatted, "s") == formatted
    assert parse(formatted, "s").statements[0].columns[39].first.text == "pixel_column_39"


def test_standardize_learns_from_the_rows_whose_route_runs_its_module(tmp_path):
    """Both views read the same columns here; the colour encoder's statistics are of the colour rows only."""
    from tanglec.backend.train import module_layers
    from tanglec.pipeline import load, prepare, train

    rows = ["a,b,view,y"] + [f"{i},{1000 + i},big,{i % 2}" for i in range(20)] + \
           [f"{i},{i * 2},small,{i % 2}" for i in range(20)]
    (tmp_path / "rows.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "two.tangle").write_text("""\
input pair: vector(2) from a, b
input same: vector(2) from a, b
select view: big | small
module big  : vector(2) -> latent(4) = standardize, dense 4
module small: vector(2) -> latent(4) = standardize, dense 4
module dec  : latent(4) -> onehot(2) = dense 2
route pair -> [big | small from same] by view -> dec
target y: int 0..1 from data
decode dec as y
data file "rows.csv" eval 0.25 seed 0
train steps 5
""")
    result = train(tmp_path / "two.tangle")
    examples = prepare(load(tmp_path / "two.tangle", training=True))
    trained = examples.train_index
    modules = module_layers(result.result.model)
    for module, view in (("big", 0), ("small", 1)):
        layer = next(x for x in modules[module].layers if x.name.startswith("standardize"))
        mine = trained[examples.columns["view"][trained] == view]
        np.testing.assert_allclose(layer.mean.numpy(), examples.columns["pair"][mine].mean(0), rtol=1e-5)


def test_a_target_may_be_read_from_a_column_of_another_name(tmp_path):
    (tmp_path / "rows.csv").write_text('a b,c1,c2,the k,view,Is it?\n1,2,3,4,whole,0\n,,,5,k_only,1\n')
    text = SPEC.replace("target y: int 0..1 from data", 'target y: int 0..1 from data "Is it?"')
    assert errors(text) == []
    assert read(text).data_targets["y"].tolist() == [0, 1]
    assert problems(text.replace('"Is it?"', "missing_one")) == ["1:1 missing column: missing_one"]
