"""AST -> module graph and the routes through it.

Nodes are named after the spec: an input field, a module, or a multiplexer (`mux:<selector>:<n>`).
An edge into a multiplexer's branch module carries `mux` and `value`, so a route — one value per
selector — is the set of nodes reachable when each multiplexer follows only its chosen branch.

The graph is held in `Digraph`, a small class with the networkx DiGraph interface the compiler uses
(`nodes[n]`, `edges[u, v]`, `successors`, ...), and `to_networkx()` hands the same graph to
networkx for layout, export and analysis. Why not networkx throughout: importing it costs ~0.25 s on
our 2-core machines, about the whole `tanglec check` budget (< 0.3 s), and checking needs only a
topological sort, a cycle search and reachability.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from . import ast


class _NodeView:
    def __init__(self, attrs: dict[str, dict]):
        self._attrs = attrs

    def __getitem__(self, node: str) -> dict:
        return self._attrs[node]

    def __call__(self, data: bool = False):
        return list(self._attrs.items()) if data else list(self._attrs)


class _EdgeView:
    def __init__(self, succ: dict[str, dict[str, dict]]):
        self._succ = succ

    def __getitem__(self, edge: tuple[str, str]) -> dict:
        return self._succ[edge[0]][edge[1]]

    def __call__(self, data: bool = False):
        return [(u, v, d) if data else (u, v) for u, nbrs in self._succ.items() for v, d in nbrs.items()]


class Digraph:
    """A directed graph with attribute dicts on nodes and edges (networkx's DiGraph interface, in part)."""

    def __init__(self) -> None:
        self._nodes: dict[str, dict] = {}
        self._succ: dict[str, dict[str, dict]] = {}
        self._pred: dict[str, dict[str, dict]] = {}
        self.nodes = _NodeView(self._nodes)
        self.edges = _EdgeView(self._succ)

    def add_node(self, node: str, **attrs) -> None:
        self._nodes.setdefault(node, {}).update(attrs)
        self._succ.setdefault(node, {})
        self._pred.setdefault(node, {})

    def add_edge(self, u: str, v: str, **attrs) -> None:
        for n in (u, v):
            if n not in self._nodes:
                self.add_node(n)
        data = self._succ[u].setdefault(v, {})
        data.update(attrs)
        self._pred[v][u] = data

    def __contains__(self, node: str) -> bool:
        return node in self._nodes

    def __iter__(self):
        return iter(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    def successors(self, node: str) -> list[str]:
        return list(self._succ[node])

    def predecessors(self, node: str) -> list[str]:
        return list(self._pred[node])

    def topological_sort(self) -> list[str]:
        """Kahn's algorithm, stable in insertion order; raises ValueError on a cycle."""
        indegree = {n: len(p) for n, p in self._pred.items()}
        ready = [n for n in self._nodes if indegree[n] == 0]
        order = []
        while ready:
            node = ready.pop(0)
            order.append(node)
            for succ in self._succ[node]:
                indegree[succ] -= 1
                if indegree[succ] == 0:
                    ready.append(succ)
        if len(order) != len(self._nodes):
            raise ValueError("graph has a cycle")
        return order

    def find_cycle(self) -> list[tuple[str, str]] | None:
        """The edges of one cycle, or None; iterative DFS so deep graphs can't overflow the stack."""
        color = {n: 0 for n in self._nodes}  # 0 new, 1 on the current path, 2 done
        for root in self._nodes:
            if color[root]:
                continue
            path: list[str] = [root]
            iters = [iter(self._succ[root])]
            color[root] = 1
            while iters:
                nxt = next(iters[-1], None)
                if nxt is None:
                    color[path.pop()] = 2
                    iters.pop()
                elif color[nxt] == 1:
                    loop = path[path.index(nxt):] + [nxt]
                    return list(zip(loop, loop[1:]))
                elif color[nxt] == 0:
                    color[nxt] = 1
                    path.append(nxt)
                    iters.append(iter(self._succ[nxt]))
        return None

    def descendants(self, node: str) -> set[str]:
        seen, frontier = set(), [node]
        while frontier:
            for succ in self._succ[frontier.pop()]:
                if succ not in seen:
                    seen.add(succ)
                    frontier.append(succ)
        return seen

    def to_networkx(self):
        """The same graph as a networkx.DiGraph (imports networkx)."""
        import networkx as nx

        g = nx.DiGraph()
        g.add_nodes_from(self._nodes.items())
        g.add_edges_from(self.edges(data=True))
        return g

DATA_CODECS = {"bits", "gray", "onehot", "scalar", "vector"}
LATENT_CODECS = {"latent"}
CODECS = DATA_CODECS | LATENT_CODECS
SIZED_CODECS = {"bits", "gray", "onehot", "latent", "vector"}
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
    g: Digraph = field(default_factory=Digraph)

    # -- queries used by codegen, training, the TUI
    def kind(self, node: str) -> str:
        return self.g.nodes[node]["kind"]

    def topological(self) -> list[str]:
        return self.g.topological_sort()

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
        routes = []
        for combo in itertools.islice(itertools.product(*choices), MAX_ROUTES):
            selection = dict(zip(selectors, combo))
            active = self.active_nodes(selection)
            order = [n for n in self.module_order() if n in active]
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
        frontier = [n for n in self.g if self.kind(n) == "input"]
        seen = set(frontier)
        while frontier:
            node = frontier.pop()
            for succ in self.g.successors(node):
                edge = self.g.edges[node, succ]
                mux_id = edge.get("mux")
                if mux_id is not None:
                    chosen = selection.get(self.muxes[mux_id].selector.text)
                    if chosen is not None and chosen != edge["value"]:
                        continue
                if self.kind(succ) == "mux" and self._mux_branch_blocked(succ, node, selection):
                    continue
                if succ not in seen:
                    seen.add(succ)
                    frontier.append(succ)
        return seen

    def _mux_branch_blocked(self, mux_id: str, module: str, selection: dict[str, str]) -> bool:
        mux = self.muxes[mux_id]
        chosen = selection.get(mux.selector.text)
        return chosen is not None and mux.module_for(chosen) != module

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
