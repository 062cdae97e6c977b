"""The module graph's layout, left to right (inputs → encoders → multiplexers → operations → decoders).

`GraphLayout` is a small layered layout (no TensorFlow, no Textual): longest-path layers with the
decoders pulled into the last column, a dummy point per layer an edge skips, barycenter ordering, and
orthogonal edges on a character grid (one vertical track per connected bundle in each gap); each edge
cell keeps which way its lines go (L, R, U, D bits) for the view to draw with box characters.
"""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from ...spec.graph import TangleGraph

L, R, U, D = 1, 2, 4, 8
BOX_HEIGHT = 3


@dataclass
class Item:
    id: str
    kind: str  # input | module | decoder | mux | dummy
    label: str
    layer: int
    x: int = 0
    y: int = 0
    w: int = 1
    h: int = BOX_HEIGHT

    @property
    def mid(self) -> int:
        return self.y + self.h // 2

    @property
    def is_dummy(self) -> bool:
        return self.kind == "dummy"

    def contains(self, x: int, y: int) -> bool:
        return self.x <= x < self.x + self.w and self.y <= y < self.y + self.h


def node_kind(tg: TangleGraph, node: str) -> str:
    kind = tg.kind(node)
    if kind == "module" and node in tg.decoders:
        return "decoder"
    return kind


def node_label(tg: TangleGraph, node: str) -> str:
    if tg.kind(node) == "mux":
        return "by " + ", ".join(s.text for s in tg.muxes[node].selectors)
    return node


