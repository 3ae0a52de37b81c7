"""Renderers: the same result objects as human text or JSON. No decisions here."""
from __future__ import annotations

import json
from collections.abc import Iterable

from overmerge import paths
from overmerge.classify import Entry
from overmerge.model import CONFLICT, NEEDS_DECISION
from overmerge.plan import Plan

# A sign per kind of line, readable without colour.
SIGNS = {
    ("conflict", "needs-decision"): "!",
    ("conflict", "decided"): "✓",
    ("conflict", "auto-merged"): "~",
    ("conflict", "identical"): "=",
}
CHANGE_SIGNS = {"added": "+", "removed": "-", "modified": "M", "type": "T", "metadata": "m", "renamed": "R"}

ANSI = {"red": "\033[31m", "yellow": "\033[33m", "green": "\033[32m", "dim": "\033[2m", "bold": "\033[1m", "reset": "\033[0m"}


class Style:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, text: str, *names: str) -> str:
        if not self.color:
            return text
        return "".join(ANSI[n] for n in names) + text + ANSI["reset"]


def entry_line(e: Entry, style: Style) -> str:
    path = paths.display(e.path)
    if e.cls == CONFLICT:
        sign = SIGNS.get((e.cls, e.resolution or ""), "!")
        colour = "red" if e.resolution == NEEDS_DECISION else "yellow" if e.resolution == "auto-merged" else "green"
        state = e.resolution or ""
        if e.rule:
            state += f" ({e.rule})"
        return f"  {style(sign, colour, 'bold')} {path}  {style(f'[{e.change}, {state}]', colour)}  {style(e.reason, 'dim')}"
    sign = CHANGE_SIGNS.get(e.change or "", "?")
    return f"  {sign} {path}  {style(f'[{e.change}]', 'dim')}  {style(e.reason, 'dim')}"


def plan_summary(plan: Plan, *, color: bool = False, limit: int | None = 100, plan_file: str | None = None) -> str:
    """The human summary of a plan: counts per class, then what needs attention."""
    style = Style(color)
    out: list[str] = []
    for role, label in (("old", "OLD"), ("new", "NEW"), ("upper", "TOP")):
        rec = plan.inputs[role]
        extra = f", {rec.namespace}.overlay.* xattrs" if rec.namespace else ""
        out.append(f"{label:4} {rec.path}  ({len(rec.manifest.items)} entries{extra})")
    out.append("")
    res = plan.resolution_counts()
    for cls in ("unchanged", "upstream-changed", "user-modified", "conflict"):
        line = f"{plan.counts.get(cls, 0):8d} {cls}"
        if cls == CONFLICT and plan.counts.get(cls):
            parts = [f"{n} {r}" for r, n in res.items() if n]
            line += "  (" + ", ".join(parts) + ")"
        out.append(line)
    conflicts = [e for e in plan.attention() if e.cls == CONFLICT]
    yours = [e for e in plan.attention() if e.cls != CONFLICT]
    if conflicts:
        out += ["", style("Conflicts:", "bold")]
        out += [entry_line(e, style) for e in conflicts]
    if yours:
        out += ["", style("Your changes:", "bold")]
        shown = yours if limit is None else yours[:limit]
        out += [entry_line(e, style) for e in shown]
        if len(shown) < len(yours):
            out.append(f"  … and {len(yours) - len(shown)} more (--all or --json lists every path)")
    open_ = len(plan.open_conflicts())
    out.append("")
    target = plan_file or "PLAN.json"
    if open_:
        out.append(style(f"{open_} conflict(s) need a decision.", "red", "bold")
                   + f" Next: overmerge resolve {target}, or overmerge apply {target} --unresolved keep-user|take-new")
    else:
        out.append(style("Nothing needs a decision.", "green", "bold") + f" Next: overmerge apply {target} --output DIR")
    return "\n".join(out) + "\n"


def dumps(data: object) -> str:
    # ensure_ascii keeps odd names safe for every JSON consumer.
    return json.dumps(data, indent=1, ensure_ascii=True) + "\n"


def entries_table(entries: Iterable[Entry]) -> list[dict]:
    from overmerge.plan import entry_to_json

    return [entry_to_json(e) for e in entries]
