"""The transfer report's digits scenario: real images, so accuracy on held-out images instead of 100%-or-not.

Issue 14's acceptance: with every training image, the trained route (`pixels → plus1`) is at least 95% exact
on images never trained on, and every zero-shot route (`pixels → times2`) within 2 points of it (above or
below), for every seed; with 100 training images the zero-shot routes are within 3 points of the trained route.
"""
from __future__ import annotations

from .transfer_scenarios import DIGITS_ALL, SCENARIOS

ACCEPTANCE = (  # (n, lowest trained-route accuracy, largest distance of a zero-shot route from it)
    (DIGITS_ALL, 0.95, 0.02),
    (100, None, 0.03),
)


def real_data(scenario: str) -> bool:
    return SCENARIOS[scenario].real_data


def n_label(n: int) -> str:
    return "all" if n == DIGITS_ALL else str(n)


def acceptance(table: list[dict]) -> list[dict]:
    """Per acceptance row: each seed's trained-route accuracy, its zero-shot routes' lowest and highest, the
    gap (trained minus zero-shot, the larger in size) and whether it passes (variant a of the digits scenario;
    rows without those runs are left out)."""
    cells = {t["n"]: t for t in table if t["scenario"] == "digits" and t["variant"] == "a"}
    out = []
    for n, floor, gap in ACCEPTANCE:
        cell = cells.get(n)
        if not cell:
            continue
        seeds = []
        for seed, r in sorted(cell["per_seed"].items(), key=lambda item: int(item[0])):
            trained, lowest, highest = r["trained"], r["unseen_min"], r["unseen_max"]
            difference = None if trained is None or lowest is None else \
                max(trained - lowest, trained - highest, key=abs)
            passed = difference is not None and abs(difference) <= gap + 1e-9 and (floor is None or trained >= floor)
            seeds.append({"seed": int(seed), "trained": trained, "zero_shot_min": lowest, "zero_shot_max": highest,
                          "gap": difference,
                          "training_images": r["training_examples"], "passed": passed})
        out.append({"n": n, "trained_at_least": floor, "gap_at_most": gap, "seeds": seeds,
                    "passed": sum(s["passed"] for s in seeds)})
    return out


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def _requirement(row: dict) -> str:
    floor = f"trained ≥ {row['trained_at_least']:.0%}, " if row["trained_at_least"] else ""
    return f"{floor}zero-shot within {100 * row['gap_at_most']:.0f} points"


def markdown(results: dict) -> str:
    """The digits tables: trained / zero-shot accuracy per variant and n, and the acceptance per seed."""
    cfg, summary = results["config"], results["summary"]
    if "digits" not in cfg["scenarios"]:
        return ""
    ns = cfg.get("n_by_scenario", {}).get("digits", cfg["n"])
    cell = {(t["variant"], t["n"]): t for t in summary["table"] if t["scenario"] == "digits"}
    lines = ["| digits, variant: trained route / zero-shot route | " + " | ".join(f"n={n_label(n)}" for n in ns) + " |",
             "|---|" + "---:|" * len(ns)]
    for v in cfg["variants"]:
        cells = [cell.get((v, n)) for n in ns]
        if any(cells):
            lines.append(f"| {v} | " + " | ".join("" if c is None else f"{_pct(c['trained_mean'])} / "
                                                  f"{_pct(c['unseen_mean'])}" for c in cells) + " |")
    for row in summary.get("digits", []):
        lines += ["", f"| digits, a, n={n_label(row['n'])} ({_requirement(row)}) | trained | zero-shot | gap | "
                  f"training images | passes |", "|---|---:|---:|---:|---:|---|"]
        for s in row["seeds"]:
            gap = "-" if s["gap"] is None else f"{100 * s['gap']:+.1f} points"
            lines.append(f"| seed {s['seed']} | {_pct(s['trained'])} | {_pct(s['zero_shot_min'])} | {gap} | "
                         f"{s['training_images']} | {'yes' if s['passed'] else 'no'} |")
        lines.append(f"| **{row['passed']}/{len(row['seeds'])} seeds pass** | | | | | |")
    return "\n".join(lines) + "\n"


def tables(results: dict) -> list:
    """The digits results as rich tables: trained / zero-shot per variant and n; the acceptance per seed."""
    from rich.table import Table

    cfg, summary = results["config"], results["summary"]
    ns = cfg.get("n_by_scenario", {}).get("digits", cfg["n"])
    cell = {(t["variant"], t["n"]): t for t in summary["table"] if t["scenario"] == "digits"}
    t = Table(title=f"digits: accuracy on held-out images, trained route / zero-shot route "
                    f"(mean over {len(cfg['seeds'])} seed(s))")
    t.add_column("variant")
    for n in ns:
        t.add_column(f"n={n_label(n)}", justify="right")
    for v in cfg["variants"]:
        cells = [cell.get((v, n)) for n in ns]
        if any(cells):
            t.add_row(v, *("" if c is None else f"{_pct(c['trained_mean'])} / {_pct(c['unseen_mean'])}"
                           for c in cells))
    out = [t]
    for row in summary.get("digits", []):
        a = Table(title=f"digits, a, n={n_label(row['n'])}: {_requirement(row)} — "
                        f"{row['passed']}/{len(row['seeds'])} seeds pass")
        for name in ("seed", "trained", "zero-shot", "gap (points)", "training images", "passes"):
            a.add_column(name, justify="left" if name == "seed" else "right")
        for s in row["seeds"]:
            a.add_row(str(s["seed"]), _pct(s["trained"]), _pct(s["zero_shot_min"]),
                      "-" if s["gap"] is None else f"{100 * s['gap']:+.1f}", str(s["training_images"]),
                      "yes" if s["passed"] else "no")
        out.append(a)
    return out
