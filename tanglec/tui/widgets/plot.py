"""The Train view's loss plot (textual-plotext), in its own module so plotext loads only when it is shown."""
from __future__ import annotations

import math

from textual_plotext import PlotextPlot


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

    def add(self, points: list[tuple[int, dict[str, float]]]) -> None:
        """Evaluations (step, loss per decoder), drawn once."""
        for step, losses in points:
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
