"""The user view overmerge computes equals what the kernel shows for OLD + TOP.

For every golden case, TOP (made through a real mount) is mounted read-only as
the upper lower layer over OLD, `lowerdir=TOP:OLD`, and the kernel's tree is
compared attribute by attribute with ``layers.user_view``. This checks the
decoding of whiteouts, opaque directories, redirects and metacopy against the
kernel itself.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from casebuild import build_case, case_dirs
from overlayfs import requires_root
from overmerge.layers import ContentComparer, read_tree, read_upper, user_view
from overmerge.model import attribute_diff
from overmerge.mounts import overlay


def _compare(kernel, view) -> list[str]:
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


@requires_root
@pytest.mark.root
@pytest.mark.parametrize("case_dir", [pytest.param(d, id=d.name) for d in case_dirs()])
def test_user_view_matches_kernel(case_dir: Path, tmp_path: Path) -> None:
    layers = build_case(case_dir, tmp_path / "case")
    upper = read_upper(os.fsencode(layers.upper))
    view = user_view(read_tree(os.fsencode(layers.old)), upper)
    # userxattr mounts cannot have redirects or metacopy (the kernel refuses them).
    options = ["ro", "userxattr"] if upper.namespace == "user" else ["ro", "redirect_dir=follow", "metacopy=on"]
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with overlay([layers.upper, layers.old], mnt, options=options):
        kernel = read_tree(os.fsencode(mnt))
        problems = _compare(kernel, view.tree)
    assert not problems, "\n".join(problems)
