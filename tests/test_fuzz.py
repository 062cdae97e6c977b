"""The front end never crashes: fuzzing (CI's share of bench/fuzz.py) and the limits it relies on.

Every case goes through `parse_partial`, `parse`, `check`, `render_all` and `to_json` directly; any
exception other than TangleError fails, and so does a diagnostic positioned outside its file.
`bench/fuzz.py` runs the same families with 10,000+ cases.
"""
from __future__ import annotations

import json
import random
import time

import pytest
from hypothesis import HealthCheck, given, settings

from support import ROOT
from tanglec.devtools import errors_doc, specfuzz as fuzz, specgen
from tanglec.spec.check_limits import MAX_MODULES
from tanglec.pipeline import check_spec
from tanglec.spec.checks import check
from tanglec.lang.diagnostics import TangleError, render_all
from tanglec.spec.graph import MAX_ROUTES
from tanglec.lang.parser import MAX_EXPR_DEPTH, MAX_NESTING, parse, parse_partial


SEED = (ROOT / "specs" / "arith.tangle").read_text()
MUTATION_CHUNKS, MUTATION_CASES = 4, 80  # 320 mutation + 80 expression + 100 grammar + 120 byte/unicode = 620 in CI


@pytest.fixture(scope="module")
def work():
    import shutil

    path = specgen.make_workdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _assert_clean(report):
    assert not report.failures, "\n\n".join(
        f"{f['case']}:\n" + "\n".join(f["problems"]) + "\n--- spec:\n" + f["text"][:1500] for f in report.failures[:3])


def test_corpus_is_valid(work):
    specs = specgen.corpus(work)
    assert {"arith.tangle", "clock.tangle", "gates.tangle", *specgen.OWN} <= set(specs)
    for name, text in specs.items():
        checked = check(parse(text, str(work / "fuzz.tangle")))
        assert checked.ok, f"{name}:\n{render_all(checked.diagnostics)}"


@pytest.mark.parametrize("chunk", range(MUTATION_CHUNKS))
def test_mutation_fuzz(work, chunk):
    report = fuzz.Report()
    fuzz.run_mutations(report, MUTATION_CASES, seed=1000 + chunk, work=work)
    _assert_clean(report)
    assert report.cases == MUTATION_CASES


def test_expression_fuzz(work):
    report = fuzz.Report()
    fuzz.run_mutations(report, 80, seed=7, work=work, family="expression")
    _assert_clean(report)


