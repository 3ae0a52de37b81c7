"""Resolving conflicts of a plan: the model behind `overmerge resolve`. No UI.

A ``FileSession`` is one conflict being resolved: its hunks (when the file can
be line-merged), the choice made for each, whole-file choices, and an undo
history. ``FileSession.decision()`` is the value written into the plan entry
(the contract with `apply`)::

    {"take": "yours" | "new" | "content", "content": str (or "content_b64"),
     "by": "user", "keep_aside": bool}

While a file is partly resolved, its per-hunk choices are kept in the entry's
``hunk_choices`` (one JSON value per hunk: null, a choice name, or the edited
text); apply never reads them. ``PlanFile`` holds a plan and writes it back
atomically after every choice, so quitting loses nothing. ``LayerSource`` reads the three file versions from
the layers the plan recorded (slow: run it off the UI thread).
"""
from __future__ import annotations

import base64
import copy
import difflib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from overmerge import paths
from overmerge.classify import Entry
from overmerge.errors import InputError
from overmerge.merge import has_markers, render_markers, resolve_chunks
from overmerge.merge.base import Chunk, Hunk, MergeResult
from overmerge.model import (
    AUTO_MERGED,
    CONFLICT,
    DECIDED,
    IDENTICAL,
    NEEDS_DECISION,
    REMOVED,
    USER_MODIFIED,
)
from overmerge.plan import Plan

# Row states shown in the list.
OPEN = "open"
RESOLVED = "resolved"
AUTO = "auto-merged"
YOUR_CHANGE = "your change"  # a user-modified path: shown for review, nothing to decide

# Hunk choices (the names resolve_chunks understands) or explicit bytes.
YOURS = "yours"
NEW = "new"
BOTH_YOURS_FIRST = "both-yours-first"
BOTH_NEW_FIRST = "both-new-first"
Choice = str | bytes

# Whole-file choices.
WHOLE_YOURS = "yours"
WHOLE_NEW = "new"
WHOLE_ASIDE = "aside"  # keep yours, save the vendor's copy aside


def entry_state(e: Entry) -> str:
    """open / resolved / auto-merged for a conflict entry; "your change" for a user-modified one."""
    if e.cls == USER_MODIFIED:
        return YOUR_CHANGE
    if e.resolution == NEEDS_DECISION:
        return OPEN
    if e.resolution == DECIDED:
        return RESOLVED
    return AUTO


def conflict_entries(plan: Plan) -> list[Entry]:
    """Conflicts in the order the list shows them: open first, then by path."""
    order = {OPEN: 0, RESOLVED: 1, AUTO: 2}
    rows = [e for e in plan.entries if e.cls == CONFLICT]
    rows.sort(key=lambda e: (order[entry_state(e)], e.path))
    return rows


def attention_entries(plan: Plan) -> list[Entry]:
    """The paths the list shows: conflicts (as ``conflict_entries``), then your changes by path."""
    mine = sorted((e for e in plan.entries if e.cls == USER_MODIFIED), key=lambda e: e.path)
    return conflict_entries(plan) + mine


@dataclass(frozen=True)
class Progress:
    resolved: int
    total: int
    auto: int

    def __str__(self) -> str:
        text = f"{self.resolved} of {self.total} resolved"
        if self.auto:
            text += f" · {self.auto} auto-merged"
        return text

    @property
    def done(self) -> bool:
        return self.resolved == self.total


def progress(plan: Plan) -> Progress:
    """Conflicts that need (or got) a person's decision, and how many are decided."""
    resolved = total = auto = 0
    for e in plan.entries:
        if e.cls != CONFLICT:
            continue
        state = entry_state(e)
        if state == AUTO:
            auto += 1
            continue
        total += 1
        resolved += state == RESOLVED
    return Progress(resolved, total, auto)


def content_field(data: bytes) -> dict[str, str]:
    try:
        return {"content": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"content_b64": base64.b64encode(data).decode("ascii")}


def decision_content(decision: dict) -> bytes | None:
    if "content_b64" in decision:
        return base64.b64decode(decision["content_b64"])
    if "content" in decision:
        return str(decision["content"]).encode("utf-8")
    return None


def make_decision(take: str, *, content: bytes | None = None, keep_aside: bool = False) -> dict:
    """The decision dict written into a plan entry (shared contract with apply)."""
    decision: dict = {"take": take}
    if take == "content":
        if content is None:
            raise ValueError("a content decision needs content")
        decision.update(content_field(content))
    decision["by"] = "user"
    decision["keep_aside"] = keep_aside
    return decision


