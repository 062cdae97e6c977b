"""The Train view: start / pause / resume / stop, live loss per decoder, rate and ETA, per-route accuracy,
and the route × module grid (tanglec.tui.widgets.grid)."""
from __future__ import annotations

import itertools

from rich.markup import escape
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, ProgressBar, Static

from ...spec.checks import Checked
from .grid import LossesLine, ModuleGrid, percent


BUSY = ("waiting", "running", "pausing", "paused", "stopping")


def duration(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.0f}s"
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


class RouteMatrix(DataTable):
    """Exact-match accuracy per route. With two or more selectors: rows are the first selector's values,
    columns the combinations of the others. With one (or none): a row per route, a column per decoder."""

    def __init__(self, checked: Checked, **kw) -> None:
        super().__init__(cursor_type="none", zebra_stripes=False, **kw)
        self.checked = checked
        g = checked.graph
        sels = g.mux_selectors()
        self.row_sel = sels[:1]
        self.col_sels = sels[1:]
        self.by_decoder = len(sels) < 2
        self.row_values = [v.text for v in g.selectors[sels[0]].values] if sels else ["all"]
        if self.by_decoder:
            self.col_keys = [*g.decoders, "__all"]
            self.col_labels = [*g.decoders, "exact"]
        else:
            combos = [tuple(c) for c in itertools.product(*[[v.text for v in g.selectors[s].values]
                                                            for s in self.col_sels])]
            self.col_keys = ["|".join(c) for c in combos]
            self.col_labels = ["·".join(c) for c in combos]

    def on_mount(self) -> None:
        corner = self.row_sel[0] if self.row_sel else "route"
        if not self.by_decoder:
            corner += " ╲ " + "·".join(self.col_sels)
        self.add_column(corner, key="__row")
        for key, label in zip(self.col_keys, self.col_labels):
            self.add_column(label, key=key)
        for value in self.row_values:
            self.add_row(Text(value, style="bold"), *[percent(None) for _ in self.col_keys], key=value)

    def _row(self, selection: dict[str, str]) -> str:
        return selection[self.row_sel[0]] if self.row_sel else "all"

    def show(self, report: dict | None) -> None:
        for value in self.row_values:
            for key in self.col_keys:
                self.update_cell(value, key, percent(None))
        for r in (report or {}).get("routes", []):
            try:
                row = self._row(r["selection"])
                if self.by_decoder:
                    for d, acc in (r.get("decoders_accuracy") or {}).items():
                        self.update_cell(row, d, percent(acc))
                    self.update_cell(row, "__all", percent(r.get("accuracy")))
                else:
                    self.update_cell(row, "|".join(r["selection"][s] for s in self.col_sels), percent(r.get("accuracy")))
            except Exception:  # noqa: BLE001 — a report of another spec version: skip that route
                continue

    def cells(self) -> list[str]:
        """Every accuracy cell as shown (tests)."""
        return [str(self.get_cell(v, k)) for v in self.row_values for k in self.col_keys]


