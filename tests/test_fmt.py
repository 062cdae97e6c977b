"""`tanglec fmt`: canonical, idempotent, comment-keeping, meaning-preserving; the CLI's modes."""
from __future__ import annotations

import json
import random
import re

import pytest
from click.testing import CliRunner
from lark import Lark

from support import ROOT, SPECS
from tanglec.lang import fmt
from tanglec.pipeline import check_spec
from tanglec.cli import cli
from tanglec.lang.diagnostics import TangleError
from tanglec.spec.graph import build, describe
from tanglec.lang.parser import grammar_path, parse

SPEC_FILES = sorted(SPECS.rglob("*.tangle"))

MESSY = """

# header comment
input   x :int 0 .. 9   # the number
input v: vector( 3 )
input c : category red|green |blue
input f: float -1.5..2e3
select encoding:binary|decimal
select op : plus1 | times2 # ops


module binary:bits( 4 )->latent(12)=dense 64 relu,dense 12
# between modules
module decimal : onehot(10) -> latent(12) = dense 64 relu , residual( dense 12 relu , dense 12 ),norm, dropout 0.1
module plus1: latent(12)->latent(12)=dense 12
module times2: latent(12)->latent(12)=dense 12

module to_binary : latent(12) -> bits(4) = dense 4
module to_decimal:latent(12)->onehot(10)=dense 10
route x
  -> [binary | decimal] by encoding   # pick the encoder
  # then the op
  -> [plus1|times2:times2]by op using partition->to_binary,to_decimal
target y = match op { plus1: (x+1)%10, times2: (x*2)%10, }
target z : int 0..9 = if x>3 and not x==5 then max(x-1,-x, abs(-3)) else - x // 2 ** 2
decode to_binary,to_decimal as y
data sample 100 seed 3 eval 0.2
train steps 300 batch 64 adam 0.01 seed 0 until exact weight to_binary : 2 mux auto
# trailing comment at end


"""

MESSY_FORMATTED = """\
# header comment
input x: int 0..9  # the number
input v: vector(3)
input c: category red | green | blue
input f: float -1.5..2e3
select encoding: binary | decimal
select op: plus1 | times2  # ops

module binary : bits(4)    -> latent(12) = dense 64 relu, dense 12
# between modules
module decimal: onehot(10) -> latent(12) = dense 64 relu, residual(dense 12 relu, dense 12), norm, dropout 0.1
module plus1  : latent(12) -> latent(12) = dense 12
module times2 : latent(12) -> latent(12) = dense 12

module to_binary : latent(12) -> bits(4)    = dense 4
module to_decimal: latent(12) -> onehot(10) = dense 10
route x -> [binary | decimal] by encoding  # pick the encoder
    # then the op
    -> [plus1 | times2: times2] by op using partition -> to_binary, to_decimal
target y = match op {
    plus1:  (x + 1) % 10,
    times2: (x * 2) % 10,
}
target z: int 0..9 = if x > 3 and not x == 5 then max(x - 1, -x, abs(-3)) else -x // 2 ** 2
decode to_binary, to_decimal as y
data sample 100 seed 3 eval 0.2
train steps 300 batch 64 adam 0.01 seed 0 until exact weight to_binary:2 mux auto
# trailing comment at end
"""


def comments(text: str) -> list[str]:
    """Comment texts in order (no string in these specs contains '#')."""
    return [m.group(0).rstrip() for m in re.finditer(r"#[^\n]*", text)]


def assert_well_formatted(source: str, name: str = "spec.tangle") -> str:
    once = fmt.format_source(source, name)
    assert fmt.format_source(once, name) == once, "fmt is not idempotent"
    assert fmt.signature(parse(once, name)) == fmt.signature(parse(source, name)), "fmt changed the AST"
    assert comments(once) == comments(source), "fmt lost or reordered comments"
    assert once == "" or (once.endswith("\n") and not once.endswith("\n\n"))
    assert all(line == line.rstrip() for line in once.split("\n")), "trailing whitespace"
    assert "\n\n\n" not in once
    return once


