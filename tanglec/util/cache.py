"""The user's own cache folder for tanglec, and small JSON records kept in it.

Everything here is an optimisation: a folder that cannot be had, or a record that cannot be read or
written, means "work it out again", never a failed command. Standard library only.
"""
from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path


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
