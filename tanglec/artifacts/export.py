"""`tanglec export RUN`: a trained run as a TensorFlow SavedModel or a Keras `.keras` file (imports TensorFlow).

SavedModel (`--format savedmodel`, a directory). Its `serving_default` signature takes the raw
fields by their spec names, exactly what `tanglec query` takes, one batch dimension first:

=====================  ===============================  ==========================================
field                  tensor                            example
=====================  ===============================  ==========================================
``int lo..hi``         int32 ``[batch]``                 ``x=tf.constant([7])``
``float``              float32 ``[batch]``               ``t=tf.constant([0.5])``
``vector(n)``          float32 ``[batch, n]``            ``v=tf.constant([[1., 2., 3.]])``
``category a | b``     string ``[batch]`` (value name)   ``color=tf.constant(["red"])``
selector               string ``[batch]`` (value name)   ``op=tf.constant(["times2"])``
=====================  ===============================  ==========================================

Only selectors that drive a multiplexer are inputs. A value outside an int/float field's range, or
a name that is not a value of its category/selector, fails the call with InvalidArgumentError.

It returns, for every decoder ``D`` (a module decoded `as` a target):

* ``D``: the decoded answer, decoded as `tanglec.data.codecs.decode` does — int64 ``[batch]`` for
  ``bits(n)``, ``gray(n)``, ``onehot(n)`` and table codecs, float32 ``[batch]`` for ``scalar``,
  float32 ``[batch, n]`` for ``vector(n)``;
* ``D.confidence`` (bits, gray, onehot and tables only): float32 ``[batch]`` in [0, 1];
* ``D.active``: bool ``[batch]``, whether the row's route reaches ``D`` (an answer on a route that
  does not reach a decoder means nothing; `tanglec query` leaves such decoders out).

Loading needs TensorFlow only — not tanglec::

    m = tf.saved_model.load("arith_savedmodel")
    out = m.signatures["serving_default"](x=tf.constant([7]), encoding=tf.constant(["binary"]),
                                           op=tf.constant(["times2"]))
    out["to_decimal"]  # -> [4]

Keras (`--format keras`, a `.keras` file): the model as compiled — raw fields in (selectors and
categories as int indexes, as `tanglec.data.features.encode_inputs` gives them), raw decoder outputs out
(logits; decode them with `tanglec.data.codecs.decode`). Its custom layers are registered when
`tanglec.backend.codegen` is imported::

    import keras, tanglec.backend.codegen
    model = keras.models.load_model("arith.keras", safe_mode=True)

Both exports carry a marker (`tanglec-export.json`, in the folder or inside the zip) so a later
export may replace them (the output policy, tanglec/util/files.py); they are written to a temporary
sibling, loaded back and compared with the run's own predictions, then put in place atomically. A
run whose files fail their manifest hashes is refused (E140); a refused output path is E192; a
problem with the export itself is E191.
"""
from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np

from ..lang import ast
from ..data import codecs
from ..spec.checks import Checked
from ..spec.graph import codec_width
from ..lang.diagnostics import Diagnostic, TangleError, output_refused
from ..util import files

FORMATS = ("savedmodel", "keras")
VERIFY_ROWS = 512


def export_error(path: Path, message: str, hints=()) -> TangleError:
    return TangleError([Diagnostic("E191", message, ast.Span(str(path), 1, 1, 1, 2), hints=list(hints))])


def default_output(run: Path, fmt: str) -> Path:
    run = Path(run)
    name = run.resolve().name or "model"
    return run.parent / (f"{name}.keras" if fmt == "keras" else f"{name}_savedmodel")


def check_export_path(out: Path, fmt: str) -> None:
    """E191 for a path the format can't have (before the output policy and TensorFlow)."""
    if fmt == "keras" and Path(out).suffix != ".keras":
        raise export_error(out, "a Keras export is a file ending in .keras",
                           hints=[f"use -o {Path(out).with_suffix('.keras')}"])