# ---- every spec in specs/ ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.name)
def test_specs_are_formatted_and_formatting_keeps_the_graph(path):
    source = path.read_text()
    once = assert_well_formatted(source, str(path))
    assert once == source, f"{path.name} is not formatted: run `tanglec fmt {path.relative_to(ROOT)}`"
    before, after = check_spec(parse(source, str(path))), check_spec(parse(once, str(path)))
    assert describe(after.graph) == describe(before.graph)
    assert sorted((u, v) for u, v, _ in after.graph.edges()) == sorted((u, v) for u, v, _ in before.graph.edges())
    assert [d.code for d in after.diagnostics] == [d.code for d in before.diagnostics]


def test_fmt_check_passes_on_specs_dir():
    result = CliRunner().invoke(cli, ["fmt", "--check", str(SPECS)])
    assert result.exit_code == 0, result.output + result.stderr


# ---- layout -----------------------------------------------------------------------------------------

def test_messy_spec_gets_the_canonical_layout():
    out = assert_well_formatted(MESSY)
    assert out == MESSY_FORMATTED
    ast_before = check_spec(parse(MESSY, "a"))
    ast_after = check_spec(parse(out, "a"))
    assert describe(ast_after.graph) == describe(ast_before.graph)


def test_module_block_alignment_breaks_at_blank_lines():
    out = fmt.format_source("module a: bits(4) -> latent(8) = dense 8\n"
                            "module long_name: onehot(10) -> latent(8) = dense 8\n\n"
                            "module b: latent(8) -> bits(4) = dense 4\n", "a")
    assert out == ("module a        : bits(4)    -> latent(8) = dense 8\n"
                   "module long_name: onehot(10) -> latent(8) = dense 8\n\n"
                   "module b: latent(8) -> bits(4) = dense 4\n")


def test_long_route_wraps_before_arrows():
    stages = " -> ".join(f"[m{i}a | m{i}b] by sel{i}" for i in range(6))
    out = assert_well_formatted(f"route x -> {stages} -> out\n")
    lines = out.splitlines()
    assert len(lines) == 7 and lines[0] == "route x -> [m0a | m0b] by sel0"
    assert all(line.startswith("    -> ") for line in lines[1:]) and lines[-1] == "    -> out"
    short = "route x -> a -> b\n"
    assert fmt.format_source("route x\n  -> a\n  -> b", "a") == short


def test_match_blocks_magic_trailing_comma_and_comments():
    assert fmt.format_source("target y = match s { a: 1, b: 2 }", "a") == "target y = match s { a: 1, b: 2 }\n"
    exploded = "target y = match s {\n    a:    1,\n    bbbb: 2,\n}\n"
    assert fmt.format_source("target y = match s { a: 1, bbbb: 2, }", "a") == exploded
    assert fmt.format_source(exploded, "a") == exploded
    with_comment = "target y = match s {\n  # first\n  a: 1, # one\n  _: 2 }"
    assert assert_well_formatted(with_comment) == (
        "target y = match s {\n    # first\n    a: 1,  # one\n    _: 2,\n}\n")
    wide = ("target rotated = match dir { next: match color { red: 1, green: 2, blue: 0 }, "
            "prev: match color { red: 2, green: 0, blue: 1 } }")
    assert len(wide) > fmt.WIDTH
    assert assert_well_formatted(wide) == (  # the outer block explodes first; the inner ones then fit
        "target rotated = match dir {\n    next: match color { red: 1, green: 2, blue: 0 },\n"
        "    prev: match color { red: 2, green: 0, blue: 1 },\n}\n")
    nested = "target y = match s { a: match t { p: 1, q: 2, }, b: 3 }"
    assert assert_well_formatted(nested) == (
        "target y = match s {\n    a: match t {\n        p: 1,\n        q: 2,\n    },\n    b: 3,\n}\n")


