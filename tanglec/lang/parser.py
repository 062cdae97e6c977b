"""Source text -> AST. The Lark grammar is tangle.lark next to this module (LALR).

The parse builds the AST as it goes (Lark's tree-less mode, callbacks in transform.py made into
reductions by reductions.py) and Lark's grammar analysis is cached on disk (in the user's private cache
folder, never next to the package, so a read-only install works; when the cache can't be written Lark
just analyses the grammar again, ~0.1 s). A spec is parsed by one loop over Lark's LALR table that also
lexes (fastparse.py, with the scanners of lexer.py's contextual lexer, which makes Lark's token
choices), read from the grammar table (grammar_table.py), so a spec that parses never imports Lark;
where Lark would report an error the text is parsed again by Lark's own loop, so every syntax error is
Lark's (syntax_errors.py words it).

Syntax errors do not stop at the first: when the whole file fails to parse, each statement (a run of
lines starting at a statement keyword) is parsed on its own, so one pass reports every broken
statement and still yields the good ones.

The token cap (prescan.MAX_TOKENS, 200,000) is set from the CPU time of `tanglec check`, whole process
(x86_64, 2 cores, Python 3.11, Lark 1.3). On the machine of 2026-12-07 (2.8x slower than that of
2026-12-02 at pure Python), pinned to one core while other jobs ran on the other (load average 1.1-1.8),
30 cold processes each, interleaved: issue 15's dense spec (specs/arith.tangle's modules replicated over
10,000 lines, 197k tokens, `bench/spec_gen.py --dense`) takes 1.38 s best, 1.85 s median (1.46 s and
2.03 s with Lark imported and ast.Name frozen; 4.6-5.9 s through Lark's lexer and loop):
the parse 0.65-0.9 s, the checks 0.3-0.4 s, the prescan 0.07 s, start-up and imports ~0.15 s. The
slowest shape at the cap, if-expressions nested 150 deep, took 3.7-4.2 s (5.9-7.7 s through Lark's own
loop; load 3-5), a million reductions through the precedence rules; the seed spec takes 0.17 s best,
0.19 s median (0.22 s and 0.25 s with Lark imported), nearly all imports. The parse costs ~4 us a token
here, so the cap can't rise much further.
"""
from __future__ import annotations

import gc
import hashlib
import importlib.util
import os
import re
import threading
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Callable
from pathlib import Path

from . import ast, grammar_table
from ..util.cache import user_cache_dir
from .fastparse import TableParser, Unusual
from .diagnostics import SOURCES, Diagnostic, TangleError, did_you_mean
# the caps are part of the parser's interface: MAX_NESTING, MAX_TOKENS, MAX_EXPR_DEPTH
from .prescan import MAX_NESTING, MAX_TOKENS, STATEMENT_KEYWORDS, prescan_problem, token_count  # noqa: F401
from .syntax_errors import syntax_diagnostic
from .transform import MAX_EXPR_DEPTH, AstBuilder, depth_problems  # noqa: F401

if TYPE_CHECKING:  # Lark is imported only to parse what has a syntax error (grammar_table.py)
    from lark import Lark
    from lark.exceptions import UnexpectedInput

_STATEMENT_START = re.compile(r"^[ \t]*(?:%s)\b" % "|".join(STATEMENT_KEYWORDS), re.M)
MAX_SOURCE_BYTES = 2_000_000
_BLANK = " \t\r\n\f"  # the grammar's whitespace (str.strip() would also strip \v, \x1c, \u2028... which it rejects)
BOM = "\ufeff"  # editors on Windows start UTF-8 files with it; it is not part of the text



GRAMMAR_FILE = "tangle.lark"


def grammar_path() -> Path:
    """The grammar file, inside the package (a checkout and an installed wheel alike)."""
    return Path(__file__).with_name(GRAMMAR_FILE)


def open_grammar(**options) -> Lark:
    """A Lark parser of the grammar: LALR with positions propagated; `options` add to those (the formatter
    keeps every token and its comments). The one place that reads the grammar file."""
    from lark import Lark

    return Lark.open(GRAMMAR_FILE, rel_to=__file__, parser="lalr", **{"propagate_positions": True,
                     "maybe_placeholders": False, **options})


def _grammar_cache(kind: str, lark_version: str | None = None) -> str | bool:
    """Where Lark's analysis of the grammar is kept: a file in the user's own cache folder (util.cache),
    never a predictable name in the shared temporary folder — Lark's cache is a pickle, and a file
    planted there by another user would run code. False (analyse again, ~0.1 s) when no such folder can
    be had. `lark_version`: what tells the installed Lark apart (default: its version, imported)."""
    base = user_cache_dir()
    if base is None:
        return False
    if lark_version is None:
        import lark
        lark_version = lark.__version__
    digest = hashlib.sha256(grammar_path().read_bytes()).hexdigest()[:16]
    return str(base / f"grammar-{kind}-{digest}-lark{lark_version}.cache")


