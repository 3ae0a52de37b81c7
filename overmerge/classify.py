"""Three-way classification of every path (design.md §3). Pure: no I/O.

OLD is always the common ancestor. For each path of OLD ∪ NEW ∪ user view we
compare attribute by attribute, OLD → user view ("your change") and OLD → NEW
("vendor update"), and decide the class. Conflicts are merged per attribute
where the sides touched different attributes; a content clash goes to the
merge engine through the ``merge_content`` callback, which the caller wires to
the rules (and to file reading).
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from overmerge import paths
from overmerge.merge.base import Hunk, MergeResult
from overmerge.model import (
    ADDED,
    ATTRIBUTE_RULE,
    AUTO_MERGED,
    CONFLICT,
    DIR,
    FILE,
    IDENTICAL,
    METADATA,
    MODIFIED,
    NEEDS_DECISION,
    REMOVED,
    RENAMED,
    TYPE,
    UNCHANGED,
    UPSTREAM_CHANGED,
    USER_MODIFIED,
    ContentEq,
    Node,
    Tree,
    UserView,
    attribute_diff,
    change_of,
)

# Strategies that settle any conflict on their path by taking one whole side.
WHOLE_FILE = {"keep-user": "yours", "take-new": "new", "regenerate": "new"}


@dataclass(frozen=True, slots=True)
class ContentMerge:
    """What the merge engine said about one content clash."""

    rule: str | None
    result: MergeResult


# (path, OLD or None, yours, NEW) -> ContentMerge
MergeContent = Callable[[bytes, Node | None, Node, Node], ContentMerge]
# path -> (rule name, strategy) or None
RuleFor = Callable[[bytes], tuple[str, str] | None]


@dataclass(slots=True)
class Entry:
    """The classification of one path: what a plan lists."""

    path: bytes
    cls: str
    change: str | None = None
    your_change: str | None = None
    vendor_change: str | None = None
    resolution: str | None = None
    rule: str | None = None
    reason: str = ""
    your_attributes: tuple[str, ...] = ()
    vendor_attributes: tuple[str, ...] = ()
    conflicting: tuple[str, ...] = ()  # attributes both sides set differently
    hunks: tuple[Hunk, ...] = ()
    taken: str | None = None  # whole-file rule: "yours" or "new"
    merged_sha256: str | None = None  # content merged by a rule
    decision: dict | None = None
    hunk_choices: tuple | None = None  # resolve's per-hunk progress (JSON values); apply ignores it

    @property
    def needs_decision(self) -> bool:
        return self.resolution == NEEDS_DECISION


def merge_xattrs(
    old: Iterable[tuple[bytes, bytes]],
    yours: Iterable[tuple[bytes, bytes]],
    new: Iterable[tuple[bytes, bytes]],
) -> tuple[tuple[bytes, bytes], ...] | None:
    """Three-way merge of xattrs key by key; None when a key clashes."""
    o, y, n = dict(old), dict(yours), dict(new)
    merged: dict[bytes, bytes] = {}
    for key in sorted(o.keys() | y.keys() | n.keys()):
        ov, yv, nv = o.get(key), y.get(key), n.get(key)
        if yv == nv:
            value = yv
        elif yv == ov:
            value = nv
        elif nv == ov:
            value = yv
        else:
            return None
        if value is not None:
            merged[key] = value
    return tuple(merged.items())


def merge_attributes(old: Node | None, yours: Node, new: Node, your_attrs: Iterable[str]) -> Node:
    """NEW's node with the attributes only you changed taken from yours.

    Used for conflicts whose sides changed different attributes, e.g. your mode
    with the vendor's content. Content is not set here when both changed it.
    """
    node = new
    for attr in your_attrs:
        if attr in ("mode", "uid", "gid", "target", "rdev"):
            node = node.with_(**{attr: getattr(yours, attr)})
        elif attr == "content":
            node = node.with_(source=yours.source, size=yours.size, inode=yours.inode, nlink=yours.nlink)
    if old is not None:
        xattrs = merge_xattrs(old.xattrs, yours.xattrs, new.xattrs)
        if xattrs is not None:
            node = node.with_(xattrs=xattrs)
    return node


def _ancestors(path: bytes) -> Iterable[bytes]:
    while True:
        i = path.rfind(b"/")
        if i < 0:
            return
        path = path[:i]
        yield path


def _summary(your: str | None, vendor: str | None, yours: Node | None, new: Node | None) -> str:
    """One `change` word for a conflict, from both sides' changes."""
    if TYPE in (your, vendor) or (yours is not None and new is not None and yours.kind != new.kind):
        return TYPE
    if RENAMED in (your, vendor):
        return RENAMED
    if REMOVED in (your, vendor):
        return REMOVED
    if your == ADDED and vendor == ADDED:
        return ADDED
    if MODIFIED in (your, vendor):
        return MODIFIED
    return METADATA


