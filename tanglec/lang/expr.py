"""Target expressions: static checks and a row-at-a-time evaluator (never Python's eval).

Training evaluates targets vectorised with numpy (`expr_numpy`); `tanglec check` evaluates small
enumerated domains row by row here, in plain Python, because importing numpy alone costs most of
the check's time budget. Both report division by zero and integer overflow the same way, as a
diagnostic at the failing sub-expression with the first example that fails it, and tests compare
the two evaluators on random expressions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from . import ast
from .diagnostics import Diagnostic, did_you_mean
from .vocabulary import FUNCTIONS

INT_LIMIT = 2**53  # beyond this int64 arithmetic loses its float cross-check; treat as overflow


@dataclass
class Scope:
    """What names an expression may use: numeric fields, and categorical ones (selectors, categories)."""

    numeric: set[str]
    categorical: dict[str, list[str]]  # name -> values, in order (the column holds the index)


class ExprError(Exception):
    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def check(expr: ast.Expr, scope: Scope) -> list[Diagnostic]:
    """Unknown names and functions, bad arity, matches on non-selectors and uncovered match cases."""
    out: list[Diagnostic] = []
    stack = [expr]
    while stack:  # explicit stack: no recursion a deep expression could overflow
        node = stack.pop()
        if isinstance(node, ast.Ref):
            name = node.name.text
            if name in scope.categorical:
                out.append(Diagnostic("E109", f"'{name}' is categorical and can't be used as a number", node.span,
                                      hints=[f"use `match {name} {{ ... }}` to choose a value per {name}"]))
            elif name not in scope.numeric:
                out.append(Diagnostic("E109", f"unknown field '{name}' in expression", node.span,
                                      hints=did_you_mean(name, scope.numeric | set(scope.categorical))))
        elif isinstance(node, ast.BinOp):
            stack += [node.right, node.left]
        elif isinstance(node, ast.UnaryOp):
            stack.append(node.operand)
        elif isinstance(node, ast.IfElse):
            stack += [node.otherwise, node.then, node.cond]
        elif isinstance(node, ast.Call):
            fn = node.func.text
            if fn not in FUNCTIONS:
                out.append(Diagnostic("E120", f"unknown function '{fn}'", node.func.span,
                                      hints=did_you_mean(fn, FUNCTIONS) + ["functions: min, max, abs"]))
            else:
                lo, hi = FUNCTIONS[fn]
                if len(node.args) < lo or (hi is not None and len(node.args) > hi):
                    want = f"{lo}" if lo == hi else f"at least {lo}"
                    out.append(Diagnostic("E120", f"{fn}() takes {want} argument{'s' * (lo != 1)}, "
                                                  f"got {len(node.args)}", node.span))
            stack += list(reversed(node.args))
        elif isinstance(node, ast.Match):
            out += _check_match(node, scope)
            stack += [c.expr for c in reversed(node.cases)]
        elif isinstance(node, ast.Fold):
            out += _check_fold(node, scope)
            stack.append(node.start)
    return out


def _check_fold(node: ast.Fold, scope: Scope) -> list[Diagnostic]:
    """The cases see the running value as a number; every selector must take the same values, so the
    cases are checked against the first and the others compared with it."""
    inner = Scope(scope.numeric | {node.var.text}, {k: v for k, v in scope.categorical.items() if k != node.var.text})
    out = _check_match(node.step(node.selectors[0]), scope)
    for case in node.cases:
        out += check(case.expr, inner)
    first = node.selectors[0].text
    for sel in node.selectors[1:]:
        if sel.text not in scope.categorical:
            out += _check_match(node.step(sel), scope)
        elif first in scope.categorical and scope.categorical[sel.text] != scope.categorical[first]:
            out.append(Diagnostic("E121", f"fold by {first} and {sel.text}: {sel.text} takes different values "
                                          f"({', '.join(scope.categorical[sel.text])})", sel.span,
                                  hints=[f"declare {sel.text} with the values of {first}: "
                                         f"{' | '.join(scope.categorical[first])}"]))
    return out


def _check_match(node: ast.Match, scope: Scope) -> list[Diagnostic]:
    name = node.selector.text
    if name not in scope.categorical:
        return [Diagnostic("E109", f"match needs a selector or category field, '{name}' is "
                                   f"{'numeric' if name in scope.numeric else 'unknown'}", node.selector.span,
                           hints=did_you_mean(name, scope.categorical))]
    values = scope.categorical[name]
    out, seen, wildcard = [], set(), False
    for case in node.cases:
        if case.value is None:
            wildcard = True
            continue
        v = case.value.text
        if v not in values:
            out.append(Diagnostic("E121", f"'{v}' is not a value of {name}", case.value.span,
                                  hints=did_you_mean(v, values) + [f"{name} is one of: {', '.join(values)}"]))
        elif v in seen:
            out.append(Diagnostic("E121", f"case '{v}' appears twice", case.value.span))
        seen.add(v)
    missing = [v for v in values if v not in seen]
    if missing and not wildcard:
        out.append(Diagnostic("E121", f"match on {name} has no case for {', '.join(missing)}", node.span,
                              hints=["add the missing cases or a `_: ...` default"]))
    return out


class _Failure(Exception):
    def __init__(self, node: ast.Expr, what: str):
        self.node, self.what = node, what


def evaluate_rows(expr: ast.Expr, rows: list[dict], scope: Scope) -> list:
    """Value per row (None where a match has no case); ExprError on division by zero or overflow."""
    out, failure, count, first = [], None, 0, None
    for row in rows:
        try:
            out.append(_value(expr, row, scope))
        except _Failure as err:
            if failure is None or err.node is failure.node:
                failure, count = failure or err, count + 1
                first = first or row
            out.append(None)
    if failure is not None:
        example = ", ".join(f"{k}={_show(scope, k, v)}" for k, v in sorted(first.items()))
        raise ExprError(Diagnostic("E110", f"{failure.what} (for {count} of the examples)", failure.node.span,
                                   hints=[f"first failing example: {example}" if example else
                                          "it fails for every example"]))
    return out


def _show(scope: Scope, name: str, value) -> str:
    return scope.categorical[name][int(value)] if name in scope.categorical else str(value)


def _value(node: ast.Expr, row: dict, scope: Scope):
    if isinstance(node, ast.Number):
        return node.value
    if isinstance(node, ast.Ref):
        return row[node.name.text]
    if isinstance(node, ast.UnaryOp):
        v = _value(node.operand, row, scope)
        return None if v is None else (not v) if node.op == "not" else -v
    if isinstance(node, ast.IfElse):
        cond = _value(node.cond, row, scope)
        return None if cond is None else _value(node.then if cond else node.otherwise, row, scope)
    if isinstance(node, ast.Call):
        args = [_value(a, row, scope) for a in node.args]
        if any(a is None for a in args):
            return None
        return abs(args[0]) if node.func.text == "abs" else (min if node.func.text == "min" else max)(args)
    if isinstance(node, ast.Fold):
        value = _value(node.start, row, scope)
        for sel in node.selectors:
            if value is None:
                return None
            value = _value(node.step(sel), {**row, node.var.text: value}, scope)
        return value
    if isinstance(node, ast.Match):
        chosen = scope.categorical[node.selector.text][int(row[node.selector.text])]
        for case in node.cases:
            if case.value is None or case.value.text == chosen:
                return _value(case.expr, row, scope)
        return None
    assert isinstance(node, ast.BinOp)
    a, b = _value(node.left, row, scope), _value(node.right, row, scope)
    if a is None or b is None:
        return None
    return _binop(node, a, b)


def _binop(node: ast.BinOp, a, b):
    op = node.op
    if op == "and":
        return bool(a) and bool(b)
    if op == "or":
        return bool(a) or bool(b)
    compare = {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b} if op in \
        ("==", "!=", "<", "<=", ">", ">=") else None
    if compare is not None:
        return compare[op]
    if op in ("/", "//", "%") and b == 0:
        raise _Failure(node.right, "division by zero")
    integer = isinstance(a, (int, bool)) and isinstance(b, (int, bool))
    try:
        if op == "**":
            if integer and b < 0:
                a, integer = float(a), False
            if integer and b * math.log2(abs(a) or 1) >= 53:
                raise _Failure(node, "integer overflow")
        if op == "**" and a == 0 and b < 0:
            raise _Failure(node, "zero raised to a negative power")
        value = {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b,
                 "//": lambda: a // b, "%": lambda: a % b, "**": lambda: a ** b}[op]()
    except OverflowError:
        raise _Failure(node, "result is not a finite number") from None
    if integer and abs(value) >= INT_LIMIT:
        raise _Failure(node, "integer overflow")
    if isinstance(value, complex) or (isinstance(value, float) and not math.isfinite(value)):
        raise _Failure(node, "result is not a finite number")
    return value


def children(node: ast.Expr) -> list[ast.Expr]:
    if isinstance(node, ast.BinOp):
        return [node.left, node.right]
    if isinstance(node, ast.UnaryOp):
        return [node.operand]
    if isinstance(node, ast.IfElse):
        return [node.cond, node.then, node.otherwise]
    if isinstance(node, ast.Call):
        return list(node.args)
    if isinstance(node, ast.Match):
        return [c.expr for c in node.cases]
    if isinstance(node, ast.Fold):
        return [node.start] + [c.expr for c in node.cases]
    return []


def referenced_names(expr: ast.Expr) -> set[str]:
    names, stack = set(), [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Ref):
            names.add(node.name.text)
        elif isinstance(node, ast.Match):
            names.add(node.selector.text)
        elif isinstance(node, ast.Fold):  # the running value is bound inside, not a field
            names |= {s.text for s in node.selectors}
            for case in node.cases:
                names |= referenced_names(case.expr) - {node.var.text}
            stack.append(node.start)
            continue
        stack += children(node)
    return names
