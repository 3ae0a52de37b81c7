"""The ``records`` strategy: keyed line records (passwd, group, shadow, hosts, fstab...).

Options (all optional):

``separator``    ``":"`` (default) or ``"whitespace"`` (runs of blanks; alignment of
                 your line is kept when fields are recombined)
``maxsplit``     split at most this many times (``hosts``: 1, so field 1 = all names)
``key``          field indexes forming the key (default ``[0]``)
``sets``         set-valued fields: ``{index: member separator}`` or a list of indexes
                 (separator ``","``; ``" "`` means whitespace), merged three-way as sets
``unique``       field indexes whose values must stay unique (uid, gid); a value used
                 by a record you added/changed and one the vendor added/changed is a
                 conflict whose note names both records
``prefer_yours`` field indexes where your value wins if both sides changed it
                 (shadow's password hash)
``fields``       field names, for notes ("uid" reads better than "field 2")
``comment``      comment prefix (default ``"#"``; ``null`` for none)
``what``         what a record is called in notes (default ``"record"``)
"""
from __future__ import annotations

import operator
import re
from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import compress, filterfalse
from typing import Any

from overmerge.merge import keyed
from overmerge.merge._lines import detect_eol, final_newline, logical_lines
from overmerge.merge.base import Hunk, MergeResult
from overmerge.merge.keyed import Fallback, Item, Piece, Settled

_WS_SPLIT = re.compile(rb"(\s+)")
# A literal "\n" first lets the regex engine skip ahead with memchr; "^" with
# MULTILINE or "\A|\n" tries every position and is 10-30x slower on big files.
_WS_ONLY_LINE = re.compile(rb"\n[ \t\f\v\r]+(?=\n|\Z)")


def _has_whitespace_line(data: bytes) -> bool:
    """Whether some line is blanks only (not empty). One regex pass in C; several
    ``b"\\n " in data`` tests are slower, since "\\n" is on every line."""
    return bool(_WS_ONLY_LINE.search(b"\n" + data[:4096]) or _WS_ONLY_LINE.search(data))


@dataclass(frozen=True)
class RecordFormat:
    separator: bytes | None  # None = whitespace
    maxsplit: int
    key: tuple[int, ...]
    sets: Mapping[int, bytes | None]
    unique: tuple[int, ...]
    prefer_yours: frozenset[int]
    fields: tuple[str, ...]
    comment: bytes | None
    what: str

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> RecordFormat:
        sep = options.get("separator", ":")
        raw_sets = options.get("sets", {}) or {}
        if isinstance(raw_sets, Mapping):
            sets = {int(k): _member_sep(v) for k, v in raw_sets.items()}
        else:
            sets = {int(k): b"," for k in raw_sets}
        comment = options.get("comment", "#")
        return cls(
            separator=None if sep in ("whitespace", None, " ") else str(sep).encode(),
            maxsplit=int(options.get("maxsplit", -1)),
            key=tuple(int(k) for k in options.get("key", [0])),
            sets=sets,
            unique=tuple(int(k) for k in options.get("unique", ())),
            prefer_yours=frozenset(int(k) for k in options.get("prefer_yours", ())),
            fields=tuple(str(f) for f in options.get("fields", ())),
            comment=str(comment).encode() if comment else None,
            what=str(options.get("what", "record")),
        )

    def field_name(self, i: int) -> str:
        return self.fields[i] if i < len(self.fields) else f"field {i + 1}"

    def split(self, line: bytes) -> tuple[list[bytes], list[bytes]]:
        """Fields and the separators between them (whitespace files keep their alignment)."""
        if self.separator is not None:
            fields = line.split(self.separator, self.maxsplit)
            return fields, [self.separator] * (len(fields) - 1)
        body = line.strip()
        if not body:
            return [], []
        parts = _WS_SPLIT.split(body, max(self.maxsplit, 0))  # re: 0 = no limit
        return parts[0::2], parts[1::2]

    def key_of(self, line: bytes) -> tuple[bytes, ...] | None:
        if self.key == (0,):
            if self.separator is not None:  # fast path for the common passwd-like case
                return (line.partition(self.separator)[0],)
            first = line.split(None, 1)
            return (first[0],) if first else None
        fields = self.split(line)[0]
        if max(self.key) >= len(fields):
            return None
        return tuple(fields[i] for i in self.key)


