"""Safety rails of a transfer spec (one with `init`), from its training rows (numpy): loaded modules
retrained on a handful of rows (W220), and a new module whose training rows show it only part of
the values its input takes (W221). Both are warnings of `check`; the pipeline adds them."""
from __future__ import annotations

import numpy as np

from ..lang import ast
from ..lang.diagnostics import WARNING, Diagnostic
from ..lang.vocabulary import NUMERIC_CODECS
from .examples import build_examples
from .selection import route_mask

FEW_ROWS = 200  # fewer training rows than this retrain loaded modules away from what they learned


def transfer_problems(checked) -> list[Diagnostic]:
    """W220 and W221 for a transfer spec whose data fits in memory (nothing for any other spec)."""
    if not checked.init_modules or not checked.ok:
        return []
    from .stream import should_stream

    if checked.data.source == "file" and should_stream(checked):
        return []
    examples = build_examples(checked)
    return _retrained_on_few_rows(checked, len(examples.train_index)) + _coverage_gaps(checked, examples)


def _retrained_on_few_rows(checked, rows: int) -> list[Diagnostic]:
    comp = checked.composition
    trainable = set(checked.init_modules) - comp.frozen
    if comp.phases and all(p.modules is not None for p in comp.phases):
        trainable &= {m for p in comp.phases for m in p.modules}
    if not trainable or rows >= FEW_ROWS:
        return []
    names = sorted(trainable, key=list(checked.graph.modules).index)
    span = comp.init_span or checked.data.span or ast.Span(checked.spec.path, 1, 1, 1, 2)
    modules = f"{len(names)} module{'s' if len(names) > 1 else ''}"
    return [Diagnostic("W220", f"{modules} loaded from the init run train again on only {rows} rows "
                               f"({', '.join(names)}): what they learned on their own routes may be lost", span,
                       WARNING, hints=[f"freeze them: `freeze {', '.join(names)}` (or name only the new modules "
                                       "in a `phase ... modules ...`)"])]


def _coverage_gaps(checked, examples) -> list[Diagnostic]:
    """A new module fed by a decoder: the decoder's target values over the rows that train the new
    module, against its values over every row."""
    g = checked.graph
    problems = []
    train = examples.train_index
    for name in sorted(checked.new_modules, key=list(g.modules).index):
        feeders = [p for p in g.predecessors(name) if p in g.decoders]
        for feeder in feeders:
            if g.modules[feeder].output.kind.text in NUMERIC_CODECS:
                continue
            target = examples.targets[g.decoders[feeder]]
            through = np.zeros(examples.n, dtype=bool)
            for route in g.routes():
                if name in route.modules:
                    through |= route_mask(g, examples.columns, route)
            seen = _values(target[train[through[train]]])
            everywhere = _values(target[through])
            missing = sorted(everywhere - seen)
            if missing and seen:
                decl = g.modules[name]
                shown = ", ".join(str(v) for v in missing[:12]) + (", ..." if len(missing) > 12 else "")
                problems.append(Diagnostic(
                    "W221", f"'{name}' is trained on {len(seen)} of the {len(everywhere)} values of its input "
                            f"('{feeder}' as {g.decoders[feeder]}): never on {shown}", decl.name.span, WARNING,
                    hints=["train it on rows that reach every value: widen or drop the `only` filters and "
                           "`limit` of `data`, or add routes to it"]))
    return problems


def _values(column: np.ndarray) -> set[int]:
    values = column.astype(np.float64)
    return {int(v) for v in values[~np.isnan(values)]}
