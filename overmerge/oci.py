"""Tar members and OCI layer tars (design.md §4): map an overlay upper to and from an
OCI layer, and the PAX tar writing that ``overmerge flatten --format tar`` shares.

OCI ↔ overlay mapping:

* whiteout (character device 0/0)  ↔  empty regular file ``DIR/.wh.NAME``;
* opaque directory (``NS.overlay.opaque=y``)  ↔  the directory plus an empty
  ``DIR/.wh..wh..opq`` member;
* ``overlay.*`` xattrs (both namespaces) are never written to a layer tar and never
  taken from one; every other xattr travels as a PAX ``SCHILY.xattr.NAME`` record;
* hard links inside the layer ↔ tar link members.

An upper that still has ``redirect`` or ``metacopy`` xattrs depends on OLD and cannot
be a layer tar: ``overmerge apply`` writes a new upper that never has them.

Reading a layer tar never follows a symlink: every member name (and hard-link
target) is validated like a plan path, and an entry is only created under
directories this extraction created itself.
"""
from __future__ import annotations

import gzip
import io
import os
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from overmerge import fsutil, paths
from overmerge.errors import InputError, UnsafePathError
from overmerge.layers import OVERLAY_XATTR_PREFIXES, open_nofollow, read_upper
from overmerge.model import BLOCKDEV, CHARDEV, DIR, FIFO, FILE, SOCKET, SYMLINK, Node

WHITEOUT_PREFIX = b".wh."
OPAQUE_MARKER = b".wh..wh..opq"
XATTR_PAX = "SCHILY.xattr."
ENCODING = "utf-8"
ERRORS = "surrogateescape"  # names and values are bytes: non-UTF-8 round-trips
CHUNK = 1 << 20

_TAR_TYPES = {DIR: tarfile.DIRTYPE, SYMLINK: tarfile.SYMTYPE, CHARDEV: tarfile.CHRTYPE,
              BLOCKDEV: tarfile.BLKTYPE, FIFO: tarfile.FIFOTYPE, FILE: tarfile.REGTYPE}


class RawPaxInfo(tarfile.TarInfo):
    """PAX records written as raw bytes, as GNU tar and star write them.

    The standard library marks a header holding non-UTF-8 bytes ``hdrcharset=BINARY``,
    which GNU tar warns about and ignores; xattr values (capabilities, ACLs) are binary.
    """

    @classmethod
    def _create_pax_generic_header(cls, pax_headers, type, encoding):  # noqa: A002 (stdlib signature)
        records = b""
        for keyword, value in pax_headers.items():
            key = keyword.encode(ENCODING, ERRORS)
            raw = value.encode(ENCODING, ERRORS)
            length = len(key) + len(raw) + 3  # ' ' + '=' + '\n'
            n = p = 0
            while True:
                n = length + len(str(p))
                if n == p:
                    break
                p = n
            records += str(p).encode("ascii") + b" " + key + b"=" + raw + b"\n"
        info = {"name": "././@PaxHeader", "type": type, "size": len(records), "magic": tarfile.POSIX_MAGIC}
        return cls._create_header(info, tarfile.USTAR_FORMAT, "ascii", "replace") + cls._create_payload(records)


def _text(raw: bytes) -> str:
    return raw.decode(ENCODING, ERRORS)


def _raw(text: str) -> bytes:
    return text.encode(ENCODING, ERRORS)


def is_overlay_xattr(name: bytes) -> bool:
    return name.startswith(OVERLAY_XATTR_PREFIXES)


