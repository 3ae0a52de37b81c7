"""The list of paths that need attention: conflicts, then your changes; state, path, change, rule; filterable."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from overmerge import paths
from overmerge.resolution import entry_state


class ConflictsScreen(Screen):
    """Every conflict of the plan (open ones first), then your changes (read-only)."""

    BINDINGS = [
        Binding("enter", "open_file", "Open", id="open-file"),
        Binding("slash", "filter", "Filter", id="filter"),
        Binding("A", "apply", "Apply", id="apply"),
        Binding("question_mark", "app.help", "Help", id="help"),
        Binding("q", "app.quit", "Quit", id="quit"),
    ]

    def compose(self) -> ComposeResult:
        yield Static("", id="progress")
        yield Input(placeholder="filter: text in path, state, change or rule (Esc clears)", id="filter")
        table: DataTable = DataTable(id="conflicts", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static("", id="status")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("state", key="state", width=11)
        table.add_column("path", key="path")
        table.add_column("change", key="change", width=8)
        table.add_column("rule", key="rule", width=12)
        self.query_one("#filter", Input).display = False
        self.refresh_rows()
        table.focus()

    def _row(self, e) -> tuple:
        return (entry_state(e), paths.display(e.path), e.change or "", e.rule or "")

    def refresh_rows(self, keep: bytes | None = None) -> None:
        app = self.app
        table = self.query_one(DataTable)
        if keep is None and table.row_count:
            try:
                keep = app.row_path(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
            except Exception:
                keep = None
        needle = self.query_one("#filter", Input).value.strip().lower()
        table.clear()
        for i, e in enumerate(app.rows):
            row = self._row(e)
            if needle and needle not in " ".join(row).lower():
                continue
            table.add_row(*row, key=str(i))
        if keep is not None:
            for index, key in enumerate(table.rows):
                if app.row_path(key.value) == keep:
                    table.move_cursor(row=index, animate=False)
                    break
        self.update_progress()

    def update_progress(self) -> None:
        self.query_one("#progress", Static).update(self.app.header_text())
        shown = self.query_one(DataTable).row_count
        self.query_one("#status", Static).update(
            f"{shown} of {len(self.app.rows)} paths shown · Enter opens · / filters · A applies when all are resolved")

    def on_screen_resume(self) -> None:
        self.refresh_rows()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.app.open_file(self.app.row_path(event.row_key.value))

    def action_open_file(self) -> None:
        table = self.query_one(DataTable)
        if table.row_count:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
            self.app.open_file(self.app.row_path(key))

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.refresh_rows()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one(DataTable).focus()

    def key_escape(self) -> None:
        box = self.query_one("#filter", Input)
        if box.display:
            box.value = ""
            box.display = False
            self.query_one(DataTable).focus()
            self.refresh_rows()

    def action_apply(self) -> None:
        self.app.action_apply()
