"""Command-line front end: argparse, one module per command (``<verb>_cmd.py``).

Each command module has ``register(subparsers)`` which adds its parser and sets
``func`` to a callable taking the parsed namespace and returning an exit code.
Modules are imported here eagerly except the TUI, which ``resolve_cmd`` imports
only when it runs (``plan`` must start without Textual).
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from overmerge import __version__
from overmerge.errors import EXIT_ERROR, EXIT_INTERRUPTED, OvermergeError

# Order here is the order in --help.
COMMANDS = (
    "plan",
    "apply",
    "rollback",
    "resolve",
    "merge_file",
    "rules",
    "flatten",
    "oci_layer",
    "demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="overmerge",
        description="Three-way upgrade merge for overlay filesystems: "
        "re-stack a writable top layer (TOP) made on an old base (OLD) onto a new base (NEW).",
    )
    parser.add_argument("--version", action="version", version=f"overmerge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"overmerge.cli.{name}_cmd")
        except ModuleNotFoundError as exc:
            if exc.name == f"overmerge.cli.{name}_cmd":
                continue  # command not built yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        return int(args.func(args) or 0)
    except OvermergeError as exc:
        print(f"overmerge: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("overmerge: interrupted; run the same command again (a half-done apply is then "
              "finished or cleaned up)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_ERROR
