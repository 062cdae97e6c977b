"""Training's limits, through the real CLI: exactly the steps asked for, a diverging training stopped
(E171) with nothing written, JSON that strict parsers accept, `--devices` bounded before TensorFlow
makes a device, and a full disk or a file size limit met with E142 and the previous run intact."""
from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support import ARITH, ROOT, call_tanglec, run_tanglec

pytestmark = pytest.mark.slow

SEED = ARITH.read_text().replace(" until exact", "")
DIVERGING = SEED.replace("adam 0.01", "sgd 10.0")  # NaN within the first 10 steps (checked below)


def strict_loads(text: str):
    """json.loads that refuses NaN/Infinity, as JSON.parse, jq or Go would."""
    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def compile_json(spec: Path, out: Path, *args: str, **kwargs):
    proc = call_tanglec("compile", str(spec), "-o", str(out), "--json", *args, **kwargs)
    assert "Traceback" not in proc.stderr and proc.returncode in (0, 1), proc.stderr[-2000:]
    return proc, strict_loads(proc.stdout)


@pytest.fixture
def good_run(tmp_path):
    """A trained run (2 steps) and its spec."""
    spec = tmp_path / "arith.tangle"
    spec.write_text(SEED)
    out = tmp_path / "runs" / "arith"
    proc, payload = compile_json(spec, out, "--steps", "2")
    assert proc.returncode == 0 and payload["steps_run"] == 2
    return spec, out


# ---- finding 22: steps N trains N steps ------------------------------------------------------------

@pytest.mark.parametrize("train_line, steps_option, evaluated", [
    ("train steps 300 batch 64 adam 0.01 seed 0", "1", [1]),  # eval_every 10: was 10 steps
    ("train steps 20 eval_every 400 batch 64 adam 0.01 seed 0", None, [20]),  # was 400
    ("train steps 25 eval_every 10 batch 64 adam 0.01 seed 0", None, [10, 20, 25]),  # was 30
    ("train steps 300 eval_every 10 batch 64 adam 0.01 seed 0\n"
     "phase first steps 15 modules plus1\nphase second steps 7 lr 0.001", None, [10, 15, 22]),  # was 30
], ids=["--steps-1", "eval_every-over-steps", "non-multiple", "phases"])
def test_training_runs_exactly_the_steps_asked(tmp_path, train_line, steps_option, evaluated):
    spec = tmp_path / "s.tangle"
    spec.write_text(SEED.replace("train steps 300 batch 64 adam 0.01 seed 0", train_line))
    out = tmp_path / "run"
    proc, payload = compile_json(spec, out, *(["--steps", steps_option] if steps_option else []))
    assert proc.returncode == 0, proc.stderr
    assert payload["steps_run"] == evaluated[-1]
    metrics = strict_loads((out / "metrics.json").read_text())
    assert [h["step"] for h in metrics["history"]] == evaluated  # an evaluation after each chunk, the last shorter
    assert metrics["steps_run"] == evaluated[-1]


def _optimizer_steps(text: str, path: Path, stream: bool = False, **train_args) -> tuple[int, list[int]]:
    """(optimizer iterations, evaluated steps) after training `text` in this process."""
    from tanglec.spec.checks import check_or_raise
    from tanglec.data.examples import build_examples
    from tanglec.lang.parser import parse
    from tanglec.backend.train import train

    checked = check_or_raise(parse(text, str(path)))
    if stream:
        checked.data.stream = "always"
    result = train(checked, build_examples(checked), **train_args)
    return int(result.model.optimizer.iterations.numpy()), [h["step"] for h in result.history]


def test_the_optimizer_takes_exactly_the_steps_in_both_loops():
    """The count is the optimizer's own, on the chunked loop and on Keras's loop (a streamed file)."""
    text = SEED.replace("train steps 300", "train steps 25 eval_every 10")
    assert _optimizer_steps(text, ARITH) == (25, [10, 20, 25])
    gates = ROOT / "specs" / "gates.tangle"
    text = gates.read_text().replace(" until exact", "").replace("train steps 1000", "train steps 25 eval_every 10")
    assert _optimizer_steps(text, gates, stream=True) == (25, [10, 20, 25])
    assert _optimizer_steps(text.replace("eval_every 10", "eval_every 400"), gates, stream=True) == (25, [25])


