"""Checked spec -> Keras functional model (imports TensorFlow; load this module lazily).

Inputs are the raw fields and selectors keyed by their spec names; codecs are applied inside the
model by serializable layers, so a saved model takes exactly what a person would type. Each module
is its own sub-model named after the spec (weights load by name), and each multiplexer is a
`Multiplexer` layer whose strategy is a compiler choice.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ..data.codecs import table_rows
from ..lang import ast
from ..lang.vocabulary import AUGMENT_LAYERS
from ..spec.check_limits import estimate_parameters
from ..spec.checked import Checked
from ..spec.graph import codec_width
from .augment import augmentation_layer
from .mux import Multiplexer
from .mux_cost import choose_strategy
from .mux_timing import MEASURE_MIN_PARAMETERS, measured_candidates, measured_strategy
from .ngrams import NgramEncode
from .stacked import BranchSlice, stack_specs
from .standardize import Standardize


@keras.saving.register_keras_serializable(package="tanglec")
class ResidualAdd(keras.layers.Layer):
    """x + f(x) for `residual(...)`. Not keras.layers.Add: Keras's TensorFlow `add` takes a (0, n) operand
    (a multiplexer branch no row of the batch takes) for a bias vector and fails in `bias_add`."""

    def call(self, inputs):
        shortcut, branch = inputs
        return tf.add(shortcut, branch)


@keras.saving.register_keras_serializable(package="tanglec")
class Encode(keras.layers.Layer):
    """A raw field -> the float features a module's input codec asks for."""

    def __init__(self, codec: str, size: int = 1, lo: float = 0.0, hi: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.codec, self.size, self.lo, self.hi = codec, int(size), float(lo), float(hi)

    def call(self, x):
        if self.codec in ("bits", "gray"):
            shifts = tf.range(self.size - 1, -1, -1, dtype=tf.int32)
            xi = tf.cast(x, tf.int32)[:, None]
            if self.codec == "gray":  # reflected binary code: neighbours differ in one bit
                xi = tf.bitwise.bitwise_xor(xi, tf.bitwise.right_shift(xi, 1))
            return tf.cast(tf.bitwise.bitwise_and(tf.bitwise.right_shift(xi, shifts), 1), tf.float32)
        if self.codec == "onehot":
            return tf.one_hot(tf.cast(x, tf.int32), self.size, dtype=tf.float32)
        if self.codec == "scalar":
            span = self.hi - self.lo if self.hi != self.lo else 1.0
            return tf.reshape((tf.cast(x, tf.float32) - self.lo) / span, (-1, 1))
        return tf.cast(x, tf.float32)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size)

    def get_config(self):
        return {**super().get_config(), "codec": self.codec, "size": self.size, "lo": self.lo, "hi": self.hi}


@keras.saving.register_keras_serializable(package="tanglec")
class TableEncode(keras.layers.Layer):
    """A field's value -> its row of a table codec (`patterns[value - offset]`, as float bits)."""

    def __init__(self, patterns: list[list[float]], offset: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.patterns = [[float(b) for b in row] for row in patterns]
        self.offset = int(offset)

    def call(self, x):
        index = tf.cast(x, tf.int32) - self.offset
        return tf.gather(tf.constant(self.patterns, tf.float32), index)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], len(self.patterns[0]))

    def get_config(self):
        return {**super().get_config(), "patterns": self.patterns, "offset": self.offset}


