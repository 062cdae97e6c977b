"""Example tables for a checked spec: enumerated, sampled, or read (and validated) from CSV/JSONL.

Columns hold raw values: ints, floats, vectors, and the *index* of a category or selector value.
Targets are evaluated with numpy (data.rows); a target undefined for a row is NaN and masks that row's loss.
"""
from __future__ import annotations

import itertools
import json
import math
import sys
from dataclasses import dataclass

import numpy as np

from ..lang import ast
from ..lang.diagnostics import Diagnostic
from .rows import SUMMARY_VALUES, DataError, Examples, evaluate_targets, field_sources, wanted_columns
from .selection import select_training_rows

MAX_ENUMERATION = 1_000_000


def field_domain(t: ast.FieldType) -> range | None:
    """Every value of a finite field, as a range (lazy: `int 0..9000000000000` costs no memory)."""
    if isinstance(t, ast.IntType):
        return range(t.lo, t.hi + 1)
    if isinstance(t, ast.CategoryType):
        return range(len(t.values))
    return None


def build_examples(checked, check_ranges: bool = True) -> Examples:
    """The example table; DataError for bad data, failing targets and (`check_ranges`) targets out of
    their decoder's range over every row (`check` sees only a bounded sample of a large domain)."""
    g, cfg = checked.graph, checked.data
    if cfg.in_run:
        raise DataError([Diagnostic("E140", "a trained run keeps only its evaluation rows, not the data file it "
                                            "was trained on", cfg.span or ast.Span(checked.spec.path, 1, 1, 1, 2),
                                    hints=["to train again, start from the spec: `tanglec explore SPEC` or "
                                           "`tanglec compile SPEC`"])])
    if cfg.source == "file":
        from .stream import should_stream, streamed_examples

        if should_stream(checked):  # a large file: read in chunks, bounded memory (tanglec/stream.py)
            return streamed_examples(checked)
        chunk = whole_file(checked)
        columns, data_targets, present = chunk.inputs, chunk.data_targets, chunk.present
    elif cfg.source == "sample":
        columns, data_targets, present = _sample(g, cfg.count, cfg.seed), {}, {}
    else:
        columns, data_targets, present = _enumerate(checked), {}, {}
    targets = evaluate_targets(checked, columns, data_targets)
    if check_ranges:
        from ..spec.check_targets import range_problems

        problems = range_problems(g, summarise(targets))
        if problems:
            raise DataError(problems)
    n = len(next(iter(columns.values()))) if columns else 0
    rows = np.arange(n)
    eval_rows, train_rows = rows, rows
    if cfg.eval_fraction > 0 and n > 1:
        split = group_split if cfg.group else stratified_split
        eval_rows, train_rows = split(checked, columns, n)
    train_rows = select_training_rows(checked, columns, train_rows)
    if len(train_rows) == 0:
        holdouts = [h.span for h in checked.spec.of(ast.HoldoutDecl)]
        span = cfg.span or (holdouts[0] if holdouts else ast.Span(checked.spec.path, 1, 1, 1, 2))
        raise DataError([Diagnostic("E163", "no training examples are left after held-out routes and data "
                                            "filters", span)])
    return Examples(columns, targets, eval_rows, train_rows, present=present)


