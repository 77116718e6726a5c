"""The exception hierarchy shared by the three finegrain packages.

``attention`` is the lowest layer (``reductions`` and ``solvers`` import it), so the
hierarchy lives here; ``reductions.errors`` re-exports it and adds the errors that only
the reduction layer raises.  Every error a user can provoke with bad input is a
:class:`FinegrainError`; the CLI prints it as one line and exits with status 2.
"""

from __future__ import annotations


class FinegrainError(Exception):
    """Base class of every error finegrain raises on purpose."""


class InvalidInstance(FinegrainError, ValueError):
    """An instance or file is malformed: wrong shape, non-binary, NaN/Inf, overflow, ...

    The message says what is wrong, where, and how to fix it.
    """


class PrecisionError(FinegrainError, ArithmeticError):
    """A decision margin is not above the error the computation guarantees.

    Raised instead of guessing; the message suggests a higher-precision method.
    """


class ResourceError(FinegrainError, MemoryError):
    """A request would need more memory or rank than allowed; the message gives the estimate."""


class OutputExists(FinegrainError, FileExistsError):
    """An output file exists and overwriting was not asked for (``force=True`` / ``--force``)."""
