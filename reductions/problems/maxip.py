"""Bichromatic Boolean Max inner product, decision version: is ``max <U[i], V[j]> >= tau``?

``U in {0,1}^(n_U x m)``, ``V in {0,1}^(n_V x m)``, integer threshold ``tau``.  An answer is
an index pair with ``<U[i], V[j]> >= tau`` (checked by :func:`is_maxip_witness`) or ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reductions.errors import InvalidInstance
from reductions.problems.ov import BinarySides, require_meta

_BLOCK = 2048


@dataclass(frozen=True, eq=False)
class MaxIP(BinarySides):
    """Max-IP decision instance: is there ``(i, j)`` with ``<U[i], V[j]> >= tau``?

    Examples
    --------
    >>> inst = MaxIP([[1, 1, 0]], [[1, 1, 1], [0, 0, 1]], tau=2)
    >>> max_inner_product(inst)
    (2, (0, 0))
    >>> MaxIP([[1, 0]], [[1, 0]], tau=1.5)
    Traceback (most recent call last):
    ...
    attention.errors.InvalidInstance: tau: expected an integer threshold, got 1.5
    """

    tau: int = 0
    meta: dict = field(default_factory=dict)
    problem = "maxip"

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.tau, bool) or not isinstance(self.tau, (int, np.integer)):
            raise InvalidInstance(f"tau: expected an integer threshold, got {self.tau!r}")
        object.__setattr__(self, "tau", int(self.tau))
        require_meta(self.meta)

    def inner(self, i: int, j: int) -> int:
        """``<U[i], V[j]>``."""
        return int(np.dot(self.U[i].astype(np.int64), self.V[j].astype(np.int64)))


def is_maxip_witness(inst: MaxIP, pair: Any) -> bool:
    """Checker: is ``pair = (i, j)`` a valid index pair with ``<U[i], V[j]> >= tau``?"""
    try:
        i, j = (int(x) for x in pair)
    except Exception:
        return False
    return 0 <= i < inst.n_U and 0 <= j < inst.n_V and inst.inner(i, j) >= inst.tau


def max_inner_product(inst: MaxIP) -> tuple[int, tuple[int, int] | None]:
    """The maximum inner product and the first pair (row-major) attaining it; ``(-1, None)`` if a side is empty.

    Blocked integer matrix products: memory ``O((n_U + n_V) m + 2048 n_V)``.
    """
    best, where = -1, None
    V = inst.V.astype(np.int32)
    for start in range(0, inst.n_U, _BLOCK):
        block = inst.U[start : start + _BLOCK].astype(np.int32) @ V.T
        if block.size and block.max() > best:
            best = int(block.max())
            i, j = np.unravel_index(int(block.argmax()), block.shape)
            where = (start + int(i), int(j))
    return best, where


def solve_maxip(inst: MaxIP) -> tuple[int, int] | None:
    """Brute force: a pair with ``<U[i], V[j]> >= tau`` (one of maximum inner product), or ``None``."""
    best, where = max_inner_product(inst)
    return where if where is not None and best >= inst.tau else None
