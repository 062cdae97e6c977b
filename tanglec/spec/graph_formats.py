"""The module graph for other tools: Graphviz DOT and Mermaid text, SVG/PNG through Graphviz's `dot`.

Both texts draw the same picture, left to right: input fields (ellipses), modules (rounded boxes
with their interfaces), decoders (double boxes), multiplexers (diamonds, fed by their selector
with a dashed edge), and the targets the decoders answer (plain text, dashed edges). An edge into a
multiplexer's branch is labelled with the selector value that picks it.

SVG and PNG need the `dot` program (Graphviz) on PATH; without it `render` raises GraphvizMissing
with a message that says how to get it. Nothing here imports TensorFlow.
"""
from __future__ import annotations

import shutil
import subprocess

from .graph import TangleGraph

TEXT_FORMATS = ("dot", "mermaid")
IMAGE_FORMATS = ("svg", "png")


class GraphvizMissing(RuntimeError):
    pass


class GraphvizFailed(RuntimeError):
    pass


def _elements(tg: TangleGraph):
    """(nodes, edges): nodes as (id, kind, title, detail); edges as (from, to, label, dashed)."""
    nodes, edges = [], []
    for node in tg.topological():
        kind = tg.kind(node)
        if kind == "input":
            nodes.append((f"input:{node}", "input", node, tg.inputs[node].type.describe()))
        elif kind == "mux":
            mux = tg.muxes[node]
            detail = f"chain of {len(mux.selectors)}, shared weights" if mux.is_chain else ""
            nodes.append((node, "mux", "mux by " + ", ".join(s.text for s in mux.selectors), detail))
        else:
            m = tg.modules[node]
            role = "decoder" if node in tg.decoders else "module"
            nodes.append((f"module:{node}", role, node, f"{m.input} → {m.output}"))
    ids = {n: (f"{tg.kind(n)}:{n}" if tg.kind(n) != "mux" else n) for n in tg.nodes}
    for name, decl in tg.selectors.items():
        if any(s.text == name for m in tg.muxes.values() for s in m.selectors):
            nodes.append((f"select:{name}", "selector", name, " | ".join(v.text for v in decl.values)))
    for u, v, data in tg.edges():
        edges.append((ids[u], ids[v], data.get("value") or "", False))
    for mid, mux in tg.muxes.items():
        for position, sel in enumerate(mux.selectors, 1):
            if sel.text in tg.selectors:
                edges.append((f"select:{sel.text}", mid, f"position {position}" if mux.is_chain else "", True))
    for target in dict.fromkeys(tg.decoders.values()):
        nodes.append((f"target:{target}", "target", target, "target"))
    for d, target in tg.decoders.items():
        if d in tg.modules:
            edges.append((f"module:{d}", f"target:{target}", "as", True))
    return nodes, edges


# ---- DOT --------------------------------------------------------------------------------------------

_DOT_STYLE = {
    "input": 'shape=ellipse, style=filled, fillcolor="#e8f0fe"',
    "module": 'shape=box, style="rounded,filled", fillcolor="#ffffff"',
    "decoder": 'shape=box, style="rounded,filled", fillcolor="#e6f4ea", peripheries=2',
    "mux": 'shape=diamond, style=filled, fillcolor="#fef7e0", fontsize=10',
    "selector": 'shape=note, style=filled, fillcolor="#fce8e6", fontsize=10',
    "target": "shape=plaintext",
}


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(tg: TangleGraph) -> str:
    nodes, edges = _elements(tg)
    lines = ["digraph tangle {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=11];',
             '  edge [fontname="Helvetica", fontsize=9];']
    for nid, kind, title, detail in nodes:
        label = f"{title}\n{detail}" if detail and kind != "target" else title
        if kind == "selector":
            label = f"select {title}\n{detail}"
        elif kind == "target":
            label = f"target {title}"
        lines.append(f"  {_dot_quote(nid)} [label={_dot_quote(label)}, {_DOT_STYLE[kind]}];")
    for u, v, label, dashed in edges:
        attrs = []
        if label:
            attrs.append(f"label={_dot_quote(label)}")
        if dashed:
            attrs.append("style=dashed")
        lines.append(f"  {_dot_quote(u)} -> {_dot_quote(v)}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ---- Mermaid ---------------------------------------------------------------------------------------

_MERMAID_SHAPE = {
    "input": ('(["', '"])'),
    "module": ('("', '")'),
    "decoder": ('[["', '"]]'),
    "mux": ('{"', '"}'),
    "selector": ('[/"', '"/]'),
    "target": ('>"', '"]'),
}


def _mermaid_id(nid: str) -> str:
    return nid.replace(":", "_")


def _mermaid_text(text: str) -> str:
    return (text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
            .replace("|", "#124;"))


def to_mermaid(tg: TangleGraph) -> str:
    nodes, edges = _elements(tg)
    lines = ["flowchart LR"]
    for nid, kind, title, detail in nodes:
        label = _mermaid_text(title) + (f"<br/>{_mermaid_text(detail)}" if detail and kind != "target" else "")
        if kind == "selector":
            label = f"select {_mermaid_text(title)}<br/>{_mermaid_text(detail)}"
        elif kind == "target":
            label = f"target {_mermaid_text(title)}"
        left, right = _MERMAID_SHAPE[kind]
        lines.append(f"  {_mermaid_id(nid)}{left}{label}{right}")
    for u, v, label, dashed in edges:
        arrow = "-.->" if dashed else "-->"
        text = f'|"{_mermaid_text(label)}"|' if label else ""
        lines.append(f"  {_mermaid_id(u)} {arrow}{text} {_mermaid_id(v)}")
    return "\n".join(lines) + "\n"


# ---- images through Graphviz -----------------------------------------------------------------------

def dot_program() -> str | None:
    return shutil.which("dot")


def render(tg: TangleGraph, fmt: str, timeout: float = 60.0) -> bytes:
    """SVG or PNG bytes of the graph, drawn by Graphviz's `dot`."""
    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"render makes {' or '.join(IMAGE_FORMATS)}, not {fmt!r}")
    exe = dot_program()
    if exe is None:
        raise GraphvizMissing(
            f"--format {fmt} needs Graphviz's `dot` program, which is not on PATH. Install Graphviz "
            f"(Debian/Ubuntu: `apt-get install graphviz`, macOS: `brew install graphviz`, "
            f"conda: `conda install graphviz`), or write the DOT text with `--format dot` and render it "
            f"elsewhere; `--format mermaid` needs no tools (GitHub renders it in Markdown).")
    try:
        proc = subprocess.run([exe, f"-T{fmt}"], input=to_dot(tg).encode("utf-8"), capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise GraphvizFailed(f"`dot -T{fmt}` took longer than {timeout:.0f}s") from None
    if proc.returncode != 0:
        raise GraphvizFailed(f"`dot -T{fmt}` failed ({proc.returncode}): "
                             f"{proc.stderr.decode('utf-8', 'replace').strip()[:500]}")
    return proc.stdout
