"""The fast parse's tokens and lexing loop, without Lark: a spec that parses never imports it (~0.05 s of
a cold `tanglec check`), only one that Lark must report an error in (parser.py).

Each parser state scans with one regular expression (its terminals in Lark's order, described by
lexer.py from Lark's own lexer and kept in the grammar table's cache), which also skips whitespace and
comments: group 1 ends at the last newline skipped, so a token's line and column come from where that
newline ends, with no per-character counting.
"""
from __future__ import annotations

import re
from typing import Iterator

# blank space and comments up to a token; group 1 ends at the last newline skipped (-1 if none)
_SKIP = r"(?:[ \t\r\f]*+(?:#[^\n]*+)?(\n))*+[ \t\r\f]*+"
REST_IGNORED = re.compile(r"(?:[ \t\r\n\f]|#[^\n]*)*+\Z")


class Token(str):
    """A token, as Lark's `Token` (same fields, same repr, a str of its text), for Lark's parser too."""

    __slots__ = ("type", "value", "start_pos", "end_pos", "line", "column", "end_line", "end_column")

    def __repr__(self) -> str:
        return f"Token({self.type!r}, {self.value!r})"


def compile_scanner(pattern: str, keywords: dict[str, dict[str, str]], multiline) -> tuple:
    """A state's scanner, (match, keywords, multiline), from its description (lexer.py): `match(text, pos)`
    skips what is ignored and matches the first of the state's terminals; `keywords[kind]` maps the text
    of a token of that kind (NAME) to the state's keyword it spells; `multiline`: the kinds a newline may
    be part of."""
    return re.compile(f"{_SKIP}(?:{pattern or '(?!)'})").match, keywords, frozenset(multiline)


class Scanners:
    """By parser state, its scanner, compiled on first use from its description; states accepting the
    same terminals share one."""

    def __init__(self, descriptions: list[tuple], of_state: list[int]):
        self.descriptions, self.of_state = descriptions, of_state
        self.compiled: list[tuple | None] = [None] * len(descriptions)
        self.by_state: list[tuple | None] = [None] * len(of_state)

    def make(self, state: int) -> tuple:
        index = self.of_state[state]
        scanner = self.compiled[index]
        if scanner is None:
            scanner = self.compiled[index] = compile_scanner(*self.descriptions[index])
        self.by_state[state] = scanner
        return scanner


def scan(text: str, stack: list[int], scanners: Scanners, pos: int = 0, line: int = 1,
         line_start: int = 0) -> Iterator[Token]:
    """The tokens of `text` from `pos` (on `line`, which starts at `line_start`), each matched with the
    scanner of the parser state on top of `stack` when it is asked for (the parser shifts in between);
    it stops where the rest is ignored text or no terminal of the state matches."""
    by_state, make, new_token = scanners.by_state, scanners.make, str.__new__
    while True:
        state = stack[-1]
        match, keywords, multiline = by_state[state] or make(state)
        found = match(text, pos)
        if found is None:
            return
        newline = found.end(1)
        if newline >= 0:
            line += text.count("\n", pos, newline)
            line_start = newline
        kind = found.lastgroup
        value = found[kind]
        pos = found.end()
        start = pos - len(value)
        if kind in keywords:
            kind = keywords[kind].get(value, kind)
        token = new_token(Token, value)
        token.type, token.value, token.start_pos, token.end_pos = kind, value, start, pos
        token.line, token.column = line, start - line_start + 1
        if kind in multiline and "\n" in value:
            line += value.count("\n")
            line_start = start + value.rfind("\n") + 1
        token.end_line, token.end_column = line, pos - line_start + 1
        yield token
