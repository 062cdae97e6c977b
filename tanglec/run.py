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
import tempfile
from pathlib import Path

from . import __version__
from .ast import Span
from .checks import Checked, check_or_raise
from .diagnostics import Diagnostic, TangleError
from .parser import parse

FORMAT = "tanglec-run/1"
SPEC = "spec.tangle"
WEIGHTS = "model.weights.h5"
REPORT = "routes.json"
METRICS = "metrics.json"
MANIFEST = "manifest.json"
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
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}.", suffix=".tmp", dir=run_dir.parent))
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
        _swap_in(tmp, run_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_in(tmp: Path, run_dir: Path) -> None:
    if run_dir.exists():
        old = run_dir.with_name(f".{run_dir.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(run_dir, old)
        os.replace(tmp, run_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, run_dir)


def read_manifest(run_dir: Path) -> dict:
    """The verified manifest of a run: right format, every file present with the recorded hash."""
    run_dir = Path(run_dir)
    mpath = run_dir / MANIFEST
    if not run_dir.is_dir():
        raise run_error(run_dir, f"no run directory at {run_dir}",
                        hints=["create one with `tanglec compile SPEC -o DIR`"])
    if not mpath.is_file():
        raise run_error(run_dir, "not a tanglec run: manifest.json is missing")
    try:
        manifest = json.loads(mpath.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise run_error(run_dir, f"manifest.json is not valid JSON: {err}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise run_error(run_dir, f"not a {FORMAT} run (format {manifest.get('format') if isinstance(manifest, dict) else '?'!r})")
    files = manifest.get("files")
    if not isinstance(files, dict) or not REQUIRED <= set(files) or not set(files) <= REQUIRED | {USES}:
        raise run_error(run_dir, "manifest.json does not list the run's files")
    for name, digest in files.items():
        path = run_dir / name
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

    model = build_model(checked)
    try:
        model.load_weights(Path(run_dir) / WEIGHTS)
    except Exception as err:  # h5py/keras raise several types for a damaged or foreign file
        raise run_error(Path(run_dir), f"weights do not fit this spec's model: {err}") from None
    return model


def load_json(run_dir: Path, name: str) -> dict:
    return json.loads((Path(run_dir) / name).read_text())
