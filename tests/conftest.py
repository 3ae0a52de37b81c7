"""Shared fixtures. Helper modules beside this file: overlayfs.py (real-kernel mounts),
casebuild.py (golden case trees). Keep fixtures here small; put logic in helpers."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import settings

# No example database: tests write nothing outside their tmp dirs (not even .hypothesis/).
settings.register_profile("overmerge", database=None)
settings.load_profile("overmerge")

from overlayfs import OverlayDirs, mounted_overlay, unmount_all_under

REPO = Path(__file__).resolve().parent.parent


def _find_corpus() -> Path:
    """../shared/corpus beside the checkout (as in CI), else the developers' /work/shared."""
    if "OVERMERGE_CORPUS" in os.environ:
        return Path(os.environ["OVERMERGE_CORPUS"])
    for candidate in (REPO.parent / "shared" / "corpus", Path("/work/shared/corpus")):
        if candidate.is_dir():
            return candidate
    return REPO.parent / "shared" / "corpus"


CORPUS = _find_corpus()


@pytest.fixture
def overlay_mount(tmp_path: Path) -> Iterator[Callable[..., OverlayDirs]]:
    """Factory: ``overlay_mount(lower, options=(), name="ov")`` mounts overlayfs over
    ``lower`` with upper/work/merged under ``tmp_path/name`` and returns the dirs.
    Everything it mounted is unmounted at teardown, also when the test fails; an
    overlay still mounted under tmp_path afterwards fails the test."""
    with contextlib.ExitStack() as stack:

        def mount(lower: Path | Sequence[Path], options: Sequence[str] = (), name: str = "ov") -> OverlayDirs:
            return stack.enter_context(mounted_overlay(lower, tmp_path / name, options=options))

        yield mount
    leaked = unmount_all_under(tmp_path)
    assert not leaked, f"overlay mounts leaked by the test: {leaked}"


@pytest.fixture
def run_cli() -> Callable[..., subprocess.CompletedProcess[bytes]]:
    """Run ``python -m overmerge ARGS`` in a subprocess; returns the CompletedProcess (bytes)."""

    def run(*args: str | os.PathLike, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "overmerge", *map(os.fspath, args)],
            cwd=REPO,
            capture_output=True,
            timeout=timeout,
        )

    return run


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The read-only Debian corpus (see its README); skips when absent."""
    path = CORPUS / "debian-minbase"
    if not path.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"Debian corpus not found at {path}: CI must run the corpus tests")
        pytest.skip(f"Debian corpus not found at {path} (set OVERMERGE_CORPUS)")
    return path
