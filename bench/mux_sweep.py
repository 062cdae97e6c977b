#!/usr/bin/env python3
"""Sweep the Multiplexer strategies: training-step rate relative to one plain branch.

For every cell (K branches, batch size B) the script builds, in one process:

* ``one``      -- a single branch MLP on the whole batch: the same FLOPs, no routing;
* ``limit``    -- one branch's forward and backward on the batch plus the optimizer's update of
  all K branches' weights (stacked, one tensor per layer): the work no strategy can skip with a
  dense optimizer;
* ``where`` / ``partition`` / ``gather`` / ``stacked`` -- ``Multiplexer`` over K branch MLPs (all
  slots get the same input ``x``), rows routed by ``--routing``: ``random`` (every example to a
  uniformly random branch, natural routing) and/or ``balanced`` (every branch gets B/K rows);
* ``gather+xla``, ``where+xla`` -- the train step compiled by XLA (``jit_compile=True``),
  only for batch <= ``--xla-max-batch`` (256) and K <= ``--xla-max-k`` (8 with ``--quick``,
  else 32: compiling them is slow); ``one+xla`` is the baseline under XLA
  (ratios are always relative to the plain, non-XLA ``one``);
* ``lazy``     -- ``stacked`` with ``lazy=True`` (``train update lazy``): only the branches that hold
  rows of the batch run and are updated; with ``--routing grouped`` (every batch to one branch, as
  ``train batches grouped`` makes them) that is one branch's work whatever K is;
* ``partition-tfgrad`` (``--tfgrad``) -- ``partition`` with TensorFlow's own gradient of the branch
  models instead of the hand-written one it uses for branches of one Dense chain
  (``tanglec.backend.branch_chain``): what that gradient gains, side by side;
* ``noroute``  -- a reference, not a strategy: the K branches each run on a fixed,
  contiguous B/K slice of the batch. Same FLOPs and same K-fold parameters as the
  multiplexed models but no routing ops at all, so it is the ceiling any routing
  strategy can reach (what is left between ``one`` and ``noroute`` is the price of
  having K separate weight sets, not of routing);
* ``auto`` -- what ``strategy auto`` gives this cell in ``tanglec compile``: the cost table
  (``choose_strategy(K, B, flops, stackable=True)``) for branches with fewer than
  ``MEASURE_MIN_PARAMETERS`` weights together, else ``mux_timing.measured_strategy``'s pick, measured
  in this process on fresh branches before the cell is timed (into a fresh cache folder unless
  ``--auto-cache``). Its rate is the picked strategy's rate in the cell's own measurement.

Branch = MLP ``Dense(W, relu) -> Dense(W)`` on ``[B, W]`` inputs, W = 256.
Rate = steps/s of a compiled train step (``tf.function`` running ``n`` steps of
forward + MSE + gradient + optimizer update (``--optimizer``: tanglec's fused Adam by
default) in a ``tf.range`` loop, like
``steps_per_execution``); compilation and two warm-up calls are excluded. Each
configuration is timed in several round-robin rounds and the best round is kept,
which makes the numbers robust to other processes sharing the CPU; the process CPU
time per step is recorded too (``cpu_ratio_to_one``), a cross-check that hardly
moves when other processes compete for the cores.

    taskset -c 1 python bench/mux_sweep.py --k 32 --batch 256 --xla-max-batch -1 --threads 1   # acceptance cell
    TF_ENABLE_ONEDNN_OPTS=1 python bench/mux_sweep.py ...   # the same with oneDNN's kernels (`stacked`'s padded block)
    python bench/mux_sweep.py --quick --json runs/mux_quick.json   # ~1.5-3 min on 2 cores
    python bench/mux_sweep.py --json runs/mux_full.json            # ~13 min with other load

Prints the JSON on stdout (and writes it to ``--json``), then two markdown tables
(wall-clock ratios, and the CPU-time cross-check) and a summary: best strategy per
cell, whether ``auto`` is within 10 % of the best, and whether XLA helps.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tanglec.backend.mux import STRATEGIES, Multiplexer  # noqa: E402
from tanglec.backend.mux_cost import choose_strategy  # noqa: E402
from tanglec.backend.mux_timing import (MEASURE_MIN_PARAMETERS, cpu_model, measured_candidates,  # noqa: E402
                                        measured_strategy)
from tanglec.backend.stacked import FusedAdam, onednn_enabled  # noqa: E402

FULL_K = (2, 8, 32, 64)
FULL_B = (32, 256, 4096)
QUICK_K = (2, 8, 32)
QUICK_B = (32, 256)


class StaticSlices(keras.layers.Layer):
    """Reference without routing: branch k runs on rows [k*B/K, (k+1)*B/K)."""

    def __init__(self, branches, **kwargs):
        super().__init__(**kwargs)
        self.branches = list(branches)

    def call(self, x):
        parts = tf.split(x, len(self.branches), axis=0)
        return tf.concat([b(p) for b, p in zip(self.branches, parts)], axis=0)

    def compute_output_shape(self, input_shape):
        return self.branches[0].compute_output_shape(input_shape)


def branch_mlp(width: int) -> keras.Model:
    i = keras.Input((width,))
    h = keras.layers.Dense(width, activation="relu")(i)
    return keras.Model(i, keras.layers.Dense(width)(h))


def branch_flops(width: int) -> float:
    """Forward FLOPs of one branch for one example (2 per multiply-add)."""
    return 2.0 * (width * width + width * width)


def build(kind: str, k: int, width: int) -> keras.Model:
    x = keras.Input((width,), name="x")
    sel = keras.Input((), dtype="int32", name="sel")
    if kind in ("one", "limit"):
        y = branch_mlp(width)(x)
    elif kind == "noroute":
        y = StaticSlices([branch_mlp(width) for _ in range(k)])(x)
    elif kind == "partition-tfgrad":
        mux = Multiplexer([branch_mlp(width) for _ in range(k)], strategy="partition")
        mux._chain_specs = None  # the branches run as Keras models, differentiated by TensorFlow
        y = mux([sel] + [x] * k)
    elif kind == "lazy":
        y = Multiplexer([branch_mlp(width) for _ in range(k)], strategy="stacked", lazy=True)([sel] + [x] * k)
    else:
        strategy = kind.split("+")[0]
        y = Multiplexer([branch_mlp(width) for _ in range(k)], strategy=strategy)([sel] + [x] * k)
    return keras.Model({"x": x, "sel": sel}, y)


OPTIMIZERS = {
    "sgd": lambda: keras.optimizers.SGD(1e-3),
    "adam": lambda: FusedAdam(1e-4),  # what `tanglec compile` trains with (optimizers.make_optimizer)
    "keras-adam": lambda: keras.optimizers.Adam(1e-4),
}


def make_runner(model: keras.Model, data, optimizer: str, jit: bool, k: int = 1, limit: bool = False):
    """A compiled loop of `n` train steps. `limit`: the model is one branch, and every step applies the
    optimizer to K branches' weights, stacked (one tensor per layer, the cheapest layout), instead of
    the branch's own: the forward/backward of one branch plus the update that a dense optimizer owes
    every one of the K branches, i.e. what no multiplexer strategy can skip."""
    x, sel, target = data
    opt = OPTIMIZERS[optimizer]()
    variables = model.trainable_variables
    updated = variables
    if limit:
        updated = [tf.Variable(tf.zeros((k, *v.shape))) for v in variables]
        stacked_grads = [tf.fill((k, *v.shape), 1e-3) for v in variables]
    opt.build(updated)

    @tf.function(jit_compile=jit)
    def run(n):
        loss = tf.constant(0.0)
        for _ in tf.range(n):
            with tf.GradientTape() as tape:
                pred = model({"x": x, "sel": sel}, training=True)
                loss = tf.reduce_mean(tf.square(pred - target))
            grads = tape.gradient(loss, variables)
            if limit:  # depend on the backward pass so that it is not pruned
                grads = [g + tf.reduce_sum(b) * 0.0 for g, b in zip(stacked_grads, grads)]
            opt.apply(grads, updated)
        return loss

    return run


class Timer:
    """Times one configuration. `measure()` adds one round of `n` steps.

    Keeps the best wall-clock rate (steps/s) and the least process CPU time per step
    over the rounds. Wall clock is the metric; CPU time is a cross-check that is far
    less sensitive to other processes sharing the machine.
    """

    def __init__(self, run, target_s: float, max_steps: int):
        self.run = run
        self.best = 0.0
        self.cpu = float("inf")
        t = time.perf_counter()
        run(tf.constant(1)).numpy()  # trace + compile
        self.compile_s = time.perf_counter() - t
        t = time.perf_counter()
        run(tf.constant(1)).numpy()  # warm-up
        one = time.perf_counter() - t
        self.n = int(max(1, min(max_steps, target_s / max(one, 1e-6))))
        # XLA treats the loop count as a compile-time constant: warm up with the very
        # `n` that is timed, so no round includes a recompilation
        if self.n != 1:
            run(tf.constant(self.n)).numpy()

    def measure(self):
        t, c = time.perf_counter(), time.process_time()
        self.run(tf.constant(self.n)).numpy()
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        self.best = max(self.best, self.n / wall)
        self.cpu = min(self.cpu, cpu / self.n)


def routing_index(rng, k: int, batch: int, routing: str) -> np.ndarray:
    """`random`: every row to a uniformly random branch (natural routing); `balanced`: every branch
    gets batch/K rows (one more for the first batch % K), in random order; `grouped`: every row to one
    branch, as in a batch of one route (`train batches grouped`)."""
    if routing == "grouped":
        return np.full(batch, rng.integers(0, k), dtype="int32")
    if routing == "random":
        return rng.integers(0, k, batch).astype("int32")
    return rng.permutation(np.arange(batch) % k).astype("int32")


def auto_pick(k: int, batch: int, width: int, routing: str, optimizer: str) -> tuple[str, float]:
    """`strategy auto`'s pick for the cell, as the compiler makes it, and the seconds it took."""
    start = time.perf_counter()
    pick = choose_strategy(k, batch, branch_flops(width), stackable=True)
    branches = [branch_mlp(width) for _ in range(k)]
    if sum(b.count_params() for b in branches) >= MEASURE_MIN_PARAMETERS:
        pick = measured_strategy(branches, measured_candidates(k, stackable=True), batch,
                                 {"keras-adam": "adam"}.get(optimizer, optimizer), routing == "grouped") or pick
    return pick, time.perf_counter() - start


