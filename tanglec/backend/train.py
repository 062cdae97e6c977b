"""Training: Keras `fit` on a tf.data pipeline, evaluation of every route as it goes (imports TensorFlow).

Every decoder is trained on every example whose route reaches it and whose target is defined (a
per-output sample weight masks the rest); the per-decoder losses are summed with the spec's weights,
as in the seed essay. Training runs in chunks of `eval_every` steps with no per-step Python work
(`ChunkTrainer`, or Keras's loop with `steps_per_execution`); between chunks every route is
evaluated and `until exact` stops training. A phase of `steps` trains exactly that many steps: its
last chunk is shorter (`chunk_sizes`). A loss or weight that stops being finite ends training with
E171 (`diverged`).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from ..lang.ast import PhaseDecl, TrainDecl
from ..spec.check_limits import estimate_parameters
from ..spec.checked import Checked
from .codegen import build_model, field_encoder, module_layers, set_teachers, training_device
from .standardize import Standardize, fit_standardizers
from .chunks import ChunkTrainer, EpochChunks, chunk_sizes, train_in_chunks
from .datasets import dataset, grouped_index_batches, in_blocks, index_batches, stream_dataset
from .predict import Predictor
from ..data.features import encode_inputs, training_arrays
from ..data.rows import Examples
from ..data.selection import route_mask, route_status
from ..lang.diagnostics import Diagnostic, TangleError
from .distribute import DEFAULT, make_strategy
from .mux_cost import XLA_MAX_PARAMETERS, XLA_STRATEGIES, xla_pays_off
from .optimizers import make_optimizer
from ..data.evaluate import all_exact, evaluation_loss, route_report
from .schedules import learning_rate


EVALUATIONS_AT_LEAST = 50  # a long run's evaluations, when its accuracy stays put (_Observer.evaluation_due)


@dataclass
class Progress:
    """What a training observer sees after each evaluation (CLI progress bar, TUI, tests)."""

    step: int
    total_steps: int
    losses: dict[str, float]
    report: dict
    steps_per_second: float
    elapsed: float


@dataclass
class TrainResult:
    model: keras.Model
    steps_run: int
    report: dict
    history: list[dict] = field(default_factory=list)
    stopped_early: bool = False
    interrupted: bool = False
    seconds: float = 0.0
    loaded: list[str] = field(default_factory=list)  # modules whose weights came from the init run
    distribution: dict | None = None  # the tf.distribute strategy it ran under (distribute.Distribution.to_json)
    xla: bool = False  # chunks of steps ran as XLA programs (mux_cost.xla_pays_off)


def set_determinism(seed: int) -> None:
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()




def losses_for(checked: Checked) -> dict:
    g = checked.graph
    out = {}
    for d in g.decoders:
        kind = g.modules[d].output.family
        if kind in ("bits", "gray", "table"):
            out[d] = keras.losses.BinaryCrossentropy(from_logits=True)
        elif kind == "onehot":
            out[d] = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        else:
            out[d] = keras.losses.MeanSquaredError()
    for a in checked.composition.aligns:  # consistency: aligned latents' deviation from their target -> 0
        out[a.output_name] = keras.losses.MeanSquaredError()
    return out


def compile_model(model: keras.Model, checked: Checked, lr: float | None = None,
                  optimizer: str | None = None, chunk_arrays=None, xla: bool = False,
                  steps: int | None = None) -> "ChunkTrainer | None":
    """Compile the model for training. With `chunk_arrays` (the (x, y, w) training arrays) returns the
    ChunkTrainer that trains it a chunk of steps per call, as one XLA program if `xla` and the model
    allows it. Without, Keras's `fit` loops over (x, y, w) batches with `steps_per_execution`:
    `eval_every`, or a divisor of it that also divides the phase's `steps`, so the phase can stop on
    its exact last step."""
    cfg = checked.train
    weights = {d: cfg.weights.get(d, 1.0) for d in checked.graph.decoders}
    weights.update({a.output_name: a.weight for a in checked.composition.aligns})
    chunked = chunk_arrays is not None
    per_execution = 1 if chunked else math.gcd(cfg.eval_every, steps or cfg.eval_every)
    rate = learning_rate(cfg, lr or cfg.lr, steps or cfg.steps)
    model.compile(optimizer=make_optimizer(optimizer or cfg.optimizer, rate), loss=losses_for(checked),
                  loss_weights=weights, steps_per_execution=per_execution, jit_compile=False)
    return ChunkTrainer(model, cfg.eval_every, chunk_arrays, xla=xla and xla_compiles(model)) if chunked else None


def xla_pays_off_for(checked: Checked, steps: int) -> bool:
    """mux_cost.xla_pays_off for this spec's size, a run of `steps`, on the device training uses. Decided
    before the model is built: `auto` multiplexers pick differently under XLA."""
    parameters = sum(estimate_parameters(m) for m in checked.graph.modules.values())
    return xla_pays_off(parameters, steps, training_device())


def xla_compiles(model: keras.Model) -> bool:
    """Whether XLA can compile the model's train step here: small enough (mux_cost.XLA_MAX_PARAMETERS), only
    multiplexers with static shapes (mux_cost.XLA_STRATEGIES), no `shift`/`rotate`/`zoom` and no text field
    (no XLA kernels for their image transform and string ops)."""
    from .augment import augments
    from .mux import Multiplexer
    from .ngrams import has_text_input

    strategies = {layer.strategy for layer in model._flatten_layers() if isinstance(layer, Multiplexer)}
    return (not augments(model) and not has_text_input(model) and strategies <= XLA_STRATEGIES
            and model.count_params() <= XLA_MAX_PARAMETERS)


class _Observer:
    """After each chunk of steps (chunks.py): E171 as soon as the loss is not finite; at each
    evaluation (`evaluation_due`, counted in blocks of `eval_every` steps) also a weight: evaluate
    every route, report, stop when exact (if asked)."""

    def __init__(self, model, checked, examples, total_steps, on_progress, should_stop):
        self.model = model
        self.checked, self.examples = checked, examples
        self.eval_examples = examples.take(examples.eval_index)
        self.eval_inputs = encode_inputs(checked, self.eval_examples.columns)
        self.predictor: Predictor | None = None
        self.total_steps = total_steps
        self.on_progress = on_progress
        self.should_stop = should_stop
        self.history: list[dict] = []
        self.report: dict | None = None
        self.steps_run = 0
        self.stopped_early = False
        self.interrupted = False
        self.started = time.perf_counter()
        self.until_exact = checked.train.until_exact
        self.phase: Phase | None = None
        self.sizes: list[int] = []
        self.longest_gap = max(1, total_steps // (checked.train.eval_every * EVALUATIONS_AT_LEAST))

    def begin_phase(self, phase: "Phase", sizes: list[int]) -> None:
        self.phase, self.sizes = phase, sizes
        self.until_exact = phase.until_exact
        self.stopped_early = False
        self.best_loss, self.stale = math.inf, 0

    def watch_loss(self, loss: float) -> None:
        """`until loss`: stop the phase once the evaluation loss has not improved for `patience` evaluations."""
        if loss < self.best_loss:
            self.best_loss, self.stale = loss, 0
            return
        self.stale += 1
        if self.stale >= self.checked.train.patience:
            self.stopped_early = True
            self.model.stop_training = True

    def evaluation_due(self, step: int, last_block: bool) -> bool:
        """Every block of `eval_every` steps while the accuracy moves; once it has stayed the same for n
        evaluations, every 2**n blocks, at most `longest_gap` (a run's evaluations number at least about
        EVALUATIONS_AT_LEAST, so short runs evaluate every block); always at a phase's last step.
        Decided from the history alone, so a resumed run evaluates where the whole run would have."""
        if last_block or not self.history:
            return True
        accuracies = [h["accuracy"] for h in self.history]
        unchanged = next((n for n, (a, b) in enumerate(zip(accuracies[::-1], accuracies[-2::-1])) if a != b),
                         len(accuracies) - 1)
        gap = min(self.longest_gap, 2 ** min(unchanged, 20))
        return step - self.history[-1]["step"] >= gap * self.checked.train.eval_every

    def blocks_before_evaluation(self, block: int, longest: int) -> int:
        """How many blocks from `block` on up to the next evaluation (counting its block), at most `longest`."""
        step = self.steps_run
        for count, index in enumerate(range(block, min(block + longest, len(self.sizes))), 1):
            step += self.sizes[index]
            if self.evaluation_due(step, index == len(self.sizes) - 1):
                return count
        return longest

    def end_chunk(self, block: int, steps: int, logs: dict) -> None:
        """After a chunk of `steps` steps that ended with block `block` of the phase."""
        first = (self.history[-1]["step"] if self.history else 0) + 1
        self.steps_run += steps
        losses = {k[:-5]: float(v) for k, v in logs.items() if k.endswith("_loss")}
        losses["total"] = float(logs.get("loss", np.nan))
        due = self.evaluation_due(self.steps_run, block == len(self.sizes) - 1)
        if not due:  # the weights are checked at evaluations, the loss after every chunk
            first = self.steps_run - steps + 1
        diverged(self.checked, self.phase, self.model, losses, first, self.steps_run, weights=due)
        if due:
            self.evaluate(losses)
        if self.should_stop and self.should_stop():
            self.interrupted = True
            self.model.stop_training = True

    def evaluate(self, losses: dict[str, float]) -> None:
        if self.predictor is None:  # compiled once per run, at its first evaluation
            self.predictor = Predictor(self.model, self.checked)
        outputs = self.predictor.encoded(self.eval_inputs)
        self.report = route_report(self.checked, self.eval_examples, outputs)
        if self.checked.train.until_loss:
            self.watch_loss(evaluation_loss(self.checked, self.eval_examples, outputs))
        aligns = {a.output_name for a in self.checked.composition.aligns}
        losses = {k: v for k, v in losses.items() if k in outputs or k in aligns or k == "total"}
        elapsed = time.perf_counter() - self.started
        self.history.append({"step": self.steps_run, "losses": losses, "accuracy": self.report["accuracy"]})
        if self.on_progress:
            self.on_progress(Progress(self.steps_run, self.total_steps, losses, self.report,
                                      self.steps_run / elapsed if elapsed else 0.0, elapsed))
        if self.until_exact and all_exact(self.report):
            self.stopped_early = True
            self.model.stop_training = True


def diverged(checked: Checked, phase: "Phase", model: keras.Model, losses: dict[str, float],
             first: int, last: int, weights: bool = True) -> None:
    """E171 if training has diverged: a loss or (if `weights`) a weight is NaN or infinite after steps first..last.
    Raised from inside `fit`, before the checkpoint callback, so neither a run nor a checkpoint of
    the broken weights is written."""
    bad_losses = sorted(name for name, value in losses.items() if not math.isfinite(value))
    bad_weights = [v.path for v in model.trainable_variables if not np.isfinite(v.numpy()).all()] if weights else []
    if not bad_losses and not bad_weights:
        return
    nan = any(math.isnan(losses[n]) for n in bad_losses)
    what = (f"the loss ({', '.join(bad_losses)}) is {'NaN' if nan else 'infinite'}" if bad_losses
            else f"weight {bad_weights[0]} is not finite")
    raise divergence_error(checked, phase, first, last, what)


def divergence_error(checked: Checked, phase: "Phase", first: int, last: int, what: str) -> TangleError:
    """E171 at the phase's statement (or `train`): where it diverged, what, and what to change."""
    where = f"at step {last}" if first == last else f"between steps {first} and {last}"
    phase_decls = [d for d in checked.spec.of(PhaseDecl) if d.name.text == phase.name]
    decls = phase_decls or checked.spec.of(TrainDecl)
    in_phase = f" in phase {phase.name}" if phase_decls else ""
    hints = [f"lower the learning rate ({phase.optimizer} {phase.lr:g}{in_phase})",
             "scale large targets or inputs down, or try another optimizer (adam is the most forgiving)",
             "`train ... eval_every 1` finds the exact step" if first != last else None]
    return TangleError([Diagnostic("E171", f"training diverged {where}: {what}; nothing was written",
                                   decls[0].span if decls else None, hints=[h for h in hints if h])])


