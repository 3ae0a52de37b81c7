"""Mounting overlayfs and reading which layers are mounted (I/O edge).

Used by the tests, ``overmerge demo`` and ``apply --verify``: the kernel's overlayfs
is the judge of what a layer stack shows, so we mount it for real.

Parsing of ``/proc/self/mountinfo`` is pure (:func:`parse_mountinfo`) and kept apart
from reading it (:func:`mounted_overlays`), so it can be tested with fixed text.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from overmerge.errors import MountedLayerError, OvermergeError

PathLike = str | bytes | os.PathLike

_OCTAL = re.compile(rb"\\([0-7]{3})")


@dataclass(frozen=True)
class MountInfo:
    """One line of mountinfo; the layer fields are filled for overlay mounts only."""

    mount_id: int
    mountpoint: Path
    fstype: str
    source: str
    options: tuple[str, ...]  # per-mount options (rw, relatime, ...)
    super_options: tuple[str, ...]  # filesystem options, unescaped
    lowerdirs: tuple[Path, ...] = ()  # top-most first, as overlayfs orders them
    datadirs: tuple[Path, ...] = ()  # data-only lower layers (``::`` / ``datadir+=``)
    upperdir: Path | None = None
    workdir: Path | None = None
    userxattr: bool = False

    @property
    def is_overlay(self) -> bool:
        return self.fstype == "overlay"

    @property
    def layers(self) -> tuple[Path, ...]:
        """Every directory the overlay uses as a layer (lower, data, upper, work)."""
        extra = tuple(p for p in (self.upperdir, self.workdir) if p is not None)
        return self.lowerdirs + self.datadirs + extra


def _unescape(raw: bytes) -> bytes:
    """Undo the kernel's mountinfo octal escapes (``\\040`` space, ``\\011`` tab, ...)."""
    return _OCTAL.sub(lambda m: bytes([int(m.group(1), 8)]), raw)


def _path(raw: bytes) -> Path:
    return Path(os.fsdecode(raw))


def _split_lowerdir(value: bytes) -> tuple[list[bytes], list[bytes]]:
    """Split a legacy ``lowerdir=`` value into (lower layers, data-only layers).

    Layers are separated by ``:``; ``::`` starts the data-only layers; ``\\:`` is a
    literal colon and ``\\\\`` a literal backslash inside a path.
    """
    groups: list[list[bytes]] = [[]]
    cur = bytearray()
    i = 0
    while i < len(value):
        c = value[i : i + 1]
        if c == b"\\" and i + 1 < len(value):
            cur += value[i + 1 : i + 2]
            i += 2
            continue
        if c == b":":
            groups[-1].append(bytes(cur))
            cur = bytearray()
            if value[i + 1 : i + 2] == b":":
                groups.append([])
                i += 1
            i += 1
            continue
        cur += c
        i += 1
    groups[-1].append(bytes(cur))
    lowers = [p for p in groups[0] if p]
    data = [p for g in groups[1:] for p in g if p]
    return lowers, data


def parse_mountinfo(text: str | bytes) -> list[MountInfo]:
    """Parse the text of ``/proc/<pid>/mountinfo`` (see proc(5)) into :class:`MountInfo`."""
    if isinstance(text, str):
        text = os.fsencode(text)
    mounts: list[MountInfo] = []
    for line in text.splitlines():
        fields = line.split(b" ")
        if len(fields) < 10 or b"-" not in fields[6:]:
            continue
        sep = fields.index(b"-", 6)
        if len(fields) < sep + 4:
            continue
        fstype = os.fsdecode(_unescape(fields[sep + 1]))
        source = os.fsdecode(_unescape(fields[sep + 2]))
        # Escaped commas are octal (\054), so splitting on literal commas is safe.
        raw_super = fields[sep + 3].split(b",")
        lowers: list[bytes] = []
        data: list[bytes] = []
        upper = work = None
        userxattr = False
        super_options = []
        for opt in raw_super:
            key, eq, value = opt.partition(b"=")
            value = _unescape(value)
            super_options.append(os.fsdecode(key + eq + value))
            if fstype != "overlay":
                continue
            if key == b"lowerdir":
                lo, da = _split_lowerdir(value)
                lowers += lo
                data += da
            elif key == b"lowerdir+":
                lowers.append(value)
            elif key == b"datadir+":
                data.append(value)
            elif key == b"upperdir":
                upper = value
            elif key == b"workdir":
                work = value
            elif key == b"userxattr":
                userxattr = True
        mounts.append(
            MountInfo(
                mount_id=int(fields[0]),
                mountpoint=_path(_unescape(fields[4])),
                fstype=fstype,
                source=source,
                options=tuple(os.fsdecode(o) for o in fields[5].split(b",")),
                super_options=tuple(super_options),
                lowerdirs=tuple(_path(p) for p in lowers),
                datadirs=tuple(_path(p) for p in data),
                upperdir=_path(upper) if upper is not None else None,
                workdir=_path(work) if work is not None else None,
                userxattr=userxattr,
            )
        )
    return mounts


