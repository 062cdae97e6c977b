"""What the spec alone decides, decided at `tanglec check` (and so before `compile` builds anything):
expressions that can fail, integer learning rates, decoder/target shapes, nothing to train, a run's
memory (E127); and every spec up to the size cap accepted or refused quickly in little memory."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from support import ROOT, run_tanglec
from tanglec.spec.check_limits import MAX_MODULES
from tanglec.lang.parser import MAX_EXPR_DEPTH, MAX_SOURCE_BYTES, MAX_TOKENS

ONE = """\
input x: int 0..3
module m : onehot(4) -> scalar = dense 4, dense 1
route x -> m
target y = x
decode m as y
"""


def one(old: str, new: str) -> str:
    assert old in ONE, old
    return ONE.replace(old, new, 1)


def snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


# (id, spec, code, line, col, a fragment of the message)
REFUSED = [
    ("reciprocal-of-zero", one("target y = x", "target y = x ** -1"), "E110", 4, 12,
     "zero raised to a negative power (for 1 of the examples)"),
    ("constant-reciprocal-of-zero", one("target y = x", "target y = 0 ** -1"), "E110", 4, 12,
     "zero raised to a negative power"),
    ("sampled-reciprocal-of-zero", one("target y = x", "target y = 1 + (x - 2) ** -3") + "data sample 200\n",
     "E110", 4, 16, "zero raised to a negative power"),
    ("division-over-a-large-enumerated-domain", "input x: int -50000..50000\ninput z: int 0..8\n"
     "module m : scalar -> scalar = dense 4, dense 1\nroute x -> m\ntarget y = 100 // x + z\ndecode m as y\n",
     "E110", 5, 19, "division by zero"),
    ("vector-decoder-scalar-target", one("-> scalar = dense 4, dense 1", "-> vector(3) = dense 3"), "E112", 4, 8,
     "target 'y' is one number per example, but decoder 'm' outputs vector(3)"),
    ("selector-only", "select s: a | b\n", "E126", 1, 1, "nothing to train: no decoder"),
    ("selector-and-module", "input x: int 0..3\nselect s: a | b\nmodule m : onehot(4) -> latent(4) = dense 4\n"
     "route x -> m\n", "E126", 3, 8, "nothing to train: no decoder"),
    ("wide-layer-huge-batch", one("dense 4, dense 1", "dense 100000, dense 1") + "data sample 1000000\n"
     "train batch 1000000\n", "E127", 2, 34, "the run needs about 800.0 GB of memory, over the 4.0 GB cap"),
    ("huge-sample-of-wide-vectors", "input v: vector(100000)\nmodule e: vector(100000) -> scalar = dense 1\n"
     "route v -> e\ntarget y = 1\ndecode e as y\ndata sample 1000000\n", "E127", 6, 1,
     "the sample holds 100,001,000,000 values"),
    ("memory-cap-setting", one("dense 4, dense 1", "dense 20000, dense 1") + "train memory 0.001\n",
     "E127", 2, 1, "over the 1.0 MB cap (mostly 120,001 parameters)"),
]


@pytest.mark.parametrize("name,text,code,line,col,fragment", REFUSED, ids=[c[0] for c in REFUSED])
def test_check_and_compile_refuse_with_a_positioned_diagnostic(tmp_path, name, text, code, line, col, fragment):
    spec = tmp_path / "spec.tangle"
    spec.write_text(text)
    before = snapshot(tmp_path)
    checked = run_tanglec("check", str(spec), "--json", timeout=60)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    found = [d for d in json.loads(checked.stdout)["diagnostics"] if d["code"] == code]
    assert found, checked.stdout
    d = found[0]
    assert (d["span"]["line"], d["span"]["col"]) == (line, col) and fragment in d["message"], d
    compiled = run_tanglec("compile", str(spec), "-o", str(tmp_path / "run"), "--steps", "5", timeout=120)
    assert compiled.returncode == 1, compiled.stderr[-2000:]
    assert f"spec.tangle:{line}:{col}: error[{code}]" in compiled.stderr
    assert "Traceback" not in compiled.stderr + checked.stderr
    assert snapshot(tmp_path) == before  # no run, no temporary or checkpoint folder


@pytest.mark.parametrize("setting", ["adam 1", "lr 1", "sgd 1"])
def test_integer_learning_rate_trains(tmp_path, setting):
    spec = tmp_path / "spec.tangle"
    # a classifier: sgd at lr 1 on ONE's regression diverges (E171, tests/test_train_limits.py), which is not the point here
    spec.write_text(ONE.replace("-> scalar = dense 4, dense 1", "-> onehot(4) = dense 4, dense 4") + f"train steps 5 {setting}\n")
    assert run_tanglec("check", str(spec)).returncode == 0
    proc = run_tanglec("compile", str(spec), "-o", str(tmp_path / "run"), "--steps", "5", timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "run" / "manifest.json").is_file()


def test_vector_decoder_trains_on_a_vector_column_from_data(tmp_path):
    spec = tmp_path / "spec.tangle"
    spec.write_text("input x: int 0..3\nmodule m : onehot(4) -> vector(2) = dense 2\nroute x -> m\n"
                    "target y: vector(2) from data\ndecode m as y\ndata file \"rows.jsonl\"\n")
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps({"x": i, "y": [i, -i]}) + "\n" for i in range(4)))
    proc = run_tanglec("check", str(spec))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    spec.write_text(spec.read_text().replace("vector(2) from", "vector(3) from"))
    proc = run_tanglec("check", str(spec))
    assert proc.returncode == 1 and "target 'y' is vector(3), but decoder 'm' outputs vector(2)" in proc.stderr


def test_range_outside_the_checked_sample_is_caught_when_the_data_is_built(tmp_path):
    """`check` evaluates a large domain on a bounded sample; building the data checks every row."""
    spec = tmp_path / "spec.tangle"
    spec.write_text("input x: int 0..199999\nmodule m : scalar -> onehot(4) = dense 4\nroute x -> m\n"
                    "target y = if x == 123457 then 9 else x % 4\ndecode m as y\ndata enumerate\n")
    assert run_tanglec("check", str(spec)).returncode == 0
    proc = run_tanglec("compile", str(spec), "-o", str(tmp_path / "run"), "--steps", "5", timeout=120)
    assert proc.returncode == 1 and "spec.tangle:4:12: error[E112]: target 'y' ranges over 0..9" in proc.stderr
    assert not (tmp_path / "run").exists()


def test_a_spec_starting_with_a_byte_order_mark_is_accepted(tmp_path):
    spec = tmp_path / "spec.tangle"
    spec.write_bytes(b"\xef\xbb\xbf" + one("target y = x", "target y = zz").encode())
    proc = run_tanglec("check", str(spec))
    assert proc.returncode == 1 and "spec.tangle:4:12: error[E109]: unknown field 'zz'" in proc.stderr
    spec.write_bytes(b"\xef\xbb\xbf" + ONE.encode())
    assert run_tanglec("check", str(spec)).returncode == 0


def limit_line(text: str, code: str) -> tuple[int, str]:
    from tanglec.spec.onepass import check_text

    _, diagnostics = check_text(text, "t.tangle")
    d = next(d for d in diagnostics if d.code == code)
    return d.span.line, text.split("\n")[d.span.line - 1]


def test_limits_point_at_their_cause_not_at_the_first_line():
    modules = "input x: int 0..1\n" + "".join(f"module m{i}: onehot(2) -> onehot(2) = dense 2\n"
                                              for i in range(MAX_MODULES + 1))
    assert limit_line(modules, "E127") == (MAX_MODULES + 2, f"module m{MAX_MODULES}: onehot(2) -> onehot(2) = dense 2")
    wide = one("module m : onehot(4) -> scalar = dense 4, dense 1",
               "module m : onehot(4) -> scalar = dense 4, dense 1\n"
               "module big : onehot(4) -> scalar = dense 9000, dense 9000, dense 1")
    assert limit_line(wide, "E127")[1].startswith("module big")
    routes = "input x: int 0..1\n" + "".join(f"select s{i}: a | b\n" for i in range(13)) + \
        "module e: onehot(2) -> latent(2) = dense 2\n" + \
        "".join(f"module a{i}: latent(2) -> latent(2) = dense 2\nmodule b{i}: latent(2) -> latent(2) = dense 2\n"
                for i in range(13)) + "module d: latent(2) -> onehot(2) = dense 2\nroute x -> e " + \
        "".join(f"-> [a{i} | b{i}] by s{i} " for i in range(13)) + "-> d\ntarget y = x\ndecode d as y\n"
    assert limit_line(routes, "E127")[1].startswith("route x -> e")
    enumerate_ = "input a: int 0..99999\ninput b: int 0..99999\nmodule m : scalar -> scalar = dense 1\n" \
                 "route a -> m\ntarget y = a\ndecode m as y\n"
    assert limit_line(enumerate_, "E125")[1] == "input a: int 0..99999"


# ---- every spec up to the size cap: accepted or refused in < 2 s and < 500 MB ------------------------

def big_specs() -> dict[str, str]:
    head = "input x: int 0..3\nmodule m : onehot(4) -> scalar = dense 4, dense 1\nroute x -> m\ndecode m as y\n"
    fill = MAX_SOURCE_BYTES - 1000
    nested_ifs = "if x > 0 then " * 150 + "x" + " else 0" * 150
    per_target = len(nested_ifs.split()) + 4
    modules = "".join(f"module m{i} : onehot(4) -> onehot(4) = dense 4\n" for i in range(MAX_MODULES))
    return {
        "flat sum to the byte cap": head + "target y = x" + "+x" * (fill // 2) + "\n",
        "sum of bracketed terms": head + "target y = " + "+".join(["(x*x)"] * (fill // 6)) + "\n",
        "prefix minus to the byte cap": head + "target y = " + "-" * fill + "x\n",
        "not chain": head + "target y = " + "not " * (fill // 4) + "x\n",
        "power chain": head + "target y = x" + "**x" * (fill // 3) + "\n",
        "if chain": head + "target y = " + "if x > 0 then " * 60_000 + "x" + " else 0" * 60_000 + "\n",
        "brackets": head + "target y = " + "(" * 300_000 + "x" + ")" * 300_000 + "\n",
        "many statements": "".join(f"input i{i}: int 0..3\n" for i in range(fill // 24)),
        "many shallow targets": head + "target y = x\n" + "".join(f"target t{i} = x * {i} + 1\n"
                                                                   for i in range(fill // 32)),
        "nested ifs just under the token cap": head + "target y = x\n" + "".join(
            f"target t{i} = {nested_ifs}\n" for i in range(MAX_TOKENS // per_target - 1)),
        "the most modules": "input x: int 0..3\n" + modules + "route x -> " + ", ".join(
            f"m{i}" for i in range(MAX_MODULES)) + "\ntarget y = x\ndecode " + ", ".join(
            f"m{i}" for i in range(MAX_MODULES)) + " as y\n",
        "chained targets over an enumerated domain": "input x: int 0..19999\nmodule m : scalar -> scalar = dense 1\n"
        "route x -> m\ntarget t0 = x\n" + "".join(f"target t{i} = t{i - 1} * 2 % 7 + x\n" for i in range(1, 2000)) +
        "decode m as t0\n",
        "600 targets over a large sample": "input x: int 0..1000000\nmodule m : scalar -> scalar = dense 4, dense 1\n"
        "route x -> m\n" + "".join(f"target t{i} = x * {i} + 1\n" for i in range(600)) +
        "decode m as t0\ndata sample 80000\n",
        "600 targets over a million rows": "input x: int 0..1000000\nmodule m : scalar -> scalar = dense 1\n"
        "route x -> m\n" + "".join(f"target t{i} = x * {i} + 1\n" for i in range(600)) +
        "decode m as t0\ndata sample 1000000\n",
    }


# `tanglec check` in a child: its exit code, CPU seconds (not wall: the load of the machine doesn't
# decide it) and peak memory in kB, then the end of its output
MEASURE = """
import resource, subprocess, sys
proc = subprocess.run([sys.executable, "-m", "tanglec.cli", "check", sys.argv[1]], capture_output=True, text=True)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(proc.returncode, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)
print(proc.stderr[-3000:] + proc.stdout[-3000:])
"""


@pytest.mark.parametrize("name", list(big_specs()))
def test_every_spec_up_to_the_cap_is_decided_fast_in_little_memory(tmp_path, name):
    """The bar is 2 s and 500 MB on the machine the caps were set on (0.3–2.2 s of CPU, 40–105 MB there:
    the slowest, nested ifs at the token cap, is nearly all LALR parsing). Machines differ by 3x in pure
    Python speed (the same commit checked the dense spec below in 1.8 s of CPU on one, 4.5 s on another),
    so the test bounds CPU time at 10 s: enough to catch what the caps prevent (minutes, or no answer),
    not a figure; bench/latency.py measures the figures."""
    text = big_specs()[name]
    assert len(text.encode()) <= MAX_SOURCE_BYTES
    spec = tmp_path / "spec.tangle"
    spec.write_text(text)
    proc = subprocess.run([sys.executable, "-c", MEASURE, str(spec)], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    first, _, output = proc.stdout.partition("\n")
    returncode, seconds, peak_kb = first.split()
    assert returncode in ("0", "1"), output
    assert "Traceback" not in output and "internal error" not in output
    assert float(seconds) < 10, f"{name}: {float(seconds):.2f} s"
    assert int(peak_kb) < 500_000, f"{name}: {int(peak_kb) / 1000:.0f} MB"
    print(f"{name}: exit {returncode}, {float(seconds):.2f} s, {int(peak_kb) / 1000:.0f} MB")


def test_chains_just_under_the_depth_cap_are_accepted(tmp_path):
    spec = tmp_path / "spec.tangle"
    for chain in ["x" + " + x" * (MAX_EXPR_DEPTH - 2), "- " * (MAX_EXPR_DEPTH - 2) + "x",
                  "(x * 2" + " * 2" * (MAX_EXPR_DEPTH - 3) + ") % 4"]:
        spec.write_text(ONE.replace("target y = x", "target y = " + chain))
        proc = run_tanglec("check", str(spec))
        assert "E004" not in proc.stderr, chain[:40]


def test_used_specs_share_the_token_budget(tmp_path):
    """Each used spec under the cap, together over it: refused once the budget is spent, not after
    parsing every one of them."""
    for k in range(40):
        (tmp_path / f"u{k}.tangle").write_text("".join(f"module m{k}_{i} : onehot(4) -> onehot(4) = dense 4\n"
                                                       for i in range(MAX_TOKENS // 32)))  # ~0.47 of the cap each
    spec = tmp_path / "spec.tangle"
    spec.write_text("".join(f'use "u{k}.tangle"\n' for k in range(40)) + one("module m ", "module mm ")
                    .replace("route x -> m", "route x -> mm").replace("decode m as", "decode mm as"))
    proc = subprocess.run([sys.executable, "-c", MEASURE, str(spec)], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    first, _, output = proc.stdout.partition("\n")
    returncode, seconds, peak_kb = first.split()
    assert returncode == "1" and "tokens" in output and "error[E150]: can't use u2.tangle" in output, output
    assert float(seconds) < 10 and int(peak_kb) < 500_000


_spec_gen = importlib.util.spec_from_file_location("tanglec_bench_spec_gen", ROOT / "bench" / "spec_gen.py")
spec_gen = importlib.util.module_from_spec(_spec_gen)
_spec_gen.loader.exec_module(spec_gen)

def test_a_dense_10k_line_spec_checks_in_linear_time(tmp_path):
    """Issue 15: arith's modules replicated over 10,000 lines (~200k tokens) check OK. The target, < 2 s,
    is a benchmark's (bench/latency.py): 1.8 s of CPU on the machine of 2026-12-02, 4.5 s on the slower
    one of 2026-12-07 with the same commit. Here the child's own CPU time (a loaded machine doesn't
    decide it) is bounded at 10 s, which the parse this replaced (5.2 s on the first machine, minutes
    with a tree built and transformed at 1M tokens) would not meet on either."""
    spec = tmp_path / "dense.tangle"
    spec.write_text(spec_gen.generate_dense(10_000))
    assert len(spec.read_text().splitlines()) > 9_900
    proc = subprocess.run([sys.executable, "-c", MEASURE, str(spec)], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    first, _, output = proc.stdout.partition("\n")
    returncode, cpu, _ = first.split()
    assert returncode == "0" and "ok" in output, output
    assert float(cpu) < 10, f"{float(cpu):.2f} s CPU"
