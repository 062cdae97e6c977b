"""The multiplexer layer: per example, run exactly one of N branch sub-models.

A tangled network composes small modules per example: the example's selector
(an int) decides which module runs. :class:`Multiplexer` is that routing step
as a Keras layer, with three interchangeable execution strategies that compute
the same function and the same gradients (up to float rounding):

``where``
    Every branch runs on the whole batch and ``tf.where`` keeps, per row, the
    output of the selected branch. Uses the "double where" guard against the
    NaN-gradient leak of ``tf.where`` (TensorFlow issues #38349, #118674):
    each branch is fed zeros on the rows it does not own and its output is
    masked with ``tf.where`` (never multiplied by a mask), so an unselected
    branch that would produce inf/NaN on a row it does not own cannot poison
    the gradients (0 * inf). Cost: N x the work of one branch.
``partition``
    ``tf.dynamic_partition`` splits the rows by index, each branch runs on its
    own rows only, ``tf.dynamic_stitch`` puts the outputs back in order. Many
    branches that are the same chain of Dense layers run as one chain of K matmuls
    per layer with a hand-written gradient instead (:mod:`tanglec.backend.branch_chain`),
    each on its own variables.
``gather``
    Per branch, ``tf.where(index == k)`` gives its row ids, ``tf.gather_nd``
    takes the rows, the branch runs on them, and one ``tf.scatter_nd`` puts
    all outputs back into a ``[batch, d_out]`` tensor. Its gradient is
    written by hand (one ``gather_nd`` per branch) so that the train step
    also compiles with XLA (``jit_compile=True``).

``stacked``
    Branches that are the same chain of Dense layers keep their weights stacked
    (``[K, in, out]`` per layer, one optimizer update per layer); rows are sorted by
    branch and every layer runs each branch's rows through its slice
    (:mod:`tanglec.backend.stacked`). The branch models are then only the
    architecture and the names: the weights live in the stack. With ``lazy`` (``train update
    lazy``) a batch runs only the branches it routes rows to, and the optimizer moves only those.

``where`` and ``gather`` compile with XLA; on CPU that only pays off for tiny
models. Which strategy ``auto`` picks: for a multiplexer with many weights, on CPU
without XLA, the fastest in a measurement on the machine itself
(:mod:`tanglec.backend.mux_timing`); otherwise, and for when XLA pays off, the
cost model in :mod:`tanglec.backend.mux_cost`.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from .branch_chain import chain_by_branch, chain_pays_off
from .stacked import stacked_forward, lazy_stacked_forward, stack_specs

STRATEGIES = ("where", "partition", "gather", "stacked")

__all__ = ["STRATEGIES", "Multiplexer"]


@keras.saving.register_keras_serializable(package="tanglec")
class Multiplexer(keras.layers.Layer):
    """Per example, run exactly one of N branch sub-models, chosen by an int index.

    ``call([index, x_0, ..., x_{N-1}])``:

    * ``index``: int tensor ``[batch]`` (``[batch, 1]`` is accepted and
      flattened; int64 is cast to int32) with values in ``0..N-1``.
      Out-of-range values are an error for ``partition`` and ``stacked``; ``where`` and
      ``gather`` yield a zero row for them.
    * ``x_k``: float ``[batch, d_k]``, the input of branch k (the ``d_k`` may
      differ per branch). Passing the *same* tensor to several slots is
      detected and the routing work is shared.
    * returns ``[batch, d_out]``, row i = ``branches[index[i]](x_{index[i]})[i]``.
      All branches must map to the same ``d_out`` and dtype.

    Branches are ordinary Keras layers/models. They are tracked as sublayers
    (their weights are in ``trainable_weights``) but may also be used
    elsewhere in the enclosing model; weights are shared, not copied.

    Note: with ``where`` a branch also sees zero rows (the rows it does not
    own), so batch-statistics layers inside a branch (BatchNormalization)
    should use ``partition`` or ``gather``. The guard needs each branch to be
    finite, with finite derivatives, at a zero input (true for dense stacks).
    """

    def __init__(self, branches, strategy: str = "where", lazy: bool = False, **kwargs):
        super().__init__(**kwargs)
        branches = list(branches)
        if not branches:
            raise ValueError("Multiplexer needs at least one branch")
        if strategy not in STRATEGIES:
            raise ValueError(
                f"unknown multiplexer strategy {strategy!r}; expected one of {STRATEGIES}"
            )
        for b in branches:
            if not isinstance(b, keras.layers.Layer):
                raise TypeError(f"branch {b!r} is not a keras Layer")
        self.strategy = strategy
        self.lazy = bool(lazy) and strategy == "stacked"  # `update lazy`: only branches with rows move
        self._branches_loaded = False  # stacked: branch models just loaded from a file, the stack not yet
        if strategy == "stacked":
            self.specs = stack_specs(branches)
            if self.specs is None:
                raise ValueError("the stacked strategy needs branches that are the same chain of Dense layers")
            # not tracked: the stacked variables hold the weights, the branches name the modules
            self._untracked = _Untracked(branches)
        else:
            self._tracked_branches = branches  # a tracked list: branch weights are ours too
            # partition over many branches of one Dense chain: their own weights, run by branch_chain
            chain = strategy == "partition" and chain_pays_off(branches)
            self._chain_specs = stack_specs(branches) if chain else None

    @property
    def branches(self) -> list:
        return list(self._untracked.items) if self.strategy == "stacked" else list(self._tracked_branches)

    @property
    def n_branches(self) -> int:
        return len(self.branches)

    # ------------------------------------------------------------------ shapes
    def _check_arity(self, seq):
        if len(seq) != self.n_branches + 1:
            raise ValueError(
                f"Multiplexer with {self.n_branches} branches expects "
                f"[index, x_0, ..., x_{self.n_branches - 1}] "
                f"({self.n_branches + 1} inputs), got {len(seq)}"
            )

    def build(self, input_shape):
        self._check_arity(input_shape)
        for branch, shape in zip(self.branches, input_shape[1:]):
            if not branch.built:
                branch.build(tuple(shape))
        if self.strategy == "stacked":
            self._build_stack()
        self.built = True

    def _build_stack(self):
        """One [K, in, out] kernel and [K, out] bias per Dense layer, from the branches' weights."""
        per_branch = [[layer for layer in b.layers if isinstance(layer, keras.layers.Dense)] for b in self.branches]
        self._stack = []
        for j, spec in enumerate(self.specs[1:]):
            dense = [layers[j] for layers in per_branch]
            kernel = self._stacked_weight(f"stack{j}_kernel", [d.kernel for d in dense])
            bias = self._stacked_weight(f"stack{j}_bias", [d.bias for d in dense]) if spec.use_bias else None
            self._stack.append((spec, kernel, bias))

    def _stacked_weight(self, name, variables):
        with tf.init_scope():  # read eagerly, also when first built inside a tf.function
            value = np.stack([np.asarray(v.numpy()) for v in variables])
        return self.add_weight(shape=value.shape, name=name,
                               initializer=lambda shape, dtype=None: tf.constant(value, dtype=dtype))

    def stacked_weights(self) -> list:
        """The stacked variables in the order a branch lists its own weights (kernel, bias per layer)."""
        self._pull_loaded_branches()
        return self._stacked_variables()

    def _stacked_variables(self) -> list:
        return [w for _, kernel, bias in self._stack for w in (kernel, bias) if w is not None]

    def _branch_variables(self, k: int) -> list:
        return [w for layer in self.branches[k].layers if isinstance(layer, keras.layers.Dense)
                for w in (layer.kernel, layer.bias) if w is not None]

    # A weights file holds every multiplexer's weights branch by branch, whatever the strategy, so a
    # run loads with any strategy: a stacked multiplexer writes its slices into the branch models
    # before they are saved, and reads them back after they are loaded (Keras loads a layer's own
    # variables before its sublayers', hence the flag, honoured on the next call or slice access).
    def save_own_variables(self, store):
        if self.strategy != "stacked":
            return super().save_own_variables(store)
        if self.built:
            with tf.init_scope():
                for k in range(self.n_branches):
                    for var, stacked in zip(self._branch_variables(k), self._stacked_variables()):
                        var.assign(stacked[k])

    def load_own_variables(self, store):
        if self.strategy != "stacked":
            return super().load_own_variables(store)
        self._branches_loaded = True

    def _pull_loaded_branches(self):
        if self._branches_loaded:
            self._branches_loaded = False
            with tf.init_scope():
                per_branch = [self._branch_variables(k) for k in range(self.n_branches)]
                for j, stacked in enumerate(self._stacked_variables()):
                    stacked.assign(tf.stack([tf.convert_to_tensor(weights[j]) for weights in per_branch]))

    def compute_output_shape(self, input_shape):
        self._check_arity(input_shape)
        batch = input_shape[0][0] if len(input_shape[0]) else None
        out = None
        for branch, shape in zip(self.branches, input_shape[1:]):
            s = _branch_output_shape(branch, tuple(shape))
            if out is None:
                out = s
            elif tuple(out[1:]) != tuple(s[1:]):
                raise ValueError(
                    f"Multiplexer branches disagree on the output shape: {out} vs {s}"
                )
        return (batch,) + tuple(out[1:])

    # -------------------------------------------------------------------- call
    def call(self, inputs, training=None):
        inputs = list(inputs)
        self._check_arity(inputs)
        index = tf.reshape(tf.cast(inputs[0], tf.int32), [-1])
        xs = inputs[1:]
        if self.strategy == "where":
            y = self._call_where(index, xs, training)
        elif self.strategy == "partition":
            y = self._call_partition(index, xs, training)
        elif self.strategy == "stacked":
            y = self._call_stacked(index, xs)
        else:
            y = self._call_gather(index, xs, training)
        return y

    def _run(self, k, x, training):
        return self.branches[k](x, training=training)

    @staticmethod
    def _dedupe(xs):
        """slot -> position of the first slot holding the very same tensor."""
        first = []
        for i, x in enumerate(xs):
            j = next((j for j in range(i) if xs[j] is x), i)
            first.append(j)
        return first

    def _call_where(self, index, xs, training):
        # tf.compat.v1.where is the `Select` op: a rank-1 [batch] condition picks whole
        # rows, without the broadcasting machinery (shape, reduce, reshape ops) that
        # SelectV2 adds to the forward and gradient graphs.
        select = tf.compat.v1.where
        first = self._dedupe(xs)
        zeros = {}
        out = None
        for k, x in enumerate(xs):
            own = tf.equal(index, k)  # [batch]
            j = first[k]
            if j not in zeros:
                zeros[j] = tf.zeros_like(x)
            # first where: branch k sees zeros on the rows it does not own, so it does
            # not produce inf/NaN there (nor in its local derivatives)
            y = self._run(k, select(own, x, zeros[j]), training)
            # second where: a select (never a multiplication by a mask), so the gradient
            # into y is exactly 0 on the rows branch k does not own
            out = select(own, y, tf.zeros_like(y) if out is None else out)
        return out

    def _call_partition(self, index, xs, training):
        n = self.n_branches
        if self._chain_specs is not None:
            layers = [[(layer.kernel, layer.bias) for layer in b.layers if isinstance(layer, keras.layers.Dense)]
                      for b in self.branches]
            return chain_by_branch(_own_slot_rows(index, xs), index, n, self._chain_specs[1:], [
                ([tf.convert_to_tensor(per[j][0]) for per in layers],
                 None if layers[0][j][1] is None else [tf.convert_to_tensor(per[j][1]) for per in layers])
                for j in range(len(layers[0]))])
        batch = tf.shape(index)[0]
        row_parts = tf.dynamic_partition(tf.range(batch), index, n)
        first = self._dedupe(xs)
        parts = {}
        outs = []
        for k, x in enumerate(xs):
            j = first[k]
            if j not in parts:
                parts[j] = tf.dynamic_partition(x, index, n)
            outs.append(self._run(k, parts[j][k], training))
        return tf.dynamic_stitch(row_parts, outs)

    def _call_gather(self, index, xs, training):
        batch = tf.shape(index, out_type=tf.int64)[:1]
        rows, outs = [], []
        for k, x in enumerate(xs):
            r = tf.where(tf.equal(index, k))  # [n_k, 1] int64: the rows branch k owns
            rows.append(r)
            outs.append(self._run(k, tf.gather_nd(x, r), training))
        return _scatter_rows(rows, outs, batch)

    def _call_stacked(self, index, xs):
        x = _own_slot_rows(index, xs)
        self._pull_loaded_branches()
        keep = [b.trainable for b in self.branches]
        keep = None if all(keep) else tf.constant(keep)
        if self.lazy:
            return lazy_stacked_forward(x, index, self._stack, keep=keep)
        return stacked_forward(x, index, self.n_branches, self._stack, keep=keep)

    # ----------------------------------------------------------- serialization
    def get_config(self):
        config = super().get_config()
        if _in_object_sharing_scope():
            # Saving (`model.save`): Keras re-serializes whatever we return and
            # tracks shared objects by identity, but only for the dicts it
            # produces itself. Handing it the branch objects lets a branch that
            # is also used elsewhere in the model (or in another Multiplexer)
            # get a `shared_object_id`, so loading restores one shared object
            # instead of two copies. The resulting JSON is the same.
            branches = list(self.branches)
        else:
            branches = [keras.saving.serialize_keras_object(b) for b in self.branches]
        config.update({"branches": branches, "strategy": self.strategy, "lazy": self.lazy})
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        branches = [keras.saving.deserialize_keras_object(b) for b in config.pop("branches")]
        return cls(branches=branches, **config)


