"""Validation of relative paths from plans and layers (design.md §7). Pure.

Paths are bytes relative to a layer root, without a leading slash; the root
itself is b"". Every path read from a plan is validated before use.
"""
from __future__ import annotations

import base64

from overmerge.errors import UnsafePathError

MAX_PATH = 1 << 16  # generous: very long paths must round-trip, but not unbounded


def validate(path: bytes) -> bytes:
    """Return ``path`` if it is a safe relative path, else raise UnsafePathError."""
    if not isinstance(path, bytes):
        raise UnsafePathError(f"path {path!r} is not bytes")
    shown = display(path)
    if not path:
        raise UnsafePathError("empty path in plan or layer")
    if len(path) > MAX_PATH:
        raise UnsafePathError(f"path too long ({len(path)} bytes): {shown[:80]}...")
    if b"\0" in path:
        raise UnsafePathError(f"path contains a NUL byte: {shown}")
    if path.startswith(b"/"):
        raise UnsafePathError(f"path is absolute: {shown}; plan paths are relative to the layer root")
    for part in path.split(b"/"):
        if part in (b"", b".", b".."):
            raise UnsafePathError(f"path has an empty, '.' or '..' part: {shown}")
    return path


def join(parent: bytes, name: bytes) -> bytes:
    return name if not parent else parent + b"/" + name


def parent_of(path: bytes) -> bytes:
    i = path.rfind(b"/")
    return b"" if i < 0 else path[:i]


def name_of(path: bytes) -> bytes:
    return path[path.rfind(b"/") + 1 :]


def is_under(path: bytes, root: bytes) -> bool:
    """True if ``path`` is strictly below ``root`` (b"" is the layer root)."""
    if not root:
        return bool(path)
    return path.startswith(root + b"/")


def overlaps(a: bytes, b: bytes) -> bool:
    """True if absolute paths ``a`` and ``b`` are the same or one lies inside the other."""
    a, b = a.rstrip(b"/") or b"/", b.rstrip(b"/") or b"/"
    return a == b or a.startswith(b.rstrip(b"/") + b"/") or b.startswith(a.rstrip(b"/") + b"/")


def display(path: bytes) -> str:
    """A one-line printable form: UTF-8 where valid, \\xNN escapes otherwise, newlines escaped."""
    text = path.decode("utf-8", "backslashreplace")
    return text.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def to_json(path: bytes) -> dict[str, str]:
    """JSON fields for a path: ``path`` always; ``path_b64`` when it is not plain UTF-8 text."""
    try:
        text = path.decode("utf-8")
    except UnicodeDecodeError:
        return {"path": display(path), "path_b64": base64.b64encode(path).decode("ascii")}
    return {"path": text}


def from_json(entry: dict) -> bytes:
    """Inverse of ``to_json``; validates the result."""
    raw = entry.get("path_b64")
    if raw is not None:
        try:
            path = base64.b64decode(raw, validate=True)
        except ValueError as exc:
            raise UnsafePathError(f"bad path_b64 in plan: {raw!r}") from exc
    else:
        text = entry.get("path")
        if not isinstance(text, str):
            raise UnsafePathError(f"plan entry without a path: {entry!r:.80}")
        path = text.encode("utf-8")
    return validate(path)