class TrainPanel(Vertical):
    """Controls, live statistics, the loss plot and the per-route matrix (the app runs the worker)."""

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
            comp = getattr(self.checked, "composition", None)
            phases = [p.name for p in getattr(comp, "phases", [])]
            extra = f" · phases {', '.join(phases)}" if phases else ""
            frozen = sorted(getattr(comp, "frozen", ()))
            extra += f" · {len(frozen)} frozen" if frozen else ""
            yield Static(f"writes [b]{escape(self.run_label)}[/b]\n{cfg.steps} steps · batch {cfg.batch} · "
                         f"{cfg.optimizer} {cfg.lr:g} · seed {cfg.seed}{until}{extra}", id="train-config")
        with Horizontal(id="train-status"):
            yield ProgressBar(total=cfg.steps, show_eta=False, id="train-progress")
            yield Static("idle — press s to start training", id="train-stats")
        from .plot import LossPlot  # plotext loads here, after the first paint (the panel mounts then)

        with Horizontal(id="train-body"):
            plot = LossPlot(list(self.checked.graph.decoders), id="loss-plot")
            yield plot
            with Vertical(id="matrix-box") as box:
                box.border_title = "exact match per route"
                yield RouteMatrix(self.checked, id="route-matrix")
                yield Static(id="train-note")
        with Vertical(id="grid-box") as box:
            box.border_title = "route × module: weight update ‖Δw‖/‖w‖ at the last evaluation"
            yield ModuleGrid(self.checked, id="module-grid")
            yield LossesLine(self.checked, id="losses-line")

    def on_mount(self) -> None:
        hook = getattr(self.app, "panel_mounted", None)
        if hook:
            self.call_after_refresh(hook, self)

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
        busy = state in BUSY
        start.disabled = busy
        start.label = "Train again" if state in ("done", "stopped", "failed") else "Start"
        pause.disabled = state not in ("running", "paused", "pausing")
        pause.label = "Resume" if state in ("paused", "pausing") else "Pause"
        stop.disabled = state not in ("waiting", "running", "pausing", "paused")
        if state in ("idle", "done", "stopped", "failed") and (pause.has_focus or stop.has_focus):
            start.focus()

    def set_stats(self, text: str | Text) -> None:
        self.query_one("#train-stats", Static).update(text)

    def set_note(self, text: str | Text) -> None:
        self.query_one("#train-note", Static).update(text)

    def set_progress(self, step: int, total: int) -> None:
        self.query_one("#train-progress", ProgressBar).update(total=total, progress=step)

    def reset(self) -> None:
        """A new training begins: nothing measured yet."""
        self.query_one("#loss-plot").reset()
        self.query_one("#route-matrix").show(None)
        self.query_one("#module-grid", ModuleGrid).show({}, None)
        self.query_one("#losses-line", LossesLine).show({})
        self.set_progress(0, self.checked.train.steps)

    def show_update(self, update, state: str, new: list) -> None:
        """The last evaluation (the matrix, the grid, the bar and the statistics), and the `new` evaluations
        since the last call on the plot."""
        p = update.progress
        if new:
            self.query_one("#loss-plot").add([(u.progress.step, u.progress.losses) for u in new])
        self.query_one("#route-matrix").show(p.report)
        self.query_one("#module-grid", ModuleGrid).show(update.motion, p.report)
        self.query_one("#losses-line", LossesLine).show(p.losses)
        self.set_progress(p.step, p.total_steps)
        self.set_stats(stats_text(update, state, self.checked.train.until_exact))

    def show_finished(self, result, written: bool) -> None:
        """The end of a training: written to the run directory, or stopped with the directory untouched."""
        self.query_one("#route-matrix").show(result.report)
        if not written:
            self.set_stats(Text.assemble(("stopped ", "bold yellow"), f"at step {result.steps_run}; the run "
                                         "directory is unchanged — press w to write this model"))
            return
        acc = result.report["accuracy"]
        how = "reached 100% exact" if result.stopped_early else f"ran {result.steps_run} steps"
        self.set_progress(result.steps_run, result.steps_run)  # finished: a full bar, early or not
        self.set_stats(Text.assemble(
            ("done ", "bold green"),
            f"{how}: step {result.steps_run}, exact {result.report['exact']}/{result.report['cases']}"
            + (f" = {acc:.0%}" if acc is not None else "") + f", {result.seconds:.1f}s"))


def stats_text(update, state: str, until_exact: bool) -> Text:
    """Step, rate, ETA, loss and exact match of the last evaluation (and a pause or stop under way)."""
    p, rate = update.progress, update.rate
    remaining = (p.total_steps - p.step) / rate if rate > 0 else 0.0
    text = Text()
    shown = {"paused": "paused", "pausing": "pausing…", "stopping": "stopping…"}.get(state)
    if shown:
        text.append(f"{shown}  ", style="bold yellow")
    text.append(f"step {p.step}/{p.total_steps}", style="bold")
    text.append(f" · {rate:.1f} steps/s · ETA {duration(remaining)}")
    if until_exact:
        text.append(" (or sooner: until exact)", style="dim")
    report = p.report
    text.append(f"\nloss {p.losses.get('total', float('nan')):.4f} · exact {report['exact']}/{report['cases']}")
    acc = report["accuracy"]
    text.append(f" = {acc:.0%}" if acc is not None else "", style="bold green" if acc == 1.0 else "")
    return text
