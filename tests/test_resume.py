"""Resumable training with real processes: SIGKILL at a random step, or SIGTERM/SIGINT, then
`tanglec compile --resume` ends with weights bit-identical to an uninterrupted run; the previous run
is never touched and no half-written run appears.

CI runs one SIGKILL trial and one SIGTERM trial (3 compiles, the reference alongside, and 2 resumes).
`TANGLEC_RESUME_TRIALS=5` runs five SIGKILL trials plus a SIGTERM and a SIGINT trial (the acceptance
run, with `-s` it prints where each resumed) and also checks the CLI's refusal of a checkpoint made
with other options (in CI that refusal is tested in-process).
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from support import ARITH, ROOT

pytestmark = pytest.mark.slow

# The spec evaluates (and can checkpoint) every 100 steps. Training runs ~1-2k steps/s here, so a
# run long enough to be stopped at a random point, with a margin of 1000 steps before its end.
STEPS, EVERY = 3000, 100
MARGIN = 10 * EVERY
OPTIONS = ["--steps", str(STEPS), "--checkpoint-every", str(EVERY), "--seed", "3"]


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def start(spec: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen([sys.executable, "-m", "tanglec.cli", "compile", str(spec), "-o", str(out), *OPTIONS,
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)


def finish(proc: subprocess.Popen, timeout: float = 600) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def ckpt_file(out: Path) -> Path:
    return out.parent / f".{out.name}.ckpt" / "checkpoint.npz"


def checkpoint_step(out: Path) -> int | None:
    """The step of the run's latest checkpoint (read with numpy only, as any tool could)."""
    try:
        with np.load(ckpt_file(out), allow_pickle=False) as z:
            return int(json.loads(bytes(z["meta"]).decode())["step"])
    except (OSError, ValueError, KeyError):
        return None


def wait_for_checkpoint(proc: subprocess.Popen, out: Path, at_least: int, timeout: float = 600) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        step = checkpoint_step(out)
        if step is not None and step >= at_least:
            return step
        if proc.poll() is not None:
            pytest.fail(f"the compile ended (rc {proc.returncode}) before a checkpoint at step {at_least}:\n"
                        + proc.stderr.read()[-2000:])
        time.sleep(0.01)
    pytest.fail("no checkpoint in time")


def weights(run: Path) -> dict[str, np.ndarray]:
    import h5py

    out = {}
    with h5py.File(run / "model.weights.h5", "r") as h5:
        h5.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def differences(a: Path, b: Path) -> list[str]:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys() and wa
    return [k for k in wa if wa[k].dtype != wb[k].dtype or not np.array_equal(wa[k], wb[k])]


@pytest.fixture
def spec(tmp_path) -> Path:
    """The seed spec without `until exact`, so every run trains exactly STEPS steps."""
    path = tmp_path / "arith.tangle"
    path.write_text(ARITH.read_text().replace(" until exact", f" eval_every {EVERY}"))
    return path


PREVIOUS = """
import sys, types
sys.modules["keras"] = types.SimpleNamespace(__version__="3.0.0")  # write_run reads only the versions
sys.modules["tensorflow"] = types.SimpleNamespace(__version__="2.0.0")
from pathlib import Path
from tanglec.pipeline import load
from tanglec.artifacts.run import write_run

class Weights:
    def save_weights(self, path):
        Path(path).write_bytes(b"the previous run's weights")

write_run(sys.argv[2], load(sys.argv[1]), Weights(), {"previous": True}, {})
"""


def previous_run(out: Path) -> dict[str, str]:
    """A complete earlier run at `out` (what a failed compile must not damage); returns its folder's snapshot."""
    subprocess.run([sys.executable, "-c", PREVIOUS, str(ARITH), str(out)], check=True, cwd=ROOT)
    return snapshot(out.parent)