def bench_cell(k, batch, width, kinds, optimizer, rounds, target_s, max_steps, seed=0, routing="random"):
    auto, auto_seconds = auto_pick(k, batch, width, routing, optimizer)
    rng = np.random.default_rng(seed)
    data = (
        tf.constant(rng.standard_normal((batch, width)).astype("float32")),
        tf.constant(routing_index(rng, k, batch, routing)),
        tf.constant(rng.standard_normal((batch, width)).astype("float32")),
    )
    timers, errors = {}, {}
    for kind in kinds:
        try:
            model = build(kind.split("+")[0], k, width)
            run = make_runner(model, data, optimizer, jit=kind.endswith("+xla"), k=k, limit=kind == "limit")
            timers[kind] = Timer(run, target_s, max_steps)
        except Exception as err:  # e.g. XLA refusing a graph: report, keep going
            errors[kind] = f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
    # Round-robin; the baseline is re-timed right before every other configuration so
    # that it sees the same (shared, noisy) machine. Best round wins for each; the
    # baseline gets more rounds than the others, which only makes ratios conservative.
    for _ in range(rounds):
        for kind, timer in timers.items():
            if kind != "one" and "one" in timers:
                timers["one"].measure()
            timer.measure()
    rates = {kind: t.best for kind, t in timers.items()}
    one = rates["one"]
    ratio = {kind: r / one for kind, r in rates.items() if kind != "one"}
    cpu_ratio = {kind: timers["one"].cpu / t.cpu for kind, t in timers.items() if kind != "one"}
    flops = branch_flops(width)
    strat = {s: ratio[s] for s in STRATEGIES if s in ratio}
    best = max(strat, key=strat.get) if strat else None
    cpu_strat = {s: cpu_ratio[s] for s in STRATEGIES if s in cpu_ratio}
    cpu_best = max(cpu_strat, key=cpu_strat.get) if cpu_strat else None
    routed = {kk: v for kk, v in ratio.items() if kk not in ("noroute", "one+xla", "limit", "partition-tfgrad")}
    cell = {
        "K": k,
        "batch": batch,
        "width": width,
        "branch_flops": flops,
        "steps_per_s": {kind: round(r, 2) for kind, r in rates.items()},
        "ratio_to_one": {kind: round(r, 4) for kind, r in ratio.items()},
        "cpu_ratio_to_one": {kind: round(r, 4) for kind, r in cpu_ratio.items()},
        "compile_s": {kind: round(t.compile_s, 2) for kind, t in timers.items()},
        "steps_per_round": {kind: t.n for kind, t in timers.items()},
        "best": best,
        "best_incl_xla": max(routed, key=routed.get) if routed else None,
        "cpu_best": cpu_best,
        "auto": auto,
        "auto_seconds": round(auto_seconds, 2),
    }
    if best is not None and auto in strat:
        cell["auto_ratio"] = round(strat[auto], 4)
        cell["auto_within_10pct"] = bool(strat[auto] >= 0.9 * strat[best])
        cell["auto_within_10pct_cpu"] = bool(cpu_strat[auto] >= 0.9 * cpu_strat[cpu_best])
    if "noroute" in ratio and best is not None:
        cell["best_vs_noroute"] = round(strat[best] / ratio["noroute"], 4)
    if errors:
        cell["errors"] = errors
    return cell


