"""overmerge.mounts: mountinfo parsing (pure), and real mounts as root."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from casebuild import tree_from_spec
from overlayfs import requires_root
from overmerge.errors import OvermergeError
from overmerge.mounts import (
    can_mount_overlay,
    find_layer_user,
    layer_in_use,
    mount_overlay,
    mounted_overlays,
    overlay,
    overlay_options,
    parse_mountinfo,
    umount,
)

MOUNTINFO = rb"""22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
45 22 0:39 / /tmp/ov/m rw,relatime - overlay overlay rw,lowerdir=/tmp/ov/l1:/tmp/ov/l2,upperdir=/tmp/ov/u,workdir=/tmp/ov/w,redirect_dir=on,index=on,uuid=on,metacopy=on
48 22 0:41 / /tmp/ov/m2\040x rw,relatime shared:7 master:2 - overlay overlay ro,lowerdir+=/tmp/ov/l1,lowerdir+=/tmp/ov/sp\040ace,datadir+=/tmp/ov/data,redirect_dir=on
49 22 0:42 / /tmp/ov/m3 rw,relatime - overlay overlay ro,lowerdir=/tmp/ov/c\134:d:/tmp/ov/l1::/tmp/ov/d1,redirect_dir=on
50 22 0:43 / /tmp/ov/m4 rw,relatime - overlay overlay rw,lowerdir=/tmp/ov/l\054x,upperdir=/tmp/ov/tab\011u,workdir=/tmp/ov/w4,uuid=on,userxattr
"""


def test_parse_mountinfo_overlays():
    mounts = parse_mountinfo(MOUNTINFO)
    assert [m.fstype for m in mounts] == ["ext4", "overlay", "overlay", "overlay", "overlay"]
    root, full, plus, legacy, ux = mounts
    assert root.lowerdirs == () and root.upperdir is None
    assert full.mountpoint == Path("/tmp/ov/m")
    assert full.lowerdirs == (Path("/tmp/ov/l1"), Path("/tmp/ov/l2"))
    assert full.upperdir == Path("/tmp/ov/u") and full.workdir == Path("/tmp/ov/w")
    assert plus.mountpoint == Path("/tmp/ov/m2 x")
    assert plus.lowerdirs == (Path("/tmp/ov/l1"), Path("/tmp/ov/sp ace"))
    assert plus.datadirs == (Path("/tmp/ov/data"),)
    assert plus.upperdir is None and plus.options == ("rw", "relatime")
    assert legacy.lowerdirs == (Path("/tmp/ov/c:d"), Path("/tmp/ov/l1"))
    assert legacy.datadirs == (Path("/tmp/ov/d1"),)
    assert ux.lowerdirs == (Path("/tmp/ov/l,x"),)
    assert ux.upperdir == Path("/tmp/ov/tab\tu") and ux.userxattr


def test_find_layer_user_pure():
    overlays = [m for m in parse_mountinfo(MOUNTINFO) if m.is_overlay]
    assert find_layer_user("/tmp/ov/u", overlays).mount_id == 45  # the upperdir
    assert find_layer_user("/tmp/ov/u/etc", overlays).mount_id == 45  # inside it
    assert find_layer_user("/tmp/ov/w/work", overlays).mount_id == 45
    assert find_layer_user("/tmp/ov/m", overlays).mount_id == 45  # the mountpoint
    assert find_layer_user("/tmp/ov/data", overlays).mount_id == 48
    assert find_layer_user("/tmp/ov", overlays) is not None  # contains layers
    assert find_layer_user("/tmp/elsewhere", overlays) is None
    assert find_layer_user("/tmp/ov/u2", overlays) is None  # a prefix is not a parent


def test_overlay_options():
    assert overlay_options(["/a", "/b"], upperdir="/u", workdir="/w", options=["index=on"]) == (
        "lowerdir=/a:/b,upperdir=/u,workdir=/w,index=on"
    )
    assert overlay_options(["/a:b", "/c"]) == "lowerdir+=/a:b,lowerdir+=/c"
    with pytest.raises(OvermergeError, match="comma"):
        overlay_options(["/a,b"])
    with pytest.raises(OvermergeError):
        overlay_options(["/a"], upperdir="/u")
    with pytest.raises(OvermergeError):
        overlay_options([])


def _dirs(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    lower = tree_from_spec({"etc/app.conf": "a=1\n"}, tmp_path / "lower")
    dirs = [tmp_path / n for n in ("upper", "work", "merged")]
    for d in dirs:
        d.mkdir()
    return lower, *dirs


@requires_root
@pytest.mark.root
def test_overlay_context_unmounts_on_exception(tmp_path):
    lower, upper, work, merged = _dirs(tmp_path)
    with pytest.raises(RuntimeError):
        with overlay([lower], merged, upperdir=upper, workdir=work, options=["redirect_dir=on"]) as mnt:
            (mnt / "etc" / "app.conf").write_text("a=2\n")
            found = layer_in_use(upper)
            assert found is not None and found.mountpoint == merged
            assert layer_in_use(lower / "etc") is not None
            assert layer_in_use(merged) is not None
            raise RuntimeError("boom")
    assert layer_in_use(upper) is None
    assert not any(m.mountpoint == merged for m in mounted_overlays())
    assert (upper / "etc" / "app.conf").read_text() == "a=2\n"


@requires_root
@pytest.mark.root
def test_read_only_mount_and_errors(tmp_path):
    lower, upper, work, merged = _dirs(tmp_path)
    mount_overlay([upper, lower], merged, readonly=True)
    try:
        with pytest.raises(OSError):
            (merged / "new").write_text("x")
    finally:
        umount(merged)
    with pytest.raises(OvermergeError, match="cannot mount overlay") as exc:
        mount_overlay([tmp_path / "missing"], merged)
    assert "\n" not in exc.value.message
    with pytest.raises(OvermergeError, match="cannot unmount"):
        umount(merged)


@requires_root
@pytest.mark.root
def test_userxattr_mount_writes_user_overlay_xattrs(tmp_path):
    lower, upper, work, merged = _dirs(tmp_path)
    with overlay([lower], merged, upperdir=upper, workdir=work, options=["userxattr"]) as mnt:
        os.unlink(mnt / "etc" / "app.conf")
        os.rmdir(mnt / "etc")
        os.mkdir(mnt / "etc")  # replaces a lower directory: opaque
    assert os.getxattr(upper / "etc", "user.overlay.opaque") == b"y"
    assert not any(n.startswith("trusted.overlay.") for n in os.listxattr(upper / "etc"))


def test_can_mount_overlay_reports():
    ok, why = can_mount_overlay()
    assert isinstance(ok, bool) and why
    if os.geteuid() == 0:
        assert ok, why
