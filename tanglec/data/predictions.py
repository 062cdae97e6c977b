"""`tanglec predict`: a file's rows with every decoder's answer, a chunk at a time (numpy only).

A row's columns are the spec's inputs and selectors as read, under the names of the file's columns
they came from (empty where the row doesn't carry a field its route doesn't read), then for each decoder its answer (a
column named after the decoder) and `<decoder>_confidence`; both are empty where the row's route
does not reach the decoder, or the codec has no confidence.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..lang import ast
from . import codecs
from .reader import Chunk, Reader
from .rows import field_sources, wanted_columns
from .selection import route_mask
from .values import answer, category_names, text


def input_columns(checked) -> dict:
    """The columns a prediction file must hold: the spec's inputs and selectors (no targets)."""
    return {name: t for name, t in wanted_columns(checked).items() if name not in checked.graph.targets}


def reader(checked, path: Path, skip_bad: bool, chunk_rows: int | None = None) -> Reader:
    """A reader of `path`'s inputs: stops at the first bad row unless `skip_bad` (then counts them)."""
    return Reader(checked, chunk_rows, strict=not skip_bad, path=path, wanted=input_columns(checked),
                  skip_bad=skip_bad, with_targets=False)


def header(checked) -> list[str]:
    return _echoed(checked) + [c for d in checked.graph.decoders for c in (d, f"{d}_confidence")]


def _echoed(checked) -> list[str]:
    """The input columns written back, once each (two fields may read one column)."""
    sources = field_sources(checked, input_columns(checked))
    return list(dict.fromkeys(c for columns in sources.values() for c in columns))


def rows(checked, chunk: Chunk, outputs: dict[str, np.ndarray]) -> list[list[str]]:
    """The chunk's rows as output cells (text), from the model's raw outputs for them."""
    g = checked.graph
    wanted = input_columns(checked)
    sources = field_sources(checked, wanted)
    echoed: dict[str, list[str]] = {}
    for name, t in wanted.items():
        values = chunk.inputs[name]
        spread = sources[name] if len(sources[name]) > 1 else None
        for i, column in enumerate(spread or sources[name]):
            cells = _cells(g, name, t, values[:, i] if spread else values)
            carried = chunk.present.get(name)
            echoed.setdefault(column, cells if carried is None else [c if here else "" for c, here in zip(cells, carried)])
    columns = list(echoed.values())
    for decoder in g.decoders:
        value, confidence = codecs.decode(g.modules[decoder].output, outputs[decoder])
        reached = np.zeros(chunk.n, bool)
        for route in g.routes():
            if decoder in route.decoders:
                reached |= route_mask(g, chunk.inputs, route)
        names = category_names(checked, decoder)
        answers = [text(v) if names is None else str(answer(names, v)) for v in value]
        confidences = [""] * chunk.n if confidence is None else [f"{c:.6f}" for c in confidence]
        columns.append([a if r else "" for a, r in zip(answers, reached)])
        columns.append([c if r else "" for c, r in zip(confidences, reached)])
    return [list(row) for row in zip(*columns)]


def _cells(g, name: str, t, values: np.ndarray) -> list[str]:
    """A column's typed values as text, as a data file holds them (category and selector names)."""
    if t == "selector":
        names = [v.text for v in g.selectors[name].values]
        return [names[i] for i in values]
    if isinstance(t, ast.CategoryType):
        names = [v.text for v in t.values]
        return [names[i] for i in values]
    return [text(v) for v in values]
