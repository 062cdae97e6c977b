"""`standardize`: an encoder's input values scaled by their statistics over the training rows, fitted before
training, kept in the run (query and predict scale the same way), checked from the spec alone."""
from __future__ import annotations

import numpy as np
import pytest

from tanglec.lang.parser import parse
from tanglec.pipeline import check_spec
from tanglec.spec.check_limits import estimate_parameters


def spec(stack: str = "standardize, dense 16 relu, dense 8", extra: str = "") -> str:
    """Two readings per row, a thousand units apart in scale: the class is in the small one's sign."""
    return f"""\
input reading: vector(2)
module enc: vector(2) -> latent(8) = {stack}
module dec: latent(8) -> onehot(2) = dense 2
route reading -> enc -> dec
target label: int 0..1 from data
decode dec as label
data file "rows.csv" eval 0.25
train steps 150 batch 32 adam 0.01 seed 0
{extra}"""


@pytest.fixture(autouse=True)
def rows_csv(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    lines = ["reading,label"]
    for _ in range(400):
        label = int(rng.integers(2))
        big = 5000 + 1000 * rng.standard_normal()
        small = (0.002 if label else -0.002) + 0.0005 * rng.standard_normal()
        lines.append(f"{big:.4f} {small:.6f},{label}")
    (tmp_path / "rows.csv").write_text("\n".join(lines) + "\n")
    monkeypatch.chdir(tmp_path)


def errors(text: str) -> list[tuple[str, str]]:
    checked = check_spec(parse(text, "spec.tangle"))
    return [(d.code, d.message) for d in checked.diagnostics if d.is_error]


@pytest.mark.parametrize("stack", ["standardize, dense 16 relu, dense 8", "norm, dense 16 relu, dense 8",
                                   "standardize, norm, dense 16 relu, norm, dense 8"])
def test_standardize_first_in_an_encoder_checks_clean_and_the_estimate_counts_every_weight(stack):
    from tanglec.backend.codegen import module_model

    assert errors(spec(stack)) == []
    enc = check_spec(parse(spec(stack), "spec.tangle")).graph.modules["enc"]
    assert estimate_parameters(enc) == module_model(enc, seed=0).count_params()


@pytest.mark.parametrize("text, message", [
    (spec("dense 16 relu, standardize, dense 8"), "standardize must be the module's first layer"),
    (spec("standardize 3, dense 16 relu, dense 8"), "standardize takes no arguments"),
    (spec().replace("module dec: latent(8) -> onehot(2) = dense 2", "module dec: latent(8) -> onehot(2) = "
                                                                    "standardize, dense 2"),
     "standardize scales an input field's values, but 'dec' reads 'enc'"),
])
def test_misplaced_standardize_is_E111(text, message):
    assert [code for code, found in errors(text) if found.startswith(message)] == ["E111"]


def test_statistics_come_from_the_training_rows_that_carry_the_field():
    from tanglec.backend.standardize import Standardize

    layer = Standardize()
    layer.build((None, 3))
    layer.fit(np.array([[1.0, 10.0, 7.0], [3.0, 30.0, 7.0]]))
    np.testing.assert_allclose(layer.mean.numpy(), [2.0, 20.0, 7.0])
    np.testing.assert_allclose(layer.inverse_spread.numpy(), [1.0, 0.1, 1.0])  # a constant is centred only
    np.testing.assert_allclose(np.asarray(layer(np.array([[2.0, 40.0, 9.0]], np.float32))), [[0.0, 2.0, 2.0]])


def test_it_trains_what_raw_readings_do_not_and_the_run_keeps_its_statistics(tmp_path):
    from tanglec.pipeline import load, open_run, prepare, train

    (tmp_path / "scaled.tangle").write_text(spec())
    (tmp_path / "raw.tangle").write_text(spec("dense 16 relu, dense 8"))
    scaled = train(tmp_path / "scaled.tangle", tmp_path / "run")
    raw = train(tmp_path / "raw.tangle")
    accuracy = {name: result.metrics["history"][-1]["accuracy"] for name, result in (("scaled", scaled), ("raw", raw))}
    assert accuracy["scaled"] >= 0.95 and accuracy["raw"] <= 0.75, accuracy

    layer = next(layer for layer in scaled.result.model.get_layer("enc").layers if layer.name.startswith("standardize"))
    readings = np.array([[float(v) for v in line.split(",")[0].split()]
                         for line in (tmp_path / "rows.csv").read_text().split("\n")[1:] if line])
    train_rows = prepare(load(tmp_path / "scaled.tangle", training=True)).train_index
    np.testing.assert_allclose(layer.mean.numpy(), readings[train_rows].mean(0), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(layer.inverse_spread.numpy(), 1 / readings[train_rows].std(0), rtol=1e-3)

    run = open_run(tmp_path / "run")
    answers = run.predict({"reading": np.array([[5000.0, 0.002], [5000.0, -0.002]], np.float32)})
    assert answers["dec"].tolist() == [1, 0]


def test_an_init_runs_module_keeps_the_statistics_it_was_trained_with(tmp_path):
    from tanglec.pipeline import train

    (tmp_path / "base.tangle").write_text(spec().replace("steps 150", "steps 20"))
    base = train(tmp_path / "base.tangle", tmp_path / "base_run")
    shifted = "\n".join(line if i == 0 else f"{float(line.split()[0]) + 1000} {line.split(' ', 1)[1]}"
                        for i, line in enumerate((tmp_path / "rows.csv").read_text().strip().split("\n")))
    (tmp_path / "shifted.csv").write_text(shifted + "\n")
    transfer = spec().replace("steps 150", "steps 10").replace('"rows.csv"', '"shifted.csv"') + \
        'init "base_run"\nfreeze enc\n'
    (tmp_path / "transfer.tangle").write_text(transfer)
    moved = train(tmp_path / "transfer.tangle")

    def mean(result):
        enc = result.result.model.get_layer("enc")
        return next(layer for layer in enc.layers if layer.name.startswith("standardize")).mean.numpy()

    np.testing.assert_array_equal(mean(moved), mean(base))
    assert moved.metrics["modules"]["loaded"] == ["dec", "enc"]


def test_the_shipped_wine_csv_is_what_its_script_writes(tmp_path):
    pytest.importorskip("sklearn")
    from support import SPECS, rewrite_shipped_csv

    assert rewrite_shipped_csv("make_wine", tmp_path / "wine.csv") == (SPECS / "data" / "wine.csv").read_text()


def test_the_wine_spec_learns_both_views_of_real_readings_through_the_cli(tmp_path):
    import json

    from support import SPECS, call_tanglec

    run = tmp_path / "wine"
    assert call_tanglec("compile", str(SPECS / "wine.tangle"), "-o", str(run)).returncode == 0
    report = json.loads(call_tanglec("eval", str(run), "--json").stdout)
    accuracy = {route["name"]: route["accuracy"] for route in report["routes"]}
    assert set(accuracy) == {"chemistry", "colour_enc"} and min(accuracy.values()) >= 0.9, accuracy
