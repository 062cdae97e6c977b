"""Checks of targets: expressions, dependency order, shapes, and ranges over a small enumerated
domain evaluated row by row in plain Python (larger data is data.validate's, through `data_check`).

Mixed into the checker (spec/checks.py): methods report through self.error/self.warn."""
from __future__ import annotations

import contextlib
import itertools
import math
from graphlib import CycleError, TopologicalSorter

from ..lang import ast, expr
from ..lang.diagnostics import Diagnostic, Related
from .check_tables import missing_problem, table_usable
from .checked import Checked
from .graph import TangleGraph

ROW_BY_ROW_STEPS = 200_000  # rows x expression nodes evaluated in plain Python (beyond: numpy)
SMALL_DOMAIN = 20_000


class TargetChecks:
    def check_targets(self) -> None:
        scope = Checked(self.spec, self.g, self.train, self.data, []).expr_scope()
        bad_expr = set()
        for name, t in self.g.targets.items():
            if isinstance(t.type, ast.TextType):
                self.error("E112", f"target '{name}' is text: a decoder answers with a number, a category or a "
                                   "vector, not free text", t.type.span,
                           hints=["list the answers: `target t: category a | b | c from data`"])
            elif t.type is not None:
                self.check_field_type(t.type)
            if t.expr is None:
                if self.data.source != "file":
                    self.error("E124", f"target '{name}' comes from data, but the data is not a file", t.span,
                               hints=['read a file: `data file "rows.csv"`, or give an expression'])
                continue
            found = expr.check(t.expr, scope)
            self.diags += found
            if found:
                bad_expr.add(name)
        self.check_target_shapes()
        self.order_targets()
        for name, t in self.g.targets.items():
            if name not in self.g.decoders.values():
                self.warn("W203", f"target '{name}' is decoded by no module", t.name.span)
        if any(d.is_error for d in self.diags) or self.stored_rows is not None:
            return  # data needs a sound spec; a run's stored rows were checked when it was compiled
        checked = Checked(self.spec, self.g, self.train, self.data, [], self.target_order)
        domain = _small_domain(self.g)
        if self.data.source == "enumerate" and domain is not None and \
                math.prod(map(len, domain[1])) * self.expression_size() <= ROW_BY_ROW_STEPS:
            values = self.domain_values(checked, *domain)
            if values is not None:
                self.check_target_ranges(values)
        elif self.data_check is not None:
            self.diags += self.data_check(checked)

    def domain_values(self, checked: Checked, names: list[str], grids: list[list[int]]) -> dict[str, list] | None:
        """Each target's values, row by row in plain Python over a small enumerated domain (no numpy
        import, so `check` stays fast); larger data is `data_check`'s (it reads or samples the data)."""
        rows = [dict(zip(names, combo)) for combo in itertools.product(*grids)]
        out, scope = {}, checked.expr_scope()
        for name in self.target_order:
            try:
                out[name] = expr.evaluate_rows(self.g.targets[name].expr, rows, scope)
            except expr.ExprError as err:
                self.diags.append(err.diagnostic)
                return None
            for row, value in zip(rows, out[name]):
                row[name] = value
        return out

    def expression_size(self) -> int:
        """Nodes in all target expressions: the work of evaluating them for one row."""
        stack = [t.expr for t in self.g.targets.values() if t.expr is not None]
        count = 0
        while stack:
            count += 1
            stack += expr.children(stack.pop())
        return count

    def order_targets(self) -> None:
        """Expression targets in dependency order (a target may use another); a cycle is an error."""
        exprs = {n: t for n, t in self.g.targets.items() if t.expr is not None}
        # each target after the expression targets it uses (the others are known values)
        uses = TopologicalSorter({n: expr.referenced_names(t.expr) & set(exprs) for n, t in exprs.items()})
        declared = {n: i for i, n in enumerate(exprs)}.__getitem__  # declaration order within a generation
        with contextlib.suppress(CycleError):  # on a cycle the order goes as far as the cycle lets it
            uses.prepare()
        while generation := uses.get_ready():
            self.target_order += sorted(generation, key=declared)
            uses.done(*generation)
        if len(self.target_order) < len(exprs):
            stuck = [n for n in exprs if n not in self.target_order]
            self.error("E103", "targets depend on each other in a cycle: " + ", ".join(stuck),
                       self.g.targets[stuck[0]].name.span,
                       related=[Related(self.g.targets[n].name.span, f"'{n}' declared here") for n in stuck[1:]])

    def check_target_shapes(self) -> None:
        """A vector(n) decoder needs a vector(n) column from the data; every other decoder a number."""
        for decoder, target in self.g.decoders.items():
            if decoder not in self.g.modules or target not in self.g.targets:
                continue
            codec, t = self.g.modules[decoder].output, self.g.targets[target]
            given = t.type if isinstance(t.type, ast.VectorType) and t.expr is None else None
            if codec.kind.text == "vector" and (given is None or given.size != codec.size):
                what = given.describe() if given else "one number per example"
                hint = f"declare it `target {target}: vector({codec.size}) from data`"
            elif codec.kind.text != "vector" and isinstance(t.type, ast.VectorType):
                what, hint = t.type.describe(), f"decode it with a vector({t.type.size}) output"
            else:
                continue
            where = t.type.span if t.type is not None else t.name.span
            self.error("E112", f"target '{target}' is {what}, but decoder '{decoder}' outputs {codec}", where,
                       hints=[hint], related=[Related(codec.span, f"'{decoder}' output declared here")])

    def check_target_ranges(self, values: dict[str, list]) -> None:
        self.diags += range_problems(self.g, values)


