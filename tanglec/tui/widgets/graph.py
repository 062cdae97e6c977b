"""The module graph on screen: `GraphView` draws the layout (tanglec.tui.widgets.graph_layout) with box
characters, moves a cursor through the nodes and lights up one route.
"""
from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.events import Click
from textual.geometry import Region, Size
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from ...spec.graph import TangleGraph
from .graph_layout import D, L, R, U, GraphLayout, lit_edges

LINES = {L: "─", R: "─", L | R: "─", U: "│", D: "│", U | D: "│", R | D: "╭", L | D: "╮", R | U: "╰",
         L | U: "╯", L | R | D: "┬", L | R | U: "┴", U | D | R: "├", U | D | L: "┤", L | R | U | D: "┼"}
# corners tl, tr, bl, br, horizontal, vertical, exit port on the right border
BORDERS = {
    "input": ("╭", "╮", "╰", "╯", "─", "│", "├"),
    "module": ("┌", "┐", "└", "┘", "─", "│", "├"),
    "decoder": ("┏", "┓", "┗", "┛", "━", "┃", "┠"),
    "mux": ("╔", "╗", "╚", "╝", "═", "║", "╟"),
}


class GraphView(Widget, can_focus=True):
    """The laid-out graph; arrows (or hjkl, or a click) move through the nodes.

    Drawn a line at a time (Textual's line API) from a cached picture: a cursor move repaints only
    the label rows of the node it leaves and the node it lands on, not the whole graph.
    """

    COMPONENT_CLASSES = {"graph--edge", "graph--lit", "graph--faded", "graph--cursor", "graph--input",
                         "graph--module", "graph--decoder", "graph--mux", "graph--cursor-blur", "graph--frozen"}
    BINDINGS = [
        Binding("up,k", "move(0, -1)", "Up", show=False),
        Binding("down,j", "move(0, 1)", "Down", show=False),
        Binding("left,h", "move(-1, 0)", "Left", show=False),
        Binding("right,l", "move(1, 0)", "Right", show=False),
        Binding("escape", "unlight", "Clear route", show=False),
    ]

    cursor: reactive[str | None] = reactive(None)
    lit: reactive[dict | None] = reactive(None, always_update=True)

    def __init__(self, tg: TangleGraph, *, cursor: bool = True, frozen=(), id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.tg = tg
        self.frozen = set(frozen)
        self.layout_ = GraphLayout(tg)
        self.show_cursor = cursor
        self.can_focus = cursor
        self._canvas: tuple[list[list[str]], list[list[Style | None]]] | None = None
        self._strips: dict[int, Strip] = {}
        first = next((n for layer in self.layout_.nodes_by_layer() for n in layer), None)
        self.set_reactive(GraphView.cursor, first if cursor else None)

    EMPTY = "(nothing declared yet: no inputs, no modules)"

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return self.layout_.width if self.layout_.items else len(self.EMPTY)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return max(self.layout_.height, 1)

    # -- interaction -----------------------------------------------------------------
    def action_move(self, dx: int, dy: int) -> None:
        layers = self.layout_.nodes_by_layer()
        if self.cursor is None:
            return
        col = next(i for i, layer in enumerate(layers) if self.cursor in layer)
        if dy:
            layer = layers[col]
            i = layer.index(self.cursor) + dy
            if 0 <= i < len(layer):
                self.cursor = layer[i]
            return
        k = col + dx
        while 0 <= k < len(layers) and not layers[k]:
            k += dx
        if 0 <= k < len(layers):
            mid = self.layout_.items[self.cursor].mid
            self.cursor = min(layers[k], key=lambda n: abs(self.layout_.items[n].mid - mid))

    def action_unlight(self) -> None:
        from ..messages import LightRoute

        self.post_message(LightRoute(None, "graph"))

    def on_click(self, event: Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or not self.show_cursor:
            return
        item = self.layout_.item_at(offset.x, offset.y)
        if item is not None:
            self.cursor = item.id
            self.focus()

    def watch_cursor(self, old: str | None, node: str | None) -> None:
        self._repaint_labels(old, node)
        if node is None or not self.is_mounted:
            return
        item = self.layout_.items[node]
        parent = self.parent
        if parent is not None and hasattr(parent, "scroll_to_region"):
            vr = self.virtual_region
            parent.scroll_to_region(Region(vr.x + item.x - 1, vr.y + item.y, item.w + 2, item.h), animate=False)

    def select(self, node: str) -> None:
        if node in self.layout_.items:
            self.cursor = node

    def watch_lit(self, _: dict | None) -> None:
        self._forget_picture()

    def on_focus(self) -> None:
        self._repaint_labels(self.cursor)

    def on_blur(self) -> None:
        self._repaint_labels(self.cursor)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._forget_picture()

    # -- drawing ---------------------------------------------------------------------
    def _forget_picture(self) -> None:
        """The route or the styles changed: every cell may look different."""
        self._canvas = None
        self._strips.clear()
        self.refresh()

    def _repaint_labels(self, *nodes: str | None) -> None:
        """Repaint only the label rows of these nodes (the cursor left one and landed on another)."""
        for node in nodes:
            if node is not None and node in self.layout_.items:
                y = self.layout_.items[node].mid
                self._strips.pop(y, None)
                self.refresh(Region(0, y, self.layout_.width, 1))

    def _paint(self) -> tuple[list[list[str]], list[list[Style | None]]]:
        """A character and a style per cell: the edges and boxes, lit or faded, without the cursor."""
        lay = self.layout_
        width, height = lay.width, lay.height
        chars = [[" "] * width for _ in range(height)]
        styles: list[list[Style | None]] = [[None] * width for _ in range(height)]
        active, edges = lit_edges(self.tg, self.lit)
        st = {c: self.get_component_rich_style(c) for c in self.COMPONENT_CLASSES}
        dim_unlit = bool(active)

        def put(x: int, y: int, ch: str, style: Style) -> None:
            if 0 <= y < height and 0 <= x < width:
                chars[y][x] = ch
                styles[y][x] = style

        def edge_style(owners) -> Style:
            if owners & edges:
                return st["graph--lit"]
            return st["graph--faded"] if dim_unlit else st["graph--edge"]

        for (x, y), (bits, owners) in lay.cells.items():
            put(x, y, LINES.get(bits, "─"), edge_style(owners))
        for (x, y), owners in lay.arrows.items():
            put(x, y, "▶", edge_style(owners))
        for item in lay.items.values():
            if item.is_dummy:
                continue
            tl, tr, bl, br, hz, vt, port = BORDERS[item.kind]
            base = st[f"graph--{item.kind}"]
            if item.id in self.frozen:
                base = base + st["graph--frozen"]
            if dim_unlit:
                base = base + (st["graph--lit"] if item.id in active else st["graph--faded"])
            x0, y0, w = item.x, item.y, item.w
            for i, ch in enumerate(tl + hz * (w - 2) + tr):
                put(x0 + i, y0, ch, base)
            for i, ch in enumerate(bl + hz * (w - 2) + br):
                put(x0 + i, y0 + 2, ch, base)
            put(x0, y0 + 1, vt, base)
            put(x0 + w - 1, y0 + 1, port if (x0 + w - 1, y0 + 1) in lay.ports else vt, base)
            for i, ch in enumerate(item.label.center(w - 2)):
                put(x0 + 1 + i, y0 + 1, ch, base)
        return chars, styles

    def _row(self, y: int) -> list[tuple[str, Style | None]]:
        """Row y of the picture as runs of one style, the cursor's label highlighted."""
        if self._canvas is None:
            self._canvas = self._paint()
        chars, styles = self._canvas
        row_styles = styles[y]
        item = self.layout_.items.get(self.cursor) if self.show_cursor and self.cursor else None
        if item is not None and item.mid == y:
            cursor = self.get_component_rich_style("graph--cursor" if self.has_focus else "graph--cursor-blur")
            row_styles = list(row_styles)
            for x in range(item.x + 1, item.x + item.w - 1):
                row_styles[x] = row_styles[x] + cursor
        runs, start = [], 0
        for x in range(1, len(row_styles) + 1):
            if x == len(row_styles) or row_styles[x] != row_styles[start]:
                runs.append(("".join(chars[y][start:x]), row_styles[start]))
                start = x
        return runs

    def render_line(self, y: int) -> Strip:
        base = self.visual_style.rich_style
        lay = self.layout_
        if not lay.items:
            return Strip([Segment(self.EMPTY, base + Style(italic=True))] if y == 0 else [])
        if not 0 <= y < lay.height:
            return Strip.blank(lay.width, base)
        if y not in self._strips:
            self._strips[y] = Strip([Segment(text, base + style) for text, style in self._row(y)], lay.width)
        return self._strips[y]

    def render(self) -> Text:
        """The whole picture as one Text (what the screen shows, for tests and exports)."""
        if not self.layout_.items:
            return Text(self.EMPTY, style="italic")
        text = Text(no_wrap=True, overflow="crop", end="")
        for y in range(self.layout_.height):
            for chunk, style in self._row(y):
                text.append(chunk, style or "")
            if y < self.layout_.height - 1:
                text.append("\n")
        return text


LEGEND = "╭╮ input   ┌┐ module   ┏┓ decoder   ╔╗ multiplexer (by its selector)"


def safe_routes(tg: TangleGraph) -> list:
    """The graph's routes, or none when they can't be enumerated (a spec with a cycle: see Spec)."""
    if not tg.is_dag():
        return []
    try:
        return tg.routes()
    except KeyError:
        return []
