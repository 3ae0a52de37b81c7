"""The ``keyvalue`` strategy: ``KEY=VALUE``, ``Key value`` and ``key: value`` files.

Options:

``syntax``           ``auto`` (default; key ends at blank, ``=`` or ``:``), ``equals``,
                     ``space`` or ``colon``
``comment``          comment prefix (default ``"#"``)
``case_insensitive`` keys compare case-insensitively (sshd_config)
``block_start``      regex of a line that opens a block running to the end of the file
                     (sshd's ``Match``): the part before the first such line is merged by
                     key, the rest as text — a key you add is never put inside a block.

A key set twice in one version (a list-like setting) means the file is not a
plain map: it is merged as text instead, with a note saying why.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from overmerge.merge import keyed, text
from overmerge.merge._lines import detect_eol, final_newline, logical_lines, split_lines
from overmerge.merge.base import Hunk, MergeResult
from overmerge.merge.keyed import Fallback, Item, Piece

_KEY_PATTERNS = {
    "auto": rb"^\s*(?:export\s+)?([^\s=:]+)",
    "equals": rb"^\s*(?:export\s+)?([^\s=]+)",
    "space": rb"^\s*(\S+)",
    "colon": rb"^\s*([^\s:]+)",
}


class KeyValueFormat:
    def __init__(self, options: Mapping[str, Any]) -> None:
        syntax = str(options.get("syntax", "auto"))
        if syntax not in _KEY_PATTERNS:
            raise ValueError(f"unknown keyvalue syntax {syntax!r}")
        self.key_re = re.compile(_KEY_PATTERNS[syntax])
        comment = options.get("comment", "#")
        self.comment = str(comment).encode() if comment else None
        self.case_insensitive = bool(options.get("case_insensitive", False))
        block = options.get("block_start")
        self.block_re = re.compile(str(block).encode()) if block else None

    def items(self, lines: list[bytes], first_line: int = 0) -> list[Item]:
        items = []
        for n, line in enumerate(lines, first_line):
            stripped = line.strip()
            if not stripped or (self.comment and stripped.startswith(self.comment)):
                items.append(Item(None, (line,), n))
                continue
            m = self.key_re.match(line)
            if not m:
                items.append(Item(None, (line,), n))
                continue
            key = m.group(1).lower() if self.case_insensitive else m.group(1)
            items.append(Item(key, (line,), n, m.group(1).decode("utf-8", "replace")))
        return items

    def split_block(self, lines: list[bytes]) -> int:
        """Index of the first block line (len(lines) when there is none)."""
        if self.block_re is not None:
            for i, line in enumerate(lines):
                if self.block_re.match(line):
                    return i
        return len(lines)


def merge_value(o: Item | None, y: Item, n: Item) -> list[Piece]:
    return keyed.line_merge(o, y, n, f"{y.label}: set differently by both")


def merge_pieces(fmt: KeyValueFormat, old: list[bytes], yours: list[bytes], new: list[bytes],
                 starts: tuple[int, int, int] = (0, 0, 0)) -> list[Piece]:
    """Merge logical lines by key (raises Fallback on duplicate keys)."""
    return keyed.merge_items(fmt.items(old, starts[0]), fmt.items(yours, starts[1]),
                             fmt.items(new, starts[2]), merge_value, what="key")


def merge(old: bytes, yours: bytes, new: bytes, options: Mapping[str, Any] | None = None) -> MergeResult:
    fmt = KeyValueFormat(options or {})
    lo, ly, ln = logical_lines(old), logical_lines(yours), logical_lines(new)
    bo, by, bn = fmt.split_block(lo), fmt.split_block(ly), fmt.split_block(ln)
    try:
        pieces = merge_pieces(fmt, lo[:bo], ly[:by], ln[:bn])
    except Fallback as exc:
        result = text.merge(old, yours, new)
        return MergeResult("keyvalue", result.chunks, notes=(f"{exc}: merged as text",))
    eol = detect_eol(yours, new, old)
    has_blocks = (bo, by, bn) != (len(lo), len(ly), len(ln))
    head = keyed.finalize(pieces, eol, True if has_blocks else final_newline(old, yours, new))
    if not has_blocks:
        return MergeResult("keyvalue", head)
    # The blocks (e.g. sshd Match sections) are merged as text, on the original bytes.
    tails = [b"".join(split_lines(data)[b:]) for data, b in ((old, bo), (yours, by), (new, bn))]
    tail = text.merge(*tails).chunks
    tail = tuple(
        Hunk(c.old, c.yours, c.new, c.old_start + bo, c.yours_start + by, c.new_start + bn, c.note)
        if isinstance(c, Hunk) else c for c in tail)
    return MergeResult("keyvalue", head + tail,
                       notes=("lines from the first block start on were merged as text",))
