"""Compare overmerge's computed user view with the kernel's view of ``lowerdir=TOP:OLD``.

Shared by tests/test_user_view_kernel.py (golden cases) and
tests/test_user_view_property.py (random trees and user operations).
"""
from __future__ import annotations

import os
from pathlib import Path

from overmerge.layers import ContentComparer, Upper, read_tree, read_upper, user_view
from overmerge.model import Tree, attribute_diff
from overmerge.mounts import overlay


def compare_trees(kernel: Tree, view: Tree) -> list[str]:
    """Attribute-by-attribute differences between the kernel's tree and the computed view."""
    same = ContentComparer().same
    problems = []
    for path in sorted(kernel.nodes.keys() | view.nodes.keys()):
        k, v = kernel.nodes.get(path), view.nodes.get(path)
        if k is None or v is None:
            problems.append(f"{path!r}: kernel {'has' if k else 'lacks'} it, overmerge {'has' if v else 'lacks'} it")
            continue
        differ = attribute_diff(k, v, same)
        if path == b"":
            differ -= {"mode", "uid", "gid"}  # the mount root shows the mount point's own
        if differ:
            problems.append(f"{path!r}: differs in {sorted(differ)}")
    return problems


def kernel_options(upper: Upper) -> list[str]:
    # userxattr mounts cannot have redirects or metacopy (the kernel refuses them).
    return ["ro", "userxattr"] if upper.namespace == "user" else ["ro", "redirect_dir=follow", "metacopy=on"]


def index_aliases(old: Tree, upper: Upper, view: Tree) -> set[bytes]:
    """Paths TOP does not touch that the view shows as an upper inode: names of an OLD hard
    link copied up with index=on. A read-only ``lowerdir=TOP:OLD`` mount has no index and
    shows OLD's file there; the user's own mount (upper + work, index=on) shows the copy."""
    olds = {id(n) for n in old.nodes.values()}
    return {p for p, n in view.nodes.items() if p not in upper.entries and id(n) not in olds}


def view_problems(old: Path, top: Path, mnt: Path) -> list[str]:
    """Mount ``lowerdir=TOP:OLD`` read-only at ``mnt`` (always unmounted again) and list
    where ``layers.user_view`` differs from what the kernel shows (index aliases excepted,
    see :func:`index_aliases`)."""
    upper = read_upper(os.fsencode(top))
    old_tree = read_tree(os.fsencode(old))
    view = user_view(old_tree, upper)
    skip = index_aliases(old_tree, upper, view.tree)
    mnt.mkdir(exist_ok=True)
    with overlay([top, old], mnt, options=kernel_options(upper)):
        kernel = read_tree(os.fsencode(mnt))
        return [p for p in compare_trees(kernel, view.tree) if not any(p.startswith(repr(s) + ":") for s in skip)]


def remount_problems(old: Path, top: Path, work: Path, mnt: Path, options) -> list[str]:
    """Mount OLD + TOP again as the user does (upper, work, the same options; always
    unmounted again) and list where ``layers.user_view`` differs from it."""
    view = user_view(read_tree(os.fsencode(old)), read_upper(os.fsencode(top)))
    mnt.mkdir(exist_ok=True)
    with overlay([old], mnt, upperdir=top, workdir=work, options=list(options)):
        kernel = read_tree(os.fsencode(mnt))
        return compare_trees(kernel, view.tree)


def index_orphans(top: Path, work: Path) -> bool:
    """Whether the index holds a copied-up hard link no TOP name links to any more (you
    edited one name of an OLD hard link, then deleted that name): its data lives only in
    the work dir, which overmerge does not read."""
    index = work / "index"
    if not index.is_dir():
        return False
    inodes = {os.lstat(os.path.join(d, f)).st_ino for d, _, fs in os.walk(top) for f in fs}
    return any(e.is_file(follow_symlinks=False) and e.stat(follow_symlinks=False).st_ino not in inodes
               for e in os.scandir(index))
