"""AST of a .tangle spec: plain dataclasses, every node carrying the source span it came from."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Union


class Span(NamedTuple):
    """A region of a source file; lines and columns are 1-based, end_col exclusive.

    A NamedTuple, not a dataclass: a big spec makes tens of thousands of spans, and tuples are
    several times cheaper to create (measured: parsing a 10k-line spec).
    """

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def to_json(self) -> dict:
        return {"file": self.file, "line": self.line, "col": self.col,
                "end_line": self.end_line, "end_col": self.end_col}


@dataclass(unsafe_hash=True)
class Name:
    """An identifier as written, with where it was written (so diagnostics can point at it). Hashed by
    its text and span, and never changed once made; not declared frozen, which would make each of the
    tens of thousands a big spec holds twice as slow to create (every field set through object.__setattr__)."""

    text: str
    span: Span

    def __str__(self) -> str:
        return self.text


# ---- field types ---------------------------------------------------------------

@dataclass
class IntType:
    lo: int
    hi: int
    span: Span

    def describe(self) -> str:
        return f"int {self.lo}..{self.hi}"


@dataclass
class FloatType:
    lo: float | None
    hi: float | None
    span: Span

    def describe(self) -> str:
        return "float" if self.lo is None else f"float {self.lo}..{self.hi}"


@dataclass
class CategoryType:
    values: list[Name]
    span: Span

    def describe(self) -> str:
        return "category " + " | ".join(v.text for v in self.values)


@dataclass
class VectorType:
    size: int
    span: Span

    def describe(self) -> str:
        return f"vector({self.size})"


@dataclass
class TextType:
    """A string of any length: a word or a sentence, read by the `ngrams(n)` codec."""
    span: Span

    def describe(self) -> str:
        return "text"


FieldType = Union[IntType, FloatType, CategoryType, VectorType, TextType]


# ---- expressions ---------------------------------------------------------------

@dataclass
class Number:
    value: float | int
    span: Span


@dataclass
class Ref:
    name: Name
    span: Span


@dataclass
class BinOp:
    op: str  # + - * / // % ** == != < <= > >= and or
    left: "Expr"
    right: "Expr"
    span: Span


@dataclass
class UnaryOp:
    op: str  # - not
    operand: "Expr"
    span: Span


@dataclass
class Call:
    func: Name  # min max abs
    args: list["Expr"]
    span: Span


@dataclass
class IfElse:
    cond: "Expr"
    then: "Expr"
    otherwise: "Expr"
    span: Span


@dataclass
class MatchCase:
    value: Name | None  # None for the wildcard `_`
    expr: "Expr"
    span: Span


@dataclass
class Match:
    selector: Name
    cases: list[MatchCase]
    span: Span


@dataclass
class Fold:
    """`fold v from start by s1, s2 { value: expr of v, ... }`: v starts as `start`, then each selector in
    turn picks a case whose value becomes the next v; the result is the last v (a chain's target)."""

    var: Name
    start: "Expr"
    selectors: list[Name]
    cases: list[MatchCase]
    span: Span

    def step(self, selector: Name) -> Match:
        """One position of the fold as the match it evaluates (with `var` bound to the running value)."""
        return Match(selector, self.cases, self.span)


Expr = Union[Number, Ref, BinOp, UnaryOp, Call, IfElse, Match, Fold]


# ---- statements ----------------------------------------------------------------

@dataclass
class Column:
    """A data file's column as `input ... from` names it (quotes removed), or a run `first..last` of
    columns whose names end in numbers."""

    first: Name
    last: Name | None
    span: Span


@dataclass
class InputDecl:
    name: Name
    type: FieldType
    span: Span
    columns: list[Column] = field(default_factory=list)  # `from ...`: where a data file holds it (spec.columns)


@dataclass
class SelectDecl:
    name: Name
    values: list[Name]
    span: Span


@dataclass
class Codec:
    kind: Name  # bits onehot scalar latent vector, or the name of a `codec ... table`
    size: int | None
    span: Span
    table: "CodecDecl | None" = field(default=None, compare=False, repr=False)  # set by graph.build

    def __str__(self) -> str:
        return self.kind.text if self.size is None else f"{self.kind.text}({self.size})"

    @property
    def family(self) -> str:
        """What the codec does: its built-in kind, or "table" for a declared table codec."""
        return "table" if self.table is not None else self.kind.text


@dataclass
class TableEntry:
    """`3: 1111001`: a value of the field (an int, or a category's name) and its bit pattern as written."""

    key: Name
    pattern: Name  # the digits' text: leading zeros are part of the pattern
    span: Span

    @property
    def number(self) -> int | None:
        """The key as an int (None for a category name)."""
        text = self.key.text
        return int(text) if text.lstrip("+-").isdigit() else None


@dataclass
class CodecDecl:
    """`codec segments: bits(7) table { 0: 1111110, ... }`: a codec given value by value."""

    name: Name
    base: Codec  # bits(n): the width of every pattern
    entries: list[TableEntry]
    span: Span

    def valid_entries(self) -> list[TableEntry]:
        """Entries whose pattern is n binary digits, the first of each key: what the backends use (the
        checker reports the others)."""
        width, keys, out = self.base.size, set(), []
        for e in self.entries:
            if len(e.pattern.text) == width and set(e.pattern.text) <= {"0", "1"} and e.key.text not in keys:
                keys.add(e.key.text)
                out.append(e)
        return out


@dataclass
class Layer:
    """`dense 64 relu`, `dropout 0.1`, `norm`, or a block such as `residual(dense 12 relu, dense 12)`."""

    kind: Name
    args: list[float | int | Name]
    children: list["Layer"]
    span: Span
    is_block: bool = False

    def __str__(self) -> str:
        if self.is_block:
            return f"{self.kind.text}(" + ", ".join(str(c) for c in self.children) + ")"
        return " ".join([self.kind.text, *(str(a) for a in self.args)])


@dataclass
class ModuleDecl:
    name: Name
    input: Codec
    output: Codec
    layers: list[Layer]
    span: Span


@dataclass
class FanOut:
    """One stage of a route: a single module, or several that all receive the previous output."""

    modules: list[Name]
    span: Span


@dataclass
class Branch:
    value: Name   # the selector value that picks this branch
    module: Name  # the module run for it (same name as the value unless written `value: module`)
    span: Span
    identity: bool = False  # `value: _`: no module, the input passes through (a chain's "stop")
    source: Name | None = None  # `value from field`: the input field it reads (None: what the stage is fed)


@dataclass
class Mux:
    branches: list[Branch]
    selectors: list[Name]  # one per position: several make a chain of the same multiplexer
    strategy: Name | None
    span: Span

    @property
    def selector(self) -> Name:
        return self.selectors[0]


Stage = Union[FanOut, Mux]


@dataclass
class RouteDecl:
    source: Name
    stages: list[Stage]
    span: Span


@dataclass
class TargetDecl:
    name: Name
    type: FieldType | None
    expr: Expr | None  # None: the target is a column of the data file
    span: Span
    column: Name | None = None  # `from data "Species"`: the column it is read from (default: its own name)


@dataclass
class DecodeDecl:
    modules: list[Name]
    target: Name
    span: Span
    settings: list["Setting"] = field(default_factory=list)  # `tolerance 0.1`


@dataclass
class Setting:
    key: Name
    value: float | int | str | Name | tuple[Name, float] | tuple[Name, Name] | list[Name]
    span: Span


@dataclass
class DataDecl:
    source: str  # enumerate | sample | file
    arg: int | str | None
    settings: list[Setting]
    span: Span


@dataclass
class TrainDecl:
    settings: list[Setting]
    span: Span


@dataclass
class PhaseDecl:
    """One phase of training (`phase tune steps 100 lr 0.001 modules gray`); phases run in order."""

    name: Name
    settings: list[Setting]
    span: Span


@dataclass
class AlignDecl:
    """Modules that should give the same latent for the same value of a field."""

    modules: list[Name]
    field: Name
    settings: list[Setting]
    span: Span


@dataclass
class HoldoutDecl:
    """Routes through all these modules are never trained on: evaluated as zero-shot composition.
    `holdout length 3, 4` holds out every route whose chains apply that many operations."""

    modules: list[Name]
    span: Span
    lengths: list[int] = field(default_factory=list)


@dataclass
class FreezeDecl:
    modules: list[Name]
    span: Span


@dataclass
class UseDecl:
    """Bring in declarations from another spec (all of them, or only the named modules)."""

    path: str
    only: list[Name] | None
    span: Span


@dataclass
class InitDecl:
    """Start from a trained run: weights load module by module, by name."""

    path: str
    span: Span


Statement = Union[InputDecl, SelectDecl, ModuleDecl, RouteDecl, TargetDecl, DecodeDecl, DataDecl, TrainDecl,
                  PhaseDecl, AlignDecl, HoldoutDecl, FreezeDecl, UseDecl, InitDecl, CodecDecl]


@dataclass
class Spec:
    path: str
    source: str
    statements: list[Statement] = field(default_factory=list)
    used_files: dict[str, str] = field(default_factory=dict)  # path -> text of every spec brought in by `use`

    def of(self, kind: type) -> list:
        return [s for s in self.statements if isinstance(s, kind)]
