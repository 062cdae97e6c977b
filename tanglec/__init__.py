"""tanglec: a declarative compiler for tangled neural networks.

The Python API (docs/api.md) is the pipeline the CLI runs: `check_file`, `load`, `train`, `open_run`
and the rest are re-exported from tanglec.pipeline on first use, so `import tanglec` stays cheap.
"""

from .util.version import __version__

API = ("Overrides", "check_file", "load", "prepare", "compile", "train", "open_run", "Run", "evaluate",
       "evaluation_inputs", "load_run", "load_run_model", "query_columns", "ask", "predict_columns")
__all__ = [*API, "Diagnostic", "TangleError"]


def __getattr__(name: str):
    if name in API:
        from . import pipeline

        return getattr(pipeline, name)
    if name in ("Diagnostic", "TangleError"):
        from .lang import diagnostics

        return getattr(diagnostics, name)
    raise AttributeError(f"module 'tanglec' has no attribute {name!r}")
