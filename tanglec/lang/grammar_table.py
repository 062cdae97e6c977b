"""The grammar table: what the table parser (fastparse.py) needs of Lark's analysis of tangle.lark — its
LALR parse table, its rules and each state's scanner (lexer.py) — as plain JSON, kept in the user's
cache folder beside Lark's own caches, so a spec that parses never imports Lark.

Lark's analysis as Lark keeps it is a pickle of Lark's objects: loading it needs Lark imported (~0.05 s)
and rebuilt (~0.03 s), a quarter of a `tanglec check` of a small spec. The table is plain data (JSON, not a
pickle: reading it runs no code) and stands alone: it is made from Lark's parser the first time, and
again when the grammar or the installed Lark changes (the file's name says which).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

from ..util.files import write_atomic
from .reductions import Rule, Symbol, reductions
from .transform import AstBuilder

FORMAT = 1  # of the table's JSON: a new format makes a new file


def cached(path: Path | None, describe: Callable[[], dict]) -> dict:
    """The table kept at `path` or, when there is none (or a damaged one), `describe()`'s, kept there
    for the next process when it can be written (`path` None: never kept). The file is the SHA-256 of
    the table's JSON, a newline, and that JSON."""
    if path is not None:
        try:
            digest, _, text = path.read_text().partition("\n")
            if digest == hashlib.sha256(text.encode()).hexdigest():
                table = json.loads(text)
                if table["format"] == FORMAT:
                    return table
        except (OSError, ValueError, KeyError, TypeError):
            pass
    table = describe()
    if path is not None:
        text = json.dumps(table, separators=(",", ":"))
        try:
            write_atomic(path, hashlib.sha256(text.encode()).hexdigest() + "\n" + text)
        except OSError:
            pass
    return table


def describe(lark, punctuation: frozenset[str], scanners: tuple[list, list[int]], fits: bool) -> dict:
    """The table of a Lark LALR parser (`lark`): its start and end states, its rules (Rule), by state
    each symbol's action (a state to shift to, >= 0, or the rule to reduce by, -1 - its index), the
    `punctuation` terminals and the states' `scanners` (lexer.state_scanners); `fits`: whether those make
    Lark's choices for this grammar (lexer.py)."""
    from lark.parsers.lalr_analysis import Shift

    table = lark.parser.parser.parser.parse_table
    rules: dict = {}
    states: list[dict[str, int]] = [{} for _ in range(max(table.states) + 1)]
    for state, actions in table.states.items():
        for symbol, (action, arg) in actions.items():
            states[state][symbol] = arg if action is Shift else -1 - rules.setdefault(arg, len(rules))
    descriptions, of_state = scanners
    return {"format": FORMAT, "start": table.start_states["start"], "end": table.end_states["start"],
            "rules": [rule_of(rule) for rule in rules], "states": states, "punctuation": sorted(punctuation),
            "scanners": descriptions, "scanner_of_state": of_state, "fits": fits}


def rule_of(lark_rule) -> Rule:
    """A Lark Rule as the callbacks need it."""
    return Rule(lark_rule.origin.name, lark_rule.alias, bool(lark_rule.options.expand1),
                tuple(Symbol(sym.name, sym.is_term) for sym in lark_rule.expansion))


def rules(table: dict) -> list[Rule]:
    """The table's rules, by index."""
    return [Rule(origin, alias, expand1, tuple(Symbol(*sym) for sym in expansion))
            for origin, alias, expand1, expansion in table["rules"]]


def lark_callbacks(builder: AstBuilder, lark, punctuation: frozenset[str]) -> dict:
    """The callbacks of a Lark LALR parser (`lark`) of the grammar, by its own Rule objects: the same
    reductions of `builder` as the table parser's."""
    from lark.parsers.lalr_analysis import Reduce

    table = lark.parser.parser.parser.parse_table
    shapes = {rule: rule_of(rule) for actions in table.states.values() for action, rule in actions.values()
              if action is Reduce}
    callbacks = reductions(builder, list(shapes.values()), punctuation)
    return {rule: callbacks[shape] for rule, shape in shapes.items()}
