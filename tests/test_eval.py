"""`tanglec eval`: a new data file, per-route and per-decoder metrics, wrong answers at file:row, a PNG;
the decoder tolerance as the one rule of eval, query, predict and training; the stratified split."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import tanglec
from support import SPECS, call_tanglec

HALF = """\
input x: int 0..9
module enc : onehot(10) -> latent(8) = dense 16 relu, dense 8
module half: latent(8)  -> scalar    = dense 16 relu, dense 1
route x -> enc -> half
target y = x / 2
decode half as y tolerance 0.1
data enumerate
train steps 60 adam 0.01 seed 0
"""


@pytest.fixture(scope="module")
def gates_run(tmp_path_factory):
    """specs/gates.tangle trained briefly (20 steps), so some answers are wrong."""
    folder = tmp_path_factory.mktemp("gates")
    shutil.copytree(SPECS / "data", folder / "data")
    shutil.copy(SPECS / "gates.tangle", folder / "gates.tangle")
    proc = call_tanglec("compile", str(folder / "gates.tangle"), "-o", str(folder / "run"), "--steps", "20")
    assert proc.returncode == 0, proc.stderr
    return folder


@pytest.fixture(scope="module")
def half_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("half")
    (folder / "half.tangle").write_text(HALF)
    proc = call_tanglec("compile", str(folder / "half.tangle"), "-o", str(folder / "run"), "--json")
    assert proc.returncode == 0, proc.stderr
    (folder / "compile.json").write_text(proc.stdout)
    return folder


def _new_csv(folder):
    """Gates rows the run never saw as a file: every pair for `xor`, a few for `and`."""
    lines = ["pair,gate,out"]
    for a in range(8):
        for b in range(8):
            bits = " ".join(format(a, "03b") + format(b, "03b"))
            lines.append(f"{bits},xor,{a ^ b}")
            if a == b:
                lines.append(f"{bits},and,{a & b}")
    path = folder / "new.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_eval_on_a_new_csv_reports_routes_confusion_and_failures_at_file_row(gates_run):
    csv = _new_csv(gates_run)
    proc = call_tanglec("eval", str(gates_run / "run"), "--data", str(csv), "--failures", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    routes = {r["name"]: r for r in report["routes"]}
    assert routes["reader → xor"]["cases"] == 64 and routes["reader → and"]["cases"] == 8
    assert routes["reader → or"]["cases"] == 0
    for name in ("to_bits", "to_value"):
        d = report["decoders"][name]
        matrix = np.array(d["confusion"]["matrix"])
        assert matrix.sum() == 72 and np.trace(matrix) == d["exact"]
    wrong = report["failures"]
    assert 0 < len(wrong) <= 3, "20 training steps leave wrong answers"
    lines = csv.read_text().splitlines()
    for f in wrong:
        where, line = f["where"].rsplit(":", 1)
        assert where == str(csv)
        assert lines[int(line) - 1].endswith(f",{f['expected']}")
    text = call_tanglec("eval", str(gates_run / "run"), "--data", str(csv), "--failures", "3")
    assert "rows: expected, columns: answered" in text.stdout and f"{csv}:" in text.stdout


def test_eval_plot_writes_a_png_and_refuses_to_overwrite_a_foreign_file(gates_run, tmp_path):
    png = tmp_path / "confusion.png"
    proc = call_tanglec("eval", str(gates_run / "run"), "--plot", str(png))
    assert proc.returncode == 0, proc.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    mine = tmp_path / "notes.txt"
    mine.write_text("keep me")
    proc = call_tanglec("eval", str(gates_run / "run"), "--plot", str(mine))
    assert proc.returncode == 1 and "E192" in proc.stderr and mine.read_text() == "keep me"


def test_eval_data_problems_are_positioned_in_the_file(gates_run, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("pair,gate,out\n0 0 0 0 0 0,nand,0\n")
    proc = call_tanglec("eval", str(gates_run / "run"), "--data", str(bad))
    assert proc.returncode == 1 and f"{bad}:2:" in proc.stderr and "E119" in proc.stderr
    proc = call_tanglec("eval", str(gates_run / "run"), "--data", str(tmp_path / "missing.csv"))
    assert proc.returncode == 1 and "E119" in proc.stderr


def test_a_regression_decoder_reports_mae_and_rmse(half_run):
    proc = call_tanglec("eval", str(half_run / "run"), "--json")
    d = json.loads(proc.stdout)["decoders"]["half"]
    assert d["tolerance"] == 0.1 and d["cases"] == 10 and "confusion" not in d
    assert 0 <= d["mae"] <= d["rmse"]
    text = call_tanglec("eval", str(half_run / "run")).stdout
    assert "MAE" in text and "RMSE" in text and "tolerance 0.1" in text


def test_eval_query_and_predict_agree_on_the_same_rows(half_run):
    """One tolerance rule: the rows eval lists as wrong are exactly those query marks ✗ and the API's
    predict + correct marks False, with the same values; `tanglec predict` answers the same numbers."""
    run = half_run / "run"
    report = json.loads(call_tanglec("eval", str(run), "--failures", "10", "--json").stdout)
    eval_wrong = {f["row"]: f["value"] for f in report["failures"]}
    trained = json.loads((half_run / "compile.json").read_text())  # training's exactness, same rows
    assert (trained["exact"], trained["cases"]) == (report["exact"], report["cases"]) == (10 - len(eval_wrong), 10)
    right = [x for x in range(10) if x not in eval_wrong]
    queried = {}
    for x in sorted(eval_wrong)[:2] + right[:2]:  # each query loads TensorFlow: a few rows of each kind
        answer = json.loads(call_tanglec("query", str(run), f"x={x}", "--json").stdout)["answers"][0]
        queried[x] = (answer["value"], answer["correct"])
        assert answer["correct"] == (x not in eval_wrong)
        if x in eval_wrong:
            assert answer["value"] == pytest.approx(eval_wrong[x], abs=1e-5)
    assert eval_wrong, "60 steps leave a few answers outside 0.1"
    code = ("import json, tanglec; run = tanglec.open_run(%r); a = run.predict({'x': list(range(10))}); "
            "ok = run.correct(a, {'y': [x / 2 for x in range(10)]}); "
            "print(json.dumps([[float(v) for v in a['half']], [bool(v) for v in ok['half']]]))") % str(run)
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    values, ok = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [x for x in range(10) if not ok[x]] == sorted(eval_wrong)
    for x, (value, _) in queried.items():
        assert values[x] == pytest.approx(value, abs=1e-5)
    rows = half_run / "rows.csv"  # `tanglec predict` on the same rows gives the same numbers
    rows.write_text("x\n" + "".join(f"{x}\n" for x in range(10)))
    predicted = call_tanglec("predict", str(run), str(rows))
    assert predicted.returncode == 0, predicted.stderr
    header, *lines = predicted.stdout.strip().splitlines()
    column = header.split(",").index("half")
    assert [float(line.split(",")[column]) for line in lines] == pytest.approx(values, abs=1e-5)


def test_tolerance_is_checked(write_spec):
    bad = HALF.replace("tolerance 0.1", "tolerance -1")
    proc = call_tanglec("check", str(write_spec(bad)))
    assert proc.returncode == 1 and "E115" in proc.stderr and "tolerance takes a number >= 0" in proc.stderr
    onehot = HALF.replace("scalar   ", "onehot(5)").replace("dense 1\n", "dense 5\n").replace("x / 2", "x // 2")
    proc = call_tanglec("check", str(write_spec(onehot)))
    assert proc.returncode == 1 and "a tolerance applies only to scalar and vector outputs" in proc.stderr


def test_the_evaluation_split_is_stratified_by_route(tmp_path):
    """Each route with two or more rows gives its share (at least one) of evaluation rows."""
    counts = {"and": 9, "or": 2, "xor": 30}
    lines = ["pair,gate,out"] + [f"0 0 0 0 0 0,{gate},0" for gate, n in counts.items() for _ in range(n)]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "gates.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "gates.tangle").write_text((SPECS / "gates.tangle").read_text())
    proc = call_tanglec("compile", str(tmp_path / "gates.tangle"), "-o", str(tmp_path / "run"), "--steps", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    routes = {r["selection"]["gate"]: r for r in json.loads(proc.stdout)["routes"]}
    assert {g: r["cases"] for g, r in routes.items()} == {"and": 2, "or": 1, "xor": 8}
    assert {g: r["training_rows"] for g, r in routes.items()} == {"and": 7, "or": 1, "xor": 22}


def test_eval_data_is_scored_a_chunk_at_a_time_with_the_figures_of_the_whole_file(gates_run):
    """`eval --data` reads the file in chunks (bounded memory): chunks of 7 rows give the report one
    chunk gives, failures and their rows included; a bad row in a later chunk is E119 at its cell."""
    from tanglec import pipeline

    run = gates_run / "run"
    checked, rows = pipeline.evaluation_inputs(run, _new_csv(gates_run))
    model = pipeline.load_run_model(run, checked)
    whole = pipeline.evaluate(checked, rows, model, failures=50)
    rows.chunk_rows = 7
    assert pipeline.evaluate(checked, rows, model, failures=50) == whole
    assert whole["cases"] == 72 and whole["failures"] and whole["failures"][-1]["row"] > 7
    bad = gates_run / "late_bad.csv"
    bad.write_text(_new_csv(gates_run).read_text() + "0 0 0 0 0 0,nand,0\n")
    proc = call_tanglec("eval", str(run), "--data", str(bad), "--json")
    assert proc.returncode == 1 and json.loads(proc.stdout)["diagnostics"][0]["code"] == "E119"
    assert f"{bad}:74:" in call_tanglec("eval", str(run), "--data", str(bad)).stderr


TWO_TASKS = """\
input x: int 0..9
input v: vector(3)
select task: digit | vec
module enc : onehot(10) -> latent(8) = dense 16 relu, dense 8
module venc: vector(3)  -> latent(8) = dense 16 relu, dense 8
module to_y: latent(8)  -> onehot(10) = dense 10
module to_w: latent(8)  -> onehot(10) = dense 10
route x -> [digit: enc | vec: venc from v] by task -> [digit: to_y | vec: to_w] by task
target y: int 0..9 from data
target w: int 0..9 from data
decode to_y as y
decode to_w as w
data file "rows.csv" eval 0.5 seed 0
train steps 5 seed 0
"""


def test_a_target_the_rows_route_does_not_decode_may_be_left_out_and_is_never_scored(tmp_path):
    """`w` is empty on `digit` rows (and `y` on `vec` rows): no dummy value is trained on, kept, scored
    or listed as a failure; left out on a row whose route decodes it, it is E119."""
    rows = ["x,v,task,y,w"] + [f"{x},,digit,{(x + 1) % 10}," for x in range(10)] + \
        [f",{x} 1 0,vec,,{x}" for x in range(10)]
    (tmp_path / "rows.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "two.tangle").write_text(TWO_TASKS)
    proc = call_tanglec("compile", str(tmp_path / "two.tangle"), "-o", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    kept = [json.loads(line) for line in (tmp_path / "run" / "eval_rows.jsonl").read_text().splitlines()]
    assert kept and all(set(r) == ({"x", "task", "y"} if r["task"] == "digit" else {"v", "task", "w"}) for r in kept)
    report = json.loads(call_tanglec("eval", str(tmp_path / "run"), "--data", str(tmp_path / "rows.csv"),
                                     "--failures", "40", "--json").stdout)
    assert {d: r["cases"] for d, r in report["decoders"].items()} == {"to_y": 10, "to_w": 10}
    assert report["failures"] and all(
        (f["decoder"], f["route"]) in (("to_y", "enc"), ("to_w", "venc")) for f in report["failures"])
    (tmp_path / "bad.csv").write_text("x,v,task,y,w\n3,,digit,,5\n")
    proc = call_tanglec("eval", str(tmp_path / "run"), "--data", str(tmp_path / "bad.csv"))
    assert proc.returncode == 1 and "bad.csv:2:10: error[E119]: y: missing, and this row's route " \
                                   "(task=digit) decodes it" in proc.stderr


def test_a_category_targets_answers_are_shown_by_name(tmp_path):
    """eval's confusion labels and failures, query's answer and predict's cells name a category
    target's values (they showed the value's index)."""
    spec = HALF.replace("scalar   ", "onehot(3)").replace("dense 1\n", "dense 3\n") \
        .replace("target y = x / 2", "target y: category low | mid | high from data") \
        .replace(" tolerance 0.1", "").replace("data enumerate", 'data file "rows.csv"').replace("steps 60", "steps 3")
    (tmp_path / "rows.csv").write_text("x,y\n" + "".join(f"{x},{['low', 'mid', 'high'][x // 4]}\n" for x in range(10)))
    (tmp_path / "cat.tangle").write_text(spec)
    proc = call_tanglec("compile", str(tmp_path / "cat.tangle"), "-o", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    run = str(tmp_path / "run")
    report = json.loads(call_tanglec("eval", run, "--failures", "10", "--json").stdout)
    names = {"low", "mid", "high"}
    assert set(report["decoders"]["half"]["confusion"]["labels"]) <= names
    assert report["failures"], "3 steps leave wrong answers"
    assert all({f["value"], f["expected"]} <= names for f in report["failures"])
    assert json.loads(call_tanglec("query", run, "x=9", "--json").stdout)["answers"][0]["value"] in names
    predicted = call_tanglec("predict", run, str(tmp_path / "rows.csv")).stdout.splitlines()
    assert predicted[0] == "x,half,half_confidence" and {line.split(",")[1] for line in predicted[1:]} <= names
    api = tanglec.open_run(run)  # the Python API answers by name too, and scores names
    answers = api.predict({"x": list(range(10))})
    assert [a for a in answers["half"]] == [line.split(",")[1] for line in predicted[1:]]
    right = api.correct(answers, {"y": [["low", "mid", "high"][x // 4] for x in range(10)]})
    assert report["decoders"]["half"]["cases"] == 10
    assert int(right["half"].sum()) == report["decoders"]["half"]["exact"]
