"""The transfer report's scenarios and variants: which shipped spec adds which new module, and the settings
every cell shares (the report trains the repository's own specs, so it runs from a checkout)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout: the report trains the repository's own specs
SPECS = ROOT / "specs"
BASE_SPEC = SPECS / "arith.tangle"
HOLDOUT_SPEC = SPECS / "arith_holdout.tangle"

VARIANTS = ("a", "a_noalign", "b", "c")
EXTRA_VARIANTS = ("b_all",)
VARIANT_LABELS = {
    "a": "transfer, frozen + aligned",
    "a_noalign": "transfer, no alignment",
    "b": "same graph from scratch",
    "c": "naive: a net per route",
    "b_all": "scratch, every route",
}
DEFAULT_N = (1, 2, 3, 5, 10)
DIGITS_ALL = 1797  # the digits data set's image count: a limit no training split reaches, i.e. every training image
DIGITS_N = (10, 20, 50, 100, 200, DIGITS_ALL)
DEFAULT_SEEDS = (0, 1, 2, 3, 4)
QUICK_N = (10,)
QUICK_SEEDS = (0,)
SCRATCH_STEPS = 600  # cap for the from-scratch graph (b) and the naive networks (c)
CACHE_VERSION = 1


@dataclass(frozen=True)
class Scenario:
    name: str
    spec: Path
    what: str  # "encoder" | "operation" | "decoder"
    module: str  # the new module
    selector: str | None  # the selector that picks it (None: on every route)
    n_all: tuple[int, ...]  # n for b_all: every example of the new module's routes (2 or 4 routes x 10)
    ns: tuple[int, ...] = DEFAULT_N  # the training example counts when the report isn't given any
    scratch_steps: int | None = None  # b and c train this long (None: the report's cap, SCRATCH_STEPS)
    real_data: bool = False  # accuracy on held-out rows of a data file, not 100%-or-not on 10 cases


SCENARIOS = {
    "gray": Scenario("gray", SPECS / "transfer_gray.tangle", "encoder", "gray", "encoding", (20,)),
    "minus1": Scenario("minus1", SPECS / "transfer_minus1.tangle", "operation", "minus1", "op", (20,)),
    "prime": Scenario("prime", SPECS / "transfer_prime.tangle", "decoder", "is_prime", None, (40,)),
    "digits": Scenario("digits", SPECS / "digits.tangle", "encoder", "pixels", "encoding", (), DIGITS_N,
                       scratch_steps=2000, real_data=True),
}
DEFAULT_SCENARIOS = ("gray", "minus1", "prime")  # digits is heavier (1797 images): asked for by name