@settings(max_examples=100, deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(text=specgen.grammar_strategy())
def test_grammar_sentences_parse_and_check_or_yield_diagnostics(text):
    out = fuzz.run_case(text, "grammar.tangle")
    assert not out.problems, "\n".join(out.problems) + "\n--- spec:\n" + text


def test_validate_catches_out_of_file_positions():
    """The oracle itself: a span past the end of the file or before column 1 is reported."""
    from tanglec.lang.ast import Span
    from tanglec.lang.diagnostics import Diagnostic

    text = "input x: int 0..9\n"
    assert fuzz.validate([Diagnostic("E001", "m", Span("f", 2, 1, 2, 2))], "f", text) == []
    assert fuzz.validate([Diagnostic("E001", "m", Span("f", 3, 1, 3, 2))], "f", text)
    assert fuzz.validate([Diagnostic("E001", "m", Span("f", 1, 0, 1, 2))], "f", text)
    assert fuzz.validate([Diagnostic("E001", "m", Span("f", 1, 40, 1, 41))], "f", text)
    assert fuzz.validate([Diagnostic("E001", "m", None)], "f", text)


# ---- regressions found by fuzzing, and the limits ---------------------------------------------

def codes(text: str, file: str = "t.tangle") -> list[str]:
    """What `tanglec check` reports: the spec's checks and the data-backed ones (pipeline.check_spec)."""
    spec, diags = parse_partial(text, file)
    return [d.code for d in diags + check_spec(spec).diagnostics]


def first(text: str, code: str):
    spec, diags = parse_partial(text, "t.tangle")
    found = [d for d in diags + check_spec(spec).diagnostics if d.code == code]
    assert found, render_all(diags + check_spec(spec).diagnostics)
    return found[0]


TARGET_LINE = SEED.split("\n").index(next(l for l in SEED.split("\n") if l.startswith("target y"))) + 1


def with_target(expr: str) -> str:
    return SEED.replace("(x + 1) % 10", expr)


@pytest.mark.parametrize("expr", ["+".join(["1"] * 10_000), "not " * 3000 + "x", "- " * 3000 + "x",
                                  "2 ** " * 3000 + "2", "if x > 1 then " * 2000 + "1" + " else 0" * 2000],
                         ids=["sum", "not", "neg", "power", "if"])
def test_long_flat_expression_is_a_diagnostic_not_a_recursion_error(expr):
    d = first(with_target(expr), "E004")
    assert f"nested more than {MAX_EXPR_DEPTH} levels" in d.message and d.span.line == TARGET_LINE


def test_expression_just_under_the_depth_limit_checks():
    assert "E004" not in codes(with_target("+".join(["x"] * (MAX_EXPR_DEPTH - 5))))


def test_long_route_chain_and_huge_statement():
    chain = "-> [plus1 | times2] by op " * (MAX_MODULES + 1)
    started = time.perf_counter()
    found = codes(SEED.replace("-> to_binary, to_decimal", chain + "-> to_binary, to_decimal"))
    assert "E127" in found and time.perf_counter() - started < 20  # linear: no quadratic lookups
    assert "E004" in codes(SEED.replace("(x + 1)", "(" * (MAX_NESTING + 1) + "x" + ")" * (MAX_NESTING + 1)))


def test_brackets_in_comments_and_strings_are_not_nesting():
    assert codes(SEED + "\n# " + "(" * 200 + "\n") == []


@pytest.mark.parametrize("before", ["", ")" * 3], ids=["balanced", "stray-closers-first"])
def test_nesting_past_the_cap_among_many_shallow_brackets_is_E004(before):
    """Many brackets, each shallow, and one place too deep; stray closing brackets open no level."""
    shallow = "".join(f"module m{i} : latent(12) -> latent(12) = dense 12\n" for i in range(40))
    deep = "(" * (MAX_NESTING + 1) + "x" + ")" * (MAX_NESTING + 1)
    assert "E004" in codes(SEED + shallow + f"target t = {before}{deep}\n")
    assert "E004" not in codes(SEED + shallow + f"target t = {before}(((x)))\n")


@pytest.mark.parametrize("where,literal", [("int 0..9", "9" * 5000), ("int 0..9", "9" * 40),
                                            ("int 0..9", "9007199254740992"), ("(x + 1)", "1e999"),
                                            ("(x + 1)", "9" * 400), ("dense 12", "9" * 31)])
def test_number_too_large_is_E007(where, literal):
    text = SEED.replace(where, where.replace("9" if "9" in where else "1", literal).replace("12", literal), 1)
    d = first(text, "E007")
    assert "too large" in d.message and text.split("\n")[d.span.line - 1][d.span.col - 1:].startswith(literal[:20])


def test_power_operator_lexes():
    assert codes(with_target("(x ** 2 + 1) % 10")) == []


@pytest.mark.parametrize("expr,what", [("10 // (x - 3)", "division by zero"), ("x % (x - x)", "division by zero"),
                                       ("x * 9007199254740991", "integer overflow"),
                                       ("x ** 99", "integer overflow"),
                                       ("1e300 * 1e300 * x", "not a finite number")])
@pytest.mark.parametrize("data", ["data enumerate", "data sample 500"])
def test_expression_failures_are_diagnostics_in_both_evaluators(expr, what, data):
    text = with_target(expr).replace("data enumerate", data)
    d = first(text, "E110")
    assert what in d.message and "first failing example" in d.hints[0]


def test_an_expression_failure_names_its_example_without_vector_fields():
    """A failing example is shown by the values an expression can read; a vector beside them is left out
    (its values once ended the check with exit 3)."""
    text = with_target("10 // (x - 3)").replace("input x: int 0..9", "input x: int 0..9\ninput v: vector(3)")
    d = first(text.replace("data enumerate", "data sample 50"), "E110")
    assert "first failing example: " in d.hints[0] and "x=3" in d.hints[0] and "v=" not in d.hints[0]


@pytest.mark.parametrize("data", ["data enumerate", "data sample 40"])
def test_boolean_arithmetic_works_in_both_evaluators(data):
    text = with_target("(x > 3) - (x > 5) + -(x < 2) + 1").replace("data enumerate", data)
    assert "E110" not in codes(text) and not [c for c in codes(text) if c.startswith("E") and c != "E112"]


LIMIT_CASES = [
    ("sample", SEED.replace("data enumerate", "data sample 9000000"), "exceeds the limit of 1,000,000"),
    ("vector", "input v: vector(900000)\nmodule e: vector(900000) -> scalar = dense 1\nroute v -> e\n"
               "target y = 1\ndecode e as y\ndata sample 10\n", "exceeds the limit of 100,000 values"),
    ("codec", SEED.replace("latent(12) = dense 32 relu, dense 12", "latent(1000000) = dense 32 relu, dense 12"),
     "latent(1000000) exceeds the limit"),
    ("parameters", SEED.replace("dense 64 relu, dense 64 relu, dense 12", "dense 90000 relu, dense 9000 relu, dense 12"),
     "parameters exceed the limit"),
    ("routes", "input x: int 0..1\n" + "".join(f"select s{i}: a{i} | b{i}\n" for i in range(13))
     + "module e: onehot(2) -> latent(2) = dense 2\n"
     + "".join(f"module a{i}: latent(2) -> latent(2) = dense 2\nmodule b{i}: latent(2) -> latent(2) = dense 2\n"
               for i in range(13))
     + "module d: latent(2) -> onehot(2) = dense 2\nroute x -> e " + "".join(f"-> [a{i} | b{i}] by s{i} " for i in range(13))
     + "-> d\ntarget y = x\ndecode d as y\ndata sample 100\n", f"8,192 routes"),
    ("modules", "input x: int 0..1\n" + "".join(f"module m{i}: onehot(2) -> onehot(2) = dense 2\n"
                                                for i in range(MAX_MODULES + 1))
     + "route x -> " + ", ".join(f"m{i}" for i in range(MAX_MODULES + 1)) + "\ntarget y = x\n"
     + "".join(f"decode m{i} as y\n" for i in range(MAX_MODULES + 1)), f"{MAX_MODULES + 1} modules exceed"),
]


@pytest.mark.parametrize("name,text,fragment", LIMIT_CASES, ids=[c[0] for c in LIMIT_CASES])
def test_limits_are_clear_diagnostics_before_anything_is_built(name, text, fragment):
    started = time.perf_counter()
    d = first(text, "E127")
    assert fragment in d.message, d.message
    assert time.perf_counter() - started < 10


def test_route_limit_matches_the_graph():
    assert MAX_ROUTES == 4096


def test_spec_larger_than_the_limit_is_E005():
    """The size cap on a spec given as text (check_text, the TUI); a file (parse_file) is the
    "size" case of the compile test below."""
    from tanglec.lang.parser import MAX_SOURCE_BYTES

    text = SEED + "# " + "x" * MAX_SOURCE_BYTES + "\n"
    with pytest.raises(TangleError) as err:
        parse(text, "t.tangle")
    [d] = err.value.diagnostics
    assert (d.code, d.message, d.span.line, d.span.col) == ("E005", "spec larger than 2 MB", 1, 1)
    assert "E005" not in codes(SEED + "# " + "x" * (MAX_SOURCE_BYTES - len(SEED) - 10) + "\n")  # just under: fine


LIMIT_SPECS = {name: text for name, text, _ in LIMIT_CASES}
REFUSED_SPECS = [  # (id, spec text, the line `tanglec compile` must print)
    ("size", SEED + "# " + "x" * 2_000_000 + "\n", "1:1: error[E005]: can't read the spec: larger than 2 MB"),
    ("nesting", SEED.replace("(x + 1)", "(" * 65 + "x" + ")" * 65), "error[E004]: nesting deeper than 64 levels"),
    ("modules", LIMIT_SPECS["modules"], f"error[E127]: {MAX_MODULES + 1} modules exceed the limit of {MAX_MODULES}"),
    ("parameters", LIMIT_SPECS["parameters"], "parameters exceed the limit of 50,000,000"),
    ("division", with_target("10 // (x - 3)"), "error[E110]:"),
    ("overflow", with_target("x * 9007199254740991"), "error[E110]:"),
]


@pytest.mark.parametrize("name,text,line", REFUSED_SPECS, ids=[c[0] for c in REFUSED_SPECS])
def test_compile_refuses_a_spec_over_a_limit_or_failing_and_writes_nothing(tmp_path, name, text, line):
    """`tanglec compile` on a spec over a cap, or whose target divides by zero/overflows: exit 1, the
    diagnostic, no traceback, and nothing written (no run, no temporary or checkpoint directory) or
    changed (an earlier run at the output path is left as it was)."""
    import hashlib

    from support import run_tanglec

    spec = tmp_path / "spec.tangle"
    spec.write_text(text)
    previous = tmp_path / "run"
    previous.mkdir()
    (previous / "manifest.json").write_text('{"format": "tanglec-run/1"}')
    (previous / "model.weights.h5").write_bytes(b"earlier weights")

    def snapshot():
        return {str(p.relative_to(tmp_path)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
                for p in sorted(tmp_path.rglob("*"))}

    before = snapshot()
    proc = run_tanglec("compile", str(spec), "-o", str(previous), timeout=120)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert line in proc.stderr, proc.stderr[-2000:]
    if name in ("division", "overflow"):
        assert ("division by zero" if name == "division" else "integer overflow") in proc.stderr
    assert "Traceback" not in proc.stderr
    assert snapshot() == before


def test_huge_int_range_is_not_materialised():
    text = SEED.replace("int 0..9", "int 0..9007199254740000")
    started = time.perf_counter()
    found = codes(text)
    assert "E117" in found and time.perf_counter() - started < 5
    scalar = ("input x: int 0..9007199254740000\nmodule e: scalar -> latent(4) = dense 4\n"
              "module d: latent(4) -> scalar = dense 1\nroute x -> e -> d\ntarget y = x\ndecode d as y\n")
    assert "E125" in codes(scalar + "data enumerate\n")
    assert codes(scalar + "data sample 10\n") == []


def test_odd_line_breaks_keep_positions_inside_the_file():
    """\\r, \\f, \\u2028 are not line breaks to the parser; diagnostics and excerpts agree."""
    for sep in ["\r", "\x0c", "\u2028", "\x85"]:
        text = f"input x: int 0..9{sep}module m : bits(4) -> latent(4) = dense 4{sep}route x -> @"
        spec, diags = parse_partial(text, "t.tangle")
        assert diags and fuzz.validate(diags + check(spec).diagnostics, "t.tangle", text) == []
        assert "^" in render_all(diags)


def test_long_line_excerpt_is_clipped():
    text = SEED.replace("target y = ", "target y = " + "x + " * 50 + "zz + " + "x + " * 3000, 1)
    rendered = render_all([first(text, "E004")] + [first(text.replace("x + " * 3000, "x + " * 40), "E109")])
    assert max(len(line) for line in rendered.splitlines()) < 200


def test_random_unicode_and_bytes_never_crash(work):
    rng = random.Random(5)
    for i in range(60):
        raw = bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
        out = fuzz.run_case("", str(work / f"bytes{i}.tangle"), raw)
        assert not out.problems, out.problems
    for i in range(60):
        text = "".join(specgen.random_char(rng) for _ in range(rng.randint(0, 100)))
        out = fuzz.run_case(text, str(work / "u.tangle"))
        assert not out.problems, out.problems
    with pytest.raises(TangleError):
        parse("\x00")


# ---- docs/errors.md: every code documented, every example still yields its code ------------------

def test_every_code_in_the_source_is_documented():
    text = (ROOT / "docs" / "errors.md").read_text()
    source = errors_doc.codes_in_source()
    assert source, "no codes found"
    missing = source - errors_doc.documented(text)
    assert not missing, (f"add these codes to tanglec/devtools/errors_doc.py (EXAMPLES) and regenerate "
                         f"docs/errors.md with bench/errors_doc.py: {sorted(missing)}")
    for code in source:  # each entry has an example and the message tanglec prints
        entry = text.split(f"### {code} ")[1].split("\n### ")[0]
        assert "```text\n" in entry and f"[{code}]" in entry, code


def test_every_documented_example_yields_its_code():
    for ex in errors_doc.EXAMPLES:
        if ex.spec is not None:
            snippet, rendered = errors_doc.render_example(ex)  # raises if the example no longer yields ex.code
            assert f"[{ex.code}]" in rendered


def test_check_reports_syntax_and_semantic_problems_in_one_pass(tmp_path):
    from support import run_tanglec
    from tanglec.spec.onepass import check_text

    text = SEED.replace("route x ->", "rout x ->").replace("dense 32 relu, dense 12", "dense 32 rleu, dense 12", 1)
    checked, diags = check_text(text, "t.tangle")
    found = [d.code for d in diags]
    assert checked is None and "E001" in found and "E111" in found, found
    assert "E107" not in found and "W203" not in found  # what the unparsed route's absence causes: held back
    spec = tmp_path / "t.tangle"
    spec.write_text(text)
    proc = run_tanglec("check", str(spec), "--json")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert {d["code"] for d in json.loads(proc.stdout)["diagnostics"]} >= {"E001", "E111"}


def test_use_chains_and_diamonds_are_bounded(tmp_path):
    """`use` recurses through parse: a 40-deep chain is E151; a diamond (every spec using the next
    three) stops at 50,000 brought statements with E150; a spec used 257 times, at 256 uses."""
    from tanglec.lang.parser import MAX_USE_DEPTH, MAX_USED_STATEMENTS, MAX_USES, parse_file

    module = "module m{i} : onehot(4) -> onehot(4) = dense 4\n"
    for i in range(40):
        (tmp_path / f"c{i}.tangle").write_text((f'use "c{i + 1}.tangle"\n' if i < 39 else "") + module.format(i=i))
    with pytest.raises(TangleError) as err:
        parse_file(tmp_path / "c0.tangle")
    assert [d.code for d in err.value.diagnostics] == ["E151"]
    assert f"nest more than {MAX_USE_DEPTH} specs deep" in err.value.diagnostics[0].message
    for i in range(15):  # each spec uses the next three: 3**14 paths to the last one
        for side in "abc":
            uses = "".join(f'use "{s}{i + 1}.tangle"\n' for s in "abc") if i < 14 else module.format(i=side)
            (tmp_path / f"{side}{i}.tangle").write_text(uses)
    started = time.perf_counter()
    with pytest.raises(TangleError) as err:
        parse_file(tmp_path / "a0.tangle")
    assert time.perf_counter() - started < 10
    assert {d.code for d in err.value.diagnostics} == {"E150"}
    assert f"more than {MAX_USED_STATEMENTS:,} statements" in err.value.diagnostics[0].message
    # one spec used again and again: parsed once, each use counted
    (tmp_path / "many.tangle").write_text('use "c39.tangle" modules m39\n' * (MAX_USES + 1))
    with pytest.raises(TangleError) as err:
        parse_file(tmp_path / "many.tangle")
    assert f"more than {MAX_USES} `use`s in all" in err.value.diagnostics[-1].message