class GraphLayout:
    """Positions for every node and the cells of every edge (character grid coordinates)."""

    def __init__(self, tg: TangleGraph) -> None:
        self.tg = tg
        self.items: dict[str, Item] = {}
        self.layers: list[list[str]] = []
        self.chains: dict[tuple[str, str], list[str]] = {}
        self.cells: dict[tuple[int, int], list] = {}  # (x, y) -> [bits, set of edges]
        self.arrows: dict[tuple[int, int], set] = {}
        self.ports: dict[tuple[int, int], set] = {}
        self.width = self.height = 0
        if tg.nodes:
            self._layer()
            self._order()
            self._place()
            self._route_edges()

    # -- layering --------------------------------------------------------------------
    def _forward_edges(self) -> list[tuple[str, str]]:
        """Every edge except the back edges of a depth-first search (a spec with a cycle still gets a picture)."""
        if self.tg.is_dag():
            return [(u, v) for u in self.tg.topological() for v in self.tg.successors(u)]
        on_path: set[str] = set()
        edges = []
        for u, v, kind in nx.dfs_labeled_edges(self.tg.to_networkx()):
            if kind == "forward":
                on_path.add(v)
                if u != v:  # (root, root) opens a search tree
                    edges.append((u, v))
            elif kind == "reverse":
                on_path.discard(v)
            elif kind == "nontree" and v not in on_path:  # a cross edge; one to the path closes a cycle
                edges.append((u, v))
        return edges

    def _layer(self) -> None:
        tg, g = self.tg, self.tg.nodes
        edges = self._forward_edges()
        forward = nx.DiGraph(edges)
        forward.add_nodes_from(g)
        has_inputs = any(tg.kind(n) == "input" for n in g)
        layer: dict[str, int] = {}
        for n in nx.topological_sort(forward):  # a node's layer: the longest path to it
            base = 0 if tg.kind(n) == "input" or not has_inputs else 1
            layer[n] = max([layer[p] + 1 for p in forward.predecessors(n)] + [base])
        last = max(layer.values())
        for d in tg.decoders:  # decoders line up in the last column
            if d in layer and not forward.out_degree(d):
                layer[d] = last
        self.layers = [[] for _ in range(last + 1)]
        for n in g:
            self.items[n] = Item(n, node_kind(tg, n), node_label(tg, n), layer[n])
        for n in g:  # insertion order: declaration order within a layer
            self.layers[layer[n]].append(n)
        for u, v in edges:
            chain = [u]
            for k in range(layer[u] + 1, layer[v]):
                dummy = f"\0{u}\0{v}\0{k}"
                self.items[dummy] = Item(dummy, "dummy", "", k, h=1)
                self.layers[k].append(dummy)
                chain.append(dummy)
            chain.append(v)
            self.chains[(u, v)] = chain

    def _links(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        up: dict[str, list[str]] = {n: [] for n in self.items}
        down: dict[str, list[str]] = {n: [] for n in self.items}
        for chain in self.chains.values():
            for a, b in zip(chain, chain[1:]):
                down[a].append(b)
                up[b].append(a)
        return up, down

    def _order(self) -> None:
        up, down = self._links()
        for _ in range(2):
            for k in range(1, len(self.layers)):
                self._sort_layer(k, up, k - 1)
            for k in range(len(self.layers) - 2, -1, -1):
                self._sort_layer(k, down, k + 1)

    def _sort_layer(self, k: int, neighbours: dict[str, list[str]], other: int) -> None:
        pos = {n: i for i, n in enumerate(self.layers[other])}
        current = {n: i for i, n in enumerate(self.layers[k])}

        def key(n: str) -> tuple[float, int]:
            near = [pos[m] for m in neighbours[n] if m in pos]
            return (sum(near) / len(near) if near else current[n], current[n])

        self.layers[k].sort(key=key)

    # -- placement -------------------------------------------------------------------
    def _place(self) -> None:
        up, down = self._links()
        for item in self.items.values():
            if not item.is_dummy:
                item.w = len(item.label) + 4
        col_w = [max([self.items[n].w for n in layer] + [1]) for layer in self.layers]
        for k, layer in enumerate(self.layers):
            self._stack(layer, self._centre(layer, up) if k else None)
        if len(self.layers) > 1:  # sources (inputs) centre on what they feed
            self._stack(self.layers[0], self._centre(self.layers[0], down))
        top = min(i.y for i in self.items.values())
        for item in self.items.values():
            item.y -= top
        gaps = [self._tracks(k) for k in range(len(self.layers) - 1)]
        x = 1
        self.col_x, self.col_w, self.gap_x, self.gap_tracks = [], col_w, [], gaps
        for k, layer in enumerate(self.layers):
            self.col_x.append(x)
            for n in layer:
                item = self.items[n]
                if item.is_dummy:
                    item.x, item.w = x, col_w[k]
                else:
                    item.x = x + (col_w[k] - item.w) // 2
            x += col_w[k]
            if k < len(gaps):
                self.gap_x.append(x)
                x += 2 * max(len(set(gaps[k].values())), 1) + 3
        self.width = x + 1
        self.height = max(i.y + i.h for i in self.items.values())

    def _centre(self, layer: list[str], neighbours: dict[str, list[str]]) -> float | None:
        mids = [self.items[m].mid for n in layer for m in neighbours[n]]
        return sum(mids) / len(mids) if mids else None

    def _stack(self, layer: list[str], centre: float | None) -> None:
        heights = [self.items[n].h for n in layer]
        total = sum(heights) + max(len(layer) - 1, 0)
        y = 0 if centre is None else round(centre - (total - 1) / 2)
        for n in layer:
            self.items[n].y = y
            y += self.items[n].h + 1

    def _tracks(self, k: int) -> dict[str, int]:
        """Connected bundles of the segments between layer k and k+1: each gets one vertical track."""
        parent: dict[str, str] = {}

        def find(a: str) -> str:
            while parent.setdefault(a, a) != a:
                a = parent[a]
            return a

        segs = self._segments(k)
        for a, b, _ in segs:
            parent[find(a)] = find(b)
        roots: dict[str, int] = {}
        out = {}
        ordered = sorted({a for a, _, _ in segs}, key=lambda n: self.layers[k].index(n))
        for a in ordered:
            out[a] = roots.setdefault(find(a), len(roots))
        for _, b, _ in segs:
            out[b] = roots.setdefault(find(b), len(roots))
        return out

    def _segments(self, k: int) -> list[tuple[str, str, tuple[str, str]]]:
        segs = []
        for edge, chain in self.chains.items():
            for a, b in zip(chain, chain[1:]):
                if self.items[a].layer == k:
                    segs.append((a, b, edge))
        return segs

    # -- edges -----------------------------------------------------------------------
    def _mark(self, x: int, y: int, bits: int, edge) -> None:
        cell = self.cells.setdefault((x, y), [0, set()])
        cell[0] |= bits
        cell[1].add(edge)

    def _hline(self, x1: int, x2: int, y: int, edge) -> None:
        for x in range(min(x1, x2), max(x1, x2) + 1):
            bits = (L if x > min(x1, x2) else 0) | (R if x < max(x1, x2) else 0)
            self._mark(x, y, bits, edge)

    def _vline(self, x: int, y1: int, y2: int, edge) -> None:
        for y in range(min(y1, y2), max(y1, y2) + 1):
            bits = (U if y > min(y1, y2) else 0) | (D if y < max(y1, y2) else 0)
            self._mark(x, y, bits, edge)

    def _route_edges(self) -> None:
        for k in range(len(self.layers) - 1):
            tracks = self.gap_tracks[k]
            for a, b, edge in self._segments(k):
                src, dst = self.items[a], self.items[b]
                tx = self.gap_x[k] + 1 + 2 * tracks[a]
                sx = src.x + src.w
                sy, ty = src.mid, dst.mid
                ex = dst.x - 1 if dst.is_dummy else dst.x - 2
                self._hline(sx, tx, sy, edge)
                self._mark(sx, sy, L, edge)  # joins the box's port or the dummy's line
                self._vline(tx, sy, ty, edge)
                self._hline(tx, ex, ty, edge)
                self._mark(ex, ty, R, edge)
                if dst.is_dummy:
                    self._mark(ex, ty, R, edge)
                else:
                    self.arrows.setdefault((dst.x - 1, ty), set()).add(edge)
                if not src.is_dummy:
                    self.ports.setdefault((src.x + src.w - 1, sy), set()).add(edge)
        for item in self.items.values():
            if item.is_dummy:
                edge = next(e for e, c in self.chains.items() if item.id in c)
                self._hline(item.x - 1, item.x + item.w, item.y, edge)

    def item_at(self, x: int, y: int) -> Item | None:
        for item in self.items.values():
            if not item.is_dummy and item.contains(x, y):
                return item
        return None

    def nodes_by_layer(self) -> list[list[str]]:
        return [[n for n in layer if not self.items[n].is_dummy] for layer in self.layers]


def lit_edges(tg: TangleGraph, selection: dict[str, str] | None) -> tuple[set[str], set[tuple[str, str]]]:
    """The nodes and edges a route (a selector value for each multiplexer) runs through."""
    if selection is None:
        return set(), set()
    active = tg.active_nodes(selection)
    edges = set()
    for u, v, data in tg.edges():
        if u not in active or v not in active:
            continue
        mux = data.get("mux")
        chosen = tg.muxes[mux].chosen(selection) if mux is not None else None
        if chosen is not None and data.get("value") not in chosen:
            continue
        edges.add((u, v))
    return active, edges
