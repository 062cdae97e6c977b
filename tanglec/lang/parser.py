"""Source text -> AST. The Lark grammar is tangle.lark next to this module (LALR, positions propagated).

Syntax errors do not stop at the first: when the whole file fails to parse, each statement (a run of
lines starting at a statement keyword) is parsed on its own, so one pass reports every broken
statement and still yields the good ones.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable
from pathlib import Path

from lark import Lark, Token, Tree, v_args
from lark.visitors import Transformer_NonRecursive
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from . import ast
from .diagnostics import SOURCES, Diagnostic, TangleError, did_you_mean
from .expr import INT_LIMIT, children

STATEMENT_KEYWORDS = ("input", "select", "module", "route", "target", "decode", "data", "train", "phase",
                      "align", "holdout", "freeze", "use", "init")
_STATEMENT_START = re.compile(r"^[ \t]*(?:%s)\b" % "|".join(STATEMENT_KEYWORDS), re.M)
MAX_SOURCE_BYTES = 2_000_000
MAX_NESTING = 64
MAX_TOKENS = 25_000  # words, numbers and operators in one spec (comments and strings aside)
_BLANK = " \t\r\n\f"  # the grammar's whitespace (str.strip() would also strip \v, \x1c, \u2028... which it rejects)
BOM = "\ufeff"  # editors on Windows start UTF-8 files with it; it is not part of the text
MAX_EXPR_DEPTH = 200  # operators nested in one expression (`1+1+...` nests one per `+`)

_TERMINAL_WORDS = {
    "NAME": "a name", "INT": "an integer", "SIGNED_INT": "an integer", "NUMBER": "a number",
    "SIGNED_NUMBER": "a number", "STRING": 'a "string"', "COMPARE": "a comparison",
    "ADD_OP": "'+' or '-'", "MUL_OP": "'*', '/', '//' or '%'", "WILDCARD": "'_'", "$END": "end of file",
}


GRAMMAR_FILE = "tangle.lark"


def grammar_path() -> Path:
    """The grammar file, inside the package (a checkout and an installed wheel alike)."""
    return Path(__file__).with_name(GRAMMAR_FILE)


def open_grammar(**options) -> Lark:
    """A Lark parser of the grammar: LALR with positions propagated; `options` add to those (the formatter
    keeps every token and its comments). The one place that reads the grammar file."""
    return Lark.open(GRAMMAR_FILE, rel_to=__file__, parser="lalr", propagate_positions=True,
                     maybe_placeholders=False, **options)


@lru_cache(maxsize=1)
def lark_parser() -> Lark:
    """The parser every spec goes through (its grammar analysis cached on disk by Lark)."""
    return open_grammar(cache=True)


def _describe_terminal(name: str) -> str:
    if name in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[name]
    try:
        pattern = lark_parser().get_terminal(name).pattern
    except KeyError:
        return name
    return f"'{pattern.value}'" if pattern.type == "str" else name


class _ToAst(Transformer_NonRecursive):
    """Lark tree -> ast dataclasses; `line_offset` places a statement parsed alone at its real line.
    Non-recursive, so a huge flat expression (`1+1+...+1`) can't overflow the Python stack; number
    literals out of range become E007 diagnostics in `problems`."""

    def __init__(self, file: str, line_offset: int = 0):
        super().__init__(visit_tokens=False)
        self.file = file
        self.line_offset = line_offset
        self.problems: list[Diagnostic] = []

    def literal(self, tok: Token, integer: bool = False) -> int | float:
        """A number token's value; 0 and an E007 diagnostic when it is too large to compute with."""
        text = str(tok)
        digits = len(text.lstrip("+-").split(".")[0].split("e")[0].split("E")[0])
        value = None
        if digits <= 30:
            value = int(text) if integer else _number(text)
        if value is None or abs(value) >= INT_LIMIT and isinstance(value, int) or value != value \
                or abs(value) == float("inf"):
            shown = text if len(text) <= 24 else text[:20] + "…"
            self.problems.append(Diagnostic("E007", f"number {shown} is too large", self.span(tok),
                                            hints=[f"integers must lie within ±2**53 ({INT_LIMIT:,}); "
                                                   f"floats must be finite"]))
            return 0
        return value

    # -- positions
    def span(self, meta) -> ast.Span:
        return ast.Span(self.file, meta.line + self.line_offset, meta.column,
                        meta.end_line + self.line_offset, meta.end_column)

    def name(self, tok: Token) -> ast.Name:
        return ast.Name(str(tok), self.span(tok))

    def names(self, children) -> list[ast.Name]:
        return [self.name(c) for c in children if isinstance(c, Token) and c.type == "NAME"]

    # -- statements
    @v_args(meta=True)
    def start(self, meta, children):
        return children

    @v_args(meta=True)
    def input_decl(self, meta, c):
        return ast.InputDecl(self.name(c[0]), c[1], self.span(meta))

    @v_args(meta=True)
    def select_decl(self, meta, c):
        return ast.SelectDecl(self.name(c[0]), self.names(c[1:]), self.span(meta))

    @v_args(meta=True)
    def int_type(self, meta, c):
        return ast.IntType(c[0], c[1], self.span(meta))

    @v_args(meta=True)
    def float_type(self, meta, c):
        lo, hi = (c[0], c[1]) if c else (None, None)
        return ast.FloatType(lo, hi, self.span(meta))

    @v_args(meta=True)
    def category_type(self, meta, c):
        return ast.CategoryType(self.names(c), self.span(meta))

    @v_args(meta=True)
    def vector_type(self, meta, c):
        return ast.VectorType(self.literal(c[0], integer=True), self.span(meta))

    def signed_int(self, c):
        return self.literal(c[0], integer=True)

    def signed_number(self, c):
        return self.literal(c[0])

    @v_args(meta=True)
    def number(self, meta, c):
        return ast.Number(self.literal(c[0]), self.span(meta))

    @v_args(meta=True)
    def module_decl(self, meta, c):
        return ast.ModuleDecl(self.name(c[0]), c[1], c[2], list(c[3:]), self.span(meta))

    @v_args(meta=True)
    def codec(self, meta, c):
        return ast.Codec(self.name(c[0]), self.literal(c[1], integer=True) if len(c) > 1 else None, self.span(meta))

    @v_args(meta=True)
    def layer(self, meta, c):
        args = [self.name(a) if isinstance(a, Token) else a for a in c[1:]]
        return ast.Layer(self.name(c[0]), args, [], self.span(meta))

    @v_args(meta=True)
    def block(self, meta, c):
        return ast.Layer(self.name(c[0]), [], list(c[1:]), self.span(meta), is_block=True)

    @v_args(meta=True)
    def route_decl(self, meta, c):
        return ast.RouteDecl(self.name(c[0]), list(c[1:]), self.span(meta))

    @v_args(meta=True)
    def fanout(self, meta, c):
        return ast.FanOut(self.names(c), self.span(meta))

    @v_args(meta=True)
    def mux(self, meta, c):
        branches = [x for x in c if isinstance(x, ast.Branch)]
        rest = [x for x in c if not isinstance(x, ast.Branch)]
        selector = self.name(rest[0])
        strategy = rest[1] if len(rest) > 1 else None
        return ast.Mux(branches, selector, strategy, self.span(meta))

    @v_args(meta=True)
    def mux_strategy(self, meta, c):
        return self.name(c[0])

    @v_args(meta=True)
    def branch(self, meta, c):
        value = self.name(c[0])
        module = self.name(c[1]) if len(c) > 1 else value
        return ast.Branch(value, module, self.span(meta))

    @v_args(meta=True)
    def target_expr(self, meta, c):
        type_ = c[1] if len(c) == 3 else None
        return ast.TargetDecl(self.name(c[0]), type_, c[-1], self.span(meta))

    @v_args(meta=True)
    def target_data(self, meta, c):
        return ast.TargetDecl(self.name(c[0]), c[1], None, self.span(meta))

    @v_args(meta=True)
    def decode_decl(self, meta, c):
        names = self.names(c)
        return ast.DecodeDecl(names[:-1], names[-1], self.span(meta))

    @v_args(meta=True)
    def data_decl(self, meta, c):
        source, arg = c[0]
        return ast.DataDecl(source, arg, list(c[1:]), self.span(meta))

    def enumerate_source(self, c):
        return ("enumerate", None)

    def sample_source(self, c):
        return ("sample", self.literal(c[0], integer=True))

    def file_source(self, c):
        return ("file", str(c[0])[1:-1])

    @v_args(meta=True)
    def train_decl(self, meta, c):
        return ast.TrainDecl(list(c), self.span(meta))

    @v_args(meta=True)
    def setting(self, meta, c):
        value = c[1]
        if isinstance(value, Token):
            value = str(value)[1:-1] if value.type == "STRING" else self.name(value)
        return ast.Setting(self.name(c[0]), value, self.span(meta))

    def keyed_value(self, c):
        return (self.name(c[0]), c[1])

    def keyed_name(self, c):
        return (self.name(c[0]), self.name(c[1]))

    def name_list(self, c):
        return self.names(c)

    @v_args(meta=True)
    def phase_decl(self, meta, c):
        return ast.PhaseDecl(self.name(c[0]), list(c[1:]), self.span(meta))

    @v_args(meta=True)
    def align_decl(self, meta, c):
        names = [x for x in c if isinstance(x, Token)]
        settings = [x for x in c if isinstance(x, ast.Setting)]
        return ast.AlignDecl([self.name(t) for t in names[:-1]], self.name(names[-1]), settings, self.span(meta))

    @v_args(meta=True)
    def holdout_decl(self, meta, c):
        return ast.HoldoutDecl(self.names(c), self.span(meta))

    @v_args(meta=True)
    def freeze_decl(self, meta, c):
        return ast.FreezeDecl(self.names(c), self.span(meta))

    @v_args(meta=True)
    def use_decl(self, meta, c):
        only = self.names(c[1:]) if len(c) > 1 else None
        return ast.UseDecl(str(c[0])[1:-1], only, self.span(meta))

    @v_args(meta=True)
    def init_decl(self, meta, c):
        return ast.InitDecl(str(c[0])[1:-1], self.span(meta))

    # -- expressions
    @v_args(meta=True)
    def if_expr(self, meta, c):
        return ast.IfElse(c[0], c[1], c[2], self.span(meta))

    @v_args(meta=True)
    def or_op(self, meta, c):
        return ast.BinOp("or", c[0], c[1], self.span(meta))

    @v_args(meta=True)
    def and_op(self, meta, c):
        return ast.BinOp("and", c[0], c[1], self.span(meta))

    @v_args(meta=True)
    def not_op(self, meta, c):
        return ast.UnaryOp("not", c[0], self.span(meta))

    @v_args(meta=True)
    def compare(self, meta, c):
        return ast.BinOp(str(c[1]), c[0], c[2], self.span(meta))

    @v_args(meta=True)
    def arith(self, meta, c):
        return ast.BinOp(str(c[1]), c[0], c[2], self.span(meta))

    @v_args(meta=True)
    def neg(self, meta, c):
        return ast.UnaryOp("-", c[0], self.span(meta))

    @v_args(meta=True)
    def power(self, meta, c):
        return ast.BinOp("**", c[0], c[1], self.span(meta))

    @v_args(meta=True)
    def ref(self, meta, c):
        return ast.Ref(self.name(c[0]), self.span(meta))

    @v_args(meta=True)
    def call(self, meta, c):
        return ast.Call(self.name(c[0]), list(c[1:]), self.span(meta))

    @v_args(meta=True)
    def match(self, meta, c):
        return ast.Match(self.name(c[0]), list(c[1:]), self.span(meta))

    @v_args(meta=True)
    def case(self, meta, c):
        value = None if c[0].type == "WILDCARD" else self.name(c[0])
        return ast.MatchCase(value, c[1], self.span(meta))