def mounted_overlays(mountinfo_path: PathLike = "/proc/self/mountinfo") -> list[MountInfo]:
    """The overlay mounts visible to this process."""
    with open(mountinfo_path, "rb") as f:
        return [m for m in parse_mountinfo(f.read()) if m.is_overlay]


def _real(path: PathLike) -> Path:
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    return Path(os.path.realpath(path))


def _related(a: Path, b: Path) -> bool:
    """a and b are the same directory, or one lies inside the other."""
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


def find_layer_user(path: PathLike, overlays: Sequence[MountInfo]) -> MountInfo | None:
    """Pure part of :func:`layer_in_use`: match ``path`` against given overlay mounts."""
    target = _real(path)
    for m in overlays:
        if target == m.mountpoint:
            return m
        if any(_related(target, layer) for layer in m.layers):
            return m
    return None


def layer_in_use(path: PathLike, mountinfo_path: PathLike = "/proc/self/mountinfo") -> MountInfo | None:
    """The mounted overlay that uses ``path`` (or a directory inside or above it) as a
    lower, upper or work dir, or whose mountpoint ``path`` is; ``None`` if there is none."""
    return find_layer_user(path, mounted_overlays(mountinfo_path))


def check_not_mounted(path: PathLike, role: str) -> None:
    """Refuse a layer that a mounted overlay uses: the kernel forbids changing it, and
    reading it while mounted sees a moving target."""
    mount = layer_in_use(path)
    if mount is not None:
        raise MountedLayerError(
            f"{os.fsdecode(os.fspath(path))}: {role} is in use by the overlay mounted on {mount.mountpoint}; "
            "unmount it first (a layer under a mounted overlay must not be read or changed)"
        )


# --- mounting ---------------------------------------------------------------------------


def _str(path: PathLike) -> str:
    return os.fsdecode(os.fspath(path))


def overlay_options(
    lowerdirs: Sequence[PathLike],
    *,
    upperdir: PathLike | None = None,
    workdir: PathLike | None = None,
    options: Sequence[str] = (),
) -> str:
    """The ``-o`` string for ``mount -t overlay`` (lower layers top-most first)."""
    if not lowerdirs:
        raise OvermergeError("an overlay needs at least one lower directory")
    if (upperdir is None) != (workdir is None):
        raise OvermergeError("an overlay needs both an upper and a work directory, or neither")
    dirs = [_str(p) for p in lowerdirs]
    extra = [_str(p) for p in (upperdir, workdir) if p is not None]
    for d in dirs + extra:
        if "," in d:
            # mount(8) splits its option string on commas and has no escape for them.
            raise OvermergeError(f"cannot mount an overlay layer whose path has a comma: {d!r}")
    if any(":" in d for d in dirs):
        opts = [f"lowerdir+={d}" for d in dirs]  # kernel >= 6.8; no escaping needed
    else:
        opts = ["lowerdir=" + ":".join(dirs)]
    if upperdir is not None:
        opts += [f"upperdir={_str(upperdir)}", f"workdir={_str(workdir)}"]
    opts += list(options)
    return ",".join(opts)


