"""The optimizers a spec names (`train ... adam 0.01`), as training and `auto`'s measurements make them."""
from __future__ import annotations

import keras


def make_optimizer(name: str, lr) -> keras.optimizers.Optimizer:
    """adam is Keras's Adam with each variable's update fused into one kernel (stacked.FusedAdam)."""
    from .stacked import FusedAdam

    return {"adam": FusedAdam, "sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop,
            "adamw": keras.optimizers.AdamW}[name](learning_rate=lr)
