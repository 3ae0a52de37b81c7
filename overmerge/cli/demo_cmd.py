"""overmerge demo: build a small /etc upgrade through a real overlay mount and plan it."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="build a small realistic upgrade (OLD, NEW, TOP via overlayfs) and show its plan",
        description="Write two versions of an /etc tree (OLD and NEW), make TOP by editing through "
        "a real overlayfs mount over OLD (in a user namespace when not root), and print the plan. "
        "Exit 0 when the demo ran.",
    )
    p.add_argument("--keep", metavar="DIR", type=Path,
                   help="build the scenario in DIR (new or empty) and leave it there to play with")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from overmerge.demo import run_demo

    return run_demo(keep=args.keep)
