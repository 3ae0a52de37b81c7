"""Golden classification cases: one test per tests/cases/<name>/case.yaml.

Each case builds OLD and NEW, makes TOP through a real overlay mount, plans with
``make_plan(..., include_unchanged=True)`` and checks the ``expected`` section.
Adding a case needs no Python; see tests/cases/README.md.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from casebuild import build_case, case_dirs, expected_entries, load_case
from overlayfs import requires_root

FIELDS = ("class", "change", "your_change", "vendor_change", "resolution", "rule")


def _params() -> list:
    params = []
    for d in case_dirs():
        _, spec = load_case(d)
        marks = []
        if spec.get("xfail"):
            # Strict: a known bug that gets fixed must have its xfail line removed.
            marks.append(pytest.mark.xfail(reason=str(spec["xfail"]), strict=True))
        params.append(pytest.param(d, id=d.name, marks=marks))
    return params


def _show(path: bytes) -> str:
    return repr(path)[2:-1]


def _entry_fields(entry) -> dict:
    return {
        "class": entry.cls,
        "change": entry.change,
        "your_change": entry.your_change,
        "vendor_change": entry.vendor_change,
        "resolution": entry.resolution,
        "rule": entry.rule,
    }


@requires_root
@pytest.mark.root
@pytest.mark.parametrize("case_dir", _params())
def test_case(case_dir: Path, tmp_path: Path) -> None:
    from overmerge.planner import make_plan

    layers = build_case(case_dir, tmp_path)
    options = layers.spec.get("plan_options") or {}
    plan = make_plan(layers.old, layers.new, layers.upper, include_unchanged=True, **options)
    got = {e.path: e for e in plan.entries}
    assert len(got) == len(plan.entries), "a path appears twice in the plan"
    assert b"" not in got, "the root directory must not be an entry"

    problems = []
    expected = expected_entries(layers.spec)
    for path, want in expected.items():
        entry = got.get(path)
        if want is None:  # no change at all: absent from the plan or unchanged
            if entry is not None and entry.cls != "unchanged":
                problems.append(f"{_show(path)}: expected no change, got {_entry_fields(entry)} ({entry.reason})")
            continue
        if entry is None:
            problems.append(f"{_show(path)}: missing from the plan (expected {want})")
            continue
        have = _entry_fields(entry)
        diff = {k: (v, have[k]) for k, v in want.items() if have[k] != v}
        if diff:
            detail = ", ".join(f"{k}: expected {w!r}, got {h!r}" for k, (w, h) in diff.items())
            problems.append(f"{_show(path)}: {detail} (reason: {entry.reason})")
    if layers.spec.get("expected_complete"):
        for path, entry in sorted(got.items()):
            if path not in expected and entry.cls != "unchanged":
                problems.append(f"{_show(path)}: unexpected {_entry_fields(entry)} ({entry.reason})")
    assert not problems, f"case {layers.name}: {layers.spec.get('description', '')}\n" + "\n".join(problems)
