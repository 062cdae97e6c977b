"""The layout rules of `tanglec fmt` (fmt.py): the concrete tree's tokens with their spacing, the
alignment of module blocks and match cases, exploded `{ }` blocks, wrapped routes, kept comments."""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from lark import Token, Tree

WIDTH = 120  # the line length of the Python code in this repo
INDENT = "    "

_NO_SPACE_BEFORE = {",", ":", ")", "]", ".."}
_NO_SPACE_AFTER = {"(", "[", ".."}


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


def _fill(toks: list[_Tok], breaks: list[int]) -> None:
    """Break a long statement before the token at some of `breaks` (indices), as few as keep each line
    within WIDTH: an input's long list of columns fills its lines."""
    starts = [0, *breaks, len(toks)]
    width = 0
    for begin, end in zip(starts, starts[1:]):
        piece = _flat(toks[begin:end])
        if begin and width + 1 + len(piece) > WIDTH:
            toks[begin].break_before = "cont"
            width = len(INDENT) + len(piece)
        else:
            width += (1 if begin else 0) + len(piece)


def _has_comments(tokens: list[_Tok]) -> bool:
    return any(t.trailing is not None or t.leading for t in tokens)


def _layout(it: _Item) -> None:
    """A `{ }` block explodes when it ends with a comma or holds a comment, and, outermost first, when
    a line holding its `{` is wider than WIDTH; a block around an exploded block explodes too. A
    route wider than WIDTH breaks before each `->` after its first stage; an input's columns fill
    lines of WIDTH."""
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
    if it.rule == "input_decl" and len(_flat(toks)) > WIDTH and not _has_comments(toks):
        _fill(toks, [i + 1 for i, t in enumerate(toks) if t.text == "," and t.parent == "input_columns"])
    if it.rule == "route_decl" and len(_flat(toks)) > WIDTH:
        arrows = [t for t in toks if t.text == "->" and t.parent == it.rule]
        for t in arrows[1:]:
            t.break_before = "cont"
