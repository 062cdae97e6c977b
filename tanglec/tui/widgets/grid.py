"""The route × module grid of the Train view: for every route, how far each of its modules' weights
moved at the last evaluation (‖Δw‖/‖w‖), with frozen, held-out and new modules marked; under it,
the loss of each decoder and of each `align` term."""
from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable, Static

from ...spec.checks import Checked
from .graph import safe_routes

FROZEN, NEW, LOADED = "❄", "+", "↺"


def module_marks(checked: Checked) -> dict[str, str]:
    """A mark per module: frozen (never trains), new (no weights in the `init` run), loaded from it."""
    comp = checked.composition
    loaded = set(getattr(checked, "init_modules", None) or {})
    marks = {}
    for name in checked.graph.modules:
        if name in comp.frozen:
            marks[name] = FROZEN
        elif comp.init is not None:
            marks[name] = LOADED if name in loaded else NEW
    return marks


def motion_cell(size: float | None, frozen: bool) -> Text:
    if frozen:
        return Text(FROZEN, style="cyan")
    if size is None:
        return Text("—", style="dim")
    style = "bold" if size >= 1e-2 else ("" if size >= 1e-4 else "dim")
    return Text(f"{size:.0e}", style=style)


def percent(acc: float | None) -> Text:
    if acc is None:
        return Text("—", style="dim")
    style = "bold green" if acc >= 1.0 else ("yellow" if acc >= 0.5 else "red")
    return Text(f"{acc:.0%}", style=style)


class ModuleGrid(DataTable):
    """Rows are routes (held-out ones marked), columns the modules on any route, then exact match."""

    def __init__(self, checked: Checked, **kw) -> None:
        super().__init__(cursor_type="none", zebra_stripes=False, **kw)
        self.checked = checked
        self.routes = safe_routes(checked.graph)
        on_routes = {m for r in self.routes for m in r.modules}
        self.modules = [m for m in checked.graph.modules if m in on_routes]
        self.marks = module_marks(checked)

    def on_mount(self) -> None:
        self.add_column("route", key="__route")
        for m in self.modules:
            self.add_column(f"{m}{self.marks.get(m, '')}", key=m)
        self.add_column("exact", key="__exact")
        comp = self.checked.composition
        for r in self.routes:
            label = Text(r.name, style="bold")
            if comp.is_held_out(r):
                label.append(" held out", style="italic magenta")
            self.add_row(label, *self._cells(r, {}), Text("—", style="dim"), key=route_key(r.selection))

    def _cells(self, route, motion: dict[str, float]) -> list[Text]:
        frozen = self.checked.composition.frozen
        return [motion_cell(motion.get(m), m in frozen) if m in route.modules else Text("·", style="dim")
                for m in self.modules]

    def show(self, motion: dict[str, float], report: dict | None) -> None:

        exact = {route_key(r["selection"]): r.get("accuracy") for r in (report or {}).get("routes", [])}
        for r in self.routes:
            key = route_key(r.selection)
            for m, cell in zip(self.modules, self._cells(r, motion)):
                self.update_cell(key, m, cell)
            self.update_cell(key, "__exact", percent(exact.get(key)))

    def cells(self) -> list[list[str]]:
        """The grid as shown, a list per route (tests)."""
        return [[str(self.get_cell(route_key(r.selection), k)) for k in [*self.modules, "__exact"]] for r in self.routes]


def route_key(selection: dict) -> str:
    """A route's row: its selection (names repeat in a chain, where `stop` may stand at any position)."""
    return "|".join(f"{k}={v}" for k, v in sorted(selection.items()))


def losses_line(checked: Checked, losses: dict[str, float]) -> Text:
    """Each decoder's loss, then each alignment term's (any other loss the trainer reports)."""
    text = Text()
    decoders = [d for d in checked.graph.decoders if d in losses]
    others = [k for k in losses if k not in decoders and k != "total"]
    for i, name in enumerate([*decoders, *others]):
        text.append(" · " if i else "loss ", style="dim")
        text.append(f"{name} ", style="" if name in decoders else "magenta")
        text.append(f"{losses[name]:.4f}", style="bold")
    legend = f"   {FROZEN} frozen  {NEW} new  {LOADED} from init" if module_marks(checked) else ""
    text.append(legend, style="dim")
    return text


class LossesLine(Static):
    """The losses under the grid."""

    def __init__(self, checked: Checked, **kw) -> None:
        super().__init__(**kw)
        self.checked = checked

    def show(self, losses: dict[str, float]) -> None:
        self.update(losses_line(self.checked, losses))
