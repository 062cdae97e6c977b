"""Compiling a checked spec to Keras, training it, predicting (imports TensorFlow)."""
from ..util.cache import use_xla_cache

use_xla_cache()  # before this package's modules import TensorFlow
