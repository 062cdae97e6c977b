"""How responsive `tanglec explore` is (issue 17): the first paint, and how long a key press takes to
render, idle and while training runs, on specs/arith.tangle trained for 2000 steps (not `until exact`, so
that training lasts long enough for a few dozen key presses).

A key press here moves the graph's cursor (right, then left: the graph and the module details are
redrawn). It is timed two ways:

- `frame`: from the key event being posted to the end of the first frame the compositor renders with
  the module details for the new node in it (the graph's highlight is painted in that frame or before).
  This is what a user waits for.
- `pilot`: Textual's Pilot, `press` + `wait_for_scheduled_animations`, which also sleeps until the
  process looks idle (at least ~80 ms, see `pilot_floor`: the same on a one-Static app), and while
  training runs, until TensorFlow's threads leave the CPU alone (up to 1 s a wait).

A view switch (every widget restyled, the tab underline animated) is timed with Pilot, reported apart.
Training runs in a worker thread, so what a key waits for is the GIL between TensorFlow's chunks.

    python bench/tui_latency.py [--json bench/results/tui_latency.json]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from textual import events  # noqa: E402
from textual.app import App  # noqa: E402
from textual.widgets import Static  # noqa: E402

from tanglec.tui.app import ExploreApp  # noqa: E402

SETTLE_TIMEOUT = 5.0
TRAIN_STEPS = 2000
PILOT_EVERY = 5  # while training: one key press timed with Pilot for this many timed to the frame


class FrameClock:
    """When the screen's compositor finished each frame, and which widgets were repainted in it.

    Wraps the compositor's `update_widgets` (which widgets are dirty) and `render_update` (the frame
    the app writes to the terminal) on one screen: Textual has no public hook for a finished frame.
    """

    def __init__(self, screen) -> None:
        self.frames: list[tuple[float, frozenset]] = []
        compositor = screen._compositor
        update_widgets, render_update = compositor.update_widgets, compositor.render_update
        dirty: set = set()

        def traced_update_widgets(widgets):
            dirty.update(widgets)
            return update_widgets(widgets)

        def traced_render_update(*args, **kwargs):
            update = render_update(*args, **kwargs)
            self.frames.append((time.perf_counter(), frozenset(dirty)))
            dirty.clear()
            return update

        compositor.update_widgets, compositor.render_update = traced_update_widgets, traced_render_update

    async def key_to_frame(self, app: App, key: str, shows) -> float:
        """Seconds from posting `key` to the end of the first frame that repaints the widget `shows`."""
        self.frames.clear()
        started = time.perf_counter()
        app.post_message(events.Key(key, None))
        while time.perf_counter() - started < SETTLE_TIMEOUT:
            for finished, widgets in self.frames:
                if shows in widgets:
                    return finished - started
            await asyncio.sleep(0.002)
        raise TimeoutError(f"no frame repainted {shows} within {SETTLE_TIMEOUT}s of the key {key!r}")


async def key_to_screen(pilot, key: str) -> float:
    """Seconds from pressing a key to the app being idle again with the screen refreshed (Pilot)."""
    started = time.perf_counter()
    await pilot.press(key)
    await pilot.wait_for_scheduled_animations()
    return time.perf_counter() - started


class OneStatic(App):
    """The least a key press can cost through Pilot: one Static, a key that updates it."""

    BINDINGS = [("right", "bump(1)"), ("left", "bump(-1)")]
    count = 0

    def compose(self):
        yield Static("0", id="count")

    def action_bump(self, by: int) -> None:
        self.count += by
        self.query_one("#count", Static).update(str(self.count))


async def pilot_floor() -> list[float]:
    async with OneStatic().run_test(size=(120, 36)) as pilot:
        await pilot.pause(0.2)
        return [1000 * await key_to_screen(pilot, key) for key in ["right", "left"] * 5]


def summary(ms: list[float], name: str) -> dict:
    ms = sorted(ms)
    if not ms:
        return {f"{name}_n": 0}
    return {f"{name}_n": len(ms), f"{name}_median": round(statistics.median(ms), 1),
            f"{name}_p90": round(ms[int(0.9 * (len(ms) - 1))], 1), f"{name}_max": round(ms[-1], 1)}


async def measure(tmp: Path) -> dict:
    spec = tmp / "arith.tangle"
    source = (ROOT / "specs" / "arith.tangle").read_text()
    spec.write_text(source.replace("train steps 300", f"train steps {TRAIN_STEPS}").replace(" until exact", ""))
    app = ExploreApp(spec, tmp / "run")
    async with app.run_test(size=(120, 36)) as pilot:
        while app.first_paint is None:
            await pilot.pause(0.01)
        first_paint = app.first_paint
        while not app.tf_ready.is_set():
            await pilot.pause(0.1)
        await pilot.pause(0.3)
        clock = FrameClock(app.screen)
        details = app.query_one("#node-details")
        switches = [1000 * await key_to_screen(pilot, key) for key in ["2", "1"] * 3]
        idle_pilot = [1000 * await key_to_screen(pilot, key) for key in ["right", "left"] * 5]
        idle_frame = []
        for key in ["right", "left"] * 10:
            idle_frame.append(1000 * await clock.key_to_frame(app, key, details))
            await asyncio.sleep(0.05)
        app.action_train_start()  # from the Graph view: its keys stay on the graph's cursor
        training_started = time.perf_counter()
        busy_pilot, busy_frame, keys = [], [], ["right", "left"]
        while app.train_state not in ("done", "stopped", "failed"):
            if app.train_state == "running" and app.history:  # past the first chunk (graph tracing)
                key = keys[(len(busy_pilot) + len(busy_frame)) % 2]
                if len(busy_frame) < PILOT_EVERY * (len(busy_pilot) + 1):
                    busy_frame.append(1000 * await clock.key_to_frame(app, key, details))
                else:  # Pilot waits seconds for an idle CPU while TensorFlow trains: a few of those
                    busy_pilot.append(1000 * await key_to_screen(pilot, key))
            await asyncio.sleep(0.05)
        state, training_s = app.train_state, time.perf_counter() - training_started
        await app.workers.wait_for_complete()  # the new model's query answers, before the app closes
    return {"first_paint_s": round(first_paint, 3),
            "view_switch_pilot_ms_median": round(statistics.median(switches), 1),
            **summary(idle_frame, "idle_key_frame_ms"), **summary(idle_pilot, "idle_key_pilot_ms"),
            "training": state, "training_s": round(training_s, 1),
            **summary(busy_frame, "training_key_frame_ms"), **summary(busy_pilot, "training_key_pilot_ms")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    floor = asyncio.run(pilot_floor())
    with tempfile.TemporaryDirectory() as tmp:
        figures = asyncio.run(measure(Path(tmp)))
    figures = {**figures, **summary(floor, "pilot_floor_ms"), "load_average_1m": round(os.getloadavg()[0], 2)}
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
