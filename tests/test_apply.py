"""overmerge apply / rollback through the CLI: exact entries, refusals, in-place, decisions."""
from __future__ import annotations

import json
import os
import stat
import struct
from pathlib import Path

import pytest

from applyhelp import check_upper_format, kernel_tree, make_plan_file, snapshot
from casebuild import build_case
from overlayfs import requires_root

pytestmark = [requires_root, pytest.mark.root]

CAP = struct.pack("<5I", 0x02000001, 1 << 10, 0, 0, 0)  # cap_net_bind_service+ep, VFS v2
ACL_ENTRY = struct.Struct("<HHI")
ACL = struct.pack("<I", 2) + b"".join(
    ACL_ENTRY.pack(tag, perm, ident)
    for tag, perm, ident in ((1, 6, 0xFFFFFFFF), (2, 6, 1000), (4, 4, 0xFFFFFFFF), (0x10, 6, 0xFFFFFFFF), (0x20, 4, 0xFFFFFFFF))
)

SPECIAL = {
    "old": {
        "etc/app.conf": "a=1\n",
        "etc/gone.conf": "g=1\n",
        "usr/bin/tool": {"content": "ELF", "mode": 0o755},
        "var/lib/app": {"type": "dir", "mode": 0o750, "uid": 0, "gid": 0},
    },
    "new": {
        "etc/app.conf": "a=1\n",
        "etc/gone.conf": "g=1\n",
        "etc/vendor.conf": "v=1\n",
        "usr/bin/tool": {"content": "ELF2", "mode": 0o755},
        "var/lib/app": {"type": "dir", "mode": 0o750, "uid": 0, "gid": 0},
    },
    "user": """
echo a=2 > etc/app.conf
rm etc/gone.conf
"$PYTHON" - <<'PY'
import os, struct
cap = struct.pack("<5I", 0x02000001, 1 << 10, 0, 0, 0)
with open("usr/bin/ping6", "wb") as f:
    f.write(b"ping")
os.chown("usr/bin/ping6", 0, 0)
os.chmod("usr/bin/ping6", 0o4755)
os.setxattr("usr/bin/ping6", "security.capability", cap)
os.setxattr("etc/app.conf", "user.note", b"mine")
acl = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in
      ((1, 6, 0xFFFFFFFF), (2, 6, 1000), (4, 4, 0xFFFFFFFF), (0x10, 6, 0xFFFFFFFF), (0x20, 4, 0xFFFFFFFF)))
with open("etc/acl.conf", "w") as f:
    f.write("acl\\n")
os.setxattr("etc/acl.conf", "system.posix_acl_access", acl)
with open("var/lib/app/sparse.img", "wb") as f:
    f.seek(64 << 20)
    f.write(b"end")
os.mkfifo("var/lib/app/fifo")
os.mknod("var/lib/app/null", 0o20666, os.makedev(1, 3))
os.chown("var/lib/app/null", 0, 5)
with open("var/lib/app/one", "w") as f:
    f.write("linked\\n")
os.link("var/lib/app/one", "var/lib/app/two")
os.symlink("../../etc/app.conf", "var/lib/app/conf")
os.chown("var/lib/app", 1000, 1000)
os.chmod("var/lib/app", 0o700)
PY
""",
}


def _build(tmp_path: Path, spec: dict | None = None):
    layers = build_case(spec or SPECIAL, tmp_path / "case")
    plan, plan_path = make_plan_file(layers, tmp_path)
    return layers, plan, plan_path