@keras.saving.register_keras_serializable(package="tanglec")
class Disagreement(keras.layers.Layer):
    """Aligned latents -> each one's deviation from the target, concatenated, in units of the latents'
    spread across the batch (trained towards 0 by a mean squared error).

    The target is the mean of the fixed latents — teachers, whose module does not train in this phase
    (`freeze`, or a phase's `modules`) — under stop-gradient, so a new encoder is pulled onto a trained
    one's latent and nothing pulls the teacher; with no teacher it is the mean of all of them.

    Why the spread: a raw squared disagreement scales with the latents' size, which training sets, so
    the weight that made it count differed from spec to spec (x in 0..99: weight 1 left the held-out
    route at 9% after 600 steps and 43% after 1500, weight 10 reached 100%). Divided by the reference
    latents' variance across the batch (per component, averaged), the term is a ratio that reads the
    same at any scale: 0 when aligned, about 1/2 for two unrelated peers of one spread. The gradient
    flows through the spread: with it stopped, the pull grows as the latents shrink, and at weight 10
    the encoders collapsed to a point (8.5% on every route); through it, shrinking the spread raises
    the term, so alignment can't be bought by collapse. `sources` names each latent's module, so
    training can say which are fixed (`set_teachers`); docs/language.md has the measurements.
    """

    SPREAD_FLOOR = 1e-4  # a batch whose target latents are (nearly) all equal: no division by ~0

    def __init__(self, sources: list[str] | None = None, fixed: list[bool] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.sources = list(sources or [])
        self.fixed = [bool(f) for f in (fixed or [False] * len(self.sources))]

    def call(self, latents):
        teachers = [k for k, fixed in enumerate(self.fixed) if fixed]
        stacked = tf.stack([tf.stop_gradient(t) if k in teachers else t for k, t in enumerate(latents)],
                           axis=1)  # (batch, latents, width)
        reference = tf.gather(stacked, teachers, axis=1) if teachers else stacked
        target = tf.reduce_mean(reference, axis=1, keepdims=True)
        spread = tf.reduce_mean(tf.math.reduce_variance(reference, axis=0))
        deviation = (stacked - target) / tf.sqrt(spread + self.SPREAD_FLOOR)
        return tf.reshape(deviation, (-1, len(latents) * latents[0].shape[-1]))

    def compute_output_shape(self, input_shapes):
        return (input_shapes[0][0], len(input_shapes) * input_shapes[0][-1])

    def get_config(self):
        return {**super().get_config(), "sources": self.sources, "fixed": self.fixed}


@keras.saving.register_keras_serializable(package="tanglec")
class BranchIndex(keras.layers.Layer):
    """A chain position's selector codes -> its multiplexer's branch indexes (an identity value maps to
    branch 0, whose output PassThrough then discards)."""

    def __init__(self, table: list[int], **kwargs):
        super().__init__(**kwargs)
        self.table = [int(t) for t in table]

    def call(self, selector):
        return tf.gather(tf.constant(self.table, tf.int32), tf.cast(selector, tf.int32))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "table": self.table}


@keras.saving.register_keras_serializable(package="tanglec")
class PassThrough(keras.layers.Layer):
    """A chain position's output: the multiplexer's, or the position's input where the selector chose the
    identity (masking: such rows run branch 0 too, and `tf.where` keeps their gradient out of it)."""

    def __init__(self, identity_codes: list[int], **kwargs):
        super().__init__(**kwargs)
        self.identity_codes = [int(c) for c in identity_codes]

    def call(self, inputs):
        selector, before, after = inputs
        keep = tf.reduce_any(tf.equal(tf.cast(selector, tf.int32)[:, None],
                                      tf.constant(self.identity_codes, tf.int32)[None, :]), axis=1)
        return tf.where(keep[:, None], before, after)

    def compute_output_shape(self, input_shapes):
        return input_shapes[1]

    def get_config(self):
        return {**super().get_config(), "identity_codes": self.identity_codes}


def module_layers(model: keras.Model) -> dict[str, keras.Model | BranchSlice]:
    """Each module's weights by name, wherever they sit: its sub-model (top level or inside a
    multiplexer), or its slice of a stacked multiplexer (same get/set_weights and trainable)."""
    found: dict[str, keras.Model | BranchSlice] = {}
    stack = list(model.layers)
    while stack:
        layer = stack.pop()
        if isinstance(layer, Multiplexer) and layer.strategy == "stacked":
            found.update({b.name: BranchSlice(layer, k) for k, b in enumerate(layer.branches)})
        elif isinstance(layer, Multiplexer):
            stack += list(layer.branches)
        elif isinstance(layer, keras.Model):
            found[layer.name] = layer
    return found


def field_input(name: str, t: ast.FieldType):
    if isinstance(t, ast.VectorType):
        return keras.Input(shape=(t.size,), dtype="float32", name=name)
    if isinstance(t, ast.TextType):
        return keras.Input(shape=(), dtype="string", name=name)
    dtype = "float32" if isinstance(t, ast.FloatType) else "int32"
    return keras.Input(shape=(), dtype=dtype, name=name)