def mount_overlay(
    lowerdirs: Sequence[PathLike],
    mountpoint: PathLike,
    *,
    upperdir: PathLike | None = None,
    workdir: PathLike | None = None,
    options: Sequence[str] = (),
    readonly: bool = False,
) -> None:
    """Mount overlayfs at ``mountpoint`` with ``mount -t overlay``.

    ``lowerdirs`` are listed top-most first. Without ``upperdir`` the mount is read-only
    (the kernel requires it). Raises :class:`OvermergeError` with mount's message.
    """
    opts = overlay_options(lowerdirs, upperdir=upperdir, workdir=workdir, options=options)
    if readonly:
        opts = "ro," + opts
    cmd = ["mount", "-t", "overlay", "overlay", "-o", opts, _str(mountpoint)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    except OSError as exc:
        raise OvermergeError(f"cannot run mount: {exc.strerror}") from exc
    if proc.returncode != 0:
        detail = " ".join(proc.stderr.split()) or f"exit status {proc.returncode}"
        raise OvermergeError(f"cannot mount overlay on {_str(mountpoint)}: {detail}")


def umount(mountpoint: PathLike, lazy_fallback: bool = True) -> None:
    """Unmount ``mountpoint``; if it is busy and ``lazy_fallback``, detach it lazily."""
    target = _str(mountpoint)
    proc = subprocess.run(["umount", target], capture_output=True, text=True, errors="replace")
    if proc.returncode == 0:
        return
    if lazy_fallback:
        lazy = subprocess.run(["umount", "-l", target], capture_output=True, text=True, errors="replace")
        if lazy.returncode == 0:
            return
    detail = " ".join(proc.stderr.split()) or f"exit status {proc.returncode}"
    raise OvermergeError(f"cannot unmount {target}: {detail}")


def is_mountpoint(path: PathLike, mountinfo_path: PathLike = "/proc/self/mountinfo") -> bool:
    target = _real(path)
    with open(mountinfo_path, "rb") as f:
        return any(m.mountpoint == target for m in parse_mountinfo(f.read()))


@contextlib.contextmanager
def overlay(
    lowerdirs: Sequence[PathLike],
    mountpoint: PathLike,
    *,
    upperdir: PathLike | None = None,
    workdir: PathLike | None = None,
    options: Sequence[str] = (),
    readonly: bool = False,
) -> Iterator[Path]:
    """Mount overlayfs for the ``with`` block and always unmount it, even on exceptions."""
    mount_overlay(
        lowerdirs, mountpoint, upperdir=upperdir, workdir=workdir, options=options, readonly=readonly
    )
    try:
        yield Path(_str(mountpoint))
    finally:
        umount(mountpoint)


# --- capability probe -------------------------------------------------------------------

_PROBE_SCRIPT = (
    'mount -t overlay overlay -o "lowerdir=$1/l,upperdir=$1/u,workdir=$1/w$2" "$1/m" '
    '&& umount "$1/m"'
)


def _probe(tmp: Path, *, userns: bool) -> tuple[bool, str]:
    for d in ("l", "u", "w", "m"):
        (tmp / d).mkdir(exist_ok=True)
    extra = ",userxattr" if userns else ""
    cmd = ["sh", "-c", _PROBE_SCRIPT, "probe", str(tmp), extra]
    if userns:
        if shutil.which("unshare") is None:
            return False, "unshare(1) is not installed"
        cmd = ["unshare", "-rm", *cmd]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    return proc.returncode == 0, " ".join(proc.stderr.split())


def can_mount_overlay() -> tuple[bool, str]:
    """Whether this process can mount overlayfs, directly (root) or in a user namespace
    (``unshare -rm`` with ``-o userxattr``); the text says which, or why not.

    It tries a real mount in a temporary directory: capabilities alone don't tell
    (containers, seccomp, LSMs, sysctls on user namespaces)."""
    with tempfile.TemporaryDirectory(prefix="overmerge-probe-") as tmp:
        if os.geteuid() == 0:
            ok, err = _probe(Path(tmp), userns=False)
            if ok:
                return True, "running as root: can mount overlayfs directly"
            root_err = err
        else:
            root_err = "not root"
        ok, err = _probe(Path(tmp), userns=True)
        if ok:
            return True, (
                f"{root_err}; can mount overlayfs in a user namespace (unshare -rm, -o userxattr)"
            )
        return False, f"cannot mount overlayfs: {root_err}; in a user namespace: {err or 'failed'}"
