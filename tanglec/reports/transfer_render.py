"""Rendering of the transfer report: its tables (terminal and markdown), the figure, and the saved files."""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

from ..util.files import atomic_file, write_atomic
from . import transfer_digits
from .transfer_scenarios import SCENARIOS, VARIANT_LABELS


def pct(v) -> str:
    return "-" if v is None else f"{v:.0%}"


def elapsed(started: float) -> str:
    s = int(time.perf_counter() - started)
    return f"{s // 60}m{s % 60:02d}s"


# ---- rendering ----------------------------------------------------------------------------------

def _exact_scenarios(cfg) -> list[str]:
    """The scenarios scored 100%-or-not on every case (not the real-data digits, tabled on their own)."""
    return [s for s in cfg["scenarios"] if not transfer_digits.real_data(s)]


def _columns(cfg) -> list[int]:
    by_scenario = cfg.get("n_by_scenario") or {s: cfg["n"] for s in cfg["scenarios"]}
    ns = {n for s in _exact_scenarios(cfg) for n in by_scenario[s]}
    for values in (cfg.get("n_all") or {}).values():
        ns |= set(values)
    return sorted(ns)


def _ratio_text(m: dict, v: str) -> str:
    if v not in m or "a" not in m:
        return "-"
    ratio, a = m.get(f"ratio_{v}_over_a"), m["a"]["all_routes"]
    if ratio:
        return f"{ratio:.1f}×"
    if a and m[v]["max_n"]:
        return f"∞ (never, n ≤ {m[v]['max_n']})"
    return "-"


def tables(results: dict):
    """rich renderables: the transfer table, the minimal-n table, the held-out table."""
    from rich.table import Table

    cfg, summary = results["config"], results["summary"]
    ns = _columns(cfg)
    seeds = len(cfg["seeds"])
    cell = {(t["scenario"], t["variant"], t["n"]): t for t in summary["table"]}
    out = transfer_digits.tables(results) if "digits" in cfg["scenarios"] else []
    if not _exact_scenarios(cfg):
        return out
    t = Table(title=f"exact accuracy on the new module's routes, mean over {seeds} seed(s) "
                    f"(k/{seeds}: seeds with every such route 100%)")
    t.add_column("scenario")
    t.add_column("variant")
    for n in ns:
        t.add_column(f"n={n}", justify="right")
    t.add_column("min n", justify="right")
    for s in _exact_scenarios(cfg):
        for v in cfg["variants"]:
            row = [f"{s} ({SCENARIOS[s].what})", f"{v}: {VARIANT_LABELS[v]}"]
            for n in ns:
                c = cell.get((s, v, n))
                row.append("" if c is None else f"{pct(c['mean'])} {c['all_exact_seeds']}/{c['seeds']}")
            m = summary["minimal_n"][s][v]
            row.append(_n(m["all_routes"], m["max_n"]))
            t.add_row(*row)
        t.add_section()
    out.append(t)
    r = Table(title=f"examples needed for 100% on every route of the new module, {seeds}/{seeds} seeds")
    r.add_column("scenario")
    for v in cfg["variants"]:
        r.add_column(v, justify="right")
    for v in ("b", "b_all"):
        if v in cfg["variants"]:
            r.add_column(f"{v} / a", justify="right")
    r.add_column("trained route only: a / b", justify="right")
    for s in _exact_scenarios(cfg):
        m = summary["minimal_n"][s]
        ratios = [_ratio_text(m, v) for v in ("b", "b_all") if v in cfg["variants"]]
        tr = " / ".join(_n(m[v]["trained_route"], m[v]["max_n"]) if v in m else "-" for v in ("a", "b"))
        r.add_row(s, *[_n(m[v]["all_routes"], m[v]["max_n"]) for v in cfg["variants"]], *ratios, tr)
    out.append(r)
    if summary["holdout"]:
        h = Table(title="arith_holdout: accuracy of the held-out route binary → times2")
        h.add_column("")
        for sd in cfg["seeds"]:
            h.add_column(f"seed {sd}", justify="right")
        h.add_column("100%", justify="right")
        for key, label in (("align", "with alignment"), ("no_align", "without alignment")):
            if key in summary["holdout"]:
                hs = summary["holdout"][key]
                h.add_row(label, *[pct(hs["per_seed"].get(str(sd))) for sd in cfg["seeds"]],
                          f"{hs['exact_seeds']}/{hs['seeds']}")
        out.append(h)
    return out


def _n(v, limit=None) -> str:
    """A minimal n: the number, or 'none ≤ LIMIT' (LIMIT: the largest n tried; no n tried: '-')."""
    if v:
        return str(v)
    return f"none ≤ {limit}" if limit else "-"


