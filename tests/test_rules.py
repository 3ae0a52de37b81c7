"""Rule files: loading, precedence, explain, and errors that name file and line."""
from __future__ import annotations

from pathlib import Path

import pytest

from overmerge.errors import RuleError
from overmerge.merge import merge_bytes
from overmerge.rules import (
    Rule, glob_regex, load_rules, merge_with_rule, parse_rule_file, shipped_rules_dir, specificity,
)

REQUIRED = {
    "etc/passwd": "records", "etc/group": "records", "etc/shadow": "records", "etc/gshadow": "records",
    "etc/subuid": "records", "etc/subgid": "records", "etc/shells": "set", "etc/hosts": "records",
    "etc/fstab": "records", "etc/login.defs": "keyvalue", "etc/adduser.conf": "keyvalue",
    "etc/sysctl.conf": "keyvalue", "etc/sysctl.d/99-local.conf": "keyvalue",
    "etc/default/useradd": "keyvalue", "etc/ssh/sshd_config": "keyvalue",
    "var/lib/dpkg/status": "deb822", "etc/ld.so.cache": "regenerate", "etc/machine-id": "keep-user",
    "etc/ssh/ssh_host_ed25519_key": "keep-user", "etc/ssh/ssh_host_rsa_key.pub": "keep-user",
}


def write(d: Path, name: str, text: str) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_text(text)
    return d


@pytest.mark.parametrize("path,strategy", sorted(REQUIRED.items()))
def test_shipped_rules_cover_the_system_files(path: str, strategy: str) -> None:
    rule = load_rules(host_dir=None).match(path)
    assert rule is not None and rule.strategy == strategy


def test_shipped_dir_is_the_repo_rules_dir() -> None:
    assert shipped_rules_dir() == Path(__file__).resolve().parent.parent / "rules"


def test_no_rule_means_text() -> None:
    rules = load_rules(host_dir=None)
    assert rules.match("etc/motd") is None
    rule, reasons = rules.explain("etc/motd")
    assert rule is None and "text" in reasons[0]


def test_globs() -> None:
    assert glob_regex("etc/default/*").fullmatch("etc/default/grub")
    assert not glob_regex("etc/default/*").fullmatch("etc/default/grub.d/x.cfg")
    assert glob_regex("etc/**/*.conf").fullmatch("etc/a/b/c.conf")
    assert glob_regex("etc/**/*.conf").fullmatch("etc/c.conf")
    assert glob_regex("etc/ssh/ssh_host_[!x]*_key").fullmatch("etc/ssh/ssh_host_rsa_key")
    assert specificity("etc/passwd") > specificity("etc/pass*") > specificity("etc/*")


def test_later_definition_overrides_by_name_and_host_then_extra_order(tmp_path: Path) -> None:
    host = write(tmp_path / "host", "a.yaml", "rules:\n  - name: passwd\n    paths: etc/passwd\n    strategy: ask\n")
    extra = write(tmp_path / "extra", "a.yaml", "rules:\n  - name: passwd\n    paths: [etc/passwd]\n    strategy: take-new\n")
    assert load_rules(host_dir=host).match("etc/passwd").strategy == "ask"
    rules = load_rules([extra], host_dir=host)
    assert rules.match("etc/passwd").strategy == "take-new"
    assert [r.name for r in rules.rules].count("passwd") == 1
    assert rules.match("etc/passwd").source.endswith("extra/a.yaml:2")


def test_most_specific_glob_wins_then_last_loaded(tmp_path: Path) -> None:
    extra = write(tmp_path / "x", "r.yaml", "rules:\n"
                  "  - {name: all-etc, paths: ['etc/**'], strategy: ask}\n"
                  "  - {name: my-default, paths: ['etc/default/*'], strategy: take-new}\n")
    rules = load_rules([extra], host_dir=None)
    assert rules.match("etc/passwd").name == "passwd"  # exact path beats etc/**
    assert rules.match("etc/motd").name == "all-etc"
    # Same glob as the shipped etc-default rule: the one loaded last wins.
    assert rules.match("etc/default/useradd").name == "my-default"
    rule, reasons = rules.explain("etc/default/useradd")
    assert rule.name == "my-default"
    assert any("etc-default" in r and "also matches" in r for r in reasons)
    assert any("most specific" in r for r in reasons)


def test_missing_extra_dir_is_an_error_missing_host_dir_is_not(tmp_path: Path) -> None:
    assert load_rules(host_dir=tmp_path / "absent").rules
    with pytest.raises(RuleError, match="not found"):
        load_rules([tmp_path / "absent"], host_dir=None)


@pytest.mark.parametrize("text,line,message", [
    ("rules:\n  - name: x\n    paths: [a\n", 4, "invalid YAML"),
    ("rules:\n  - name: x\n    paths: [etc/x]\n    strategy: magic\n", 4, "unknown strategy 'magic'"),
    ("rules:\n  - name: x\n    paths: [etc/x]\n", 2, "missing 'strategy'"),
    ("rules:\n  - name: x\n    paths: [/etc/x]\n    strategy: text\n", 3, "relative to the layer root"),
    ("rules:\n  - name: x\n    paths: [etc/x]\n    strategy: records\n    options: {colour: red}\n", 5,
     "unknown option 'colour'"),
    ("rules:\n  - name: x\n    paths: [etc/x]\n    strategy: records\n    options:\n      key: first\n", 6,
     "list of field indexes"),
    ("rules:\n  - name: x\n    paths: [etc/x]\n    strategy: text\n    extra: 1\n", 5, "unknown rule key 'extra'"),
    ("rules:\n  - {name: x, paths: [a], strategy: text}\n  - {name: x, paths: [b], strategy: text}\n", 3,
     "defined twice"),
    ("rulez: []\n", 1, "unknown top-level key"),
    ("rules:\n  - just a string\n", 2, "must be a mapping"),
    ("rules:\n  - name: x\n    paths: [etc/x]\n    strategy: keyvalue\n    options: {block_start: '('}\n", 5,
     "not a valid regex"),
])
def test_broken_rule_file_names_file_line_and_problem(tmp_path: Path, text: str, line: int, message: str) -> None:
    d = write(tmp_path / "r", "bad.yaml", text)
    with pytest.raises(RuleError) as info:
        load_rules([d], host_dir=None)
    assert f"{d / 'bad.yaml'}:{line}:" in info.value.message
    assert message in info.value.message
    assert info.value.exit_code == 2


def test_empty_rule_file_is_fine() -> None:
    assert parse_rule_file(b"", "empty.yaml") == []
    assert parse_rule_file(b"rules:\n", "empty.yaml") == []


def test_merge_with_rule() -> None:
    assert merge_with_rule(None, b"a\n", b"b\n", b"a\n").merged == b"b\n"
    assert merge_with_rule(None, b"a\0", b"b\0", b"c\0").reason.startswith("binary")
    assert "larger than" in merge_with_rule(None, b"a\n", b"bb\n", b"cc\n", max_size=2).reason
    rule = Rule("shells", ("etc/shells",), "set", {}, "test:1")
    assert merge_with_rule(rule, b"/bin/sh\n", b"/bin/sh\n/bin/zsh\n", b"/bin/sh\n/bin/bash\n").merged == \
        b"/bin/sh\n/bin/bash\n/bin/zsh\n"
    assert merge_bytes("set", b"", b"", b"").merged == b""