def field_encoder(field: ast.InputDecl, codec: ast.Codec, name: str) -> Encode | TableEncode | NgramEncode:
    t = field.type
    if codec.kind.text == "ngrams":
        return NgramEncode(codec_width(codec), name=name)
    if codec.table is not None:
        offset, patterns = table_rows(codec.table, t)
        return TableEncode(patterns.tolist(), offset, name=name)
    lo, hi = 0.0, 1.0
    if isinstance(t, (ast.IntType, ast.FloatType)) and t.lo is not None:
        lo, hi = float(t.lo), float(t.hi)
    return Encode(codec.kind.text, codec_width(codec), lo, hi, name=name)


def module_model(decl: ast.ModuleDecl, seed: int) -> keras.Model:
    """One module as a small functional model; layer names are stable so weights load by name."""
    inp = keras.Input(shape=(codec_width(decl.input),), name=f"{decl.name.text}_in")
    counter = iter(range(10_000))

    def stack(x, layers):
        for layer in layers:
            kind = layer.kind.text
            idx = next(counter)
            init = keras.initializers.GlorotUniform(seed=seed * 7919 + idx)
            if kind == "dense" and len(x.shape) == 4:  # an image into a dense layer: flat again
                x = keras.layers.Flatten(name=f"flatten_{idx}")(x)
            if kind == "image":
                x = keras.layers.Reshape(tuple(layer.args) + (1,) * (3 - len(layer.args)), name=f"image_{idx}")(x)
            elif kind == "conv2d":
                act = layer.args[2].text if len(layer.args) > 2 else None
                x = keras.layers.Conv2D(layer.args[0], layer.args[1], padding="same",
                                        activation=None if act == "linear" else act, kernel_initializer=init,
                                        name=f"conv2d_{idx}")(x)
            elif kind == "pool":
                x = keras.layers.MaxPooling2D(layer.args[0], name=f"pool_{idx}")(x)
            elif kind == "dense":
                act = layer.args[1].text if len(layer.args) > 1 else None
                x = keras.layers.Dense(layer.args[0], activation=None if act == "linear" else act,
                                       kernel_initializer=init, name=f"dense_{idx}")(x)
            elif kind == "dropout":
                x = keras.layers.Dropout(float(layer.args[0]), seed=seed + idx, name=f"dropout_{idx}")(x)
            elif kind in AUGMENT_LAYERS:
                x = augmentation_layer(kind, float(layer.args[0]), tuple(x.shape[1:3]), seed + idx,
                                       f"{kind}_{idx}")(x)
            elif kind == "norm":
                x = keras.layers.LayerNormalization(name=f"norm_{idx}")(x)
            elif kind == "standardize":
                x = Standardize(name=f"standardize_{idx}")(x)
            elif kind == "residual":
                x = ResidualAdd(name=f"residual_{idx}")([x, stack(x, layer.children)])
        return x

    out = stack(inp, decl.layers)
    if len(out.shape) == 4:  # a module ends flat: its output codec is a vector of features
        out = keras.layers.Flatten(name="flatten_out")(out)
    return keras.Model(inp, out, name=decl.name.text)


