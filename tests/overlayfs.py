"""Real-kernel overlayfs helpers for tests.

Every mount made here lives under the test's ``tmp_path`` and is unmounted when the
``with`` block or the fixture ends, also when the test fails. Tests that mount need
root (CI runs as root); mark them with :data:`requires_root`.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from overmerge.mounts import mount_overlay, mounted_overlays, umount

requires_root = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="needs root to mount overlayfs with trusted.* xattrs (CI runs the tests as root)",
)

# Options that make the kernel write redirect / metacopy / index state into TOP.
FULL_FEATURES = ("redirect_dir=on", "metacopy=on", "index=on")


def script_env() -> dict[str, str]:
    """Environment for shell scripts run in a mount: C locale, no HOME, $PYTHON for xattrs
    (setfattr may not be installed)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "LC_ALL": "C",
        "HOME": "/nonexistent",
        "PYTHON": sys.executable,
    }


@dataclass
class OverlayDirs:
    """One overlay stack in a test: lower (OLD), upper (TOP), work and the merged mount."""

    lower: Path
    upper: Path
    work: Path
    merged: Path
    options: tuple[str, ...]
    mounted: bool = True

    def unmount(self) -> None:
        """Unmount now (e.g. before planning TOP); later teardown then does nothing."""
        if self.mounted:
            umount(self.merged)
            self.mounted = False

    def run(self, script: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a shell script with cwd = the merged mount (changes made as a user would)."""
        proc = subprocess.run(
            ["sh", "-ec", "umask 022\n" + script],
            cwd=self.merged,
            capture_output=True,
            text=True,
            errors="replace",
            env=script_env(),
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"script failed in {self.merged}: {proc.stderr}\n{script}")
        return proc


@contextlib.contextmanager
def mounted_overlay(
    lower: Path | Sequence[Path],
    base: Path,
    *,
    options: Sequence[str] = (),
    upper: Path | None = None,
    work: Path | None = None,
    merged: Path | None = None,
) -> Iterator[OverlayDirs]:
    """Mount overlayfs over ``lower`` (OLD) with upper/work/merged dirs under ``base``.

    Yields the :class:`OverlayDirs`; the mount is always gone when the block ends.
    """
    lowers = [Path(lower)] if isinstance(lower, (str, os.PathLike)) else [Path(p) for p in lower]
    base = Path(base)
    upper = upper or base / "upper"
    work = work or base / "work"
    merged = merged or base / "merged"
    for d in (upper, work, merged):
        d.mkdir(parents=True, exist_ok=True)
    mount_overlay(lowers, merged, upperdir=upper, workdir=work, options=options)
    dirs = OverlayDirs(lowers[0], upper, work, merged, tuple(options))
    try:
        yield dirs
    finally:
        dirs.unmount()


def overlays_under(path: Path) -> list[Path]:
    """Overlay mountpoints (or layers) of mounted overlays inside ``path``."""
    root = Path(os.path.realpath(path))
    found = []
    for m in mounted_overlays():
        if any(p.is_relative_to(root) for p in (m.mountpoint, *m.layers)):
            found.append(m.mountpoint)
    return found


def unmount_all_under(path: Path) -> list[Path]:
    """Safety net for teardown: unmount any overlay still mounted inside ``path``."""
    leaked = overlays_under(path)
    for mnt in sorted(leaked, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(Exception):
            umount(mnt)
    return leaked
