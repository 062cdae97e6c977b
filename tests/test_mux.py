"""Tests for tanglec.backend.mux (the Multiplexer layer, its strategies) and mux_cost's `choose_strategy`."""
from __future__ import annotations

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from tanglec.backend.mux import STRATEGIES, Multiplexer  # noqa: E402
from tanglec.backend.mux_cost import choose_strategy  # noqa: E402
from tanglec.backend import stacked as stacked_module  # noqa: E402
from tanglec.backend.stacked import BranchSlice, FusedAdam  # noqa: E402

PER_BRANCH = ("where", "partition", "gather")  # strategies that take any branches (stacked: one Dense chain)

D_OUT = 3
HIDDEN = 5


# ----------------------------------------------------------------- helpers
def make_branch(d_in: int, rng: np.random.Generator, name: str | None = None):
    """A small functional branch d_in -> tanh(HIDDEN) -> D_OUT with known weights."""
    inp = keras.Input((d_in,))
    h = keras.layers.Dense(HIDDEN, activation="tanh")(inp)
    out = keras.layers.Dense(D_OUT)(h)
    model = keras.Model(inp, out, name=name)
    params = [
        rng.normal(size=(d_in, HIDDEN)).astype("float32"),
        rng.normal(size=(HIDDEN,)).astype("float32"),
        rng.normal(size=(HIDDEN, D_OUT)).astype("float32"),
        rng.normal(size=(D_OUT,)).astype("float32"),
    ]
    model.set_weights(params)
    return model, params


def np_branch(params, x):
    w1, b1, w2, b2 = params
    return np.tanh(x @ w1 + b1) @ w2 + b2


def np_reference(all_params, index, xs):
    """Plain per-example loop: row i = branch index[i] applied to x_{index[i]}[i]."""
    rows = [np_branch(all_params[k], xs[k][i : i + 1])[0] for i, k in enumerate(index)]
    return np.stack(rows) if rows else np.zeros((0, D_OUT), "float32")


# (n branches, index, same_input): index values chosen so that some cases leave
# a branch empty; same_input passes one tensor to every slot (the dedupe path).
CASES = {
    "n2-batch1": (2, [1], False),
    "n2-batch1-other": (2, [0], True),
    "n3-empty-branch1": (3, [0, 2, 2, 0, 2, 0, 0], False),
    "n3-shared-input": (3, [2, 1, 1, 0, 2, 2, 1, 0, 0], True),
    "n5-random": (5, [4, 0, 3, 3, 1, 4, 2, 0, 4, 1, 3, 0, 2], False),
    "n5-two-empty": (5, [4, 4, 1, 1, 4, 1, 4], False),
}


def build_case(n, index, same_input, seed=0):
    rng = np.random.default_rng(seed)
    dims = [3] * n if same_input else [2 + k for k in range(n)]  # inputs differ per branch
    branches, params = zip(*(make_branch(d, rng) for d in dims))
    batch = len(index)
    if same_input:
        x = rng.normal(size=(batch, dims[0])).astype("float32")
        xs = [x] * n
    else:
        xs = [rng.normal(size=(batch, d)).astype("float32") for d in dims]
    return list(branches), list(params), np.asarray(index, "int32"), xs


def values_and_grads(mux, index, xs, w_out):
    """Output, d(sum(y*w_out))/d(branch weights), d/d(inputs); eager."""
    x_vars = [tf.constant(x) for x in xs]
    if all(x is xs[0] for x in xs):  # keep "the same tensor in every slot"
        x_vars = [x_vars[0]] * len(xs)
    with tf.GradientTape(persistent=True) as tape:
        for x in x_vars:
            tape.watch(x)
        y = mux([tf.constant(index)] + x_vars)
        loss = tf.reduce_sum(y * w_out)
    weights = mux.trainable_variables  # after the call: a stacked multiplexer creates its weights when built
    assert weights
    zero = tf.UnconnectedGradients.ZERO
    gw = tape.gradient(loss, weights, unconnected_gradients=zero)
    gx = tape.gradient(loss, x_vars, unconnected_gradients=zero)
    dense = lambda gs: [tf.convert_to_tensor(g).numpy() for g in gs]  # noqa: E731
    return y.numpy(), dense(gw), dense(gx)


