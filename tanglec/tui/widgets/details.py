"""The Graph view: the module graph, the details of the module under the cursor (or clicked), and the
routes (highlighting or clicking one lights it up). `GraphPane` recomposes when the spec changes."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, ScrollableContainer, Vertical
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from ...spec.check_limits import estimate_parameters
from ...spec.graph import TangleGraph
from ..controllers import module_layers
from .graph import LEGEND, GraphView, safe_routes


class GraphPane(Vertical):
    """The graph of the app's current session (`app.session`), with its details and route list."""

    def compose(self) -> ComposeResult:
        checked = self.app.session.checked
        if checked is None:
            yield Static("Nothing to draw: the spec could not be read. See Spec (4).", classes="blocked")
            return
        frozen = checked.composition.frozen
        graph = GraphView(checked.graph, frozen=frozen, id="graph-view")
        details = NodeDetails(id="node-details")
        details.border_title = "module"
        # the details follow the cursor in the same frame as the graph's highlight (a watcher, not a message)
        self.watch(graph, "cursor", details.show)
        with ScrollableContainer(id="graph-box") as box:
            box.border_title = "module graph"
            yield graph
        yield Static(LEGEND + ("   [i]┌┐ frozen (italic)[/i]" if frozen else ""), id="legend")
        with Horizontal(id="graph-bottom"):
            yield details
            routes = OptionList(*route_options(checked.graph), id="route-list")
            routes.border_title = "routes (highlight or click one to light it)"
            yield routes


def route_options(tg: TangleGraph) -> list[Option]:
    options = []
    for i, route in enumerate(safe_routes(tg)):
        text = Text(route.name, style="bold")
        sel = ", ".join(f"{k}={v}" for k, v in route.selection.items())
        text.append(f"  {sel}" if sel else "", style="dim")
        options.append(Option(text, id=f"route-{i}"))
    return options


def roles(tg: TangleGraph, node: str) -> list[str]:
    out = []
    fed = tg.encoded_field(node)
    if fed:
        out.append(f"encoder of {fed}")
    if node in tg.decoders:
        out.append(f"decoder of target {tg.decoders[node]}")
    for mux in tg.muxes.values():
        for b in mux.branches:
            if b.module.text == node:
                out.append(f"branch '{b.value.text}' of the multiplexer by {mux.selector.text}")
    if not out:
        out.append("operation")
    return out


def describe_node(tg: TangleGraph, node: str | None, model=None, checked=None, weights: str = "") -> Text:
    """What the details panel shows for one node: interface, layers, parameters, frozen or not, the
    weights' status (`weights`: how the loaded model came to be), routes.

    Frozen comes from the spec (`freeze`; tanglec.spec.composition), which is what training obeys; the
    parameter count is the model's once one is loaded, else estimated from the spec.
    """
    text = Text()
    if node is None or node not in tg.nodes:
        return Text("Move through the graph with the arrow keys.", style="italic")
    kind = tg.kind(node)

    def row(label: str, value: str | Text) -> None:
        text.append(f"{label:<11}", style="bold")
        text.append(value if isinstance(value, Text) else str(value))
        text.append("\n")

    routes = safe_routes(tg)
    if kind == "input":
        decl = tg.inputs[node]
        text.append(f"{node}", style="bold underline")
        text.append("  input field\n")
        row("type", decl.type.describe())
        row("read by", ", ".join(tg.successors(node)) or "nothing")
    elif kind == "mux":
        mux = tg.muxes[node]
        text.append(f"multiplexer by {mux.selector.text}", style="bold underline")
        text.append("\n")
        for b in mux.branches:
            row(f"  {b.value.text}", f"→ {b.module.text}")
        row("strategy", mux.strategy.text if mux.strategy else "train default")
        row("feeds", ", ".join(tg.successors(node)) or "nothing")
    else:
        m = tg.modules[node]
        text.append(node, style="bold underline")
        text.append("  " + "; ".join(roles(tg, node)) + "\n")
        row("interface", f"{m.input} → {m.output}")
        for i, layer in enumerate(m.layers):
            row("layers" if i == 0 else "", str(layer))
        params, source = estimate_parameters(m), " (from the spec)"
        if model is not None:
            try:
                params, source = module_layers(model)[node].count_params(), ""
            except Exception:  # noqa: BLE001 — a model of another spec version: keep the estimate
                pass
        row("parameters", f"{params:,}{source}")
        composition = getattr(checked, "composition", None)
        frozen = node in getattr(composition, "frozen", set())
        row("frozen", Text("yes (freeze): never trains", style="bold cyan") if frozen else "no: trains")
        init = getattr(composition, "init", None)
        if model is not None:
            row("weights", Text(f"trained ({weights})" if weights else "trained", style="green"))
        elif init is not None and node in (getattr(checked, "init_modules", None) or {}):
            row("weights", f"from {init.name} (the init run), once trained")
        else:
            row("weights", Text("not trained yet: no model loaded", style="yellow"))
        through = [r for r in routes if node in r.modules]
        row("routes", f"{len(through)} of {len(routes)}")
    return text


class NodeDetails(Static):
    """Details of the node under the graph's cursor, for the app's current model."""

    node: str | None = None

    def show(self, node: str | None) -> None:
        app = self.app
        self.node = node
        checked = app.session.checked
        # the panel's size is fixed by the layout: a new text needs no layout pass of the screen
        self.update(describe_node(checked.graph, node, app.model, checked, app.model_how), layout=False)