def test_spacing_rules():
    cases = {
        "input x:int -3..+4": "input x: int -3..+4",
        "target t = -(x - 1)*max( a,b ) % 3": "target t = -(x - 1) * max(a, b) % 3",
        "target t = x**2//3 - -1": "target t = x ** 2 // 3 - -1",
        "target t = not(x<2)or x>=7": "target t = not (x < 2) or x >= 7",
        "train weight d : 1.5 lr 1e-3 optimizer adamw": "train weight d:1.5 lr 1e-3 optimizer adamw",
        'data file  "rows with spaces.csv"  seed 2': 'data file "rows with spaces.csv" seed 2',
        "module m:bits(4)->bits(4)=residual(dense 4 relu,norm),dense 4":
            "module m: bits(4) -> bits(4) = residual(dense 4 relu, norm), dense 4",
        "target t : int 0..3 from data": "target t: int 0..3 from data",
        "route x->a,b": "route x -> a, b",
        "route x -> [p: m1 | q: m2] by s using gather": "route x -> [p: m1 | q: m2] by s using gather",
        "route x->[a|b:m  from  img|c from x]by s": "route x -> [a | b: m from img | c from x] by s",
        "target t = 1.50e+3 + 007": "target t = 1.50e+3 + 007",  # numbers as written
        "holdout binary->times2": "holdout binary -> times2",
        "align binary,decimal on x weight 0.5": "align binary, decimal on x weight 0.5",
        "phase warm modules a,b steps 100 lr 1e-3": "phase warm modules a, b steps 100 lr 1e-3",
        "freeze a ,b": "freeze a, b",
        "data enumerate only op : plus1 limit 5 per_route 2": "data enumerate only op:plus1 limit 5 per_route 2",
    }
    for source, want in cases.items():
        assert assert_well_formatted(source) == want + "\n", source


def test_comments_and_blank_lines():
    src = "\n\n# a\n\n\n\n# b\ninput x: int 0..1 # c\n\n\n# d\ninput y: int 0..1\n# e\n\n"
    assert assert_well_formatted(src) == "# a\n\n# b\ninput x: int 0..1  # c\n\n# d\ninput y: int 0..1\n# e\n"
    assert fmt.format_source("", "a") == ""
    assert fmt.format_source("  \n\n", "a") == ""
    assert fmt.format_source("# only\r\n", "a") == "# only\n"
    # a comment inside a statement stays with the code it precedes
    assert assert_well_formatted("module m: bits(4) ->\n  # out\n  bits(4) = dense 4") == (
        "module m: bits(4) ->\n    # out\n    bits(4) = dense 4\n")
    assert assert_well_formatted("input x: int 0..1 input y: int 0..1  # both\n") == (
        "input x: int 0..1\ninput y: int 0..1  # both\n")


def test_only_syntax_matters(tmp_path):
    """Semantic errors and missing `use`d files don't stop formatting (`tanglec check` reports them)."""
    src = 'use  "missing/lib.tangle"  modules enc,dec\ninit "../runs/none"\ninput x:int 9..0\n'
    assert fmt.format_source(src, str(tmp_path / "a.tangle")) == (
        'use "missing/lib.tangle" modules enc, dec\ninit "../runs/none"\ninput x: int 9..0\n')


def test_syntax_errors_are_reported_not_formatted():
    with pytest.raises(TangleError) as err:
        fmt.format_source("input x int 0..9\nselect s: a | b\nmodule m: bits(4) -> = dense 4\n", "bad.tangle")
    codes = [(d.code, d.span.line) for d in err.value.diagnostics]
    assert codes == [("E001", 1), ("E001", 3)]


def test_meaning_check_guards_against_formatter_bugs(monkeypatch):
    render = fmt._render
    monkeypatch.setattr(fmt, "_render", lambda tokens: [(code.replace("9", "8"), c) for code, c in render(tokens)])
    with pytest.raises(fmt.FormatterBug, match="change its meaning"):
        fmt.format_source("input x: int 0..9\n", "a")
    monkeypatch.setattr(fmt, "_render", lambda tokens: [(" ".join(t.text for t in reversed(tokens)), None)])
    with pytest.raises(fmt.FormatterBug, match="does not parse"):
        fmt.format_source("input x: int 0..9\n", "a")


