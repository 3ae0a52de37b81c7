"""Making a plan from three directories: the I/O side of classification.

Reads OLD, NEW and TOP, computes the user view, wires the rules and the merge
engine into the pure classifier, and records what it saw of each input.
"""
from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from overmerge import paths
from overmerge.classify import Classifier, ContentMerge, Entry
from overmerge.errors import InputError
from overmerge.layers import (
    ContentComparer,
    Upper,
    check_root,
    origin_inode,
    read_bytes,
    read_tree,
    read_upper,
    user_view,
)
from overmerge.model import UNCHANGED, Node, Tree, UserView
from overmerge.mounts import check_not_mounted
from overmerge.plan import InputRecord, Manifest, Plan, count_classes

DEFAULT_MAX_MERGE_SIZE = 4 << 20  # larger files are never line-merged


@dataclass(frozen=True, slots=True)
class Layers:
    """The three inputs as read from disk, with what was seen of each."""

    old: Tree
    new: Tree
    view: UserView
    manifests: dict[str, Manifest]
    roots: dict[str, bytes]


def _check_layout(roots: dict[str, bytes]) -> None:
    """Refuse inputs that overlap: TOP inside OLD/NEW (or the reverse) means a confused call."""
    names = {"old": "OLD (--old)", "new": "NEW (--new)", "upper": "TOP (--upper)"}
    for a in ("upper",):
        for b in ("old", "new"):
            ra, rb = roots[a], roots[b]
            if paths.overlaps(ra, rb):
                raise InputError(
                    f"{os.fsdecode(ra)}: {names[a]} and {names[b]} {os.fsdecode(rb)} overlap; "
                    "give three separate directories"
                )


def read_layers(old: str | bytes | os.PathLike, new: str | bytes | os.PathLike, upper: str | bytes | os.PathLike) -> Layers:
    roots = {
        "old": check_root(old, "OLD", "--old"),
        "new": check_root(new, "NEW", "--new"),
        "upper": check_root(upper, "TOP", "--upper"),
    }
    _check_layout(roots)
    check_not_mounted(roots["upper"], "TOP")
    seen: dict[str, list[tuple[bytes, bytes]]] = {role: [] for role in roots}
    old_tree = read_tree(roots["old"], seen["old"])
    new_tree = read_tree(roots["new"], seen["new"])
    top = read_upper(roots["upper"], seen["upper"])
    check_layer_order(old_tree, new_tree, top)
    view = user_view(old_tree, top)
    return Layers(
        old_tree, new_tree, view,
        {role: Manifest(tuple(items)) for role, items in seen.items()},
        roots,
    )


def check_layer_order(old: Tree, new: Tree, top: Upper) -> None:
    """Refuse --old and --new given the wrong way round.

    The kernel records in ``overlay.origin`` which lower inode a TOP entry was copied
    up from. When those inodes are NEW's at the same paths and never OLD's, TOP was
    made on what is passed as --new. Undecodable handles, re-extracted bases (no match
    either way) and renamed entries (their origin is at another path) say nothing."""
    matches_old = matches_new = 0
    example = b""
    for path, entry in top.entries.items():
        if entry.origin is None or entry.redirect is not None:
            continue
        ino = origin_inode(entry.origin)
        o, n = old.nodes.get(path), new.nodes.get(path)
        if ino is None or o is None or n is None or o.inode is None or n.inode is None:
            continue
        if o.inode[1] == n.inode[1]:
            continue
        if ino == o.inode[1]:
            matches_old += 1
        elif ino == n.inode[1]:
            matches_new += 1
            example = example or path
    if matches_new and not matches_old:
        raise InputError(
            f"{os.fsdecode(top.root)}: TOP was made on the layer given as --new ({os.fsdecode(new.root)}), "
            f"not on --old ({os.fsdecode(old.root)}): its copy-ups (e.g. {paths.display(example) or '/'}) "
            "come from --new's files; swap --old and --new"
        )


def load_ruleset(rule_dirs: Sequence[Path] = (), host_dir: Path | None = Path("/etc/overmerge/rules.d")):
    from overmerge.rules import load_rules

    return load_rules(list(rule_dirs), host_dir=host_dir)


def classify_layers(layers: Layers, *, rules, checksum: bool = False, max_size: int = DEFAULT_MAX_MERGE_SIZE) -> list[Entry]:
    """Classify every path; content clashes are merged with the rule matching the path."""
    from overmerge.rules import merge_with_rule

    comparer = ContentComparer(checksum)

    def rule_for(path: bytes):
        rule = rules.match(_rule_path(path))
        return (rule.name, rule.strategy) if rule is not None else None

    def merge_content(path: bytes, o: Node | None, y: Node, n: Node) -> ContentMerge:
        rule = rules.match(_rule_path(path))
        sides = [read_bytes(node, max_size) if node is not None else b"" for node in (o, y, n)]
        if any(side is None for side in sides):
            from overmerge.merge.base import MergeResult

            return ContentMerge(rule.name if rule else None, MergeResult(
                strategy=rule.strategy if rule else "text", chunks=(),
                reason=f"larger than {max_size} bytes; never line-merged"))
        result = merge_with_rule(rule, sides[0], sides[1], sides[2], max_size=max_size)
        return ContentMerge(rule.name if rule else None, result)

    return Classifier(
        layers.old, layers.new, layers.view,
        same_content=comparer.same,
        quick_same_content=comparer.quick,
        merge_content=merge_content,
        rule_for=rule_for,
    ).classify_all()


def _rule_path(path: bytes) -> str:
    return os.fsdecode(path)


def make_plan(
    old: str | bytes | os.PathLike,
    new: str | bytes | os.PathLike,
    upper: str | bytes | os.PathLike,
    *,
    rules=None,
    rule_dirs: Sequence[Path] = (),
    checksum: bool = False,
    include_unchanged: bool = False,
    max_size: int = DEFAULT_MAX_MERGE_SIZE,
) -> Plan:
    """Read the three layers and classify every path (design.md §3)."""
    layers = read_layers(old, new, upper)
    if rules is None:
        rules = load_ruleset(rule_dirs)
    entries = classify_layers(layers, rules=rules, checksum=checksum, max_size=max_size)
    counts = count_classes(entries)
    if not include_unchanged:
        entries = [e for e in entries if e.cls != UNCHANGED]
    inputs = {
        role: InputRecord(
            role,
            os.fsdecode(layers.roots[role]),
            layers.manifests[role],
            layers.view.namespace if role == "upper" else None,
        )
        for role in ("old", "new", "upper")
    }
    return Plan(
        inputs=inputs,
        entries=entries,
        counts=counts,
        options={
            "checksum": checksum,
            "rules": [str(d) for d in rule_dirs],
            "max_merge_size": max_size,
            "all": include_unchanged,
        },
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )


__all__ = ["Layers", "make_plan", "read_layers", "classify_layers", "paths"]
