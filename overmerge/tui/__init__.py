"""The resolve TUI (Textual). Imported only by `overmerge resolve`, never by `plan`."""
from __future__ import annotations

import os
import tomllib
from pathlib import Path

from overmerge.errors import InputError


def load_keymap(path: str | os.PathLike) -> dict[str, str]:
    """Read a keymap file: TOML with a ``[keymap]`` table of binding id = "key[,key]"."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise InputError(f"{path}: keymap file not found") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{path}: cannot read the keymap: {exc}") from exc
    table = data.get("keymap", data)
    if not isinstance(table, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in table.items()):
        raise InputError(f"{path}: the [keymap] table must map binding ids to key strings")
    return dict(table)


def run_resolve(plan_path: str | os.PathLike, *, keymap_path: str | os.PathLike | None = None,
                editor: str | None = None, output: str | None = None, theme: str = "dark") -> int:
    """Open the conflict TUI on a plan file; 0 when every conflict is resolved, else 1."""
    from overmerge.tui.app import ResolveApp

    keymap = load_keymap(keymap_path) if keymap_path is not None else None
    app = ResolveApp(Path(plan_path), keymap=keymap, editor=editor, output=output, theme=theme)
    app.run()
    return app.exit_code()
