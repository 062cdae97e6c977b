"""Data files read in chunks: a CSV/JSONL file larger than memory trains with bounded memory.

`data.build_examples` hands a file here when it is streamed: `data file "rows.csv" stream always`, or
`stream auto` (the default) and the file is larger than `STREAM_BYTES` (50 MB;
`TANGLEC_STREAM_BYTES` overrides). Nothing in this module imports TensorFlow except `Stream.dataset`,
so `tanglec check` stays TF-free.

One pass over the file (`scan`) validates every row with `Reader`, which `data.read_file` also uses
(E119 at file:row:column, in file order, the first `MAX_REPORTED` and a count of the rest), evaluates the targets chunk by chunk (their range for E112), counts the training
rows of every selector combination, keeps a bounded evaluation sample and hashes the file (the
checkpoint fingerprint). Memory: one chunk of `CHUNK_ROWS` rows plus the sample, whatever the size
of the file.

Rows are split and sampled by a seeded hash of their row number (splitmix64 of `data seed` and the
row index), not by a permutation of all rows (which needs memory proportional to the file):

* evaluation rows: those whose hash is below `eval FRACTION` (all rows when the fraction is 0, or when
  no row falls below it in a tiny file); training rows: the others, less held-out routes and `only`
  filters, exactly as in memory;
* the evaluation sample: the (at most) `EVAL_SAMPLE` evaluation rows with the smallest hashes, a
  uniform random sample; progress, `until exact` and the final report are computed on it;
* few-shot settings (`limit`, `per_route`) pick the training rows with the smallest hashes (a second
  salt), per route and then overall, in a second pass; those few rows then train from memory.

So the split is the same *kind* of random split as in memory, not the same rows.

Training (`backend.datasets.stream_dataset`) reads the file again, chunk by chunk, in a Python generator behind
`tf.data.Dataset.from_generator`: each chunk is encoded with `features.training_arrays` (the same
targets and per-decoder sample weights as in memory), its rows permuted (seeded by epoch and chunk),
then `unbatch -> shuffle -> batch`. Deterministic for a seed, so a checkpoint resumes by
skipping batches as with in-memory data.
"""
from __future__ import annotations

import csv
import hashlib
import itertools
import os
import re
import stat
import types
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..lang import ast
from .features import training_arrays
from .selection import route_mask, select_training_rows
from .rows import (DataError, Examples, RowProblems, column_arrays, convert_value, evaluate_targets, jsonl_cells,
                   wanted_columns)
from ..util.files import data_file_problem
from ..lang.diagnostics import SOURCES, Diagnostic

STREAM_BYTES = 50 * 2**20  # `stream auto` streams files larger than this
CHUNK_ROWS = 50_000  # rows parsed, converted and encoded at a time
EVAL_SAMPLE = 10_000  # evaluation rows kept in memory (progress, until exact, the report)
_SPLIT_SALT, _FEWSHOT_SALT = 0, 0x5F3759DF


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
    try:
        return Path(cfg.path).stat().st_size > stream_threshold()
    except OSError:
        return False  # the in-memory reader reports it


# ---- reading ------------------------------------------------------------------------------------

def uniform(seed: int, rows: np.ndarray, salt: int = _SPLIT_SALT) -> np.ndarray:
    """A uniform number in [0, 1) per row index: splitmix64 of (seed, salt, row), vectorised."""
    x = rows.astype(np.uint64) + np.uint64(((int(seed) << 32) ^ salt) & 0xFFFFFFFFFFFFFFFF)
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)


@dataclass
class Chunk:
    start: int  # file-wide index of its first data row
    lines: list[int]  # line number of each row
    inputs: dict[str, np.ndarray]  # inputs and selectors, as data.read_file returns them
    data_targets: dict[str, np.ndarray]

    @property
    def n(self) -> int:
        return len(self.lines)

    @property
    def rows(self) -> np.ndarray:
        return np.arange(self.start, self.start + self.n, dtype=np.int64)


