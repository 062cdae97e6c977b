"""`tanglec draft`: a first spec for a data file, from what its columns hold.

A person with the CSV or JSONL file of a data set gets a spec that reads the file as it is and trains:
one encoder over its number columns (`input features: vector(n) from ...`, standardized), or else over
one text, vector or category column, and one decoder of the target column (the last one unless named).
Only the first SAMPLE_ROWS rows are read, to tell each column's kind. The draft is a start to edit: its
comments say what was guessed and which columns it leaves out, and why.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..lang import ast
from ..lang.diagnostics import Diagnostic
from ..lang.fmt import format_source
from ..util.files import data_file_problem
from .rows import DataError, cell_number, some_names

SAMPLE_ROWS = 10_000
SAMPLE_BYTES = 64 * 2**20  # read at most this much of the file
MAX_CATEGORIES = 50  # a column of at most this many distinct words is a category; more is text
MAX_ONEHOT = 1000  # an int target 0..n-1 decoded one-hot up to this n; a wider one is a number to regress
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_INTEGER = re.compile(r"[+-]?[0-9]+\Z")
_NUMBERED = re.compile(r"(.*?)([0-9]+)\Z", re.S)


@dataclass
class Column:
    """What the sampled cells of one column hold."""

    name: str
    cells: int = 0  # non-empty cells
    missing: int = 0
    kind: str = "empty"  # int, float, vector, category, text, empty
    values: set = field(default_factory=set)  # distinct values, while few
    lo: float | None = None
    hi: float | None = None
    width: int | None = None  # a vector's length
    ascending: bool = True  # numbers each one more than the cell before (a row number)
    last: float | None = None  # the last number seen

    def describe(self) -> str:
        if self.kind == "category" and len(self.values) > MAX_CATEGORIES:
            return f"text, over {MAX_CATEGORIES} values"
        if self.kind == "category" or self.kind == "int" and len(self.values) <= MAX_CATEGORIES:
            return f"{self.kind}, {len(self.values)} values"
        if self.kind in ("int", "float"):
            return f"{self.kind} {_number_text(self.lo)}..{_number_text(self.hi)}"
        return f"vector({self.width})" if self.kind == "vector" else self.kind


@dataclass
class Draft:
    text: str  # the spec
    rows: int  # rows sampled
    target: str
    read: list[str]  # columns the spec reads (besides the target)
    left_out: dict[str, str]  # column -> why the spec does not read it


def draft_spec(path: Path, target: str | None = None, data_path: str | None = None) -> Draft:
    """A spec reading `path` (named in it as `data_path`, default: as given); DataError when the file
    can't be read or holds no column to learn from."""
    columns, rows = _sample(path)
    if not columns:
        raise _error(path, "the data file has no columns")
    by_name = {c.name: c for c in columns}
    if target is None:
        target = columns[-1].name
    elif target not in by_name:
        raise _error(path, f"no column '{target}' in the data file", hints=[f"columns: {some_names(list(by_name))}"])
    goal = by_name[target]
    if _final_kind(goal) in ("text", "empty"):
        raise _error(path, f"the target column '{target}' holds {'no values' if goal.kind == 'empty' else 'text'}: "
                           "a decoder answers with a number, a category or a vector",
                     hints=["name another column with --target"])
    read, left_out = _inputs(columns, goal)
    if not read:
        raise _error(path, "no column besides the target holds numbers, vectors, categories or text to learn from",
                     hints=[f"{name}: {why}" for name, why in left_out.items()][:10])
    lines = _header(path, rows, goal, read, left_out)
    lines += _body(read, goal, data_path or str(path))
    text = format_source("\n".join(lines) + "\n", "<draft>")
    return Draft(text, rows, target, [c.name for c in read], left_out)


# ---- reading a sample ------------------------------------------------------------------------------