def build_model(checked: Checked, mux: str | None = None, batch_size: int | None = None,
                seed: int | None = None, xla: bool = False) -> keras.Model:
    """The whole tangle as one functional model: dict of raw inputs -> dict of decoder outputs.
    `xla`: training will compile it with XLA, which changes what `auto` multiplexers pick."""
    g = checked.graph
    seed = checked.train.seed if seed is None else seed
    strategy_default = mux or checked.train.mux
    inputs = {n: field_input(n, d.type) for n, d in g.inputs.items()}
    inputs.update({n: keras.Input(shape=(), dtype="int32", name=n) for n in g.mux_selectors()})
    modules = {name: module_model(decl, seed + i) for i, (name, decl) in enumerate(g.modules.items())}
    tensors: dict[str, object] = {}
    chain_steps: dict[str, list] = {}  # chain id -> its latent after each position
    encoders: dict[tuple[str, str], Encode] = {}

    def feed(producer: str, consumer: str):
        """The tensor `consumer` reads from `producer` (an input field is encoded by the consumer's codec)."""
        if g.kind(producer) == "input":
            codec = g.modules[consumer].input
            key = (producer, str(codec))
            if key not in encoders:
                label = f"encode_{producer}_{codec.kind.text}{codec.size or ''}"
                encoders[key] = field_encoder(g.inputs[producer], codec, label)
            return encoders[key](inputs[producer])
        if g.kind(producer) == "module" and producer in soft:
            return soft[producer]
        return tensors[producer]

    # A decoder's output read by another module arrives as its codec's soft form (probabilities for
    # onehot, per-bit probabilities for bits/gray), i.e. what that codec's encoder would have fed.
    soft: dict[str, object] = {}
    for producer in g.modules:
        kind = g.modules[producer].output.family
        if kind in ("onehot", "bits", "gray", "table") and any(g.kind(s) == "module" for s in g.successors(producer)):
            soft[producer] = None

    for node in g.topological():
        kind = g.kind(node)
        if kind == "input":
            tensors[node] = inputs[node]
        elif kind == "mux" and g.muxes[node].is_chain:
            mux_node = g.muxes[node]
            branch_modules = [b.module.text for b in mux_node.branches if not b.identity]
            x = feed(_chain_producer(g, node, branch_modules[0]), branch_modules[0])
            layer = _mux_layer(checked, node, branch_modules, modules, strategy_default, batch_size, xla)
            steps = []
            for position, selector in enumerate(mux_node.selectors, 1):
                values = [v.text for v in g.selectors[selector.text].values]
                table = [branch_modules.index(mux_node.module_for(v)) if mux_node.module_for(v) else 0
                         for v in values]
                index = BranchIndex(table, name=f"{layer.name}_index{position}")(inputs[selector.text])
                out = layer([index, *([x] * len(branch_modules))])
                identity = [k for k, v in enumerate(values) if mux_node.module_for(v) is None]
                if identity:
                    out = PassThrough(identity, name=f"{layer.name}_pass{position}")([inputs[selector.text], x, out])
                x = out
                steps.append(x)
            tensors[node], chain_steps[node] = x, steps
        elif kind == "mux":
            mux_node = g.muxes[node]
            values = [v.text for v in g.selectors[mux_node.selector.text].values]
            branch_modules = [mux_node.module_for(v) for v in values]
            branch_inputs = []
            for m in branch_modules:
                producer = next(p for p in g.predecessors(m) if _feeds_branch(g, p, m, node))
                branch_inputs.append(feed(producer, m))
            layer = _mux_layer(checked, node, branch_modules, modules, strategy_default, batch_size, xla)
            tensors[node] = layer([inputs[mux_node.selector.text], *branch_inputs])
        elif _needed_standalone(g, node):
            preds = g.predecessors(node)
            producer = next((p for p in preds if not g.edge(p, node).get("mux")), preds[0])
            tensors[node] = modules[node](feed(producer, node))
            if node in soft:
                activation = "softmax" if g.modules[node].output.kind.text == "onehot" else "sigmoid"
                soft[node] = keras.layers.Activation(activation, name=f"{node}_{activation}")(tensors[node])
    outputs = {d: tensors[d] for d in g.decoders if d in tensors}
    for group in checked.composition.aligns:
        if group.chain is None:  # each module encodes the field it reads: a label alignment's differ
            latents = [modules[m](feed(field, m)) for m, field in zip(group.modules, group.reads)]
            outputs[group.output_name] = Disagreement(group.modules, _fixed(checked, group.modules),
                                                      name=group.output_name)(latents)
            continue
        inputs.update({name: keras.Input(shape=(), dtype="int32", name=name) for name in group.step_inputs})
        parts = []
        for name, latent in zip(group.step_inputs, chain_steps[group.chain]):
            for m in group.modules:
                field = g.encoded_field(m)
                encode = field_encoder(g.inputs[field], g.modules[m].input, f"encode_{name}_{m}")
                sources = [group.chain, m]
                parts.append(Disagreement(sources, _fixed(checked, sources), name=f"{group.output_name}_{name}_{m}")(
                    [latent, modules[m](encode(inputs[name]))]))
        outputs[group.output_name] = keras.layers.Concatenate(name=group.output_name)(parts)
    for name in checked.composition.frozen:
        modules[name].trainable = False
    return keras.Model(inputs=inputs, outputs=outputs, name="tangle")


def _fixed(checked: Checked, sources: list[str]) -> list[bool]:
    """Which aligned latents are teachers at the start of training: those of frozen modules."""
    return [name in checked.composition.frozen for name in sources]


def set_teachers(model: keras.Model, trainable: dict[str, bool]) -> None:
    """Mark each alignment's latents of modules that don't train (`trainable`: module -> whether it
    trains in this phase) as fixed teachers. Read when the train step is traced, so call it before
    compiling the phase."""
    for layer in model._flatten_layers():
        if isinstance(layer, Disagreement):
            layer.fixed = [not trainable.get(source, True) for source in layer.sources]


