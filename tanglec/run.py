"""Run directories: the spec as compiled, the weights, metrics and the per-route table, plus a manifest.

A run is written into a temporary sibling directory and renamed into place, so a run directory is
complete or absent and a failed compile never damages the previous good run. The manifest records
sha256 hashes and versions; loading verifies them and refuses tampered or foreign files. Nothing is
unpickled: weights are HDF5 tensors, everything else JSON or text.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from . import __version__
from .ast import Span
from .checks import Checked, check_or_raise
from .diagnostics import Diagnostic, TangleError
from .parser import parse
from .util.files import RUN_FORMAT, RUN_MANIFEST, swap_dir, temporary_dir

FORMAT = RUN_FORMAT
SPEC = "spec.tangle"
WEIGHTS = "model.weights.h5"
REPORT = "routes.json"
METRICS = "metrics.json"
MANIFEST = RUN_MANIFEST
USES = "uses.json"  # texts of the specs the compiled spec `use`s, so a run never depends on files outside it
REQUIRED = {SPEC, WEIGHTS, REPORT, METRICS}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run_error(run_dir: Path, message: str, hints=()) -> TangleError:
    return TangleError([Diagnostic("E140", message, Span(str(run_dir), 1, 1, 1, 2), hints=list(hints))])


def write_run(run_dir: Path, checked: Checked, model, report: dict, metrics: dict) -> None:
    """Write every file into a temporary directory, then swap it in atomically."""
    run_dir = Path(run_dir)
    tmp = temporary_dir(run_dir)
    try:
        (tmp / SPEC).write_text(checked.spec.source, encoding="utf-8")
        stored = [SPEC, WEIGHTS, REPORT, METRICS]
        if checked.spec.used_files:
            (tmp / USES).write_text(json.dumps(checked.spec.used_files, indent=2))
            stored.append(USES)
        model.save_weights(tmp / WEIGHTS)
        (tmp / REPORT).write_text(json.dumps(report, indent=2))
        (tmp / METRICS).write_text(json.dumps(metrics, indent=2))
        import keras
        import tensorflow as tf

        manifest = {
            "format": FORMAT,
            "tanglec": __version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "spec_path": str(Path(checked.spec.path).resolve()),
            "files": {name: _sha256(tmp / name) for name in stored},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        for f in tmp.iterdir():
            with f.open("rb") as fh:
                os.fsync(fh.fileno())
        swap_dir(tmp, run_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _major(version: object) -> tuple[int, ...] | None:
    """The compatibility-relevant part of a version: (major,), or (0, minor) before 1.0."""
    parts = str(version).split(".")
    if len(parts) < 2 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    return (int(parts[0]),) if int(parts[0]) else (0, int(parts[1]))


MAX_MANIFEST_BYTES = 1_000_000


def read_manifest(run_dir: Path) -> dict:
    """The verified manifest of a run: right format, every file present with the recorded hash."""
    run_dir = Path(run_dir)
    mpath = run_dir / MANIFEST
    if not run_dir.is_dir():
        raise run_error(run_dir, f"no run directory at {run_dir}",
                        hints=["create one with `tanglec compile SPEC -o DIR`"])
    if not mpath.is_file():
        raise run_error(run_dir, "not a tanglec run: manifest.json is missing")
    if mpath.is_symlink() or mpath.stat().st_size > MAX_MANIFEST_BYTES:
        raise run_error(run_dir, "manifest.json is not one tanglec wrote (a link, or too large)")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise run_error(run_dir, f"manifest.json is not valid JSON: {err}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise run_error(run_dir, f"not a {FORMAT} run (format {manifest.get('format') if isinstance(manifest, dict) else '?'!r})")
    ours = _major(__version__)
    theirs = _major(manifest.get("tanglec"))
    if theirs is None or theirs > ours:
        raise run_error(run_dir, f"written by tanglec {str(manifest.get('tanglec'))[:40]}, which this tanglec "
                                 f"{__version__} can't read", hints=["upgrade tanglec, or recompile the run"])
    keras_version = manifest.get("keras")
    if _major(keras_version) is None or _major(keras_version)[0] != 3:
        raise run_error(run_dir, f"written with Keras {str(keras_version)[:40]}; tanglec loads Keras 3 weights only",
                        hints=["recompile the run"])
    files = manifest.get("files")
    if not isinstance(files, dict) or not REQUIRED <= set(files) or not set(files) <= REQUIRED | {USES} or \
            not all(isinstance(d, str) and len(d) == 64 for d in files.values()):
        raise run_error(run_dir, "manifest.json does not list the run's files")
    for name, digest in files.items():
        path = run_dir / name
        if path.is_symlink():
            raise run_error(run_dir, f"{name} is a link; tanglec writes no links and refuses to follow them")
        if not path.is_file():
            raise run_error(run_dir, f"{name} is missing")
        if _sha256(path) != digest:
            raise run_error(run_dir, f"{name} does not match its hash in manifest.json (changed or truncated)",
                            hints=["recompile the run; tanglec refuses files it did not write"])
    return manifest


def load_checked(run_dir: Path) -> tuple[Checked, dict]:
    """The run's spec, checked (no TensorFlow). Data paths resolve as they did at compile time."""
    manifest = read_manifest(run_dir)
    source = (Path(run_dir) / SPEC).read_text(encoding="utf-8")
    spec_path = manifest.get("spec_path") or str(Path(run_dir) / SPEC)
    uses = json.loads((Path(run_dir) / USES).read_text()) if USES in manifest["files"] else {}

    def read_stored(path: Path) -> str:
        if str(path) not in uses:
            raise OSError(f"{path} was not stored with the run")
        return uses[str(path)]

    # init=False: a trained run has its weights already; it never needs its init run again
    return check_or_raise(parse(source, spec_path, read=read_stored), init=False), manifest


