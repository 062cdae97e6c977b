"""Resumable training: a checkpoint every N steps and on SIGINT/SIGTERM; `compile --resume` continues.

A checkpoint is one file, `checkpoint.npz`, in a folder beside the run directory (`runs/.arith.ckpt/`
for `runs/arith`), never inside it, so a run directory stays complete-or-absent. It holds everything
the rest of training depends on:

* every model variable, in `model.variables` order: weights, and the Dropout layers' seed-generator
  states (Keras keeps its RNG state in variables, so restoring them restores the random stream);
* every optimizer variable of the current phase (slots and the iteration count);
* `meta` (JSON): the position (phase, epochs done in it, whether it finished), the step, the training
  history and last route report, and a fingerprint of everything that must not change between the
  interrupted and the resumed run: the spec text, the training arrays, seed, step counts, phases,
  multiplexer strategy, the variables' names and shapes, and the library versions.

The data position is the number of batches consumed in the phase: the resumed run rebuilds the same
seeded tf.data pipeline and `skip`s them, so with op determinism on, a run killed at any point and
resumed ends with weights bit-identical to an uninterrupted run (tests/test_resume.py kills a real
process with SIGKILL to check). Checkpoints are written to a temporary file, fsynced and renamed, so a
kill while saving leaves the previous checkpoint; they are loaded with `np.load(allow_pickle=False)`:
nothing is unpickled, and a checkpoint with another fingerprint is refused with E141.

SIGINT/SIGTERM (main thread only) set a flag: the current chunk of `eval_every` steps finishes, a
checkpoint is saved, training stops and `tanglec compile` exits 130/143 saying how to resume. A second
signal stops at once without saving (the last periodic checkpoint stays).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np

from ..util.version import __version__
from ..lang.ast import Span
from ..lang.diagnostics import Diagnostic, TangleError, write_error
from ..util.files import atomic_file

FORMAT = "tanglec-checkpoint/1"
FILE = "checkpoint.npz"
DEFAULT_EVERY = 100
# by default a periodic checkpoint also waits this long after the last: a save (fsynced twice) took
# 0.1-0.3 s here, so a small model checkpointed every 100 steps spent more time saving than training
DEFAULT_SECONDS = 30.0


def checkpoint_error(path: Path, message: str, hints=()) -> TangleError:
    return TangleError([Diagnostic("E141", message, Span(str(path), 1, 1, 1, 2), hints=list(hints))])


@dataclass
class Position:
    phase: int  # index of the phase the checkpoint was taken in
    epochs_done: int  # blocks of eval_every steps finished in that phase (a Keras loop's epochs)
    finished: bool  # the phase is over (its last epoch ran, or `until exact` stopped it)


def _digest(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray) and p.dtype == object:  # a text field: its strings (the bytes of an
            h.update(f"text{p.shape}".encode())              # object array are pointers, new every process)
            for item in p.ravel():
                data = str(item).encode("utf-8", "surrogatepass")
                h.update(len(data).to_bytes(8, "little") + data)
        elif isinstance(p, np.ndarray):
            h.update(f"{p.dtype.str}{p.shape}".encode())
            h.update(np.ascontiguousarray(p).tobytes())
        else:
            h.update(json.dumps(p, sort_keys=True, default=str).encode())
    return h.hexdigest()


class Checkpointer:
    """Saves and restores training state; use as a context manager around `train(..., checkpoint=)`.

    `every`: steps between checkpoints (rounded up to whole chunks of `eval_every`; 0: only on a
    signal); `seconds`: and at least this long since the last one (or the start). `resume`: restore the
    checkpoint in `directory` if there is one.
    """

    def __init__(self, directory: Path, *, every: int = DEFAULT_EVERY, seconds: float = 0.0, resume: bool = False,
                 handle_signals: bool = True, log=None):
        self.log = log  # called with a line of text when resuming (the CLI prints it)
        self.directory = Path(directory)
        self.every = every
        self.seconds = seconds
        self.saved_at = time.monotonic()
        self.resume = resume
        self.handle_signals = handle_signals
        self.signal_received: int | None = None
        self.position: Position | None = None  # where the restored checkpoint left off
        self.resumed_step: int | None = None
        self.saved_step: int | None = None
        self.note: str | None = None  # what resuming did, for the CLI to print
        self._previous: dict[int, object] = {}
        self._optimizer_values: list[np.ndarray] | None = None
        self._meta: dict = {}
        self._meta_restored: dict = {}

    # -- signals ----------------------------------------------------------------------------------
    def __enter__(self) -> "Checkpointer":
        if self.handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _on_signal(self, signum, frame) -> None:
        if self.signal_received is not None:  # a second signal: stop now, keep the last checkpoint
            signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(128 + signum)
        self.signal_received = signum
        try:  # (a signal can arrive while stderr is being written: never fail over the message)
            print(f"\n{signal.Signals(signum).name}: finishing the current chunk of steps to save a checkpoint "
                  f"(send it again to stop without saving)", file=sys.stderr, flush=True)
        except (RuntimeError, OSError, ValueError):
            pass

    @property
    def exit_code(self) -> int:
        return 128 + (self.signal_received or signal.SIGINT)

    # -- hooks called by train() ------------------------------------------------------------------
    def start(self, model: keras.Model, observer, checked, arrays, phases, *, seed: int, mux: str | None) -> None:
        """Fingerprint this training; when resuming, restore the model, the RNG and the observer."""
        self.model_ref, self.observer = model, observer
        self.eval_every = checked.train.eval_every
        sources = [checked.spec.source, sorted(getattr(checked.spec, "used_files", {}).items())]
        x, y, w = arrays
        data = [a for part in (x, y, w) for _, a in sorted(part.items())]
        self._meta = {
            "format": FORMAT, "tanglec": __version__, "keras": keras.__version__,
            "tensorflow": _tf_version(),
            "spec": _digest(*sources), "data": _digest(*data),
            "settings": {"seed": seed, "mux": mux, "eval_every": self.eval_every,
                         "phases": [asdict(p) for p in phases]},
            # shapes and dtypes, in order (names carry Keras' per-process counters: seed_generator_4...)
            "variables": [[list(v.shape), str(v.dtype)] for v in model.variables],
            "names": [v.path for v in model.variables],
        }
        if self.resume:
            self._restore(model, observer)

    def enter_phase(self, index: int, data, epochs: int):
        """(dataset, initial epoch) for phase `index`: skipped if the checkpoint is past it; resumed
        inside it (optimizer restored, consumed batches skipped) if the checkpoint is in it."""
        self.phase, self.epochs = index, epochs
        pos = self.position
        if pos is None or index > pos.phase:
            return data, 0
        if index < pos.phase or pos.finished:
            if index == pos.phase:
                self.observer.stopped_early = bool(self._meta_restored.get("stopped_early"))
            return data, epochs
        optimizer = self.model_ref.optimizer
        optimizer.build(self.model_ref.trainable_variables)
        values = self._optimizer_values or []
        if len(values) != len(optimizer.variables) or any(
                tuple(v.shape) != a.shape for v, a in zip(optimizer.variables, values)):
            raise checkpoint_error(self.directory / FILE, "the checkpoint's optimizer state does not fit this "
                                                          "phase's optimizer")
        for v, a in zip(optimizer.variables, values):
            v.assign(a)
        return data.skip(pos.epochs_done * self.eval_every), pos.epochs_done

    def end_chunk(self, block: int, steps: int, logs: dict) -> None:
        """After a chunk of training that ended with block `block` of the phase (blocks of `eval_every`
        steps; chunks.train_in_chunks): save if due or on a signal."""
        obs = self.observer
        finished = obs.stopped_early or block + 1 >= self.epochs
        due = self.every and self.steps_since_save() >= self.every \
            and time.monotonic() - self.saved_at >= self.seconds
        if due or self.signal_received is not None:
            self.save(Position(self.phase, block + 1, finished))
        if self.signal_received is not None:
            obs.interrupted = True
            self.model_ref.stop_training = True

    def steps_since_save(self) -> int:
        return self.observer.steps_run - (self.saved_step or self.resumed_step or 0)

    def blocks_before_save(self, sizes: list[int]) -> int:
        """How many of the next blocks (of `sizes` steps) a chunk may take and still end where a save
        every `every` steps falls due (`every` rounded up to whole blocks); any number if never, or if
        the save is due by steps and waits for its `seconds`."""
        left, count = (self.every - self.steps_since_save() if self.every else 0), 0
        if left <= 0:
            return len(sizes)
        while count < len(sizes) and left > 0:
            left -= sizes[count]
            count += 1
        return count

    # -- files ------------------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        return self.directory / FILE

    def save(self, position: Position) -> None:
        """Write the checkpoint atomically: temporary file, fsync, rename, fsync the folder."""
        model, obs = self.model_ref, self.observer
        meta = {**self._meta, "position": asdict(position), "step": obs.steps_run, "history": obs.history,
                "report": obs.report, "stopped_early": obs.stopped_early,
                "optimizer_variables": len(model.optimizer.variables)}
        arrays = {f"m{i}": np.asarray(v.numpy()) for i, v in enumerate(model.variables)}
        arrays.update({f"o{i}": np.asarray(v.numpy()) for i, v in enumerate(model.optimizer.variables)})
        arrays["meta"] = np.frombuffer(json.dumps(meta, default=_jsonable).encode("utf-8"), dtype=np.uint8)
        created = not self.directory.exists()
        try:
            with atomic_file(self.path) as fh:
                np.savez(fh, **arrays)
        except OSError as err:  # e.g. the disk is full: E142, the previous checkpoint stays
            if created:
                with contextlib.suppress(OSError):  # a folder this save created and left empty
                    self.directory.rmdir()
            raise write_error(self.path, err) from None
        self.saved_step = obs.steps_run
        self.saved_at = time.monotonic()

    def _restore(self, model: keras.Model, observer) -> None:
        if not self.path.is_file():
            self.note = f"no checkpoint at {self.directory}; training from the start"
            if self.log:
                self.log(self.note)
            return
        meta, model_values, optimizer_values = read_checkpoint(self.path)
        for key in ("format", "spec", "data", "settings", "variables"):
            if meta.get(key) != self._meta[key]:
                what = {"format": "a different checkpoint format", "spec": "a different spec",
                        "data": "different data", "settings": "different settings (seed, steps, mux or phases)",
                        "variables": "a model with different variables"}[key]
                raise checkpoint_error(self.path, f"the checkpoint was made with {what}; it can't be resumed",
                                       hints=["compile without --resume to start over (the checkpoint is then "
                                              "replaced)", "or resume with the same spec, data and options"])
        if len(model_values) != len(model.variables):
            raise checkpoint_error(self.path, "the checkpoint does not hold this model's variables")
        for v, a in zip(model.variables, model_values):
            v.assign(a)
        self._optimizer_values = optimizer_values
        self._meta_restored = meta
        pos = meta["position"]
        self.position = Position(int(pos["phase"]), int(pos["epochs_done"]), bool(pos["finished"]))
        self.resumed_step = int(meta["step"])
        observer.steps_run = self.resumed_step
        observer.history = list(meta.get("history") or [])
        observer.report = meta.get("report")
        observer.stopped_early = bool(meta.get("stopped_early"))
        self.note = f"resuming from the checkpoint at step {self.resumed_step}"
        if self.log:
            self.log(self.note)

    def discard(self) -> None:
        """Remove the checkpoints (after the run they lead to has been written)."""
        shutil.rmtree(self.directory, ignore_errors=True)


def read_checkpoint(path: Path) -> tuple[dict, list[np.ndarray], list[np.ndarray]]:
    """(meta, model values, optimizer values) of a checkpoint file; E141 if it is damaged or foreign.
    `allow_pickle=False`: an object array in the file is refused, never unpickled."""
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode("utf-8"))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT} file")
            n_model, n_opt = len(meta["variables"]), int(meta["optimizer_variables"])
            model_values = [z[f"m{i}"] for i in range(n_model)]
            optimizer_values = [z[f"o{i}"] for i in range(n_opt)]
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, EOFError, UnicodeDecodeError) as err:
        raise checkpoint_error(path, f"the checkpoint is damaged or not a tanglec checkpoint: {err}",
                               hints=[f"delete {path.parent} and compile without --resume"]) from None
    for (shape, dtype), name, a in zip(meta["variables"], meta.get("names", []), model_values):
        if list(a.shape) != list(shape) or a.dtype != np.dtype(dtype):
            raise checkpoint_error(path, f"the checkpoint's {name} is {a.dtype}{list(a.shape)}, "
                                         f"its manifest says {dtype}{shape}")
    return meta, model_values, optimizer_values


def resume_command(spec: Path, run: Path, options: dict) -> str:
    """The command that continues an interrupted compile: the same spec, run and options, plus --resume
    (the checkpoint's fingerprint must match, so e.g. `--steps` has to be repeated)."""
    import shlex

    parts = ["tanglec", "compile", str(spec), "-o", str(run)]
    for flag, value in options.items():
        if value is not None and value is not False:
            parts += [flag] if value is True else [flag, str(value)]
    return " ".join(shlex.quote(p) for p in parts) + " --resume"


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _tf_version() -> str:
    import tensorflow as tf

    return tf.__version__
