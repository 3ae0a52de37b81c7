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


def _origin_inode(value: bytes) -> int | None:
    """The lower inode number in an ``overlay.origin`` file handle (ext4/xfs/tmpfs forms)."""
    if len(value) < 25 or value[1] != 0xFB:
        return None
    fid_type, fid = value[4], value[21:]
    if fid_type in (1, 2) and len(fid) >= 4:  # FILEID_INO32_GEN[_PARENT]: ext2/3/4, ...
        return int.from_bytes(fid[:4], "little")
    if fid_type in (0x81, 0x82) and len(fid) >= 8:  # 64-bit inode forms: xfs, tmpfs
        return int.from_bytes(fid[:8], "little")
    return None


def check_layer_order(old: str, new: str, upper: str, *, limit: int = 2000) -> None:
    """Refuse --old and --new given the wrong way round.

    The kernel records in ``overlay.origin`` which lower inode a TOP entry was copied
    up from. When those inodes are NEW's at the same paths and never OLD's, TOP was
    made on what is passed as --new. Undecodable handles, re-extracted bases (no
    match either way) and renamed entries say nothing."""
    matches_old = matches_new = 0
    example = ""
    seen = 0
    for dirpath, dirnames, filenames in os.walk(upper):
        for name in dirnames + filenames:
            seen += 1
            if seen > limit:
                break
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, upper)
            value = None
            for ns in ("trusted", "user"):
                try:
                    value = os.getxattr(full, f"{ns}.overlay.origin", follow_symlinks=False)
                    if os.getxattr(full, f"{ns}.overlay.redirect", follow_symlinks=False) is not None:
                        value = None  # origin of a renamed entry is at another path
                except OSError:
                    pass
                if value is not None:
                    break
            ino = _origin_inode(value) if value else None
            if ino is None:
                continue
            try:
                o, n = os.lstat(os.path.join(old, rel)), os.lstat(os.path.join(new, rel))
            except OSError:
                continue
            if o.st_ino == n.st_ino:
                continue
            if ino == o.st_ino:
                matches_old += 1
            elif ino == n.st_ino:
                matches_new += 1
                example = example or rel
        if seen > limit:
            break
    if matches_new and not matches_old:
        raise InputError(
            f"{upper}: TOP was made on the layer given as --new ({new}), not on --old ({old}): its copy-ups "
            f"(e.g. {example}) come from --new's files; swap --old and --new"
        )


def run(args: argparse.Namespace) -> int:
    from overmerge.planner import make_plan
    from overmerge.report import dumps, plan_summary, write_atomic

    if args.output and os.path.isdir(args.output):
        raise InputError(f"{args.output}: is a directory; -o takes the plan file's name")
    if all(os.path.isdir(p) for p in (args.old, args.new, args.upper)):
        check_layer_order(args.old, args.new, args.upper)
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