def _fast_converter(t):
    """A quick conversion for valid cells of type `t`; anything it does not accept outright raises, and
    `rows.convert_value` (the reference, with the messages) decides instead."""
    if isinstance(t, (ast.SelectDecl, ast.CategoryType)):
        index = {v.text: i for i, v in enumerate(t.values)}
        return lambda raw: index[raw.strip()]
    if isinstance(t, ast.IntType):
        lo, hi = t.lo, t.hi

        def convert_int(raw):
            if type(raw) is not int:
                raw = raw.strip()
                if not (raw.isascii() and raw.isdigit() and len(raw) <= 30):
                    raise ValueError
                raw = int(raw)
            if lo <= raw <= hi:
                return raw
            raise ValueError

        return convert_int
    if isinstance(t, ast.FloatType):
        lo, hi = t.lo, t.hi

        def convert_float(raw):
            if type(raw) is str and ("_" in raw or not raw.isascii()):  # float() takes 1_0 and ٣: refused
                raise ValueError
            v = float(raw)
            if v - v != 0 or (lo is not None and not lo <= v <= hi):  # inf or nan, or out of range
                raise ValueError
            return v

        return convert_float
    if isinstance(t, ast.VectorType):
        size = t.size

        def convert_vector(raw):
            if type(raw) is str and ("_" in raw or not raw.isascii()):
                raise ValueError
            items = raw.split() if type(raw) is str else raw
            if len(items) != size:
                raise ValueError
            vec = [float(x) for x in items]
            total = sum(vec)
            if total - total != 0:  # some value is inf or nan (or the sum overflowed: the reference decides)
                raise ValueError
            return vec

        return convert_vector

    def reference(raw):
        raise ValueError

    return reference


class _SparseLines:
    """The rows of a data file that diagnostics quote (not the whole file)."""

    def __init__(self, lines: dict[int, str]):
        self.lines = lines

    def __len__(self) -> int:
        return max(self.lines, default=0)

    def __getitem__(self, index: int) -> str:
        return self.lines.get(index + 1, "")


MAX_ROW_BYTES = 16 * 2**20  # one row: a JSONL line, or a CSV record with the line breaks of its quoted cells
MAX_HEADER_BYTES = 2**20  # a CSV header
_BLOCK_BYTES = 2**16  # read from the file at a time (more while a line continues: its copies stay linear)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _csv_cell_starts(text: str, upto: int | None = None) -> tuple[list[tuple[int, int]], tuple[int, int] | None]:
    """Where the cells of a CSV record start, as (rows after the record's first, column), read as the csv
    module reads them: a quote opens a quoted cell only at the cell's start, `""` inside is a quote, a
    line break inside moves to the next row. Also where a quoted cell that is never closed opens (or None).
    Stops after cell `upto` (a cell of a million-field row is found without walking the rest)."""
    starts: list[tuple[int, int]] = []
    i, row, row_start = 0, 0, 0
    while upto is None or len(starts) <= upto:
        starts.append((row, i - row_start + 1))
        if text.startswith('"', i):
            opened, j = (row, i - row_start + 1), i + 1
            while True:
                j = text.find('"', j)
                if j < 0:
                    return starts, opened
                if not text.startswith('"', j + 1):
                    break
                j += 2
            for brk in _LINE_BREAK.finditer(text, i, j):
                row, row_start = row + 1, brk.end()
            i = j + 1
        i = text.find(",", i)
        if i < 0:
            break
        i += 1
    return starts, None


def csv_header(path: Path, row: int, text: str, cells: list[str], wanted) -> list[str]:
    """The header's column names; E119 for a repeated column (at its second place) or a missing one,
    found in time linear in the header."""
    header = [h.strip() for h in cells]
    seen: set[str] = set()
    for index, name in enumerate(header):
        if name in seen:
            rows, col = _csv_cell_starts(text, index)[0][index]
            raise DataError([Diagnostic("E119", f"column {name} appears more than once in the header",
                                        ast.Span(str(path), row + rows, col, row + rows, col + max(1, len(name))))])
        seen.add(name)
    missing = [c for c in wanted if c not in seen]
    if missing:
        raise DataError([Diagnostic("E119", f"missing column{'s' * (len(missing) > 1)}: {', '.join(missing)}",
                                    ast.Span(str(path), row, 1, row, len(text.split("\n")[0]) + 1),
                                    hints=[f"the header has: {_some(header)}"])])
    return header