# ---- valid specs generally: random layouts of random statements ---------------------------------------

NAMES = ["x", "y", "enc", "op", "m1", "to_out", "a_b2", "Z"]


def _random_expr(r: random.Random, depth: int = 0) -> str:
    if depth > 3 or r.random() < 0.3:
        return r.choice([r.choice(NAMES), str(r.randint(0, 99)), f"{r.randint(0, 9)}.{r.randint(0, 9)}", "1e3"])
    kind = r.randrange(9)
    e = lambda: _random_expr(r, depth + 1)  # noqa: E731

    def operand() -> str:  # a compound operand in parentheses, so every choice is valid syntax
        x = e()
        return f"({x})" if " " in x or x.startswith("-") else x

    if kind == 0:
        ops = ["+", "-", "*", "/", "//", "%", "**"]
        return " ".join([operand()] + [f"{r.choice(ops)} {operand()}" for _ in range(r.randint(1, 3))])
    if kind == 1:
        return f"{operand()} {r.choice(['==', '!=', '<', '<=', '>', '>='])} {operand()}"
    if kind == 2:
        return f"{operand()} {r.choice(['and', 'or'])} {operand()}"
    if kind == 3:
        return f"not {operand()}" if r.random() < 0.5 else f"-{operand()}"
    if kind == 4:
        return f"({e()})"
    if kind == 5:
        return f"{r.choice(['min', 'max', 'abs'])}({', '.join(e() for _ in range(r.randint(1, 3)))})"
    if kind == 6:
        return f"if {e()} then {e()} else {e()}"
    cases = ", ".join(f"{r.choice(NAMES + ['_'])}: {e()}" for _ in range(r.randint(1, 3)))
    return f"match {r.choice(NAMES)} {{ {cases}{',' if r.random() < 0.3 else ''} }}"


def _random_layer(r: random.Random, depth: int = 0) -> str:
    k = r.randrange(5 if depth < 2 else 4)
    if k == 0:
        return f"dense {r.randint(1, 64)}" + (f" {r.choice(['relu', 'tanh'])}" if r.random() < 0.6 else "")
    if k == 1:
        return f"dropout 0.{r.randint(1, 5)}"
    if k in (2, 3):
        return "norm"
    return f"residual({', '.join(_random_layer(r, depth + 1) for _ in range(r.randint(1, 2)))})"


def _random_statement(r: random.Random) -> str:
    n = lambda: r.choice(NAMES)  # noqa: E731
    ftype = lambda: r.choice([f"int {r.randint(-5, 0)}..{r.randint(1, 20)}", "float", "float -1.5..2.5",  # noqa: E731
                              "category a | b | c", f"vector({r.randint(1, 8)})"])
    codec = lambda: r.choice(["bits(4)", "onehot(10)", "scalar", "latent(12)", "vector(3)"])  # noqa: E731
    k = r.randrange(9)
    if k == 0:
        return f"input {n()}: {ftype()}"
    if k == 1:
        return f"select {n()}: {' | '.join(r.sample(NAMES, r.randint(1, 4)))}"
    if k == 2:
        return f"module {n()}: {codec()} -> {codec()} = {', '.join(_random_layer(r) for _ in range(r.randint(1, 4)))}"
    if k == 3:
        stages = []
        for _ in range(r.randint(1, 6)):
            if r.random() < 0.5:
                stages.append(", ".join(r.sample(NAMES, r.randint(1, 3))))
            else:
                arms = " | ".join(f"{n()}: {n()}" if r.random() < 0.3 else n() for _ in range(r.randint(2, 4)))
                stages.append(f"[{arms}] by {n()}" + (f" using {r.choice(['where', 'gather'])}" if r.random() < 0.3 else ""))
        return f"route {n()} -> " + " -> ".join(stages)
    if k == 4:
        return f"target {n()}" + (f": {ftype()}" if r.random() < 0.3 else "") + f" = {_random_expr(r)}"
    if k == 5:
        return f"target {n()}: {ftype()} from data"
    if k == 6:
        return f"decode {', '.join(r.sample(NAMES, r.randint(1, 3)))} as {n()}"
    if k == 7:
        src = r.choice(["enumerate", f"sample {r.randint(1, 999)}", '"d.csv"'])
        src = f"file {src}" if src.startswith('"') else src
        return f"data {src}" + (f" seed {r.randint(0, 9)}" if r.random() < 0.5 else "") + (" eval 0.25" if r.random() < 0.3 else "")
    settings = ["steps 100", "batch 32", "adam 0.01", "seed 3", "until exact", "weight to_out:2", "mux where",
                "eval_every 5", "lr 1e-3"]
    return "train " + " ".join(r.sample(settings, r.randint(1, 5)))