HUNK_CHOICE_NAMES = (YOURS, NEW, BOTH_YOURS_FIRST, BOTH_NEW_FIRST)


def choice_to_json(choice: Choice | None) -> str | dict | None:
    """One item of an entry's ``hunk_choices``: null (open), a choice name, or the edited text."""
    if choice is None or isinstance(choice, str):
        return choice
    return content_field(choice)


def choice_from_json(value: object) -> Choice | None:
    """The inverse of ``choice_to_json``; ValueError for anything else."""
    if value is None:
        return None
    if isinstance(value, str):
        if value not in HUNK_CHOICE_NAMES:
            raise ValueError(f"unknown hunk choice {value!r}")
        return value
    if isinstance(value, dict) and ("content" in value or "content_b64" in value):
        try:
            data = decision_content(value)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"bad edited hunk: {exc}") from exc
        if data is not None and not has_markers(data):
            return data
    raise ValueError(f"bad hunk choice {value!r}")


# ---------------------------------------------------------------------------
# The three versions of one path.


@dataclass(frozen=True)
class Sides:
    """What OLD, your side (user view) and NEW hold at one path.

    ``*_kind`` is the node type ("file", "dir", "symlink", ...) or None when
    absent; the bytes are set for regular files small enough to merge.
    """

    old_kind: str | None = None
    your_kind: str | None = None
    new_kind: str | None = None
    old: bytes | None = None
    yours: bytes | None = None
    new: bytes | None = None
    result: MergeResult | None = None  # the rule's merge, for text-like content clashes
    describe: dict[str, str] = field(default_factory=dict)  # side -> one-line description

    @property
    def chunks(self) -> tuple[Chunk, ...] | None:
        if self.result is None or self.result.reason:
            return None
        return self.result.chunks


def _describe(node) -> str:
    if node is None:
        return "absent"
    text = f"{node.kind} mode {node.mode:04o} uid {node.uid} gid {node.gid}"
    if node.kind == "symlink" and node.target is not None:
        text += f" → {paths.display(node.target)}"
    elif node.kind == "file":
        text += f", {node.size} bytes"
    return text


class LayerSource:
    """Reads file versions from the layers a plan recorded. Construct off the UI thread."""

    def __init__(self, plan: Plan, *, rules=None) -> None:
        from overmerge.planner import load_ruleset, read_layers

        self.plan = plan
        self.layers = read_layers(plan.inputs["old"].path, plan.inputs["new"].path, plan.inputs["upper"].path)
        self.stale: str | None = None
        for role in ("old", "new", "upper"):
            try:
                plan.inputs[role].check_same(self.layers.manifests[role])
            except InputError as exc:
                self.stale = exc.message
                break
        if rules is None:
            rules = load_ruleset([Path(d) for d in plan.options.get("rules", [])])
        self.rules = rules
        self.max_size = int(plan.options.get("max_merge_size", 4 << 20))

    def sides(self, path: bytes) -> Sides:
        from overmerge.layers import read_bytes
        from overmerge.rules import merge_with_rule

        o = self.layers.old.nodes.get(path)
        y = self.layers.view.tree.nodes.get(path)
        n = self.layers.new.nodes.get(path)
        data = {}
        for name, node in (("old", o), ("yours", y), ("new", n)):
            data[name] = read_bytes(node, self.max_size) if node is not None and node.kind == "file" else None
        result = None
        if y is not None and n is not None and y.kind == "file" and n.kind == "file" \
                and data["yours"] is not None and data["new"] is not None \
                and (o is None or (o.kind == "file" and data["old"] is not None)):
            rule = self.rules.match(os.fsdecode(path))
            result = merge_with_rule(rule, data["old"] or b"", data["yours"], data["new"], max_size=self.max_size)
        return Sides(
            old_kind=o.kind if o else None, your_kind=y.kind if y else None, new_kind=n.kind if n else None,
            old=data["old"], yours=data["yours"], new=data["new"], result=result,
            describe={"old": _describe(o), "yours": _describe(y), "new": _describe(n)},
        )


# ---------------------------------------------------------------------------
# One file being resolved.


def hunk_text(h: Hunk, choice: Choice) -> bytes:
    """The bytes one hunk becomes under ``choice``."""
    return resolve_chunks([h], [choice])


def hunk_markers(h: Hunk) -> bytes:
    """One hunk with conflict markers: the starting text for editing it."""
    return render_markers(MergeResult("text", (h,)))


@dataclass
class _State:
    choices: list[Choice | None]
    whole: str | None = None
    content: bytes | None = None  # the whole file, edited


