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
    FileSession,
    LayerSource,
    PlanFile,
    Sides,
    conflict_entries,
    decision_content,
    diff_lines,
    hunk_diffs,
    make_decision,
    progress,
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
    assert not pf.record(s)  # nothing decided yet
    s.take(1, YOURS)
    assert pf.record(s)
    saved = json.loads(plan_path.read_text())
    entry = next(e for e in saved["entries"] if e["path"] == "etc/app.conf")
    assert entry["resolution"] == "decided" and entry["decision"]["take"] == "content"
    assert saved["needs_decision"] == 5
    s.undo()
    assert pf.record(s)
    entry = next(e for e in json.loads(plan_path.read_text())["entries"] if e["path"] == "etc/app.conf")
    assert entry["resolution"] == "needs-decision" and "decision" not in entry


def test_plan_command_does_not_import_textual():
    code = ("import sys, overmerge.cli as c; c.build_parser(); import overmerge.resolution; "
            "assert 'textual' not in sys.modules, 'textual imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