def tar_info(name: bytes, node: Node, *, link_to: bytes | None = None, size: int | None = None) -> tarfile.TarInfo:
    """A PAX tar member for ``node`` at ``name`` (numeric owner, empty uname/gname, xattrs
    except overlay.* as ``SCHILY.xattr.*``). ``link_to`` makes it a hard-link member."""
    info = RawPaxInfo(_text(name) if name else ".")
    info.uid, info.gid = node.uid, node.gid
    info.uname = info.gname = ""
    info.mode = node.mode
    info.mtime = node.mtime_ns // 1_000_000_000
    if link_to is not None:
        info.type = tarfile.LNKTYPE
        info.linkname = _text(link_to)
    else:
        try:
            info.type = _TAR_TYPES[node.kind]
        except KeyError:
            raise InputError(f"{paths.display(name)}: a {node.kind} cannot be stored in a tar") from None
        if node.kind == FILE:
            info.size = node.size if size is None else size
        elif node.kind == SYMLINK:
            assert node.target is not None
            info.linkname = _text(node.target)
        elif node.kind in (CHARDEV, BLOCKDEV):
            info.devmajor, info.devminor = os.major(node.rdev), os.minor(node.rdev)
    info.pax_headers = {XATTR_PAX + _text(k): _text(v) for k, v in node.xattrs if not is_overlay_xattr(k)}
    return info


def open_source(node: Node) -> BinaryIO:
    """The content of a FILE node for streaming into a tar; refuses a changed file."""
    assert node.source is not None
    try:
        f = open_nofollow(node.source)
    except OSError as exc:
        raise InputError(f"{os.fsdecode(node.source)}: cannot read: {exc.strerror}") from exc
    if os.fstat(f.fileno()).st_size != node.size:
        f.close()
        raise InputError(f"{os.fsdecode(node.source)}: changed while being written out; make a new plan")
    return f


class TarWriter:
    """A PAX tar written to a temporary file beside ``target``, fsynced and renamed into place."""

    def __init__(self, target: bytes) -> None:
        self.target = target
        parent = os.path.dirname(target) or b"."
        fd, self.tmp = tempfile.mkstemp(prefix=os.path.basename(target) + b".overmerge-tmp-", dir=parent)
        self.file = os.fdopen(fd, "wb")
        self.tar = tarfile.open(fileobj=self.file, mode="w", format=tarfile.PAX_FORMAT,
                                encoding=ENCODING, errors=ERRORS)
        self.members = 0

    def add(self, info: tarfile.TarInfo, data: BinaryIO | None = None) -> None:
        self.tar.addfile(info, data)
        self.members += 1

    def add_node(self, name: bytes, node: Node, content: bytes | None = None, link_to: bytes | None = None) -> None:
        if link_to is not None:
            self.add(tar_info(name, node, link_to=link_to))
        elif node.kind == FILE and content is not None:
            self.add(tar_info(name, node, size=len(content)), io.BytesIO(content))
        elif node.kind == FILE:
            with open_source(node) as f:
                self.add(tar_info(name, node), f)
        else:
            self.add(tar_info(name, node))

    def commit(self) -> None:
        self.tar.close()
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.rename(self.tmp, self.target)
        fsutil.fsync_path(os.path.dirname(self.target) or b".")

    def abort(self) -> None:
        try:
            self.tar.close()
        except Exception:  # noqa: BLE001 - the tar is being thrown away
            pass
        self.file.close()
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass


def link_key(node: Node) -> tuple | None:
    """Names sharing one inode with the same metadata become one hard-link group."""
    if node.kind == FILE and node.inode is not None and node.nlink > 1:
        return (node.inode, node.uid, node.gid, node.mode, node.xattrs)
    return None


# ---------------------------------------------------------------------------
# upper → OCI layer tar


@dataclass
class OciStats:
    members: int = 0
    whiteouts: int = 0
    opaque: int = 0
    hardlinks: int = 0
    skipped_sockets: list[bytes] = field(default_factory=list)


