"""The help screen, generated from the keymap (tanglec.tui.keymap) with the user's overrides applied."""
from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..keymap import ACTIONS, effective_keys

# Keys that belong to a widget (not remappable): how to move inside each view.
MOVING = [
    ("Graph", [
        ("arrows or h j k l", "move through the modules (or click one): interface, layers, parameters, weights"),
        ("tab, then up/down", "the route list: highlighting (or clicking) a route lights it up in the graph"),
        ("esc", "clear the lit route"),
    ]),
    ("Query", [
        ("type / enter", "edit a field; a select opens with enter and picks with up/down/enter"),
        ("esc", "leave the fields (so the view keys work again)"),
    ]),
    ("Spec", [
        ("type", "edit: problems are underlined and listed as you type"),
        ("esc, then up/down", "leave the editor; the problem list jumps the cursor to each problem"),
        ("ctrl+p", "the command palette: every action by name, with its key"),
    ]),
]


def help_table(keymap: dict[str, str]) -> Table:
    """Every action with its key as currently bound, then how to move inside each view."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    groups: dict[str, list[tuple[str, str]]] = {}
    for action in ACTIONS:
        groups.setdefault(action.group, []).append((effective_keys(keymap, action), f"{action.title}: {action.help}"))
    for title, rows in [*groups.items(), *MOVING]:
        table.add_row(Text(title, style="bold underline"), "")
        for key, what in rows:
            table.add_row(key, what)
        table.add_row("", "")
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "Close help")]

    def __init__(self, keymap: dict[str, str]) -> None:
        super().__init__()
        self.keymap = keymap

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box") as box:
            box.border_title = "tanglec explore — keys"
            box.border_subtitle = "esc closes"
            with VerticalScroll():
                yield Static(help_table(self.keymap))

    def on_click(self, event) -> None:
        if event.widget is self:
            self.dismiss()