def _own_slot_rows(index, xs):
    """Row i of the slot its branch reads (the one input when all slots share it)."""
    if all(x is xs[0] for x in xs):
        return xs[0]
    return tf.gather_nd(tf.stack(xs), tf.stack([index, tf.range(tf.shape(index)[0])], axis=1))


class _Untracked:
    """Holds layers out of Keras's sight (no weight tracking, no saving)."""

    def __init__(self, items):
        self.items = tuple(items)


def _branch_output_shape(branch, shape):
    try:
        return tuple(branch.compute_output_shape(shape))
    except NotImplementedError:  # a custom layer without compute_output_shape: trace it
        return tuple(branch.compute_output_spec(keras.KerasTensor(shape)).shape)


def _scatter_rows(rows, outs, batch):
    """``out[rows[k][j]] = outs[k][j]``: one ``scatter_nd`` of all branch outputs.

    The rows of the branches are disjoint and cover the batch, so a single
    scatter of the concatenated outputs rebuilds the batch. The gradient is
    written by hand as one ``gather_nd`` per branch: the automatic gradient
    of ``tf.concat`` is a ``SplitV`` with data-dependent sizes, which XLA
    refuses (it needs them to be compile-time constants).
    """
    rows_all = tf.concat(rows, axis=0)

    @tf.custom_gradient
    def combine(*ys):
        y = tf.concat(ys, axis=0)
        shape = tf.concat([batch, tf.shape(y, out_type=tf.int64)[1:]], axis=0)

        def grad(dy):
            return tuple(tf.gather_nd(dy, r) for r in rows)

        return tf.scatter_nd(rows_all, y, shape), grad

    return combine(*outs)


def _in_object_sharing_scope() -> bool:
    try:
        from keras.src.backend.common import global_state
    except ImportError:  # pragma: no cover - a future Keras moved it
        return False
    return global_state.get_global_attribute("shared_objects/id_to_config_map") is not None
