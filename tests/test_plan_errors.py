"""Bad input to ``overmerge plan``: exit 2, one line on stderr naming the path, no plan file."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from casebuild import tree_from_spec
from conftest import REPO
from overlayfs import requires_root

SPEC = {"etc/app.conf": "a=1\n", "usr/share/app/data": "x\n"}


@pytest.fixture
def layers(tmp_path: Path) -> tuple[Path, Path, Path]:
    old = tree_from_spec(SPEC, tmp_path / "old")
    new = tree_from_spec(SPEC, tmp_path / "new")
    top = tmp_path / "top"
    top.mkdir()
    return old, new, top


def _assert_error(proc: subprocess.CompletedProcess[bytes], names: Path, out: Path) -> None:
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 2, (proc.returncode, err, proc.stdout[:500])
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected a one-line error, got:\n{err}"
    assert "Traceback" not in err
    assert str(names) in lines[0], f"the error does not name {names}: {lines[0]}"
    assert not out.exists(), "no plan may be written on error"
    assert not [p for p in out.parent.iterdir() if p.name.startswith(out.name)], "temp files left beside -o"


def _plan(run_cli, old, new, top, out):
    return run_cli("plan", "--old", old, "--new", new, "--upper", top, "-o", out)


@pytest.mark.parametrize("which", ["old", "new", "top"])
def test_missing_layer(layers, tmp_path, run_cli, which):
    old, new, top = layers
    missing = tmp_path / f"no-such-{which}"
    args = {"old": old, "new": new, "top": top, which: missing}
    out = tmp_path / "plan.json"
    _assert_error(_plan(run_cli, args["old"], args["new"], args["top"], out), missing, out)


@pytest.mark.parametrize("which", ["old", "new", "top"])
def test_layer_not_a_directory(layers, tmp_path, run_cli, which):
    old, new, top = layers
    afile = tmp_path / f"{which}-is-a-file"
    afile.write_text("not a layer\n")
    args = {"old": old, "new": new, "top": top, which: afile}
    out = tmp_path / "plan.json"
    _assert_error(_plan(run_cli, args["old"], args["new"], args["top"], out), afile, out)


@pytest.mark.parametrize("inside", ["old", "new"])
def test_top_inside_old_or_new(layers, tmp_path, run_cli, inside):
    old, new, _ = layers
    base = old if inside == "old" else new
    top = base / "var" / "upper"
    top.mkdir(parents=True)
    out = tmp_path / "plan.json"
    _assert_error(_plan(run_cli, old, new, top, out), top, out)


@requires_root
@pytest.mark.root
def test_top_is_upperdir_of_a_mounted_overlay(layers, tmp_path, run_cli, overlay_mount):
    old, new, _ = layers
    ov = overlay_mount(old)
    ov.run("echo b=2 >> etc/app.conf")
    out = tmp_path / "plan.json"
    # Still mounted: the kernel may change TOP under us, so it must not be trusted.
    _assert_error(_plan(run_cli, old, new, ov.upper, out), ov.upper, out)


@requires_root
@pytest.mark.root
def test_metacopy_without_data_in_old(layers, tmp_path, run_cli):
    """What "unreadable" means for root: root bypasses permission bits, so the entry
    whose content cannot be read is a metacopy file in TOP whose data (in OLD) does
    not exist; the kernel answers EIO for it. (An entry vanishing mid-walk is racy
    and not tested.)"""
    old, new, top = layers
    tree_from_spec({"usr/share/app/ghost": {"content": "", "metacopy": True}}, top)
    out = tmp_path / "plan.json"
    proc = _plan(run_cli, old, new, top, out)
    _assert_error(proc, Path("usr/share/app/ghost"), out)


def test_output_is_a_directory(layers, tmp_path, run_cli):
    old, new, top = layers
    out = tmp_path / "plan-dir"
    out.mkdir()
    proc = _plan(run_cli, old, new, top, out)
    assert proc.returncode == 2
    assert len(proc.stderr.decode().strip().splitlines()) == 1


@pytest.mark.parametrize(
    "code",
    [
        "import overmerge.cli as c; c.build_parser()",
        "import overmerge.cli as c\ntry: c.main(['plan', '--help'])\nexcept SystemExit: pass",
        "import overmerge.cli as c, sys; c.main(['plan', '--old', sys.argv[1], '--new', sys.argv[1], "
        "'--upper', sys.argv[2], '--json'])",
    ],
    ids=["parser", "plan-help", "plan-run"],
)
def test_plan_does_not_import_textual(layers, code):
    old, _, top = layers
    check = code + "\nimport sys\nassert 'textual' not in sys.modules, 'plan imported textual'\n"
    proc = subprocess.run(
        [sys.executable, "-c", check, os.fspath(old), os.fspath(top)],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
