"""Time to first screen of `overmerge resolve` on a plan with 500 conflicts.

    sudo .venv/bin/python benchmarks/bench_tui.py [N]

Builds the demo layers plus N one-hunk text conflicts in a temporary directory
(root: TOP holds a whiteout), plans, then measures headlessly at 80×24:
construct the app (reads the plan) → the conflict list is on screen; then the
background layer read, opening a file and stepping through 50 files.
"""
from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from overmerge.tui.demo import build_plan


async def measure(plan_path: Path) -> dict[str, float]:
    from overmerge.tui.app import ResolveApp
    from overmerge.tui.screens.conflicts import ConflictsScreen

    t0 = time.perf_counter()
    app = ResolveApp(plan_path)
    async with app.run_test(size=(80, 24)) as pilot:
        while not isinstance(app.screen, ConflictsScreen):
            await pilot.pause()
        await pilot.pause()
        first = time.perf_counter() - t0
        await app.workers.wait_for_complete()
        layers = time.perf_counter() - t0
        t1 = time.perf_counter()
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        open_file = time.perf_counter() - t1
        t2 = time.perf_counter()
        for _ in range(50):
            await pilot.press("right_square_bracket")
            await app.workers.wait_for_complete()
            await pilot.pause()
        step = (time.perf_counter() - t2) / 50
        # The Pilot's own cost per key press (a key the file screen ignores here).
        t3 = time.perf_counter()
        for _ in range(50):
            await pilot.press("n")
            await app.workers.wait_for_complete()
            await pilot.pause()
        baseline = (time.perf_counter() - t3) / 50
        rows = len(app.rows)
    return {"conflicts": rows, "first_screen_s": first, "layers_loaded_s": layers,
            "open_file_s": open_file, "next_file_s": step, "pilot_key_s": baseline}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    with tempfile.TemporaryDirectory(prefix="overmerge-bench-") as tmp:
        plan_path = build_plan(Path(tmp), extra_conflicts=n)
        result = asyncio.run(measure(plan_path))
    print(f"conflicts: {result['conflicts']}")
    print(f"time to first screen: {result['first_screen_s']:.3f} s")
    print(f"layers read (background worker): {result['layers_loaded_s']:.3f} s after start")
    print(f"open a file: {result['open_file_s'] * 1000:.0f} ms; next file: {result['next_file_s'] * 1000:.0f} ms "
          f"(of which the test Pilot's own per-key cost: {result['pilot_key_s'] * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