def _member_sep(value: Any) -> bytes | None:
    if value is None or value in (" ", "whitespace"):
        return None
    return str(value).encode()


def parse(lines: list[bytes], fmt: RecordFormat, stable: set[bytes] | frozenset[bytes] = frozenset(),
          *, full: bool = True, runs: bool = False) -> list[keyed.Entry]:
    """Entries for logical lines: lines in ``stable`` (the same record line in all
    three versions) stay plain bytes, which the keyed engine passes through.

    ``full=False``: return only the items when there is no comment or blank line
    among them — the engine needs the stable lines of OLD and yours only to
    place your added comments. ``runs=True`` (for NEW): stable lines come as
    tuples of consecutive lines, sliced in C, so the engine loops over changes only.
    """
    if not full:
        items = _changed_items(lines, fmt, stable)
        if items is not None:
            return items
    entries: list[keyed.Entry] = [] if runs else list(lines)
    items = []
    prev = 0
    # Only the changed lines are looked at in Python; finding them runs in C.
    changed = compress(range(len(lines)), map(operator.not_, map(stable.__contains__, lines)))
    fast = fmt.key == (0,) and fmt.separator is not None
    sep = fmt.separator or b""
    for n in changed:
        line = lines[n]
        stripped = line.strip()
        if not stripped or (fmt.comment and stripped.startswith(fmt.comment)):
            item = Item(None, (line,), n)
            full = True
        else:
            key = (line.partition(sep)[0],) if fast else fmt.key_of(line)
            if key is None:
                raise Fallback(f"line {n + 1} has no key field")
            item = Item(key, (line,), n)
        if runs:
            if n > prev:
                entries.append(tuple(lines[prev:n]))
            entries.append(item)
            prev = n + 1
        else:
            entries[n] = item
        items.append(item)
    if runs and prev < len(lines):
        entries.append(tuple(lines[prev:]))
    return entries if full else items


def _changed_items(lines: list[bytes], fmt: RecordFormat, stable: set[bytes] | frozenset[bytes]) -> list[keyed.Entry] | None:
    """Items of the changed lines, in order, without their line numbers (start -1,
    filled in for the rare conflict by ``_fix_starts``); None if a comment or
    blank line is among them (then the caller needs every line, in place)."""
    fast = fmt.key == (0,) and fmt.separator is not None
    sep = fmt.separator or b""
    items: list[keyed.Entry] = []
    for line in filterfalse(stable.__contains__, lines):  # the scan runs in C
        stripped = line.strip()
        if not stripped or (fmt.comment and stripped.startswith(fmt.comment)):
            return None
        key = (line.partition(sep)[0],) if fast else fmt.key_of(line)
        if key is None:
            raise Fallback("a line has no key field")
        items.append(Item(key, (line,), -1))
    return items


def _fix_starts(pieces: list[Piece], old: list[bytes], yours: list[bytes]) -> list[Piece]:
    """Real line numbers for conflicts whose items were parsed without them."""
    if not any(isinstance(p, Hunk) and (p.old_start < 0 or p.yours_start < 0) for p in pieces):
        return pieces
    where_old = {line: i for i, line in enumerate(old)}
    where_yours = {line: i for i, line in enumerate(yours)}
    out: list[Piece] = []
    for p in pieces:
        if isinstance(p, Hunk) and (p.old_start < 0 or p.yours_start < 0):
            p = replace(p, old_start=where_old.get(p.old[0], 0) if p.old else max(p.old_start, 0),
                        yours_start=where_yours.get(p.yours[0], 0) if p.yours else max(p.yours_start, 0))
        out.append(p)
    return out