def _scramble(r: random.Random, statement: str) -> str:
    """The statement's tokens (as the parser lexes them) with random whitespace between them."""
    tree, _ = fmt._concrete_tree(statement)
    tokens = [str(t) for t in tree.scan_values(lambda v: True)]
    gaps = [" ", "  ", "\t", "\n   ", " \n", "\n\n", "  # inside\n", "\n  # own line\n  "]
    return "".join(t + r.choice(gaps) for t in tokens).rstrip() + "\n"


def random_spec(seed: int) -> str:
    r = random.Random(seed)
    lines = []
    for _ in range(r.randint(0, 9)):
        if r.random() < 0.2:
            lines.append("# note " + str(r.randint(0, 999)))
        if r.random() < 0.2:
            lines.append("")
        st = _random_statement(r)
        text = _scramble(r, st) if r.random() < 0.5 else st
        if r.random() < 0.2:
            text += "  # trailing " + str(r.randint(0, 9))
        lines.append(text)
    return "\n".join(lines) + r.choice(["", "\n", "\n\n"])


@pytest.mark.parametrize("seed", range(120))
def test_random_valid_specs_are_formatted_idempotently(seed):
    source = random_spec(seed)
    try:
        parse(source, "r.tangle")
    except TangleError as err:  # the generator must only make valid syntax
        pytest.fail(f"generator made invalid syntax ({err}):\n{source}")
    assert_well_formatted(source, "r.tangle")


# ---- statements the formatter has never heard of --------------------------------------------------

EXTRA_GRAMMAR = """
?statement: input_decl | select_decl | module_decl | route_decl | target_decl | decode_decl | data_decl
          | train_decl | export_decl | group_decl
export_decl: "export" NAME ("," NAME)* "to" STRING ("with" NAME "(" INT ")")?
group_decl: "group" NAME "{" NAME ("," NAME)* ","? "}"
"""


def test_unknown_statements_are_laid_out_generically(monkeypatch):
    grammar = grammar_path().read_text()
    grammar = re.sub(r"\?statement:.*?\n(?=\n)", "", grammar, count=1, flags=re.S) + EXTRA_GRAMMAR
    lark = Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False,
                keep_all_tokens=True, lexer_callbacks={"COMMENT": fmt._comments.append})
    monkeypatch.setattr(fmt, "_lark", lambda: lark)
    src = ('export   a ,b to "out dir"   with gzip( 9 )  # ship it\n'
           "group g {x,y,}\ngroup h { x , y }\ninput x:int 0..3\n")
    out = fmt.format_source(src, "new.tangle")
    assert out == ('export a, b to "out dir" with gzip(9)  # ship it\n'
                   "group g {\n    x,\n    y,\n}\ngroup h { x, y }\ninput x: int 0..3\n")
    assert fmt.format_source(out, "new.tangle") == out


# ---- the command --------------------------------------------------------------------------------------

def invoke(*args, input=None):
    return CliRunner().invoke(cli, list(map(str, args)), input=input)


