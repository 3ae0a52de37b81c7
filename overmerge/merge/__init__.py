"""Merge strategies: pure functions from (OLD, yours, NEW) bytes to a ``MergeResult``.

``merge_bytes`` is the one entry point: it settles the trivial cases (only one
side changed, or both made the same change), refuses to line-merge binary or
oversized files, and dispatches to the strategy. Strategies never touch files,
the environment or the UI.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from overmerge.errors import RuleError
from overmerge.merge import deb822, ini, keyvalue, records, setlines, text, whole
from overmerge.merge.base import Chunk, Hunk, MergeResult

__all__ = [
    "Hunk",
    "MergeResult",
    "Chunk",
    "STRATEGIES",
    "WHOLE_FILE_STRATEGIES",
    "DEFAULT_MAX_SIZE",
    "merge_bytes",
    "render_markers",
    "resolve_chunks",
    "is_binary",
    "has_markers",
]

Strategy = Callable[[bytes, bytes, bytes, Mapping[str, Any]], MergeResult]

STRATEGIES: dict[str, Strategy] = {
    "text": text.merge,
    "records": records.merge,
    "set": setlines.merge,
    "keyvalue": keyvalue.merge,
    "ini": ini.merge,
    "deb822": deb822.merge,
    "keep-user": whole.keep_user,
    "take-new": whole.take_new,
    "regenerate": whole.regenerate,
    "ask": whole.ask,
}
# These never look inside the file, so binary or large files are fine for them.
WHOLE_FILE_STRATEGIES = frozenset({"keep-user", "take-new", "regenerate", "ask"})
# These take NEW by definition, even when only you changed the file.
_ALWAYS_NEW = frozenset({"take-new", "regenerate"})

DEFAULT_MAX_SIZE = 4 * 1024 * 1024
# git's heuristic: a NUL byte in the first 8000 bytes.
_BINARY_SNIFF = 8000

MARKER_START, MARKER_BASE, MARKER_MID, MARKER_END = b"<<<<<<<", b"|||||||", b"=======", b">>>>>>>"


def is_binary(data: bytes) -> bool:
    """True if the data looks binary (a NUL byte near the start, as git decides)."""
    return b"\0" in data[:_BINARY_SNIFF]


def merge_bytes(strategy: str, old: bytes, yours: bytes, new: bytes,
                options: Mapping[str, Any] | None = None) -> MergeResult:
    """Merge one file's three versions with the named strategy.

    ``options`` are the rule's options; ``max_size`` (bytes) among them bounds
    line merging (default 4 MiB). Unknown strategy -> ``RuleError``.
    """
    func = STRATEGIES.get(strategy)
    if func is None:
        raise RuleError(f"unknown merge strategy {strategy!r} (known: {', '.join(STRATEGIES)})")
    opts: Mapping[str, Any] = options or {}
    whole_file = strategy in WHOLE_FILE_STRATEGIES
    if strategy not in _ALWAYS_NEW:
        # Only one side changed, or both the same way: there is nothing to merge.
        side = "new" if yours == old or yours == new else "yours" if new == old else None
        if side is not None:
            data = new if side == "new" else yours
            return MergeResult(strategy, (data,) if data or whole_file else (),
                               taken=side if whole_file else None)
    if not whole_file:
        if any(is_binary(v) for v in (old, yours, new)):
            return MergeResult(strategy, (), reason="binary file: not line-merged")
        max_size = int(opts.get("max_size", DEFAULT_MAX_SIZE))
        if max(len(old), len(yours), len(new)) > max_size:
            return MergeResult(strategy, (), reason=f"larger than {max_size} bytes: not line-merged")
    return func(old, yours, new, opts)


def _eol_of(chunks: Sequence[Chunk]) -> bytes:
    """The line ending of the merge: the first one found, so markers match the file
    (merge3 copies it from one side, which mixes endings)."""
    for chunk in chunks:
        for piece in (chunk,) if isinstance(chunk, bytes) else chunk.yours + chunk.new + chunk.old:
            i = piece.find(b"\n")
            if i >= 0:
                return b"\r\n" if i > 0 and piece[i - 1 : i] == b"\r" else b"\n"
    return b"\n"


class _Out:
    """Output buffer that never glues a marker or a line onto an unterminated line."""

    def __init__(self, eol: bytes) -> None:
        self.parts: list[bytes] = []
        self.eol = eol
        self.open_line = False  # last byte written is not a newline

    def write(self, data: bytes) -> None:
        if data:
            self.parts.append(data)
            self.open_line = not data.endswith(b"\n")

    def line(self, data: bytes) -> None:
        """Write a whole line (a marker), ending the previous line first if needed."""
        self.terminate()
        self.write(data + self.eol)

    def terminate(self) -> None:
        if self.open_line:
            self.write(self.eol)


def render_markers(result: MergeResult,
                   labels: tuple[str, str, str] = ("your change", "OLD", "vendor update")) -> bytes:
    """The merge as a file with diff3-style conflict markers (base section included).

    Raises ValueError for an unmergeable result (no chunks and a reason).
    """
    if result.reason:
        raise ValueError(f"cannot render an unmergeable result: {result.reason}")
    yours_label, old_label, new_label = (s.encode() for s in labels)
    out = _Out(_eol_of(result.chunks))
    for chunk in result.chunks:
        if isinstance(chunk, bytes):
            # A settled chunk after a hunk starts on its own line.
            out.write(chunk)
            continue
        out.line(MARKER_START + b" " + yours_label)
        out.write(b"".join(chunk.yours))
        out.line(MARKER_BASE + b" " + old_label)
        out.write(b"".join(chunk.old))
        out.line(MARKER_MID)
        out.write(b"".join(chunk.new))
        out.line(MARKER_END + b" " + new_label)
    return b"".join(out.parts)


def has_markers(data: bytes) -> bool:
    """True if any line starts with a conflict marker (a result must never contain one)."""
    for marker in (MARKER_START, MARKER_MID, MARKER_END):
        if data.startswith(marker) or b"\n" + marker in data:
            return True
    return False


def resolve_chunks(chunks: Sequence[Chunk], choices: Sequence[str | bytes] | Mapping[int, str | bytes]) -> bytes:
    """Join chunks, resolving hunk i with ``choices[i]``.

    A choice is "yours", "new", "old", "both-yours-first", "both-new-first", or
    explicit bytes. Lines are never glued: a side ending without a newline is
    ended before more lines follow. Raises ValueError for a missing or unknown choice.
    """
    out = _Out(_eol_of(chunks))
    n = 0
    for chunk in chunks:
        if isinstance(chunk, bytes):
            if chunk:
                out.terminate()
            out.write(chunk)
            continue
        try:
            choice = choices[n]
        except (IndexError, KeyError):
            raise ValueError(f"no choice for conflict {n + 1}") from None
        n += 1
        if isinstance(choice, bytes):
            parts = [choice]
        elif choice == "yours":
            parts = [b"".join(chunk.yours)]
        elif choice == "new":
            parts = [b"".join(chunk.new)]
        elif choice == "old":
            parts = [b"".join(chunk.old)]
        elif choice == "both-yours-first":
            parts = [b"".join(chunk.yours), b"".join(chunk.new)]
        elif choice == "both-new-first":
            parts = [b"".join(chunk.new), b"".join(chunk.yours)]
        else:
            raise ValueError(f"unknown choice {choice!r} for conflict {n}")
        for part in parts:
            if part:
                out.terminate()
            out.write(part)
    return b"".join(out.parts)
