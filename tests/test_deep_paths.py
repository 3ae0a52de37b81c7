"""Very deep trees (deeper than Python's recursion limit) plan, apply and verify.

Paths of a few thousand bytes must round-trip (design.md §7); nothing on the way
may recurse once per directory level.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from overlayfs import requires_root

DEPTH = sys.getrecursionlimit() + 200


def _deep(root: Path, depth: int) -> bytes:
    """Make root/d/d/.../d (depth levels) with a file at the bottom; returns its relative path."""
    rel = b"/".join([b"d"] * depth) + b"/f"
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):  # relative to a directory fd: no PATH_MAX, no recursion
            os.mkdir("d", dir_fd=fd)
            nfd = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        wfd = os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(wfd, b"deep\n")
        os.close(wfd)
    finally:
        os.close(fd)
    return rel


@pytest.fixture
def deep_tmp(tmp_path: Path):
    """tmp_path, emptied with overmerge's own loop afterwards: pytest's cleanup of old
    tmp dirs uses shutil.rmtree, which recurses and fails on these trees."""
    from overmerge.fsutil import remove_tree

    yield tmp_path
    for child in tmp_path.iterdir():
        remove_tree(os.fsencode(child))


@requires_root
@pytest.mark.root
def test_deep_tree_plans_applies_and_verifies(deep_tmp: Path, run_cli) -> None:
    tmp_path = deep_tmp
    old, new, top = (tmp_path / n for n in ("old", "new", "top"))
    for d in (old, new, top):
        d.mkdir()
    rel = _deep(top, DEPTH)
    plan = tmp_path / "plan.json"
    proc = run_cli("plan", "--old", old, "--new", new, "--upper", top, "-o", plan)
    assert proc.returncode == 0, proc.stderr.decode()
    out = tmp_path / "nu"
    proc = run_cli("apply", plan, "--output", out, "--verify")
    assert proc.returncode == 0, proc.stderr.decode()
    assert (out / os.fsdecode(rel)).read_bytes() == b"deep\n"
    flat = tmp_path / "flat"
    proc = run_cli("flatten", plan, "--output", flat)
    assert proc.returncode == 0, proc.stderr.decode()
    assert (flat / os.fsdecode(rel)).read_bytes() == b"deep\n"


def test_remove_tree_handles_deep_and_unreadable_dirs(deep_tmp: Path) -> None:
    tmp_path = deep_tmp
    from overmerge.fsutil import remove_tree

    root = tmp_path / "stage"
    root.mkdir()
    _deep(root, DEPTH)
    os.chmod(root / "d", 0o000)  # like an overlay work dir left behind
    remove_tree(os.fsencode(root))
    assert not root.exists()
