"""`python3 dev.py test` gives CI's result or says how it differs: the system tools some tests need."""
from __future__ import annotations

import subprocess
import sys

from support import ROOT


def test_dev_py_names_each_test_that_skips_for_a_missing_tool_and_how_to_install_it():
    proc = subprocess.run([sys.executable, str(ROOT / "dev.py"), "tools"], capture_output=True, text=True,
                          env={"PATH": "/nonexistent", "DEV_NO_INSTALL": "1"}, timeout=60)
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert any(line.startswith("SKIPPED: tests/test_tmux.py") and "sudo apt-get install tmux" in line for line in lines)
    assert any(line.startswith("SKIPPED: tests/test_graph_formats.py") and "`graphviz` package" in line
               for line in lines)


def test_ci_runs_exactly_the_readme_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.strip().endswith("python3 dev.py test") and "apt-get" not in ci
    assert "python3 dev.py test" in (ROOT / "README.md").read_text()