def export(run: Path, out: Path | None = None, fmt: str = "savedmodel", verify: bool = True) -> dict:
    """Export a run; returns what was written (path, signature) for the CLI's --json."""
    from .run import load_checked, load_model

    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; expected one of {FORMATS}")
    run = Path(run)
    checked, _ = load_checked(run)  # verifies every file's hash
    out = Path(out) if out is not None else default_output(run, fmt)
    check_export_path(out, fmt)
    try:
        files.check_output(out, fmt, inputs=[run])
    except files.OutputRefused as err:
        raise output_refused(err) from None
    from ..backend.codegen import serving_model

    model = serving_model(checked, load_model(run, checked))
    rows = _verification_rows(run, checked) if verify else None
    try:
        if fmt == "keras":
            verified = _write_keras(model, out, rows)
            signature = _keras_signature(checked)
        else:
            verified = _write_savedmodel(checked, model, out, rows)
            signature = serving_signature(checked)
    except files.OutputRefused as err:  # something else took the path meanwhile
        raise output_refused(err) from None
    return {"ok": True, "run": str(run), "format": fmt, "path": str(out), "signature": signature,
            "verified_rows": verified}


# ---- the serving function -------------------------------------------------------------------------

def serving_signature(checked: Checked) -> dict:
    """The SavedModel signature's inputs and outputs as JSON (dtype, shape, accepted values)."""
    g = checked.graph
    inputs = {}
    for name, decl in g.inputs.items():
        t = decl.type
        if isinstance(t, ast.CategoryType):
            inputs[name] = {"dtype": "string", "shape": [None], "values": [v.text for v in t.values]}
        elif isinstance(t, ast.TextType):
            inputs[name] = {"dtype": "string", "shape": [None]}
        elif isinstance(t, ast.VectorType):
            inputs[name] = {"dtype": "float32", "shape": [None, t.size]}
        elif isinstance(t, ast.FloatType):
            inputs[name] = {"dtype": "float32", "shape": [None], "range": None if t.lo is None else [t.lo, t.hi]}
        else:
            inputs[name] = {"dtype": "int32", "shape": [None], "range": [t.lo, t.hi]}
    for name in g.mux_selectors():
        inputs[name] = {"dtype": "string", "shape": [None], "values": [v.text for v in g.selectors[name].values]}
    outputs = {}
    for d, target in g.decoders.items():
        codec = g.modules[d].output
        kind = codec.family
        if kind in ("bits", "gray", "onehot", "table"):
            outputs[d] = {"dtype": "int64", "shape": [None], "target": target, "codec": str(codec)}
            outputs[f"{d}.confidence"] = {"dtype": "float32", "shape": [None]}
        elif kind == "scalar":
            outputs[d] = {"dtype": "float32", "shape": [None], "target": target, "codec": str(codec)}
        else:
            outputs[d] = {"dtype": "float32", "shape": [None, codec.size], "target": target, "codec": str(codec)}
        outputs[f"{d}.active"] = {"dtype": "bool", "shape": [None]}
    return {"name": "serving_default", "inputs": inputs, "outputs": outputs}


def _keras_signature(checked: Checked) -> dict:
    g = checked.graph
    inputs = {}
    for name, decl in g.inputs.items():
        t = decl.type
        if isinstance(t, ast.VectorType):
            inputs[name] = {"dtype": "float32", "shape": [None, t.size]}
        elif isinstance(t, ast.FloatType):
            inputs[name] = {"dtype": "float32", "shape": [None]}
        elif isinstance(t, ast.TextType):
            inputs[name] = {"dtype": "string", "shape": [None]}
        else:
            inputs[name] = {"dtype": "int32", "shape": [None]}
            if isinstance(t, ast.CategoryType):
                inputs[name]["values"] = [v.text for v in t.values]
    for name in g.mux_selectors():
        inputs[name] = {"dtype": "int32", "shape": [None], "values": [v.text for v in g.selectors[name].values]}
    outputs = {d: {"dtype": "float32", "shape": [None, _width(g.modules[d].output)], "raw": True,
                   "codec": str(g.modules[d].output), "target": t} for d, t in g.decoders.items()}
    return {"inputs": inputs, "outputs": outputs}


def _width(codec: ast.Codec) -> int:
    return int(codec_width(codec))


