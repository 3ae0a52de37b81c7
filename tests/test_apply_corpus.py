"""Apply a real Debian upgrade: bullseye (OLD) -> bookworm (NEW), TOP made through an
overlay mount (accounts added, conffiles edited, a file deleted, a directory replaced),
then mount NEW + new upper and check what an administrator expects to see."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from applyhelp import check_upper_format, kernel_tree
from overlayfs import requires_root
from test_corpus_plan import make_corpus_layers

pytestmark = [requires_root, pytest.mark.root, pytest.mark.slow]


def _names(data: bytes) -> set[bytes]:
    return {line.split(b":", 1)[0] for line in data.splitlines() if line and not line.startswith(b"#")}


def _read(tree, path: str) -> bytes | None:
    node = tree.nodes.get(path.encode())
    if node is None:
        return None
    return Path(os.fsdecode(node.source)).read_bytes()


def test_corpus_apply(corpus: Path, tmp_path: Path, run_cli) -> None:
    old, new, upper = make_corpus_layers(corpus, tmp_path)
    plan = tmp_path / "plan.json"
    proc = run_cli("plan", "--old", old, "--new", new, "--upper", upper, "-o", plan)
    assert proc.returncode in (0, 1), proc.stderr
    out = tmp_path / "newupper"
    proc = run_cli("apply", plan, "--output", out, "--unresolved", "keep-user", "--verify", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["verified"]
    assert not check_upper_format(out, "trusted")

    new_passwd = (new / "etc/passwd").read_bytes()
    new_group = (new / "etc/group").read_bytes()

    def check(tree):
        got = {p: _read(tree, p) for p in (
            "etc/passwd", "etc/group", "etc/shadow", "etc/gshadow", "etc/hostname", "etc/bash.bashrc",
            "etc/shells", "etc/cron.daily/dpkg", "etc/debian_version", "etc/mke2fs.conf",
            "var/lib/dpkg/status", "etc/security/mine.conf", "etc/issue", "etc/login.defs")}
        got["motd"] = b"etc/motd" in tree.nodes
        got["netconfig"] = b"etc/netconfig" in tree.nodes
        got["which"] = tree.nodes.get(b"etc/alternatives/which")
        got["dpkg_mode"] = tree.nodes[b"etc/cron.daily/dpkg"].mode
        got["security_old"] = b"etc/security/access.conf" in tree.nodes
        return got

    got = kernel_tree(out, new, "trusted", check)
    # Accounts you added exist; every bookworm system account and group exists.
    for f in ("etc/passwd", "etc/group", "etc/shadow", "etc/gshadow"):
        assert b"alice" in _names(got[f]), f"{f}: your account is gone"
    assert _names(new_passwd) <= _names(got["etc/passwd"]), "a bookworm system account is missing"
    assert _names(new_group) <= _names(got["etc/group"]), "a bookworm system group is missing"
    apt = [line for line in got["etc/passwd"].splitlines() if line.startswith(b"_apt:")]
    assert apt and apt[0].split(b":")[2] == b"42", "vendor's _apt uid change did not arrive"
    # Your config edits survive.
    assert got["etc/hostname"] == b"buildhost\n"
    assert b"alias ll=" in got["etc/bash.bashrc"]
    assert b"/bin/zsh" in got["etc/shells"]
    assert got["dpkg_mode"] == 0o700
    assert got["etc/cron.daily/dpkg"] == (new / "etc/cron.daily/dpkg").read_bytes(), "vendor's script, your mode"
    assert not got["motd"], "your deletion of etc/motd was undone"
    assert got["etc/security/mine.conf"] == b"local=1\n" and not got["security_old"]
    assert got["etc/issue"] == b"Welcome to build host \\n \\l\n"
    # Vendor changes to files you did not touch arrive.
    for p in ("etc/debian_version", "etc/mke2fs.conf", "var/lib/dpkg/status", "etc/login.defs"):
        assert got[p] == (new / p).read_bytes(), p
    assert not got["netconfig"]
    assert got["which"] is not None
    # The vendor's versions not taken are kept aside, never lost.
    aside = Path(result["aside"])
    assert (aside / "new/etc/issue").read_bytes() == (new / "etc/issue").read_bytes()
    listed = {e["path"] for e in json.loads((aside / "list.json").read_text())["aside"]}
    assert "etc/issue" in listed
    # Minimal: the new upper holds no copy of a file identical to NEW.
    assert not (out / "etc/debian_version").exists()
    assert stat.S_ISCHR(os.lstat(out / "etc/motd").st_mode)
