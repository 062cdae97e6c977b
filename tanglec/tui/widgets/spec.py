"""The Spec view: an editor on the spec, coloured by the .tangle lexer, with every diagnostic underlined
at its span, and a list of the problems that moves the cursor to each (a spec with problems opens here).

The pane only edits and shows; checking (debounced, as the text changes) is the app's, which posts the
new diagnostics back through `set_diagnostics`."""
from __future__ import annotations

from pathlib import Path

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import OptionList, Static, TextArea
from textual.widgets.option_list import Option

from ...lang.diagnostics import Diagnostic
from .inorder import OrderedTextArea

CHECK_DELAY = 0.25  # seconds of quiet typing before the text is checked


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


# pygments token type (outermost first) -> the TextArea theme's style name
_TOKEN_STYLES = [("Comment", "comment"), ("Literal.String", "string"), ("Keyword.Type", "type.builtin"),
                 ("Keyword", "keyword"), ("Name.Builtin", "type"), ("Name.Function", "function"),
                 ("Name.Constant", "constant.builtin"), ("Name.Attribute", "variable.builtin"),
                 ("Literal.Number", "number"), ("Operator", "operator"), ("Punctuation", "punctuation.bracket")]
_PROBLEM_STYLES = {"tangle.error": Style(underline=True, color="red", bold=True),
                   "tangle.warning": Style(underline=True, color="yellow")}


def _style_name(token) -> str | None:
    text = str(token).removeprefix("Token.")
    for prefix, name in _TOKEN_STYLES:
        if text == prefix or text.startswith(prefix + "."):
            return name
    return None


class SpecEditor(OrderedTextArea):
    """A TextArea for .tangle text: the language's colours, and each diagnostic's span underlined."""

    BINDINGS = [Binding("escape", "leave", "Leave editor")]

    def __init__(self, text: str, source_file: str, **kw) -> None:
        self.source_file = source_file
        self.diags: list[Diagnostic] = []
        super().__init__(text, soft_wrap=False, show_line_numbers=True, **kw)

    def _set_theme(self, theme: str) -> None:
        super()._set_theme(theme)
        self._theme.syntax_styles = {**self._theme.syntax_styles, **_PROBLEM_STYLES}

    def _build_highlight_map(self) -> None:
        """Colours from the pygments lexer (TextArea's own highlighting needs a tree-sitter grammar), then
        the problems' spans; positions are byte offsets within a line, as TextArea expects."""
        from ...lang.highlight import TangleLexer

        self._line_cache.clear()
        highlights = self._highlights
        highlights.clear()
        lines = self.document.lines
        row, row_start = 0, 0
        for index, token, value in TangleLexer().get_tokens_unprocessed(self.text):
            while row + 1 < len(lines) and index >= row_start + len(lines[row]) + 1:
                row_start += len(lines[row]) + 1
                row += 1
            name = _style_name(token)
            if name and "\n" not in value:
                line = lines[row]
                start = len(line[:index - row_start].encode())
                highlights[row].append((start, start + len(value.encode()), name))
        for d in self.diags:
            if d.span is None or d.span.file != self.source_file:
                continue
            name = "tangle.error" if d.is_error else "tangle.warning"
            first = min(max(d.span.line, 1), len(lines)) - 1
            last = min(max(d.span.end_line, d.span.line), len(lines)) - 1
            for r in range(first, last + 1):
                line = lines[r]
                start = d.span.col - 1 if r == first else 0
                end = d.span.end_col - 1 if r == last else len(line)
                end = max(end, start + 1)
                highlights[r].append((len(line[:start].encode()), len(line[:end].encode()) or None, name))

    def set_diagnostics(self, diags: list[Diagnostic]) -> None:
        self.diags = list(diags)
        self._build_highlight_map()
        self.refresh()

    def action_leave(self) -> None:
        """To the problem list, so the view keys (1-4, q) work again."""
        self.app.spec_focus = "#problem-list"
        self.screen.query_one("#problem-list").focus()


class SpecView(Vertical):
    """The editor on the left, the problems and the selected one's explanation on the right."""

    class Edited(Message):
        """The text changed and then stayed unchanged for CHECK_DELAY seconds: check it."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, source: str, source_file: str, diags: list[Diagnostic], title: str, **kw) -> None:
        super().__init__(**kw)
        self.source = source
        self.source_file = source_file
        self.diags = list(diags)
        self.title = title
        self._pending = None

    def compose(self) -> ComposeResult:
        yield Static(id="spec-summary")
        with Horizontal(id="spec-body"):
            editor = SpecEditor(self.source, self.source_file, id="editor")
            editor.border_title = self.title
            yield editor
            with Vertical(id="spec-side"):
                problems = OptionList(id="problem-list")
                problems.border_title = "problems"
                yield problems
                detail = Static(id="problem-detail")
                detail.border_title = "explanation"
                yield detail

    def on_mount(self) -> None:
        hook = getattr(self.app, "panel_mounted", None)
        self.call_after_refresh(hook or (lambda _: self.set_diagnostics(self.diags)), self)

    @property
    def editor(self) -> SpecEditor:
        return self.query_one("#editor", SpecEditor)

    @property
    def text(self) -> str:
        return self.editor.text

    def replace_text(self, text: str) -> None:
        """New text (the formatter's), keeping the cursor where it was as far as possible."""
        editor = self.editor
        cursor = editor.cursor_location
        editor.replace(text, (0, 0), editor.document.end)
        editor.cursor_location = cursor

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        event.stop()
        if self._pending is not None:
            self._pending.stop()
        self._pending = self.set_timer(CHECK_DELAY, self._edited)

    def _edited(self) -> None:
        self._pending = None
        self.post_message(self.Edited(self.text))

    def set_diagnostics(self, diags: list[Diagnostic], note: str = "") -> None:
        self.diags = list(diags)
        self.editor.set_diagnostics(self.diags)
        head = Text()
        head.append(summary(self.diags), style="bold red" if any(d.is_error for d in self.diags) else "bold green")
        if note:
            head.append(f"  — {note}", style="dim")
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
        else:
            options.highlighted = 0
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
        if event.option_list.has_focus:  # the user moves through the list (not a refresh while typing)
            self._jump(index, focus=False)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_list.id == "problem-list" and event.option.id is not None:
            self._jump(int(event.option.id.split("-")[1]), focus=True)

    def _jump(self, index: int, focus: bool) -> None:
        """Move the editor's cursor to a problem in this file (enter or a click also focuses the editor)."""
        d = self.diags[index]
        if d.span is None or d.span.file != self.source_file:
            return
        editor = self.editor
        editor.cursor_location = (max(d.span.line - 1, 0), max(d.span.col - 1, 0))
        editor.scroll_cursor_visible(center=True, animate=False)
        if focus:
            editor.focus()
