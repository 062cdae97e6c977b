#!/usr/bin/env python3
"""Fuzz the command line: compile, eval, query and export on generated specs, damaged data and tampered runs.

    .venv/bin/python bench/cli_fuzz.py                          # the acceptance run: 300 + 300 cases
    .venv/bin/python bench/cli_fuzz.py --cases 60 --tamper 60 --seed 1 --json

The cases and the oracle are in `tanglec/devtools/clifuzz*.py` (CI runs a share of them in
tests/test_cli_fuzz.py). Every case runs the real `tanglec` command line in a driver process that
imports TensorFlow once; a share of the cases (`--fresh`), and every case that ends in exit 3, a
signal or a hang, run again in a process of their own. Results go to bench/results/cli_fuzz.json:
counts per family, the exit-code histogram, throughput, and every failure with what reproduces it
(seed, family, case number, command, and the case's folder, kept under --workdir).

Run of 2026-12-02 (`--cases 60 --tamper 60 --seed 1 --fresh 0.15`, 2-core VM shared with other
work): 283 commands (54 in separate processes) in 502 s, 14.3 cases/min (compile cases ~8.6/min,
tampered runs ~42/min); exit codes 0: 180, 1: 88, 2: 3, 3: 12; failures by cause in the results file.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tanglec.devtools.clifuzz import Campaign  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300, help="compile cases (generated specs, some data damaged)")
    parser.add_argument("--tamper", type=int, default=300, help="tampered-run cases")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fresh", type=float, default=0.1, help="share of commands run as separate processes")
    parser.add_argument("--timeout", type=float, default=180, help="seconds before a command counts as hung")
    parser.add_argument("--workdir", type=Path, default=None, help="where the cases' files go (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cli_fuzz.json")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tanglec-cli-fuzz-"))
    log = (lambda line: print(line, file=sys.stderr, flush=True))
    campaign = Campaign(workdir, seed=args.seed, fresh_share=args.fresh, timeout=args.timeout, log=log)
    try:
        report = campaign.run(args.cases, args.tamper)
    finally:
        campaign.close()
    report["workdir"] = str(workdir)
    kinds = (re.sub(r"\d+", "N", problem.split(":")[0]) for f in report["failures"] for problem in f["problems"])
    report["problems"] = dict(Counter(kinds))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(f"{args.cases} compile + {args.tamper} tamper cases, {report['commands']} commands "
              f"({report['fresh_process_commands']} as separate processes), {report['cases_per_minute']} cases/min")
        print(f"exit codes: {report['exit_codes']}; failures: {len(report['failures'])} {report['problems']}")
        print(f"report: {args.out}; case files: {workdir}")
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
