"""overmerge rollback: put back the TOP that `apply --in-place` replaced."""
from __future__ import annotations

import argparse
import os

from overmerge.errors import EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "rollback",
        help="restore the TOP that `apply --in-place` replaced (TOP.overmerge-prev)",
        description="Swap TOP and TOP.overmerge-prev atomically (run it again to undo). "
        "A half-done apply found beside TOP is cleaned or finished first.",
    )
    p.add_argument("top", metavar="TOP", help="the upper directory that was replaced in place")
    p.add_argument("--workdir", metavar="W", help="TOP's overlay workdir, emptied after the swap")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from overmerge.apply import rollback
    from overmerge.cli.apply_cmd import crash_hook

    message = rollback(os.fsencode(args.top), workdir=os.fsencode(args.workdir) if args.workdir else None,
                       crash=crash_hook())
    print(message)
    if not args.workdir and message.startswith("restored"):
        from overmerge.cli.apply_cmd import warn_workdir

        warn_workdir(args.top)
    return EXIT_OK
