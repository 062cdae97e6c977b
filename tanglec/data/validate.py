"""The data-backed target checks: the spec's targets evaluated over its data (a file read whole or
streamed; a sample; a large enumerated domain) must succeed and fit their decoders' codecs.

The spec checker calls `target_problems` through `check(..., data_check=)`, where only the pipeline
wires it in: spec checks never read data themselves.
"""
from __future__ import annotations

from ..lang.diagnostics import Diagnostic
from ..spec.check_targets import range_problems
from .examples import DataError, build_examples, check_rows, summarise

CHECK_ROWS = 2000  # rows `check` evaluates the targets on when the data is too large to evaluate whole
CHECK_CELLS = 1_000_000  # ... and at most this many values in those rows


def target_problems(checked) -> list[Diagnostic]:
    """Bad data, failing targets and targets out of their decoder's range: over a data file's every
    row, else over at most CHECK_ROWS rows drawn from the domain or the sample, since the example
    table may not fit in memory (building the examples checks every row's range again)."""
    try:
        if checked.data.source == "file":
            examples = build_examples(checked, check_ranges=False)
            summary = getattr(examples, "target_summary", None)  # a streamed file: min, max (a non-integer)
            values = summary if summary is not None else summarise(examples.targets)
        else:
            values = summarise(check_rows(checked, CHECK_ROWS, CHECK_CELLS))
    except DataError as err:
        return list(err.diagnostics)
    return range_problems(checked.graph, values)
