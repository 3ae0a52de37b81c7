"""overmerge plan: classify every path and write the plan."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from overmerge.errors import EXIT_DECISIONS, EXIT_OK, InputError


def add_rules_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rules", metavar="DIR", action="append", type=Path, default=[],
                        help="extra rule directory (repeatable; later ones override earlier rules by name)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plan",
        help="classify every path of OLD, NEW and TOP and write a plan",
        description="Classify every path three-way (OLD is the common ancestor) and write a plan "
        "that `overmerge apply` and `overmerge resolve` consume. "
        "Exit 0: nothing needs a decision; 1: a conflict needs one; 2: error.",
    )
    p.add_argument("--old", required=True, metavar="OLD", help="the base layer TOP was made on")
    p.add_argument("--new", required=True, metavar="NEW", help="the upgraded base layer")
    p.add_argument("--upper", required=True, metavar="TOP", help="the overlayfs upperdir holding your changes")
    p.add_argument("-o", "--output", metavar="PLAN.json", help="write the plan here (atomically)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON on stdout instead of the summary")
    p.add_argument("--all", action="store_true", help="list unchanged paths too (JSON) and every change (summary)")
    p.add_argument("--checksum", action="store_true",
                   help="compare content of paths TOP does not touch too, instead of trusting size+mtime")
    p.add_argument("--max-merge-size", type=int, default=4 << 20, metavar="BYTES",
                   help="files larger than this are never line-merged (default 4 MiB)")
    add_rules_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from overmerge.fsutil import write_atomic
    from overmerge.planner import make_plan
    from overmerge.report import dumps, plan_summary

    if args.output and os.path.isdir(args.output):
        raise InputError(f"{args.output}: is a directory; -o takes the plan file's name")
    plan = make_plan(
        args.old, args.new, args.upper,
        rule_dirs=args.rules,
        checksum=args.checksum,
        include_unchanged=args.all,
        max_size=args.max_merge_size,
    )
    data = plan.to_json()
    if args.output:
        try:
            write_atomic(args.output, dumps(data))
        except OSError as exc:
            hint = ("create its directory first" if isinstance(exc, FileNotFoundError)
                    else "choose a writable place for -o")
            raise InputError(f"{args.output}: cannot write the plan: {exc.strerror}; {hint}") from exc
    if args.json:
        sys.stdout.write(dumps(data))
    else:
        color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
        sys.stdout.write(plan_summary(plan, color=color, limit=None if args.all else 100, plan_file=args.output))
    return EXIT_DECISIONS if plan.open_conflicts() else EXIT_OK
