"""The Spec view: the source with every diagnostic underlined and explained in place, and a list to jump
between them (a spec with problems opens here instead of crashing)."""
from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, ScrollableContainer, Vertical
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from ...lang.diagnostics import SOURCES, Diagnostic

GUTTER = 6  # "  12 │ "


def _severity_style(d: Diagnostic) -> str:
    return "bold red" if d.is_error else "bold yellow"


def _where(d: Diagnostic, source_file: str) -> str:
    if d.span is None:
        return "—"
    if d.span.file == source_file:
        return f"{d.span.line}:{d.span.col}"
    return f"{Path(d.span.file).name}:{d.span.line}:{d.span.col}"


def summary(diags: list[Diagnostic]) -> str:
    errors = sum(d.is_error for d in diags)
    warnings = len(diags) - errors
    if not diags:
        return "no problems"
    return f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"


def _highlighted(source: str, count: int) -> list[Text] | None:
    """Each source line coloured by the .tangle lexer (tanglec.lang.highlight), or None if that fails."""
    try:
        from ...lang.highlight import rich_syntax

        lines = list(rich_syntax(source).highlight(source).split("\n", allow_blank=True))
    except Exception:  # noqa: BLE001 — colours are a nicety; plain text still shows every problem
        return None
    lines = lines[:count]
    return lines if len(lines) == count else None


def annotated_source(source: str, source_file: str, diags: list[Diagnostic]) -> tuple[Text, dict[int, int]]:
    """The numbered source with each diagnostic's span underlined and its explanation under the line.

    Returns the text and, per diagnostic index, the row where its explanation starts (to scroll to it).
    """
    lines = source.replace("\t", " ").splitlines() or [""]
    coloured = _highlighted(source.replace("\t", " "), len(lines))
    here = [(i, d) for i, d in enumerate(diags) if d.span is not None and d.span.file == source_file]
    elsewhere = [(i, d) for i, d in enumerate(diags) if (i, d) not in here]
    text = Text(no_wrap=True, overflow="crop", end="")
    rows: dict[int, int] = {}
    row = 0

    def note(i: int, d: Diagnostic, indent: int, marker: str) -> None:
        nonlocal row

        def line(*parts: tuple[str, str]) -> None:
            nonlocal row
            text.append(" " * GUTTER + "│ ", style="dim")
            for part, style in parts:
                text.append(part, style=style)
            text.append("\n")
            row += 1

        rows.setdefault(i, row)
        if marker:
            line((" " * indent + marker, _severity_style(d)))
        line((f"{d.severity}[{d.code}]: ", _severity_style(d)), (d.message, ""))
        for rel in d.related:
            line((f"note: line {rel.span.line}:{rel.span.col}: {rel.message}", "cyan"))
        for h in d.hints:
            line(("hint: ", "bold green"), (h, ""))

    for i, d in elsewhere:  # problems in another file (a data file, a `use`d spec) or without a position
        if d.span is None:
            text.append("(no position)\n", style="dim")
            row += 1
            note(i, d, 0, "")
            continue
        text.append(f"{d.span}\n", style="bold")
        row += 1
        quoted = SOURCES.line(d.span.file, d.span.line)
        if quoted is not None:
            text.append(" " * GUTTER + "│ ", style="dim")
            text.append(quoted.replace("\t", " ") + "\n")
            row += 1
        width = d.span.end_col - d.span.col if d.span.end_line == d.span.line and d.span.end_col > d.span.col else 1
        note(i, d, d.span.col - 1, "^" * width if quoted is not None else "")
    # underline spans: per line, the column ranges to mark with their diagnostic's style
    marks: dict[int, list[tuple[int, int, str]]] = {}
    for i, d in here:
        s = d.span
        for ln in range(s.line, max(s.end_line, s.line) + 1):
            if not 1 <= ln <= len(lines):
                continue
            start = s.col - 1 if ln == s.line else 0
            end = (s.end_col - 1) if ln == s.end_line else len(lines[ln - 1])
            if end <= start:
                end = start + 1
            marks.setdefault(ln, []).append((start, end, "underline " + ("red" if d.is_error else "yellow")))
    starts: dict[int, list[tuple[int, Diagnostic]]] = {}
    for i, d in here:
        starts.setdefault(min(max(d.span.line, 1), len(lines)), []).append((i, d))
    for n, line in enumerate(lines, start=1):
        bad = n in marks
        text.append(f"{n:>{GUTTER - 1}} │ ", style="bold red" if bad else "dim")
        body = coloured[n - 1].copy() if coloured else Text(line)
        for start, end, style in marks.get(n, []):
            body.stylize(style, start, max(end, start + 1))
        if bad and len(line) < max(e for _, e, _ in marks[n]):  # a span past the end: mark the gap
            body.append(" " * (max(e for _, e, _ in marks[n]) - len(line)), style="underline red")
        text.append_text(body)
        text.append("\n")
        row += 1
        for i, d in starts.get(n, []):
            s = d.span
            width = (s.end_col - s.col) if s.end_line == s.line and s.end_col > s.col else 1
            note(i, d, s.col - 1, "^" * max(width, 1))
    return text, rows


