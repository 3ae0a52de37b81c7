"""Reading layers from disk: never following symlinks, bytes names, overlay attributes."""
from __future__ import annotations

import os
import stat

import pytest

from overmerge.errors import InputError
from overmerge.layers import ContentComparer, check_root, read_tree, read_upper, user_view

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: mknod whiteouts and trusted.* xattrs")


def test_symlinks_are_read_not_followed(tmp_path):
    root = tmp_path / "t"
    (root / "d").mkdir(parents=True)
    os.symlink("/etc/passwd", root / "abs")
    os.symlink("../missing/x", root / "d" / "rel")
    os.symlink("/", root / "loop")
    tree = read_tree(os.fsencode(root))
    assert tree.nodes[b"abs"].kind == "symlink" and tree.nodes[b"abs"].target == b"/etc/passwd"
    assert tree.nodes[b"d/rel"].target == b"../missing/x"
    assert b"loop/etc" not in tree.nodes  # never descended
    assert set(tree.nodes) == {b"", b"d", b"abs", b"d/rel", b"loop"}


def test_odd_names_round_trip(tmp_path):
    root = os.fsencode(tmp_path)
    for name in (b"new\nline", b"\xff\xfe", b" space ", b"-dash", b"x" * 255):
        with open(root + b"/" + name, "wb") as f:
            f.write(name)
    tree = read_tree(root)
    assert {b"new\nline", b"\xff\xfe", b" space ", b"-dash", b"x" * 255} <= set(tree.nodes)


def test_check_root_errors_name_the_path(tmp_path):
    with pytest.raises(InputError, match="no such directory"):
        check_root(tmp_path / "missing", "OLD", "--old")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a directory"):
        check_root(tmp_path / "file", "NEW", "--new")


def test_content_compare_streams_and_caches(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    a.write_bytes(b"x" * (3 << 20))
    b.write_bytes(b"x" * (3 << 20))
    c.write_bytes(b"x" * ((3 << 20) - 1) + b"y")
    tree = read_tree(os.fsencode(tmp_path))
    cmp = ContentComparer()
    assert cmp.same(tree.nodes[b"a"], tree.nodes[b"b"])
    assert not cmp.same(tree.nodes[b"a"], tree.nodes[b"c"])
    # quick check trusts equal size + mtime unless checksum is asked for
    os.utime(c, ns=(0, a.stat().st_mtime_ns))
    tree = read_tree(os.fsencode(tmp_path))
    assert ContentComparer().quick(tree.nodes[b"a"], tree.nodes[b"c"])
    assert not ContentComparer(checksum=True).quick(tree.nodes[b"a"], tree.nodes[b"c"])


@needs_root
def test_upper_format_in_user_namespace(tmp_path):
    old, top = tmp_path / "old", tmp_path / "top"
    (old / "d").mkdir(parents=True)
    (old / "d" / "a").write_text("a")
    (old / "gone").write_text("g")
    (top / "d").mkdir(parents=True)
    os.setxattr(top / "d", "user.overlay.opaque", b"y")
    (top / "d" / "b").write_text("b")
    os.mknod(top / "gone", stat.S_IFCHR | 0o000, 0)
    os.setxattr(top / "d" / "b", "user.note", b"kept")
    upper = read_upper(os.fsencode(top))
    assert upper.namespace == "user"
    assert upper.entries[b"gone"].whiteout
    assert upper.entries[b"d"].opaque
    view = user_view(read_tree(os.fsencode(old)), upper)
    assert set(view.tree.nodes) == {b"", b"d", b"d/b"}
    assert view.tree.nodes[b"d/b"].xattrs == ((b"user.note", b"kept"),)
    assert view.hidden == {b"gone": "removed", b"d": "removed"}


@needs_root
def test_hostile_redirect_is_refused(tmp_path):
    top = tmp_path / "top"
    (top / "d").mkdir(parents=True)
    os.setxattr(top / "d", "trusted.overlay.redirect", b"/../../etc")
    with pytest.raises(InputError, match="unsafe overlay redirect"):
        read_upper(os.fsencode(top))


@needs_root
def test_mixed_namespaces_are_refused(tmp_path):
    top = tmp_path / "top"
    (top / "a").mkdir(parents=True)
    (top / "b").mkdir()
    os.setxattr(top / "a", "trusted.overlay.opaque", b"y")
    os.setxattr(top / "b", "user.overlay.opaque", b"y")
    with pytest.raises(InputError, match="mixes"):
        read_upper(os.fsencode(top))
