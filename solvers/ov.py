"""Brute-force Orthogonal Vectors: first witness, pair count, pair list (ground truth).

Every function examines all ``n_U n_V`` pairs (no early exit except after the first witness
in :func:`solve_ov`), in tiles, so the extra memory is ``O((n_U + n_V) m + block^2)`` bits.
The witness is always the *first* orthogonal pair in row-major order: the smallest ``i``
and, for that ``i``, the smallest ``j``, the pair a plain double loop would report first.
It does not depend on the method, the block size or the number of threads.

Methods
-------
``"packed"`` (the default, ``"auto"``)
    numba kernel over the bit-packed words: a pair is orthogonal iff the OR over the
    ``W = ceil(m / 64)`` words of ``u_w & v_w`` is 0.  Parallel over blocks of U rows
    (numba ``prange``); V is cut into tiles of ``block`` vectors, stored word-major, so
    that a tile stays in L1/L2 while a block of U rows sweeps it; the inner loop over a
    tile is branch-free (it counts zeros) and vectorises (SIMD).  ``W = 1, 2`` have
    dedicated loops; ``W >= 3`` ORs the words into a tile-long accumulator.  Cost
    ``O(n_U n_V W)`` word operations.
``"blas"``
    per tile, the product ``U_tile @ V_tile.T`` in float32 (float64 if ``m >= 2^24``),
    exact because every entry is an integer ``<= m``; a pair is orthogonal iff its entry is
    0.  ``2 m`` flops per pair, so its ceiling is the machine's GEMM rate ``/ (2 m)``.
``"numpy"``
    per tile, the packed words ANDed by numpy broadcasting (``block x block x 1`` words at
    a time), the reference for the numba kernel.

Tiles for distribution
----------------------
:func:`solve_ov_tile` and :func:`count_tile` run the packed kernel on one tile
``U[i0:i1] x V[j0:j1]`` given as packed row slices.  The first witness of the whole
instance is the lexicographic minimum of the tiles' witnesses (each tile returns its own
first pair, in global indices), and the count is the sum of the tiles' counts, whatever the
tiling.  The kernel releases the GIL (``nogil``) and runs numba's own threads; with the
``omp`` or ``tbb`` threading layer it may be called from several threads at once (the
``workqueue`` layer aborts on concurrent use: use one thread per worker process there).
``threads`` limits numba's threads for the calling thread only (``numba.set_num_threads``
is thread-local), e.g. ``threads=1`` in a Dask worker that already runs one task per core.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

import numba
import numpy as np
from numba import njit, prange

from attention.vectorize import wide_vectors
from reductions.errors import InvalidInstance, ResourceError
from reductions.problems.ov import OV

Pair = tuple[int, int]
#: ``progress(rows_done, n_U)``: told as bands of U rows are searched (a progress bar).
Progress = Callable[[int, int], None]

METHODS = ("auto", "packed", "blas", "numpy")

#: Default tile side (vectors of V per tile) of each method; the blas/numpy tiles are square.
#: The packed tile is ``PACKED_TILE_WORDS // W`` vectors (32 KiB of V, an L1 cache).
DEFAULT_BLOCK = {"blas": 2048, "numpy": 512}
PACKED_TILE_WORDS = 4096

#: Rows of U per parallel task of the packed kernel (fewer for small n_U, to use all threads).
ROW_BLOCK = 256

#: Largest m for which the float32 product of 0/1 vectors is exact (integers below 2^24).
FLOAT32_EXACT_M = 1 << 24


# --------------------------------------------------------------------------- numba kernels
@njit(nogil=True, cache=True)
def _count_w1(u0: np.uint64, v0: np.ndarray) -> int:
    """Zeros of ``u0 & v0[j]`` over a tile (one word per vector)."""
    z = 0
    for j in range(v0.shape[0]):
        z += (u0 & v0[j]) == 0
    return z


@njit(nogil=True, cache=True)
def _count_w2(u0: np.uint64, u1: np.uint64, v0: np.ndarray, v1: np.ndarray) -> int:
    """Zeros of ``(u0 & v0[j]) | (u1 & v1[j])`` over a tile (two words per vector)."""
    z = 0
    for j in range(v0.shape[0]):
        z += ((u0 & v0[j]) | (u1 & v1[j])) == 0
    return z


@njit(nogil=True, cache=True)
def _count_wide(u: np.ndarray, Vt: np.ndarray, t0: int, t1: int, acc: np.ndarray) -> int:
    """Zeros of ``OR_w u[w] & Vt[w, j]`` over ``j in [t0, t1)`` of a word-major V, ``W >= 3`` words."""
    W = Vt.shape[0]
    v0 = Vt[0, t0:t1]
    v1 = Vt[1, t0:t1]
    u0 = u[0]
    u1 = u[1]
    for j in range(v0.shape[0]):
        acc[j] = (u0 & v0[j]) | (u1 & v1[j])
    for w in range(2, W - 1):
        uw = u[w]
        vw = Vt[w, t0:t1]
        for j in range(vw.shape[0]):
            acc[j] |= uw & vw[j]
    z = 0
    last = u[W - 1]
    vl = Vt[W - 1, t0:t1]
    for j in range(vl.shape[0]):
        z += (acc[j] | (last & vl[j])) == 0
    return z


@njit(nogil=True, cache=True)
def _row_count(Up: np.ndarray, i: int, Vt: np.ndarray, t0: int, t1: int, acc: np.ndarray) -> int:
    """Number of ``j in [t0, t1)`` with ``<U[i], V[j]> = 0`` (``Vt`` is V word-major)."""
    W = Up.shape[1]
    if W == 1:
        return _count_w1(Up[i, 0], Vt[0, t0:t1])
    if W == 2:
        return _count_w2(Up[i, 0], Up[i, 1], Vt[0, t0:t1], Vt[1, t0:t1])
    return _count_wide(Up[i], Vt, t0, t1, acc)


@njit(nogil=True, cache=True)
def _row_scan(Up: np.ndarray, i: int, Vt: np.ndarray, t0: int, t1: int, out: np.ndarray) -> int:
    """Write the ``j in [t0, t1)`` orthogonal to ``U[i]`` into ``out`` in order; return how many.

    Stops when ``out`` is full (``out`` of length 1 gives the first ``j``).
    """
    k = 0
    for j in range(t0, t1):
        x = np.uint64(0)
        for w in range(Up.shape[1]):
            x |= Up[i, w] & Vt[w, j]
        if x == 0:
            out[k] = j
            k += 1
            if k == out.shape[0]:
                break
    return k


@njit(parallel=True, nogil=True, cache=True)
def _count_rows(Up: np.ndarray, Vt: np.ndarray, row_block: int, tile: int, counts: np.ndarray) -> None:
    """``counts[i] = #{j : <U[i], V[j]> = 0}`` for every row, parallel over row blocks."""
    n_U = Up.shape[0]
    n_V = Vt.shape[1]
    for b in prange((n_U + row_block - 1) // row_block):
        acc = np.empty(tile, np.uint64)
        rs = b * row_block
        re = min(rs + row_block, n_U)
        for t0 in range(0, n_V, tile):
            t1 = min(t0 + tile, n_V)
            for i in range(rs, re):
                counts[i] += _row_count(Up, i, Vt, t0, t1, acc)


@njit(parallel=True, nogil=True, cache=True)
def _first_per_block(
    Up: np.ndarray, Vt: np.ndarray, r0: int, r1: int, row_block: int, tile: int, found: np.ndarray
) -> None:
    """``found[b] = (i, j)``, the first witness among rows ``r0 + b*row_block ...``, or ``(-1, -1)``.

    Tiles of V are swept in order; once row ``i`` has a witness in the current tile, rows
    after ``i`` are dropped (they cannot hold the block's first witness), rows before it
    keep being checked in the later tiles.
    """
    n_V = Vt.shape[1]
    for b in prange((r1 - r0 + row_block - 1) // row_block):
        acc = np.empty(tile, np.uint64)
        first = np.empty(1, np.int64)
        rs = r0 + b * row_block
        limit = min(rs + row_block, r1)
        found[b, 0] = -1
        found[b, 1] = -1
        for t0 in range(0, n_V, tile):
            if limit == rs:
                break
            t1 = min(t0 + tile, n_V)
            for i in range(rs, limit):
                if _row_count(Up, i, Vt, t0, t1, acc) > 0:
                    _row_scan(Up, i, Vt, t0, t1, first)
                    found[b, 0] = i
                    found[b, 1] = first[0]
                    limit = i
                    break


@njit(parallel=True, nogil=True, cache=True)
def _list_rows(Up: np.ndarray, Vt: np.ndarray, rows: np.ndarray, offsets: np.ndarray, out: np.ndarray) -> None:
    """For each ``rows[k]``, write its orthogonal ``j`` (ascending) into ``out[offsets[k]:offsets[k+1]]``."""
    for k in prange(rows.shape[0]):
        _row_scan(Up, rows[k], Vt, 0, Vt.shape[1], out[offsets[k] : offsets[k + 1]])


# --------------------------------------------------------------------------- packed driver
def _as_packed(words: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(words)
    if arr.dtype != np.uint64 or arr.ndim != 2:
        raise InvalidInstance(
            f"{name}: expected a 2-D uint64 array of packed words (OV.{name}), got dtype {arr.dtype} "
            f"and shape {arr.shape}"
        )
    return np.ascontiguousarray(arr)


def _check_tile(U_packed: np.ndarray, V_packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    Up = _as_packed(U_packed, "U_packed")
    Vp = _as_packed(V_packed, "V_packed")
    if Up.shape[1] != Vp.shape[1]:
        raise InvalidInstance(
            f"U_packed has {Up.shape[1]} words per vector but V_packed has {Vp.shape[1]}; both sides need the same m"
        )
    if Up.shape[1] == 0:
        raise InvalidInstance("U_packed, V_packed: zero words per vector; OV needs m >= 1")
    return Up, np.ascontiguousarray(Vp.T)


def _row_block(n_U: int) -> int:
    """Rows per task: ROW_BLOCK, or fewer so that every thread gets several blocks."""
    per_task = -(-n_U // (4 * numba.get_num_threads()))
    return int(max(1, min(ROW_BLOCK, per_task)))


@contextmanager
def _numba_threads(threads: int | None) -> Iterator[None]:
    if threads is None:
        yield
        return
    if not 1 <= threads <= numba.config.NUMBA_NUM_THREADS:
        raise InvalidInstance(f"threads: expected 1 .. {numba.config.NUMBA_NUM_THREADS}, got {threads}")
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _dynamic(kernel: Any, *args: object) -> None:
    """Run a prange kernel with row blocks handed out one at a time (a thread that the OS
    preempts on a shared machine no longer holds up a fixed share of the blocks).

    The kernel is compiled for these argument types first, with 512-bit vectors preferred
    (:func:`attention.vectorize.wide_vectors`: 1.4x the pair checks per second on AVX-512
    server cores, whose LLVM tuning prefers 256 bits).
    """
    signature = tuple(numba.typeof(arg) for arg in args)
    if signature not in _COMPILED.setdefault(kernel, set()):
        with wide_vectors():
            kernel.compile(signature)
        _COMPILED[kernel].add(signature)
    with numba.parallel_chunksize(1):
        kernel(*args)


#: Argument types each prange kernel has been compiled for in this process.
_COMPILED: dict[Any, set[tuple[Any, ...]]] = {}


def _packed_first(Up: np.ndarray, Vt: np.ndarray, tile: int, progress: Progress | None = None) -> Pair | None:
    n_U = Up.shape[0]
    if n_U == 0 or Vt.shape[1] == 0:
        return None
    row_block = _row_block(n_U)
    chunk = row_block * 8 * numba.get_num_threads()
    found = np.empty(((chunk + row_block - 1) // row_block, 2), np.int64)
    for r0 in range(0, n_U, chunk):
        r1 = min(r0 + chunk, n_U)
        _dynamic(_first_per_block, Up, Vt, r0, r1, row_block, tile, found)
        hits = np.flatnonzero(found[: (r1 - r0 + row_block - 1) // row_block, 0] >= 0)
        if progress is not None:
            progress(r1, n_U)
        if hits.size:
            i, j = found[hits[0]]
            return int(i), int(j)
    return None


def _packed_row_counts(Up: np.ndarray, Vt: np.ndarray, tile: int) -> np.ndarray:
    counts = np.zeros(Up.shape[0], np.int64)
    if Up.shape[0] and Vt.shape[1]:
        _dynamic(_count_rows, Up, Vt, _row_block(Up.shape[0]), tile, counts)
    return counts


def solve_ov_tile(
    U_packed: np.ndarray, V_packed: np.ndarray, i0: int = 0, j0: int = 0, *, tile: int | None = None,
    threads: int | None = None,
) -> Pair | None:
    """First orthogonal pair of the tile ``U_packed x V_packed``, in global indices ``(i0 + i, j0 + j)``.

    ``U_packed``, ``V_packed`` are bit-packed rows (``OV.U_packed[i0:i1]``,
    ``OV.V_packed[j0:j1]``, or :func:`~reductions.problems.ov.pack_bits` of the rows), padding
    bits 0.  The pair is the first in row-major order within the tile; the instance's first
    witness is the lexicographic minimum over its tiles.  ``tile``: V vectors per cache tile
    of the kernel; ``threads``: numba threads for this call (module docstring).

    Examples
    --------
    >>> ov = OV([[1, 1], [0, 1], [1, 0]], [[1, 0], [0, 1]])
    >>> solve_ov_tile(ov.U_packed[1:], ov.V_packed, i0=1, j0=0)
    (1, 0)
    """
    Up, Vt = _check_tile(U_packed, V_packed)
    with _numba_threads(threads):
        pair = _packed_first(Up, Vt, _tile_size(tile, "packed", Up.shape[1]))
    return None if pair is None else (int(i0) + pair[0], int(j0) + pair[1])


def count_tile(
    U_packed: np.ndarray, V_packed: np.ndarray, *, tile: int | None = None, threads: int | None = None
) -> int:
    """Number of orthogonal pairs in the tile ``U_packed x V_packed`` (see :func:`solve_ov_tile`).

    Examples
    --------
    >>> ov = OV([[1, 1], [0, 1], [1, 0]], [[1, 0], [0, 1]])
    >>> count_tile(ov.U_packed, ov.V_packed)
    2
    """
    Up, Vt = _check_tile(U_packed, V_packed)
    with _numba_threads(threads):
        return int(_packed_row_counts(Up, Vt, _tile_size(tile, "packed", Up.shape[1])).sum())


# --------------------------------------------------------------------------- blas / numpy tiles
def _blas_mask(U: np.ndarray, V: np.ndarray) -> np.ndarray:
    return (U @ V.T) == 0


def _numpy_mask(Up: np.ndarray, Vp: np.ndarray) -> np.ndarray:
    acc = Up[:, None, 0] & Vp[None, :, 0]
    for w in range(1, Up.shape[1]):
        acc |= Up[:, None, w] & Vp[None, :, w]
    return acc == 0


def _tiled_sides(ov: OV, method: str) -> tuple[np.ndarray, np.ndarray, Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    if method == "blas":
        dtype = np.float32 if ov.m < FLOAT32_EXACT_M else np.float64
        return ov.U.astype(dtype), ov.V.astype(dtype), _blas_mask
    return ov.U_packed, ov.V_packed, _numpy_mask


def _bands(ov: OV, method: str, block: int) -> Iterator[tuple[int, Iterator[tuple[int, np.ndarray]]]]:
    """Row bands ``(i0, tiles)``; ``tiles`` yields ``(j0, mask)``, ``mask[a, b]`` iff ``(i0+a, j0+b)`` is orthogonal."""
    U, V, mask = _tiled_sides(ov, method)
    for i0 in range(0, ov.n_U, block):
        Ub = U[i0 : i0 + block]
        yield i0, ((j0, mask(Ub, V[j0 : j0 + block])) for j0 in range(0, ov.n_V, block))


def _tiled_first(ov: OV, method: str, block: int, progress: Progress | None = None) -> Pair | None:
    for i0, tiles in _bands(ov, method, block):
        first_j = np.full(min(block, ov.n_U - i0), -1, np.int64)
        for j0, M in tiles:
            new = (first_j < 0) & M.any(axis=1)
            first_j[new] = j0 + M[new].argmax(axis=1)
            if first_j[0] >= 0:
                break
        if progress is not None:
            progress(i0 + first_j.size, ov.n_U)
        hits = np.flatnonzero(first_j >= 0)
        if hits.size:
            return i0 + int(hits[0]), int(first_j[hits[0]])
    return None


def _tiled_pairs(ov: OV, method: str, block: int) -> np.ndarray:
    found = []
    for i0, tiles in _bands(ov, method, block):
        band = [np.argwhere(M) + (i0, j0) for j0, M in tiles]
        if band:
            pairs = np.concatenate(band)
            found.append(pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))])
    return np.concatenate(found) if found else np.empty((0, 2), np.int64)


# --------------------------------------------------------------------------- public API
def _resolve(ov: OV, method: str) -> str:
    if not isinstance(ov, OV):
        raise InvalidInstance(f"ov: expected an OV instance, got {type(ov).__name__}")
    if method not in METHODS:
        raise InvalidInstance(f"method: expected one of {', '.join(METHODS)}, got {method!r}")
    return "packed" if method == "auto" else method


def _tile_size(block: int | None, method: str, words: int = 1) -> int:
    if block is None:
        return max(64, PACKED_TILE_WORDS // words) if method == "packed" else DEFAULT_BLOCK[method]
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 1:
        raise InvalidInstance(f"block: expected a positive integer, got {block!r}")
    return int(block)


def solve_ov(
    ov: OV, method: str = "auto", block: int | None = None, progress: Progress | None = None
) -> Pair | None:
    """The first orthogonal pair ``(i, j)`` (smallest ``i``, then smallest ``j``), or None.

    Parameters
    ----------
    ov : OV
    method : {"auto", "packed", "blas", "numpy"}
        See the module docstring; ``"auto"`` is ``"packed"``.
    block : int, optional
        Tile side: V vectors per cache tile (packed; default ``PACKED_TILE_WORDS // W``, 32 KiB
        of V), or the side of the ``block x block`` tiles (blas, numpy; :data:`DEFAULT_BLOCK`).
    progress : callable, optional
        ``progress(rows_done, n_U)``, called as bands of U rows are searched (for a progress
        bar; the answer does not depend on it).

    Notes
    -----
    Brute force, ``O(n_U n_V ceil(m / 64))`` word operations (packed) or ``O(n_U n_V m)``
    flops (blas) in the worst case; it stops after the row band (packed: chunk of
    ``8 * threads`` row blocks) holding the first witness.  Memory beyond the instance:
    ``O(n_U + n_V + block)`` words (packed), ``O(block^2)`` (blas, numpy).  Checker:
    :func:`~reductions.problems.ov.is_orthogonal_pair`.

    Examples
    --------
    >>> ov = OV([[1, 1, 0], [0, 1, 1], [1, 0, 0]], [[1, 1, 1], [1, 0, 0], [0, 1, 0]])
    >>> [solve_ov(ov, method) for method in ("packed", "blas", "numpy")]
    [(1, 1), (1, 1), (1, 1)]
    >>> solve_ov(OV([[1]], [[1]])) is None
    True
    """
    method = _resolve(ov, method)
    tile = _tile_size(block, method, ov.U_packed.shape[1])
    if method == "packed":
        return _packed_first(ov.U_packed, np.ascontiguousarray(ov.V_packed.T), tile, progress)
    return _tiled_first(ov, method, tile, progress)


def count_orthogonal_pairs(ov: OV, method: str = "auto", block: int | None = None) -> int:
    """Number of pairs ``(i, j)`` with ``<U[i], V[j]> = 0`` (all ``n_U n_V`` pairs examined).

    Examples
    --------
    >>> count_orthogonal_pairs(OV([[1, 0], [0, 0]], [[0, 1], [1, 1]]), method="blas")
    3
    """
    method = _resolve(ov, method)
    tile = _tile_size(block, method, ov.U_packed.shape[1])
    if method == "packed":
        return int(_packed_row_counts(ov.U_packed, np.ascontiguousarray(ov.V_packed.T), tile).sum())
    return sum(int(M.sum()) for _, tiles in _bands(ov, method, tile) for _, M in tiles)


def orthogonal_pairs_array(
    ov: OV, method: str = "auto", block: int | None = None, max_pairs: int | None = 10**7
) -> np.ndarray:
    """All orthogonal pairs as an ``(k, 2)`` int64 array in row-major order.

    ``max_pairs`` bounds the output (packed method: checked before it is allocated);
    more pairs raise :class:`ResourceError`.  The packed method counts per row first and
    lists only the rows that have a pair, so it costs one count plus ``O(rows_hit n_V W)``.
    """
    method = _resolve(ov, method)
    tile = _tile_size(block, method, ov.U_packed.shape[1])
    if method != "packed":
        pairs = _tiled_pairs(ov, method, tile)
        _check_max_pairs(len(pairs), max_pairs)
        return pairs
    Vt = np.ascontiguousarray(ov.V_packed.T)
    counts = _packed_row_counts(ov.U_packed, Vt, tile)
    total = int(counts.sum())
    _check_max_pairs(total, max_pairs)
    rows = np.flatnonzero(counts)
    offsets = np.concatenate([[0], np.cumsum(counts[rows])]).astype(np.int64)
    cols = np.empty(total, np.int64)
    if rows.size:
        _dynamic(_list_rows, ov.U_packed, Vt, rows, offsets, cols)
    return np.stack([np.repeat(rows, counts[rows]), cols], axis=1).astype(np.int64)


def _check_max_pairs(total: int, max_pairs: int | None) -> None:
    if max_pairs is not None and total > max_pairs:
        raise ResourceError(
            f"the instance has {total} orthogonal pairs, more than max_pairs = {max_pairs}; "
            "raise max_pairs or use count_orthogonal_pairs"
        )


def all_orthogonal_pairs(
    ov: OV, method: str = "auto", block: int | None = None, max_pairs: int | None = 10**7
) -> list[Pair]:
    """All orthogonal pairs ``(i, j)`` in row-major order (for small instances; see :func:`orthogonal_pairs_array`).

    Examples
    --------
    >>> all_orthogonal_pairs(OV([[1, 0], [0, 0]], [[0, 1], [1, 1]]))
    [(0, 0), (1, 0), (1, 1)]
    """
    return [(int(i), int(j)) for i, j in orthogonal_pairs_array(ov, method, block, max_pairs)]
