"""Pilot tests of `overmerge resolve`: conflicts of every kind resolved by key presses."""
from __future__ import annotations

import asyncio
import functools
import json
import os
import stat
from pathlib import Path

import pytest

pytest.importorskip("textual")

from overmerge.tui.app import ResolveApp  # noqa: E402
from overmerge.tui.demo import build_plan  # noqa: E402
from overmerge.tui.screens.apply import ApplyScreen  # noqa: E402
from overmerge.tui.screens.file import FileScreen  # noqa: E402
from overmerge.tui.screens.help import HelpScreen  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the demo TOP has a whiteout (needs CAP_MKNOD)")


def sync(coro_fn):
    """Run an async test without a pytest asyncio plugin."""

    @functools.wraps(coro_fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(coro_fn(*args, **kwargs))

    return wrapper


def entries(plan_path: Path) -> dict[str, dict]:
    data = json.loads(plan_path.read_text())
    return {e["path"]: e for e in data["entries"]}


async def settle(pilot) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def press(pilot, *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
        await settle(pilot)


def hidden_in_upper(upper: Path, rel: str) -> bool:
    """True if the new upper hides NEW's ``rel``: a 0/0 whiteout, or absent under an opaque parent."""
    path = upper / rel
    if os.path.lexists(path):
        st = os.stat(path, follow_symlinks=False)
        return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    try:
        return os.getxattr(path.parent, "trusted.overlay.opaque") == b"y"
    except OSError:
        return False


@pytest.fixture
def plan_path(tmp_path: Path) -> Path:
    return build_plan(tmp_path / "demo")


@sync
async def test_resolve_every_kind_by_keys(plan_path: Path) -> None:
    applied: list[tuple[str, str | None]] = []

    def runner(path: str, output: str | None) -> str:
        applied.append((path, output))
        return "applied to " + str(output)

    app = ResolveApp(plan_path, output="OUT", apply_runner=runner)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        # Order: etc/app.conf, etc/cron.conf, etc/motd, etc/tool.conf, etc/vendor-gone.conf,
        # usr/share/logo.bin (open), then etc/passwd (auto-merged).
        await press(pilot, "enter")
        screen = app.screen
        assert isinstance(screen, FileScreen) and screen.path == b"etc/app.conf"
        await press(pilot, "y")  # hunk 1: yours, jumps to hunk 2
        assert screen.hunk == 1
        await press(pilot, "v")  # hunk 2: the vendor's -> file resolved
        await press(pilot, "right_square_bracket", "V")  # cron.conf (delete/modify): restore the vendor's
        await press(pilot, "right_square_bracket", "b")  # motd: both, yours first
        await press(pilot, "right_square_bracket", "K")  # tool.conf (type): keep yours, vendor's saved aside
        await press(pilot, "right_square_bracket", "V")  # vendor-gone.conf: delete it as the vendor did
        await press(pilot, "right_square_bracket", "Y")  # logo.bin (binary): keep yours
        await press(pilot, "right_square_bracket")  # etc/passwd: auto-merged, review and override
        assert screen.path == b"etc/passwd"
        assert entries(plan_path)["etc/passwd"]["resolution"] == "auto-merged"
        await press(pilot, "V")
        assert entries(plan_path)["etc/passwd"]["decision"]["take"] == "new"
        await press(pilot, "u")  # undo the override: auto-merged again
        assert entries(plan_path)["etc/passwd"]["resolution"] == "auto-merged"
        await press(pilot, "Y")
        await press(pilot, "escape")
        assert "7 of 7 resolved" in app.header_text()  # the overridden auto-merge now counts too
        await press(pilot, "A")
        assert isinstance(app.screen, ApplyScreen)
        assert "etc/cron.conf: the vendor's version" in app.screen.preview
        await press(pilot, "y")
        await settle(pilot)
    assert applied == [(str(plan_path), "OUT")]
    got = entries(plan_path)
    user = {"by": "user", "keep_aside": False}
    app_conf = got["etc/app.conf"]["decision"]
    assert app_conf["take"] == "content"
    assert "option3 = mine\n" in app_conf["content"] and "option15 = 150\n" in app_conf["content"]
    assert got["etc/cron.conf"]["decision"] == {"take": "new", **user}
    assert got["etc/motd"]["decision"]["content"].startswith(
        "Welcome to the lab machine\nWelcome to Example OS 2.0\n")
    assert got["etc/tool.conf"]["decision"] == {"take": "yours", "by": "user", "keep_aside": True}
    assert got["etc/vendor-gone.conf"]["decision"] == {"take": "new", **user}
    assert got["usr/share/logo.bin"]["decision"] == {"take": "yours", **user}
    assert got["etc/passwd"]["decision"] == {"take": "yours", **user}
    assert all(e["resolution"] == "decided" for e in got.values() if e["class"] == "conflict")
    assert json.loads(plan_path.read_text())["needs_decision"] == 0


@sync
async def test_quit_and_come_back(plan_path: Path) -> None:
    app = ResolveApp(plan_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "enter", "y", "y", "q")

    assert entries(plan_path)["etc/app.conf"]["resolution"] == "decided"
    app = ResolveApp(plan_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "1 of 6 resolved" in app.header_text()
        # The decided file reopens with its decision; the list shows open files first.
        app.open_file(b"etc/app.conf")
        await settle(pilot)
        assert app.screen.session.summary() == "resolved: merged content"
    assert app.exit_code() == 1


@sync
async def test_edit_with_markers_is_not_resolved(plan_path: Path) -> None:
    app = ResolveApp(plan_path)
    edits = [b"<<<<<<< your change\nx\n=======\ny\n>>>>>>> vendor update\n", b"Welcome, edited\n"]
    app.edit_text = lambda data, path: edits.pop(0)  # stands in for $EDITOR
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_file(b"etc/motd")
        await settle(pilot)
        await press(pilot, "e")
        assert entries(plan_path)["etc/motd"]["resolution"] == "needs-decision"
        await press(pilot, "e")
    decision = entries(plan_path)["etc/motd"]["decision"]
    assert decision["content"] == "Welcome, edited\nHave a lot of fun.\n"


@sync
async def test_keymap_help_and_filter(plan_path: Path) -> None:
    app = ResolveApp(plan_path, keymap={"take-yours": "1", "take-vendor": "2"})
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "question_mark")
        assert isinstance(app.screen, HelpScreen)
        line = next(x for x in app.help_text().splitlines() if x.rstrip().endswith(" take-yours"))
        assert line.split()[0] == "1"  # the keymap's key, not the default y
        await press(pilot, "escape", "slash", "m", "o", "t", "d", "enter")
        from textual.widgets import DataTable

        assert app.screen.query_one(DataTable).row_count == 1
        await press(pilot, "enter")
        assert app.screen.path == b"etc/motd"
        await press(pilot, "2")
    assert entries(plan_path)["etc/motd"]["decision"]["content"].startswith("Welcome to Example OS 2.0")


@sync
async def test_apply_refused_while_open(plan_path: Path) -> None:
    app = ResolveApp(plan_path, apply_runner=lambda p, o: pytest.fail("applied with open conflicts"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "A")
        assert not isinstance(app.screen, ApplyScreen)


@sync
async def test_apply_from_the_tui_writes_the_decisions(plan_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "new-upper"
    app = ResolveApp(plan_path, output=str(out))  # the real `overmerge apply` code path
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "enter", "y", "y")                      # app.conf: yours, yours
        await press(pilot, "right_square_bracket", "Y")            # cron.conf: keep it deleted
        await press(pilot, "right_square_bracket", "v")            # motd: the vendor's
        await press(pilot, "right_square_bracket", "K")            # tool.conf: yours + vendor's aside
        await press(pilot, "right_square_bracket", "Y")            # vendor-gone.conf: keep yours
        await press(pilot, "right_square_bracket", "V")            # logo.bin: the vendor's
        await press(pilot, "escape", "A", "y")
        await settle(pilot)
    assert out.is_dir()
    demo = plan_path.parent
    assert (out / "etc/app.conf").read_text() == (demo / "upper/etc/app.conf").read_text()
    assert os.path.islink(out / "etc/tool.conf")
    assert os.readlink(out / "etc/tool.conf") == "/opt/tool/tool.conf"
    assert hidden_in_upper(out, "etc/cron.conf")  # kept deleted: a whiteout, or absent from an opaque etc
    assert (out / "etc/vendor-gone.conf").read_text() == "legacy=1\nmine=1\n"
    # motd and logo.bin equal NEW: nothing in the new upper shadows them.
    assert not os.path.lexists(out / "etc/motd") and not os.path.lexists(out / "usr/share/logo.bin")


@sync
async def test_partly_chosen_file_survives_quitting(plan_path: Path) -> None:
    app = ResolveApp(plan_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "enter", "v", "q")  # 1 of 2 hunks chosen, then quit at once
    assert app.return_code == 0 and app.exit_code() == 1
    saved = entries(plan_path)["etc/app.conf"]
    assert saved["resolution"] == "needs-decision" and "decision" not in saved
    assert saved["hunk_choices"] == ["new", None]

    app = ResolveApp(plan_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "enter")
        screen = app.screen
        assert isinstance(screen, FileScreen) and screen.path == b"etc/app.conf"
        assert screen.session.choices == ["new", None]
        assert screen.hunk == 1  # the next open hunk is current
        assert "1 of 2 hunks chosen" in screen.session.summary()
        await press(pilot, "y")
    saved = entries(plan_path)["etc/app.conf"]
    assert saved["resolution"] == "decided" and saved["decision"]["take"] == "content"
    assert "option3 = vendor\n" in saved["decision"]["content"]
    assert "option15 = local\n" in saved["decision"]["content"]
    assert saved["hunk_choices"] == ["new", "yours"]


@sync
async def test_saved_choices_for_other_hunks_are_ignored(plan_path: Path) -> None:
    data = json.loads(plan_path.read_text())
    for e in data["entries"]:
        if e["path"] == "etc/app.conf":
            e["hunk_choices"] = ["yours", None, None]  # the file now has 2 hunks
    plan_path.write_text(json.dumps(data))
    app = ResolveApp(plan_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await press(pilot, "enter")
        assert app.screen.session.choices == [None, None] and app.screen.hunk == 0
        assert any("now has 2 hunk(s)" in n.message for n in app._notifications)


@sync
async def test_your_changes_listed_after_the_conflicts(plan_path: Path) -> None:
    from textual.widgets import DataTable

    app = ResolveApp(plan_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = app.screen.query_one(DataTable)
        states = [table.get_row_at(i)[0] for i in range(table.row_count)]
        shown = [table.get_row_at(i)[1] for i in range(table.row_count)]
        assert shown[-2:] == ["etc/hostname", "etc/localtime"]
        assert states[-2:] == ["your change", "your change"]
        assert "your change" not in states[:-2]
        assert "0 of 6 resolved" in app.header_text()  # not counted
        await press(pilot, "slash", "h", "o", "s", "t", "n", "enter")
        assert table.row_count == 1
        await press(pilot, "enter")
        screen = app.screen
        assert isinstance(screen, FileScreen) and screen.path == b"etc/hostname" and screen.read_only
        text = str(screen.query_one("#yours").query_one("Static").render())
        assert "-example" in text and "+lab-01" in text
        assert not screen.query_one("#vendor").display
        # No decision key does anything; the plan is untouched.
        before = plan_path.read_bytes()
        await press(pilot, "y", "V", "K", "u", "e")
        assert plan_path.read_bytes() == before
        for action, params in (("take", ("yours",)), ("whole", ("new",)), ("undo", ()), ("edit_file", ())):
            assert screen.check_action(action, params) is False  # hidden from the footer too
        await press(pilot, "right_square_bracket")  # etc/localtime: a symlink you added
        assert screen.path == b"etc/localtime"
        text = str(screen.query_one("#yours").query_one("Static").render())
        assert "absent → symlink" in text and "/usr/share/zoneinfo/UTC" in text
