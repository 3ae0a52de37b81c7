"""The resolve app: holds the plan file, the layer source and one session per file."""
from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from textual import work
from textual.app import App
from textual.binding import Binding

from overmerge import paths
from overmerge.errors import OvermergeError
from overmerge.resolution import (
    FileSession,
    LayerSource,
    PlanFile,
    attention_entries,
    decision_content,
    progress,
)
from overmerge.tui.screens.apply import ApplyScreen
from overmerge.tui.screens.conflicts import ConflictsScreen
from overmerge.tui.screens.file import FileScreen
from overmerge.tui.screens.help import HelpScreen

HELP = {
    "open-file": "open the conflict",
    "filter": "filter the list (Esc clears)",
    "apply": "apply (shows what will be written)",
    "take-yours": "hunk: take your change, go to next",
    "take-vendor": "hunk: take the vendor update",
    "take-both": "hunk: take both, yours first",
    "take-both-vendor-first": "hunk: take both, the vendor's first",
    "undo": "undo the last choice in this file",
    "next-hunk": "next hunk",
    "previous-hunk": "previous hunk",
    "next-file": "next file in the list",
    "previous-file": "previous file in the list",
    "edit-hunk": "edit this hunk in $EDITOR",
    "edit-file": "edit the whole file in $EDITOR",
    "keep-yours": "file: keep yours / keep it deleted",
    "take-vendors": "file: take / restore the vendor's",
    "keep-both-aside": "file: keep yours, vendor's saved aside",
    "show-old": "show/hide raw OLD",
    "show-result": "show/hide the result so far",
    "back": "back to the list",
    "toggle-theme": "switch light/dark theme",
}

THEMES = {"dark": "textual-dark", "light": "textual-light"}

# Applies the plan; returns a one-line report. Default: overmerge.apply (the `overmerge apply` code path).
ApplyRunner = Callable[[str, str | None], str]


def default_apply_runner(plan_path: str, output: str | None) -> str:
    """Run the same code as `overmerge apply PLAN --output DIR`; returns its text report."""
    from overmerge.apply import apply, load_plan, render_text

    if output is None:
        raise OvermergeError("no destination: start resolve with --output DIR, or run `overmerge apply`")
    result = apply(load_plan(plan_path), output=os.fsencode(output))
    return render_text(result).strip()


