"""Every golden case applied: the kernel's view of NEW + new upper (lowerdir=NEWUPPER:NEW,
read-only) equals overmerge's merged view and the case's ``merged:`` section."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from applyhelp import check_merged_section, check_upper_format, kernel_tree, make_plan_file
from casebuild import build_case, case_dirs
from overlayfs import requires_root


def _params() -> list:
    out = []
    for d in case_dirs():
        # A case's ``xfail`` is about classification; apply takes NEW for unchanged paths anyway.
        out.append(pytest.param(d, id=d.name))
    return out


@requires_root
@pytest.mark.root
@pytest.mark.parametrize("case_dir", _params())
def test_apply_case(case_dir: Path, tmp_path: Path) -> None:
    from overmerge.apply import apply, compare_view, prepare

    layers = build_case(case_dir, tmp_path)
    plan, _ = make_plan_file(layers, tmp_path)
    unresolved = layers.spec.get("merged_unresolved")
    if unresolved is None and plan.open_conflicts():
        unresolved = "keep-user"
    out = tmp_path / "newupper"
    prepared = prepare(plan, unresolved=unresolved)
    result = apply(plan, output=os.fsencode(out), unresolved=unresolved, verify_with_kernel=True)
    assert result.verified
    namespace = "user" if layers.userxattr else "trusted"
    assert not check_upper_format(out, namespace)

    def check(tree):
        return compare_view(tree, prepared.merged) + check_merged_section(tree, layers.spec)

    problems = kernel_tree(out, layers.new, namespace, check)
    assert not problems, f"case {layers.name}:\n" + "\n".join(problems)
    # The sides not taken are kept aside, never lost.
    for item in prepared.merged.aside:
        assert result.aside is not None
        assert os.path.lexists(os.fsencode(result.aside) + b"/" + item.side.encode() + b"/" + item.path)
