"""A scrollable coloured diff (theme variables only, no fixed colours)."""
from __future__ import annotations

from collections.abc import Sequence

from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

# Tag of a diff line -> style. Theme variables keep light and dark themes readable.
STYLES = {"+": "$text-success", "-": "$text-error", "@": "$text-accent", " ": "", "!": "$text-warning"}


def diff_content(lines: Sequence[tuple[str, str]], empty: str = "(no change)") -> Content:
    if not lines:
        return Content.styled(empty, "dim")
    parts: list[tuple[str, str] | str] = []
    for tag, text in lines:
        prefix = "" if tag == "@" else (tag if tag != "!" else " ")
        parts.append((prefix + text + "\n", STYLES.get(tag, "")))
    return Content.assemble(*parts)


class DiffView(VerticalScroll, can_focus=False):
    """A titled pane that shows diff lines."""

    DEFAULT_CSS = """
    DiffView { height: 1fr; border: round $foreground 30%; padding: 0 1; }
    DiffView > Static { width: auto; min-width: 100%; }
    """

    def __init__(self, title: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = title
        self._body = Static("", markup=False)

    def compose(self):
        yield self._body

    def show(self, lines: Sequence[tuple[str, str]], *, title: str | None = None, empty: str = "(no change)") -> None:
        if title is not None:
            self.border_title = title
        self._body.update(diff_content(lines, empty))
        self.scroll_home(animate=False)
