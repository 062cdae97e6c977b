"""Target expressions evaluated vectorised with numpy over whole columns (used for training data).

Semantics match `expr.evaluate_rows` (the check's row evaluator): the branches of `if` and `match`
are evaluated only on the rows that take them, so `if x > 0 then 10 // x else 0` is fine where x is
0; a row no match case covers is NaN.
"""
from __future__ import annotations

import numpy as np

from ..lang import ast
from ..lang.diagnostics import Diagnostic
from ..lang.expr import INT_LIMIT, ExprError, Scope


def evaluate(expr: ast.Expr, columns: dict[str, np.ndarray], scope: Scope) -> np.ndarray:
    """Evaluate over columns of equal length; raise ExprError for division by zero or overflow."""
    n = len(next(iter(columns.values()))) if columns else 1
    out = _Evaluator(columns, scope).run(expr, np.arange(n))
    return np.broadcast_to(out, (n,)).copy()


def fold_steps(expr: ast.Fold, columns: dict[str, np.ndarray], scope: Scope) -> list[np.ndarray]:
    """A fold's running value over whole columns: the start, then after each selector in turn."""
    n = len(next(iter(columns.values())))
    return _Evaluator(columns, scope).fold_steps(expr, np.arange(n))


class _Evaluator:
    def __init__(self, columns: dict[str, np.ndarray], scope: Scope):
        self.columns = columns
        self.scope = scope

    def run(self, node: ast.Expr, rows: np.ndarray) -> np.ndarray:
        """Values of `node` on `rows` (an index array); always shaped like rows."""
        n = len(rows)
        if isinstance(node, ast.Number):
            return np.full(n, node.value)
        if isinstance(node, ast.Ref):
            return self.columns[node.name.text][rows]
        if isinstance(node, ast.UnaryOp):
            value = self.run(node.operand, rows)
            return np.logical_not(value) if node.op == "not" else np.negative(_no_bool(value))
        if isinstance(node, ast.IfElse):
            cond = self.run(node.cond, rows).astype(bool)
            return _merge([(cond, self.run(node.then, rows[cond])),
                           (~cond, self.run(node.otherwise, rows[~cond]))], n)
        if isinstance(node, ast.Call):
            args = [self.run(a, rows) for a in node.args]
            if node.func.text == "abs":
                return np.abs(args[0])
            reduce = np.minimum if node.func.text == "min" else np.maximum
            out = args[0]
            for a in args[1:]:
                out = reduce(out, a)
            return out
        if isinstance(node, ast.Match):
            return self.match(node, rows)
        if isinstance(node, ast.Fold):
            return self.fold_steps(node, rows)[-1]
        assert isinstance(node, ast.BinOp)
        return self.binop(node, self.run(node.left, rows), self.run(node.right, rows), rows)

    def fold_steps(self, node: ast.Fold, rows: np.ndarray) -> list[np.ndarray]:
        """The running value of a fold after each of its selectors (the start value first)."""
        steps = [self.run(node.start, rows)]
        for sel in node.selectors:
            bound = np.zeros(len(next(iter(self.columns.values()))), dtype=steps[-1].dtype)
            bound[rows] = steps[-1]
            inner = _Evaluator({**self.columns, node.var.text: bound}, self.scope)
            steps.append(inner.match(node.step(sel), rows))
        return steps

    def match(self, node: ast.Match, rows: np.ndarray) -> np.ndarray:
        values = self.scope.categorical[node.selector.text]
        column = self.columns[node.selector.text][rows]
        taken = np.zeros(len(rows), dtype=bool)
        parts = []
        for case in node.cases:
            if case.value is None:
                continue
            mask = (column == values.index(case.value.text)) & ~taken
            taken |= mask
            parts.append((mask, self.run(case.expr, rows[mask])))
        default = next((c for c in node.cases if c.value is None), None)
        if default is not None:
            parts.append((~taken, self.run(default.expr, rows[~taken])))
        return _merge(parts, len(rows))

    def binop(self, node: ast.BinOp, a: np.ndarray, b: np.ndarray, rows: np.ndarray) -> np.ndarray:
        op = node.op
        if op in ("and", "or"):
            return np.logical_and(a, b) if op == "and" else np.logical_or(a, b)
        compare = {"==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal,
                   ">": np.greater, ">=": np.greater_equal}
        if op in compare:
            return compare[op](a, b)
        a, b = _no_bool(a), _no_bool(b)  # as in Python, True + True == 2 (numpy: `or`, and `-` refused)
        if op in ("/", "//", "%") and (b == 0).any():
            raise ExprError(self._failure(node.right, "division by zero", b == 0, rows))
        if op == "**" and ((a == 0) & (b < 0)).any():
            raise ExprError(self._failure(node, "zero raised to a negative power", (a == 0) & (b < 0), rows))
        integer = _is_int(a) and _is_int(b)
        with np.errstate(all="ignore"):
            if op == "**" and integer and (b < 0).any():
                a, integer = a.astype(float), False
            ufunc = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.true_divide,
                     "//": np.floor_divide, "%": np.mod, "**": np.power}[op]
            out = ufunc(a, b)
            if integer and op in ("+", "-", "*", "**"):
                bad = np.abs(ufunc(a.astype(float), b.astype(float))) >= INT_LIMIT
                if bad.any():
                    raise ExprError(self._failure(node, "integer overflow", bad, rows))
            elif not integer:
                bad = ~np.isfinite(out.astype(float)) & np.isfinite(a.astype(float)) & np.isfinite(b.astype(float))
                if bad.any():
                    raise ExprError(self._failure(node, "result is not a finite number", bad, rows))
        return out

    def _failure(self, node: ast.Expr, what: str, mask: np.ndarray, rows: np.ndarray) -> Diagnostic:
        row = int(rows[int(np.argmax(mask))])
        usable = self.scope.numeric | set(self.scope.categorical)  # a vector or a text is no expression's value
        example = ", ".join(f"{k}={self._show(k, row)}" for k in sorted(self.columns) if k in usable)
        return Diagnostic("E110", f"{what} (for {int(mask.sum())} of the examples)", node.span,
                          hints=[f"first failing example: {example}" if example else "it fails for every example"])

    def _show(self, name: str, row: int) -> str:
        value = self.columns[name][row]
        if name in self.scope.categorical:
            return self.scope.categorical[name][int(value)]
        return str(value.item() if hasattr(value, "item") else value)


def _merge(parts: list[tuple[np.ndarray, np.ndarray]], n: int) -> np.ndarray:
    """Put each part's values back at its mask's rows; a row no part covers is NaN."""
    dtypes = [p.dtype for _, p in parts if len(p)]
    dtype = np.result_type(*dtypes) if dtypes else np.int64
    uncovered = n - sum(int(m.sum()) for m, _ in parts)
    if uncovered:
        dtype = np.result_type(dtype, np.float64)
    out = np.full(n, np.nan, dtype=dtype) if uncovered else np.zeros(n, dtype=dtype)
    for mask, values in parts:
        out[mask] = values
    return out


def _no_bool(x: np.ndarray) -> np.ndarray:
    return x.astype(np.int64) if np.asarray(x).dtype == bool else x


def _is_int(x) -> bool:
    return np.issubdtype(np.asarray(x).dtype, np.integer) or np.asarray(x).dtype == bool
