#!/usr/bin/env python3
"""The transfer report of issue 4 — a thin wrapper around `tanglec transfer` (same engine, same options).

    python bench/transfer_report.py                      # full report (~1-2 h on 2 busy cores; resumes)
    python bench/transfer_report.py --quick              # one seed, n=10
    python bench/transfer_report.py --markdown bench/results/transfer.json   # the docs tables from a result file

See docs/transfer.md for what it measures.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str]) -> int:
    if argv[:1] == ["--markdown"]:
        from tanglec.reports.transfer_render import markdown

        path = Path(argv[1] if len(argv) > 1 else "bench/results/transfer.json")
        print(markdown(json.loads(path.read_text())), end="")
        return 0
    from tanglec.cli import cli

    return cli.main(["transfer", *argv], prog_name="transfer_report.py", standalone_mode=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
