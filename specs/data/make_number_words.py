#!/usr/bin/env python3
"""Write specs/data/number_words.csv: the numbers 0-99 as English words and as French words, for
specs/number_words.tangle.

The words follow each language's rules for writing numbers: English joins tens and units with a hyphen
("seventy-three"); French writes 17-19 as "dix-sept".., joins a unit of one with "et" up to 71 ("vingt
et un", "soixante et onze"), counts 70-79 as sixty plus 10-19 ("soixante-treize") and 80-99 as
four-twenties ("quatre-vingts", "quatre-vingt-treize"), with the hyphens of the traditional spelling.

Each number is written two ways (`language`: english, french: "seventy-three", "soixante-treize").
Columns: word (how the row writes it), n (the number, from which the spec computes the answers), language.

    python specs/data/make_number_words.py      # writes specs/data/number_words.csv next to this script
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

ENGLISH_UNITS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
                 "fifteen sixteen seventeen eighteen nineteen").split()
ENGLISH_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
FRENCH_UNITS = ("zéro un deux trois quatre cinq six sept huit neuf dix onze douze treize quatorze quinze seize "
                "dix-sept dix-huit dix-neuf").split()
FRENCH_TENS = "_ _ vingt trente quarante cinquante soixante".split()


def english(n: int) -> str:
    if n < 20:
        return ENGLISH_UNITS[n]
    tens, unit = divmod(n, 10)
    return ENGLISH_TENS[tens] + (f"-{ENGLISH_UNITS[unit]}" if unit else "")


def french(n: int) -> str:
    if n < 20:
        return FRENCH_UNITS[n]
    if n < 70:
        tens, unit = divmod(n, 10)
        return FRENCH_TENS[tens] + ("" if unit == 0 else " et un" if unit == 1 else f"-{FRENCH_UNITS[unit]}")
    if n < 80:
        return "soixante et onze" if n == 71 else f"soixante-{FRENCH_UNITS[n - 60]}"
    return "quatre-vingts" if n == 80 else f"quatre-vingt-{FRENCH_UNITS[n - 80]}"


def rows():
    """(word, n, language) for every number and language."""
    for n in range(100):
        yield english(n), n, "english"
        yield french(n), n, "french"


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path(__file__).resolve().parent / "number_words.csv"
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["word", "n", "language"])
        writer.writerows(rows())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
