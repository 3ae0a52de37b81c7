"""The user view overmerge computes equals what the kernel shows for OLD + TOP.

For every golden case, TOP (made through a real mount) is mounted read-only as
the upper lower layer over OLD, `lowerdir=TOP:OLD`, and the kernel's tree is
compared attribute by attribute with ``layers.user_view``. This checks the
decoding of whiteouts, opaque directories, redirects and metacopy against the
kernel itself.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from casebuild import build_case, case_dirs
from overlayfs import requires_root
from viewcompare import view_problems


@requires_root
@pytest.mark.root
@pytest.mark.parametrize("case_dir", [pytest.param(d, id=d.name) for d in case_dirs()])
def test_user_view_matches_kernel(case_dir: Path, tmp_path: Path) -> None:
    layers = build_case(case_dir, tmp_path / "case")
    problems = view_problems(layers.old, layers.upper, tmp_path / "mnt")
    assert not problems, "\n".join(problems)