def train(checked: Checked, examples: Examples, *, steps: int | None = None, seed: int | None = None,
          mux: str | None = None, on_progress: Callable[[Progress], None] | None = None,
          should_stop: Callable[[], bool] | None = None, model: keras.Model | None = None,
          tensorboard: str | None = None, checkpoint=None, strategy: str | None = None,
          devices: int | None = None,
          init_weights: Callable[[], dict[str, list[np.ndarray]] | None] | None = None) -> TrainResult:
    """Train jointly, phase by phase; `tensorboard` is a log directory for losses and per-route accuracy.

    Without `phase` statements there is one phase with the `train` settings. `steps` overrides the
    step count of every phase. Modules named by `freeze` never train; a phase's `modules` setting
    limits training to those modules for that phase. `init_weights` reads the weights the `init` run
    provides (module name: weights; the pipeline's) and is called once the strategy exists.
    `checkpoint`: a `tanglec.backend.checkpoint.Checkpointer` (resume; save every N steps and on SIGINT/SIGTERM).
    `strategy`/`devices`: tf.distribute strategy (default: the spec's, `default`) and, for `mirrored`, how
    many devices (docs/distributed.md); a `model` passed in must have been built in its scope.
    """
    cfg = checked.train
    seed = cfg.seed if seed is None else seed
    dist = make_strategy(strategy or cfg.strategy, devices)  # first: multiworker must start before TF runs
    set_determinism(seed)
    stream = getattr(examples, "stream", None)  # tanglec.data.stream: a large data file, read in chunks
    # Chunks of eval_every steps per call (ChunkTrainer, train_in_chunks) on one device with data in memory;
    # under tf.distribute each replica must see its own slice of every batch, so Keras loops there.
    chunked = dist.name == DEFAULT and stream is None
    phases = plan_phases(checked, steps)
    total = sum(p.steps for p in phases)
    xla = chunked and xla_pays_off_for(checked, total)
    if model is None:
        with dist.scope():  # variables mirrored on every replica
            model = build_model(checked, mux=mux, seed=seed, xla=xla)
    xla = xla and xla_compiles(model)  # a model passed in may hold multiplexers XLA can't compile
    loaded = load_init(model, (init_weights() if init_weights else None) or {})
    x, y, w = (training_arrays(checked, examples, examples.train_index) if stream is None
               else stream.fingerprint_arrays())
    fit_input_statistics(model, checked, examples, x, stream, seed, set(loaded))
    close_board = None
    if tensorboard:
        on_progress, close_board = tensorboard_hook(tensorboard, on_progress)
    observer = _Observer(model, checked, examples, total, on_progress, should_stop)
    if checkpoint is not None:
        checkpoint.start(model, observer, checked, (x, y, w), phases, seed=seed, mux=mux)
    started = time.perf_counter()
    try:
        for index, phase in enumerate(phases):
            set_trainable(model, checked, phase.modules)
            with dist.scope():  # the optimizer's variables too
                trainer = compile_model(model, checked, lr=phase.lr, optimizer=phase.optimizer,
                                        chunk_arrays=(x, y, w) if chunked else None, xla=xla, steps=phase.steps)
            dist.adapt(model)
            sizes = chunk_sizes(phase.steps, cfg.eval_every)
            observer.begin_phase(phase, sizes)
            blocks = len(sizes)
            rows = len(next(iter(x.values())))
            if chunked and cfg.batches == "grouped":
                keys = [x[s] for s in checked.graph.mux_selectors()] or [np.zeros(rows)]  # no selector: one route
                data = grouped_index_batches(np.stack(keys, 1), phase.batch, seed + index)
            elif chunked:
                data = index_batches(rows, phase.batch, seed + index)
            elif stream is None:
                data = dataset(x, y, w, phase.batch, seed + index)
            else:
                data = stream_dataset(stream, phase.batch, seed + index)
            initial = 0
            if checkpoint is not None:  # skip what the checkpoint already did (before distributing it)
                with dist.scope():
                    data, initial = checkpoint.enter_phase(index, data, blocks)
            if initial < blocks and chunked:
                train_in_chunks(trainer, in_blocks(data, cfg.eval_every), initial, observer, checkpoint)
            elif initial < blocks:
                ends = EpochChunks([observer] + ([checkpoint] if checkpoint is not None else []), sizes)
                model.fit(dist.prepare_dataset(data), steps_per_epoch=cfg.eval_every, epochs=blocks,
                          initial_epoch=initial, callbacks=[ends], verbose=0, shuffle=False)
            if observer.interrupted:
                break
    finally:
        if close_board:
            close_board()
    report = annotate_routes(checked, examples, observer.report)
    return TrainResult(model, observer.steps_run, report, observer.history, observer.stopped_early,
                       observer.interrupted, time.perf_counter() - started, loaded, dist.to_json(), xla=xla)


