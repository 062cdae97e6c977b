"""Which columns of a data file an input is read from: `input img: vector(64) from pixel0..pixel63`.

By default a field is the column named after it. `from` names others, so a file laid out as data sets
usually are — one column per reading, headers like "petal length (cm)" — is read as it is: a `vector(n)`
spreads over n columns (in the order written), any field may take one column of another name. A run
`first..last` names the columns between two names that differ only in the number they end in, counted
up: `pixel0..pixel63` (`px000..px783` keeps the zeros).
"""
from __future__ import annotations

import re

from ..lang import ast
from .check_limits import MAX_WIDTH

_NUMBERED = re.compile(r"(.*?)([0-9]{1,18})\Z", re.S)  # a run's end: a name, then its number


def _run(column: ast.Column) -> tuple[str, int, int, int]:
    """(prefix, first number, last number, digits to pad to) of a run `first..last` (ValueError with the
    reason when it can't be counted)."""
    first, last = column.first.text, column.last.text
    start, end = _NUMBERED.match(first), _NUMBERED.match(last)
    if not start or not end or start[1] != end[1]:
        raise ValueError(f"'{first}..{last}' is not a run of numbered columns: both ends must be one name "
                         "followed by a number, as in pixel0..pixel63")
    low, high = int(start[2]), int(end[2])
    padded = len(start[2]) > 1 and start[2].startswith("0")
    if padded and len(end[2]) != len(start[2]) or not padded and len(end[2]) > 1 and end[2].startswith("0"):
        raise ValueError(f"'{first}..{last}': both ends must be written with the same number of digits "
                         "when one has leading zeros")
    if low > high:
        raise ValueError(f"'{first}..{last}' counts down: write the lower number first")
    return start[1], low, high, len(start[2]) if padded else 0


def _count(column: ast.Column) -> int:
    if column.last is None:
        return 1
    _, low, high, _ = _run(column)
    return high - low + 1


def run_names(column: ast.Column) -> list[str]:
    """The column names `column` stands for (ValueError with the reason when a run can't be counted)."""
    if column.last is None:
        return [column.first.text]
    prefix, low, high, width = _run(column)
    return [f"{prefix}{i:0{width}d}" for i in range(low, high + 1)]


def source_columns(decl: ast.InputDecl) -> list[str]:
    """The columns the input is read from, in order (its own name without `from`); for a checked spec."""
    if not decl.columns:
        return [decl.name.text]
    return [name for column in decl.columns for name in run_names(column)]


def columns_problem(decl: ast.InputDecl) -> tuple[str, ast.Span, list[str]] | None:
    """(message, where, hints) for a `from` that can't be read: a run that can't be counted, a column
    named twice, or a count the field's type can't take (a vector: its size, or one column holding all
    its values; any other field: one column)."""
    count = 0
    for column in decl.columns:
        try:
            count += _count(column)
        except ValueError as err:
            return str(err), column.span, []
    t = decl.type
    first, last = decl.columns[0].span, decl.columns[-1].span
    span = ast.Span(first.file, first.line, first.col, last.end_line, last.end_col)
    if isinstance(t, ast.VectorType):
        if count not in (1, t.size):
            return (f"vector({t.size}) is read from {t.size:,} columns (or one holding all {t.size:,} numbers); "
                    f"`from` names {count:,}", span, [])
    elif count != 1:
        return f"{t.describe()} is read from one column; `from` names {count:,}", span, ["only a vector spreads over several columns"]
    if count > MAX_WIDTH:
        return None  # the vector's own size is refused (E127)
    seen: set[str] = set()
    for column in decl.columns:
        for name in run_names(column):
            if name in seen:
                return f"column '{name}' is named twice", column.span, []
            seen.add(name)
    return None

