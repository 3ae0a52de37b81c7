"""The pure resolution model behind `overmerge resolve` (no Textual)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from overmerge.classify import Entry
from overmerge.merge import has_markers
from overmerge.merge.base import Hunk, MergeResult
from overmerge.resolution import (
    BOTH_NEW_FIRST,
    BOTH_YOURS_FIRST,
    NEW,
    WHOLE_ASIDE,
    WHOLE_NEW,
    YOURS,
    YOUR_CHANGE,
    FileSession,
    LayerSource,
    PlanFile,
    Sides,
    attention_entries,
    choice_from_json,
    choice_to_json,
    conflict_entries,
    decision_content,
    diff_lines,
    hunk_diffs,
    make_decision,
    progress,
    your_change_lines,
)

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="whiteouts need CAP_MKNOD")


def two_hunk_session() -> FileSession:
    h1 = Hunk((b"a\n",), (b"A-yours\n",), (b"A-new\n",), 1, 1, 1)
    h2 = Hunk((b"c\n",), (b"C-yours\n",), (b"C-new\n",), 3, 3, 3)
    chunks = (b"0\n", h1, b"b\n", h2, b"d\n")
    entry = Entry(b"etc/x.conf", "conflict", change="modified", your_change="modified",
                  vendor_change="modified", resolution="needs-decision")
    sides = Sides("file", "file", "file", b"0\na\nb\nc\nd\n", b"0\nA-yours\nb\nC-yours\nd\n",
                  b"0\nA-new\nb\nC-new\nd\n", MergeResult("text", chunks), {"old": "f", "yours": "f", "new": "f"})
    return FileSession(entry, sides)


def test_take_each_hunk_gives_content_decision():
    s = two_hunk_session()
    assert s.open_hunks() == [0, 1] and s.decision() is None
    s.take(0, YOURS)
    assert s.next_open(0) == 1
    assert has_markers(s.render())
    s.take(1, NEW)
    assert s.decision() == {"take": "content", "content": "0\nA-yours\nb\nC-new\nd\n", "by": "user", "keep_aside": False}
    assert s.next_open(1) is None


def test_both_orders_and_undo():
    s = two_hunk_session()
    s.take(0, BOTH_YOURS_FIRST)
    s.take(1, BOTH_NEW_FIRST)
    assert s.render() == b"0\nA-yours\nA-new\nb\nC-new\nC-yours\nd\n"
    assert s.undo()
    assert s.choices == [BOTH_YOURS_FIRST, None]
    assert s.decision() is None
    assert s.undo() and not s.undo()


def test_edited_hunk_with_markers_is_refused():
    s = two_hunk_session()
    with pytest.raises(ValueError):
        s.take(0, b"<<<<<<< your change\nx\n=======\ny\n>>>>>>> vendor update\n")
    with pytest.raises(ValueError):
        s.set_content(s.render())  # still has markers
    assert s.draft is not None and s.decision() is None
    s.set_content(b"hand made\n")
    assert s.decision()["content"] == "hand made\n"


def test_whole_file_choices_and_reload_from_decision():
    s = two_hunk_session()
    s.take_whole(WHOLE_ASIDE)
    assert s.decision() == {"take": "yours", "by": "user", "keep_aside": True}
    s.take_whole(WHOLE_NEW)
    assert s.decision() == make_decision("new")
    s.entry.decision = s.decision()
    s.entry.resolution = "decided"
    again = FileSession(s.entry, s.sides)
    assert again.decision() == make_decision("new")
    assert again.original_resolution == "needs-decision"


def test_partial_choices_restored_from_the_entry():
    s = two_hunk_session()
    s.take(0, BOTH_NEW_FIRST)
    saved = s.hunk_choices_json()
    assert saved == ["both-new-first", None]
    s.entry.hunk_choices = tuple(saved)
    again = FileSession(s.entry, s.sides)
    assert again.choices == [BOTH_NEW_FIRST, None] and again.next_open(-1) == 1
    assert again.restore_note is None and again.decision() is None
    again.take(1, b"edited\n")
    assert again.hunk_choices_json() == ["both-new-first", {"content": "edited\n"}]
    # Decided hunk by hunk: reopening shows the choices, not an opaque edit.
    s.entry.decision, s.entry.resolution = again.decision(), "decided"
    s.entry.hunk_choices = tuple(again.hunk_choices_json())
    third = FileSession(s.entry, s.sides)
    assert third.content is None and third.choices == again.choices and third.decision() == again.decision()


def test_saved_choices_ignored_when_the_hunks_changed():
    s = two_hunk_session()
    s.entry.hunk_choices = ("yours",)
    again = FileSession(s.entry, s.sides)
    assert again.choices == [None, None] and "now has 2 hunk(s)" in again.restore_note
    s.entry.hunk_choices = ("sideways", None)
    again = FileSession(s.entry, s.sides)
    assert again.choices == [None, None] and "unknown hunk choice" in again.restore_note


def test_hunk_choice_json_round_trip():
    for choice in (None, YOURS, NEW, BOTH_YOURS_FIRST, BOTH_NEW_FIRST, b"text\n", b"\xff\n"):
        assert choice_from_json(json.loads(json.dumps(choice_to_json(choice)))) == choice
    assert choice_to_json(b"\xff\n") == {"content_b64": "/wo="}
    for bad in ("mine", 3, {"content": "<<<<<<< a\n=======\n>>>>>>> b\n"}, {}):
        with pytest.raises(ValueError):
            choice_from_json(bad)


def test_entry_json_keeps_hunk_choices():
    from overmerge.plan import entry_from_json, entry_to_json

    e = Entry(b"etc/x", "conflict", change="modified", resolution="needs-decision")
    assert "hunk_choices" not in entry_to_json(e)
    e.hunk_choices = ("yours", None, {"content": "x\n"})
    data = json.loads(json.dumps(entry_to_json(e)))
    assert data["hunk_choices"] == ["yours", None, {"content": "x\n"}]
    assert entry_from_json(data).hunk_choices == e.hunk_choices


def test_your_change_is_read_only():
    e = Entry(b"etc/localtime", "user-modified", change="added", your_change="added", reason="you added it")
    sides = Sides(None, "symlink", None, describe={"old": "absent", "yours": "symlink → /z", "new": "absent"})
    s = FileSession(e, sides)
    assert s.read_only and s.whole_choices() == [] and s.decision() is None
    assert your_change_lines(sides) == [(" ", "absent → symlink → /z")]
    from overmerge.resolution import entry_state

    assert entry_state(e) == YOUR_CHANGE
    with pytest.raises(ValueError):
        s.take_whole(WHOLE_NEW)


def test_non_utf8_content_uses_b64():
    d = make_decision("content", content=b"\xff\xfe\n")
    assert "content_b64" in d and "content" not in d
    assert decision_content(d) == b"\xff\xfe\n"


def test_delete_conflict_labels():
    e = Entry(b"etc/gone", "conflict", change="removed", your_change="removed", vendor_change="modified",
              resolution="needs-decision")
    s = FileSession(e, Sides("file", None, "file", b"a\n", None, b"b\n", None, {"old": "f", "yours": "absent", "new": "f"}))
    labels = dict(s.whole_choices())
    assert labels["yours"] == "keep it deleted" and labels["new"] == "restore the vendor's"
    assert not s.line_mergeable and s.open_hunks() == []


def test_diffs_carry_real_line_numbers():
    h = Hunk((b"a\n",), (b"y\n",), (b"n\n",), 9, 9, 10)
    mine, theirs = hunk_diffs(h, [b"ctx\n"], [])
    assert mine[0] == ("@", "@@ -9,2 +9,2 @@")
    assert ("-", "a") in mine and ("+", "y") in mine and ("+", "n") in theirs
    assert diff_lines([b"x\n"], [b"x\n"]) == []


@needs_root
def test_plan_file_round_trip(tmp_path):
    from overmerge.tui.demo import build_plan

    plan_path = build_plan(tmp_path)
    pf = PlanFile(plan_path)
    rows = conflict_entries(pf.plan)
    assert [r.path for r in rows][:2] == [b"etc/app.conf", b"etc/cron.conf"]
    assert str(progress(pf.plan)) == "0 of 6 resolved · 1 auto-merged"
    source = LayerSource(pf.plan)
    assert source.stale is None
    s = FileSession(pf.entry(b"etc/app.conf"), source.sides(b"etc/app.conf"))
    assert len(s.hunks) == 2
    s.take(0, YOURS)
    assert pf.record(s)  # partial progress is written too
    assert not pf.record(s)  # ... once

    def saved_entry() -> dict:
        return next(e for e in json.loads(plan_path.read_text())["entries"] if e["path"] == "etc/app.conf")

    entry = saved_entry()
    assert entry["resolution"] == "needs-decision" and "decision" not in entry
    assert entry["hunk_choices"] == ["yours", None]
    s.take(1, YOURS)
    assert pf.record(s)
    saved = json.loads(plan_path.read_text())
    entry = next(e for e in saved["entries"] if e["path"] == "etc/app.conf")
    assert entry["resolution"] == "decided" and entry["decision"]["take"] == "content"
    assert entry["hunk_choices"] == ["yours", "yours"]
    assert saved["needs_decision"] == 5
    s.undo()
    assert pf.record(s)
    entry = saved_entry()
    assert entry["resolution"] == "needs-decision" and "decision" not in entry
    assert entry["hunk_choices"] == ["yours", None]
    s.take_whole(WHOLE_NEW)  # a whole-file decision replaces the per-hunk progress
    assert pf.record(s)
    entry = saved_entry()
    assert entry["decision"]["take"] == "new" and "hunk_choices" not in entry
    # The user-modified paths follow the conflicts in the list, and are not counted.
    assert [e.path for e in attention_entries(pf.plan)][-2:] == [b"etc/hostname", b"etc/localtime"]
    assert str(progress(pf.plan)) == "1 of 6 resolved · 1 auto-merged"
    mine = FileSession(pf.entry(b"etc/hostname"), source.sides(b"etc/hostname"))
    assert mine.read_only and mine.decision() is None and not pf.record(mine)
    assert your_change_lines(mine.sides)[1:] == [("-", "example"), ("+", "lab-01")]


def test_plan_command_does_not_import_textual():
    code = ("import sys, overmerge.cli as c; c.build_parser(); import overmerge.resolution; "
            "assert 'textual' not in sys.modules, 'textual imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
