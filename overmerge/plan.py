"""The plan: a versioned JSON value that `apply` and `resolve` consume. Pure.

Schema: docs/plan-format.md. Paths are bytes; JSON carries them as UTF-8
``path`` plus ``path_b64`` when they are not valid UTF-8. Each input is
recorded as a manifest of per-path stat fingerprints, so that a later apply
can name the first path that changed since the plan was made.
"""
from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from overmerge import __version__, paths
from overmerge.classify import Entry
from overmerge.errors import InputError, StalePlanError
from overmerge.merge.base import Hunk
from overmerge.model import CLASSES, CONFLICT, DECIDED, NEEDS_DECISION, UNCHANGED

FORMAT = "overmerge-plan"
VERSION = 1
RESOLUTIONS = ("identical", "auto-merged", "needs-decision", "decided")
ROLES = ("old", "new", "upper")


# ---------------------------------------------------------------------------
# Manifests: what the plan saw of each input.


@dataclass(frozen=True, slots=True)
class Manifest:
    """(path, fingerprint) pairs in walk order."""

    items: tuple[tuple[bytes, bytes], ...]

    def digest(self) -> str:
        h = hashlib.sha256()
        for path, fp in self.items:
            h.update(path + b"\0" + fp + b"\0")
        return "sha256:" + h.hexdigest()

    def encode(self) -> str:
        raw = b"".join(path + b"\0" + fp + b"\0" for path, fp in self.items)
        return base64.b64encode(zlib.compress(raw, 1)).decode("ascii")

    @classmethod
    def decode(cls, text: str) -> Manifest:
        try:
            raw = zlib.decompress(base64.b64decode(text, validate=True))
        except (ValueError, zlib.error) as exc:
            raise InputError(f"plan manifest is damaged ({exc}); make a new plan") from exc
        parts = raw.split(b"\0")[:-1]
        if len(parts) % 2:
            raise InputError("plan manifest is damaged (odd field count); make a new plan")
        return cls(tuple(zip(parts[0::2], parts[1::2])))

    def first_difference(self, other: Manifest) -> bytes | None:
        """The first path whose fingerprint differs, appears or disappears (None: same)."""
        mine = dict(self.items)
        theirs = dict(other.items)
        for path in sorted(mine.keys() | theirs.keys()):
            if mine.get(path) != theirs.get(path):
                return path
        return None


@dataclass(frozen=True, slots=True)
class InputRecord:
    role: str  # "old", "new" or "upper"
    path: str  # absolute path as given (fs-decoded)
    manifest: Manifest
    namespace: str | None = None  # TOP only: "trusted" or "user"

    def to_json(self) -> dict:
        data = {
            "path": self.path,
            "entries": len(self.manifest.items),
            "digest": self.manifest.digest(),
            "manifest": self.manifest.encode(),
        }
        if self.namespace is not None:
            data["xattr_namespace"] = self.namespace
        return data

    def check_same(self, seen: Manifest) -> None:
        """Raise StalePlanError naming the first changed path if ``seen`` differs."""
        if seen.digest() == self.manifest.digest():
            return
        changed = self.manifest.first_difference(seen)
        where = paths.display(changed) if changed else "(the layer root)"
        name = {"old": "OLD", "new": "NEW", "upper": "TOP"}[self.role]
        raise StalePlanError(
            f"{name} changed since the plan was made (first changed path: {where or '/'} in {self.path}); "
            "run `overmerge plan` again"
        )


# ---------------------------------------------------------------------------
# JSON for entries and hunks.


def _text_field(name: str, data: bytes) -> dict[str, str]:
    try:
        return {name: data.decode("utf-8")}
    except UnicodeDecodeError:
        return {f"{name}_b64": base64.b64encode(data).decode("ascii")}


def _read_text_field(obj: dict, name: str) -> bytes:
    if f"{name}_b64" in obj:
        return base64.b64decode(obj[f"{name}_b64"])
    value = obj.get(name, "")
    if not isinstance(value, str):
        raise InputError(f"plan field {name!r} must be a string")
    return value.encode("utf-8")


def _split_lines(data: bytes) -> tuple[bytes, ...]:
    return tuple(data.splitlines(keepends=True))


def hunk_to_json(h: Hunk) -> dict:
    data: dict = {"old_start": h.old_start, "yours_start": h.yours_start, "new_start": h.new_start}
    for side in ("old", "yours", "new"):
        data.update(_text_field(side, b"".join(getattr(h, side))))
    if h.note:
        data["note"] = h.note
    return data


def hunk_from_json(obj: dict) -> Hunk:
    return Hunk(
        old=_split_lines(_read_text_field(obj, "old")),
        yours=_split_lines(_read_text_field(obj, "yours")),
        new=_split_lines(_read_text_field(obj, "new")),
        old_start=int(obj.get("old_start", 0)),
        yours_start=int(obj.get("yours_start", 0)),
        new_start=int(obj.get("new_start", 0)),
        note=str(obj.get("note", "")),
    )


def entry_to_json(e: Entry) -> dict:
    data: dict = paths.to_json(e.path)
    data["class"] = e.cls
    data["change"] = e.change
    if e.your_change is not None:
        data["your_change"] = e.your_change
    if e.vendor_change is not None:
        data["vendor_change"] = e.vendor_change
    if e.cls == CONFLICT:
        data["resolution"] = e.resolution
    if e.rule is not None:
        data["rule"] = e.rule
    if e.reason:
        data["reason"] = e.reason
    if e.your_attributes:
        data["your_attributes"] = list(e.your_attributes)
    if e.vendor_attributes:
        data["vendor_attributes"] = list(e.vendor_attributes)
    if e.conflicting:
        data["conflicting"] = list(e.conflicting)
    if e.hunks:
        data["hunks"] = [hunk_to_json(h) for h in e.hunks]
    if e.taken is not None:
        data["taken"] = e.taken
    if e.merged_sha256 is not None:
        data["merged_sha256"] = e.merged_sha256
    if e.decision is not None:
        data["decision"] = e.decision
    if e.hunk_choices is not None:
        data["hunk_choices"] = list(e.hunk_choices)
    return data


