"""Build OLD / NEW / TOP trees from a golden case (``tests/cases/<name>/case.yaml``).

Shared by the case runner (tests/test_cases.py) and the apply tests. The case file
format is documented in tests/cases/README.md. Paths in a spec are percent-encoded
bytes (``%0A`` newline, ``%FF`` a raw byte); :func:`spec_path` decodes them.

TOP is made the way a user makes it: overlayfs is mounted over OLD and the case's
``user`` shell script runs inside the mount; states the kernel never produces are
then written straight into TOP from the ``upper`` section.

Apply (tests/test_apply_cases.py) reads two more keys: ``merged`` (path -> the entry
the kernel must show over NEW + new upper, ``null`` = absent; same entry syntax as
``old``/``new``) and ``merged_unresolved`` (``keep-user`` or ``take-new``: the policy
for the case's open conflicts; keep-user when omitted).
"""
from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

import yaml

from overlayfs import mounted_overlay

CASES_DIR = Path(__file__).parent / "cases"
# Fixed mtimes keep trees reproducible. OLD and NEW get different ones, as two image
# builds would (an entry's own ``mtime`` overrides): see the case
# vendor-edit-same-size-same-mtime for what equal mtimes do to a size+mtime quick check.
FIXED_MTIME = 1_600_000_000
OLD_MTIME = 1_600_000_000
NEW_MTIME = 1_700_000_000

ENTRY_KEYS = {
    "type", "content", "mode", "uid", "gid", "xattrs", "symlink", "whiteout", "opaque",
    "redirect", "metacopy", "hardlink", "rdev", "mtime",
}


@dataclass
class CaseLayers:
    """The layers of one built case: OLD, NEW and TOP (upper) plus the overlay work dir."""

    old: Path
    new: Path
    upper: Path
    work: Path
    spec: dict[str, Any]
    name: str = ""
    userxattr: bool = False
    user_output: str = ""


def spec_path(key: str | bytes) -> bytes:
    """A spec key (percent-encoded, relative) as the raw bytes path used in plans."""
    raw = key if isinstance(key, bytes) else unquote_to_bytes(str(key))
    raw = raw.strip(b"/")
    if not raw or b"\0" in raw or b".." in raw.split(b"/"):
        raise ValueError(f"bad path in case spec: {key!r}")
    return raw


def _mode(value: Any, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, int):
        return value
    text = str(value).strip().lower()
    return int(text[2:] if text.startswith("0o") else text, 8)


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogateescape")


def normalize_entry(value: Any) -> dict[str, Any] | None:
    """One spec entry as a dict with an explicit ``type``; ``None`` means absent."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        return {"type": "file", "content": _bytes(value)}
    if not isinstance(value, Mapping):
        raise ValueError(f"bad entry in case spec: {value!r}")
    unknown = set(value) - ENTRY_KEYS
    if unknown:
        raise ValueError(f"unknown keys in case entry: {sorted(unknown)}")
    entry = dict(value)
    if entry.get("whiteout"):
        entry["type"] = "whiteout"
    elif "symlink" in entry:
        entry["type"] = "symlink"
    elif "hardlink" in entry:
        entry["type"] = "hardlink"
    elif "type" not in entry:
        entry["type"] = "file"
    if entry["type"] == "file":
        entry["content"] = _bytes(entry.get("content", ""))
    return entry


def overlay_xattr_prefix(userxattr: bool) -> str:
    return "user.overlay." if userxattr else "trusted.overlay."


def _set_meta(path: Path, entry: Mapping[str, Any], default_mode: int) -> None:
    # Owner first: chown clears setuid/setgid bits set before it.
    uid, gid = entry.get("uid", 0), entry.get("gid", 0)
    os.chown(path, uid, gid, follow_symlinks=False)
    if entry["type"] != "symlink":
        os.chmod(path, _mode(entry.get("mode"), default_mode))
    for name, value in (entry.get("xattrs") or {}).items():
        os.setxattr(path, name, _bytes(value), follow_symlinks=False)


def tree_from_spec(
    spec: Mapping[str, Any] | None, root: Path, *, userxattr: bool = False, mtime: int = FIXED_MTIME
) -> Path:
    """Write the entries of ``spec`` (path -> entry) under ``root``; returns ``root``.

    Missing parent directories are created 0755 root:root. Overlay markers
    (``whiteout``, ``opaque``, ``redirect``, ``metacopy``) use ``trusted.overlay.*``,
    or ``user.overlay.*`` with ``userxattr``. All mtimes are set to FIXED_MTIME
    unless an entry names its own.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    prefix = overlay_xattr_prefix(userxattr)
    entries = {spec_path(k): normalize_entry(v) for k, v in (spec or {}).items()}
    created: list[tuple[bytes, dict[str, Any]]] = []
    # Parents before children; hard links after the files they point at.
    order = sorted(entries, key=lambda p: (entries[p] is not None and entries[p]["type"] == "hardlink", p.count(b"/"), p))
    rootb = os.fsencode(root)
    for rel in order:
        entry = entries[rel]
        if entry is None:
            continue
        path = Path(os.fsdecode(os.path.join(rootb, rel)))
        parent = path.parent
        if not parent.exists():
            parent.mkdir(parents=True, mode=0o755)
        kind = entry["type"]
        if kind == "file":
            path.write_bytes(entry["content"])
            _set_meta(path, entry, 0o644)
        elif kind == "dir":
            path.mkdir(exist_ok=True)
            _set_meta(path, entry, 0o755)
        elif kind == "symlink":
            os.symlink(_bytes(entry["symlink"]), os.fsencode(path))
            _set_meta(path, entry, 0o777)
        elif kind == "hardlink":
            os.link(os.path.join(rootb, spec_path(entry["hardlink"])), path, follow_symlinks=False)
        elif kind == "whiteout":
            os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))
            _set_meta(path, entry, 0o000)
        elif kind in ("fifo", "chardev", "blockdev"):
            fmt = {"fifo": stat.S_IFIFO, "chardev": stat.S_IFCHR, "blockdev": stat.S_IFBLK}[kind]
            major, minor = entry.get("rdev", [0, 0])
            os.mknod(path, fmt | 0o600, os.makedev(major, minor))
            _set_meta(path, entry, 0o600)
        else:
            raise ValueError(f"unknown entry type {kind!r} for {rel!r}")
        if entry.get("opaque"):
            os.setxattr(path, prefix + "opaque", b"y")
        if entry.get("redirect"):
            os.setxattr(path, prefix + "redirect", _bytes(entry["redirect"]))
        if entry.get("metacopy"):
            os.setxattr(path, prefix + "metacopy", b"", follow_symlinks=False)
        created.append((rel, entry))
    set_fixed_mtimes(root, {rel: e for rel, e in created}, mtime)
    return root


