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

Speed: an entry list may also hold plain ``bytes`` — a *stable* record line,
identical in OLD, yours and NEW, which needs no merging and no ``Item`` — and,
in NEW's list, tuples of consecutive stable lines (records passes a
100,000-line passwd's NEW as ~2,000 items and runs).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import replace
from typing import NamedTuple

from overmerge.merge.base import Chunk, Hunk

Lines = tuple[bytes, ...]


# NamedTuples, not dataclasses: a 100,000-line passwd makes 400,000 of these.
class Item(NamedTuple):
    key: Hashable | None  # None: a comment or blank line, kept in place
    lines: Lines  # logical lines, no line endings
    start: int = 0  # 0-based line number of the first line in its file
    label: str = ""  # how notes name it, e.g. "UMASK"; empty: "<what> <key>"


class Settled(NamedTuple):
    """Merged lines, remembering which keyed item they are (for uniqueness checks)."""

    key: Hashable | None
    lines: Lines


def name_of(item: Item, what: str) -> str:
    """How a note names an item: its label, else "<what> <key>" (e.g. "account alice")."""
    if item.label:
        return item.label
    key = item.key
    parts = key if isinstance(key, tuple) else (key,)
    text = " ".join(p.decode("utf-8", "replace") if isinstance(p, bytes) else str(p) for p in parts)
    return f"{what} {text}"


Piece = Settled | Hunk
Entry = Item | bytes | tuple  # bytes: a stable line; tuple: a run of them (NEW only)
MergeValue = Callable[[Item | None, Item, Item], list[Piece]]


class Fallback(Exception):
    """The file cannot be merged by key (e.g. a duplicate key): merge it as text."""


def _unkeyed(item: Entry) -> bool:
    return item.__class__ is Item and item.key is None  # type: ignore[union-attr]


def _items(entries: Sequence[Entry]) -> list[Item]:
    """The entries that are items (not stable lines)."""
    return [e for e in entries if e.__class__ is Item]  # type: ignore[misc]


def index(items: Sequence[Item], what: str) -> dict[Hashable, Item]:
    """Key -> item; a key seen twice means the file is not keyed the way we think."""
    keyed_items = [item for item in items if item.key is not None]
    found = {item.key: item for item in keyed_items}
    if len(found) != len(keyed_items):
        seen: set[Hashable] = set()
        for item in keyed_items:
            if item.key in seen:
                name = f"{what} {item.label}" if item.label else name_of(item, what)
                raise Fallback(f"duplicate {name}")
            seen.add(item.key)
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
    old: Sequence[Entry],
    yours: Sequence[Entry],
    new: Sequence[Entry],
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
    old_items, yours_items = _items(old), _items(yours)
    old_by, yours_by, new_by = index(old_items, what), index(yours_items, what), index(_items(new), what)

    removed_by_you, added_by_you = _unkeyed_changes(old, yours, new, old_items, yours_items)

    # Your added comments, anchored to the keyed item that follows them in your file.
    anchored: dict[Hashable, list[Piece]] = {}
    pending: list[Piece] = []
    for pos, item in enumerate(yours):
        if item.__class__ is bytes:
            if pending:
                anchored[item] = pending  # a stable line is its own anchor key
                pending = []
        elif item.key is None:
            if pos in added_by_you:
                pending.append(Settled(None, item.lines))
        elif pending:
            anchored[item.key] = pending
            pending = []
    trailing_comments = pending

    groups: list[list[Piece]] = []
    stable_run: list[bytes] = []
    for n in new:
        cls = n.__class__
        if cls is bytes or cls is tuple:
            run = (n,) if cls is bytes else n
            if not anchored:
                stable_run.extend(run)  # type: ignore[arg-type]
                continue
            for line in run:
                if line in anchored:
                    if stable_run:
                        groups.append([Settled(None, tuple(stable_run))])
                        stable_run = []
                    groups.append(anchored.pop(line))
                stable_run.append(line)
            continue
        if stable_run:
            groups.append([Settled(None, tuple(stable_run))])
            stable_run = []
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
                group.append(conflict(o, None, n, f"you deleted {name_of(n, what)}; the vendor update changed it"))
        elif y.lines == n.lines or (o is not None and o.lines == n.lines):
            group.append(Settled(y.key, y.lines))  # the common case, without a call
        else:
            group.extend(merge_value(o, y, n))
        if group:
            groups.append(group)
    if stable_run:
        groups.append([Settled(None, tuple(stable_run))])

    # Insert your additions before NEW's trailing blank lines, not after them.
    tail_at = len(groups)
    while tail_at > 0 and _is_blank_group(groups[tail_at - 1]):
        tail_at -= 1
    tail: list[list[Piece]] = []
    for y in yours:
        if y.__class__ is not Item or y.key is None or y.key in new_by:
            continue
        group = list(anchored.pop(y.key, ()))
        o = old_by.get(y.key)
        if o is None:
            group.append(Settled(y.key, y.lines))  # you added it
        elif y.lines != o.lines:
            group.append(conflict(o, y, None, f"the vendor update removed {name_of(y, what)}; you changed it"))
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


def _unkeyed_changes(old: Sequence[Entry], yours: Sequence[Entry], new: Sequence[Entry],
                     old_items: Sequence[Item], yours_items: Sequence[Item]) -> tuple[Counter[Lines], set[int]]:
    """Comments/blank lines you removed (by content) and added (by position in yours).

    Found by aligning OLD and yours (patience): counting contents alone cannot
    tell which of several blank lines is the one you added.
    """
    if not any(i.key is None for i in old_items) and not any(i.key is None for i in yours_items):
        return Counter(), set()
    from overmerge.merge.text import AnchoredMatcher  # text imports nothing from here

    a = [i if i.__class__ is bytes else i.lines for i in old]  # type: ignore[union-attr]
    b = [i if i.__class__ is bytes else i.lines for i in yours]  # type: ignore[union-attr]
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
    removed = Counter(old[i].lines for i in range(len(old))  # type: ignore[union-attr]
                      if _unkeyed(old[i]) and i not in matched_old)
    # Comments both sides added identically are emitted once, from NEW.
    new_added = (Counter(i.lines for i in new if _unkeyed(i))  # type: ignore[union-attr]
                 - Counter(i.lines for i in old if _unkeyed(i)))  # type: ignore[union-attr]
    added = set()
    for j, item in enumerate(yours):
        if _unkeyed(item) and j not in matched_yours:
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
        if piece.__class__ is Settled:
            run.extend(piece.lines)  # type: ignore[union-attr]
            continue
        if run:
            chunks.append(eol.join(run) + eol)
            run = []
        hunk: Hunk = piece  # type: ignore[assignment]
        chunks.append(replace(hunk, old=_eol(hunk.old, eol), yours=_eol(hunk.yours, eol),
                              new=_eol(hunk.new, eol)))
    if run:
        chunks.append(eol.join(run) + eol)
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
