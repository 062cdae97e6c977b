"""tf.data pipelines of training rows: arrays in memory (or their row indices, which the chunked loop
gathers), a streamed data file (chunks from data.stream, shuffled across chunks) and batches grouped by route."""
from __future__ import annotations

import itertools

import numpy as np
import tensorflow as tf

SHUFFLE_ROWS = 16_384  # rows in tf.data's shuffle buffer (on top of the permutation within a chunk)


def array_spec(array: np.ndarray) -> tf.TensorSpec:
    """The spec of a batch of `array`'s rows; a text field's rows are Python strings (dtype object)."""
    dtype = tf.string if array.dtype == object else tf.as_dtype(array.dtype)
    return tf.TensorSpec((None,) + array.shape[1:], dtype)


def index_batches(n: int, batch: int, seed: int) -> tf.data.Dataset:
    """Batches of row indices, shuffled as `dataset` shuffles rows (same seed, same order)."""
    ds = tf.data.Dataset.range(n).shuffle(n, seed=seed, reshuffle_each_iteration=True).repeat()
    return ds.batch(batch, drop_remainder=False)


def in_blocks(data: tf.data.Dataset, steps: int):
    """An endless iterator of [steps, batch] NumPy blocks of `data`'s batches of row indices (one
    block per `steps` training steps; the chunked loop trains one or more per call)."""
    return data.batch(steps, drop_remainder=True).prefetch(tf.data.AUTOTUNE).as_numpy_iterator()


def dataset(x, y, w, batch: int, seed: int) -> tf.data.Dataset:
    """Batches of the (x, y, w) training arrays held in memory, shuffled and repeated forever."""
    n = len(next(iter(x.values())))
    ds = tf.data.Dataset.from_tensor_slices((x, y, w))
    ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True).repeat()
    return ds.batch(batch, drop_remainder=False).prefetch(tf.data.AUTOTUNE)


def stream_dataset(stream, batch: int, seed: int) -> tf.data.Dataset:
    """Batches of a `data.stream.Stream`'s training rows, repeated forever; each pass over the file
    is a new epoch of its seeded permutation."""
    x, y, w = stream.probe()

    def spec(arrays):
        return {k: array_spec(a) for k, a in arrays.items()}

    epochs = itertools.count()

    def generate():
        yield from stream.chunks(seed, next(epochs))

    ds = tf.data.Dataset.from_generator(generate, output_signature=(spec(x), spec(y), spec(w)))
    ds = ds.repeat().unbatch().shuffle(SHUFFLE_ROWS, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch, drop_remainder=False).prefetch(2)


def grouped_index_batches(route_keys: np.ndarray, batch: int, seed: int) -> tf.data.Dataset:
    """Batches of row indices where every batch holds the rows of one route (`train batches grouped`),
    repeated forever. `route_keys`: [rows, selectors], the selector values that pick a row's route.

    Each epoch permutes every route's rows and cuts them into batches of `batch`; a route's last,
    short batch is filled with rows of the same route drawn at random, so every batch has the same
    size (a chunk stacks them). The epoch's batches then come in a random order: each route is
    visited about in proportion to its rows. Why: with a lazy update (`train update lazy`) a batch of
    one route moves one branch per multiplexer, which is what makes a step cheap at large K."""
    keys = route_keys.reshape(len(route_keys), -1)
    _, group = np.unique(keys, axis=0, return_inverse=True)
    members = [np.flatnonzero(group.reshape(-1) == g) for g in range(group.max() + 1)]

    def epoch_batches(rng: np.random.Generator) -> np.ndarray:
        out = []
        for rows in members:
            rows = rng.permutation(rows)
            short = -len(rows) % batch
            out.append(np.concatenate([rows, rng.choice(rows, short)]).reshape(-1, batch))
        blocks = np.concatenate(out)
        return blocks[rng.permutation(len(blocks))]

    def generate():
        for epoch in itertools.count():
            yield from epoch_batches(np.random.default_rng([seed, epoch]))

    return tf.data.Dataset.from_generator(generate, output_signature=tf.TensorSpec([batch], tf.int64))
