"""The parser's grammar analysis is cached by Lark in the user's private cache folder (XDG_CACHE_HOME/tanglec,
mode 0700), never next to the package (an install may be read-only) nor under a predictable name in the shared
temporary folder (Lark's cache is a pickle: a file planted there by another user would run code)."""
from __future__ import annotations

import os
import stat

from support import ROOT, run_tanglec

PACKAGE = ROOT / "tanglec"


def package_files() -> dict[str, int]:
    return {str(p.relative_to(PACKAGE)): p.stat().st_mtime_ns for p in PACKAGE.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


def test_the_grammar_cache_is_private_and_reused(tmp_path):
    cache_home, temp = tmp_path / "cache", tmp_path / "tmp"
    temp.mkdir()
    env = {"XDG_CACHE_HOME": str(cache_home), "TMPDIR": str(temp)}
    before = package_files()
    first = run_tanglec("check", "specs/arith.tangle", env=env)
    assert first.returncode == 0, first.stderr
    folder = cache_home / "tanglec"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    caches = sorted(folder.glob("grammar-*.cache"))
    assert caches, list(folder.iterdir())
    stamps = {p: p.stat().st_mtime_ns for p in caches}
    second = run_tanglec("check", "specs/arith.tangle", env=env)
    assert second.returncode == 0, second.stderr
    assert {p: p.stat().st_mtime_ns for p in folder.glob("grammar-*.cache")} == stamps  # read, not rewritten
    assert not list(temp.glob(".lark_cache_*"))  # nothing under a guessable name in the shared folder
    assert package_files() == before


def test_a_cache_folder_others_can_write_is_not_used(tmp_path):
    cache_home = tmp_path / "cache"
    (cache_home / "tanglec").mkdir(parents=True)
    os.chmod(cache_home / "tanglec", 0o777)
    proc = run_tanglec("check", "specs/arith.tangle", env={"XDG_CACHE_HOME": str(cache_home)})
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert not list((cache_home / "tanglec").iterdir())


def test_a_spec_checks_when_no_cache_can_be_written(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    proc = run_tanglec("check", "specs/arith.tangle", env={"XDG_CACHE_HOME": str(blocker)})
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
