"""Platform code for writing layers: entries with exact metadata, sparse copies,
fsync, atomic directory swaps. I/O only; every call avoids following symlinks.

Entries are created inside directories this process made itself (a staging
directory), never through a symlink: files with O_CREAT|O_EXCL|O_NOFOLLOW,
owner before mode (chown clears setuid bits and capabilities), xattrs after
owner, mtime last.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import os
import stat
import tempfile
from collections.abc import Iterator

from overmerge.errors import OvermergeError
from overmerge.model import BLOCKDEV, CHARDEV, DIR, FIFO, FILE, SOCKET, SYMLINK, Node

CHUNK = 1 << 20


class WriteError(OvermergeError):
    """Writing the new upper or the aside directory failed."""


def _err(path: bytes, what: str, exc: OSError) -> WriteError:
    hint = ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        # Writes happen in staging only, which is removed before the error reaches the user.
        hint = "; free space there or write elsewhere (nothing was changed)"
    return WriteError(f"{os.fsdecode(path)}: {what}: {exc.strerror or exc}{hint}")


def copy_sparse(src: bytes, dst_fd: int) -> None:
    """Copy ``src`` into ``dst_fd`` keeping holes (SEEK_DATA / SEEK_HOLE)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(src, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise WriteError(f"{os.fsdecode(src)}: not a regular file any more; make a new plan")
        size = st.st_size
        pos = 0
        while pos < size:
            try:
                data_start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # only a hole is left
                    break
                if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):
                    data_start = pos  # no hole support: copy everything
                else:
                    raise
            try:
                hole = os.lseek(fd, data_start, os.SEEK_HOLE)
            except OSError:
                hole = size
            off = data_start
            while off < hole:
                chunk = os.pread(fd, min(CHUNK, hole - off), off)
                if not chunk:
                    break
                os.pwrite(dst_fd, chunk, off)
                off += len(chunk)
            pos = hole
        os.ftruncate(dst_fd, size)
    finally:
        os.close(fd)


def create_entry(path: bytes, node: Node, content: bytes | None = None) -> None:
    """Create ``path`` as ``node`` (content from ``content`` or ``node.source``) with its metadata.

    Directories are created with their metadata except mtime; call
    :func:`finish_dir` after filling them.
    """
    try:
        if node.kind == FILE:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
            fd = os.open(path, flags, 0o600)
            try:
                if content is not None:
                    view = memoryview(content)
                    while view:
                        view = view[os.write(fd, view):]
                elif node.source is not None:
                    copy_sparse(node.source, fd)
                os.fsync(fd)
            finally:
                os.close(fd)
        elif node.kind == DIR:
            os.mkdir(path, 0o700)
        elif node.kind == SYMLINK:
            assert node.target is not None
            os.symlink(node.target, path)
        elif node.kind in (CHARDEV, BLOCKDEV, FIFO):
            fmt = {CHARDEV: stat.S_IFCHR, BLOCKDEV: stat.S_IFBLK, FIFO: stat.S_IFIFO}[node.kind]
            os.mknod(path, fmt | 0o600, node.rdev)
        elif node.kind == SOCKET:
            # A socket cannot be re-created without binding; record it as the kernel would
            # a socket copy-up: an empty socket inode via mknod.
            os.mknod(path, stat.S_IFSOCK | 0o600)
        else:
            raise WriteError(f"{os.fsdecode(path)}: cannot write a {node.kind}")
    except OSError as exc:
        raise _err(path, f"cannot create {node.kind}", exc) from exc
    set_meta(path, node, mtime=node.kind != DIR)


def set_meta(path: bytes, node: Node, *, mtime: bool = True) -> None:
    """Owner, xattrs, mode, then mtime — in the order that keeps each one."""
    try:
        os.chown(path, node.uid, node.gid, follow_symlinks=False)
        for name, value in node.xattrs:
            os.setxattr(path, name, value, follow_symlinks=False)
        if node.kind != SYMLINK:
            os.chmod(path, node.mode)
        if mtime:
            os.utime(path, ns=(node.mtime_ns, node.mtime_ns), follow_symlinks=False)
    except OSError as exc:
        raise _err(path, "cannot set metadata", exc) from exc


