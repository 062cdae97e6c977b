"""The AST parser's lexer: Lark's contextual lexer, token for token, at a fraction of its cost.

Lark's ContextualLexer gives each parser state its own scanner (the terminals that state accepts, plus
the ignored ones) and turns a NAME that spells a keyword the state accepts into that keyword. This
lexer makes the same choices from the same material — each state's terminals, sorted and merged by
Lark's own BasicLexer and `_create_unless` — but with one regular expression per state that also skips
whitespace and comments (Lark matches each of those as a token of its own, ~40% of the matches in a
spec), and with no per-character line counting: a token's line and column come from where the last
newline before it ends. Its tokens are Lark Tokens with the fields Lark's would have.

Anything out of the ordinary — a character no accepted terminal matches (an error) — hands the rest of
the text to Lark's ContextualLexer at that point, so errors and their positions are Lark's own.
"""
from __future__ import annotations

import re
from copy import copy
from typing import Iterator

from lark.common import LexerConf
from lark.lexer import BasicLexer, ContextualLexer, Lexer, LexerState, TextSlice, Token, _create_unless

# what this lexer skips between tokens: exactly the grammar's `%ignore`s (checked at construction)
_IGNORED = {"#[^\n]*", "[ \t\r\n\x0c]+"}  # as Lark writes them: real tabs and newlines
# blank space and comments up to a token; group 1 ends at the last newline skipped (-1 if none)
_SKIP = r"(?:[ \t\r\f]*+(?:#[^\n]*+)?(\n))*+[ \t\r\f]*+"
REST_IGNORED = re.compile(r"(?:[ \t\r\n\f]|#[^\n]*)*+\Z")


def _state_scanner(conf: LexerConf, accepts: frozenset[str]) -> tuple:
    """One parser state's scanner, (match, keywords, multiline): `match(text, pos)` skips what is ignored
    and matches the first of the state's terminals in Lark's order; `keywords[kind]` maps the text of a
    token of that kind (NAME) to the keyword of the state it spells; `multiline`: the kinds a newline may
    be part of."""
    terminals = [conf.terminals_by_name[name] for name in accepts | set(conf.ignore) if name in conf.terminals_by_name]
    basic = BasicLexer(_unvalidated(conf, terminals))  # sorts them as Lark's contextual lexer does
    terminals, callbacks = _create_unless(basic.terminals, conf.g_regex_flags, conf.re_module, conf.use_bytes)
    scanned = [t for t in terminals if t.name not in conf.ignore]
    pattern = "|".join(f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in scanned)
    keywords = {kind: {t.pattern.value: t.name for t in unless.scanner.terminals} for kind, unless in callbacks.items()}
    return (re.compile(f"{_SKIP}(?:{pattern or '(?!)'})", conf.g_regex_flags).match, keywords,
            frozenset(t.name for t in scanned if t.name in basic.newline_types))


def _unvalidated(conf: LexerConf, terminals: list) -> LexerConf:
    narrowed = copy(conf)
    narrowed.terminals = terminals
    narrowed.skip_validation = True  # Lark validated every terminal when it analysed the grammar
    return narrowed


def _fits(conf: LexerConf) -> bool:
    """Whether this lexer makes Lark's choices for this grammar: it skips only the ignored terminals it
    knows, every keyword is matched by plain equality, and no lexer callback is set."""
    ignored = {conf.terminals_by_name[name].pattern.to_regexp() for name in conf.ignore}
    plain = all(not t.pattern.flags for t in conf.terminals)
    return ignored == _IGNORED and plain and not conf.callbacks and not conf.use_bytes and not conf.postlex


class FastContextualLexer(Lexer):
    """Lark's `lexer=` for the AST parser (LALR): Lark's contextual lexing, faster (module docstring)."""

    __future_interface__ = 2  # lex(lexer_state, parser_state) with a TextSlice

    def __init__(self, conf: LexerConf):
        self.conf = conf
        self.fits = _fits(conf)
        self.scanners: list[tuple | None] = []  # by parser state: its scanner, made on first use
        self.by_accepts: dict[frozenset[str], tuple] = {}  # states accepting the same terminals share one
        self.lark_lexer: ContextualLexer | None = None

    def lex(self, lexer_state: LexerState, parser_state) -> Iterator[Token]:
        """Lark's Lexer interface: the tokens from where `lexer_state` stands, which follows them (its
        line counter and last token, as Lark's lexers keep it, so a parse can resume)."""
        text = lexer_state.text
        if not self.fits or not isinstance(text, TextSlice) or not text.is_complete_text():
            yield from self._lark(parser_state).lex(lexer_state, parser_state)
            return
        counter = lexer_state.line_ctr
        for token in self.scan(text.text, parser_state.state_stack, parser_state.parse_conf.states,
                               counter.char_pos, counter.line, counter.line_start_pos):
            counter.char_pos, counter.line, counter.column = token.end_pos, token.end_line, token.end_column
            counter.line_start_pos = token.end_pos - token.end_column + 1
            lexer_state.last_token = token
            yield token
        if REST_IGNORED.match(text.text, counter.char_pos):
            return
        # no terminal of the state matches here: Lark's lexer goes on from this point (and reports the error)
        yield from self._lark(parser_state).lex(lexer_state, parser_state)

    def scan(self, text: str, stack: list[int], table: dict, pos: int = 0, line: int = 1,
             line_start: int = 0) -> Iterator[Token]:
        """The tokens of `text` from `pos` (on `line`, which starts at `line_start`), each matched with the
        scanner of the parser state on top of `stack` when it is asked for (the parser shifts in between);
        it stops where the rest is ignored text or no terminal of the state matches."""
        scanners, new_token = self.state_scanners(table), str.__new__
        while True:
            state = stack[-1]
            match, keywords, multiline = scanners[state] or self.scanner(state, table)
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

    def state_scanners(self, table: dict) -> list[tuple | None]:
        """By parser state: its scanner (see _state_scanner) once made, else None (`scanner` makes it)."""
        if not self.scanners:
            self.scanners = [None] * (max(table) + 1)  # Lark numbers an LALR table's states 0, 1, ...
        return self.scanners

    def scanner(self, state: int, table: dict) -> tuple:
        accepts = frozenset(name for name in table[state] if name in self.conf.terminals_by_name)
        scanner = self.by_accepts.get(accepts)
        if scanner is None:
            scanner = self.by_accepts[accepts] = _state_scanner(self.conf, accepts)
        self.scanners[state] = scanner
        return scanner

    def _lark(self, parser_state) -> ContextualLexer:
        """Lark's own contextual lexer over the same parse table, made when first needed."""
        if self.lark_lexer is None:
            states = {state: list(actions) for state, actions in parser_state.parse_conf.states.items()}
            self.lark_lexer = ContextualLexer(_unvalidated(self.conf, list(self.conf.terminals)), states)
        return self.lark_lexer

