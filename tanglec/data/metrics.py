"""What `eval` reports, from raw model outputs a chunk of rows at a time (numpy only): the routes'
exact-match accuracy, per decoder a confusion matrix (categorical codecs) or MAE/RMSE (numeric
codecs), and the failing rows with where they came from."""
from __future__ import annotations

import numpy as np

from ..lang import ast
from ..lang.vocabulary import NUMERIC_CODECS
from ..spec.checks import Checked
from . import codecs
from .evaluate import RouteCounts, add_counts, report_from_counts, route_counts
from .rows import Examples
from .selection import route_mask
from .values import answer, category_names, plain


class Tally:
    """What `eval` reports, tallied over rows given a chunk at a time (a whole file never needs to be in
    memory; one chunk gives the figures of the rows at once): the route report (data.evaluate), per
    decoder its cases, exact answers and a confusion matrix (categorical codecs) or MAE/RMSE (numeric
    codecs), over the rows whose route reaches it and whose target is defined, and the first
    `failures` wrong answers in row order, at file:line when the rows come from a file (`source`)."""

    def __init__(self, checked: Checked, failures: int = 0, source: str | None = None):
        self.checked, self.limit, self.source = checked, failures, source
        self.routes: RouteCounts | None = None
        self.decoders: dict[str, dict] = {}
        self.failures: list[dict] = []

    def add(self, examples: Examples, outputs: dict[str, np.ndarray], first_row: int = 0) -> None:
        """Rows `first_row`... (`examples`, all of them evaluated) and the model's raw outputs for them."""
        self.routes = add_counts(self.routes, route_counts(self.checked, examples, outputs))
        g = self.checked.graph
        wrong: list[tuple[int, str, object, object]] = []
        for d, target_name in g.decoders.items():
            if d not in outputs:
                continue
            codec = g.modules[d].output
            rows = _decoded_rows(self.checked, examples, d)
            decoded = codecs.decode(codec, outputs[d][rows])[0]
            target = examples.targets[target_name][rows]
            ok = codecs.exact(codec, decoded, target, self.checked.tolerance(d))
            entry = self.decoders.setdefault(d, {"cases": 0, "exact": 0, "pairs": {}, "error": 0.0, "squared": 0.0,
                                                 "values": 0})
            entry["cases"] += int(len(rows))
            entry["exact"] += int(ok.sum())
            if codec.kind.text in NUMERIC_CODECS:
                error = np.abs(decoded.astype(np.float64) - target.astype(np.float64).reshape(decoded.shape))
                entry["error"] += float(error.sum())
                entry["squared"] += float((error ** 2).sum())
                entry["values"] += int(error.size)
            else:
                pairs, counts = np.unique(np.stack([target.astype(np.int64), decoded.astype(np.int64)], axis=1),
                                          axis=0, return_counts=True)
                for pair, count in zip(map(tuple, pairs.tolist()), counts.tolist()):
                    entry["pairs"][pair] = entry["pairs"].get(pair, 0) + count
            if len(self.failures) < self.limit:
                wrong += [(int(r), d, decoded[i], target[i]) for i, r in zip(np.flatnonzero(~ok), rows[~ok])]
        wrong.sort(key=lambda w: (w[0], list(g.decoders).index(w[1])))
        routes = g.routes()
        for row, d, value, expected in wrong[:self.limit - len(self.failures)]:
            line = None if examples.lines is None else int(examples.lines[row])
            route = next(r for r in routes if route_mask(g, examples.columns, r, np.array([row]))[0])
            names = category_names(self.checked, d)
            self.failures.append({"row": first_row + row, "where": f"{self.source}:{line}" if self.source and line
                                  else None, "route": route.name, "decoder": d, "value": answer(names, value),
                                  "expected": answer(names, expected), "inputs": self._inputs(examples, row)})

    def _inputs(self, examples: Examples, row: int) -> dict:
        """A wrong answer's example as a person recognises it: the one-value inputs the row carries (a number,
        a category's name, a text); vectors are left out (an image's 64 numbers say nothing at a glance)."""
        shown = {}
        for name, decl in self.checked.graph.inputs.items():
            carried = examples.present.get(name)
            if isinstance(decl.type, ast.VectorType) or (carried is not None and not carried[row]):
                continue
            value = examples.columns[name][row]
            shown[name] = decl.type.values[int(value)].text if isinstance(decl.type, ast.CategoryType) else plain(value)
        return shown

    def report(self) -> dict:
        """The route report with `decoders` and `failures` (as `pipeline.evaluate` returns it)."""
        report = report_from_counts(self.checked, self.routes or [(0, 0, {}) for _ in self.checked.graph.routes()])
        report["decoders"] = {d: self._decoder(d, entry) for d, entry in self.decoders.items()}
        report["failures"] = self.failures
        return report

    def _decoder(self, d: str, entry: dict) -> dict:
        g = self.checked.graph
        codec, cases = g.modules[d].output, entry["cases"]
        out = {"target": g.decoders[d], "codec": str(codec), "cases": cases, "exact": entry["exact"],
               "accuracy": entry["exact"] / cases if cases else None}
        if codec.kind.text in NUMERIC_CODECS:
            values = entry["values"]
            out.update(tolerance=self.checked.tolerance(d), mae=entry["error"] / values if values else None,
                       rmse=float(np.sqrt(entry["squared"] / values)) if values else None)
        else:
            out["confusion"] = confusion(entry["pairs"], category_names(self.checked, d))
        return out


def confusion(pairs: dict[tuple[int, int], int], names: list[str] | None = None) -> dict:
    """Counts of (expected, answered) pairs over the values that occur: `matrix[i][j]` rows expected
    `labels[i]` that were answered `labels[j]` (a category target's values by name, `names`)."""
    values = sorted({v for pair in pairs for v in pair})
    index = {v: i for i, v in enumerate(values)}
    matrix = [[0] * len(values) for _ in values]
    for (expected, answered), count in pairs.items():
        matrix[index[expected]][index[answered]] += count
    return {"labels": [answer(names, v) for v in values], "matrix": matrix}


def _decoded_rows(checked: Checked, examples: Examples, decoder: str) -> np.ndarray:
    """Rows whose route reaches `decoder` and whose target is defined."""
    g = checked.graph
    reached = np.zeros(examples.n, dtype=bool)
    for route in g.routes():
        if decoder in route.decoders:
            reached |= route_mask(g, examples.columns, route)
    return np.flatnonzero(reached & codecs.defined(examples.targets[g.decoders[decoder]]))
