"""Generic three-way merge of keyed items (records, keys, stanzas, sections).

Every structured strategy parses each version into ``Item``s: keyed ones (an
account, a setting, a dpkg stanza) and unkeyed ones (comments, blank lines).
The merge is O(n) with dicts:

* NEW's items in NEW's order; each keyed one merged with OLD and yours by a
  strategy-supplied ``merge_value``;
* then your added items (and your changed items that the vendor removed, as
  conflicts) in your order, before NEW's trailing blank lines;
* comments and blank lines stay where they were: NEW's are kept unless you
  deleted that line from OLD; the ones you added are emitted just before the
  keyed item that follows them in your file (comments describe what follows).

Lines here have no line endings; ``finalize`` adds the file's ending back.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace

from overmerge.merge.base import Chunk, Hunk

Lines = tuple[bytes, ...]


@dataclass(frozen=True)
class Item:
    key: Hashable | None  # None: a comment or blank line, kept in place
    lines: Lines  # logical lines, no line endings
    start: int = 0  # 0-based line number of the first line in its file
    label: str = ""  # how notes name it, e.g. "account alice"


@dataclass(frozen=True)
class Settled:
    """Merged lines, remembering which keyed item they are (for uniqueness checks)."""

    key: Hashable | None
    lines: Lines


Piece = Settled | Hunk
MergeValue = Callable[[Item | None, Item, Item], list[Piece]]


class Fallback(Exception):
    """The file cannot be merged by key (e.g. a duplicate key): merge it as text."""


def index(items: Sequence[Item], what: str) -> dict[Hashable, Item]:
    """Key -> item; a key seen twice means the file is not keyed the way we think."""
    found: dict[Hashable, Item] = {}
    for item in items:
        if item.key is None:
            continue
        if item.key in found:
            raise Fallback(f"duplicate {what} {item.label or item.key!r}")
        found[item.key] = item
    return found


def line_merge(o: Item | None, y: Item, n: Item, note: str) -> list[Piece]:
    """Three-way merge of one item compared as a whole (used by keyvalue, deb822 fields)."""
    if y.lines == n.lines or (o is not None and n.lines == o.lines):
        return [Settled(y.key, y.lines)]
    if o is not None and y.lines == o.lines:
        return [Settled(n.key, n.lines)]
    return [conflict(o, y, n, note)]


def conflict(o: Item | None, y: Item | None, n: Item | None, note: str) -> Hunk:
    return Hunk(
        old=o.lines if o else (),
        yours=y.lines if y else (),
        new=n.lines if n else (),
        old_start=o.start if o else 0,
        yours_start=y.start if y else 0,
        new_start=n.start if n else 0,
        note=note,
    )


def merge_items(
    old: Sequence[Item],
    yours: Sequence[Item],
    new: Sequence[Item],
    merge_value: MergeValue,
    *,
    what: str = "record",
    separator: Lines | None = None,
    space_added: bool = False,
) -> list[Piece]:
    """Merge three item lists.

    ``separator`` lines go between top-level outputs (deb822 stanzas);
    ``space_added`` puts a blank line before each of your added items when the
    line before it is not blank (ini sections).
    """
    old_by, yours_by, new_by = index(old, what), index(yours, what), index(new, what)

    removed_by_you, added_by_you = _unkeyed_changes(old, yours, new)

    # Your added comments, anchored to the keyed item that follows them in your file.
    anchored: dict[Hashable, list[Piece]] = {}
    pending: list[Piece] = []
    for pos, item in enumerate(yours):
        if item.key is None:
            if pos in added_by_you:
                pending.append(Settled(None, item.lines))
        elif pending:
            anchored[item.key] = pending
            pending = []
    trailing_comments = pending

    groups: list[list[Piece]] = []
    for n in new:
        if n.key is None:
            if removed_by_you[n.lines] > 0:
                removed_by_you[n.lines] -= 1
                continue
            groups.append([Settled(None, n.lines)])
            continue
        group = list(anchored.pop(n.key, ()))
        o, y = old_by.get(n.key), yours_by.get(n.key)
        if y is None and o is None:
            group.append(Settled(n.key, n.lines))  # the vendor added it
        elif y is None:
            assert o is not None
            if n.lines != o.lines:
                group.append(conflict(o, None, n, f"you deleted {n.label}; the vendor update changed it"))
        else:
            group.extend(merge_value(o, y, n))
        if group:
            groups.append(group)

    # Insert your additions before NEW's trailing blank lines, not after them.
    tail_at = len(groups)
    while tail_at > 0 and _is_blank_group(groups[tail_at - 1]):
        tail_at -= 1
    tail: list[list[Piece]] = []
    for y in yours:
        if y.key is None or y.key in new_by:
            continue
        group = list(anchored.pop(y.key, ()))
        o = old_by.get(y.key)
        if o is None:
            group.append(Settled(y.key, y.lines))  # you added it
        elif y.lines != o.lines:
            group.append(conflict(o, y, None, f"the vendor update removed {y.label}; you changed it"))
        if group:
            tail.append(group)
    if trailing_comments:
        tail.append(trailing_comments)
    if space_added:
        for i, group in enumerate(tail):
            before = tail[i - 1] if i else groups[tail_at - 1] if tail_at else None
            if before is not None and not _ends_blank(before):
                group.insert(0, Settled(None, (b"",)))
    groups[tail_at:tail_at] = tail

    pieces: list[Piece] = []
    for i, group in enumerate(groups):
        if separator is not None and i > 0:
            pieces.append(Settled(None, separator))
        pieces.extend(group)
    return pieces


def _unkeyed_changes(old: Sequence[Item], yours: Sequence[Item],
                     new: Sequence[Item]) -> tuple[Counter[Lines], set[int]]:
    """Comments/blank lines you removed (by content) and added (by position in yours).

    Found by aligning OLD and yours (patience): counting contents alone cannot
    tell which of several blank lines is the one you added.
    """
    if not any(i.key is None for i in old) and not any(i.key is None for i in yours):
        return Counter(), set()
    from overmerge.merge.text import AnchoredMatcher  # text imports nothing from here

    a, b = [i.lines for i in old], [i.lines for i in yours]
    # Common prefix and suffix first: a blank line added before the last block
    # then reads as added there, not as an extra blank at the very end.
    pre = 0
    while pre < min(len(a), len(b)) and a[pre] == b[pre]:
        pre += 1
    suf = 0
    while suf < min(len(a), len(b)) - pre and a[-1 - suf] == b[-1 - suf]:
        suf += 1
    matched_old = set(range(pre)) | set(range(len(a) - suf, len(a)))
    matched_yours = set(range(pre)) | set(range(len(b) - suf, len(b)))
    middle = AnchoredMatcher(None, a[pre : len(a) - suf], b[pre : len(b) - suf])
    for i, j, n in middle.get_matching_blocks():
        matched_old.update(range(pre + i, pre + i + n))
        matched_yours.update(range(pre + j, pre + j + n))
    removed = Counter(old[i].lines for i in range(len(old))
                      if old[i].key is None and i not in matched_old)
    # Comments both sides added identically are emitted once, from NEW.
    new_added = Counter(i.lines for i in new if i.key is None) - Counter(i.lines for i in old if i.key is None)
    added = set()
    for j, item in enumerate(yours):
        if item.key is None and j not in matched_yours:
            if new_added[item.lines] > 0:
                new_added[item.lines] -= 1
            else:
                added.add(j)
    return removed, added


def _ends_blank(group: list[Piece]) -> bool:
    last = group[-1] if group else None
    return isinstance(last, Settled) and bool(last.lines) and not last.lines[-1].strip()


def _is_blank_group(group: list[Piece]) -> bool:
    return all(isinstance(p, Settled) and p.key is None and not any(ln.strip() for ln in p.lines)
               for p in group)


def finalize(pieces: Sequence[Piece], eol: bytes, final_newline: bool) -> tuple[Chunk, ...]:
    """Pieces -> chunks: line endings added back, settled runs joined."""
    chunks: list[Chunk] = []
    run: list[bytes] = []
    for piece in pieces:
        if isinstance(piece, Settled):
            run.extend(ln + eol for ln in piece.lines)
            continue
        if run:
            chunks.append(b"".join(run))
            run = []
        chunks.append(replace(piece, old=_eol(piece.old, eol), yours=_eol(piece.yours, eol),
                              new=_eol(piece.new, eol)))
    if run:
        chunks.append(b"".join(run))
    if not final_newline and chunks:
        last = chunks[-1]
        if isinstance(last, bytes):
            chunks[-1] = last[: -len(eol)] if last.endswith(eol) else last
        else:
            chunks[-1] = replace(last, old=_unterminate(last.old, eol),
                                 yours=_unterminate(last.yours, eol), new=_unterminate(last.new, eol))
    return tuple(c for c in chunks if not (isinstance(c, bytes) and not c))


def _eol(lines: Lines, eol: bytes) -> Lines:
    return tuple(ln + eol for ln in lines)


def _unterminate(lines: Lines, eol: bytes) -> Lines:
    if not lines:
        return lines
    return lines[:-1] + (lines[-1][: -len(eol)],)
