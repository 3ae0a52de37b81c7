"""The values the core works on: a node's attributes and the words of design.md §2–3.

Pure: no I/O. A ``Node`` says what one path is in one tree (OLD, NEW, the user
view or a merged view). Content is not held: ``source`` names the file to read
it from, so that comparing and merging can stream.
"""
from __future__ import annotations

import stat
from collections.abc import Callable
from dataclasses import dataclass, replace

# Node kinds.
FILE = "file"
DIR = "dir"
SYMLINK = "symlink"
CHARDEV = "chardev"
BLOCKDEV = "blockdev"
FIFO = "fifo"
SOCKET = "socket"

# Classes (exact values in JSON output).
UNCHANGED = "unchanged"
UPSTREAM_CHANGED = "upstream-changed"
USER_MODIFIED = "user-modified"
CONFLICT = "conflict"
CLASSES = (UNCHANGED, UPSTREAM_CHANGED, USER_MODIFIED, CONFLICT)

# Change details.
ADDED = "added"
REMOVED = "removed"
MODIFIED = "modified"
TYPE = "type"
METADATA = "metadata"
RENAMED = "renamed"

# Conflict resolutions.
IDENTICAL = "identical"
AUTO_MERGED = "auto-merged"
NEEDS_DECISION = "needs-decision"
DECIDED = "decided"

# Attributes compared one by one (mtime is ignored on purpose, as OSTree and bootc do).
ATTRIBUTES = ("type", "content", "mode", "uid", "gid", "xattrs", "target", "rdev")

# Name of the built-in per-attribute merge, reported as `rule` when it merged a conflict.
ATTRIBUTE_RULE = "attributes"


def kind_of_mode(st_mode: int) -> str:
    if stat.S_ISREG(st_mode):
        return FILE
    if stat.S_ISDIR(st_mode):
        return DIR
    if stat.S_ISLNK(st_mode):
        return SYMLINK
    if stat.S_ISCHR(st_mode):
        return CHARDEV
    if stat.S_ISBLK(st_mode):
        return BLOCKDEV
    if stat.S_ISFIFO(st_mode):
        return FIFO
    return SOCKET


@dataclass(frozen=True, slots=True)
class Node:
    """One path's attributes in one tree."""

    kind: str
    mode: int  # permission bits, including setuid/setgid/sticky (07777)
    uid: int
    gid: int
    size: int = 0
    mtime_ns: int = 0
    target: bytes | None = None  # symlink target, never followed
    rdev: int = 0  # device number of chardev/blockdev
    xattrs: tuple[tuple[bytes, bytes], ...] = ()  # sorted; overlay-private ones excluded
    source: bytes | None = None  # absolute path holding the content (regular files)
    inode: tuple[int, int] | None = None  # (st_dev, st_ino) of source, to keep hard links
    nlink: int = 1

    def with_(self, **changes: object) -> Node:
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def xattr_map(self) -> dict[bytes, bytes]:
        return dict(self.xattrs)


def attribute_value(node: Node, attribute: str) -> object:
    """The comparable value of one attribute (content is compared elsewhere, by streaming)."""
    if attribute == "type":
        return node.kind
    if attribute == "xattrs":
        return node.xattrs
    return getattr(node, attribute)


# Tells whether two FILE nodes hold the same bytes (I/O lives with the caller).
ContentEq = Callable[["Node", "Node"], bool]


def attribute_diff(a: Node, b: Node, same_content: ContentEq) -> frozenset[str]:
    """Attributes in which ``b`` differs from ``a``. A type change is reported alone."""
    if a.kind != b.kind:
        return frozenset({"type"})
    differ = set()
    if a.mode != b.mode:
        differ.add("mode")
    if a.uid != b.uid:
        differ.add("uid")
    if a.gid != b.gid:
        differ.add("gid")
    if a.xattrs != b.xattrs:
        differ.add("xattrs")
    if a.kind == SYMLINK and a.target != b.target:
        differ.add("target")
    if a.kind in (CHARDEV, BLOCKDEV) and a.rdev != b.rdev:
        differ.add("rdev")
    if a.kind == FILE and not same_content(a, b):
        differ.add("content")
    return frozenset(differ)


def change_of(base: Node | None, side: Node | None, differ: frozenset[str]) -> str | None:
    """The ``change`` word for one side's difference from OLD (None: no change)."""
    if base is None and side is None:
        return None
    if base is None:
        return ADDED
    if side is None:
        return REMOVED
    if not differ:
        return None
    if "type" in differ:
        return TYPE
    if differ & {"content", "target", "rdev"}:
        return MODIFIED
    return METADATA


@dataclass(frozen=True, slots=True)
class Tree:
    """A walked tree: path -> Node (the root is b"") and dir path -> child names."""

    root: bytes  # absolute path of the tree on disk ("" for a computed view)
    nodes: dict[bytes, Node]
    children: dict[bytes, list[bytes]]


@dataclass(frozen=True, slots=True)
class UserView:
    """What overlayfs shows for OLD + TOP, with the structure of the user's change.

    Nodes of paths TOP does not touch are the very objects of the OLD tree
    (``view.nodes[p] is old.nodes[p]``): that identity is how the classifier
    knows a path is untouched without comparing anything.
    """

    tree: Tree
    # OLD paths whose whole subtree the user hid, with the change word for it:
    # REMOVED (whiteout, or replaced by an opaque directory), TYPE (replaced by a
    # non-directory) or RENAMED (moved away by a redirect).
    hidden: dict[bytes, str]
    # View paths that are the destination of a renamed directory -> OLD source path.
    renamed: dict[bytes, bytes]
    # Paths with an entry in TOP (including whiteouts); everything else is untouched.
    touched: frozenset[bytes]
    # Which xattr namespace TOP uses for overlay attributes: "trusted" or "user".
    namespace: str = "trusted"
