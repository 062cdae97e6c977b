"""Alignment through a label: a new encoder of another field (pixels reads img) is pulled onto a trained
encoder's latent of the label the row carries (decimal reads x); and the normalised alignment term."""
from __future__ import annotations

import io

import numpy as np
import pytest

from support import ARITH
from tanglec.data.examples import build_examples
from tanglec.data.features import training_arrays
from tanglec.lang.parser import parse_file
from tanglec.pipeline import Overrides, check_spec, load

NOISE = 0.1
LABEL_SPEC = """\
input x: int 0..9
input img: vector(10)
select op: plus1 | times2

module decimal   : onehot(10) -> latent(12) = dense 64 relu, dense 64 relu, dense 12
module pixels    : vector(10) -> latent(12) = dense 64 relu, dense 64 relu, dense 12
module plus1     : latent(12) -> latent(12) = dense 32 relu, dense 12
module times2    : latent(12) -> latent(12) = dense 32 relu, dense 12
module to_binary : latent(12) -> bits(4)    = dense 64 relu, dense 4
module to_decimal: latent(12) -> onehot(10) = dense 64 relu, dense 10

route x -> decimal
route img -> pixels -> [plus1 | times2] by op -> to_binary, to_decimal

target y = match op { plus1: (x + 1) % 10, times2: (x * 2) % 10 }
decode to_binary, to_decimal as y

init "INIT"
freeze decimal, plus1, times2, to_binary, to_decimal
holdout pixels -> times2
align pixels, decimal on x

data file "rows.csv"
train steps 400 batch 64 adam 0.01 seed 0
"""


def write_rows(path, rows: int = 400, seed: int = 0) -> None:
    """x, a noisy one-hot picture of x, and an operation per row."""
    rng = np.random.default_rng(seed)
    lines = ["x,img,op"]
    for k in range(rows):
        x = int(rng.integers(10))
        img = np.eye(10)[x] + rng.normal(0, NOISE, 10)
        lines.append(f"{x},{' '.join(f'{v:.3f}' for v in img)},{('plus1', 'times2')[k % 2]}")
    path.write_text("\n".join(lines) + "\n")


def checked_in(folder, text: str):
    """`text` checked as a spec in `folder`, beside its data file, with no init run."""
    write_rows(folder / "rows.csv", rows=8)
    (folder / "s.tangle").write_text(text.replace('init "INIT"\n', ""))
    return check_spec(parse_file(folder / "s.tangle"), Overrides())


def errors(folder, text: str) -> list[tuple[str, str, list[str]]]:
    return [(d.code, d.message, d.hints) for d in checked_in(folder, text).diagnostics if d.is_error]


def test_a_label_alignment_checks_and_feeds_each_module_its_own_field(tmp_path):
    checked = checked_in(tmp_path, LABEL_SPEC)
    assert not checked.errors
    [group] = checked.composition.aligns
    assert (group.modules, group.field, group.reads) == (["pixels", "decimal"], "x", ["img", "x"])
    assert group.output_name == "align_pixels_decimal"


def test_no_aligned_module_reading_the_label_is_E160_with_the_module_that_does(tmp_path):
    text = LABEL_SPEC.replace("align pixels, decimal on x", "align pixels, pixels on x")
    [(code, message, hints)] = errors(tmp_path, text)
    assert code == "E160" and message.startswith("no aligned module reads 'x'")
    assert hints == ["align with a module that reads it: `align pixels, decimal on x`"]
    unread = text.replace("input img: vector(10)\n", "input img: vector(10)\ninput z: int 0..9\n") \
        .replace("align pixels, pixels on x", "align pixels, decimal on z")
    [(code, message, hints)] = errors(tmp_path, unread)
    assert code == "E160" and "no aligned module reads 'z'" in message
    assert hints == ["align on a field one of them reads: img, x"]


def test_aligning_a_module_that_reads_no_field_is_E160(tmp_path):
    [(code, message, _)] = errors(tmp_path, LABEL_SPEC.replace("align pixels, decimal on x", "align pixels, plus1 on x"))
    assert code == "E160" and message == "'plus1' reads no input field, so it has no encoding of a row to align"


def test_rows_missing_a_field_an_aligned_module_reads_carry_no_alignment_weight(tmp_path):
    write_rows(tmp_path / "rows.csv", rows=8)
    (tmp_path / "s.tangle").write_text(LABEL_SPEC.replace('init "INIT"\n', "").replace("freeze decimal, ", "freeze "))
    checked = load(tmp_path / "s.tangle")
    examples = build_examples(checked)
    rows = np.arange(len(examples.columns["x"]))
    _, _, weights = training_arrays(checked, examples, rows)
    assert weights["align_pixels_decimal"].tolist() == [1.0] * len(rows)
    carried = np.arange(len(rows)) % 3 != 0
    examples.present = {"img": carried}
    _, _, weights = training_arrays(checked, examples, rows)
    assert weights["align_pixels_decimal"].tolist() == carried.astype(float).tolist()


