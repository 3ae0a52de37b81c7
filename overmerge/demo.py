"""``overmerge demo``: a small, realistic upgrade to look at and play with.

OLD and NEW are two versions of an /etc tree. TOP is made the way a user makes it:
the kernel's overlayfs is mounted over OLD and the edits are done through the mount.
As root the mount is an ordinary one; otherwise it happens inside a user namespace
(``unshare -rm``, overlay ``-o userxattr``), so TOP carries ``user.overlay.*`` markers.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from overmerge.errors import OvermergeError
from overmerge.mounts import can_mount_overlay, overlay, overlay_options

_PASSWD = """\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bin:x:2:2:bin:/bin:/usr/sbin/nologin
sys:x:3:3:sys:/dev:/usr/sbin/nologin
sync:x:4:65534:sync:/bin:/bin/sync
man:x:6:12:man:/var/cache/man:/usr/sbin/nologin
mail:x:8:8:mail:/var/mail:/usr/sbin/nologin
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
"""
_GROUP = """\
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
man:x:12:
mail:x:8:
www-data:x:33:
shadow:x:42:
users:x:100:
nogroup:x:65534:
"""
_SHADOW = """\
root:*:19000:0:99999:7:::
daemon:*:19000:0:99999:7:::
bin:*:19000:0:99999:7:::
sys:*:19000:0:99999:7:::
sync:*:19000:0:99999:7:::
man:*:19000:0:99999:7:::
mail:*:19000:0:99999:7:::
www-data:*:19000:0:99999:7:::
nobody:*:19000:0:99999:7:::
"""
_SSHD = """\
# See sshd_config(5).
Include /etc/ssh/sshd_config.d/*.conf
#PermitRootLogin prohibit-password
PasswordAuthentication yes
KbdInteractiveAuthentication no
X11Forwarding yes
PrintMotd no
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
"""
_APP = "# demo app\nlisten=127.0.0.1\nport=8080\nworkers=4\n"

# path -> content, or (content, mode, gid)
OLD_ETC: dict[str, object] = {
    "etc/passwd": _PASSWD,
    "etc/group": _GROUP,
    "etc/shadow": (_SHADOW, 0o640, 42),
    "etc/ssh/sshd_config": _SSHD,
    "etc/app.conf": _APP,
    "etc/app.d/10-defaults.conf": "threads=2\n",
    "etc/app.d/20-logging.conf": "log=syslog\n",
    "etc/motd": "Welcome to the demo system.\n",
    "etc/old-daemon.conf": "# this daemon is gone in NEW\nenabled=yes\n",
    "etc/hostname": "demo\n",
}

NEW_ETC: dict[str, object] = {
    **{k: v for k, v in OLD_ETC.items() if k != "etc/old-daemon.conf"},
    # The vendor adds a system account (and its group and shadow entry).
    "etc/passwd": _PASSWD.replace(
        "\nnobody:", "\nsystemd-network:x:998:998:systemd Network Management:/:/usr/sbin/nologin\nnobody:", 1),
    "etc/group": _GROUP.replace("\nnogroup:", "\nsystemd-network:x:998:\nnogroup:", 1),
    "etc/shadow": (_SHADOW.replace("\nnobody:", "\nsystemd-network:!*:19500::::::\nnobody:", 1), 0o640, 42),
    # A security default changes.
    "etc/ssh/sshd_config": _SSHD.replace("X11Forwarding yes", "X11Forwarding no"),
    # The vendor changes the default port the user also changed.
    "etc/app.conf": _APP.replace("port=8080", "port=8081"),
    "etc/app.d/30-metrics.conf": "metrics=on\n",
}

# The user's changes, made through the overlay mount (cwd = the user view).
USER_EDITS = r"""
echo 'alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash' >> etc/passwd
echo 'alice:x:1000:' >> etc/group
sed -i 's/^users:x:100:$/users:x:100:alice/' etc/group
echo 'alice:$y$j9T$demo$demo:19700:0:99999:7:::' >> etc/shadow
sed -i 's/^PasswordAuthentication yes/PasswordAuthentication no/' etc/ssh/sshd_config
sed -i 's/^port=8080/port=9000/' etc/app.conf
rm etc/motd
rm -rf etc/app.d
mkdir etc/app.d
echo 'threads=16' > etc/app.d/50-local.conf
echo 'demo-box' > etc/hostname
"""


@dataclass
class Scenario:
    base: Path
    old: Path
    new: Path
    upper: Path
    work: Path
    merged: Path
    userns: bool


def write_layer(root: Path, files: Mapping[str, object], *, owners: bool) -> None:
    """Write an /etc tree; ``owners`` sets root ownership (only possible as root)."""
    for rel, spec in files.items():
        content, mode, gid = (spec, 0o644, 0) if isinstance(spec, str) else spec
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        os.chmod(path, mode)
        if owners:
            os.chown(path, 0, gid)


def _run_edits_as_root(s: Scenario) -> None:
    with overlay([s.old], s.merged, upperdir=s.upper, workdir=s.work):
        proc = subprocess.run(["sh", "-ec", "umask 022\n" + USER_EDITS], cwd=s.merged,
                              capture_output=True, text=True, errors="replace")
    if proc.returncode != 0:
        raise OvermergeError(f"demo: the user edits failed: {' '.join(proc.stderr.split())}")


_USERNS_SCRIPT = """\
set -e
mount -t overlay overlay -o "$1" "$2"
cd "$2"
rc=0
(umask 022; set -e; eval "$3") || rc=$?
cd /
umount "$2"
exit $rc
"""


def _run_edits_in_userns(s: Scenario) -> None:
    opts = overlay_options([s.old], upperdir=s.upper, workdir=s.work, options=["userxattr"])
    # The mount lives in a private mount namespace and vanishes with it at the latest.
    proc = subprocess.run(
        ["unshare", "-rm", "sh", "-c", _USERNS_SCRIPT, "overmerge-demo", opts, str(s.merged), USER_EDITS],
        capture_output=True, text=True, errors="replace",
    )
    if proc.returncode != 0:
        raise OvermergeError(f"demo: the user edits failed in a user namespace: {' '.join(proc.stderr.split())}")


def build_scenario(base: Path, *, userns: bool | None = None) -> Scenario:
    """Write OLD and NEW under ``base`` and make TOP through a real overlay mount."""
    if userns is None:
        userns = os.geteuid() != 0
    base.mkdir(parents=True, exist_ok=True)
    s = Scenario(base, base / "old", base / "new", base / "upper", base / "work", base / "merged", userns)
    for d in (s.upper, s.work, s.merged):
        d.mkdir()
    owners = os.geteuid() == 0
    write_layer(s.old, OLD_ETC, owners=owners)
    write_layer(s.new, NEW_ETC, owners=owners)
    if userns:
        _run_edits_in_userns(s)
    else:
        _run_edits_as_root(s)
    return s


def _show_apply(s: Scenario, plan_file: Path, out: TextIO) -> int:
    """The rest of the main job: apply with a policy, verify with the kernel, show the result."""
    from overmerge import cli

    new_upper = s.base / "new-upper"
    out.write(
        "Now `overmerge apply` re-stacks TOP onto NEW. The open conflicts are settled by the\n"
        "keep-user policy here (the vendor's side is saved aside, never deleted); --verify\n"
        "mounts NEW + the new upper and compares the kernel's view with the merged view.\n\n"
    )
    out.flush()
    code = cli.main(["apply", str(plan_file), "--output", str(new_upper),
                     "--unresolved", "keep-user", "--verify"])
    if code != 0:
        return code
    with overlay([new_upper, s.new], s.merged, options=["ro"]):
        passwd = (s.merged / "etc" / "passwd").read_text()
        sshd = (s.merged / "etc" / "ssh" / "sshd_config").read_text()
    wanted = [line for line in passwd.splitlines() if line.startswith(("alice:", "systemd-network:"))]
    settings = [line for line in sshd.splitlines() if line.startswith(("PasswordAuthentication", "X11Forwarding"))]
    out.write("\nThe merged view, as the kernel shows NEW + the new upper:\n")
    out.write("  etc/passwd:          " + "\n                       ".join(wanted) + "\n")
    out.write("  etc/ssh/sshd_config: " + "\n                       ".join(settings) + "\n")
    out.write("  (your account and the vendor's new system account; your sshd setting and the vendor's)\n\n")
    return 0


def run_demo(keep: Path | None = None, out: TextIO | None = None) -> int:
    """Build the scenario, print what happened and the plan; 0 when the demo ran."""
    from overmerge import cli  # the demo shows the real plan command's output

    out = out or sys.stdout
    ok, why = can_mount_overlay()
    if not ok:
        raise OvermergeError(f"demo needs overlayfs: {why}")
    userns = os.geteuid() != 0
    if keep is not None:
        keep = keep.absolute()
        if keep.exists() and (not keep.is_dir() or any(keep.iterdir())):
            raise OvermergeError(f"{keep}: --keep needs a new or empty directory")
        base = keep
        tmp = None
    else:
        tmp = tempfile.mkdtemp(prefix="overmerge-demo-")
        base = Path(tmp)
    try:
        s = build_scenario(base, userns=userns)
        how = ("in a user namespace (unshare -rm, overlay -o userxattr), as you are not root"
               if userns else "as root")
        out.write(
            "overmerge demo: an /etc upgrade.\n"
            f"  OLD  {s.old}   the base your changes were made on\n"
            f"  NEW  {s.new}   the vendor's update (adds systemd-network, changes sshd and app defaults)\n"
            f"  TOP  {s.upper}   your changes, made through overlayfs {how}:\n"
            "       added user alice, PasswordAuthentication no, port=9000 in etc/app.conf,\n"
            "       deleted etc/motd, replaced etc/app.d, renamed the host\n\n"
        )
        out.flush()
        plan_file = base / "plan.json"
        code = cli.main(["plan", "--old", str(s.old), "--new", str(s.new), "--upper", str(s.upper),
                         "-o", str(plan_file)])
        if code not in (0, 1):
            return code
        out.write("\n")
        if userns:
            out.write("(Applying writes whiteouts and trusted xattrs: run the demo as root to see "
                      "`overmerge apply` re-stack TOP onto NEW.)\n\n")
        else:
            code = _show_apply(s, plan_file, out)
            if code != 0:
                return code
        if keep is not None:
            out.write(
                f"The scenario is kept in {base}. Try:\n"
                f"  overmerge plan --old {s.old} --new {s.new} --upper {s.upper} --all\n"
                f"  overmerge resolve {plan_file}\n"
            )
        else:
            out.write("(Run `overmerge demo --keep DIR` to keep the scenario and try it yourself.)\n")
        return 0
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
