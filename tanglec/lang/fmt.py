"""`tanglec fmt`: the canonical layout of a .tangle spec, comments kept.

The formatter works on Lark's concrete tree (every token kept, `keep_all_tokens=True`) plus the
comments the lexer skips (collected with a lexer callback), so it needs no knowledge of a
statement to lay it out: any statement, including ones added to the grammar later, is printed on
one line with its tokens normalised by a few generic spacing rules. On top of that:

* `module` declarations in a block (consecutive lines, no blank line between) are aligned so the
  `:`, `->` and `=` line up;
* a `{ ... }` block (the cases of a `match`, the entries of a codec `table`) stays on one line unless
  it ends with a comma, holds a comment, or its line would be wider than WIDTH columns (outer blocks
  explode first): then it is "exploded", one item per line, indented, with a trailing comma and the
  labels padded so the expressions line up (the trailing comma keeps it exploded on the next run:
  write one to ask for this layout);
* a `route` wider than WIDTH columns wraps before each `->` after its first stage;
* comments stay where they were: a comment after code stays at the end of that line (the comments
  of consecutive lines aligned, two spaces after the longest code), a comment on its own line stays
  on its own line before the same code; at most one blank line is kept between statements, none at
  the start, one newline at the end.

Spacing rules: one space between tokens, except none before `,` `:` `)` `]` and after `(` `[`,
none around `..`, none between a name or keyword and the `(` that follows it in the same rule
(`bits(4)`, `max(a, b)`, `residual(...)`), none after a unary sign, none after the `:` of a keyed
setting (`weight to_binary:2`, `only op:plus1`). Numbers, names and strings are printed as written.

The output is checked before it is returned: it must lex and parse to the same tokens as the input
(so to the same AST) with the same comments in the same order, or formatting fails with an internal
error (FormatterBug) instead of changing what a spec means. A spec with syntax errors is not
formatted; its diagnostics are raised as a TangleError. Nothing but syntax is looked at: semantic
errors and missing `use`d files don't stop formatting.
"""
from __future__ import annotations

import dataclasses
import difflib
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput

from . import ast
from .diagnostics import TangleError
from .parser import BOM, open_grammar, parse, read_spec_text
from ..util.files import write_atomic
from .fmt_layout import WIDTH, _Item, _align_comments, _align_modules, _items, _layout, _leaves, _render

SUFFIX = ".tangle"


class FormatterBug(RuntimeError):
    """The formatted text would mean something else than the original (never written anywhere)."""


# ---- parsing with every token and every comment ------------------------------------------------

_comments: list[Token] = []
_lock = threading.Lock()


@lru_cache(maxsize=1)
def _lark() -> Lark:
    return open_grammar(keep_all_tokens=True, lexer_callbacks={"COMMENT": _comments.append})


def _concrete_tree(source: str) -> tuple[Tree, list[Token]]:
    with _lock:
        _comments.clear()
        tree = _lark().parse(source)
        comments = list(_comments)
        _comments.clear()
    return tree, comments


# ---- the formatter -----------------------------------------------------------------------------

def format_source(source: str, file: str = "<spec>") -> str:
    """The canonical text of a spec; raises TangleError (syntax diagnostics) if it does not parse.

    Only syntax matters: a spec with semantic errors, or whose `use`d files are missing, is formatted.
    """
    tree, comments = _syntax(source.removeprefix(BOM), file)
    items = _items(tree, comments)
    group: list[_Item] = []  # a block of modules: no blank line between them, comment lines allowed
    for it in items:
        if it.blank_before or it.rule not in (None, "module_decl"):
            _align_modules(group)
            group = []
        if it.rule == "module_decl":
            group.append(it)
    _align_modules(group)
    lines: list[tuple[str, str | None]] = []
    for it in items:
        if lines and it.blank_before:
            lines.append(("", None))
        if it.rule is None:
            lines.append((it.comment, None))
            continue
        _layout(it)
        lines += _render(it.tokens)
    out = _align_comments(lines)
    text = "\n".join(out) + "\n" if out else ""
    _verify(tree, comments, text, file)
    return text


