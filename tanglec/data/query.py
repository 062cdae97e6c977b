"""Evaluation of every route and answers to single queries, from raw model outputs (numpy only)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..lang import ast
from . import codecs
from ..spec.checks import Checked
from .examples import Examples, evaluate_targets
from ..lang.diagnostics import Diagnostic, TangleError, did_you_mean


def route_report(checked: Checked, examples: Examples, outputs: dict[str, np.ndarray]) -> dict:
    """Exact-match accuracy per route and overall; a case is exact when every decoder it reaches is.

    `outputs` are the model's raw outputs for `examples` (all rows, in order).
    """
    g = checked.graph
    decoded = {d: codecs.decode(g.modules[d].output, outputs[d])[0] for d in outputs if d in g.decoders}
    routes = []
    total_cases = total_exact = 0
    for route in g.routes():
        mask = np.ones(examples.n, dtype=bool)
        for sel, value in route.selection.items():
            values = [v.text for v in g.selectors[sel].values]
            mask &= examples.columns[sel] == values.index(value)
        rows = np.flatnonzero(mask)
        case_ok = np.ones(len(rows), dtype=bool)
        per_decoder = {}
        for d in route.decoders:
            if d not in decoded:
                continue
            target = examples.targets[g.decoders[d]][rows]
            live = ~np.isnan(target.astype(np.float64)) if target.ndim == 1 else np.ones(len(rows), bool)
            ok = np.ones(len(rows), dtype=bool)
            ok[live] = codecs.exact(g.modules[d].output, decoded[d][rows][live], target[live])
            case_ok &= ok
            per_decoder[d] = float(ok.mean()) if len(rows) else None
        cases, exact = int(len(rows)), int(case_ok.sum())
        total_cases += cases
        total_exact += exact
        routes.append({**route.to_json(), "cases": cases, "exact": exact,
                       "accuracy": exact / cases if cases else None, "decoders_accuracy": per_decoder})
    return {"accuracy": total_exact / total_cases if total_cases else None, "cases": total_cases,
            "exact": total_exact, "routes": routes}


def all_exact(report: dict) -> bool:
    return report["cases"] > 0 and report["exact"] == report["cases"]


@dataclass
class Answer:
    decoder: str
    target: str
    value: object
    confidence: float | None
    expected: object | None

    def to_json(self) -> dict:
        return {"decoder": self.decoder, "target": self.target, "value": self.value,
                "confidence": self.confidence, "expected": self.expected,
                "correct": None if self.expected is None else self.value == self.expected}


def parse_fields(checked: Checked, assignments: dict[str, str] | list[tuple[str, str]]) -> dict[str, np.ndarray]:
    """`x=7 op=times2` (a dict, or NAME, VALUE pairs as typed) -> one-row columns; every bad, missing or
    repeated value is a diagnostic."""
    g = checked.graph
    problems: list[Diagnostic] = []
    columns: dict[str, np.ndarray] = {}
    known = list(g.inputs) + list(g.selectors)
    pairs = list(assignments.items()) if isinstance(assignments, dict) else list(assignments)
    given: dict[str, list[str]] = {}
    for key, value in pairs:
        given.setdefault(key, []).append(value)
    for key, values in given.items():
        if len(values) > 1:
            problems.append(Diagnostic("E130", f"'{key}' is given {len(values)} times: "
                                               + ", ".join(f"{key}={v[:40]}" for v in values), None,
                                       hints=[f"give each field once: {key}=<value>"]))
    assignments = {key: values[0] for key, values in given.items()}
    for key in assignments:
        if key not in known:
            problems.append(Diagnostic("E130", f"unknown field '{key}'", None,
                                       hints=did_you_mean(key, known) + [f"fields: {', '.join(known)}"]))
    for name in known:
        if name not in assignments:
            problems.append(Diagnostic("E130", f"missing value for '{name}'", None,
                                       hints=[f"give it as {name}=<value>: {_describe(checked, name)}"]))
            continue
        try:
            columns[name] = np.asarray([field_value(checked, name, assignments[name])])
        except ValueError as err:
            choices = _choices(checked, name)
            problems.append(Diagnostic("E130", f"{name}: {err}", None,
                                       hints=did_you_mean(assignments[name], choices) +
                                       [f"{name} is {_describe(checked, name)}"]))
    if problems:
        raise TangleError(problems)
    return columns


def _choices(checked: Checked, name: str) -> list[str]:
    g = checked.graph
    if name in g.selectors:
        return [v.text for v in g.selectors[name].values]
    t = g.inputs[name].type
    return [v.text for v in t.values] if isinstance(t, ast.CategoryType) else []


def _describe(checked: Checked, name: str) -> str:
    g = checked.graph
    if name in g.selectors:
        return "one of " + " | ".join(v.text for v in g.selectors[name].values)
    return g.inputs[name].type.describe()


def field_value(checked: Checked, name: str, text: str):
    """One typed value of a field or selector, validated against its declaration."""
    g = checked.graph
    from .examples import _convert

    if name in g.selectors:
        return _convert(text, g.selectors[name])
    t = g.inputs[name].type
    if isinstance(t, ast.VectorType):
        return _convert(text.replace(",", " "), t)
    return _convert(text, t)


def answers(checked: Checked, columns: dict[str, np.ndarray], outputs: dict[str, np.ndarray]) -> list[Answer]:
    """Each reached decoder's decoded answer for row 0, with confidence and the expected target."""
    g = checked.graph
    selection = {s: g.selectors[s].values[int(columns[s][0])].text for s in g.mux_selectors()}
    active = g.active_nodes(selection)
    try:
        expected_values = evaluate_targets(checked, columns)
    except TangleError:
        expected_values = {}
    result = []
    for d, target in g.decoders.items():
        if d not in outputs or d not in active:
            continue
        codec = g.modules[d].output
        value, conf = codecs.decode(codec, outputs[d][:1])
        expected = None
        if target in expected_values:
            ev = expected_values[target][0]
            expected = None if np.isnan(float(ev)) else _plain(ev)
        result.append(Answer(d, target, _plain(value[0]), None if conf is None else float(conf[0]), expected))
    return result


def _plain(v):
    v = np.asarray(v)
    if v.ndim:
        return [float(x) for x in v]
    if np.issubdtype(v.dtype, np.integer):
        return int(v)
    f = float(v)
    return int(f) if f.is_integer() else f


def route_for(checked: Checked, columns: dict[str, np.ndarray]):
    g = checked.graph
    selection = {s: g.selectors[s].values[int(columns[s][0])].text for s in g.mux_selectors()}
    return next(r for r in g.routes() if r.selection == selection)
