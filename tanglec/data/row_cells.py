"""A data file's row as typed values: each field's cells converted (quickly where they are valid, by
`rows.convert_value` with its reasons where not) and every problem placed at its file:row:column. The
Reader (reader.py) splits the file into rows and mixes this in."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..lang import ast
from .needs import neutral_value
from .rows import convert_value, jsonl_cells

ABSENT = object()  # an optional field's empty cell (CSV) or left-out key (JSONL)
NUMBER = ast.FloatType(None, None, ast.Span("<data>", 1, 1, 1, 1))  # a cell of a vector spread over columns
LINE_BREAK = re.compile(r"\r\n|\r|\n")


def fast_converter(t):
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
            return finite(list(map(float, items)))

        return convert_vector

    if isinstance(t, ast.TextType):

        def convert_text(raw):
            text = raw.strip()  # a JSON number has no strip(): the reference says what is wrong
            if not text:
                raise ValueError
            return text

        return convert_text

    def reference(raw):
        raise ValueError

    return reference


@dataclass(frozen=True)
class Spread:
    """Where the cells of a vector spread over columns are: CSV cell indices (None: a column the header
    lacks) or JSONL keys, and `run`, the slice of them when they are consecutive CSV cells."""

    places: list
    run: slice | None = None


def finite(vec: list[float]) -> list[float]:
    """`vec`, or ValueError when a value is inf or nan (or the sum overflows: the reference decides)."""
    total = sum(vec)
    if total - total != 0:
        raise ValueError
    return vec


def spread_converter(jsonl: bool):
    """A quick conversion of a vector's cells read from several columns (as fast_converter): CSV cells
    are text, JSONL values numbers (a string there is the reference's to refuse)."""

    def convert_text_cells(raws):
        joined = "".join(raws)
        if "_" in joined or not joined.isascii():
            raise ValueError
        return finite(list(map(float, raws)))

    def convert_numbers(raws):
        if str in set(map(type, raws)):
            raise ValueError
        return finite(list(map(float, raws)))

    return convert_numbers if jsonl else convert_text_cells


def csv_cell_starts(text: str, upto: int | None = None) -> tuple[list[tuple[int, int]], tuple[int, int] | None]:
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
            for brk in LINE_BREAK.finditer(text, i, j):
                row, row_start = row + 1, brk.end()
            i = j + 1
        i = text.find(",", i)
        if i < 0:
            break
        i += 1
    return starts, None


class RowCells:
    """The Reader's conversion of one row (mixed into reader.Reader, whose state it reads)."""

    def _absent_value(self, name: str):
        """What a row that leaves out `name` holds: an input's neutral value, a target's NaN (undefined:
        no loss, never scored)."""
        t = self.types[name]
        if name not in self.checked.graph.targets:
            return neutral_value(t)
        return [math.nan] * t.size if isinstance(t, ast.VectorType) else math.nan

    def _convert(self, lineno: int, text: str, row, header, columns) -> dict[str, object]:
        """One row's typed values by field name; its problems are added (a value None)."""
        cells, reported = None, self.problems.count
        if self.jsonl:
            cells = self._jsonl_cells(lineno, text)
            reported = self.problems.count > reported
            if cells is None:
                return {}
        elif len(row) != len(header):
            self._add(lineno, 1, f"{len(row)} fields, the header has {len(header)}", text)
            return {}
        converted, absent = {}, []
        for name, index, fast, t in columns:
            if index.__class__ is Spread:
                converted[name] = self._spread_vector(lineno, text, row, cells, name, index, fast, reported)
                if converted[name] is ABSENT:
                    absent.append((name, next((i for i in index.places if i is not None), None)))
                continue
            if self.jsonl:
                if index not in cells:
                    converted[name] = ABSENT if name in self.optional_set else None
                    if name in self.optional_set:
                        absent.append((name, index))
                    continue
                raw = cells[index][0]
            else:
                raw = row[index] if index is not None else ""
            if name in self.optional_set and (raw is None or isinstance(raw, str) and not raw.strip()):
                converted[name] = ABSENT
                absent.append((name, index))
                continue
            try:
                value = fast(raw)
            except Exception:  # noqa: BLE001 - the reference conversion decides, with its message
                try:
                    if name in self.target_fields and isinstance(raw, str) and not raw.strip():
                        raise ValueError("missing, and the targets are computed from it on every row")
                    value = convert_value(raw, t)
                except ValueError as err:
                    self._bad_cell(lineno, text, index if not self.jsonl else cells[index][1], name, err)
                    value = None
            converted[name] = value
        if absent:
            self._missing_on_route(lineno, text, converted, absent)
        return converted

    def _spread_vector(self, lineno: int, text: str, row, cells, name: str, spread: Spread, fast, reported: bool):
        """A vector spread over several columns (`input v: vector(n) from a, b, ...`): its value, ABSENT
        (an optional field with every cell empty), or None with the first bad cell reported at its place
        (`reported`: the JSONL row's keys have problems reported already)."""
        places = spread.places
        if self.jsonl:
            if any(key not in cells for key in places):  # left out, null or not a number
                if name in self.optional_set and not any(key in cells for key in places):
                    return ABSENT
                if name in self.optional_set and not reported:  # an optional field's left-out key: not yet
                    self._add(lineno, 1, f"{name}: some of its columns are missing, and others are not", text)
                return None  # a required key's absence or a value of the wrong type is reported already
            raws = [cells[key][0] for key in places]
        elif spread.run is not None:
            raws = row[spread.run]
        else:
            raws = [row[i] if i is not None else "" for i in places]
        try:
            return fast(raws)
        except Exception:  # noqa: BLE001 - cell by cell below, with the reason
            pass
        empty = [raw is None or isinstance(raw, str) and not raw.strip() for raw in raws]
        if all(empty) and name in self.optional_set:
            return ABSENT
        for raw, place, column, blank in zip(raws, places, self.sources[name], empty):
            try:
                if blank:
                    raise ValueError("missing" + (", and this row's other columns of it are not" * (not all(empty))))
                convert_value(raw, NUMBER)
            except ValueError as err:
                where = cells[place][1] if self.jsonl else place
                if where is None:  # an optional field's column the header lacks
                    self._add(lineno, 1, f"{name}: column {column}: {err}", text)
                else:
                    self._bad_cell_at(lineno, text, where, f"{name}: column {column}: {err}")
                return None
        raise AssertionError("a vector no cell of which is bad did not convert")

    def _missing_on_route(self, lineno: int, text: str, converted: dict, absent: list) -> None:
        """E119 for an empty (CSV) or left-out (JSONL) field that the row's route reads."""
        codes = {s: converted.get(s) for s in self.needs.selectors}
        if None in codes.values():
            return  # a bad selector is reported already: the route is unknown
        needed = self.needs.needed(codes)
        for name, index in absent:
            if name not in needed:
                continue
            why = self.needs.why(name, codes, self.checked.graph)
            verb = "decodes" if name in self.needs.targets else "reads"
            message = f"{name}: missing, and this row's route ({why}) {verb} it"
            if self.jsonl or index is None:
                self._add(lineno, 1, message, text)
            else:
                self._bad_cell_at(lineno, text, index, message)

    def _bad_cell(self, lineno: int, text: str, where: int, name: str, err: ValueError) -> None:
        """A cell that does not convert: at its row and column (`where`: the JSONL column, or the CSV
        cell index, located only when the problem is shown)."""
        self._bad_cell_at(lineno, text, where, f"{name}: {err}")

    def _bad_cell_at(self, lineno: int, text: str, where: int, message: str) -> None:
        row, col = 0, where
        if not self.jsonl:
            row, col = (0, 1) if self.problems.full else csv_cell_starts(text, where)[0][where]
        self._add(lineno + row, col, message, text, cell_row=row)

    def _jsonl_cells(self, lineno: int, text: str):
        count = self.problems.count
        shown = self.problems.full
        cells = jsonl_cells(lineno, text, self.cell_types, self.problems, self.optional_cells)
        if self.problems.count > count:
            if not shown:
                self._quote(lineno, text)
            if self.strict:
                self.raise_problems()
        return cells
