"""`tanglec graph --format dot | mermaid | svg | png` (svg/png only where Graphviz is installed)."""
from __future__ import annotations

import json
import re
import shutil

import pytest
from click.testing import CliRunner

from support import ARITH, SPECS
from tanglec.spec import graph_formats
from tanglec.pipeline import load
from tanglec.cli import cli

SPEC_FILES = sorted(SPECS.rglob("*.tangle"))
HAS_DOT = shutil.which("dot") is not None


def invoke(*args):
    return CliRunner().invoke(cli, list(map(str, args)))


def dot_elements(text: str) -> tuple[set[str], list[tuple[str, str, str]]]:
    nodes = set(re.findall(r'^  "([^"]+)" \[label=', text, re.M))
    edges = re.findall(r'^  "([^"]+)" -> "([^"]+)"(.*);$', text, re.M)
    return nodes, edges


def test_dot_of_arith():
    tg = load(ARITH).graph
    text = graph_formats.to_dot(tg)
    assert text.startswith("digraph tangle {\n  rankdir=LR;") and text.endswith("}\n")
    nodes, edges = dot_elements(text)
    assert nodes == {"input:x", "module:binary", "module:decimal", "module:plus1", "module:times2",
                     "module:to_binary", "module:to_decimal", "mux:encoding:0", "mux:op:1",
                     "select:encoding", "select:op", "target:y"}
    assert ("input:x", "module:binary", ' [label="binary"]') in edges
    assert ("select:op", "mux:op:1", " [style=dashed]") in edges
    assert ("module:to_decimal", "target:y", ' [label="as", style=dashed]') in edges
    assert '"module:to_binary" [label="to_binary\\nlatent(12) → bits(4)"' in text
    assert "peripheries=2" in text  # decoders are double boxes
    # every module-graph edge is drawn
    assert len([e for e in edges if not e[0].startswith(("select:",)) and "target:" not in e[1]]) == \
        len(list(tg.edges()))


def test_mermaid_of_arith():
    text = graph_formats.to_mermaid(load(ARITH).graph)
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    defined = set()
    for line in lines[1:]:
        m = re.match(r"  (\w+)[\[\({>]", line)
        if m and "--" not in line:
            defined.add(m.group(1))
    used = set()
    for line in lines[1:]:
        m = re.match(r"  (\w+) (-->|-\.->)(\|[^|]*\|)? (\w+)$", line)
        if m:
            used |= {m.group(1), m.group(4)}
    assert used and used <= defined
    assert '  input_x -->|"binary"| module_binary' in lines
    assert '  module_to_binary[["to_binary<br/>latent(12) → bits(4)"]]' in lines
    assert "binary #124; decimal" in text  # `|` escaped inside a label


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.name)
def test_every_spec_draws(path):
    tg = load(path).graph
    nodes, edges = dot_elements(graph_formats.to_dot(tg))
    assert {u for u, _, _ in edges} | {v for _, v, _ in edges} <= nodes
    assert {f"module:{m}" for m in tg.modules} <= nodes
    assert graph_formats.to_mermaid(tg).count("\n") >= len(tg.modules) + len(edges)


def test_cli_text_formats_and_output_file(tmp_path):
    r = invoke("graph", ARITH, "--format", "dot")
    assert r.exit_code == 0 and r.stdout.startswith("digraph tangle {")
    r = invoke("graph", ARITH, "--format", "mermaid", "--json")
    out = json.loads(r.stdout)
    assert out["ok"] and out["format"] == "mermaid" and out["text"].startswith("flowchart LR")
    target = tmp_path / "out" / "arith.dot"
    r = invoke("graph", ARITH, "--format", "dot", "-o", target, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out == {"ok": True, "format": "dot", "output": str(target), "bytes": target.stat().st_size}
    assert target.read_text().startswith("digraph")
    r = invoke("graph", ARITH)  # the default stays the text description
    assert r.exit_code == 0 and "routes:" in r.stdout
    r = invoke("graph", ARITH, "--format", "json")
    assert {"nodes", "edges", "routes"} <= set(json.loads(r.stdout))


@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_images_without_graphviz_say_what_to_do(monkeypatch, tmp_path, fmt):
    monkeypatch.setattr(graph_formats, "dot_program", lambda: None)
    target = tmp_path / f"g.{fmt}"
    r = invoke("graph", ARITH, "--format", fmt, "-o", target)
    assert r.exit_code == 1
    assert "Graphviz" in r.stderr and "apt-get install graphviz" in r.stderr and "--format dot" in r.stderr
    assert "Traceback" not in r.output + r.stderr and not target.exists()
    r = invoke("graph", ARITH, "--format", fmt, "-o", target, "--json")
    out = json.loads(r.stdout)
    assert r.exit_code == 1 and out["ok"] is False and out["diagnostics"][0]["code"] == "E190"


def test_graphviz_failure_is_reported(monkeypatch, tmp_path):
    fake = tmp_path / "dot"
    fake.write_text("#!/bin/sh\necho 'syntax error in line 1' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(graph_formats, "dot_program", lambda: str(fake))
    r = invoke("graph", ARITH, "--format", "svg")
    assert r.exit_code == 1 and "syntax error in line 1" in r.stderr


def test_png_is_not_written_to_a_terminal_or_json(monkeypatch):
    monkeypatch.setattr(graph_formats, "dot_program", lambda: None)
    r = invoke("graph", ARITH, "--format", "png", "--json")
    assert r.exit_code == 2 and "-o FILE" in r.output + r.stderr


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz `dot` is not installed")
def test_svg_and_png_with_graphviz(tmp_path):
    r = invoke("graph", ARITH, "--format", "svg")
    assert r.exit_code == 0 and "<svg" in r.stdout and "to_decimal" in r.stdout
    png = tmp_path / "arith.png"
    r = invoke("graph", ARITH, "--format", "png", "-o", png)
    assert r.exit_code == 0 and png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
