"""The pure classifier on in-memory trees (no filesystem): design.md §3 row by row.

Content identity is modelled by ``source``: two files hold the same bytes
when their sources are equal. The real-kernel cases live in tests/cases.
"""
from __future__ import annotations

import pytest

from overmerge.classify import Classifier, ContentMerge, merge_xattrs
from overmerge.layers import Upper, UpperEntry, user_view
from overmerge.merge.base import Hunk, MergeResult
from overmerge.model import DIR, FILE, SYMLINK, CHARDEV, Node, Tree


def f(content: str, mode: int = 0o644, uid: int = 0, **kw) -> Node:
    return Node(FILE, mode, uid, 0, size=len(content), source=content.encode(), **kw)


def d(mode: int = 0o755, **kw) -> Node:
    return Node(DIR, mode, 0, 0, **kw)


def link(target: str) -> Node:
    return Node(SYMLINK, 0o777, 0, 0, target=target.encode())


WHITEOUT = Node(CHARDEV, 0, 0, 0, rdev=0)


def tree(spec: dict[str, Node]) -> Tree:
    nodes = {b"": d()}
    nodes.update({k.encode(): v for k, v in spec.items()})
    children: dict[bytes, list[bytes]] = {p: [] for p, n in nodes.items() if n.kind == DIR}
    for p in sorted(nodes):
        if p:
            parent, _, name = p.rpartition(b"/")
            children[parent].append(name)
    return Tree(b"", nodes, children)


def upper(spec: dict[str, Node | UpperEntry]) -> Upper:
    entries = {b"": UpperEntry(d())}
    for k, v in spec.items():
        entries[k.encode()] = v if isinstance(v, UpperEntry) else UpperEntry(v, whiteout=v is WHITEOUT)
    children: dict[bytes, list[bytes]] = {p: [] for p, e in entries.items() if e.node.kind == DIR}
    for p in sorted(entries):
        if p:
            parent, _, name = p.rpartition(b"/")
            children[parent].append(name)
    return Upper(b"", entries, children, "trusted")


def same(a: Node, b: Node) -> bool:
    return a.source == b.source


def merge_clean(path, o, y, n):
    return ContentMerge("test-rule", MergeResult("text", (b"merged\n",)))


def merge_conflict(path, o, y, n):
    return ContentMerge(None, MergeResult("text", (Hunk((b"o\n",), (b"y\n",), (b"n\n",)),)))


def run(old, new, top, merge=merge_conflict, rule_for=None):
    o, n = tree(old), tree(new)
    view = user_view(o, upper(top))
    c = Classifier(o, n, view, same_content=same, merge_content=merge, rule_for=rule_for)
    return {e.path.decode(): e for e in c.classify_all()}


def test_untouched_paths_follow_the_vendor():
    r = run({"a": f("1"), "b": f("1"), "c": f("1")}, {"a": f("1"), "b": f("2"), "d": f("4")}, {})
    assert r["a"].cls == "unchanged"
    assert (r["b"].cls, r["b"].change) == ("upstream-changed", "modified")
    assert (r["c"].cls, r["c"].change) == ("upstream-changed", "removed")
    assert (r["d"].cls, r["d"].change) == ("upstream-changed", "added")


def test_pure_copy_up_is_not_a_change():
    # TOP holds a copy identical to OLD (different inode, same bytes, newer mtime).
    r = run({"a": f("1")}, {"a": f("1")}, {"a": f("1", mtime_ns=99)})
    assert r["a"].cls == "unchanged"


def test_user_changes():
    r = run({"a": f("1"), "b": f("1"), "c": f("1")}, {"a": f("1"), "b": f("1"), "c": f("1")},
            {"a": f("2"), "b": WHITEOUT, "c": f("1", mode=0o600), "new": f("x")})
    assert (r["a"].cls, r["a"].change) == ("user-modified", "modified")
    assert (r["b"].cls, r["b"].change) == ("user-modified", "removed")
    assert (r["c"].cls, r["c"].change, r["c"].your_attributes) == ("user-modified", "metadata", ("mode",))
    assert (r["new"].cls, r["new"].change) == ("user-modified", "added")


def test_convergence_is_identical():
    r = run({"a": f("1")}, {"a": f("2")}, {"a": f("2")})
    assert (r["a"].cls, r["a"].resolution) == ("conflict", "identical")


@pytest.mark.parametrize(
    "old,new,top,change",
    [
        ({"a": f("1")}, {"a": f("2")}, {"a": WHITEOUT}, "removed"),  # delete/modify
        ({"a": f("1")}, {}, {"a": f("3")}, "removed"),  # modify/delete
        ({}, {"a": f("2")}, {"a": f("3")}, "added"),  # add/add
        ({"a": f("1")}, {"a": f("2")}, {"a": link("x")}, "type"),  # file -> symlink vs modify
        ({"a": f("1")}, {"a": d()}, {"a": f("3")}, "type"),
    ],
)
def test_conflicts_that_need_a_decision(old, new, top, change):
    r = run(old, new, top)
    assert (r["a"].cls, r["a"].change, r["a"].resolution) == ("conflict", change, "needs-decision")