def upper_to_oci(upper_dir: bytes, out_tar: bytes) -> OciStats:
    """Write the overlay upper ``upper_dir`` as an OCI layer tar at ``out_tar``."""
    upper = read_upper(upper_dir)
    for rel, e in upper.entries.items():
        if e.redirect is not None or e.metacopy:
            what = "redirect" if e.redirect is not None else "metacopy"
            raise InputError(
                f"{os.fsdecode(upper_dir + b'/' + rel)}: overlay {what} xattr — this upper needs its OLD layer "
                "and cannot be an OCI layer; run `overmerge apply` first (its new upper never has them)"
            )
        if rel and paths.name_of(rel).startswith(WHITEOUT_PREFIX):
            raise InputError(f"{os.fsdecode(upper_dir + b'/' + rel)}: a name starting with .wh. "
                             "would read as a whiteout in an OCI layer; rename it first")
    stats = OciStats()
    writer = TarWriter(out_tar)
    links: dict[tuple, bytes] = {}
    try:
        for rel in sorted(upper.entries, key=_path_key):
            e = upper.entries[rel]
            node = e.node
            if e.whiteout:
                marker = paths.join(paths.parent_of(rel), WHITEOUT_PREFIX + paths.name_of(rel))
                writer.add_node(marker, Node(FILE, 0, node.uid, node.gid, mtime_ns=node.mtime_ns), b"")
                stats.whiteouts += 1
                continue
            if node.kind == SOCKET:
                stats.skipped_sockets.append(rel)
                continue
            key = link_key(node)
            if key is not None and key in links:
                writer.add_node(rel, node, link_to=links[key])
                stats.hardlinks += 1
                continue
            if key is not None:
                links[key] = rel
            writer.add_node(rel, node)
            if e.opaque and rel:
                writer.add_node(paths.join(rel, OPAQUE_MARKER), Node(FILE, 0, 0, 0, mtime_ns=node.mtime_ns), b"")
                stats.opaque += 1
    except BaseException:
        writer.abort()
        raise
    writer.commit()
    stats.members = writer.members
    return stats


def _path_key(path: bytes) -> tuple[bytes, ...]:
    return tuple(path.split(b"/")) if path else ()


# ---------------------------------------------------------------------------
# OCI layer tar → upper


@dataclass
class ExtractStats:
    members: int = 0
    whiteouts: int = 0
    opaque: int = 0
    hardlinks: int = 0


def _open_layer(layer_tar: bytes) -> BinaryIO:
    try:
        f = open(layer_tar, "rb")  # noqa: SIM115 - closed by the caller
    except OSError as exc:
        raise InputError(f"{os.fsdecode(layer_tar)}: cannot open the layer tar: {exc.strerror}") from exc
    magic = f.read(4)
    f.seek(0)
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    if magic == b"\x28\xb5\x2f\xfd":
        f.close()
        raise InputError(f"{os.fsdecode(layer_tar)}: zstd-compressed layer; decompress it first (zstd -d)")
    return f


def member_path(name: str, layer: bytes) -> bytes:
    """A member name as a safe relative path (b"" for the root), or UnsafePathError."""
    raw = _raw(name)
    while raw.startswith(b"./"):
        raw = raw[2:]
    if raw in (b".", b"") and not _raw(name).startswith(b"/"):
        return b""
    if raw.startswith(b"/"):
        raise UnsafePathError(f"{os.fsdecode(layer)}: member {paths.display(raw)} is absolute; refusing the layer")
    try:
        return paths.validate(raw.rstrip(b"/"))
    except UnsafePathError as exc:
        raise UnsafePathError(f"{os.fsdecode(layer)}: unsafe member name: {exc.message}; refusing the layer") from None


