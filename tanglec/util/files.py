"""Where tanglec may write, and how it writes there without ever leaving a half-written file.

The output policy (docs/cli.md, "Output paths"), checked before any work starts:

* a command writes into a path that does not exist yet (its folders are created) or an empty
  folder, or replaces an artifact tanglec wrote of the same kind, recognised by its marker: a run
  directory by its manifest.json, a SavedModel export by tanglec-export.json, a `.keras` export by
  the same entry inside the zip, a checkpoint folder by holding only checkpoints, a transfer workdir
  by its results.jsonl;
* plain files (`graph -o`, transfer's JSON and PNG) carry no marker: an existing one is replaced only
  with `--overwrite`;
* nothing else is ever replaced (nor a symbolic link), and an output may not contain the current
  folder or an input (the spec, the data file, the run being read), nor lie inside an input folder.

Replacing is atomic: a file is written to a temporary sibling and renamed over the old one; a folder
is built beside the old one and exchanged with it in one step (Linux renameat2). Temporaries are named
`.NAME.PID.RANDOM.tmp[.ext]`, so the leftovers of a killed process are recognised and removed by the
next write of NAME.

Standard library only: the policy runs before TensorFlow (or anything heavy) is imported.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path
from typing import Iterable, Iterator

RUN_FORMAT = "tanglec-run/2"
RUN_MANIFEST = "manifest.json"
EXPORT_MARKER = "tanglec-export.json"
SAVEDMODEL_FORMAT = "tanglec-savedmodel/1"
KERAS_FORMAT = "tanglec-keras/1"
CHECKPOINT_FILE = "checkpoint.npz"
WORKDIR_CACHE = "results.jsonl"
MAX_MARKER_BYTES = 1_000_000

# what each kind of output is, in messages
KINDS = {"run": "a tanglec run directory", "savedmodel": "a tanglec SavedModel export",
         "keras": "a tanglec .keras export", "checkpoint": "a tanglec checkpoint folder",
         "workdir": "a transfer workdir"}
FOLDER_KINDS = {"run", "savedmodel", "checkpoint", "workdir"}


class OutputRefused(Exception):
    """An output path the policy refuses: `path`, why, and what would allow it (a flag) or what to do."""

    def __init__(self, path: Path, reason: str, hint: str):
        self.path, self.reason, self.hint = Path(path), reason, hint
        super().__init__(f"{path}: {reason}")


def checkpoint_dir(run_dir: Path) -> Path:
    """Where the checkpoints of `run_dir` live: a hidden sibling, never inside the run."""
    run_dir = Path(run_dir)
    return run_dir.parent / f".{run_dir.name}.ckpt"


# ---- recognising tanglec's artifacts -------------------------------------------------------------

def _format_of(data: bytes) -> object:
    try:
        marker = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return marker.get("format") if isinstance(marker, dict) else None


def _marker_format(path: Path) -> object:
    """The "format" of a small JSON marker file (not a link), or None."""
    if path.is_symlink() or not path.is_file():
        return None
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_MARKER_BYTES + 1)
    except OSError:
        return None
    return None if len(data) > MAX_MARKER_BYTES else _format_of(data)


def _is_checkpoint_folder(path: Path) -> bool:
    """Only what a Checkpointer writes: checkpoint.npz and its temporaries (or nothing yet)."""
    try:
        names = [p.name for p in path.iterdir()]
    except OSError:
        return False
    prefix = f".{CHECKPOINT_FILE}."
    return all(n == CHECKPOINT_FILE or n.startswith(prefix) and _TEMPORARY.fullmatch(n[len(prefix):])
               for n in names)


def artifact_kind(path: Path) -> str | None:
    """Which tanglec artifact `path` is, by its marker; None for anything else (and for links)."""
    path = Path(path)
    if path.is_symlink():
        return None
    if path.is_dir():
        if str(_marker_format(path / RUN_MANIFEST)).startswith("tanglec-run/"):  # older runs are replaceable too
            return "run"
        if _marker_format(path / EXPORT_MARKER) == SAVEDMODEL_FORMAT:
            return "savedmodel"
        if (path / WORKDIR_CACHE).is_file():
            return "workdir"
        if path.name.endswith(".ckpt") and _is_checkpoint_folder(path):
            return "checkpoint"
        return None
    if path.is_file() and path.suffix == ".keras":
        try:
            with zipfile.ZipFile(path) as zf:
                info = zf.getinfo(EXPORT_MARKER)
                if info.file_size <= MAX_MARKER_BYTES and _format_of(zf.read(info)) == KERAS_FORMAT:
                    return "keras"
        except (OSError, KeyError, zipfile.BadZipFile, RuntimeError, ValueError):
            return None
    return None


def export_marker(fmt: str) -> str:
    """The marker an export carries so a later export may replace it."""
    return json.dumps({"format": SAVEDMODEL_FORMAT if fmt == "savedmodel" else KERAS_FORMAT}) + "\n"


# ---- the policy ----------------------------------------------------------------------------------

def check_output(path: Path, kind: str, *, overwrite: bool = False, inputs: Iterable[Path] = (),
                 flag: str = "-o") -> None:
    """Refuse (OutputRefused) an output path the policy does not allow; see the module docstring.
    `flag` names the option that chose the path, for the messages."""
    path = Path(path)
    _refuse_containing(path, inputs, flag)
    if os.path.lexists(path):
        _refuse_existing(path, kind, overwrite, flag)
        _refuse_uncreatable(path.parent, path, flag)
    else:
        _refuse_uncreatable(path, path, flag)


def _refuse_containing(path: Path, inputs: Iterable[Path], flag: str) -> None:
    out = path.resolve()
    for given, what in [(Path.cwd(), "the current folder"), *((Path(p), f"the input {p}") for p in inputs)]:
        inside = given.resolve()
        if out == inside or out in inside.parents:
            raise OutputRefused(path, f"writing there would replace {what}, which it "
                                      f"{'is' if out == inside else 'contains'}",
                                f"choose a new path for {flag} (e.g. a folder under runs/)")
    for given in inputs:
        if Path(given).is_dir() and Path(given).resolve() in out.parents:
            raise OutputRefused(path, f"it lies inside the input {given}",
                                f"choose a path for {flag} outside {given}")


def _refuse_existing(path: Path, kind: str, overwrite: bool, flag: str) -> None:
    if path.is_symlink():
        raise OutputRefused(path, "it is a symbolic link; tanglec does not write through links",
                            f"choose a new path for {flag}")
    found = artifact_kind(path)
    if found == kind or kind in FOLDER_KINDS and _is_empty_folder(path):
        return
    if kind == "file":
        if path.is_dir():
            raise OutputRefused(path, "it is a folder; this output is a file", f"give {flag} a file name")
        if not overwrite:
            raise OutputRefused(path, "the file exists", "pass --overwrite to replace it, or choose a new path")
        return
    if found is not None:
        raise OutputRefused(path, f"it is {KINDS[found]}, not {KINDS[kind]}; tanglec replaces an artifact only "
                                  "with one of the same kind", f"choose a new path for {flag}")
    if kind in FOLDER_KINDS and not path.is_dir():
        raise OutputRefused(path, f"it is a file; {KINDS[kind]} is a folder", f"choose a new path for {flag}")
    if kind == "keras" and path.is_dir():
        raise OutputRefused(path, "it is a folder; a .keras export is a file",
                            f"choose a new file name for {flag}, or `--format savedmodel` for a folder")
    raise OutputRefused(path, f"it exists and is not {KINDS[kind]}; tanglec replaces only what it wrote itself",
                        f"choose a new path for {flag}, or move it away")


def _is_empty_folder(path: Path) -> bool:
    try:
        return path.is_dir() and next(path.iterdir(), None) is None
    except OSError:
        return False


def _refuse_uncreatable(path: Path, output: Path, flag: str) -> None:
    """The nearest existing folder above `path` must be a folder tanglec can create entries in."""
    probe = Path(os.path.abspath(path))
    while not os.path.lexists(probe):
        probe = probe.parent
    if not probe.is_dir():
        raise OutputRefused(output, f"{probe} is a file, so nothing can be created under it",
                            f"choose another path for {flag}")
    try:
        fd, name = tempfile.mkstemp(prefix=".tanglec-probe.", dir=probe)
    except OSError as err:
        raise OutputRefused(output, f"can't create anything in {probe}: {err.strerror or err}",
                            f"choose a writable path for {flag}") from None
    os.close(fd)
    os.unlink(name)


# ---- writing ------------------------------------------------------------------------------------

_TEMPORARY = re.compile(r"(\d+)\.[A-Za-z0-9_]+\.tmp(\.[a-z]+)?")  # PID.RANDOM.tmp[.ext] after ".NAME."


def _temporary_prefix(dest: Path) -> str:
    return f".{dest.name}.{os.getpid()}."


@contextlib.contextmanager
def atomic_file(path: Path, suffix: str = "") -> Iterator:
    """A binary file handle whose content replaces `path` in one step when the block ends without an
    error (nothing changes otherwise). A link is written through to its target; the mode is kept."""
    path = Path(path)
    if path.is_symlink():
        path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(path)
    fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(path), suffix=".tmp" + suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        except OSError:  # a new file: the usual mode for the umask
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def write_atomic(path: Path, content: str | bytes) -> None:
    """Replace (or create) a file in one step."""
    with atomic_file(path) as fh:
        fh.write(content.encode("utf-8") if isinstance(content, str) else content)


def temporary_dir(dest: Path) -> Path:
    """A new empty folder beside `dest`, to build it in before `swap_dir` (parents created)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(dest)
    return Path(tempfile.mkdtemp(prefix=_temporary_prefix(dest), suffix=".tmp", dir=dest.parent))


