"""K Dense chains over one batch, each row through its own branch's chain, the gradient written by hand.

`partition` (branches keep their own variables; many branches, `chain_pays_off`) and `stacked` on
Eigen (``[K, in, out]`` variables) run a multiplexer of same-shaped Dense chains this way: rows
sorted by branch and split at the branch counts, K matmuls per layer of each branch's exact rows,
then one bias add and one activation over all rows. TensorFlow's own gradient of that graph is slow
on Eigen CPUs for a few rows per branch, in two places: the input gradient ``dz @ w^T`` is a matmul
with a transposed right operand, ~1.7x slower than ``(w @ dz^T)^T`` at 8-16 rows (K = 32, width 256,
one thread), and a stacked kernel's gradient stacks K per-branch gradients (a copy of every kernel
per step). Here the input gradient is ``(w @ dz^T)^T`` per branch, and a stacked kernel's gradient
is one batched matmul on the rows' zero-padded ``[K, n_max, d]`` blocks. Same arithmetic as the
layers' own gradients (up to float summation order); a branch without rows gets exactly zero
gradient.
"""
from __future__ import annotations

import keras
import tensorflow as tf

PADDED_ROWS_LIMIT = 3  # a padded block of more rows than this x the batch's takes K matmuls instead
# `partition` runs its branches as a chain from this many branches and weights (all branches together):
# there the few rows per branch make TensorFlow's gradient slow (K = 8 to 64, width 256 or K = 32, width
# 64, batch 256: 12-18% more steps/s). With 2 branches (128 rows each), or 8 small ones, the sort and
# the extra ops cost more than they save (10-31% fewer steps/s; `bench/mux_sweep.py --tfgrad`).
CHAIN_MIN_BRANCHES = 8
CHAIN_MIN_PARAMETERS = 100_000


def chain_pays_off(branches) -> bool:
    """Whether `partition` should run `branches` (one Dense chain) by `chain_by_branch`."""
    weights = sum(b.count_params() for b in branches)
    return len(branches) >= CHAIN_MIN_BRANCHES and weights >= CHAIN_MIN_PARAMETERS


def chain_by_branch(x, index, n_branches, specs, layers):
    """Row i of `x` through the Dense chain of branch ``index[i]``. `specs`: the chain's DenseSpecs;
    `layers`: one ``(kernel, bias)`` per layer, each either a stacked tensor (``[K, in, out]``,
    ``[K, out]``) or a list of K per-branch tensors; bias None without one."""
    order = tf.argsort(index, stable=True)
    sorted_index = tf.gather(index, order)
    counts = tf.math.bincount(index, minlength=n_branches, maxlength=n_branches, dtype=tf.int32)
    inverse = tf.math.invert_permutation(order)
    y = _sorted_chain(_permuted(x, order, inverse), sorted_index, counts, n_branches, tuple(specs), layers)
    return _permuted(y, inverse, order)


def _permuted(x, permutation, inverse):
    """``x[permutation]``, whose gradient gathers by the inverse permutation: TensorFlow's own gradient
    of a gather is a scatter-add (an unsorted segment sum, ~3x the time of a gather of the rows)."""
    @tf.custom_gradient
    def permute(rows):
        return tf.gather(rows, permutation), lambda d_rows: tf.gather(d_rows, inverse)

    return permute(x)


def _sorted_chain(x, sorted_index, counts, n_branches, specs, layers):
    leaves = tf.nest.flatten(layers)
    present = [leaf is not None for leaf in leaves]

    @tf.custom_gradient
    def chain(x, *weights):
        given = iter(weights)
        own = tf.nest.pack_sequence_as(layers, [next(given) if p else None for p in present])
        inputs, pre_activations = [], []
        h = x
        for spec, (kernel, bias) in zip(specs, own):
            inputs.append(h)
            parts = tf.split(h, counts, num=n_branches)
            z = tf.concat([p @ w for p, w in zip(parts, _per_branch(kernel, n_branches))], 0)
            if bias is not None:
                z = z + tf.gather(bias if tf.is_tensor(bias) else tf.stack(bias), sorted_index)
            pre_activations.append(z)
            h = keras.activations.get(spec.activation)(z)

        def grad(dh):
            membership = tf.one_hot(sorted_index, n_branches, dtype=dh.dtype)  # [rows, K]
            grads = []
            for j in reversed(range(len(specs))):
                kernel, bias = own[j]
                dz = _activation_gradient(specs[j].activation, pre_activations[j], dh)
                dz_parts = tf.split(dz, counts, num=n_branches)
                bias_grad = None
                if bias is not None:
                    bias_grad = tf.linalg.matmul(membership, dz, transpose_a=True)  # per-branch row sums
                    bias_grad = bias_grad if tf.is_tensor(bias) else tf.unstack(bias_grad, num=n_branches)
                if tf.is_tensor(kernel):
                    kernel_grad = _stacked_kernel_gradient(inputs[j], dz, sorted_index, counts, n_branches)
                else:
                    kernel_grad = [tf.linalg.matmul(a, d, transpose_a=True)
                                   for a, d in zip(tf.split(inputs[j], counts, num=n_branches), dz_parts)]
                grads.append((kernel_grad, bias_grad))
                dh = tf.concat([tf.transpose(tf.linalg.matmul(w, d, transpose_b=True))
                                for w, d in zip(_per_branch(kernel, n_branches), dz_parts)], 0)
            flat = tf.nest.flatten(grads[::-1])
            return [dh] + [g for g, p in zip(flat, present) if p]

        return h, grad

    return chain(x, *[leaf for leaf in leaves if leaf is not None])


def _per_branch(weight, n_branches):
    return tf.unstack(weight, num=n_branches) if tf.is_tensor(weight) else weight


def _activation_gradient(activation, z, dh):
    """dh through the activation's derivative at z (recomputed: the gradient may be asked for more
    than once, and a recorded tape answers once)."""
    if activation == "linear":
        return dh
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(z)
        h = keras.activations.get(activation)(z)
    return tape.gradient(h, z, output_gradients=dh)


def _stacked_kernel_gradient(inputs, dz, sorted_index, counts, n_branches):
    """``[K, in, out]``: every branch's ``inputs^T @ dz`` over its own (sorted) rows, as one batched
    matmul on zero-padded blocks, or K matmuls stacked when the blocks would hold more than
    `PADDED_ROWS_LIMIT` x the rows (a batch of few routes)."""
    starts = tf.cumsum(counts, exclusive=True)
    slots = tf.stack([sorted_index, tf.range(tf.shape(sorted_index)[0]) - tf.gather(starts, sorted_index)], axis=1)
    n_max = tf.reduce_max(tf.concat([counts, [0]], 0))

    def batched():
        def block(t):
            return tf.scatter_nd(slots, t, tf.stack([n_branches, n_max, tf.shape(t)[-1]]))
        return tf.linalg.matmul(block(inputs), block(dz), adjoint_a=True)

    def per_branch():
        return tf.stack([tf.linalg.matmul(a, d, transpose_a=True) for a, d in
                         zip(tf.split(inputs, counts, num=n_branches), tf.split(dz, counts, num=n_branches))])

    return tf.cond(n_branches * n_max <= PADDED_ROWS_LIMIT * tf.shape(inputs)[0], batched, per_branch)
