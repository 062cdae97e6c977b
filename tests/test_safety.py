"""Run directories and model files: every refusal says why, and refusing writes or damages nothing.

A run is spec + weights + a manifest with hashes and versions; loading verifies all of it. `.keras`
files are loaded only with safe_mode=True after a scan of their config (no Lambda, no foreign code);
checkpoints are numpy archives read with allow_pickle=False. Writing a run is atomic: a failed or
killed write leaves the previous run whole (the kill test kills a real writer process at random points).
"""
from __future__ import annotations

import ast as pyast
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from support import ARITH, ROOT, call_tanglec
from tanglec.pipeline import load
from tanglec.lang.diagnostics import TangleError
from tanglec.artifacts.run import FORMAT, MANIFEST, SPEC, WEIGHTS, manifest_digest, read_manifest, write_run


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` (hidden ones too) with its sha256: to prove nothing was written or changed."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def refused(fn, *fragments: str, code: str = "E140") -> TangleError:
    with pytest.raises(TangleError) as err:
        fn()
    d = err.value.diagnostics[0]
    assert d.code == code, d
    for fragment in fragments:
        assert fragment in d.message, d.message
    return err.value


# ---- no code execution paths in the compiler ----------------------------------------------------

def test_no_eval_exec_pickle_or_lambda_in_tanglec():
    """No eval/exec/compile of strings, no pickle-family imports, no Lambda layers, no unsafe loading."""
    banned_calls = {"eval", "exec", "__import__"}
    banned_modules = {"pickle", "cPickle", "dill", "marshal", "shelve", "cloudpickle", "joblib"}
    problems = []
    for path in sorted((ROOT / "tanglec").rglob("*.py")):
        tree = pyast.parse(path.read_text(), str(path))
        for node in pyast.walk(tree):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, pyast.Call) and isinstance(node.func, pyast.Name) and node.func.id in banned_calls:
                problems.append(f"{where}: {node.func.id}()")
            if isinstance(node, (pyast.Import, pyast.ImportFrom)):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, pyast.ImportFrom) else [])
                if any((n or "").split(".")[0] in banned_modules for n in names):
                    problems.append(f"{where}: imports {names}")
            if isinstance(node, pyast.Attribute) and node.attr == "Lambda":
                problems.append(f"{where}: Lambda")
            if isinstance(node, pyast.keyword) and isinstance(node.value, pyast.Constant) and \
                    (node.arg, node.value.value) in (("safe_mode", False), ("allow_pickle", True)):
                problems.append(f"{where}: {node.arg}={node.value.value}")
    assert not problems, problems


# ---- run directories ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    """A real run of the seed spec (untrained weights: loading, not accuracy, is under test)."""
    from tanglec.backend.codegen import build_model

    checked = load(ARITH)
    run = tmp_path_factory.mktemp("good") / "arith"
    write_run(run, checked, build_model(checked), {"accuracy": 0.0}, {"steps_run": 0})
    return run


@pytest.fixture
def run(good_run, tmp_path):
    copy = tmp_path / "arith"
    shutil.copytree(good_run, copy)
    return copy


def edit_manifest(run: Path, change) -> None:
    """Change the manifest as someone who also recomputes its digest would (tests/test_run_trust.py
    edits it without)."""
    manifest = json.loads((run / MANIFEST).read_text())
    change(manifest)
    manifest["digest"] = manifest_digest(manifest)
    (run / MANIFEST).write_text(json.dumps(manifest))


def rehash(run: Path, name: str) -> None:
    edit_manifest(run, lambda m: m["files"].__setitem__(name, hashlib.sha256((run / name).read_bytes()).hexdigest()))


def test_good_run_loads(good_run):
    from tanglec.artifacts.run import load_checked, load_model

    checked, manifest = load_checked(good_run)
    assert manifest["format"] == FORMAT
    model = load_model(good_run, checked)
    assert not [l for l in _all_layers(model) if type(l).__name__ == "Lambda"]  # no Lambda anywhere


def _all_layers(model):
    stack, out = [model], []
    while stack:
        layer = stack.pop()
        out.append(layer)
        stack.extend(getattr(layer, "layers", []) or [])
        stack.extend(getattr(layer, "branches", []) or [])
    return out


MANIFEST_TAMPERING = [
    ("hash", lambda m: m["files"].__setitem__(SPEC, "0" * 64), "spec.tangle does not match its hash"),
    ("format", lambda m: m.__setitem__("format", "someone-else/1"), f"not a {FORMAT} run"),
    ("newer-tanglec", lambda m: m.__setitem__("tanglec", "9.0.0"), "written by tanglec 9.0.0"),
    ("bad-version", lambda m: m.__setitem__("tanglec", "x"), "written by tanglec x"),
    ("keras-2", lambda m: m.__setitem__("keras", "2.15.0"), "written with Keras 2.15.0"),
    ("extra-file", lambda m: m["files"].__setitem__("../../etc/passwd", "0" * 64), "does not list the run's files"),
    ("dropped-file", lambda m: m["files"].pop(WEIGHTS), "does not list the run's files"),
    ("not-a-dict", lambda m: m.clear(), f"not a {FORMAT} run"),
]


@pytest.mark.parametrize("name,change,fragment", MANIFEST_TAMPERING, ids=[c[0] for c in MANIFEST_TAMPERING])
def test_tampered_manifest_is_refused_and_nothing_changes(run, name, change, fragment):
    edit_manifest(run, change)
    before = snapshot(run.parent)
    err = refused(lambda: read_manifest(run), fragment)
    assert str(run) in str(err.diagnostics[0].span)
    assert snapshot(run.parent) == before


def test_manifest_not_json_missing_or_a_link(run, tmp_path):
    (run / MANIFEST).write_text("{not json")
    refused(lambda: read_manifest(run), "manifest.json is not valid JSON")
    (run / MANIFEST).unlink()
    refused(lambda: read_manifest(run), "manifest.json is missing")
    refused(lambda: read_manifest(tmp_path / "nowhere"), "no run directory")


def test_edited_spec_and_linked_file_are_refused(run, tmp_path):
    spec = run / SPEC
    spec.write_text(spec.read_text().replace("steps 300", "steps 301"))
    refused(lambda: read_manifest(run), "spec.tangle does not match its hash", "changed or truncated")
    outside = tmp_path / "elsewhere.tangle"
    outside.write_text(spec.read_text())
    spec.unlink()
    spec.symlink_to(outside)
    rehash(run, SPEC)
    refused(lambda: read_manifest(run), "spec.tangle is a link")


def test_truncated_weights_are_refused(run):
    from tanglec.artifacts.run import load_checked, load_model

    weights = run / WEIGHTS
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    before = snapshot(run.parent)
    refused(lambda: load_checked(run), "model.weights.h5 does not match its hash", "truncated")
    rehash(run, WEIGHTS)  # even with a consistent manifest, a truncated HDF5 file can't load
    checked, _ = load_checked(run)
    refused(lambda: load_model(run, checked), "weights do not fit this spec's model")
    assert snapshot(run.parent) == {**before, f"arith/{MANIFEST}": snapshot(run.parent)[f"arith/{MANIFEST}"]}


def test_foreign_weights_are_refused(run, tmp_path):
    """Weights of another spec's model (same file name, consistent manifest): refused, not half-loaded."""
    from tanglec.backend.codegen import build_model
    from tanglec.artifacts.run import load_checked, load_model

    clock = load(ROOT / "specs" / "clock.tangle")
    build_model(clock).save_weights(tmp_path / "foreign.weights.h5")
    shutil.copy(tmp_path / "foreign.weights.h5", run / WEIGHTS)
    rehash(run, WEIGHTS)
    checked, _ = load_checked(run)
    refused(lambda: load_model(run, checked), "weights do not fit")


def test_cli_refuses_a_tampered_run_without_a_traceback(run):
    (run / SPEC).write_text((run / SPEC).read_text() + "\n# edited\n")
    before = snapshot(run.parent)
    for command in (["eval", str(run)], ["query", str(run), "x=1", "encoding=binary", "op=plus1"]):
        proc = call_tanglec(*command)
        assert proc.returncode == 1, proc.stderr
        assert "error[E140]: spec.tangle does not match its hash in manifest.json" in proc.stderr
        assert "Traceback" not in proc.stderr
    proc = call_tanglec("eval", str(run), "--json")
    assert json.loads(proc.stdout)["diagnostics"][0]["code"] == "E140"
    assert snapshot(run.parent) == before


# ---- .keras files -------------------------------------------------------------------------------

def _lambda_model_file(path: Path) -> Path:
    import keras

    inp = keras.Input((3,))
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Lambda(lambda t: t * 2)(inp)))
    model.save(path)
    return path


def test_keras_file_with_a_lambda_is_refused(tmp_path):
    from tanglec.artifacts.run import load_keras_file

    path = _lambda_model_file(tmp_path / "lambda.keras")
    before = snapshot(tmp_path)
    refused(lambda: load_keras_file(path), "refusing lambda.keras", "Lambda layer")
    assert snapshot(tmp_path) == before


def test_keras_safe_mode_refuses_a_lambda_even_without_the_scan(tmp_path, monkeypatch):
    """Defence in depth: with the config scan bypassed, Keras' safe_mode still refuses the Lambda."""
    import tanglec.artifacts.run as run_module

    path = _lambda_model_file(tmp_path / "lambda.keras")
    monkeypatch.setattr(run_module, "_unsafe_config", lambda config: None)
    refused(lambda: run_module.load_keras_file(path), "refusing lambda.keras", "Lambda")


def test_keras_file_naming_foreign_code_is_refused(tmp_path):
    """A config that names a class from another module (how a hostile file runs code) is refused
    before Keras imports anything."""
    import keras

    from tanglec.artifacts.run import load_keras_file

    inp = keras.Input((3,))
    path = tmp_path / "model.keras"
    keras.Model(inp, keras.layers.Dense(2)(inp)).save(path)
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    config = json.loads(members["config.json"])
    config["config"]["layers"][1]["module"] = "os"
    config["config"]["layers"][1]["class_name"] = "system"
    members["config.json"] = json.dumps(config).encode()
    hostile = tmp_path / "hostile.keras"
    with zipfile.ZipFile(hostile, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    refused(lambda: load_keras_file(hostile), "names code from module 'os'")
    assert load_keras_file(path) is not None  # the untouched file loads
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    refused(lambda: load_keras_file(tmp_path / "junk.keras"), "not a .keras model file")


# ---- atomic writes ------------------------------------------------------------------------------

class _FakeModel:
    """Writes `size` bytes as 'weights' (write_run only calls save_weights)."""

    def __init__(self, fill: bytes = b"w", size: int = 1000, fail: bool = False):
        self.fill, self.size, self.fail = fill, size, fail

    def save_weights(self, path):
        with open(path, "wb") as fh:
            fh.write(self.fill * (self.size // 2))
            if self.fail:
                raise OSError(28, "No space left on device")
            fh.write(self.fill * (self.size - self.size // 2))


def test_failed_write_leaves_previous_run_whole(tmp_path):
    checked = load(ARITH)
    run = tmp_path / "arith"
    write_run(run, checked, _FakeModel(b"a"), {"r": 1}, {"m": 1})
    before = snapshot(tmp_path)
    with pytest.raises(TangleError, match="E142: no space left on device writing"):
        write_run(run, checked, _FakeModel(b"b", fail=True), {"r": 2}, {"m": 2})
    assert snapshot(tmp_path) == before  # no temporary directory left, the run untouched
    read_manifest(run)
    write_run(run, checked, _FakeModel(b"c"), {"r": 3}, {"m": 3})
    assert (run / WEIGHTS).read_bytes() == b"c" * 1000 and sorted(os.listdir(tmp_path)) == ["arith"]


def test_leftovers_of_a_killed_write_are_cleaned_and_a_moved_run_restored(tmp_path):
    from tanglec.util.files import clean_leftovers

    checked = load(ARITH)
    run = tmp_path / "arith"
    write_run(run, checked, _FakeModel(b"a"), {}, {})
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".arith.{dead.stdout.strip()}.abc123.tmp"
    stale.mkdir()
    live = tmp_path / f".arith.{os.getpid()}.def456.tmp"  # a writer that is still running: left alone
    live.mkdir()
    os.replace(run, tmp_path / ".arith.old")  # killed between the two renames of the fallback swap
    clean_leftovers(run)
    assert sorted(os.listdir(tmp_path)) == [f".arith.{os.getpid()}.def456.tmp", "arith"]
    read_manifest(run)


WRITER = """
import sys, types
sys.modules["keras"] = types.SimpleNamespace(__version__="3.0.0")      # write_run only reads versions
sys.modules["tensorflow"] = types.SimpleNamespace(__version__="2.0.0")
from tanglec.pipeline import load
from tanglec.artifacts.run import write_run

class Model:
    def __init__(self, i): self.i = i
    def save_weights(self, path):
        with open(path, "wb") as fh:
            for _ in range(64):
                fh.write(bytes([self.i % 256]) * 4096)

checked = load(sys.argv[1])
i = 0
while True:
    write_run(sys.argv[2], checked, Model(i), {"i": i}, {"i": i})
    if i == 0:
        print("ready", flush=True)
    i += 1
"""


def test_run_killed_at_random_points_while_writing_is_always_whole(tmp_path):
    """SIGKILL a process that rewrites a run in a loop, at random moments: after every kill the run
    directory is complete and verifies (the old run or the new one), never half-written."""
    run = tmp_path / "arith"
    rng = random.Random(11)
    for trial in range(12):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(ARITH), str(run)], stdout=subprocess.PIPE,
                                text=True, cwd=ROOT)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0, 0.08))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        manifest = read_manifest(run)  # whole, hashes verified
        i = json.loads((run / "metrics.json").read_text())["i"]
        assert (run / WEIGHTS).read_bytes() == bytes([i % 256]) * 4096 * 64
        assert set(manifest["files"]) == {SPEC, WEIGHTS, "routes.json", "metrics.json"}
        leftovers = [p for p in os.listdir(tmp_path) if p != "arith"]
        assert all(p.startswith(".arith.") and p.endswith((".tmp", ".old")) for p in leftovers), leftovers
    write_run(run, load(ARITH), _FakeModel(), {}, {})  # the next write cleans what the kills left
    assert os.listdir(tmp_path) == ["arith"]


def test_weights_that_fit_only_in_part_are_refused(run, tmp_path):
    """A weights file with one module fewer: Keras would load the rest and warn; tanglec refuses."""
    import h5py

    from tanglec.artifacts.run import load_checked, load_model

    weights = run / WEIGHTS
    with h5py.File(weights, "a") as h5:
        groups = sorted(k for k in h5["layers"].keys())
        del h5["layers"][groups[-1]]
    rehash(run, WEIGHTS)
    checked, _ = load_checked(run)
    refused(lambda: load_model(run, checked), "weights do not fit")
