"""AST -> module graph and the routes through it.

The graph is `TangleGraph`'s own adjacency: `nodes` (node -> attributes) and `succ`/`pred` (node ->
neighbour -> the edge's attributes, one dict shared by both), in insertion order, as networkx keeps
its `_succ`. Nodes are named after the spec: an input field, a module, or a multiplexer
(`mux:<selector>:<n>`), with a `kind` attribute (and `selector` on a multiplexer). An edge into a
multiplexer's branch module carries `mux` and `value`, so a route — one value per selector — is what
is reachable from the inputs when each multiplexer follows only its chosen branch (`active_nodes`).
A branch `value from field` is fed by that input field's edge instead of the stage's producer.
The order is Kahn's, a generation at a time with ties in insertion order, and a cycle is the one the
standard library's `graphlib` meets first; both are what networkx's `topological_sort` and
`find_cycle` give (tests/test_graph.py compares them on random graphs). Reachability is a search.

networkx is not imported here: `import networkx` (3.6) costs 0.17–0.35 s of a cold process on this
machine (loading ~290 modules and wrapping ~1,300 functions for backend dispatch, eagerly, in
`networkx/__init__.py`). With it `tanglec check specs/arith.tangle` took 0.40 s of CPU, without it
0.20 s (best of 10 cold processes, 2026-12-07, pinned to one core). `to_networkx()` builds a
`networkx.DiGraph` for the code that wants its algorithms (the TUI's layout).
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from typing import TYPE_CHECKING

from ..lang import ast
from ..lang.vocabulary import CODECS

if TYPE_CHECKING:
    import networkx


MAX_ROUTES = 4096


def codec_width(codec: ast.Codec) -> int | None:
    """Number of features a codec occupies: scalar is 1, a table its patterns' width, the others their size."""
    if codec.table is not None:
        return codec.table.base.size
    if codec.kind.text == "scalar":
        return 1
    return codec.size


@dataclass
class MuxNode:
    """A multiplexer; with several selectors (positions) or an identity branch it is a chain: applied
    once per position, each position choosing by its own selector among the same modules."""

    id: str
    selectors: list[ast.Name]
    branches: list[ast.Branch]
    strategy: ast.Name | None
    span: ast.Span

    @property
    def selector(self) -> ast.Name:
        return self.selectors[0]

    @property
    def is_chain(self) -> bool:
        return len(self.selectors) > 1 or any(b.identity for b in self.branches)

    def module_for(self, value: str) -> str | None:
        """The module a value runs (None for an identity branch or an unknown value)."""
        for b in self.branches:
            if b.value.text == value and not b.identity:
                return b.module.text
        return None

    def chosen(self, selection: dict[str, str]) -> list[str] | None:
        """The value of every position, or None when a position's selector is not in `selection`."""
        values = [selection.get(s.text) for s in self.selectors]
        return None if None in values else values


@dataclass
class Route:
    """One combination of selector values, with the modules and decoders it runs through."""

    selection: dict[str, str]
    modules: list[str]  # in order; a chain's modules once per position that applies them
    decoders: list[str]
    length: int | None = None  # operations the route's chains apply (None: the spec has no chain)

    @property
    def name(self) -> str:
        chain = [m for m in self.modules if m not in self.decoders]
        return " → ".join(chain) if chain else "direct"

    def to_json(self) -> dict:
        out = {"name": self.name, "selection": dict(self.selection), "modules": list(self.modules),
               "decoders": list(self.decoders)}
        if self.length is not None:
            out["length"] = self.length
        return out


