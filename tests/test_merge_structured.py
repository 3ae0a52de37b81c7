"""keyvalue, ini, deb822, set and whole-file strategies; binary/size limits."""
from __future__ import annotations

import pytest

from overmerge.errors import RuleError
from overmerge.merge import is_binary, merge_bytes


def test_unknown_strategy_is_a_rule_error() -> None:
    with pytest.raises(RuleError, match="unknown merge strategy"):
        merge_bytes("nope", b"", b"a", b"b")


def test_binary_and_oversized_files_are_not_line_merged() -> None:
    assert is_binary(b"ab\0c") and not is_binary(b"abc\n")
    result = merge_bytes("text", b"a\0", b"b\0", b"c\0")
    assert result.reason and not result.chunks and not result.clean
    result = merge_bytes("text", b"a\n" * 10, b"b\n" * 10, b"c\n" * 10, {"max_size": 10})
    assert "larger than 10 bytes" in result.reason
    # Whole-file strategies do not care.
    assert merge_bytes("keep-user", b"a\0", b"b\0", b"c\0").merged == b"b\0"


def test_keyvalue_your_added_key_goes_before_sshd_match_blocks() -> None:
    opts = {"syntax": "space", "case_insensitive": True, "block_start": r"^\s*Match\s"}
    old = b"UsePAM yes\nMatch User x\n\tX11Forwarding no\n"
    yours = b"UsePAM yes\nMatch User x\n\tX11Forwarding no\nPasswordAuthentication no\n"
    # (your line after Match is in the block: merged as text, stays in the block)
    new = b"UsePAM yes\nPermitRootLogin no\nMatch User x\n\tX11Forwarding no\n"
    result = merge_bytes("keyvalue", old, yours, new, opts)
    assert result.merged == (b"UsePAM yes\nPermitRootLogin no\nMatch User x\n\tX11Forwarding no\n"
                             b"PasswordAuthentication no\n")
    yours = b"UsePAM yes\nX11Forwarding yes\nMatch User x\n\tX11Forwarding no\n"
    result = merge_bytes("keyvalue", old, yours, new, opts)
    assert result.merged == (b"UsePAM yes\nPermitRootLogin no\nX11Forwarding yes\nMatch User x\n"
                             b"\tX11Forwarding no\n")


def test_keyvalue_deleted_by_you_changed_by_vendor_is_a_conflict() -> None:
    result = merge_bytes("keyvalue", b"A=1\nB=2\n", b"A=1\n", b"A=1\nB=3\n", {"syntax": "equals"})
    (hunk,) = result.hunks
    assert hunk.yours == () and hunk.new == (b"B=3\n",) and "you deleted" in hunk.note


def test_keyvalue_comment_you_removed_stays_removed() -> None:
    old = b"# old note\nA=1\n"
    result = merge_bytes("keyvalue", old, b"A=1\n", b"# old note\nA=2\nB=1\n", {"syntax": "equals"})
    assert result.merged == b"A=2\nB=1\n"


def test_ini_conflict_names_key() -> None:
    old = b"[main]\ndns=default\n"
    result = merge_bytes("ini", old, b"[main]\ndns=dnsmasq\n", b"[main]\ndns=systemd-resolved\n")
    (hunk,) = result.hunks
    assert "dns" in hunk.note


def test_ini_duplicate_section_falls_back_to_text() -> None:
    old = b"[a]\nx=1\n[a]\ny=1\n"
    result = merge_bytes("ini", old, old.replace(b"x=1", b"x=2"), old.replace(b"y=1", b"y=2"))
    assert result.merged == b"[a]\nx=2\n[a]\ny=2\n" and "duplicate section" in result.notes[0]


def test_deb822_you_removed_a_package_vendor_kept_it() -> None:
    old = b"Package: a\nVersion: 1\n\nPackage: b\nVersion: 1\n"
    result = merge_bytes("deb822", old, b"Package: a\nVersion: 1\n",
                         b"Package: a\nVersion: 2\n\nPackage: b\nVersion: 1\n\nPackage: c\nVersion: 1\n",
                         {"key": ["Package"]})
    assert result.merged == b"Package: a\nVersion: 2\n\nPackage: c\nVersion: 1\n"


def test_deb822_multiline_field_changed_by_vendor_and_field_added_by_you() -> None:
    old = b"Package: a\nDepends: x\nDescription: d\n line one\n"
    yours = b"Package: a\nDepends: x\nDescription: d\n line one\nX-Mine: yes\n"
    new = b"Package: a\nDepends: x, y\nDescription: d\n line one\n line two\n"
    result = merge_bytes("deb822", old, yours, new, {"key": ["Package"]})
    assert result.merged == b"Package: a\nDepends: x, y\nDescription: d\n line one\n line two\nX-Mine: yes\n"


def test_whole_file_strategies() -> None:
    assert merge_bytes("keep-user", b"o", b"y", b"n").taken == "yours"
    assert merge_bytes("take-new", b"o", b"y", b"n").merged == b"n"
    r = merge_bytes("regenerate", b"o", b"y", b"o")
    assert r.merged == b"o" and r.taken == "new"
    assert merge_bytes("ask", b"o", b"y", b"n").reason
    assert merge_bytes("ask", b"o", b"y", b"o").merged == b"y"  # only you changed it: nothing to ask


def test_core_imports_no_ui_or_argparse() -> None:
    """The merge core and rules stay pure: no Textual, no argparse, no os.environ."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, overmerge.merge, overmerge.rules; "
            "bad = [m for m in ('textual', 'argparse', 'overmerge.cli') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for module in (Path(__file__).parent.parent / "overmerge" / "merge").glob("*.py"):
        text = module.read_text()
        assert "os.environ" not in text and "import argparse" not in text and "open(" not in text, module
