"""Whole-file strategies: ``keep-user``, ``take-new``, ``regenerate``, ``ask``."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from overmerge.merge.base import MergeResult


def keep_user(old: bytes, yours: bytes, new: bytes, options: Mapping[str, Any] | None = None) -> MergeResult:
    """Your file, whole (machine-id, ssh host keys: identity of this machine)."""
    return MergeResult("keep-user", (yours,), taken="yours")


def take_new(old: bytes, yours: bytes, new: bytes, options: Mapping[str, Any] | None = None) -> MergeResult:
    """NEW's file, whole; your change is dropped (the caller keeps it aside and reports it)."""
    return MergeResult("take-new", (new,), taken="new")


def regenerate(old: bytes, yours: bytes, new: bytes, options: Mapping[str, Any] | None = None) -> MergeResult:
    """A generated file (ld.so.cache): NEW's, since it is rebuilt from the merged inputs."""
    return MergeResult("regenerate", (new,), taken="new",
                       notes=("generated file: NEW's copy taken; regenerate it after the upgrade",))


def ask(old: bytes, yours: bytes, new: bytes, options: Mapping[str, Any] | None = None) -> MergeResult:
    """Never merged automatically: a person decides."""
    return MergeResult("ask", (), reason="the rule says to ask: both sides changed this file")
