"""Plan JSON: round trips, manifests and stale-input detection, path validation."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from overmerge import paths
from overmerge.classify import Entry
from overmerge.errors import InputError, StalePlanError, UnsafePathError
from overmerge.merge.base import Hunk
from overmerge.plan import InputRecord, Manifest, Plan, entry_from_json, entry_to_json

names = st.binary(min_size=1, max_size=20).filter(lambda b: b"/" not in b and b"\0" not in b and b not in (b".", b".."))
rel_paths = st.lists(names, min_size=1, max_size=5).map(b"/".join)


@given(rel_paths)
@settings(max_examples=200, deadline=None)
def test_paths_round_trip_through_json(path):
    data = json.loads(json.dumps(paths.to_json(path)))
    assert paths.from_json(data) == path


@pytest.mark.parametrize("bad", [b"/etc/passwd", b"a/../b", b"..", b"a//b", b"a/./b", b"a\0b", b"", b"a/"])
def test_unsafe_paths_are_refused(bad):
    with pytest.raises(UnsafePathError):
        paths.validate(bad)


def test_display_is_one_line():
    assert paths.display(b"a\nb\xff") == "a\\nb\\xff"


def _plan(entries):
    m = Manifest(((b"", b"1"), (b"etc", b"2")))
    inputs = {r: InputRecord(r, f"/{r}", m, "user" if r == "upper" else None) for r in ("old", "new", "upper")}
    return Plan(inputs=inputs, entries=entries, counts={"conflict": len(entries)})


def test_plan_round_trip_keeps_every_field():
    e = Entry(
        b"etc/na\xffme", "conflict", "modified", "modified", "modified", "needs-decision", "passwd", "why",
        ("content",), ("content", "mode"), ("content",),
        (Hunk((b"o\n",), (b"y\xfe\n",), (b"n\r\n",), 1, 2, 3, "note"),), None, None, None,
    )
    data = json.loads(json.dumps(_plan([e]).to_json()))
    assert data["entries"][0]["class"] == "conflict"
    assert data["entries"][0]["resolution"] == "needs-decision"
    back = Plan.from_json(data)
    assert back.entries[0] == e
    assert back.inputs["upper"].namespace == "user"
    assert back.inputs["old"].manifest == _plan([]).inputs["old"].manifest


def test_decide_records_the_decision():
    e = Entry(b"a", "conflict", "modified", resolution="needs-decision")
    plan = _plan([e])
    plan.decide(b"a", {"take": "yours", "by": "user"})
    assert entry_to_json(plan.entries[0])["resolution"] == "decided"
    assert not plan.open_conflicts()
    with pytest.raises(InputError):
        plan.decide(b"missing", {"take": "new"})


def test_manifest_names_first_changed_path():
    a = Manifest(((b"", b"1"), (b"a", b"1"), (b"b", b"1")))
    b = Manifest(((b"", b"1"), (b"a", b"1"), (b"b", b"2")))
    assert Manifest.decode(a.encode()) == a
    assert a.first_difference(b) == b"b"
    assert a.first_difference(Manifest(a.items[:2])) == b"b"
    rec = InputRecord("upper", "/top", a)
    rec.check_same(a)
    with pytest.raises(StalePlanError, match="first changed path: b"):
        rec.check_same(b)


@pytest.mark.parametrize(
    "data,message",
    [
        ({}, "not an overmerge plan"),
        ({"format": "overmerge-plan", "version": 99}, "version 99"),
        ({"format": "overmerge-plan", "version": 1, "inputs": {}}, "input 'old' is missing"),
    ],
)
def test_broken_plans_are_refused(data, message):
    with pytest.raises(InputError, match=message):
        Plan.from_json(data)


def test_entry_with_hostile_path_is_refused():
    with pytest.raises(UnsafePathError):
        entry_from_json({"path": "../../etc/shadow", "class": "unchanged"})
    with pytest.raises(InputError):
        entry_from_json({"path": "a", "class": "bogus"})
