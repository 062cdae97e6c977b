"""AST -> module graph and the routes through it.

The graph is a `networkx.DiGraph`. Nodes are named after the spec: an input field, a module, or a
multiplexer (`mux:<selector>:<n>`), with a `kind` attribute (and `selector` on a multiplexer). An
edge into a multiplexer's branch module carries `mux` and `value`, so a route — one value per
selector — is what is reachable from the inputs when each multiplexer follows only its chosen
branch (`route_view`). Ordering, cycle finding and reachability are networkx's algorithms.

`import networkx` (3.6) costs ~0.1 s here: `python -X importtime` says 82-88 ms; on a quiet machine
the best of 10 cold processes took 0.11 s against 0.02 s for an empty interpreter. Nearly all of it
is loading ~290 networkx modules and wrapping ~1,300 functions for backend dispatch, both done
eagerly by `networkx/__init__.py` (its maintainers declined lazy subpackages, networkx#2900);
backend discovery through `importlib.metadata.entry_points` is ~2 ms, so no NETWORKX_* setting
helps, and a submodule can't be imported without the package. `tanglec check specs/arith.tangle`
uses 0.19 s of CPU with it (0.12 s without; best of 10 cold processes), TensorFlow-free. Without
networkx its wall time on a quiet machine equalled its CPU time (0.12 s); with it, the best of 10
stayed under 0.5 s wall even at a load average of 6-8 (0.39-0.47 s).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import networkx as nx

from ..lang import ast


MAX_ROUTES = 4096


def codec_width(codec: ast.Codec) -> int | None:
    """Number of features a codec occupies: scalar is 1, the others their size."""
    if codec.kind.text == "scalar":
        return 1
    return codec.size


@dataclass
class MuxNode:
    id: str
    selector: ast.Name
    branches: list[ast.Branch]
    strategy: ast.Name | None
    span: ast.Span

    def module_for(self, value: str) -> str | None:
        for b in self.branches:
            if b.value.text == value:
                return b.module.text
        return None


@dataclass
class Route:
    """One combination of selector values, with the modules and decoders it runs through."""

    selection: dict[str, str]
    modules: list[str]
    decoders: list[str]

    @property
    def name(self) -> str:
        chain = [m for m in self.modules if m not in self.decoders]
        return " → ".join(chain) if chain else "direct"

    def to_json(self) -> dict:
        return {"name": self.name, "selection": dict(self.selection), "modules": list(self.modules),
                "decoders": list(self.decoders)}


@dataclass
class TangleGraph:
    spec: ast.Spec
    inputs: dict[str, ast.InputDecl] = field(default_factory=dict)
    selectors: dict[str, ast.SelectDecl] = field(default_factory=dict)
    modules: dict[str, ast.ModuleDecl] = field(default_factory=dict)
    targets: dict[str, ast.TargetDecl] = field(default_factory=dict)
    decoders: dict[str, str] = field(default_factory=dict)  # decoder module -> target name
    muxes: dict[str, MuxNode] = field(default_factory=dict)
    g: nx.DiGraph = field(default_factory=nx.DiGraph)

    # -- queries used by codegen, training, the TUI
    def kind(self, node: str) -> str:
        return self.g.nodes[node]["kind"]

    def topological(self) -> list[str]:
        """Every node, producers before consumers: Kahn's order, ties in insertion (declaration) order.
        Raises networkx.NetworkXUnfeasible on a cycle."""
        return list(nx.topological_sort(self.g))

    def is_dag(self) -> bool:
        """No cycle: routes, an order and reachability are defined (a cycle is reported as E103)."""
        return nx.is_directed_acyclic_graph(self.g)

    def module_order(self) -> list[str]:
        return [n for n in self.topological() if self.kind(n) == "module"]

    def mux_selectors(self) -> list[str]:
        """Selectors that drive at least one multiplexer, in declaration order."""
        used = {m.selector.text for m in self.muxes.values()}
        return [s for s in self.selectors if s in used]

    def routes(self) -> list[Route]:
        """Every combination of multiplexer choices, each with the modules and decoders it reaches."""
        selectors = self.mux_selectors()
        choices = [[v.text for v in self.selectors[s].values] for s in selectors]
        routes, module_order = [], self.module_order()
        for combo in itertools.islice(itertools.product(*choices), MAX_ROUTES):
            selection = dict(zip(selectors, combo))
            active = self.active_nodes(selection)
            order = [n for n in module_order if n in active]
            decoders = [n for n in order if n in self.decoders]
            routes.append(Route(selection, order, decoders))
        return routes

    def route_count(self) -> int:
        count = 1
        for s in self.mux_selectors():
            count *= len(self.selectors[s].values)
        return count

    def active_nodes(self, selection: dict[str, str]) -> set[str]:
        """Nodes reachable from the inputs when each multiplexer follows the selected branch."""
        view = self.route_view(selection)
        inputs = [n for n, kind in self.g.nodes(data="kind") if kind == "input"]
        return set(inputs).union(*(nx.descendants(view, n) for n in inputs))

    def route_view(self, selection: dict[str, str]) -> nx.DiGraph:
        """The graph without the edges a selection turns off: into a branch module its selector didn't
        choose, and from that module into the multiplexer (a selector missing from `selection` keeps all)."""
        def follows(u: str, v: str) -> bool:
            data = self.g.edges[u, v]
            if "mux" in data:  # into a branch module: only the selected value's
                chosen = self._selected(data["mux"], selection)
                if chosen is not None and chosen != data["value"]:
                    return False
            if self.kind(v) == "mux":  # out of a branch module: only the selected module's
                chosen = self._selected(v, selection)
                if chosen is not None and self.muxes[v].module_for(chosen) != u:
                    return False
            return True

        return nx.subgraph_view(self.g, filter_edge=follows)

    def _selected(self, mux_id: str, selection: dict[str, str]) -> str | None:
        return selection.get(self.muxes[mux_id].selector.text)

    def predecessors(self, node: str) -> list[str]:
        return list(self.g.predecessors(node))

    def sources_of(self, module: str) -> list[str]:
        """Producers feeding a module (inputs, modules or multiplexers)."""
        return self.predecessors(module)

    def encoded_field(self, module: str) -> str | None:
        """The input field an encoder reads, if the module is fed by an input."""
        for p in self.predecessors(module):
            if self.kind(p) == "input":
                return p
        return None


def mux_id(selector: str, index: int) -> str:
    return f"mux:{selector}:{index}"


def build(spec: ast.Spec) -> TangleGraph:
    """Build the graph from every declaration; unknown names are left out (checks report them)."""
    tg = TangleGraph(spec)
    for st in spec.statements:
        if isinstance(st, ast.InputDecl):
            tg.inputs.setdefault(st.name.text, st)
        elif isinstance(st, ast.SelectDecl):
            tg.selectors.setdefault(st.name.text, st)
        elif isinstance(st, ast.ModuleDecl):
            tg.modules.setdefault(st.name.text, st)
        elif isinstance(st, ast.TargetDecl):
            tg.targets.setdefault(st.name.text, st)
        elif isinstance(st, ast.DecodeDecl):
            for m in st.modules:
                tg.decoders.setdefault(m.text, st.target.text)
    for name, decl in tg.inputs.items():
        tg.g.add_node(name, kind="input", span=decl.span)
    for name, decl in tg.modules.items():
        tg.g.add_node(name, kind="module", span=decl.span)
    counter = itertools.count()
    for route in spec.of(ast.RouteDecl):
        _add_route(tg, route, counter)
    return tg


def _add_route(tg: TangleGraph, route: ast.RouteDecl, counter) -> None:
    producers = [route.source.text] if route.source.text in tg.g else []
    for stage in route.stages:
        if isinstance(stage, ast.FanOut):
            consumers = [m.text for m in stage.modules if m.text in tg.modules]
            for p in producers:
                for c in consumers:
                    tg.g.add_edge(p, c, span=stage.span)
            producers = consumers
        else:
            mid = mux_id(stage.selector.text, next(counter))
            tg.muxes[mid] = MuxNode(mid, stage.selector, stage.branches, stage.strategy, stage.span)
            tg.g.add_node(mid, kind="mux", span=stage.span, selector=stage.selector.text)
            for branch in stage.branches:
                module = branch.module.text
                if module not in tg.modules:
                    continue
                for p in producers:
                    tg.g.add_edge(p, module, span=branch.span, mux=mid, value=branch.value.text)
                tg.g.add_edge(module, mid, span=branch.span)
            producers = [mid]


def describe(tg: TangleGraph) -> str:
    """The module graph as text, left to right by stage depth."""
    lines = []
    for node in tg.topological():
        kind = tg.kind(node)
        succ = list(tg.g.successors(node))
        if kind == "input":
            head = f"input  {node}: {tg.inputs[node].type.describe()}"
        elif kind == "mux":
            mux = tg.muxes[node]
            arms = " | ".join(f"{b.value.text}: {b.module.text}" if b.value.text != b.module.text else b.value.text
                              for b in mux.branches)
            head = f"mux    [{arms}] by {mux.selector.text}"
        else:
            m = tg.modules[node]
            role = "decoder" if node in tg.decoders else "module"
            head = f"{role:<6} {node}: {m.input} -> {m.output}  = " + ", ".join(str(l) for l in m.layers)
            if node in tg.decoders:
                head += f"  (as {tg.decoders[node]})"
        targets = [tg.muxes[s].id if tg.kind(s) == "mux" else s for s in succ]
        lines.append(head + (f"\n       └─> {', '.join(_short(t) for t in targets)}" if targets else ""))
    routes = tg.routes()
    lines.append(f"\n{len(routes)} route{'s' * (len(routes) != 1)}:")
    for r in routes:
        sel = ", ".join(f"{k}={v}" for k, v in r.selection.items())
        lines.append(f"  {r.name:<30} {sel:<30} -> {', '.join(r.decoders)}")
    return "\n".join(lines)


def _short(node: str) -> str:
    return f"[mux by {node.split(':')[1]}]" if node.startswith("mux:") else node