def _sample(path: Path) -> tuple[list[Column], int]:
    problem = data_file_problem(path)
    if problem is not None:
        raise _error(path, problem)
    with open(path, "rb") as fh:
        data = fh.read(SAMPLE_BYTES)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        if len(data) < SAMPLE_BYTES or err.start < len(data) - 4:  # not a character the sample's end cut
            line = data[:err.start].count(b"\n") + 1
            raise _error(path, f"the data file is not UTF-8 text ({err.reason} at byte {err.start})", line) from None
        text = data[:err.start].decode("utf-8-sig")
    if len(data) == SAMPLE_BYTES:
        text = text[:text.rfind("\n") + 1]  # whole rows only
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        records = _jsonl_records(path, text)
    else:
        records = _csv_records(path, text)
    columns: dict[str, Column] = {}
    rows = 0
    for record in records:
        rows += 1
        for name, value in record.items():
            column = columns.setdefault(name, Column(name, missing=rows - 1))
            _add(column, value)
        for column in columns.values():
            if column.name not in record:
                column.missing += 1
        if rows >= SAMPLE_ROWS:
            break
    if rows == 0:
        raise _error(path, "the data file has no rows")
    return list(columns.values()), rows


def _csv_records(path: Path, text: str):
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise _error(path, "the data file is empty")
    names = [h.strip() for h in header]
    if len(set(names)) < len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise _error(path, f"column '{twice}' appears more than once in the header")
    for cells in reader:
        if any(c.strip() for c in cells):
            yield dict(zip(names, cells))


def _jsonl_records(path: Path, text: str):
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            raise _error(path, "not JSON: each line must be a JSON object", number) from None
        if not isinstance(record, dict):
            raise _error(path, "each line must be a JSON object", number)
        yield record


def _add(column: Column, value) -> None:
    """Fold one cell into what the column is known to hold (a kind only widens: int < float < vector...)."""
    if value is None or isinstance(value, str) and not value.strip():
        column.missing += 1
        return
    column.cells += 1
    kind, number, width = _cell_kind(value)
    if column.kind == "empty":
        column.kind = kind
    elif column.kind != kind:
        column.kind = _wider(column.kind, kind)
    if kind == "vector":
        column.width = width if column.width in (None, width) else -1
    if number is not None:
        if column.last is not None:
            column.ascending = column.ascending and number == column.last + 1
        column.last = number
        column.lo = number if column.lo is None else min(column.lo, number)
        column.hi = number if column.hi is None else max(column.hi, number)
    if len(column.values) <= MAX_CATEGORIES:
        column.values.add(value.strip() if isinstance(value, str) else json.dumps(value))


def _cell_kind(value) -> tuple[str, float | None, int | None]:
    """(kind, its number, its width) of one non-empty cell."""
    if isinstance(value, bool):
        return "category", None, None
    if isinstance(value, (int, float)):
        return ("int" if isinstance(value, int) else "float"), float(value), None
    if isinstance(value, list):
        ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        return ("vector", None, len(value)) if ok and value else ("text", None, None)
    if not isinstance(value, str):
        return "text", None, None
    text = value.strip()
    number = cell_number(text)
    if number is not None and number == number and abs(number) != float("inf"):
        return ("int" if _INTEGER.fullmatch(text) else "float"), number, None
    parts = text.replace(",", " ").split()
    if len(parts) > 1 and all(cell_number(p) is not None for p in parts):
        return "vector", None, len(parts)
    return "category", None, None  # words: a category while they are few (see _inputs)


def _wider(a: str, b: str) -> str:
    """The kind of a column holding cells of two kinds: numbers of both kinds are floats; numbers mixed
    with words are words (a category while they are few)."""
    if {a, b} <= {"int", "float"}:
        return "float"
    return "text" if "text" in (a, b) else "category"


# ---- choosing what to read -------------------------------------------------------------------------

def _inputs(columns: list[Column], goal: Column) -> tuple[list[Column], dict[str, str]]:
    """The columns the draft reads, and why each other one is left out. Numbers are read together as
    one vector; without any, the first vector column, else the first text or category column."""
    left_out: dict[str, str] = {}
    numbers, others = [], []
    for c in columns:
        if c is goal:
            continue
        why = _unusable(c)
        if why:
            left_out[c.name] = why
        elif c.kind in ("int", "float"):
            numbers.append(c)
        else:
            others.append(c)
    if numbers:
        for c in others:
            left_out[c.name] = f"{c.describe()}: the draft reads the number columns (an encoder of its own could read it)"
        return numbers, left_out
    for kind in ("vector", "text", "category"):
        chosen = [c for c in others if _final_kind(c) == kind]
        if chosen:
            for c in others:
                if c is not chosen[0]:
                    left_out[c.name] = f"{c.describe()}: the draft reads one column (an encoder of its own could read it)"
            return [chosen[0]], left_out
    return [], left_out


