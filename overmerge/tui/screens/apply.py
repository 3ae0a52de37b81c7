"""Confirm apply: show what will be written, then run the same code as `overmerge apply`."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class ApplyScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "confirm", "Apply", id="confirm-apply"),
        Binding("escape,n", "cancel", "Cancel", id="cancel-apply"),
    ]

    def __init__(self, preview: str, can_apply: bool) -> None:
        super().__init__()
        self.preview = preview
        self.can_apply = can_apply

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="apply-box"):
            yield Static(self.preview, markup=False, id="apply-preview")
            yield Static("y apply · Esc cancel" if self.can_apply else "Esc close", id="apply-keys")

    def action_confirm(self) -> None:
        if self.can_apply:
            self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)