def _number(text: str) -> int | float:
    return float(text) if any(ch in text for ch in ".eE") else int(text)


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


def _syntax_diagnostic(err: UnexpectedInput, file: str, line_offset: int, source_lines: list[str]) -> Diagnostic:
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
        expected = sorted({_describe_terminal(t) for t in err.expected})
        return Diagnostic("E002", "unexpected end of input", span,
                          hints=[f"expected {', '.join(expected)}"] if expected else [])
    if isinstance(err, UnexpectedToken):
        tok = err.token
        width = max(len(str(tok)), 1)
        span = ast.Span(file, line, col, line, col + width)
        expected = sorted({_describe_terminal(t) for t in err.expected})
        hints = [f"expected {_join_or(expected)}"] if expected else []
        if tok.type == "NAME":
            keywords = [e.strip("'") for e in expected if e.startswith("'") and e[1:-1].isalpha()]
            hints = did_you_mean(str(tok), keywords) + hints
        return Diagnostic("E001", f"unexpected {_describe_token(tok)}", span, hints=hints)
    assert isinstance(err, UnexpectedCharacters)
    char = err.char if hasattr(err, "char") else "?"
    span = ast.Span(file, line, col, line, col + 1)
    allowed = sorted({_describe_terminal(t) for t in (err.allowed or ())})
    hints = [f"expected {_join_or(allowed)}"] if allowed else []
    return Diagnostic("E003", f"unexpected character {char!r}", span, hints=hints)