XLA_KINDS = ("gather+xla", "where+xla")


def markdown(cells, metric: str = "ratio_to_one") -> str:
    """One row per cell: ratio to the one-branch rate, best strategy in bold.

    metric "ratio_to_one" = wall-clock steps/s ratio; "cpu_ratio_to_one" = ratio of
    process CPU time per step (best = the strategy that is best by that metric).
    """
    xla = [kk for kk in XLA_KINDS if any(kk in c["ratio_to_one"] for c in cells)]
    wall = metric == "ratio_to_one"
    tfgrad = ["partition-tfgrad"] if any("partition-tfgrad" in c[metric] for c in cells) else []
    cols = ["routing", "K", "batch", "one steps/s", "limit", *STRATEGIES, *tfgrad, "lazy", *xla]
    cols += ["auto (pick)", "best", "auto ≤10% off"]
    cols += ["noroute (ceiling)", "one+xla"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for c in cells:
        r = c[metric]
        best = c["best"] if wall else c["cpu_best"]
        ok = c.get("auto_within_10pct" if wall else "auto_within_10pct_cpu")

        def f(kind):
            if kind in r:
                v = f"{r[kind]:.3f}"
                return f"**{v}**" if kind == best else v
            return "err" if kind in c.get("errors", {}) else "–"

        row = [c["routing"], str(c["K"]), str(c["batch"]), f"{c['steps_per_s']['one']:.0f}", f("limit")]
        row += [f(s) for s in STRATEGIES] + [f(kk) for kk in tfgrad] + [f("lazy")] + [f(kk) for kk in xla]
        row += [
            f"{r.get(c['auto'], float('nan')):.3f} ({c['auto']})",
            str(best),
            {True: "yes", False: "NO"}.get(ok, "–"),
            f("noroute"),
            f("one+xla"),
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def summary(cells) -> str:
    """Who wins, is auto good enough, does XLA help: one line each."""
    lines = []
    wins = {}
    for c in cells:
        wins[c["best"]] = wins.get(c["best"], 0) + 1
    lines.append("best strategy per cell (wall clock): " + ", ".join(f"{k} {v}" for k, v in sorted(wins.items())))
    judged = [c for c in cells if "auto_within_10pct" in c]
    ok = sum(c["auto_within_10pct"] for c in judged)
    ok_cpu = sum(c["auto_within_10pct_cpu"] for c in judged)
    lines.append(
        f"auto within 10% of the best: {ok}/{len(judged)} cells by wall clock, "
        f"{ok_cpu}/{len(judged)} by CPU time per step"
    )
    for xla, plain in (("gather+xla", "gather"), ("where+xla", "where"), ("one+xla", None)):
        pairs = [
            (c["ratio_to_one"][xla], c["ratio_to_one"][plain] if plain else 1.0, c)
            for c in cells
            if xla in c["ratio_to_one"] and (plain is None or plain in c["ratio_to_one"])
        ]
        if not pairs:
            continue
        faster = sum(x > p for x, p, _ in pairs)
        speedups = sorted(x / p for x, p, _ in pairs)
        beats_best = sum(x > c["ratio_to_one"][c["best"]] for x, _, c in pairs)
        lines.append(
            f"XLA {xla} vs {plain or 'one'}: faster in {faster}/{len(pairs)} cells, speed-up "
            f"{speedups[0]:.2f}x..{speedups[-1]:.2f}x (median {speedups[len(speedups) // 2]:.2f}x)"
            + ("" if plain is None else f"; beats the best non-XLA strategy in {beats_best}/{len(pairs)}")
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="K in {2,8,32}, batch in {32,256}, short timings")
    ap.add_argument("--json", type=Path, help="also write the JSON here")
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--k", type=int, nargs="*", help="override the K values")
    ap.add_argument("--batch", type=int, nargs="*", help="override the batch sizes")
    ap.add_argument("--optimizer", choices=tuple(OPTIMIZERS), default="adam",
                    help="adam: tanglec's (FusedAdam); keras-adam: Keras's own")
    ap.add_argument("--routing", choices=("random", "balanced", "grouped", "both", "all"), default=["both"],
                    nargs="+", help="random: natural routing; balanced: every branch gets batch/K rows; grouped: "
                                    "a batch of one route; both: random and balanced; all: the three")
    ap.add_argument("--rounds", type=int, help="timing rounds per configuration (best kept)")
    ap.add_argument("--target-seconds", type=float, help="wall time of one timing round")
    ap.add_argument(
        "--xla-max-batch", type=int, default=256,
        help="time the XLA variants only for batch <= this (slow on CPU); -1 disables them",
    )
    ap.add_argument(
        "--xla-max-k", type=int,
        help="time the XLA variants only for K <= this (default: 8 with --quick, else 32)",
    )
    ap.add_argument("--no-noroute", action="store_true", help="skip the no-routing reference")
    ap.add_argument("--tfgrad", action="store_true",
                    help="also time partition with TensorFlow's own gradient (partition-tfgrad)")
    ap.add_argument("--threads", type=int, help="TensorFlow's intra- and inter-op threads (default: TF's own)")
    ap.add_argument("--auto-cache", action="store_true",
                    help="let auto's measurements use the user's cache folder (default: a fresh one, so every "
                         "cell's pick is measured in this run)")
    args = ap.parse_args(argv)
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    if not args.auto_cache:
        os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="mux-sweep-cache-")

    ks = tuple(args.k or (QUICK_K if args.quick else FULL_K))
    bs = tuple(args.batch or (QUICK_B if args.quick else FULL_B))
    rounds = args.rounds or (2 if args.quick else 4)
    target = args.target_seconds or (0.08 if args.quick else 0.25)
    max_steps = 1000 if args.quick else 3000
    xla_max_k = args.xla_max_k if args.xla_max_k is not None else (8 if args.quick else 32)

    keras.utils.set_random_seed(0)
    started = time.time()
    load_at_start = os.getloadavg() if hasattr(os, "getloadavg") else None
    cells = []
    named = {"both": ("random", "balanced"), "all": ("random", "balanced", "grouped")}
    routings = tuple(dict.fromkeys(r for name in args.routing for r in named.get(name, (name,))))
    for routing, batch, k in [(r, b, k) for r in routings for b in bs for k in ks]:
            kinds = ["one", "limit", *STRATEGIES, "lazy"] + (["partition-tfgrad"] if args.tfgrad else [])
            if 0 <= batch <= args.xla_max_batch and k <= xla_max_k:
                kinds += ["gather+xla", "where+xla"]
            if args.xla_max_batch >= 0:
                kinds.append("one+xla")
            if not args.no_noroute and batch % k == 0:
                kinds.append("noroute")
            t0 = time.time()
            cell = bench_cell(k, batch, args.width, kinds, args.optimizer, rounds, target, max_steps,
                              routing=routing)
            cell["routing"] = routing
            cell["seconds"] = round(time.time() - t0, 1)
            cells.append(cell)
            print(
                f"# {routing:<8} K={k:<3} B={batch:<5} best={cell['best']:<9} auto={cell['auto']:<9} "
                + " ".join(f"{kk}={v:.3f}" for kk, v in cell["ratio_to_one"].items())
                + f"  ({cell['seconds']}s)",
                file=sys.stderr,
                flush=True,
            )
            keras.backend.clear_session()

    report = {
        "benchmark": "tanglec.backend.mux training-step rate / one-branch rate",
        "mode": "quick" if args.quick else "full",
        "optimizer": args.optimizer,
        "width": args.width,
        "rounds": rounds,
        "target_seconds_per_round": target,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "loadavg_at_start": load_at_start,
            "cpu": cpu_model(),
            "cpu_affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "tf_threads": [tf.config.threading.get_intra_op_parallelism_threads(),
                           tf.config.threading.get_inter_op_parallelism_threads()],
            "onednn": onednn_enabled(),
            "loadavg_at_end": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
        "seconds": round(time.time() - started, 1),
        "cells": cells,
    }
    text = json.dumps(report, indent=2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    print(text)
    print()
    print("Steps/s relative to one plain branch (wall clock; the metric):")
    print()
    print(markdown(cells))
    print()
    print("Cross-check, one-branch CPU time per step / CPU time per step (insensitive to other load):")
    print()
    print(markdown(cells, "cpu_ratio_to_one"))
    print()
    print(summary(cells))
    for key in (c for c in cells if c["K"] == 32 and c["batch"] == 256):
        r = key["ratio_to_one"]
        print()
        print(
            f"acceptance cell ({key['routing']} routing) K=32 B=256 W={args.width} {args.optimizer}: "
            f"stacked {r.get('stacked', float('nan')):.3f}x of one branch, limit (one branch + the update "
            f"of all K branches) {r.get('limit', float('nan')):.3f}x -> stacked/limit "
            f"{r.get('stacked', float('nan')) / r.get('limit', float('nan')):.3f} (goal >= 0.8); "
            f"best {key['best']} {r[key['best']]:.3f}x; lazy {r.get('lazy', float('nan')):.3f}x of one branch"
            + (" (goal >= 0.5 with grouped batches)" if key["routing"] == "grouped" else "")
            + f"; load {os.getloadavg()[0]:.2f}; oneDNN {'on' if onednn_enabled() else 'off'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
