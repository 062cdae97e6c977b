"""`compile --tensorboard`, `tanglec export`: a SavedModel queried in a fresh process (TensorFlow only)
answers exactly as `tanglec query` does; the Keras file loads with safe_mode; damaged runs are refused.
One arith training (with TensorBoard logging) serves every test here."""
from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

from support import ARITH
from tanglec.cli import cli

pytestmark = [pytest.mark.slow,  # Keras's own numpy-2 deprecation noise, not ours:
              pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")]

EXAMPLES = list(itertools.product(range(10), ["binary", "decimal"], ["plus1", "times2"]))


def invoke(*args):
    return CliRunner().invoke(cli, list(map(str, args)), catch_exceptions=False)


@pytest.fixture(scope="module")
def trained(arith_run):
    """(run, tensorboard dir, compile's JSON) of the session's one arith training."""
    assert arith_run.compiled["tensorboard"] == str(arith_run.board)
    return arith_run.run, arith_run.board, arith_run.compiled


def test_tensorboard_scalars(trained):
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    _, board, out = trained
    files = list(board.glob("events.out.tfevents.*"))
    assert files, "no event file written"
    scalars: dict[str, list[tuple[int, float]]] = {}
    for f in files:
        for record in tf.data.TFRecordDataset(str(f)):
            event = event_pb2.Event.FromString(record.numpy())
            for v in event.summary.value:
                assert v.metadata.plugin_data.plugin_name == "scalars"
                scalars.setdefault(v.tag, []).append((event.step, float(tf.make_ndarray(v.tensor))))
    routes = {f"accuracy/route/encoding={e},op={o}" for e in ("binary", "decimal") for o in ("plus1", "times2")}
    assert {"loss/to_binary", "loss/to_decimal", "loss/total", "accuracy/all"} | routes <= set(scalars)
    steps = [s for s, _ in scalars["loss/to_binary"]]
    assert steps == sorted(steps) and steps[-1] == out["steps_run"]
    assert scalars["accuracy/all"][-1][1] == pytest.approx(out["accuracy"])
    for route in out["routes"]:
        sel = ",".join(f"{k}={v}" for k, v in route["selection"].items())
        assert scalars[f"accuracy/route/{sel}"][-1][1] == pytest.approx(route["accuracy"])


def query_answers(run) -> dict:
    """What `tanglec query RUN x=.. encoding=.. op=..` answers, for every example (one model load)."""
    from tanglec.data.query import answers, parse_fields
    from tanglec.artifacts.run import load_checked, load_model
    from tanglec.backend.predict import predict_raw

    checked, _ = load_checked(run)
    model = load_model(run, checked)
    out = {}
    for x, enc, op in EXAMPLES:
        columns = parse_fields(checked, {"x": str(x), "encoding": enc, "op": op})
        out[(x, enc, op)] = {a.decoder: (a.value, a.confidence)
                             for a in answers(checked, columns, predict_raw(model, checked, columns))}
    return out


FRESH = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    served = tf.saved_model.load(sys.argv[1])
    serve = served.signatures["serving_default"]
    rows = json.loads(sys.argv[2])
    out = serve(x=tf.constant([r[0] for r in rows], tf.int32),
                encoding=tf.constant([r[1] for r in rows]), op=tf.constant([r[2] for r in rows]))
    result = {k: v.numpy().tolist() for k, v in out.items()}
    errors = []
    for bad in ({"x": [3], "encoding": ["binery"], "op": ["plus1"]}, {"x": [12], "encoding": ["binary"], "op": ["plus1"]}):
        try:
            serve(x=tf.constant(bad["x"], tf.int32), encoding=tf.constant(bad["encoding"]), op=tf.constant(bad["op"]))
            errors.append(None)
        except tf.errors.InvalidArgumentError as err:
            errors.append(err.message)
    inputs = {k: [v.dtype.name, v.shape.as_list()] for k, v in serve.structured_input_signature[1].items()}
    print(json.dumps({"outputs": result, "errors": errors, "inputs": inputs,
                      "tanglec_imported": any(m.startswith("tanglec") for m in sys.modules)}))
""")


def test_savedmodel_round_trip_in_a_fresh_process(trained, tmp_path):
    run, _, _ = trained
    base = tmp_path
    target = base / "exports" / "arith_savedmodel"
    r = invoke("export", run, "--format", "savedmodel", "-o", target, "--json")
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["ok"] and info["format"] == "savedmodel" and info["path"] == str(target)
    assert info["verified_rows"] == 40
    assert info["signature"]["inputs"]["encoding"] == {"dtype": "string", "shape": [None],
                                                       "values": ["binary", "decimal"]}
    assert set(info["signature"]["outputs"]) == {"to_binary", "to_binary.confidence", "to_binary.active",
                                                 "to_decimal", "to_decimal.confidence", "to_decimal.active"}
    assert (target / "saved_model.pb").is_file()
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]  # no temporary leftovers

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", FRESH, str(target), json.dumps(EXAMPLES)], capture_output=True,
                          text=True, timeout=240, cwd=base, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["tanglec_imported"] is False
    assert got["inputs"] == {"x": ["int32", [None]], "encoding": ["string", [None]], "op": ["string", [None]]}
    assert "encoding: a value is not one of binary | decimal" in got["errors"][0]
    assert "x: a value is outside 0..9" in got["errors"][1]

    want = query_answers(run)
    outputs = got["outputs"]
    for i, example in enumerate(EXAMPLES):
        for decoder, (value, confidence) in want[example].items():
            assert outputs[decoder][i] == value, (example, decoder)
            assert outputs[f"{decoder}.confidence"][i] == pytest.approx(confidence, rel=1e-5, abs=1e-6)
            assert outputs[f"{decoder}.active"][i] is True

    # the CLI's own query agrees on one example too
    r = invoke("query", run, "x=7", "encoding=binary", "op=times2", "--json")
    answers = {a["decoder"]: a["value"] for a in json.loads(r.stdout)["answers"]}
    i = EXAMPLES.index((7, "binary", "times2"))
    assert answers == {"to_binary": outputs["to_binary"][i], "to_decimal": outputs["to_decimal"][i]}

    # exporting again replaces the export in one step
    r = invoke("export", run, "-o", target, "--no-verify", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["verified_rows"] == 0 and (target / "saved_model.pb").exists()


def test_keras_export_loads_with_safe_mode(trained, tmp_path):
    import keras

    import tanglec.backend.codegen  # noqa: F401  registers tanglec>Encode and tanglec>Multiplexer
    from tanglec.artifacts.run import load_checked, load_model
    from tanglec.backend.predict import predict_raw

    run, _, _ = trained
    base = tmp_path
    target = base / "exports" / "arith.keras"
    r = invoke("export", run, "--format", "keras", "-o", target, "--json")
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["verified_rows"] == 40 and info["signature"]["outputs"]["to_decimal"]["raw"] is True
    loaded = keras.models.load_model(target, safe_mode=True)
    checked, _ = load_checked(run)
    original = load_model(run, checked)
    columns = {"x": np.arange(10).repeat(4), "encoding": np.tile([0, 0, 1, 1], 10), "op": np.tile([0, 1], 20)}
    want, got = predict_raw(original, checked, columns), predict_raw(loaded, checked, columns)
    for d in ("to_binary", "to_decimal"):
        np.testing.assert_allclose(got[d], want[d], rtol=1e-6, atol=1e-6)

    r = invoke("export", run, "--format", "keras", "-o", base / "exports" / "arith.h5")
    assert r.exit_code == 1 and "ending in .keras" in r.stderr
    assert not (base / "exports" / "arith.h5").exists()


def test_damaged_run_is_refused(trained, tmp_path):
    run, _, _ = trained
    base = tmp_path
    damaged = base / "damaged"
    shutil.copytree(run, damaged)
    with (damaged / "routes.json").open("a") as fh:
        fh.write(" ")
    target = base / "exports" / "damaged_savedmodel"
    r = invoke("export", damaged, "-o", target, "--json")
    assert r.exit_code == 1
    out = json.loads(r.stdout)
    assert out["ok"] is False and out["diagnostics"][0]["code"] == "E140"
    assert "routes.json" in out["diagnostics"][0]["message"] and not target.exists()
    r = invoke("export", base / "no_such_run")
    assert r.exit_code == 1 and "E140" in r.stderr


@pytest.mark.parametrize("codec", ["bits(5)", "gray(5)", "gray(12)", "onehot(7)", "scalar", "vector(3)"])
def test_tf_decoding_matches_codecs_decode(codec):
    """The SavedModel decodes with TensorFlow ops: same answers as tanglec.data.codecs.decode, bit for bit."""
    import tensorflow as tf

    from tanglec.lang import ast
    from tanglec.data import codecs
    from tanglec.artifacts.export import decode_tf

    kind, _, size = codec.partition("(")
    span = ast.Span("t", 1, 1, 1, 2)
    c = ast.Codec(ast.Name(kind, span), int(size[:-1]) if size else None, span)
    width = {"scalar": 1}.get(kind, c.size)
    rng = np.random.default_rng(0)
    raw = rng.normal(0, 4, (500, width)).astype(np.float32)
    raw[:20] = rng.choice(np.float32([0.0, -0.0, 1e-8, -1e-8, 80.0, -80.0]), (20, width))  # the edges
    want_value, want_conf = codecs.decode(c, raw)
    got_value, got_conf = decode_tf(c, tf.constant(raw))
    if want_conf is None:
        assert got_conf is None
        np.testing.assert_array_equal(np.asarray(got_value), want_value)
    else:
        assert np.asarray(got_value).dtype == np.int64
        np.testing.assert_array_equal(np.asarray(got_value), want_value)
        np.testing.assert_allclose(np.asarray(got_conf), want_conf, rtol=1e-6, atol=1e-7)
