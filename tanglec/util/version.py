"""The package version, where every layer may read it (tanglec/__init__.py re-exports it)."""

__version__ = "0.1.0"
