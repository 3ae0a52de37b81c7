"""``overmerge merge-file`` and ``overmerge rules`` through the CLI, and as a real git merge driver."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from overmerge.cli import main

PASSWD = b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"


def files(tmp_path: Path, old: bytes, yours: bytes, new: bytes) -> list[str]:
    paths = []
    for name, data in (("old", old), ("yours", yours), ("new", new)):
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    return paths


def test_clean_merge_to_stdout(tmp_path: Path, capsysbinary) -> None:
    args = files(tmp_path, PASSWD, PASSWD + b"alice:x:1000:1000::/home/alice:/bin/sh\n",
                 PASSWD + b"_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\n")
    assert main(["merge-file", "--no-host-rules", "--path", "etc/passwd", *args]) == 0
    assert capsysbinary.readouterr().out == (PASSWD + b"_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\n"
                                             b"alice:x:1000:1000::/home/alice:/bin/sh\n")


def test_conflict_writes_markers_only_to_out_and_exits_1(tmp_path: Path, capsysbinary) -> None:
    args = files(tmp_path, PASSWD, PASSWD + b"alice:x:1001:1001::/home/alice:/bin/sh\n",
                 PASSWD + b"_apt:x:1001:65534::/nonexistent:/usr/sbin/nologin\n")
    out = tmp_path / "out"
    assert main(["merge-file", "--no-host-rules", "--path", "/etc/passwd", *args, "-o", str(out)]) == 1
    captured = capsysbinary.readouterr()
    assert captured.out == b""
    assert b"uid 1001 used by alice (your change) and by _apt (vendor update)" in captured.err
    text = out.read_bytes()
    assert b"<<<<<<< your change\nalice:" in text and b">>>>>>> vendor update\n" in text


def test_rule_by_name_and_text_without_path(tmp_path: Path, capsysbinary) -> None:
    args = files(tmp_path, b"/bin/sh\n", b"/bin/sh\n/bin/zsh\n", b"/bin/bash\n/bin/sh\n")
    assert main(["merge-file", "--no-host-rules", "--rule", "shells", *args]) == 0
    assert capsysbinary.readouterr().out == b"/bin/bash\n/bin/sh\n/bin/zsh\n"
    # Without --path/--rule the same input is a text merge: both sides added at the edges.
    assert main(["merge-file", "--no-host-rules", *args]) == 0


def test_errors_exit_2(tmp_path: Path, capsys) -> None:
    args = files(tmp_path, b"a\n", b"b\n", b"c\n")
    assert main(["merge-file", "--no-host-rules", "--rule", "nope", *args]) == 2
    assert "no rule named 'nope'" in capsys.readouterr().err
    assert main(["merge-file", "--no-host-rules", args[0], args[1], str(tmp_path / "missing")]) == 2
    assert "NEW file not found" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.yaml").write_text("rules:\n  - name: x\n    paths: [a]\n    strategy: wat\n")
    assert main(["merge-file", "--no-host-rules", "--rules", str(bad), *args]) == 2
    assert f"{bad / 'x.yaml'}:4: rule 'x': unknown strategy 'wat'" in capsys.readouterr().err


def test_binary_is_not_merged_and_yours_left_alone(tmp_path: Path, capsys) -> None:
    args = files(tmp_path, b"a\0", b"b\0", b"c\0")
    assert main(["merge-file", "--no-host-rules", *args, "-o", args[1]]) == 1
    assert Path(args[1]).read_bytes() == b"b\0"
    assert "binary" in capsys.readouterr().err


def test_rules_list_and_explain(tmp_path: Path, capsys) -> None:
    assert main(["rules", "--no-host-rules"]) == 0
    out = capsys.readouterr().out
    assert "passwd" in out and "dpkg-status" in out and "deb822" in out
    assert main(["rules", "explain", "--no-host-rules", "/etc/group"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("etc/group: rule group, strategy records")
    extra = tmp_path / "r"
    extra.mkdir()
    (extra / "local.yaml").write_text("rules:\n  - {name: group, paths: [etc/group], strategy: ask}\n")
    assert main(["rules", "--no-host-rules", "--rules", str(extra), "explain", "etc/group"]) == 0
    assert "strategy ask" in capsys.readouterr().out


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_as_git_merge_driver(tmp_path: Path) -> None:
    """The documented driver line, in a real repository, through a real ``git merge``."""
    repo = tmp_path / "repo"
    env_cmd = f"{sys.executable} -m overmerge merge-file --no-host-rules --path %P %O %A %B -o %A"

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@e",
                               "-c", f"merge.overmerge.driver={env_cmd}", *args],
                              capture_output=True, text=True)

    (repo / "etc").mkdir(parents=True)
    git("init", "-q", "-b", "main")
    (repo / ".gitattributes").write_text("etc/passwd merge=overmerge\n")
    (repo / "etc/passwd").write_bytes(PASSWD)
    git("add", "."), git("commit", "-qm", "old")
    git("checkout", "-qb", "vendor")
    (repo / "etc/passwd").write_bytes(PASSWD + b"_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\n")
    git("commit", "-qam", "vendor update")
    git("checkout", "-q", "main")
    (repo / "etc/passwd").write_bytes(PASSWD + b"alice:x:1000:1000::/home/alice:/bin/sh\n")
    git("commit", "-qam", "your change")
    merge = git("merge", "-q", "--no-edit", "vendor")
    assert merge.returncode == 0, merge.stderr
    assert (repo / "etc/passwd").read_bytes() == (PASSWD + b"_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\n"
                                                  b"alice:x:1000:1000::/home/alice:/bin/sh\n")


def test_writing_yours_in_place_keeps_its_mode(tmp_path: Path) -> None:
    # As a git merge driver, OUT is YOURS itself (%A): replacing it must not make it 0600.
    old, yours, new = files(tmp_path, PASSWD, PASSWD + b"alice:x:1000:1000::/home/alice:/bin/sh\n",
                            PASSWD + b"_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\n")
    Path(yours).chmod(0o644)
    assert main(["merge-file", "--no-host-rules", "--path", "etc/passwd", old, yours, new, "-o", yours]) == 0
    assert Path(yours).stat().st_mode & 0o7777 == 0o644
    assert b"_apt:" in Path(yours).read_bytes()
