"""Snapshots of the resolve screens at 80×24 and 120×40 (pytest-textual-snapshot).

The demo plan is built at fixed relative names; no tmp path, clock or cursor is shown.
Regenerate with ``pytest tests/test_tui_snapshots.py --snapshot-update``.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("textual")

from overmerge.tui.app import ResolveApp  # noqa: E402
from overmerge.tui.demo import build_plan  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the demo TOP has a whiteout (needs CAP_MKNOD)")

SIZES = [(80, 24), (120, 40)]


@pytest.fixture
def app(tmp_path: Path):
    def make(**kwargs) -> ResolveApp:
        return ResolveApp(build_plan(tmp_path / "demo"), **kwargs)

    return make


async def _settled(pilot) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def _keys_then_settle(*keys: str):
    async def run_before(pilot) -> None:
        await _settled(pilot)
        for key in keys:
            await pilot.press(key)
            await _settled(pilot)
        # Toasts time out; clear them so the picture does not depend on timing.
        pilot.app.clear_notifications()
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_conflict_list(snap_compare, app, size):
    assert snap_compare(app(), terminal_size=size, run_before=_keys_then_settle())


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_text_hunk(snap_compare, app, size):
    assert snap_compare(app(), terminal_size=size, run_before=_keys_then_settle("enter", "y"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_delete_conflict(snap_compare, app, size):
    assert snap_compare(app(), terminal_size=size, run_before=_keys_then_settle("enter", "right_square_bracket"))


def test_hunk_with_old_shown(snap_compare, app):
    assert snap_compare(app(), terminal_size=(80, 24), run_before=_keys_then_settle("enter", "o"))


def test_help(snap_compare, app):
    assert snap_compare(app(), terminal_size=(80, 24), run_before=_keys_then_settle("question_mark"))


def test_light_theme_type_conflict(snap_compare, app):
    keys = ["enter"] + ["right_square_bracket"] * 3
    assert snap_compare(app(theme="light"), terminal_size=(80, 24), run_before=_keys_then_settle(*keys))


def test_your_change_read_only(snap_compare, app):
    keys = ["slash", "h", "o", "s", "t", "n", "enter", "enter"]
    assert snap_compare(app(), terminal_size=(80, 24), run_before=_keys_then_settle(*keys))
