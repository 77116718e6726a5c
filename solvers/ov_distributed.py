"""Orthogonal Vectors brute force on a Dask cluster, and SAT -> OV instances generated per block.

The search is split into tiles ``U[i0:i1] x V[j0:j1]``; each tile is one task running the
single-process kernel :func:`solvers.ov.solve_ov_tile`.  Tiles are submitted in row-major
order ``(i0, j0)`` through a sliding window of a few tasks per worker thread, and the search
stops early: once a witness ``(i, j)`` is known, every tile with ``i0 > i`` is cancelled (or
never submitted), because it cannot hold a pair that comes earlier.

**Which witness.**  The answer is the lexicographically first orthogonal pair: the pair
``(i, j)`` with the smallest ``i`` and, for that ``i``, the smallest ``j``.  It is the
minimum of the tiles' witnesses (each tile returns its own lexicographically first pair),
so it does not depend on the tile size, the number of workers or the order in which tiles
finish, and it is the pair a plain double loop ``for i: for j:`` would report first.

**Instances too large to store.**  :class:`SatOV` is the OV instance of a CNF formula by
Williams' split and list (THEORY 1.3) with nothing materialised: a task generates the bit
vectors of its own index range from the clauses, so the ``2^(N/2) x m`` arrays never exist.
Its vectors are those of :mod:`reductions.rules.ksat_to_ov`, in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Protocol, Sequence

import numpy as np

from attention.errors import InvalidInstance
from reductions.distributed_common import (
    aligned,
    block_ranges,
    cluster_failures,
    require_distributed,
    run_with_retries,
    scatter_shared,
    scheduler_client,
)
from reductions.problems.ov import OV, pack_bits

#: Largest default tile side: 2^15 x 2^15 = 1.1e9 pair checks per task (~0.1 s of one core
#: with the packed kernel at m <= 64), and O(2^15 m) memory to generate a block of a SatOV.
MAX_BLOCK = 1 << 15
#: Smallest default tile side on a cluster (below it a task costs less than its scheduling).
MIN_BLOCK = 1 << 11
#: Packed blocks a SatOV keeps per worker (see SatOV._packed).
PACKED_CACHE = 256

#: Tasks in flight per worker thread (keeps workers busy; bounds wasted work after a witness).
WINDOW_PER_THREAD = 4

Pair = tuple[int, int]


class VectorSource(Protocol):
    """Where a tile task gets its vectors: bit-packed rows of U and V by index range."""

    n_U: int
    n_V: int
    m: int

    def packed_U(self, start: int, stop: int) -> np.ndarray: ...

    def packed_V(self, start: int, stop: int) -> np.ndarray: ...


@dataclass(frozen=True, eq=False)
class PackedOV:
    """A materialised OV instance as a :class:`VectorSource` (its packed words, shipped once)."""

    U: np.ndarray
    V: np.ndarray
    n_U: int
    n_V: int
    m: int

    @classmethod
    def from_ov(cls, ov: OV) -> "PackedOV":
        return cls(U=ov.U_packed, V=ov.V_packed, n_U=ov.n_U, n_V=ov.n_V, m=ov.m)

    def __setstate__(self, state: dict) -> None:  # realign the words a worker receives
        for name, value in state.items():
            object.__setattr__(self, name, aligned(value))

    def packed_U(self, start: int, stop: int) -> np.ndarray:
        return self.U[start:stop]

    def packed_V(self, start: int, stop: int) -> np.ndarray:
        return self.V[start:stop]


# --------------------------------------------------------------------------- SAT -> OV per block
def clause_masks(clauses: Sequence[Sequence[int]], first: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Per clause, bit masks of the variables ``first .. first+count-1`` it has positive / negated.

    Bit ``t`` stands for variable ``x_(first+t)`` (variables numbered from 1, as in DIMACS).
    """
    pos = np.zeros(len(clauses), dtype=np.uint64)
    neg = np.zeros(len(clauses), dtype=np.uint64)
    for c, clause in enumerate(clauses):
        for lit in clause:
            t = abs(lit) - first
            if 0 <= t < count:
                if lit > 0:
                    pos[c] |= np.uint64(1 << t)
                else:
                    neg[c] |= np.uint64(1 << t)
    return pos, neg