def stratified_split(checked, columns: dict[str, np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """(evaluation rows, training rows): each route (combination of its selectors' values) gives its
    own share of `data ... eval FRACTION`, at least one row where it has two or more, so a route's
    accuracy is never measured on a random handful."""
    selectors = checked.graph.mux_selectors()
    rng = np.random.default_rng(checked.data.seed)
    if selectors:
        _, route_of = np.unique(np.stack([columns[s] for s in selectors], axis=1), axis=0, return_inverse=True)
        route_of = route_of.reshape(-1)
    else:
        route_of = np.zeros(n, dtype=np.int64)
    eval_parts = []
    for route in np.unique(route_of):
        members = rng.permutation(np.flatnonzero(route_of == route))
        if len(members) >= 2:
            eval_parts.append(members[:min(len(members) - 1, max(1, round(len(members) * checked.data.eval_fraction)))])
    eval_rows = np.sort(np.concatenate(eval_parts)) if eval_parts else np.arange(0)
    if not len(eval_rows):  # every route has a single row: evaluate on all of them, as with no split
        return np.arange(n), np.arange(n)
    return eval_rows, np.setdiff1d(np.arange(n), eval_rows)


def group_split(checked, columns: dict[str, np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """(evaluation rows, training rows) for `eval FRACTION group FIELD`: the fraction of the field's
    distinct values (at least one, never all) is drawn, and every row holding one of them evaluates, so
    nothing evaluated was trained on under another route."""
    values = columns[checked.data.group]
    by_row = {} if values.dtype == object else {"axis": 0}  # a text field's strings: numpy has no axis for them
    _, group_of = np.unique(values, return_inverse=True, **by_row)
    group_of = group_of.reshape(-1)
    groups = int(group_of.max()) + 1
    if groups < 2:
        return np.arange(n), np.arange(n)
    count = min(groups - 1, max(1, round(groups * checked.data.eval_fraction)))
    held = np.random.default_rng(checked.data.seed).permutation(groups)[:count]
    is_eval = np.isin(group_of, held)
    return np.flatnonzero(is_eval), np.flatnonzero(~is_eval)


def check_rows(checked, rows: int, cells: int) -> dict[str, np.ndarray]:
    """Every target over at most `rows` rows and `cells` values (inputs and targets) in all: the whole
    enumerated domain if it is that small, else rows drawn from the domain or the sample's
    distribution. What `check` evaluates instead of the whole table."""
    g = checked.graph
    width = sum(d.type.size if isinstance(d.type, ast.VectorType) else 1 for d in g.inputs.values()) + \
        len(g.selectors) + len(g.targets)
    count = max(1, min(rows, cells // width, checked.data.count or rows))
    if checked.data.source == "enumerate" and math.prod(len(field_domain(d.type)) for d in g.inputs.values()) * \
            math.prod(len(d.values) for d in g.selectors.values()) <= count:
        return evaluate_targets(checked, _enumerate(checked))
    columns = _sample(g, count, checked.data.seed)
    if checked.data.source == "enumerate":  # every value occurs: try the ones expressions trip on first
        for name, decl in g.inputs.items():
            if isinstance(decl.type, ast.IntType):
                edges = [v for v in (0, decl.type.lo, decl.type.hi, 1, -1) if decl.type.lo <= v <= decl.type.hi]
                columns[name][:len(edges)] = edges[:count]
    return evaluate_targets(checked, columns)


def summarise(targets: dict[str, np.ndarray]) -> dict[str, list]:
    """Per 1-D target: its distinct values when they are few (a table decoder needs each one), else [min, max],
    and a non-integer value if there is one (what E112 needs)."""
    out = {}
    for name, values in targets.items():
        values = np.asarray(values, dtype=float)
        if values.ndim != 1:
            continue
        values = values[~np.isnan(values)]
        if not len(values):
            out[name] = []
            continue
        distinct = np.unique(values)
        if len(distinct) <= SUMMARY_VALUES:
            out[name] = [v.item() for v in distinct]
            continue
        fractional = values[values != np.floor(values)]
        out[name] = [values.min().item(), values.max().item()] + [v.item() for v in fractional[:1]]
    return out


def _enumerate(checked) -> dict[str, np.ndarray]:
    g = checked.graph
    names, domains = [], []
    for name, decl in g.inputs.items():
        domain = field_domain(decl.type)
        if domain is None:
            raise DataError([Diagnostic("E125", f"can't enumerate '{name}' ({decl.type.describe()})", decl.type.span,
                                        hints=["use `data sample 1000` or `data file \"rows.csv\"`"])])
        names.append(name)
        domains.append(domain)
    for name, decl in g.selectors.items():
        names.append(name)
        domains.append(list(range(len(decl.values))))
    size = math.prod(len(d) for d in domains)
    if size > MAX_ENUMERATION:
        span = checked.data.span or ast.Span(checked.spec.path, 1, 1, 1, 2)
        raise DataError([Diagnostic("E125", f"enumerating every combination gives {size:,} examples "
                                            f"(limit {MAX_ENUMERATION:,})", span,
                                    hints=["use `data sample N` instead"])])
    grid = np.array(list(itertools.product(*domains)), dtype=np.int64).reshape(size, len(domains))
    return {name: grid[:, i].copy() for i, name in enumerate(names)}


def _sample(g, count: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    columns = {}
    for name, decl in g.inputs.items():
        t = decl.type
        if isinstance(t, ast.IntType):
            columns[name] = rng.integers(t.lo, t.hi + 1, size=count, dtype=np.int64)
        elif isinstance(t, ast.FloatType):
            lo, hi = (0.0, 1.0) if t.lo is None else (t.lo, t.hi)
            columns[name] = rng.uniform(lo, hi, size=count)
        elif isinstance(t, ast.CategoryType):
            columns[name] = rng.integers(0, len(t.values), size=count, dtype=np.int64)
        else:
            columns[name] = rng.standard_normal((count, t.size)).astype(np.float32)
    for name, decl in g.selectors.items():
        columns[name] = rng.integers(0, len(decl.values), size=count, dtype=np.int64)
    return columns


# ---- files ---------------------------------------------------------------------------

def rows_jsonl(checked, examples: Examples) -> str:
    """`examples` as JSONL that `read_file` reads back to the same columns (a category or selector by
    its name, a vector as a list or, read from several columns, a number under each; a field a row does
    not carry left out): how a run keeps its evaluation rows (tanglec/run.py)."""
    g = checked.graph
    wanted = wanted_columns(checked)
    sources = field_sources(checked, wanted)
    data = {**examples.columns, **examples.targets}
    columns = {}
    for name, t in wanted.items():
        values = data[name].tolist()
        if t == "selector" or isinstance(t, ast.CategoryType):
            names = [v.text for v in (g.selectors[name] if t == "selector" else t).values]
            values = [names[int(v)] if v == v else None for v in values]  # NaN: a target left out (not written)
        elif isinstance(t, ast.IntType):
            values = [int(v) if v == v else None for v in values]
        columns[name] = values
    present = {name: examples.present[name].tolist() for name in columns if name in examples.present}
    lines = []
    for index, row in enumerate(zip(*columns.values())):
        cells = {}
        for name, value in zip(columns, row):
            if name in present and not present[name][index]:
                continue
            if len(sources[name]) > 1:
                cells.update(zip(sources[name], value))
            else:
                cells[sources[name][0]] = value
        lines.append(json.dumps(cells) + "\n")
    return "".join(lines)


def file_examples(checked) -> Examples:
    """Every row of the spec's data file as evaluation rows, each with its line in the file (what
    `eval --data` and a run's kept rows are scored on); DataError at file:row:column for bad rows."""
    chunk = whole_file(checked)
    targets = evaluate_targets(checked, chunk.inputs, chunk.data_targets)
    rows = np.arange(chunk.n)
    return Examples(chunk.inputs, targets, rows, np.arange(0), np.asarray(chunk.lines, dtype=np.int64),
                    chunk.present)


@dataclass
class FileRows:
    """Every row of a data file as evaluation rows, read a chunk at a time (`eval --data`: memory bounded
    whatever the file's size); `route_rows` are the run's training rows per route (annotate_routes)."""

    checked: object
    route_rows: list[int] | None = None
    chunk_rows: int | None = None

    def chunks(self):
        """(examples, index of its first row in the file) per chunk, each row with its line in the file;
        DataError at file:row:column for bad rows (the chunks before them have been given)."""
        from .reader import Reader

        for chunk in Reader(self.checked, chunk_rows=self.chunk_rows).chunks():
            targets = evaluate_targets(self.checked, chunk.inputs, chunk.data_targets)
            rows = np.arange(chunk.n)
            yield Examples(chunk.inputs, targets, rows, np.arange(0), np.asarray(chunk.lines, dtype=np.int64),
                           chunk.present), chunk.start


def read_file(checked) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(inputs, data targets) of the whole file in memory (`whole_file` has each field's presence too)."""
    chunk = whole_file(checked)
    return chunk.inputs, chunk.data_targets


def whole_file(checked):
    """The whole file in memory: the chunked reader (tanglec.data.stream) in a single chunk, so a file
    gets the same problems, positions and messages whichever way it is read."""
    from .reader import Reader

    (chunk,) = Reader(checked, chunk_rows=sys.maxsize).chunks()
    return chunk