def entry_from_json(obj: dict) -> Entry:
    if not isinstance(obj, dict):
        raise InputError("plan entry is not an object")
    cls = obj.get("class")
    if cls not in CLASSES:
        raise InputError(f"plan entry {obj.get('path')!r}: unknown class {cls!r}")
    resolution = obj.get("resolution")
    if resolution is not None and resolution not in RESOLUTIONS:
        raise InputError(f"plan entry {obj.get('path')!r}: unknown resolution {resolution!r}")
    return Entry(
        path=paths.from_json(obj),
        cls=cls,
        change=obj.get("change"),
        your_change=obj.get("your_change"),
        vendor_change=obj.get("vendor_change"),
        resolution=resolution,
        rule=obj.get("rule"),
        reason=obj.get("reason", ""),
        your_attributes=tuple(obj.get("your_attributes", ())),
        vendor_attributes=tuple(obj.get("vendor_attributes", ())),
        conflicting=tuple(obj.get("conflicting", ())),
        hunks=tuple(hunk_from_json(h) for h in obj.get("hunks", ())),
        taken=obj.get("taken"),
        merged_sha256=obj.get("merged_sha256"),
        decision=obj.get("decision"),
        hunk_choices=_hunk_choices_from_json(obj),
    )


def _hunk_choices_from_json(obj: dict) -> tuple | None:
    value = obj.get("hunk_choices")
    if value is None:
        return None
    if not isinstance(value, list):
        raise InputError(f"plan entry {obj.get('path')!r}: hunk_choices is not a list")
    return tuple(value)


# ---------------------------------------------------------------------------
# The plan itself.


@dataclass(slots=True)
class Plan:
    inputs: dict[str, InputRecord]
    entries: list[Entry]  # every path when include_unchanged, else all but unchanged
    counts: dict[str, int]
    options: dict = field(default_factory=dict)
    created: str = ""
    tool: str = f"overmerge {__version__}"

    def by_path(self) -> dict[bytes, Entry]:
        return {e.path: e for e in self.entries}

    def open_conflicts(self) -> list[Entry]:
        """Conflicts that still need a person or a policy."""
        return [e for e in self.entries if e.resolution == NEEDS_DECISION]

    def attention(self) -> Iterator[Entry]:
        """Paths that need attention: conflicts first (open ones first), then your changes."""
        conflicts = [e for e in self.entries if e.cls == CONFLICT]
        conflicts.sort(key=lambda e: (e.resolution != NEEDS_DECISION, e.path))
        yield from conflicts
        yield from (e for e in self.entries if e.cls == "user-modified")

    def resolution_counts(self) -> dict[str, int]:
        result = {r: 0 for r in RESOLUTIONS}
        for e in self.entries:
            if e.cls == CONFLICT and e.resolution in result:
                result[e.resolution] += 1
        return result

    def decide(self, path: bytes, decision: dict) -> Entry:
        """Record a decision for a conflict (the TUI and policies use this)."""
        for e in self.entries:
            if e.path == path:
                if e.cls != CONFLICT:
                    raise InputError(f"{paths.display(path)} is not a conflict; nothing to decide")
                e.decision = decision
                e.resolution = DECIDED
                return e
        raise InputError(f"{paths.display(path)} is not in the plan")

    def to_json(self, *, include_unchanged: bool = True) -> dict:
        entries = self.entries if include_unchanged else [e for e in self.entries if e.cls != UNCHANGED]
        return {
            "format": FORMAT,
            "version": VERSION,
            "tool": self.tool,
            "created": self.created,
            "inputs": {role: rec.to_json() for role, rec in self.inputs.items()},
            "options": self.options,
            "counts": dict(self.counts),
            "resolutions": self.resolution_counts(),
            "needs_decision": len(self.open_conflicts()),
            "entries": [entry_to_json(e) for e in entries],
        }

    @classmethod
    def from_json(cls, data: object, *, source: str = "plan") -> Plan:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InputError(f"{source}: not an overmerge plan (no \"format\": \"{FORMAT}\")")
        version = data.get("version")
        if version != VERSION:
            raise InputError(f"{source}: plan version {version!r} is not supported (this overmerge reads {VERSION}); make a new plan")
        inputs = {}
        for role in ROLES:
            rec = data.get("inputs", {}).get(role)
            if not isinstance(rec, dict) or "manifest" not in rec or "path" not in rec:
                raise InputError(f"{source}: input {role!r} is missing; make a new plan")
            inputs[role] = InputRecord(role, rec["path"], Manifest.decode(rec["manifest"]), rec.get("xattr_namespace"))
        raw_entries = data.get("entries")
        if not isinstance(raw_entries, list):
            raise InputError(f"{source}: \"entries\" must be a list")
        return cls(
            inputs=inputs,
            entries=[entry_from_json(e) for e in raw_entries],
            counts=dict(data.get("counts", {})),
            options=dict(data.get("options", {})),
            created=str(data.get("created", "")),
            tool=str(data.get("tool", "")),
        )


def count_classes(entries: Iterable[Entry], unchanged_extra: int = 0) -> dict[str, int]:
    result = {c: 0 for c in CLASSES}
    for e in entries:
        result[e.cls] += 1
    result[UNCHANGED] += unchanged_extra
    return result
