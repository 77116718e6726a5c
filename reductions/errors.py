"""Errors of the reduction layer (re-exports the shared hierarchy of :mod:`attention.errors`)."""

from __future__ import annotations

from attention.errors import FinegrainError, InvalidInstance, PrecisionError, ResourceError


class DimacsError(InvalidInstance):
    """A DIMACS file is malformed; the message names the file and line: ``f.cnf line 14: ...``."""


class FormatError(InvalidInstance):
    """A file in one of our other formats (OV text, .npz) is malformed."""


class NoReductionPath(FinegrainError, LookupError):
    """No chain of registered reductions joins two problems; the message lists reachable targets."""


class VerificationFailed(FinegrainError):
    """A chain's answer disagreed with ground truth (CLI exit status 1, not 2)."""


__all__ = [
    "FinegrainError",
    "InvalidInstance",
    "PrecisionError",
    "ResourceError",
    "DimacsError",
    "FormatError",
    "NoReductionPath",
    "VerificationFailed",
]
