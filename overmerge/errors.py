"""One error family; every error carries its exit code.

Exit codes are a contract relied on by hooks and scripts:
0 done / nothing needs a decision, 1 decisions needed, 2 error, 130 interrupted.
"""
from __future__ import annotations

EXIT_OK = 0
EXIT_DECISIONS = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


class OvermergeError(Exception):
    """Base class: a one-line message for the user, and the exit code to leave with."""

    exit_code: int = EXIT_ERROR

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


class UsageError(OvermergeError):
    """Bad command-line arguments or options."""


class InputError(OvermergeError):
    """A layer, plan or file given as input is missing, of the wrong kind, or unsafe."""


class RuleError(OvermergeError):
    """A rule file is broken: the message names the file, the line and what is wrong."""


class UnsafePathError(InputError):
    """A path from a plan or a layer is absolute, has '..', a NUL or an empty part."""


class StalePlanError(OvermergeError):
    """A layer changed between plan and apply."""


class MountedLayerError(OvermergeError):
    """A layer belongs to a mounted overlay and must not be changed or trusted."""


class DecisionsNeeded(OvermergeError):
    """Conflicts remain that need a person or a policy."""

    exit_code = EXIT_DECISIONS


class VerifyError(OvermergeError):
    """The kernel's view of the new upper differs from the merged view."""


class Interrupted(OvermergeError):
    exit_code = EXIT_INTERRUPTED