class FileSession:
    """The choices made for one conflict; pure (bytes in, decision out)."""

    def __init__(self, entry: Entry, sides: Sides) -> None:
        self.path = entry.path
        self.entry = entry
        self.sides = sides
        # A user-modified path is shown for review only: no hunks, no decision.
        self.read_only = entry.cls != CONFLICT
        self.chunks: tuple[Chunk, ...] | None = None if self.read_only else sides.chunks
        self.hunks: list[Hunk] = [c for c in self.chunks if isinstance(c, Hunk)] if self.chunks else []
        self.original_resolution = entry.resolution if entry.resolution != DECIDED else NEEDS_DECISION
        self._state = _State([None] * len(self.hunks))
        self._history: list[_State] = []
        self.draft: bytes | None = None  # last whole-file edit that still held markers
        self.view_cache: dict = {}  # what a front end precomputed for display (e.g. whole-file diffs)
        self.restore_note: str | None = None  # why saved hunk choices were not restored
        if self.read_only:
            return
        if entry.decision:
            self._load(entry.decision)
        if entry.hunk_choices is not None:
            self._restore_choices(list(entry.hunk_choices))

    def _load(self, decision: dict) -> None:
        take = decision.get("take")
        if take == "content":
            self._state.content = decision_content(decision)
        elif take == "yours":
            self._state.whole = WHOLE_ASIDE if decision.get("keep_aside") else WHOLE_YOURS
        elif take == "new":
            self._state.whole = WHOLE_NEW

    def _restore_choices(self, saved: list) -> None:
        """Per-hunk progress from the plan, if it still fits the file's hunks."""
        if len(saved) != len(self.hunks):
            self.restore_note = (f"{len(saved)} saved hunk choice(s) ignored: "
                                 f"the file now has {len(self.hunks)} hunk(s)")
            return
        try:
            choices = [choice_from_json(v) for v in saved]
        except ValueError as exc:
            self._state.choices = [None] * len(self.hunks)
            self.restore_note = f"saved hunk choices ignored: {exc}"
            return
        s = self._state
        if s.whole is not None:
            return  # a whole-file decision settles every hunk
        if s.content is not None:
            # Decided hunk by hunk: show the choices (not an opaque edit) if they give the same bytes.
            if all(c is not None for c in choices) and \
                    resolve_chunks(self.chunks or (), choices) == s.content:  # type: ignore[arg-type]
                s.content = None
                s.choices = choices
            return
        s.choices = choices

    def hunk_choices_json(self) -> list | None:
        """The entry's ``hunk_choices``: per-hunk progress, or None when there is none to keep."""
        s = self._state
        if not self.hunks or s.whole is not None or s.content is not None:
            return None
        if all(c is None for c in s.choices):
            return None
        return [choice_to_json(c) for c in s.choices]

    # -- what kind of conflict -------------------------------------------------

    def context(self, index: int, lines: int = 3) -> tuple[list[bytes], list[bytes]]:
        """Up to ``lines`` settled lines before and after hunk ``index``."""
        if self.chunks is None:
            return [], []
        n = -1
        for pos, chunk in enumerate(self.chunks):
            if isinstance(chunk, Hunk):
                n += 1
                if n == index:
                    prev = self.chunks[pos - 1] if pos > 0 else None
                    nxt = self.chunks[pos + 1] if pos + 1 < len(self.chunks) else None
                    before = lines_of(prev)[-lines:] if isinstance(prev, bytes) else []
                    after = lines_of(nxt)[:lines] if isinstance(nxt, bytes) else []
                    return before, after
        return [], []

    @property
    def line_mergeable(self) -> bool:
        return self.chunks is not None

    @property
    def your_side_absent(self) -> bool:
        return self.entry.your_change == REMOVED or (self.sides.your_kind is None and self.sides.describe != {})

    @property
    def new_side_absent(self) -> bool:
        return self.entry.vendor_change == REMOVED or (self.sides.new_kind is None and self.sides.describe != {})

    def whole_choices(self) -> list[tuple[str, str]]:
        """(whole-file choice, label) that make sense for this conflict."""
        if self.read_only:
            return []
        yours = "keep it deleted" if self.your_side_absent else "keep yours"
        new = "delete it (the vendor removed it)" if self.new_side_absent else (
            "restore the vendor's" if self.your_side_absent else "take the vendor's")
        out = [(WHOLE_YOURS, yours), (WHOLE_NEW, new)]
        if not self.new_side_absent:
            out.append((WHOLE_ASIDE, "keep both (the vendor's copy saved aside)"
                        if not self.your_side_absent else "keep it deleted, save the vendor's copy aside"))
        return out

    # -- state -----------------------------------------------------------------

    @property
    def choices(self) -> list[Choice | None]:
        return list(self._state.choices)

    @property
    def whole(self) -> str | None:
        return self._state.whole

    @property
    def content(self) -> bytes | None:
        return self._state.content

    def _push(self) -> None:
        self._history.append(copy.deepcopy(self._state))

    def take(self, index: int, choice: Choice) -> None:
        """Resolve hunk ``index`` (a choice name or explicit bytes without markers)."""
        self._check_writable()
        if not 0 <= index < len(self.hunks):
            raise IndexError(index)
        if isinstance(choice, bytes) and has_markers(choice):
            raise ValueError("the text still holds conflict markers")
        self._push()
        self._state.choices[index] = choice
        # A hunk choice replaces a whole-file choice.
        self._state.whole = None
        self._state.content = None

    def _check_writable(self) -> None:
        if self.read_only:
            raise ValueError("your change is kept as it is: nothing to decide")

    def take_whole(self, whole: str) -> None:
        self._check_writable()
        if whole not in (WHOLE_YOURS, WHOLE_NEW, WHOLE_ASIDE):
            raise ValueError(whole)
        self._push()
        self._state.whole = whole
        self._state.content = None

    def set_content(self, data: bytes) -> None:
        """The whole file as edited; refused while it holds conflict markers."""
        self._check_writable()
        if has_markers(data):
            self.draft = data
            raise ValueError("the file still holds conflict markers")
        self._push()
        self.draft = None
        self._state.whole = None
        self._state.content = data

    def undo(self) -> bool:
        if not self._history:
            return False
        self._state = self._history.pop()
        return True

    @property
    def can_undo(self) -> bool:
        return bool(self._history)

    def open_hunks(self) -> list[int]:
        if self._state.whole is not None or self._state.content is not None:
            return []
        return [i for i, c in enumerate(self._state.choices) if c is None]

    def next_open(self, after: int) -> int | None:
        """The next open hunk after ``after`` (wrapping), or None."""
        open_ = self.open_hunks()
        if not open_:
            return None
        later = [i for i in open_ if i > after]
        return later[0] if later else open_[0]

    @property
    def resolved(self) -> bool:
        return self.decision() is not None

    def render(self) -> bytes | None:
        """The file as it stands: chosen hunks resolved, open hunks with markers.

        None when the result is not a text file (a whole-file choice of a
        non-file side, or nothing line-mergeable decided yet).
        """
        s = self._state
        if s.content is not None:
            return s.content
        if s.whole is not None:
            data = self.sides.new if s.whole == WHOLE_NEW else self.sides.yours
            return data
        if self.chunks is None:
            return None
        out: list[Chunk] = []
        n = 0
        for chunk in self.chunks:
            if isinstance(chunk, Hunk):
                choice = s.choices[n]
                n += 1
                out.append(chunk if choice is None else hunk_text(chunk, choice))
            else:
                out.append(chunk)
        if all(isinstance(c, bytes) for c in out):
            return resolve_chunks(self.chunks, s.choices)  # type: ignore[arg-type]
        return render_markers(MergeResult("text", tuple(out)))

    def decision(self) -> dict | None:
        """The decision for the plan, or None while something is open (always None when read-only)."""
        s = self._state
        if self.read_only:
            return None
        if s.whole == WHOLE_YOURS:
            return make_decision("yours")
        if s.whole == WHOLE_NEW:
            return make_decision("new")
        if s.whole == WHOLE_ASIDE:
            return make_decision("yours", keep_aside=True)
        if s.content is not None:
            return make_decision("content", content=s.content)
        if self.hunks and all(c is not None for c in s.choices):
            data = resolve_chunks(self.chunks or (), s.choices)  # type: ignore[arg-type]
            if has_markers(data):
                return None
            return make_decision("content", content=data)
        return None

    def summary(self) -> str:
        """One line: what is decided for this file."""
        if self.read_only:
            return "your change: kept as it is, nothing to decide"
        d = self.decision()
        if d is None:
            if self.original_resolution in (AUTO_MERGED, IDENTICAL):
                return f"{self.original_resolution} by rule {self.entry.rule or '?'}: no decision needed"
            if self.hunks:
                done = sum(c is not None for c in self._state.choices)
                return f"open: {done} of {len(self.hunks)} hunks chosen"
            return "open"
        if d["take"] == "content":
            return "resolved: merged content"
        labels = dict(self.whole_choices())
        return "resolved: " + labels.get(self._state.whole or "", d["take"])


