"""overmerge oci-layer: an overlay upper to an OCI layer tar, and back."""
from __future__ import annotations

import argparse
import os
import sys

from overmerge import paths
from overmerge.errors import EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "oci-layer",
        help="convert an overlay upper to an OCI layer tar, or (--to-upper) back",
        description="UPPER -o OUT.tar: write an overlay upper (e.g. a new upper from `overmerge apply`) as an "
        "OCI layer tar (.wh.NAME whiteouts, .wh..wh..opq opaque markers, xattrs in PAX SCHILY.xattr.*). "
        "--to-upper LAYER.tar -o DIR: the reverse (plain or gzip layer). Exit 0: done; 2: error.",
    )
    p.add_argument("source", metavar="UPPER|LAYER.tar", help="the upper directory, or with --to-upper the layer tar")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="the layer tar to write (must not exist), or with --to-upper a new (or empty) directory")
    p.add_argument("--to-upper", action="store_true", help="convert an OCI layer tar into an overlay upper directory")
    p.add_argument("--userxattr", action="store_true",
                   help="with --to-upper: mark opaque directories with user.overlay.* (for -o userxattr mounts)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from overmerge.errors import InputError
    from overmerge.oci import oci_to_upper, upper_to_oci

    source, output = os.fsencode(args.source), os.fsencode(args.output)
    if args.to_upper:
        stats = oci_to_upper(source, output, namespace="user" if args.userxattr else "trusted")
        sys.stdout.write(f"wrote the upper {args.output}: {stats.members} member(s), {stats.whiteouts} whiteout(s), "
                         f"{stats.opaque} opaque dir(s), {stats.hardlinks} hard link(s)\n")
        return EXIT_OK
    if args.userxattr:
        raise InputError("--userxattr only applies with --to-upper (reading an upper detects its namespace)")
    if not os.path.isdir(source) or os.path.islink(source):
        raise InputError(f"{args.source}: not a directory; pass an overlay upper directory (or use --to-upper)")
    if os.path.lexists(output):
        raise InputError(f"{args.output}: already exists; choose a new output file or remove it")
    parent = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(parent):
        raise InputError(f"{args.output}: parent directory does not exist; create it first")
    real_out = os.path.join(os.path.realpath(parent), os.path.basename(os.path.abspath(output)))
    real_src = os.path.realpath(source)
    if real_out.startswith(real_src.rstrip(b"/") + b"/"):
        raise InputError(f"{args.output}: the output is inside the upper {args.source}; write it elsewhere")
    stats = upper_to_oci(real_src, real_out)
    sys.stdout.write(f"wrote the OCI layer {args.output}: {stats.members} member(s), {stats.whiteouts} whiteout(s), "
                     f"{stats.opaque} opaque dir(s), {stats.hardlinks} hard link(s)\n")
    for p in stats.skipped_sockets:
        sys.stdout.write(f"  skipped socket {paths.display(p)} (a tar cannot hold sockets)\n")
    return EXIT_OK
