"""The ``ini`` strategy: ``[section]`` headers, keys merged within their section.

Sections are keyed by name; inside a section, keys are merged like ``keyvalue``
(your added keys go at the end of their section, your added sections at the
end of the file). Options: ``comment`` (default ``"#"``; ``;`` lines are
comments too), ``case_insensitive``. Duplicate sections or keys fall back to text.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from overmerge.merge import keyed, text
from overmerge.merge._lines import detect_eol, final_newline, logical_lines
from overmerge.merge.base import MergeResult
from overmerge.merge.keyed import Fallback, Item, Piece
from overmerge.merge.keyvalue import KeyValueFormat, merge_value

_SECTION = re.compile(rb"^\s*\[([^\]]*)\]")
_PREAMBLE = ("preamble",)


def sections(lines: list[bytes]) -> list[Item]:
    items: list[Item] = []
    start, current = 0, _PREAMBLE
    for n, line in enumerate(lines):
        m = _SECTION.match(line)
        if m:
            if n > start or current != _PREAMBLE:
                items.append(_section(current, lines[start:n], start))
            start, current = n, ("section", m.group(1).strip())
    if len(lines) > start or current != _PREAMBLE:
        items.append(_section(current, lines[start:], start))
    return items


def _section(key: tuple, lines: list[bytes], start: int) -> Item:
    label = "the lines before the first section" if key == _PREAMBLE else \
        f"section [{key[1].decode('utf-8', 'replace')}]"
    return Item(key, tuple(lines), start, label)


def merge(old: bytes, yours: bytes, new: bytes, options: Mapping[str, Any] | None = None) -> MergeResult:
    opts = dict(options or {})
    fmt = KeyValueFormat({**opts, "syntax": "equals"})

    def body_items(item: Item) -> tuple[list[bytes], list[bytes]]:
        has_header = item.key != _PREAMBLE
        return list(item.lines[:1] if has_header else ()), list(item.lines[1 if has_header else 0:])

    def merge_section(o: Item | None, y: Item, n: Item) -> list[Piece]:
        (yh, yb), (nh, nb) = body_items(y), body_items(n)
        oh, ob = body_items(o) if o else ([], [])
        header: list[Piece] = keyed.line_merge(
            Item(y.key, tuple(oh)) if o else None, Item(y.key, tuple(yh), label=y.label),
            Item(n.key, tuple(nh)), f"{y.label}: header changed by both") if (yh or nh) else []
        o_start = o.start + len(oh) if o else 0
        body = keyed.merge_items(
            _with_ini_comments(fmt, ob, o_start), _with_ini_comments(fmt, yb, y.start + len(yh)),
            _with_ini_comments(fmt, nb, n.start + len(nh)), merge_value, what="key")
        return header + body

    lo, ly, ln = logical_lines(old), logical_lines(yours), logical_lines(new)
    try:
        pieces = keyed.merge_items(sections(lo), sections(ly), sections(ln), merge_section,
                                   what="section", space_added=True)
    except Fallback as exc:
        result = text.merge(old, yours, new)
        return MergeResult("ini", result.chunks, notes=(f"{exc}: merged as text",))
    return MergeResult("ini", keyed.finalize(pieces, detect_eol(yours, new, old),
                                             final_newline(old, yours, new)))


def _with_ini_comments(fmt: KeyValueFormat, lines: list[bytes], start: int) -> list[Item]:
    """keyvalue items, with ``;`` comments (an ini convention) unkeyed too."""
    items = fmt.items(lines, start)
    return [Item(None, i.lines, i.start) if i.key is not None and i.lines[0].lstrip().startswith(b";")
            else i for i in items]

