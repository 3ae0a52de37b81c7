"""Reading layers from disk: plain trees (OLD, NEW) and an overlayfs upperdir (TOP).

Never follows a symlink: every stat is an lstat, every xattr call uses
follow_symlinks=False, directories are opened relative to nothing but their
own walked path. Names are bytes throughout.
"""
from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from overmerge import paths
from overmerge.errors import InputError
from overmerge.model import (
    CHARDEV,
    DIR,
    FILE,
    REMOVED,
    RENAMED,
    SYMLINK,
    TYPE,
    Node,
    Tree,
    UserView,
    kind_of_mode,
)

OVERLAY_XATTR_PREFIXES = (b"trusted.overlay.", b"user.overlay.")
CHUNK = 1 << 20


def _fail(path: bytes, what: str, exc: OSError | None = None) -> InputError:
    detail = f": {exc.strerror}" if exc is not None and exc.strerror else ""
    return InputError(f"{os.fsdecode(path)}: {what}{detail}")


def read_xattrs(path: bytes) -> dict[bytes, bytes]:
    """All xattrs of ``path`` (not following symlinks), names and values as bytes."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return {}
        raise _fail(path, "cannot list extended attributes", exc) from exc
    result: dict[bytes, bytes] = {}
    for name in names:
        try:
            result[os.fsencode(name)] = os.getxattr(path, name, follow_symlinks=False)
        except OSError as exc:
            if exc.errno == errno.ENODATA:
                continue  # removed while we looked
            raise _fail(path, f"cannot read extended attribute {name}", exc) from exc
    return result


def node_from_stat(path: bytes, st: os.stat_result, xattrs: dict[bytes, bytes]) -> Node:
    kind = kind_of_mode(st.st_mode)
    ordinary = tuple(
        sorted((k, v) for k, v in xattrs.items() if not k.startswith(OVERLAY_XATTR_PREFIXES))
    ) if xattrs else ()
    target = None
    if kind == SYMLINK:
        try:
            target = os.readlink(path)
        except OSError as exc:
            raise _fail(path, "cannot read symlink", exc) from exc
    return Node(
        kind=kind,
        mode=stat.S_IMODE(st.st_mode),
        uid=st.st_uid,
        gid=st.st_gid,
        size=st.st_size if kind in (FILE, SYMLINK) else 0,
        mtime_ns=st.st_mtime_ns,
        target=target,
        rdev=st.st_rdev if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else 0,
        xattrs=ordinary,
        source=path if kind == FILE else None,
        inode=(st.st_dev, st.st_ino),
        nlink=st.st_nlink,
    )


@dataclass(frozen=True, slots=True)
class RawEntry:
    path: bytes  # relative
    abspath: bytes
    st: os.stat_result
    xattrs: dict[bytes, bytes]


def check_root(root: str | bytes | os.PathLike, role: str, flag: str) -> bytes:
    """The absolute, real path of a layer root, or a one-line error naming it."""
    raw = os.fsencode(root)
    try:
        st = os.stat(raw)
    except FileNotFoundError:
        raise InputError(f"{role} {os.fsdecode(raw)}: no such directory; pass an existing directory to {flag}") from None
    except OSError as exc:
        raise _fail(raw, f"cannot open {role}", exc) from exc
    if not stat.S_ISDIR(st.st_mode):
        raise InputError(f"{role} {os.fsdecode(raw)}: not a directory; {flag} takes a directory")
    return os.path.realpath(raw)


def walk(root: bytes) -> Iterator[RawEntry]:
    """Every entry below ``root`` (root first as b""), parents before children, sorted by name."""
    try:
        st = os.lstat(root)
    except OSError as exc:
        raise _fail(root, "cannot stat", exc) from exc
    yield RawEntry(b"", root, st, read_xattrs(root))
    stack: list[bytes] = [b""]
    while stack:
        rel = stack.pop()
        absdir = root + b"/" + rel if rel else root
        try:
            with os.scandir(absdir) as it:
                names = sorted(e.name for e in it)
        except OSError as exc:
            raise _fail(absdir, "cannot read directory", exc) from exc
        subdirs = []
        for name in names:
            path = paths.join(rel, name)
            abspath = root + b"/" + path
            try:
                st = os.lstat(abspath)
            except OSError as exc:
                raise _fail(abspath, "cannot stat", exc) from exc
            yield RawEntry(path, abspath, st, read_xattrs(abspath))
            if stat.S_ISDIR(st.st_mode):
                subdirs.append(path)
        stack.extend(reversed(subdirs))


def fingerprint(st: os.stat_result, *, root: bool = False) -> bytes:
    """What a plan remembers of an entry to notice a later change (ctime catches touch -r).

    The layer root's ctime is left out: renaming the root itself (apply --in-place,
    rollback) changes it without changing anything in the layer."""
    ctime = b"-" if root else b"%d" % st.st_ctime_ns
    return b"%o:%d:%d:%d:%d:%s:%d" % (
        st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, ctime, st.st_ino,
    )


def read_tree(root: bytes, manifest: list[tuple[bytes, bytes]] | None = None) -> Tree:
    """Walk a plain tree (OLD or NEW); append (path, fingerprint) to ``manifest`` if given."""
    nodes: dict[bytes, Node] = {}
    children: dict[bytes, list[bytes]] = {}
    for e in walk(root):
        if manifest is not None:
            manifest.append((e.path, fingerprint(e.st, root=not e.path)))
        node = node_from_stat(e.abspath, e.st, e.xattrs)
        nodes[e.path] = node
        if node.kind == DIR:
            children[e.path] = []
        if e.path:
            children[paths.parent_of(e.path)].append(paths.name_of(e.path))
    return Tree(root, nodes, children)


# ---------------------------------------------------------------------------
# TOP: the overlayfs upperdir format


@dataclass(frozen=True, slots=True)
class UpperEntry:
    node: Node
    whiteout: bool = False
    opaque: bool = False
    redirect: bytes | None = None
    metacopy: bool = False
    origin: bytes | None = None
    # overlay.nlink is set only on a copy-up of a lower hard link made with index=on:
    # the kernel then shows this upper inode at every name of that lower inode.
    indexed: bool = False


@dataclass(frozen=True, slots=True)
class Upper:
    root: bytes
    entries: dict[bytes, UpperEntry]
    children: dict[bytes, list[bytes]]
    namespace: str  # "trusted" or "user"


def _overlay_attr(xattrs: dict[bytes, bytes], name: bytes) -> bytes | None:
    for prefix in OVERLAY_XATTR_PREFIXES:
        value = xattrs.get(prefix + name)
        if value is not None:
            return value
    return None


def read_upper(root: bytes, manifest: list[tuple[bytes, bytes]] | None = None) -> Upper:
    """Walk TOP, decoding whiteouts, opaque dirs, redirects and metacopy, in either namespace."""
    entries: dict[bytes, UpperEntry] = {}
    children: dict[bytes, list[bytes]] = {}
    spaces: set[str] = set()
    for e in walk(root):
        if manifest is not None:
            manifest.append((e.path, fingerprint(e.st, root=not e.path)))
        for key in e.xattrs:
            if key.startswith(b"trusted.overlay."):
                spaces.add("trusted")
            elif key.startswith(b"user.overlay."):
                spaces.add("user")
        node = node_from_stat(e.abspath, e.st, e.xattrs)
        whiteout = (node.kind == CHARDEV and node.rdev == 0) or (
            # 6.7+ "xwhiteout": an empty regular file marked overlay.whiteout.
            node.kind == FILE and _overlay_attr(e.xattrs, b"whiteout") is not None
        )
        redirect = _overlay_attr(e.xattrs, b"redirect")
        if redirect is not None:
            _check_redirect(e.abspath, redirect)
        entries[e.path] = UpperEntry(
            node=node,
            whiteout=whiteout,
            opaque=node.kind == DIR and _overlay_attr(e.xattrs, b"opaque") == b"y",
            redirect=redirect,
            metacopy=node.kind == FILE and _overlay_attr(e.xattrs, b"metacopy") is not None,
            origin=_overlay_attr(e.xattrs, b"origin"),
            indexed=node.kind != DIR and _overlay_attr(e.xattrs, b"nlink") is not None,
        )
        if node.kind == DIR:
            children[e.path] = []
        if e.path:
            children[paths.parent_of(e.path)].append(paths.name_of(e.path))
    if len(spaces) > 1:
        raise InputError(
            f"{os.fsdecode(root)}: TOP mixes trusted.overlay.* and user.overlay.* attributes; "
            "it was used with and without -o userxattr — clean it up before merging"
        )
    return Upper(root, entries, children, spaces.pop() if spaces else "trusted")


def origin_inode(value: bytes) -> int | None:
    """The lower inode number in an ``overlay.origin`` file handle (ext4/xfs/tmpfs forms),
    or None when the handle is of another form."""
    if len(value) < 25 or value[1] != 0xFB:
        return None
    fid_type, fid = value[4], value[21:]
    if fid_type in (1, 2) and len(fid) >= 4:  # FILEID_INO32_GEN[_PARENT]: ext2/3/4, ...
        return int.from_bytes(fid[:4], "little")
    if fid_type in (0x81, 0x82) and len(fid) >= 8:  # 64-bit inode forms: xfs, tmpfs
        return int.from_bytes(fid[:8], "little")
    return None


def _check_redirect(abspath: bytes, redirect: bytes) -> None:
    target = redirect[1:] if redirect.startswith(b"/") else redirect
    try:
        if target:
            paths.validate(target)
        if not redirect.startswith(b"/") and b"/" in redirect:
            raise InputError("relative redirect with a slash")
    except InputError:
        raise InputError(
            f"{os.fsdecode(abspath)}: unsafe overlay redirect {redirect!r}; "
            "TOP is damaged or hostile — refusing to follow it"
        ) from None


def user_view(old: Tree, upper: Upper) -> UserView:
    """Compute what overlayfs shows for OLD + TOP (design.md §3–4).

    Follows the kernel's rules: a whiteout hides the lower entry, an opaque
    directory hides the lower directory's children, a redirected directory
    merges the lower directory it names, a metacopy file takes its data from
    the lower file. Lower directories are OLD's.
    """
    nodes: dict[bytes, Node] = {}
    children: dict[bytes, list[bytes]] = {}
    hidden: dict[bytes, str] = {}
    renamed: dict[bytes, bytes] = {}
    redirect_sources: set[bytes] = set()
    indexed: dict[tuple[int, int], Node] = {}  # OLD inode -> the upper copy the index points at

    top_root = upper.entries.get(b"")
    nodes[b""] = top_root.node if top_root else old.nodes[b""]
    # (view dir path, OLD dir path merged below it or None)
    stack: list[tuple[bytes, bytes | None]] = [(b"", b"")]
    while stack:
        vdir, ldir = stack.pop()
        lower_names = old.children.get(ldir, []) if ldir is not None else []
        names = sorted(set(lower_names) | set(upper.children.get(vdir, [])))
        kept: list[bytes] = []
        lower_set = set(lower_names)
        for name in names:
            vpath = paths.join(vdir, name)
            lpath = paths.join(ldir, name) if ldir is not None and name in lower_set else None
            lower = old.nodes.get(lpath) if lpath is not None else None
            top = upper.entries.get(vpath)
            if top is None:
                assert lpath is not None
                _copy_lower(old, lpath, vpath, nodes, children)
                kept.append(name)
                if lpath != vpath:
                    renamed.setdefault(vpath, lpath)
                continue
            if top.whiteout:
                if lower is not None and lpath == vpath:
                    hidden[vpath] = REMOVED
                continue
            kept.append(name)
            node = top.node
            if node.kind == DIR:
                sub_lower: bytes | None = None
                if top.redirect is not None:
                    source = (
                        top.redirect[1:]
                        if top.redirect.startswith(b"/")
                        else paths.join(ldir, top.redirect) if ldir is not None else None
                    )
                    if source is not None and old.nodes.get(source, None) is not None and old.nodes[source].kind == DIR:
                        sub_lower = source
                        redirect_sources.add(source)
                        if source != vpath:
                            renamed[vpath] = source
                elif not top.opaque and lower is not None and lower.kind == DIR:
                    sub_lower = lpath
                if lower is not None and lower.kind == DIR and lpath == vpath and sub_lower != lpath:
                    # Replaced wholesale: an opaque directory, or one redirected to another
                    # source (``rm -rf a; mv b a``) — OLD's a no longer shows through.
                    hidden[vpath] = REMOVED
                nodes[vpath] = node
                children[vpath] = []
                stack.append((vpath, sub_lower))
            else:
                if top.metacopy:
                    node = _metacopy_data(old, top, lpath, ldir, vpath, node)
                if top.indexed:
                    origin = _lower_origin(old, top, lpath, ldir)
                    if origin is not None and origin.nlink > 1 and origin.inode is not None:
                        indexed.setdefault(origin.inode, node)
                if lower is not None and lower.kind == DIR and lpath == vpath:
                    hidden[vpath] = TYPE
                nodes[vpath] = node
        children[vdir] = kept
    for source in redirect_sources:
        if source in hidden or source not in nodes:
            hidden[source] = RENAMED
    if indexed:
        # index=on: a name of a lower hard link that TOP does not touch still shows the
        # copied-up inode (the kernel finds it through the index by the lower inode).
        for vpath, node in nodes.items():
            if node.inode in indexed and vpath not in upper.entries and node.kind != DIR:
                nodes[vpath] = indexed[node.inode]
    view = Tree(b"", nodes, children)
    return UserView(view, hidden, renamed, frozenset(upper.entries), upper.namespace)


def _copy_lower(old: Tree, lpath: bytes, vpath: bytes, nodes: dict, children: dict) -> None:
    """Show OLD's subtree at ``lpath`` under ``vpath`` (same node objects: untouched)."""
    stack = [(lpath, vpath)]
    while stack:
        lp, vp = stack.pop()
        node = old.nodes[lp]
        nodes[vp] = node
        if node.kind == DIR:
            names = old.children.get(lp, [])
            children[vp] = list(names)
            stack.extend((paths.join(lp, n), paths.join(vp, n)) for n in names)


