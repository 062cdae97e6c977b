"""A trained model's raw decoder outputs for example columns, through one compiled function."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ..data.features import encode_inputs
from ..spec.checks import Checked
from .datasets import array_spec


class Predictor:
    """The model's decoder outputs as a `tf.function` traced once (any number of rows), built once per
    run and called for every evaluation or chunk of a file.

    Why: an eager model call dispatches every layer's ops from Python, which on small models costs
    many times the arithmetic; a traced graph runs them as one call.
    """

    def __init__(self, model: keras.Model, checked: Checked, batch: int = 4096):
        self.model, self.checked, self.batch = model, checked, batch
        self.decoders = set(checked.graph.decoders)
        self._call = None

    def _compile(self, x: dict[str, np.ndarray]):
        signature = {k: array_spec(v) for k, v in x.items()}

        def outputs(inputs):
            out = self.model(inputs, training=False)
            return {k: v for k, v in out.items() if k in self.decoders}

        return tf.function(outputs, input_signature=[signature])

    def encoded(self, x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Raw outputs for inputs already encoded (`encode_inputs`), `batch` rows per call."""
        if self._call is None:
            self._call = self._compile(x)
        return _in_batches(self._call, x, self.batch, self.decoders)

    def __call__(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.encoded(encode_inputs(self.checked, columns))


def predict_raw(model: keras.Model, checked: Checked, columns: dict[str, np.ndarray],
                batch: int = 4096) -> dict[str, np.ndarray]:
    """Raw decoder outputs for every row by direct model calls: for a one-off table (a query, a
    run's evaluation) they cost less than tracing a `Predictor`."""
    call = lambda chunk: model({k: tf.constant(v) for k, v in chunk.items()}, training=False)  # noqa: E731
    return _in_batches(call, encode_inputs(checked, columns), batch, set(checked.graph.decoders))


def _in_batches(call, x: dict[str, np.ndarray], batch: int, decoders: set[str]) -> dict[str, np.ndarray]:
    """The decoders' outputs of `call` over `x`, `batch` rows at a time, concatenated."""
    n = len(next(iter(x.values())))
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, n, batch):
        for k, v in call({k: v[start:start + batch] for k, v in x.items()}).items():
            if k in decoders:
                parts.setdefault(k, []).append(np.asarray(v))
    return {k: np.concatenate(v) for k, v in parts.items()}
