"""Example rows as the arrays a model takes and learns from (numpy only: no TensorFlow here, so
streaming and checkpoint fingerprints can build them without importing it)."""
from __future__ import annotations

import numpy as np

from ..lang import ast
from ..spec.checks import Checked
from ..spec.graph import codec_width
from . import codecs, expr_numpy
from .needs import neutral_value
from .rows import Examples
from .selection import route_mask


def encode_inputs(checked: Checked, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Raw example columns -> the arrays the model's inputs take. A field left out of `columns` (a query
    whose route doesn't read it) is given its neutral value: the model takes every input, and a row's
    route runs only the modules that read the fields it carries."""
    g = checked.graph
    out = {}
    rows = len(next(iter(columns.values()))) if columns else 0
    for n, d in g.inputs.items():
        column = columns[n] if n in columns else np.asarray([neutral_value(d.type)] * rows)
        out[n] = column.astype(_input_dtype(d.type))
    for n in g.mux_selectors():
        out[n] = columns[n].astype(np.int32)
    for group in checked.composition.aligns:
        if group.chain is not None:
            steps = expr_numpy.fold_steps(g.targets[group.field].expr, columns, checked.expr_scope())
            out.update({name: np.nan_to_num(step).astype(np.int32) for name, step in zip(group.step_inputs, steps[1:])})
    return out


def _input_dtype(t: ast.FieldType) -> type:
    """A field's array type: text stays Python strings (the model hashes them, backend/ngrams.py)."""
    if isinstance(t, ast.TextType):
        return object
    return np.float32 if isinstance(t, (ast.FloatType, ast.VectorType)) else np.int32


def training_arrays(checked: Checked, examples: Examples, rows: np.ndarray):
    """(inputs, targets, sample weights) dicts for the given rows, keyed by spec names."""
    g = checked.graph
    x = encode_inputs(checked, {k: v[rows] for k, v in examples.columns.items()})
    y, w = {}, {}
    reach = _reach_mask(checked, examples, rows)
    for d, target in g.decoders.items():
        t, live = codecs.target_array(g.modules[d].output, examples.targets[target][rows])
        y[d], w[d] = t, live * reach[d]
    for a in checked.composition.aligns:
        width = len(a.modules) * codec_width(g.modules[a.modules[0]].output) * (2 * a.positions or 1)
        y[a.output_name] = np.zeros((len(rows), width), np.float32)
        w[a.output_name] = _carries_all(examples, a.reads, rows)
    return x, y, w


def _carries_all(examples: Examples, fields: list[str], rows: np.ndarray) -> np.ndarray:
    """1.0 for the rows that carry every one of `fields` (an alignment compares a row's encodings of
    them, so a row missing one has nothing to align); `Examples.present` lists which rows carry a
    field, and a field it does not list is carried by every row."""
    weight = np.ones(len(rows), np.float32)
    for field in set(fields):
        if field in examples.present:
            weight *= np.asarray(examples.present[field], bool)[rows]
    return weight


def _reach_mask(checked: Checked, examples: Examples, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Per decoder, 1.0 for the rows whose route reaches it."""
    g = checked.graph
    out = {d: np.zeros(len(rows), np.float32) for d in g.decoders}
    for route in g.routes():
        mask = route_mask(g, examples.columns, route, rows)
        for d in route.decoders:
            out[d][mask] = 1.0
    return out
