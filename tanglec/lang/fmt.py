"""`tanglec fmt`: the canonical layout of a .tangle spec, comments kept.

The formatter works on Lark's concrete tree (every token kept, `keep_all_tokens=True`) plus the
comments the lexer skips (collected with a lexer callback), so it needs no knowledge of a
statement to lay it out: any statement, including ones added to the grammar later, is printed on
one line with its tokens normalised by a few generic spacing rules. On top of that:

* `module` declarations in a block (consecutive lines, no blank line between) are aligned so the
  `:`, `->` and `=` line up;
* a `{ ... }` block (the cases of a `match`) stays on one line unless it ends with a comma, holds a
  comment, or its line would be wider than WIDTH columns (outer blocks explode first): then it is
  "exploded", one item per line, indented, with a trailing comma and the case labels padded so the
  expressions line up (the trailing comma keeps it exploded on the next run: write one to ask for
  this layout);
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

import bisect
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

WIDTH = 120  # the line length of the Python code in this repo
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
    return open_grammar(keep_all_tokens=True, lexer_callbacks={"COMMENT": _comments.append})


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
    break_before: str | None = None  # "cont" (continuation line) or "block" (an item of a { } block)
    indent: bool = False  # an exploded `{`: the lines after it are indented one more level
    dedent: bool = False  # the `}` closing an exploded block
    comma: bool = False  # print a `,` after the token (the trailing comma of an exploded block)
    trailing: str | None = None  # a comment after this token on the same line
    leading: list[str] = field(default_factory=list)  # own-line comments just before it (inside a statement)


def _flatten(node) -> tuple[list[_Tok], dict[int, tuple[int, int]]]:
    """The leaves of a concrete tree in order, each knowing its parent rule, and the token range
    [start, end) of every subtree by id (iterative: expression trees can be deep)."""
    out: list[_Tok] = []
    ranges: dict[int, tuple[int, int]] = {}
    stack: list[tuple] = [("enter", node, "", True, False)]
    while stack:
        op, item, parent, first, after_token = stack.pop()
        if op == "exit":
            ranges[id(item)] = (parent, len(out))
            continue
        if isinstance(item, Token):
            out.append(_Tok(str(item), parent, first, after_token and str(item) == "(",
                            item.line, item.end_line, item.start_pos, item.end_pos))
            continue
        rule = str(item.data)
        stack.append(("exit", item, len(out), False, False))
        children = item.children
        for i in range(len(children) - 1, -1, -1):
            stack.append(("enter", children[i], rule, i == 0, i > 0 and isinstance(children[i - 1], Token)))
    return out, ranges


def _space(a: _Tok, b: _Tok) -> str:
    if b.text in _NO_SPACE_BEFORE or a.text in _NO_SPACE_AFTER:
        return ""
    if b.glue_left:
        return ""
    if a.text in ("-", "+") and a.first:  # a unary sign
        return ""
    if a.text == ":" and a.parent.startswith("keyed"):  # keyed settings: `weight d:2`, `only op:plus1`
        return ""
    return " "


def _flat(tokens: list[_Tok]) -> str:
    """Tokens on one line, without comments or padding (used to measure)."""
    out, prev = [], None
    for t in tokens:
        out.append(("" if prev is None else _space(prev, t)) + t.text)
        prev = t
    return "".join(out)


def _render(tokens: list[_Tok]) -> list[tuple[str, str | None]]:
    """One statement as (code, trailing comment) lines: one line unless comments, an exploded { }
    block or wrapping break it."""
    return [(code, comment) for code, comment, _, _ in _render_lines(tokens)]


def _render_lines(tokens: list[_Tok]) -> list[tuple[str, str | None, int, int]]:
    """(code, trailing comment, index of the line's first token, of its last; -1 for comment lines)."""
    lines: list[tuple[str, str | None, int, int]] = []
    cur: str | None = ""  # the line being built; None when the next token starts a new line
    first = 0
    depth, prev = 0, None
    for i, t in enumerate(tokens):
        if t.dedent:
            depth -= 1
        new_line = cur is None or t.leading or (t.break_before is not None and cur.strip() != "")
        if new_line:
            kind = t.break_before or "cont"
            indent = INDENT * (depth + (1 if kind == "cont" else 0))
            if cur is not None and cur.strip():
                lines.append((cur.rstrip(), None, first, i - 1))
            lines += [(indent + c, None, -1, -1) for c in t.leading]
            cur, first = indent, i
        else:
            cur += "" if prev is None else _space(prev, t)
        cur += t.text + ("," if t.comma else "") + " " * t.pad
        prev = t
        if t.indent:
            depth += 1
        if t.trailing is not None:
            lines.append((cur.rstrip(), t.trailing, first, i))
            cur = None
    if cur is not None and cur.strip():
        lines.append((cur.rstrip(), None, first, len(tokens) - 1))
    return lines


def _align_comments(lines: list[tuple[str, str | None]]) -> list[str]:
    """Trailing comments of consecutive lines start in one column, two spaces after the longest code."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        j = i
        while j < len(lines) and lines[j][1] is not None:
            j += 1
        if j == i:
            out.append(lines[i][0])
            i += 1
            continue
        width = max(len(code) for code, _ in lines[i:j])
        out += [code.ljust(width) + "  " + comment for code, comment in lines[i:j]]
        i = j
    return out


# ---- statements and comments ---------------------------------------------------------------------

@dataclass
class _Item:
    """A top-level piece of the file: a statement, or a comment on its own line between statements."""

    first_line: int
    last_line: int
    rule: str | None = None  # statement rule (None: a comment)
    tree: object = None
    tokens: list[_Tok] = field(default_factory=list)
    ranges: dict = field(default_factory=dict)
    comment: str | None = None
    blank_before: bool = False


def _items(tree: Tree, comments: list[Token]) -> list[_Item]:
    items: list[_Item] = []
    for st in tree.children:
        tokens, ranges = _flatten(st)
        if not tokens:
            continue
        rule = str(st.data) if isinstance(st, Tree) else str(st.type)
        items.append(_Item(tokens[0].line, tokens[-1].end_line, rule, st, tokens, ranges))
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


def _leaves(node) -> list[Token]:
    out, stack = [], [node]
    while stack:
        item = stack.pop()
        if isinstance(item, Token):
            out.append(item)
        else:
            stack.extend(reversed(item.children))
    return out


def _token_range(child, ranges, index: int) -> tuple[int, int]:
    return ranges[id(child)] if isinstance(child, Tree) else (index, index + 1)


def _align_modules(group: list[_Item]) -> None:
    """Pad module names and interfaces so `:`, `->` and `=` line up across the group."""
    parts = []
    for it in group:
        children = it.tree.children
        pos, spans = it.ranges[id(it.tree)][0], []
        for c in children:
            spans.append(_token_range(c, it.ranges, pos))
            pos = spans[-1][1]
        name = next((i for i, c in enumerate(children) if isinstance(c, Token) and c.type == "NAME"), None)
        codecs = [i for i, c in enumerate(children) if isinstance(c, Tree) and str(c.data) == "codec"][:2]
        if name is None or len(codecs) != 2:
            continue
        name_tok = it.tokens[spans[name][0]]
        in_toks = it.tokens[slice(*spans[codecs[0]])]
        out_toks = it.tokens[slice(*spans[codecs[1]])]
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


def _brace_blocks(it: _Item) -> list[tuple[int, int, list[tuple[int, int]], bool]]:
    """Every `{ item, item, ... }` in a statement: (index of `{`, index of `}`, item token ranges,
    whether a trailing comma was written)."""
    blocks = []
    stack = [it.tree]
    while stack:
        node = stack.pop()
        children = node.children
        stack.extend(c for c in children if isinstance(c, Tree))
        texts = [str(c) if isinstance(c, Token) else None for c in children]
        if "{" not in texts or "}" not in texts:
            continue
        pos, spans = it.ranges[id(node)][0], []
        for c in children:
            spans.append(_token_range(c, it.ranges, pos))
            pos = spans[-1][1]
        lo, hi = texts.index("{"), len(texts) - 1 - texts[::-1].index("}")
        items, current, trailing = [], [], False
        for k in range(lo + 1, hi):
            if texts[k] == ",":
                if current:
                    items.append((current[0][0], current[-1][1]))
                current = []
                trailing = True
            else:
                current.append(spans[k])
                trailing = False
        if current:
            items.append((current[0][0], current[-1][1]))
        if items:
            blocks.append((spans[lo][0], spans[hi][0], items, trailing))
    return blocks


def _explode(it: _Item, block) -> None:
    """One item per line between `{` and `}`, indented, with a trailing comma."""
    lbrace, rbrace, items, trailing = block
    toks = it.tokens
    toks[lbrace].indent = True
    toks[rbrace].break_before, toks[rbrace].dedent = "block", True
    for a, _ in items:
        toks[a].break_before = "block"
    if not trailing:
        toks[items[-1][1] - 1].comma = True


def _align_labels(it: _Item, block) -> None:
    """Pad the `label:` of an exploded block's items so the expressions line up (unless an item
    spans several lines itself)."""
    _, _, items, _ = block
    toks = it.tokens
    labelled = [(toks[a], toks[a + 1]) for a, b in items if b - a > 2 and toks[a + 1].text == ":"]
    multiline = any(t.indent for a, b in items for t in toks[a:b])
    for _, colon in labelled:
        colon.pad = 0
    if len(labelled) == len(items) > 1 and not multiline:
        width = max(len(label.text) for label, _ in labelled)
        for label, colon in labelled:
            colon.pad = width - len(label.text)


def _has_comments(tokens: list[_Tok]) -> bool:
    return any(t.trailing is not None or t.leading for t in tokens)


def _layout(it: _Item) -> None:
    """A `{ }` block explodes when it ends with a comma or holds a comment, and, outermost first, when
    a line holding its `{` is wider than WIDTH; a block around an exploded block explodes too. A
    route wider than WIDTH breaks before each `->` after its first stage."""
    blocks = _brace_blocks(it)
    toks = it.tokens
    must = [b for b in blocks if b[3] or _has_comments(toks[b[0]:b[1]]) or toks[b[1]].leading]
    exploded = [b for b in blocks if any(b[0] <= m[0] and m[1] <= b[1] for m in must)]
    for block in exploded:
        _explode(it, block)
    while True:
        for block in exploded:
            _align_labels(it, block)
        wide = [(a, b) for code, _, a, b in _render_lines(toks) if a >= 0 and len(code) > WIDTH]
        candidates = [blk for blk in blocks if blk not in exploded and any(a <= blk[0] <= b for a, b in wide)]
        outer = [c for c in candidates if not any(o is not c and o[0] < c[0] and c[1] < o[1] for o in candidates)]
        if not outer:
            break
        for block in outer:
            _explode(it, block)
            exploded.append(block)
    if it.rule == "route_decl" and len(_flat(toks)) > WIDTH:
        arrows = [t for t in toks if t.text == "->" and t.parent == it.rule]
        for t in arrows[1:]:
            t.break_before = "cont"


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
    from .parser import MAX_SOURCE_BYTES, prescan_problem

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
