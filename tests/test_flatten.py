"""overmerge flatten through the CLI: the flattened tree (dir, tar extracted by GNU tar,
squashfs extracted by unsquashfs) equals the kernel's view of NEW + the new upper that
`overmerge apply --output` writes (lowerdir=NEWUPPER:NEW, read-only). This cross-checks
apply and flatten. Plus the refusals: stale plan, mounted layer, open conflicts,
output inside an input, existing output."""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import stat
import struct
import subprocess
from pathlib import Path

import pytest

from applyhelp import make_plan_file
from casebuild import CASES_DIR, build_case, case_dirs
from overlayfs import requires_root
from overmerge.layers import read_tree
from overmerge.mounts import overlay
from overmerge.model import FILE, SYMLINK, Tree

pytestmark = [requires_root, pytest.mark.root]

# A POSIX ACL (system.posix_acl_access, version 2): user::rwx user:1000:r-- group::r-- mask::r-- other::r--
ACL = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", tag, perm, uid) for tag, perm, uid in (
    (0x01, 7, 0xFFFFFFFF), (0x02, 4, 1000), (0x04, 4, 0xFFFFFFFF), (0x10, 4, 0xFFFFFFFF), (0x20, 4, 0xFFFFFFFF)))
CAP = bytes.fromhex("0100000280000000000000000000000000000000")  # security.capability: cap_setuid (bit 7)

# Everything a flattened tree must keep, from NEW and from TOP.
EVERYTHING = {
    "name": "flatten-everything",
    "old": {
        "etc/a.conf": "a\n",
        "etc/gone.conf": "gone\n",
        "usr/bin/tool": {"content": "tool v1\n", "mode": "0755", "xattrs": {"security.capability": CAP}},
        "dev/null": {"type": "chardev", "rdev": [1, 3], "mode": "0666"},
    },
    "new": {
        "etc/a.conf": "a\n",
        "etc/gone.conf": "gone\n",
        "etc/link": {"symlink": "a.conf"},
        "usr/bin/tool": {"content": "tool v2\n", "mode": "04755", "uid": 0, "gid": 5,
                         "xattrs": {"security.capability": CAP, "user.tag": b"\xff\x00bin"}},
        "dev/null": {"type": "chardev", "rdev": [1, 3], "mode": "0666"},
        "dev/sda": {"type": "blockdev", "rdev": [8, 0], "mode": "0660", "gid": 6},
        "run/initctl": {"type": "fifo", "mode": "0600"},
        "var/lib/acl.txt": {"content": "acl\n", "mode": "0644", "uid": 1000, "xattrs": {"system.posix_acl_access": ACL}},
        "usr/lib/hl1": "linked\n",
        "usr/lib/hl2": {"hardlink": "usr/lib/hl1"},
        "srv/ro": {"type": "dir", "mode": "0555", "uid": 33, "gid": 33},
        "srv/ro/inside": "x\n",
        "usr/share/x%FFy%0Az.txt": "bytes\n",
    },
    "user": (
        "echo mine > etc/a.conf\n"
        "rm etc/gone.conf\n"
        "mkfifo -m 0640 home-fifo\n"
        "ln -s /etc/passwd etc/mylink\n"
        "mkdir -p home/u && echo x > home/u/f && ln home/u/f home/u/g && chown -h 1000:1000 home/u home/u/f\n"
        "chmod 2750 home/u\n"
        "printf 'mine\\n' > \"$(printf 'home/caf\\351.txt')\"\n"
    ),
}

SPARSE_SIZE = 64 << 20