def run_metrics(checked: Checked, result: TrainResult, seed: int, streamed: bool) -> dict:
    """metrics.json of a run, as `tanglec compile` and `tanglec explore` write it."""
    comp = checked.composition
    modules = {"loaded": list(result.loaded),
               "new": sorted(checked.new_modules) if comp.init else sorted(checked.graph.modules),
               "frozen": sorted(comp.frozen)}
    return {"steps_run": result.steps_run, "seconds": result.seconds, "stopped_early": result.stopped_early,
            "seed": seed, "modules": modules, "history": result.history, "strategy": result.distribution,
            "xla": result.xla, "streamed": streamed}


@dataclass
class Phase:
    name: str
    steps: int
    lr: float
    optimizer: str
    modules: list[str] | None
    until_exact: bool
    batch: int


def plan_phases(checked: Checked, steps_override: int | None = None) -> list[Phase]:
    cfg = checked.train
    declared = checked.composition.phases
    if not declared:
        return [Phase("train", steps_override or cfg.steps, cfg.lr, cfg.optimizer, None, cfg.until_exact, cfg.batch)]
    return [Phase(p.name, steps_override or p.steps or cfg.steps, p.lr or cfg.lr, p.optimizer or cfg.optimizer,
                  p.modules, cfg.until_exact if p.until_exact is None else p.until_exact, p.batch or cfg.batch)
            for p in declared]


