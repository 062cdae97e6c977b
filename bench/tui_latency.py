"""How responsive `tanglec explore` is (issue 17): the first paint, and how long a key press takes to
render while training runs — measured with Textual's Pilot on specs/arith.tangle.

A key press here is a switch between the Train and Graph views (the whole screen re-laid out and
drawn): the time from posting the key to the screen being refreshed after it. Training runs in a
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


async def measure(run_dir: Path) -> dict:
    app = ExploreApp(ROOT / "specs" / "arith.tangle", run_dir)
    async with app.run_test(size=(120, 36)) as pilot:
        while app.first_paint is None:
            await pilot.pause(0.01)
        first_paint = app.first_paint
        while not app.tf_ready.is_set():
            await pilot.pause(0.1)
        await pilot.press("2")
        await pilot.pause(0.3)
        await pilot.press("s")
        presses, keys = [], ["1", "2"]
        while app.train_state not in ("done", "stopped", "failed"):
            if app.train_state == "running" and app.history:  # past the first chunk (graph tracing)
                started = time.perf_counter()
                await pilot.press(keys[len(presses) % 2])
                await pilot.wait_for_animation()
                presses.append(time.perf_counter() - started)
            await pilot.pause(0.05)
        state = app.train_state
    ms = sorted(1000 * p for p in presses)
    return {"first_paint_s": round(first_paint, 3), "training": state, "key_presses": len(ms),
            "key_ms_median": round(statistics.median(ms), 1) if ms else None,
            "key_ms_p90": round(ms[int(0.9 * (len(ms) - 1))], 1) if ms else None,
            "key_ms_max": round(ms[-1], 1) if ms else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = asyncio.run(measure(Path(tmp) / "run"))
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