# ----------------------------------------------------- values and gradients
@pytest.mark.parametrize("case", list(CASES))
def test_strategies_match_reference_and_each_other(case):
    n, index, same = CASES[case]
    branches, params, index, xs = build_case(n, index, same)
    ref = np_reference(params, index, xs)
    w_out = np.random.default_rng(1).normal(size=(len(index), D_OUT)).astype("float32")

    results = {}
    for strategy in PER_BRANCH:
        mux = Multiplexer(branches, strategy=strategy)  # the same branch objects every time
        y, gw, gx = values_and_grads(mux, index, xs, w_out)
        assert y.shape == (len(index), D_OUT)
        np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5, err_msg=strategy)
        assert len(gw) == 4 * n  # every branch weight is tracked by the layer
        results[strategy] = (gw, gx)

    gw0, gx0 = results["where"]
    for strategy in PER_BRANCH[1:]:
        gw, gx = results[strategy]
        for a, b in zip(gw0, gw):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=strategy)
        for a, b in zip(gx0, gx):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=strategy)

    # An empty branch gets exactly zero gradients; a used one does not.
    used = set(index.tolist())
    for k in range(n):
        kernel_grad = gw0[4 * k]
        if k in used:
            assert np.abs(kernel_grad).max() > 0
        else:
            assert np.all(kernel_grad == 0)
    # Input gradients vanish on rows a branch does not own (distinct inputs only).
    if not same:
        for k in range(n):
            assert np.all(gx0[k][index != k] == 0)


def test_gradient_against_numpy_finite_difference():
    """Anchor the shared gradient to an independent computation (not just agreement)."""
    branches, params, index, xs = build_case(3, [0, 2, 2, 0, 1], False, seed=3)
    w_out = np.random.default_rng(4).normal(size=(5, D_OUT)).astype("float64")
    p64 = [[p.astype("float64") for p in ps] for ps in params]
    xs64 = [x.astype("float64") for x in xs]

    def loss(ps):
        return float(np.sum(np_reference(ps, index, xs64) * w_out))

    # d loss / d b2 of branch 2 (owns rows 1, 2): numeric vs every strategy
    eps = 1e-6
    numeric = []
    for j in range(D_OUT):
        up = [list(p) for p in p64]
        up[2][3] = up[2][3].copy()
        up[2][3][j] += eps
        dn = [list(p) for p in p64]
        dn[2][3] = dn[2][3].copy()
        dn[2][3][j] -= eps
        numeric.append((loss(up) - loss(dn)) / (2 * eps))
    for strategy in PER_BRANCH:
        _, gw, _ = values_and_grads(Multiplexer(branches, strategy=strategy), index, xs, w_out.astype("float32"))
        np.testing.assert_allclose(gw[4 * 2 + 3], numeric, rtol=1e-4, atol=1e-4, err_msg=strategy)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_graph_mode_unknown_batch(strategy):
    branches, params, index, xs = build_case(3, [1, 0, 1, 1], strategy == "stacked")
    mux = Multiplexer(branches, strategy=strategy)
    sig = [tf.TensorSpec([None], tf.int32)] + [tf.TensorSpec([None, x.shape[1]], tf.float32) for x in xs]

    @tf.function(input_signature=sig)
    def f(index, *xs):
        y = mux([index, *xs])
        assert y.shape.as_list() == [None, D_OUT]  # static except the batch dim
        return y

    for idx, rows in ((index, slice(None)), (index[:1], slice(0, 1))):
        got = f(tf.constant(idx), *[tf.constant(x[rows]) for x in xs]).numpy()
        want = np_reference(params, idx, [x[rows] for x in xs])
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_index_forms_and_symbolic_shape(strategy):
    branches, params, index, xs = build_case(3, [2, 0, 1, 2], strategy == "stacked")
    mux = Multiplexer(branches, strategy=strategy)
    want = np_reference(params, index, xs)
    for idx in (index[:, None], index.astype("int64")):  # [batch, 1] and int64 are accepted
        np.testing.assert_allclose(mux([idx, *xs]).numpy(), want, rtol=1e-5, atol=1e-5)
    sym = mux([keras.Input((), dtype="int32")] + [keras.Input((x.shape[1],)) for x in xs])
    assert tuple(sym.shape) == (None, D_OUT)