def temporary_file(dest: Path, suffix: str = "") -> Path:
    """A new empty file beside `dest` (for libraries that write to a path), renamed over it later."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(dest)
    fd, name = tempfile.mkstemp(prefix=_temporary_prefix(dest), suffix=".tmp" + suffix, dir=dest.parent)
    os.close(fd)
    return Path(name)


def swap_dir(tmp: Path, dest: Path) -> None:
    """Put the folder `tmp` in place of `dest`: at every instant `dest` is the old complete folder or the
    new one. `dest` must be absent or a folder (the policy checked it is one tanglec may replace)."""
    tmp, dest = Path(tmp), Path(dest)
    if os.path.lexists(dest) and (dest.is_symlink() or not dest.is_dir()):
        raise OutputRefused(dest, "it is not a folder; not replacing it", "choose a new path")
    if dest.is_dir() and _exchange(tmp, dest):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the previous folder
        fsync_dir(dest.parent)
        return
    if dest.exists():  # no renameat2: a short window where only `.NAME.old` holds it (restored on next write)
        old = _aside(dest)
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, dest)
    fsync_dir(dest.parent)


def _aside(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.old")


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def clean_leftovers(dest: Path) -> None:
    """Remove what killed writers of `dest` left beside it: temporaries of processes that are gone, and a
    previous folder moved aside (put back if `dest` itself is missing)."""
    dest = Path(dest)
    try:
        siblings = list(dest.parent.glob(f".{_glob_escape(dest.name)}.*.tmp*"))
    except OSError:
        return
    for tmp in siblings:
        mine = _TEMPORARY.fullmatch(tmp.name[len(dest.name) + 2:])
        if mine and not _alive(int(mine.group(1))):
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    tmp.unlink()
    old = _aside(dest)
    if old.is_dir() and not old.is_symlink() and artifact_kind(old) is not None:
        if not os.path.lexists(dest):
            os.replace(old, dest)
        else:
            shutil.rmtree(old, ignore_errors=True)


def _glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def fsync_dir(path: Path) -> None:
    """Make a rename inside `path` durable (best effort: some filesystems refuse directory fsync)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---- the crash log ------------------------------------------------------------------------------

def crash_log_dirs() -> list[Path]:
    """Where crash logs go, in order of preference: the user's state folder, then the temp folder."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return [Path(state) / "tanglec", Path(tempfile.gettempdir())]


def write_crash_log(text: str) -> Path:
    """A new log file of this process's crash: a fresh random name created exclusively (O_EXCL, no link
    followed), mode 0600. Raises OSError when no folder takes it."""
    problem: OSError | None = None
    for folder in crash_log_dirs():
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f"tanglec-crash-{os.getpid()}-", suffix=".log", dir=folder)
        except OSError as err:
            problem = err
            continue
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(text)
        return Path(name)
    raise problem or OSError("no folder for the crash log")


def data_file_problem(path: Path) -> str | None:
    """Why `path` can't be read as a data file, or None. Decided by os.stat: a FIFO is never opened."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "the data file does not exist"
    except OSError as err:
        return f"can't read the data file: {err.strerror or err}"
    except ValueError:  # a NUL character: no file can have that name
        return "the data file's path holds a NUL character"
    if stat.S_ISDIR(mode):
        return "the data file is a directory"
    if not stat.S_ISREG(mode):
        return "the data file is not a regular file"
    return None
