"""Rows of data as tanglec holds them: the example table, target evaluation, and the reading of one
row's cells (CSV or JSONL) into typed values with file:row:column problems. Shared by the whole-file
reader (data.examples) and the chunked one (data.stream).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

import numpy as np

from ..lang import ast, expr
from ..lang.diagnostics import Diagnostic, TangleError
from ..spec.columns import source_columns
from . import expr_numpy

MAX_REPORTED = 10
SUMMARY_VALUES = 1024  # a target with this many distinct values or fewer is summarised by all (tables check each)


class DataError(TangleError):
    """Problems with the data: positioned in the data file (file:row:column) or in the spec."""


@dataclass
class Examples:
    columns: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]
    eval_index: np.ndarray  # rows used for evaluation
    train_index: np.ndarray  # rows used for training
    lines: np.ndarray | None = None  # each row's line in the file it was read from (None: not from a file)
    # field -> which rows carry it (a field no module on a row's route reads may be absent, its value
    # filled); a field not here is carried by every row
    present: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def take(self, index: np.ndarray) -> "Examples":
        cols = {k: v[index] for k, v in self.columns.items()}
        tg = {k: v[index] for k, v in self.targets.items()}
        all_rows = np.arange(len(index))
        return Examples(cols, tg, all_rows, all_rows, None if self.lines is None else self.lines[index],
                        {k: v[index] for k, v in self.present.items()})


def evaluate_targets(checked, columns: dict[str, np.ndarray],
                     data_targets: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Every target's column: read from the data, or computed in dependency order (DataError on failure)."""
    targets = dict(data_targets or {})
    known = {**columns, **targets}  # what an expression may read: the columns and the targets so far
    scope = checked.expr_scope()
    for name in checked.target_order:
        try:
            targets[name] = known[name] = expr_numpy.evaluate(checked.graph.targets[name].expr, known, scope)
        except expr.ExprError as err:
            raise DataError([err.diagnostic]) from None
    return targets


class RowProblems:
    """Collects bad cells as file:row:column diagnostics; keeps the first few and counts the rest."""

    def __init__(self, path: str):
        self.path = path
        self.items: list[Diagnostic] = []
        self.count = 0

    @property
    def full(self) -> bool:
        """Whether a further problem is only counted."""
        return len(self.items) >= MAX_REPORTED

    def add(self, row: int, col: int, message: str, hints=(), always: bool = False) -> None:
        """`always`: listed even past MAX_REPORTED (the problem that stopped the reading)."""
        self.count += 1
        if always or not self.full:
            self.items.append(Diagnostic("E119", message, ast.Span(self.path, row, col, row, col + 1),
                                         hints=list(hints)))

    def forget(self, count: int) -> None:
        """Drop the problems added since there were `count` (a row left out, as `--skip-bad` asks)."""
        del self.items[count:]
        self.count = count

    def raise_if_any(self) -> None:
        if self.count:
            extra = self.count - len(self.items)
            if extra:
                self.items[-1].hints.append(f"{extra} more problem{'s' * (extra != 1)} not shown "
                                            f"({self.count} in all)")
            raise DataError(self.items)


def wanted_columns(checked) -> dict[str, ast.FieldType | str]:
    """Column name -> its type (inputs, data targets) or 'selector'."""
    g = checked.graph
    cols: dict[str, ast.FieldType | str] = {n: d.type for n, d in g.inputs.items()}
    cols.update({n: "selector" for n in g.selectors})
    cols.update({n: t.type for n, t in g.targets.items() if t.expr is None and t.type is not None})
    return cols


def some_names(names: list[str], shown: int = 20) -> str:
    """Names for a message: the first `shown`, then how many more."""
    extra = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {extra:,} more" if extra > 0 else "")


def field_sources(checked, wanted) -> dict[str, list[str]]:
    """Field -> the file columns it is read from: its own name, or what `input ... from` names
    (spec/columns.py; a vector may spread over several), or a target's `from data "column"`."""
    g = checked.graph
    sources = {}
    for name in wanted:
        if name in g.inputs:
            sources[name] = source_columns(g.inputs[name])
        else:
            column = g.targets[name].column if name in g.targets else None
            sources[name] = [column.text if column is not None else name]
    return sources


