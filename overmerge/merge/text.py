"""The ``text`` strategy: merge3 line merge with the patience matcher.

merge3's default matcher is ``difflib.SequenceMatcher`` with autojunk on: on
config files with many repeated lines it is slow and treats frequent lines as
junk, which produces whole-file false conflicts. Patience diff anchors on lines
that are unique in both files and is fast (Rust implementation); for small
files where it finds too few anchors we also try difflib *without* autojunk
and keep whichever matcher aligns more lines.
"""
from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

import merge3
import patiencediff

from overmerge.merge._lines import split_lines
from overmerge.merge.base import Chunk, Hunk, MergeResult

# Up to this many lines on both sides together, difflib's O(n*m) is cheap enough.
SMALL_LINES = 4000


def _matched(blocks: Sequence[tuple[int, int, int]]) -> int:
    return sum(b[2] for b in blocks)


class AnchoredMatcher:
    """Patience matching blocks, with difflib (no autojunk) as the small-file fallback."""

    def __init__(self, isjunk: Any = None, a: Sequence[bytes] = (), b: Sequence[bytes] = (),
                 autojunk: bool = False) -> None:
        self.a, self.b = a, b
        self._blocks: list[tuple[int, int, int]] | None = None

    def get_matching_blocks(self) -> list[tuple[int, int, int]]:
        if self._blocks is None:
            a, b = self.a, self.b
            blocks = list(patiencediff.PatienceSequenceMatcher(None, a, b).get_matching_blocks())
            best = min(len(a), len(b))
            if _matched(blocks) < best and len(a) + len(b) <= SMALL_LINES:
                alt = difflib.SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks()
                if _matched(alt) > _matched(blocks):
                    blocks = [tuple(m) for m in alt]
            self._blocks = blocks
        return self._blocks


def merge_lines(old: Sequence[bytes], yours: Sequence[bytes], new: Sequence[bytes]) -> list[Chunk]:
    """Three-way merge of line lists: settled bytes interleaved with ``Hunk``s.

    base = OLD, a = yours, b = NEW (so merge3's "a" is your change).
    """
    m3 = merge3.Merge3(old, yours, new, sequence_matcher=AnchoredMatcher)
    chunks: list[Chunk] = []
    settled: list[bytes] = []
    for region in m3.merge_regions():
        what = region[0]
        if what == "unchanged":
            settled.extend(old[region[1] : region[2]])
        elif what in ("a", "same"):
            settled.extend(yours[region[1] : region[2]])
        elif what == "b":
            settled.extend(new[region[1] : region[2]])
        else:
            _, iz, zend, ia, aend, ib, bend = region
            if settled:
                chunks.append(b"".join(settled))
                settled = []
            chunks.append(Hunk(old=tuple(old[iz:zend]), yours=tuple(yours[ia:aend]),
                               new=tuple(new[ib:bend]), old_start=iz, yours_start=ia,
                               new_start=ib))
    if settled:
        chunks.append(b"".join(settled))
    return chunks


def merge(old: bytes, yours: bytes, new: bytes, options: Mapping[str, Any] | None = None) -> MergeResult:
    """Line merge of whole files (no trivial-case shortcuts: the dispatcher does those)."""
    chunks = merge_lines(split_lines(old), split_lines(yours), split_lines(new))
    return MergeResult(strategy="text", chunks=tuple(chunks))
