"""The ``deb822`` strategy: stanzas keyed by fields (``/var/lib/dpkg/status``, sources).

Stanzas (separated by blank lines) are keyed by the values of the ``key``
fields (default ``[Package, Architecture]``; a missing field keys as empty).
Within a stanza, fields are merged three-way by name, a field being its first
line plus its continuation lines; comment lines belong to the field after them.
Your added stanzas go after NEW's, in your order. A field changed differently
by both is a conflict naming the stanza and the field.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from overmerge.merge import keyed, text
from overmerge.merge._lines import detect_eol, final_newline, logical_lines
from overmerge.merge.base import MergeResult
from overmerge.merge.keyed import Fallback, Item, Piece


def stanzas(lines: list[bytes], key_fields: Sequence[bytes]) -> list[Item]:
    items: list[Item] = []
    current: list[bytes] = []
    start = 0
    for n, line in enumerate(lines + [b""]):
        if line.strip():
            if not current:
                start = n
            current.append(line)
        elif current:
            items.append(_stanza(current, start, key_fields))
            current = []
    return items


def _stanza(lines: list[bytes], start: int, key_fields: Sequence[bytes]) -> Item:
    values: dict[bytes, bytes] = {}
    for line in lines:
        name, colon, value = line.partition(b":")
        if colon and not line[:1].isspace() and not line.startswith(b"#"):
            values.setdefault(name.strip().lower(), value.strip())
    key = tuple(values.get(f, b"") for f in key_fields)
    if not any(key):
        return Item(None, tuple(lines), start)  # e.g. a comment-only stanza
    label = "stanza " + " ".join(v.decode("utf-8", "replace") for v in key if v)
    return Item(key, tuple(lines), start, label)


def fields(stanza: Item) -> list[Item]:
    """A stanza's fields as keyed items (key = lower-case field name).

    A field is its first line plus continuation lines; comment lines lead the
    field after them.
    """
    items: list[Item] = []
    current: list[bytes] = []
    start = stanza.start
    for n, line in enumerate(stanza.lines, stanza.start):
        is_comment = line.startswith(b"#")
        if not is_comment and line[:1].isspace() and current and not current[-1].startswith(b"#"):
            current.append(line)  # continuation of the current field
            continue
        if current and not current[-1].startswith(b"#"):
            items.append(_field(current, start, stanza.label))
            current = []
        if not current:
            start = n
        current.append(line)
    if current:
        items.append(_field(current, start, stanza.label))
    return items


def _field(lines: list[bytes], start: int, stanza_label: str) -> Item:
    head = next((ln for ln in lines if not ln.startswith(b"#")), None)
    if head is None:
        return Item(None, tuple(lines), start)
    name = head.partition(b":")[0].strip()
    return Item(name.lower(), tuple(lines), start,
                f"{stanza_label}: field {name.decode('utf-8', 'replace')}")


def _merge_field(o: Item | None, y: Item, n: Item) -> list[Piece]:
    return keyed.line_merge(o, y, n, f"{y.label} changed by both")


def _merge_stanza(o: Item | None, y: Item, n: Item) -> list[Piece]:
    if y.lines == n.lines or (o is not None and n.lines == o.lines):
        return [keyed.Settled(y.key, y.lines)]
    if o is not None and y.lines == o.lines:
        return [keyed.Settled(n.key, n.lines)]
    return keyed.merge_items(fields(o) if o else [], fields(y), fields(n), _merge_field,
                             what="field")


def merge(old: bytes, yours: bytes, new: bytes, options: Mapping[str, Any] | None = None) -> MergeResult:
    opts = options or {}
    key_fields = tuple(str(f).lower().encode() for f in opts.get("key", ["Package", "Architecture"]))
    lo, ly, ln = logical_lines(old), logical_lines(yours), logical_lines(new)
    try:
        pieces = keyed.merge_items(stanzas(lo, key_fields), stanzas(ly, key_fields),
                                   stanzas(ln, key_fields), _merge_stanza, what="stanza",
                                   separator=(b"",))
    except Fallback as exc:
        result = text.merge(old, yours, new)
        return MergeResult("deb822", result.chunks, notes=(f"{exc}: merged as text",))
    # dpkg ends each stanza with a blank line; keep NEW's (or your changed) convention.
    trailing_blank = _trailing_blank(old, yours, new)
    if trailing_blank and pieces:
        pieces.append(keyed.Settled(None, (b"",)))
    return MergeResult("deb822", keyed.finalize(pieces, detect_eol(yours, new, old),
                                                final_newline(old, yours, new)))


def _trailing_blank(old: bytes, yours: bytes, new: bytes) -> bool:
    def flag(data: bytes) -> bool | None:
        lines = logical_lines(data)
        return (not lines[-1].strip()) if lines else None

    o, y, n = flag(old), flag(yours), flag(new)
    if y is None:
        return bool(n)
    if n is None:
        return y
    return n if y == o else y
