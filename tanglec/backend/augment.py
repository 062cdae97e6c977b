"""Training-time image augmentation: `shift P`, `rotate D`, `zoom F` in a module's layer stack.

Keras's own random image layers, with one change: they act only when called with `training=True`
(as `dropout` does). Keras's versions default to augmenting when a model is called without a
`training` argument, so `model(x)` would give a different answer each time.
"""
from __future__ import annotations

import keras

FILL_MODE = "nearest"  # an image's border pixels fill what a shift uncovers (digits: background)


class TrainingOnly:
    """Act only when called with `training=True`; the default is off, as for `dropout`."""

    def call(self, data, training=False):
        return super().call(data, training=training)


@keras.saving.register_keras_serializable(package="tanglec")
class Shift(TrainingOnly, keras.layers.RandomTranslation):
    """`shift P`: a random translation by up to P pixels along each axis, while training (bilinear: moving
    whole pixels instead did worse on specs/digits.tangle, docs/transfer.md)."""


@keras.saving.register_keras_serializable(package="tanglec")
class Rotate(TrainingOnly, keras.layers.RandomRotation):
    """`rotate D`: a random rotation by up to D degrees either way, while training."""


@keras.saving.register_keras_serializable(package="tanglec")
class Zoom(TrainingOnly, keras.layers.RandomZoom):
    """`zoom F`: a random zoom in or out by up to the fraction F, while training."""


def augments(model: keras.Model) -> bool:
    """Whether the model has a `shift`, `rotate` or `zoom` layer (XLA has no CPU kernel for their transform)."""
    return any(isinstance(layer, TrainingOnly) for layer in model._flatten_layers())


def augmentation_layer(kind: str, amount: float, image_shape: tuple[int, int], seed: int, name: str):
    """The layer for `kind amount` on an image of `image_shape` (height, width)."""
    if kind == "shift":
        height, width = image_shape
        return Shift(amount / height, amount / width, fill_mode=FILL_MODE, seed=seed, name=name)
    if kind == "rotate":
        return Rotate(amount / 360.0, fill_mode=FILL_MODE, seed=seed, name=name)
    return Zoom(amount, fill_mode=FILL_MODE, seed=seed, name=name)
