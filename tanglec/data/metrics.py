"""What `eval` reports beyond exact match, from raw model outputs (numpy only): per decoder a confusion
matrix (categorical codecs) or MAE/RMSE (numeric codecs), and the failing rows with where they came from."""
from __future__ import annotations

import numpy as np

from ..lang.vocabulary import NUMERIC_CODECS
from ..spec.checks import Checked
from . import codecs
from .rows import Examples
from .selection import route_mask
from .values import plain


def decoder_metrics(checked: Checked, examples: Examples, outputs: dict[str, np.ndarray]) -> dict[str, dict]:
    """Per decoder, over the rows whose route reaches it and whose target is defined: cases, exact
    accuracy (Checked.tolerance), and a confusion matrix or MAE/RMSE."""
    g = checked.graph
    report = {}
    for d, target_name in g.decoders.items():
        if d not in outputs:
            continue
        codec = g.modules[d].output
        rows = _decoded_rows(checked, examples, d)
        decoded = codecs.decode(codec, outputs[d][rows])[0]
        target = examples.targets[target_name][rows]
        ok = codecs.exact(codec, decoded, target, checked.tolerance(d))
        entry = {"target": target_name, "codec": str(codec), "cases": int(len(rows)),
                 "exact": int(ok.sum()), "accuracy": float(ok.mean()) if len(rows) else None}
        if codec.kind.text in NUMERIC_CODECS:
            error = np.abs(decoded.astype(np.float64) - target.astype(np.float64).reshape(decoded.shape))
            entry.update(tolerance=checked.tolerance(d),
                         mae=float(error.mean()) if error.size else None,
                         rmse=float(np.sqrt((error ** 2).mean())) if error.size else None)
        else:
            entry["confusion"] = confusion(target.astype(np.int64), decoded.astype(np.int64))
        report[d] = entry
    return report


def confusion(expected: np.ndarray, predicted: np.ndarray) -> dict:
    """Counts of (expected, predicted) pairs over the values that occur: `matrix[i][j]` rows expected
    `labels[i]` that were answered `labels[j]`."""
    labels = np.union1d(expected, predicted)
    index = {v: i for i, v in enumerate(labels.tolist())}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(matrix, ([index[v] for v in expected.tolist()], [index[v] for v in predicted.tolist()]), 1)
    return {"labels": labels.tolist(), "matrix": matrix.tolist()}


def wrong_answers(checked: Checked, examples: Examples, outputs: dict[str, np.ndarray], limit: int,
             source: str | None = None) -> list[dict]:
    """The first `limit` (row, decoder) answers outside their tolerance, in row order; `where` is
    file:line when the rows come from a file (`source`, with `examples.lines`)."""
    g = checked.graph
    wrong: list[tuple[int, str, object, object]] = []
    for d, target_name in g.decoders.items():
        if d not in outputs:
            continue
        codec = g.modules[d].output
        rows = _decoded_rows(checked, examples, d)
        decoded = codecs.decode(codec, outputs[d][rows])[0]
        target = examples.targets[target_name][rows]
        bad = ~codecs.exact(codec, decoded, target, checked.tolerance(d))
        wrong += [(int(r), d, decoded[i], target[i]) for i, r in zip(np.flatnonzero(bad), rows[bad])]
    wrong.sort(key=lambda w: (w[0], list(g.decoders).index(w[1])))
    routes = g.routes()
    out = []
    for row, d, value, expected in wrong[:limit]:
        line = None if examples.lines is None else int(examples.lines[row])
        route = next(r for r in routes if route_mask(g, examples.columns, r, np.array([row]))[0])
        out.append({"row": row, "where": f"{source}:{line}" if source and line else None, "route": route.name,
                    "decoder": d, "value": plain(value), "expected": plain(expected)})
    return out


def _decoded_rows(checked: Checked, examples: Examples, decoder: str) -> np.ndarray:
    """Rows whose route reaches `decoder` and whose target is defined."""
    g = checked.graph
    reached = np.zeros(examples.n, dtype=bool)
    for route in g.routes():
        if decoder in route.decoders:
            reached |= route_mask(g, examples.columns, route)
    target = examples.targets[g.decoders[decoder]]
    if target.ndim == 1:
        reached &= ~np.isnan(target.astype(np.float64))
    return np.flatnonzero(reached)
