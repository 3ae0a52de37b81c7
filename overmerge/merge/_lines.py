"""Byte-line helpers shared by the line-based strategies (pure)."""
from __future__ import annotations


def split_lines(data: bytes) -> list[bytes]:
    """Split on b"\\n" only, keeping line endings.

    ``bytes.splitlines`` would also split on a lone ``\\r``, which is ordinary
    content in some files.
    """
    if not data:
        return []
    if b"\r" not in data:
        # bytes.splitlines breaks only at \n, \r and \r\n (unlike str's): same result, in C.
        return data.splitlines(keepends=True)
    parts = data.split(b"\n")
    lines = [p + b"\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def strip_eol(line: bytes) -> bytes:
    """The line without its ``\\n`` or ``\\r\\n``."""
    if line.endswith(b"\r\n"):
        return line[:-2]
    if line.endswith(b"\n"):
        return line[:-1]
    return line


def detect_eol(*versions: bytes) -> bytes:
    """The line ending to use: CRLF if the first version with a newline uses it."""
    for data in versions:
        i = data.find(b"\n")
        if i >= 0:
            return b"\r\n" if i > 0 and data[i - 1 : i] == b"\r" else b"\n"
    return b"\n"


def ends_with_newline(data: bytes) -> bool:
    return data.endswith(b"\n")


def final_newline(old: bytes, yours: bytes, new: bytes) -> bool:
    """Three-way merge of the "file ends with a newline" flag.

    An empty file has no last line, so it expresses no convention either way.
    """
    o, y, n = (ends_with_newline(v) if v else None for v in (old, yours, new))
    if y is None:
        return n if n is not None else True
    if n is None:
        return y
    return n if y == o else y


def logical_lines(data: bytes) -> list[bytes]:
    """Lines without their endings (the structured strategies work on these)."""
    if not data:
        return []
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    if b"\r" not in data:
        return lines
    return [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]
