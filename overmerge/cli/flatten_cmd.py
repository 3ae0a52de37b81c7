"""overmerge flatten: write the merged view as one tree (dir, tar or squashfs image)."""
from __future__ import annotations

import argparse
import json
import os
import sys

from overmerge.errors import EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "flatten",
        help="write the merged view as one tree: a directory, a tar or a squashfs image",
        description="Write the merged view of a plan as one tree for new read-only media "
        "(no whiteouts, no opaque markers; owners, modes, xattrs, hard links, devices kept). "
        "Exit 0: done; 1: conflicts need a decision; 2: error (nothing written).",
    )
    p.add_argument("plan", metavar="PLAN.json", help="the plan made by `overmerge plan`")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="where to write: a new (or empty) directory, or a new .tar / .sqfs file")
    p.add_argument("--format", choices=("dir", "tar", "squashfs"),
                   help="output format (default: from OUT's name: .tar → tar, .sqfs/.squashfs → squashfs, else dir)")
    p.add_argument("--unresolved", choices=("keep-user", "take-new"),
                   help="settle open conflicts by keeping your version or taking the vendor's; "
                   "the side not taken is saved in an .overmerge-aside directory beside OUT")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from overmerge.apply import load_plan
    from overmerge.flatten import flatten, render_text

    plan = load_plan(args.plan)
    result = flatten(plan, os.fsencode(args.output), fmt=args.format, unresolved=args.unresolved)
    if args.json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(render_text(result))
    return EXIT_OK