def decode_tf(codec: ast.Codec, raw):
    """`tanglec.data.codecs.decode` in TensorFlow ops, the same float32 arithmetic step for step."""
    import tensorflow as tf

    if codec.table is not None:  # in float64, as codecs.table_scores, so the same row wins
        keys, patterns = codecs.table_arrays(codec.table)
        z = tf.cast(raw, tf.float64)
        on = tf.constant(patterns.T.astype(np.float64))
        scores = tf.matmul(-tf.math.softplus(-z), on) + tf.matmul(-tf.math.softplus(z), 1.0 - on)
        p = tf.nn.softmax(scores, axis=-1)
        best = tf.argmax(p, axis=-1, output_type=tf.int64)
        return tf.gather(tf.constant(keys), best), tf.cast(tf.reduce_max(p, axis=-1), tf.float32)
    kind = codec.kind.text
    if kind in ("bits", "gray"):
        p = 1.0 / (1.0 + tf.exp(-tf.clip_by_value(raw, -60.0, 60.0)))
        bits = tf.cast(p >= 0.5, tf.int64)
        weights = tf.constant(2 ** np.arange(codec.size - 1, -1, -1, dtype=np.int64))
        confidence = tf.reduce_prod(tf.where(bits == 1, p, 1.0 - p), axis=-1)
        value = tf.reduce_sum(bits * weights, axis=-1)
        if kind == "gray":  # reflected binary -> binary: the xor of every right shift
            for shift in (1, 2, 4, 8, 16, 32):
                value = tf.bitwise.bitwise_xor(value, tf.bitwise.right_shift(value, tf.constant(shift, tf.int64)))
        return value, confidence
    if kind == "onehot":
        z = raw - tf.reduce_max(raw, axis=-1, keepdims=True)
        e = tf.exp(z)
        p = e / tf.reduce_sum(e, axis=-1, keepdims=True)
        return tf.argmax(p, axis=-1, output_type=tf.int64), tf.reduce_max(p, axis=-1)
    if kind == "scalar":
        return tf.reshape(raw, [-1]), None
    return raw, None


def serving_function(checked: Checked, model):
    """A tf.function from the raw fields (see the module docstring) to decoded answers."""
    import tensorflow as tf

    g = checked.graph
    sig = serving_signature(checked)
    names = list(sig["inputs"])
    specs = []
    for name, info in sig["inputs"].items():
        dtype = {"int32": tf.int32, "float32": tf.float32, "string": tf.string}[info["dtype"]]
        specs.append(tf.TensorSpec(info["shape"], dtype, name=name))
    selectors = g.mux_selectors()
    sizes = [len(g.selectors[s].values) for s in selectors]
    reach = _reach_tables(checked, selectors, sizes)

    def index_of(name: str, values: list[str], text):
        table = tf.constant(values)
        hits = tf.equal(text[:, None], table[None, :])
        known = tf.reduce_any(hits, axis=1)
        check = tf.debugging.Assert(tf.reduce_all(known), [f"{name}: a value is not one of {' | '.join(values)}",
                                                            tf.boolean_mask(text, tf.logical_not(known))],
                                    summarize=5)
        with tf.control_dependencies([check]):
            return tf.argmax(tf.cast(hits, tf.int32), axis=1, output_type=tf.int32)

    def in_range(name: str, x, lo, hi):
        ok = tf.logical_and(x >= lo, x <= hi)
        check = tf.debugging.Assert(tf.reduce_all(ok), [f"{name}: a value is outside {lo}..{hi}",
                                                        tf.boolean_mask(x, tf.logical_not(ok))], summarize=5)
        with tf.control_dependencies([check]):
            return tf.identity(x)

    def serve(*args):
        raw = dict(zip(names, args))
        feed = {}
        for name, decl in g.inputs.items():
            t, x = decl.type, raw[name]
            if isinstance(t, ast.CategoryType):
                feed[name] = index_of(name, [v.text for v in t.values], x)
            elif isinstance(t, ast.IntType):
                feed[name] = in_range(name, x, t.lo, t.hi)
            elif isinstance(t, ast.FloatType) and t.lo is not None:
                feed[name] = in_range(name, x, float(t.lo), float(t.hi))
            else:
                feed[name] = x
        for s in selectors:
            feed[s] = index_of(s, [v.text for v in g.selectors[s].values], raw[s])
        outputs = model(feed, training=False)
        batch = tf.shape(args[0])[0]
        flat = tf.zeros([batch], tf.int32)
        for s, size in zip(selectors, sizes):
            flat = flat * size + feed[s]
        result = {}
        for d in g.decoders:
            value, confidence = decode_tf(g.modules[d].output, outputs[d])
            result[d] = value
            if confidence is not None:
                result[f"{d}.confidence"] = confidence
            result[f"{d}.active"] = tf.gather(tf.constant(reach[d]), flat)
        return result

    return tf.function(serve, input_signature=specs)


def _reach_tables(checked: Checked, selectors: list[str], sizes: list[int]) -> dict[str, np.ndarray]:
    """Per decoder, a flat bool table over every selection (row-major in `selectors` order)."""
    g = checked.graph
    n = int(np.prod(sizes)) if sizes else 1
    tables = {d: np.zeros(n, bool) for d in g.decoders}
    for route in g.routes():
        flat = 0
        for s, size in zip(selectors, sizes):
            flat = flat * size + [v.text for v in g.selectors[s].values].index(route.selection[s])
        for d in route.decoders:
            if d in tables:
                tables[d][flat] = True
    return tables


