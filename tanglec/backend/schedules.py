"""Learning-rate schedules of `train`: a linear warm-up, then constant, cosine decay or steps."""
from __future__ import annotations

import math

import keras


@keras.saving.register_keras_serializable(package="tanglec")
class TangleSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """`lr` rises linearly over `warmup` steps, then stays (constant), follows a half cosine to zero
    by step `total` (cosine), or is multiplied by `decay` every `decay_every` steps (step)."""

    def __init__(self, lr: float, total: int, kind: str = "constant", warmup: int = 0, decay: float = 0.5,
                 decay_every: int | None = None):
        self.lr, self.total, self.kind, self.warmup = lr, total, kind, warmup
        self.decay, self.decay_every = decay, decay_every or max(1, total // 3)

    def __call__(self, step):
        ops = keras.ops
        step = ops.cast(step, "float32")
        warm = ops.minimum(1.0, (step + 1.0) / float(self.warmup)) if self.warmup else 1.0
        after = ops.maximum(0.0, step - float(self.warmup))
        if self.kind == "cosine":
            span = float(max(1, self.total - self.warmup))
            factor = 0.5 * (1.0 + ops.cos(math.pi * ops.minimum(1.0, after / span)))
        elif self.kind == "step":
            factor = ops.power(self.decay, ops.floor(after / float(self.decay_every)))
        else:
            factor = 1.0
        return self.lr * warm * factor

    def get_config(self) -> dict:
        return {"lr": self.lr, "total": self.total, "kind": self.kind, "warmup": self.warmup, "decay": self.decay,
                "decay_every": self.decay_every}


def learning_rate(cfg, lr: float, steps: int):
    """The optimizer's learning rate for a phase of `steps` steps: a plain number unless the spec
    asks for a warm-up or a schedule."""
    if cfg.schedule == "constant" and not cfg.warmup:
        return lr
    return TangleSchedule(lr, steps, cfg.schedule, cfg.warmup, cfg.decay, cfg.decay_every)
