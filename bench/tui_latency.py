"""How responsive `tanglec explore` is (issue 17): the first paint, and how long a key press takes to
render while training runs — measured with Textual's Pilot on specs/arith.tangle (all 300 steps).

A key press here moves the graph's cursor (right, then left: the graph and the module details are
redrawn), timed by Pilot from the key to the app being idle again; a view switch costs more (every
widget restyled, the tab underline animated), reported apart. Training runs in a
worker thread, so what a key waits for is the GIL between TensorFlow's chunks.

    python bench/tui_latency.py [--json bench/results/tui_latency.json]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tanglec.tui.app import ExploreApp  # noqa: E402


async def key_to_screen(pilot, key: str) -> float:
    """Seconds from pressing a key to the app being idle again with the screen refreshed (Pilot)."""
    started = time.perf_counter()
    await pilot.press(key)
    await pilot.wait_for_scheduled_animations()
    return time.perf_counter() - started


async def measure(tmp: Path) -> dict:
    spec = tmp / "arith.tangle"  # all 300 steps (not `until exact`), so that training lasts a while
    spec.write_text((ROOT / "specs" / "arith.tangle").read_text().replace(" until exact", ""))
    app = ExploreApp(spec, tmp / "run")
    async with app.run_test(size=(120, 36)) as pilot:
        while app.first_paint is None:
            await pilot.pause(0.01)
        first_paint = app.first_paint
        while not app.tf_ready.is_set():
            await pilot.pause(0.1)
        await pilot.pause(0.3)
        switches = []
        for key in ["2", "1"] * 3:
            switches.append(1000 * await key_to_screen(pilot, key))
        idle = []
        for key in ["right", "left"] * 5:
            idle.append(1000 * await key_to_screen(pilot, key))
        app.action_train_start()  # from the Graph view: its keys stay on the graph's cursor
        presses, keys = [], ["right", "left"]
        while app.train_state not in ("done", "stopped", "failed"):
            if app.train_state == "running" and app.history:  # past the first chunk (graph tracing)
                presses.append(await key_to_screen(pilot, keys[len(presses) % 2]))
            await asyncio.sleep(0.05)
        state = app.train_state
    ms = sorted(1000 * p for p in presses)
    return {"first_paint_s": round(first_paint, 3), "idle_key_ms_median": round(statistics.median(idle), 1),
            "view_switch_ms_median": round(statistics.median(switches), 1), "training": state, "key_presses": len(ms),
            "key_ms_median": round(statistics.median(ms), 1) if ms else None,
            "key_ms_p90": round(ms[int(0.9 * (len(ms) - 1))], 1) if ms else None,
            "key_ms_max": round(ms[-1], 1) if ms else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = asyncio.run(measure(Path(tmp)))
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