# ---- writing and checking ------------------------------------------------------------------------

def _write_savedmodel(checked: Checked, model, out: Path, rows) -> int:
    import tensorflow as tf

    class Served(tf.Module):
        pass

    served = Served()
    served.model = model
    served.serve = serving_function(checked, model)
    tmp = files.temporary_dir(out)
    try:
        path = tmp / "model"
        tf.saved_model.save(served, str(path), signatures={"serving_default": served.serve.get_concrete_function()})
        (path / files.EXPORT_MARKER).write_text(files.export_marker("savedmodel"))
        verified = 0
        if rows is not None:
            verified = _verify_savedmodel(checked, model, path, rows)
        files.swap_dir(path, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return verified


def _write_keras(model, out: Path, rows) -> int:
    import keras

    tmp = files.temporary_file(out, suffix=".keras")
    try:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as zf:  # before verifying: the file checked is the file kept
            zf.writestr(files.EXPORT_MARKER, files.export_marker("keras"))
        verified = 0
        if rows is not None:
            checked, columns = rows
            loaded = keras.models.load_model(tmp, safe_mode=True)
            verified = _compare_raw(checked, model, loaded, columns, out)
        tmp.replace(out)
        files.fsync_dir(out.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return verified


def _verification_rows(run: Path, checked: Checked):
    """Up to VERIFY_ROWS example rows of the run's data: the rows it keeps, or its enumerated or sampled
    examples (a run whose rows can't be read is damaged: E140, or E119 positioned in its rows)."""
    from .run import evaluation_examples

    examples = evaluation_examples(run, checked)
    n = min(examples.n, VERIFY_ROWS)
    return checked, {k: v[:n] for k, v in examples.columns.items()}


def raw_fields(checked: Checked, columns: dict[str, np.ndarray]) -> dict:
    """Example columns (category/selector indexes) -> the serving signature's inputs (names as strings)."""
    import tensorflow as tf

    g = checked.graph
    out = {}
    for name, decl in g.inputs.items():
        t, col = decl.type, columns[name]
        if isinstance(t, ast.CategoryType):
            out[name] = tf.constant(np.asarray([t.values[int(i)].text for i in col]))
        elif isinstance(t, ast.TextType):
            out[name] = tf.constant(np.asarray(col, dtype=object))
        elif isinstance(t, (ast.FloatType, ast.VectorType)):
            out[name] = tf.constant(col.astype(np.float32))
        else:
            out[name] = tf.constant(col.astype(np.int32))
    for s in g.mux_selectors():
        values = g.selectors[s].values
        out[s] = tf.constant(np.asarray([values[int(i)].text for i in columns[s]]))
    return out


def _verify_savedmodel(checked: Checked, model, path: Path, rows) -> int:
    import tensorflow as tf

    from ..backend.predict import predict_raw

    _, columns = rows
    g = checked.graph
    loaded = tf.saved_model.load(str(path))
    got = loaded.signatures["serving_default"](**raw_fields(checked, columns))
    want = predict_raw(model, checked, columns)
    for d in g.decoders:
        value, confidence = codecs.decode(g.modules[d].output, want[d])
        same = np.array_equal(np.asarray(got[d]), value) if confidence is not None \
            else np.allclose(np.asarray(got[d]), value, rtol=1e-5, atol=1e-5)
        if not same:
            raise export_error(path, f"the exported model's answers for '{d}' differ from the run's")
        if confidence is not None and not np.allclose(np.asarray(got[f"{d}.confidence"]), confidence,
                                                      rtol=1e-4, atol=1e-6):
            raise export_error(path, f"the exported model's confidences for '{d}' differ from the run's")
    return len(next(iter(columns.values()))) if columns else 0


def _compare_raw(checked: Checked, model, loaded, columns, out: Path) -> int:
    from ..backend.predict import predict_raw

    want = predict_raw(model, checked, columns)
    got = predict_raw(loaded, checked, columns)
    for d in want:
        if not np.allclose(want[d], got[d], rtol=1e-5, atol=1e-5):
            raise export_error(out, f"the saved Keras model's outputs for '{d}' differ from the run's")
    return len(next(iter(columns.values()))) if columns else 0