def _unusable(c: Column) -> str | None:
    if not c.name:
        return "no name in the header: an index a program wrote"
    if c.kind == "empty":
        return "empty"
    if c.missing:
        return f"{c.missing} of the rows sampled leave it empty"
    if c.kind == "vector" and c.width == -1:
        return "vectors of different lengths"
    if c.kind == "int" and c.ascending and c.cells > 2:
        return "counts up by one from row to row: a row number"
    if c.kind == "category" and len(c.values) == 1:
        return f"always {next(iter(c.values))}"
    return None


def _final_kind(c: Column) -> str:
    if c.kind == "category" and (len(c.values) > MAX_CATEGORIES or _wordy(c)):
        return "text"
    return c.kind


def _wordy(c: Column) -> bool:
    """Cells of several words each, mostly different: sentences, not labels."""
    spaced = sum(" " in v for v in c.values)
    return spaced > len(c.values) / 2 and len(c.values) > c.cells / 2


# ---- writing the spec ------------------------------------------------------------------------------

def _header(path: Path, rows: int, goal: Column, read: list[Column], left_out: dict[str, str]) -> list[str]:
    lines = [f"# Drafted by `tanglec draft` from {path.name} ({rows:,} row{'s' * (rows != 1)} read): a start to edit.",
             f"# Target: {goal.name} ({goal.describe()}); read: {some_names([c.name for c in read], 8)}."]
    for name, why in left_out.items():
        lines.append(f"# Not read: {name or '(unnamed)'}: {why}.")
    return lines + [""]


def _body(read: list[Column], goal: Column, data_path: str) -> list[str]:
    keywords = _keywords()
    target = _field_name(goal.name, keywords, "target")
    target_type, out_codec, width = _target_type(goal, keywords)
    from_column = "" if target == goal.name else f" {_quoted(goal.name)}"
    source = read[0]
    if source.kind in ("int", "float"):
        field_name = "features" if target != "features" else "readings"
        columns = _column_list([c.name for c in read], keywords)
        input_line = f"input {field_name}: vector({len(read)}) from {columns}"
        encoder = f"vector({len(read)}) -> latent(32) = standardize, dense 64 relu, dense 32"
    else:
        field_name = _field_name(source.name, keywords, "features")
        if field_name == target:
            field_name += "_in"
        kind = _final_kind(source)
        renamed = "" if field_name == source.name else f" from {_quoted(source.name)}"
        if kind == "vector":
            input_line = f"input {field_name}: vector({source.width}){renamed}"
            encoder = f"vector({source.width}) -> latent(32) = standardize, dense 64 relu, dense 32"
        elif kind == "text":
            input_line = f"input {field_name}: text{renamed}"
            encoder = "ngrams(1024) -> latent(32) = dense 64 relu, dense 32"
        else:
            values = sorted(source.values)
            input_line = f"input {field_name}: category {' | '.join(_label(v, keywords) for v in values)}{renamed}"
            encoder = f"onehot({len(values)}) -> latent(32) = dense 64 relu, dense 32"
    decoder = f"to_{target}"
    return [input_line, "",
            f"module encoder: {encoder}",
            f"module {decoder}: latent(32) -> {out_codec} = dense 64 relu, dense {width}", "",
            f"route {field_name} -> encoder -> {decoder}", "",
            f"target {target}: {target_type} from data{from_column}",
            f"decode {decoder} as {target}{_tolerance(goal, out_codec)}", "",
            f"data file {_quoted(data_path, always=True)} eval 0.2 seed 0",
            "train steps 3000 batch 32 adam 0.003 seed 0 until loss patience 20"]


