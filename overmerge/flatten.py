"""`overmerge flatten`: write the merged view as one tree for new read-only media
(design.md §2 "flatten", §4). See docs/flatten.md.

The merged view comes from apply's preparation (``apply.prepare``: the same stale-plan,
mounted-layer and open-conflict checks), and entries are written with apply's writers
(``apply.write_upper`` over a layout that lists every path as a full entry, so there
are no whiteouts and no opaque markers). Formats:

* ``dir``: staged in a sibling temporary directory, fsynced, renamed into place;
* ``tar``: PAX, numeric owners, xattrs as ``SCHILY.xattr.*``, hard links as link
  members; written straight from the merged view to a temporary file, renamed;
* ``squashfs``: a staged directory packed by ``mksquashfs`` (owners and xattrs kept)
  into a temporary file, renamed.

The sides not taken of settled conflicts are saved beside the output in
``OUT.overmerge-aside`` exactly as apply saves them (``apply.write_aside``).
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field

from overmerge import fsutil, paths
from overmerge.apply import Prepared, Transaction, prepare, write_aside, write_upper
from overmerge.errors import InputError, OvermergeError
from overmerge.merged import aside_lines
from overmerge.model import DIR, SOCKET
from overmerge.mounts import check_not_mounted
from overmerge.oci import TarWriter, link_key
from overmerge.plan import Plan

FORMATS = ("dir", "tar", "squashfs")


def guess_format(output: bytes) -> str:
    """The format named by the output's extension: .tar → tar, .sqfs/.squashfs → squashfs, else dir."""
    name = os.path.basename(output.rstrip(b"/")).lower()
    if name.endswith(b".tar"):
        return "tar"
    if name.endswith((b".sqfs", b".squashfs")):
        return "squashfs"
    return "dir"


@dataclass
class FlattenResult:
    format: str
    target: str
    entries: int = 0
    hardlinks: int = 0
    aside: str | None = None
    aside_items: list = field(default_factory=list)
    skipped: list[bytes] = field(default_factory=list)  # sockets a tar cannot hold

    def to_json(self) -> dict:
        return {
            "format": self.format,
            "target": self.target,
            "entries": self.entries,
            "hardlinks": self.hardlinks,
            "aside": self.aside,
            "aside_items": [dict(paths.to_json(i.path), side=i.side, reason=i.reason) for i in self.aside_items],
            "skipped": [paths.to_json(p) for p in self.skipped],
        }


def _overlaps(a: bytes, b: bytes) -> bool:
    a, b = a.rstrip(b"/") or b"/", b.rstrip(b"/") or b"/"
    return a == b or a.startswith(b.rstrip(b"/") + b"/") or b.startswith(a.rstrip(b"/") + b"/")


def _path_key(path: bytes) -> tuple[bytes, ...]:
    return tuple(path.split(b"/")) if path else ()


def _target(output: bytes, fmt: str, plan: Plan) -> bytes:
    """The absolute output path, after refusing one that overlaps an input or exists."""
    output = output.rstrip(b"/") or output
    parent = os.path.realpath(os.path.dirname(os.path.abspath(output)))
    if not os.path.isdir(parent):
        raise InputError(f"{os.fsdecode(output)}: parent directory does not exist; create it first")
    target = os.path.join(parent, os.path.basename(os.path.abspath(output)))
    for role, name in (("old", "OLD"), ("new", "NEW"), ("upper", "TOP")):
        root = os.path.realpath(os.fsencode(plan.inputs[role].path))
        if _overlaps(root, target):
            raise InputError(f"{os.fsdecode(target)}: the output overlaps {name} {os.fsdecode(root)}; "
                             "choose an output outside the input layers")
    if fmt == "dir":
        if os.path.lexists(target) and (not os.path.isdir(target) or os.path.islink(target) or os.listdir(target)):
            raise InputError(f"{os.fsdecode(target)}: already exists and is not an empty directory; "
                             "choose a new output or remove it")
    elif os.path.lexists(target):
        raise InputError(f"{os.fsdecode(target)}: already exists; choose a new output file or remove it")
    check_not_mounted(target, "the output")
    return target


def _flat_layout(prepared: Prepared) -> Prepared:
    """Every path of the merged view as a full entry, parents first: no whiteouts, no opaque dirs."""
    nodes = prepared.merged.nodes
    layout = [(p, "dir" if nodes[p].node.kind == DIR else "full", False) for p in sorted(nodes, key=_path_key)]
    return dataclasses.replace(prepared, layout=layout)


def _stage_dir(target: bytes, prepared: Prepared) -> tuple[bytes, int]:
    """Write the merged view into a fresh sibling directory; returns (stage, hard links)."""
    parent = os.path.dirname(target)
    holder = tempfile.mkdtemp(prefix=os.path.basename(target) + b".overmerge-stage-", dir=parent)
    stage = holder + b"/tree"  # write_upper wants a directory it may fill (the stage root itself)
    try:
        os.mkdir(stage, 0o700)
        stats = write_upper(stage, _flat_layout(prepared))
    except BaseException:
        fsutil.remove_tree(holder)
        raise
    return holder, stats.hardlinks


