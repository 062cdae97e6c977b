"""The Train view: start / pause / resume / stop, live loss per decoder, rate and ETA, per-route accuracy."""
from __future__ import annotations

import itertools
import math

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, ProgressBar, Static
from textual_plotext import PlotextPlot

from ...checks import Checked


def _pct(acc: float | None) -> Text:
    if acc is None:
        return Text("—", style="dim")
    style = "bold green" if acc >= 1.0 else ("yellow" if acc >= 0.5 else "red")
    return Text(f"{acc:.0%}", style=style)


def duration(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.0f}s"
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


class RouteMatrix(DataTable):
    """Exact-match accuracy per route: rows are the first selector's values, columns the others' combinations."""

    def __init__(self, checked: Checked, **kw) -> None:
        super().__init__(cursor_type="none", zebra_stripes=False, **kw)
        self.checked = checked
        g = checked.graph
        sels = g.mux_selectors()
        self.row_sel = sels[:1]
        self.col_sels = sels[1:]
        self.row_values = [v.text for v in g.selectors[sels[0]].values] if sels else ["all"]
        combos = itertools.product(*[[v.text for v in g.selectors[s].values] for s in self.col_sels])
        self.col_values = [tuple(c) for c in combos]

    def on_mount(self) -> None:
        corner = " ╲ ".join([self.row_sel[0] if self.row_sel else "routes",
                             "·".join(self.col_sels) if self.col_sels else "exact"])
        self.add_column(corner, key="__row")
        for combo in self.col_values:
            self.add_column("·".join(combo) if combo else "exact", key="|".join(combo) or "__all")
        for value in self.row_values:
            self.add_row(Text(value, style="bold"), *[_pct(None) for _ in self.col_values], key=value)

    def _cell(self, selection: dict[str, str]) -> tuple[str, str]:
        row = selection[self.row_sel[0]] if self.row_sel else "all"
        col = "|".join(selection[s] for s in self.col_sels) or "__all"
        return row, col

    def show(self, report: dict | None) -> None:
        if not report:
            for value in self.row_values:
                for combo in self.col_values:
                    self.update_cell(value, "|".join(combo) or "__all", _pct(None))
            return
        for r in report.get("routes", []):
            try:
                row, col = self._cell(r["selection"])
                self.update_cell(row, col, _pct(r.get("accuracy")))
            except Exception:  # noqa: BLE001 — a report of another spec version: ignore that route
                continue

    def cell_text(self, selection: dict[str, str]) -> str:
        row, col = self._cell(selection)
        return str(self.get_cell(row, col))


class LossPlot(PlotextPlot):
    """Training loss per decoder (and the weighted total) against the step, on a log scale."""

    def __init__(self, decoders: list[str], **kw) -> None:
        super().__init__(**kw)
        self.decoders = decoders
        self.steps: list[int] = []
        self.series: dict[str, list[float]] = {d: [] for d in [*decoders, "total"]}

    def on_mount(self) -> None:
        self.draw()

    def reset(self) -> None:
        self.steps = []
        self.series = {d: [] for d in [*self.decoders, "total"]}
        self.draw()

    def add(self, step: int, losses: dict[str, float]) -> None:
        self.steps.append(step)
        for name in self.series:
            value = losses.get(name, math.nan)
            self.series[name].append(value if math.isfinite(value) and value > 0 else math.nan)
        self.draw()

    def draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("loss per decoder" + ("" if self.steps else " — not trained yet"))
        plt.xlabel("step")
        if self.steps:
            plt.yscale("log")
            for name, values in self.series.items():
                points = [(s, v) for s, v in zip(self.steps, values) if not math.isnan(v)]
                if points:
                    plt.plot([p[0] for p in points], [p[1] for p in points], label=name,
                             marker="braille")
        self.refresh()


class TrainPanel(Vertical):
    """Controls, live statistics, the loss plot and the per-route matrix (the app runs the worker)."""

    BINDINGS = [
        Binding("s", "app.train_start", "Start"),
        Binding("p", "app.train_pause", "Pause/Resume"),
        Binding("x", "app.train_stop", "Stop"),
        Binding("w", "app.train_save", "Write stopped", show=False),
    ]

    def __init__(self, checked: Checked, run_label: str, **kw) -> None:
        super().__init__(**kw)
        self.checked = checked
        self.run_label = run_label

    def compose(self) -> ComposeResult:
        cfg = self.checked.train
        with Horizontal(id="train-controls"):
            yield Button("Start", id="train-start", variant="success")
            yield Button("Pause", id="train-pause", variant="warning", disabled=True)
            yield Button("Stop", id="train-stop", variant="error", disabled=True)
            until = " · until exact" if cfg.until_exact else ""
            yield Static(f"writes [b]{self.run_label}[/b]\n{cfg.steps} steps · batch {cfg.batch} · "
                         f"{cfg.optimizer} {cfg.lr:g} · seed {cfg.seed}{until}", id="train-config")
        with Horizontal(id="train-status"):
            yield ProgressBar(total=cfg.steps, show_eta=False, id="train-progress")
            yield Static("idle — press s to start training", id="train-stats")
        with Horizontal(id="train-body"):
            plot = LossPlot(list(self.checked.graph.decoders), id="loss-plot")
            yield plot
            with Vertical(id="matrix-box") as box:
                box.border_title = "exact match per route"
                yield RouteMatrix(self.checked, id="route-matrix")
                yield Static(id="train-note")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        action = {"train-start": "train_start", "train-pause": "train_pause", "train-stop": "train_stop"}
        if event.button.id in action:
            event.stop()
            self.app.run_action(f"app.{action[event.button.id]}")

    def set_state(self, state: str) -> None:
        """idle | waiting | running | pausing | paused | stopping | done | stopped | failed"""
        start = self.query_one("#train-start", Button)
        pause = self.query_one("#train-pause", Button)
        stop = self.query_one("#train-stop", Button)
        busy = state in ("waiting", "running", "pausing", "paused", "stopping")
        start.disabled = busy
        start.label = "Train again" if state in ("done", "stopped", "failed") else "Start"
        pause.disabled = state not in ("running", "paused", "pausing")
        pause.label = "Resume" if state in ("paused", "pausing") else "Pause"
        stop.disabled = state not in ("waiting", "running", "pausing", "paused")
        if state in ("idle", "done", "stopped", "failed") and (start.has_focus is False) and \
                (pause.has_focus or stop.has_focus):
            start.focus()

    def set_stats(self, text: str | Text) -> None:
        self.query_one("#train-stats", Static).update(text)

    def set_note(self, text: str | Text) -> None:
        self.query_one("#train-note", Static).update(text)

    def set_progress(self, step: int, total: int) -> None:
        self.query_one("#train-progress", ProgressBar).update(total=total, progress=step)
