"""A small demo plan with one conflict of each kind and two changes of yours (used by tests, the benchmark and docs).

Builds OLD, NEW and TOP (an upperdir: whiteouts are 0/0 character devices, so
making one needs CAP_MKNOD) under ``root`` at fixed relative names, then plans.
No Textual import here.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

APP_OLD = "".join(f"option{i} = {i}\n" for i in range(1, 21))
APP_YOURS = APP_OLD.replace("option3 = 3", "option3 = mine").replace("option15 = 15", "option15 = local")
APP_NEW = APP_OLD.replace("option3 = 3", "option3 = vendor").replace("option15 = 15", "option15 = 150")

MOTD_OLD = "Welcome to Example OS 1.0\nHave a lot of fun.\n"
MOTD_YOURS = "Welcome to the lab machine\nHave a lot of fun.\n"
MOTD_NEW = "Welcome to Example OS 2.0\nHave a lot of fun.\n"

PASSWD_OLD = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
PASSWD_YOURS = PASSWD_OLD + "alice:x:1000:1000:Alice:/home/alice:/bin/bash\n"
PASSWD_NEW = PASSWD_OLD + "_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\n"


def _write(root: Path, rel: str, data: str | bytes, mtime: int) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    os.utime(path, (mtime, mtime))


def build_layers(root: Path, *, extra_conflicts: int = 0) -> tuple[Path, Path, Path]:
    """OLD, NEW and TOP under ``root``; ``extra_conflicts`` adds that many one-hunk text conflicts."""
    old, new, upper = root / "old", root / "new", root / "upper"
    for d in (old, new, upper):
        d.mkdir(parents=True, exist_ok=True)
    files_old = {
        "etc/app.conf": APP_OLD,
        "etc/motd": MOTD_OLD,
        "etc/passwd": PASSWD_OLD,
        "etc/cron.conf": "run=daily\n",
        "etc/tool.conf": "mode=fast\n",
        "etc/vendor-gone.conf": "legacy=1\n",
        "usr/share/logo.bin": b"\0LOGO1\0",
        "etc/hostname": "example\n",
    }
    files_new = {
        "etc/app.conf": APP_NEW,
        "etc/motd": MOTD_NEW,
        "etc/passwd": PASSWD_NEW,
        "etc/cron.conf": "run=hourly\n",
        "etc/tool.conf": "mode=safe\n",
        "usr/share/logo.bin": b"\0LOGO2-vendor\0",
        "etc/hostname": "example\n",
    }
    files_top = {
        "etc/app.conf": APP_YOURS,
        "etc/motd": MOTD_YOURS,
        "etc/passwd": PASSWD_YOURS,
        "etc/vendor-gone.conf": "legacy=1\nmine=1\n",
        "usr/share/logo.bin": b"\0LOGO1-mine\0",
        "etc/hostname": "lab-01\n",  # your change only (user-modified)
    }
    for i in range(extra_conflicts):
        name = f"etc/many/conf{i:04d}.conf"
        base = "".join(f"k{j}=v{j}\n" for j in range(8))
        files_old[name] = base
        files_new[name] = base.replace("k4=v4", f"k4=vendor{i}")
        files_top[name] = base.replace("k4=v4", f"k4=mine{i}")
    for rel, data in files_old.items():
        _write(old, rel, data, 1_600_000_000)
    for rel, data in files_new.items():
        _write(new, rel, data, 1_700_000_000)
    for rel, data in files_top.items():
        _write(upper, rel, data, 1_650_000_000)
    # Your change: deleted etc/cron.conf (whiteout) — the vendor modified it.
    os.mknod(upper / "etc/cron.conf", stat.S_IFCHR | 0o000, os.makedev(0, 0))
    # Your change: etc/tool.conf became a symlink — the vendor modified the file.
    os.symlink("/opt/tool/tool.conf", upper / "etc/tool.conf")
    # Your change only: etc/localtime added as a symlink (user-modified, not text).
    os.symlink("/usr/share/zoneinfo/UTC", upper / "etc/localtime")
    return old, new, upper


def build_plan(root: Path, *, extra_conflicts: int = 0, name: str = "plan.json") -> Path:
    """Build the demo layers under ``root`` and write the plan; returns the plan's path."""
    from overmerge.fsutil import write_atomic
    from overmerge.planner import make_plan
    from overmerge.report import dumps

    old, new, upper = build_layers(root, extra_conflicts=extra_conflicts)
    plan = make_plan(old, new, upper)
    plan.created = "2026-01-01T00:00:00+00:00"
    target = root / name
    write_atomic(str(target), dumps(plan.to_json()))
    return target


if __name__ == "__main__":  # python -m overmerge.tui.demo DIR
    import sys

    print(build_plan(Path(sys.argv[1]), extra_conflicts=int(sys.argv[2]) if len(sys.argv) > 2 else 0))