def _mux_layer(checked: Checked, node: str, branch_modules: list[str], modules: dict, strategy_default: str,
               batch_size: int | None, xla: bool) -> Multiplexer:
    """The Multiplexer of a multiplexer node; a chain calls the one layer at every position, so every
    position runs the same modules with the same weights, whatever the strategy. Under `train update
    lazy`, `auto` stacks whatever can be stacked: only a stack has the per-branch slices that a lazy
    update moves one by one."""
    mux_node = checked.graph.muxes[node]
    strategy = mux_node.strategy.text if mux_node.strategy else strategy_default
    stackable = _stackable(checked, node, branch_modules, modules)
    lazy = checked.train.update == "lazy"
    if strategy == "auto" and lazy and stackable:
        strategy = "stacked"
    elif strategy == "auto":
        flops = float(np.mean([_flops(checked.graph.modules[m]) for m in branch_modules]))
        batch = batch_size or checked.train.batch
        device = training_device()
        strategy = choose_strategy(len(branch_modules), batch, flops, device=device, xla=xla, stackable=stackable)
        parameters = sum(estimate_parameters(checked.graph.modules[m]) for m in set(branch_modules))
        if device == "CPU" and not xla and parameters >= MEASURE_MIN_PARAMETERS:
            strategy = measured_strategy([modules[m] for m in branch_modules],
                                         measured_candidates(len(branch_modules), stackable), batch,
                                         checked.train.optimizer, checked.train.batches == "grouped") or strategy
    elif strategy == "stacked" and not stackable:
        strategy = "partition"
    return Multiplexer([modules[m] for m in branch_modules], strategy=strategy, lazy=lazy,
                       name=f"mux_{mux_node.selector.text}_{node.rsplit(':', 1)[1]}")


def serving_model(checked: Checked, model: keras.Model) -> keras.Model:
    """The model a user calls: raw fields and selectors in, decoder outputs out. A chain alignment's
    inputs (a fold's value after each position) are training-only, so a model with them is cut down
    to the part the decoders need (same layers, same weights)."""
    g = checked.graph
    names = [*g.inputs, *g.mux_selectors()]
    if set(model.input) == set(names):
        return model
    return keras.Model({n: model.input[n] for n in names},
                       {d: model.output[d] for d in g.decoders if d in model.output}, name=model.name)


def _stackable(checked: Checked, mux_id: str, branch_modules: list[str], modules: dict) -> bool:
    """Whether a multiplexer's branches can live in one stack: distinct modules of the same Dense
    chain, each used only as a branch of this multiplexer (a stack holds the only copy of the
    weights), and no slice frozen while others train under adamw (its weight decay moves a
    slice whose gradient is zero)."""
    g = checked.graph
    if len(set(branch_modules)) != len(branch_modules) or stack_specs([modules[m] for m in branch_modules]) is None:
        return False
    aligned = {m for group in checked.composition.aligns for m in group.modules}
    for m in branch_modules:
        if m in aligned or _needed_standalone(g, m) or any(s != mux_id for s in g.successors(m)):
            return False
    optimizers = {checked.train.optimizer} | {p.optimizer for p in checked.composition.phases if p.optimizer}
    partial = bool(checked.composition.frozen) or any(p.modules for p in checked.composition.phases)
    return not ("adamw" in optimizers and partial)


def _chain_producer(g, chain: str, branch: str) -> str:
    """What enters a chain: the producer of its branch modules (and of its identity edge, if any)."""
    return next(p for p in g.predecessors(branch) if _feeds_branch(g, p, branch, chain))


def _feeds_branch(g, producer: str, module: str, mux_id: str) -> bool:
    return g.edge(producer, module).get("mux") == mux_id


def _needed_standalone(g, module: str) -> bool:
    """A module runs on its own (outside a multiplexer) when it is fed or read directly."""
    fed_directly = any(not g.edge(p, module).get("mux") for p in g.predecessors(module))
    read_directly = any(g.kind(s) != "mux" for s in g.successors(module)) or module in g.decoders
    return fed_directly or read_directly


def training_device() -> str:
    """"GPU" when TensorFlow sees one (Keras then places the model there), else "CPU"."""
    return "GPU" if tf.config.list_physical_devices("GPU") else "CPU"


def _flops(decl: ast.ModuleDecl) -> float:
    return 2.0 * estimate_parameters(decl)


