"""``overmerge merge-file``: one file through the merge engine.

Exit 0 when clean, 1 when conflicts remain (diff3-style markers are written to
OUT, or stdout), 2 on error. Usable as a git merge driver
(``overmerge merge-file --path %P %O %A %B -o %A``); see docs/merge-file.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from overmerge.cli.rules_cmd import add_rules_options, ruleset_from_args
from overmerge.errors import EXIT_DECISIONS, EXIT_OK, InputError, UsageError
from overmerge.merge import DEFAULT_MAX_SIZE, render_markers
from overmerge.rules import merge_with_rule


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "merge-file", help="three-way merge one file (also a git merge driver)",
        description="Merge your change (OLD -> YOURS) and the vendor update (OLD -> NEW) of one "
        "file with the rule for its path. Exit 0: clean; 1: conflicts, marked in the output; 2: error.")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--path", metavar="P", help="path the file has in the layer (e.g. etc/passwd): picks the rule")
    which.add_argument("--rule", metavar="NAME", help="use this rule by name")
    parser.add_argument("-o", "--output", metavar="OUT", type=Path,
                        help="write the result here (default: stdout); may be YOURS")
    parser.add_argument("--max-size", type=int, default=DEFAULT_MAX_SIZE, metavar="BYTES",
                        help="files larger than this are not line-merged (default: 4 MiB)")
    add_rules_options(parser)
    parser.add_argument("old", metavar="OLD", type=Path, help="the common ancestor (the old base's copy)")
    parser.add_argument("yours", metavar="YOURS", type=Path, help="your version")
    parser.add_argument("new", metavar="NEW", type=Path, help="the vendor's new version")
    parser.set_defaults(func=run)


def _read(path: Path, role: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{role} file not found: {path}") from None
    except IsADirectoryError:
        raise InputError(f"{role} is a directory, not a file: {path}") from None
    except OSError as exc:
        raise InputError(f"cannot read {role} {path}: {exc.strerror}") from None


def _write(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically, keeping its mode (it is often YOURS itself)."""
    from overmerge.fsutil import write_atomic

    try:
        write_atomic(path, data, keep_mode=True)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror}") from None


def run(args: argparse.Namespace) -> int:
    if args.max_size <= 0:
        raise UsageError("--max-size must be positive")
    old, yours, new = _read(args.old, "OLD"), _read(args.yours, "YOURS"), _read(args.new, "NEW")
    ruleset = ruleset_from_args(args)
    if args.rule:
        rule = next((r for r in ruleset.rules if r.name == args.rule), None)
        if rule is None:
            raise UsageError(f"no rule named {args.rule!r} (see 'overmerge rules')")
    else:
        rule = ruleset.match(args.path) if args.path else None
    result = merge_with_rule(rule, old, yours, new, max_size=args.max_size)
    for note in result.notes:
        print(f"overmerge: note: {note}", file=sys.stderr)
    if result.reason:
        # Nothing sensible to write: YOURS stays as it is (what git expects of a driver).
        print(f"overmerge: not merged: {result.reason}", file=sys.stderr)
        return EXIT_DECISIONS
    data = result.merged if result.clean else render_markers(result)
    assert data is not None
    for n, hunk in enumerate(result.hunks, 1):
        if hunk.note:
            print(f"overmerge: conflict {n}: {hunk.note}", file=sys.stderr)
    if args.output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        _write(args.output, data)
    if not result.clean:
        print(f"overmerge: {len(result.hunks)} conflict(s) left in "
              f"{args.output or 'the output'}", file=sys.stderr)
        return EXIT_DECISIONS
    return EXIT_OK
