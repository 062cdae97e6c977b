"""`tanglec check`: every bad-spec case gives a positioned diagnostic, exit 1 and no traceback."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from support import ARITH, ROOT, call_tanglec
from tanglec.pipeline import check_spec
from tanglec.lang.diagnostics import TangleError, render_all
from tanglec.lang.parser import parse

SEED = ARITH.read_text()


def diagnostics_of(text: str):
    try:
        return check_spec(parse(text, "t.tangle")).diagnostics
    except TangleError as err:
        return err.diagnostics


def errors_of(text: str):
    return [d for d in diagnostics_of(text) if d.is_error]


def mutate(old: str, new: str) -> str:
    assert old in SEED, old
    return SEED.replace(old, new, 1)


def line_col(text: str, needle: str, occurrence: int = 1) -> tuple[int, int]:
    index = -1
    for _ in range(occurrence):
        index = text.index(needle, index + 1)
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def test_seed_spec_checks_clean():
    assert diagnostics_of(SEED) == []


def test_check_exits_0_without_importing_tensorflow_or_numpy():
    code = ("import sys; from tanglec.cli import cli\n"
            "try:\n    cli.main(['check', sys.argv[1]], standalone_mode=False)\n"
            "finally:\n    print('HEAVY', sorted(m for m in ('tensorflow', 'keras', 'numpy') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code, str(ARITH)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "ok — 6 modules, 4 routes" in proc.stdout
    assert "HEAVY []" in proc.stdout


# (case id, spec text, code, the text the span must start at, occurrence of that text)
CASES = [
    ("syntax", mutate("route x -> [binary", "route x -> [binary ->"), "E001", "-> | decimal", 1),
    ("unknown-module", mutate("[binary | decimal] by", "[binry | decimal] by"), "E101", "binry", 1),
    ("duplicate", mutate("module plus1 ", "module times2"), "E102", "times2    :", 2),
    ("cycle", SEED + "\nroute to_binary -> binary\n", "E103", "binary\n", 1),
    ("interface-dims", mutate("module to_binary : latent(12)", "module to_binary : latent(10)"),
     "E104", "to_binary, to_decimal\n", 1),
    ("interface-codec", mutate("module to_binary : latent(12)", "module to_binary : onehot(12)"),
     "E104", "to_binary, to_decimal\n", 1),
    ("mux-one-branch", mutate("[plus1 | times2] by op", "[plus1] by op"), "E105", "[plus1] by op", 1),
    ("selector-values", mutate("select op: plus1 | times2", "select op: plus1 | times3"), "E106", "[plus1 | times2] by op", 1),
    ("unreachable", SEED + "\nmodule orphan : latent(12) -> latent(12) = dense 12\n", "E107", "orphan", 1),
    ("decoder-without-target", mutate("decode to_binary, to_decimal as y", "decode to_binary as y"),
     "E108", "to_decimal", 1),
    ("target-unknown-field", mutate("(x + 1) % 10", "(z + 1) % 10"), "E109", "z + 1", 1),
    ("division-by-zero", mutate("(x + 1) % 10", "10 // (x - 3)"), "E110", "x - 3", 1),
    ("bad-layer-args", mutate("dense 32 relu, dense 12", "dense -4 relu, dense 12"), "E111", "dense -4", 1),
    ("unknown-activation", mutate("dense 32 relu, dense 12", "dense 32 rleu, dense 12"), "E111", "rleu", 1),
    ("target-out-of-range", mutate("(x * 2) % 10", "x * 2"), "E112", "match op", 1),
    ("unknown-layer", mutate("dense 32 relu, dense 12", "dense 32 relu, dens 12"), "E113", "dens 12", 1),
    ("unknown-codec", mutate("bits(4)    -> latent(12)", "bitz(4)    -> latent(12)"), "E114", "bitz", 1),
    ("bad-setting", mutate("batch 64", "bacth 64"), "E115", "bacth", 1),
    ("two-producers", SEED + "\nroute x -> binary -> to_decimal\n", "E128", "to_decimal\n", 2),
    ("field-codec", mutate("input x: int 0..9", "input x: int 0..19"), "E117", "binary | decimal] by", 1),
]


@pytest.mark.parametrize("case_id,text,code,anchor,occurrence", CASES, ids=[c[0] for c in CASES])
def test_bad_spec_is_positioned(case_id, text, code, anchor, occurrence):
    errors = errors_of(text)
    assert code in [d.code for d in errors], render_all(errors)
    where = line_col(text, anchor, occurrence)
    at = [d for d in errors if d.code == code and (d.span.line, d.span.col) == where]
    assert at, f"no {code} at {where}:\n" + render_all(errors)
    diag = at[0]
    rendered = render_all([diag])
    assert f"t.tangle:{diag.span.line}:{diag.span.col}: error[{code}]" in rendered
    assert "^" in rendered


def test_did_you_mean_for_names_and_keywords():
    errors = errors_of(mutate("[binary | decimal] by", "[binry | decimal] by"))
    assert [d.code for d in errors] == ["E101"]  # no cascade: 'binary' is not also called unreachable
    unknown = errors[0]
    assert "did you mean 'binary'?" in unknown.hints
    keyword = errors_of(mutate("route x", "rout x"))[0]
    assert keyword.code == "E001"
    assert any("route" in h for h in keyword.hints)


def test_syntax_error_says_what_was_expected():
    diag = errors_of("input x: int 0..9\nselect s: a | b\nmodule m : bits(4) -> latent(4) = \n")[0]
    assert diag.code in ("E001", "E002")
    assert any("expected" in h for h in diag.hints)


def test_three_independent_errors_are_all_reported():
    text = mutate("[binary | decimal] by", "[binry | decimal] by")
    text = text.replace("dense 32 relu, dense 12", "dense 32 rleu, dense 12", 1)
    text = text.replace("batch 64", "bacth 64")
    codes = sorted(d.code for d in errors_of(text))
    assert {"E101", "E111", "E115"} <= set(codes), codes


def test_syntax_errors_in_several_statements_are_all_reported():
    text = mutate("module plus1     :", "module plus1     ::").replace("decode to_binary,", "decode to_binary,,")
    errors = errors_of(text)
    assert [d.code for d in errors] == ["E001", "E001"]
    assert errors[0].span.line < errors[1].span.line


@pytest.mark.parametrize("case_id,text,code,anchor,occurrence", CASES[:6] + CASES[-4:],
                         ids=[c[0] for c in CASES[:6] + CASES[-4:]])
def test_cli_exit_1_and_no_traceback(tmp_path, case_id, text, code, anchor, occurrence):
    spec = tmp_path / "bad.tangle"
    spec.write_text(text)
    proc = call_tanglec("check", str(spec))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr + proc.stdout
    assert f"error[{code}]" in proc.stderr
    as_json = call_tanglec("check", str(spec), "--json")
    assert as_json.returncode == 1
    payload = json.loads(as_json.stdout)
    assert payload["ok"] is False
    where = line_col(text, anchor, occurrence)
    assert any(d["code"] == code and (d["span"]["line"], d["span"]["col"]) == where for d in payload["diagnostics"])


def test_cli_usage_error_exits_2(tmp_path):
    assert call_tanglec("check").returncode == 2
    assert call_tanglec("check", str(tmp_path / "missing.tangle")).returncode == 2
    assert call_tanglec("frobnicate").returncode == 2


def test_check_json_summary():
    proc = call_tanglec("check", str(ARITH), "--json")
    assert proc.returncode == 0
    payload = json.loads(proc.stdout)
    assert payload["ok"] is True
    assert payload["routes"] == 4
    assert payload["decoders"] == {"to_binary": "y", "to_decimal": "y"}


def test_graph_lists_routes():
    proc = call_tanglec("graph", str(ARITH))
    assert proc.returncode == 0
    for route in ("binary → plus1", "binary → times2", "decimal → plus1", "decimal → times2"):
        assert route in proc.stdout
    as_json = json.loads(call_tanglec("graph", str(ARITH), "--json").stdout)
    assert {n["id"] for n in as_json["nodes"]} >= {"x", "binary", "decimal", "plus1", "times2", "to_binary"}
    assert len(as_json["routes"]) == 4


@pytest.mark.parametrize("layers, warned", [
    ("norm, dense 16 relu, dense 8", ["1 value"]),
    ("dense 2, norm, dense 8", ["2 values"]),
    ("dense 3, norm, dense 8", []),
    ("residual(norm, dense 1), dense 8", ["1 value"]),
])
def test_norm_over_one_or_two_values_warns_where_it_stands(layers, warned):
    text = ("input x: float 0..1\n"
            f"module enc: scalar -> latent(8) = {layers}\n"
            "module dec: latent(8) -> scalar = dense 1\n"
            "route x -> enc -> dec\ntarget y = x\ndecode dec as y\ndata sample 10\n")
    found = [d for d in diagnostics_of(text) if d.code == "W208"]
    assert [d.message.split("over ")[1].split(" leaves")[0] for d in found] == warned
    for d in found:
        assert (d.span.line, d.span.col) == line_col(text, "norm")


def test_a_zero_pool_window_and_a_nul_in_a_data_path_are_diagnostics_not_crashes():
    """Two fuzz finds (bench/fuzz.py --seed 22): each used to end `tanglec check` with exit 3."""
    pooled = ("input img: vector(16)\ninput x: int 0..3\n"
              "module enc: vector(16) -> onehot(4) = image 4 4, conv2d 2 3 relu, pool -0, dense 4\n"
              "route img -> enc\ntarget y = x\ndecode enc as y\ndata sample 10\n")
    assert any(d.code == "E111" and "pool" in d.message for d in errors_of(pooled))
    nul = mutate("data enumerate", 'data file "rows\0.csv"')
    assert [(d.code, d.message.split(":")[0]) for d in errors_of(nul)] == [("E119", "the data file's path holds a NUL "
                                                                                  "character")]


@pytest.mark.parametrize("decoder, activation, code", [
    ("to_binary", "sigmoid", "E111"), ("to_binary", "relu", "E111"), ("to_binary", "tanh", "W209"),
    ("to_decimal", "relu", "W209"), ("to_decimal", "tanh", "W209"), ("to_decimal", "linear", None),
])
def test_an_activation_on_a_decoders_logits_is_refused_or_warned(decoder, activation, code):
    """The codec applies the sigmoid or softmax itself: `dense 4 sigmoid` on bits(4) made every bit read 1."""
    width = 4 if decoder == "to_binary" else 10
    last = f"dense {width}\n"
    line = next(line for line in SEED.splitlines(keepends=True) if line.startswith(f"module {decoder}"))
    text = SEED.replace(line, line.replace(last, f"dense {width} {activation}\n"))
    found = [(d.code, d.span.line) for d in check_spec(parse(text, "spec.tangle")).diagnostics
             if d.code in ("E111", "W209")]
    line_number = SEED[:SEED.index(line)].count("\n") + 1
    assert found == ([(code, line_number)] if code else [])
