"""The wheel carries the grammar and works outside the checkout: build it, install it into a fresh
virtual environment with only what `tanglec check` needs (no TensorFlow), and check a spec from a
directory that has nothing to do with the repo."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from support import ARITH, ROOT

# what `tanglec check` and `tanglec fmt` import (TensorFlow, numpy, rich, networkx are not needed)
LIGHT_DEPS = ("lark", "click")


def _pip(*args: str, cwd: Path | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    proc = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env=env)
    assert proc.returncode == 0, f"pip {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Build the wheel from a copy of the sources (the shared checkout gets no build/ or egg-info)."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.lark.cache")
    shutil.copytree(ROOT / "tanglec", src / "tanglec", ignore=ignore)
    _pip("wheel", str(src), "--no-deps", "--no-build-isolation", "-w", str(base / "dist"), "-q", cwd=base)
    wheels = list((base / "dist").glob("tanglec-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.mark.slow
def test_wheel_contents(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = next(zf.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "tanglec/lang/tangle.lark" in names
    assert (ROOT / "tanglec" / "lang" / "tangle.lark").read_bytes() == zipfile.ZipFile(wheel).read("tanglec/lang/tangle.lark")
    assert {"tanglec/cli/__init__.py", "tanglec/lang/parser.py", "tanglec/lang/fmt.py", "tanglec/lang/highlight.py"} <= names
    assert not [n for n in names if n.endswith((".pyc", ".lark.cache"))]
    assert "tanglec = tanglec.cli:main" in entry_points
    assert "tangle = tanglec.lang.highlight:TangleLexer" in entry_points


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_checks_a_spec_from_elsewhere(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    bindir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    py = bindir / "python"
    _pip("--python", str(py), "install", "--no-deps", "-q", str(wheel))
    pins = [f"{d}=={metadata.version(d)}" for d in LIGHT_DEPS]  # the versions the suite runs with
    _pip("--python", str(py), "install", "-q", *pins)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    spec = elsewhere / "mine.tangle"
    spec.write_text(ARITH.read_text())
    clean_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    clean_env["PATH"] = f"{bindir}{os.pathsep}{clean_env.get('PATH', '')}"

    where = subprocess.run([str(py), "-c", "import tanglec, tanglec.lang.parser as p; print(tanglec.__file__); "
                                           "print(p.grammar_path())"],
                           capture_output=True, text=True, cwd=elsewhere, env=clean_env, timeout=60)
    assert where.returncode == 0, where.stderr
    module_file, grammar = where.stdout.split()
    assert Path(module_file).is_relative_to(env_dir), "tanglec was imported from the checkout, not the wheel"
    assert Path(grammar).is_relative_to(env_dir) and Path(grammar).name == "tangle.lark"

    tanglec = str(bindir / "tanglec")
    proc = subprocess.run([tanglec, "check", "mine.tangle", "--json"], capture_output=True, text=True,
                          cwd=elsewhere, env=clean_env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["ok"] and out["routes"] == 4 and out["modules"][0] == "binary"

    # a broken spec: positioned diagnostics, exit 1 — still without TensorFlow
    spec.write_text(ARITH.read_text().replace("decode to_binary, to_decimal as y", "decode to_binary as yy"))
    proc = subprocess.run([tanglec, "check", "mine.tangle"], capture_output=True, text=True, cwd=elsewhere,
                          env=clean_env, timeout=60)
    assert proc.returncode == 1 and "mine.tangle:" in proc.stderr and "E101" in proc.stderr

    proc = subprocess.run([tanglec, "fmt", "--check", str(ARITH)], capture_output=True, text=True,
                          cwd=elsewhere, env=clean_env, timeout=60)
    assert proc.returncode == 0, proc.stderr


# ---- shell completion (click's own, driven by _TANGLEC_COMPLETE) ---------------------------------------

TANGLEC = Path(sys.executable).parent / ("tanglec.exe" if os.name == "nt" else "tanglec")


def _complete(env: dict) -> str:
    proc = subprocess.run([str(TANGLEC)], capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.skipif(not TANGLEC.exists(), reason="the tanglec console script is not installed")
def test_shell_completion_scripts_and_answers():
    script = _complete({"_TANGLEC_COMPLETE": "bash_source"})
    assert "_tanglec_completion()" in script and "complete -o nosort -F _tanglec_completion tanglec" in script
    assert "#compdef tanglec" in _complete({"_TANGLEC_COMPLETE": "zsh_source"})
    assert "complete --no-files --command tanglec" in _complete({"_TANGLEC_COMPLETE": "fish_source"})

    commands = _complete({"_TANGLEC_COMPLETE": "bash_complete", "COMP_WORDS": "tanglec ", "COMP_CWORD": "1"})
    names = {line.split(",", 1)[1] for line in commands.splitlines()}
    assert {"check", "compile", "eval", "query", "graph", "fmt", "export", "completion"} <= names
    formats = _complete({"_TANGLEC_COMPLETE": "bash_complete", "COMP_WORDS": "tanglec graph x.tangle --format ",
                         "COMP_CWORD": "4"})
    assert {"dot", "mermaid", "svg", "png"} <= {line.split(",", 1)[1] for line in formats.splitlines()}


def test_completion_command_prints_the_same_script():
    from click.testing import CliRunner

    from tanglec.cli import cli

    for shell, marker in (("bash", "_tanglec_completion()"), ("zsh", "#compdef tanglec"), ("fish", "complete")):
        r = CliRunner().invoke(cli, ["completion", shell])
        assert r.exit_code == 0 and marker in r.stdout and "_TANGLEC_COMPLETE" in r.stdout
    r = CliRunner().invoke(cli, ["completion", "--json"], env={"SHELL": "/usr/bin/zsh"})
    assert json.loads(r.stdout)["shell"] == "zsh"
    r = CliRunner().invoke(cli, ["completion", "tcsh"])
    assert r.exit_code == 2
