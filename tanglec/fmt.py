"""`tanglec fmt`: the canonical layout of a .tangle spec, comments kept.

The formatter works on Lark's concrete tree (every token kept, `keep_all_tokens=True`) plus the
comments the lexer skips (collected with a lexer callback), so it needs no knowledge of a
statement to lay it out: any statement, including ones added to the grammar later, is printed on
one line with its tokens normalised by a few generic spacing rules. On top of that:

* `module` declarations in a block (consecutive lines, no blank line between) are aligned so the
  `:`, `->` and `=` line up;
* a `route` wider than WIDTH columns wraps before each `->` after its first stage;
* comments stay where they were: a comment after code stays at the end of that line (two spaces
  before `#`), a comment on its own line stays on its own line before the same code; at most one
  blank line is kept between statements, none at the start, one newline at the end.

Spacing rules: one space between tokens, except none before `,` `:` `)` `]` and after `(` `[`,
none around `..`, none between a name or keyword and the `(` that follows it in the same rule
(`bits(4)`, `max(a, b)`, `residual(...)`), none after a unary sign, none around the `:` of a
keyed setting (`weight to_binary:2`); a trailing comma before `}` is dropped. Numbers, names and
strings are printed exactly as written.

The output is checked before it is returned: it must parse to the same AST (spans aside) as the
input, or formatting fails with an internal error instead of changing what a spec means. A spec
with syntax errors is not formatted; its diagnostics are raised as a TangleError.
"""
from __future__ import annotations

import bisect
import dataclasses
import difflib
import os
import tempfile
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Tree

from . import ast
from .diagnostics import TangleError
from .parser import grammar_path, parse

WIDTH = 100
INDENT = "    "
SUFFIX = ".tangle"

_NO_SPACE_BEFORE = {",", ":", ")", "]", ".."}
_NO_SPACE_AFTER = {"(", "[", ".."}


class FormatterBug(RuntimeError):
    """The formatted text would mean something else than the original (never written anywhere)."""


# ---- parsing with every token and every comment ------------------------------------------------

_comments: list[Token] = []
_lock = threading.Lock()


@lru_cache(maxsize=1)
def _lark() -> Lark:
    return Lark(grammar_path().read_text(), parser="lalr", propagate_positions=True,
                maybe_placeholders=False, keep_all_tokens=True,
                lexer_callbacks={"COMMENT": _comments.append})


def _concrete_tree(source: str) -> tuple[Tree, list[Token]]:
    with _lock:
        _comments.clear()
        tree = _lark().parse(source)
        comments = list(_comments)
        _comments.clear()
    return tree, comments


# ---- tokens with layout attributes --------------------------------------------------------------

@dataclass
class _Tok:
    text: str
    parent: str  # rule of the tree holding the token
    first: bool  # first child of that tree
    glue_left: bool  # `(` right after a token of the same rule: no space before it
    line: int
    end_line: int
    start: int
    end: int
    pad: int = 0  # spaces after the token (alignment)
    break_before: bool = False
    drop: bool = False
    trailing: str | None = None  # a comment after this token on the same line
    leading: list[str] = field(default_factory=list)  # own-line comments just before it (inside a statement)


def _flatten(node) -> list[_Tok]:
    """The leaves of a concrete tree in order, each knowing its parent rule (iterative: trees can be deep)."""
    out: list[_Tok] = []
    stack: list[tuple[object, str, bool, bool]] = [(node, "", True, False)]
    while stack:
        item, parent, first, after_token = stack.pop()
        if isinstance(item, Token):
            out.append(_Tok(str(item), parent, first, after_token and str(item) == "(",
                            item.line, item.end_line, item.start_pos, item.end_pos))
            continue
        rule = str(item.data)
        children = item.children
        for i in range(len(children) - 1, -1, -1):
            stack.append((children[i], rule, i == 0, i > 0 and isinstance(children[i - 1], Token)))
    return out


def _space(a: _Tok, b: _Tok) -> str:
    if b.text in _NO_SPACE_BEFORE or a.text in _NO_SPACE_AFTER:
        return ""
    if b.glue_left:
        return ""
    if a.text in ("-", "+") and a.first:  # a unary sign
        return ""
    if a.text == ":" and a.parent == "keyed_value":
        return ""
    return " "


def _flat(tokens: list[_Tok]) -> str:
    """Tokens on one line, without comments or padding (used to measure)."""
    out, prev = [], None
    for t in tokens:
        if t.drop:
            continue
        out.append(("" if prev is None else _space(prev, t)) + t.text)
        prev = t
    return "".join(out)


def _render(tokens: list[_Tok]) -> list[str]:
    """One statement as lines: one line unless comments or wrapping break it."""
    lines: list[str] = []
    cur, fresh, prev = "", True, None
    for t in tokens:
        if t.drop:
            continue
        if t.leading:
            if not fresh:
                lines.append(cur.rstrip())
            lines += [INDENT + c for c in t.leading]
            cur, fresh = INDENT, True
        elif t.break_before and not fresh:
            lines.append(cur.rstrip())
            cur, fresh = INDENT, True
        sep = "" if fresh or prev is None else _space(prev, t)
        cur += sep + t.text + " " * t.pad
        fresh, prev = False, t
        if t.trailing is not None:
            lines.append(cur.rstrip() + "  " + t.trailing)
            cur, fresh = INDENT, True
    if not fresh:
        lines.append(cur.rstrip())
    return lines


# ---- statements and comments ---------------------------------------------------------------------

@dataclass
class _Item:
    """A top-level piece of the file: a statement, or a comment on its own line between statements."""

    first_line: int
    last_line: int
    rule: str | None = None  # statement rule (None: a comment)
    tree: object = None
    tokens: list[_Tok] = field(default_factory=list)
    comment: str | None = None
    blank_before: bool = False


