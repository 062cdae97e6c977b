"""Which example rows take which route, and which of them train: the one place rows meet routes.

Selector columns hold each value's index in its `select` declaration; a route is a selector value
per selector, so its rows are those whose selector columns all hold the route's values.
"""
from __future__ import annotations

import random

import numpy as np


def selector_code(g, selector: str, value: str) -> int:
    """The number a selector column holds for `value`."""
    return [v.text for v in g.selectors[selector].values].index(value)


def route_mask(g, columns: dict[str, np.ndarray], route, rows: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask over `rows` (every row when None) of those that take `route`."""
    n = len(next(iter(columns.values()))) if rows is None and columns else (0 if rows is None else len(rows))
    mask = np.ones(n, dtype=bool)
    for sel, value in route.selection.items():
        column = columns[sel] if rows is None else columns[sel][rows]
        mask &= column == selector_code(g, sel, value)
    return mask


def select_training_rows(checked, columns: dict, rows: np.ndarray) -> np.ndarray:
    """Training rows after held-out routes, `only` filters and few-shot limits (seeded) are applied."""
    comp = checked.composition
    g = checked.graph
    keep = np.ones(len(rows), dtype=bool)
    for sel, value in comp.only.items():
        keep &= columns[sel][rows] == selector_code(g, sel, value)
    for route in g.routes():
        if comp.is_held_out(route):
            keep &= ~route_mask(g, columns, route, rows)
    rows = rows[keep]
    cfg = checked.data
    rng = random.Random(cfg.seed)
    if cfg.per_route:
        picked = []
        for route in g.routes():
            mine = list(rows[route_mask(g, columns, route, rows)])
            rng.shuffle(mine)
            picked += mine[:cfg.per_route]
        rows = np.array(sorted(picked), dtype=rows.dtype)
    if cfg.limit and len(rows) > cfg.limit:
        rows = np.array(sorted(rng.sample(list(rows), cfg.limit)), dtype=rows.dtype)
    return rows


def route_status(checked, route, training_rows: int) -> str:
    """How a route was learned: trained here, pretrained (every module from the init run), held-out
    (declared), or unseen (no training rows: zero-shot composition)."""
    if checked.composition.is_held_out(route):
        return "held-out"
    if training_rows:
        return "trained"
    if checked.init_modules and set(route.modules) <= set(checked.init_modules):
        return "pretrained"
    return "unseen"
