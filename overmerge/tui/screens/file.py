"""One conflict: its hunks side by side (your change | vendor update), and the choices.

A user-modified path opens read-only: your change (OLD → yours), no decision keys.
"""
from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Static

from overmerge import paths
from overmerge.merge import has_markers
from overmerge.resolution import (
    BOTH_NEW_FIRST,
    BOTH_YOURS_FIRST,
    NEW,
    WHOLE_ASIDE,
    WHOLE_NEW,
    WHOLE_YOURS,
    YOURS,
    FileSession,
    diff_lines,
    hunk_diffs,
    hunk_markers,
    hunk_text,
    lines_of,
    your_change_lines,
)
from overmerge.tui.widgets.diff import DiffView

CHOICE_WORDS = {
    YOURS: "yours",
    NEW: "the vendor's",
    BOTH_YOURS_FIRST: "both (yours first)",
    BOTH_NEW_FIRST: "both (the vendor's first)",
}


def _wrap(description: str) -> list[str]:
    """A node description on short lines (the panes are narrow at 80 columns)."""
    head, _, rest = description.partition(" mode ")
    if not rest:
        return [description]
    meta, _, tail = rest.partition(", ") if "→" not in rest else rest.partition(" → ")
    first = head + (f" → {tail}" if "→" in rest else (f", {tail}" if tail else ""))
    return [first, "mode " + meta]


def side_lines(sides, side: str) -> list[tuple[str, str]]:
    """Whole-file view of one side against OLD: a text diff, or node descriptions.

    Diffing whole files can be slow: this runs in the session-loading worker.
    """
    kind = sides.your_kind if side == "yours" else sides.new_kind
    data = sides.yours if side == "yours" else sides.new
    if kind is None:
        return [("-", "(removed)" if sides.old_kind else "(absent)")]
    if sides.old_kind == "file" and kind == "file" and data is not None and sides.old is not None \
            and b"\0" not in data[:8000] and b"\0" not in sides.old[:8000]:
        lines = diff_lines(lines_of(sides.old), lines_of(data))
        if lines:
            return lines
    before = _wrap(sides.describe.get("old", "?"))
    after = _wrap(sides.describe.get(side, "?"))
    if before == after:
        return [(" ", t) for t in after]
    return [("-", t) for t in before] + [("+", t) for t in after]


