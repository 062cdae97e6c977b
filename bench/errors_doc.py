#!/usr/bin/env python3
"""Regenerate docs/errors.md: every diagnostic code with its meaning, an example and the real message.

    .venv/bin/python bench/errors_doc.py          # rewrite docs/errors.md
    .venv/bin/python bench/errors_doc.py --check  # exit 1 if a code used in tanglec/ is not documented

Each example is run through the library and the message shown is what tanglec prints for it, so the
document can't drift from the code. tests/test_fuzz.py checks that every code in the source has an
entry and that every spec example still yields its code.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tanglec.devtools.errors_doc import EXAMPLES, ROOT, codes_in_source, documented, generate  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    target = ROOT / "docs" / "errors.md"
    if args.check:
        missing = codes_in_source() - documented(target.read_text())
        print("undocumented: " + (", ".join(sorted(missing)) or "none"))
        return 1 if missing else 0
    missing = codes_in_source() - {e.code for e in EXAMPLES}
    if missing:
        print(f"no example for {', '.join(sorted(missing))}", file=sys.stderr)
        return 1
    target.write_text(generate())
    print(f"wrote {target} ({len(EXAMPLES)} codes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