def kill_trial(spec: Path, out: Path, rng: random.Random, how: signal.Signals):
    """Start a compile, stop it with `how` at a random step after a checkpoint exists; check that
    nothing was written or damaged; return (the resume process, the step it resumes from)."""
    folder = out.parent
    folder.mkdir()
    before = previous_run(out) if how == signal.SIGKILL else {}
    proc = start(spec, out)
    wait_for_checkpoint(proc, out, rng.randrange(EVERY, STEPS - MARGIN, EVERY))
    time.sleep(rng.uniform(0, 0.05))  # land anywhere in training, not just after a save
    proc.send_signal(how)
    rc, _, err = finish(proc)
    step = checkpoint_step(out)
    ckpt = f".{out.name}.ckpt"
    assert {p.name for p in folder.iterdir()} == ({out.name} if before else set()) | {ckpt}  # nothing half-written
    after = {k: v for k, v in snapshot(folder).items() if not k.startswith(ckpt)}
    assert after == before  # the previous run (if any) is untouched
    if how == signal.SIGKILL:
        assert rc == -signal.SIGKILL
        return start(spec, out, "--resume"), step
    # a clean stop: a checkpoint at the step it names, exit 128+signal, the command to resume printed
    assert rc == 128 + how, err
    command = f"tanglec compile {spec} -o {out} --seed 3 --steps {STEPS} --checkpoint-every {EVERY} --resume"
    assert f"interrupted at step {step}; resume with: {command}" in err, err
    assert "Traceback" not in err
    if os.environ.get("TANGLEC_RESUME_TRIALS"):  # (in-process in CI: test_checkpoint_from_other_settings...)
        refuse_other_settings(spec, out)
    return subprocess.Popen([sys.executable, "-m", "tanglec.cli", *shlex.split(command)[1:]], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}), step


def trials() -> list[signal.Signals]:
    n = int(os.environ.get("TANGLEC_RESUME_TRIALS", "0"))
    if n:
        return [signal.SIGKILL] * n + [signal.SIGTERM, signal.SIGINT]
    return [signal.SIGKILL, signal.SIGTERM]


def check_resumed(resumed: subprocess.Popen, step: int, out: Path, how: signal.Signals):
    rc, _, err = finish(resumed)
    assert rc == 0, err
    assert f"resuming from the checkpoint at step {step}" in err
    assert not ckpt_file(out).parent.exists()  # the finished run no longer needs its checkpoints
    return how.name, step, out


def test_killed_or_interrupted_and_resumed_is_bit_identical(spec, tmp_path):
    rng = random.Random(int(os.environ.get("TANGLEC_RESUME_SEED", "2024")))
    reference = tmp_path / "reference"
    ref_proc = start(spec, reference)  # runs alongside the first trial (2 cores)
    results, resuming = [], None
    for i, how in enumerate(trials()):
        out = tmp_path / f"trial{i}" / "arith"
        resumed, step = kill_trial(spec, out, rng, how)
        if resuming is not None:  # at most two compiles at a time besides the reference
            results.append(check_resumed(*resuming))
        resuming = (resumed, step, out, how)
    results.append(check_resumed(*resuming))
    rc, _, err = finish(ref_proc)
    assert rc == 0, err
    assert json.loads((reference / "metrics.json").read_text())["steps_run"] == STEPS
    outcomes = []
    for name, step, out in results:
        different = differences(reference, out)
        outcomes.append(f"{name}, resumed from step {step}: " + (
            "bit-identical" if not different else f"{len(different)} weight arrays differ, e.g. {different[:2]}"))
        history = json.loads((out / "metrics.json").read_text())["history"]
        assert [h["step"] for h in history] == list(range(EVERY, STEPS + 1, EVERY))  # the whole history survives
    print("\n".join(outcomes))
    assert all(o.endswith("bit-identical") for o in outcomes), "\n".join(outcomes)