@dataclass
class TangleGraph:
    spec: ast.Spec
    inputs: dict[str, ast.InputDecl] = field(default_factory=dict)
    selectors: dict[str, ast.SelectDecl] = field(default_factory=dict)
    modules: dict[str, ast.ModuleDecl] = field(default_factory=dict)
    targets: dict[str, ast.TargetDecl] = field(default_factory=dict)
    decoders: dict[str, str] = field(default_factory=dict)  # decoder module -> target name
    tables: dict[str, ast.CodecDecl] = field(default_factory=dict)  # `codec name: bits(n) table {...}`
    muxes: dict[str, MuxNode] = field(default_factory=dict)
    nodes: dict[str, dict] = field(default_factory=dict)  # node -> attributes, in insertion order
    succ: dict[str, dict[str, dict]] = field(default_factory=dict)  # u -> v -> the edge's attributes
    pred: dict[str, dict[str, dict]] = field(default_factory=dict)  # v -> u -> the same attributes

    # -- the adjacency, as networkx's DiGraph keeps it
    def add_node(self, node: str, **attrs) -> None:
        """A node; adding it again updates its attributes, not its place."""
        if node in self.nodes:
            self.nodes[node].update(attrs)
        else:
            self.nodes[node], self.succ[node], self.pred[node] = attrs, {}, {}

    def add_edge(self, u: str, v: str, **attrs) -> None:
        """An edge between two added nodes; adding it again updates its attributes, not its place."""
        data = self.succ[u].get(v)
        if data is None:
            self.succ[u][v] = self.pred[v][u] = attrs
        else:
            data.update(attrs)

    def edge(self, u: str, v: str) -> dict:
        return self.succ[u][v]

    def edges(self) -> Iterator[tuple[str, str, dict]]:
        """Every edge with its attributes: by source in insertion order, then by target in insertion order."""
        for u, targets in self.succ.items():
            for v, data in targets.items():
                yield u, v, data

    def successors(self, node: str) -> list[str]:
        return list(self.succ[node])

    def predecessors(self, node: str) -> list[str]:
        return list(self.pred[node])

    def to_networkx(self) -> networkx.DiGraph:
        """The graph as a `networkx.DiGraph` (same nodes, edges, attributes and orders), for networkx's algorithms."""
        import networkx

        g = networkx.DiGraph()
        g.add_nodes_from(self.nodes.items())
        g.add_edges_from(self.edges())
        return g

    # -- queries used by codegen, training, the TUI
    def kind(self, node: str) -> str:
        return self.nodes[node]["kind"]

    def topological(self) -> list[str]:
        """Every node, producers before consumers: Kahn's order by generations, ties in insertion (declaration)
        order (networkx's `topological_sort`). Raises graphlib.CycleError on a cycle."""
        order = self._sorted()
        if len(order) < len(self.nodes):
            raise CycleError("nodes are in a cycle", self.find_cycle())
        return order

    def find_cycle(self) -> list[str] | None:
        """A cycle as its nodes, the first repeated last, or None: the first a depth-first search meets, from
        the nodes in insertion order along edges in insertion order (graphlib's; the one networkx finds)."""
        sorter = TopologicalSorter()
        for node in self.nodes:
            sorter.add(node)
        for u, v, _ in self.edges():
            sorter.add(v, u)
        try:
            sorter.prepare()
        except CycleError as cycle:
            return cycle.args[1]
        return None

    def is_dag(self) -> bool:
        """No cycle: routes, an order and reachability are defined (a cycle is reported as E103)."""
        return len(self._sorted()) == len(self.nodes)

    def reachable(self, sources: Iterable[str]) -> set[str]:
        """The sources and every node a path from one of them reaches."""
        stack = list(sources)
        seen = set(stack)
        while stack:
            for v in self.succ[stack.pop()]:
                if v not in seen:
                    seen.add(v)
                    stack.append(v)
        return seen

    def _sorted(self) -> list[str]:
        """Kahn's order, a generation at a time (the list grows as it is read); the nodes on or after a cycle
        are left out. Not graphlib's: its per-edge bookkeeping took twice as long on a spec of 10k nodes."""
        waiting = {v: len(producers) for v, producers in self.pred.items() if producers}
        order = [v for v, producers in self.pred.items() if not producers]
        for u in order:
            for v in self.succ[u]:
                waiting[v] -= 1
                if not waiting[v]:
                    order.append(v)
        return order

    def module_order(self) -> list[str]:
        return [n for n in self.topological() if self.kind(n) == "module"]

    def mux_selectors(self) -> list[str]:
        """Selectors that drive at least one multiplexer, in declaration order."""
        used = {s.text for m in self.muxes.values() for s in m.selectors}
        return [s for s in self.selectors if s in used]

    def chain_branches(self) -> set[str]:
        """Modules that run as a chain's branches (placed in a route at their chain's positions)."""
        return {b.module.text for m in self.muxes.values() if m.is_chain for b in m.branches if not b.identity}

    def routes(self) -> list[Route]:
        """Every combination of multiplexer choices, each with the modules and decoders it reaches; a
        chain contributes its chosen modules in position order."""
        selectors = self.mux_selectors()
        choices = [[v.text for v in self.selectors[s].values] for s in selectors]
        in_chains = self.chain_branches()
        chains = {name: mux for name, mux in self.muxes.items() if mux.is_chain}
        kinds = {n: attrs["kind"] for n, attrs in self.nodes.items()}
        # the nodes a route may list, producers first: modules outside chains, and the chains
        steps = [n for n in self.topological() if kinds[n] == "module" and n not in in_chains or n in chains]
        routes, decoding = [], self.decoders
        for combo in itertools.islice(itertools.product(*choices), MAX_ROUTES):
            selection = dict(zip(selectors, combo))
            active = self.active_nodes(selection)
            order, length = [], 0
            for n in steps:
                if n not in active:
                    continue
                if n not in chains:
                    order.append(n)
                    continue
                applied = [chains[n].module_for(v) for v in chains[n].chosen(selection) or []]
                order += [m for m in applied if m is not None]
                length += sum(m is not None for m in applied)
            routes.append(Route(selection, order, [n for n in order if n in decoding], length if chains else None))
        return routes

    def route_count(self) -> int:
        count = 1
        for s in self.mux_selectors():
            count *= len(self.selectors[s].values)
        return count

    def active_nodes(self, selection: dict[str, str]) -> set[str]:
        """Nodes reachable from the inputs when each multiplexer follows the selected branch. A search of
        its own, not a filtered view of the graph: a per-edge filter made this half of `tanglec check` on a
        spec with thousands of modules."""
        follows = self._follows(selection)
        successors = self.succ
        stack = [n for n, attrs in self.nodes.items() if attrs["kind"] == "input"]
        active = set(stack)
        while stack:
            u = stack.pop()
            for v, data in successors[u].items():
                if v not in active and follows(u, v, data):
                    active.add(v)
                    stack.append(v)
        return active

    def field_readers(self, field: str) -> dict[str, set[str]] | None:
        """When a route reads an input field: None when on every route (a module reads it outside any
        multiplexer), else selector -> the values whose branch reads it (a branch `value from field`
        reads its own field, so a route need not read the route's source)."""
        readers: dict[str, set[str]] = {}
        for data in self.succ[field].values():
            if "mux" not in data:
                return None
            for selector in self.muxes[data["mux"]].selectors:
                readers.setdefault(selector.text, set()).add(data["value"])
        return readers

    def route_view(self, selection: dict[str, str]) -> networkx.DiGraph:
        """The graph without the edges a selection turns off: into a branch module its selector didn't
        choose, and from that module into the multiplexer (a selector missing from `selection` keeps all)."""
        import networkx

        follows, g = self._follows(selection), self.to_networkx()
        return networkx.subgraph_view(g, filter_edge=lambda u, v: follows(u, v, g.edges[u, v]))

    def _follows(self, selection: dict[str, str]) -> Callable[[str, str, dict], bool]:
        """Whether a selection keeps the edge u -> v (with its data); each multiplexer's choice computed once."""
        chosen = {name: mux.chosen(selection) for name, mux in self.muxes.items()}
        feeding = {name: {mux.module_for(c) for c in chosen[name]} for name, mux in self.muxes.items()
                   if chosen[name] is not None}

        def follows(u: str, v: str, data: dict) -> bool:
            if "mux" in data:  # into a branch module, or an identity branch into its chain: the chosen values'
                values = chosen[data["mux"]]
                return values is None or data["value"] in values
            if v in self.muxes:  # out of a branch module: only the chosen modules'
                return v not in feeding or u in feeding[v]
            return True

        return follows

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
        elif isinstance(st, ast.CodecDecl) and st.name.text not in CODECS:
            tg.tables.setdefault(st.name.text, st)
    for decl in tg.modules.values():
        for codec in (decl.input, decl.output):
            codec.table = tg.tables.get(codec.kind.text) if codec.size is None else None
    for name, decl in tg.inputs.items():
        tg.add_node(name, kind="input", span=decl.span)
    for name, decl in tg.modules.items():
        tg.add_node(name, kind="module", span=decl.span)
    counter = itertools.count()
    for route in spec.of(ast.RouteDecl):
        _add_route(tg, route, counter)
    return tg


