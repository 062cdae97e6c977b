"""The chunked training loop (tanglec.backend.chunks.ChunkTrainer): a chunk of steps per call, in one
XLA program for small models, trains exactly what Keras's own loop trains on the same batches."""
from __future__ import annotations

import numpy as np
import pytest

from support import ARITH, SPECS
from tanglec.pipeline import load
from tanglec.spec.checks import check_or_raise
from tanglec.data.examples import build_examples
from tanglec.lang.parser import parse

pytestmark = pytest.mark.slow

STEPS = 30


def weights_after(checked, mux: str, chunked: bool) -> tuple[list[np.ndarray], bool]:
    """Weights after STEPS steps from the same initial weights and the same batches."""
    import keras

    from tanglec.backend.codegen import build_model
    from tanglec.backend.datasets import dataset, in_blocks, index_batches
    from tanglec.backend.train import compile_model, set_determinism, training_arrays, xla_compiles

    set_determinism(0)
    examples = build_examples(checked)
    x, y, w = training_arrays(checked, examples, examples.train_index)
    model = build_model(checked, mux=mux, seed=0)
    per = checked.train.eval_every
    if chunked:  # one call of all three blocks (a chunk between sparse evaluations)
        trainer = compile_model(model, checked, chunk_arrays=(x, y, w), xla=True)
        blocks = in_blocks(index_batches(len(x["x"]), checked.train.batch, 0), per)
        logs = trainer.run([next(blocks) for _ in range(STEPS // per)], STEPS)
        assert np.isfinite(logs["loss"])
    else:
        compile_model(model, checked)
        model.fit(dataset(x, y, w, checked.train.batch, 0), steps_per_epoch=per, epochs=STEPS // per,
                  verbose=0, shuffle=False)
    assert int(model.optimizer.iterations.numpy()) == STEPS
    keras.backend.clear_session()
    return model.get_weights(), chunked and xla_compiles(model)


@pytest.mark.parametrize("mux", ["where", "partition"])
def test_chunked_steps_train_what_keras_trains(mux):
    checked = load(ARITH)
    reference, _ = weights_after(checked, mux, chunked=False)
    chunked, xla = weights_after(checked, mux, chunked=True)
    assert xla == (mux == "where")  # partition's data-dependent shapes stay out of XLA
    assert len(chunked) == len(reference)
    for a, b in zip(chunked, reference):  # XLA fuses differently: float rounding, not a different step
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
    assert any(not np.allclose(a, b) for a, b in zip(reference, initial_weights(checked, mux)))  # it trained


def initial_weights(checked, mux):
    import keras

    from tanglec.backend.codegen import build_model
    from tanglec.backend.train import set_determinism

    set_determinism(0)
    weights = build_model(checked, mux=mux, seed=0).get_weights()
    keras.backend.clear_session()
    return weights


def test_xla_only_for_small_models_on_long_runs():
    from tanglec.backend.codegen import build_model
    from tanglec.spec.check_limits import estimate_parameters
    from tanglec.backend.mux import Multiplexer
    from tanglec.backend.mux_cost import XLA_MIN_STEPS, xla_pays_off
    from tanglec.backend.train import train

    def strategies(model):
        return {layer.strategy for layer in model._flatten_layers() if isinstance(layer, Multiplexer)}

    checked = load(ARITH)  # 15k parameters
    assert strategies(build_model(checked, xla=True)) == {"where"}  # fused by XLA
    assert strategies(build_model(checked)) == {"partition"}  # the graph executor's best
    wide = check_or_raise(parse(ARITH.read_text().replace("dense 64 relu, dense 64 relu",
                                                          "dense 512 relu, dense 512 relu"), str(ARITH)))
    assert not xla_pays_off(sum(estimate_parameters(m) for m in wide.graph.modules.values()), 10**6)
    model = build_model(wide, xla=True)  # even so, the wide encoders would waste too much under where
    assert model.get_layer("mux_encoding_0").strategy == "partition"

    examples = build_examples(checked)
    short = train(checked, examples, steps=20)  # the demo's budget: compiling would cost more than it saves
    assert not short.xla and strategies(short.model) == {"partition"}
    checked.train.until_exact = False
    long = train(checked, examples, steps=XLA_MIN_STEPS)
    assert long.xla and strategies(long.model) == {"where"} and long.steps_run == XLA_MIN_STEPS
    assert long.report["accuracy"] == 1.0
    assert not train(load(SPECS / "clock.tangle"), build_examples(load(SPECS / "clock.tangle")), steps=10).xla


def test_a_call_trains_up_to_the_next_evaluation_and_trains_what_one_block_per_call_trains(monkeypatch):
    """Between sparse evaluations a call takes several blocks of `eval_every` steps (up to LONGEST_CHUNK
    steps); the evaluations fall on the same steps and the weights are the same as with a call per block."""
    import keras

    import tanglec.backend.chunks as chunks_module
    from tanglec.backend.chunks import ChunkTrainer
    from tanglec.backend.train import set_determinism, train

    checked = load(ARITH)
    checked.train.until_exact, checked.train.eval_every = False, 2
    examples = build_examples(checked)
    calls = []
    run = ChunkTrainer.run
    monkeypatch.setattr(ChunkTrainer, "run", lambda self, blocks, count: (calls.append(count),
                                                                          run(self, blocks, count))[1])

    def trained(longest: int):
        calls.clear()
        monkeypatch.setattr(chunks_module, "LONGEST_CHUNK", longest)
        set_determinism(0)
        result = train(checked, examples, steps=400, seed=0)
        weights = result.model.get_weights()
        keras.backend.clear_session()
        return result, weights, list(calls)

    longest = chunks_module.LONGEST_CHUNK
    per_block, reference, block_calls = trained(2)
    chunked, weights, chunk_calls = trained(longest)
    assert block_calls == [2] * 200 and sum(chunk_calls) == 400
    assert len(chunk_calls) < 120 and max(chunk_calls) == 8  # 400 // (2 x 50) blocks between evaluations at most
    assert [h["step"] for h in chunked.history] == [h["step"] for h in per_block.history]
    assert [h["accuracy"] for h in chunked.history] == [h["accuracy"] for h in per_block.history]
    ends = np.cumsum(chunk_calls)
    assert set(h["step"] for h in chunked.history) <= set(ends)  # every evaluation at a call's end
    for a, b in zip(weights, reference):
        np.testing.assert_array_equal(a, b)


def test_exact_checkpoints_end_a_call_where_they_fall_due_timed_ones_do_not(tmp_path):
    from types import SimpleNamespace

    from tanglec.backend.checkpoint import Checkpointer

    exact = Checkpointer(tmp_path, every=25, handle_signals=False)
    exact.observer = SimpleNamespace(steps_run=10)
    assert exact.blocks_before_save([10] * 20) == 2  # 25 steps rounded up to whole blocks: 30
    exact.saved_step = 10
    assert exact.blocks_before_save([10] * 20) == 3
    timed = Checkpointer(tmp_path, every=25, seconds=30.0, handle_signals=False)
    timed.observer = SimpleNamespace(steps_run=40)  # due by steps, waiting for its seconds: no limit
    assert timed.blocks_before_save([10] * 20) == 20
    assert Checkpointer(tmp_path, every=0, handle_signals=False).blocks_before_save([10] * 5) == 5


def test_a_large_model_keeps_a_call_per_block():
    """Past LONG_CHUNKS_MAX_PARAMETERS weights a step costs enough that a call's overhead doesn't matter, and a
    stop should wait for no more than `eval_every` of its steps."""
    import keras

    from tanglec.backend.chunks import LONG_CHUNKS_MAX_PARAMETERS, ChunkTrainer
    from tanglec.backend.codegen import build_model
    from tanglec.backend.train import compile_model, training_arrays

    checked = load(ARITH)
    examples = build_examples(checked)
    arrays = training_arrays(checked, examples, examples.train_index)
    small = compile_model(build_model(checked), checked, chunk_arrays=arrays)
    assert small.longest == 10
    wide = check_or_raise(parse(ARITH.read_text().replace("dense 64 relu, dense 64 relu",
                                                          "dense 512 relu, dense 512 relu"), str(ARITH)))
    model = build_model(wide)
    assert model.count_params() > LONG_CHUNKS_MAX_PARAMETERS
    wide_examples = build_examples(wide)
    large = compile_model(model, wide, chunk_arrays=training_arrays(wide, wide_examples, wide_examples.train_index))
    assert isinstance(large, ChunkTrainer) and large.longest == 1
    keras.backend.clear_session()
