"""How `tanglec eval` shows an evaluation report (pipeline.evaluate): per decoder a confusion matrix or
MAE/RMSE, the failing rows, and the confusion matrices as a PNG."""
from __future__ import annotations

import os
from pathlib import Path

from ..util.files import atomic_file


def decoder_text(report: dict) -> str:
    """Per decoder: its accuracy, then a confusion matrix (categorical) or MAE/RMSE (numeric); then the
    failures, if any were asked for."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=120, record=True, file=open(os.devnull, "w"))
    for name, d in report["decoders"].items():
        acc = "-" if d["accuracy"] is None else f"{d['accuracy']:.1%}"
        head = f"decoder {name} ({d['codec']} as {d['target']}): exact {d['exact']}/{d['cases']} = {acc}"
        if "confusion" not in d:
            mae = "-" if d["mae"] is None else f"{d['mae']:.4g}"
            rmse = "-" if d["rmse"] is None else f"{d['rmse']:.4g}"
            console.print(f"{head}  MAE {mae}  RMSE {rmse}  (tolerance {d['tolerance']:g})", highlight=False)
            continue
        labels, matrix = d["confusion"]["labels"], d["confusion"]["matrix"]
        console.print(head + "  (rows: expected, columns: answered)", highlight=False)
        table = Table()
        table.add_column("expected", justify="right")
        for label in labels:
            table.add_column(str(label), justify="right")
        for i, (label, counts) in enumerate(zip(labels, matrix)):
            table.add_row(str(label), *(_cell(c, i == j) for j, c in enumerate(counts)))
        console.print(table)
    if report.get("failures"):
        table = Table(title=f"first {len(report['failures'])} wrong answers", title_justify="left")
        for column in ("where", "inputs", "route", "decoder", "answer", "expected"):
            table.add_column(column)
        for f in report["failures"]:
            inputs = " ".join(f"{k}={_brief(v)}" for k, v in f.get("inputs", {}).items())
            table.add_row(f["where"] or f"row {f['row']}", inputs, f["route"], f["decoder"], str(f["value"]),
                          str(f["expected"]))
        console.print(table)
    return console.export_text()


def _brief(value, width: int = 40) -> str:
    """An input's value on one line of a table: line breaks escaped, at most `width` characters."""
    text = str(value).replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= width else text[:width - 1] + "…"


def _cell(count: int, diagonal: bool) -> str:
    return "·" if count == 0 else (f"[bold]{count}[/]" if diagonal else str(count))


def write_confusion_png(report: dict, path: Path) -> Path:
    """One heat map per categorical decoder (expected down, answered across, counts in the cells)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    decoders = {n: d for n, d in report["decoders"].items() if "confusion" in d}
    fig, axes = plt.subplots(1, max(1, len(decoders)), figsize=(4.5 * max(1, len(decoders)), 4.2), squeeze=False)
    for ax, (name, d) in zip(axes[0], decoders.items()):
        labels, matrix = d["confusion"]["labels"], d["confusion"]["matrix"]
        ax.imshow(matrix, cmap="Blues")
        ax.set_xticks(range(len(labels)), [str(v) for v in labels])
        ax.set_yticks(range(len(labels)), [str(v) for v in labels])
        for i, row in enumerate(matrix):
            for j, count in enumerate(row):
                if count:
                    ax.text(j, i, str(count), ha="center", va="center", fontsize=8)
        ax.set_xlabel("answered")
        ax.set_ylabel("expected")
        ax.set_title(f"{name}: {d['exact']}/{d['cases']} exact", fontsize=10)
    if not decoders:
        axes[0][0].text(0.5, 0.5, "no categorical decoder", ha="center", va="center")
        axes[0][0].axis("off")
    fig.tight_layout()
    with atomic_file(Path(path)) as fh:
        fig.savefig(fh, dpi=100, format="png")
    plt.close(fig)
    return Path(path)