def set_fixed_mtimes(
    root: Path, entries: Mapping[bytes, Mapping[str, Any]] | None = None, mtime: int = FIXED_MTIME
) -> None:
    """Set every mtime under ``root`` to ``mtime`` (or an entry's own ``mtime``)."""
    entries = entries or {}
    rootb = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(rootb, topdown=False):
        for name in filenames + dirnames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, rootb)
            t = (entries.get(rel) or {}).get("mtime", mtime)
            os.utime(full, (t, t), follow_symlinks=False)
    os.utime(rootb, (mtime, mtime))


def load_case(case: str | Path | Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(name, spec) of a case given as its directory, its case.yaml, or a spec dict."""
    if isinstance(case, Mapping):
        return str(case.get("name", "inline")), dict(case)
    path = Path(case)
    if path.is_dir():
        path = path / "case.yaml"
    with open(path, encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: a case must be a mapping")
    return path.parent.name, spec


def build_case(case: str | Path | Mapping[str, Any], tmp_path: Path) -> CaseLayers:
    """Build OLD, NEW and TOP for a case under ``tmp_path``.

    ``case`` is a case directory, its case.yaml, or an already loaded spec. The
    overlay (if a ``user`` script is given) is always unmounted before this returns.
    """
    name, spec = load_case(case)
    options = [str(o) for o in spec.get("mount_options") or []]
    userxattr = "userxattr" in options
    tmp_path = Path(tmp_path)
    old = tree_from_spec(spec.get("old"), tmp_path / "old", mtime=OLD_MTIME)
    new = tree_from_spec(spec.get("new"), tmp_path / "new", mtime=NEW_MTIME)
    upper = tmp_path / "upper"
    work = tmp_path / "work"
    upper.mkdir()
    work.mkdir()
    output = ""
    if spec.get("user"):
        with mounted_overlay(old, tmp_path, options=options, upper=upper, work=work) as ov:
            proc = ov.run(spec["user"])  # raises with the script's stderr if it fails
            output = proc.stdout + proc.stderr
    if spec.get("upper"):
        tree_from_spec(spec["upper"], upper, userxattr=userxattr)
    return CaseLayers(old=old, new=new, upper=upper, work=work, spec=spec, name=name,
                      userxattr=userxattr, user_output=output)


def case_dirs() -> list[Path]:
    """Every golden case directory (one with a case.yaml), sorted by name."""
    return sorted(p.parent for p in CASES_DIR.glob("*/case.yaml"))


def expected_entries(spec: Mapping[str, Any]) -> dict[bytes, dict[str, Any] | None]:
    """The ``expected`` section as path bytes -> wanted fields (``None``: no change).

    A plain string is the class. Keys ``class``, ``change``, ``your_change``,
    ``vendor_change``, ``resolution`` and ``rule`` are compared when present.
    """
    out: dict[bytes, dict[str, Any] | None] = {}
    for key, want in (spec.get("expected") or {}).items():
        path = spec_path(key)
        if want is None:
            out[path] = None
        elif isinstance(want, str):
            out[path] = {"class": want}
        elif isinstance(want, Mapping):
            unknown = set(want) - {"class", "change", "your_change", "vendor_change", "resolution", "rule"}
            if unknown:
                raise ValueError(f"unknown keys in expected[{key!r}]: {sorted(unknown)}")
            out[path] = dict(want)
        else:
            raise ValueError(f"bad expectation for {key!r}: {want!r}")
    return out
