"""What a tired administrator trips on: each mistake gives one line naming the path and
the fix, the right exit code, and changes nothing."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from casebuild import build_case, tree_from_spec
from overlayfs import requires_root

OLD = {"etc/app.conf": "a=1\n", "etc/other": "x\n"}
NEW = {"etc/app.conf": "a=1\nb=2\n", "etc/other": "x\n", "etc/vendor-new": "v\n"}


@pytest.fixture
def planned(tmp_path: Path, run_cli) -> tuple[Path, Path, Path, Path]:
    old = tree_from_spec(OLD, tmp_path / "old")
    new = tree_from_spec(NEW, tmp_path / "new")
    top = tmp_path / "top"
    (top / "etc").mkdir(parents=True)
    (top / "etc/other").write_text("mine\n")
    plan = tmp_path / "plan.json"
    proc = run_cli("plan", "--old", old, "--new", new, "--upper", top, "-o", plan)
    assert proc.returncode == 0, proc.stderr
    return old, new, top, plan


def _one_line_error(proc, *names: object) -> str:
    err = proc.stderr.decode(errors="replace").strip()
    assert proc.returncode == 2, (proc.returncode, err)
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for name in names:
        assert str(name) in err, (name, err)
    return err


def _listing(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir())


def test_apply_twice_in_place_says_already_applied_not_replan(planned, tmp_path, run_cli) -> None:
    # "run `overmerge plan` again" would be wrong advice here: TOP is now the new upper
    # for NEW, and planning it against OLD would take the merge for your changes.
    _, _, top, plan = planned
    assert run_cli("apply", plan, "--in-place").returncode == 0
    before = _listing(tmp_path)
    proc = run_cli("apply", plan, "--in-place")
    err = _one_line_error(proc, top, "overmerge rollback")
    assert "already applied" in err and "plan` again" not in err
    assert _listing(tmp_path) == before
    proc = run_cli("flatten", plan, "-o", tmp_path / "flat")
    assert "already applied" in _one_line_error(proc, top)


def test_plan_still_applies_after_rollback(planned, tmp_path, run_cli) -> None:
    # apply --in-place, rollback: TOP is the planned one again (only its root's ctime
    # moved with the renames); the plan, with any decisions made in it, still applies.
    _, new, top, plan = planned
    assert run_cli("apply", plan, "--in-place").returncode == 0
    assert run_cli("rollback", top).returncode == 0
    assert (top / "etc/other").read_text() == "mine\n"
    proc = run_cli("apply", plan, "--output", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out/etc/other").read_text() == "mine\n"


def test_real_change_after_rollback_is_still_stale(planned, tmp_path, run_cli) -> None:
    _, _, top, plan = planned
    assert run_cli("apply", plan, "--in-place").returncode == 0
    assert run_cli("rollback", top).returncode == 0
    (top / "etc/other").write_text("edited again\n")
    proc = run_cli("apply", plan, "--output", tmp_path / "out")
    assert "etc/other" in _one_line_error(proc, top, "overmerge plan")
    assert not (tmp_path / "out").exists()


def test_truncated_plan_names_file_and_fix(planned, tmp_path, run_cli) -> None:
    _, _, _, plan = planned
    cut = tmp_path / "cut.json"
    cut.write_bytes(plan.read_bytes()[:200])
    proc = run_cli("apply", cut, "--output", tmp_path / "out")
    assert "overmerge plan" in _one_line_error(proc, cut)
    assert not (tmp_path / "out").exists()


def test_directory_as_plan(planned, tmp_path, run_cli) -> None:
    _, _, top, _ = planned
    proc = run_cli("apply", top, "--output", tmp_path / "out")
    err = _one_line_error(proc, top)
    assert "Errno" not in err and "plan" in err


@pytest.mark.parametrize("where", ["existing", "appended"])
def test_edited_plan_with_dotdot_path(planned, tmp_path, run_cli, where) -> None:
    _, _, _, plan = planned
    data = json.loads(plan.read_text())
    evil = {"path": "../../etc/shadow", "class": "conflict", "change": "modified", "resolution": "decided",
            "decision": {"take": "content", "content": "pwned\n", "by": "user", "keep_aside": False}}
    if where == "existing":
        data["entries"][0].update(evil)
    else:
        data["entries"].append(evil)
    bad = tmp_path / "evil.json"
    bad.write_text(json.dumps(data))
    proc = run_cli("apply", bad, "--output", tmp_path / "out", "--unresolved", "keep-user")
    err = _one_line_error(proc, bad, "../../etc/shadow")
    assert "new plan" in err
    assert not (tmp_path / "out").exists()
    assert not os.path.exists(tmp_path.parent / "etc")


@requires_root
def test_swapped_old_and_new_refused(tmp_path, run_cli) -> None:
    # TOP's overlay.origin handles name OLD's inodes: given the wrong way round, say so.
    layers = build_case({"old": {"etc/a": "1\n", "etc/b": "b\n"}, "new": {"etc/a": "1\n", "etc/b": "b2\n"},
                         "user": "echo 2 > etc/a\n"}, tmp_path / "case")
    out = tmp_path / "plan.json"
    proc = run_cli("plan", "--old", layers.new, "--new", layers.old, "--upper", layers.upper, "-o", out)
    assert "swap --old and --new" in _one_line_error(proc, layers.upper)
    assert not out.exists()
    proc = run_cli("plan", "--old", layers.old, "--new", layers.new, "--upper", layers.upper, "-o", out)
    assert proc.returncode == 0, proc.stderr


def test_in_place_without_workdir_warns_about_the_stale_workdir(planned, tmp_path, run_cli) -> None:
    # A stale index/ in TOP's workdir makes the next index=on mount fail with ESTALE.
    _, _, top, plan = planned
    proc = run_cli("apply", plan, "--in-place")
    assert proc.returncode == 0, proc.stderr
    assert b"--workdir" in proc.stderr and b"Stale file handle" in proc.stderr
    proc = run_cli("rollback", top)
    assert proc.returncode == 0 and b"--workdir" in proc.stderr
    work = tmp_path / "work"
    (work / "index").mkdir(parents=True)
    proc = run_cli("apply", plan, "--in-place", "--workdir", work)
    assert proc.returncode == 0 and b"note" not in proc.stderr, proc.stderr
    assert not (work / "index").exists()


def test_plan_output_in_missing_directory_says_how_to_fix(tmp_path, run_cli) -> None:
    old = tree_from_spec(OLD, tmp_path / "old")
    new = tree_from_spec(NEW, tmp_path / "new")
    (tmp_path / "top").mkdir()
    out = tmp_path / "no-such-dir" / "plan.json"
    proc = run_cli("plan", "--old", old, "--new", new, "--upper", tmp_path / "top", "-o", out)
    assert "create its directory first" in _one_line_error(proc, out)