def _add_route(tg: TangleGraph, route: ast.RouteDecl, counter) -> None:
    producers = [route.source.text] if route.source.text in tg.nodes else []
    for stage in route.stages:
        if isinstance(stage, ast.FanOut):
            consumers = [m.text for m in stage.modules if m.text in tg.modules]
            for p in producers:
                for c in consumers:
                    tg.add_edge(p, c, span=stage.span)
            producers = consumers
        else:
            mid = mux_id(stage.selector.text, next(counter))
            tg.muxes[mid] = MuxNode(mid, stage.selectors, stage.branches, stage.strategy, stage.span)
            tg.add_node(mid, kind="mux", span=stage.span, selector=stage.selector.text,
                          selectors=[s.text for s in stage.selectors])
            for branch in stage.branches:
                module = branch.module.text
                if branch.identity:  # the chain's input passes straight through for this value
                    for p in producers:
                        tg.add_edge(p, mid, span=branch.span, mux=mid, value=branch.value.text)
                    continue
                if module not in tg.modules:
                    continue
                feeding = producers
                if branch.source is not None and stage is route.stages[0] and not tg.muxes[mid].is_chain:
                    # `value from field`: the branch reads its own field (elsewhere `from` is an error, E135)
                    feeding = [branch.source.text] if branch.source.text in tg.inputs else []
                for p in feeding:
                    tg.add_edge(p, module, span=branch.span, mux=mid, value=branch.value.text)
                tg.add_edge(module, mid, span=branch.span)
            producers = [mid]