def print_tables(results: dict, file=None, width: int = 170) -> str:
    from rich.console import Console

    console = Console(file=file or sys.stdout, width=width, record=True)
    for t in tables(results):
        console.print(t)
    return console.export_text()


def markdown(results: dict) -> str:
    """The same tables as markdown (for docs/transfer.md)."""
    cfg, summary = results["config"], results["summary"]
    digits = transfer_digits.markdown(results)
    if not _exact_scenarios(cfg):
        return digits
    ns = _columns(cfg)
    seeds = len(cfg["seeds"])
    cell = {(t["scenario"], t["variant"], t["n"]): t for t in summary["table"]}
    lines = ["| scenario | variant | " + " | ".join(f"n={n}" for n in ns) + " | min n |",
             "|---|---|" + "---:|" * (len(ns) + 1)]
    for s in _exact_scenarios(cfg):
        for v in cfg["variants"]:
            cells = []
            for n in ns:
                c = cell.get((s, v, n))
                cells.append("" if c is None else f"{pct(c['mean'])} ({c['all_exact_seeds']}/{c['seeds']})")
            m = summary["minimal_n"][s][v]
            lines.append(f"| {s} | {v}: {VARIANT_LABELS[v]} | " + " | ".join(cells) + " | "
                         + _n(m["all_routes"], m["max_n"]) + " |")
    lines += ["", "| scenario | variant: trained route / unseen routes | " + " | ".join(f"n={n}" for n in ns)
              + " |", "|---|---|" + "---:|" * len(ns)]
    for s in _exact_scenarios(cfg):
        for v in cfg["variants"]:
            cells = []
            for n in ns:
                c = cell.get((s, v, n))
                cells.append("" if c is None else f"{pct(c['trained_mean'])} / {pct(c['unseen_mean'])}")
            lines.append(f"| {s} | {v} | " + " | ".join(cells) + " |")
    ratio_cols = [v for v in ("b", "b_all") if v in cfg["variants"]]
    lines += ["", f"| examples for 100% on every new-module route ({seeds}/{seeds} seeds) | "
              + " | ".join(cfg["variants"]) + " | " + " | ".join(f"{v} / a" for v in ratio_cols)
              + " | trained route only: a / b |", "|---|" + "---:|" * (len(cfg["variants"]) + len(ratio_cols) + 1)]
    for s in _exact_scenarios(cfg):
        m = summary["minimal_n"][s]
        tr = " / ".join(_n(m[v]["trained_route"], m[v]["max_n"]) if v in m else "-" for v in ("a", "b"))
        lines.append(f"| {s} | " + " | ".join(_n(m[v]["all_routes"], m[v]["max_n"]) for v in cfg["variants"])
                     + " | " + " | ".join(_ratio_text(m, v) for v in ratio_cols) + f" | {tr} |")
    if summary["holdout"]:
        lines += ["", "| arith_holdout, held-out route | " + " | ".join(f"seed {sd}" for sd in cfg["seeds"])
                  + " | 100% |", "|---|" + "---:|" * (len(cfg["seeds"]) + 1)]
        for key, label in (("align", "with alignment"), ("no_align", "without alignment")):
            if key in summary["holdout"]:
                hs = summary["holdout"][key]
                lines.append(f"| {label} | " + " | ".join(pct(hs["per_seed"].get(str(sd))) for sd in cfg["seeds"])
                             + f" | {hs['exact_seeds']}/{hs['seeds']} |")
    return "\n".join(lines) + "\n" + ("\n" + digits if digits else "")


COLORS = {"a": "tab:green", "a_noalign": "tab:orange", "b": "tab:blue", "c": "tab:red", "b_all": "tab:purple"}