def test_new_upper_entries_exact(tmp_path: Path, run_cli) -> None:
    layers, plan, plan_path = _build(tmp_path)
    out = tmp_path / "newupper"
    proc = run_cli("apply", plan_path, "--output", out, "--verify", "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    result = json.loads(proc.stdout)
    assert result["verified"] is True
    assert not check_upper_format(out, "trusted")

    st = os.lstat(out / "usr/bin/ping6")
    assert stat.S_IMODE(st.st_mode) == 0o4755
    assert os.getxattr(out / "usr/bin/ping6", "security.capability", follow_symlinks=False) == CAP
    assert os.getxattr(out / "etc/acl.conf", "system.posix_acl_access") == ACL
    assert os.getxattr(out / "etc/app.conf", "user.note") == b"mine"
    sparse = os.lstat(out / "var/lib/app/sparse.img")
    assert sparse.st_size == (64 << 20) + 3 and sparse.st_blocks * 512 < (1 << 20), "sparse file was filled"
    assert stat.S_ISFIFO(os.lstat(out / "var/lib/app/fifo").st_mode)
    dev = os.lstat(out / "var/lib/app/null")
    assert stat.S_ISCHR(dev.st_mode) and dev.st_rdev == os.makedev(1, 3) and dev.st_gid == 5
    one, two = os.lstat(out / "var/lib/app/one"), os.lstat(out / "var/lib/app/two")
    assert one.st_ino == two.st_ino and one.st_nlink == 2, "hard link not kept"
    assert os.readlink(out / "var/lib/app/conf") == "../../etc/app.conf"
    d = os.lstat(out / "var/lib/app")
    assert (d.st_uid, d.st_gid, stat.S_IMODE(d.st_mode)) == (1000, 1000, 0o700), "directory lost your metadata"
    w = os.lstat(out / "etc/gone.conf")
    assert stat.S_ISCHR(w.st_mode) and w.st_rdev == 0, "deleted file needs a 0/0 whiteout"
    # Minimal: vendor-only and unchanged paths are not in the new upper.
    assert not (out / "etc/vendor.conf").exists() and not (out / "usr/bin/tool").exists()


def test_open_conflicts_exit_1_and_nothing_written(tmp_path: Path, run_cli) -> None:
    spec = {"old": {"etc/a": "1\n"}, "new": {"etc/a": "2\n"}, "user": "echo 3 > etc/a\n"}
    layers, plan, plan_path = _build(tmp_path, spec)
    out = tmp_path / "newupper"
    proc = run_cli("apply", plan_path, "--output", out)
    assert proc.returncode == 1
    assert b"etc/a" in proc.stderr and b"--unresolved" in proc.stderr
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if ".overmerge" in p.name]

    proc = run_cli("apply", plan_path, "--output", out, "--unresolved", "take-new", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    aside = Path(result["aside"])
    assert aside == tmp_path / "newupper.overmerge-aside"
    assert (aside / "yours/etc/a").read_text() == "3\n"
    listing = json.loads((aside / "list.json").read_text())["aside"]
    assert listing[0]["path"] == "etc/a" and listing[0]["side"] == "yours"
    assert (out / "etc/a").exists() is False  # NEW's version: nothing in the new upper


def test_partial_hunk_choices_do_not_decide(tmp_path: Path, run_cli) -> None:
    """`resolve` keeps per-hunk progress in `hunk_choices`; apply reads `decision` only."""
    spec = {"old": {"etc/a": "1\n2\n3\n4\n5\n"}, "new": {"etc/a": "1n\n2\n3\n4\n5n\n"},
            "user": "printf '1y\\n2\\n3\\n4\\n5y\\n' > etc/a\n"}
    layers, plan, plan_path = _build(tmp_path, spec)
    data = json.loads(plan_path.read_text())
    entry = next(e for e in data["entries"] if e["path"] == "etc/a")
    assert entry["resolution"] == "needs-decision" and len(entry["hunks"]) == 2
    entry["hunk_choices"] = ["yours", None]
    plan_path.write_text(json.dumps(data))
    out = tmp_path / "newupper"
    proc = run_cli("apply", plan_path, "--output", out)
    assert proc.returncode == 1, proc.stderr
    assert b"etc/a" in proc.stderr and not out.exists()


def test_refusals(tmp_path: Path, run_cli, overlay_mount) -> None:
    layers, plan, plan_path = _build(tmp_path, {"old": {"etc/a": "1\n"}, "new": {"etc/a": "1\n"},
                                                "user": "echo 2 > etc/a\n"})
    # Output inside an input, or an input inside the output.
    for bad in (layers.upper / "sub", layers.new / "x", tmp_path):
        proc = run_cli("apply", plan_path, "--output", bad)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith(b"overmerge: ") and proc.stderr.count(b"\n") == 1
        assert b"overlaps" in proc.stderr or b"not an empty directory" in proc.stderr
    # Output exists and is not empty.
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    proc = run_cli("apply", plan_path, "--output", busy)
    assert proc.returncode == 2 and b"busy" in proc.stderr
    # A layer under a mounted overlay.
    ov = overlay_mount(layers.new, name="mnt")
    proc = run_cli("apply", plan_path, "--output", tmp_path / "o1")
    assert proc.returncode == 2 and b"mounted" in proc.stderr and b"unmount" in proc.stderr
    ov.unmount()
    # A layer that changed since the plan.
    (layers.upper / "etc/a").write_text("late\n")
    proc = run_cli("apply", plan_path, "--output", tmp_path / "o2")
    assert proc.returncode == 2
    assert b"etc/a" in proc.stderr and b"overmerge plan" in proc.stderr
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_in_place_rollback_and_mount(tmp_path: Path, run_cli, overlay_mount) -> None:
    layers, plan, plan_path = _build(tmp_path, SPECIAL)
    before = snapshot(layers.upper)
    # A stale index/work dir left by an earlier mount.
    (layers.work / "index").mkdir(exist_ok=True)
    (layers.work / "index" / "stale").write_text("x")
    proc = run_cli("apply", plan_path, "--in-place", "--workdir", layers.work, "--verify")
    assert proc.returncode == 0, proc.stderr
    assert os.listdir(layers.work) == []
    prev = Path(str(layers.upper) + ".overmerge-prev")
    assert snapshot(prev) == before
    assert not Path(str(layers.upper) + ".overmerge-journal").exists()
    # The new TOP mounts over NEW with default options and shows your changes + vendor's.
    ov = overlay_mount(layers.new, name="after")
    ov.unmount()
    from overmerge.mounts import overlay

    mnt = tmp_path / "m"
    mnt.mkdir()
    with overlay([layers.new], mnt, upperdir=layers.upper, workdir=layers.work):
        assert (mnt / "etc/app.conf").read_text() == "a=2\n"
        assert (mnt / "etc/vendor.conf").read_text() == "v=1\n"
        assert (mnt / "usr/bin/tool").read_text() == "ELF2"
        assert not (mnt / "etc/gone.conf").exists()
    after = snapshot(layers.upper)
    proc = run_cli("rollback", layers.upper, "--workdir", layers.work)
    assert proc.returncode == 0, proc.stderr
    assert snapshot(layers.upper) == before
    proc = run_cli("rollback", layers.upper)  # again: undo the rollback
    assert proc.returncode == 0
    assert snapshot(layers.upper) == after


def test_rollback_without_prev(tmp_path: Path, run_cli) -> None:
    top = tmp_path / "top"
    top.mkdir()
    proc = run_cli("rollback", top)
    assert proc.returncode == 2 and b"no previous TOP" in proc.stderr


def test_decisions_from_plan(tmp_path: Path, run_cli) -> None:
    spec = {
        "old": {"etc/a": "1\n", "etc/b": "1\n", "etc/c": {"content": "1\n", "mode": 0o644}},
        "new": {"etc/a": "2\n", "etc/b": "2\n", "etc/c": {"content": "2\n", "mode": 0o644}},
        "user": "echo 3 > etc/a\nrm etc/b\necho 3 > etc/c\nchmod 600 etc/c\n",
    }
    layers, plan, plan_path = _build(tmp_path, spec)
    data = json.loads(plan_path.read_text())
    for e in data["entries"]:
        if e["path"] == "etc/a":
            e.update(resolution="decided", decision={"take": "yours", "by": "user", "keep_aside": True})
        elif e["path"] == "etc/b":
            e.update(resolution="decided", decision={"take": "yours", "by": "user"})  # keep it deleted
        elif e["path"] == "etc/c":
            e.update(resolution="decided", decision={"take": "content", "content": "merged\n", "by": "user"})
    plan_path.write_text(json.dumps(data))
    out = tmp_path / "newupper"
    proc = run_cli("apply", plan_path, "--output", out, "--verify")
    assert proc.returncode == 0, proc.stderr

    def check(tree):
        a, c = tree.nodes[b"etc/a"], tree.nodes[b"etc/c"]
        return (Path(os.fsdecode(a.source)).read_text(), b"etc/b" in tree.nodes,
                Path(os.fsdecode(c.source)).read_text(), c.mode)

    assert kernel_tree(out, layers.new, "trusted", check) == ("3\n", False, "merged\n", 0o600)
    assert (tmp_path / "newupper.overmerge-aside/new/etc/a").read_text() == "2\n"


def test_protattr_kept(tmp_path: Path, run_cli) -> None:
    """chattr +i through the mount is kept by overlayfs as overlay.protattr in TOP; the
    new upper keeps it, so the kernel still shows the file immutable."""
    import shutil
    import subprocess

    if not shutil.which("chattr") or not shutil.which("lsattr"):
        pytest.skip("chattr/lsattr not installed")
    spec = {"old": {"etc/a": "1\n"}, "new": {"etc/a": "1\n", "etc/v": "v\n"},
            "user": "echo 2 > etc/a\nchattr +i etc/a\n"}
    layers, plan, plan_path = _build(tmp_path, spec)
    out = tmp_path / "newupper"
    proc = run_cli("apply", plan_path, "--output", out, "--verify")
    assert proc.returncode == 0, proc.stderr
    assert os.getxattr(out / "etc/a", "trusted.overlay.protattr", follow_symlinks=False) == b"i"

    # The kernel honours protattr in an upper layer: mount the new upper as TOP over NEW.
    from overmerge.mounts import overlay

    (tmp_path / "w").mkdir()
    (tmp_path / "m").mkdir()
    with overlay([layers.new], tmp_path / "m", upperdir=out, workdir=tmp_path / "w"):
        shown = subprocess.run(["lsattr", str(tmp_path / "m/etc/a")], capture_output=True, text=True).stdout
    assert "i" in shown.split()[0]


def test_concurrent_apply_refused(tmp_path: Path, run_cli) -> None:
    from overmerge.fsutil import dir_lock

    layers, plan, plan_path = _build(tmp_path, {"old": {"a": "1\n"}, "new": {"a": "1\n"}, "user": "echo 2 > a\n"})
    with dir_lock(os.fsencode(layers.upper.parent)):
        proc = run_cli("apply", plan_path, "--in-place")
    assert proc.returncode == 2 and b"another overmerge" in proc.stderr
    assert run_cli("apply", plan_path, "--in-place").returncode == 0


def test_rule_merged_content_and_changed_rules(tmp_path: Path, run_cli) -> None:
    spec = {"old": {"etc/shells": "/bin/sh\n"}, "new": {"etc/shells": "/bin/sh\n/usr/bin/sh\n"},
            "user": "echo /bin/zsh >> etc/shells\n"}
    layers, plan, plan_path = _build(tmp_path, spec)
    entry = plan.by_path()[b"etc/shells"]
    assert entry.resolution == "auto-merged" and entry.merged_sha256
    data = json.loads(plan_path.read_text())
    for e in data["entries"]:
        if e["path"] == "etc/shells":
            e["merged_sha256"] = "0" * 64
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps(data))
    proc = run_cli("apply", stale, "--output", tmp_path / "o1")
    assert proc.returncode == 2 and b"rules changed" in proc.stderr and b"etc/shells" in proc.stderr
    assert not (tmp_path / "o1").exists()

    out = tmp_path / "o2"
    proc = run_cli("apply", plan_path, "--output", out, "--verify")
    assert proc.returncode == 0, proc.stderr
    lines = set((out / "etc/shells").read_text().splitlines())
    assert lines == {"/bin/sh", "/usr/bin/sh", "/bin/zsh"}
