"""The `ngrams(n)` codec: a text field as a fixed-width vector a Dense layer can read.

A text is lowercased, each of its words is marked at both ends (`<seventy><three>` for "Seventy-three":
a word is a run of letters and digits), and it is cut into its character 2- and 3-grams (`<s`, `se`,
..., `<se`, `sev`, ..., `ee>`), so a word inside a text shares the pieces of the word alone; each n-gram is hashed (TensorFlow's
FarmHash fingerprint, the same on every machine and in every process) into one of n buckets, and the
bucket counts are scaled to unit length. Words that share pieces land near each other ("seventeen"
and "seventy" share `<se`, `sev`, `eve`, `ven`), so an encoder generalises to words it never saw, and
no vocabulary has to be listed in the spec or kept beside the model. Subword hashing of this kind is
fastText's (Bojanowski et al. 2017, "Enriching Word Vectors with Subword Information").

It is a layer of the model, so `eval`, `query`, `predict` and an exported model take the text itself.
Its string kernels have no XLA implementation: a model with a text field trains outside XLA.
"""
from __future__ import annotations

import keras
import tensorflow as tf

GRAM_SIZES = (2, 3)  # single letters, shared by most words, made unrelated words look alike
SEPARATORS = r"[^\pL\pN]+"  # what ends a word: any run of characters that are neither letters nor digits


@keras.saving.register_keras_serializable(package="tanglec")
class NgramEncode(keras.layers.Layer):
    """Strings [batch] -> float32 [batch, width]: hashed character n-gram counts, unit length."""

    def __init__(self, width: int, **kwargs):
        super().__init__(**kwargs)
        self.width = int(width)

    def call(self, text):
        words = tf.strings.regex_replace(tf.strings.lower(tf.reshape(text, [-1]), encoding="utf-8"), SEPARATORS, "><")
        marked = tf.strings.join(["<", words, ">"])
        chars = tf.strings.unicode_split(marked, "UTF-8", errors="replace")
        grams = tf.strings.ngrams(chars, ngram_width=GRAM_SIZES, separator="")
        buckets = tf.strings.to_hash_bucket_fast(grams, self.width)
        counts = tf.math.bincount(tf.cast(buckets, tf.int32), minlength=self.width, maxlength=self.width,
                                  dtype=tf.float32, axis=-1)
        return tf.math.l2_normalize(tf.reshape(counts, [-1, self.width]), axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.width)

    def get_config(self):
        return {**super().get_config(), "width": self.width}


def has_text_input(model: keras.Model) -> bool:
    """Whether the model reads a text field (its string kernels keep the train step out of XLA)."""
    return any(isinstance(layer, NgramEncode) for layer in model._flatten_layers())
