"""Data files read in chunks: a CSV/JSONL file larger than memory trains with bounded memory.

`data.build_examples` hands a file here when it is streamed: `data file "rows.csv" stream always`, or
`stream auto` (the default) and the file is larger than `STREAM_BYTES` (50 MB;
`TANGLEC_STREAM_BYTES` overrides). Nothing here imports TensorFlow (backend.datasets makes the
tf.data pipeline), so `tanglec check` stays TF-free.

One pass over the file (`scan`) validates every row with `data.reader.Reader`, which `data.read_file`
also uses (E119 at file:row:column, in file order, the first `MAX_REPORTED` and a count of the rest),
evaluates the targets chunk by chunk (their range for E112), counts the training
rows of every selector combination, keeps a bounded evaluation sample and hashes the file (the
checkpoint fingerprint). Memory: one chunk of `reader.CHUNK_ROWS` rows plus the sample, whatever the size
of the file.

Rows are split without a permutation of all rows (which needs memory proportional to the file):

* evaluation rows: stratified (`Split`) by the class of the first decoded target that is a class
  (`class_target`), else by route: the rows of each stratum, in file order, evaluate at the rate `eval
  FRACTION` from a seeded phase, its second row always, so a class of 5 rows in 10,000 still has one in
  validation (all rows evaluate when the fraction is 0, or when no row falls in it in a tiny file);
  training rows: the others, less held-out routes and `only` filters, exactly as in memory. A row's side
  depends on the rows before it, never on the chunk size;
* the evaluation sample: each stratum's first evaluation row, then the evaluation rows with the
  smallest seeded hashes of their row numbers (splitmix64 of `data seed` and the row index), at most
  `EVAL_SAMPLE` in all; progress, `until exact` and the final report are computed on it;
* few-shot settings (`limit`, `per_route`) pick the training rows with the smallest hashes (a second
  salt), per route and then overall, in a second pass; those few rows then train from memory.

So the split is stratified (as in memory, where it is by route), not the same rows.

Training (`backend.datasets.stream_dataset`) reads the file again, chunk by chunk, in a Python generator behind
`tf.data.Dataset.from_generator`: each chunk is encoded with `features.training_arrays` (the same
targets and per-decoder sample weights as in memory), its rows permuted (seeded by epoch and chunk),
then `unbatch -> shuffle -> batch`. Deterministic for a seed, so a checkpoint resumes by
skipping batches as with in-memory data.
"""
from __future__ import annotations

import os
import types
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..lang import ast
from ..lang.vocabulary import NUMERIC_CODECS
from .features import training_arrays
from .selection import route_mask, select_training_rows
from ..lang.diagnostics import Diagnostic
from .reader import Chunk, Reader
from .rows import SUMMARY_VALUES, DataError, Examples, evaluate_targets

STREAM_BYTES = 50 * 2**20  # `stream auto` streams files larger than this
EVAL_SAMPLE = 10_000  # evaluation rows kept in memory (progress, until exact, the report)
_SPLIT_SALT, _FEWSHOT_SALT, _STRATUM_SALT, _PLACE_SALT = 0, 0x5F3759DF, 0x2545F491, 0x1B873593
SPLIT_BLOCK = 16  # a stratum's rows per block of the streamed split (Split), a power of two


def stream_threshold() -> int:
    raw = os.environ.get("TANGLEC_STREAM_BYTES")
    if raw:
        try:
            return max(0, int(raw))
        except ValueError:
            pass
    return STREAM_BYTES


def should_stream(checked) -> bool:
    """Whether the spec's data file is read in chunks (`stream always`, or `auto` and a large file)."""
    cfg = checked.data
    if cfg.source != "file" or cfg.path is None:
        return False
    if cfg.stream in ("always", "never"):
        return cfg.stream == "always"
    if cfg.group:  # a split by group needs every row's group at once: the file is read whole
        return False
    try:
        return Path(cfg.path).stat().st_size > stream_threshold()
    except OSError:
        return False  # the in-memory reader reports it


