"""`standardize`: an encoder's input values scaled by their mean and spread over the training rows.

Sensor readings, prices or counts come in units whose sizes differ by orders of magnitude; a network
trained on them as they are learns slowly or not at all. The statistics are the layer's weights, set
once before training and never trained, so they are saved with the run: eval, query, predict and export
scale a row exactly as training did, and an `init` run brings its module's statistics along.
"""
from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from ..data.selection import route_mask
from ..spec.checked import Checked

# a value whose spread over the training rows is below this is constant there: it is centred, not
# divided (dividing by ~0 would turn a new value at query time into an enormous input)
MIN_SPREAD = 1e-6


@keras.saving.register_keras_serializable(package="tanglec")
class Standardize(keras.layers.Layer):
    """(x - mean) * inverse_spread, per input value; both vectors are non-trainable weights."""

    def build(self, input_shape):
        width = input_shape[-1]
        self.mean = self.add_weight(shape=(width,), initializer="zeros", trainable=False, name="mean")
        self.inverse_spread = self.add_weight(shape=(width,), initializer="ones", trainable=False,
                                              name="inverse_spread")

    def call(self, x):
        return (tf.cast(x, self.compute_dtype) - self.mean) * self.inverse_spread

    def compute_output_shape(self, input_shape):
        return input_shape

    def fit(self, features: np.ndarray) -> None:
        """Set the statistics from the rows of `features` ([rows, width])."""
        features = np.asarray(features, np.float64)
        spread = features.std(axis=0)
        inverse = np.where(spread > MIN_SPREAD, 1.0 / np.maximum(spread, MIN_SPREAD), 1.0)
        self.mean.assign(features.mean(axis=0).astype(np.float32))
        self.inverse_spread.assign(inverse.astype(np.float32))


def fit_standardizers(modules: dict[str, keras.Model], checked: Checked, inputs: dict[str, np.ndarray],
                      carried: dict[str, np.ndarray], skip: set[str], encoder: Callable) -> list[str]:
    """Fit every module's `standardize` on its field's encoded values over the training rows whose route runs
    the module and that carry the field (`carried`: field -> bool per row; a field not there is on every
    row): what the module reads in training, not the rows of other routes that happen to hold the field. Modules in `skip` (their
    weights came from an `init` run) keep the statistics they were trained with. `encoder(field, codec, name)`
    makes the layer that encodes a field for a module (codegen's). Returns the modules fitted."""
    g, fitted = checked.graph, []
    for name, module in modules.items():
        layers = [layer for layer in getattr(module, "layers", []) if isinstance(layer, Standardize)]
        field = g.encoded_field(name)
        if not layers or name in skip or field is None or field not in inputs:
            continue
        reads = _rows_running(g, inputs, name)
        if field in carried:
            reads &= np.asarray(carried[field], bool)
        rows = inputs[field][reads]
        if not len(rows):
            continue
        features = np.asarray(encoder(g.inputs[field], g.modules[name].input, f"{name}_fit")(rows))
        for layer in layers:
            layer.fit(features)
        fitted.append(name)
    return fitted


def _rows_running(g, columns: dict[str, np.ndarray], module: str) -> np.ndarray:
    """Which rows take a route that runs `module`."""
    rows = np.arange(len(next(iter(columns.values()))))
    runs = np.zeros(len(rows), bool)
    for route in g.routes():
        if module in route.modules:
            runs |= route_mask(g, columns, route, rows)
    return runs