def _syntax(source: str, file: str) -> tuple[Tree, list[Token]]:
    """The concrete tree and comments, or TangleError with the parser's positioned syntax diagnostics."""
    from .parser import MAX_SOURCE_BYTES
    from .prescan import prescan_problem

    problem = None
    if len(source.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES or prescan_problem(source, file):
        problem = "over a size or depth cap"  # `parse` reports it, before anything parses a huge tree
    else:
        try:
            return _concrete_tree(source)
        except UnexpectedInput as err:
            problem = err
    parse(source, file)  # raises with every syntax error, one per broken statement
    from .diagnostics import Diagnostic  # (only if the parser disagrees with the formatter's grammar)

    line, col = getattr(problem, "line", 1) or 1, getattr(problem, "column", 1) or 1
    raise TangleError([Diagnostic("E001", f"syntax error: {problem}".splitlines()[0],
                                  ast.Span(file, line, col, line, col + 1))])


def _token_signature(tree: Tree) -> list[tuple[str, str]]:
    """Every token's (type, text) — what the parser sees — except a trailing comma before `}`."""
    tokens = [(t.type, str(t)) for t in _leaves(tree)]
    return [t for i, t in enumerate(tokens) if not (t[1] == "," and i + 1 < len(tokens) and tokens[i + 1][1] == "}")]


def _verify(tree: Tree, comments: list[Token], text: str, file: str) -> None:
    """The output must lex and parse to the same tokens, with the same comments in the same order."""
    try:
        again, again_comments = _concrete_tree(text)
    except UnexpectedInput as err:
        raise FormatterBug(f"formatting {file} produced text that does not parse: {err}") from None
    if _token_signature(again) != _token_signature(tree):
        raise FormatterBug(f"formatting {file} would change its meaning; left unformatted")
    if [str(c).rstrip() for c in again_comments] != [str(c).rstrip() for c in comments]:
        raise FormatterBug(f"formatting {file} would lose or reorder comments; left unformatted")


def signature(spec: ast.Spec) -> list:
    """The AST as nested lists without spans, to compare two parses of the same spec."""
    out: list = []
    stack: list = [spec.statements]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Name):
            out.append(node.text)
        elif isinstance(node, ast.Span):
            continue
        elif isinstance(node, (list, tuple)):
            out.append("[")
            stack.append("]")
            stack.extend(reversed(node))
        elif dataclasses.is_dataclass(node) and not isinstance(node, type):
            out.append(type(node).__name__)
            stack.append(")")
            stack.extend(reversed([getattr(node, f.name) for f in dataclasses.fields(node)
                                   if f.name != "span"]))
        elif node == "]" or node == ")":
            out.append(node)
        else:
            out.append(repr(node))
    return out


# ---- files ---------------------------------------------------------------------------------------

@dataclass
class FileResult:
    path: str
    original: str | None = None
    formatted: str | None = None
    diagnostics: list = field(default_factory=list)
    written: bool = False

    @property
    def changed(self) -> bool:
        return self.formatted is not None and self.formatted != self.original

    @property
    def ok(self) -> bool:
        return not self.diagnostics and self.formatted is not None

    def diff(self) -> str:
        if not self.changed:
            return ""
        return "".join(difflib.unified_diff(self.original.splitlines(keepends=True),
                                            self.formatted.splitlines(keepends=True),
                                            fromfile=f"{self.path} (original)",
                                            tofile=f"{self.path} (formatted)"))

    def to_json(self) -> dict:
        return {"file": self.path, "ok": self.ok, "changed": self.changed, "written": self.written,
                "diagnostics": [d.to_json() for d in self.diagnostics]}


def spec_files(paths) -> list[Path]:
    """Files as given, and every *.tangle under a directory (hidden folders skipped), sorted."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = [f for f in p.rglob(f"*{SUFFIX}")
                     if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts)]
            out += sorted(found)
        else:
            out.append(p)
    seen, unique = set(), []
    for p in out:
        if p not in seen:
            seen.add(p)
            unique.append(p)
    return unique


def format_file(path: Path, write: bool = False) -> FileResult:
    from .diagnostics import Diagnostic

    result = FileResult(str(path))
    try:
        result.original = read_spec_text(Path(path))  # a regular file of bounded size, as `check` reads it
    except UnicodeDecodeError as err:
        result.diagnostics = [Diagnostic("E006", f"not UTF-8 text: {err.reason} at byte {err.start}",
                                         ast.Span(str(path), 1, 1, 1, 2))]
        return result
    except OSError as err:
        result.diagnostics = [Diagnostic("E006", f"can't read the spec: {err.strerror or err}",
                                         ast.Span(str(path), 1, 1, 1, 2))]
        return result
    try:
        result.formatted = format_source(result.original, str(path))
    except TangleError as err:
        result.diagnostics = err.diagnostics
        return result
    if write and result.changed:
        write_atomic(Path(path), result.formatted)
        result.written = True
    return result
