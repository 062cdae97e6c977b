"""Training on several devices or machines with TensorFlow's own engine, `tf.distribute`.

A spec never changes to run distributed: `tanglec compile --strategy NAME` (or `train ... strategy NAME`
in the spec) picks how the same Keras model is replicated:

``default``
    TensorFlow's default strategy: one device, exactly what tanglec always did.
``mirrored``
    `tf.distribute.MirroredStrategy`: one replica per local GPU (`--devices N`: the first N). On a
    machine without GPUs, `--devices N` splits the CPU into N logical devices (for trying the
    distributed path out and for tests; it adds no compute).
``multiworker``
    `tf.distribute.MultiWorkerMirroredStrategy`: one process per machine, the cluster read from the
    standard `TF_CONFIG` environment variable; every worker runs the same command. Only the chief
    (task `chief`, or `worker` 0 when there is no chief) writes the run directory and checkpoints.

The model is built and compiled inside the strategy's scope (its variables are mirrored), the batch
of the spec is the *global* batch (split evenly across the replicas; gradients are all-reduced, so
every replica ends each step with the same weights).

What tanglec adapts for Keras 3 + tf.distribute (measured with TF 2.21 / Keras 3.x):

* `steps_per_execution` is 1 under `mirrored` and `multiworker`: Keras' multi-step loop fails there
  ("You must feed a value for placeholder tensor ..."; keras-team/keras#19246). An epoch is still
  `eval_every` steps, so evaluation and checkpoints happen at the same steps.
* XLA is off: Keras 3 disables `jit_compile` under tf.distribute (tanglec compiles with
  `jit_compile=False` everywhere anyway).
* `multiworker`: two Keras bugs are worked around on the model instance (keras-team/keras#20585,
  #20329): the symbolic build before `fit` all-reduces a *nest* of per-replica inputs across workers
  (unsupported: it only needs their shapes, so the local value is used), and the per-step logs are
  reduced with `axis=0` although they are scalars (they are returned as shape [1], whose mean over
  every replica is the global mean).

Nothing here is imported by `tanglec check`; TensorFlow loads only in `make_strategy`.
"""
from __future__ import annotations

import contextlib
import json
import os
import types
from dataclasses import dataclass, field

from ..lang.diagnostics import Diagnostic, TangleError

STRATEGIES = ("default", "mirrored", "multiworker")
DEFAULT = "default"

TF_CONFIG_EXAMPLE = ('TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                     '"task": {"type": "worker", "index": 0}}\'')


def distribution_error(message: str, hints=()) -> TangleError:
    return TangleError([Diagnostic("E170", message, None, hints=list(hints))])


# ---- TF_CONFIG (plain JSON: no TensorFlow needed to know who is the chief) ---------------------

@dataclass
class Cluster:
    """The cluster a `multiworker` process belongs to, as TF_CONFIG describes it."""

    jobs: dict[str, list[str]]
    task_type: str
    task_index: int

    @property
    def workers(self) -> int:
        return sum(len(v) for k, v in self.jobs.items() if k in ("chief", "worker"))

    @property
    def is_chief(self) -> bool:
        """The chief writes the run and the checkpoints: task `chief`, else worker 0 (Keras' rule)."""
        if "chief" in self.jobs:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.task_index == 0

    def to_json(self) -> dict:
        return {"task": f"{self.task_type}:{self.task_index}", "workers": self.workers, "chief": self.is_chief}


def read_tf_config(environ=None) -> Cluster:
    """Parse and check TF_CONFIG; E170 with the reason when it is missing or malformed."""
    environ = os.environ if environ is None else environ
    raw = environ.get("TF_CONFIG", "").strip()
    hint = f"set it in every worker's environment, e.g. {TF_CONFIG_EXAMPLE} (see docs/distributed.md)"
    if not raw:
        raise distribution_error("--strategy multiworker reads the cluster from TF_CONFIG, which is not set",
                                 hints=[hint])
    try:
        cfg = json.loads(raw)
    except json.JSONDecodeError as err:
        raise distribution_error(f"TF_CONFIG is not JSON: {err.msg} at character {err.pos}", hints=[hint]) from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("cluster"), dict) or not isinstance(cfg.get("task"), dict):
        raise distribution_error("TF_CONFIG needs a \"cluster\" object and a \"task\" object", hints=[hint])
    jobs = cfg["cluster"]
    if not all(isinstance(v, list) and all(isinstance(a, str) and a for a in v) for v in jobs.values()):
        raise distribution_error("TF_CONFIG: each job in \"cluster\" is a list of \"host:port\" addresses",
                                 hints=[hint])
    if not jobs.get("worker") and not jobs.get("chief"):
        raise distribution_error("TF_CONFIG: the cluster has no \"worker\" (nor \"chief\") job", hints=[hint])
    extra = sorted(set(jobs) - {"chief", "worker"})
    if extra:
        raise distribution_error(f"TF_CONFIG: job{'s' * (len(extra) > 1)} {', '.join(extra)} "
                                 f"{'are' if len(extra) > 1 else 'is'} not used by multiworker training",
                                 hints=["multiworker (MultiWorkerMirroredStrategy) runs `chief` and `worker` "
                                        "tasks only; parameter servers and evaluators are not supported"])
    task = cfg["task"]
    kind, index = task.get("type"), task.get("index", 0)
    if kind not in jobs or not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(jobs[kind]):
        raise distribution_error(f"TF_CONFIG: task {json.dumps(task)} is not in the cluster "
                                 f"({', '.join(f'{k}: {len(v)}' for k, v in jobs.items())})", hints=[hint])
    return Cluster({k: list(v) for k, v in jobs.items()}, kind, index)


