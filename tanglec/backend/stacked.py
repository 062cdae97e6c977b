"""The `stacked` multiplexer strategy and the fused Adam update that goes with it.

When every branch of a multiplexer is the same chain of Dense layers (same widths, activations and
biases), the K branches' weights are kept as one variable per layer, ``[K, in, out]`` kernels and
``[K, out]`` biases, and every layer runs each branch's own rows through its slice of the stack.
Rows never leave their own branch, so the outputs and the gradients are those of ``partition``.
How a layer runs depends on TensorFlow's CPU kernels. With Eigen (TensorFlow's default on x86 CPUs
without AVX-512's neural-network extensions, e.g. an AMD EPYC before Zen 4) the rows are sorted by
branch and split at the branch counts, and a layer is K small matmuls of each branch's exact rows on
slices of the stack, with the hand-written gradient of `branch_chain` (which `partition` uses for many
branches, on their own weights): Eigen's batched matmul of a few rows per batch is several times slower
in the forward pass. With oneDNN (``TF_ENABLE_ONEDNN_OPTS=1``; on by default on CPUs with AVX512_VNNI or
AVX512_BF16, newer Intel and Zen 4 AMD) a layer is one batched ``tf.linalg.matmul`` over a zero-padded
``[K, n_max, d]`` block of the rows, whose weight gradient is written straight into the ``[K, in, out]``
stack: at K = 32 (width 256, batch 256, Adam) a training step took 0.77-0.87 of the time of the K
matmuls, although the block holds ~2x the rows under random routing. A batch whose block would hold more
than `PADDED_ROWS_LIMIT` x its rows (a batch of one route holds K x), and a multiplexer of fewer than
`PADDED_MIN_BRANCHES` branches (whose few matmuls have many rows each), take the K matmuls there too.
The lazy update keeps the block (`lazy_stacked_forward`): it runs only the branches a batch uses, so
there is little padding.

The optimizer then sees one variable per layer instead of K: `FusedAdam` updates each with a single
``ResourceApplyAdam`` kernel (one pass over weights, gradient and both moments), which is Keras's
Adam arithmetic without its chain of element-wise ops.

A module inside a stack stays addressable by name: `BranchSlice` reads and writes slice k of the
stacked weights with the layer API that `init`, `freeze`, phases and transfer use (`get_weights`,
`set_weights`, `trainable`). Freezing a slice zeroes its gradient, so an optimizer whose update
is zero for a zero gradient and fresh moments (sgd, adam, rmsprop: every phase compiles a fresh
optimizer) leaves it exactly unchanged; adamw's decoupled weight decay would not, so the compiler
does not stack a multiplexer with frozen branches under adamw.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import keras
import numpy as np
import tensorflow as tf

from .branch_chain import PADDED_ROWS_LIMIT, chain_by_branch

PADDED_MIN_BRANCHES = 8  # with fewer branches the K matmuls are few and of many rows: no block


@dataclass(frozen=True)
class DenseSpec:
    """One Dense layer of a stackable branch."""
    units: int
    activation: str
    use_bias: bool


def stack_specs(branches) -> list[DenseSpec] | None:
    """The shared Dense chain of `branches`, or None when they cannot be stacked (another layer
    kind, regularizers or constraints, differing widths or activations)."""
    chains = [_dense_chain(b) for b in branches]
    if any(c is None for c in chains) or len({tuple(c) for c in chains}) != 1:
        return None
    return chains[0]


def _dense_chain(branch) -> tuple | None:
    if not isinstance(branch, keras.Model) or len(branch.inputs or []) != 1 or len(branch.outputs or []) != 1:
        return None
    in_dim = branch.inputs[0].shape[-1]
    specs = [in_dim]
    for layer in branch.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if type(layer) is not keras.layers.Dense:
            return None
        config = layer.get_config()
        if any(config.get(k) for k in ("kernel_regularizer", "bias_regularizer", "activity_regularizer",
                                       "kernel_constraint", "bias_constraint", "lora_rank")):
            return None
        activation = keras.activations.serialize(layer.activation)
        if not isinstance(activation, str):  # a custom activation object: keep the general path
            return None
        specs.append(DenseSpec(int(config["units"]), activation, bool(config["use_bias"])))
    # A functional model of Dense layers alone with one input and one output is a chain (a Dense
    # layer takes one tensor), listed in topological order.
    return tuple(specs) if len(specs) > 1 else None


def group_slots(index: tf.Tensor, n_branches: int):
    """(slots, n_max): slot ``[branch, rank]`` of every row (rank = its position among the rows of
    its branch, in batch order) and the largest branch's row count."""
    batch = tf.shape(index)[0]
    order = tf.argsort(index, stable=True)
    counts = tf.math.bincount(index, minlength=n_branches, maxlength=n_branches, dtype=tf.int32)
    starts = tf.cumsum(counts, exclusive=True)
    sorted_index = tf.gather(index, order)
    rank_sorted = tf.range(batch) - tf.gather(starts, sorted_index)
    rank = tf.scatter_nd(order[:, None], rank_sorted, [batch])
    return tf.stack([index, rank], axis=1), tf.reduce_max(tf.concat([counts, [0]], 0))


