"""Helpers for the apply tests: plan + apply a built case, read the kernel's view of
NEW + new upper, check a case's ``merged:`` section and the new upper's format."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from casebuild import CaseLayers, _mode, normalize_entry, spec_path
from overmerge.layers import read_tree
from overmerge.model import Tree


def make_plan_file(layers: CaseLayers, tmp_path: Path, name: str = "plan.json") -> tuple[Any, Path]:
    from overmerge.planner import make_plan

    plan = make_plan(layers.old, layers.new, layers.upper, include_unchanged=True)
    path = tmp_path / name
    path.write_text(json.dumps(plan.to_json()))
    return plan, path


def kernel_tree(upper: Path, new: Path, namespace: str, check) -> Any:
    """Mount lowerdir=UPPER:NEW read-only (mount point beside UPPER, inside the test's
    tmp_path), call check(tree) while mounted, always unmount."""
    from overmerge.apply import kernel_view

    return kernel_view(os.fsencode(upper), os.fsencode(new), namespace, check,
                       mount_parent=os.fsencode(Path(upper).parent))


def snapshot(root: Path) -> dict[bytes, tuple]:
    """Everything about a tree that a byte-for-byte comparison needs (all xattrs, mtimes,
    content, hard-link groups by first name)."""
    rootb = os.fsencode(root)
    out: dict[bytes, tuple] = {}
    first_of_inode: dict[int, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(rootb):
        dirnames.sort()
        for name in [b""] + sorted(filenames + dirnames) if dirpath == rootb else sorted(filenames + dirnames):
            full = os.path.join(dirpath, name) if name else dirpath
            rel = os.path.relpath(full, rootb)
            st = os.lstat(full)
            xattrs = tuple(sorted((n, os.getxattr(full, n, follow_symlinks=False))
                                  for n in os.listxattr(full, follow_symlinks=False)))
            content: Any = None
            if stat.S_ISREG(st.st_mode):
                content = Path(os.fsdecode(full)).read_bytes()
                if st.st_nlink > 1:
                    content = (content, first_of_inode.setdefault(st.st_ino, rel))
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(full)
            mtime = None if rel == b"." else st.st_mtime_ns
            out[rel] = (st.st_mode, st.st_uid, st.st_gid, st.st_rdev, mtime, xattrs, content)
    return out


def check_upper_format(upper: Path, namespace: str) -> list[str]:
    """The new upper holds no redirect/metacopy/origin/... and no whiteouts inside opaque dirs."""
    problems = []
    rootb = os.fsencode(upper)
    opaque_dirs = []
    forbidden = (b"redirect", b"metacopy", b"origin", b"impure", b"nlink", b"uuid", b"upper", b"index")
    for dirpath, dirnames, filenames in os.walk(rootb):
        for name in [b""] + filenames + dirnames if dirpath == rootb else filenames + dirnames:
            full = os.path.join(dirpath, name) if name else dirpath
            for x in os.listxattr(full, follow_symlinks=False):
                xb = os.fsencode(x)
                if b".overlay." in xb:
                    if not xb.startswith(namespace.encode() + b".overlay."):
                        problems.append(f"{full!r}: overlay xattr in the wrong namespace {x}")
                    if xb.rsplit(b".", 1)[1] in forbidden:
                        problems.append(f"{full!r}: forbidden overlay xattr {x}")
                    if xb.endswith(b".opaque"):
                        opaque_dirs.append(full)
            st = os.lstat(full)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                if any(full.startswith(d + b"/") for d in opaque_dirs):
                    problems.append(f"{full!r}: whiteout inside an opaque directory")
    return problems


def check_merged_section(tree: Tree, spec: dict) -> list[str]:
    """Compare the kernel's view with the case's ``merged:`` expectations."""
    problems = []
    for key, want in (spec.get("merged") or {}).items():
        path = spec_path(key)
        node = tree.nodes.get(path)
        entry = normalize_entry(want)
        if entry is None:
            if node is not None:
                problems.append(f"{key}: expected absent, got a {node.kind}")
            continue
        if node is None:
            problems.append(f"{key}: expected a {entry['type']}, absent")
            continue
        kind = entry["type"]
        if node.kind != kind:
            problems.append(f"{key}: expected a {kind}, got a {node.kind}")
            continue
        if kind == "file":
            data = Path(os.fsdecode(node.source)).read_bytes()
            if data != entry["content"]:
                problems.append(f"{key}: content {data!r}, expected {entry['content']!r}")
        if kind == "symlink" and node.target != os.fsencode(str(entry["symlink"])):
            problems.append(f"{key}: target {node.target!r}, expected {entry['symlink']!r}")
        if "mode" in entry and node.mode != _mode(entry["mode"], 0):
            problems.append(f"{key}: mode {oct(node.mode)}, expected {oct(_mode(entry['mode'], 0))}")
        for attr in ("uid", "gid"):
            if attr in entry and getattr(node, attr) != entry[attr]:
                problems.append(f"{key}: {attr} {getattr(node, attr)}, expected {entry[attr]}")
        for name, value in (entry.get("xattrs") or {}).items():
            if node.xattr_map.get(os.fsencode(name)) != str(value).encode():
                problems.append(f"{key}: xattr {name} {node.xattr_map.get(os.fsencode(name))!r}, expected {value!r}")
    return problems


__all__ = ["check_merged_section", "check_upper_format", "kernel_tree", "make_plan_file", "snapshot", "read_tree"]