def load_model(run_dir: Path, checked: Checked):
    """Rebuild the model from the spec and load the weights (no pickles, no Lambda)."""
    from .codegen import build_model

    import warnings

    model = build_model(checked)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.load_weights(Path(run_dir) / WEIGHTS)
    except Exception as err:  # h5py/keras raise several types for a damaged or foreign file
        raise run_error(Path(run_dir), f"weights do not fit this spec's model: {err}") from None
    skipped = [w for w in caught if issubclass(w.category, UserWarning) and "saving" in str(w.filename)]
    if skipped:  # Keras loads what matches and warns about the rest: a partial load is refused, not used
        raise run_error(Path(run_dir), f"weights do not fit this spec's model: {str(skipped[0].message)[:200]}")
    return model


def load_json(run_dir: Path, name: str) -> dict:
    return json.loads((Path(run_dir) / name).read_text())


def load_keras_file(path: Path):
    """Load a `.keras` model file safely: refused (E140) if it holds a Lambda layer or names code outside
    Keras and tanglec, checked in its config before Keras reads it, then loaded with `safe_mode=True`
    (which refuses Lambda bytecode too). Nothing is unpickled."""
    import zipfile

    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            config = json.loads(zf.read("config.json").decode("utf-8"))
    except (OSError, KeyError, ValueError, RecursionError, zipfile.BadZipFile, UnicodeDecodeError) as err:
        raise run_error(path, f"not a .keras model file: {err}") from None
    problem = _unsafe_config(config)
    if problem:
        raise run_error(path, f"refusing {path.name}: {problem}",
                        hints=["tanglec models have no Lambda layers; rebuild the file with `tanglec export`"])
    import keras

    from . import codegen, mux  # noqa: F401 - registers tanglec's serializable layers

    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as err:  # keras raises ValueError/TypeError/... for a damaged or unsafe file
        raise run_error(path, f"refusing {path.name}: {type(err).__name__}: {str(err)[:300]}") from None


_SAFE_MODULES = ("keras", "tanglec", "builtins")


def _unsafe_config(config) -> str | None:
    """A reason to refuse a saved model's config: a Lambda layer, a function, or a class from a
    module other than Keras or tanglec (what a malicious file would use to run code)."""
    stack = [config]
    while stack:  # no recursion: a hostile config may nest deeply
        node = stack.pop()
        if isinstance(node, dict):
            cls = node.get("class_name")
            if cls in ("Lambda", "function", "__lambda__") or cls == "TFOpLambda":
                return f"it holds a {cls} layer (arbitrary code)"
            module = node.get("module")
            if isinstance(module, str) and module and not module.split(".")[0] in _SAFE_MODULES:
                return f"it names code from module '{module[:60]}'"
            registered = node.get("registered_name")
            if isinstance(registered, str) and ">" in registered and \
                    registered.split(">")[0] not in ("tanglec", "keras"):
                return f"it names a custom object '{registered[:60]}'"
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return None