def describe(tg: TangleGraph) -> str:
    """The module graph as text, left to right by stage depth."""
    lines = []
    for node in tg.topological():
        kind = tg.kind(node)
        succ = tg.successors(node)
        if kind == "input":
            head = f"input  {node}: {tg.inputs[node].type.describe()}"
        elif kind == "mux":
            mux = tg.muxes[node]
            arms = " | ".join((f"{b.value.text}: {b.module.text}" if b.value.text != b.module.text else b.value.text)
                              + (f" from {b.source.text}" if b.source is not None else "") for b in mux.branches)
            head = f"mux    [{arms}] by {', '.join(s.text for s in mux.selectors)}"
            if mux.is_chain:
                head += f"  (chain of {len(mux.selectors)} position{'s' * (len(mux.selectors) != 1)}, shared weights)"
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
    if routes and routes[0].length is not None:
        lengths = sorted({r.length for r in routes})
        lines.append("  by chain length: " + ", ".join(
            f"{n}: {sum(r.length == n for r in routes)}" for n in lengths))
    for r in routes:
        sel = ", ".join(f"{k}={v}" for k, v in r.selection.items())
        lines.append(f"  {r.name:<30} {sel:<30} -> {', '.join(r.decoders)}")
    return "\n".join(lines)


def _short(node: str) -> str:
    return f"[mux by {node.split(':')[1]}]" if node.startswith("mux:") else node