def test_cli_check_diff_and_write(tmp_path):
    messy = tmp_path / "specs" / "messy.tangle"
    messy.parent.mkdir()
    messy.write_text(MESSY)
    clean = tmp_path / "specs" / "sub" / "clean.tangle"
    clean.parent.mkdir()
    clean.write_text(MESSY_FORMATTED)
    (tmp_path / "specs" / ".hidden").mkdir()
    (tmp_path / "specs" / ".hidden" / "skip.tangle").write_text("not a spec")
    (tmp_path / "specs" / "notes.txt").write_text("not a spec")

    r = invoke("fmt", "--check", tmp_path / "specs")
    assert r.exit_code == 1 and "would reformat" in r.stderr and str(messy) in r.stderr
    assert messy.read_text() == MESSY

    r = invoke("fmt", "--diff", messy)
    assert r.exit_code == 0 and r.stdout.startswith(f"--- {messy} (original)\n+++ {messy} (formatted)\n")
    assert "+route x -> [binary | decimal] by encoding  # pick the encoder" in r.stdout
    assert messy.read_text() == MESSY
    r = invoke("fmt", "--diff", "--check", messy)
    assert r.exit_code == 1 and "@@" in r.stdout

    mode = messy.stat().st_mode
    r = invoke("fmt", tmp_path / "specs")
    assert r.exit_code == 0 and f"reformatted {messy}" in r.stderr
    assert messy.read_text() == MESSY_FORMATTED and messy.stat().st_mode == mode
    assert not [p for p in messy.parent.iterdir() if p.name.endswith(".tmp")]
    r = invoke("fmt", "--check", tmp_path / "specs")
    assert r.exit_code == 0 and "0 files would be reformatted, 2 unchanged" in r.stderr


def test_cli_json(tmp_path):
    a = tmp_path / "a.tangle"
    a.write_text("input x:int 0..9\n")
    bad = tmp_path / "bad.tangle"
    bad.write_text("input x int\n")
    r = invoke("fmt", "--check", "--json", a, bad)
    assert r.exit_code == 1
    out = json.loads(r.stdout)
    assert out["ok"] is False and out["changed"] == [str(a)] and out["failed"] == [str(bad)]
    assert out["unchanged"] == 0
    by_file = {f["file"]: f for f in out["files"]}
    assert by_file[str(a)] == {"file": str(a), "ok": True, "changed": True, "written": False, "diagnostics": []}
    assert by_file[str(bad)]["diagnostics"][0]["code"] == "E001"
    r = invoke("fmt", "--diff", "--json", a)
    assert json.loads(r.stdout)["files"][0]["diff"].startswith("---")


def test_cli_syntax_error_leaves_file_alone(tmp_path):
    bad = tmp_path / "bad.tangle"
    bad.write_text("input x int 0..9\n")
    r = invoke("fmt", bad)
    assert r.exit_code == 1 and "can't format" in r.stderr and "E001" in r.stderr and "1:9" in r.stderr
    assert bad.read_text() == "input x int 0..9\n"


def test_cli_stdin():
    r = invoke("fmt", "-", input="input   x:int 0..9")
    assert r.exit_code == 0 and r.stdout == "input x: int 0..9\n"
    r = invoke("fmt", "--check", "-", input="input x: int 0..9\n")
    assert r.exit_code == 0 and r.stdout == ""
    r = invoke("fmt", "--check", "-", input="input x:int 0..9\n")
    assert r.exit_code == 1


# ---- the docs' examples ------------------------------------------------------------------------------

# docs/errors.md shows broken specs on purpose; every other doc's examples must be valid and canonical
DOC_BLOCKS = [(doc.name, i, block) for doc in sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
              if doc.name != "errors.md"
              for i, block in enumerate(re.findall(r"```tangle\n(.*?)```", doc.read_text(), re.S))]


@pytest.mark.parametrize("doc, index, block", DOC_BLOCKS, ids=[f"{d}-{i}" for d, i, _ in DOC_BLOCKS])
def test_doc_examples_parse_and_are_canonical(doc, index, block):
    assert fmt.format_source(block, f"{doc} example {index}") == block
