"""Composition and transfer: use, holdout, freeze, init by name, few-shot data, phases, alignment."""
from __future__ import annotations

import numpy as np
import pytest

from support import ARITH, SPECS
from tanglec.pipeline import Overrides, check_spec, load
from tanglec.data.examples import build_examples
from tanglec.lang.diagnostics import TangleError
from tanglec.lang.parser import parse, parse_file

SEED = ARITH.read_text()


def diagnostics(path_or_text, file="t.tangle", init=None):
    try:
        spec = parse_file(path_or_text) if not isinstance(path_or_text, str) else parse(path_or_text, file)
        return check_spec(spec, Overrides(init=init)).diagnostics
    except TangleError as err:
        return err.diagnostics


# ---- use -----------------------------------------------------------------------------------

def test_use_brings_modules_relative_to_the_using_file(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "arith.tangle").write_text(SEED)
    spec = tmp_path / "uses.tangle"
    spec.write_text('use "lib/arith.tangle" modules decimal, plus1, to_decimal\n'
                    "input n: int 0..9\nroute n -> decimal -> plus1 -> to_decimal\n"
                    "target z = (n + 1) % 10\ndecode to_decimal as z\n")
    checked = load(spec)
    assert set(checked.graph.modules) == {"decimal", "plus1", "to_decimal"}
    assert checked.graph.modules["decimal"].span.file == str((lib / "arith.tangle").resolve())
    assert list(checked.spec.used_files) == [str((lib / "arith.tangle").resolve())]


def test_use_cycle_is_a_positioned_error(tmp_path):
    (tmp_path / "a.tangle").write_text('use "b.tangle"\ninput x: int 0..3\n')
    (tmp_path / "b.tangle").write_text('# b\nuse "a.tangle"\n')
    diags = diagnostics(tmp_path / "a.tangle")
    cycle = next(d for d in diags if d.code == "E151")
    assert cycle.span.file.endswith("b.tangle") and (cycle.span.line, cycle.span.col) == (2, 1)
    assert "a.tangle -> b.tangle -> " in cycle.message


def test_use_missing_file_and_unknown_module(tmp_path):
    spec = tmp_path / "s.tangle"
    spec.write_text('use "nope.tangle"\n')
    assert [d.code for d in diagnostics(spec)] == ["E150"]
    (tmp_path / "arith.tangle").write_text(SEED)
    spec.write_text('use "arith.tangle" modules tmes2\n')
    diag = diagnostics(spec)[0]
    assert diag.code == "E101" and diag.hints[0] == "did you mean 'times2'?"
    assert (diag.span.line, diag.span.col) == (1, 28)


def test_name_clash_with_a_used_spec_points_at_both_files(tmp_path):
    (tmp_path / "arith.tangle").write_text(SEED)
    spec = tmp_path / "s.tangle"
    spec.write_text('use "arith.tangle" modules plus1\nmodule plus1: latent(12) -> latent(12) = dense 12\n')
    clash = next(d for d in diagnostics(spec) if d.code == "E102")
    assert clash.span.file == str(spec) and clash.span.line == 2
    assert clash.related[0].span.file.endswith("arith.tangle")


# ---- holdout, few-shot data, freeze ----------------------------------------------------------

def test_holdout_removes_training_rows_but_keeps_evaluation(tmp_path):
    checked = load(SPECS / "arith_holdout.tangle")
    examples = build_examples(checked)
    cols = examples.columns
    held = (cols["encoding"] == 0) & (cols["op"] == 1)  # binary, times2
    assert held.sum() == 10
    assert not set(np.flatnonzero(held)) & set(examples.train_index)
    assert set(np.flatnonzero(held)) <= set(examples.eval_index)
    assert len(examples.train_index) == 30


def test_holdout_of_a_route_that_does_not_exist():
    text = SEED + "\nholdout times2 -> binary\n"
    diag = next(d for d in diagnostics(text) if d.code == "E161")
    assert diag.span.line == text.count("\n")


