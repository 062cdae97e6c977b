"""Chains of operations (specs/arith_chains.tangle): accuracy by chain length, with and without the
alignment on the fold, over seeds; and the training-step rate of chains of 4 against chains of 1.

Everything runs the real command (`tanglec compile --json`) in a fresh process on specs written next
to a copy of the spec, so the figures are what a user gets.

accuracy: for each seed and variant, exact accuracy per chain length (lengths 3 and 4 are held out:
never trained) and how many routes of each length reach 95%. Variants: `aligned` (the spec as it is),
`no_fold_align` (without `align binary, decimal on y`), `no_align` (without either align line).

rate: steps/s from the difference of two runs of the same spec (STEPS_SHORT and STEPS_LONG steps, one
evaluation at the end), so start-up, building and evaluation cancel out; by wall time and by CPU time. `length 1`: one position
`[plus1 | times2] by op1`; `length 4`: four positions with no `stop`; `length 1 of 4`: the four-position
spec with every example stopping after one operation (what masking costs: every position still runs).

    python bench/chains.py [--seeds 0 1 2 3 4] [--variants aligned no_fold_align] [--no-rate] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "arith_chains.tangle"
FOLD_ALIGN = "align binary, decimal on y weight 1\n"
INPUT_ALIGN = "align binary, decimal on x weight 1\n"
STEPS_SHORT, STEPS_LONG = 100, 2100  # below XLA_MIN_STEPS: both runs without XLA


def compile_json(spec: Path, out: Path, *extra: str) -> dict:
    """The compile's JSON, plus `cpu`: the CPU seconds the command used (all its threads)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-m", "tanglec.cli", "compile", str(spec), "-o", str(out), "--json",
                           *extra], capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"compile {spec.name} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {**json.loads(proc.stdout), "cpu": cpu}


def by_length(result: dict) -> dict:
    groups = defaultdict(lambda: {"cases": 0, "exact": 0, "routes": 0, "routes_95": 0, "routes_100": 0})
    for r in result["routes"]:
        g = groups[r["length"]]
        g["cases"] += r["cases"]
        g["exact"] += r["exact"]
        g["routes"] += 1
        g["routes_95"] += r["accuracy"] >= 0.95
        g["routes_100"] += r["accuracy"] == 1.0
    return {n: {**g, "accuracy": g["exact"] / g["cases"]} for n, g in sorted(groups.items())}


def variant_text(name: str) -> str:
    text = SPEC.read_text()
    if name in ("no_fold_align", "no_align"):
        text = text.replace(FOLD_ALIGN, "")
    if name == "no_align":
        text = text.replace(INPUT_ALIGN, "")
    return text


def accuracy(seeds: list[int], variants: list[str], work: Path) -> dict:
    out = {}
    for variant in variants:
        spec = work / f"chains_{variant}.tangle"
        spec.write_text(variant_text(variant))
        out[variant] = {}
        for seed in seeds:
            result = compile_json(spec, work / f"run_{variant}_{seed}", "--seed", str(seed))
            out[variant][seed] = {"steps": result["steps_run"], "seconds": result["seconds"],
                                  "by_length": by_length(result)}
            print(variant, seed, {n: f"{g['accuracy']:.3f} ({g['routes_95']}/{g['routes']} >=95%)"
                                  for n, g in out[variant][seed]["by_length"].items()}, flush=True)
    return out


def rate_specs() -> dict[str, str]:
    base = variant_text("aligned").replace(FOLD_ALIGN, "").replace("holdout length 3, 4\n", "")
    no_stop = (base.replace("[plus1 | times2 | stop: _]", "[plus1 | times2]").replace(" | stop\n", "\n")
               .replace(", stop: v }", " }"))
    one = no_stop.replace("by op1, op2, op3, op4", "by op1")
    for sel in ("op2", "op3", "op4"):
        one = one.replace(f"select {sel}: plus1 | times2\n", "")
    stopping = base.replace("data enumerate", "data enumerate only op2:stop only op3:stop only op4:stop")
    return {"length 1": one, "length 4": no_stop, "length 1 of 4": stopping}


def rates(work: Path, repeats: int) -> dict:
    """Steps/s of each spec from the difference of a long and a short run, each the best of `repeats`
    (interleaved across specs, so a burst of load hits all of them): by wall time of the training
    (`seconds`) and by the CPU time of the whole command, which other processes' load hardly moves."""
    specs = {}
    for label, text in rate_specs().items():
        specs[label] = work / f"rate_{label.replace(' ', '_')}.tangle"
        specs[label].write_text(text.replace("eval_every 50", f"eval_every {STEPS_LONG}"))
    best = {(label, steps): {"train": float("inf"), "cpu": float("inf")} for label in specs
            for steps in (STEPS_SHORT, STEPS_LONG)}
    for repeat in range(repeats):
        for label, spec in specs.items():
            for steps in (STEPS_SHORT, STEPS_LONG):
                result = compile_json(spec, work / f"rate_{spec.stem}_{steps}_{repeat}", "--steps", str(steps))
                cell = best[label, steps]
                cell["train"], cell["cpu"] = min(cell["train"], result["seconds"]), min(cell["cpu"], result["cpu"])
    out = {}
    for label in specs:
        short, long_ = best[label, STEPS_SHORT], best[label, STEPS_LONG]
        out[label] = {"steps_per_s_wall": (STEPS_LONG - STEPS_SHORT) / (long_["train"] - short["train"]),
                      "steps_per_cpu_s": (STEPS_LONG - STEPS_SHORT) / (long_["cpu"] - short["cpu"]),
                      "best_seconds": {STEPS_SHORT: short, STEPS_LONG: long_}}
        print(label, {k: round(v, 1) for k, v in out[label].items() if k != "best_seconds"}, flush=True)
    for key in ("steps_per_s_wall", "steps_per_cpu_s"):
        out[f"ratio_4_to_1 ({key})"] = out["length 4"][key] / out["length 1"][key]
        out[f"ratio_masked_1_of_4_to_1 ({key})"] = out["length 1 of 4"][key] / out["length 1"][key]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--variants", nargs="+", default=["aligned", "no_fold_align", "no_align"])
    ap.add_argument("--no-rate", action="store_true")
    ap.add_argument("--no-accuracy", action="store_true")
    ap.add_argument("--repeats", type=int, default=2, help="runs of each rate measurement (the best counts)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    report = {"load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not args.no_accuracy:
            report["accuracy"] = accuracy(args.seeds, args.variants, work)
        if not args.no_rate:
            report["rate"] = rates(work, args.repeats)
    report["load_after"] = os.getloadavg()
    text = json.dumps(report, indent=1)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
