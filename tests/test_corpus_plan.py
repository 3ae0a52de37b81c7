"""Plan a real Debian upgrade: bullseye (OLD) -> bookworm (NEW), TOP made through an
overlay mount over OLD the way an administrator would change a system.

Every expectation below was checked by hand against the two trees
(``diff -r`` of the extracted tarballs); the comment says why.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from overlayfs import mounted_overlay, requires_root

pytestmark = [requires_root, pytest.mark.root, pytest.mark.slow]

# The user's changes, made through the mount (cwd = the user view).
USER_SCRIPT = r"""
printf 'Welcome to build host \\n \\l\n' > etc/issue
rm etc/motd
rm etc/xattr.conf
echo "alias ll='ls -l'" >> etc/bash.bashrc
echo buildhost > etc/hostname
echo /bin/zsh >> etc/shells
chmod 700 etc/cron.daily/dpkg
rm -rf etc/security
mkdir etc/security
printf '*  soft  nofile  8192\n' > etc/security/limits.conf
echo 'local=1' > etc/security/mine.conf
"""

# Without useradd, the same account added by editing the files.
ACCOUNT_BY_HAND = r"""
echo 'alice:x:1000:1000::/home/alice:/bin/bash' >> etc/passwd
echo 'alice:x:1000:' >> etc/group
echo 'alice:!:20000:0:99999:7:::' >> etc/shadow
echo 'alice:!::' >> etc/gshadow
echo 'alice:100000:65536' >> etc/subuid
"""

# path -> (class, extra fields to check, why)
EXPECTED: dict[str, tuple[str, dict, str]] = {
    # Account files: alice added by the user; the vendor moved _apt to uid 42 and dropped
    # gnats (passwd), and changed group/shadow/gshadow accordingly. Shipped rules may
    # auto-merge them, so only the class is asserted.
    "etc/passwd": ("conflict", {}, "user added alice; vendor moved _apt, removed gnats"),
    "etc/group": ("conflict", {}, "user added group alice; vendor changed groups"),
    "etc/shadow": ("conflict", {}, "user added alice; vendor changed system accounts"),
    "etc/gshadow": ("conflict", {}, "user added alice; vendor changed groups"),
    "etc/shells": ("conflict", {}, "user added /bin/zsh; vendor added /usr/bin/sh"),
    "etc/subuid": ("user-modified", {"change": "modified"}, "alice's range; same (empty) in both bases"),
    # Conffiles.
    "etc/issue": ("conflict", {"change": "modified", "resolution": "needs-decision"},
                  "user rewrote the line the vendor bumped from 11 to 12; no rule"),
    "etc/motd": ("user-modified", {"change": "removed"}, "deleted by the user; identical in both bases"),
    "etc/xattr.conf": ("conflict", {"your_change": "removed", "vendor_change": "modified"},
                       "deleted by the user; vendor added the afs.* line"),
    "etc/bash.bashrc": ("user-modified", {"change": "modified"}, "user alias; identical in both bases"),
    "etc/hostname": ("user-modified", {"change": "modified"}, "user renamed host; identical in both bases"),
    "etc/cron.daily/dpkg": ("conflict", {"your_change": "metadata", "vendor_change": "modified",
                                         "resolution": "auto-merged"},
                            "user chmod 700 only; vendor rewrote the script: new content, your mode"),
    "etc/cron.daily/apt-compat": ("upstream-changed", {"change": "modified"}, "vendor changed it only"),
    # etc/security replaced by the user (rm -rf + mkdir: opaque in TOP).
    "etc/security/limits.conf": ("conflict", {}, "user wrote their own; vendor modified it"),
    "etc/security/sepermit.conf": ("conflict", {"your_change": "removed", "vendor_change": "modified"},
                                   "gone with the replaced dir; vendor modified it"),
    "etc/security/access.conf": ("user-modified", {"change": "removed"},
                                 "gone with the replaced dir; identical in both bases"),
    "etc/security/mine.conf": ("user-modified", {"change": "added"}, "new file in the replaced dir"),
    # Vendor-only changes.
    "etc/debian_version": ("upstream-changed", {"change": "modified"}, "11.11 -> 12.x"),
    "etc/mke2fs.conf": ("upstream-changed", {"change": "modified"}, "vendor defaults changed"),
    "etc/login.defs": ("upstream-changed", {}, "vendor changed it, the user did not"),
    "etc/netconfig": ("upstream-changed", {"change": "removed"}, "only in bullseye"),
    "etc/alternatives/which": ("upstream-changed", {"change": "added"}, "only in bookworm"),
    "etc/systemd/system/timers.target.wants/dpkg-db-backup.timer":
        ("upstream-changed", {"change": "added"}, "new timer in bookworm"),
    "etc/systemd/system/default.target.wants": ("upstream-changed", {"change": "removed"},
                                                "bookworm uses multi-user.target.wants"),
    "var/lib/dpkg/status": ("upstream-changed", {}, "package versions changed; the user did not touch it"),
    # Unchanged.
    "etc/profile": ("unchanged", {}, "identical in both, not touched"),
    "etc/os-release": ("unchanged", {}, "dangling symlink ../usr/lib/os-release in both; never followed"),
    "etc/skel/.bashrc": ("unchanged", {}, "identical in both, not touched"),
}


def _extract(tarball: Path, dest: Path) -> Path:
    dest.mkdir()
    subprocess.run(["tar", "--numeric-owner", "-xzf", str(tarball), "-C", str(dest)], check=True)
    return dest


def make_corpus_layers(corpus: Path, tmp: Path) -> tuple[Path, Path, Path]:
    """bullseye as OLD, bookworm as NEW, and TOP made through a real mount over OLD."""
    old = _extract(corpus / "bullseye-etc.tar.gz", tmp / "old")
    new = _extract(corpus / "bookworm-etc.tar.gz", tmp / "new")
    with mounted_overlay(old, tmp) as ov:
        if shutil.which("useradd"):
            # The real tool, as an administrator would run it against the image.
            subprocess.run(["useradd", "--prefix", str(ov.merged), "-u", "1000", "-U",
                            "-s", "/bin/bash", "alice"], check=True, capture_output=True)
        else:
            ov.run(ACCOUNT_BY_HAND)
        ov.run(USER_SCRIPT)
    return old, new, ov.upper


@pytest.fixture(scope="module")
def corpus_plan(corpus, tmp_path_factory):
    from overmerge.planner import make_plan

    old, new, upper = make_corpus_layers(corpus, tmp_path_factory.mktemp("corpus"))
    plan = make_plan(old, new, upper, include_unchanged=True)
    return {e.path: e for e in plan.entries}


def test_corpus_user_view_has_alice(corpus_plan):
    assert corpus_plan[b"etc/passwd"].your_change == "modified"


@pytest.mark.parametrize("path", sorted(EXPECTED))
def test_corpus_path(corpus_plan, path):
    cls, fields, why = EXPECTED[path]
    entry = corpus_plan.get(path.encode())
    assert entry is not None, f"{path} missing from the plan ({why})"
    got = {"class": entry.cls, **{k: getattr(entry, k) for k in fields}}
    assert got == {"class": cls, **fields}, f"{path}: {why}; reason given: {entry.reason}"


def test_corpus_no_root_entry_and_no_duplicates(corpus_plan):
    assert b"" not in corpus_plan
    assert all(not p.startswith(b"/") for p in corpus_plan)
