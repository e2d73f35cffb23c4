"""The project's errors: one base class, so the command line turns only these (and the operating
system's file errors) into one line, and a bug still shows its traceback."""

from __future__ import annotations


class TrainingDynamicsError(ValueError):
    """Base of every error this project raises on bad input or a refused action.

    The message is one line that says what is wrong and how to proceed. (A ``ValueError`` subclass, so
    callers that caught ``ValueError`` before keep working.)
    """


class DataChangedError(TrainingDynamicsError):
    """The data a run was recorded on no longer matches what is read now (rows inserted, edited, removed)."""


class RunLockedError(TrainingDynamicsError):
    """Another process is recording into this run folder."""


class OutputError(TrainingDynamicsError):
    """A write that would replace an input or a file this project did not write."""