def _small_domain(g: TangleGraph) -> tuple[list[str], list[list[int]]] | None:
    """Names and value lists of every input and selector, if all are finite and few in product."""
    names, grids, size = [], [], 1
    for name, decl in g.inputs.items():
        t = decl.type
        if isinstance(t, ast.IntType):
            grid = range(t.lo, t.hi + 1)  # a range, not a list: `int 0..9000000000000` must not fill memory
            if size * len(grid) > SMALL_DOMAIN:
                return None
        elif isinstance(t, ast.CategoryType):
            grid = list(range(len(t.values)))
        else:
            return None
        names.append(name)
        grids.append(grid)
        size *= len(grid)
    for name, decl in g.selectors.items():
        names.append(name)
        grids.append(list(range(len(decl.values))))
        size *= len(decl.values)
    return (names, grids) if size <= SMALL_DOMAIN else None


def range_problems(g: TangleGraph, values: dict[str, list]) -> list[Diagnostic]:
    """E112 for each decoded target whose values (or a [min, max(, a non-integer)] summary of them)
    its decoder's codec can't represent."""
    out, tables_checked = [], set()
    problems: dict[tuple, str | None] = {}  # (codec kind, size, target) -> its problem: decoders often share one
    for decoder, target in g.decoders.items():
        if decoder not in g.modules or target not in values:
            continue
        codec = g.modules[decoder].output
        t = g.targets[target]
        if codec.table is not None:
            if (codec.table.name.text, target) in tables_checked:
                continue  # two decoders of one target through one table: its problems once
            tables_checked.add((codec.table.name.text, target))
            out += _table_problems(codec.table, decoder, target, t, [v for v in values[target] if v is not None])
            continue
        key = (codec.kind.text, codec.size, target)
        if key not in problems:
            problems[key] = _range_problem(codec, [v for v in values[target] if v is not None])
        problem = problems[key]
        if problem:
            where = t.expr.span if t.expr is not None else t.span
            out.append(Diagnostic("E112", f"target '{target}' {problem} for decoder '{decoder}' ({codec})", where,
                                  related=[Related(codec.span, f"'{decoder}' output declared here")]))
    return out


def _table_problems(table: ast.CodecDecl, decoder: str, target: str, t: ast.TargetDecl,
                    values: list) -> list[Diagnostic]:
    """A decoder's table must have a pattern for every value its target takes (E133 at the table), and only
    ints as keys, within the target's declared range if it has one (E132 at a key). A key the target never
    takes is allowed otherwise: the table may also encode a field with more values."""
    if not table_usable(table):
        return []
    where = Related(t.expr.span if t.expr is not None else t.span, f"target '{target}' declared here")
    declared = t.type if isinstance(t.type, ast.IntType) else None
    out = []
    for e in table.valid_entries():
        if e.number is None:
            out.append(Diagnostic("E132", f"'{e.key.text}' is not a value of target '{target}': targets are "
                                          f"numbers, and decoder '{decoder}' decodes it with '{table.name.text}'",
                                  e.key.span, related=[where]))
        elif declared is not None and not declared.lo <= e.number <= declared.hi:
            out.append(Diagnostic("E132", f"'{e.key.text}' is not a value of target '{target}' "
                                          f"({declared.describe()})", e.key.span, related=[where]))
    if any(float(v) != int(v) for v in values):
        out.append(Diagnostic("E112", f"target '{target}' has non-integer values for decoder '{decoder}' "
                                      f"({table.name.text})", where.span))
        return out
    taken = sorted({int(v) for v in values})
    problem = missing_problem(table, taken, f"target '{target}' (decoded by '{decoder}')", where)
    return out + ([problem] if problem is not None else [])


def _range_problem(codec: ast.Codec, values: list) -> str | None:
    kind = codec.kind.text
    if not values or kind in ("scalar", "vector"):
        return None
    if any(float(v) != int(v) for v in values):
        return "has non-integer values"
    lo, hi = int(min(values)), int(max(values))
    top = 2 ** codec.size - 1 if kind in ("bits", "gray") else codec.size - 1
    if lo < 0 or hi > top:
        return f"ranges over {lo}..{hi}, outside 0..{top}"
    return None
