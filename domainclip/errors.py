"""User-facing errors.

Every error a user can cause (a bad recipe, a bad row in a manifest, a missing
checkpoint) is raised as a :class:`DomainClipError`. The CLI prints its message
without a traceback and exits with its ``exit_code``; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations


class DomainClipError(Exception):
    """An error caused by user input, reported as one clear message."""

    exit_code: int = 1


class RecipeError(DomainClipError):
    """A recipe or ``--set`` override is invalid (file, dotted key, what was expected)."""

    exit_code = 2


class DataError(DomainClipError):
    """Input data is unusable. ``problems`` lists every bad row/file at once."""

    exit_code = 3

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = list(problems or [])
        if self.problems:
            message = message + "\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(message)


class CheckpointError(DomainClipError):
    """A checkpoint is missing, unreadable or does not match the model."""

    exit_code = 4
