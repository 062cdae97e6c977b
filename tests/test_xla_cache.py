"""Compiled XLA programs are kept in the user's private cache folder (XDG_CACHE_HOME/tanglec/xla) and loaded
by the next process that compiles the same program; the folder is trimmed, and a user's own TF_XLA_FLAGS cache
is left alone."""
from __future__ import annotations

import os
import stat
import subprocess
import sys

from support import ROOT

COMPILE = ("import tanglec.backend, tensorflow as tf\n"
           "print(tf.function(lambda a: tf.reduce_sum(a * 2), jit_compile=True)(tf.range(5.0)).numpy())\n")


def compile_in_process(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", COMPILE], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT), **env})


def test_a_compiled_program_is_kept_and_loaded_by_the_next_process(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path), "TF_XLA_FLAGS": ""}
    first = compile_in_process(env)
    assert first.returncode == 0 and first.stdout.strip() == "20.0", first.stderr
    folder = tmp_path / "tanglec" / "xla"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    entries = {p: p.stat().st_mtime_ns for p in folder.glob("xla_compile_cache__*.pb")}
    assert len(entries) == 1
    second = compile_in_process(env)
    assert second.returncode == 0 and second.stdout.strip() == "20.0", second.stderr
    assert {p: p.stat().st_mtime_ns for p in folder.glob("xla_compile_cache__*.pb")} == entries  # loaded


def test_a_cache_the_user_names_is_theirs(tmp_path):
    own = tmp_path / "mine"
    proc = compile_in_process({"XDG_CACHE_HOME": str(tmp_path), "TF_XLA_FLAGS":
                               f"--tf_xla_persistent_cache_directory={own}"})
    assert proc.returncode == 0, proc.stderr
    assert list(own.glob("xla_compile_cache__*.pb")) and not (tmp_path / "tanglec" / "xla").exists()


def test_the_folder_keeps_the_newest_entries_within_its_size(tmp_path, monkeypatch):
    import tanglec.util.cache as cache

    folder = tmp_path / "xla"
    folder.mkdir()
    for age in range(5):
        entry = folder / f"xla_compile_cache__{age}__0__XLA_CPU_JIT.pb"
        entry.write_bytes(b"x" * 100)
        os.utime(entry, (10_000 - age, 10_000 - age))  # entry 0 is the newest
    stale, fresh = folder / "a.pbvm-1.tmp", folder / "b.pbvm-2.tmp"
    stale.write_bytes(b"")
    fresh.write_bytes(b"")
    os.utime(stale, (0, 0))
    other = folder / "notes.txt"
    other.write_text("not an entry")
    monkeypatch.setattr(cache, "XLA_CACHE_BYTES", 250)
    cache._trim(folder)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["xla_compile_cache__0__0__XLA_CPU_JIT.pb", "xla_compile_cache__1__0__XLA_CPU_JIT.pb", fresh.name, other.name])
