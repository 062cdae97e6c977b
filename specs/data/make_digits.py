#!/usr/bin/env python3
"""Write specs/data/digits.csv: the handwritten digits of specs/digits.tangle.

The images are the UCI "Optical Recognition of Handwritten Digits" data set (E. Alpaydin and C. Kaynak,
UCI Machine Learning Repository, 1998; https://doi.org/10.24432/C50P49) as bundled by scikit-learn
(`sklearn.datasets.load_digits`: the 1797 8x8 test-set images, each pixel a count 0..16 of the 4x4
blocks of the 32x32 bitmap that are ink). scikit-learn ships them, so nothing is downloaded; tanglec
itself only reads the CSV, and only this script needs scikit-learn (`pip install tanglec[digits]`).

Each image is written once per operation, so every image, held out or not, is evaluated through every
operation (`data ... eval F group img` keeps an image's rows on one side of the split). Columns: x (the
digit the image shows), img (its 64 pixel counts, row by row, space separated: a `vector(64)` cell), op.

    python specs/data/make_digits.py            # writes specs/data/digits.csv next to this script
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

OPS = ("plus1", "times2")


def rows():
    """(label, pixels, op) for every image and operation, images in scikit-learn's order."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    for pixels, label in zip(digits.data, digits.target):
        cell = " ".join(str(int(v)) for v in pixels)
        for op in OPS:
            yield int(label), cell, op


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path(__file__).resolve().parent / "digits.csv"
    with out.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["x", "img", "op"])
        writer.writerows(rows())
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
