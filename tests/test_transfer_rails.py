"""Transfer safety rails at `check`: loaded modules retrained on few rows without `freeze` (W220, the fix
as hint) and a new module trained on part of its input's values (W221, the missing values named)."""
from __future__ import annotations

import json
import shutil

import pytest

from support import ARITH, SPECS, call_tanglec


@pytest.fixture(scope="module")
def transfer_folder(tmp_path_factory):
    """specs/ beside a briefly trained arith run at runs/arith, as the transfer specs expect."""
    folder = tmp_path_factory.mktemp("rails")
    specs = folder / "specs"
    shutil.copytree(SPECS, specs, ignore=shutil.ignore_patterns("data"))
    proc = call_tanglec("compile", str(ARITH), "-o", str(folder / "runs" / "arith"), "--steps", "20")
    assert proc.returncode == 0, proc.stderr
    return specs


def _check(path):
    proc = call_tanglec("check", str(path), "--json")
    assert proc.returncode == 0, proc.stdout
    return json.loads(proc.stdout)["diagnostics"]


def test_the_shipped_transfer_spec_passes_without_rails(transfer_folder):
    codes = [d["code"] for d in _check(transfer_folder / "transfer_prime.tangle")]
    assert "W220" not in codes and "W221" not in codes


def test_forgetting_freeze_warns_with_the_freeze_as_hint(transfer_folder):
    spec = transfer_folder / "prime_nofreeze.tangle"
    text = (transfer_folder / "transfer_prime.tangle").read_text()
    spec.write_text("\n".join(line for line in text.splitlines() if not line.startswith("freeze")) + "\n")
    (w,) = [d for d in _check(spec) if d["code"] == "W220"]
    assert w["severity"] == "warning" and "only 10 rows" in w["message"]
    assert w["hints"][0].startswith("freeze them: `freeze binary, decimal, plus1, times2, to_binary, to_decimal`")
    assert w["span"]["line"] == text.splitlines().index('init "../runs/arith"') + 1
    fixed = spec.with_name("prime_fixed.tangle")
    fixed.write_text(spec.read_text() + "freeze binary, decimal, plus1, times2, to_binary, to_decimal\n")
    assert "W220" not in [d["code"] for d in _check(fixed)]


def test_a_new_module_seeing_half_its_inputs_names_the_missing_values(transfer_folder):
    spec = transfer_folder / "prime_gap.tangle"
    spec.write_text((transfer_folder / "transfer_prime.tangle").read_text().replace("only op:plus1", "only op:times2"))
    (w,) = [d for d in _check(spec) if d["code"] == "W221"]
    assert "'is_prime' is trained on 5 of the 10 values" in w["message"] and w["message"].endswith("1, 3, 5, 7, 9")
    text = call_tanglec("check", str(spec)).stderr
    assert "warning[W221]" in text and "hint:" in text