def _items(tree: Tree, comments: list[Token]) -> list[_Item]:
    items: list[_Item] = []
    for st in tree.children:
        tokens = _flatten(st)
        if not tokens:
            continue
        rule = str(st.data) if isinstance(st, Tree) else str(st.type)
        items.append(_Item(tokens[0].line, tokens[-1].end_line, rule, st, tokens))
    all_tokens = [(t, it) for it in items for t in it.tokens]
    starts = [t.start for t, _ in all_tokens]
    loose: list[_Item] = []
    for c in comments:
        text = str(c).rstrip()
        i = bisect.bisect_right(starts, c.start_pos)  # tokens before the comment: all_tokens[:i]
        before = all_tokens[i - 1][0] if i else None
        if before is not None and before.end_line == c.line:
            before.trailing = text if before.trailing is None else before.trailing + " " + text
            continue
        after = all_tokens[i] if i < len(all_tokens) else None
        if after is not None and after[0] is not after[1].tokens[0]:
            after[0].leading.append(text)  # inside a statement, on a line of its own
            continue
        loose.append(_Item(c.line, c.line, comment=text))
    merged = sorted(items + loose, key=lambda it: (it.first_line, it.rule is not None))
    prev_last = None
    for it in merged:
        it.blank_before = prev_last is not None and it.first_line - prev_last > 1
        prev_last = max(it.last_line, prev_last or 0)
    return merged


def _align_modules(group: list[_Item]) -> None:
    """Pad module names and interfaces so `:`, `->` and `=` line up across the group."""
    parts = []
    for it in group:
        children = it.tree.children
        name = next((c for c in children if isinstance(c, Token) and c.type == "NAME"), None)
        codecs = [c for c in children if isinstance(c, Tree) and str(c.data) == "codec"][:2]
        if name is None or len(codecs) != 2:
            continue
        toks = {id(c): t for c, t in zip(_leaves(it.tree), it.tokens)}
        name_tok = toks.get(id(name))
        in_toks = [toks[id(x)] for x in _leaves(codecs[0]) if id(x) in toks]
        out_toks = [toks[id(x)] for x in _leaves(codecs[1]) if id(x) in toks]
        if name_tok is None or not in_toks or not out_toks:
            continue
        parts.append((name_tok, in_toks, out_toks))
    if len(parts) < 2:
        return
    w_name = max(len(n.text) for n, _, _ in parts)
    w_in = max(len(_flat(i)) for _, i, _ in parts)
    w_out = max(len(_flat(o)) for _, _, o in parts)
    for name_tok, in_toks, out_toks in parts:
        name_tok.pad = w_name - len(name_tok.text)
        in_toks[-1].pad = w_in - len(_flat(in_toks))
        out_toks[-1].pad = w_out - len(_flat(out_toks))


def _leaves(node) -> list[Token]:
    out, stack = [], [node]
    while stack:
        item = stack.pop()
        if isinstance(item, Token):
            out.append(item)
        else:
            stack.extend(reversed(item.children))
    return out


def _wrap_route(it: _Item) -> None:
    """A route wider than WIDTH breaks before each `->` after the first stage."""
    if len(_flat(it.tokens)) <= WIDTH:
        return
    arrows = [t for t in it.tokens if t.text == "->" and t.parent == it.rule]
    for t in arrows[1:]:
        t.break_before = True


def _drop_trailing_commas(tokens: list[_Tok]) -> None:
    for a, b in zip(tokens, tokens[1:]):
        if a.text == "," and b.text == "}":
            a.drop = True
            if a.trailing:  # keep a comment that was written after the dropped comma
                b.trailing = a.trailing if b.trailing is None else a.trailing + " " + b.trailing
            b.leading[:0] = a.leading


# ---- the formatter -----------------------------------------------------------------------------

def format_source(source: str, file: str = "<spec>") -> str:
    """The canonical text of a spec; raises TangleError (syntax diagnostics) if it does not parse."""
    original = parse(source, file)  # every syntax problem, positioned, or nothing
    tree, comments = _concrete_tree(source)
    items = _items(tree, comments)
    group: list[_Item] = []  # a block of modules: no blank line between them, comment lines allowed
    for it in items:
        if it.blank_before or it.rule not in (None, "module_decl"):
            _align_modules(group)
            group = []
        if it.rule == "module_decl":
            group.append(it)
    _align_modules(group)
    out: list[str] = []
    for it in items:
        if out and it.blank_before:
            out.append("")
        if it.rule is None:
            out.append(it.comment)
            continue
        _drop_trailing_commas(it.tokens)
        if it.rule == "route_decl":
            _wrap_route(it)
        out += _render(it.tokens)
    text = "\n".join(out) + "\n" if out else ""
    _verify(original, text, file)
    return text


def _verify(original: ast.Spec, text: str, file: str) -> None:
    try:
        again = parse(text, file)
    except TangleError as err:
        raise FormatterBug(f"formatting {file} produced text that does not parse: {err}") from None
    finally:
        from .diagnostics import SOURCES

        SOURCES.add(file, original.source)  # diagnostics keep quoting the file as it is on disk
    if signature(again) != signature(original):
        raise FormatterBug(f"formatting {file} would change its meaning; left unformatted")


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
        result.original = Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        result.diagnostics = [Diagnostic("E006", f"not UTF-8 text: {err.reason} at byte {err.start}",
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


def write_atomic(path: Path, content: str | bytes) -> None:
    """Replace a file in one step (a temporary sibling renamed over it), keeping its mode."""
    path = Path(path)
    data = content.encode("utf-8") if isinstance(content, str) else content
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        except OSError:  # a new file: the usual mode for the umask
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