def test_missing_alignment_for_a_held_out_route_is_warned():
    text = SEED.replace("align binary, decimal on x weight 1", "") + "\nholdout binary -> times2\n"
    warning = next(d for d in diagnostics(text) if d.code == "W205")
    assert warning.severity == "warning"
    assert "align binary, decimal on x" in warning.hints[0]
    assert not [d for d in diagnostics(SEED + "\nholdout binary -> times2\n") if d.code == "W205"]


def test_few_shot_limits_are_seeded():
    text = SEED.replace("data enumerate", "data enumerate only op:plus1 limit 7 seed 3")
    checked = check_spec(parse(text, str(ARITH)))
    first = build_examples(checked).train_index
    again = build_examples(check_spec(parse(text, str(ARITH)))).train_index
    assert len(first) == 7 and np.array_equal(first, again)
    assert (build_examples(checked).columns["op"][first] == 0).all()
    per_route = check_spec(parse(SEED.replace("data enumerate", "data enumerate per_route 2"), str(ARITH)))
    rows = build_examples(per_route)
    assert len(rows.train_index) == 8 and len(rows.eval_index) == 40


def test_freeze_without_init_is_a_warning():
    diags = diagnostics(SEED + "\nfreeze plus1\n")
    assert [(d.code, d.severity) for d in diags] == [("W204", "warning")]


def test_phase_settings_are_checked():
    text = SEED + "\nphase warm steps 20 lr 0.02 modules binary, decimal\nphase tune stpes 10\n"
    diags = diagnostics(text)
    assert [d.code for d in diags] == ["E115"]
    assert diags[0].hints[0] == "did you mean 'steps'?"


# ---- init: by name into a changed graph (trains small models) --------------------------------

@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    from tanglec.artifacts.run import write_run
    from tanglec.backend.train import train

    checked = load(ARITH)
    result = train(checked, build_examples(checked), steps=20)
    run = tmp_path_factory.mktemp("runs") / "arith"
    write_run(run, checked, result.model, result.report, {"steps_run": result.steps_run})
    return run


@pytest.mark.slow
def test_init_mismatch_is_a_positioned_error(base_run):
    text = SEED.replace("module plus1     : latent(12) -> latent(12) = dense 32 relu, dense 12",
                        "module plus1     : latent(12) -> latent(12) = dense 16 relu, dense 12")
    diag = next(d for d in diagnostics(text, str(ARITH), init=base_run) if d.code == "E162")
    assert (diag.span.line, diag.span.col) == (11, 8)
    assert "dense 16 relu" in diag.message and "dense 32 relu" in diag.message
    assert diag.related[0].message == "the run's declaration"
    missing = diagnostics(SEED, str(ARITH), init=base_run.parent / "nothing")
    assert [(d.code, d.severity) for d in missing] == [("W206", "warning")]  # checks; compile will refuse


@pytest.mark.slow
@pytest.mark.parametrize("mux", [None, "stacked"])
def test_init_loads_weights_by_name_into_a_changed_graph(base_run, mux):
    """With `stacked`, the frozen plus1/times2 are slices of one stack: init writes them into their
    slices and freezing keeps those slices exact while the run trains."""
    from tanglec.backend.codegen import module_layers
    from tanglec.artifacts.run import load_checked, load_model
    from tanglec.backend.mux import Multiplexer
    from tanglec.backend.train import train
    from tanglec.pipeline import init_weights

    spec = (SPECS / "transfer_gray.tangle").read_text()
    checked = check_spec(parse(spec, str(SPECS / "transfer_gray.tangle")), Overrides(init=base_run))
    assert checked.ok, [d.message for d in checked.errors]
    assert sorted(checked.new_modules) == ["gray"]
    result = train(checked, build_examples(checked), steps=10, mux=mux, init_weights=lambda: init_weights(checked))
    strategies = sorted(layer.strategy for layer in result.model.layers if isinstance(layer, Multiplexer))
    assert strategies == (["partition", "stacked"] if mux else ["partition", "partition"])
    assert result.loaded == ["binary", "decimal", "plus1", "times2", "to_binary", "to_decimal"]
    old = module_layers(load_model(base_run, load_checked(base_run)[0]))
    new = module_layers(result.model)
    for name in result.loaded:  # loaded, and frozen: still exactly the run's weights after training
        for a, b in zip(old[name].get_weights(), new[name].get_weights()):
            np.testing.assert_array_equal(a, b)
    statuses = {r["name"]: (r["status"], r["new_modules"]) for r in result.report["routes"]}
    assert statuses["gray → plus1"] == ("trained", ["gray"])
    assert statuses["gray → times2"] == ("unseen", ["gray"])
    assert statuses["binary → plus1"] == ("pretrained", [])