class ResolveApp(App[int]):
    """`overmerge resolve PLAN.json`."""

    CSS_PATH = "overmerge.tcss"
    TITLE = "overmerge resolve"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("question_mark", "help", "Help", show=False, id="help"),
        Binding("ctrl+t", "toggle_theme", "Light/dark", show=False, id="toggle-theme"),
        Binding("q", "quit", "Quit", show=False, id="quit"),
    ]

    def __init__(
        self,
        plan_path: str | os.PathLike,
        *,
        keymap: dict[str, str] | None = None,
        editor: str | None = None,
        output: str | None = None,
        theme: str = "dark",
        apply_runner: ApplyRunner | None = None,
        source_factory: Callable[[object], LayerSource] | None = None,
    ) -> None:
        super().__init__()
        self.plan_file = PlanFile(plan_path)
        self.plan_name = Path(plan_path).name
        self.rows = attention_entries(self.plan_file.plan)  # conflicts, then your changes
        self._row_index = {e.path: i for i, e in enumerate(self.rows)}
        self.sessions: dict[bytes, FileSession] = {}
        self.source: LayerSource | None = None
        self.source_error: str | None = None
        self.editor = editor or "vi"
        self.output = output
        self.apply_runner = apply_runner or default_apply_runner
        self.source_factory = source_factory or LayerSource
        self._keymap = {}
        self.user_keymap = dict(keymap or {})
        self.theme = THEMES.get(theme, theme)

    # -- set-up -------------------------------------------------------------------

    def on_mount(self) -> None:
        if self.user_keymap:
            self.set_keymap(self.user_keymap)
        self.push_screen(ConflictsScreen())
        self.load_source()

    @work(thread=True, exclusive=True, group="source")
    def load_source(self) -> None:
        """Read the three layers (walks every layer: slow on big trees, so off the UI thread)."""
        try:
            source = self.source_factory(self.plan_file.plan)
        except OvermergeError as exc:
            self.call_from_thread(self._source_failed, exc.message)
            return
        self.call_from_thread(self._source_loaded, source)

    def _source_loaded(self, source: LayerSource) -> None:
        self.source = source
        if source.stale:
            self.notify(source.stale, title="The layers changed", severity="error", timeout=15)
        for screen in self.screen_stack:
            if isinstance(screen, FileScreen):
                screen.source_ready()
        self._refresh_headers()

    def _source_failed(self, message: str) -> None:
        self.source_error = message
        self.notify(message, title="Cannot read the layers", severity="error", timeout=30)
        self._refresh_headers()

    # -- shared helpers -------------------------------------------------------------

    def row_path(self, key: str) -> bytes:
        return self.rows[int(key)].path

    def neighbour(self, path: bytes, step: int) -> bytes | None:
        if not self.rows:
            return None
        i = self._row_index.get(path, 0)
        return self.rows[(i + step) % len(self.rows)].path

    def header_text(self) -> str:
        text = f"overmerge resolve · {self.plan_name} · {progress(self.plan_file.plan)}"
        if self.source_error:
            text += " · layers unreadable"
        elif self.source is None:
            text += " · reading layers…"
        return text

    def _refresh_headers(self) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, (ConflictsScreen, FileScreen)):
                try:
                    screen.update_progress() if isinstance(screen, ConflictsScreen) else screen.update_header()
                except Exception:  # screen not composed yet
                    pass

    def open_file(self, path: bytes) -> None:
        self.push_screen(FileScreen(path))

    def record(self, session: FileSession) -> None:
        """Write the session's decision or per-hunk progress into the plan file now (nothing is lost on quit)."""
        try:
            self.plan_file.record(session)
        except OvermergeError as exc:
            self.notify(exc.message, title="Plan not saved", severity="error", timeout=15)
        self._refresh_headers()

    def edit_text(self, data: bytes, path: bytes) -> bytes | None:
        """Edit bytes in $EDITOR with the app suspended; None if the editor failed."""
        suffix = "-" + os.fsdecode(paths.name_of(path)).replace(os.sep, "_")
        fd, tmp = tempfile.mkstemp(prefix="overmerge-", suffix=suffix)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            try:
                with self.suspend():
                    code = subprocess.call([*shlex.split(self.editor), tmp])
            except Exception as exc:  # SuspendNotSupported and friends
                self.notify(f"Cannot run the editor: {exc}", severity="error")
                return None
            self.refresh()
            if code != 0:
                self.notify(f"{self.editor} exited with {code}: nothing taken", severity="warning")
                return None
            with open(tmp, "rb") as f:
                return f.read()
        finally:
            os.unlink(tmp)

    # -- actions ---------------------------------------------------------------------

    def help_text(self) -> str:
        from overmerge.tui.screens.apply import ApplyScreen as _A

        out = ["overmerge resolve — keys (binding id on the right, for the keymap)", ""]
        for title, cls in (("Conflict list", ConflictsScreen), ("A file", FileScreen),
                           ("Everywhere", ResolveApp), ("Apply dialog", _A)):
            out.append(title)
            for b in cls.BINDINGS:
                keys = self._keymap.get(b.id, b.key) if b.id else b.key
                shown = ", ".join(self.get_key_display(Binding(k.strip(), "")) for k in keys.split(","))
                out.append(f"  {shown:<6} {HELP.get(b.id or '', b.description):<38} {b.id}")
            out.append("")
        out.append("Remap keys in a keymap file (--keymap FILE, default "
                   "~/.config/overmerge/keymap.toml): [keymap] take-yours = \"1\"")
        return "\n".join(out)

    async def action_quit(self) -> None:
        """Quit at once: every choice, even a partly resolved file's, is already in the plan."""
        self.exit()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.help_text()))

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    def apply_preview(self) -> str:
        plan = self.plan_file.plan
        lines = [f"Apply {self.plan_name}: what will be written", ""]
        for e in self.rows:
            if e.cls != "conflict":
                continue  # your changes are kept as they are
            d = e.decision
            where = paths.display(e.path)
            if e.resolution != "decided" or not d:
                what = f"{e.resolution} (rule {e.rule})" if e.rule else str(e.resolution)
            elif d.get("take") == "content":
                data = decision_content(d) or b""
                what = f"your merged content ({len(data.splitlines())} lines)"
            elif d.get("take") == "yours":
                gone = e.your_change == "removed"
                what = "stays deleted" if gone else "your version"
                if d.get("keep_aside"):
                    what += ", the vendor's copy saved aside"
            else:
                what = "removed (as the vendor did)" if e.vendor_change == "removed" else "the vendor's version"
            lines.append(f"  {where}: {what}")
        counts = plan.counts
        lines += ["", f"Also: {counts.get('upstream-changed', 0)} vendor change(s) pass through, "
                      f"{counts.get('user-modified', 0)} of your change(s) are kept."]
        lines.append(f"Destination: {self.output}" if self.output else
                     "No destination given (--output DIR): run `overmerge apply` with one.")
        return "\n".join(lines)

    def action_apply(self) -> None:
        prog = progress(self.plan_file.plan)
        if not prog.done:
            self.notify(f"{prog.total - prog.resolved} conflict(s) still open: resolve them first",
                        severity="warning")
            return

        def done(confirmed: bool | None) -> None:
            if confirmed:
                self.run_apply()

        self.push_screen(ApplyScreen(self.apply_preview(), can_apply=self.output is not None), done)

    @work(thread=True, exclusive=True, group="apply")
    def run_apply(self) -> None:
        try:
            report = self.apply_runner(self.plan_file.path, self.output)
        except OvermergeError as exc:
            self.call_from_thread(self.notify, exc.message, title="Apply failed", severity="error", timeout=30)
            return
        self.call_from_thread(self.notify, report, title="Applied", timeout=30)
        self.call_from_thread(self.exit, 0)

    def exit_code(self) -> int:
        return 0 if progress(self.plan_file.plan).done else 1
