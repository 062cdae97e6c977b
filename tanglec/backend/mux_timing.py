"""`auto` by measurement: the multiplexer strategy that trains fastest on this machine, for these shapes.

How the strategies rank depends on the machine more than a cost table can say: the same sweep cell
(K = 32, width 256, batch 256, Adam) put `stacked` first on one machine and `gather` first, with
`stacked` 40 % behind, on another whose CPU lacks AVX-512 (TensorFlow's small batched matmuls are
several times slower there). So a multiplexer big enough for the choice to matter
(`MEASURE_MIN_PARAMETERS`) is timed: each candidate strategy runs a few training steps (forward,
loss, gradient, the run's optimizer) on synthetic rows of the real shapes, and the fastest wins.
The answer is kept in the user's cache folder under a key of the machine, TensorFlow's version and
threads, the branches' architecture, the batch size, the routing and the optimizer, so a machine
measures a shape once. The strategies compute the same function, so the choice changes speed only
(and float rounding). Small multiplexers (the seed spec's) keep the cost table and pay nothing.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import time

import keras
import numpy as np
import tensorflow as tf

from ..util.cache import read_record, write_record
from .mux import STRATEGIES, Multiplexer
from .optimizers import make_optimizer
from .stacked import onednn_enabled

MEASURE_MIN_PARAMETERS = 100_000  # branches' weights together; below, a step is too cheap for the choice to matter
CACHE_FILE = "mux-strategies.json"
CACHE_ENTRIES = 200  # the most recent measurements kept
ROUNDS = 4  # round-robin rounds per candidate; the best round counts
ROUND_SECONDS = 0.15  # wall time of one round of one candidate


def measured_candidates(n_branches: int, stackable: bool) -> list[str]:
    """The strategies worth timing: `where` runs every branch on every row, so only two branches
    leave it a chance; `stacked` needs stackable branches."""
    return [s for s in STRATEGIES if (s != "where" or n_branches <= 2) and (s != "stacked" or stackable)]


def measured_strategy(branches, candidates, batch_size: int, optimizer: str, grouped: bool) -> str | None:
    """The fastest of `candidates` for a Multiplexer over `branches`, from the cache or measured now;
    None when the branches' shapes cannot be synthesised (the caller keeps the cost table's pick)."""
    shapes = _branch_shapes(branches)
    if shapes is None or not candidates:
        return None
    key = _cache_key(branches, shapes, candidates, batch_size, optimizer, grouped)
    cached = read_record(CACHE_FILE).get(key, {}).get("strategy")
    if cached in candidates:
        return cached
    rates = time_strategies(branches, shapes, candidates, batch_size, optimizer, grouped)
    best = max(rates, key=rates.get)
    record = read_record(CACHE_FILE)
    record[key] = {"strategy": best, "steps_per_cpu_s": {s: round(r, 2) for s, r in rates.items()},
                   "measured": time.time()}
    newest = sorted(record.items(), key=lambda item: item[1].get("measured", 0) if isinstance(item[1], dict) else 0)
    write_record(CACHE_FILE, dict(newest[-CACHE_ENTRIES:]))
    return best


def time_strategies(branches, shapes, candidates, batch_size: int, optimizer: str, grouped: bool) -> dict:
    """Training steps per CPU second of each candidate strategy on synthetic rows (round-robin, best
    round kept). CPU time, not wall time: other processes sharing the cores slow the wall clock by
    2x and more in bursts, enough to reverse close rankings, and hardly move the process's CPU time.
    The per-branch strategies train the branches themselves: all their variables (weights, and the seed state a dropout layer
    advances) are put back afterwards, so a run is the same whether its pick was measured or cached."""
    rng = np.random.default_rng(0)
    n = len(branches)
    index = tf.constant(np.full(batch_size, rng.integers(n)) if grouped else rng.integers(0, n, batch_size),
                        dtype=tf.int32)
    inputs = {dim: tf.constant(rng.standard_normal((batch_size, dim)), dtype=tf.float32) for dim, _ in shapes}
    xs = [inputs[dim] for dim, _ in shapes]  # one tensor per width: slots that read one producer share it
    target = tf.zeros((batch_size, shapes[0][1]))
    variables = list({id(v): v for b in branches for v in b.variables}.values())
    saved = [v.numpy() for v in variables]
    try:
        loops = {s: _train_loop(_built(Multiplexer(branches, strategy=s), index, xs), index, xs, target,
                                make_optimizer(optimizer, 1e-6))
                 for s in candidates}
        steps = {s: _steps_per_round(loop) for s, loop in loops.items()}
        best = dict.fromkeys(candidates, 0.0)
        for _ in range(ROUNDS):
            for s, loop in loops.items():
                start = time.process_time()
                loop(tf.constant(steps[s])).numpy()
                best[s] = max(best[s], steps[s] / max(time.process_time() - start, 1e-9))
    finally:
        for variable, value in zip(variables, saved):
            variable.assign(value)
    return best


def _built(layer, index, xs):
    """`layer` built by one eager call, as a compiled model's layers are: a stacked multiplexer first
    built inside the traced loop trained ~1.6x slower per step (oneDNN, K = 32), which made `auto`
    pass it over where it was the fastest."""
    layer([index, *xs])
    return layer


def _train_loop(layer, index, xs, target, optimizer):
    @tf.function
    def run(n):
        loss = tf.constant(0.0)
        for _ in tf.range(n):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(layer([index, *xs], training=True) - target))
            variables = layer.trainable_variables
            optimizer.apply(tape.gradient(loss, variables), variables)
        return loss

    return run


def _steps_per_round(loop) -> int:
    """Traces and warms up `loop`; the number of its steps that takes about ROUND_SECONDS."""
    loop(tf.constant(1)).numpy()
    start = time.perf_counter()
    loop(tf.constant(1)).numpy()
    return max(1, round(ROUND_SECONDS / max(time.perf_counter() - start, 1e-6)))


def _branch_shapes(branches) -> list[tuple[int, int]] | None:
    """(input width, output width) of every branch: models of one flat input and one flat output."""
    shapes = []
    for branch in branches:
        if not isinstance(branch, keras.Model) or len(branch.inputs or []) != 1 or len(branch.outputs or []) != 1:
            return None
        x, y = branch.inputs[0].shape, branch.outputs[0].shape
        if len(x) != 2 or len(y) != 2 or x[1] is None or y[1] is None:
            return None
        shapes.append((int(x[1]), int(y[1])))
    return shapes if len({y for _, y in shapes}) == 1 else None


def _cache_key(branches, shapes, candidates, batch_size, optimizer, grouped) -> str:
    """What the ranking depends on: the machine, TensorFlow's kernels and threads, the branches'
    architecture (not their weights) and the run's batch, routing and optimizer. Two VMs both named
    "AMD EPYC" ranked the strategies differently: one had AVX-512, so TensorFlow ran oneDNN's kernels
    there by default; hence the CPU's instruction sets and the kernels in use, not the name alone."""
    architecture = [[shape, [[type(layer).__name__, _layer_signature(layer)] for layer in branch.layers]]
                    for branch, shape in zip(branches, shapes)]
    key = {
        "machine": [platform.machine(), cpu_model(), cpu_features(),
                    len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()],
        "software": [tf.__version__, keras.__version__, onednn_enabled(),
                     tf.config.threading.get_intra_op_parallelism_threads(),
                     tf.config.threading.get_inter_op_parallelism_threads()],
        "branches": architecture, "shared": len({id(b) for b in branches}),
        "candidates": sorted(candidates), "batch": batch_size, "optimizer": optimizer, "grouped": grouped,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _layer_signature(layer) -> str:
    config = {k: v for k, v in layer.get_config().items() if k not in ("name", "seed", "kernel_initializer",
                                                                        "bias_initializer")}
    return json.dumps(config, sort_keys=True, default=str)


def cpu_features() -> str:
    """A digest of the CPU's feature flags (instruction sets), "" where /proc/cpuinfo has none."""
    try:
        with open("/proc/cpuinfo") as info:
            flags = next((line.split(":", 1)[1] for line in info if line.startswith(("flags", "Features"))), "")
    except OSError:
        return ""
    return hashlib.sha256(" ".join(sorted(flags.split())).encode()).hexdigest()[:16] if flags else ""


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            return next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "")
    except OSError:
        return platform.processor()
