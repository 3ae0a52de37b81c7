"""Property test: overmerge's user view equals the kernel's, for TOPs the kernel made.

Each example builds a small random OLD tree (files, dirs, nested dirs, symlinks, a hard
link), mounts overlayfs over it (all features: redirect_dir, metacopy, index; or default
options; or userxattr), runs a random sequence of user operations through the mount
(writes, deletes, renames of files and dirs — which create redirects —, chmod/chown —
metacopy —, hard links, symlinks, type changes, user.* xattrs), unmounts, and compares
``layers.user_view(OLD, TOP)`` attribute by attribute with the kernel's read-only
``lowerdir=TOP:OLD`` view and with the user's own view (the same mount made again). Every mount lives in a tmp dir and is unmounted also on failure.
"""
from __future__ import annotations

import os
import shlex
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casebuild import tree_from_spec
from overlayfs import FULL_FEATURES, mounted_overlay, requires_root, unmount_all_under
from viewcompare import index_orphans, remount_problems, view_problems

pytestmark = [requires_root, pytest.mark.root]

DIRS = ["d1", "d1/s", "d1/s/u", "d2", "d2/t"]
FILES = ["a", "b", "d1/f", "d1/s/g", "d1/s/u/k", "d2/h", "d2/t/i"]
SYMLINKS = {"d1/ln": "f", "ln2": "d1"}
# Names the operations pick from: OLD's plus some new ones, at several depths.
NAMES = sorted(set(DIRS + FILES + list(SYMLINKS)) | {"d1/hl", "x", "y", "d3", "d1/x", "d2/t/n", "d3/z", "d1/s/y"})
MODES = [0o644, 0o600, 0o755]
XATTR = '"$PYTHON" -c \'import os,sys; os.setxattr(sys.argv[1], "user.k", sys.argv[2].encode(), follow_symlinks=False)\''


@st.composite
def old_tree(draw):
    spec: dict = {}
    dirs = [d for d in DIRS if draw(st.booleans()) or d == "d1"]
    for d in dirs:
        spec[d] = {"type": "dir", "mode": draw(st.sampled_from([0o755, 0o750]))}

    def present(path: str) -> bool:
        parent = path.rpartition("/")[0]
        return not parent or parent in dirs

    for f in FILES:
        if present(f) and draw(st.integers(0, 3)):
            entry = {"content": draw(st.sampled_from(["1\n", "two\n", "x" * 3000])),
                     "mode": draw(st.sampled_from(MODES))}
            if draw(st.integers(0, 4)) == 0:
                entry["xattrs"] = {"user.o": "old"}
            spec[f] = entry
    for link, target in SYMLINKS.items():
        if present(link) and draw(st.booleans()):
            spec[link] = {"symlink": target}
    files = [f for f in FILES if f in spec]
    if len(files) >= 2 and draw(st.integers(0, 2)):
        spec["d1/hl"] = {"hardlink": draw(st.sampled_from(files))}
    return spec


def _op(draw, existing: list[str]) -> str:
    # The first operand is mostly an OLD entry, so that operations mostly do something.
    p = draw(st.sampled_from(existing)) if existing and draw(st.integers(0, 2)) else draw(st.sampled_from(NAMES))
    q = draw(st.sampled_from(NAMES))
    p, q = shlex.quote(p), shlex.quote(q)
    kind = draw(st.sampled_from([
        "write", "append", "rm", "rmr", "mkdir", "mvT", "mvinto", "chmod", "chown",
        "ln", "symlink", "dir2file", "file2dir", "xattr", "mvT", "chmod",
    ]))
    return {
        "write": f"echo w > {p}",
        "append": f"echo a >> {p}",
        "rm": f"rm -f {p}",
        "rmr": f"rm -rf {p}",
        "mkdir": f"mkdir {p}",
        "mvT": f"mv -T {p} {q}",
        "mvinto": f"mv {p} {q}/",
        "chmod": f"chmod 0640 {p}",
        "chown": f"chown -h 7:8 {p}",
        "ln": f"ln {p} {q}",
        "symlink": f"ln -s ../{p} {q}",
        "dir2file": f"rm -rf {p} && echo file > {p}",
        "file2dir": f"rm -f {p} && mkdir {p} && echo in > {p}/in",
        "xattr": f"{XATTR} {p} v",
    }[kind]


@st.composite
def scenario(draw):
    old = draw(old_tree())
    options = draw(st.sampled_from([FULL_FEATURES, FULL_FEATURES, FULL_FEATURES, (), ("userxattr",)]))
    ops = [_op(draw, sorted(old)) for _ in range(draw(st.integers(1, 8)))]
    return old, options, ops


@settings(max_examples=int(os.environ.get("OVERMERGE_UVPROP_EXAMPLES", "40")), deadline=None, suppress_health_check=list(HealthCheck))
@given(scenario())
def test_user_view_matches_kernel_after_random_operations(example) -> None:
    old_spec, options, ops = example
    with tempfile.TemporaryDirectory(prefix="om-uvprop-") as tmp:
        base = Path(tmp)
        try:
            old = base / "old"
            old.mkdir()
            tree_from_spec(old_spec, old)
            with mounted_overlay(old, base / "ov", options=options) as ov:
                # Each operation may fail (a name that does not exist): that is fine.
                ov.run("\n".join(f"{{ {op} ; }} >/dev/null 2>&1 || true" for op in ops))
            problems = view_problems(old, ov.upper, base / "check")
            # The user's own view: the same mount again (index=on shows hard-link aliases).
            if not index_orphans(ov.upper, ov.work):
                problems += [f"remount: {p}" for p in
                             remount_problems(old, ov.upper, ov.work, base / "again", options)]
        finally:
            leaked = unmount_all_under(base)
        assert not leaked, f"leaked mounts: {leaked}"
        assert not problems, (
            f"options={options}\nold={old_spec}\nops:\n  " + "\n  ".join(ops) + "\n" + "\n".join(problems)
        )
