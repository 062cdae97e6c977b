"""tanglec: a declarative compiler for tangled neural networks."""

__version__ = "0.1.0"
