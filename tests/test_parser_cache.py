"""The parser's grammar analysis (Lark's, and the grammar table made of it) is cached in the user's private
cache folder (XDG_CACHE_HOME/tanglec, mode 0700), never next to the package (an install may be read-only) nor
under a predictable name in the shared temporary folder (Lark's cache is a pickle: a file planted there by
another user would run code)."""
from __future__ import annotations

import os
import stat
import subprocess
import sys

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


def _parsing(env: dict, text: str) -> subprocess.CompletedProcess:
    """Parse `text` in a fresh process: prints the syntax diagnostics' codes, then whether Lark was imported."""
    code = ("import sys\nfrom tanglec.lang.parser import parse_partial\n"
            f"spec, problems = parse_partial({text!r}, 'x.tangle')\n"
            "print([d.code for d in problems], 'lark' in sys.modules)")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **env})


def test_a_spec_that_parses_never_imports_lark(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    assert run_tanglec("check", "specs/arith.tangle", env=env).returncode == 0  # the grammar table is made
    assert _parsing(env, (ROOT / "specs" / "arith.tangle").read_text()).stdout.split() == ["[]", "False"]
    assert _parsing(env, "input x: int 0..3\nrout x -> m\n").stdout.split() == ["['E001']", "True"]


def test_a_damaged_grammar_table_is_made_again(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    assert run_tanglec("check", "specs/arith.tangle", env=env).returncode == 0
    [table] = (tmp_path / "cache" / "tanglec").glob("grammar-table-*.cache")
    made = table.read_text()
    table.write_text(made.replace('"NAME"', '"NAMES"', 1))
    proc = run_tanglec("check", "specs/arith.tangle", env=env)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert table.read_text() == made
