"""The user's own cache folder for tanglec, and small JSON records kept in it.

Everything here is an optimisation: a folder that cannot be had, or a record that cannot be read or
written, means "work it out again", never a failed command. Standard library only.
"""
from __future__ import annotations

import json
import os
import stat
import sys
import tempfile
import time
from pathlib import Path

XLA_CACHE_BYTES = 256 * 2**20  # compiled XLA programs kept, the oldest dropped first (~1.5 MB for the seed spec)


def user_cache_dir() -> Path | None:
    """``$XDG_CACHE_HOME/tanglec`` (``~/.cache/tanglec`` without it), created with mode 0700 and checked
    to be a folder of this user's that nobody else may write; None when no such folder can be had."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tanglec"
    try:
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(base)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        return None
    return base


def read_record(name: str) -> dict:
    """The JSON object in the cache file `name`, or {} when there is none (or it is unreadable)."""
    folder = user_cache_dir()
    if folder is None:
        return {}
    try:
        value = json.loads((folder / name).read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def write_record(name: str, value: dict) -> bool:
    """Replace the cache file `name` with `value` as JSON, atomically (a temporary sibling renamed over
    it); False, and nothing left behind, when that fails."""
    folder = user_cache_dir()
    if folder is None:
        return False
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    except OSError:
        return False
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(value, handle, indent=1, sort_keys=True)
        os.replace(temporary, folder / name)
        return True
    except (OSError, TypeError, ValueError):
        try:
            os.unlink(temporary)
        except OSError:
            pass
        return False


def use_xla_cache() -> None:
    """Keep the XLA programs that training compiles in ``<cache>/xla`` (TensorFlow's persistent
    compilation cache), so a run of a spec compiled before loads its program instead of compiling it:
    ~5 s of a 3,000-step `tanglec compile` of the seed spec here. TensorFlow reads the flag when it is
    imported: call this before that; it does nothing once TensorFlow is imported, when the user's
    TF_XLA_FLAGS name a cache of their own, or when no cache folder can be had. TensorFlow writes
    each entry to a temporary file and renames it, and keys it by the program, so a changed spec
    compiles anew; the folder is trimmed to XLA_CACHE_BYTES here."""
    flags = os.environ.get("TF_XLA_FLAGS", "")
    if "tensorflow" in sys.modules or "persistent_cache_directory" in flags:
        return
    base = user_cache_dir()
    if base is None:
        return
    folder = base / "xla"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        _trim(folder)
    except OSError:
        return
    os.environ["TF_XLA_FLAGS"] = f"{flags} --tf_xla_persistent_cache_directory={folder}".strip()


def _trim(folder: Path) -> None:
    """Drop the oldest entries past XLA_CACHE_BYTES, and temporary files an interrupted write left (an hour old)."""
    entries, now = [], time.time()
    for path in folder.iterdir():
        try:
            info = path.stat()
        except FileNotFoundError:  # another process trimmed it, or TensorFlow renamed its temporary file
            continue
        if path.name.endswith(".tmp") and now - info.st_mtime > 3600:
            path.unlink(missing_ok=True)
        elif path.name.startswith("xla_compile_cache__") and path.name.endswith(".pb"):
            entries.append((info.st_mtime, info.st_size, path))
    kept = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries):
        if kept <= XLA_CACHE_BYTES:
            break
        path.unlink(missing_ok=True)
        kept -= size
