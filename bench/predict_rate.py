"""Benchmark: `tanglec predict` on the seed task, as users run it (a whole process per file).

Trains specs/arith.tangle once (`tanglec compile`), writes N random rows of its inputs (x, encoding,
op) as CSV, and answers them with `tanglec predict RUN FILE -o OUT`: rows per second of the whole
process (TensorFlow's start-up included), every answer checked against the task's rule, and the
peak resident memory (ru_maxrss of the child) on N rows and on 10 x N rows — bounded when the file
is streamed in chunks.

    python bench/predict_rate.py [--rows 200000] [--json PATH]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def tanglec(*args: str) -> tuple[float, int]:
    """Run the CLI; (wall seconds, peak resident memory in MB) of its process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "tanglec.cli", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"tanglec {' '.join(args)} failed: {proc.stderr.read().decode()}")
    return seconds, usage.ru_maxrss // 1024


def write_rows(path: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with path.open("w") as fh:
        fh.write("x,encoding,op\n")
        for _ in range(n):
            fh.write(f"{rng.randrange(10)},{rng.choice(('binary', 'decimal'))},{rng.choice(('plus1', 'times2'))}\n")


def wrong_answers(path: Path) -> tuple[int, int]:
    """(rows, rows where a decoder's answer differs from the task's rule)."""
    rows = wrong = 0
    with path.open() as fh:
        for r in csv.DictReader(fh):
            x = int(r["x"])
            y = (x + 1) % 10 if r["op"] == "plus1" else (x * 2) % 10
            rows += 1
            wrong += int(r["to_binary"]) != y or int(r["to_decimal"]) != y
    return rows, wrong


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tanglec("compile", str(ROOT / "specs" / "arith.tangle"), "-o", str(tmp / "run"))
        figures = {}
        for n in (args.rows, 10 * args.rows):
            rows = tmp / f"rows{n}.csv"
            write_rows(rows, n)
            seconds, peak_mb = tanglec("predict", str(tmp / "run"), str(rows), "-o", str(tmp / "answers.csv"),
                                     "--overwrite")
            answered, wrong = wrong_answers(tmp / "answers.csv")
            figures[n] = {"seconds": round(seconds, 2), "rows_per_s": round(n / seconds), "peak_mb": peak_mb,
                          "answered": answered, "wrong": wrong}
            rows.unlink()
    small, large = figures[args.rows], figures[10 * args.rows]
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
              "load_average": [round(x, 2) for x in load], "rows": figures,
              "peak_memory_ratio": round(large["peak_mb"] / small["peak_mb"], 2)}
    print(json.dumps(result, indent=2))
    print("\n| rows | seconds (whole process) | rows/s | peak memory | wrong answers |\n|---:|---:|---:|---:|---:|")
    for n, f in figures.items():
        print(f"| {n:,} | {f['seconds']} | {f['rows_per_s']:,} | {f['peak_mb']} MB | {f['wrong']} of {f['answered']:,} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
