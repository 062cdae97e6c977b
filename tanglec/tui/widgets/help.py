"""The help screen: every key, per view (also reachable with the mouse: click the footer's `? Help`)."""
from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

SECTIONS = [
    ("Everywhere", [
        ("1 2 3 4", "Graph, Train, Query, Spec view (or click a tab)"),
        ("tab / shift+tab", "move between controls"),
        ("? or f1", "this help"),
        ("ctrl+r", "reload the spec from disk"),
        ("q or ctrl+q", "quit (a running training is stopped; the run directory keeps its last good state)"),
    ]),
    ("Graph", [
        ("arrows or h j k l", "move through the modules (or click one): its interface, layers, parameters"),
        ("tab, then up/down", "the route list: highlighting a route lights it up in the graph"),
        ("esc", "clear the lit route"),
    ]),
    ("Train", [
        ("s", "start training (again: from scratch, like `tanglec compile`)"),
        ("p", "pause / resume (takes effect at the next evaluation)"),
        ("x", "stop: the run directory is left as it was"),
        ("w", "after a stop, write the stopped model to the run directory anyway"),
    ]),
    ("Query", [
        ("type / enter", "edit a field; a select opens with enter and picks with up/down/enter"),
        ("esc", "leave the fields (so 1-4 and q work again)"),
        ("", "answers update as the fields change; the query's route lights up"),
    ]),
    ("Spec", [
        ("up/down", "move through the problems: the source scrolls to each, underlined and explained"),
    ]),
]


def help_table() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for title, rows in SECTIONS:
        table.add_row(Text(title, style="bold underline"), "")
        for key, what in rows:
            table.add_row(key, what)
        table.add_row("", "")
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "Close help")]

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box") as box:
            box.border_title = "tanglec explore — keys"
            box.border_subtitle = "esc closes"
            with VerticalScroll():
                yield Static(help_table())

    def on_click(self, event) -> None:
        if event.widget is self:
            self.dismiss()
