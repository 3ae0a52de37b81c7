"""``overmerge demo``: runs as root, and unprivileged in a user namespace."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

from conftest import REPO
from overlayfs import overlays_under, requires_root

NOBODY = 65534


@requires_root
@pytest.mark.root
def test_demo_as_root_keep(tmp_path, run_cli):
    keep = tmp_path / "scenario"
    proc = run_cli("demo", "--keep", keep)
    out = proc.stdout.decode()
    assert proc.returncode == 0, proc.stderr.decode()
    assert "as root" in out
    for path in ("etc/app.conf", "etc/passwd", "etc/app.d/30-metrics.conf"):
        assert path in out
    assert (keep / "upper" / "etc" / "passwd").is_file()
    # The whole main job ran: apply with a policy, verified by the kernel, merged accounts shown.
    assert "verified: the kernel's view of NEW + new upper equals the merged view" in out
    assert "alice:x:1000:1000:" in out and "systemd-network:x:998:" in out
    assert (keep / "new-upper" / "etc" / "passwd").is_file()
    assert (keep / "new-upper.overmerge-aside" / "list.json").is_file()
    assert os.stat(keep / "upper" / "etc" / "motd").st_rdev == 0  # a whiteout
    assert not overlays_under(tmp_path)
    # The kept scenario plans the same way from the command line: conflicts remain.
    again = run_cli("plan", "--old", keep / "old", "--new", keep / "new", "--upper", keep / "upper", "--json")
    assert again.returncode == 1, again.stderr


@requires_root
@pytest.mark.root
def test_demo_cleans_up(tmp_path, run_cli):
    env_tmp = tmp_path / "tmpdir"
    env_tmp.mkdir()
    proc = subprocess.run([sys.executable, "-m", "overmerge", "demo"], cwd=REPO, capture_output=True,
                          env={**os.environ, "TMPDIR": str(env_tmp)}, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    assert "--keep" in proc.stdout.decode()
    assert list(env_tmp.iterdir()) == [], "demo left its scenario behind"


def test_demo_keep_refuses_non_empty_dir(tmp_path, run_cli):
    keep = tmp_path / "busy"
    keep.mkdir()
    (keep / "something").write_text("x")
    proc = run_cli("demo", "--keep", keep)
    assert proc.returncode == 2
    assert str(keep) in proc.stderr.decode()


def _unprivileged_python(env: dict[str, str]) -> str | None:
    """An interpreter the nobody user can run with the project importable, or None."""
    for candidate in (sys.executable, os.path.realpath(sys.executable), "/usr/bin/python3"):
        proc = subprocess.run(
            ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
             candidate, "-c", "import overmerge.cli, merge3, yaml"],
            env=env, capture_output=True, cwd="/",
        )
        if proc.returncode == 0:
            return candidate
    return None


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root to switch to the nobody user with setpriv")
def test_demo_unprivileged_in_user_namespace():
    # tmp_path lives in root's private pytest dir, which nobody cannot enter; use a
    # private directory in the system temp dir and remove it afterwards.
    base = Path(tempfile.mkdtemp(prefix="overmerge-test-demo-"))
    try:
        os.chown(base, NOBODY, NOBODY)
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(base),
            "TMPDIR": str(base),
            "PYTHONPATH": os.pathsep.join([sysconfig.get_paths()["purelib"], str(REPO)]),
            "LC_ALL": "C.UTF-8",
        }
        python = _unprivileged_python(env)
        if python is None:
            pytest.skip("no Python interpreter with the project's dependencies that nobody can run")
        keep = base / "scenario"
        proc = subprocess.run(
            ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
             python, "-m", "overmerge", "demo", "--keep", str(keep)],
            env=env, capture_output=True, cwd="/", timeout=120,
        )
        out = proc.stdout.decode()
        if proc.returncode != 0 and b"user namespace" in proc.stderr:
            pytest.skip(f"user namespaces unavailable here: {proc.stderr.decode().strip()}")
        assert proc.returncode == 0, proc.stderr.decode()
        assert "user namespace" in out
        assert "user.overlay" in out
        opaque = os.getxattr(keep / "upper" / "etc" / "app.d", "user.overlay.opaque")
        assert opaque == b"y"
        assert os.stat(keep / "upper" / "etc" / "passwd").st_uid == NOBODY
    finally:
        shutil.rmtree(base, ignore_errors=True)