# ---- sampling ------------------------------------------------------------------------------------

def uniform(seed: int, rows: np.ndarray, salt: int = _SPLIT_SALT) -> np.ndarray:
    """A uniform number in [0, 1) per row index: splitmix64 of (seed, salt, row), vectorised."""
    x = rows.astype(np.uint64) + np.uint64(((int(seed) << 32) ^ salt) & 0xFFFFFFFFFFFFFFFF)
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)


# ---- one pass: validate, summarise, sample ------------------------------------------------------

class BottomK:
    """The k rows with the smallest keys seen so far (a uniform sample when the keys are uniform)."""

    def __init__(self, k: int):
        self.k = k
        self.keys = np.zeros(0)
        self.rows = np.zeros(0, np.int64)
        self.tables: tuple[dict[str, np.ndarray], ...] | None = None  # columns, targets, presence

    def add(self, keys, rows, columns, targets, mask=None, present=None) -> None:
        tables = (columns, targets, present or {})
        if mask is not None:
            keys, rows = keys[mask], rows[mask]
            tables = tuple({k: v[mask] for k, v in table.items()} for table in tables)
        if self.k <= 0 or not len(keys):
            return
        if self.tables is None:
            self.tables = tuple({k: v[:0] for k, v in table.items()} for table in tables)
        all_keys = np.concatenate([self.keys, keys])
        all_rows = np.concatenate([self.rows, rows])
        tables = tuple({k: np.concatenate([mine[k], v]) for k, v in table.items()}
                       for mine, table in zip(self.tables, tables))
        if len(all_keys) > self.k:
            keep = np.argpartition(all_keys, self.k - 1)[:self.k]
            all_keys, all_rows = all_keys[keep], all_rows[keep]
            tables = tuple({k: v[keep] for k, v in table.items()} for table in tables)
        self.keys, self.rows, self.tables = all_keys, all_rows, tables

    def sorted(self):
        """(rows, columns, targets, keys, presence) in file order."""
        order = np.argsort(self.rows, kind="stable")
        if self.tables is None:
            return self.rows, {}, {}, self.keys, {}
        columns, targets, present = ({k: v[order] for k, v in table.items()} for table in self.tables)
        return self.rows[order], columns, targets, self.keys[order], present


@dataclass
class Scan:
    """What one pass over the file learned (depends on the spec and the data settings, not on
    held-out routes or filters, which are applied to `combos`)."""

    path: str
    rows: int
    digest: str
    eval_all: bool  # no row fell in the evaluation fraction (or it is 0): every row evaluates and trains
    sample_rows: np.ndarray  # the evaluation sample, in file order
    sample_columns: dict[str, np.ndarray]
    sample_targets: dict[str, np.ndarray]
    sample_present: dict[str, np.ndarray]  # as Examples.present
    combos: dict[tuple, int]  # training rows (before held-out routes and filters) per selector combination
    combos_all: dict[tuple, int]  # every row per selector combination
    target_summary: dict[str, list] = field(default_factory=dict)  # per 1-D target: as examples.summarise


MAX_CLASSES = 4096  # a target with more possible values than this is not split by class


def class_target(checked) -> str | None:
    """The target the split is stratified by: the first decoded one that is a class (decoded by a
    bits/gray/onehot/table codec, or declared a category), if it has at most `MAX_CLASSES` values."""
    g = checked.graph
    for decoder, target in g.decoders.items():
        codec, declared = g.modules[decoder].output, g.targets[target].type
        if isinstance(declared, ast.CategoryType):
            return target
        if codec.family in NUMERIC_CODECS:
            continue
        values = len(codec.table.valid_entries()) if codec.table is not None else \
            codec.size if codec.family == "onehot" else 2 ** min(codec.size, 62)
        if values <= MAX_CLASSES:
            return target
    return None