def test_constructor_and_call_validation():
    branches, _, index, xs = build_case(2, [0, 1], False)
    with pytest.raises(ValueError, match="strategy"):
        Multiplexer(branches, strategy="scatter")
    with pytest.raises(ValueError):
        Multiplexer([])
    mux = Multiplexer(branches)
    with pytest.raises(ValueError, match="expects"):
        mux([index, xs[0]])


# -------------------------------------------------------------- where guard
class Root1p(keras.layers.Layer):
    """(1 + x) ** 0.5 via tf.pow: NaN for x < -1, finite with a finite derivative at 0.

    (tf.pow, not tf.sqrt: TensorFlow's SqrtGrad returns 0 when the upstream gradient
    is 0, so a sqrt would not show the leak; PowGrad computes 0 * NaN = NaN.)
    """

    def call(self, x):
        return tf.pow(1.0 + x, 0.5)


def poisoned_case(kind):
    """Branch 1 blows up (inf or NaN, forward and backward) on the rows branch 0 owns."""
    rng = np.random.default_rng(7)
    b0, _ = make_branch(3, rng)
    inp = keras.Input((3,))
    if kind == "exp":  # huge value -> exp overflows to inf
        h = keras.layers.Dense(D_OUT, kernel_initializer="ones")(inp)
        out = keras.layers.Activation("exponential")(h)
    else:  # square root of a negative number -> NaN
        h = keras.layers.Dense(D_OUT, kernel_initializer="ones")(inp)
        out = Root1p()(h)
    b1 = keras.Model(inp, out)
    index = np.array([0, 1, 0, 1, 0], "int32")
    x0 = rng.normal(size=(5, 3)).astype("float32")
    x1 = rng.uniform(0.0, 0.1, size=(5, 3)).astype("float32")
    x1[index == 0] = 1e4 if kind == "exp" else -1e4  # garbage on rows branch 1 does not own
    return [b0, b1], index, [x0, x1]


def plain_where(branches, index, xs):
    """The naive tf.where multiplexer the guard protects against."""
    out = tf.zeros_like(branches[0](xs[0]))
    for k, (b, x) in enumerate(zip(branches, xs)):
        out = tf.where(tf.equal(index, k)[:, None], b(x), out)
    return out


