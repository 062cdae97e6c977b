"""Which input fields a row must carry: those its route reads (plus, when targets are computed, those
the targets and alignments read, and the targets read from data that its route decodes). A branch
`value from field` reads its own field, so a row whose route takes it needs that field and not the
route's source; a field no module on the row's route reads may be left empty (CSV) or out (JSONL),
and is then filled with a neutral value (a target: NaN, undefined) and marked absent in
`Examples.present`.
"""
from __future__ import annotations

from ..lang import ast
from ..lang.expr import referenced_names
from .selection import selector_code


class FieldNeeds:
    """The input fields a row may go without (`optional`) and, by its selector values, which of them
    its route reads. `with_targets`: the targets are computed on the row (training, eval), so the
    fields the target expressions and `align ... on field` read are needed on every row."""

    def __init__(self, checked, with_targets: bool = True):
        g = checked.graph
        always = target_fields(checked) if with_targets else set()
        self.selectors = g.mux_selectors()
        self.readers: dict[str, dict[str, set[int]]] = {}  # optional field -> selector -> codes that read it
        for name in g.inputs:
            readers = g.field_readers(name)
            if name in always or readers is None or any(
                    len(values) == len(g.selectors[s].values) for s, values in readers.items()):
                continue  # read on every route (selectors are independent: a route is any combination)
            self.readers[name] = {s: {selector_code(g, s, v) for v in values} for s, values in readers.items()}
        # a target read from data, needed on the routes that reach one of its decoders: route -> those targets
        self.decoded: dict[tuple, set[str]] = {}
        self.targets: list[str] = []
        if with_targets:
            self.targets = _optional_targets(checked)
            for route in g.routes():
                key = tuple(selector_code(g, s, route.selection[s]) for s in self.selectors)
                self.decoded[key] = {g.decoders[d] for d in route.decoders} & set(self.targets)
        self.optional = list(self.readers) + self.targets

    def needed(self, codes: dict[str, object]) -> set[str]:
        """The optional fields (and targets) a row's route reads (decodes), from its selector codes."""
        fields = {name for name, readers in self.readers.items()
                  if any(codes.get(s) in values for s, values in readers.items())}
        return fields | self.decoded.get(tuple(codes.get(s) for s in self.selectors), set()) if self.targets \
            else fields

    def why(self, field: str, codes: dict[str, object], g) -> str:
        """`encoding=pixels`: the selector values of a row that make its route read (decode) `field`."""
        shown = self.selectors if field in self.targets else \
            [s for s, values in self.readers[field].items() if codes.get(s) in values]
        return ", ".join(f"{s}={g.selectors[s].values[codes[s]].text}" for s in shown)


def _optional_targets(checked) -> list[str]:
    """Targets read from data that some route decodes nowhere (a row of that route may leave them
    out) and no target expression reads."""
    g = checked.graph
    read = set()
    for target in g.targets.values():
        if target.expr is not None:
            read |= referenced_names(target.expr)
    decoders = {name: [d for d, t in g.decoders.items() if t == name] for name in g.targets}
    routes = g.routes()
    return [name for name, t in g.targets.items() if t.expr is None and t.type is not None and name not in read
            and any(not set(decoders[name]) & set(r.decoders) for r in routes)]

def target_fields(checked) -> set[str]:
    """Input fields the targets are computed from: those the target expressions and `align ... on
    field` read (a row whose targets are computed carries them, whatever its route)."""
    g = checked.graph
    fields = {group.field for group in checked.composition.aligns if group.field in g.inputs}
    for target in g.targets.values():
        if target.expr is not None:
            fields |= referenced_names(target.expr) & set(g.inputs)
    return fields


def neutral_value(t: ast.FieldType):
    """What fills a field a row does not carry: zero (a vector of zeros), or the nearest value of its range."""
    if isinstance(t, ast.VectorType):
        return [0.0] * t.size
    if isinstance(t, ast.CategoryType):
        return 0
    if isinstance(t, ast.TextType):
        return ""
    if isinstance(t, ast.IntType):
        return min(max(0, t.lo), t.hi)
    if isinstance(t, ast.FloatType) and t.lo is not None:
        return min(max(0.0, t.lo), t.hi)
    return 0.0
