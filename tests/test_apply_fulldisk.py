"""A full disk during apply: a one-line error, exit 2, and nothing lost or half-written.

The destination lives on a small tmpfs mounted inside the test's tmp_path (and
always unmounted), so the disk really fills up under apply.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from applyhelp import make_plan_file, snapshot
from casebuild import build_case
from conftest import REPO
from overlayfs import requires_root
from overmerge.mounts import umount

pytestmark = [requires_root, pytest.mark.root]

BIG = 3 << 20


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        umount(path)


def _spec() -> dict:
    return {
        "old": {"etc/app.conf": "a=1\n", "etc/keep": "k\n"},
        "new": {"etc/app.conf": "a=2\n", "etc/keep": "k\n", "etc/vendor": "v\n"},
        # Your change: a large file that the new upper must hold in full.
        "user": f"head -c {BIG} /dev/urandom > etc/big.bin\necho mine > etc/mine.conf\n",
    }


def _apply(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "overmerge", "apply", *map(str, args)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)


def test_output_on_a_full_disk(tmp_path: Path) -> None:
    layers = build_case(_spec(), tmp_path / "case")
    _, plan = make_plan_file(layers, tmp_path)
    before = snapshot(layers.upper)
    with small_tmpfs(tmp_path / "small", "1m") as small:
        proc = _apply(plan, "--output", small / "new-upper")
        assert proc.returncode == 2, proc.stdout + proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("overmerge: "), proc.stderr
        assert "No space left on device" in lines[0] and "nothing was changed" in lines[0]
        assert os.listdir(small) == [], "apply left staging or a partial output on the full disk"
    assert snapshot(layers.upper) == before


def test_in_place_on_a_full_disk_keeps_top(tmp_path: Path) -> None:
    # TOP itself lives on a tmpfs with room for it but not for a second copy.
    with small_tmpfs(tmp_path / "small", "5m") as small:
        layers = build_case(_spec(), small / "case")
        _, plan = make_plan_file(layers, tmp_path)
        before = snapshot(layers.upper)
        proc = _apply(plan, "--in-place", "--workdir", layers.work)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "No space left on device" in proc.stderr
        assert snapshot(layers.upper) == before, "TOP changed although apply failed"
        leftovers = [n for n in os.listdir(layers.upper.parent) if ".overmerge-" in n]
        assert leftovers == [], f"apply left {leftovers} beside TOP"