def _write_dir(target: bytes, prepared: Prepared) -> int:
    holder, links = _stage_dir(target, prepared)
    try:
        os.rename(holder + b"/tree", target)  # replaces an empty directory atomically
        fsutil.fsync_path(os.path.dirname(target))
    finally:
        fsutil.remove_tree(holder)
    return links


# squashfs stores xattrs of these namespaces only; mksquashfs silently drops the rest
# (notably system.posix_acl_*), so a tree holding others is refused rather than changed.
SQUASHFS_XATTR_PREFIXES = (b"user.", b"trusted.", b"security.")


def _check_squashfs_xattrs(prepared: Prepared) -> None:
    for p in sorted(prepared.merged.nodes):
        for name, _value in prepared.merged.nodes[p].node.xattrs:
            if not name.startswith(SQUASHFS_XATTR_PREFIXES):
                raise InputError(
                    f"{paths.display(p) or '/'}: xattr {paths.display(name)} cannot be stored in squashfs "
                    "(it keeps user.*, trusted.* and security.* only, no POSIX ACLs); use --format dir or tar"
                )


def _write_squashfs(target: bytes, prepared: Prepared) -> int:
    mksquashfs = shutil.which("mksquashfs")
    if mksquashfs is None:
        raise InputError("mksquashfs not found; install squashfs-tools (apt-get install squashfs-tools)")
    _check_squashfs_xattrs(prepared)
    holder, links = _stage_dir(target, prepared)
    try:
        image = holder + b"/image.sqfs"
        proc = subprocess.run([mksquashfs, holder + b"/tree", image, "-noappend", "-no-progress"],
                              capture_output=True, text=True, errors="replace")
        if proc.returncode != 0:
            detail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
            raise OvermergeError(f"mksquashfs failed for {os.fsdecode(target)}: {detail[-1] if detail else proc.returncode}")
        fd = os.open(image, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(image, target)
        fsutil.fsync_path(os.path.dirname(target))
    finally:
        fsutil.remove_tree(holder)
    return links


def _write_tar(target: bytes, prepared: Prepared) -> tuple[int, list[bytes]]:
    nodes = prepared.merged.nodes
    writer = TarWriter(target)
    links: dict[tuple, bytes] = {}
    hardlinks = 0
    skipped: list[bytes] = []
    try:
        for p in sorted(nodes, key=_path_key):
            m = nodes[p]
            if m.node.kind == SOCKET:
                skipped.append(p)  # a tar cannot hold a socket (GNU tar skips them too)
                continue
            key = link_key(m.node) if m.content is None else None
            if key is not None and key in links:
                writer.add_node(p, m.node, link_to=links[key])
                hardlinks += 1
                continue
            if key is not None:
                links[key] = p
            writer.add_node(p, m.node, m.content)
    except BaseException:
        writer.abort()
        raise
    writer.commit()
    return hardlinks, skipped


def flatten(plan: Plan, output: bytes, *, fmt: str | None = None, unresolved: str | None = None) -> FlattenResult:
    """Write the merged view of ``plan`` to ``output`` as a dir, tar or squashfs image."""
    fmt = fmt or guess_format(output)
    if fmt not in FORMATS:
        raise InputError(f"unknown flatten format {fmt!r}; use dir, tar or squashfs")
    target = _target(output, fmt, plan)
    prepared = prepare(plan, unresolved=unresolved)
    aside_items = prepared.merged.aside
    aside_final = None
    if aside_items:
        # Saved before the output appears, as apply does: the side not taken is never lost.
        aside_final = Transaction(target, "output").free_aside_name()
        aside_stage = aside_final + b".overmerge-stage-%d" % os.getpid()
        try:
            write_aside(aside_stage, aside_items)
            os.rename(aside_stage, aside_final)
        except BaseException:
            fsutil.remove_tree(aside_stage)
            raise
        fsutil.fsync_path(os.path.dirname(target))
    skipped: list[bytes] = []
    if fmt == "dir":
        hardlinks = _write_dir(target, prepared)
    elif fmt == "squashfs":
        hardlinks = _write_squashfs(target, prepared)
    else:
        hardlinks, skipped = _write_tar(target, prepared)
    return FlattenResult(fmt, os.fsdecode(target), entries=len(prepared.merged.nodes) - len(skipped),
                         hardlinks=hardlinks, aside=os.fsdecode(aside_final) if aside_final else None,
                         aside_items=aside_items, skipped=skipped)


def render_text(result: FlattenResult) -> str:
    lines = [f"flattened the merged view into {result.target} ({result.format}): "
             f"{result.entries} entries, {result.hardlinks} hard link(s)"]
    for p in result.skipped:
        lines.append(f"  skipped socket {paths.display(p)} (a tar cannot hold sockets)")
    if result.aside:
        lines += aside_lines(result.aside, result.aside_items)
    return "\n".join(lines) + "\n"


__all__ = ["FORMATS", "FlattenResult", "flatten", "guess_format", "render_text"]
