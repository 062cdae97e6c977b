"""The parser's callback for each grammar rule, made from AstBuilder's methods (transform.py).

Lark would wrap a transformer's methods in generic callbacks; these do the same — a repetition's items
inlined into the rule that holds it, a `?rule` of one child passed through, the punctuation left out of
the children of a rule that computes its span — with the work per rule decided once, and cost a
fraction of Lark's. The table parser (fastparse.py) also recognises `only_child`: there it only
changes the parser's state.
"""
from __future__ import annotations

from typing import NamedTuple

from .transform import AstBuilder


class Symbol(NamedTuple):
    name: str
    is_term: bool


class Rule(NamedTuple):
    """A grammar rule as the callbacks need it (Lark's Rule, or the grammar table's cache of it)."""

    origin: str
    alias: str | None
    expand1: bool  # a `?rule`: one child is passed up as it is
    expansion: tuple[Symbol, ...]


class GrammarMismatch(Exception):
    """A grammar rule the AST builder can't serve."""


def reductions(builder: AstBuilder, rules, punctuation: frozenset[str]) -> dict:
    """The parser's callback for each of its `rules` (Rule): what Lark would make of `builder` as a
    transformer with `keep_all_tokens`, less the `punctuation` terminals in the rules that compute a
    span. GrammarMismatch for a rule this can't serve."""
    repetitions = {rule.origin for rule in rules if _is_repetition(rule)}
    trailing_punctuation = {rule.origin for rule in rules if rule.origin in repetitions
                            and rule.expansion and _is_punctuation(rule.expansion[-1], punctuation)}
    return {rule: _reduction(builder, rule, punctuation, repetitions, trailing_punctuation) for rule in rules}


def _is_repetition(rule: Rule) -> bool:
    """`x*`, `("," x)+`: Lark's own rules, inlined into the rule that holds them."""
    return rule.origin.startswith("_")


def _is_punctuation(symbol: Symbol, punctuation: frozenset[str]) -> bool:
    return symbol.is_term and symbol.name in punctuation


def _reduction(builder: AstBuilder, rule: Rule, punctuation, repetitions, trailing_punctuation):
    symbols = rule.expansion
    name = rule.alias or rule.origin
    kept = [i for i, sym in enumerate(symbols) if not _is_punctuation(sym, punctuation)]
    inlined = [i for i in kept if symbols[i].name in repetitions]
    if _is_repetition(rule):
        if inlined[:1] == [0]:  # `items , x`: the list so far, extended in place (as Lark does)
            return _extension(kept[1:], inlined[1:])
        return _gatherer(kept, inlined)
    if rule.expand1 and not rule.alias and len(symbols) == 1 and not inlined:
        return only_child  # a `?rule` of one child is that child
    method = getattr(builder, name, None)
    if getattr(method, "passes_child", False) and len(symbols) == 1 and not inlined:
        return only_child
    if method is None or rule.expand1 and not rule.alias and inlined:
        raise GrammarMismatch(f"rule {name}: no AstBuilder method, or a `?rule` holding a repetition")
    if not getattr(method, "spans", False):  # as Lark gives them: repetitions inlined, every token
        every = range(len(symbols))
        if not any(symbols[i].name in repetitions for i in every):
            return method
        gather = _gatherer(list(every), [i for i in every if symbols[i].name in repetitions])
        return lambda c: method(gather(c))
    if not symbols or symbols[0].name in repetitions or symbols[-1].name in trailing_punctuation:
        raise GrammarMismatch(f"rule {name}: its span can't be found from its first and last items")
    rule_span = builder.rule_span
    if not inlined:
        return lambda c: method(rule_span(c[0], c[-1]), [c[i] for i in kept])
    gather = _gatherer(kept, inlined)
    if symbols[-1].name in repetitions:
        return lambda c: method(rule_span(c[0], c[-1][-1]), gather(c))
    return lambda c: method(rule_span(c[0], c[-1]), gather(c))


def _gatherer(kept: list[int], inlined: list[int]):
    """c -> the children at the `kept` places, the repetitions' lists (at `inlined`) spliced in."""
    if not inlined:
        if len(kept) == 1:
            only = kept[0]
            return lambda c: [c[only]]
        return lambda c: [c[i] for i in kept]
    plain = [i for i in kept if i not in inlined]
    if inlined == kept[-1:]:  # the usual `x ("," x)*`: one repetition, last
        last = inlined[0]

        def gather(c):
            out = [c[i] for i in plain]
            out += c[last]
            return out
        return gather

    def gather_all(c):
        out = []
        for i in kept:
            if i in inlined:
                out += c[i]
            else:
                out.append(c[i])
        return out
    return gather_all


def _extension(kept: list[int], inlined: list[int]):
    if len(kept) == 1 and not inlined:
        item = kept[0]

        def extend_by_one(c):
            items = c[0]
            items.append(c[item])
            return items
        return extend_by_one
    gather = _gatherer(kept, inlined)

    def extend(c):
        items = c[0]
        items += gather(c)
        return items
    return extend


def only_child(c):
    """The reduction of a rule that is its one child (the table parser just moves to the rule's state)."""
    return c[0]