def write_png(results: dict, path: Path) -> Path:
    """One panel per scenario (mean accuracy on the new module's routes vs n, min-max band over seeds,
    one line per variant), plus a panel for the held-out route."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg, summary = results["config"], results["summary"]
    by_scenario = cfg.get("n_by_scenario") or {s: cfg["n"] for s in cfg["scenarios"]}
    panels = list(cfg["scenarios"]) + (["holdout"] if summary["holdout"] else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(max(4.2 * len(panels), 9.0), 3.8), squeeze=False)
    for ax, s in zip(axes[0], panels):
        if s == "holdout":
            seeds = list(cfg["seeds"])
            for k, (key, label, color) in enumerate((("align", "with alignment", "tab:green"),
                                                     ("no_align", "without alignment", "tab:orange"))):
                hs = summary["holdout"].get(key)
                if hs:
                    ax.bar([i + (k - 0.5) * 0.4 for i in range(len(seeds))],
                           [100 * (hs["per_seed"].get(str(sd)) or 0) for sd in seeds], width=0.4, color=color,
                           label=f"{label}: {hs['exact_seeds']}/{hs['seeds']} at 100%")
            ax.set_xticks(range(len(seeds)), [f"seed {sd}" for sd in seeds], fontsize=8)
            ax.set_ylim(0, 118)
            ax.legend(fontsize=7, loc="upper right", frameon=False)
            ax.set_title("arith_holdout: held-out route binary → times2", fontsize=10)
            ax.set_ylabel("exact accuracy (%)")
            continue
        for v in cfg["variants"]:
            rows = sorted((t for t in summary["table"] if t["scenario"] == s and t["variant"] == v),
                          key=lambda t: t["n"])
            if not rows:
                continue
            x = [t["n"] for t in rows]
            if transfer_digits.real_data(s):  # held-out images: the trained route solid, the zero-shot one dashed
                ax.plot(x, [100 * (t["trained_mean"] or 0) for t in rows], marker="o", color=COLORS[v],
                        label=VARIANT_LABELS[v])
                ax.plot(x, [100 * (t["unseen_mean"] or 0) for t in rows], marker="x", linestyle="--",
                        color=COLORS[v])
                continue
            ax.plot(x, [100 * t["mean"] for t in rows], marker="o", color=COLORS[v], label=VARIANT_LABELS[v])
            ax.fill_between(x, [100 * t["min"] for t in rows], [100 * t["max"] for t in rows], color=COLORS[v],
                            alpha=0.15)
            for t in rows:
                if t["all_exact_seeds"] == t["seeds"]:
                    ax.plot([t["n"]], [100 * t["mean"]], marker="*", markersize=12, color=COLORS[v])
        ax.set_xscale("log")
        ax.set_xticks(by_scenario[s], [transfer_digits.n_label(n) if transfer_digits.real_data(s) else str(n)
                                       for n in by_scenario[s]])
        ax.minorticks_off()
        ax.set_ylim(-3, 105)
        ax.set_xlabel("training examples n")
        ax.set_ylabel("exact accuracy on new-module routes (%)")
        ax.set_title(f"new {SCENARIOS[s].what}: {SCENARIOS[s].module}"
                     + (" (held-out images; dashed: zero-shot route)" if transfer_digits.real_data(s) else ""),
                     fontsize=10 if not transfer_digits.real_data(s) else 8)
        ax.grid(alpha=0.3)
    legend = {}
    for ax, s in zip(axes[0], panels):
        if s != "holdout":
            for handle, label in zip(*ax.get_legend_handles_labels()):
                legend.setdefault(label, handle)
    fig.legend(list(legend.values()), list(legend), loc="lower center", ncol=max(1, len(legend)), fontsize=8,
               frameon=False)
    fig.suptitle(f"tanglec transfer — mean over {len(cfg['seeds'])} seed(s), band = min..max, "
                 f"★ = every seed 100% on every route", fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    path = Path(path)
    with atomic_file(path) as fh:
        fig.savefig(fh, dpi=110, format="png")
    plt.close(fig)
    return path


def terminal_plot(results: dict, width: int = 120, height: int = 18) -> str:
    """The same curves in the terminal (plotext), one panel per scenario."""
    import plotext as plt

    cfg, summary = results["config"], results["summary"]
    by_scenario = cfg.get("n_by_scenario") or {s: cfg["n"] for s in cfg["scenarios"]}
    scenarios = list(cfg["scenarios"])
    plt.clf()
    plt.plotsize(width, height)
    plt.subplots(1, len(scenarios))
    markers = {"a": "a", "a_noalign": "n", "b": "b", "c": "c", "b_all": "B"}
    for i, s in enumerate(scenarios, 1):
        plt.subplot(1, i)
        plt.title(f"new {SCENARIOS[s].what} {SCENARIOS[s].module}")
        for v in cfg["variants"]:
            rows = sorted((t for t in summary["table"] if t["scenario"] == s and t["variant"] == v),
                          key=lambda t: t["n"])
            if rows:
                x = [math.log10(t["n"]) for t in rows]
                plt.plot(x, [100 * (t["trained_mean"] if transfer_digits.real_data(s) else t["mean"]) for t in rows],
                         marker=markers[v], label=v)
        ns = by_scenario[s]
        plt.xticks([math.log10(n) for n in ns], [transfer_digits.n_label(n) for n in ns])
        plt.ylim(0, 100)
    text = plt.build()
    plt.clf()
    return text


def save(results: dict, json_path: Path | None, png_path: Path | None) -> None:
    from ..util import strict_json

    if json_path:
        write_atomic(Path(json_path), strict_json.dumps(results, indent=2) + "\n")
    if png_path:
        write_png(results, png_path)
