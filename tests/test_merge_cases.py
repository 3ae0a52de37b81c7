"""Golden merge cases as data: tests/merge_cases/<name>/{old,yours,new,expected,case.yaml}."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from overmerge.merge import has_markers, merge_bytes, render_markers
from overmerge.rules import load_rules

CASES = Path(__file__).parent / "merge_cases"
CASE_DIRS = sorted(p for p in CASES.iterdir() if (p / "case.yaml").is_file())


@pytest.fixture(scope="module")
def shipped():
    return load_rules(host_dir=None)


def test_cases_exist():
    assert len(CASE_DIRS) >= 20


@pytest.mark.parametrize("case_dir", CASE_DIRS, ids=[p.name for p in CASE_DIRS])
def test_golden_case(case_dir: Path, shipped) -> None:
    spec = yaml.safe_load((case_dir / "case.yaml").read_text())
    old, yours, new = ((case_dir / n).read_bytes() for n in ("old", "yours", "new"))
    if "rule" in spec:
        rule = next(r for r in shipped.rules if r.name == spec["rule"])
        if "path" in spec:
            assert shipped.match(spec["path"]) == rule
        result = merge_bytes(rule.strategy, old, yours, new, rule.options)
    else:
        result = merge_bytes(spec["strategy"], old, yours, new, spec.get("options"))

    if spec.get("unmergeable"):
        assert result.reason and not result.chunks
        return
    assert not result.reason
    assert len(result.hunks) == spec.get("conflicts", 0)
    expected = (case_dir / "expected").read_bytes()
    if result.clean:
        assert result.merged == expected
        assert not has_markers(result.merged)
    else:
        assert render_markers(result) == expected
    all_notes = " | ".join([h.note for h in result.hunks] + list(result.notes))
    for note in spec.get("notes", ()):
        assert note in all_notes
    if "taken" in spec:
        assert result.taken == spec["taken"]
