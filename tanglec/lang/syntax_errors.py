"""A syntax error as a diagnostic: Lark's report (an UnexpectedInput) of where the parse failed, in the
words of the language, with hints for the usual slips (another language's habits, a misspelled
statement keyword)."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Callable

from . import ast
from .diagnostics import Diagnostic, did_you_mean
from .prescan import STATEMENT_KEYWORDS
from .vocabulary import LAYER_KINDS

if TYPE_CHECKING:
    from lark import Lark, Token
    from lark.exceptions import UnexpectedInput

_TERMINAL_WORDS = {
    "NAME": "a name", "INT": "an integer", "SIGNED_INT": "an integer", "NUMBER": "a number",
    "SIGNED_NUMBER": "a number", "STRING": 'a "string"', "COMPARE": "a comparison",
    "ADD_OP": "'+' or '-'", "MUL_OP": "'*', '/', '//' or '%'", "WILDCARD": "'_'", "$END": "end of file",
}


def _describe_terminal(name: str, grammar: Callable[[], Lark]) -> str:
    if name in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[name]
    try:
        pattern = grammar().get_terminal(name).pattern
    except KeyError:
        return name
    return f"'{pattern.value}'" if pattern.type == "str" else name


_FIRST_WORD = re.compile(r"^([ \t]*)([A-Za-z][A-Za-z0-9_]*)")


def _misspelled_statement(err: UnexpectedInput, file: str, line_offset: int,
                          source_lines: list[str]) -> Diagnostic | None:
    """`rout x -> ...` parses as part of the statement above and fails later; name the real culprit."""
    line = getattr(err, "line", None)
    if not line or line < 1 or line > len(source_lines):
        return None
    m = _FIRST_WORD.match(source_lines[line - 1])
    if not m or m.group(2) in STATEMENT_KEYWORDS:
        return None
    hints = did_you_mean(m.group(2), STATEMENT_KEYWORDS)
    if not hints:
        return None
    col = len(m.group(1)) + 1
    span = ast.Span(file, line + line_offset, col, line + line_offset, col + len(m.group(2)))
    return Diagnostic("E001", f"unknown statement '{m.group(2)}'", span,
                      hints=hints + ["statements: " + ", ".join(STATEMENT_KEYWORDS)])


def syntax_diagnostic(err: UnexpectedInput, file: str, line_offset: int, source_lines: list[str],
                      grammar: Callable[[], Lark]) -> Diagnostic:
    """The diagnostic of Lark's `err` in `source_lines` (a statement parsed alone starts after `line_offset`
    lines); `grammar()`: the grammar's rules parser, loaded only to name a terminal."""
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

    misspelled = _misspelled_statement(err, file, line_offset, source_lines)
    if misspelled:
        return misspelled
    line = (err.line if err.line and err.line > 0 else len(source_lines) or 1) + line_offset
    col = err.column if err.column and err.column > 0 else 1
    if isinstance(err, UnexpectedToken) and err.token.type == "$END" or isinstance(err, UnexpectedEOF):
        while len(source_lines) > 1 and not source_lines[-1].strip():
            source_lines = source_lines[:-1]  # point after the last written text, not at trailing blank lines
        last = len(source_lines) + line_offset
        last_line = source_lines[-1] if source_lines else ""
        span = ast.Span(file, max(last, 1), len(last_line) + 1, max(last, 1), len(last_line) + 2)
        expected = sorted({_describe_terminal(t, grammar) for t in err.expected})
        return Diagnostic("E002", "unexpected end of input", span,
                          hints=[f"expected {', '.join(expected)}"] if expected else [])
    if isinstance(err, UnexpectedToken):
        tok = err.token
        width = max(len(str(tok)), 1)
        span = ast.Span(file, line, col, line, col + width)
        expected = sorted({_describe_terminal(t, grammar) for t in err.expected})
        hints = [f"expected {_join_or(expected)}"] if expected else []
        if tok.type == "NAME":
            keywords = [e.strip("'") for e in expected if e.startswith("'") and e[1:-1].isalpha()]
            hints = did_you_mean(str(tok), keywords) + hints
        elif str(tok) == "=" and "COMPARE" in err.expected:
            hints = ["to compare, write `==` (`=` only names a target or a module's layers)"] + hints
        text_line = source_lines[line - line_offset - 1] if 0 < line - line_offset <= len(source_lines) else ""
        hints = _habit_hints(tok, err.expected, text_line[:col - 1], text_line[col - 1:]) + hints
        return Diagnostic("E001", f"unexpected {_describe_token(tok)}", span, hints=hints)
    assert isinstance(err, UnexpectedCharacters)
    char = err.char if hasattr(err, "char") else "?"
    span = ast.Span(file, line, col, line, col + 1)
    allowed = sorted({_describe_terminal(t, grammar) for t in (err.allowed or ())})
    hints = [f"expected {_join_or(allowed)}"] if allowed else []
    return Diagnostic("E003", f"unexpected character {char!r}", span, hints=hints)


_TOKEN_KINDS = {"NAME": "name", "INT": "integer", "SIGNED_INT": "integer", "NUMBER": "number",
                "SIGNED_NUMBER": "number", "STRING": "string"}
_LAYER_EXAMPLES = {"dense": "dense 64 relu", "dropout": "dropout 0.1", "norm": "norm", "standardize": "standardize",
                   "image": "image 8 8", "conv2d": "conv2d 16 3 relu", "pool": "pool 2", "shift": "shift 1",
                   "rotate": "rotate 10", "zoom": "zoom 0.1"}
_BRACKETED_LAYER = re.compile(r"\b(%s)\s*\(\s*$" % "|".join(sorted(LAYER_KINDS - {"residual"})))


def _describe_token(tok: Token) -> str:
    """`name 'x'`, `number '64'`, or an operator or keyword as written."""
    kind = _TOKEN_KINDS.get(tok.type)
    return f"{kind} '{tok}'" if kind else f"'{tok}'"


def _habit_hints(tok: Token, expected: set[str], before: str, rest: str) -> list[str]:
    """What another language's habit meant, from the unexpected token, what the grammar expected there and the
    text of its line before it and from it on."""
    if str(tok) in ("/", "//") and "MUL_OP" not in expected:  # not a division: a C-style comment
        return ["comments start with `#` and run to the end of the line"]
    if str(tok) in ("[", "(") and re.search(r"\b(int|float)\s*$", before):
        return ["a range is two bounds and `..`: `int 0..9`, `float -1..1`"]
    listing = re.match(r"\s*(select\b|(input|target)\b.*\bcategory\b)", before)
    if str(tok) == "," and listing:
        example = "select op: plus1 | times2" if listing.group(1) == "select" else "category red | green | blue"
        return [f"values are separated by `|`: `{example}`"]
    if rest.startswith("=>"):
        return ["a route's stages are joined by `->`"]
    layer = _BRACKETED_LAYER.search(before)
    if layer:
        return [f"a layer's arguments follow its name without brackets, e.g. `{_LAYER_EXAMPLES[layer.group(1)]}`; "
                "only a block such as residual(...) holds layers in brackets"]
    return []


def _join_or(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    if len(items) > 8:
        return ", ".join(items[:8]) + ", …"
    return ", ".join(items[:-1]) + " or " + items[-1]
