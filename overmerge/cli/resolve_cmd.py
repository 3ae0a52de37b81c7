"""overmerge resolve: the conflict TUI (Textual is imported only when this runs)."""
from __future__ import annotations

import argparse
import os
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "resolve",
        help="resolve a plan's conflicts interactively (TUI)",
        description="Open the plan's conflicts in a terminal UI: take your change or the vendor "
        "update hunk by hunk or for the whole file, edit in $EDITOR, undo. Every decision is "
        "written into the plan file at once. Exit 0: everything resolved; 1: conflicts remain.",
    )
    p.add_argument("plan", metavar="PLAN.json", help="the plan made by `overmerge plan -o`")
    p.add_argument("--keymap", metavar="FILE",
                   help="TOML keymap ([keymap] binding-id = \"key\"); default "
                   "$XDG_CONFIG_HOME/overmerge/keymap.toml if it exists")
    p.add_argument("--theme", choices=("dark", "light"), default="dark", help="colour theme (ctrl+t switches)")
    p.add_argument("--output", metavar="DIR", help="where to apply once everything is resolved")
    p.set_defaults(func=run)


def _default_keymap() -> Path | None:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    path = Path(base) / "overmerge" / "keymap.toml"
    return path if path.is_file() else None


def run(args: argparse.Namespace) -> int:
    from overmerge.tui import run_resolve

    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    keymap = args.keymap or _default_keymap()
    return run_resolve(args.plan, keymap_path=keymap, editor=editor, output=args.output, theme=args.theme)
