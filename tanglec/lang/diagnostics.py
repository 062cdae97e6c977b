"""One Diagnostic type for syntax, semantic, data and model problems, rendered for people or as JSON."""
from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from typing import Iterable

from .ast import Span

ERROR = "error"
WARNING = "warning"


@dataclass
class Related:
    """A secondary location that explains the main one ("declared here")."""

    span: Span
    message: str

    def to_json(self) -> dict:
        return {"span": self.span.to_json(), "message": self.message}


@dataclass
class Diagnostic:
    code: str
    message: str
    span: Span | None
    severity: str = ERROR
    hints: list[str] = field(default_factory=list)
    related: list[Related] = field(default_factory=list)

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def to_json(self) -> dict:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "span": self.span.to_json() if self.span else None,
            "hints": list(self.hints),
            "related": [r.to_json() for r in self.related],
        }


class TangleError(Exception):
    """Raised when a stage finds problems; carries every diagnostic found, not only the first."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = list(diagnostics)
        super().__init__("; ".join(f"{d.code}: {d.message}" for d in self.diagnostics))


_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` with terminal control characters (ESC, BEL, CR, C1...) written as `\\x1b`: a data cell,
    a spec line or a query argument can't drive the terminal. Newlines and tabs stay."""
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def output_refused(refused) -> TangleError:
    """E192 for an output path the output policy refuses (an OutputRefused of tanglec/util/files.py)."""
    return TangleError([Diagnostic("E192", f"refusing to write {refused.path}: {refused.reason}",
                                   Span(str(refused.path), 1, 1, 1, 2), hints=[refused.hint])])


def write_error(path, err: OSError) -> TangleError:
    """E142: a run (or checkpoint) could not be written, e.g. the disk is full; nothing was replaced."""
    reason = os.strerror(err.errno).lower() if err.errno else str(err)
    return TangleError([Diagnostic("E142", f"{reason} writing {path}; nothing was written",
                                   Span(str(path), 1, 1, 1, 2),
                                   hints=["free some space (or raise the file size limit) and compile again; "
                                          "a previous run there is intact"])])


def did_you_mean(word: str, candidates: Iterable[str]) -> list[str]:
    """Hints naming the closest known names, or nothing when none is close."""
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return [f"did you mean '{close[0]}'?"] if close else []


class SourceCache:
    """Source text by file name, so a diagnostic can quote the line it points at."""

    def __init__(self) -> None:
        self._texts: dict[str, list[str]] = {}

    def add(self, file: str, text: str) -> None:
        # lines end at "\n" only, as the parser counts them (str.splitlines also splits at \r, \f, \u2028...)
        self._texts[file] = [line.rstrip("\r") for line in text.split("\n")]

    def line(self, file: str, number: int) -> str | None:
        lines = self._texts.get(file)
        if lines is None or not 1 <= number <= len(lines):
            return None
        return lines[number - 1]


SOURCES = SourceCache()


EXCERPT_WIDTH = 120


def _excerpt(span: Span, label: str = "") -> list[str]:
    text = SOURCES.line(span.file, span.line)
    if text is None:
        return []
    gutter = str(span.line)
    pad = " " * len(gutter)
    end = span.end_col if span.end_line == span.line and span.end_col > span.col else span.col + 1
    end = min(max(end, span.col + 1), max(len(text) + 2, span.col + 1))
    shown, lo = text.expandtabs(1), 0
    if len(shown) > EXCERPT_WIDTH:  # a window around the caret, not a 40,000-character line per diagnostic
        lo = max(0, min(span.col - 1 - EXCERPT_WIDTH // 3, len(shown) - EXCERPT_WIDTH))
        shown = ("…" if lo else "") + shown[lo:lo + EXCERPT_WIDTH] + ("…" if lo + EXCERPT_WIDTH < len(shown) else "")
        lo -= 1 if lo else 0
    at, width = span.col - 1 - lo, min(end - span.col, EXCERPT_WIDTH)  # in `shown`, before escaping
    caret = " " * len(printable(shown[:at])) + "^" * max(len(printable(shown[at:at + width])), width)
    out = [f" {gutter} | {printable(shown)}", f" {pad} | {caret}" + (f" {label}" if label else "")]
    return out


def render(diag: Diagnostic) -> str:
    """`file:line:col: error[E101]: message`, the source line, a caret under the span, then hints."""
    where = f"{diag.span}: " if diag.span else ""
    lines = [f"{where}{diag.severity}[{diag.code}]: {diag.message}"]
    if diag.span:
        lines += _excerpt(diag.span)
    for rel in diag.related:
        lines.append(f"  note: {rel.span}: {rel.message}")
        lines += ["  " + x for x in _excerpt(rel.span)]
    lines += [f"  hint: {h}" for h in diag.hints]
    return printable("\n".join(lines))


def render_all(diags: Iterable[Diagnostic]) -> str:
    diags = list(diags)
    errors = sum(d.is_error for d in diags)
    warnings = len(diags) - errors
    parts = [render(d) for d in diags]
    if diags:
        parts.append(f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}")
    return "\n\n".join(parts[:-1]) + ("\n\n" if len(parts) > 1 else "") + parts[-1] if parts else ""


def sort_key(diag: Diagnostic) -> tuple:
    s = diag.span
    return (s.file, s.line, s.col) if s else ("", 0, 0)