@pytest.mark.parametrize("kind", ["exp", "root"])
def test_where_guard_keeps_gradients_finite(kind):
    branches, index, xs = poisoned_case(kind)
    x_t = [tf.constant(x) for x in xs]
    idx = tf.constant(index)
    weights = branches[0].trainable_variables + branches[1].trainable_variables

    # 1. the naive version really leaks: finite output, NaN gradients
    with tf.GradientTape() as tape:
        tape.watch(x_t)
        y = plain_where(branches, idx, x_t)
        loss = tf.reduce_sum(y)
    assert np.isfinite(y.numpy()).all()
    g_plain = tape.gradient(loss, weights + x_t)
    assert any(np.isnan(g.numpy()).any() for g in g_plain)

    # 2. the guarded `where` strategy: finite, and equal to `partition` (which never
    #    runs a branch on a row it does not own)
    results = {}
    for strategy in ("where", "partition"):
        with tf.GradientTape() as tape:
            tape.watch(x_t)
            y = Multiplexer(branches, strategy=strategy)([idx] + x_t)
            loss = tf.reduce_sum(y)
        grads = [tf.convert_to_tensor(g).numpy() for g in tape.gradient(loss, weights + x_t)]
        assert np.isfinite(y.numpy()).all(), strategy
        for g in grads:
            assert np.isfinite(g).all(), strategy
        results[strategy] = (y.numpy(), grads)
    np.testing.assert_allclose(results["where"][0], results["partition"][0], rtol=1e-5)
    for a, b in zip(results["where"][1], results["partition"][1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # the garbage rows of x_1 get a zero gradient
    assert np.all(results["where"][1][-1][index == 0] == 0)


# ------------------------------------------------- functional model, fit, save
def sel_model(strategy, seed=0):
    keras.utils.set_random_seed(seed)
    x = keras.Input((4,), name="x")
    sel = keras.Input((), dtype="int32", name="sel")
    wide = keras.layers.Dense(6, name="widen")(x)  # branch 2 reads a different encoding
    branches = []
    for k, d in enumerate((4, 4, 6)):
        i = keras.Input((d,))
        h = keras.layers.Dense(16, activation="relu")(i)
        branches.append(keras.Model(i, keras.layers.Dense(2)(h), name=f"branch{k}"))
    routed = Multiplexer(branches, strategy=strategy, name="mux")([sel, x, x, wide])
    # branch0 is used again outside (and after) the multiplexer, with shared weights;
    # "after" makes Keras serialize the multiplexer's copy first, the harder case
    again = branches[0](keras.layers.Dense(4, name="back")(routed))
    out = keras.layers.Add()([routed, again])
    return keras.Model({"x": x, "sel": sel}, out)


def sel_data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    sel = rng.integers(0, 3, size=n).astype("int32")
    maps = rng.normal(size=(3, 4, 2)).astype("float32")
    y = np.einsum("ni,nio->no", x, maps[sel])
    return {"x": x, "sel": sel}, y


@pytest.mark.slow
@pytest.mark.parametrize("strategy", PER_BRANCH)
def test_functional_fit_save_load(strategy, tmp_path):
    model = sel_model(strategy)
    assert tuple(model.output.shape) == (None, 2)
    ids = [id(v) for v in model.trainable_variables]
    assert len(ids) == len(set(ids))  # the shared branch is counted once
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="mse")
    data, y = sel_data()

    def mse(m):
        return float(np.mean((m(data).numpy() - y) ** 2))

    before = mse(model)
    model.fit(data, y, batch_size=32, epochs=3, verbose=0)  # unknown batch dim, graph mode
    after = mse(model)
    assert after < 0.6 * before

    path = tmp_path / f"mux_{strategy}.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    want = model(data).numpy()
    np.testing.assert_array_equal(loaded(data).numpy(), want)  # same ops, same weights
    np.testing.assert_allclose(loaded.predict(data, batch_size=64, verbose=0), want, rtol=1e-6, atol=1e-6)
    mux = loaded.get_layer("mux")
    assert isinstance(mux, Multiplexer) and mux.strategy == strategy
    assert mux.branches[0] is loaded.get_layer("branch0")  # still one shared object
    assert len(loaded.trainable_variables) == len(model.trainable_variables)
    # a batch of one gives the same row as in the full batch (rows are independent)
    one = {"x": data["x"][:1], "sel": data["sel"][:1]}
    np.testing.assert_allclose(loaded(one).numpy(), want[:1], rtol=1e-5, atol=1e-6)
    # a batch in which branch 1 gets no row
    no1 = {"x": data["x"][:8], "sel": np.array([0, 2] * 4, "int32")}
    np.testing.assert_array_equal(loaded(no1).numpy(), model(no1).numpy())


def test_config_roundtrip_makes_fresh_branches():
    branches, params, index, xs = build_case(3, [0, 2, 1], False)
    mux = Multiplexer(branches, strategy="gather", name="m")
    config = mux.get_config()
    json.dumps(config)  # plain JSON, branches included
    assert config["strategy"] == "gather" and len(config["branches"]) == 3
    clone = Multiplexer.from_config(config)
    assert clone.strategy == "gather" and clone.name == "m"
    assert all(a is not b for a, b in zip(clone.branches, branches))
    for a, b in zip(clone.branches, branches):
        a.set_weights(b.get_weights())
    np.testing.assert_allclose(clone([index, *xs]).numpy(), mux([index, *xs]).numpy(), rtol=1e-6)


# ----------------------------------------------------------- choose_strategy
def test_choose_strategy_valid_everywhere():
    for device in ("CPU", "GPU"):
        for n in (1, 2, 3, 8, 64):
            for batch in (1, 32, 4096):
                for flops in (1e2, 1e5, 1e8):
                    assert choose_strategy(n, batch, flops, device) in STRATEGIES


def test_choose_strategy_rule():
    """The rule documented (with its measurements) in choose_strategy's docstring."""
    mlp256 = 2 * (256 * 256 + 256 * 256)  # the benchmark's branch
    # one branch: nothing to route
    for device in ("CPU", "GPU"):
        assert choose_strategy(1, 4096, 1e9, device) == "where"
    # CPU: partition for every n >= 2 (where never won a measured cell, gather never
    # beat partition), cheap or expensive, small batch or large
    for n in (2, 3, 8, 32):
        for batch in (1, 32, 256, 4096):
            for flops in (64.0, 2e3, mlp256, 1e8):
                assert choose_strategy(n, batch, flops) == "partition"
    assert choose_strategy(32, 256, mlp256, "cpu") == "partition"
    # GPU: two cheap branches on a small batch -> where; many expensive ones -> gather
    assert choose_strategy(2, 32, 2e3, "GPU") == "where"
    assert choose_strategy(2, 32, 2e3, "/device:GPU:0") == "where"
    assert choose_strategy(32, 256, mlp256, "GPU") == "gather"
    # GPU: more work can only move the choice away from `where`
    for n in (2, 4, 16):
        picks = [choose_strategy(n, 256, f, "GPU") for f in (1e1, 1e3, 1e4, 1e5, 1e6, 1e7)]
        assert picks[0] == "where" and picks[-1] == "gather"
        flips = [i for i in range(1, len(picks)) if picks[i] != picks[i - 1]]
        assert len(flips) == 1, picks
    for bad in ((0, 32, 1e3), (2, -1, 1e3), (2, 32, -5.0)):
        with pytest.raises(ValueError):
            choose_strategy(*bad)


# ------------------------------------------------------------------ stacked
def stackable_case(n, index, shared_input, seed=0):
    """Branches of one architecture (3 -> tanh 5 -> 3); inputs shared or one per slot."""
    rng = np.random.default_rng(seed)
    branches, params = zip(*(make_branch(3, rng) for _ in range(n)))
    xs = [rng.normal(size=(len(index), 3)).astype("float32") for _ in range(n)]
    if shared_input:
        xs = [xs[0]] * n
    return list(branches), list(params), np.asarray(index, "int32"), xs


@pytest.fixture(params=["split", "padded"])
def stacked_layout(request, monkeypatch):
    """Both ways `stacked` runs a layer: K matmuls of exact rows (Eigen) and one batched matmul on
    a padded block (oneDNN; a block that would be too big still takes the K matmuls)."""
    monkeypatch.setattr(stacked_module, "onednn_enabled", lambda: request.param == "padded")
    monkeypatch.setattr(stacked_module, "PADDED_MIN_BRANCHES", 2)  # the test cases have 2 to 5 branches
    return request.param


@pytest.mark.parametrize("case", list(CASES))
def test_stacked_matches_partition_values_and_gradients(case, stacked_layout):
    """Outputs, weight gradients (slice k of a stacked gradient = branch k's) and input gradients;
    the cases include a batch of one and branches that get no row."""
    n, index, shared = CASES[case]
    branches, params, index, xs = stackable_case(n, index, shared)
    w_out = np.random.default_rng(1).normal(size=(len(index), D_OUT)).astype("float32")
    y_p, gw_p, gx_p = values_and_grads(Multiplexer(branches, strategy="partition"), index, xs, w_out)
    stacked = Multiplexer(branches, strategy="stacked")
    y_s, gw_s, gx_s = values_and_grads(stacked, index, xs, w_out)

    np.testing.assert_allclose(y_s, np_reference(params, index, xs), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y_s, y_p, rtol=1e-5, atol=1e-6)
    shapes = [tuple(w.shape) for w in stacked.trainable_weights]
    assert shapes == [(n, 3, HIDDEN), (n, HIDDEN), (n, HIDDEN, D_OUT), (n, D_OUT)]
    assert len(gw_s) == 4
    for j, g in enumerate(gw_s):  # one stacked gradient per layer weight, slices = per-branch gradients
        np.testing.assert_allclose(g, np.stack(gw_p[j::4]), rtol=1e-5, atol=1e-6)
    for a, b in zip(gx_p, gx_s):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for k in set(range(n)) - set(index.tolist()):  # an empty branch: exactly zero gradient
        assert all(np.all(g[k] == 0) for g in gw_s)


def test_stacked_layouts_agree_in_a_graph_with_unknown_batch(monkeypatch):
    """In a tf.function, the padded block (a spread batch) and its fallback to K matmuls (a batch of
    one route, whose block would hold K x its rows) give partition's outputs and gradients (within
    the float rounding that oneDNN's kernels, when they are on, change)."""
    monkeypatch.setattr(stacked_module, "onednn_enabled", lambda: True)
    monkeypatch.setattr(stacked_module, "PADDED_MIN_BRANCHES", 5)
    branches, _, _, xs = stackable_case(5, [0] * 12, True)
    partition, stacked = Multiplexer(branches, strategy="partition"), Multiplexer(branches, strategy="stacked")
    sig = [tf.TensorSpec([None], tf.int32), tf.TensorSpec([None, 3], tf.float32)]

    def step(mux):
        @tf.function(input_signature=sig)
        def run(index, x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = mux([index] + [x] * 5)
                loss = tf.reduce_sum(y * y)
            return y, [tf.convert_to_tensor(g) for g in tape.gradient(loss, [x] + mux.trainable_variables)]
        return run

    run_p, run_s = step(partition), step(stacked)
    for index in ([0, 3, 1, 4, 2, 0, 1, 3, 4, 2, 2, 0], [3] * 12):
        index = tf.constant(index, tf.int32)
        y_p, g_p = run_p(index, tf.constant(xs[0]))
        y_s, g_s = run_s(index, tf.constant(xs[0]))
        np.testing.assert_allclose(y_s.numpy(), y_p.numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(g_s[0].numpy(), g_p[0].numpy(), rtol=1e-4, atol=1e-5)
        for j, g in enumerate(g_s[1:]):
            np.testing.assert_allclose(g.numpy(), np.stack([w.numpy() for w in g_p[1 + j::4]]), rtol=1e-4, atol=1e-5)


def test_stacked_keeps_garbage_rows_out_of_gradients(stacked_layout):
    """The NaN guard: slot k's input holds inf-producing garbage on rows branch k does not own;
    each branch sees only its own rows (and zero pads), so output and gradients stay finite."""
    rng = np.random.default_rng(7)
    branches = []
    for _ in range(2):
        inp = keras.Input((3,))
        branches.append(keras.Model(inp, keras.layers.Dense(D_OUT, activation="exponential",
                                                            kernel_initializer="ones")(inp)))
    index = np.array([0, 1, 0, 1, 0], "int32")
    xs = [rng.uniform(0, 0.1, size=(5, 3)).astype("float32") for _ in range(2)]
    xs[1][index == 0] = 1e4  # exp(3e4) = inf
    xs[0][index == 1] = 1e4
    w_out = np.ones((5, D_OUT), "float32")
    y, gw, gx = values_and_grads(Multiplexer(branches, strategy="stacked"), index, xs, w_out)
    assert np.isfinite(y).all() and all(np.isfinite(g).all() for g in gw + gx)
    y_p, gw_p, gx_p = values_and_grads(Multiplexer(branches, strategy="partition"), index, xs, w_out)
    np.testing.assert_allclose(y, y_p, rtol=1e-6)
    for j in range(2):  # kernel, bias
        np.testing.assert_allclose(gw[j], np.stack(gw_p[j::2]), rtol=1e-5)
    assert np.all(gx[1][index == 0] == 0) and np.all(gx[0][index == 1] == 0)


def test_stacked_needs_one_dense_chain():
    rng = np.random.default_rng(0)
    a, _ = make_branch(3, rng)
    b, _ = make_branch(4, rng)  # another input width
    with pytest.raises(ValueError, match="same chain of Dense layers"):
        Multiplexer([a, b], strategy="stacked")
    inp = keras.Input((3,))
    normed = keras.Model(inp, keras.layers.Dense(D_OUT)(keras.layers.LayerNormalization()(inp)))
    with pytest.raises(ValueError, match="same chain of Dense layers"):
        Multiplexer([normed, normed], strategy="stacked")


def test_branch_slice_reads_writes_and_freezes_its_slice():
    """init/freeze by module name: a slice view moves weights in and out of slice k; a frozen
    slice gets a zero gradient and an optimizer step leaves it exactly as it was."""
    branches, params, index, xs = stackable_case(3, [0, 1, 2, 1, 0, 2], True)
    mux = Multiplexer(branches, strategy="stacked")
    mux([index, *xs])  # build
    views = [BranchSlice(mux, k) for k in range(3)]
    for view, p in zip(views, params):
        for got, want in zip(view.get_weights(), p):
            np.testing.assert_array_equal(got, want)
    new = [w + 1.0 for w in params[0]]
    views[1].set_weights(new)
    for got, want in zip(views[1].get_weights(), new):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(views[2].get_weights(), params[2]):  # the neighbours are untouched
        np.testing.assert_array_equal(got, want)

    views[1].trainable = False
    assert branches[1].trainable is False and views[1].trainable is False
    before = views[1].get_weights()
    optimizer = FusedAdam(0.1)
    for _ in range(3):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(mux([index, *xs])))
        grads = tape.gradient(loss, mux.trainable_variables)
        assert all(np.all(g.numpy()[1] == 0) for g in grads)
        optimizer.apply(grads, mux.trainable_variables)
    for a, b in zip(before, views[1].get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(params[0][0], views[0].get_weights()[0])  # a trainable slice moved


def test_fused_adam_is_keras_adam():
    rng = np.random.default_rng(0)
    start = [rng.normal(size=(4, 3, 5)).astype("float32"), rng.normal(size=(5,)).astype("float32")]
    grads = [[rng.normal(size=w.shape).astype("float32") for w in start] for _ in range(4)]
    results = []
    for opt in (keras.optimizers.Adam(0.01), FusedAdam(0.01)):
        variables = [keras.Variable(w) for w in start]
        for g in grads:
            opt.apply([tf.constant(x) for x in g], variables)
        results.append(([v.numpy() for v in variables], [v.numpy() for v in opt.variables]))
    for a, b in zip(results[0][0] + results[0][1], results[1][0] + results[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)

    # and it is the fused kernel that runs: one ResourceApplyAdam per variable, no element-wise chain
    variables = [keras.Variable(w) for w in start]
    opt = FusedAdam(0.01)
    opt.build(variables)
    step = tf.function(lambda gs: opt.apply(gs, variables))
    ops = [op.type for op in step.get_concrete_function([tf.constant(g) for g in grads[0]]).graph.get_operations()]
    assert ops.count("ResourceApplyAdam") == len(variables) and "Sqrt" not in ops
    assert ops.count("Pow") == 2  # the step's beta powers, built once for all the variables


@pytest.mark.slow
def test_stacked_fit_save_load(tmp_path):
    keras.utils.set_random_seed(0)
    x = keras.Input((4,), name="x")
    sel = keras.Input((), dtype="int32", name="sel")
    branches = []
    for k in range(3):
        i = keras.Input((4,))
        h = keras.layers.Dense(16, activation="relu")(i)
        branches.append(keras.Model(i, keras.layers.Dense(2)(h), name=f"branch{k}"))
    out = Multiplexer(branches, strategy="stacked", name="mux")([sel, x, x, x])
    model = keras.Model({"x": x, "sel": sel}, out)
    model.compile(optimizer=FusedAdam(0.02), loss="mse")
    data, y = sel_data()
    before = float(np.mean((model(data).numpy() - y) ** 2))
    model.fit(data, y, batch_size=32, epochs=3, verbose=0)
    assert float(np.mean((model(data).numpy() - y) ** 2)) < 0.6 * before
    assert len(model.trainable_variables) == 4  # one per layer weight, not per branch

    path = tmp_path / "stacked.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    want = model(data).numpy()
    np.testing.assert_array_equal(loaded(data).numpy(), want)
    assert loaded.get_layer("mux").strategy == "stacked"
    one = {"x": data["x"][:1], "sel": data["sel"][:1]}
    np.testing.assert_allclose(loaded(one).numpy(), want[:1], rtol=1e-5, atol=1e-6)
    no1 = {"x": data["x"][:8], "sel": np.array([0, 2] * 4, "int32")}
    np.testing.assert_array_equal(loaded(no1).numpy(), model(no1).numpy())


def test_choose_strategy_stacks_many_stackable_branches_on_cpu():
    mlp256 = 2 * (256 * 256 + 256 * 256)
    for n in (8, 32):
        for batch in (32, 256):
            assert choose_strategy(n, batch, mlp256, stackable=True) == "stacked"
    assert choose_strategy(2, 32, mlp256, stackable=True) == "partition"  # grouping costs more than it saves
    assert choose_strategy(64, 256, mlp256, stackable=True) == "partition"  # padding costs more than it saves
    assert choose_strategy(32, 256, mlp256, stackable=False) == "partition"
    assert choose_strategy(32, 256, mlp256, "GPU", stackable=True) == "gather"  # not measured on GPU


@pytest.mark.parametrize("saved, loaded", [("stacked", "partition"), ("partition", "stacked"), ("stacked", "stacked")])
def test_weights_files_load_across_strategies(saved, loaded, tmp_path):
    """Weights are saved branch by branch whatever the strategy, so a run trained stacked loads
    into a model rebuilt with another strategy, and an older run loads into a stacked one."""
    def model_with(strategy, seed):
        keras.utils.set_random_seed(seed)
        x = keras.Input((4,), name="x")
        sel = keras.Input((), dtype="int32", name="sel")
        branches = []
        for k in range(3):
            i = keras.Input((4,))
            branches.append(keras.Model(i, keras.layers.Dense(2)(keras.layers.Dense(8, activation="relu")(i)),
                                        name=f"branch{k}"))
        return keras.Model({"x": x, "sel": sel}, Multiplexer(branches, strategy=strategy, name="mux")([sel, x, x, x]))

    data, y = sel_data(64)
    source = model_with(saved, 0)
    source.compile(optimizer=FusedAdam(0.05), loss="mse")
    source.fit(data, y, batch_size=16, epochs=1, verbose=0)  # stacked: the stack moves, not the branch models
    path = tmp_path / "model.weights.h5"
    source.save_weights(path)
    target = model_with(loaded, 1)
    assert not np.allclose(target(data).numpy(), source(data).numpy())
    target.load_weights(path)
    np.testing.assert_allclose(target(data).numpy(), source(data).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_cli_trains_a_stacked_run_that_loads_for_eval_and_query(tmp_path):
    """`--mux stacked` stacks arith's op multiplexer (plus1 | times2: one Dense chain) and leaves the
    encoders (different input widths) to partition; the run's weights load for eval and query."""
    from support import ARITH, call_tanglec
    from tanglec.backend.codegen import build_model, module_layers
    from tanglec.pipeline import load

    model = build_model(load(ARITH), mux="stacked")
    strategies = {layer.name.split("_")[1]: layer.strategy for layer in model.layers if isinstance(layer, Multiplexer)}
    assert strategies == {"encoding": "partition", "op": "stacked"}
    assert isinstance(module_layers(model)["plus1"], BranchSlice)

    run = tmp_path / "run"
    proc = call_tanglec("compile", str(ARITH), "--mux", "stacked", "--steps", "20", "-o", str(run))
    assert proc.returncode == 0, proc.stderr
    proc = call_tanglec("eval", str(run), "--json")
    assert proc.returncode == 0, proc.stderr
    assert "accuracy" in json.loads(proc.stdout)
    proc = call_tanglec("query", str(run), "x=7", "encoding=binary", "op=times2", "--json")
    assert proc.returncode == 0, proc.stderr