def stable_lines(fmt: RecordFormat, old: list[bytes], yours: list[bytes], new: list[bytes],
                 whitespace_lines: bool = True) -> set[bytes]:
    """Record lines present in all three versions: unchanged on both sides.

    They need no merging and are passed through as fixed content, in NEW's
    order; the other lines are merged by key among themselves (so a key that
    is stable in one line and changed in another still merges as a three-way
    merge of the changed lines). A stable record can never be half of a new
    uniqueness violation: its value is in both your file and NEW, and any
    partner's value came from one of them. ``whitespace_lines``: whether any
    line may consist of blanks only (the caller can tell with one regex search).
    """
    stable = set(old).intersection(yours, new)
    stable.discard(b"")
    if whitespace_lines:
        stable = set(filterfalse(bytes.isspace, stable))  # blank lines are not records
    if fmt.comment is not None:
        comment = fmt.comment
        stable = {ln for ln in stable if not ln.lstrip().startswith(comment)}
    return stable


def _split_members(value: bytes, sep: bytes | None) -> list[bytes]:
    if sep is None:
        return value.split()
    return [m for m in value.split(sep) if m]


def merge_set(o: list[bytes] | None, y: list[bytes], n: list[bytes]) -> list[bytes]:
    """NEW's members in NEW's order minus the ones you removed, then the ones you added."""
    old = set(o or ())
    yset, nset = set(y), set(n)
    result = [m for m in n if not (m in old and m not in yset)]
    seen = set(result)
    for m in y:
        if m not in old and m not in nset and m not in seen:
            result.append(m)
            seen.add(m)
    return result


def _merge_record(fmt: RecordFormat, o: Item | None, y: Item, n: Item) -> list[Piece]:
    yl, nl = y.lines[0], n.lines[0]
    ol = o.lines[0] if o else None
    if yl == nl or nl == ol:
        return [Settled(y.key, y.lines)]
    if yl == ol:
        return [Settled(n.key, n.lines)]
    fo = fmt.split(ol)[0] if ol is not None else None
    fy, ysep = fmt.split(yl)
    fn, nsep = fmt.split(nl)
    if len(fy) != len(fn) or (fo is not None and len(fo) != len(fy)):
        return [keyed.conflict(o, y, n, f"{keyed.name_of(y, fmt.what)}: changed by both (different field counts)")]
    merged: list[bytes] = []
    clashes: list[str] = []
    for i, (vy, vn) in enumerate(zip(fy, fn)):
        vo = fo[i] if fo is not None else None
        if vy == vn or vn == vo:
            merged.append(vy)
        elif vy == vo:
            merged.append(vn)
        elif i in fmt.sets:
            sep = fmt.sets[i]
            members = merge_set(None if vo is None else _split_members(vo, sep),
                                _split_members(vy, sep), _split_members(vn, sep))
            merged.append((b" " if sep is None else sep).join(members))
        elif i in fmt.prefer_yours:
            merged.append(vy)
        else:
            merged.append(vy)
            clashes.append(fmt.field_name(i))
    if clashes:
        how = "added by both with different" if o is None else "both changed"
        return [keyed.conflict(o, y, n, f"{keyed.name_of(y, fmt.what)}: {how} {', '.join(clashes)}")]
    if merged == fy:
        return [Settled(y.key, y.lines)]
    if merged == fn:
        return [Settled(n.key, n.lines)]
    line = merged[0]
    for sep, value in zip(ysep, merged[1:]):
        line += sep + value
    if fmt.separator is None:
        line = yl[: len(yl) - len(yl.lstrip())] + line  # keep your indentation
    return [Settled(y.key, (line,))]


def _unique_value(fmt: RecordFormat, line: bytes, field: int) -> bytes | None:
    fields = fmt.split(line)[0]
    return fields[field] if field < len(fields) else None


