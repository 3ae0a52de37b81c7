"""The ``set`` strategy: a file of unordered lines (``/etc/shells``). Never conflicts.

NEW's lines in NEW's order, without the lines you removed from OLD, then the
lines you added, in your order. Comments are lines like any other.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from overmerge.merge._lines import detect_eol, final_newline, logical_lines
from overmerge.merge.base import MergeResult
from overmerge.merge.keyed import Settled, finalize


def merge(old: bytes, yours: bytes, new: bytes, options: Mapping[str, Any] | None = None) -> MergeResult:
    lo, ly, ln = logical_lines(old), logical_lines(yours), logical_lines(new)
    old_set, your_set, new_set = set(lo), set(ly), set(ln)
    removed = old_set - your_set
    out = [line for line in ln if line not in removed]
    seen = set(out)
    for line in ly:
        if line not in old_set and line not in new_set and line not in seen:
            out.append(line)
            seen.add(line)
    chunks = finalize([Settled(None, tuple(out))], detect_eol(yours, new, old),
                      final_newline(old, yours, new))
    return MergeResult("set", chunks)
