"""Every problem of a spec in one pass: the syntax errors, and the semantic problems of the statements
that did parse (`tanglec check`).

When a statement doesn't parse it is left out, so the checks would also report what its absence
causes: names it declared are unknown (E101), the modules it routed are unreachable (E107), the target
it decoded is unused (W203)... Those codes are held back while there are syntax errors; everything
else (bad layers, codecs, settings, duplicates, interface mismatches, cycles, ...) is reported with
them. Fix the syntax and the next `check` shows the rest.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..lang import ast
from ..lang.diagnostics import Diagnostic, TangleError, sort_key
from .checks import Checked, check

SpecCheck = Callable[[ast.Spec], Checked]

# what the absence of an unparsed statement can cause: not reported alongside syntax errors
ABSENCE = {"E101", "E106", "E107", "E108", "E109", "E110", "E112", "E119", "E124", "E125", "E126", "E160",
           "E161", "E162", "E163", "W201", "W203", "W204", "W205"}


def check_text(text: str, file: str = "<spec>", check_spec: SpecCheck = check):
    """(Checked or None, every diagnostic): Checked is None when the spec has syntax errors.
    `check_spec` checks a parsed spec (the pipeline's also reads its init run and data)."""
    from ..lang.parser import parse_partial

    spec, syntax = parse_partial(text, file)
    if syntax:
        return None, _with_semantics(spec, syntax, check_spec)
    checked = check_spec(spec)
    return checked, checked.diagnostics


def check_file(path: str | Path, check_spec: SpecCheck = check):
    """check_text for a file, read the safe way (E005/E006: too large, not a regular file, not UTF-8)."""
    from ..lang.parser import read_spec_file

    path = Path(path)
    try:
        text = read_spec_file(path)
    except TangleError as err:
        return None, err.diagnostics
    return check_text(text, str(path), check_spec)


def _with_semantics(partial, syntax: list[Diagnostic], check_spec: SpecCheck) -> list[Diagnostic]:
    """The syntax diagnostics plus what the checks find in the statements that parsed."""
    if any(d.code in ("E005", "E150", "E151") for d in syntax) or not partial.statements:
        return syntax
    semantic = [d for d in check_spec(partial).diagnostics if d.code not in ABSENCE]
    return sorted(syntax + semantic, key=sort_key)
