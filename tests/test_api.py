"""docs/api.md's examples, run as written: the Python API trains, evaluates, queries and predicts."""
from __future__ import annotations

import re
import subprocess
import sys

from support import ROOT

API_DOC = ROOT / "docs" / "api.md"


def test_the_python_blocks_of_api_md_run_in_order(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", API_DOC.read_text(), flags=re.S)
    assert len(blocks) >= 5
    proc = subprocess.run([sys.executable, "-c", "\n".join(blocks)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "E115" in proc.stdout and "MAE" in proc.stdout


def test_importing_tanglec_loads_neither_the_pipeline_nor_tensorflow():
    code = ("import sys, tanglec; tanglec.__version__; "
            "print('tensorflow' in sys.modules, 'tanglec.pipeline' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["False", "False"]
    proc = subprocess.run([sys.executable, "-c", "import tanglec; print(tanglec.open_run.__module__)"],
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "tanglec.pipeline"