def set_trainable(model: keras.Model, checked: Checked, only: list[str] | None) -> None:
    """Frozen modules never train; in a phase with `modules`, only those do. An aligned module that does not
    train is its alignment's teacher (codegen.Disagreement)."""
    frozen = checked.composition.frozen
    layers = module_layers(model)
    trainable = {name: name not in frozen and (only is None or name in only) for name in layers}
    for name, layer in layers.items():
        layer.trainable = trainable[name]
    set_teachers(model, trainable)


def fit_input_statistics(model: keras.Model, checked: Checked, examples: Examples, x: dict, stream, seed: int,
                         loaded: set[str]) -> None:
    """`standardize` layers learn their statistics from the training rows (a streamed file: its first chunk's)."""
    modules = module_layers(model)
    if not any(isinstance(layer, Standardize) for m in modules.values() for layer in getattr(m, "layers", [])):
        return
    if stream is None:
        carried = {f: np.asarray(rows, bool)[examples.train_index] for f, rows in examples.present.items()}
    else:
        x, carried = next(stream.chunks(seed, 0), ({}, {}, {}))[0], {}
    fit_standardizers(modules, checked, x, carried, loaded, field_encoder)


def load_init(model: keras.Model, weights: dict[str, list[np.ndarray]]) -> list[str]:
    """Set each named module's weights (checks already matched the init run's shapes). A module no output
    needs (an encoder whose route ends at it, unaligned) is not in the model, so it loads nothing."""
    target = module_layers(model)
    for name, values in weights.items():
        if name in target:
            target[name].set_weights(values)
    return sorted(set(weights) & set(target))