def check_strategy(name: str | None, devices: int | None = None, environ=None) -> bool:
    """Check a strategy and its options without TensorFlow (E170); return whether this process is the
    one that writes the run (always, except a `multiworker` worker that is not the chief)."""
    name = name or DEFAULT
    if name not in STRATEGIES:
        raise distribution_error(f"unknown strategy '{name}'", hints=["strategies: " + ", ".join(STRATEGIES)])
    if devices is not None and devices < 1:
        raise distribution_error("--devices takes a number >= 1")
    if devices is not None and devices > max_devices():
        raise distribution_error(f"--devices {devices}: at most {max_devices()} on this machine "
                                 f"({os.cpu_count() or 1} CPU cores)",
                                 hints=[f"mirrored replicates on one machine: its GPUs (up to {MAX_GPUS}), or "
                                        f"up to {LOGICAL_CPUS_PER_CORE} logical CPU devices per core, which add "
                                        "no compute", "train on several machines with --strategy multiworker"])
    if devices is not None and name != "mirrored":
        raise distribution_error(f"--devices applies to --strategy mirrored, not {name}",
                                 hints=["multiworker uses every GPU of each worker (or its CPU); "
                                        "run one worker per machine"])
    return name != "multiworker" or read_tf_config(environ).is_chief


# Bounds on `--devices`, checked before TensorFlow creates a device: each logical CPU device costs
# threads and memory (20000 of them took 6 GB and never started training).
MAX_GPUS = 16  # GPUs one machine can hold
LOGICAL_CPUS_PER_CORE = 4


def max_devices() -> int:
    """The most devices `mirrored` accepts here: enough for any machine's GPUs, or a few logical
    CPU devices per core."""
    return max(MAX_GPUS, LOGICAL_CPUS_PER_CORE * (os.cpu_count() or 1))


# ---- strategies ----------------------------------------------------------------------------------

def split_cpu(n: int) -> None:
    """Make the CPU appear as `n` logical devices (must run before TensorFlow initialises its devices)."""
    import tensorflow as tf

    if n <= 1:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError:
        have = len(tf.config.list_logical_devices("CPU"))
        if have < n:
            raise distribution_error(
                f"TensorFlow is already initialised with {have} CPU device{'s' * (have != 1)}; "
                f"{n} logical devices must be configured before anything runs",
                hints=["run `tanglec compile --strategy mirrored --devices N` in a fresh process, or call "
                       "tanglec.backend.distribute.split_cpu(N) before TensorFlow runs anything"]) from None


@dataclass
class Distribution:
    """A resolved strategy and what training needs to know about it."""

    name: str
    strategy: object  # tf.distribute.Strategy
    devices: list[str] = field(default_factory=list)
    cluster: Cluster | None = None

    @property
    def replicas(self) -> int:
        return int(self.strategy.num_replicas_in_sync)

    @property
    def is_chief(self) -> bool:
        return self.cluster is None or self.cluster.is_chief

    def scope(self):
        """The strategy's scope (nothing at all for `default`: the default path stays untouched)."""
        return contextlib.nullcontext() if self.name == DEFAULT else self.strategy.scope()

    def prepare_dataset(self, ds):
        """Shard by data (each worker keeps its slice of every global batch): tanglec's datasets are
        built from arrays or a Python generator, which has no files to shard."""
        if self.name == DEFAULT:
            return ds
        import tensorflow as tf

        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return ds.with_options(options)

    def adapt(self, model) -> None:
        """After `model.compile` (each phase): what Keras 3 needs to `fit` under this strategy."""
        if self.name == DEFAULT:
            return
        model.steps_per_execution = 1  # keras-team/keras#19246: the multi-step loop breaks under tf.distribute
        if self.name == "multiworker" and not getattr(model, "_tanglec_multiworker", False):
            _patch_multiworker(model, self.strategy)

    def to_json(self) -> dict:
        out = {"name": self.name, "replicas": self.replicas, "devices": self.devices}
        if self.cluster is not None:
            out["cluster"] = self.cluster.to_json()
        return out