class Split:
    """Which rows of a streamed file evaluate, stratified by stratum: the row's class (its value of
    `class_target`) when the spec decodes a class, else its route (its multiplexer selectors' values).

    A stratum's rows are counted in file order in blocks of `SPLIT_BLOCK`; block b gives
    floor((b + 1)·B·f + u) - floor(b·B·f + u) of its B rows (f the `eval` fraction, u a phase drawn per
    stratum from the data seed), so every complete block gives its exact share, and the rows it gives are
    at places drawn per block from the seed: a file whose rows repeat a pattern (two languages taking turns,
    rows sorted by a field) is not sampled in step with it, as taking every 1/f-th row would. The first
    block gives its 2nd row always and its 1st never (its share is at least one, u >= 1 - 2f, and less than
    B), so a stratum of two rows or more gives at least one and keeps one. A row's side depends on its place in its stratum only, never on how the
    file is cut into chunks: give `is_eval` every chunk of a pass over the file, in order, to one Split."""

    def __init__(self, checked):
        g = checked.graph
        self.fraction, self.seed = checked.data.eval_fraction, checked.data.seed
        self.target = class_target(checked)
        self.selectors = g.mux_selectors()
        self.seen: dict[tuple, int] = {}  # stratum -> its rows in the chunks before

    def strata(self, inputs: dict[str, np.ndarray], targets: dict[str, np.ndarray], n: int) -> np.ndarray:
        """[n, k] int64: each row's stratum (a class undefined for a row is a class of its own)."""
        if self.target is not None:
            values = targets[self.target].astype(np.float64)
            return np.where(np.isnan(values), -2**62, np.nan_to_num(values)).astype(np.int64).reshape(n, 1)
        keys = [inputs[s].astype(np.int64) for s in self.selectors]
        return np.stack(keys, axis=1) if keys else np.zeros((n, 0), np.int64)

    def is_eval(self, inputs: dict[str, np.ndarray], targets: dict[str, np.ndarray], n: int) -> np.ndarray:
        """The next `n` rows of the file (a chunk's inputs and targets): which evaluate."""
        return self.sides(inputs, targets, n)[0]

    def sides(self, inputs: dict[str, np.ndarray], targets: dict[str, np.ndarray],
              n: int) -> tuple[np.ndarray, np.ndarray]:
        """The next `n` rows: which evaluate, and which are their stratum's first evaluation row."""
        if self.fraction <= 0 or n == 0:
            return np.zeros(n, bool), np.zeros(n, bool)
        strata, inverse, counts = np.unique(self.strata(inputs, targets, n), axis=0, return_inverse=True,
                                            return_counts=True)
        inverse = inverse.reshape(-1)
        keys = list(map(tuple, strata.tolist()))
        before = np.array([self.seen.get(k, 0) for k in keys], np.int64)
        for key, count in zip(keys, counts.tolist()):
            self.seen[key] = self.seen.get(key, 0) + count
        order = np.argsort(inverse, kind="stable")
        rank = np.empty(n, np.int64)
        rank[order] = np.arange(n) - np.repeat(np.cumsum(counts) - counts, counts)
        index = before[inverse] + rank
        f, size = self.fraction, SPLIT_BLOCK
        low = max(0.0, 1 - 2 * f)
        mixed = _mix(strata)
        phase = low + (1 - f - low) * (0.001 + 0.998 * uniform(self.seed, mixed, _STRATUM_SALT))  # off the edges
        u = phase[inverse]
        block, place = np.divmod(index, size)
        start = (block * size).astype(np.float64)
        quota = np.floor((start + size) * f + u) - np.floor(start * f + u)
        # the block's places in an order drawn per block (an odd multiplier and an offset: a bijection
        # mod the power of two `size`); its first `quota` places evaluate
        with np.errstate(over="ignore"):
            drawn = uniform(self.seed, (mixed[inverse] ^ block.astype(np.uint64)) * np.uint64(0x100000001B3),
                            _PLACE_SALT)
        draw = (drawn * size * size).astype(np.int64)
        step, offset = 2 * (draw // size) + 1, draw % size
        turn = (place * step + offset) % size
        # the first block: its 2nd row first and its 1st row last, the others in their drawn order
        turn_first, turn_second = offset, (step + offset) % size
        opening = np.where(place == 1, 0, np.where(place == 0, size - 1,
                                                   1 + turn - (turn_first < turn) - (turn_second < turn)))
        return np.where(block == 0, opening, turn) < quota, index == 1


def _mix(strata: np.ndarray) -> np.ndarray:
    """A 64-bit number per stratum (a row of `strata`), from its values only."""
    mixed = np.zeros(len(strata), np.uint64)
    with np.errstate(over="ignore"):
        for column in strata.T:
            mixed = (mixed ^ column.astype(np.uint64)) * np.uint64(0x100000001B3)
    return mixed


def _combo_counts(selectors: list[str], columns: dict[str, np.ndarray], mask: np.ndarray, into: dict) -> None:
    if not selectors:
        into[()] = into.get((), 0) + int(mask.sum())
        return
    stacked = np.stack([columns[s][mask] for s in selectors], axis=1)
    if not len(stacked):
        return
    combos, counts = np.unique(stacked, axis=0, return_counts=True)
    for combo, count in zip(map(tuple, combos.tolist()), counts.tolist()):
        into[combo] = into.get(combo, 0) + count


def _summarise(summary: dict[str, list], targets: dict[str, np.ndarray]) -> None:
    for name, arr in targets.items():
        if arr.ndim != 1:
            continue
        values = arr.astype(np.float64)
        values = values[~np.isnan(values)]
        entry = summary.setdefault(name, [])
        if not len(values):
            continue
        lo, hi = float(values.min()), float(values.max())
        if entry:
            entry[0], entry[1] = min(entry[0], lo), max(entry[1], hi)
        else:
            entry += [lo, hi]
        if len(entry) == 2:
            frac = values[values != np.floor(values)]
            if len(frac):
                entry.append(float(frac[0]))


def _distinct(seen: dict[str, set | None], targets: dict[str, np.ndarray]) -> None:
    """Each 1-D target's distinct values while they are few (None once they are not): a table decoder's
    check needs every value, as examples.summarise keeps them."""
    for name, arr in targets.items():
        if arr.ndim != 1 or seen.get(name, set()) is None:
            continue
        values = arr.astype(np.float64)
        found = seen.setdefault(name, set()) | set(np.unique(values[~np.isnan(values)]).tolist())
        seen[name] = found if len(found) <= SUMMARY_VALUES else None


def scan(checked, sample: int | None = None) -> Scan:
    """One pass over the data file: the evaluation sample, route counts and target summary."""
    sample = EVAL_SAMPLE if sample is None else sample
    cfg, g = checked.data, checked.graph
    selectors = list(g.selectors)
    reader = Reader(checked, digest=True)
    split = Split(checked)
    evaluated = BottomK(sample)  # each stratum's first evaluation row, then those with the smallest hashes
    every = BottomK(sample) if cfg.eval_fraction > 0 else None  # a uniform sample of all rows, until one evaluates
    combos: dict[tuple, int] = {}
    combos_all: dict[tuple, int] = {}
    summary: dict[str, list] = {}
    distinct: dict[str, set | None] = {}
    for chunk in reader.chunks():
        targets = evaluate_targets(checked, chunk.inputs, chunk.data_targets)
        keys = uniform(cfg.seed, chunk.rows)
        is_eval, opens = split.sides(chunk.inputs, targets, chunk.n)
        if cfg.eval_fraction <= 0:
            is_eval = np.ones(chunk.n, bool)
        evaluated.add(np.where(opens, -1.0, keys), chunk.rows, chunk.inputs, targets, is_eval, chunk.present)
        if is_eval.any():
            every = None  # a row evaluates: the split holds
        if every is not None:
            every.add(keys, chunk.rows, chunk.inputs, targets, present=chunk.present)
        _combo_counts(selectors, chunk.inputs, np.ones(chunk.n, dtype=bool), combos_all)
        _combo_counts(selectors, chunk.inputs, ~is_eval, combos)
        _summarise(summary, targets)
        _distinct(distinct, targets)
    summary.update({name: sorted(values) for name, values in distinct.items() if values is not None})
    eval_all = cfg.eval_fraction <= 0 or every is not None  # no row fell in the evaluation fraction (a tiny
    # file): every row evaluates and trains
    rows, columns, targets, _, present = (every if every is not None else evaluated).sorted()
    return Scan(str(checked.data.path), reader.rows, reader.hash.hexdigest(), eval_all, rows, columns, targets,
                present, dict(combos_all) if eval_all else combos, combos_all, summary)


# ---- examples -------------------------------------------------------------------------------------

@dataclass
class StreamedExamples(Examples):
    """Examples of a streamed file: `columns`/`targets` hold the evaluation sample only (eval_index
    covers it); training reads the file through `stream` (None: few-shot rows, held in memory, are
    `train_index`). `route_rows`: training rows per route (graph.routes() order) in the whole file."""

    stream: "Stream | None" = None
    route_rows: list[int] | None = None
    target_summary: dict[str, list] | None = None
    file_rows: int = 0


def _without_fewshot(checked):
    """`checked` as select_training_rows sees it, with held-out routes and `only` filters but no
    few-shot limits (those are applied to the whole file, not per chunk)."""
    return types.SimpleNamespace(composition=checked.composition, graph=checked.graph,
                                 data=replace(checked.data, limit=None, per_route=None))


def _route_counts(checked, combos: dict[tuple, int]) -> tuple[list[int], int]:
    """(training rows per route, training rows in all) after held-out routes and `only` filters,
    from the counts per selector combination."""
    g = checked.graph
    selectors = list(g.selectors)
    items = list(combos.items())
    if not items:
        return [0 for _ in g.routes()], 0
    columns = {s: np.array([c[i] for c, _ in items], dtype=np.int64) for i, s in enumerate(selectors)}
    weights = np.array([n for _, n in items], dtype=np.int64)
    kept = select_training_rows(_without_fewshot(checked), columns, np.arange(len(items)))
    live = np.zeros(len(items), dtype=bool)
    live[kept] = True
    out = []
    for route in g.routes():  # rows given: with no selectors, `columns` can't tell how many there are
        mask = live & route_mask(g, columns, route, np.arange(len(items)))
        out.append(int(weights[mask].sum()))
    return out, int(weights[live].sum())


def _training_rows(checked, chunk: Chunk, targets: dict[str, np.ndarray], split: Split | None) -> np.ndarray:
    """Chunk-local indices of the rows that train (not evaluation rows, by `split`, which has seen the
    chunks before this one; None: every row trains), held-out routes and `only` filters applied as in
    memory."""
    local = np.arange(chunk.n)
    if split is not None:
        local = local[~split.is_eval(chunk.inputs, targets, chunk.n)]
    return select_training_rows(_without_fewshot(checked), chunk.inputs, local)


def streamed_examples(checked) -> StreamedExamples:
    result = scan(checked)
    routes, total = _route_counts(checked, result.combos)
    cfg = checked.data
    if total == 0:
        raise _no_training_rows(checked)
    n = len(result.sample_rows)
    if cfg.limit or cfg.per_route:
        return _fewshot_examples(checked, result)
    return StreamedExamples(result.sample_columns, result.sample_targets, np.arange(n), np.zeros(0, np.int64),
                            present=result.sample_present,
                            stream=Stream(checked, result), route_rows=routes, target_summary=result.target_summary,
                            file_rows=result.rows)


def _no_training_rows(checked) -> DataError:
    span = checked.data.span or ast.Span(checked.spec.path, 1, 1, 1, 2)
    return DataError([Diagnostic("E163", "no training examples are left after held-out routes and data filters",
                                 span)])


def _fewshot_examples(checked, result: Scan) -> StreamedExamples:
    """`limit`/`per_route`: a second pass keeps the selected training rows (the smallest hashes, per
    route then overall); they train from memory beside the evaluation sample."""
    cfg, g = checked.data, checked.graph
    routes = list(g.routes())
    per_route = [BottomK(cfg.per_route) for _ in routes] if cfg.per_route else None
    overall = BottomK(cfg.limit) if cfg.limit and not cfg.per_route else None
    split = None if result.eval_all else Split(checked)
    for chunk in Reader(checked, strict=True).chunks():
        targets = evaluate_targets(checked, chunk.inputs, chunk.data_targets)
        local = _training_rows(checked, chunk, targets, split)
        mask = np.zeros(chunk.n, dtype=bool)
        mask[local] = True
        keys = uniform(cfg.seed, chunk.rows, _FEWSHOT_SALT)
        if per_route is not None:
            for route, store in zip(routes, per_route):
                mine = mask & route_mask(g, chunk.inputs, route)
                store.add(keys, chunk.rows, chunk.inputs, targets, mine, chunk.present)
        else:
            overall.add(keys, chunk.rows, chunk.inputs, targets, mask, chunk.present)
    if per_route is not None:  # a row may be in several routes' picks: keep it once, then apply the limit
        overall = BottomK(cfg.limit or sum(s.k for s in per_route))
        seen: set[int] = set()
        for store in per_route:
            rows, cols, tgts, keys, present = store.sorted()
            fresh = np.array([r not in seen for r in rows.tolist()], dtype=bool)
            seen.update(rows.tolist())
            if cols:
                overall.add(keys, rows, cols, tgts, fresh, present)
    rows, cols, tgts, _, present = overall.sorted()
    n_eval, n_train = len(result.sample_rows), len(rows)
    if not cols:
        raise _no_training_rows(checked)
    columns = {k: np.concatenate([result.sample_columns[k], cols[k]]) for k in cols}
    targets = {k: np.concatenate([result.sample_targets[k], tgts[k]]) for k in tgts}
    present = {k: np.concatenate([result.sample_present[k], present[k]]) for k in present}
    return StreamedExamples(columns, targets, np.arange(n_eval), np.arange(n_eval, n_eval + n_train),
                            present=present, stream=None, route_rows=None, target_summary=result.target_summary,
                            file_rows=result.rows)


# ---- training -------------------------------------------------------------------------------------

class Stream:
    """The training rows of a streamed file, chunk by chunk (backend.datasets makes them a tf.data pipeline)."""

    def __init__(self, checked, result: Scan):
        self.checked = checked
        self.scan = result

    def fingerprint_arrays(self):
        """What a checkpoint fingerprints instead of the training arrays: the file's hash and size."""
        digest = np.frombuffer(bytes.fromhex(self.scan.digest), dtype=np.uint8)
        return {"data_file_sha256": digest, "data_file_rows": np.array([self.scan.rows], np.int64)}, {}, {}

    def chunks(self, seed: int, epoch: int):
        """Encoded (x, y, w) per chunk, rows permuted (seeded by epoch and chunk)."""
        split = None if self.scan.eval_all else Split(self.checked)
        for chunk in Reader(self.checked, strict=True).chunks():
            targets = evaluate_targets(self.checked, chunk.inputs, chunk.data_targets)
            rows = _training_rows(self.checked, chunk, targets, split)
            if not len(rows):
                continue
            rows = np.random.default_rng([seed, epoch, chunk.start]).permutation(rows)
            yield training_arrays(self.checked, Examples(chunk.inputs, targets, rows, rows, present=chunk.present),
                                  rows)

    def probe(self):
        """(x, y, w) of one sampled row: the shapes and dtypes every chunk's arrays have."""
        probe = Examples(self.scan.sample_columns, self.scan.sample_targets, np.arange(1), np.arange(1),
                         present=self.scan.sample_present)
        return training_arrays(self.checked, probe, np.arange(1))