def test_resume_inside_a_short_last_chunk_is_bit_identical(tmp_path):
    """Stopped at step 20 of 25 (checkpoint), resumed: the same weights as 25 steps in one go."""
    import numpy as np

    from tanglec.spec.checks import check_or_raise
    from tanglec.backend.checkpoint import Checkpointer
    from tanglec.data.examples import build_examples
    from tanglec.lang.parser import parse
    from tanglec.backend.train import train

    checked = check_or_raise(parse(SEED.replace("train steps 300", "train steps 25 eval_every 10"), str(ARITH)))
    examples = build_examples(checked)
    reference = train(checked, examples).model.get_weights()
    with Checkpointer(tmp_path / "ckpt", every=10, handle_signals=False) as ckpt:
        first = train(checked, examples, checkpoint=ckpt, should_stop=lambda: True)
    assert first.interrupted and first.steps_run == 10
    with Checkpointer(tmp_path / "ckpt", every=10, resume=True, handle_signals=False) as ckpt:
        resumed = train(checked, examples, checkpoint=ckpt)
    assert ckpt.resumed_step == 10 and resumed.steps_run == 25
    assert int(resumed.model.optimizer.iterations.numpy()) == 25
    for a, b in zip(resumed.model.get_weights(), reference):
        np.testing.assert_array_equal(a, b)


# ---- finding 24: divergence, strict JSON ------------------------------------------------------------

def test_diverging_training_stops_and_writes_nothing(good_run):
    spec, out = good_run
    before = snapshot(out.parent)
    spec.write_text(DIVERGING)
    for extra in ([], ["--json"]):
        proc = call_tanglec("compile", str(spec), "-o", str(out), "--steps", "40", *extra)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        if extra:
            (diag,) = strict_loads(proc.stdout)["diagnostics"]
            train_line = next(i for i, line in enumerate(SEED.split("\n"), 1) if line.startswith("train "))
            assert diag["code"] == "E171" and diag["span"]["line"] == train_line
            assert "step" in diag["message"] and any("learning rate" in h for h in diag["hints"])
        else:
            assert "error[E171]: training diverged between steps 1 and 10" in proc.stderr
            assert "NaN" in proc.stderr and "nothing was written" in proc.stderr
        assert snapshot(out.parent) == before  # the previous run byte for byte, no new run, no checkpoint


def test_diverging_phase_is_named_and_located(tmp_path):
    spec = tmp_path / "p.tangle"
    spec.write_text(SEED + "\nphase calm steps 10\nphase wild steps 10 sgd 10.0\n")
    proc = call_tanglec("compile", str(spec), "-o", str(tmp_path / "run"), "--json")
    assert proc.returncode == 1, proc.stderr[-2000:]
    (diag,) = strict_loads(proc.stdout)["diagnostics"]
    assert diag["code"] == "E171" and "between steps 11 and 20" in diag["message"]
    assert diag["span"]["line"] == len(SEED.split("\n")) + 2  # the `phase wild` line
    assert any("phase wild" in h for h in diag["hints"])
    assert not (tmp_path / "run").exists()


def _poison_weights(run: Path) -> None:
    """Set one weight of a run to NaN and re-hash it, as an older tanglec would have written it."""
    import h5py

    from tanglec.artifacts.run import MANIFEST, WEIGHTS, file_sha256, manifest_digest

    with h5py.File(run / WEIGHTS, "r+") as f:
        datasets = []
        f.visititems(lambda name, obj: datasets.append(obj) if isinstance(obj, h5py.Dataset) and
                     obj.dtype.kind == "f" and obj.ndim == 2 else None)
        data = datasets[0][...]
        data[0, 0] = float("nan")
        datasets[0][...] = data
    manifest = json.loads((run / MANIFEST).read_text())
    manifest["files"][WEIGHTS] = file_sha256(run / WEIGHTS)
    manifest["digest"] = manifest_digest(manifest)
    (run / MANIFEST).write_text(json.dumps(manifest))