def _member_node(member: tarfile.TarInfo) -> Node:
    kind = {tarfile.DIRTYPE: DIR, tarfile.SYMTYPE: SYMLINK, tarfile.CHRTYPE: CHARDEV,
            tarfile.BLKTYPE: BLOCKDEV, tarfile.FIFOTYPE: FIFO}.get(member.type, FILE)
    xattrs = []
    for key, value in member.pax_headers.items():
        if key.startswith(XATTR_PAX):
            name = _raw(key[len(XATTR_PAX):])
            if not is_overlay_xattr(name):
                xattrs.append((name, _raw(value)))
    return Node(
        kind=kind,
        mode=member.mode & 0o7777,
        uid=member.uid,
        gid=member.gid,
        size=member.size if kind == FILE else 0,
        mtime_ns=int(member.mtime * 1_000_000_000),
        target=_raw(member.linkname) if kind == SYMLINK else None,
        rdev=os.makedev(member.devmajor, member.devminor) if kind in (CHARDEV, BLOCKDEV) else 0,
        xattrs=tuple(sorted(xattrs)),
    )


class _Extractor:
    """Creates entries only under directories it made itself; remembers what it made."""

    def __init__(self, stage: bytes, layer: bytes, namespace: str) -> None:
        self.stage = stage
        self.layer = layer
        self.opaque_name = namespace + ".overlay.opaque"
        self.made: dict[bytes, str] = {b"": DIR}  # rel path -> kind this extraction created
        self.dirs: dict[bytes, Node | None] = {b"": None}  # dir -> its member's node (None: implicit)
        self.stats = ExtractStats()

    def abs(self, rel: bytes) -> bytes:
        return self.stage + b"/" + rel if rel else self.stage

    def parent_dir(self, rel: bytes) -> None:
        """Make sure every ancestor of ``rel`` is a directory made here (never a symlink)."""
        parent = paths.parent_of(rel)
        if not rel or parent in self.dirs:
            return
        kind = self.made.get(parent)
        if kind is not None:
            raise UnsafePathError(
                f"{os.fsdecode(self.layer)}: member {paths.display(rel)} goes through a {kind} "
                f"({paths.display(parent)}); refusing the layer (a member must never be written through a link)"
            )
        self.parent_dir(parent)
        os.mkdir(self.abs(parent), 0o755)
        self.made[parent] = DIR
        self.dirs[parent] = None

    def fresh(self, rel: bytes) -> None:
        if rel in self.made:
            raise InputError(f"{os.fsdecode(self.layer)}: member {paths.display(rel)} appears twice "
                             "(or next to its own whiteout); refusing the layer")

    def member(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        rel = member_path(member.name, self.layer)
        name = paths.name_of(rel)
        self.stats.members += 1
        if rel and name == OPAQUE_MARKER:
            parent = paths.parent_of(rel)
            if not parent:
                return  # the layer root cannot be opaque in an upper; nothing lies below it here
            if parent not in self.dirs:
                self.parent_dir(rel)
            os.setxattr(self.abs(parent), self.opaque_name, b"y", follow_symlinks=False)
            self.stats.opaque += 1
            return
        if rel and name.startswith(WHITEOUT_PREFIX):
            hidden = paths.join(paths.parent_of(rel), name[len(WHITEOUT_PREFIX):])
            paths.validate(hidden)
            self.parent_dir(hidden)
            self.fresh(hidden)
            fsutil.make_whiteout(self.abs(hidden))
            self.made[hidden] = "whiteout"
            self.stats.whiteouts += 1
            return
        if member.type == tarfile.LNKTYPE:
            self._hardlink(rel, member)
            return
        node = _member_node(member)
        if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE, tarfile.DIRTYPE,
                               tarfile.SYMTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE) \
                and not member.issparse():
            raise InputError(f"{os.fsdecode(self.layer)}: member {paths.display(rel)} has unsupported tar type "
                             f"{member.type!r}; refusing the layer")
        if node.kind == DIR:
            if rel in self.dirs:
                self.dirs[rel] = node  # implicit parent made earlier, or the root: metadata at the end
                return
            self.parent_dir(rel)
            self.fresh(rel)
            os.mkdir(self.abs(rel), 0o700)
            self.made[rel] = DIR
            self.dirs[rel] = node
            return
        self.parent_dir(rel)
        self.fresh(rel)
        target = self.abs(rel)
        if node.kind == FILE:
            self._file(tar, member, target, node)
        else:
            fsutil.create_entry(target, node)
        self.made[rel] = node.kind

    def _file(self, tar: tarfile.TarFile, member: tarfile.TarInfo, target: bytes, node: Node) -> None:
        src = tar.extractfile(member)
        assert src is not None
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(target, flags, 0o600)
        try:
            while True:
                chunk = src.read(CHUNK)
                if not chunk:
                    break
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        fsutil.set_meta(target, node)

    def _hardlink(self, rel: bytes, member: tarfile.TarInfo) -> None:
        try:
            source = member_path(member.linkname, self.layer)
        except UnsafePathError as exc:
            raise UnsafePathError(f"{exc.message} (hard-link target of {paths.display(rel)})") from None
        kind = self.made.get(source)
        if not source or kind is None or kind in (DIR, "whiteout"):
            raise InputError(f"{os.fsdecode(self.layer)}: hard link {paths.display(rel)} points at "
                             f"{paths.display(source) or '/'}, which is not an earlier non-directory member; "
                             "refusing the layer")
        self.parent_dir(rel)
        self.fresh(rel)
        fsutil.link(self.abs(source), self.abs(rel))
        self.made[rel] = kind
        self.stats.hardlinks += 1

    def finish(self) -> None:
        for rel in sorted(self.dirs, key=_path_key, reverse=True):
            node = self.dirs[rel]
            if node is None:  # a parent the tar did not list: as tar(1) makes it
                node = Node(DIR, 0o755, 0, 0)
            fsutil.set_meta(self.abs(rel), node, mtime=False)
            fsutil.finish_dir(self.abs(rel), node)