def test_attributes_merge_per_attribute():
    # You changed the mode, the vendor changed the content: new content with your mode.
    r = run({"a": f("1")}, {"a": f("2")}, {"a": f("1", mode=0o600)})
    assert (r["a"].cls, r["a"].resolution, r["a"].rule) == ("conflict", "auto-merged", "attributes")
    # The vendor changed the mode, you changed the content.
    r = run({"a": f("1")}, {"a": f("1", mode=0o700)}, {"a": f("2")})
    assert (r["a"].resolution, r["a"].rule) == ("auto-merged", "attributes")
    # Both changed the mode differently: a decision.
    r = run({"a": f("1")}, {"a": f("1", mode=0o700)}, {"a": f("1", mode=0o600)})
    assert (r["a"].resolution, r["a"].conflicting) == ("needs-decision", ("mode",))


def test_content_clash_goes_to_the_merge_engine():
    r = run({"a": f("1")}, {"a": f("2")}, {"a": f("3")}, merge=merge_clean)
    assert (r["a"].resolution, r["a"].rule) == ("auto-merged", "test-rule")
    assert r["a"].merged_sha256 is not None
    r = run({"a": f("1")}, {"a": f("2")}, {"a": f("3")}, merge=merge_conflict)
    assert r["a"].resolution == "needs-decision" and len(r["a"].hunks) == 1


def test_whole_file_rule_settles_delete_conflicts():
    r = run({"a": f("1")}, {"a": f("2")}, {"a": WHITEOUT}, rule_for=lambda p: ("mid", "keep-user"))
    assert (r["a"].resolution, r["a"].rule, r["a"].taken) == ("auto-merged", "mid", "yours")


def test_opaque_replacement_hides_vendor_additions():
    old = {"d": d(), "d/a": f("1")}
    new = {"d": d(), "d/a": f("1"), "d/v": f("vendor")}
    top = {"d": UpperEntry(d(), opaque=True), "d/mine": f("m")}
    r = run(old, new, top)
    assert (r["d/a"].cls, r["d/a"].change) == ("user-modified", "removed")
    assert (r["d/mine"].cls, r["d/mine"].change) == ("user-modified", "added")
    assert (r["d/v"].cls, r["d/v"].resolution) == ("conflict", "needs-decision")


def test_incidentally_opaque_new_directory_does_not_hide_vendor_content():
    new = {"d": d(), "d/v": f("vendor")}
    top = {"d": UpperEntry(d(), opaque=True), "d/mine": f("m")}
    r = run({}, new, top)
    assert (r["d"].cls, r["d"].resolution) == ("conflict", "identical")
    assert (r["d/v"].cls, r["d/v"].change) == ("upstream-changed", "added")
    assert r["d/mine"].cls == "user-modified"


def test_renamed_directory_with_vendor_change_under_old_name():
    old = {"a": d(), "a/x": f("1")}
    new = {"a": d(), "a/x": f("2"), "a/y": f("3")}
    top = {"a": WHITEOUT, "b": UpperEntry(d(), redirect=b"a")}
    r = run(old, new, top)
    assert (r["b/x"].cls, r["b/x"].change) == ("user-modified", "renamed")
    assert r["b/x"].reason == "you renamed it from a/x"
    assert r["b"].reason == "you renamed it from a"
    assert (r["a/x"].cls, r["a/x"].change) == ("conflict", "renamed")
    assert (r["a/y"].cls, r["a/y"].change) == ("conflict", "renamed")


def test_metacopy_takes_data_from_old():
    old = {"a": f("1")}
    top = {"a": UpperEntry(f("", mode=0o600), metacopy=True)}
    r = run(old, {"a": f("2")}, top)
    # Your change is the mode only (the data is OLD's): auto-merged with the vendor's content.
    assert (r["a"].your_attributes, r["a"].resolution) == (("mode",), "auto-merged")


def test_orphan_whiteout_is_no_change():
    r = run({}, {}, {"ghost": WHITEOUT})
    assert "ghost" not in r
    r = run({}, {"ghost": f("v")}, {"ghost": WHITEOUT})
    assert r["ghost"].cls == "upstream-changed"


def test_vendor_removed_directory_you_added_to():
    old = {"d": d()}
    top = {"d": d(), "d/mine": f("m")}
    r = run(old, {}, top)
    assert (r["d/mine"].cls, r["d/mine"].vendor_change) == ("conflict", "removed")


def test_xattrs_merge_key_by_key():
    o = ((b"user.a", b"1"), (b"user.b", b"1"))
    assert merge_xattrs(o, ((b"user.a", b"2"), (b"user.b", b"1")), ((b"user.a", b"1"),)) == ((b"user.a", b"2"),)
    assert merge_xattrs(o, ((b"user.a", b"2"),), ((b"user.a", b"3"),)) is None


def test_rename_reasons_name_the_other_end():
    old = {"a": d(), "a/x": f("1")}
    top = {"a": WHITEOUT, "b": UpperEntry(d(), redirect=b"a")}
    r = run(old, old, top)
    assert (r["a"].reason, r["a/x"].reason) == ("you renamed it to b", "you renamed it to b/x")
    assert r["b/x"].reason == "you renamed it from a/x"
