"""The text strategy: merge3 + patience, marker rendering, resolve_chunks, and a
differential test against ``git merge-file``."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from overmerge.merge import Hunk, MergeResult, has_markers, merge_bytes, render_markers, resolve_chunks
from overmerge.merge import text
from overmerge.merge._lines import split_lines

PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Few distinct lines, so repeats (the hard case for matchers) are common.
LINE = st.sampled_from([b"a\n", b"b\n", b"c\n", b"\n", b"# comment\n", b"key = 1\n", b"key = 2\n", b"}\n"])


@st.composite
def texts(draw: st.DrawFn) -> bytes:
    data = b"".join(draw(st.lists(LINE, max_size=25)))
    if data and draw(st.booleans()):
        data = data[:-1]  # no final newline
    return data


@given(texts(), texts())
@PROPS
def test_only_yours_changed(old: bytes, yours: bytes) -> None:
    assert text.merge(old, yours, old).merged == yours
    assert merge_bytes("text", old, yours, old).merged == yours


@given(texts(), texts())
@PROPS
def test_only_vendor_changed(old: bytes, new: bytes) -> None:
    assert text.merge(old, old, new).merged == new
    assert merge_bytes("text", old, old, new).merged == new


@given(texts(), texts())
@PROPS
def test_same_change_on_both_sides(old: bytes, both: bytes) -> None:
    assert text.merge(old, both, both).merged == both


@given(texts(), texts(), texts())
@PROPS
def test_clean_results_have_no_markers_and_conflicts_render(old: bytes, yours: bytes, new: bytes) -> None:
    result = merge_bytes("text", old, yours, new)
    if result.clean:
        assert not has_markers(result.merged)
    else:
        rendered = render_markers(result)
        # Every marker is on a line of its own, never glued to content.
        for line in split_lines(rendered):
            for marker in (b"<<<<<<<", b"|||||||", b"=======", b">>>>>>>"):
                assert marker not in line or line.startswith(marker)
        # Taking your side everywhere and NEW's side everywhere are both well formed.
        assert not has_markers(resolve_chunks(result.chunks, ["yours"] * len(result.hunks)))


def test_marker_not_glued_to_last_line_without_newline() -> None:
    result = merge_bytes("text", b"a\nb", b"a\nyours", b"a\nnew")
    assert render_markers(result) == (
        b"a\n<<<<<<< your change\nyours\n||||||| OLD\nb\n=======\nnew\n>>>>>>> vendor update\n")


def test_marker_line_endings_follow_the_file_not_one_side() -> None:
    old = b"x\r\ny\r\n"
    result = merge_bytes("text", old, b"x\r\nY\r\n", b"x\r\nZ\r\n")
    out = render_markers(result)
    assert out.count(b"\r\n") == out.count(b"\n")  # every line CRLF, markers included


def test_custom_labels() -> None:
    result = merge_bytes("text", b"a\n", b"b\n", b"c\n")
    out = render_markers(result, labels=("mine", "base", "theirs-upstream"))
    assert out.startswith(b"<<<<<<< mine\n") and b">>>>>>> theirs-upstream\n" in out


def test_render_refuses_unmergeable() -> None:
    with pytest.raises(ValueError):
        render_markers(MergeResult("ask", (), reason="ask"))


def test_resolve_chunks_choices() -> None:
    hunk = Hunk(old=(b"o\n",), yours=(b"y",), new=(b"n\n",))
    chunks = (b"head\n", hunk, b"tail\n")
    assert resolve_chunks(chunks, ["yours"]) == b"head\ny\ntail\n"
    assert resolve_chunks(chunks, ["new"]) == b"head\nn\ntail\n"
    assert resolve_chunks(chunks, ["old"]) == b"head\no\ntail\n"
    assert resolve_chunks(chunks, ["both-yours-first"]) == b"head\ny\nn\ntail\n"
    assert resolve_chunks(chunks, ["both-new-first"]) == b"head\nn\ny\ntail\n"
    assert resolve_chunks(chunks, {0: b"custom\n"}) == b"head\ncustom\ntail\n"
    with pytest.raises(ValueError):
        resolve_chunks(chunks, [])
    with pytest.raises(ValueError):
        resolve_chunks(chunks, ["theirs"])


def test_repeated_lines_do_not_make_a_whole_file_conflict() -> None:
    """Config files with many identical lines: edits far apart merge cleanly."""
    block = b"[unit]\nenabled = yes\nrestart = always\n\n"
    old = block * 400
    lines = split_lines(old)
    yours_lines, new_lines = list(lines), list(lines)
    yours_lines[5] = b"enabled = no\n"
    new_lines[1500] = b"restart = never\n"
    result = merge_bytes("text", old, b"".join(yours_lines), b"".join(new_lines))
    assert result.clean
    merged = split_lines(result.merged)
    assert merged[5] == b"enabled = no\n" and merged[1500] == b"restart = never\n"


def test_small_files_without_anchors_use_difflib() -> None:
    # No line is unique, so patience alone finds no anchor in the middle.
    old = b"x\ny\nx\ny\nx\ny\n"
    result = text.merge(old, b"x\ny\nx\nY\nx\ny\n", b"x\ny\nx\ny\nX\ny\n")
    # The two edits touch adjacent lines (3 and 4): a real, small conflict, not the whole file.
    assert result.hunks and all(len(h.old) <= 2 for h in result.hunks)
    result = text.merge(old, b"X\ny\nx\ny\nx\ny\n", b"x\ny\nx\ny\nx\nY\n")
    assert result.merged == b"X\ny\nx\ny\nx\nY\n"


# --- differential test against git merge-file --------------------------------

GIT = shutil.which("git")


@st.composite
def edited(draw: st.DrawFn, base: list[bytes], tag: str) -> list[bytes]:
    """Apply random replace/delete/insert edits with fresh unique lines."""
    out: list[bytes] = []
    for i, line in enumerate(base):
        op = draw(st.sampled_from(["keep"] * 6 + ["replace", "delete", "insert"]))
        if op == "keep":
            out.append(line)
        elif op == "replace":
            out.append(f"{tag}{i}\n".encode())
        elif op == "insert":
            out += [f"{tag}{i}+\n".encode(), line]
    if draw(st.booleans()):
        out.append(f"{tag}-end\n".encode())
    return out


@st.composite
def three_versions(draw: st.DrawFn) -> tuple[bytes, bytes, bytes]:
    base = [f"line {i}\n".encode() for i in range(draw(st.integers(0, 30)))]
    yours = draw(edited(base, "yours "))
    new = draw(edited(base, "vendor ")) if draw(st.integers(0, 4)) else list(yours)
    return b"".join(base), b"".join(yours), b"".join(new)


@pytest.mark.skipif(GIT is None, reason="git not installed")
@given(three_versions())
@settings(max_examples=120, deadline=None)
def test_text_agrees_with_git_merge_file(versions: tuple[bytes, bytes, bytes]) -> None:
    old, yours, new = versions
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp, n) for n in ("yours", "old", "new")]
        for p, data in zip(paths, (yours, old, new)):
            p.write_bytes(data)
        git = subprocess.run([GIT, "merge-file", "-p", *map(str, paths)], capture_output=True)
    assert git.returncode >= 0
    result = merge_bytes("text", old, yours, new)
    assert result.clean == (git.returncode == 0), (result, git.stdout)
    if result.clean:
        assert result.merged == git.stdout
