"""Benchmark: `overmerge plan` on a large tree against `diff -rq OLD NEW` in the same run.

Builds OLD with N files in nested directories, NEW with 1% of the files changed,
added or removed, and TOP (a plain upperdir; no mount needed) with 0.5% of the files
edited and some whiteouts. Prints wall times and the ratio plan / diff -rq.
`diff -rq` compares two trees only (and reads every file whose size matches);
plan reads three trees, stats and reads xattrs of every entry and classifies.

    python benchmarks/bench_plan.py [--files 50000]
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def build(root: Path, files: int, seed: int = 1) -> None:
    rnd = random.Random(seed)
    old, new, top = root / "old", root / "new", root / "top"
    for i in range(files):
        rel = Path(f"d{i % 97}/s{i % 13}/f{i}.conf")
        data = f"# file {i}\n" + "".join(f"key{j} = value{j}\n" for j in range(rnd.randint(5, 40)))
        for base in (old, new):
            p = base / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(data)
        # Same mtime in OLD and NEW for unchanged files, as an image build would give.
        mtime = 1_600_000_000 + i
        os.utime(old / rel, (mtime, mtime))
        os.utime(new / rel, (mtime, mtime))
        roll = rnd.random()
        if roll < 0.01:
            (new / rel).write_text(data + "vendor = 1\n")
        elif roll < 0.012:
            (new / rel).unlink()
        if rnd.random() < 0.005:
            (top / rel).parent.mkdir(parents=True, exist_ok=True)
            (top / rel).write_text(data.replace("value1\n", "mine\n"))
        elif rnd.random() < 0.001 and os.geteuid() == 0:
            (top / rel).parent.mkdir(parents=True, exist_ok=True)
            os.mknod(top / rel, stat.S_IFCHR, 0)
    for i in range(files // 100):
        p = new / f"added/a{i}"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"new {i}\n")
    top.mkdir(exist_ok=True)


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="overmerge-bench-"))
    try:
        t0 = time.perf_counter()
        build(root, args.files)
        print(f"built {args.files} files in {time.perf_counter() - t0:.1f}s under {root}")
        old, new, top = (str(root / n) for n in ("old", "new", "top"))
        # Warm the page cache so both tools read from memory.
        timed(["diff", "-rq", old, new])
        plan = [sys.executable, "-m", "overmerge", "plan", "--old", old, "--new", new, "--upper", top,
                "-o", str(root / "plan.json")]
        diff_t = min(timed(["diff", "-rq", old, new]) for _ in range(args.repeat))
        plan_t = min(timed(plan) for _ in range(args.repeat))
        check_t = min(timed(plan + ["--checksum"]) for _ in range(args.repeat))
        print(f"diff -rq OLD NEW          {diff_t:8.3f}s")
        print(f"overmerge plan            {plan_t:8.3f}s   ratio {plan_t / diff_t:5.2f}x diff -rq")
        print(f"overmerge plan --checksum {check_t:8.3f}s   ratio {check_t / diff_t:5.2f}x diff -rq")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