def test_a_run_with_non_finite_weights_is_refused_everywhere(good_run, tmp_path):
    _, out = good_run
    _poison_weights(out)
    target = tmp_path / "exported"
    for args in (["query", str(out), "x=3", "encoding=binary", "op=plus1"], ["eval", str(out)],
                 ["export", str(out), "-o", str(target)]):
        proc = call_tanglec(*args, "--json")
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, (args, proc.stderr[-2000:])
        (diag,) = strict_loads(proc.stdout)["diagnostics"]
        assert diag["code"] == "E140" and "not finite" in diag["message"], diag  # not export blaming itself
        assert diag["span"]["file"] == str(out)
    assert not target.exists()
    assert not list(tmp_path.glob("*.tmp")) and not list(out.parent.glob(".*tmp*"))


def test_json_output_never_holds_nan():
    from tanglec.util import strict_json

    np = pytest.importorskip("numpy")
    payload = {"loss": float("nan"), "history": [{"total": float("inf")}, {"total": np.float32("-inf")}],
               "ok": 1.5, "vector": np.array([1.0, np.nan])}
    parsed = strict_loads(strict_json.dumps(payload))
    assert parsed["loss"] is None and parsed["history"] == [{"total": None}, {"total": None}]
    assert parsed["ok"] == 1.5 and parsed["vector"] == [1.0, None]
    assert parsed["non_finite"]["paths"] == ["$.loss", "$.history[0].total", "$.history[1].total", "$.vector[1]"]
    assert "null" in parsed["non_finite"]["reason"]


# ---- finding 18: --devices bounded ---------------------------------------------------------------

def test_devices_are_bounded_before_tensorflow_starts(tmp_path):
    from tanglec.backend.distribute import max_devices

    started = time.monotonic()
    proc = run_tanglec("compile", str(ARITH), "-o", str(tmp_path / "run"), "--strategy", "mirrored",
                       "--devices", "20000", timeout=60)
    elapsed = time.monotonic() - started
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"error[E170]: --devices 20000: at most {max_devices()} on this machine" in proc.stderr
    assert elapsed < 10, elapsed  # was: 6 GB and 15 minutes creating devices
    assert not (tmp_path / "run").exists()


# ---- finding 19: disk full, file size limit -----------------------------------------------------------

def _small_tmpfs(folder: Path, size: str):
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("can't mount a small tmpfs here (needs root); the file size limit test covers the path")


def test_disk_full_is_a_clear_error_and_the_old_run_stays(good_run, tmp_path):
    spec, out = good_run
    disk = tmp_path / "disk"
    _small_tmpfs(disk, "500k")  # the run (~300 KB) fits once, not twice
    try:
        run = disk / "arith"
        proc, payload = compile_json(spec, run, "--steps", "1")
        assert proc.returncode == 0
        before = snapshot(disk)
        proc, payload = compile_json(spec, run, "--steps", "2")
        assert proc.returncode == 1
        (diag,) = payload["diagnostics"]
        assert diag["code"] == "E142" and diag["message"].startswith(f"no space left on device writing {run}")
        assert snapshot(disk) == before
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def _file_size_limit(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_file_size_limit_is_a_clear_error_and_the_old_run_stays(good_run):
    spec, out = good_run
    before = snapshot(out.parent)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    for extra, expected in ((["--checkpoint-every", "0"], f"file too large writing {out}: its weights need"),
                            (["--checkpoint-every", "10"], "file too large writing")):
        proc = subprocess.run([sys.executable, "-m", "tanglec.cli", "compile", str(spec), "-o", str(out),
                               "--steps", "20", *extra], capture_output=True, text=True, cwd=ROOT, env=env,
                              timeout=300, preexec_fn=_file_size_limit(100_000))
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert "error[E142]" in proc.stderr and expected in proc.stderr, proc.stderr
        assert snapshot(out.parent) == before  # the checkpoint write failed (EFBIG) before the run
