"""``overmerge rules`` (list the rules in effect) and ``overmerge rules explain PATH``."""
from __future__ import annotations

import argparse
from pathlib import Path

from overmerge.rules import HOST_RULES_DIR, RuleSet, load_rules


def add_rules_options(parser: argparse.ArgumentParser, *, nested: bool = False) -> None:
    """``--rules DIR`` (repeatable) and ``--no-host-rules``, shared with merge-file.

    ``nested``: for a sub-subcommand, whose defaults must not overwrite what was
    given before its name (argparse copies a subparser's defaults over the parent's).
    """
    default: object = argparse.SUPPRESS if nested else []
    parser.add_argument("--rules", metavar="DIR", action="append", type=Path, default=default,
                        help="extra rule directory, loaded after the shipped and host rules "
                        "(repeatable; later definitions override earlier ones by name)")
    parser.add_argument("--no-host-rules", action="store_true",
                        default=argparse.SUPPRESS if nested else False,
                        help=f"do not read {HOST_RULES_DIR}")


def ruleset_from_args(args: argparse.Namespace) -> RuleSet:
    no_host = getattr(args, "no_host_rules", False)
    return load_rules(getattr(args, "rules", []), host_dir=None if no_host else HOST_RULES_DIR)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rules", help="list the merge rules in effect, or explain which applies to a path",
        description="List the merge rules in effect (shipped, host, --rules), "
        "or with 'explain PATH' say which rule applies to PATH and why.")
    add_rules_options(parser)
    sub = parser.add_subparsers(dest="rules_action", metavar="ACTION")
    explain = sub.add_parser("explain", help="which rule applies to PATH, and why")
    explain.add_argument("path", metavar="PATH", help="path relative to the layer root, e.g. etc/passwd")
    add_rules_options(explain, nested=True)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    ruleset = ruleset_from_args(args)
    if getattr(args, "rules_action", None) == "explain":
        path = args.path.lstrip("/")
        rule, reasons = ruleset.explain(path)
        print(f"{path}: " + (f"rule {rule.name}, strategy {rule.strategy}" if rule else "no rule (text)"))
        for reason in reasons:
            print(f"  {reason}")
        return 0
    width = max((len(r.name) for r in ruleset.rules), default=4)
    for rule in ruleset.rules:
        print(f"{rule.name:<{width}}  {rule.strategy:<10}  {' '.join(rule.globs)}  [{rule.source}]")
    return 0
