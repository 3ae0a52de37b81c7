"""The merged view: what the user should see after the upgrade (design.md §2, §6). Pure.

Built from the three trees, the classification of every path and the plan's
decisions. Reading file bytes (to re-run a content merge) is the caller's job,
wired in through the ``remerge`` callback, so this module does no I/O.

Per path (Node or absent):

* unchanged, upstream-changed → NEW; user-modified → the user view;
* conflict ``identical`` → NEW;
* ``auto-merged`` by the attribute rule → ``merge_attributes(OLD, yours, NEW)``;
  by a whole-file rule (``taken``) → that side; by a content rule → the
  merged bytes with the attribute-merged metadata;
* ``decided`` → the plan's ``decision`` (``take`` yours / new / content);
* ``needs-decision`` → the ``unresolved`` policy (keep-user → yours,
  take-new → NEW); without a policy :class:`DecisionsNeeded` is raised.

Consistency (parents before children): a path that is present while its
parent is absent or not a directory in the merged view either

* is dropped and set aside, when the parent's state was *chosen* (a conflict
  settled by taking a side: a decision, a policy or a whole-file rule) — the
  choice on the parent wins; or
* restores the parent directory from the user view, else NEW, else OLD (the
  first that has a directory there); a non-directory it displaces is set aside.

The side not taken of every settled conflict is recorded in ``aside``: never
deleted, never part of the result.
"""
from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from overmerge import paths
from overmerge.classify import Entry, merge_attributes
from overmerge.errors import DecisionsNeeded, InputError
from overmerge.model import (
    ATTRIBUTE_RULE,
    AUTO_MERGED,
    CONFLICT,
    DECIDED,
    DIR,
    FILE,
    IDENTICAL,
    NEEDS_DECISION,
    USER_MODIFIED,
    Node,
    Tree,
    UserView,
    attribute_diff,
)

UNRESOLVED_POLICIES = {"keep-user": "yours", "take-new": "new"}

# (path, entry, OLD, yours, NEW) -> merged bytes of a content rule.
Remerge = Callable[[bytes, Entry, Node | None, Node, Node], bytes]


@dataclass(frozen=True, slots=True)
class MergedNode:
    """One path of the merged view: ``node`` says what it is; ``content`` holds bytes
    that exist in no layer (a rule merge or a person's edit), else ``node.source``
    is the file holding the data."""

    node: Node
    content: bytes | None = None


@dataclass(frozen=True, slots=True)
class AsideItem:
    """A side not taken: ``side`` is "yours" or "new"; ``node`` is that side's node."""

    path: bytes
    side: str
    node: Node
    content: bytes | None = None
    reason: str = ""


def aside_lines(aside_dir: str, items: Iterable[AsideItem]) -> list[str]:
    """The lines that tell a person where the sides not taken went."""
    lines = [f"sides not taken saved in {aside_dir} (list.json):"]
    lines += [f"  {item.side}/{paths.display(item.path)}  ({item.reason})" for item in items]
    return lines


@dataclass(slots=True)
class MergedView:
    nodes: dict[bytes, MergedNode]  # b"" is the root
    aside: list[AsideItem] = field(default_factory=list)
    restored: list[bytes] = field(default_factory=list)  # parents restored for consistency
    chosen: dict[bytes, str] = field(default_factory=dict)  # path -> side taken ("yours"/"new"/"content")

    def children(self) -> dict[bytes, list[bytes]]:
        result: dict[bytes, list[bytes]] = {p: [] for p, m in self.nodes.items() if m.node.kind == DIR}
        for p in sorted(self.nodes):
            if p:
                result.setdefault(paths.parent_of(p), []).append(paths.name_of(p))
        return result


