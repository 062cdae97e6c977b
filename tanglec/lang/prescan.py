"""The prescan: a regex pass over the source that refuses, before the LALR parse, what would make
parsing or any later stage too slow or too deep (too many tokens, brackets or operator chains nested
too deep). The token cap is set from measurements (parser.py).
"""
from __future__ import annotations

import re
from collections import Counter
from itertools import accumulate

from . import ast
from .diagnostics import Diagnostic
from .transform import MAX_EXPR_DEPTH

STATEMENT_KEYWORDS = ("input", "select", "module", "route", "target", "decode", "data", "train", "phase",
                      "align", "holdout", "freeze", "use", "init", "codec")
MAX_NESTING = 64
MAX_TOKENS = 200_000  # words, numbers and operators in one spec (comments and strings aside); see parser.py

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
    MAX_NESTING or an operator chain longer than MAX_EXPR_DEPTH (E004). The caps bound the parse's time
    (figures in parser.py) and no later stage can recurse too deep."""
    if _within_caps(source):
        return None
    return _first_problem(source, file)


_OPENING, _CLOSING = frozenset("([{"), frozenset(")]}")
_OPERATORS = frozenset((*_PRECEDENCE, "not"))  # what a chain counts: binary operators, `not`/`-` before an operand


def _within_caps(source: str) -> bool:
    """Whether no cap can be reached, from counts the regex engine makes (a tenth of the token walk's
    time): tokens; then, when operators or brackets are many, their count per run and the depth."""
    tokens = _PRESCAN_TOKEN.findall(source)
    counts = Counter(tokens)
    if len(tokens) - sum(n for token, n in counts.items() if token[0] in '"#') > MAX_TOKENS:
        return False
    if sum(counts[op] for op in _OPERATORS) < MAX_EXPR_DEPTH:  # no run of operators reaches the cap
        return sum(counts[b] for b in _OPENING) <= MAX_NESTING or _nesting_within_cap(tokens)
    return _shallow(tokens)


_BRACKET_STEP = {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}


def _nesting_within_cap(tokens: list[str]) -> bool:
    """No bracket deeper than MAX_NESTING: the depth after each bracket, counted by builtins in C (a fifth of
    the token walk's time on a 10k-line spec of `latent(12)`s); a closing bracket with none open (a syntax
    error) leaves it to the token walk, which ignores that bracket."""
    depths = list(accumulate(map(_BRACKET_STEP.__getitem__, filter(_BRACKET_STEP.__contains__, tokens))))
    if min(depths, default=0) < 0:
        return _shallow(tokens)
    return max(depths, default=0) <= MAX_NESTING


def _shallow(tokens: list[str]) -> bool:
    """No bracket deeper than MAX_NESTING, and fewer than MAX_EXPR_DEPTH operators in every run (the
    token walk's chains count operators within a run, so none reaches the cap)."""
    runs = [0]  # operators in the run at each bracket level
    for token in tokens:
        if token in _OPERATORS:
            runs[-1] += 1
            if runs[-1] >= MAX_EXPR_DEPTH:
                return False
        elif token in _RUN_BREAKS:
            runs[-1] = 0
        elif token in _OPENING:
            runs.append(0)
            if len(runs) > MAX_NESTING + 1:
                return False
        elif token in _CLOSING and len(runs) > 1:
            runs.pop()
    return True


def _first_problem(source: str, file: str) -> Diagnostic | None:
    """The token walk: the first cap reached, where."""
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


