#!/usr/bin/env python3
"""Peak memory of training on a large CSV: streamed in chunks (tanglec/stream.py) vs loaded whole;
and of `tanglec eval --data` on it, which reads it a chunk at a time.

    .venv/bin/python bench/stream_memory.py                 # 1,000,000 rows, 20 steps
    .venv/bin/python bench/stream_memory.py --rows 200000   # quicker
    .venv/bin/python bench/stream_memory.py --only baseline --only eval   # just the eval cases
    .venv/bin/python bench/stream_memory.py --json out.json

Writes a gates-like CSV (a 6-bit `pair` vector, a `gate` selector, the 3-bit result `out`) and its
spec into a temporary folder (deleted afterwards; nothing is committed), then runs each case in a
fresh process and reads that process's peak resident memory from the kernel (`os.wait4` rusage
`ru_maxrss`: the high-water mark of the whole process, TensorFlow included):

* `tanglec compile --stream` (a few steps) and `tanglec compile --no-stream` (the same steps);
* the data alone, without TensorFlow: `stream.scan` (the streamed validation pass) and
  `data.build_examples` with the file in memory (what `--no-stream` holds before training);
* a baseline: the same compile on a 1,000-row file (TensorFlow's and the model's own memory);
* `tanglec eval BASELINE_RUN --data` on the large file and on the 1,000-row file.

Prints one JSON object and a markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tanglec.devtools.specgen import write_rows  # noqa: E402

SPEC = """\
# bench/stream_memory.py: gates-like rows from a large CSV
input pair: vector(6)
select gate: and | or | xor

module reader  : vector(6)  -> latent(24) = dense 64 relu, dense 24
module and     : latent(24) -> latent(24) = dense 64 relu, dense 24
module or      : latent(24) -> latent(24) = dense 64 relu, dense 24
module xor     : latent(24) -> latent(24) = dense 64 relu, dense 24
module to_bits : latent(24) -> bits(3)    = dense 32 relu, dense 3
module to_value: latent(24) -> onehot(8)  = dense 32 relu, dense 8

route pair -> reader -> [and | or | xor] by gate -> to_bits, to_value

target out: int 0..7 from data
decode to_bits, to_value as out

data file "{file}" eval {eval} seed 1
train steps {steps} batch 64 adam 0.005 seed 0
"""

def write_spec(folder: Path, file: str, steps: int, eval_fraction: float = 0.01) -> Path:
    spec = folder / f"{Path(file).stem}.tangle"
    spec.write_text(SPEC.format(file=file, steps=steps, eval=eval_fraction))
    return spec


def measure(cmd: list[str], folder: Path, name: str, timeout: float) -> dict:
    """Run `cmd` in a fresh process; its exit code, seconds and peak RSS (MB), stdout parsed as JSON."""
    out, err = folder / f"{name}.out", folder / f"{name}.err"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    started = time.monotonic()
    with out.open("w") as so, err.open("w") as se:
        proc = subprocess.Popen(cmd, stdout=so, stderr=se, cwd=ROOT, env=env)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: keep Popen from waiting again
    seconds = time.monotonic() - started
    try:
        payload = json.loads(out.read_text())
    except ValueError:
        payload = None
    result = {"exit": proc.returncode, "seconds": round(seconds, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}
    if proc.returncode != 0:
        result["error"] = err.read_text()[-2000:]
    if isinstance(payload, dict):
        result.update({k: payload[k] for k in ("steps_run", "accuracy", "rows", "sample", "cases") if k in payload})
    return result


DATA_ONLY = """\
import json, sys
from tanglec.spec.checks import Checked, check
from tanglec.lang.parser import parse_file
from tanglec.data import examples as data, stream
mode = sys.argv[2]
checked = check(parse_file(sys.argv[1]))  # (checking a file this size reads it: stream it to keep this lean)
assert "tensorflow" not in sys.modules
if mode == "stream":
    s = stream.scan(checked)
    print(json.dumps({"rows": s.rows, "sample": len(s.sample_rows)}))
else:
    checked.data.stream = "never"
    ex = data.build_examples(checked)
    print(json.dumps({"rows": ex.n, "sample": len(ex.eval_index)}))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--steps", type=int, default=20, help="training steps per compile (a few)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--only", action="append", default=None, metavar="TEXT",
                    help="run only the cases whose name holds TEXT (repeatable; the eval cases need the baseline)")
    args = ap.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="tanglec-stream-bench-"))
    py = sys.executable
    try:
        t = time.monotonic()
        size = write_rows(folder / "rows.csv", args.rows)
        print(f"wrote {args.rows:,} rows ({size / 2**20:.1f} MB) in {time.monotonic() - t:.1f}s to {folder}",
              file=sys.stderr)
        write_rows(folder / "small.csv", 1000, seed=1)
        spec = write_spec(folder, "rows.csv", args.steps)
        small = write_spec(folder, "small.csv", args.steps, eval_fraction=0.25)
        (folder / "data_only.py").write_text(DATA_ONLY)
        cases = {
            "baseline: compile, 1,000 rows": [py, "-m", "tanglec.cli", "compile", str(small), "-o",
                                              str(folder / "run_small"), "--no-stream", "--json"],
            "compile --stream": [py, "-m", "tanglec.cli", "compile", str(spec), "-o", str(folder / "run_stream"),
                                 "--stream", "--json"],
            "compile --no-stream (in memory)": [py, "-m", "tanglec.cli", "compile", str(spec), "-o",
                                                str(folder / "run_memory"), "--no-stream", "--json"],
            "data only: streamed scan": [py, str(folder / "data_only.py"), str(spec), "stream"],
            "data only: in-memory load": [py, str(folder / "data_only.py"), str(spec), "memory"],
            "eval --data, 1,000 rows": [py, "-m", "tanglec.cli", "eval", str(folder / "run_small"), "--data",
                                        str(folder / "small.csv"), "--failures", "10", "--json"],
            f"eval --data, {args.rows:,} rows": [py, "-m", "tanglec.cli", "eval", str(folder / "run_small"),
                                                 "--data", str(folder / "rows.csv"), "--failures", "10", "--json"],
        }
        if args.only:
            cases = {name: cmd for name, cmd in cases.items() if any(text in name for text in args.only)}
        results = {"rows": args.rows, "file_mb": round(size / 2**20, 1), "steps": args.steps, "cases": {}}
        for name, cmd in cases.items():
            print(f"running {name} ...", file=sys.stderr, flush=True)
            if "data only" in name:  # the checker streams it (TANGLEC_STREAM_BYTES unset: the file is small)
                os.environ["TANGLEC_STREAM_BYTES"] = "0"
            results["cases"][name] = measure(cmd, folder, name.split(":")[0].replace(" ", "_") + str(len(
                results["cases"])), args.timeout)
            os.environ.pop("TANGLEC_STREAM_BYTES", None)
            print(f"  {json.dumps(results['cases'][name])}", file=sys.stderr, flush=True)
    finally:
        if args.keep:
            print(f"kept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    import platform

    results["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    print()
    print(f"{args.rows:,} rows, {results['file_mb']} MB CSV, {args.steps} training steps:")
    print()
    print("| case | peak RSS (MB) | seconds | exit |")
    print("|---|---:|---:|---:|")
    for name, r in results["cases"].items():
        print(f"| {name} | {r['peak_rss_mb']:,.0f} | {r['seconds']} | {r['exit']} |")
    return 0 if all(r["exit"] == 0 for r in results["cases"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
