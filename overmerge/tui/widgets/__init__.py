"""Widgets of the resolve TUI."""