def build_everything(tmp_path: Path, acl: bool = True):
    spec = EVERYTHING
    if not acl:  # squashfs has no POSIX ACLs
        spec = dict(EVERYTHING, new={k: v for k, v in EVERYTHING["new"].items() if k != "var/lib/acl.txt"})
    layers = build_case(spec, tmp_path)
    tool = layers.new / "usr" / "bin" / "tool"
    os.chmod(tool, 0o4755)  # after the owner: chown clears setuid
    os.utime(tool, (1_700_000_000, 1_700_000_000))
    sparse = layers.new / "var" / "sparse.img"
    sparse.parent.mkdir(exist_ok=True)
    with open(sparse, "wb") as f:
        f.truncate(SPARSE_SIZE)
        f.seek(SPARSE_SIZE // 2)
        f.write(b"data in the middle")
    os.utime(sparse, (1_700_000_000, 1_700_000_000))
    os.utime(sparse.parent, (1_700_000_000, 1_700_000_000))
    return layers


def kernel_signature(upper: Path, new: Path, namespace: str, base: Path) -> dict[bytes, tuple]:
    """Mount lowerdir=UPPER:NEW read-only under ``base`` and take the signature of what it shows."""
    mnt = base / "kernel-view"
    mnt.mkdir(parents=True)
    options = ["userxattr"] if namespace == "user" else []
    with overlay([upper, new], mnt, options=options, readonly=True):
        return signature(read_tree(os.fsencode(mnt)))


def signature(tree: Tree) -> dict[bytes, tuple]:
    """What must match between two views: type, mode, owner, xattrs, target, rdev, content."""
    out = {}
    for p, n in tree.nodes.items():
        digest = None
        if n.kind == FILE:
            h = hashlib.sha256()
            with open(n.source, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            digest = h.hexdigest()
        out[p] = (n.kind, None if n.kind == SYMLINK else n.mode, n.uid, n.gid, n.xattrs, n.target, n.rdev, digest)
    return out


def diff(want: dict, got: dict) -> list[str]:
    problems = []
    for p in sorted(want.keys() | got.keys()):
        if want.get(p) != got.get(p):
            problems.append(f"{p!r}: kernel {want.get(p)!r} != flattened {got.get(p)!r}")
    return problems


def overlay_xattrs(root: Path) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(os.fsencode(root)):
        for name in [b""] + dirnames + filenames:
            full = os.path.join(dirpath, name) if name else dirpath
            found += [f"{full!r}: {x}" for x in os.listxattr(full, follow_symlinks=False) if ".overlay." in x]
            st = os.lstat(full)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                found.append(f"{full!r}: a whiteout")
    return found


def policy(layers, plan) -> list[str]:
    unresolved = layers.spec.get("merged_unresolved")
    if unresolved is None and plan.open_conflicts():
        unresolved = "keep-user"
    return ["--unresolved", unresolved] if unresolved else []


def cli(*args: str | os.PathLike) -> tuple[int, str]:
    """The command line in this process (no interpreter start-up per call): (exit code, stderr)."""
    from overmerge.cli import main

    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        rc = main([os.fspath(a) for a in args])
    return rc, err.getvalue()


def expected_view(layers, tmp_path: Path, run_cli, plan_file: Path, extra: list[str]) -> dict:
    """The kernel's view of NEW + the new upper written by `overmerge apply --output`."""
    newupper = tmp_path / "newupper"
    rc, err = cli("apply", plan_file, "--output", newupper, *extra)
    assert rc == 0, err
    namespace = "user" if layers.userxattr else "trusted"
    return kernel_signature(newupper, layers.new, namespace, tmp_path / "mnt-apply")


def flatten_cli(run_cli, plan_file: Path, out: Path, *extra: str) -> None:
    rc, err = cli("flatten", plan_file, "--output", out, *extra)
    assert rc == 0, err


def _cases() -> list:
    return [pytest.param(d, id=d.name) for d in case_dirs()]


@pytest.mark.parametrize("case_dir", _cases())
def test_flatten_dir_equals_kernel_view(case_dir: Path, tmp_path: Path, run_cli) -> None:
    layers = build_case(case_dir, tmp_path)
    plan, plan_file = make_plan_file(layers, tmp_path)
    extra = policy(layers, plan)
    want = expected_view(layers, tmp_path, run_cli, plan_file, extra)
    out = tmp_path / "flat"
    flatten_cli(run_cli, plan_file, out, *extra)
    assert not diff(want, signature(read_tree(os.fsencode(out)))), "\n".join(diff(want, signature(read_tree(os.fsencode(out)))))
    assert not overlay_xattrs(out)
    assert not any(p.name.startswith("flat.overmerge-stage") for p in tmp_path.iterdir())


def _extract_tar(tar: Path, dest: Path) -> None:
    dest.mkdir()
    proc = subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf", tar, "-C", dest],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and not proc.stderr, proc.stderr


def _extract_squashfs(image: Path, dest: Path) -> None:
    proc = subprocess.run(["unsquashfs", "-no-progress", "-d", dest, image], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


needs_squashfs = pytest.mark.skipif(shutil.which("mksquashfs") is None or shutil.which("unsquashfs") is None,
                                    reason="squashfs-tools not installed (apt-get install squashfs-tools)")


@pytest.mark.parametrize("fmt", ["dir", "tar", pytest.param("squashfs", marks=needs_squashfs)])
@pytest.mark.parametrize("case", ["everything", "hardlinks-in-top", "weird-names", "opaque-replaced-dir", "userxattr-mount"])
def test_flatten_formats(case: str, fmt: str, tmp_path: Path, run_cli) -> None:
    layers = build_everything(tmp_path, acl=fmt != "squashfs") if case == "everything" else build_case(CASES_DIR / case, tmp_path)
    plan, plan_file = make_plan_file(layers, tmp_path)
    extra = policy(layers, plan)
    want = expected_view(layers, tmp_path, run_cli, plan_file, extra)
    name = {"dir": "flat", "tar": "flat.tar", "squashfs": "flat.sqfs"}[fmt]
    out = tmp_path / name
    flatten_cli(run_cli, plan_file, out, *extra)  # the format is guessed from the name
    tree_dir = out
    if fmt == "tar":
        tree_dir = tmp_path / "extracted"
        _extract_tar(out, tree_dir)
    elif fmt == "squashfs":
        tree_dir = tmp_path / "extracted"
        _extract_squashfs(out, tree_dir)
    got = signature(read_tree(os.fsencode(tree_dir)))
    problems = diff(want, got)
    assert not problems, "\n".join(problems)
    assert not overlay_xattrs(tree_dir)
    assert sorted(p.name for p in tmp_path.iterdir() if "overmerge" in p.name and "aside" not in p.name) == []
    if case == "everything":
        st1, st2 = os.lstat(tree_dir / "usr/lib/hl1"), os.lstat(tree_dir / "usr/lib/hl2")
        assert st1.st_ino == st2.st_ino
        st1, st2 = os.lstat(tree_dir / "home/u/f"), os.lstat(tree_dir / "home/u/g")
        assert st1.st_ino == st2.st_ino
        if fmt == "dir":  # holes are kept (tar stores them as zeros; squashfs as sparse blocks)
            assert os.lstat(tree_dir / "var/sparse.img").st_blocks * 512 < SPARSE_SIZE // 4


@needs_squashfs
def test_flatten_squashfs_refuses_acls(tmp_path: Path, run_cli) -> None:
    """mksquashfs would drop system.posix_acl_* silently: refuse, name the path, suggest dir/tar."""
    layers = build_everything(tmp_path)
    plan, plan_file = make_plan_file(layers, tmp_path)
    proc = run_cli("flatten", plan_file, "-o", tmp_path / "flat.squashfs")
    assert proc.returncode == 2, proc.stderr
    assert b"var/lib/acl.txt" in proc.stderr and b"--format dir or tar" in proc.stderr
    assert not (tmp_path / "flat.squashfs").exists()
    assert not any("overmerge-stage" in p.name for p in tmp_path.iterdir())


def test_flatten_tar_members(tmp_path: Path, run_cli) -> None:
    """PAX format, numeric owners with empty names, xattrs as SCHILY.xattr.*, link members."""
    import tarfile

    layers = build_everything(tmp_path)
    plan, plan_file = make_plan_file(layers, tmp_path)
    out = tmp_path / "image"
    flatten_cli(run_cli, plan_file, out, "--format", "tar")
    with tarfile.open(out, encoding="utf-8", errors="surrogateescape") as tar:
        members = {m.name: m for m in tar}
    assert all(m.uname == "" and m.gname == "" for m in members.values())
    tool = members["usr/bin/tool"]
    assert (tool.uid, tool.gid, tool.mode) == (0, 5, 0o4755)
    assert tool.pax_headers["SCHILY.xattr.security.capability"].encode("utf-8", "surrogateescape") == CAP
    assert members["usr/lib/hl2"].islnk() and members["usr/lib/hl2"].linkname == "usr/lib/hl1"
    assert members["dev/sda"].isblk() and (members["dev/sda"].devmajor, members["dev/sda"].devminor) == (8, 0)
    assert not any(".wh." in n or "overlay" in str(m.pax_headers) for n, m in members.items())


def test_flatten_aside_and_policy(tmp_path: Path, run_cli) -> None:
    layers = build_case(CASES_DIR / "both-add-different", tmp_path)
    plan, plan_file = make_plan_file(layers, tmp_path)
    assert plan.open_conflicts()
    out = tmp_path / "flat"
    proc = run_cli("flatten", plan_file, "-o", out)
    assert proc.returncode == 1, proc.stderr
    assert b"--unresolved" in proc.stderr and not out.exists()
    flatten_cli(run_cli, plan_file, out, "--unresolved", "take-new")
    aside = tmp_path / "flat.overmerge-aside"
    assert (aside / "list.json").is_file()
    assert any((aside / "yours").iterdir())


def test_flatten_refusals(tmp_path: Path, run_cli, overlay_mount) -> None:
    layers = build_case(CASES_DIR / "one-side-changes", tmp_path)
    plan, plan_file = make_plan_file(layers, tmp_path)
    for out in (layers.new / "flat", layers.upper / "x.tar", tmp_path):
        proc = run_cli("flatten", plan_file, "-o", out)
        assert proc.returncode == 2 and b"overlaps" in proc.stderr, proc.stderr
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep").write_text("x")
    proc = run_cli("flatten", plan_file, "-o", busy)
    assert proc.returncode == 2 and b"not an empty directory" in proc.stderr
    (tmp_path / "exists.tar").write_text("x")
    proc = run_cli("flatten", plan_file, "-o", tmp_path / "exists.tar")
    assert proc.returncode == 2 and b"already exists" in proc.stderr
    proc = run_cli("flatten", plan_file, "-o", tmp_path / "f", "--format", "zip")
    assert proc.returncode == 2
    # A layer in a mounted overlay.
    ov = overlay_mount(layers.new, name="ovnew")
    proc = run_cli("flatten", plan_file, "-o", tmp_path / "flat-mounted")
    assert proc.returncode == 2 and b"unmount it first" in proc.stderr, proc.stderr
    ov.unmount()
    # A stale plan.
    (layers.new / "etc").mkdir(exist_ok=True)
    (layers.new / "etc" / "late-vendor-file").write_text("late\n")
    proc = run_cli("flatten", plan_file, "-o", tmp_path / "flat-stale")
    assert proc.returncode == 2 and b"changed since the plan" in proc.stderr, proc.stderr
    assert not any(p.name.startswith(("flat-", "f.", "flat.")) for p in tmp_path.iterdir())