def _redirect_source(top: UpperEntry, ldir: bytes | None) -> bytes | None:
    assert top.redirect is not None
    if top.redirect.startswith(b"/"):
        return top.redirect[1:]
    return paths.join(ldir, top.redirect) if ldir is not None else None


def _lower_origin(old: Tree, top: UpperEntry, lpath: bytes | None, ldir: bytes | None) -> Node | None:
    """The OLD non-directory an upper non-directory was copied up from, if it is known."""
    source = _redirect_source(top, ldir) if top.redirect is not None else lpath
    lower = old.nodes.get(source) if source is not None else None
    return lower if lower is not None and lower.kind != DIR and top.origin is not None else None


def _metacopy_data(old: Tree, top: UpperEntry, lpath: bytes | None, ldir: bytes | None, vpath: bytes, node: Node) -> Node:
    """Metacopy: metadata from TOP, data from the lower file (what the user saw)."""
    source = _redirect_source(top, ldir) if top.redirect is not None else lpath
    lower = old.nodes.get(source) if source is not None else None
    if lower is None or lower.kind != FILE:
        raise InputError(
            f"{os.fsdecode(top.node.source or vpath)}: metacopy file without its lower data in OLD; "
            "is --old the layer this TOP was made on?"
        )
    return node.with_(source=lower.source, size=lower.size, inode=None, nlink=1)


