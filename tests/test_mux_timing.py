"""`auto` by measurement (tanglec.backend.mux_timing): timed picks, their cache, and when the compiler measures."""
from __future__ import annotations

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tanglec.backend import mux_timing  # noqa: E402
from tanglec.backend.mux_timing import CACHE_FILE, measured_candidates, measured_strategy  # noqa: E402
from tanglec.lang.parser import parse  # noqa: E402
from tanglec.pipeline import check_spec  # noqa: E402


def branches(n: int, width: int = 6, dropout: bool = False) -> list[keras.Model]:
    out = []
    for k in range(n):
        inp = keras.Input((width,))
        h = keras.layers.Dense(8, activation="relu", kernel_initializer=keras.initializers.GlorotUniform(k))(inp)
        if dropout:
            h = keras.layers.Dropout(0.5, seed=k)(h)
        out.append(keras.Model(inp, keras.layers.Dense(3)(h)))
    return out


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(mux_timing, "ROUND_SECONDS", 0.005)
    return tmp_path / "cache" / "tanglec"


def test_candidates():
    assert measured_candidates(2, stackable=True) == ["where", "partition", "gather", "stacked"]
    assert measured_candidates(8, stackable=True) == ["partition", "gather", "stacked"]
    assert measured_candidates(8, stackable=False) == ["partition", "gather"]


def test_pick_is_measured_once_then_read_from_the_users_cache(cache_home, monkeypatch):
    mux_branches = branches(3)
    pick = measured_strategy(mux_branches, ["partition", "gather", "stacked"], 16, "adam", grouped=False)
    assert pick in ("partition", "gather", "stacked")
    (entry,) = json.loads((cache_home / CACHE_FILE).read_text()).values()
    assert entry["strategy"] == pick and set(entry["steps_per_cpu_s"]) == {"partition", "gather", "stacked"}
    assert oct(cache_home.stat().st_mode & 0o777) == "0o700"

    def no_timing(*args):
        raise AssertionError("measured again")

    monkeypatch.setattr(mux_timing, "time_strategies", no_timing)
    assert measured_strategy(branches(3), ["partition", "gather", "stacked"], 16, "adam", grouped=False) == pick
    with pytest.raises(AssertionError, match="measured again"):  # another shape is another key
        measured_strategy(mux_branches, ["partition", "gather", "stacked"], 32, "adam", grouped=False)


def test_a_pick_is_not_reused_under_other_kernels_or_another_cpu(cache_home, monkeypatch):
    """Two VMs of one CPU name ranked the strategies differently: one ran oneDNN's kernels (AVX-512)."""
    mux_branches = branches(3)

    def key():
        return mux_timing._cache_key(mux_branches, mux_timing._branch_shapes(mux_branches), ["partition"], 16,
                                     "adam", False)

    here = key()
    flipped = not mux_timing.onednn_enabled()
    monkeypatch.setattr(mux_timing, "onednn_enabled", lambda: flipped)
    other_kernels = key()
    monkeypatch.undo()
    monkeypatch.setattr(mux_timing, "cpu_features", lambda: "another instruction set")
    other_cpu = key()
    assert len({here, other_kernels, other_cpu}) == 3


def test_cpu_features_digest_is_stable():
    assert mux_timing.cpu_features() == mux_timing.cpu_features()
    if os.path.exists("/proc/cpuinfo"):
        assert len(mux_timing.cpu_features()) == 16


def test_rates_side_by_side_and_branch_variables_put_back(cache_home):
    mux_branches = branches(2, dropout=True)
    before = [[np.array(v.numpy()) for v in b.variables] for b in mux_branches]
    shapes = [(6, 3), (6, 3)]
    rates = mux_timing.time_strategies(mux_branches, shapes, ["where", "partition", "gather"], 8, "adam", True)
    assert set(rates) == {"where", "partition", "gather"} and all(r > 0 for r in rates.values())
    after = [[np.array(v.numpy()) for v in b.variables] for b in mux_branches]
    assert len(before[0]) > 4  # the dropout layer's seed state is among them
    for old, new in zip(before, after):
        for a, b in zip(old, new):
            np.testing.assert_array_equal(a, b)


def test_a_cache_that_cannot_be_written_never_fails_the_pick(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    monkeypatch.setattr(mux_timing, "ROUND_SECONDS", 0.005)
    assert measured_strategy(branches(2), ["partition", "gather"], 8, "sgd", grouped=False) in ("partition", "gather")
    assert blocker.read_text() == ""


def test_unsynthesisable_branches_keep_the_cost_table(cache_home):
    images = keras.Input((4, 4, 1))
    conv = keras.Model(images, keras.layers.Conv2D(2, 3)(images))
    assert measured_strategy([conv, conv], ["partition", "gather"], 8, "adam", grouped=False) is None
    assert not (cache_home / CACHE_FILE).exists()


BIG_MUX = """
input x: int 0..9
select op: a | b
module enc : onehot(10) -> latent(64) = dense 64
module a   : latent(64) -> latent(64) = dense 512 relu, dense 64
module b   : latent(64) -> latent(64) = dense 512 relu, dense 64
module dec : latent(64) -> onehot(10) = dense 10
route x -> enc -> [a | b] by op -> dec
target y = x
decode dec as y
data enumerate
train steps 10 batch 16 sgd 0.01{extra}
"""


@pytest.mark.parametrize("extra, grouped", [("", False), (" batches grouped", True)])
def test_compiler_measures_big_auto_muxes_only(monkeypatch, extra, grouped):
    from tanglec.backend import codegen
    from support import ARITH
    from tanglec.pipeline import load

    calls = []

    def record(mux_branches, candidates, batch, optimizer, grouped):
        calls.append((len(mux_branches), candidates, batch, optimizer, grouped))
        return "gather"

    monkeypatch.setattr(codegen, "measured_strategy", record)
    model = codegen.build_model(check_spec(parse(BIG_MUX.format(extra=extra))))
    assert calls == [(2, ["where", "partition", "gather", "stacked"], 16, "sgd", grouped)]
    assert [layer.strategy for layer in model._flatten_layers() if hasattr(layer, "strategy")] == ["gather"]

    calls.clear()
    codegen.build_model(load(ARITH))  # the seed spec's muxes are small: the cost table, no measuring
    codegen.build_model(check_spec(parse(BIG_MUX.format(extra=extra))), mux="partition")  # not auto
    assert calls == []
