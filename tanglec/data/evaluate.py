"""Exact-match accuracy of every route, from raw model outputs (numpy only)."""
from __future__ import annotations

import numpy as np

from ..spec.checks import Checked
from . import codecs
from .rows import Examples
from .selection import route_mask


def route_report(checked: Checked, examples: Examples, outputs: dict[str, np.ndarray]) -> dict:
    """Exact-match accuracy per route and overall; a case is exact when every decoder it reaches is.

    `outputs` are the model's raw outputs for `examples` (all rows, in order).
    """
    return report_from_counts(checked, route_counts(checked, examples, outputs))


RouteCounts = list[tuple[int, int, dict[str, int]]]  # per route: cases, exact cases, exact cases per decoder


def route_counts(checked: Checked, examples: Examples, outputs: dict[str, np.ndarray]) -> RouteCounts:
    """Per route (graph.routes() order): its cases, exact cases, and each reached decoder's exact cases
    (a row whose target is undefined counts as exact for that decoder): counts, so that the counts of
    a file's chunks add up to the whole file's."""
    g = checked.graph
    decoded = {d: codecs.decode(g.modules[d].output, outputs[d])[0] for d in outputs if d in g.decoders}
    counts = []
    for route in g.routes():
        rows = np.flatnonzero(route_mask(g, examples.columns, route))
        case_ok = np.ones(len(rows), dtype=bool)
        per_decoder = {}
        for d in route.decoders:
            if d not in decoded:
                continue
            target = examples.targets[g.decoders[d]][rows]
            live = codecs.defined(target)
            ok = np.ones(len(rows), dtype=bool)
            ok[live] = codecs.exact(g.modules[d].output, decoded[d][rows][live], target[live], checked.tolerance(d))
            case_ok &= ok
            per_decoder[d] = int(ok.sum())
        counts.append((int(len(rows)), int(case_ok.sum()), per_decoder))
    return counts


def add_counts(total: RouteCounts | None, more: RouteCounts) -> RouteCounts:
    """Two tallies of route counts as one."""
    if total is None:
        return more
    return [(c1 + c2, e1 + e2, {d: n + d2.get(d, 0) for d, n in d1.items()})
            for (c1, e1, d1), (c2, e2, d2) in zip(total, more)]


def report_from_counts(checked: Checked, counts: RouteCounts) -> dict:
    """The route report of `route_counts` (accuracies, totals, and by chain length for a chain)."""
    routes = []
    total_cases = total_exact = 0
    for route, (cases, exact, per_decoder) in zip(checked.graph.routes(), counts):
        total_cases += cases
        total_exact += exact
        routes.append({**route.to_json(), "cases": cases, "exact": exact,
                       "accuracy": exact / cases if cases else None,
                       "decoders_accuracy": {d: n / cases if cases else None for d, n in per_decoder.items()}})
    report = {"accuracy": total_exact / total_cases if total_cases else None, "cases": total_cases,
              "exact": total_exact, "routes": routes}
    if routes and "length" in routes[0]:
        report["by_length"] = by_length(routes)
    return report


def by_length(routes: list[dict]) -> list[dict]:
    """The routes grouped by how many operations their chains apply: cases, exact, and routes at 100%."""
    groups: dict[int, dict] = {}
    for r in routes:
        g = groups.setdefault(r["length"], {"length": r["length"], "routes": 0, "routes_exact": 0,
                                            "cases": 0, "exact": 0})
        g["routes"] += 1
        g["routes_exact"] += r["cases"] > 0 and r["exact"] == r["cases"]
        g["cases"] += r["cases"]
        g["exact"] += r["exact"]
    return [{**g, "accuracy": g["exact"] / g["cases"] if g["cases"] else None} for _, g in sorted(groups.items())]


def all_exact(report: dict) -> bool:
    return report["cases"] > 0 and report["exact"] == report["cases"]


def evaluation_loss(checked: Checked, examples: Examples, outputs: dict[str, np.ndarray]) -> float:
    """The training loss (each decoder's, weighted as in training) over the evaluation rows, in numpy:
    what `until loss` watches. Alignment losses are left out: they have no evaluation target."""
    g = checked.graph
    total = 0.0
    for d, target_name in g.decoders.items():
        if d not in outputs:
            continue
        target, live = codecs.target_array(g.modules[d].output, examples.targets[target_name])
        if not live.any():
            continue
        loss = codecs.loss(g.modules[d].output, outputs[d], target)
        total += checked.train.weights.get(d, 1.0) * float((loss * live).sum() / live.sum())
    return total
