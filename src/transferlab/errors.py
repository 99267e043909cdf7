"""Errors a user can act on.

Every failure caused by input (data, weights, options) is a :class:`TransferlabError` carrying
one line of cause and one line of remedy. The CLI prints exactly those two lines and exits with
``exit_code``; the Python API lets the exception propagate.
"""

from __future__ import annotations


class TransferlabError(Exception):
    """A failure the user can fix: ``cause`` says what is wrong, ``remedy`` what to do."""

    exit_code = 2

    def __init__(self, cause: str, remedy: str = "") -> None:
        super().__init__(cause)
        self.cause = cause
        self.remedy = remedy

    def __str__(self) -> str:
        return f"{self.cause} ({self.remedy})" if self.remedy else self.cause


class DataError(TransferlabError):
    """The dataset cannot be used as given."""


class UsageError(TransferlabError):
    """Options or arguments do not fit together."""


class WeightsError(TransferlabError):
    """Pretrained weights cannot be found, read or matched to the model."""


class RunError(TransferlabError):
    """A run directory is missing, damaged, or belongs to another task or version."""


class TrainingError(TransferlabError):
    """Training stopped: the loss diverged, memory ran out, or resuming is impossible."""

    exit_code = 1
