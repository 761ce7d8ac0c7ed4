"""Exercise checkers (used by every notebook's check cells).

A checker calls the student's function on hand-worked and random inputs, compares with the
library's reference, and raises a `CheckFailed` (an AssertionError) whose message names the
call, the expected and the got value. A stub that still raises NotImplementedError gives an
`ExerciseNotImplemented` with a one-line message instead of a traceback into the stub.
"""
from __future__ import annotations


class CheckFailed(AssertionError):
    """The student's function gave a wrong answer; the message says where."""


class ExerciseNotImplemented(CheckFailed):
    """The exercise still holds its stub."""