def decision_content(decision: dict, path: bytes) -> bytes:
    if "content_b64" in decision:
        try:
            return base64.b64decode(decision["content_b64"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InputError(f"plan decision for {paths.display(path)}: bad content_b64") from exc
    text = decision.get("content")
    if not isinstance(text, str):
        raise InputError(f"plan decision for {paths.display(path)}: take content needs \"content\" or \"content_b64\"")
    return text.encode("utf-8")


def _side(side: str, y: Node | None, n: Node | None) -> Node | None:
    return y if side == "yours" else n


def _merged_meta(o: Node | None, y: Node | None, n: Node | None, your_attrs: Iterable[str]) -> Node | None:
    """Metadata for new content: NEW's with the attributes only you changed."""
    if y is not None and n is not None and y.kind == n.kind:
        return merge_attributes(o, y, n, [a for a in your_attrs if a != "content"])
    return y if y is not None and y.kind == FILE else n if n is not None and n.kind == FILE else None


def root_node(old: Tree, new: Tree, view: UserView, same: Callable[[Node, Node], bool]) -> Node:
    """The root directory: NEW's metadata with the attributes you changed on it."""
    o, y, n = old.nodes[b""], view.tree.nodes[b""], new.nodes[b""]
    if y is o:
        return n
    return merge_attributes(o, y, n, attribute_diff(o, y, same))


def build(
    old: Tree,
    new: Tree,
    view: UserView,
    entries: Iterable[Entry],
    *,
    same: Callable[[Node, Node], bool],
    remerge: Remerge,
    unresolved: str | None = None,
) -> MergedView:
    """Compute the merged view from every path's classification (see module docstring)."""
    if unresolved is not None and unresolved not in UNRESOLVED_POLICIES:
        raise InputError(f"unknown --unresolved policy {unresolved!r}; use keep-user or take-new")
    yours_nodes = view.tree.nodes
    result = MergedView({b"": MergedNode(root_node(old, new, view, same))})
    suppressed: set[bytes] = set()
    for e in sorted(entries, key=lambda e: e.path):
        path = e.path
        o, y, n = old.nodes.get(path), yours_nodes.get(path), new.nodes.get(path)
        merged = _one(result, e, o, y, n, remerge, unresolved)
        if merged is None:
            continue
        parent = paths.parent_of(path)
        if parent in suppressed or _parent_blocked(result, parent):
            # The choice on an ancestor wins: keep this path aside, not in the result.
            suppressed.add(path)
            side = "yours" if merged.node is y else "new"
            if merged.node.kind != DIR:
                result.aside.append(AsideItem(path, side, merged.node, merged.content,
                                              "hidden by the side taken for a directory above it"))
            continue
        if not _ensure_parent(result, parent, old, new, view):
            suppressed.add(path)
            continue
        result.nodes[path] = merged
    return result


def _parent_blocked(result: MergedView, parent: bytes) -> bool:
    """The parent is not a directory in the merged view because a side was chosen there."""
    m = result.nodes.get(parent)
    if m is not None and m.node.kind == DIR:
        return False
    return parent in result.chosen


def _ensure_parent(result: MergedView, parent: bytes, old: Tree, new: Tree, view: UserView) -> bool:
    """Make sure ``parent`` (and its ancestors) is a directory in the merged view."""
    missing: list[bytes] = []  # nearest first; a loop, not recursion: paths may be very deep
    p = parent
    while True:
        m = result.nodes.get(p)
        if m is not None and m.node.kind == DIR:
            break
        if p in result.chosen:
            return False
        missing.append(p)
        if not p:
            break
        p = paths.parent_of(p)
    for p in reversed(missing):
        if not _restore_dir(result, p, old, new, view):
            return False
    return True


def _restore_dir(result: MergedView, parent: bytes, old: Tree, new: Tree, view: UserView) -> bool:
    m = result.nodes.get(parent)
    for tree_nodes in (view.tree.nodes, new.nodes, old.nodes):  # restore from yours, else NEW, else OLD
        node = tree_nodes.get(parent)
        if node is not None and node.kind == DIR:
            if m is not None:
                result.aside.append(AsideItem(parent, "yours" if m.node is view.tree.nodes.get(parent) else "new",
                                              m.node, m.content, "replaced by a directory that must hold kept paths"))
            result.nodes[parent] = MergedNode(node)
            result.restored.append(parent)
            return True
    return False  # unreachable for classified paths: some tree had the parent as a directory


def _one(
    result: MergedView,
    e: Entry,
    o: Node | None,
    y: Node | None,
    n: Node | None,
    remerge: Remerge,
    unresolved: str | None,
) -> MergedNode | None:
    path = e.path
    if e.cls != CONFLICT:
        node = y if e.cls == USER_MODIFIED else n
        return MergedNode(node) if node is not None else None

    if e.resolution == DECIDED and e.decision is not None:
        return _decided(result, e, o, y, n)
    if e.resolution == IDENTICAL:
        return MergedNode(n) if n is not None else None
    if e.resolution == AUTO_MERGED:
        if e.taken in ("yours", "new"):
            result.chosen[path] = e.taken
            return _take(result, e, e.taken, y, n, aside=False)
        if e.rule == ATTRIBUTE_RULE or e.merged_sha256 is None:
            assert y is not None and n is not None
            return MergedNode(merge_attributes(o, y, n, e.your_attributes))
        assert y is not None and n is not None
        data = remerge(path, e, o, y, n)
        meta = _merged_meta(o, y, n, e.your_attributes)
        assert meta is not None
        return MergedNode(meta.with_(size=len(data), source=None, inode=None, nlink=1), data)
    if e.resolution == NEEDS_DECISION:
        if unresolved is None:
            raise DecisionsNeeded(
                f"{paths.display(path)}: conflict needs a decision ({e.reason}); "
                "decide it with `overmerge resolve`, or pass --unresolved keep-user|take-new"
            )
        side = UNRESOLVED_POLICIES[unresolved]
        result.chosen[path] = side
        return _take(result, e, side, y, n, aside=True, reason=f"--unresolved {unresolved}")
    # Unknown resolution: treat as needing a decision (never guess).
    raise DecisionsNeeded(f"{paths.display(path)}: conflict with resolution {e.resolution!r}; make a new plan")


def _take(result: MergedView, e: Entry, side: str, y: Node | None, n: Node | None, *,
          aside: bool, reason: str = "") -> MergedNode | None:
    taken = _side(side, y, n)
    if aside:
        other = "new" if side == "yours" else "yours"
        node = _side(other, y, n)
        if node is not None and node.kind != DIR:
            result.aside.append(AsideItem(e.path, other, node, None, reason or "side not taken"))
    return MergedNode(taken) if taken is not None else None


def _decided(result: MergedView, e: Entry, o: Node | None, y: Node | None, n: Node | None) -> MergedNode | None:
    d = e.decision or {}
    take = d.get("take")
    keep_aside = bool(d.get("keep_aside", False))
    reason = f"decided by {d.get('by', 'user')}"
    if take in ("yours", "new"):
        result.chosen[e.path] = take
        return _take(result, e, take, y, n, aside=keep_aside, reason=reason)
    if take == "content":
        data = decision_content(d, e.path)
        meta = _merged_meta(o, y, n, e.your_attributes)
        if meta is None:
            raise InputError(
                f"plan decision for {paths.display(e.path)}: take content needs a regular file on one side; "
                "take yours or new instead"
            )
        result.chosen[e.path] = "content"
        if keep_aside:
            for side, node in (("yours", y), ("new", n)):
                if node is not None and node.kind != DIR:
                    result.aside.append(AsideItem(e.path, side, node, None, reason))
        return MergedNode(meta.with_(size=len(data), source=None, inode=None, nlink=1), data)
    raise InputError(
        f"plan decision for {paths.display(e.path)}: take must be yours, new or content (got {take!r}); "
        "fix the plan or decide again with `overmerge resolve`"
    )


__all__ = ["AsideItem", "MergedNode", "MergedView", "UNRESOLVED_POLICIES", "aside_lines", "build", "decision_content"]