def check_unique(fmt: RecordFormat, pieces: list[Piece], yours: Sequence[Item],
                 new: Sequence[Item]) -> list[Piece]:
    """Turn pairs of records sharing a unique value, that were not already together
    in your file or in NEW, into conflict hunks naming both."""
    if not fmt.unique:
        return pieces
    yours_lines = {i.key: i for i in yours if i.__class__ is Item and i.key is not None}
    new_lines = {i.key: i for i in new if i.__class__ is Item and i.key is not None}
    for field in fmt.unique:
        by_value: dict[bytes, list[int]] = defaultdict(list)
        for idx, piece in enumerate(pieces):
            if isinstance(piece, Settled) and piece.key is not None:
                value = _unique_value(fmt, piece.lines[0], field)
                if value:
                    by_value[value].append(idx)
        for value, idxs in by_value.items():
            if len(idxs) < 2:
                continue
            consumed: set[int] = set()
            for a in idxs:
                for b in idxs:
                    if a >= b or a in consumed or b in consumed:
                        continue
                    pa, pb = pieces[a], pieces[b]
                    assert isinstance(pa, Settled) and isinstance(pb, Settled)
                    if _together(fmt, field, value, pa.key, pb.key, yours_lines) or \
                            _together(fmt, field, value, pa.key, pb.key, new_lines):
                        continue
                    # "yours" is the record that differs from NEW (you added or changed it).
                    mine, vendor = (a, b) if _differs(pa, new_lines) else (b, a)
                    pm, pv = pieces[mine], pieces[vendor]
                    assert isinstance(pm, Settled) and isinstance(pv, Settled)
                    name_m = b" ".join(pm.key).decode("utf-8", "replace")  # type: ignore[arg-type]
                    name_v = b" ".join(pv.key).decode("utf-8", "replace")  # type: ignore[arg-type]
                    note = (f"{fmt.field_name(field)} {value.decode('utf-8', 'replace')} used by "
                            f"{name_m} (your change) and by {name_v} (vendor update)")
                    yi, ni = yours_lines.get(pm.key), new_lines.get(pv.key)
                    pieces[vendor] = Hunk(old=(), yours=pm.lines, new=pv.lines,
                                          yours_start=yi.start if yi else 0,
                                          new_start=ni.start if ni else 0, note=note)
                    pieces[mine] = Settled(None, ())
                    consumed.update((a, b))
    return [p for p in pieces if not (isinstance(p, Settled) and not p.lines)]


def _together(fmt: RecordFormat, field: int, value: bytes, ka: Hashable, kb: Hashable,
              side: Mapping[Hashable, Item]) -> bool:
    ia, ib = side.get(ka), side.get(kb)
    return (ia is not None and ib is not None
            and _unique_value(fmt, ia.lines[0], field) == value
            and _unique_value(fmt, ib.lines[0], field) == value)


def _differs(piece: Settled, new_lines: Mapping[Hashable, Item]) -> bool:
    n = new_lines.get(piece.key)
    return n is None or n.lines != piece.lines


def merge(old: bytes, yours: bytes, new: bytes, options: Mapping[str, Any] | None = None) -> MergeResult:
    fmt = RecordFormat.from_options(options or {})
    try:
        lo, ly, ln = logical_lines(old), logical_lines(yours), logical_lines(new)
        blanks = any(_has_whitespace_line(v) for v in (old, yours, new))
        stable = stable_lines(fmt, lo, ly, ln, blanks)
        o, y, n = parse(lo, fmt, stable, full=False), parse(ly, fmt, stable, full=False), parse(ln, fmt, stable, runs=True)
        pieces = keyed.merge_items(o, y, n, lambda a, b, c: _merge_record(fmt, a, b, c),
                                   what=fmt.what)
    except Fallback as exc:
        from overmerge.merge import text

        result = text.merge(old, yours, new)
        return MergeResult("records", result.chunks, notes=(f"{exc}: merged as text",))
    pieces = _fix_starts(check_unique(fmt, pieces, y, n), lo, ly)
    chunks = keyed.finalize(pieces, detect_eol(yours, new, old), final_newline(old, yours, new))
    return MergeResult("records", chunks)