def _some(names: list[str], shown: int = 20) -> str:
    """Names for a message: the first `shown`, then how many more."""
    extra = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {extra:,} more" if extra > 0 else "")


def _without_line_break(text: str) -> str:
    return text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith(("\r", "\n")) else text


class Reader:
    """Rows of a CSV/JSONL file, chunk by chunk, validated (`data.read_file` is this reader in one chunk).

    The file is read in blocks and split into rows here, so a row longer than `MAX_ROW_BYTES` (a CSV
    header longer than `MAX_HEADER_BYTES`) is refused when that many bytes are read, not after
    reading all of it. A quoted CSV cell may hold line breaks (RFC 4180): its record then spans rows
    and is reported at the row where it starts, a bad cell at its own row and column.

    `strict`: raise at the first problem (the training pass: the file changed since it was scanned);
    otherwise keep reading to report every problem (first `MAX_REPORTED`, then a count), yielding no
    more chunks once there is one, and raise at the end (`chunks()` is exhausted). A problem that
    stops the reading (not UTF-8, a row too long, a quoted cell never closed) is raised at once,
    after the ones found before it."""

    def __init__(self, checked, chunk_rows: int | None = None, strict: bool = False, digest: bool = False):
        self.checked = checked
        self.path = Path(checked.data.path)
        self.wanted = wanted_columns(checked)
        g = checked.graph
        self.types = {n: (g.selectors[n] if t == "selector" else t) for n, t in self.wanted.items()}
        self.jsonl = self.path.suffix.lower() in (".jsonl", ".ndjson")
        self.chunk_rows = chunk_rows or CHUNK_ROWS
        self.strict = strict
        self.problems = RowProblems(str(self.path))
        self.quoted: dict[int, str] = {}
        self.hash = hashlib.sha256() if digest else None
        self.rows = 0
        self.in_header = not self.jsonl
        csv.field_size_limit(max(csv.field_size_limit(), MAX_ROW_BYTES))  # a cell is bounded by its row

    @property
    def limit(self) -> int:
        return MAX_HEADER_BYTES if self.in_header else MAX_ROW_BYTES

    def _open(self):
        """The file, opened without blocking (a FIFO is refused, never waited on)."""
        problem = data_file_problem(self.path)
        if problem is None:
            try:
                fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
            except OSError as err:
                problem = f"can't read the data file: {err.strerror or err}"
            else:
                if stat.S_ISREG(os.fstat(fd).st_mode):
                    os.set_blocking(fd, True)
                    return open(fd, "rb")
                os.close(fd)
                problem = "the data file is not a regular file"
        raise DataError([Diagnostic("E119", problem, ast.Span(str(self.path), 1, 1, 1, 2))])

    def _lines(self, fh):
        """(row number, text with its line break, size in bytes) of every line, numbered as an editor
        numbers them (a line ends at \\r\\n, \\r or \\n)."""
        number, offset, tail = 0, 0, b""
        while True:
            block = fh.read(max(_BLOCK_BYTES, len(tail)))
            if self.hash is not None:
                self.hash.update(block)
            lines = (tail + block).splitlines(keepends=True)
            tail = lines.pop() if block and lines and not lines[-1].endswith(b"\n") else b""  # may continue
            for raw in lines:
                number += 1
                if len(raw.rstrip(b"\r\n")) > self.limit:
                    self._too_long(number, raw)
                yield number, self._decode(number, raw, offset), len(raw)
                offset += len(raw)
            if not block:
                return
            if len(tail) > self.limit:
                self._too_long(number + 1, tail)

    def _decode(self, number: int, raw: bytes, offset: int) -> str:
        try:
            return raw.decode("utf-8-sig" if offset == 0 else "utf-8")
        except UnicodeDecodeError as err:
            col = len(raw[:err.start].decode("utf-8", "replace")) + 1
            self._stop(number, col, f"the data file is not UTF-8 text ({err.reason} at byte {offset + err.start})")

    def _too_long(self, number: int, raw: bytes | None) -> None:
        """Refuse a row over the limit: at the character where a line passes it (`raw`: its first
        bytes), or at the start of a record whose quoted cells span rows (None)."""
        what = "the header" if self.in_header else "this row"
        col = 1 if raw is None else len(raw[:self.limit].decode("utf-8", "replace")) + 1
        self._stop(number, col, f"{what} is longer than {self.limit:,} bytes (the limit)",
                   hints=["a data file holds one row per line, at most "
                          f"{MAX_ROW_BYTES // 2**20} MiB each (a CSV header at most {MAX_HEADER_BYTES // 2**20} MiB)"])

    def _records(self, lines):
        """(row number, text, cells) of every non-blank row: CSV records (a quoted cell may span lines;
        cells None for JSONL, whose rows are lines)."""
        for number, line, size in lines:
            if self.jsonl or '"' not in line:
                text = _without_line_break(line)
                if text.strip():
                    yield number, text, None if self.jsonl else text.split(",")
            else:
                yield self._quoted_record(number, line, size, lines)

    def _quoted_record(self, number: int, line: str, size: int, lines):
        parts, unfinished = [line], []

        def continuation():  # the csv module asks for more lines only inside a quoted cell
            nonlocal size
            for _, more, more_size in lines:
                size += more_size
                if size > self.limit:
                    self._too_long(number, None)
                parts.append(more)
                yield more
            unfinished.append(True)

        cells = next(csv.reader(itertools.chain([line], continuation())))
        text = _without_line_break("".join(parts))
        if unfinished:
            opened = _csv_cell_starts(text)[1]
            if opened:
                self._quote(number, text)
                self._stop(number + opened[0], opened[1], "a quoted cell opened here is never closed")
        return number, text, cells

    def _quote(self, number: int, text: str) -> None:
        for i, line in enumerate(_LINE_BREAK.split(text)):
            self.quoted[number + i] = line

    def _add(self, lineno: int, col: int, message: str, text: str, cell_row: int = 0) -> None:
        if not self.problems.full:
            self._quote(lineno - cell_row, text)
        self.problems.add(lineno, col, message)
        if self.strict:
            self.raise_problems()

    def _stop(self, lineno: int, col: int, message: str, hints=()) -> None:
        self.problems.add(lineno, col, message, hints, always=True)
        self.raise_problems()

    @property
    def failed(self) -> bool:
        return bool(self.problems.count)

    def raise_problems(self) -> None:
        self.problems.raise_if_any()

    def chunks(self):
        SOURCES._texts[str(self.path)] = _SparseLines(self.quoted)  # diagnostics quote the rows they name
        with self._open() as fh:
            records = self._records(self._lines(fh))
            header = None
            if not self.jsonl:
                first = next(records, None)
                if first is None:
                    raise DataError([Diagnostic("E119", "the data file is empty",
                                                ast.Span(str(self.path), 1, 1, 1, 2))])
                self._quote(first[0], first[1])
                header = csv_header(self.path, *first, self.wanted)
                self.in_header = False
            yield from self._rows(records, header)

    def _rows(self, records, header):
        columns = [(name, header.index(name) if header else -1, _fast_converter(t), t)
                   for name, t in self.types.items()]
        start, numbers = 0, []
        values: dict[str, list] = {k: [] for k in self.wanted}
        for lineno, text, row in records:
            if self.jsonl:
                cells = self._jsonl_cells(lineno, text)
                if cells is None:
                    continue
            elif len(row) != len(header):
                self._add(lineno, 1, f"{len(row)} fields, the header has {len(header)}", text)
                continue
            self.rows += 1
            for name, index, fast, t in columns:
                if self.jsonl:
                    if name not in cells:
                        values[name].append(None)
                        continue
                    raw = cells[name][0]
                else:
                    raw = row[index]
                try:
                    value = fast(raw)
                except Exception:  # noqa: BLE001 - the reference conversion decides, with its message
                    try:
                        value = convert_value(raw, t)
                    except ValueError as err:
                        self._bad_cell(lineno, text, index if not self.jsonl else cells[name][1], name, err)
                        value = None
                values[name].append(value)
            numbers.append(lineno)
            if len(numbers) >= self.chunk_rows:
                if not self.failed:
                    yield self._chunk(start, numbers, values)
                start += len(numbers)
                numbers, values = [], {k: [] for k in self.wanted}
        if numbers and not self.failed:
            yield self._chunk(start, numbers, values)
        self.raise_problems()
        if self.rows == 0:
            raise DataError([Diagnostic("E119", "the data file has no rows", ast.Span(str(self.path), 1, 1, 1, 2))])

    def _bad_cell(self, lineno: int, text: str, where: int, name: str, err: ValueError) -> None:
        """A cell that does not convert: at its row and column (`where`: the JSONL column, or the CSV
        cell index, located only when the problem is shown)."""
        row, col = 0, where
        if not self.jsonl:
            row, col = (0, 1) if self.problems.full else _csv_cell_starts(text, where)[0][where]
        self._add(lineno + row, col, f"{name}: {err}", text, cell_row=row)

    def _jsonl_cells(self, lineno: int, text: str):
        count = self.problems.count
        shown = self.problems.full
        cells = jsonl_cells(lineno, text, self.wanted, self.problems)
        if self.problems.count > count:
            if not shown:
                self._quote(lineno, text)
            if self.strict:
                self.raise_problems()
        return cells

    def _chunk(self, start: int, numbers: list[int], values: dict[str, list]) -> Chunk:
        inputs, targets = column_arrays(self.checked, self.wanted, values)
        return Chunk(start, numbers, inputs, targets)