def _describe_token(tok: Token) -> str:
    if tok.type == "NAME":
        return f"name '{tok}'"
    if tok.type in _TERMINAL_WORDS:
        return f"{_TERMINAL_WORDS[tok.type]} '{tok}'"
    return f"'{tok}'"


def _join_or(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    if len(items) > 8:
        return ", ".join(items[:8]) + ", …"
    return ", ".join(items[:-1]) + " or " + items[-1]


# what the prescan counts: a string, a comment (both skipped), a word or number, an operator, a character
_PRESCAN_TOKEN = re.compile(r'"[^"\n]*"?|#[^\n]*|[A-Za-z_][A-Za-z0-9_]*|[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?'
                            r'|\*\*|//|->|\.\.|[<>=!]=|\S')
# binary operators by precedence, loosest first (the grammar's or_expr ... power)
_PRECEDENCE = {"or": 0, "and": 1, "==": 2, "!=": 2, "<=": 2, ">=": 2, "<": 2, ">": 2, "+": 3, "-": 3,
               "*": 4, "/": 4, "//": 4, "%": 4, "**": 5}
_KEYWORDS = {"or", "and", "not", "if", "then", "else", "match", *STATEMENT_KEYWORDS}
# tokens that end a run of operators at one bracket level: within a run the loosest operators form one
# chain (left- or right-nested), so their count bounds the expression's depth from below
_RUN_BREAKS = {",", ":", "=", "|", "->", "..", "if", "then", "else", "match", *STATEMENT_KEYWORDS}


class _Run:
    """Operators at one bracket level since the last run break: per precedence class, the length of
    the chain being written (a looser operator completes the tighter chains: they were its operand),
    and the chain of prefix operators (`- - x`, `not not x`). A chain of k operators nests k deep."""

    def __init__(self):
        self.start: re.Match | None = None
        self.chains = [0] * 6
        self.prefix, self.prefix_start = 0, None


def prescan_problem(source: str, file: str) -> Diagnostic | None:
    """Refuse, before the LALR parse: more than MAX_TOKENS tokens (E005), brackets nested deeper than
    MAX_NESTING or an operator chain longer than MAX_EXPR_DEPTH (E004). Parsing costs ~50 µs a token,
    so every spec under the caps is parsed or refused in about a second, and no later stage can
    recurse too deep."""
    runs, tokens, operand_before = [_Run()], 0, False
    for m in _PRESCAN_TOKEN.finditer(source):
        text = m.group()
        if text[0] in '"#':
            continue
        tokens += 1
        if tokens > MAX_TOKENS:
            return Diagnostic("E005", f"spec longer than {MAX_TOKENS:,} tokens", _span_at(source, file, m),
                              hints=["split it into specs that `use` each other, or simplify long expressions"])
        run, chain_start = runs[-1], None
        if text in ")]}":
            if len(runs) > 1:
                runs.pop()
            runs[-1].prefix = 0
        elif text in "([{":
            runs.append(_Run())
            if len(runs) > MAX_NESTING + 1:
                return Diagnostic("E004", f"nesting deeper than {MAX_NESTING} levels", _span_at(source, file, m),
                                  hints=["split the expression with a named target or flatten it"])
        elif text in _RUN_BREAKS:
            runs[-1] = _Run()
        else:
            run.start = run.start or m
            if text == "not" or text == "-" and not operand_before:
                run.prefix += 1
                run.prefix_start = m if run.prefix == 1 else run.prefix_start
                chain_start = run.prefix_start if run.prefix >= MAX_EXPR_DEPTH else None
            else:
                run.prefix = 0
                if text in _PRECEDENCE:
                    rank = _PRECEDENCE[text]
                    run.chains[rank + 1:] = [0] * (5 - rank)
                    run.chains[rank] += 1
                    chain_start = run.start if run.chains[rank] >= MAX_EXPR_DEPTH else None
        if chain_start is not None:
            return Diagnostic("E004", f"expression nested more than {MAX_EXPR_DEPTH} levels deep",
                              _span_at(source, file, chain_start, m),
                              hints=["each operator in a chain like `1 + 1 + ... + 1` adds a level; simplify it "
                                     "or split it into targets"])
        operand_before = text in ")]}" or (text[0].isalnum() or text[0] == "_") and text not in _KEYWORDS
    return None


def token_count(source: str) -> int:
    """Tokens as the prescan counts them (comments and strings aside)."""
    return sum(1 for m in _PRESCAN_TOKEN.finditer(source) if m.group()[0] not in '"#')


def _span_at(source: str, file: str, first: re.Match, last: re.Match | None = None) -> ast.Span:
    """The span from token `first` to the end of token `last` (default: `first`)."""
    last = last or first

    def position(offset: int) -> tuple[int, int]:
        return source.count("\n", 0, offset) + 1, offset - source.rfind("\n", 0, offset)

    return ast.Span(file, *position(first.start()), *position(last.end()))


def _parse_text(source: str, file: str) -> tuple[list, list[Diagnostic]]:
    """The statements that parsed and every syntax diagnostic, parsing the text once: the whole file,
    and statement by statement only when the whole file doesn't parse."""
    if len(source.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
        return [], [Diagnostic("E005", f"spec larger than {MAX_SOURCE_BYTES // 1_000_000} MB",
                               ast.Span(file, 1, 1, 1, 2))]
    refused = prescan_problem(source, file)
    if refused:
        return [], [refused]
    try:
        tree = lark_parser().parse(source)
    except UnexpectedInput as failure:
        statements, diagnostics = _parse_statement_by_statement(source, file)
        if not diagnostics:  # never fail without saying where
            diagnostics = [_syntax_diagnostic(failure, file, 0, source.split("\n"))]
        return statements, diagnostics
    statements, problems = _transform(tree, file, 0)
    lines = [d.span.line for d in problems]
    return [st for st in statements if not any(st.span.line <= n <= st.span.end_line for n in lines)], problems


def parse(source: str, file: str = "<spec>", read: Callable[[Path], str] | None = None,
          _using: tuple[str, ...] = ()) -> ast.Spec:
    """Parse a whole spec, bringing in `use`d specs; raise TangleError with every syntax diagnostic found.

    `read` supplies the text of used files (default: from disk; a run directory supplies its copies).
    """
    source = source.removeprefix(BOM)
    SOURCES.add(file, source)
    statements, diagnostics = _parse_text(source, file)
    if diagnostics:
        raise TangleError(diagnostics)
    return _resolve_uses(ast.Spec(file, source, statements), read or _read_disk, _using + (file,))


# what a `use` brings in: the graph and its targets, never another experiment's data or training
_PER_EXPERIMENT = (ast.DataDecl, ast.TrainDecl, ast.PhaseDecl, ast.InitDecl, ast.HoldoutDecl, ast.FreezeDecl,
                   ast.AlignDecl)


def _read_disk(path: Path) -> str:
    return read_spec_text(path)


def read_spec_text(path: Path) -> str:
    """A spec file's text: a regular file (not /dev/zero or a FIFO) of at most MAX_SOURCE_BYTES, read
    without loading more than that; OSError or UnicodeDecodeError otherwise."""
    if not path.is_file():
        if not path.exists():
            raise FileNotFoundError(2, "no such file", str(path))
        raise OSError(f"not a regular file: {path}")  # a directory, /dev/zero, a FIFO...
    with path.open("rb") as fh:
        data = fh.read(MAX_SOURCE_BYTES + 1)
    if len(data) > MAX_SOURCE_BYTES:
        raise OSError(f"larger than {MAX_SOURCE_BYTES // 1_000_000} MB")
    return data.decode("utf-8")


def used_path(spec_file: str, use: ast.UseDecl) -> Path:
    """A used spec's path: relative to the file that uses it."""
    return (Path(spec_file).parent / use.path).resolve()


MAX_USE_DEPTH = 16  # `use` chains (each level recurses through parse)
MAX_USES = 256  # `use`s one parse resolves, counted each time (a diamond of uses can't blow up)
MAX_USED_STATEMENTS = 50_000  # statements `use`s may bring in (a diamond copies them once per path)


class _CountingReader:
    """The `read` of one top-level parse: it resolves at most MAX_USES `use`s and parses each used spec
    once however often it is used (`use "a.tangle" modules x` and `... modules y`; diamonds)."""

    def __init__(self, read: Callable[[Path], str]):
        self.read, self.count = read, 0  # count: `use`s resolved, each time (a diamond of uses can't blow up)
        self.tokens = 0  # in the spec and the used specs read so far: all are parsed
        self.parsed: dict[str, tuple[str, ast.Spec | None]] = {}  # key -> (text, spec or None if it failed)

    def __call__(self, path: Path) -> str:
        return self.read(path)


def _resolve_uses(spec: ast.Spec, read: Callable[[Path], str], using: tuple[str, ...]) -> ast.Spec:
    problems: list[Diagnostic] = []
    statements: list = []
    if not isinstance(read, _CountingReader):
        read = _CountingReader(read)
        if any(isinstance(st, ast.UseDecl) for st in spec.statements):
            read.tokens = token_count(spec.source)
    for st in spec.statements:
        if not isinstance(st, ast.UseDecl):
            statements.append(st)
            continue
        path = used_path(spec.path, st)
        key = str(path)
        if key in using or str(Path(spec.path).resolve()) == key:
            chain = " -> ".join(Path(u).name for u in using + (key,))
            problems.append(Diagnostic("E151", f"specs use each other in a cycle: {chain}", st.span))
            continue
        if len(set(using)) > MAX_USE_DEPTH:
            problems.append(Diagnostic("E151", f"`use` chains nest more than {MAX_USE_DEPTH} specs deep", st.span))
            continue
        read.count += 1
        if read.count > MAX_USES:
            problems.append(Diagnostic("E150", f"can't read used spec {st.path}: more than {MAX_USES} `use`s in all "
                                               f"(each use counts, through every spec that uses it)", st.span))
            continue
        if key in read.parsed:  # used before in this parse: its problems, if any, are reported once
            text, used = read.parsed[key]
            if used is None:
                continue
        else:
            try:
                text = read(path)
            except (OSError, UnicodeDecodeError) as err:
                problems.append(Diagnostic("E150", f"can't read used spec {st.path}: "
                                                   f"{getattr(err, 'strerror', None) or err}", st.span,
                                           hints=[f"paths are relative to the using spec: looked for {path}"]))
                continue
            read.tokens += token_count(text)
            if read.tokens > MAX_TOKENS:
                read.parsed[key] = (text, None)
                problems.append(Diagnostic("E150", f"can't use {st.path}: with the specs it uses, the spec "
                                                   f"holds more than {MAX_TOKENS:,} tokens", st.span))
                break
            try:
                used = parse(text, key, read, using + (str(Path(spec.path).resolve()),))
            except TangleError as err:
                read.parsed[key] = (text, None)
                problems += err.diagnostics
                continue
            read.parsed[key] = (text, used)
        spec.used_files.update({key: text, **used.used_files})
        brought = [u for u in used.statements if not isinstance(u, _PER_EXPERIMENT)]
        if st.only is not None:
            modules = {u.name.text: u for u in brought if isinstance(u, ast.ModuleDecl)}
            brought = []
            for name in st.only:
                if name.text in modules:
                    brought.append(modules[name.text])
                else:
                    problems.append(Diagnostic("E101", f"{st.path} declares no module '{name.text}'", name.span,
                                               hints=did_you_mean(name.text, modules)))
        if len(statements) + len(brought) > MAX_USED_STATEMENTS:
            problems.append(Diagnostic("E150", f"can't use {st.path}: the specs it uses bring in more than "
                                               f"{MAX_USED_STATEMENTS:,} statements", st.span))
            break
        statements += brought
    if problems:
        raise TangleError(problems)
    spec.statements = statements
    return spec


def parse_partial(source: str, file: str = "<spec>") -> tuple[ast.Spec, list[Diagnostic]]:
    """Like parse, but keep the statements that did parse (for the TUI, `check` and the formatter)."""
    source = source.removeprefix(BOM)
    SOURCES.add(file, source)
    statements, diagnostics = _parse_text(source, file)
    if diagnostics:
        return ast.Spec(file, source, statements), diagnostics
    try:
        return _resolve_uses(ast.Spec(file, source, list(statements)), _read_disk, (file,)), []
    except TangleError as err:
        return ast.Spec(file, source, statements), err.diagnostics


def _parse_statement_by_statement(source: str, file: str) -> tuple[list, list[Diagnostic]]:
    starts = [m.start() for m in _STATEMENT_START.finditer(source)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    statements, diagnostics = [], []
    offset, counted = 0, 0  # line offset of `begin`, counted incrementally (linear in the source size)
    for begin, end in zip(starts, starts[1:] + [len(source)]):
        chunk = source[begin:end]
        offset += source.count("\n", counted, begin)
        counted = begin
        if all(not line.strip(_BLANK) or line.lstrip(_BLANK).startswith("#") for line in chunk.split("\n")):
            continue
        try:
            tree = lark_parser().parse(chunk)
        except UnexpectedInput as err:
            diagnostics.append(_syntax_diagnostic(err, file, offset, chunk.split("\n")))
            continue
        found, problems = _transform(tree, file, offset)
        if problems:
            diagnostics += problems
        else:
            statements += found
    return statements, diagnostics


def _transform(tree: Tree, file: str, line_offset: int) -> tuple[list, list[Diagnostic]]:
    """Statements, and the problems only visible after parsing (number literals, expression depth)."""
    builder = _ToAst(file, line_offset)
    try:
        statements = builder.transform(tree)
    except VisitError as err:  # a transformer bug, not a user error: let the CLI report it as internal
        raise err.orig_exc from err
    return statements, builder.problems + _depth_problems(statements)


def _depth_problems(statements: list) -> list[Diagnostic]:
    """E004 for an expression nested deeper than MAX_EXPR_DEPTH (measured without recursion), so the
    evaluators and every later pass that walks expressions recursively stay far from the stack limit."""
    out = []
    for st in statements:
        if not isinstance(st, ast.TargetDecl) or st.expr is None:
            continue
        deepest, stack = 0, [(st.expr, 1)]
        while stack and deepest <= MAX_EXPR_DEPTH:
            node, depth = stack.pop()
            deepest = max(deepest, depth)
            stack += [(child, depth + 1) for child in children(node)]
        if deepest > MAX_EXPR_DEPTH:
            out.append(Diagnostic("E004", f"expression nested more than {MAX_EXPR_DEPTH} levels deep",
                                  st.expr.span, hints=["each operator in a chain like `1 + 1 + ... + 1` "
                                                       "adds a level; simplify it or split it into targets"]))
    return out


def read_spec_file(path: str | Path) -> str:
    """A spec file's text; TangleError E005 (too large) or E006 (not a readable UTF-8 regular file)."""
    path = Path(path)
    try:
        return read_spec_text(path)
    except UnicodeDecodeError as err:
        raise TangleError([Diagnostic("E006", f"not UTF-8 text: {err.reason} at byte {err.start}",
                                      ast.Span(str(path), 1, 1, 1, 2))]) from None
    except OSError as err:
        code = "E005" if "larger than" in str(err) else "E006"
        raise TangleError([Diagnostic(code, f"can't read the spec: {getattr(err, 'strerror', None) or err}",
                                      ast.Span(str(path), 1, 1, 1, 2))]) from None


def parse_file(path: str | Path) -> ast.Spec:
    return parse(read_spec_file(path), str(Path(path)))