def _members(tar: tarfile.TarFile, layer: bytes) -> Iterator[tarfile.TarInfo]:
    try:
        yield from tar
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as exc:
        raise InputError(f"{os.fsdecode(layer)}: not a readable tar layer: {exc}") from exc


def oci_to_upper(layer_tar: bytes, out_dir: bytes, namespace: str = "trusted") -> ExtractStats:
    """Turn an OCI layer tar (plain or gzip) into an overlay upper at ``out_dir``.

    ``out_dir`` must not exist or be empty; the upper is staged beside it and renamed
    into place, so a refused layer leaves nothing behind.
    """
    if namespace not in ("trusted", "user"):
        raise InputError(f"unknown overlay xattr namespace {namespace!r}; use trusted or user")
    out_dir = os.path.abspath(out_dir).rstrip(b"/") or b"/"
    if os.path.lexists(out_dir):
        if not os.path.isdir(out_dir) or os.path.islink(out_dir) or os.listdir(out_dir):
            raise InputError(f"{os.fsdecode(out_dir)}: already exists and is not an empty directory; "
                             "choose a new output directory or remove it")
    parent = os.path.dirname(out_dir)
    if not os.path.isdir(parent):
        raise InputError(f"{os.fsdecode(out_dir)}: parent directory does not exist; create it first")
    stage = tempfile.mkdtemp(prefix=os.path.basename(out_dir) + b".overmerge-stage-", dir=parent)
    try:
        with _open_layer(layer_tar) as f:
            try:
                tar = tarfile.open(fileobj=f, mode="r:", encoding=ENCODING, errors=ERRORS)
            except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as exc:
                raise InputError(f"{os.fsdecode(layer_tar)}: not a tar layer: {exc}") from exc
            with tar:
                ex = _Extractor(stage, layer_tar, namespace)
                for member in _members(tar, layer_tar):
                    ex.member(tar, member)
        ex.finish()
        fsutil.fsync_dirs(stage)
        os.rename(stage, out_dir)
        fsutil.fsync_path(parent)
    except BaseException:
        fsutil.remove_tree(stage)
        raise
    return ex.stats


__all__ = ["ExtractStats", "OciStats", "TarWriter", "link_key", "member_path", "oci_to_upper", "tar_info",
           "upper_to_oci"]
