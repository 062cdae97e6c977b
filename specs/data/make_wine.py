#!/usr/bin/env python3
"""Write specs/data/wine.csv: the wines of specs/wine.tangle.

The readings are the UCI "Wine" data set (S. Aeberhard and M. Forina, UCI Machine Learning Repository,
1991; https://doi.org/10.24432/C5PC7J) as bundled by scikit-learn (`sklearn.datasets.load_wine`): 178
wines from three cultivars of one Italian region, 13 chemical measurements each, in units whose sizes
differ by four orders of magnitude (hue around 1, proline around 750). scikit-learn ships them, so
nothing is downloaded; tanglec itself only reads the CSV, and only this script needs scikit-learn
(`pip install tanglec[digits]`).

The file is laid out as the data set is published, one column per reading under scikit-learn's names,
then `view` and `cultivar` (`class_0`, `class_1`, `class_2`, scikit-learn's names). Each wine is written
once per view (`chemistry`, `colour`); the spec reads all 13 readings for the one and the three colour
readings (colour intensity, hue, OD280/OD315) for the other, through `input ... from` columns.

    python specs/data/make_wine.py              # writes specs/data/wine.csv next to this script
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

def rows():
    """The header, then (13 readings, view, cultivar) for every wine and view, wines in scikit-learn's order."""
    from sklearn.datasets import load_wine

    wine = load_wine()
    yield [*wine.feature_names, "view", "cultivar"]
    for readings, label in zip(wine.data, wine.target):
        cultivar = str(wine.target_names[label])
        for view in ("chemistry", "colour"):
            yield [*(f"{v:g}" for v in readings), view, cultivar]


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path(__file__).resolve().parent / "wine.csv"
    with out.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerows(rows())
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
