"""The hand-written gradient of a multiplexer over one Dense chain (`partition` on the branches' own
weights, `stacked` on the stack) against TensorFlow's own gradient of the same branches (`gather`)."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tanglec.backend import branch_chain, stacked as stacked_module
from tanglec.backend.mux import Multiplexer

WIDTH = 4
INDEXES = {
    "batch-of-one": [2],
    "empty-branches": [0, 3, 3, 0, 3, 0],
    "spread": [1, 0, 3, 2, 2, 1, 0, 3, 3, 1, 2, 0, 1],
    "one-route": [1] * 7,  # a stacked kernel's gradient takes K matmuls instead of the padded block
}


def chain_branch(rng):
    """4 -> relu 6 -> sigmoid 5 (no bias) -> linear 3: every activation kind and a layer without bias."""
    inp = keras.Input((WIDTH,))
    h = keras.layers.Dense(6, activation="relu")(inp)
    h = keras.layers.Dense(5, activation="sigmoid", use_bias=False)(h)
    model = keras.Model(inp, keras.layers.Dense(3)(h))
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.get_weights()])
    return model


def run(strategy, branches, index, xs, w_out):
    """Output and gradients (of every branch weight, per branch, and of the inputs) in a tf.function
    with an unknown batch size, as training runs."""
    mux = Multiplexer(branches, strategy=strategy)
    mux([index, *xs])  # build

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)] + [tf.TensorSpec([None, WIDTH])] * len(xs))
    def step(index, *xs):
        with tf.GradientTape() as tape:
            tape.watch(xs)
            y = mux([index, *xs])
            loss = tf.reduce_sum(y * w_out)
        grads = tape.gradient(loss, [*mux.trainable_variables, *xs], unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return y, grads

    y, grads = step(tf.constant(index), *[tf.constant(x) for x in xs])
    n_weights = len(mux.trainable_variables)
    weights = [tf.convert_to_tensor(g).numpy() for g in grads[:n_weights]]
    if strategy == "stacked":  # one [K, ...] gradient per layer weight -> per branch
        weights = [w[k] for k in range(len(branches)) for w in weights]
    return y.numpy(), weights, [tf.convert_to_tensor(g).numpy() for g in grads[n_weights:]]


@pytest.fixture(params=["split", "padded"])
def layout(request, monkeypatch):
    """`stacked` on Eigen (K matmuls, hand-written gradient) and with oneDNN's padded block; `partition`
    runs these small branches as a chain too."""
    monkeypatch.setattr(stacked_module, "onednn_enabled", lambda: request.param == "padded")
    monkeypatch.setattr(stacked_module, "PADDED_MIN_BRANCHES", 2)
    monkeypatch.setattr(branch_chain, "CHAIN_MIN_BRANCHES", 2)
    monkeypatch.setattr(branch_chain, "CHAIN_MIN_PARAMETERS", 0)


@pytest.mark.parametrize("strategy", ["partition", "stacked"])
@pytest.mark.parametrize("case", list(INDEXES))
def test_chain_matches_tensorflows_gradient(strategy, case, layout):
    rng = np.random.default_rng(0)
    branches = [chain_branch(rng) for _ in range(4)]
    index = np.asarray(INDEXES[case], "int32")
    xs = [rng.normal(size=(len(index), WIDTH)).astype("float32") for _ in branches]  # one input per slot
    w_out = rng.normal(size=(len(index), 3)).astype("float32")
    if strategy == "partition":
        assert Multiplexer(branches, strategy="partition")._chain_specs is not None  # the chain runs
    y_ref, gw_ref, gx_ref = run("gather", branches, index, xs, w_out)
    y, gw, gx = run(strategy, branches, index, xs, w_out)
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-6)
    assert len(gw) == len(gw_ref) == 5 * len(branches)
    for got, want in zip(gw + gx, gw_ref + gx_ref):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    for k in set(range(len(branches))) - set(index.tolist()):  # a branch without rows: exactly zero
        assert all(np.all(g == 0) for g in gw[5 * k:5 * k + 5])


def test_partition_takes_the_chain_for_many_branches_with_many_weights():
    """Where the chain was measured faster: 8 or more branches, 100,000 weights or more together."""
    def branches(n, width):
        return [keras.Model(i, keras.layers.Dense(width)(keras.layers.Dense(width, activation="relu")(i)))
                for i in (keras.Input((width,)) for _ in range(n))]

    def chained(n, width):
        return Multiplexer(branches(n, width), strategy="partition")._chain_specs is not None

    assert chained(8, 128) and chained(32, 64)
    assert not chained(2, 256)  # 128 rows per branch at batch 256: TensorFlow's gradient is faster
    assert not chained(8, 32)  # 17,000 weights: the extra ops cost more than they save


def test_partition_chain_leaves_a_frozen_branch_alone(layout):
    """A frozen branch's weights are not trainable variables, so nothing updates them, while the
    other branches and the inputs get their gradients as before."""
    rng = np.random.default_rng(1)
    branches = [chain_branch(rng) for _ in range(3)]
    branches[1].trainable = False
    index = np.array([0, 1, 2, 1, 0], "int32")
    xs = [rng.normal(size=(5, WIDTH)).astype("float32")] * 3
    w_out = rng.normal(size=(5, 3)).astype("float32")
    y_ref, gw_ref, gx_ref = run("gather", branches, index, xs, w_out)
    y, gw, gx = run("partition", branches, index, xs, w_out)
    assert len(gw) == 10  # branches 0 and 2 only
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-6)
    for got, want in zip(gw + gx, gw_ref + gx_ref):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
