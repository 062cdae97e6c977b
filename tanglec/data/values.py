"""Values as the commands write them (predict's cells, query's and eval's answers, text and JSON).

A number is written with the fewest digits that read back as the same value *at the precision it is
held in*: a model's output is a float32, so its 0.3 is written `0.3` (not the float64 expansion
0.30000001192092896, nor a rounding to six places that loses bits); a float read from data is a
float64 and keeps all of its digits. Whole numbers have no point; vectors are lists (JSON) or
space-separated numbers (a cell); a text field's value is written as read.
"""
from __future__ import annotations

import numpy as np


def plain(value) -> int | float | list | str:
    """A number or vector as JSON holds it, reading back (as its own dtype) to exactly `value`; a text
    field's value as it is."""
    if isinstance(value, str):
        return value
    value = np.asarray(value)
    if value.ndim:
        return [plain(v) for v in value]
    if np.issubdtype(value.dtype, np.integer) or value.dtype == bool:
        return int(value)
    number = float(value)
    shortest = str(value[()]) if value.dtype == np.float32 else repr(number)  # numpy's is per dtype
    return int(number) if shortest.endswith(".0") else float(shortest)


def text(value) -> str:
    """A number or vector as a data cell: the same digits as `plain`, a vector's numbers space-separated."""
    shown = plain(value)
    if isinstance(shown, list):
        return " ".join(text(v) for v in np.asarray(value))
    return shown if isinstance(shown, str) else repr(shown)


def category_names(checked, decoder: str) -> list[str] | None:
    """The value names of the category target `decoder` decodes (None for a numeric target)."""
    from ..lang import ast

    declared = checked.graph.targets[checked.graph.decoders[decoder]].type
    return [v.text for v in declared.values] if isinstance(declared, ast.CategoryType) else None


def answer(names: list[str] | None, value) -> int | float | list | str:
    """A decoded answer or target value as shown: a category's by its name (`category_names`), a
    number as `plain` (also an index no category has: a decoder wider than its target's values)."""
    if names is not None and 0 <= int(value) < len(names):
        return names[int(value)]
    return plain(value)
