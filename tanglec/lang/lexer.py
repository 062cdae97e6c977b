"""The AST parser's lexer: Lark's contextual lexer, token for token, at a fraction of its cost.

Lark's ContextualLexer gives each parser state its own scanner (the terminals that state accepts, plus
the ignored ones) and turns a NAME that spells a keyword the state accepts into that keyword. This
lexer makes the same choices from the same material — each state's terminals, sorted and merged by
Lark's own BasicLexer and `_create_unless` — but with one regular expression per state that also skips
whitespace and comments (Lark matches each of those as a token of its own, ~40% of the matches in a
spec), and with no per-character line counting (scanning.py, which lexes without Lark from the
descriptions made here). Its tokens have the fields Lark's would have.

Anything out of the ordinary — a character no accepted terminal matches (an error) — hands the rest of
the text to Lark's ContextualLexer at that point, so errors and their positions are Lark's own.
"""
from __future__ import annotations

from copy import copy
from typing import Iterator

from lark.common import LexerConf
from lark.lexer import BasicLexer, ContextualLexer, Lexer, LexerState, TextSlice, _create_unless

from .scanning import REST_IGNORED, Scanners, Token, scan

# what the scanners skip between tokens: exactly the grammar's `%ignore`s (checked at construction)
_IGNORED = {"#[^\n]*", "[ \t\r\n\x0c]+"}  # as Lark writes them: real tabs and newlines


def state_scanner(conf: LexerConf, accepts: frozenset[str]) -> tuple[str, dict[str, dict[str, str]], list[str]]:
    """One parser state's scanner, as scanning.compile_scanner takes it: the pattern of its terminals in
    Lark's order (a named group each), its keywords by the kind of token that spells them, and the kinds
    a newline may be part of."""
    terminals = [conf.terminals_by_name[name] for name in accepts | set(conf.ignore) if name in conf.terminals_by_name]
    basic = BasicLexer(_unvalidated(conf, terminals))  # sorts them as Lark's contextual lexer does
    terminals, callbacks = _create_unless(basic.terminals, conf.g_regex_flags, conf.re_module, conf.use_bytes)
    scanned = [t for t in terminals if t.name not in conf.ignore]
    pattern = "|".join(f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in scanned)
    keywords = {kind: {t.pattern.value: t.name for t in unless.scanner.terminals} for kind, unless in callbacks.items()}
    return pattern, keywords, sorted(t.name for t in scanned if t.name in basic.newline_types)


def state_scanners(conf: LexerConf, table: dict) -> tuple[list[tuple], list[int]]:
    """Every state's scanner: the distinct descriptions (state_scanner) and, by state, which is its own
    (Lark numbers an LALR table's states 0, 1, ...)."""
    descriptions: list[tuple] = []
    index: dict[frozenset[str], int] = {}
    of_state = [0] * (max(table) + 1)
    for state, actions in table.items():
        accepts = frozenset(name for name in actions if name in conf.terminals_by_name)
        if accepts not in index:
            index[accepts] = len(descriptions)
            descriptions.append(state_scanner(conf, accepts))
        of_state[state] = index[accepts]
    return descriptions, of_state


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
    return ignored == _IGNORED and plain and not conf.g_regex_flags and not conf.callbacks and not conf.use_bytes \
        and not conf.postlex


class FastContextualLexer(Lexer):
    """Lark's `lexer=` for the AST parser (LALR): Lark's contextual lexing, faster (module docstring)."""

    __future_interface__ = 2  # lex(lexer_state, parser_state) with a TextSlice

    def __init__(self, conf: LexerConf):
        self.conf = conf
        self.fits = _fits(conf)
        self.scanners: Scanners | None = None  # made from the parse table on first use
        self.lark_lexer: ContextualLexer | None = None

    def lex(self, lexer_state: LexerState, parser_state) -> Iterator[Token]:
        """Lark's Lexer interface: the tokens from where `lexer_state` stands, which follows them (its
        line counter and last token, as Lark's lexers keep it, so a parse can resume)."""
        text = lexer_state.text
        if not self.fits or not isinstance(text, TextSlice) or not text.is_complete_text():
            yield from _as_ours(self._lark(parser_state).lex(lexer_state, parser_state))
            return
        if self.scanners is None:
            self.scanners = Scanners(*state_scanners(self.conf, parser_state.parse_conf.states))
        counter = lexer_state.line_ctr
        for token in scan(text.text, parser_state.state_stack, self.scanners, counter.char_pos, counter.line,
                          counter.line_start_pos):
            counter.char_pos, counter.line, counter.column = token.end_pos, token.end_line, token.end_column
            counter.line_start_pos = token.end_pos - token.end_column + 1
            lexer_state.last_token = token
            yield token
        if REST_IGNORED.match(text.text, counter.char_pos):
            return
        # no terminal of the state matches here: Lark's lexer goes on from this point (and reports the error)
        yield from _as_ours(self._lark(parser_state).lex(lexer_state, parser_state))

    def _lark(self, parser_state) -> ContextualLexer:
        """Lark's own contextual lexer over the same parse table, made when first needed."""
        if self.lark_lexer is None:
            states = {state: list(actions) for state, actions in parser_state.parse_conf.states.items()}
            self.lark_lexer = ContextualLexer(_unvalidated(self.conf, list(self.conf.terminals)), states)
        return self.lark_lexer



def _as_ours(tokens) -> Iterator[Token]:
    """Lark's tokens as scanning.Token, the only kind the AST builder knows."""
    for lark_token in tokens:
        token = str.__new__(Token, lark_token)
        token.type, token.value, token.start_pos, token.end_pos = (lark_token.type, lark_token.value,
                                                                   lark_token.start_pos, lark_token.end_pos)
        token.line, token.column = lark_token.line, lark_token.column
        token.end_line, token.end_column = lark_token.end_line, lark_token.end_column
        yield token
