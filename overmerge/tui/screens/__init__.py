"""Screens of the resolve TUI: the conflict list, one file, help, apply."""