class SpecView(Vertical):
    """Source on the left (scrollable), the list of diagnostics and the selected one's details on the right."""

    def __init__(self, source: str, source_file: str, diags: list[Diagnostic], title: str, **kw) -> None:
        super().__init__(**kw)
        self.source = source
        self.source_file = source_file
        self.diags = list(diags)
        self.title = title
        self.rows: dict[int, int] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="spec-summary")
        with Vertical(id="spec-body"):
            with ScrollableContainer(id="spec-scroll") as scroll:
                scroll.border_title = self.title
                yield Static(id="spec-source")
            with Horizontal(id="spec-side"):
                problems = OptionList(id="problem-list")
                problems.border_title = "problems"
                yield problems
                detail = Static(id="problem-detail")
                detail.border_title = "explanation"
                yield detail

    def on_mount(self) -> None:
        # After the first paint: colouring the source costs ~0.1 s (pygments). The app may know of more
        # problems by now (data checked in the background): it passes the current list.
        hook = getattr(self.app, "panel_mounted", None)
        self.call_after_refresh(hook or (lambda _: self.set_diagnostics(self.diags)), self)

    def set_diagnostics(self, diags: list[Diagnostic]) -> None:
        self.diags = list(diags)
        text, self.rows = annotated_source(self.source, self.source_file, self.diags)
        self.query_one("#spec-source", Static).update(text)
        head = Text()
        head.append(summary(self.diags), style="bold red" if any(d.is_error for d in self.diags) else "bold green")
        if any(d.is_error for d in self.diags):
            head.append("  — fix the file, then ctrl+r reloads it")
        self.query_one("#spec-summary", Static).update(head)
        options = self.query_one("#problem-list", OptionList)
        options.clear_options()
        for i, d in enumerate(self.diags):
            label = Text()
            label.append(f"{d.code} ", style=_severity_style(d))
            label.append(f"{_where(d, self.source_file):>7} ", style="dim")
            label.append(d.message)
            options.add_option(Option(label, id=f"diag-{i}"))
        if not self.diags:
            options.add_option(Option(Text("nothing to fix", style="italic"), disabled=True))
        self._explain(0 if self.diags else None)

    def _explain(self, index: int | None) -> None:
        detail = self.query_one("#problem-detail", Static)
        if index is None or index >= len(self.diags):
            detail.update(Text("The spec checks: no errors, no warnings.", style="green"))
            return
        d = self.diags[index]
        text = Text()
        text.append(f"{d.severity}[{d.code}] ", style=_severity_style(d))
        text.append(f"at {_where(d, self.source_file)}\n", style="dim")
        text.append(d.message + "\n")
        for h in d.hints:
            text.append("hint: ", style="bold green")
            text.append(h + "\n")
        for rel in d.related:
            text.append(f"note: {rel.span.line}:{rel.span.col} {rel.message}\n", style="cyan")
        detail.update(text)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_list.id != "problem-list" or event.option.id is None:
            return
        index = int(event.option.id.split("-")[1])
        self._explain(index)
        row = self.rows.get(index)
        if row is not None:
            scroll = self.query_one("#spec-scroll", ScrollableContainer)
            scroll.scroll_to(y=max(row - 3, 0), animate=False)
