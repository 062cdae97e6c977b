"""tf.data pipelines of training rows: a streamed data file (chunks from data.stream, shuffled across
chunks) and batches grouped by route."""
from __future__ import annotations

import itertools

import numpy as np
import tensorflow as tf

SHUFFLE_ROWS = 16_384  # rows in tf.data's shuffle buffer (on top of the permutation within a chunk)


def stream_dataset(stream, batch: int, seed: int) -> tf.data.Dataset:
    """Batches of a `data.stream.Stream`'s training rows, repeated forever; each pass over the file
    is a new epoch of its seeded permutation."""
    x, y, w = stream.probe()

    def spec(arrays):
        return {k: tf.TensorSpec((None,) + a.shape[1:], tf.as_dtype(a.dtype)) for k, a in arrays.items()}

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