def annotate_routes(checked: Checked, examples: Examples, report: dict | None) -> dict | None:
    """Mark each route trained / held-out / unseen, whether it runs through a new module, and its
    number of training rows."""
    if report is None:
        return None
    g = checked.graph
    new = checked.new_modules if checked.init_modules else set()
    streamed = getattr(examples, "route_rows", None)  # a streamed file or eval --data: the compile's counts
    for index, (route, entry) in enumerate(zip(g.routes(), report["routes"])):
        count = int(route_mask(g, examples.columns, route, examples.train_index).sum()) if streamed is None \
            else streamed[index]
        entry["training_rows"] = count
        entry["status"] = route_status(checked, route, count)
        entry["new_modules"] = [m for m in route.modules if m in new]
    return report


def tensorboard_hook(logdir: str, on_progress: Callable[[Progress], None] | None = None):
    """Wrap a progress hook so every evaluation also writes TensorBoard scalars to `logdir`:
    `loss/<decoder>`, `loss/total`, `accuracy/all` and `accuracy/route/<selector=value,...>`.
    Written with tf.summary.write and the scalars plugin's metadata, so the tensorboard package is
    needed only to view them. Returns (hook, close)."""
    from tensorflow.core.framework import summary_pb2

    meta = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")).SerializeToString()
    writer = tf.summary.create_file_writer(str(logdir))

    def scalar(tag: str, value) -> None:
        if value is not None:
            tf.summary.write(tag, tf.constant(float(value), tf.float32), metadata=meta)

    def hook(p: Progress) -> None:
        with writer.as_default(step=p.step):
            for name, value in p.losses.items():
                scalar(f"loss/{name}", value)
            scalar("accuracy/all", p.report.get("accuracy"))
            for r in p.report.get("routes", []):
                sel = ",".join(f"{k}={v}" for k, v in r["selection"].items()) or "direct"
                scalar(f"accuracy/route/{sel}", r["accuracy"])
        writer.flush()
        if on_progress:
            on_progress(p)

    return hook, writer.close