def jsonl_cells(lineno: int, text: str, wanted, problems: RowProblems,
                optional=()) -> dict[str, tuple[object, int]] | None:
    """One JSONL line's wanted cells as {key: (value, char column)}; None when it is not a JSON object
    (problems are added; also used by tanglec.data.stream). An `optional` field may be left out or
    null (left out of the cells: the reader decides whether the row's route needs it)."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        problems.add(lineno, err.colno, f"not JSON: {err.msg}")
        return None
    except (ValueError, RecursionError) as err:  # a 5,000-digit number; arrays nested 100,000 deep
        problems.add(lineno, 1, "not JSON this reader accepts: " + (
            "nested too deeply" if isinstance(err, RecursionError) else str(err).split(";")[0]))
        return None
    if not isinstance(obj, dict):
        problems.add(lineno, 1, "each line must be a JSON object")
        return None
    cells = {}
    for key in wanted:
        if key in optional and obj.get(key) is None:
            continue
        if key not in obj:
            problems.add(lineno, 1, f"missing field '{key}'")
            continue
        col = text.find(f'"{key}"') + 1 or 1
        wrong = _json_type_problem(obj[key], wanted[key])
        if wrong:
            problems.add(lineno, col, f"{key}: {wrong}")
            continue
        cells[key] = (obj[key], col)
    return cells


def column_arrays(checked, wanted, values: dict[str, list]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Converted cell values -> (inputs, data targets) arrays (also used by tanglec.data.stream, per chunk)."""
    g = checked.graph
    inputs, targets = {}, {}
    for name, t in wanted.items():
        col = values[name]
        if isinstance(t, ast.VectorType):
            arr = np.asarray(col, dtype=np.float32).reshape(len(col), t.size)
        elif isinstance(t, ast.TextType):
            arr = np.asarray(col, dtype=object)
        elif isinstance(t, ast.FloatType) or name in g.targets and any(v != v for v in col):  # NaN: left out
            arr = np.asarray(col, dtype=np.float64)
        else:
            arr = np.asarray(col, dtype=np.int64)
        (targets if name in g.targets else inputs)[name] = arr
    return inputs, targets


_JSON_KINDS = {bool: "true/false", dict: "an object", list: "an array", str: "a string", int: "an integer",
               float: "a number", type(None): "null"}


def _json_type_problem(raw, t) -> str | None:
    """A JSON value of the wrong JSON type for its field: ints are integers (3.0 is not), floats are
    numbers, categories and selectors strings, vectors arrays of numbers; true/false is none of them."""
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    if t == "selector" or isinstance(t, (ast.SelectDecl, ast.CategoryType)):
        ok, want = isinstance(raw, str), "a string"
    elif isinstance(t, ast.IntType):
        ok, want = isinstance(raw, int) and not isinstance(raw, bool), "an integer"
    elif isinstance(t, ast.FloatType):
        ok, want = number(raw), "a number"
    elif isinstance(t, ast.TextType):
        ok, want = isinstance(raw, str), "a string"
    elif isinstance(t, ast.VectorType):  # a vector of one value may be written as that number
        ok = isinstance(raw, list) and all(number(x) for x in raw) or t.size == 1 and number(raw)
        want = "an array of numbers"
        if isinstance(raw, list) and not ok:
            return "expected an array of numbers, got an array holding other values"
    else:
        return None
    if ok:
        return None
    shown = f" ({json.dumps(raw)[:40]})" if isinstance(raw, (str, int, float)) and not isinstance(raw, bool) else ""
    return f"expected {want}, got {_JSON_KINDS.get(type(raw), type(raw).__name__)}{shown}"


_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:inf|infinity|nan)",
                      re.IGNORECASE)


def cell_number(raw) -> float | None:
    """A JSON number, or a cell in ASCII decimal syntax (float() also takes `1_0` and other scripts' digits)."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        try:
            return float(raw)
        except OverflowError:  # an integer of 400 digits
            return None
    text = str(raw).strip()
    return float(text) if _DECIMAL.fullmatch(text) else None


def _shown(text: str) -> str:
    """A cell's text in a message: quoted, its line breaks escaped, at most 40 characters."""
    return repr(text[:40]) + ("…" if len(text) > 40 else "")


def convert_value(raw, t):
    """A cell's value for a declared type; ValueError with a reason a person can act on."""
    if isinstance(t, ast.SelectDecl) or isinstance(t, ast.CategoryType):
        names = [v.text for v in t.values]
        text = str(raw).strip()
        if text not in names:
            raise ValueError(f"{_shown(text)} is not one of {', '.join(names)}")
        return names.index(text)
    if isinstance(t, ast.IntType):
        text = str(raw).strip()
        if isinstance(raw, bool) or not re.fullmatch(r"[+-]?[0-9]+", text):
            raise ValueError(f"{_shown(text)} is not an integer")
        if len(text) > 30:
            raise ValueError(f"{text[:20]}… is outside {t.lo}..{t.hi}")
        v = int(text)
        if not t.lo <= v <= t.hi:
            raise ValueError(f"{v} is outside {t.lo}..{t.hi}")
        return v
    if isinstance(t, ast.FloatType):
        v = cell_number(raw)
        if v is None:
            raise ValueError(f"{_shown(str(raw))} is not a number")
        if not math.isfinite(v):
            raise ValueError(f"{raw} is not a finite number")
        if t.lo is not None and not t.lo <= v <= t.hi:
            raise ValueError(f"{v} is outside {t.lo}..{t.hi}")
        return v
    if isinstance(t, ast.VectorType):
        items = raw if isinstance(raw, list) else [raw] if isinstance(raw, (int, float)) else str(raw).split()
        if len(items) != t.size:
            raise ValueError(f"{len(items)} values, expected {t.size}")
        vec = [cell_number(x) for x in items]
        if None in vec:
            raise ValueError("a vector holds numbers only")
        if not all(math.isfinite(x) for x in vec):
            raise ValueError("a vector holds finite numbers only")
        return vec
    if isinstance(t, ast.TextType):
        text = str(raw).strip()
        if not text:
            raise ValueError("the text is empty")
        return text
    raise ValueError(f"unsupported type {t}")
