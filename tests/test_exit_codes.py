"""Exit codes are a contract: 0 done, 1 decisions needed, 2 error, 130 interrupted."""
from __future__ import annotations

import argparse

import pytest

from overmerge import cli, errors


@pytest.mark.parametrize(
    "cls,code",
    [
        (errors.OvermergeError, 2),
        (errors.UsageError, 2),
        (errors.InputError, 2),
        (errors.RuleError, 2),
        (errors.UnsafePathError, 2),
        (errors.StalePlanError, 2),
        (errors.MountedLayerError, 2),
        (errors.VerifyError, 2),
        (errors.DecisionsNeeded, 1),
        (errors.Interrupted, 130),
    ],
)
def test_error_classes_carry_their_exit_code(cls, code, monkeypatch, capsys):
    def boom(args: argparse.Namespace) -> int:
        raise cls("something at /some/path went wrong")

    monkeypatch.setattr("overmerge.cli.plan_cmd.run", boom)
    assert cli.main(["plan", "--old", "a", "--new", "b", "--upper", "c"]) == code
    err = capsys.readouterr().err
    assert err == "overmerge: something at /some/path went wrong\n"


def test_keyboard_interrupt_exits_130(monkeypatch, capsys):
    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr("overmerge.cli.plan_cmd.run", interrupted)
    assert cli.main(["plan", "--old", "a", "--new", "b", "--upper", "c"]) == 130
    assert capsys.readouterr().err.startswith("overmerge: interrupted")


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["plan", "--old", "a"])  # --new and --upper missing
    assert exc.value.code == 2
    assert cli.main([]) == 2  # no command: help on stderr


def test_missing_layer_exits_2_with_one_line(tmp_path, capsys):
    code = cli.main(["plan", "--old", str(tmp_path / "nope"), "--new", str(tmp_path), "--upper", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and str(tmp_path / "nope") in err[0]
