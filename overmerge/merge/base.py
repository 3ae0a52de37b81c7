"""Result types shared by every merge strategy (pure: bytes in, values out).

A merge is described as a sequence of *chunks*: byte strings that are settled,
interleaved with ``Hunk`` objects where your change and the vendor update
disagree. The merged file is the concatenation once every hunk is resolved;
this is what the TUI edits hunk by hunk and what the plan stores.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Hunk:
    """One conflict: the lines of OLD, yours and NEW that disagree, and where they sit.

    ``*_start`` are 0-based line numbers in the OLD, yours and NEW files.
    ``note`` explains conflicts that are not plain overlapping edits, e.g.
    "uid 1001 used by alice (your change) and by _apt (vendor update)".
    Lines keep their line endings.
    """

    old: tuple[bytes, ...]
    yours: tuple[bytes, ...]
    new: tuple[bytes, ...]
    old_start: int = 0
    yours_start: int = 0
    new_start: int = 0
    note: str = ""


Chunk = bytes | Hunk


@dataclass(frozen=True)
class MergeResult:
    strategy: str
    chunks: tuple[Chunk, ...]
    # Set when the strategy cannot line-merge (binary, too large, keep/ask...):
    # then chunks is empty and `reason` says why.
    reason: str = ""
    # For whole-file strategies (keep-user, take-new, regenerate): which side was taken.
    taken: str | None = None  # "yours" | "new" | None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def hunks(self) -> tuple[Hunk, ...]:
        return tuple(c for c in self.chunks if isinstance(c, Hunk))

    @property
    def clean(self) -> bool:
        return not self.reason and not self.hunks

    @property
    def merged(self) -> bytes | None:
        """The merged bytes when clean, else None."""
        if not self.clean:
            return None
        return b"".join(c for c in self.chunks if isinstance(c, bytes))
