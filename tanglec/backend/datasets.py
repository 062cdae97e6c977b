"""A streamed data file as a tf.data pipeline: chunks from data.stream, shuffled across chunks."""
from __future__ import annotations

import itertools

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