def williams_vectors(pos: np.ndarray, neg: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Split-and-list vectors of the half-assignments ``start .. stop-1`` (THEORY 1.3).

    Assignment ``a`` gives the half's variable ``t`` the value of bit ``t`` of ``a``; its
    vector has coordinate ``c`` equal to 1 iff ``a`` satisfies no literal of clause ``c`` on
    this half, i.e. iff ``(a & pos[c]) | (~a & neg[c]) == 0``.  Returns a
    ``(stop - start, len(pos))`` ``uint8`` matrix.  Cost O((stop - start) m).

    Examples
    --------
    >>> pos, neg = clause_masks([[1, -2], [2]], first=1, count=2)
    >>> williams_vectors(pos, neg, 0, 4).tolist()    # assignments x2 x1 = 00, 01, 10, 11
    [[0, 1], [0, 1], [1, 0], [0, 0]]
    """
    a = np.arange(start, stop, dtype=np.uint64)[:, None]
    return (((a & pos[None, :]) | (~a & neg[None, :])) == 0).view(np.uint8)


@dataclass(frozen=True, eq=False)
class SatOV:
    """The Williams OV instance of a CNF formula, generated block by block, never stored.

    Parameters
    ----------
    n_vars : int
        ``N``, the number of variables (the DIMACS header's count, which fixes the split).
    clauses : sequence of sequences of int
        DIMACS literals, each ``1 <= |lit| <= N``.

    Notes
    -----
    Williams 2005 (THEORY 1.3), with the conventions of :mod:`reductions.rules.ksat_to_ov`:
    ``N1 = ceil(N/2)``; row ``i`` of U is the assignment ``x_v = (i >> (v-1)) & 1`` of
    ``x_1 .. x_N1``, row ``j`` of V assigns ``x_(N1+1+t) = (j >> t) & 1``; coordinate ``c``
    is 1 iff the half-assignment makes no literal of clause ``c`` true.  Then
    ``<U_i, V_j> = 0`` iff the joint assignment satisfies the formula.  Tautological clauses
    keep their coordinate (always 0 on the side of their variable); a formula without
    clauses gets one all-zero coordinate.  Sizes ``n_U = 2^N1``, ``n_V = 2^(N - N1)``,
    dimension ``max(m, 1)``.  A block of ``b`` rows costs O(b m) time and memory; the
    instance itself is O(m k) bytes however large ``N`` is (each half is indexed by a
    uint64, so ``N <= 126``).

    Examples
    --------
    >>> sat = SatOV(n_vars=3, clauses=[[1, -2], [2, 3]])
    >>> (sat.n_U, sat.n_V, sat.m)
    (4, 2, 2)
    >>> sat.U_block(0, 4).tolist(), sat.V_block(0, 2).tolist()
    ([[0, 1], [0, 1], [1, 0], [0, 0]], [[1, 1], [1, 0]])
    >>> sat.model((0, 1))
    [-1, -2, 3]
    """

    n_vars: int
    clauses: tuple[tuple[int, ...], ...]
    _masks: tuple[np.ndarray, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        from pysat.formula import CNF

        from reductions.rules.ksat_to_ov import clause_literals, split_point

        if isinstance(self.n_vars, bool) or not isinstance(self.n_vars, (int, np.integer)):
            raise InvalidInstance(f"n_vars: must be an integer, got {self.n_vars!r}")
        if self.n_vars > 126:
            raise InvalidInstance(
                f"n_vars: N = {self.n_vars} gives 2^{split_point(int(self.n_vars))} vectors per "
                "side, beyond any brute force (at most 126 variables)"
            )
        formula = CNF(from_clauses=[list(clause) for clause in self.clauses])
        formula.nv = int(self.n_vars)
        n_vars, clauses = clause_literals(formula)
        n_left = split_point(n_vars)
        object.__setattr__(self, "n_vars", n_vars)
        object.__setattr__(self, "clauses", tuple(tuple(clause) for clause in clauses))
        masks = clause_masks(clauses, 1, n_left) + clause_masks(clauses, n_left + 1, n_vars - n_left)
        object.__setattr__(self, "_masks", masks)

    @classmethod
    def from_cnf(cls, formula: Any, n_vars: int | None = None) -> "SatOV":
        """From a ``pysat.formula.CNF`` (``N`` = its ``nv``, the header's count, unless given)."""
        return cls(n_vars=formula.nv if n_vars is None else n_vars, clauses=formula.clauses)

    @property
    def n_left(self) -> int:
        """``N1 = ceil(N/2)``, the variables assigned by the rows of U."""
        return (self.n_vars + 1) // 2

    @property
    def n_U(self) -> int:
        return 1 << self.n_left

    @property
    def n_V(self) -> int:
        return 1 << (self.n_vars - self.n_left)

    @property
    def m(self) -> int:
        return max(len(self.clauses), 1)

    def U_block(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start .. stop-1`` of U as a 0/1 ``uint8`` matrix."""
        return self._block(self._masks[:2], start, stop, self.n_U)

    def V_block(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start .. stop-1`` of V as a 0/1 ``uint8`` matrix."""
        return self._block(self._masks[2:], start, stop, self.n_V)

    def _block(self, masks: tuple[np.ndarray, ...], start: int, stop: int, n: int) -> np.ndarray:
        if not 0 <= start <= stop <= n:
            raise InvalidInstance(f"block [{start}, {stop}) is outside the {n} rows of this side")
        if not self.clauses:
            return np.zeros((stop - start, 1), dtype=np.uint8)
        return williams_vectors(*masks, start, stop)

    def packed_U(self, start: int, stop: int) -> np.ndarray:
        return self._packed("U", start, stop)

    def packed_V(self, start: int, stop: int) -> np.ndarray:
        return self._packed("V", start, stop)

    def _packed(self, side: str, start: int, stop: int) -> np.ndarray:
        """Packed rows, kept for reuse: a worker meets the same blocks in many tiles.

        The tiles of a row band share their U block and every band sweeps the same V blocks,
        so the last :data:`PACKED_CACHE` blocks are kept (``8 block ceil(m/64)`` bytes each;
        the cache is not pickled).
        """
        cache = self.__dict__.setdefault("_cache", {})
        key = (side, start, stop)
        words = cache.get(key)
        if words is None:
            rows = self.U_block(start, stop) if side == "U" else self.V_block(start, stop)
            words = pack_bits(rows)
            if len(cache) >= PACKED_CACHE:
                cache.pop(next(iter(cache)), None)
            cache[key] = words
        return words

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_cache"}

    def to_ov(self) -> OV:
        """The whole instance, materialised (small N only: ``2^N1 x m`` bytes per side)."""
        return OV(self.U_block(0, self.n_U), self.V_block(0, self.n_V), meta={"generator": "SatOV"})

    def model(self, pair: Pair) -> list[int]:
        """The assignment of an orthogonal pair ``(i, j)``, as DIMACS literals ``[+-1, ..., +-N]``."""
        from reductions.rules.ksat_to_ov import pair_to_model

        return pair_to_model(pair, self.n_vars)


# --------------------------------------------------------------------------- the search
def _tile(
    source: VectorSource, i0: int, i1: int, j0: int, j1: int, threads: int | None = None
) -> Pair | None:
    """One task: the lexicographically first orthogonal pair in ``U[i0:i1] x V[j0:j1]``."""
    from solvers.ov import solve_ov_tile

    return solve_ov_tile(source.packed_U(i0, i1), source.packed_V(j0, j1), i0, j0, threads=threads)


def tiles(n_U: int, n_V: int, block: int) -> Iterator[tuple[int, int, int, int]]:
    """The tiles ``(i0, i1, j0, j1)`` in row-major order, ``block x block`` each (edges shorter)."""
    columns = block_ranges(n_V, block)
    for i0, i1 in block_ranges(n_U, block):
        for j0, j1 in columns:
            yield i0, i1, j0, j1


def _better(found: Pair | None, best: Pair | None) -> Pair | None:
    if found is None:
        return best
    return found if best is None or found < best else best


def _as_source(instance: Any) -> VectorSource:
    if isinstance(instance, OV):
        return PackedOV.from_ov(instance)
    if isinstance(instance, (SatOV, PackedOV)):
        return instance
    raise InvalidInstance(
        f"instance: expected an OV or a SatOV, got {type(instance).__name__}; "
        "build one with OV(U, V) or SatOV.from_cnf(formula)"
    )


def solve_ov_distributed(
    instance: OV | SatOV,
    scheduler: Any = None,
    *,
    block: int | None = None,
    retries: int = 2,
    task_threads: int | None = 1,
) -> Pair | None:
    """Find the lexicographically first orthogonal pair ``(i, j)``, tile by tile, or ``None``.

    Parameters
    ----------
    instance : OV or SatOV
        A stored instance (its packed words are sent to every worker once) or a formula's
        instance generated per tile inside the tasks.
    scheduler : None, "local", address or distributed.Client
        ``None`` runs the tiles here, in order (dask is not needed); see
        :func:`reductions.distributed_common.client_from_argument`.
    block : int, optional
        Tile side: a task checks up to ``block^2`` pairs.  Default: :data:`MAX_BLOCK` in this
        process; on a cluster the largest power of two in ``[MIN_BLOCK, MAX_BLOCK]`` giving
        at least 4 tiles per worker thread.
    retries : int
        Reruns of the whole search after the cluster lost work (it is deterministic).
    task_threads : int or None
        numba threads per tile task on a cluster: 1 (the default) when every worker runs
        one task per core (``dask worker --nthreads CORES``); ``None`` lets a task use
        every core (``--nthreads 1`` workers).  In this process tiles always use every core.

    Returns
    -------
    (i, j) or None
        The pair with the smallest ``i``, then the smallest ``j``, with ``<U_i, V_j> = 0``.

    Notes
    -----
    Work ``n_U n_V ceil(m/64)`` word operations in ``ceil(n_U/block) ceil(n_V/block)`` tasks
    of ``block^2 ceil(m/64)`` each; a task ships two indices in and one pair out (plus, once
    per worker, the packed instance, ``8 (n_U + n_V) ceil(m/64)`` bytes, or the clauses of a
    :class:`SatOV`).  After a witness ``(i, j)`` is found, tiles with ``i0 > i`` are cancelled:
    the wasted work is at most the window of tasks in flight.

    Examples
    --------
    >>> ov = OV([[1, 0], [0, 1], [1, 1]], [[1, 1], [1, 0], [0, 1]])
    >>> solve_ov_distributed(ov, block=2)    # tile (0..1, 0..1) finds (1, 1); tile (0..1, 2) finds (0, 2)
    (0, 2)
    """
    source = _as_source(instance)
    if block is not None:
        block_ranges(1, block)  # validates it
    if source.n_U == 0 or source.n_V == 0:
        return None
    if scheduler is None:
        return _search_here(source, tiles(source.n_U, source.n_V, block or MAX_BLOCK))
    return run_with_retries(
        lambda: _search_on_cluster(source, block, scheduler, task_threads), "OV search", retries
    )


def _search_here(source: VectorSource, work: Iterable[tuple[int, int, int, int]]) -> Pair | None:
    best: Pair | None = None
    for tile in work:
        if best is not None and tile[0] > best[0]:
            break  # row-major order: every later tile starts below the witness's row
        best = _better(_tile(source, *tile), best)
    return best


def default_block(n_U: int, n_V: int, threads: int) -> int:
    """The largest power of two in ``[MIN_BLOCK, MAX_BLOCK]`` with ``>= 4 threads`` tiles.

    Examples
    --------
    >>> default_block(2**16, 2**16, 2), default_block(2**20, 2**20, 64), default_block(100, 100, 2)
    (16384, 32768, 2048)
    """
    block = MAX_BLOCK
    while block > MIN_BLOCK and -(-n_U // block) * -(-n_V // block) < WINDOW_PER_THREAD * threads:
        block //= 2
    return block


def _search_on_cluster(
    source: VectorSource, block: int | None, scheduler: Any, threads: int | None
) -> Pair | None:
    distributed = require_distributed()
    with scheduler_client(scheduler) as client, cluster_failures("OV search"):
        shared = scatter_shared(client, source, "OV search")
        workers = max(1, sum(client.nthreads().values()))
        window = WINDOW_PER_THREAD * workers
        pending = tiles(source.n_U, source.n_V, block or default_block(source.n_U, source.n_V, workers))
        running: dict[Any, tuple[int, int, int, int]] = {}
        best: Pair | None = None

        def submit_next(queue: Any) -> None:
            for tile in pending:
                if best is not None and tile[0] > best[0]:
                    return
                future = client.submit(_tile, shared, *tile, threads, pure=False)
                running[future] = tile
                queue.add(future)
                return

        queue = distributed.as_completed()
        for _ in range(window):
            submit_next(queue)
        for future in queue:
            if future not in running:
                continue  # cancelled by us below
            del running[future]
            best = _better(future.result(), best)
            if best is not None:
                doomed = [f for f, tile in running.items() if tile[0] > best[0]]
                for f in doomed:
                    del running[f]
                client.cancel(doomed)
            submit_next(queue)
        return best


def solve_cnf_distributed(
    formula: Any, scheduler: Any = None, *, n_vars: int | None = None, **options: Any
) -> list[int] | None:
    """Decide a CNF by split and list plus the tiled OV search; a model or ``None``.

    The model is the satisfying assignment of the lexicographically first orthogonal pair
    (DIMACS literals ``+-1 .. +-N``); ``N`` is ``n_vars`` or the formula's ``nv``; the
    options are those of :func:`solve_ov_distributed`.

    Examples
    --------
    >>> from pysat.formula import CNF
    >>> solve_cnf_distributed(CNF(from_clauses=[[1, 2], [-1, 2], [-2, 3]]))
    [-1, 2, 3]
    >>> solve_cnf_distributed(CNF(from_clauses=[[1], [-1]])) is None
    True
    """
    sat = SatOV.from_cnf(formula, n_vars)
    pair = solve_ov_distributed(sat, scheduler, **options)
    return None if pair is None else sat.model(pair)


__all__ = [
    "MAX_BLOCK",
    "default_block",
    "PackedOV",
    "SatOV",
    "VectorSource",
    "solve_cnf_distributed",
    "solve_ov_distributed",
    "tiles",
    "clause_masks",
    "williams_vectors",
]

