"""Orthogonal Vectors (OV): is there ``u in U``, ``v in V`` with ``<u, v> = 0``?

``U in {0,1}^(n_U x m)``, ``V in {0,1}^(n_V x m)`` (the sides are not called A and B: B is
the paper's entry bound).  Vectors are stored unpacked (``uint8``, read-only) and bit-packed
(``uint64`` words, bit ``l % 64`` of word ``l // 64`` is coordinate ``l``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reductions.errors import InvalidInstance


def require_binary(value: Any, name: str) -> np.ndarray:
    """``value`` as a read-only ``uint8`` 0/1 matrix, or :class:`InvalidInstance` naming the bad entry."""
    try:
        arr = np.asarray(value)
    except Exception as exc:
        raise InvalidInstance(f"{name}: cannot be read as a matrix ({exc})") from None
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise InvalidInstance(f"{name}: expected 0/1 entries, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise InvalidInstance(f"{name}: expected a 2-D matrix (one vector per row), got shape {arr.shape}")
    if arr.shape[1] == 0:
        raise InvalidInstance(f"{name}: vectors have dimension m = 0; m must be >= 1")
    if arr.size and arr.dtype.kind != "b":
        bad = (arr != 0) & (arr != 1)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise InvalidInstance(
                f"{name}: entry [{i}, {j}] = {arr[i, j].item()!r} is not 0 or 1; OV vectors are binary"
            )
    out = np.ascontiguousarray(arr, dtype=np.uint8)
    out.setflags(write=False)
    return out


def pack_bits(M: np.ndarray) -> np.ndarray:
    """Pack a 0/1 matrix (rows = vectors) into ``uint64`` words: shape ``(rows, ceil(m / 64))``."""
    rows, m = M.shape
    words = (m + 63) // 64
    padded = np.zeros((rows, words * 64), dtype=np.uint8)
    padded[:, :m] = M
    packed = np.packbits(padded.reshape(rows, words, 64), axis=2, bitorder="little")
    return np.ascontiguousarray(packed.view("<u8").reshape(rows, words).astype(np.uint64))


@dataclass(frozen=True, eq=False)
class OV:
    """Orthogonal Vectors instance: is there ``(i, j)`` with ``<U[i], V[j]> = 0``?

    ``U in {0,1}^(n_U x m)``, ``V in {0,1}^(n_V x m)``; either side may be empty (then the
    answer is no).  ``meta`` carries provenance (generator, seed, planted pairs).

    Examples
    --------
    >>> ov = OV([[1, 0], [0, 1]], [[1, 1], [1, 0]])
    >>> (ov.n_U, ov.n_V, ov.m)
    (2, 2, 2)
    >>> OV([[1, 2]], [[0, 1]])
    Traceback (most recent call last):
    ...
    attention.errors.InvalidInstance: U: entry [0, 1] = 2 is not 0 or 1; OV vectors are binary
    """

    U: np.ndarray
    V: np.ndarray
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        U = require_binary(self.U, "U")
        V = require_binary(self.V, "V")
        if U.shape[1] != V.shape[1]:
            raise InvalidInstance(
                f"U has dimension m = {U.shape[1]} but V has m = {V.shape[1]}; both sides need the same m"
            )
        object.__setattr__(self, "U", U)
        object.__setattr__(self, "V", V)
        if not isinstance(self.meta, dict):
            raise InvalidInstance(f"meta: expected a dict, got {type(self.meta).__name__}")

    @property
    def n_U(self) -> int:
        return self.U.shape[0]

    @property
    def n_V(self) -> int:
        return self.V.shape[0]

    @property
    def m(self) -> int:
        return self.U.shape[1]

    @property
    def U_packed(self) -> np.ndarray:
        """``U`` bit-packed into ``uint64`` words (computed once, cached)."""
        return self._packed("U")

    @property
    def V_packed(self) -> np.ndarray:
        """``V`` bit-packed into ``uint64`` words (computed once, cached)."""
        return self._packed("V")

    def _packed(self, side: str) -> np.ndarray:
        key = f"_{side}_packed"
        cached = self.__dict__.get(key)
        if cached is None:
            cached = pack_bits(getattr(self, side))
            cached.setflags(write=False)
            object.__setattr__(self, key, cached)
        return cached

    def inner(self, i: int, j: int) -> int:
        """``<U[i], V[j]>``."""
        return int(np.dot(self.U[i].astype(np.int64), self.V[j].astype(np.int64)))


def is_orthogonal_pair(ov: OV, pair: Any) -> bool:
    """Checker: is ``pair = (i, j)`` a valid index pair with ``<U[i], V[j]> = 0``?"""
    try:
        i, j = (int(x) for x in pair)
    except Exception:
        return False
    if not (0 <= i < ov.n_U and 0 <= j < ov.n_V):
        return False
    return ov.inner(i, j) == 0
