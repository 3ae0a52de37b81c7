"""End to end: TOP made by the kernel's overlayfs over OLD, planned through the CLI."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from casebuild import NEW_MTIME, OLD_MTIME, tree_from_spec
from overlayfs import FULL_FEATURES, requires_root

pytestmark = [requires_root, pytest.mark.root]

OLD = {
    "etc/app.conf": "port=80\nworkers=4\n",
    "etc/keep.conf": "keep=1\n",
    "etc/gone.conf": "g=1\n",
    "etc/app.d/10-a.conf": "a=1\n",
    "usr/share/app/a.txt": "a\n",
    "usr/share/app/b.txt": "b\n",
    "usr/share/tool.sh": {"content": "#!/bin/sh\necho 1\n", "mode": 0o644},
}


def _layers(tmp_path: Path, new: dict) -> tuple[Path, Path]:
    return (
        tree_from_spec(OLD, tmp_path / "old", mtime=OLD_MTIME),
        tree_from_spec(new, tmp_path / "new", mtime=NEW_MTIME),
    )


def _entries(data: dict) -> dict[bytes, dict]:
    out = {}
    for e in data["entries"]:
        path = base64.b64decode(e["path_b64"]) if "path_b64" in e else e["path"].encode()
        assert path not in out, f"{path!r} listed twice"
        out[path] = e
    return out


def _plan(run_cli, old: Path, new: Path, top: Path, *extra: str) -> tuple[int, dict]:
    proc = run_cli("plan", "--old", old, "--new", new, "--upper", top, "--json", "--all", *extra)
    assert proc.returncode in (0, 1), proc.stderr.decode(errors="replace")
    data = json.loads(proc.stdout)
    assert data["format"] == "overmerge-plan" and data["version"] == 1
    return proc.returncode, data


def test_default_mount_user_only_changes_exit_0(tmp_path, overlay_mount, run_cli):
    old, new = _layers(tmp_path, {**OLD, "usr/share/app/c.txt": "vendor\n"})
    ov = overlay_mount(old)
    ov.run(
        "sed -i s/workers=4/workers=8/ etc/app.conf\n"
        "rm etc/gone.conf\n"
        "echo mine > etc/mine.conf\n"
        "printf 'x\\n' > \"$(printf 'usr/share/caf\\351')\"\n"
    )
    ov.unmount()
    rc, data = _plan(run_cli, old, new, ov.upper)
    assert rc == 0
    got = _entries(data)
    assert got[b"etc/app.conf"]["class"] == "user-modified"
    assert got[b"etc/gone.conf"]["class"] == "user-modified"
    assert got[b"etc/gone.conf"]["change"] == "removed"
    assert got[b"etc/mine.conf"]["change"] == "added"
    assert got[b"usr/share/caf\xe9"]["class"] == "user-modified"
    assert got[b"usr/share/app/c.txt"]["class"] == "upstream-changed"
    assert got[b"etc/keep.conf"]["class"] == "unchanged"
    assert data["counts"]["conflict"] == 0


def test_full_features_rename_metacopy_conflicts_exit_1(tmp_path, overlay_mount, run_cli):
    new = dict(OLD)
    new["usr/share/app/a.txt"] = "a, fixed\n"
    new["usr/share/tool.sh"] = {"content": "#!/bin/sh\necho 2\n", "mode": 0o644}
    new["etc/app.conf"] = "port=8080\nworkers=4\n"
    old, new = _layers(tmp_path, new)
    ov = overlay_mount(old, options=FULL_FEATURES)
    ov.run(
        "mv usr/share/app usr/share/app-renamed\n"  # redirect xattr in TOP
        "chmod 750 usr/share/tool.sh\n"  # metacopy: TOP has no data
        "sed -i s/port=80/port=9000/ etc/app.conf\n"
    )
    ov.unmount()
    out = tmp_path / "plan.json"
    rc, data = _plan(run_cli, old, new, ov.upper, "-o", out)
    assert rc == 1  # the text conflict on etc/app.conf needs a decision
    assert json.loads(out.read_bytes()) == data
    got = _entries(data)
    assert got[b"usr/share/app/a.txt"]["class"] == "conflict"
    assert got[b"usr/share/app/a.txt"]["change"] == "renamed"
    assert got[b"usr/share/app-renamed/b.txt"]["class"] == "user-modified"
    assert got[b"usr/share/tool.sh"]["class"] == "conflict"
    assert got[b"usr/share/tool.sh"]["resolution"] == "auto-merged"
    assert got[b"etc/app.conf"]["resolution"] == "needs-decision"
    assert got[b"etc/keep.conf"]["class"] == "unchanged"


def test_userxattr_top(tmp_path, overlay_mount, run_cli):
    new = {**OLD, "etc/app.d/20-vendor.conf": "v=1\n"}
    old, new = _layers(tmp_path, new)
    ov = overlay_mount(old, options=["userxattr"])
    ov.run(
        "rm -rf etc/app.d && mkdir etc/app.d && echo b=1 > etc/app.d/50-mine.conf\n"  # user.overlay.opaque
        "echo keep=2 > etc/keep.conf\n"
    )
    ov.unmount()
    rc, data = _plan(run_cli, old, new, ov.upper)
    got = _entries(data)
    assert got[b"etc/app.d/10-a.conf"]["class"] == "user-modified"
    assert got[b"etc/app.d/10-a.conf"]["change"] == "removed"
    assert got[b"etc/app.d/50-mine.conf"]["change"] == "added"
    assert got[b"etc/app.d/20-vendor.conf"]["class"] == "conflict"  # the opaque dir would hide it
    assert got[b"etc/keep.conf"]["class"] == "user-modified"
    assert rc == 1


def test_summary_output_without_json(tmp_path, overlay_mount, run_cli):
    old, new = _layers(tmp_path, {**OLD, "etc/gone.conf": "g=2\n"})
    ov = overlay_mount(old, options=FULL_FEATURES)
    ov.run("rm etc/gone.conf")
    ov.unmount()
    proc = run_cli("plan", "--old", old, "--new", new, "--upper", ov.upper)
    assert proc.returncode == 1, proc.stderr
    assert b"etc/gone.conf" in proc.stdout
