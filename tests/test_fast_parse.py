"""The fast front end makes exactly Lark's choices: its lexer's tokens are Lark's ContextualLexer's (type,
text, positions), and the table loop builds the AST Lark's own LALR loop builds with the same callbacks,
or gives up (Unusual) exactly where Lark raises — on every shipped spec, the docs' examples, the errors
examples, generated specs and fuzz cases."""
from __future__ import annotations

import importlib.util
import random
import re

import pytest
from lark.exceptions import UnexpectedInput

from support import ROOT
from tanglec.devtools import errors_examples, specgen
from tanglec.lang import parser
from tanglec.lang.fastparse import Unusual
from tanglec.lang.lexer import FastContextualLexer

_spec_gen = importlib.util.spec_from_file_location("tanglec_bench_spec_gen", ROOT / "bench" / "spec_gen.py")
spec_gen = importlib.util.module_from_spec(_spec_gen)
_spec_gen.loader.exec_module(spec_gen)


def _corpus() -> dict[str, str]:
    texts = {str(p.relative_to(ROOT)): p.read_text() for p in ROOT.glob("**/*.tangle") if ".venv" not in p.parts}
    for doc in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        for i, block in enumerate(re.findall(r"```(?:tangle)?\n(.*?)```", doc.read_text(), re.S)):
            texts[f"{doc.name} block {i}"] = block
    texts.update({f"errors example {e.code}": e.spec for e in errors_examples.EXAMPLES if e.spec})
    texts.update({"generated": spec_gen.generate(300), "dense": spec_gen.generate_dense(300)})
    specs = specgen.corpus(specgen.make_workdir())
    for i in range(150):
        text, raw = specgen.mutation_case(random.Random(f"fast:{i}"), specs)
        if raw is None:
            texts[f"mutation {i}"] = text
        texts[f"expression {i}"] = specgen.expression_case(random.Random(f"fast-expr:{i}"))
    texts.update({"empty": "", "blank": "  \n\t\n", "comment at the end": "input x: int 0..3 # no newline",
                  "crlf": "input x: int 0..3\r\nselect s: a | b\r\n", "keyword prefix": "inputx: int 0..3",
                  "signs": "target y = x -1 - -1 + +1", "unterminated string": 'data file "a.csv'})
    return texts


CORPUS = _corpus()


def _tokens(lark, text: str):
    """Every token Lark's LALR loop is fed, with all its fields, then how the parse ended."""
    interactive = lark.parse_interactive(text)
    fed = []
    try:
        for token in interactive.iter_parse():
            fed.append((token.type, token.value, token.start_pos, token.end_pos, token.line, token.column,
                        token.end_line, token.end_column))
        interactive.resume_parse()
        ending = "ok"
    except UnexpectedInput as err:  # what the diagnostics read (its text lists sets in hash order)
        ending = (type(err).__name__, err.line, err.column, err.pos_in_stream, repr(getattr(err, "token", None)),
                  sorted(getattr(err, "expected", None) or getattr(err, "allowed", None) or ()))
    return fed, ending


@pytest.fixture(scope="module")
def lexers():
    return (parser.open_grammar(keep_all_tokens=True),
            parser.open_grammar(keep_all_tokens=True, lexer=FastContextualLexer))


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_the_fast_lexer_feeds_the_parser_lark_s_tokens(lexers, name):
    lark_lexer, fast_lexer = lexers
    assert _tokens(fast_lexer, CORPUS[name]) == _tokens(lark_lexer, CORPUS[name])


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_the_table_loop_builds_lark_s_ast_or_leaves_the_error_to_lark(name):
    lark, builder, table_parser = parser._ast_parser()
    text = CORPUS[name]
    builder.begin("x.tangle")
    try:
        expected, expected_problems = repr(lark.parse(text)), repr(builder.problems)
    except UnexpectedInput:
        expected = None
    builder.begin("x.tangle")
    try:
        got, got_problems = repr(table_parser.parse(text)), repr(builder.problems)
    except Unusual:
        got = None
    assert got == expected
    if expected is not None:
        assert got_problems == expected_problems
