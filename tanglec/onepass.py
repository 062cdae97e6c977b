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

from .diagnostics import Diagnostic, TangleError, sort_key

# what the absence of an unparsed statement can cause: not reported alongside syntax errors
ABSENCE = {"E101", "E106", "E107", "E108", "E109", "E110", "E112", "E119", "E124", "E125", "E126", "E160",
           "E161", "E162", "E163", "W201", "W203", "W204", "W205"}


def check_text(text: str, file: str = "<spec>"):
    """(Checked or None, every diagnostic): Checked is None when the spec has syntax errors."""
    from .parser import parse

    try:
        spec = parse(text, file)
    except TangleError as err:
        return None, _with_semantics(text, file, err.diagnostics)
    return _checked(spec)


def check_file(path: str | Path):
    """check_text for a file, read the safe way (E005/E006: too large, not a regular file, not UTF-8)."""
    from .parser import parse_file

    path = Path(path)
    try:
        spec = parse_file(path)
    except TangleError as err:
        if any(d.code in ("E005", "E006") for d in err.diagnostics):
            return None, err.diagnostics
        return None, _with_semantics(path.read_text(encoding="utf-8"), str(path), err.diagnostics)
    return _checked(spec)


def _checked(spec):
    from .checks import check

    checked = check(spec)
    return checked, checked.diagnostics


def _with_semantics(text: str, file: str, syntax: list[Diagnostic]) -> list[Diagnostic]:
    """The syntax diagnostics plus what the checks find in the statements that parsed."""
    from .checks import check
    from .parser import parse_partial

    if any(d.code in ("E005", "E150", "E151") for d in syntax):
        return syntax
    partial, _ = parse_partial(text, file)
    semantic = [d for d in check(partial).diagnostics if d.code not in ABSENCE]
    return sorted(syntax + semantic, key=sort_key)
