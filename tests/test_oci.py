"""OCI layer tars: new upper → OCI tar → upper again shows, mounted over NEW, exactly what
the original new upper shows (the kernel is the judge); uppers that still need OLD are
refused; hostile layer tars are refused with exit 2 and write nothing outside OUT."""
from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest

from applyhelp import check_upper_format, make_plan_file
from casebuild import CASES_DIR, build_case
from overlayfs import requires_root
from test_flatten import build_everything, cli, kernel_signature, policy

pytestmark = [requires_root, pytest.mark.root]


def _new_upper(layers, tmp_path: Path) -> Path:
    plan, plan_file = make_plan_file(layers, tmp_path)
    newupper = tmp_path / "newupper"
    rc, err = cli("apply", plan_file, "--output", newupper, *policy(layers, plan))
    assert rc == 0, err
    return newupper


@pytest.mark.parametrize("case", ["everything", "opaque-replaced-dir", "whiteout-dir-vendor-add", "hardlinks-in-top",
                                  "weird-names", "one-side-changes", "userxattr-mount", "type-file-to-dir-local"])
def test_round_trip_through_oci(case: str, tmp_path: Path) -> None:
    layers = build_everything(tmp_path) if case == "everything" else build_case(CASES_DIR / case, tmp_path)
    newupper = _new_upper(layers, tmp_path)
    namespace = "user" if layers.userxattr else "trusted"
    want = kernel_signature(newupper, layers.new, namespace, tmp_path / "m1")

    layer = tmp_path / "layer.tar"
    rc, err = cli("oci-layer", newupper, "-o", layer)
    assert rc == 0, err
    with tarfile.open(layer, encoding="utf-8", errors="surrogateescape") as tar:
        members = tar.getmembers()
    assert not any("overlay." in k for m in members for k in m.pax_headers)
    assert all(m.uname == "" and m.gname == "" for m in members)
    whiteouts = [m.name for m in members if os.path.basename(m.name).startswith(".wh.")]
    if case in ("opaque-replaced-dir", "whiteout-dir-vendor-add", "one-side-changes"):
        assert whiteouts, "the new upper's whiteouts/opaque dirs must become .wh. members"

    back = tmp_path / "back"
    args = ["--userxattr"] if layers.userxattr else []
    rc, err = cli("oci-layer", "--to-upper", layer, "-o", back, *args)
    assert rc == 0, err
    assert not check_upper_format(back, namespace)
    got = kernel_signature(back, layers.new, namespace, tmp_path / "m2")
    assert got == want, "\n".join(f"{p!r}: {want.get(p)} != {got.get(p)}"
                                  for p in sorted(want.keys() | got.keys()) if want.get(p) != got.get(p))

    # The same layer gzip-compressed (as registries serve it), detected by magic.
    gz = tmp_path / "layer.tar.gz"
    gz.write_bytes(gzip.compress(layer.read_bytes()))
    rc, err = cli("oci-layer", "--to-upper", gz, "-o", tmp_path / "back-gz", *args)
    assert rc == 0, err
    assert kernel_signature(tmp_path / "back-gz", layers.new, namespace, tmp_path / "m3") == want


@pytest.mark.parametrize("case", ["redirect-written-in-top", "chmod-metacopy-vendor-content"])
def test_upper_needing_old_is_refused(case: str, tmp_path: Path, run_cli) -> None:
    layers = build_case(CASES_DIR / case, tmp_path)
    out = tmp_path / "layer.tar"
    proc = run_cli("oci-layer", layers.upper, "-o", out)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.decode()
    assert "overmerge apply" in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and not any("overmerge-tmp" in p.name for p in tmp_path.iterdir())


def _tar(path: Path, members: list[tuple[str, str, str]]) -> Path:
    """members: (type, name, data-or-linkname)."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for kind, name, data in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data.encode()))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE}[kind]
            if kind == "dir":
                info.mode = 0o755
            else:
                info.linkname = data
            tar.addfile(info)
    return path


def _listing(root: Path) -> set[str]:
    return {os.path.join(d, n) for d, dirs, files in os.walk(root) for n in dirs + files}


def hostile(tmp_path: Path) -> list:
    outside = str(tmp_path / "outside")
    return [
        ("dotdot", [("file", "../escaped", "x")]),
        ("dotdot-inner", [("dir", "a", ""), ("file", "a/../../escaped", "x")]),
        ("absolute", [("file", outside + "/escaped", "x")]),
        ("through-symlink", [("symlink", "link", outside), ("file", "link/escaped", "x")]),
        ("through-symlink-dotdot", [("symlink", "link", outside), ("file", "link/../escaped", "x")]),
        ("symlink-dir-then-dir", [("symlink", "etc", outside), ("dir", "etc/sub", ""), ("file", "etc/sub/x", "x")]),
        ("hardlink-outside", [("hardlink", "h", "../../outside/target")]),
        ("hardlink-absolute", [("hardlink", "h", outside + "/target")]),
        ("whiteout-dotdot", [("file", "../.wh.victim", "")]),
    ]


@pytest.mark.parametrize("index", range(9))
def test_hostile_layer_refused(index: int, tmp_path: Path, run_cli) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "target").write_text("secret\n")
    name, members = hostile(tmp_path)[index]
    layer = _tar(tmp_path / "evil.tar", members)
    before = _listing(tmp_path)
    out = tmp_path / "work" / "out"
    (tmp_path / "work").mkdir()
    proc = run_cli("oci-layer", "--to-upper", layer, "-o", out)
    assert proc.returncode == 2, f"{name}: {proc.stderr!r}"
    assert proc.stderr.startswith(b"overmerge: ") and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert not out.exists()
    assert _listing(tmp_path) == before | {str(tmp_path / "work")}, name
    assert (tmp_path / "outside" / "target").read_text() == "secret\n"
    assert not os.path.lexists(tmp_path / "escaped") and not os.path.lexists(tmp_path / "work" / "escaped")


def test_layer_tar_mapping(tmp_path: Path) -> None:
    """.wh.NAME → 0/0 whiteout, .wh..wh..opq → opaque xattr, overlay xattrs in the tar dropped."""
    layer = tmp_path / "l.tar"
    with tarfile.open(layer, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind in (("etc", tarfile.DIRTYPE), ("etc/.wh.old.conf", tarfile.REGTYPE),
                           ("opt", tarfile.DIRTYPE), ("opt/.wh..wh..opq", tarfile.REGTYPE),
                           ("opt/x", tarfile.REGTYPE)):
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
            if name == "opt/x":
                info.pax_headers = {"SCHILY.xattr.trusted.overlay.redirect": "/etc", "SCHILY.xattr.user.k": "v"}
            tar.addfile(info, io.BytesIO(b""))
    out = tmp_path / "up"
    rc, err = cli("oci-layer", "--to-upper", layer, "-o", out)
    assert rc == 0, err
    st = os.lstat(out / "etc" / "old.conf")
    assert st.st_rdev == 0 and (st.st_mode & 0o170000) == 0o020000
    assert os.getxattr(out / "opt", "trusted.overlay.opaque") == b"y"
    assert os.listxattr(out / "opt" / "x") == ["user.k"]
    assert not os.path.lexists(out / "opt" / ".wh..wh..opq")
