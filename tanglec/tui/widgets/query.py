"""The Query view: a form generated from the spec (a field per input, a choice per selector), every
decoder's answer / confidence / expected target, and the route the query takes, lit in a graph."""
from __future__ import annotations

from rich.text import Text
from textual.css.query import NoMatches
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Input, Label, Select, Static

from ...lang import ast
from ...spec.checks import Checked
from ...lang.diagnostics import TangleError
from ..messages import QueryFieldsChanged
from .graph import GraphView
from .inorder import OrderedInput


def default_value(t: ast.FieldType) -> str:
    if isinstance(t, ast.IntType):
        return str(t.lo)
    if isinstance(t, ast.FloatType):
        return "0" if t.lo is None else f"{t.lo:g}"
    if isinstance(t, ast.CategoryType):
        return t.values[0].text if t.values else ""
    if isinstance(t, ast.VectorType):
        return " ".join(["0"] * t.size)
    if isinstance(t, ast.TextType):
        return "text"  # any word answers; an empty text is a missing value
    return ""


def show_value(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, list):
        inner = " ".join(f"{x:g}" for x in v[:8])
        return f"[{inner}{' …' if len(v) > 8 else ''}]"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


class QueryPanel(Vertical):
    """Edit the fields; answers update as they change (the app runs the model in a worker)."""

    BINDINGS = [Binding("escape", "leave", "Leave fields")]

    def __init__(self, checked: Checked, **kw) -> None:
        super().__init__(**kw)
        self.checked = checked

    def compose(self) -> ComposeResult:
        g = self.checked.graph
        with Horizontal(id="query-top"):
            with VerticalScroll(id="query-form") as form:
                form.border_title = "fields"
                for name, decl in g.inputs.items():
                    t = decl.type
                    with Horizontal(classes="field"):
                        yield Label(name, classes="field-name")
                        if isinstance(t, ast.CategoryType):
                            yield Select([(v.text, v.text) for v in t.values], allow_blank=False,
                                         type_to_search=False, id=f"q-{name}", classes="field-input", compact=True)
                        else:
                            yield OrderedInput(default_value(t), placeholder=t.describe(), id=f"q-{name}",
                                        classes="field-input", select_on_focus=True, compact=True)
                    yield Static(t.describe(), classes="field-type")
                for name, decl in g.selectors.items():
                    with Horizontal(classes="field"):
                        yield Label(name, classes="field-name")
                        yield Select([(v.text, v.text) for v in decl.values], allow_blank=False,
                                     type_to_search=False, id=f"q-{name}", classes="field-input", compact=True)
                yield Static(id="query-errors")
            with Vertical(id="query-results") as results:
                results.border_title = "answers"
                yield Static(id="query-route")
                yield DataTable(id="answers", cursor_type="row", zebra_stripes=True)
                yield Static(id="query-note")
        with VerticalScroll(id="query-graph-box") as box:
            box.border_title = "route of this query"
            yield GraphView(g, cursor=False, frozen=self.checked.composition.frozen, id="query-graph")

    def on_mount(self) -> None:
        table = self.query_one("#answers", DataTable)
        for label, key in (("decoder", "decoder"), ("target", "target"), ("answer", "answer"),
                           ("confidence", "confidence"), ("expected", "expected"), ("", "ok")):
            table.add_column(label, key=key)
        self.revalidate()
        hook = getattr(self.app, "panel_mounted", None)
        if hook:
            self.call_after_refresh(hook, self)

    # -- the form ----------------------------------------------------------------
    def values(self) -> dict[str, str]:
        out = {}
        g = self.checked.graph
        for name in [*g.inputs, *g.selectors]:
            widget = self.query_one(f"#q-{name}")
            if isinstance(widget, Select):
                out[name] = "" if widget.value is Select.NULL else str(widget.value)
            else:
                out[name] = widget.value.strip()
        return out

    def set_values(self, values: dict[str, str]) -> None:
        """Fill the form (tests and `--query`-like use); posts one change."""
        for name, value in values.items():
            self.query_one(f"#q-{name}").value = value
        self.revalidate()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.revalidate()

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self.revalidate()

    def revalidate(self) -> None:
        from ...data.query import parse_fields  # numpy: loaded after the first paint (the panel mounts then)

        values = self.values()
        try:
            columns = parse_fields(self.checked, values)
            problems = []
        except TangleError as err:
            columns, problems = None, err.diagnostics
        bad = set()
        for d in problems:
            for name in values:
                if d.message.startswith(f"{name}:") or d.message.endswith(f"'{name}'"):
                    bad.add(name)
        for name in values:
            self.query_one(f"#q-{name}").set_class(name in bad, "bad")
        errors = Text()
        for d in problems:
            errors.append("✗ ", style="bold red")
            errors.append(d.message + "\n", style="red")
            for h in d.hints:
                errors.append(f"  {h}\n", style="dim")
        self.query_one("#query-errors", Static).update(errors)
        self.post_message(QueryFieldsChanged(columns, problems))

    def action_leave(self) -> None:
        self.query_one("#answers", DataTable).focus()

    # -- results -----------------------------------------------------------------
    def show_route(self, route, selection: dict[str, str] | None) -> None:
        text = Text()
        if route is not None:
            text.append("route ", style="bold")
            text.append(route.name, style="bold yellow")
            sel = ", ".join(f"{k}={v}" for k, v in route.selection.items())
            if sel:
                text.append(f"  ({sel})", style="dim")
        else:
            text.append("no route: fix the fields", style="dim")
        self.query_one("#query-route", Static).update(text)
        self.query_one("#query-graph", GraphView).lit = selection

    def show_answers(self, answers: list | None) -> None:
        try:
            table = self.query_one("#answers", DataTable)
        except NoMatches:  # an answer that arrives while the app closes: the panel's children are gone
            return
        table.clear()
        for a in answers or []:
            ok = Text("")
            if a.expected is not None:
                ok = Text("✓", style="bold green") if a.correct else Text("✗", style="bold red")
            conf = "" if a.confidence is None else f"{a.confidence:.3f}"
            table.add_row(a.decoder, a.target, Text(show_value(a.value), style="bold"), conf,
                          show_value(a.expected), ok, key=a.decoder)

    def set_note(self, text: str | Text) -> None:
        try:
            self.query_one("#query-note", Static).update(text)
        except NoMatches:  # as in show_answers
            return

    def focus_first(self) -> None:
        fields = self.query(".field-input")
        if fields:
            fields.first().focus()