def stacked_forward(x, index, n_branches, layers, keep=None):
    """Rows of `x` through their branch's Dense chain; `layers` = [(spec, kernel, bias)] with stacked
    weights, `keep`: bool [K], False for frozen slices (their gradient is zeroed). With oneDNN and
    `PADDED_MIN_BRANCHES` or more branches, one batched matmul per layer on the rows' padded block
    unless the padding would multiply the rows by more than `PADDED_ROWS_LIMIT`; otherwise K
    matmuls of each branch's exact rows."""
    if n_branches < PADDED_MIN_BRANCHES or not onednn_enabled():
        return _split_forward(x, index, n_branches, layers, keep)
    slots, n_max = group_slots(index, n_branches)
    rows = tf.shape(x)[0]

    def padded():
        block = tf.scatter_nd(slots, x, tf.stack([n_branches, n_max, tf.shape(x)[-1]]))
        return tf.gather_nd(_through_layers(block, layers, keep), slots)

    return tf.cond(n_branches * n_max <= PADDED_ROWS_LIMIT * rows, padded,
                   lambda: _split_forward(x, index, n_branches, layers, keep))


@lru_cache(maxsize=1)
def onednn_enabled() -> bool:
    """Whether TensorFlow runs its CPU kernels with oneDNN (fixed when TensorFlow is imported)."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:  # pragma: no cover - a TensorFlow that moved it: keep the Eigen path
        return False
    return bool(_pywrap_util_port.IsMklEnabled())


def _split_forward(x, index, n_branches, layers, keep):
    """Rows sorted by branch and split at the branch counts; every layer is K matmuls of each
    branch's own rows with its slice of the stack (no padding: a skewed batch costs what a balanced
    one does), and a hand-written gradient (`branch_chain`)."""
    if keep is not None:
        layers = [(spec, _masked_gradient(kernel, keep), None if bias is None else _masked_gradient(bias, keep))
                  for spec, kernel, bias in layers]
    return chain_by_branch(x, index, n_branches, [spec for spec, _, _ in layers],
                           [(tf.convert_to_tensor(kernel), None if bias is None else tf.convert_to_tensor(bias))
                            for _, kernel, bias in layers])


def lazy_stacked_forward(x, index, layers, keep=None):
    """The stacked Dense chain over only the branches that hold rows of this batch, as one batched
    matmul per layer on a zero-padded ``[used, n_max, d]`` block of their rows: their slices are
    gathered from the stacked variables, so each variable's gradient is an `IndexedSlices` over those
    branches and `FusedAdam` moves only them (a lazy update). On a batch of one route that is one
    branch's matmuls and one slice's update, whatever K is."""
    used, local = tf.unique(index)
    slots, n_max = group_slots(local, tf.size(used))
    picked = [(spec, tf.gather(_resource(kernel), used), None if bias is None else tf.gather(_resource(bias), used))
              for spec, kernel, bias in layers]
    block = tf.scatter_nd(slots, x, tf.stack([tf.size(used), n_max, tf.shape(x)[-1]]))
    return tf.gather_nd(_through_layers(block, picked, None if keep is None else tf.gather(keep, used)), slots)


def _resource(variable):
    """The backend variable under a Keras variable: gathering from it gives a sparse gradient."""
    return variable.value if isinstance(variable, keras.Variable) else variable


def _through_layers(block, layers, keep):
    for spec, kernel, bias in layers:
        if keep is not None:
            kernel = _masked_gradient(kernel, keep)
        block = tf.linalg.matmul(block, kernel)
        if bias is not None:
            if keep is not None:
                bias = _masked_gradient(bias, keep)
            block = block + bias[:, None, :]
        block = keras.activations.get(spec.activation)(block)
    return block


def _masked_gradient(weight, keep):
    """Identity whose gradient is zero on the slices where `keep` is False."""
    @tf.custom_gradient
    def identity(w):
        def grad(dw):
            return tf.where(tf.reshape(keep, [-1] + [1] * (dw.shape.rank - 1)), dw, tf.zeros_like(dw))
        return tf.identity(w), grad

    return identity(tf.convert_to_tensor(weight))  # a tensor: the variable's own gradient flows through it


class BranchSlice:
    """Module k of a stacked multiplexer, with the layer API that init/freeze/phases use:
    `get_weights`/`set_weights` read and write slice k of the stacked weights (kernel, bias per
    Dense layer, as the module's own Keras model lists them); `trainable` freezes the slice."""

    def __init__(self, mux, k: int):
        self.mux, self.k = mux, k
        self.name = mux.branches[k].name

    def get_weights(self) -> list[np.ndarray]:
        return [np.asarray(w.numpy()[self.k]) for w in self.mux.stacked_weights()]

    def set_weights(self, weights) -> None:
        stacked = self.mux.stacked_weights()
        if len(weights) != len(stacked):
            raise ValueError(f"module {self.name} has {len(stacked)} weights, got {len(weights)}")
        for var, value in zip(stacked, weights):
            full = var.numpy()
            full[self.k] = np.asarray(value, dtype=full.dtype).reshape(full.shape[1:])
            var.assign(full)

    @property
    def trainable(self) -> bool:
        return self.mux.branches[self.k].trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self.mux.branches[self.k].trainable = bool(value)


@keras.saving.register_keras_serializable(package="tanglec")
class FusedAdam(keras.optimizers.Adam):
    """Keras's Adam, each variable updated by one fused ``ResourceApplyAdam`` kernel.

    Same arithmetic (``lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)`` after the moment
    updates) and the same optimizer variables, so checkpoints are interchangeable; variables the
    kernel cannot take (sparse gradients, amsgrad, distributed variables) use Keras's update."""

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        self._step_scalars = {}  # dtype -> this step's scalars, shared by all its variables' updates
        try:
            super()._backend_update_step(grads, trainable_variables, learning_rate)
        finally:
            self._step_scalars = None

    def _scalars(self, dtype, learning_rate) -> dict:
        """Step, lr, betas, their powers and epsilon as `dtype` tensors, built once per step: with
        many variables (one per branch and layer) the per-variable copies were most of the update's ops."""
        shared = getattr(self, "_step_scalars", None)
        if shared is not None and dtype in shared:
            return shared[dtype]
        step = tf.cast(self.iterations + 1, dtype)
        beta1, beta2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        scalars = {"step": step, "lr": tf.cast(learning_rate, dtype), "beta1": beta1, "beta2": beta2,
                   "beta1_power": tf.pow(beta1, step), "beta2_power": tf.pow(beta2, step),
                   "epsilon": tf.cast(self.epsilon, dtype)}
        if shared is not None:
            shared[dtype] = scalars
        return scalars

    def update_step(self, gradient, variable, learning_rate):
        target = variable.value if isinstance(variable, keras.Variable) else variable
        if self.amsgrad or not hasattr(target, "handle") or type(target).__name__ != "ResourceVariable":
            return super().update_step(gradient, variable, learning_rate)
        index = self._get_variable_index(variable)
        dtype = target.dtype
        scalars = self._scalars(dtype, learning_rate)
        if isinstance(gradient, tf.IndexedSlices):
            return self._lazy_update(gradient, target, index, scalars["step"], scalars["lr"])
        tf.raw_ops.ResourceApplyAdam(
            var=target.handle, m=self._momentums[index].value.handle, v=self._velocities[index].value.handle,
            beta1_power=scalars["beta1_power"], beta2_power=scalars["beta2_power"], lr=scalars["lr"],
            beta1=scalars["beta1"], beta2=scalars["beta2"], epsilon=scalars["epsilon"],
            grad=tf.cast(gradient, dtype), use_locking=False)

    def _lazy_update(self, gradient, target, index, step, learning_rate):
        """Adam on the rows a sparse gradient names, and only on them (as LazyAdam does): the other
        rows' weights and moments stay as they are, so a branch that saw no rows in a step neither
        moves nor decays its moments. Only `update lazy` gives sparse gradients (lazy_stacked_forward)."""
        rows, position = tf.unique(gradient.indices)
        grad = tf.math.unsorted_segment_sum(gradient.values, position, tf.size(rows))
        m, v = self._momentums[index].value, self._velocities[index].value
        b1, b2 = tf.cast(self.beta_1, target.dtype), tf.cast(self.beta_2, target.dtype)
        m_rows = b1 * tf.gather(m, rows) + (1 - b1) * grad
        v_rows = b2 * tf.gather(v, rows) + (1 - b2) * tf.square(grad)
        alpha = learning_rate * tf.sqrt(1 - tf.pow(b2, step)) / (1 - tf.pow(b1, step))
        m.scatter_update(tf.IndexedSlices(m_rows, rows))
        v.scatter_update(tf.IndexedSlices(v_rows, rows))
        target.scatter_sub(tf.IndexedSlices(alpha * m_rows / (tf.sqrt(v_rows) + self.epsilon), rows))
