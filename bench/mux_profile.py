#!/usr/bin/env python3
"""Where a multiplexer training step's milliseconds go: one step of each configuration, op by op.

Builds the configurations of ``bench/mux_sweep.py`` (``limit``, ``partition``, ``stacked``, ...) for
one cell, runs ``--steps`` steps of each under ``tf.profiler`` (``--repeats`` times, the fastest kept)
and sums the traced kernel times by op type (and by op name with ``--by-name``), per step, with the
process's page faults per step: on a VM a fresh 8 MB buffer costs ~2,000 faults of ~3 us, enough to
double an op. Traced times include the profiler's own cost per op (~1 us), so compare shares and
differences between configurations, not absolute rates.

    taskset -c 1 python bench/mux_profile.py --k 32 --batch 256 --threads 1 --kinds limit partition stacked
"""
from __future__ import annotations

import argparse
import glob
import os
import resource
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: E402

from mux_sweep import build, make_runner, routing_index  # noqa: E402

CONTAINERS = {"While", "StatefulPartitionedCall", "PartitionedCall", "If", "StatelessIf", "StatelessWhile"}


def op_times(logdir: str) -> dict[tuple[str, str], float]:
    """(op name, op type) -> traced microseconds, from the host plane of the profile in `logdir`."""
    path = max(glob.glob(f"{logdir}/plugins/profile/*/*.xplane.pb"), key=os.path.getmtime)
    space = xplane_pb2.XSpace()
    space.ParseFromString(Path(path).read_bytes())
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                name = names.get(event.metadata_id, "")
                if ":" not in name or name.startswith(("__inference", "KernelAndDeviceFunc", "ExecutorState")):
                    continue
                op_name, op_type = name.rsplit(":", 1)
                kernel = op_type[:1].isupper() or op_type.startswith(("_Mkl", "_Fused"))  # oneDNN's are `_Mkl...`
                if op_type in CONTAINERS or not kernel:
                    continue
                totals[(op_name, op_type)] += event.duration_ps / 1e6
    return totals


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--routing", default="random")
    ap.add_argument("--kinds", nargs="+", default=["limit", "partition", "stacked"])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--repeats", type=int, default=3, help="traces per configuration; the fastest is kept")
    ap.add_argument("--by-name", action="store_true", help="also list the costliest ops by name")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args(argv)
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    rng = np.random.default_rng(0)
    data = (tf.constant(rng.standard_normal((args.batch, args.width)).astype("float32")),
            tf.constant(routing_index(rng, args.k, args.batch, args.routing)),
            tf.constant(rng.standard_normal((args.batch, args.width)).astype("float32")))
    by_type, counts_by_kind = {}, {}
    for kind in args.kinds:
        run = make_runner(build(kind, args.k, args.width), data, "adam", jit=False, k=args.k, limit=kind == "limit")
        run(tf.constant(3)).numpy()
        best = None
        for _ in range(args.repeats):  # the fastest trace is kept: the others met page faults or other load
            logdir = tempfile.mkdtemp(prefix=f"mux-profile-{kind}-")
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            tf.profiler.experimental.start(logdir)
            start = time.perf_counter()
            run(tf.constant(args.steps)).numpy()
            wall = (time.perf_counter() - start) / args.steps
            tf.profiler.experimental.stop()
            faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / args.steps
            if best is None or wall < best[0]:
                best = (wall, faults, op_times(logdir))
        wall, faults, times = best
        types: dict[str, float] = defaultdict(float)
        counts: dict[str, int] = defaultdict(int)
        for (_, op_type), us in times.items():
            types[op_type] += us / args.steps
            counts[op_type] += 1
        by_type[kind], counts_by_kind[kind] = types, counts
        print(f"\n## {kind}: {wall * 1000:.2f} ms/step traced (best of {args.repeats}), {faults:.0f} page faults/step, "
              f"{sum(types.values()) / 1000:.2f} ms/step in ops", flush=True)
        if args.by_name:
            for (name, op_type), us in sorted(times.items(), key=lambda item: -item[1])[:args.top]:
                print(f"  {us / args.steps:9.1f} us  {op_type:<24} {name[-110:]}")
    kinds = list(by_type)
    all_types = sorted({t for types in by_type.values() for t in types},
                       key=lambda t: -max(types.get(t, 0.0) for types in by_type.values()))
    print("\n| op type | " + " | ".join(f"{k} us/step (ops)" for k in kinds) + " |")
    print("|---|" + "---:|" * len(kinds))
    for op_type in all_types[:args.top]:
        print(f"| {op_type} | " + " | ".join(f"{by_type[k].get(op_type, 0.0):.0f} ({counts_by_kind[k].get(op_type, 0)})" for k in kinds) + " |")
    print("| total | " + " | ".join(f"{sum(by_type[k].values()):.0f}" for k in kinds) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
