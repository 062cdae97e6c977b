"""Answers to single queries, from raw model outputs (numpy only)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..lang import ast
from . import codecs
from ..spec.checks import Checked
from .needs import FieldNeeds, target_fields
from .rows import convert_value, evaluate_targets
from .values import answer, category_names, plain
from ..lang.diagnostics import Diagnostic, TangleError, did_you_mean


@dataclass
class Answer:
    decoder: str
    target: str
    value: object
    confidence: float | None
    expected: object | None
    correct: bool | None = None  # within the decoder's tolerance (Checked.tolerance), None with no expected value

    def to_json(self) -> dict:
        return {"decoder": self.decoder, "target": self.target, "value": self.value,
                "confidence": self.confidence, "expected": self.expected, "correct": self.correct}


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
    optional = _not_read(checked, assignments)
    for name in known:
        if name not in assignments and name in optional:
            continue
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


def _not_read(checked: Checked, assignments: dict[str, str]) -> set[str]:
    """Input fields a query may leave out: those its route doesn't read (none when a selector is
    missing or bad: the route is unknown)."""
    needs = FieldNeeds(checked, with_targets=False)
    codes = {}
    for selector in needs.selectors:
        try:
            codes[selector] = convert_value(assignments.get(selector, ""), checked.graph.selectors[selector])
        except ValueError:
            return set()
    return set(needs.optional) - needs.needed(codes)


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
    t = g.inputs[name].type
    if isinstance(t, ast.VectorType):
        example = " ".join(["0"] * min(t.size, 4)) + (" ..." if t.size > 4 else "")
        return f'{t.describe()}, {t.size} numbers separated by spaces or commas: {name}="{example}"'
    if isinstance(t, ast.TextType):
        return f'text, any words (quote them if they hold spaces): {name}="seventy three"'
    return t.describe()


def field_value(checked: Checked, name: str, text: str):
    """One typed value of a field or selector, validated against its declaration."""
    g = checked.graph
    if name in g.selectors:
        return convert_value(text, g.selectors[name])
    t = g.inputs[name].type
    if isinstance(t, ast.VectorType):
        return convert_value(text.replace(",", " "), t)
    return convert_value(text, t)


def answers(checked: Checked, columns: dict[str, np.ndarray], outputs: dict[str, np.ndarray]) -> list[Answer]:
    """Each reached decoder's decoded answer for row 0, with confidence and the expected target."""
    g = checked.graph
    selection = {s: g.selectors[s].values[int(columns[s][0])].text for s in g.mux_selectors()}
    active = g.active_nodes(selection)
    try:  # no expected values when the query leaves out a field the targets are computed from
        expected_values = evaluate_targets(checked, columns) if target_fields(checked) <= set(columns) else {}
    except TangleError:
        expected_values = {}
    result = []
    for d, target in g.decoders.items():
        if d not in outputs or d not in active:
            continue
        codec, names = g.modules[d].output, category_names(checked, d)
        value, conf = codecs.decode(codec, outputs[d][:1])
        expected = correct = None
        if target in expected_values:
            ev = expected_values[target][:1]
            if not np.isnan(ev.astype(np.float64)).any():
                expected = answer(names, ev[0])
                correct = bool(codecs.exact(codec, value[:1], ev, checked.tolerance(d))[0])
        result.append(Answer(d, target, answer(names, value[0]), None if conf is None else float(plain(conf[0])),
                             expected, correct))
    return result


def route_for(checked: Checked, columns: dict[str, np.ndarray]):
    g = checked.graph
    selection = {s: g.selectors[s].values[int(columns[s][0])].text for s in g.mux_selectors()}
    return next(r for r in g.routes() if r.selection == selection)
