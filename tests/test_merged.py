"""The merged view (overmerge.merged), pure: trees built in memory, no I/O."""
from __future__ import annotations

import pytest

from overmerge import paths
from overmerge.classify import classify
from overmerge.errors import DecisionsNeeded, InputError
from overmerge.merged import build
from overmerge.model import DIR, FILE, Node, Tree, UserView


def d(mode: int = 0o755, uid: int = 0) -> Node:
    return Node(DIR, mode, uid, 0)


def f(data: str, mode: int = 0o644, uid: int = 0) -> Node:
    # ``source`` stands for the content: equal sources are equal bytes.
    return Node(FILE, mode, uid, 0, size=len(data), source=data.encode())


def tree(entries: dict[str, Node]) -> Tree:
    nodes = {b"": d()}
    for p, n in entries.items():
        nodes[p.encode()] = n
    children: dict[bytes, list[bytes]] = {p: [] for p, n in nodes.items() if n.kind == DIR}
    for p in sorted(nodes):
        if p:
            children[paths.parent_of(p)].append(paths.name_of(p))
    return Tree(b"", nodes, children)


def same(a: Node, b: Node) -> bool:
    return a.source == b.source


def view_of(old: Tree, changed: dict[str, Node | None], hidden: dict[str, str] | None = None) -> UserView:
    nodes = dict(old.nodes)
    for p, n in changed.items():
        if n is None:
            for q in [q for q in nodes if q == p.encode() or paths.is_under(q, p.encode())]:
                del nodes[q]
        else:
            nodes[p.encode()] = n
    t = tree({k.decode(): v for k, v in nodes.items() if k})
    return UserView(t, {k.encode(): v for k, v in (hidden or {}).items()}, {},
                    frozenset(p.encode() for p in changed))


def merged_of(old, new, view, unresolved=None, decide=None):
    entries = classify(old, new, view, same_content=same)
    for e in entries:
        if decide and e.path in decide:
            e.resolution, e.decision = "decided", decide[e.path]
    return build(old, new, view, entries, same=same, remerge=lambda *a: pytest.fail("no content rule here"),
                 unresolved=unresolved)


def test_one_sided_changes_and_attribute_merge() -> None:
    old = tree({"etc": d(), "etc/a": f("1"), "etc/b": f("1"), "etc/c": f("1", 0o644)})
    new = tree({"etc": d(), "etc/a": f("1"), "etc/b": f("2"), "etc/c": f("2", 0o644)})
    view = view_of(old, {"etc/a": f("mine"), "etc/c": f("1", 0o600)})
    m = merged_of(old, new, view)
    assert m.nodes[b"etc/a"].node.source == b"mine"
    assert m.nodes[b"etc/b"].node.source == b"2"
    c = m.nodes[b"etc/c"].node
    assert (c.source, c.mode) == (b"2", 0o600)  # vendor content, your mode
    assert not m.aside


def test_needs_decision_without_policy_raises() -> None:
    old = tree({"a": f("1")})
    new = tree({"a": f("2")})
    view = view_of(old, {"a": f("3")})
    with pytest.raises(DecisionsNeeded):
        merged_of(old, new, view)
    m = merged_of(old, new, view, unresolved="take-new")
    assert m.nodes[b"a"].node.source == b"2"
    assert [(a.path, a.side, a.node.source) for a in m.aside] == [(b"a", "yours", b"3")]


def test_decisions_yours_absent_and_content() -> None:
    old = tree({"a": f("1"), "b": f("1", 0o644)})
    new = tree({"a": f("2"), "b": f("2", 0o644)})
    view = view_of(old, {"a": None, "b": f("3", 0o600)})
    m = merged_of(old, new, view, decide={
        b"a": {"take": "yours", "by": "user", "keep_aside": True},
        b"b": {"take": "content", "content_b64": "bWVyZ2Vk", "by": "user"},
    })
    assert b"a" not in m.nodes
    assert [(x.path, x.side) for x in m.aside] == [(b"a", "new")]
    b = m.nodes[b"b"]
    assert b.content == b"merged" and b.node.mode == 0o600 and b.node.source is None
    with pytest.raises(InputError):
        merged_of(old, new, view, decide={b"a": {"take": "theirs"}})


def test_chosen_parent_wins_and_child_goes_aside() -> None:
    # You turned file etc/app.conf into a directory; the vendor edited the file.
    old = tree({"etc": d(), "etc/app.conf": f("1")})
    new = tree({"etc": d(), "etc/app.conf": f("2")})
    view = view_of(old, {"etc/app.conf": d(), "etc/app.conf/local": f("5")}, hidden={"etc/app.conf": "type"})
    m = merged_of(old, new, view, unresolved="take-new")
    assert m.nodes[b"etc/app.conf"].node.source == b"2"
    assert b"etc/app.conf/local" not in m.nodes
    assert (b"etc/app.conf/local", "yours") in [(a.path, a.side) for a in m.aside]
    m = merged_of(old, new, view, unresolved="keep-user")
    assert m.nodes[b"etc/app.conf"].node.kind == DIR and b"etc/app.conf/local" in m.nodes


def test_vendor_removed_dir_restored_for_your_file() -> None:
    # The vendor removed a directory under which you added a file: a conflict; keep-user
    # keeps your file, and the directory is restored to hold it.
    old = tree({"opt": d(0o750), "opt/x": f("1")})
    new = tree({})
    view = view_of(old, {"opt/mine": f("m")})
    m = merged_of(old, new, view, unresolved="keep-user")
    assert m.nodes[b"opt/mine"].node.source == b"m"
    assert m.nodes[b"opt"].node.kind == DIR and m.nodes[b"opt"].node.mode == 0o750
    assert b"opt" in m.restored
    assert b"opt/x" not in m.nodes


def test_root_keeps_your_metadata() -> None:
    old = tree({})
    new = tree({})
    view = view_of(old, {})
    view.tree.nodes[b""] = d(0o700)
    m = merged_of(old, new, view)
    assert m.nodes[b""].node.mode == 0o700
