"""Crash safety: `apply --in-place` killed with SIGKILL at every crash point
(OVERMERGE_CRASH_AT=N, read by the CLI) leaves TOP, after a rerun or a rollback,
byte-for-byte the old TOP or the complete new upper — never a mix."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from applyhelp import snapshot
from casebuild import build_case
from conftest import REPO
from overlayfs import requires_root

pytestmark = [requires_root, pytest.mark.root]

SPEC = {
    "old": {"etc/a.conf": "a=1\n", "etc/b.conf": "b=1\n", "etc/c.conf": "c=1\n", "usr/share/d/x": "x\n"},
    "new": {"etc/a.conf": "a=1\n", "etc/b.conf": "b=2\n", "etc/c.conf": "c=1\n", "usr/share/d/x": "x2\n",
            "etc/new.conf": "n\n"},
    "user": "echo a=9 > etc/a.conf\necho b=9 > etc/b.conf\nrm etc/c.conf\n"
            "mkdir -p var/lib/mine\necho 1 > var/lib/mine/one\nln var/lib/mine/one var/lib/mine/two\n"
            "chmod 700 var/lib/mine\n",
}


def _cli(*args, crash_at: int | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("OVERMERGE_CRASH_AT", None)
    if crash_at is not None:
        env["OVERMERGE_CRASH_AT"] = str(crash_at)
    return subprocess.run([sys.executable, "-m", "overmerge", *map(os.fspath, args)], cwd=REPO,
                          capture_output=True, env=env, timeout=60)


def _plan(layers, path: Path) -> Path:
    from overmerge.planner import make_plan

    plan = make_plan(layers.old, layers.new, layers.upper)
    path.write_text(json.dumps(plan.to_json()))
    return path


def test_sigkill_at_every_point(tmp_path: Path) -> None:
    layers = build_case(SPEC, tmp_path / "case")
    top = layers.upper
    before = snapshot(top)
    # The complete new upper, made once without crashing (to a separate directory).
    ref = tmp_path / "reference"
    proc = _cli("apply", _plan(layers, tmp_path / "p0.json"), "--output", ref, "--unresolved", "keep-user")
    assert proc.returncode == 0, proc.stderr
    after = snapshot(ref)
    assert after != before

    crashed = 0
    for n in range(1, 200):
        plan = _plan(layers, tmp_path / f"p{n}.json")
        proc = _cli("apply", plan, "--in-place", "--workdir", layers.work, "--unresolved", "keep-user", crash_at=n)
        if proc.returncode == 0:
            break  # past the last crash point
        assert proc.returncode == -9, proc.stderr
        crashed += 1
        if n % 2:
            # Rerun: finishes a committed apply, or cleans a staged one and applies again.
            proc = _cli("apply", plan, "--in-place", "--workdir", layers.work, "--unresolved", "keep-user")
            assert proc.returncode == 0, (n, proc.stderr)
            assert snapshot(top) == after, f"crash point {n}: rerun did not give the complete new upper"
            _assert_clean(top)
            rb = _cli("rollback", top)
            assert rb.returncode == 0, rb.stderr
        else:
            rb = _cli("rollback", top)
            assert rb.returncode in (0, 2), rb.stderr
            if rb.returncode == 2:  # nothing to roll back: the crash came before any previous TOP existed
                assert b"no previous TOP" in rb.stderr
        assert snapshot(top) == before, f"crash point {n}: rollback did not give the old TOP"
        _assert_clean(top)
    else:
        pytest.fail("apply never finished")
    assert crashed >= 10
    # The final uncrashed run is complete, with the aside dir holding your side not taken.
    assert snapshot(top) == after


def _assert_clean(top: Path) -> None:
    leftovers = [p.name for p in top.parent.iterdir()
                 if p.name.endswith((".overmerge-stage", ".overmerge-aside-stage", ".overmerge-journal"))]
    assert not leftovers, leftovers