_YOUR_WORDS = {
    ADDED: "you added it",
    REMOVED: "you deleted it",
    MODIFIED: "you changed it",
    METADATA: "you changed its {attrs}",
    TYPE: "you replaced it with a {kind}",
    RENAMED: "you renamed it",
}
_VENDOR_WORDS = {
    ADDED: "the vendor update adds it",
    REMOVED: "the vendor update removes it",
    MODIFIED: "the vendor update changes it",
    METADATA: "the vendor update changes its {attrs}",
    TYPE: "the vendor update replaces it with a {kind}",
    RENAMED: "the vendor update renames it",
}


def _describe(words: dict[str, str], change: str | None, attrs: Iterable[str], node: Node | None) -> str:
    if change is None:
        return ""
    return words[change].format(attrs="/".join(sorted(attrs)) or "metadata", kind=node.kind if node else "nothing")


class Classifier:
    """Classifies paths given the three trees and the I/O callbacks."""

    def __init__(
        self,
        old: Tree,
        new: Tree,
        view: UserView,
        *,
        same_content: ContentEq,
        quick_same_content: ContentEq | None = None,
        merge_content: MergeContent | None = None,
        rule_for: RuleFor | None = None,
    ) -> None:
        self.old = old.nodes
        self.new = new.nodes
        self.view = view
        self.yours = view.tree.nodes
        self.same = same_content
        self.quick = quick_same_content or same_content
        self.merge_content = merge_content
        self.rule_for = rule_for or (lambda path: None)
        self._targets: dict[bytes, bytes] | None = None  # rename source -> destination

    def all_paths(self) -> list[bytes]:
        keys = self.old.keys() | self.new.keys() | self.yours.keys()
        keys.discard(b"")
        return sorted(keys)

    def classify_all(self) -> list[Entry]:
        return [self.classify(p) for p in self.all_paths()]

    # -- context from ancestors -------------------------------------------------

    def _hidden_by_you(self, path: bytes) -> str | None:
        """Your change to an ancestor (deleted, replaced, renamed) hides this OLD/NEW path."""
        for anc in _ancestors(path):
            word = self.view.hidden.get(anc)
            if word is not None:
                return word
        return None

    def _renamed_by_you(self, path: bytes) -> bool:
        if path in self.view.renamed:
            return True
        return any(anc in self.view.renamed for anc in _ancestors(path))

    def _rename_source(self, path: bytes) -> bytes | None:
        """The OLD path a path under a directory you renamed shows (None: not renamed)."""
        for anc in (path, *_ancestors(path)):
            source = self.view.renamed.get(anc)
            if source is not None:
                return source + path[len(anc):]
        return None

    def _rename_target(self, path: bytes) -> bytes | None:
        """Where a path of OLD went when you renamed it or a directory above it."""
        if self._targets is None:
            self._targets = {src: dst for dst, src in self.view.renamed.items()}
        for anc in (path, *_ancestors(path)):
            target = self._targets.get(anc)
            if target is not None:
                return target + path[len(anc):]
        return None

    def _rename_reason(self, path: bytes, y: Node | None) -> str:
        """"renamed from X" at the new name, "renamed to Y" at the old one."""
        other = self._rename_source(path) if y is not None else self._rename_target(path)
        if other is None:
            return _YOUR_WORDS[RENAMED]
        return f"you renamed it {'from' if y is not None else 'to'} {paths.display(other)}"

    def _removed_by_vendor(self, path: bytes) -> str | None:
        """The vendor removed an ancestor directory, or replaced it with a non-directory."""
        for anc in _ancestors(path):
            o = self.old.get(anc)
            if o is not None and o.kind == DIR:
                n = self.new.get(anc)
                if n is None:
                    return REMOVED
                if n.kind != DIR:
                    return TYPE
        return None

    # -- one path -------------------------------------------------------------------

    def classify(self, path: bytes) -> Entry:
        o = self.old.get(path)
        y = self.yours.get(path)
        n = self.new.get(path)
        untouched = o is not None and y is o
        ydiff = frozenset() if untouched or o is None or y is None else attribute_diff(o, y, self.same)
        ndiff = (
            frozenset()
            if o is None or n is None
            else attribute_diff(o, n, self.quick if untouched else self.same)
        )
        your = None if untouched else change_of(o, y, ydiff)
        vendor = change_of(o, n, ndiff)
        if your == ADDED and self._rename_source(path) in self.old or (
            your == REMOVED and self._hidden_by_you(path) == RENAMED
        ):
            # Something new inside a directory you renamed is yours to have added; what
            # it shows from OLD's source directory is the rename.
            your = RENAMED
        if your == REMOVED and self.view.hidden.get(path) == RENAMED:
            your = RENAMED
        entry = Entry(path, UNCHANGED, your_attributes=tuple(sorted(ydiff)), vendor_attributes=tuple(sorted(ndiff)))

        # Structural context: one side's change to an ancestor swallows the other side's change here.
        if your is None and vendor is not None:
            hidden = self._hidden_by_you(path)
            if hidden is not None:
                return self._conflict(entry, o, y, n, hidden, vendor, structural=True)
        if your == RENAMED and y is not None and n is None and o is None:
            # You renamed a directory: what it shows at the new name is OLD's content at the
            # source; the vendor removing that source is a modify/delete conflict here,
            # where keeping your copy or dropping it is a real choice.
            source = self._rename_source(path)
            src_old = self.old.get(source) if source is not None else None
            src_new = self.new.get(source) if source is not None else None
            if src_old is not None and (src_new is None or src_new.kind != src_old.kind):
                gone = REMOVED if src_new is None else TYPE
                entry = self._conflict(entry, o, y, n, RENAMED, gone, structural=False)
                entry.change = RENAMED  # nothing changed type at the new name
                what = "removes that" if src_new is None else f"replaces that with a {src_new.kind}"
                tail = entry.reason.partition(" — ")[2]
                entry.reason = f"you renamed it from {paths.display(source)}; the vendor update {what}" + (
                    f" — {tail}" if tail else ""
                )
                return entry
        if vendor is None and your is not None and your != REMOVED:
            removed = self._removed_by_vendor(path)
            if removed is not None:
                return self._conflict(entry, o, y, n, your, removed, structural=True)

        if your is None and vendor is None:
            return entry
        if your is None:
            entry.cls, entry.change, entry.vendor_change = UPSTREAM_CHANGED, vendor, vendor
            entry.reason = _describe(_VENDOR_WORDS, vendor, ndiff, n)
            return entry
        if vendor is None:
            entry.cls, entry.change, entry.your_change = USER_MODIFIED, your, your
            entry.reason = (self._rename_reason(path, y) if your == RENAMED
                            else _describe(_YOUR_WORDS, your, ydiff, y))
            return entry
        return self._conflict(entry, o, y, n, your, vendor, structural=False)

    def _conflict(
        self,
        entry: Entry,
        o: Node | None,
        y: Node | None,
        n: Node | None,
        your: str,
        vendor: str,
        *,
        structural: bool,
    ) -> Entry:
        entry.cls = CONFLICT
        entry.your_change, entry.vendor_change = your, vendor
        entry.change = _summary(your, vendor, y, n)
        if structural and entry.change != RENAMED:
            # The ancestor's change is context; `change` says what happens at this path.
            entry.change = vendor if y is None else your
        both = f"{_describe(_YOUR_WORDS, your, entry.your_attributes, y)}; " \
               f"{_describe(_VENDOR_WORDS, vendor, entry.vendor_attributes, n)}"
        if structural:
            if your in (REMOVED, TYPE, RENAMED) and y is None:
                ancestor = {REMOVED: "you deleted or replaced a directory above it",
                            TYPE: "you replaced a directory above it",
                            RENAMED: "you renamed the directory above it"}[your]
                both = f"{ancestor}; {_describe(_VENDOR_WORDS, vendor, entry.vendor_attributes, n)} there"
            else:
                both = f"{_describe(_YOUR_WORDS, your, entry.your_attributes, y)}; " \
                       f"the vendor update removes the directory above it"
        # Both sides ended the same way: nothing to decide.
        if y is None and n is None or (
            y is not None and n is not None and not structural and not attribute_diff(y, n, self.same)
        ):
            entry.resolution = IDENTICAL
            same = "both leave it absent" if y is None and your != vendor else "both made the same change"
            entry.reason = f"{both} — {same}"
            return entry

        rule = self.rule_for(entry.path)
        if rule is not None and rule[1] in WHOLE_FILE:
            entry.resolution, entry.rule, entry.taken = AUTO_MERGED, rule[0], WHOLE_FILE[rule[1]]
            side = "your version" if entry.taken == "yours" else "the vendor's version"
            entry.reason = f"{both} — rule {rule[0]} ({rule[1]}) takes {side}"
            return entry

        if structural or y is None or n is None or y.kind != n.kind:
            entry.resolution = NEEDS_DECISION
            entry.reason = both
            return entry

        # Same kind on both sides: merge attribute by attribute.
        conflicting = set()
        ydiff = attribute_diff(o, y, self.same) if o is not None else frozenset({"content", "mode", "uid", "gid", "xattrs", "target", "rdev"})
        ndiff = attribute_diff(o, n, self.same) if o is not None else ydiff
        for attr in ydiff & ndiff:
            if attr == "content":
                if not self.same(y, n):
                    conflicting.add(attr)
            elif attr == "xattrs":
                if merge_xattrs(o.xattrs if o else (), y.xattrs, n.xattrs) is None:
                    conflicting.add(attr)
            elif getattr(y, attr) != getattr(n, attr):
                conflicting.add(attr)
        entry.conflicting = tuple(sorted(conflicting))
        if not conflicting:
            entry.resolution, entry.rule = AUTO_MERGED, ATTRIBUTE_RULE
            entry.reason = f"{both} — merged attribute by attribute"
            return entry
        if conflicting == {"content"} and y.kind == FILE and self.merge_content is not None:
            outcome = self.merge_content(entry.path, o, y, n)
            entry.rule = outcome.rule
            if outcome.result.clean:
                entry.resolution = AUTO_MERGED
                entry.reason = f"{both} — merged by rule {outcome.rule or outcome.result.strategy}"
                merged = outcome.result.merged
                if merged is not None:
                    entry.merged_sha256 = hashlib.sha256(merged).hexdigest()
                entry.taken = outcome.result.taken
                return entry
            entry.hunks = outcome.result.hunks
            detail = outcome.result.reason or f"{len(entry.hunks)} conflicting hunk(s)"
            entry.resolution = NEEDS_DECISION
            entry.reason = f"{both} — {detail}"
            return entry
        entry.resolution = NEEDS_DECISION
        entry.reason = f"{both} — both changed {'/'.join(entry.conflicting)}"
        return entry


def classify(
    old: Tree,
    new: Tree,
    view: UserView,
    *,
    same_content: ContentEq,
    quick_same_content: ContentEq | None = None,
    merge_content: MergeContent | None = None,
    rule_for: RuleFor | None = None,
) -> list[Entry]:
    """Classify every path of OLD ∪ NEW ∪ user view, sorted by path."""
    return Classifier(
        old, new, view,
        same_content=same_content,
        quick_same_content=quick_same_content,
        merge_content=merge_content,
        rule_for=rule_for,
    ).classify_all()


__all__ = ["Classifier", "ContentMerge", "Entry", "classify", "merge_attributes", "merge_xattrs"]
