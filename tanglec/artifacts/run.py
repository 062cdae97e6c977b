"""Run directories: the spec as compiled, the weights, metrics and the per-route table, plus a manifest.

A run is written into a temporary sibling directory and renamed into place, so a run directory is
complete or absent and a failed compile never damages the previous good run. The manifest records
sha256 hashes and versions and a digest of itself; loading verifies them, and every file's size cap,
and refuses tampered or foreign files. A run is self-contained: a `data file` spec keeps its evaluation
rows inside it and `use`d specs are stored, so loading opens no path the spec names. The hashes guard
against damage and naive edits, not against someone who recomputes them; that is why nothing a run
says can make tanglec read outside it. Nothing is unpickled: weights are HDF5 tensors, everything
else JSON or text.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

from ..util.version import __version__
from ..lang import ast
from ..util import strict_json
from ..lang.ast import Span
from ..spec.check_limits import MAX_PARAMETERS
from ..spec.checks import Checked, check_or_raise
from ..lang.diagnostics import Diagnostic, TangleError, write_error
from ..lang.parser import MAX_SOURCE_BYTES, parse
from ..util.files import RUN_FORMAT, RUN_MANIFEST, swap_dir, temporary_dir

FORMAT = RUN_FORMAT
SPEC = "spec.tangle"
WEIGHTS = "model.weights.h5"
REPORT = "routes.json"
METRICS = "metrics.json"
MANIFEST = RUN_MANIFEST
USES = "uses.json"  # texts of the specs the compiled spec `use`s, so a run never depends on files outside it
ROWS = "eval_rows.jsonl"  # a `data file` spec's evaluation rows: eval and export never read the original file
REQUIRED = {SPEC, WEIGHTS, REPORT, METRICS}
OPTIONAL = {USES, ROWS}

MAX_BYTES = {  # the most tanglec reads of each file of a run, checked before it is read (or hashed)
    MANIFEST: 1_000_000,
    SPEC: MAX_SOURCE_BYTES,
    USES: 64_000_000,
    REPORT: 64_000_000,
    METRICS: 64_000_000,
    ROWS: 1_000_000_000,
    WEIGHTS: 16 * MAX_PARAMETERS,  # float32 weights of the largest model `check` allows, four times over
}


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run_error(run_dir: Path, message: str, hints=()) -> TangleError:
    return TangleError([Diagnostic("E140", message, Span(str(run_dir), 1, 1, 1, 2), hints=list(hints))])


def ensure_room(path: Path, files_bytes: int, largest_file: int) -> None:
    """E142 before writing when the folder's free space or the file size limit (RLIMIT_FSIZE) can't
    hold the files: HDF5 meets a full disk halfway through the weights with errors it can't recover
    from (and has crashed the process), so it should not meet one at all."""
    import resource

    folder = path.parent
    free = shutil.disk_usage(folder).free
    if free < files_bytes:
        raise TangleError([Diagnostic(
            "E142", f"no space left on device writing {path}: it needs about {files_bytes / 1e6:.1f} MB, "
                    f"{free / 1e6:.1f} MB are free in {folder}; nothing was written", Span(str(path), 1, 1, 1, 2),
            hints=["free some space and compile again; a previous run there is intact"])])
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY and limit < largest_file:
        raise TangleError([Diagnostic(
            "E142", f"file too large writing {path}: its weights need about {largest_file / 1e6:.1f} MB, over "
                    f"this process's file size limit of {limit / 1e6:.1f} MB; nothing was written",
            Span(str(path), 1, 1, 1, 2), hints=["raise the limit (`ulimit -f`) and compile again"])])


def weights_bytes(model) -> int:
    """An upper estimate of the weights file: every model and optimizer variable, plus HDF5's
    per-dataset overhead (write_run needs no more of a model than `save_weights`)."""
    import numpy as np

    optimizer = getattr(model, "optimizer", None)  # a model that was never compiled has none
    variables = list(getattr(model, "variables", ())) + list(getattr(optimizer, "variables", None) or [])
    return sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize + 2048 for v in variables) + 65536


def write_run(run_dir: Path, checked: Checked, model, report: dict, metrics: dict, examples=None) -> None:
    """Write every file into a temporary directory, then swap it in atomically. `examples`: the data a
    `data file` spec trained on (its evaluation rows are kept in the run). A write that fails (disk
    full, file too large) is E142 and leaves the previous run as it was."""
    run_dir = Path(run_dir)
    texts = {SPEC: checked.spec.source, REPORT: strict_json.dumps(report, indent=2),
             METRICS: strict_json.dumps(metrics, indent=2)}
    if checked.spec.used_files:
        texts[USES] = json.dumps(checked.spec.used_files, indent=2)
    if checked.data.source == "file":
        from ..data.examples import rows_jsonl

        texts[ROWS] = rows_jsonl(checked, examples.take(examples.eval_index))
    weights = weights_bytes(model)
    try:
        tmp = temporary_dir(run_dir)
    except OSError as err:
        raise write_error(run_dir, err) from None
    try:
        ensure_room(run_dir, weights + sum(len(t.encode()) for t in texts.values()) + 4096 * (len(texts) + 2), weights)
        _write_run_files(tmp, run_dir, checked, model, texts)
    except OSError as err:
        raise write_error(run_dir, err) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already once swapped in (it then held the previous run)


def _write_run_files(tmp: Path, run_dir: Path, checked: Checked, model, texts: dict[str, str]) -> None:
    for name, text in texts.items():
        (tmp / name).write_text(text, encoding="utf-8")
    model.save_weights(tmp / WEIGHTS)
    import keras
    import tensorflow as tf

    manifest = {
        "format": FORMAT,
        "tanglec": __version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "spec_path": str(Path(checked.spec.path).resolve()),
        "files": {name: file_sha256(tmp / name) for name in [*texts, WEIGHTS]},
    }
    if checked.data.source == "file":
        manifest["data_file"] = _data_file(checked.spec)
    manifest["digest"] = manifest_digest(manifest)
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
    for f in tmp.iterdir():
        with f.open("rb") as fh:
            os.fsync(fh.fileno())
    swap_dir(tmp, run_dir)


def _major(version: object) -> tuple[int, ...] | None:
    """The compatibility-relevant part of a version: (major,), or (0, minor) before 1.0."""
    parts = str(version).split(".")
    if len(parts) < 2 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    return (int(parts[0]),) if int(parts[0]) else (0, int(parts[1]))


def manifest_digest(manifest: dict) -> str:
    """sha256 of the manifest's canonical JSON without its own digest: editing any field of it (a
    version, a hash, the spec's path) is seen."""
    body = {k: v for k, v in manifest.items() if k != "digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def _data_file(spec) -> str | None:
    """What the spec's `data file` statement names (the run holds its rows under ROWS instead)."""
    files = [d.arg for d in spec.of(ast.DataDecl) if d.source == "file"]
    return str(files[0]) if files else None


def read_manifest(run_dir: Path) -> dict:
    """The verified manifest of a run: right format, its own digest, every file present, within its
    size cap and with the recorded hash."""
    run_dir = Path(run_dir)
    mpath = run_dir / MANIFEST
    if not run_dir.is_dir():
        raise run_error(run_dir, f"no run directory at {run_dir}",
                        hints=["create one with `tanglec compile SPEC -o DIR`"])
    if not mpath.is_file():
        raise run_error(run_dir, "not a tanglec run: manifest.json is missing")
    if mpath.is_symlink() or mpath.stat().st_size > MAX_BYTES[MANIFEST]:
        raise run_error(run_dir, "manifest.json is not one tanglec wrote (a link, or too large)")
    try:
        manifest = json.loads(read_run_text(run_dir, MANIFEST))
    except (ValueError, RecursionError) as err:
        raise run_error(run_dir, f"manifest.json is not valid JSON: {err}") from None
    fmt = manifest.get("format") if isinstance(manifest, dict) else None
    if fmt == "tanglec-run/1":
        raise run_error(run_dir, "this run was written by an older tanglec (tanglec-run/1), which kept no copy "
                                 "of its evaluation data and did not protect its manifest",
                        hints=["recompile the run: `tanglec compile SPEC -o DIR`"])
    if fmt != FORMAT:
        raise run_error(run_dir, f"not a {FORMAT} run (format {str(fmt)[:40]!r})")
    if manifest.get("digest") != manifest_digest(manifest):
        raise run_error(run_dir, "manifest.json does not match its digest (edited by hand or damaged)",
                        hints=["recompile the run; tanglec refuses files it did not write"])
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
    if not isinstance(files, dict) or not REQUIRED <= set(files) or not set(files) <= REQUIRED | OPTIONAL or \
            not all(isinstance(d, str) and len(d) == 64 for d in files.values()) or \
            not isinstance(manifest.get("spec_path"), str) or \
            (ROWS in files) != isinstance(manifest.get("data_file"), str):
        raise run_error(run_dir, "manifest.json does not list the run's files")
    for name, digest in files.items():
        path = run_dir / name
        if path.is_symlink():
            raise run_error(run_dir, f"{name} is a link; tanglec writes no links and refuses to follow them")
        if not path.is_file():
            raise run_error(run_dir, f"{name} is missing")
        if path.stat().st_size > MAX_BYTES[name]:
            raise run_error(run_dir, f"{name} is larger than tanglec writes it (over {MAX_BYTES[name]:,} bytes)")
        try:
            intact = file_sha256(path) == digest
        except OSError as err:
            raise run_error(run_dir, f"can't read {name}: {err.strerror or err}") from None
        if not intact:
            raise run_error(run_dir, f"{name} does not match its hash in manifest.json (changed or truncated)",
                            hints=["recompile the run; tanglec refuses files it did not write"])
    return manifest


def load_checked(run_dir: Path) -> tuple[Checked, dict]:
    """The run's spec, checked (no TensorFlow), from the run's files alone: a `use`d spec is read from
    its stored copy and a `data file` from the stored evaluation rows; no path the spec names is ever
    opened, so a crafted run can't make tanglec read outside it."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    source = read_run_text(run_dir, SPEC)
    uses = load_json(run_dir, USES) if USES in manifest["files"] else {}
    if not all(isinstance(text, str) for text in uses.values()):
        raise run_error(run_dir, f"{USES} does not hold spec texts")

    def read_stored(path: Path) -> str:
        if str(path) not in uses:
            raise run_error(run_dir, f"spec.tangle uses {str(path)[:200]}, which is not stored in the run",
                            hints=["recompile the run; a run reads no file outside it"])
        return uses[str(path)]

    spec = parse(source, manifest["spec_path"], read=read_stored)
    named, kept = _data_file(spec), manifest.get("data_file")
    if named != kept:
        shown = "no data file" if named is None else f'data file "{named[:200]}"'
        raise run_error(run_dir, f"spec.tangle names {shown}, but the run holds "
                                 f"{'the rows of ' + kept[:200] if kept else 'no data rows'}",
                        hints=["recompile the run; a run reads no file outside it"])
    stored_rows = run_dir / ROWS if named is not None else None
    # a trained run has its weights already; it never needs its init run again
    return check_or_raise(spec, stored_rows=stored_rows, ignore_init=True), manifest


def read_run_text(run_dir: Path, name: str) -> str:
    """A file of the run as text, refused (E140) when it is a link or not a regular file (opened without
    following links or blocking on a FIFO), over its size cap, or not UTF-8."""
    path = Path(run_dir) / name
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise run_error(Path(run_dir), f"can't read {name}: {err.strerror or err}") from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise run_error(Path(run_dir), f"{name} is not a regular file")
        data = fh.read(MAX_BYTES[name] + 1)
    if len(data) > MAX_BYTES[name]:
        raise run_error(Path(run_dir), f"{name} is larger than tanglec writes it (over {MAX_BYTES[name]:,} bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise run_error(Path(run_dir), f"{name} is not UTF-8 text") from None


def load_model(run_dir: Path, checked: Checked):
    """Rebuild the model from the spec and load the weights (no pickles, no Lambda)."""
    import warnings

    import numpy as np

    from ..backend.codegen import build_model

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
    broken = next((v.path for v in model.variables if not np.isfinite(v.numpy()).all()), None)
    if broken is not None:  # its answers would be NaN: refused for query, eval and export alike
        raise run_error(Path(run_dir), f"the run's weights are not finite ({broken} holds NaN or infinity): "
                                       "its training diverged",
                        hints=["recompile it: tanglec now stops a diverging training with E171 and writes no run"])
    return model


def load_json(run_dir: Path, name: str) -> dict:
    """A JSON object file of the run; E140 when it is too large, not JSON or not an object."""
    try:
        value = json.loads(read_run_text(run_dir, name))
    except (ValueError, RecursionError) as err:
        raise run_error(Path(run_dir), f"{name} is not valid JSON: {str(err)[:200]}",
                        hints=["recompile the run"]) from None
    if not isinstance(value, dict):
        raise run_error(Path(run_dir), f"{name} does not hold a JSON object", hints=["recompile the run"])
    return value


def evaluation_examples(run_dir: Path, checked: Checked):
    """The examples `eval` and `export` use: for a `data file` spec the rows stored in the run (read
    and validated like a data file; training-row counts per route from routes.json), else rebuilt
    from the spec (enumerated or sampled with its seed)."""
    from ..data.examples import build_examples, file_examples

    if checked.data.source != "file":
        return build_examples(checked)
    examples = file_examples(checked)
    # what annotate_routes counts training rows by: the compile's counts over the whole file
    examples.route_rows = [r["training_rows"] for r in load_report(run_dir, checked)["routes"]]
    return examples


def loaded_modules(run_dir: Path) -> list[str]:
    """The modules the run's training loaded from an init run (metrics.json), E140 when malformed."""
    modules = load_json(run_dir, METRICS).get("modules", {})
    loaded = modules.get("loaded", []) if isinstance(modules, dict) else None
    if not isinstance(loaded, list) or not all(isinstance(m, str) for m in loaded):
        raise run_error(Path(run_dir), f"{METRICS} does not list the modules the run loaded",
                        hints=["recompile the run"])
    return loaded


def load_report(run_dir: Path, checked: Checked) -> dict:
    """routes.json, the compile's route table: E140 unless it has one entry per route of the spec,
    each with its count of training rows."""
    report = load_json(run_dir, REPORT)
    routes = report.get("routes")
    count = len(checked.graph.routes())
    if not isinstance(routes, list) or len(routes) != count or \
            not all(isinstance(r, dict) and type(r.get("training_rows")) is int and r["training_rows"] >= 0
                    for r in routes):
        raise run_error(Path(run_dir), f"{REPORT} does not describe this spec's {count} routes",
                        hints=["recompile the run"])
    return report


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

    from ..backend import codegen, mux  # noqa: F401 - registers tanglec's serializable layers

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