# ---- one pass: validate, summarise, sample ------------------------------------------------------

class BottomK:
    """The k rows with the smallest keys seen so far (a uniform sample when the keys are uniform)."""

    def __init__(self, k: int):
        self.k = k
        self.keys = np.zeros(0)
        self.rows = np.zeros(0, np.int64)
        self.columns: dict[str, np.ndarray] | None = None
        self.targets: dict[str, np.ndarray] | None = None

    def add(self, keys, rows, columns, targets, mask=None) -> None:
        if mask is not None:
            keys, rows = keys[mask], rows[mask]
            columns = {k: v[mask] for k, v in columns.items()}
            targets = {k: v[mask] for k, v in targets.items()}
        if self.k <= 0 or not len(keys):
            return
        if self.columns is None:
            self.columns = {k: v[:0] for k, v in columns.items()}
            self.targets = {k: v[:0] for k, v in targets.items()}
        all_keys = np.concatenate([self.keys, keys])
        all_rows = np.concatenate([self.rows, rows])
        cols = {k: np.concatenate([self.columns[k], v]) for k, v in columns.items()}
        tgts = {k: np.concatenate([self.targets[k], v]) for k, v in targets.items()}
        if len(all_keys) > self.k:
            keep = np.argpartition(all_keys, self.k - 1)[:self.k]
            all_keys, all_rows = all_keys[keep], all_rows[keep]
            cols = {k: v[keep] for k, v in cols.items()}
            tgts = {k: v[keep] for k, v in tgts.items()}
        self.keys, self.rows, self.columns, self.targets = all_keys, all_rows, cols, tgts

    def sorted(self):
        """(rows, columns, targets, keys) in file order."""
        order = np.argsort(self.rows, kind="stable")
        if self.columns is None:
            return self.rows, {}, {}, self.keys
        return (self.rows[order], {k: v[order] for k, v in self.columns.items()},
                {k: v[order] for k, v in self.targets.items()}, self.keys[order])


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
    combos: dict[tuple, int]  # training rows (before held-out routes and filters) per selector combination
    combos_all: dict[tuple, int]  # every row per selector combination
    target_summary: dict[str, list] = field(default_factory=dict)  # per 1-D target: [min, max(, a non-integer)]


