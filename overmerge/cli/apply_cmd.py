"""overmerge apply: re-stack TOP onto NEW as a new upper (a transaction; see docs/apply.md)."""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys

from overmerge.errors import EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "apply",
        help="write the new upper for NEW from a plan (or replace TOP in place)",
        description="Write a new upper that, mounted over NEW, shows the merged view. "
        "Exit 0: done; 1: conflicts need a decision; 2: error (nothing changed).",
    )
    p.add_argument("plan", metavar="PLAN.json", help="the plan made by `overmerge plan`")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--output", metavar="DIR", help="write the new upper to DIR (must not exist, or be empty)")
    where.add_argument("--in-place", action="store_true",
                       help="replace TOP atomically; the previous TOP is kept as TOP.overmerge-prev")
    p.add_argument("--workdir", metavar="W", help="with --in-place: TOP's overlay workdir, emptied after the swap")
    p.add_argument("--unresolved", choices=("keep-user", "take-new"),
                   help="settle open conflicts by keeping your version or taking the vendor's; "
                   "the side not taken is saved in an .overmerge-aside directory")
    p.add_argument("--verify", action="store_true",
                   help="mount NEW + new upper read-only and check the kernel shows the merged view before committing")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def crash_hook() -> object:
    """Fault injection for the crash tests: OVERMERGE_CRASH_AT=N kills us with SIGKILL
    at the N-th crash point. Read here, at the edge, never in the library."""
    raw = os.environ.get("OVERMERGE_CRASH_AT")
    if not raw:
        return lambda point: None
    limit = int(raw)
    count = [0]

    def crash(point: str) -> None:
        count[0] += 1
        if count[0] >= limit:
            os.kill(os.getpid(), signal.SIGKILL)

    return crash


def run(args: argparse.Namespace) -> int:
    from overmerge.apply import apply, load_plan, render_text

    plan = load_plan(args.plan)
    result = apply(
        plan,
        output=os.fsencode(args.output) if args.output else None,
        in_place=args.in_place,
        workdir=os.fsencode(args.workdir) if args.workdir else None,
        unresolved=args.unresolved,
        verify_with_kernel=args.verify,
        crash=crash_hook(),
    )
    if args.json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(render_text(result))
    if args.in_place and not args.workdir and not result.recovered:
        warn_workdir(result.target)
    return EXIT_OK


def warn_workdir(top: str) -> None:
    """TOP changed under its overlay workdir: a stale index/ there makes the next mount
    fail ("Stale file handle" with index=on), and nothing here knows where it is."""
    print(f"overmerge: note: {top}'s overlay workdir was not emptied (no --workdir): empty it before "
          "mounting, or the mount fails with 'Stale file handle' (index=on)", file=sys.stderr)
