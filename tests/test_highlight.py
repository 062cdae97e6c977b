"""The Pygments lexer for .tangle, its registration, and coloured diagnostics in the CLI."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest
from click.testing import CliRunner
from pygments.token import Comment, Error, Keyword, Name, Number, Operator, String

from support import ARITH, ROOT, SPECS
from tanglec.lang import vocabulary
from tanglec.lang import expr, highlight, parser
from tanglec.cli import cli
from tanglec.lang.diagnostics import render_all
from tanglec.lang.highlight import TangleLexer, colorize_diagnostics, strip_ansi

SPEC_FILES = sorted(SPECS.rglob("*.tangle"))


def tokens(text: str) -> dict[str, object]:
    """Each token's text -> its kind."""
    return {v: t for t, v in TangleLexer().get_tokens(text) if v.strip()}


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.name)
def test_specs_lex_without_errors(path):
    text = path.read_text()
    toks = list(TangleLexer().get_tokens(text))
    assert not [v for t, v in toks if t in Error]
    assert "".join(v for _, v in toks) == text if text.endswith("\n") else text + "\n"


def test_token_kinds():
    kinds = (tokens('module to_out: latent(12) -> bits(4) = dense 64 relu, residual(norm), dropout 0.1  # c\n'
                        'target y: int 0..9 = match op { plus1: max(x, 1.5e3) // 2, _: -x }\n'
                        'data file "rows.csv" eval 0.25\ntrain steps 300 adam 0.01 until exact mux gather\n'))
    assert kinds["module"] is Keyword.Declaration and kinds["target"] is Keyword.Declaration
    assert kinds["to_out"] is Name and kinds["x"] is Name
    assert kinds["latent"] is Name.Builtin and kinds["bits"] is Name.Builtin
    assert kinds["dense"] is Name.Function and kinds["residual"] is Name.Function
    assert kinds["relu"] is Name.Constant
    assert kinds["int"] is Keyword.Type
    assert kinds["match"] is Keyword and kinds["file"] is Keyword
    assert kinds["max"] is Name.Builtin and kinds["_"] is Keyword.Pseudo
    assert kinds["1.5e3"] is Number.Float and kinds["0.1"] is Number.Float and kinds["64"] is Number.Integer
    assert kinds["->"] is Operator and kinds[".."] is Operator and kinds["//"] is Operator
    assert kinds['"rows.csv"'] is String.Double and kinds["# c"] is Comment.Single
    assert kinds["steps"] is Name.Attribute and kinds["exact"] is Name.Attribute
    # a name that starts like a keyword is a name
    assert tokens("input inputs: int 0..1")["inputs"] is Name


def test_word_lists_follow_the_compiler():
    lexer_words = set(highlight.STATEMENTS + highlight.KEYWORDS + highlight.FIELD_TYPES + highlight.CODECS)
    grammar_words = set(re.findall(r'"([a-z][a-z_]*)"', parser.grammar_path().read_text()))
    missing = grammar_words - lexer_words
    assert not missing, f"keywords of tanglec/tangle.lark missing from tanglec/highlight.py: {sorted(missing)}"
    assert set(parser.STATEMENT_KEYWORDS) <= set(highlight.STATEMENTS)
    assert vocabulary.CODECS <= set(highlight.CODECS)
    assert vocabulary.LAYER_KINDS <= set(highlight.LAYERS)
    assert vocabulary.ACTIVATIONS <= set(highlight.ACTIVATIONS)
    settings = vocabulary.TRAIN_KEYS | vocabulary.DATA_KEYS | vocabulary.MUX_STRATEGIES
    assert settings - set(highlight.STATEMENTS + highlight.KEYWORDS) <= set(highlight.SETTINGS)
    statements = tokens("holdout binary -> times2\nalign binary, decimal on x weight 1\n")
    assert statements["holdout"] is Keyword.Declaration and statements["on"] is Keyword
    assert set(expr.FUNCTIONS) <= set(highlight.FUNCTIONS)


def test_registered_with_pygments():
    from pygments.lexers import find_lexer_class_for_filename, get_lexer_by_name

    assert isinstance(get_lexer_by_name("tangle"), TangleLexer)
    assert find_lexer_class_for_filename("specs/arith.tangle") is TangleLexer


def test_rich_syntax_for_the_tui():
    from rich.console import Console

    console = Console(record=True, width=120, force_terminal=True, color_system="standard")
    console.print(highlight.rich_syntax(ARITH.read_text(), line_numbers=True))
    assert "\x1b[" in console.export_text(styles=True, clear=False)
    assert "module binary" in console.export_text()


def broken_diagnostics():
    from tanglec.pipeline import check_spec
    from tanglec.lang.parser import parse

    source = ARITH.read_text().replace("dense 64 relu, dense 4", "dense 64 rleu, dense 4")
    return check_spec(parse(source, "arith.tangle")).diagnostics


def test_colorized_diagnostics_strip_back_to_plain():
    plain = render_all(broken_diagnostics())
    coloured = colorize_diagnostics(plain)
    assert coloured != plain and "\x1b[31m" in coloured  # errors in red
    assert strip_ansi(coloured) == plain
    assert "rleu" in plain and "hint" in plain


def test_cli_colours_only_when_asked_or_on_a_terminal(tmp_path):
    bad = tmp_path / "bad.tangle"
    bad.write_text(ARITH.read_text().replace("dense 64 relu, dense 4", "dense 64 rleu, dense 4"))
    runner = CliRunner()
    plain = runner.invoke(cli, ["check", str(bad)], env={"NO_COLOR": None, "FORCE_COLOR": None})
    assert plain.exit_code == 1 and "\x1b[" not in plain.stderr and "E111" in plain.stderr
    forced = runner.invoke(cli, ["check", str(bad)], env={"FORCE_COLOR": "1", "NO_COLOR": None}, color=True)
    assert forced.exit_code == 1 and "\x1b[" in forced.stderr
    assert strip_ansi(forced.stderr) == plain.stderr
    off = runner.invoke(cli, ["check", str(bad)], env={"FORCE_COLOR": "1", "NO_COLOR": "1"}, color=True)
    assert "\x1b[" not in off.stderr


def test_check_does_not_import_pygments_when_not_a_terminal(tmp_path):
    bad = tmp_path / "bad.tangle"
    bad.write_text("input x int\n")
    code = ("import sys\nfrom tanglec.cli import main\nsys.argv = ['tanglec', 'check', sys.argv[1]]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
            "print(code, 'pygments' in sys.modules, 'rich' in sys.modules, 'tensorflow' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code, str(bad)], capture_output=True, text=True, cwd=ROOT,
                          timeout=60, env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1"})
    assert proc.stdout.split() == ["1", "False", "False", "False"], proc.stdout + proc.stderr