# ---------------------------------------------------------------------------
# Content comparison: streaming, size first.


def open_nofollow(path: bytes):
    """Open a regular file for reading, refusing a symlink put in its place after the walk."""
    return os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb", buffering=0)


def _read_full(f, size: int) -> bytes:
    """Read ``size`` bytes unless EOF comes first (raw reads may return short)."""
    data = f.read(size)
    while data and len(data) < size:
        more = f.read(size - len(data))
        if not more:
            break
        data += more
    return data


def files_equal(a: bytes, b: bytes) -> bool:
    """Compare two regular files by content without loading them whole."""
    try:
        with open_nofollow(a) as fa, open_nofollow(b) as fb:
            if os.fstat(fa.fileno()).st_size != os.fstat(fb.fileno()).st_size:
                return False
            while True:
                ca = _read_full(fa, CHUNK)
                cb = _read_full(fb, CHUNK)
                if ca != cb:
                    return False
                if not ca:
                    return True
    except OSError as exc:
        raise InputError(f"cannot compare {os.fsdecode(a)} with {os.fsdecode(b)}: {exc.strerror}") from exc


class ContentComparer:
    """Cached content equality for FILE nodes.

    ``same`` always compares bytes (after the size check); ``quick`` first
    trusts equal size and mtime, as rsync does, for paths TOP does not touch
    (unless ``checksum``).
    """

    def __init__(self, checksum: bool = False) -> None:
        self.checksum = checksum
        self._cache: dict[tuple[bytes, bytes], bool] = {}

    def same(self, a: Node, b: Node) -> bool:
        if a.source == b.source:
            return True
        if a.size != b.size:
            return False
        if a.inode is not None and a.inode == b.inode:
            return True
        assert a.source is not None and b.source is not None
        key = (a.source, b.source)
        result = self._cache.get(key)
        if result is None:
            result = files_equal(a.source, b.source)
            self._cache[key] = result
        return result

    def quick(self, a: Node, b: Node) -> bool:
        if not self.checksum and a.size == b.size and a.mtime_ns == b.mtime_ns:
            return True
        return self.same(a, b)


def read_bytes(node: Node, limit: int) -> bytes | None:
    """The content of a FILE node, or None when it is larger than ``limit``."""
    if node.source is None or node.size > limit:
        return None
    try:
        with open_nofollow(node.source) as f:
            parts, got = [], 0
            while got <= limit:  # raw reads may return short
                part = f.read(min(CHUNK, limit + 1 - got))
                if not part:
                    break
                parts.append(part)
                got += len(part)
            data = b"".join(parts)
    except OSError as exc:
        raise _fail(node.source, "cannot read", exc) from exc
    return None if len(data) > limit else data