class FileScreen(Screen):
    """Resolve one file hunk by hunk, or as a whole."""

    BINDINGS = [
        Binding("y", "take('yours')", "Yours", id="take-yours"),
        Binding("v", "take('new')", "Vendor's", id="take-vendor"),
        Binding("b", "take('both-yours-first')", "Both", id="take-both"),
        Binding("B", "take('both-new-first')", "Both, vendor's first", show=False, id="take-both-vendor-first"),
        Binding("u", "undo", "Undo", id="undo"),
        Binding("n", "hunk(1)", "Next", id="next-hunk"),
        Binding("p", "hunk(-1)", "Prev", show=False, id="previous-hunk"),
        Binding("right_square_bracket", "file(1)", "Next file", show=False, id="next-file"),
        Binding("left_square_bracket", "file(-1)", "Previous file", show=False, id="previous-file"),
        Binding("e", "edit_hunk", "Edit", id="edit-hunk"),
        Binding("E", "edit_file", "Edit file", show=False, id="edit-file"),
        Binding("Y", "whole('yours')", "Keep yours (whole file)", show=False, id="keep-yours"),
        Binding("V", "whole('new')", "Take vendor's (whole file)", show=False, id="take-vendors"),
        Binding("K", "whole('aside')", "Keep both, vendor's saved aside", show=False, id="keep-both-aside"),
        Binding("o", "toggle_view('old')", "OLD", id="show-old"),
        Binding("r", "toggle_view('result')", "Result", show=False, id="show-result"),
        Binding("escape", "back", "List", id="back"),
        Binding("question_mark", "app.help", "Help", id="help"),
        Binding("q", "app.quit", "Quit", show=False, id="quit"),
    ]

    def __init__(self, path: bytes) -> None:
        super().__init__()
        self.path = path
        self.session: FileSession | None = None
        self.hunk = 0
        self.extra: str | None = None  # "old" or "result" shown below the sides

    def compose(self) -> ComposeResult:
        yield Static("", id="progress")
        yield Static("", id="fileinfo")
        yield Static("", id="hunkinfo")
        with Horizontal(id="sides"):
            yield DiffView("your change (OLD → yours)", id="yours")
            yield DiffView("vendor update (OLD → NEW)", id="vendor")
        yield DiffView("OLD", id="extra")
        yield Static("", id="choices")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#extra", DiffView).display = False
        self.show_path(self.path)

    @property
    def read_only(self) -> bool:
        """A user-modified path: shown for review, nothing to decide."""
        return self.app.plan_file.entry(self.path).cls != "conflict"

    # -- loading ------------------------------------------------------------------

    def show_path(self, path: bytes) -> None:
        self.path = path
        self.hunk = 0
        self.session = self.app.sessions.get(path)
        self.query_one("#vendor", DiffView).display = not self.read_only
        self.update_header()
        if self.session is not None:
            self.hunk = self.session.next_open(-1) or 0
            self.refresh_view()
            self.refresh_bindings()
            return
        self.query_one("#hunkinfo", Static).update("Reading the layers…" if self.app.source is None else "Merging…")
        for pane in ("#yours", "#vendor"):
            self.query_one(pane, DiffView).show([], empty="…")
        self.query_one("#choices", Static).update("")
        self.refresh_bindings()
        if self.app.source is not None:
            self.load_session(path)

    def source_ready(self) -> None:
        if self.session is None:
            self.show_path(self.path)

    @work(thread=True, exclusive=True, group="session")
    def load_session(self, path: bytes) -> None:
        sides = self.app.source.sides(path)
        if self.app.plan_file.entry(path).cls != "conflict":
            whole = {"mine": your_change_lines(sides)}
        else:
            whole = {side: side_lines(sides, side) for side in ("yours", "new")}
        self.app.call_from_thread(self._session_loaded, path, sides, whole)

    def _session_loaded(self, path: bytes, sides, whole: dict) -> None:
        session = self.app.sessions.get(path)
        if session is None:
            session = FileSession(self.app.plan_file.entry(path), sides)
            session.view_cache["whole"] = whole
            self.app.sessions[path] = session
            if session.restore_note:
                self.notify(f"{paths.display(path)}: {session.restore_note}",
                            title="Saved choices not restored", severity="warning", timeout=10)
        if path != self.path:
            return
        self.session = session
        self.hunk = session.next_open(-1) or 0
        self.refresh_view()
        self.refresh_bindings()

    # -- drawing -------------------------------------------------------------------

    def update_header(self) -> None:
        self.query_one("#progress", Static).update(self.app.header_text())
        e = self.app.plan_file.entry(self.path)
        rule = e.rule or "—"
        summary = self.session.summary() if self.session else e.resolution or ""
        if self.read_only:
            self.query_one("#fileinfo", Static).update(
                f"{paths.display(self.path)}  ·  {e.change}  ·  your change (read-only)\n{summary}")
            return
        self.query_one("#fileinfo", Static).update(
            f"{paths.display(self.path)}  ·  {e.change}  ·  you: {e.your_change or '—'}, vendor: "
            f"{e.vendor_change or '—'}  ·  rule {rule}\n{summary}")

    def refresh_view(self) -> None:
        self.update_header()
        s = self.session
        if s is None:
            return
        yours = self.query_one("#yours", DiffView)
        vendor = self.query_one("#vendor", DiffView)
        info = self.query_one("#hunkinfo", Static)
        choices = self.query_one("#choices", Static)
        e = s.entry
        if s.read_only:
            info.update(e.reason or "your change")
            yours.show(s.view_cache.get("whole", {}).get("mine", []), title="your change (OLD → yours)")
            choices.update("read-only: kept as it is · o OLD · ]/[ next/previous file · Esc list")
        elif s.hunks:
            h = s.hunks[self.hunk]
            choice = s.choices[self.hunk]
            state = "open" if choice is None else (
                "taken: " + CHOICE_WORDS[choice] if isinstance(choice, str) else "taken: edited")
            if s.whole is not None or s.content is not None:
                state = "settled by the whole-file decision"
            note = f" · {h.note}" if h.note else ""
            info.update(f"hunk {self.hunk + 1} of {len(s.hunks)} ({state}) · OLD line {h.old_start + 1}{note}")
            mine, theirs = hunk_diffs(h, *s.context(self.hunk))
            yours.show(mine, title="your change (OLD → yours)")
            vendor.show(theirs, title="vendor update (OLD → NEW)")
            choices.update("y yours · v vendor's · b/B both · e edit · u undo · "
                           "Y/V whole file · E edit file · o OLD · r result")
        else:
            sides = s.sides
            reason = sides.result.reason if sides.result is not None and sides.result.reason else ""
            if s.original_resolution in ("auto-merged", "identical") and s.line_mergeable:
                info.update(f"{s.original_resolution} by rule {e.rule or '?'} — review; Y/V/E override · r shows the result")
            else:
                info.update(f"{reason or 'whole-file decision'} · OLD: {sides.describe.get('old', '?')}")
            whole = s.view_cache.get("whole", {})
            yours.show(whole.get("yours", []), title="your change (OLD → yours)")
            vendor.show(whole.get("new", []), title="vendor update (OLD → NEW)")
            keys = {WHOLE_YOURS: "Y", WHOLE_NEW: "V", WHOLE_ASIDE: "K"}
            choices.update(" · ".join(f"{keys[c]} {label}" for c, label in s.whole_choices()) + " · u undo")
        self._refresh_extra()

    def _refresh_extra(self) -> None:
        extra = self.query_one("#extra", DiffView)
        s = self.session
        extra.display = self.extra is not None and s is not None
        if not extra.display:
            return
        if self.extra == "old":
            if s.hunks:
                old = s.hunks[self.hunk].old
                extra.show([(" ", line.decode("utf-8", "replace").rstrip("\r\n")) for line in old],
                           title="OLD (this hunk)", empty="(empty in OLD)")
            else:
                extra.show([(" ", t.decode("utf-8", "replace").rstrip("\r\n")) for t in lines_of(s.sides.old)]
                           if s.sides.old is not None else [], title="OLD", empty=f"OLD: {s.sides.describe.get('old')}")
        else:
            data = s.render()
            if data is None and s.original_resolution in ("auto-merged", "identical") and s.chunks is not None:
                data = s.sides.result.merged if s.sides.result else None
            if data is None:
                extra.show([], title="result", empty="(no text result)")
            else:
                tagged = []
                for line in lines_of(data):
                    text = line.decode("utf-8", "replace").rstrip("\r\n")
                    tagged.append(("!" if has_markers(line) else " ", text))
                extra.show(tagged, title="result", empty="(empty file)")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide hunk keys on whole-file conflicts, and every decision key on your changes."""
        if self.read_only:
            return action not in ("take", "whole", "undo", "hunk", "edit_hunk", "edit_file") and \
                parameters != ("result",)
        s = self.session
        if s is not None and not s.hunks:
            if action == "take" and parameters and parameters[0] not in (YOURS, NEW):
                return False
            if action in ("hunk", "edit_hunk"):
                return False
        return True

    # -- actions -------------------------------------------------------------------

    def _changed(self) -> None:
        self.app.record(self.session)
        self.refresh_view()

    def action_take(self, choice: str) -> None:
        s = self.session
        if s is None:
            return
        if not s.hunks:
            if choice in (YOURS, NEW):
                self.action_whole(choice)
            else:
                self.notify("Whole-file conflict: use Y, V or K", severity="warning")
            return
        s.take(self.hunk, choice)
        nxt = s.next_open(self.hunk)
        if nxt is not None:
            self.hunk = nxt
        self._changed()
        if nxt is None:
            self.notify(f"{paths.display(self.path)} resolved — ] for the next file", timeout=3)

    def action_whole(self, whole: str) -> None:
        s = self.session
        if s is None:
            return
        allowed = dict(s.whole_choices())
        if whole not in allowed:
            self.notify("That choice makes no sense here", severity="warning")
            return
        s.take_whole(whole)
        self._changed()

    def action_undo(self) -> None:
        s = self.session
        if s is None or not s.undo():
            self.notify("Nothing to undo", severity="warning")
            return
        if s.hunks and s.open_hunks() and self.hunk not in s.open_hunks():
            self.hunk = s.next_open(self.hunk - 1) or 0
        self._changed()

    def action_hunk(self, step: int) -> None:
        s = self.session
        if s is None or not s.hunks:
            return
        self.hunk = (self.hunk + step) % len(s.hunks)
        self.refresh_view()

    def action_file(self, step: int) -> None:
        target = self.app.neighbour(self.path, step)
        if target is not None:
            self.show_path(target)

    def action_toggle_view(self, which: str) -> None:
        self.extra = None if self.extra == which else which
        self._refresh_extra()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_edit_hunk(self) -> None:
        s = self.session
        if s is None:
            return
        if not s.hunks:
            self.action_edit_file()
            return
        h = s.hunks[self.hunk]
        choice = s.choices[self.hunk]
        start = hunk_markers(h) if choice is None else hunk_text(h, choice)
        data = self.app.edit_text(start, self.path)
        if data is None or data == start:
            return
        try:
            s.take(self.hunk, data)
        except ValueError as exc:
            self.notify(f"Not taken: {exc}", severity="error")
            return
        self._changed()

    def action_edit_file(self) -> None:
        s = self.session
        if s is None:
            return
        start = s.draft if s.draft is not None else s.render()
        if start is None:
            if s.sides.yours is None and s.sides.new is None:
                self.notify("No text to edit here: use Y, V or K", severity="warning")
                return
            start = s.sides.yours if s.sides.yours is not None else s.sides.new
        data = self.app.edit_text(start, self.path)
        if data is None or data == start:
            return
        try:
            s.set_content(data)
        except ValueError as exc:
            self.notify(f"Not resolved: {exc}; E edits it again", severity="error")
            return
        self._changed()