def test_the_normalised_term_on_a_known_input_and_no_gradient_into_a_teacher():
    import tensorflow as tf
    from tanglec.backend.codegen import Disagreement

    student = tf.Variable([[3.0, 0.0], [-1.0, 0.0]])
    teacher = tf.Variable([[1.0, 2.0], [-1.0, 0.0]])  # variance across the batch: 1 per component
    with tf.GradientTape() as tape:
        out = Disagreement(["pixels", "decimal"], [False, True])([student, teacher])
        loss = tf.reduce_mean(tf.square(out))
    scale = np.sqrt(1.0 + Disagreement.SPREAD_FLOOR)
    np.testing.assert_allclose(out.numpy(), [[2 / scale, -2 / scale, 0, 0], [0, 0, 0, 0]], rtol=1e-6)
    np.testing.assert_allclose(loss.numpy(), 8 / 8 / scale ** 2, rtol=1e-6)
    grad_student, grad_teacher = tape.gradient(loss, [student, teacher])
    assert grad_teacher is None and np.abs(grad_student.numpy()).sum() > 0
    # the same latents ten times larger give the same term: it is measured in units of their spread
    big = Disagreement(["pixels", "decimal"], [False, True])([student * 10, teacher * 10])
    np.testing.assert_allclose(big.numpy(), out.numpy() * scale / np.sqrt(1.0 + Disagreement.SPREAD_FLOOR / 100),
                               rtol=1e-5)
    # with no teacher the target is the mean of both, and both move
    both = Disagreement(["a", "b"])([student, teacher]).numpy()
    spread = np.mean(np.var(np.stack([student.numpy(), teacher.numpy()], 1), axis=0))
    np.testing.assert_allclose(both[0], np.array([1, -1, -1, 1]) / np.sqrt(spread + Disagreement.SPREAD_FLOOR),
                               rtol=1e-6)


def test_modules_a_phase_does_not_train_are_its_alignments_teachers(tmp_path):
    from tanglec.backend.codegen import Disagreement, build_model
    from tanglec.backend.train import set_trainable

    write_rows(tmp_path / "rows.csv", rows=8)
    text = LABEL_SPEC.replace('init "INIT"\n', "").replace("freeze decimal, ", "freeze ") + \
        "phase tune modules pixels\n"
    (tmp_path / "s.tangle").write_text(text)
    checked = load(tmp_path / "s.tangle")
    model = build_model(checked)
    [layer] = [layer for layer in model._flatten_layers() if isinstance(layer, Disagreement)]
    assert layer.fixed == [False, False]  # not frozen: built as peers
    set_trainable(model, checked, ["pixels"])
    assert (layer.sources, layer.fixed) == (["pixels", "decimal"], [False, True])
    set_trainable(model, checked, None)
    assert layer.fixed == [False, False]


def test_alignment_progress_shows_each_terms_loss():
    from tanglec.backend.train import Progress
    from tanglec.cli.common import rich_progress

    update, bar = rich_progress(100, io.StringIO(), terms=["align_pixels_decimal"])
    update(Progress(10, 100, {"total": 1.5, "to_decimal": 1.0, "align_pixels_decimal": 0.25},
                    {"accuracy": 0.5}, 20.0, 0.5))
    status = bar.tasks[0].fields["status"]
    assert status.startswith("loss 1.5000  align_pixels_decimal 0.2500  exact 50%"), status


@pytest.fixture(scope="module")
def label_runs(arith_run, tmp_path_factory):
    """The label spec trained from the arith run, with and without its alignment (in-process)."""
    from tanglec import pipeline

    folder = tmp_path_factory.mktemp("label")
    write_rows(folder / "rows.csv")
    text = LABEL_SPEC.replace("INIT", str(arith_run.run))
    out = {}
    for name, spec_text in (("aligned", text), ("plain", text.replace("align pixels, decimal on x\n", ""))):
        (folder / f"{name}.tangle").write_text(spec_text)
        checked = load(folder / f"{name}.tangle", training=True)
        out[name] = pipeline.compile(checked, pipeline.prepare(checked), out=folder / "runs" / name)
    return out


def held_out(result) -> float:
    return next(r["accuracy"] for r in result.report["routes"] if r["status"] == "held-out")


@pytest.mark.slow
def test_the_held_out_route_works_only_with_the_label_alignment(label_runs):
    aligned, plain = label_runs["aligned"].result, label_runs["plain"].result
    assert held_out(aligned) >= 0.97, aligned.report["routes"]
    assert held_out(plain) <= 0.85, plain.report["routes"]
    history = label_runs["aligned"].metrics["history"]
    assert all("align_pixels_decimal" in h["losses"] for h in history)  # metrics.json, per evaluation
    assert history[-1]["losses"]["align_pixels_decimal"] < history[0]["losses"]["align_pixels_decimal"] / 10


@pytest.mark.slow
def test_frozen_teachers_stay_bit_identical(label_runs, arith_run):
    from tanglec.backend.codegen import module_layers
    from tanglec.pipeline import load_run_model

    before = module_layers(load_run_model(arith_run.run, load(ARITH)))
    after = module_layers(label_runs["aligned"].result.model)
    for name in ("decimal", "plus1", "times2", "to_binary", "to_decimal"):
        for old, new in zip(before[name].get_weights(), after[name].get_weights(), strict=True):
            assert np.array_equal(old, new), name