# ---------------------------------------------------------------------------
# The plan file.


class PlanFile:
    """A plan on disk; every decision is written back at once (atomically)."""

    def __init__(self, path: str | os.PathLike) -> None:
        import json

        self.path = os.fspath(path)
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            raise InputError(f"{self.path}: plan not found; make one with `overmerge plan -o {self.path}`") from None
        except (OSError, ValueError) as exc:
            raise InputError(f"{self.path}: cannot read the plan: {exc}") from exc
        self.plan = Plan.from_json(data, source=self.path)
        self._by_path = self.plan.by_path()

    def entry(self, path: bytes) -> Entry:
        return self._by_path[path]

    def save(self) -> None:
        from overmerge.fsutil import write_atomic
        from overmerge.report import dumps

        try:
            write_atomic(self.path, dumps(self.plan.to_json()))
        except OSError as exc:
            raise InputError(f"{self.path}: cannot write the plan: {exc.strerror}") from exc

    def record(self, session: FileSession) -> bool:
        """Write the session's decision (or its absence) and its per-hunk progress into the plan.

        True if the plan changed (and was saved).
        """
        if session.read_only:
            return False
        entry = self.entry(session.path)
        decision = session.decision()
        choices = session.hunk_choices_json()
        hunk_choices = tuple(choices) if choices is not None else None
        changed = False
        if decision is not None:
            if not (entry.resolution == DECIDED and entry.decision == decision):
                self.plan.decide(session.path, decision)
                changed = True
        elif entry.resolution == DECIDED:
            entry.decision = None
            entry.resolution = session.original_resolution
            changed = True
        if entry.hunk_choices != hunk_choices:
            entry.hunk_choices = hunk_choices
            changed = True
        if changed:
            self.save()
        return changed


