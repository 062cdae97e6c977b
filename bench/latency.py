"""Benchmarks (c) and (d): how long `check` and `compile` take, how `check` grows with the spec, and
how many steps the seed spec needs to be exact, over 5 seeds.

Every figure is the wall time of the real `tanglec` command in a fresh process (as a user runs
it), best and median of `--repeat` runs, so other jobs on the machine show up as spread, not as
a slower best; beside it the process's CPU time, which a loaded machine inflates less (the load
average before and after is recorded: a busy 2-core machine still slowed CPU time by ~20% here). Specs of 1k-10k lines come from bench/spec_gen.py.

    python bench/latency.py [--repeat 5] [--check-only] [--json bench/results/latency.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from spec_gen import generate, generate_dense  # noqa: E402

TANGLEC = [sys.executable, "-m", "tanglec.cli"]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def timed(*args: str) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run([*TANGLEC, *args], capture_output=True, text=True, cwd=ROOT, env=ENV)
    return time.perf_counter() - start, proc


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wall(args: list[str], repeat: int) -> dict:
    """Wall and CPU seconds of the whole process (CPU: what a loaded machine doesn't inflate)."""
    times, cpu = [], []
    for _ in range(repeat):
        before = child_cpu()
        seconds, proc = timed(*args)
        if proc.returncode != 0:
            raise SystemExit(f"tanglec {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
        times.append(seconds)
        cpu.append(child_cpu() - before)
    return {"best_s": round(min(times), 3), "median_s": round(statistics.median(times), 3),
            "cpu_best_s": round(min(cpu), 3), "cpu_median_s": round(statistics.median(cpu), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--check-only", action="store_true", help="only the `check` timings (no training)")
    args = parser.parse_args()
    arith = str(ROOT / "specs" / "arith.tangle")
    result: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
                    "measured": time.strftime("%Y-%m-%d"), "repeat": args.repeat,
                    "load_average_before": round(os.getloadavg()[0], 2)}
    result["check_seed_spec"] = wall(["check", arith], args.repeat)
    result["python_startup"] = wall(["--version"], args.repeat)  # the floor every command pays
    with tempfile.TemporaryDirectory() as tmp:
        growth = []
        for lines in (1000, 2000, 5000, 10000):
            path = Path(tmp) / f"spec{lines}.tangle"
            path.write_text(generate(lines))
            entry = {"lines": len(path.read_text().splitlines()), **wall(["check", str(path)], args.repeat)}
            growth.append(entry)
        result["check_growth"] = growth
        dense = Path(tmp) / "dense.tangle"  # issue 15: arith's modules replicated, ~200k tokens
        dense.write_text(generate_dense(10_000))
        result["check_dense"] = {"lines": len(dense.read_text().splitlines()),
                                 **wall(["check", str(dense)], args.repeat)}
        result["load_average_after"] = round(os.getloadavg()[0], 2)
        if args.check_only:
            return report(_with_earlier_compiles(result, args.json), args.json)
        compiles = []
        for seed in range(5):  # (d) and compile latency: the demo's compile, per seed
            out = Path(tmp) / f"run{seed}"
            seconds, proc = timed("compile", arith, "-o", str(out), "--seed", str(seed), "--json")
            if proc.returncode != 0:
                raise SystemExit(proc.stderr[-2000:])
            payload = json.loads(proc.stdout)
            compiles.append({"seed": seed, "steps_run": payload["steps_run"], "accuracy": payload["accuracy"],
                             "train_seconds": round(json.loads((out / "metrics.json").read_text())
                                                    .get("seconds", float("nan")), 2),
                             "compile_wall_s": round(seconds, 2)})
        result["compile_seed_spec"] = compiles
    report(result, args.json)


def _with_earlier_compiles(result: dict, json_path: Path | None) -> dict:
    """--check-only re-measures `check` alone: the compile figures of the file it rewrites are kept,
    with the date they were measured (unknown for files from before this field)."""
    if json_path is None or not json_path.is_file():
        return result
    earlier = json.loads(json_path.read_text())
    if "compile_seed_spec" not in earlier:
        return result
    return {**result, "compile_seed_spec": earlier["compile_seed_spec"],
            "compile_measured": earlier.get("compile_measured", earlier.get("measured", "an earlier run"))}


def report(result: dict, json_path: Path | None) -> None:
    print(json.dumps(result, indent=2))
    print("\n| what | best | median | CPU best | CPU median |\n|---|---:|---:|---:|---:|")
    rows = [("`tanglec check specs/arith.tangle`", result["check_seed_spec"]),
            ("`tanglec --version` (Python start-up)", result["python_startup"])]
    rows += [(f"`check`, {g['lines']:,}-line spec", g) for g in result["check_growth"]]
    rows.append((f"`check`, dense {result['check_dense']['lines']:,}-line spec", result["check_dense"]))
    for what, t in rows:
        print(f"| {what} | {t['best_s']:.2f} s | {t['median_s']:.2f} s | {t['cpu_best_s']:.2f} s "
              f"| {t['cpu_median_s']:.2f} s |")
    if "compile_seed_spec" in result:
        print("\n| seed | steps to 100% | accuracy | training | `tanglec compile` wall |\n|---:|---:|---:|---:|---:|")
        for c in result["compile_seed_spec"]:
            print(f"| {c['seed']} | {c['steps_run']} | {c['accuracy']:.0%} | {c['train_seconds']:.2f} s "
                  f"| {c['compile_wall_s']:.1f} s |")
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2) + "\n")

if __name__ == "__main__":
    main()