def make_strategy(name: str | None = None, devices: int | None = None) -> Distribution:
    """Create the strategy (for `mirrored` on a CPU-only machine, split the CPU first)."""
    name = name or DEFAULT
    check_strategy(name, devices)
    import tensorflow as tf

    if name == DEFAULT:
        return Distribution(name, tf.distribute.get_strategy(), [])
    if name == "multiworker":
        cluster = read_tf_config()
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
        except (RuntimeError, ValueError) as err:
            raise distribution_error(f"can't start the multiworker strategy: {err}",
                                     hints=["start it before anything else runs TensorFlow in this process"]) from None
        _restore_python_signal_handlers()
        return Distribution(name, strategy, list(strategy.extended.worker_devices), cluster)
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        n = devices or len(gpus)
        if n > len(gpus):
            raise distribution_error(f"--devices {n}: this machine has {len(gpus)} GPU{'s' * (len(gpus) != 1)}")
        names = [f"/gpu:{i}" for i in range(n)]
    else:
        n = devices or 1
        cpu_limit = LOGICAL_CPUS_PER_CORE * (os.cpu_count() or 1)
        if n > cpu_limit:
            raise distribution_error(f"--devices {n}: this machine has no GPU, and at most {cpu_limit} logical "
                                     f"CPU devices ({LOGICAL_CPUS_PER_CORE} per core) are allowed",
                                     hints=["logical CPU devices add no compute: they are for trying mirrored "
                                            "training out"])
        split_cpu(n)
        names = [f"/cpu:{i}" for i in range(n)]
    return Distribution(name, tf.distribute.MirroredStrategy(devices=names), names)


def _restore_python_signal_handlers() -> None:
    """Starting the multiworker strategy installs TensorFlow's C-level SIGTERM handler (a preemption
    notice for its own failure handling), which swallows the signal: SIGTERM did nothing at all. Put
    back Python's handlers, so Ctrl-C/SIGTERM behave as without a strategy (the chief saves a
    checkpoint and stops; a worker without handlers stops at once)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(sig)
        if handler is not None:
            signal.signal(sig, handler)


def _patch_multiworker(model, strategy) -> None:
    """Work around Keras 3's `fit` under MultiWorkerMirroredStrategy, on this model instance only."""
    import tensorflow as tf

    try:
        from keras.src import tree
    except ImportError:  # pragma: no cover - Keras moved it
        import tree  # type: ignore[no-redef]

    def local(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras' version reduces the whole input nest across workers to learn its shapes, which
        # the collective reduce can't do (keras-team/keras#20585); the local values have the shapes.
        if self._distribute_strategy is None:
            return
        if iterator is not None:
            for _, _, it in iterator:
                data_batch = tree.map_structure(local, next(it))
                break
        with self._distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    step = model.train_step

    def train_step(data):
        # Keras reduces each per-replica log with reduce(MEAN, axis=0), which fails on scalars:
        # shape [1] makes it the mean over every replica (the global mean) and a scalar again.
        return tree.map_structure(lambda v: tf.reshape(v, [1]), step(data))

    if hasattr(model, "_maybe_symbolic_build"):
        model._maybe_symbolic_build = types.MethodType(maybe_symbolic_build, model)
    model.train_step = train_step
    model._tanglec_multiworker = True


_PEER_ERRORS = ("UnavailableError", "AbortedError", "CancelledError", "DeadlineExceededError")


def peer_failure(err: BaseException, strategy: str | None, checkpoints=None) -> TangleError | None:
    """A multiworker run whose peer stopped (TensorFlow aborts the collective ops) as E170; None for
    any other error."""
    if strategy != "multiworker" or type(err).__name__ not in _PEER_ERRORS:
        return None
    import re

    text = str(err)
    lost = sorted(set(re.findall(r"^\s*(/job:[^\s:]+/replica:\d+/task:\d+)\s*$", text, re.M)))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if "unhealthy" in text and lost:
        reason = f"{', '.join(lost)} stopped sending heartbeats"
    else:
        reason = next((line for line in lines if "abort" in line.lower() or "unavailable" in line.lower()),
                      lines[0] if lines else type(err).__name__)
    where = f" (the chief's last checkpoint is in {checkpoints})" if checkpoints else ""
    return distribution_error(f"the cluster lost a worker: {reason[:300]}",
                              hints=[f"start every worker again with the same command and --resume{where}"])


def save_worker_weights(model, path) -> None:
    """Every weight of the model, in order, to an .npz (to compare what the workers ended with)."""
    import numpy as np

    arrays = {f"w{i:04d}": np.asarray(v.numpy()) for i, v in enumerate(model.weights)}
    names = np.array([v.path for v in model.weights])
    tmp = f"{path}.tmp.npz"
    np.savez(tmp, names=names, **arrays)
    os.replace(tmp, path)
