"""The parse of a spec that has no syntax error: Lark's LALR table for tangle.lark, driven by one loop that
also lexes.

Lark parses a token with two Python calls and a generator switch (its lexer yields, its parser state
feeds); on a 200k-token spec those calls cost as much as the lexing itself. This loop does the same
work inline: it lexes with the contextual lexer's scanners (lexer.py: the terminals the current parser
state accepts, chosen as Lark chooses), and shifts and reduces by Lark's own parse table, calling the
same reduction callbacks with the same children. It does nothing Lark wouldn't, and gives up on anything
Lark would report — a character no accepted terminal matches, a token the state has no action for —
by raising Unusual: the caller parses the text again with Lark itself, for Lark's exact error.
"""
from __future__ import annotations

from .grammar_table import rules
from .reductions import only_child, reductions
from .scanning import REST_IGNORED, Scanners, scan
from .transform import AstBuilder


class Unusual(Exception):
    """The text is not a spec this loop can parse alone (a syntax error, most likely): ask Lark."""


class TableParser:
    """Parses with a grammar table (grammar_table.py: Lark's LALR table, rules and scanners), building
    the AST with `builder`'s callbacks."""

    def __init__(self, table: dict, builder: AstBuilder):
        by_index = rules(table)
        callbacks = reductions(builder, by_index, frozenset(table["punctuation"]))
        # a reduction: (the rule's length, its name, its callback, None for a rule that is its one child)
        reduced = [(len(rule.expansion), rule.origin, None if callbacks[rule] is only_child else callbacks[rule])
                   for rule in by_index]
        self.actions: list[dict] = [{symbol: arg if arg >= 0 else reduced[-1 - arg] for symbol, arg in state.items()}
                                    for state in table["states"]]  # a shift: the state shifted to (an int)
        self.start, self.end = table["start"], table["end"]
        self.fits = table["fits"]  # the scanners make Lark's choices (lexer.py), else Lark parses every text
        self.scanners = Scanners(table["scanners"], table["scanner_of_state"])
        self.passed: dict[tuple[int, int, str], int] = {}  # (state below, state, token kind) -> see parse

    def _pass_through(self, below: int, state: int, kind: str) -> int:
        """The state a chain of one-child rules ends in, from `state` over `below`, before `kind`."""
        action = self.actions[state].get(kind)
        while action.__class__ is tuple and action[2] is None:
            state = self.actions[below][action[1]]
            action = self.actions[state].get(kind)
        return state

    def parse(self, text: str):
        """What the start rule's callback returns; Unusual where Lark would report an error."""
        actions, end, passed = self.actions, self.end, self.passed
        if not self.fits:
            raise Unusual("a grammar the fast lexer doesn't serve")
        stack, values, pos = [self.start], [], 0
        for token in scan(text, stack, self.scanners):
            state, kind, pos = stack[-1], token.type, token.end_pos
            while True:  # Lark's feed_token: reduce as the table says, then shift
                action = actions[state].get(kind)
                if action.__class__ is int:
                    stack.append(action)
                    values.append(token)
                    break
                if action is None:
                    raise Unusual(kind)
                size, name, callback = action
                if callback is None:  # rules that are their one child: only the top state changes, to
                    key = (stack[-2], state, kind)  # where the chain of them ends (the same for the same
                    state = passed.get(key)  # state below, state and token)
                    if state is None:
                        state = passed[key] = self._pass_through(stack[-2], key[1], kind)
                    stack[-1] = state
                    continue
                if size:
                    children = values[-size:]
                    del values[-size:]
                    del stack[-size:]
                else:
                    children = []
                state = actions[stack[-1]][name]
                stack.append(state)
                values.append(callback(children))
        if not REST_IGNORED.match(text, pos):
            raise Unusual("a character no terminal of the state matches")
        while True:  # the end of the input: reduce until the start rule is complete
            action = actions[stack[-1]].get("$END")
            if action is None or action.__class__ is int:
                raise Unusual("$END")
            size, name, callback = action
            if size:
                children = values[-size:]
                del values[-size:]
                del stack[-size:]
            else:
                children = []
            stack.append(actions[stack[-1]][name])
            values.append(children[0] if callback is None else callback(children))
            if stack[-1] == end:
                return values[-1]