@pytest.mark.slow
@pytest.mark.parametrize("mux", [None, "stacked"])
def test_phases_run_in_order_and_train_only_their_modules(mux):
    from tanglec.backend.codegen import build_model, module_layers
    from tanglec.backend.train import train

    text = SEED.replace(" until exact", "") + "\nphase first steps 20 modules plus1\nphase second steps 10 lr 0.001\n"
    checked = check_spec(parse(text, str(ARITH)))
    assert [p.name for p in checked.composition.phases] == ["first", "second"]
    result = train(checked, build_examples(checked))
    assert result.steps_run == 30 and [h["step"] for h in result.history] == [10, 20, 30]

    only_plus1 = check_spec(parse(SEED.replace(" until exact", "") + "\nphase one steps 20 modules plus1\n", str(ARITH)))
    model = build_model(only_plus1, mux=mux)  # stacked: plus1 and times2 are slices of one stack
    before = {n: [w.copy() for w in layer.get_weights()] for n, layer in module_layers(model).items()}
    train(only_plus1, build_examples(only_plus1), model=model)
    after = {n: layer.get_weights() for n, layer in module_layers(model).items()}
    changed = {n for n in before if any(not np.array_equal(a, b) for a, b in zip(before[n], after[n]))}
    assert changed == {"plus1"}


def test_shipped_transfer_specs_check_before_their_init_run_exists(tmp_path, monkeypatch):
    """A clean checkout has no runs/arith: `check` passes the transfer specs with W206 (and holds
    back W205, which depends on the run), and compile stops before TensorFlow with E140; both
    name the command that trains the run, and nothing is written."""
    import shutil

    from support import call_tanglec
    from tanglec.spec.composition import missing_init_run

    shutil.copytree(SPECS, tmp_path / "specs")
    monkeypatch.chdir(tmp_path)
    hint = "train it first: tanglec compile specs/arith.tangle -o runs/arith"
    for spec in sorted((tmp_path / "specs").glob("transfer_*.tangle")):
        checked = check_spec(parse(spec.read_text(), str(spec)))
        assert [(d.code, d.severity) for d in checked.diagnostics] == [("W206", "warning")], spec.name
        assert checked.diagnostics[0].hints == [hint] and checked.diagnostics[0].span.col == 1
        assert missing_init_run(checked).code == "E140"
        proc = call_tanglec("check", str(spec.relative_to(tmp_path)), cwd=tmp_path)
        assert proc.returncode == 0 and "warning[W206]" in proc.stderr, proc.stderr
    proc = call_tanglec("compile", "specs/transfer_gray.tangle", "-o", "runs/gray", cwd=tmp_path)
    assert proc.returncode == 1 and "error[E140]: init: no run directory at" in proc.stderr
    assert hint in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_training_without_the_init_run_is_refused(tmp_path):
    """Training (the pipeline's compile, what the CLI and explore run) needs the weights `check` only
    warned about."""
    import shutil

    from tanglec import pipeline

    shutil.copytree(SPECS, tmp_path / "specs")
    checked = load(tmp_path / "specs" / "transfer_minus1.tangle")
    with pytest.raises(TangleError) as err:
        pipeline.compile(checked, pipeline.prepare(checked), out=None, overrides=pipeline.Overrides(steps=10))
    assert [d.code for d in err.value.diagnostics] == ["E140"]
    assert err.value.diagnostics[0].span.line == 6