def refuse_other_settings(spec: Path, out: Path) -> None:
    """--resume with different options (here --steps): E141, nothing written, the checkpoint kept."""
    before = snapshot(out.parent)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    other = subprocess.run([sys.executable, "-m", "tanglec.cli", "compile", str(spec), "-o", str(out),
                            "--steps", str(STEPS + EVERY), "--checkpoint-every", str(EVERY), "--seed", "3", "--resume"],
                           capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert other.returncode == 1, other.stderr
    assert "error[E141]: the checkpoint was made with different settings" in other.stderr
    assert "Traceback" not in other.stderr
    assert snapshot(out.parent) == before and not out.exists()


def test_damaged_or_foreign_checkpoint_is_refused(tmp_path):
    from tanglec.backend.checkpoint import read_checkpoint
    from tanglec.lang.diagnostics import TangleError

    path = tmp_path / "checkpoint.npz"
    for content in (b"", b"garbage", b"PK\x03\x04" + b"\x00" * 50):
        path.write_bytes(content)
        with pytest.raises(TangleError) as err:
            read_checkpoint(path)
        assert err.value.diagnostics[0].code == "E141" and "damaged or not a tanglec checkpoint" in str(err.value)
    np.savez(path, meta=np.frombuffer(json.dumps({"format": "other"}).encode(), np.uint8))
    with pytest.raises(TangleError, match="not a tanglec-checkpoint/1 file"):
        read_checkpoint(path)
    np.savez(path, meta=np.array([{"format": "tanglec-checkpoint/1"}], dtype=object))  # a pickle inside
    with pytest.raises(TangleError, match="damaged or not a tanglec checkpoint"):
        read_checkpoint(path)
    assert path.read_bytes()[:2] == b"PK"  # refused, untouched


def test_checkpoint_from_other_settings_or_spec_is_refused(tmp_path):
    """Resuming needs the same spec, data and options: otherwise E141, and the checkpoint is kept."""
    from types import SimpleNamespace

    from tanglec.backend.checkpoint import Checkpointer, Position
    from tanglec.pipeline import load
    from tanglec.backend.codegen import build_model
    from tanglec.data.examples import build_examples
    from tanglec.lang.diagnostics import TangleError
    from tanglec.backend.train import compile_model, plan_phases
    from tanglec.data.features import training_arrays

    def prepared(spec_path):
        checked = load(spec_path)
        examples = build_examples(checked)
        model = build_model(checked)
        compile_model(model, checked)
        model.optimizer.build(model.trainable_variables)
        return checked, model, training_arrays(checked, examples, examples.train_index)

    def observer():
        return SimpleNamespace(steps_run=40, history=[], report=None, stopped_early=False, interrupted=False)

    checked, model, arrays = prepared(ARITH)
    saver = Checkpointer(tmp_path / "ckpt", handle_signals=False)
    saver.start(model, observer(), checked, arrays, plan_phases(checked, 100), seed=0, mux=None)
    saver.save(Position(0, 2, False))
    saved = saver.path.read_bytes()
    other_x = {**arrays[0], "x": arrays[0]["x"][::-1].copy()}
    attempts = [("different settings", checked, arrays, 200, 0), ("different settings", checked, arrays, 100, 1),
                ("different data", checked, (other_x, arrays[1], arrays[2]), 100, 0)]
    for what, c, a, steps, seed in attempts:
        with pytest.raises(TangleError) as err:
            Checkpointer(tmp_path / "ckpt", resume=True, handle_signals=False).start(
                model, observer(), c, a, plan_phases(c, steps), seed=seed, mux=None)
        assert err.value.diagnostics[0].code == "E141" and f"made with {what}" in str(err.value)
    clock, clock_model, clock_arrays = prepared(ROOT / "specs" / "clock.tangle")
    with pytest.raises(TangleError, match="made with a different spec"):
        Checkpointer(tmp_path / "ckpt", resume=True, handle_signals=False).start(
            clock_model, observer(), clock, clock_arrays, plan_phases(clock, 100), seed=0, mux=None)
    assert saver.path.read_bytes() == saved  # refused, untouched
    resumed = Checkpointer(tmp_path / "ckpt", resume=True, handle_signals=False)
    obs = observer()
    resumed.start(build_model(checked), obs, checked, arrays, plan_phases(checked, 100), seed=0, mux=None)
    assert resumed.position == Position(0, 2, False) and obs.steps_run == 40



def test_default_checkpoints_also_wait_their_seconds_an_explicit_every_does_not(tmp_path, monkeypatch):
    """A save (fsynced twice) took 0.1-0.3 s here: every 100 steps alone, a small model saved more than it
    trained. By default a periodic checkpoint waits for 100 steps and 30 s; `--checkpoint-every N` is exact."""
    from types import SimpleNamespace

    from tanglec.backend.checkpoint import DEFAULT_SECONDS, Checkpointer

    for seconds, expected in ((DEFAULT_SECONDS, []), (0.0, [10, 20])):
        saved = []
        checkpointer = Checkpointer(tmp_path, every=10, seconds=seconds, handle_signals=False)
        checkpointer.observer = SimpleNamespace(steps_run=0, stopped_early=False)
        checkpointer.epochs, checkpointer.phase = 5, 0
        monkeypatch.setattr(checkpointer, "save", lambda position, c=checkpointer: (
            saved.append(c.observer.steps_run), setattr(c, "saved_step", c.observer.steps_run)))
        for epoch in range(2):
            checkpointer.observer.steps_run += 10
            checkpointer.end_chunk(epoch, 10, {})
        assert saved == expected