def finish_dir(path: bytes, node: Node) -> None:
    """Set a filled directory's mtime (last, as creating entries changes it)."""
    try:
        os.utime(path, ns=(node.mtime_ns, node.mtime_ns), follow_symlinks=False)
    except OSError as exc:
        raise _err(path, "cannot set mtime", exc) from exc


def make_whiteout(path: bytes, mtime_ns: int = 0) -> None:
    """A 0/0 character device owned by root; ``mtime_ns`` keeps reruns byte-identical."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))
        os.chown(path, 0, 0, follow_symlinks=False)
        os.utime(path, ns=(mtime_ns, mtime_ns), follow_symlinks=False)
    except OSError as exc:
        raise _err(path, "cannot create whiteout", exc) from exc


def link(existing: bytes, path: bytes) -> None:
    try:
        os.link(existing, path, follow_symlinks=False)
    except OSError as exc:
        raise _err(path, "cannot create hard link", exc) from exc


def fsync_path(path: bytes) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _dirs_below(root: bytes) -> Iterator[bytes]:
    """``root`` and every directory below it, parents first, never following links.

    A loop, not recursion (os.walk and shutil.rmtree recurse and fail on very deep
    trees). Each directory is yielded before it is listed, so the caller may make it
    readable first."""
    stack = [root]
    while stack:
        d = stack.pop()
        yield d
        with os.scandir(d) as it:
            stack.extend(e.path for e in it if e.is_dir(follow_symlinks=False))


def fsync_dirs(root: bytes) -> None:
    """fsync every directory under ``root`` (files were fsynced when written)."""
    for d in _dirs_below(root):
        fsync_path(d)


def remove_tree(path: bytes) -> None:
    """Remove ``path`` (a directory tree or a single entry) if it exists, never following links."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return
    dirs = []
    for d in _dirs_below(path):
        # Directories we staged may be mode 000 (an overlay work dir): make them removable.
        os.chmod(d, 0o700)
        dirs.append(d)
    for d in reversed(dirs):  # children before parents
        with os.scandir(d) as it:
            for e in it:
                if not e.is_dir(follow_symlinks=False):
                    os.unlink(e.path)
        os.rmdir(d)


def empty_dir(path: bytes) -> None:
    for name in os.listdir(path):
        remove_tree(os.path.join(path, name))


@contextlib.contextmanager
def dir_lock(directory: bytes) -> Iterator[None]:
    """Hold an exclusive flock on ``directory`` (the destination's parent): two applies or
    rollbacks beside the same layer must not clean up each other's staging."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OvermergeError(
                f"{os.fsdecode(directory)}: another overmerge apply or rollback is working in this directory; "
                "wait for it to finish"
            ) from None
        yield
    finally:
        os.close(fd)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_libc = None


def exchange(a: bytes, b: bytes) -> bool:
    """Atomically swap two paths (renameat2 RENAME_EXCHANGE); False when unsupported."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    fn = getattr(_libc, "renameat2", None)
    if fn is None:
        return False
    rc = fn(_AT_FDCWD, ctypes.c_char_p(a), _AT_FDCWD, ctypes.c_char_p(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL):
        return False
    raise OSError(err, os.strerror(err), os.fsdecode(a))


def write_atomic(path: str | os.PathLike, data: bytes | str, *, keep_mode: bool = False) -> None:
    """Write a file beside its final name, fsync, rename: a reader sees old or new, never half.

    New files get mode 0600 (plans can hold shadow lines); ``keep_mode`` keeps the mode
    of the file being replaced (merge-file writing YOURS in place)."""
    path = os.fsdecode(os.fspath(path))
    if isinstance(data, str):
        data = data.encode("utf-8")
    mode = None
    if keep_mode:
        with contextlib.suppress(FileNotFoundError):
            mode = stat.S_IMODE(os.stat(path).st_mode)
    directory = os.path.dirname(os.path.abspath(path)) or "."
    fd, tmp = tempfile.mkstemp(prefix=".overmerge-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
