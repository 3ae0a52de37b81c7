"""Real Debian account files and dpkg database: bullseye (OLD) -> bookworm (NEW).

Pure file level: OLD is the bullseye file, NEW the bookworm file, yours is the
bullseye file edited here the way an administrator would (accounts added, a
group membership, a password set, a package held and one installed).
Every expectation is written out line by line from the bookworm file.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from overmerge.merge import merge_bytes
from overmerge.rules import load_rules


LESS_STANZA = b"""Package: less
Status: install ok installed
Priority: important
Section: text
Installed-Size: 293
Maintainer: Milan Kupcevic <milan@debian.org>
Architecture: amd64
Multi-Arch: foreign
Version: 551-2
Depends: libc6 (>= 2.14), libtinfo6 (>= 6)
Description: pager program similar to more
 This package provides "less", a file pager (that is, a memory-efficient
 utility for displaying text one screenful at a time).
Homepage: http://www.greenwoodsoftware.com/less
"""


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory, corpus: Path) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("corpus")
    out = []
    for release in ("bullseye", "bookworm"):
        dest = root / release
        dest.mkdir()
        subprocess.run(["tar", "--numeric-owner", "-xzf", str(corpus / f"{release}-etc.tar.gz"),
                        "-C", str(dest), "etc/passwd", "etc/group", "etc/shadow", "etc/gshadow",
                        "var/lib/dpkg/status"], check=True)
        out.append(dest)
    return out[0], out[1]


@pytest.fixture(scope="module")
def rules():
    return load_rules(host_dir=None)


def merge(rules, path: str, old: bytes, yours: bytes, new: bytes):
    rule = rules.match(path)
    assert rule is not None
    return merge_bytes(rule.strategy, old, yours, new, rule.options)


def lines(data: bytes) -> list[str]:
    return data.decode().splitlines()


def edit(data: bytes, replace: dict[str, str] | None = None, append: list[str] = ()) -> bytes:
    """Replace whole lines that start with a key ("name:"), then append lines."""
    out = []
    for line in lines(data):
        for prefix, new in (replace or {}).items():
            if line.startswith(prefix):
                line = new
        out.append(line)
    return ("\n".join(out + list(append)) + "\n").encode()


def read(tree: Path, path: str) -> bytes:
    return (tree / path).read_bytes()


ALICE = "alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash"
BOB = "bob:x:1001:1001::/home/bob:/bin/sh"


def test_passwd(trees, rules) -> None:
    old_tree, new_tree = trees
    old, new = read(old_tree, "etc/passwd"), read(new_tree, "etc/passwd")
    # The vendor update moved _apt from uid 100 to 42 and removed gnats.
    assert "_apt:x:42:65534::/nonexistent:/usr/sbin/nologin" in lines(new)
    yours = edit(old, {"root:": "root:x:0:0:root:/root:/bin/zsh"}, [ALICE, BOB])
    result = merge(rules, "etc/passwd", old, yours, new)
    assert result.clean, result.hunks
    expected = [("root:x:0:0:root:/root:/bin/zsh" if ln.startswith("root:") else ln) for ln in lines(new)]
    assert lines(result.merged) == expected + [ALICE, BOB]
    assert not any(ln.startswith("gnats:") for ln in lines(result.merged))


def test_passwd_uid_collision_with_vendor_moved_account(trees, rules) -> None:
    old_tree, new_tree = trees
    old, new = read(old_tree, "etc/passwd"), read(new_tree, "etc/passwd")
    # You gave uid 42 to a service account; the vendor update moved _apt to uid 42.
    yours = edit(old, append=["svc:x:42:42::/srv:/usr/sbin/nologin"])
    result = merge(rules, "etc/passwd", old, yours, new)
    (hunk,) = result.hunks
    assert hunk.note == "uid 42 used by svc (your change) and by _apt (vendor update)"
    assert hunk.yours == (b"svc:x:42:42::/srv:/usr/sbin/nologin\n",)
    assert hunk.new == (b"_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\n",)


def test_group(trees, rules) -> None:
    old_tree, new_tree = trees
    old, new = read(old_tree, "etc/group"), read(new_tree, "etc/group")
    yours = edit(old, {"sudo:": "sudo:x:27:alice", "users:": "users:x:100:alice,bob"},
                 ["alice:x:1000:", "bob:x:1001:"])
    result = merge(rules, "etc/group", old, yours, new)
    assert result.clean
    expected = []
    for ln in lines(new):
        ln = {"sudo:x:27:": "sudo:x:27:alice", "users:x:100:": "users:x:100:alice,bob"}.get(ln, ln)
        expected.append(ln)
    assert lines(result.merged) == expected + ["alice:x:1000:", "bob:x:1001:"]
    assert "gnats:x:41:" not in lines(result.merged)  # the vendor removed it, you did not touch it


def test_shadow(trees, rules) -> None:
    old_tree, new_tree = trees
    old, new = read(old_tree, "etc/shadow"), read(new_tree, "etc/shadow")
    root = "root:$y$j9T$Sa1t$Hash0fY0urRootPassw0rd:20800:0:99999:7:::"
    yours = edit(old, {"root:": root},
                 ["alice:$y$j9T$A$alice:20800:0:99999:7:::", "bob:!:20800:0:99999:7:::"])
    result = merge(rules, "etc/shadow", old, yours, new)
    assert result.clean
    # NEW's order (bookworm moved nobody), your password for root, your accounts at the end.
    expected = [root if ln.startswith("root:") else ln for ln in lines(new)]
    assert lines(result.merged) == expected + ["alice:$y$j9T$A$alice:20800:0:99999:7:::",
                                                "bob:!:20800:0:99999:7:::"]


def test_gshadow(trees, rules) -> None:
    old_tree, new_tree = trees
    old, new = read(old_tree, "etc/gshadow"), read(new_tree, "etc/gshadow")
    yours = edit(old, {"sudo:": "sudo:*::alice"}, ["alice:!::", "bob:!::"])
    result = merge(rules, "etc/gshadow", old, yours, new)
    assert result.clean
    expected = ["sudo:*::alice" if ln == "sudo:*::" else ln for ln in lines(new)]
    assert lines(result.merged) == expected + ["alice:!::", "bob:!::"]


def test_dpkg_status(trees, rules) -> None:
    old_tree, new_tree = trees
    old, new = read(old_tree, "var/lib/dpkg/status"), read(new_tree, "var/lib/dpkg/status")
    # You held bash (apt-mark hold) and installed less; the vendor upgraded bash.
    assert b"Package: bash\nEssential: yes\nStatus: install ok installed\n" in old
    yours = old.replace(b"Package: bash\nEssential: yes\nStatus: install ok installed\n",
                        b"Package: bash\nEssential: yes\nStatus: hold ok installed\n") + LESS_STANZA + b"\n"
    result = merge(rules, "var/lib/dpkg/status", old, yours, new)
    assert result.clean, [h.note for h in result.hunks]
    expected = new.replace(b"Package: bash\nEssential: yes\nStatus: install ok installed\n",
                           b"Package: bash\nEssential: yes\nStatus: hold ok installed\n") + LESS_STANZA + b"\n"
    assert lines(result.merged) == lines(expected)
    assert result.merged == expected  # byte for byte, blank line after each stanza included
    bash = result.merged.split(b"Package: bash\n", 1)[1].split(b"\n\n", 1)[0]
    assert b"Status: hold ok installed" in bash and b"Version: 5.2.15" in bash  # your hold, vendor's version
