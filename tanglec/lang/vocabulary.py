"""Every keyword table of the spec language, in one place below the checker and the highlighter.

The checker validates against these tables, the highlighter colours them and the backends map them
to TensorFlow; keeping them here (no imports) lets each layer read them without importing another.
"""
from __future__ import annotations

DATA_CODECS = frozenset({"bits", "gray", "onehot", "scalar", "vector"})
NUMERIC_CODECS = frozenset({"scalar", "vector"})  # compared within a tolerance (`decode ... tolerance 0.1`)
DECODE_KEYS = frozenset({"tolerance"})
LATENT_CODECS = frozenset({"latent"})
TEXT_CODECS = frozenset({"ngrams"})  # read a text field; never a module's output
CODECS = DATA_CODECS | LATENT_CODECS | TEXT_CODECS
SIZED_CODECS = frozenset({"bits", "gray", "onehot", "latent", "vector", "ngrams"})

AUGMENT_LAYERS = frozenset({"shift", "rotate", "zoom"})  # random image changes while training, like dropout
LAYER_KINDS = frozenset({"dense", "dropout", "norm", "standardize", "residual", "image", "conv2d", "pool"}) | AUGMENT_LAYERS
ACTIVATIONS = frozenset({"relu", "gelu", "tanh", "sigmoid", "elu", "selu", "swish", "softplus", "linear",
                         "leaky_relu"})
OPTIMIZERS = frozenset({"adam", "sgd", "rmsprop", "adamw"})
MUX_STRATEGIES = frozenset({"where", "partition", "gather", "stacked", "auto"})
DISTRIBUTE_STRATEGIES = ("default", "mirrored", "multiworker")  # tanglec.backend.distribute.STRATEGIES
STREAM_MODES = ("auto", "always", "never")  # how a data file is read: in chunks, whole, or by its size

TRAIN_KEYS = frozenset({"steps", "batch", "lr", "seed", "until", "weight", "mux", "eval_every", "optimizer",
                        "strategy", "memory", "schedule", "warmup", "decay", "decay_every", "patience", "update",
                        "batches"}) | OPTIMIZERS
# other tools' names for a training setting: the E115 hint names tanglec's
TRAIN_KEY_ALIASES = {"epochs": "steps", "epoch": "steps", "iterations": "steps", "iters": "steps",
                     "learning_rate": "lr", "batch_size": "batch", "optim": "optimizer", "random_seed": "seed"}
UPDATE_MODES = ("dense", "lazy")  # `train update lazy`: a stacked multiplexer's branches move only when they get rows
BATCH_MODES = ("mixed", "grouped")  # `train batches grouped`: every batch holds the rows of one route
SCHEDULES = ("constant", "cosine", "step")  # `train schedule cosine warmup 50` (backend/schedules.py)
DATA_KEYS = frozenset({"seed", "eval", "group", "limit", "per_route", "only", "stream"})
PHASE_KEYS = frozenset({"steps", "lr", "optimizer", "modules", "until", "batch"}) | OPTIMIZERS
ALIGN_KEYS = frozenset({"weight"})
UNTIL_VALUES = frozenset({"exact", "loss"})  # `until exact`; `until loss patience N` (evaluation loss)

FUNCTIONS = {"min": (2, None), "max": (2, None), "abs": (1, 1)}  # name: (fewest, most) arguments


def alias_hint(key: str) -> list[str]:
    """Another tool's name for a training setting: tanglec's, and for epochs what a step is."""
    ours = TRAIN_KEY_ALIASES.get(key.lower())
    if ours is None:
        return []
    if ours == "steps":
        return ["training is counted in steps, one batch each (an epoch is rows / batch steps): `steps 2000`"]
    return [f"tanglec calls it `{ours}`"]