def _is_eval(checked, keys: np.ndarray) -> np.ndarray:
    return keys < checked.data.eval_fraction


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


def scan(checked, sample: int | None = None) -> Scan:
    """One pass over the data file: the evaluation sample, route counts and target summary."""
    sample = EVAL_SAMPLE if sample is None else sample
    cfg, g = checked.data, checked.graph
    selectors = list(g.selectors)
    reader = Reader(checked, digest=True)
    keep = BottomK(sample)
    combos: dict[tuple, int] = {}
    combos_all: dict[tuple, int] = {}
    summary: dict[str, list] = {}
    for chunk in reader.chunks():
        targets = evaluate_targets(checked, chunk.inputs, chunk.data_targets)
        keys = uniform(cfg.seed, chunk.rows)
        keep.add(keys, chunk.rows, chunk.inputs, targets)
        every = np.ones(chunk.n, dtype=bool)
        _combo_counts(selectors, chunk.inputs, every, combos_all)
        if cfg.eval_fraction > 0:
            _combo_counts(selectors, chunk.inputs, ~_is_eval(checked, keys), combos)
        _summarise(summary, targets)
    rows, columns, targets, keys = keep.sorted()
    eval_all = cfg.eval_fraction <= 0 or reader.rows <= 1
    if not eval_all:
        mask = _is_eval(checked, keys)
        if mask.any():
            rows, keys = rows[mask], keys[mask]
            columns = {k: v[mask] for k, v in columns.items()}
            targets = {k: v[mask] for k, v in targets.items()}
        else:
            eval_all = True  # a tiny file where no row fell below the fraction: evaluate on every row
    return Scan(str(checked.data.path), reader.rows, reader.hash.hexdigest(), eval_all, rows, columns, targets,
                dict(combos_all) if eval_all else combos, combos_all, summary)


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
    for route in g.routes():
        mask = live & route_mask(g, columns, route)
        out.append(int(weights[mask].sum()))
    return out, int(weights[live].sum())


