"""The parser's grammar analysis is cached by Lark in the temporary directory, never next to the package
(an install may be read-only), and a second process loads it instead of analysing the grammar again."""
from __future__ import annotations

from conftest import ROOT, run_tanglec

PACKAGE = ROOT / "tanglec"


def package_files() -> dict[str, int]:
    return {str(p.relative_to(PACKAGE)): p.stat().st_mtime_ns for p in PACKAGE.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


def test_the_grammar_cache_lives_in_the_temporary_directory_and_is_reused(tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    before = package_files()
    first = run_tanglec("check", "specs/arith.tangle", env={"TMPDIR": str(temp)})
    assert first.returncode == 0, first.stderr
    caches = sorted(temp.glob(".lark_cache_*"))
    assert caches, list(temp.iterdir())
    stamps = {p: p.stat().st_mtime_ns for p in caches}
    second = run_tanglec("check", "specs/arith.tangle", env={"TMPDIR": str(temp)})
    assert second.returncode == 0, second.stderr
    assert {p: p.stat().st_mtime_ns for p in temp.glob(".lark_cache_*")} == stamps  # read, not rewritten
    assert package_files() == before


def test_a_spec_checks_when_no_cache_can_be_written(tmp_path):
    """TMPDIR pointing at a file: Python falls back to another temporary directory or none; Lark carries on."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    proc = run_tanglec("check", "specs/arith.tangle", env={"TMPDIR": str(blocker)})
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
