"""overmerge rollback: swap back, refuse a mounted TOP, clean a half-done apply first."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from applyhelp import make_plan_file, snapshot
from casebuild import build_case
from overlayfs import requires_root

pytestmark = [requires_root, pytest.mark.root]

SPEC = {"old": {"etc/a": "1\n"}, "new": {"etc/a": "1\n", "etc/v": "v\n"}, "user": "echo 2 > etc/a\n"}


def test_rollback_refuses_mounted_top(tmp_path: Path, run_cli) -> None:
    from overmerge.mounts import overlay

    layers = build_case(SPEC, tmp_path / "case")
    _, plan = make_plan_file(layers, tmp_path)
    assert run_cli("apply", plan, "--in-place").returncode == 0
    mnt = tmp_path / "m"
    mnt.mkdir()
    with overlay([layers.new], mnt, upperdir=layers.upper, workdir=layers.work):
        proc = run_cli("rollback", layers.upper)
        assert proc.returncode == 2 and b"unmount" in proc.stderr
        proc = run_cli("apply", plan, "--in-place")
        assert proc.returncode == 2 and b"mounted" in proc.stderr


def test_rollback_after_crash_before_commit(tmp_path: Path, run_cli) -> None:
    layers = build_case(SPEC, tmp_path / "case")
    before = snapshot(layers.upper)
    _, plan = make_plan_file(layers, tmp_path)
    # A half-done apply: journal in the staging phase and a partial stage.
    top = str(layers.upper)
    Path(top + ".overmerge-journal").write_text(json.dumps({"version": 1, "mode": "in-place", "phase": "staging"}))
    os.mkdir(top + ".overmerge-stage")
    Path(top + ".overmerge-stage/partial").write_text("x")
    proc = run_cli("rollback", layers.upper)
    assert proc.returncode == 0 and b"unchanged" in proc.stdout
    assert snapshot(layers.upper) == before
    assert not os.path.exists(top + ".overmerge-stage") and not os.path.exists(top + ".overmerge-journal")
    # And apply still works afterwards with the same plan.
    assert run_cli("apply", plan, "--in-place").returncode == 0