def _target_type(goal: Column, keywords: set[str]) -> tuple[str, str, int]:
    """(the target's type, its decoder's codec, that codec's width)."""
    kind = _final_kind(goal)
    if kind == "vector":
        return f"vector({goal.width})", f"vector({goal.width})", goal.width
    few = len(goal.values) <= MAX_CATEGORIES
    if kind == "int" and few and goal.lo >= 0 and goal.hi < MAX_ONEHOT:
        top = int(goal.hi)
        return f"int {int(goal.lo)}..{top}", f"onehot({top + 1})", top + 1
    if kind == "category" or kind == "int" and few:
        values = sorted(goal.values, key=lambda v: (float(v), v) if kind == "int" else (0, v))
        return "category " + " | ".join(_label(v, keywords) for v in values), f"onehot({len(values)})", len(values)
    bounds = f" {_number_text(goal.lo)}..{_number_text(goal.hi)}" if goal.lo < goal.hi else ""
    return f"float{bounds}", "scalar", 1


def _tolerance(goal: Column, codec: str) -> str:
    """A number decoded as a scalar counts as right within a twentieth of the target's range (a guess to
    edit: the default, 0.5, fits whole numbers)."""
    if codec != "scalar" or goal.hi - goal.lo <= 10:
        return ""
    step = (goal.hi - goal.lo) / 20
    return f" tolerance {_number_text(float(f'{step:.2g}'))}"


def _column_list(names: list[str], keywords: set[str]) -> str:
    """The columns as `from` names them: runs of numbered names as `first..last`."""
    parts, i = [], 0
    while i < len(names):
        j = i
        while j + 1 < len(names) and _follows(names[j], names[j + 1]):
            j += 1
        if j - i >= 2 and _run_is(names[i], names[j], names[i:j + 1]):
            parts.append(f"{_quoted(names[i], keywords)}..{_quoted(names[j], keywords)}")
        else:
            parts += [_quoted(n, keywords) for n in names[i:j + 1]]
        i = j + 1
    return ", ".join(parts)


def _follows(a: str, b: str) -> bool:
    x, y = _NUMBERED.match(a), _NUMBERED.match(b)
    return bool(x and y and x[1] == y[1] and int(y[2]) == int(x[2]) + 1)


def _run_is(first: str, last: str, names: list[str]) -> bool:
    """Whether spec/columns.py reads `first..last` as exactly `names`."""
    from ..spec.columns import run_names

    span = ast.Span("<draft>", 1, 1, 1, 1)
    try:
        return run_names(ast.Column(ast.Name(first, span), ast.Name(last, span), span)) == names
    except ValueError:
        return False


def _field_name(column: str, keywords: set[str], fallback: str) -> str:
    """A spec name for a column: itself when it is one, else its letters, digits and underscores."""
    if _NAME.fullmatch(column) and column not in keywords:
        return column
    name = re.sub(r"[^A-Za-z0-9_]+", "_", column).strip("_").lower()
    name = re.sub(r"^[^A-Za-z]+", "", name)
    return name if name and name not in keywords else fallback


def _label(value: str, keywords: set[str]) -> str:
    return value if _NAME.fullmatch(value) and value not in keywords else _quoted(value)


def _quoted(name: str, keywords: set[str] | None = None, always: bool = False) -> str:
    """A name as the spec writes it: bare when it can be, else in quotes (a string can't hold a quote:
    the draft replaces one with an apostrophe, and the column must then be renamed by hand)."""
    if not always and keywords is not None and _NAME.fullmatch(name) and name not in keywords:
        return name
    return '"' + name.replace('"', "'").replace("\n", " ") + '"'


def _keywords() -> set[str]:
    from ..lang.parser import grammar_path

    return set(re.findall(r'"([a-z][a-z_]*)"', grammar_path().read_text()))


def _number_text(value: float | None) -> str:
    """A number as a spec writes it: whole numbers as integers while exact (within ±2**53), else floats."""
    if value is None:
        return ""
    return str(int(value)) if value == int(value) and abs(value) < 2**53 else f"{value:.15g}"


def _error(path: Path, message: str, line: int = 1, hints=()) -> DataError:
    return DataError([Diagnostic("E119", message, ast.Span(str(path), line, 1, line, 2), hints=list(hints))])


def relative_data_path(data: Path, spec_folder: Path) -> str:
    """The data file as a spec in `spec_folder` names it (paths in a spec are relative to its folder)."""
    return os.path.relpath(os.path.abspath(data), os.path.abspath(spec_folder))