# ---------------------------------------------------------------------------
# Diffs for display.


def diff_lines(a: Sequence[bytes], b: Sequence[bytes], context: int = 3, *,
               a_start: int = 0, b_start: int = 0) -> list[tuple[str, str]]:
    """(tag, text) lines of a unified diff a → b: tag is " ", "-", "+" or "@".

    ``a_start``/``b_start`` are the 0-based line numbers of a[0] and b[0] in their files.
    """
    ta = [line.decode("utf-8", "replace").rstrip("\r\n") for line in a]
    tb = [line.decode("utf-8", "replace").rstrip("\r\n") for line in b]
    out: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(None, ta, tb, autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        first, last = group[0], group[-1]
        out.append(("@", f"@@ -{a_start + first[1] + 1},{last[2] - first[1]} "
                         f"+{b_start + first[3] + 1},{last[4] - first[3]} @@"))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out.extend((" ", t) for t in ta[i1:i2])
                continue
            out.extend(("-", t) for t in ta[i1:i2])
            out.extend(("+", t) for t in tb[j1:j2])
    return out


def hunk_diffs(h: Hunk, before: Sequence[bytes] = (), after: Sequence[bytes] = ()
               ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(your change, vendor update) for one hunk: OLD → yours and OLD → NEW, with context lines."""
    pre, post = list(before), list(after)
    old = pre + list(h.old) + post
    big = max(len(h.old), len(h.yours), len(h.new)) + len(pre) + len(post) + 1
    back = len(pre)
    return (diff_lines(old, pre + list(h.yours) + post, big, a_start=h.old_start - back, b_start=h.yours_start - back),
            diff_lines(old, pre + list(h.new) + post, big, a_start=h.old_start - back, b_start=h.new_start - back))


def _is_text(data: bytes | None) -> bool:
    return data is not None and b"\0" not in data[:8000]


def your_change_lines(sides: Sides) -> list[tuple[str, str]]:
    """Read-only view of your change (OLD → yours) at a user-modified path.

    The text diff when both sides are text files (an added file diffs against
    nothing); otherwise one line describing OLD → yours. Whole-file diff: run
    it off the UI thread.
    """
    old_text = sides.old_kind is None or (sides.old_kind == "file" and _is_text(sides.old))
    if sides.your_kind == "file" and _is_text(sides.yours) and old_text:
        lines = diff_lines(lines_of(sides.old), lines_of(sides.yours))
        if lines:
            return lines
    before = sides.describe.get("old", "?")
    after = sides.describe.get("yours", "?")
    return [(" ", f"{before} → {after}" if before != after else after)]


def lines_of(data: bytes | None) -> list[bytes]:
    return data.splitlines(keepends=True) if data else []
