"""Benchmark: does the default alignment make a held-out route work without tuning?

specs/arith99_holdout.tangle (x in 0..99, `holdout binary -> times2`, `align binary, decimal on x`
with no weight) is trained for seeds 0..4 through the CLI as a user would, `tanglec compile` then
`tanglec eval --json`, and the held-out route's accuracy is recorded per seed (acceptance: >= 99%
on every seed). `--weight W` writes `weight W` into the align statement instead (the sweep that chose
the default). `--old COMMIT` also runs the same spec with `weight 1` under tanglec as it was at
COMMIT (extracted with `git archive`): the un-normalised term, for comparison.

    python bench/align_default.py [--seeds 0,1,2,3,4] [--steps N] [--weight W] [--old COMMIT]
                                  [--json bench/results/align_default.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "arith99_holdout.tangle"
ALIGN = "align binary, decimal on x"


def spec_text(weight: float | None, steps: int | None) -> str:
    """The benchmark spec, with `weight W` on its align statement and its step count replaced if asked."""
    text = SPEC.read_text()
    if weight is not None:
        text = text.replace(ALIGN + "\n", f"{ALIGN} weight {weight:g}\n")
    if steps is not None:
        text = text.replace("train steps 1500", f"train steps {steps}")
    return text


def tanglec(source: Path, *args: str) -> dict:
    """`tanglec ARGS --json` from the tanglec package in `source`, its JSON answer."""
    env = {**os.environ, "PYTHONPATH": str(source), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-m", "tanglec.cli", *args, "--json"], capture_output=True, text=True,
                          env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"tanglec {' '.join(args)} failed ({done.returncode}): {done.stdout}{done.stderr}")
    return json.loads(done.stdout)


def held_out_accuracy(source: Path, spec: Path, seed: int, folder: Path) -> dict:
    """Compile `spec` with `seed` into `folder`, evaluate the run, and report its held-out route."""
    run = folder / f"run_s{seed}"
    started = time.perf_counter()
    compiled = tanglec(source, "compile", str(spec), "-o", str(run), "--seed", str(seed))
    evaluated = tanglec(source, "eval", str(run))
    route = next(r for r in evaluated["routes"] if r["name"] == "binary → times2")
    history = json.loads((run / "metrics.json").read_text())["history"]
    align_loss = next((h["losses"].get("align_binary_decimal") for h in reversed(history)), None)
    return {"seed": seed, "held_out_accuracy": route["accuracy"], "all_routes_accuracy": evaluated["accuracy"],
            "steps_run": compiled["steps_run"], "seconds": round(time.perf_counter() - started, 1),
            "last_align_loss": align_loss}


def series(source: Path, text: str, seeds: list[int], label: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="align_default_") as tmp:
        spec = Path(tmp) / "arith99_holdout.tangle"
        spec.write_text(text)
        runs = []
        for seed in seeds:
            runs.append(held_out_accuracy(source, spec, seed, Path(tmp)))
            print(f"{label} seed {seed}: held-out {runs[-1]['held_out_accuracy']:.1%} "
                  f"({runs[-1]['steps_run']} steps, {runs[-1]['seconds']}s)", file=sys.stderr)
    accuracies = [r["held_out_accuracy"] for r in runs]
    return {"runs": runs, "min_held_out_accuracy": min(accuracies),
            "seeds_at_99": sum(a >= 0.99 for a in accuracies), "seeds": len(seeds)}


def old_source(commit: str, folder: Path) -> Path:
    """The tanglec package as it was at `commit`, extracted into `folder`."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "tanglec"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--steps", type=int, default=None, help="override the spec's step count")
    parser.add_argument("--weight", type=float, default=None, help="give the align statement this weight")
    parser.add_argument("--old", default=None, metavar="COMMIT",
                        help="also run with `weight 1` under tanglec at COMMIT (the un-normalised term)")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "align_default.json")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    text = spec_text(args.weight, args.steps)
    label = "default" if args.weight is None else f"weight {args.weight:g}"
    result = {"spec": str(SPEC.relative_to(ROOT)), "steps": args.steps, "weight": args.weight,
              "machine": platform.platform(), "python": platform.python_version(),
              "aligned": series(ROOT, text, seeds, label)}
    if args.old:
        with tempfile.TemporaryDirectory(prefix="tanglec_old_") as tmp:
            source = old_source(args.old, Path(tmp))
            result["unnormalised_weight_1"] = {"commit": args.old,
                                               **series(source, spec_text(1, args.steps), seeds, "old weight 1")}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result["aligned"].items() if k != "runs"}))


if __name__ == "__main__":
    main()
