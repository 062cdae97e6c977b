"""The chunked reader of CSV/JSONL data files: every row validated (E119 at file:row:column), typed
and converted a chunk of rows at a time, so memory stays bounded whatever the file's size. Used
whole by data.read_file and chunk by chunk by data.stream.
"""
from __future__ import annotations

import csv
import hashlib
import itertools
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..lang import ast
from ..lang.diagnostics import SOURCES, Diagnostic
from ..util.files import data_file_problem
from .needs import FieldNeeds, target_fields
from .row_cells import ABSENT, LINE_BREAK, NUMBER, RowCells, Spread, csv_cell_starts, fast_converter, spread_converter
from .rows import DataError, RowProblems, column_arrays, field_sources, some_names, wanted_columns

CHUNK_ROWS = 50_000  # rows parsed, converted and encoded at a time


@dataclass
class Chunk:
    start: int  # file-wide index of its first data row
    lines: list[int]  # line number of each row
    inputs: dict[str, np.ndarray]  # inputs and selectors, as data.read_file returns them
    data_targets: dict[str, np.ndarray]
    present: dict[str, np.ndarray]  # optional field -> which rows carry it (as Examples.present)

    @property
    def n(self) -> int:
        return len(self.lines)

    @property
    def rows(self) -> np.ndarray:
        return np.arange(self.start, self.start + self.n, dtype=np.int64)


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


def csv_header(path: Path, row: int, text: str, cells: list[str], wanted, optional=()) -> list[str]:
    """The header's column names; E119 for a repeated column (at its second place) or a missing one
    (an `optional` field's column may be missing: no row carries it), found in time linear in the header."""
    header = [h.strip() for h in cells]
    seen: set[str] = set()
    for index, name in enumerate(header):
        if name in seen:
            rows, col = csv_cell_starts(text, index)[0][index]
            raise DataError([Diagnostic("E119", f"column {name} appears more than once in the header",
                                        ast.Span(str(path), row + rows, col, row + rows, col + max(1, len(name))))])
        seen.add(name)
    missing = [c for c in wanted if c not in seen and c not in optional]
    if missing:
        raise DataError([Diagnostic("E119", f"missing column{'s' * (len(missing) > 1)}: {some_names(missing)}",
                                    ast.Span(str(path), row, 1, row, len(text.split("\n")[0]) + 1),
                                    hints=[f"the header has: {some_names(header)}"])])
    return header


def _without_line_break(text: str) -> str:
    return text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith(("\r", "\n")) else text


class Reader(RowCells):
    """Rows of a CSV/JSONL file, chunk by chunk, validated (`data.read_file` is this reader in one chunk).

    The file is read in blocks and split into rows here, so a row longer than `MAX_ROW_BYTES` (a CSV
    header longer than `MAX_HEADER_BYTES`) is refused when that many bytes are read, not after
    reading all of it. A quoted CSV cell may hold line breaks (RFC 4180): its record then spans rows
    and is reported at the row where it starts, a bad cell at its own row and column.

    `strict`: raise at the first problem (the training pass: the file changed since it was scanned);
    `skip_bad`: leave out every row with a problem and count it (`skipped`); otherwise keep reading to report every problem (first `MAX_REPORTED`, then a count), yielding no
    more chunks once there is one, and raise at the end (`chunks()` is exhausted). A problem that
    stops the reading (not UTF-8, a row too long, a quoted cell never closed) is raised at once,
    after the ones found before it."""

    def __init__(self, checked, chunk_rows: int | None = None, strict: bool = False, digest: bool = False,
                 path: Path | None = None, wanted: dict | None = None, skip_bad: bool = False,
                 with_targets: bool = True):
        self.checked = checked
        self.path = Path(path or checked.data.path)
        self.wanted = wanted_columns(checked) if wanted is None else wanted
        self.needs = FieldNeeds(checked, with_targets)  # `with_targets`: the rows' targets are computed
        self.optional = [n for n in self.needs.optional if n in self.wanted]
        self.optional_set = frozenset(self.optional)
        self.target_fields = target_fields(checked) if with_targets and self.optional else set()
        self.skip_bad = skip_bad
        self.skipped = 0
        g = checked.graph
        self.types = {n: (g.selectors[n] if t == "selector" else t) for n, t in self.wanted.items()}
        self.sources = field_sources(checked, self.wanted)
        self.cell_types: dict[str, object] = {}  # file column -> what its cells are read as
        for name, t in self.types.items():
            for column in self.sources[name]:
                self.cell_types.setdefault(column, NUMBER if len(self.sources[name]) > 1 else t)
        self.optional_cells = [c for name in self.optional for c in self.sources[name]]
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
            opened = csv_cell_starts(text)[1]
            if opened:
                self._quote(number, text)
                self._stop(number + opened[0], opened[1], "a quoted cell opened here is never closed")
        return number, text, cells

    def _quote(self, number: int, text: str) -> None:
        for i, line in enumerate(LINE_BREAK.split(text)):
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
                header = csv_header(self.path, *first, self.cell_types, self._optional_columns(first[2]))
                self.in_header = False
            yield from self._rows(records, header)

    def _optional_columns(self, header: list[str]) -> list[str]:
        """The columns a CSV header may lack: those of optional fields it has none of (a vector spread over
        columns is there whole or not at all)."""
        names = {h.strip() for h in header}
        return [c for name in self.optional if not names.intersection(self.sources[name]) for c in self.sources[name]]

    def _rows(self, records, header):
        at = {column: i for i, column in reversed(list(enumerate(header)))} if header else {}
        columns = []  # (field, where its cells are: CSV index or JSONL key, a Spread of them, converter, type)
        for name, t in self.types.items():
            sources = self.sources[name]
            places = [at.get(c) for c in sources] if header else sources
            if len(sources) > 1:
                consecutive = bool(header) and None not in places and places == list(range(places[0], places[0] + len(places)))
                spread = Spread(places, slice(places[0], places[-1] + 1) if consecutive else None)
                columns.append((name, spread, spread_converter(self.jsonl), t))
            else:
                columns.append((name, places[0], fast_converter(t), t))
        start, numbers = 0, []
        values: dict[str, list] = {k: [] for k in self.wanted}
        present: dict[str, list] = {k: [] for k in self.optional}
        for lineno, text, row in records:
            problems_before = self.problems.count
            converted = self._convert(lineno, text, row, header, columns)
            if self.problems.count > problems_before:
                if self.skip_bad:
                    self.problems.forget(problems_before)
                    self.skipped += 1
                continue
            self.rows += 1
            for name, value in converted.items():
                if name in present:
                    present[name].append(value is not ABSENT)
                    if value is ABSENT:
                        value = self._absent_value(name)
                values[name].append(value)
            numbers.append(lineno)
            if len(numbers) >= self.chunk_rows:
                if not self.failed:
                    yield self._chunk(start, numbers, values, present)
                start += len(numbers)
                numbers, values, present = [], {k: [] for k in self.wanted}, {k: [] for k in self.optional}
        if numbers and not self.failed:
            yield self._chunk(start, numbers, values, present)
        self.raise_problems()
        if self.rows == 0:
            raise DataError([Diagnostic("E119", "the data file has no rows", ast.Span(str(self.path), 1, 1, 1, 2))])

    def _chunk(self, start: int, numbers: list[int], values: dict[str, list], present: dict[str, list]) -> Chunk:
        inputs, targets = column_arrays(self.checked, self.wanted, values)
        return Chunk(start, numbers, inputs, targets, {k: np.asarray(v, dtype=bool) for k, v in present.items()})
