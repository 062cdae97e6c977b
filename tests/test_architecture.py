"""The layering of docs/ARCHITECTURE.md, enforced: import-linter's contracts, no import cycle, sizes, one grammar.

The cycle check reads the package's own source with `ast`, so it sees what import-linter sees (imports inside
functions included, `if TYPE_CHECKING:` blocks left out) without trusting either tool alone.
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import networkx as nx

from support import ROOT

PACKAGE = ROOT / "tanglec"
TENSORFLOW_FREE_TESTS = ["tests/test_check.py", "tests/test_fmt.py", "tests/test_highlight.py", "tests/test_graph.py"]
MAX_MODULE_LINES = 500
MAX_CLASS_LINES = 300
SIZE_REASON = "Why this size:"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST):
    """Every import statement of a module, at any depth, except those under `if TYPE_CHECKING:`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _resolve(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The package modules an import statement loads (a package's own __init__ counts for `from pkg import x`)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        is_package = MODULES[module].name == "__init__.py"
        base = module.split(".")
        if node.level:
            base = base[:len(base) - node.level + (1 if is_package else 0)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        names = [prefix] + [f"{prefix}.{alias.name}" for alias in node.names]
    found = set()
    for name in names:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name:
            found.add(name)
    return found


def import_graph() -> nx.DiGraph:
    """module -> module for every import inside the package (an import of a submodule loads its packages first)."""
    graph = nx.DiGraph()
    graph.add_nodes_from(MODULES)
    for module, path in MODULES.items():
        for node in _import_nodes(ast.parse(path.read_text(), str(path))):
            for target in _resolve(module, node):
                if target != module and not module.startswith(target + "."):
                    graph.add_edge(module, target)
    return graph


def test_lint_imports_keeps_every_contract():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint_imports), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_import_graph_sees_function_level_imports_and_skips_type_checking():
    source = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from tanglec.cli import main\n"
              "def f():\n    from tanglec.util import files\n")
    nodes = list(_import_nodes(ast.parse(source)))
    assert {n.module for n in nodes if isinstance(n, ast.ImportFrom)} == {"typing", "tanglec.util"}


def test_no_import_cycle_among_the_package_modules():
    graph = import_graph()
    assert graph.number_of_edges() > len(MODULES) // 2  # the graph really holds the package's imports
    cycles = [sorted(component) for component in nx.strongly_connected_components(graph) if len(component) > 1]
    assert not cycles, f"import cycles: {cycles}; an example: {nx.find_cycle(graph)}"


def _has_reason(docstring: str | None) -> bool:
    return any(line.strip().startswith(SIZE_REASON) for line in (docstring or "").splitlines())


def test_no_module_or_class_is_oversized_without_a_reason():
    oversized = []
    for module, path in MODULES.items():
        text = path.read_text()
        tree = ast.parse(text, str(path))
        if len(text.splitlines()) > MAX_MODULE_LINES and not _has_reason(ast.get_docstring(tree)):
            oversized.append(f"{module}: {len(text.splitlines())} lines")
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_CLASS_LINES and not _has_reason(ast.get_docstring(node)):
                    oversized.append(f"{module}.{node.name}: {length} lines")
    assert not oversized, (f"over {MAX_MODULE_LINES} lines per module / {MAX_CLASS_LINES} per class, with no "
                           f"'{SIZE_REASON}' line in the docstring: {oversized}")


def test_the_grammar_is_loaded_in_exactly_one_place():
    places = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                func = node.func
                if (isinstance(func, ast.Name) and func.id == "Lark") or \
                        (isinstance(func, ast.Attribute) and func.attr in ("open", "open_from_package")
                         and isinstance(func.value, ast.Name) and func.value.id == "Lark"):
                    places.append(f"{module}:{node.lineno}")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.endswith(".lark"):
                places.append(f"{module}:{node.lineno} names {node.value}")
    lark_modules = {place.split(":")[0] for place in places}
    assert lark_modules == {"tanglec.lang.parser"}, places
    assert sum(1 for place in places if "names" not in place) == 1, places


def test_the_tensorflow_free_layers_unit_tests_run_without_tensorflow(tmp_path):
    """The language and spec layers' tests, with `tensorflow` and `keras` modules that raise when imported
    first on the path (for the test process and every `tanglec` it spawns)."""
    stub = tmp_path / "stub"
    stub.mkdir()
    for name in ("tensorflow", "keras"):
        (stub / f"{name}.py").write_text(f"raise ImportError('{name} is forbidden in these tests')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(stub), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider", "-q",
                           "--basetemp", str(tmp_path / "inner"), *TENSORFLOW_FREE_TESTS],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "forbidden in these tests" not in proc.stdout + proc.stderr