def _lark_stamp() -> str:
    """The installed Lark told apart without importing it (what the grammar table spares): the size and
    time of its package's __init__.py."""
    info = os.stat(importlib.util.find_spec("lark").origin)
    return f"{info.st_size:x}.{info.st_mtime_ns:x}"


@lru_cache(maxsize=1)
def lark_parser() -> Lark:
    """The parser for the grammar's terminals and rules (diagnostics, highlighting); it builds no AST."""
    return open_grammar(cache=_grammar_cache("rules"))


@lru_cache(maxsize=1)
def _fast_parser() -> tuple[AstBuilder, TableParser]:
    """The parser every spec goes through, building the AST while it parses (see transform.py): one
    loop over the grammar table (fastparse.py, grammar_table.py), without Lark."""
    builder = AstBuilder()
    return builder, TableParser(_table(), builder)


@lru_cache(maxsize=1)
def _table() -> dict:
    cache = _grammar_cache("table", _lark_stamp())
    return grammar_table.cached(Path(cache) if cache else None, _describe_grammar)


def _describe_grammar() -> dict:
    from .lexer import state_scanners

    parser = _lark_ast_grammar()
    lexer, states = parser.parser.lexer, parser.parser.parser.parser.parse_table.states
    return grammar_table.describe(parser, _punctuation(), state_scanners(lexer.conf, states), lexer.fits)


@lru_cache(maxsize=1)
def _lark_ast_grammar() -> Lark:
    from .lexer import FastContextualLexer

    return open_grammar(cache=_grammar_cache("ast-fastlexer"), keep_all_tokens=True, propagate_positions=False,
                        lexer=FastContextualLexer)


@lru_cache(maxsize=1)
def _ast_parser() -> tuple[Lark, AstBuilder, TableParser]:
    """Lark's own parser of the grammar with the fast parser's builder and callbacks, for what the table
    loop leaves to it (a syntax error, for Lark's exact report); then the builder and the table loop."""
    builder, table_parser = _fast_parser()
    parser = _lark_ast_grammar()
    parser.parser.parser.parser.callbacks = grammar_table.lark_callbacks(builder, parser,
                                                                         frozenset(_table()["punctuation"]))
    return parser, builder, table_parser


def _punctuation() -> frozenset[str]:
    """The terminals the grammar filters out of the tree (keywords, brackets): `keep_all_tokens` clears
    that flag in the AST parser, so they are read from the rules parser (once: the grammar table keeps
    them)."""
    return frozenset(sym.name for rule in lark_parser().rules for sym in rule.expansion
                     if sym.is_term and sym.filter_out)


_PARSING = threading.Lock()  # one builder holds the state of the parse in progress


@contextmanager
def _collector_paused():
    """Python's cycle collector off while the AST is built, then the heap kept out of its scans until
    the next parse.

    The AST holds no reference cycles, yet every collection walks every object alive: on a 200k-token
    spec the collector's passes over the AST cost as much as the parse (during it) and twice the checks
    (after it). Frozen objects are still freed by reference counting, and the next parse unfreezes them,
    so in a long session (the TUI) a cycle that became garbage meanwhile is collected then."""
    enabled = gc.isenabled()
    gc.unfreeze()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


class Unparsed(Exception):
    """A syntax error: Lark's report of it (`error`, an UnexpectedInput)."""

    def __init__(self, error: UnexpectedInput):
        super().__init__(error)
        self.error = error


def _parse_ast(text: str, file: str, line_offset: int) -> tuple[list, list[Diagnostic]]:
    """Statements, and the problems only visible once parsed (number literals, expression depth);
    Unparsed on a syntax error."""
    builder, table_parser = _fast_parser()
    with _PARSING, _collector_paused():
        builder.begin(file, line_offset)
        try:
            statements = table_parser.parse(text)
        except Unusual:  # Lark's own parse, for its exact error
            statements = _lark_parse(text, builder, file, line_offset)
        problems = builder.problems
    return statements, problems + depth_problems(statements)


def _lark_parse(text: str, builder: AstBuilder, file: str, line_offset: int) -> list:
    from lark.exceptions import UnexpectedInput

    parser = _ast_parser()[0]
    builder.begin(file, line_offset)
    try:
        return parser.parse(text)
    except UnexpectedInput as err:
        raise Unparsed(err) from None


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
        statements, problems = _parse_ast(source, file, 0)
    except Unparsed as failure:
        statements, diagnostics = _parse_statement_by_statement(source, file)
        if not diagnostics:  # never fail without saying where
            diagnostics = [syntax_diagnostic(failure.error, file, 0, source.split("\n"), lark_parser)]
        return statements, diagnostics
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
            named = {codec.kind.text for m in brought for codec in (m.input, m.output)}
            brought += [u for u in used.statements if isinstance(u, ast.CodecDecl) and u.name.text in named]
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
            found, problems = _parse_ast(chunk, file, offset)
        except Unparsed as failure:
            diagnostics.append(syntax_diagnostic(failure.error, file, offset, chunk.split("\n"), lark_parser))
            continue
        if problems:
            diagnostics += problems
        else:
            statements += found
    return statements, diagnostics


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