def _training_rows(checked, chunk: Chunk, eval_all: bool) -> np.ndarray:
    """Chunk-local indices of the rows that train (not evaluation rows; held-out routes and `only`
    filters applied as in memory)."""
    local = np.arange(chunk.n)
    if not eval_all:
        local = local[~_is_eval(checked, uniform(checked.data.seed, chunk.rows))]
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
    for chunk in Reader(checked, strict=True).chunks():
        targets = evaluate_targets(checked, chunk.inputs, chunk.data_targets)
        local = _training_rows(checked, chunk, result.eval_all)
        mask = np.zeros(chunk.n, dtype=bool)
        mask[local] = True
        keys = uniform(cfg.seed, chunk.rows, _FEWSHOT_SALT)
        if per_route is not None:
            for route, store in zip(routes, per_route):
                mine = mask & route_mask(g, chunk.inputs, route)
                store.add(keys, chunk.rows, chunk.inputs, targets, mine)
        else:
            overall.add(keys, chunk.rows, chunk.inputs, targets, mask)
    if per_route is not None:  # a row may be in several routes' picks: keep it once, then apply the limit
        overall = BottomK(cfg.limit or sum(s.k for s in per_route))
        seen: set[int] = set()
        for store in per_route:
            rows, cols, tgts, keys = store.sorted()
            fresh = np.array([r not in seen for r in rows.tolist()], dtype=bool)
            seen.update(rows.tolist())
            if cols:
                overall.add(keys, rows, cols, tgts, fresh)
    rows, cols, tgts, _ = overall.sorted()
    n_eval, n_train = len(result.sample_rows), len(rows)
    if not cols:
        raise _no_training_rows(checked)
    columns = {k: np.concatenate([result.sample_columns[k], cols[k]]) for k in cols}
    targets = {k: np.concatenate([result.sample_targets[k], tgts[k]]) for k in tgts}
    return StreamedExamples(columns, targets, np.arange(n_eval), np.arange(n_eval, n_eval + n_train),
                            stream=None, route_rows=None, target_summary=result.target_summary,
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
        for chunk in Reader(self.checked, strict=True).chunks():
            targets = evaluate_targets(self.checked, chunk.inputs, chunk.data_targets)
            rows = _training_rows(self.checked, chunk, self.scan.eval_all)
            if not len(rows):
                continue
            rows = np.random.default_rng([seed, epoch, chunk.start]).permutation(rows)
            yield training_arrays(self.checked, Examples(chunk.inputs, targets, rows, rows), rows)

    def probe(self):
        """(x, y, w) of one sampled row: the shapes and dtypes every chunk's arrays have."""
        probe = Examples(self.scan.sample_columns, self.scan.sample_targets, np.arange(1), np.arange(1))
        return training_arrays(self.checked, probe, np.arange(1))
