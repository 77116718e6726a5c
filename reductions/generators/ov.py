"""Orthogonal Vectors generators: random, density tuned to mu expected pairs, planted, pair-free.

All generators are deterministic functions of their arguments: ``seed`` (a non-negative
int) seeds a local ``np.random.default_rng(seed)``, never global state; ``seed=None`` draws
a fresh seed from OS entropy and records it, so every instance can be rebuilt.  Each records what it did
in ``meta`` (generator name, sizes, density, seed; planted pairs for :func:`planted_ov`), so
a file written by :func:`~reductions.problems.ov.write_ov` says how to rebuild it.

Density and the number of orthogonal pairs
------------------------------------------
With entries i.i.d. Bernoulli(p), a pair ``(u, v)`` is orthogonal iff no coordinate is 1 on
both sides, which has probability ``q = (1 - p^2)^m`` per pair, so the number ``X`` of
orthogonal pairs has

    E[X] = n_U n_V (1 - p^2)^m,

and ``E[X] = mu`` for ``p = sqrt(1 - (mu / (n_U n_V))^(1/m))`` (:func:`density_for_mu`).
Pairs sharing a vector are positively correlated; with ``r = (1 - p + p (1 - p)^2)^m`` (the
probability that two vectors of one side are both orthogonal to a given vector of the other)

    Var[X] = n_U n_V q (1 - q) + n_U n_V (n_U + n_V - 2) (r - q^2)      (:func:`pair_count_variance`).

``mu`` of order 1 is the regime in which the instance is hard-looking: the answer is yes
with probability about ``1 - e^{-mu}`` and nothing in the density gives it away.

Memory
------
Each generator first checks that its peak (:func:`generation_bytes`) fits in the available
memory and otherwise raises :class:`~attention.errors.ResourceError` with the estimate and the
largest number of vectors that fits, before anything is drawn.  Entries are drawn
:data:`DRAW_BYTES` of uniforms at a time (the same stream as one draw of the whole matrix), so
the peak is the vectors (``(n_U + n_V) m`` bytes), the instance's validated copies and one
side's 0/1 check; planting adds the brute force's packed words and the pairs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from reductions.errors import InvalidInstance, VerificationFailed
from reductions.problems.ov import OV
from solvers.ov import orthogonal_pairs_array

#: Expected number of accidental orthogonal pairs at the default density of planted_ov / no_pair_ov.
ACCIDENTAL_MU = 0.5

#: Fresh draws planted_ov tries before it reports that k pairs cannot be planted.
PLANT_ATTEMPTS = 20

#: Bytes of float64 uniforms drawn at a time (the rows of one block).
DRAW_BYTES = 8 * 2**20
#: Bytes per planted pair: its index arrays, its entries in the partner lists and the set of
#: wanted pairs, its row in ``meta["planted_pairs"]`` (a list of two ints) and the verification.
PAIR_BYTES = 512


# --------------------------------------------------------------------------- arguments
def _count(value: Any, name: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidInstance(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def _seed(seed: Any) -> int:
    """``seed``, or a fresh one from OS entropy when None (recorded, so the instance can be rebuilt)."""
    if seed is None:
        return int(np.random.SeedSequence().entropy % (1 << 63))
    return _count(seed, "seed")


def _probability(p: Any, name: str = "p") -> float:
    try:
        value = float(p)
    except (TypeError, ValueError):
        raise InvalidInstance(f"{name}: expected a probability in [0, 1], got {p!r}") from None
    if not 0.0 <= value <= 1.0:
        raise InvalidInstance(f"{name}: expected a probability in [0, 1], got {p!r}")
    return value


def _sizes(n_U: Any, n_V: Any, m: Any) -> tuple[int, int, int]:
    return _count(n_U, "n_U"), _count(n_V, "n_V"), _count(m, "m", minimum=1)


def _bernoulli(rng: np.random.Generator, rows: int, m: int, p: float) -> np.ndarray:
    """``rows x m`` Bernoulli(p) entries, drawn :data:`DRAW_BYTES` of uniforms at a time.

    ``Generator.random`` fills an array from one stream in C order, so the blocks give the
    bits one ``rng.random((rows, m)) < p`` would.
    """
    out = np.empty((rows, m), dtype=np.uint8)
    step = _draw_rows(m)
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        out[start:stop] = rng.random((stop - start, m)) < p
    return out


def _draw_rows(m: int) -> int:
    return max(1, DRAW_BYTES // (8 * m))


# --------------------------------------------------------------------------- memory
def generation_bytes(n_U: int, n_V: int, m: int, k: int | None = None) -> int:
    """Peak bytes of :func:`random_ov` (``k=None``) or :func:`planted_ov` with ``k`` pairs.

    ``random_ov``: the drawn vectors and the instance's copies, ``2 (n_U + n_V) m``, one side's
    0/1 check ``max(n_U, n_V) m``, and a block of draws (10 bytes per entry: the uniforms, the
    comparison, the cast).  ``planted_ov`` adds the brute force's words for the instance built
    twice (the count and the verification: ``3 * 8 W`` per vector with ``W = ceil(m / 64)``, and
    16 bytes per vector of counts and offsets) and :data:`PAIR_BYTES` per pair.

    Examples
    --------
    >>> generation_bytes(1000, 1000, 64) >= 2 * 2000 * 64 + 1000 * 64
    True
    """
    n_U, n_V, m = int(n_U), int(n_V), max(int(m), 1)
    vectors = (n_U + n_V) * m
    draw = 10 * min(_draw_rows(m), max(n_U, n_V)) * m
    peak = 2 * vectors + max(n_U, n_V) * m + draw
    if k is not None:
        peak += (n_U + n_V) * (3 * 8 * math.ceil(m / 64) + 16) + PAIR_BYTES * int(k)
    return peak


def _require_memory(generator: str, n_U: int, n_V: int, m: int, k: int | None = None) -> None:
    """Refuse (``ResourceError``) sizes whose :func:`generation_bytes` do not fit, before drawing."""
    from reductions.guards import require_generated

    total = n_U + n_V
    if total == 0:
        return
    planted = "" if k is None else f", k = {k} pairs"
    require_generated(
        f"{generator} with n_U = {n_U}, n_V = {n_V}, m = {m}{planted}",
        lambda t: generation_bytes(t * n_U // total, t - t * n_U // total, m, k),
        total,
        "n_U + n_V",
        f" at m = {m} (sides in the same proportion); use fewer or shorter vectors"
        + ("" if k is None else " or fewer planted pairs"),
    )


# --------------------------------------------------------------------------- density formulas
def expected_pairs(n_U: int, n_V: int, m: int, p: float) -> float:
    """``E[X] = n_U n_V (1 - p^2)^m``, the expected number of orthogonal pairs at density ``p``.

    Examples
    --------
    >>> expected_pairs(10, 10, 2, 0.5)
    56.25
    """
    return n_U * n_V * (1.0 - p * p) ** m


def pair_count_variance(n_U: int, n_V: int, m: int, p: float) -> float:
    """``Var[X]`` of the number of orthogonal pairs at density ``p`` (module docstring).

    Examples
    --------
    >>> pair_count_variance(1, 1, 3, 0.5) == (0.75 ** 3) * (1 - 0.75 ** 3)
    True
    """
    q = (1.0 - p * p) ** m
    r = (1.0 - p + p * (1.0 - p) ** 2) ** m
    return n_U * n_V * (q * (1.0 - q) + (n_U + n_V - 2) * (r - q * q))


def density_for_mu(n_U: int, n_V: int, m: int, mu: float) -> float:
    """The density ``p`` with ``n_U n_V (1 - p^2)^m = mu``: ``p = sqrt(1 - (mu / (n_U n_V))^(1/m))``.

    ``0 <= mu <= n_U n_V`` (``mu = 0`` gives ``p = 1``, ``mu = n_U n_V`` gives ``p = 0``).

    Examples
    --------
    >>> p = density_for_mu(1000, 1000, 40, 1.0)
    >>> round(expected_pairs(1000, 1000, 40, p), 9)
    1.0
    """
    n_U, n_V, m = _sizes(n_U, n_V, m)
    pairs = n_U * n_V
    if pairs == 0:
        raise InvalidInstance("n_U, n_V: a side is empty, so no density gives mu expected pairs")
    try:
        mu = float(mu)
    except (TypeError, ValueError):
        raise InvalidInstance(f"mu: expected a number in [0, n_U n_V], got {mu!r}") from None
    if not 0.0 <= mu <= pairs:
        raise InvalidInstance(f"mu: expected a number in [0, n_U n_V] = [0, {pairs}], got {mu!r}")
    # log form: (mu / pairs)^(1/m) without underflow for huge n_U n_V
    ratio = math.exp(math.log(mu / pairs) / m) if mu > 0 else 0.0
    return math.sqrt(max(0.0, 1.0 - ratio))


# --------------------------------------------------------------------------- generators
def random_ov(n_U: int, n_V: int, m: int, p: float = 0.5, seed: int | None = None) -> OV:
    """OV instance with i.i.d. Bernoulli(``p``) entries; ``E[#pairs] = n_U n_V (1 - p^2)^m``.

    Examples
    --------
    >>> ov = random_ov(3, 4, 5, p=0.3, seed=1)
    >>> (ov.n_U, ov.n_V, ov.m, ov.meta["generator"])
    (3, 4, 5, 'random_ov')
    >>> bool((random_ov(3, 4, 5, p=0.3, seed=1).U == ov.U).all())
    True
    """
    n_U, n_V, m = _sizes(n_U, n_V, m)
    p = _probability(p)
    _require_memory("random_ov", n_U, n_V, m)
    seed = _seed(seed)
    rng = np.random.default_rng(seed)
    U, V = _bernoulli(rng, n_U, m, p), _bernoulli(rng, n_V, m, p)
    meta = {"generator": "random_ov", "n_U": n_U, "n_V": n_V, "m": m, "p": p, "seed": seed}
    return OV(U, V, meta=meta)


def random_ov_mu(n_U: int, n_V: int, m: int, mu: float, seed: int | None = None) -> OV:
    """Random OV instance whose expected number of orthogonal pairs is ``mu``.

    The density is :func:`density_for_mu` (module docstring); ``meta`` records ``mu`` and
    ``p``.  For ``mu`` of order 1 a yes-answer has probability about ``1 - e^{-mu}``.

    Examples
    --------
    >>> ov = random_ov_mu(64, 64, 16, mu=2.0, seed=3)
    >>> round(expected_pairs(64, 64, 16, ov.meta["p"]), 6)
    2.0
    """
    p = density_for_mu(n_U, n_V, m, mu)
    ov = random_ov(n_U, n_V, m, p=p, seed=seed)
    return OV(ov.U, ov.V, meta={**ov.meta, "generator": "random_ov_mu", "mu": float(mu)})


def planted_ov(
    n_U: int, n_V: int, m: int, k: int, seed: int | None = None, p: float | None = None
) -> OV:
    """OV instance with exactly ``k`` orthogonal pairs, chosen at random and recorded in ``meta``.

    Parameters
    ----------
    n_U, n_V, m : int
        Sizes; ``0 <= k <= n_U n_V``.
    k : int
        Number of orthogonal pairs; ``meta["planted_pairs"]`` lists them in row-major order.
    p : float, optional
        Density of the random background; default :func:`density_for_mu` with
        ``mu = ACCIDENTAL_MU`` expected accidental pairs.

    Notes
    -----
    Construction: draw Bernoulli(p) vectors; pick ``k`` distinct index pairs uniformly; for
    each, clear every common 1 on a random side (clearing keeps earlier planted pairs
    orthogonal).  Then list all orthogonal pairs (:func:`solvers.ov.orthogonal_pairs_array`)
    and kill each accidental one ``(i, j)`` by setting one coordinate to 1 on both vectors,
    chosen at random among the coordinates where this breaks no planted pair of ``i`` or
    ``j``.  Adding ones creates no orthogonal pair, so the repair is monotone; the result is
    verified by a full count.  If some accidental pair cannot be killed (tiny ``m``: e.g.
    ``m = 1`` cannot have exactly one pair among ``3 x 3``), the draw is repeated, at most
    ``PLANT_ATTEMPTS`` times, then :class:`InvalidInstance` is raised.  Cost
    ``O(n_U n_V m / 64)`` per attempt (two brute-force passes).

    Planted vectors are sparser than the background (their common ones were cleared): a
    known weakness of planted OV, harmless for ground-truth testing, visible to a
    weight-based heuristic for large ``p``.

    Examples
    --------
    >>> ov = planted_ov(50, 60, 12, k=3, seed=5)
    >>> from solvers.ov import all_orthogonal_pairs
    >>> all_orthogonal_pairs(ov) == [tuple(pair) for pair in ov.meta["planted_pairs"]]
    True
    """
    n_U, n_V, m = _sizes(n_U, n_V, m)
    k = _count(k, "k")
    if k > n_U * n_V:
        raise InvalidInstance(f"k: {k} pairs requested but there are only n_U n_V = {n_U * n_V} pairs")
    _require_memory("planted_ov", n_U, n_V, m, k)
    seed = _seed(seed)
    p = _default_density(n_U, n_V, m) if p is None else _probability(p)
    rng = np.random.default_rng(seed)
    for _ in range(PLANT_ATTEMPTS):
        built = _plant_once(rng, n_U, n_V, m, k, p)
        if built is not None:
            U, V, planted = built
            meta = {"generator": "planted_ov", "n_U": n_U, "n_V": n_V, "m": m, "k": k, "p": p,
                    "seed": seed, "planted_pairs": planted.tolist()}
            return _verified(OV(U, V, meta=meta), planted)
    raise InvalidInstance(
        f"could not plant exactly k = {k} orthogonal pairs in {PLANT_ATTEMPTS} draws with m = {m}, "
        f"n_U = {n_U}, n_V = {n_V}: every draw left a pair that cannot be made non-orthogonal "
        "without breaking a planted one; use a larger m or a smaller k"
    )


def no_pair_ov(n_U: int, n_V: int, m: int, seed: int | None = None, p: float | None = None) -> OV:
    """OV instance with no orthogonal pair (verified by a full count); a random-looking no-instance.

    The construction of :func:`planted_ov` with ``k = 0``: Bernoulli(p) vectors (default
    density: ``ACCIDENTAL_MU`` expected pairs), then every accidental pair gets a common 1 at
    a random coordinate.  Always succeeds (``m >= 1``).

    Examples
    --------
    >>> from solvers.ov import count_orthogonal_pairs
    >>> count_orthogonal_pairs(no_pair_ov(100, 80, 6, seed=2))
    0
    """
    ov = planted_ov(n_U, n_V, m, 0, seed=seed, p=p)
    meta = {key: value for key, value in ov.meta.items() if key not in ("k", "planted_pairs")}
    return OV(ov.U, ov.V, meta={**meta, "generator": "no_pair_ov"})


# --------------------------------------------------------------------------- planting
def _default_density(n_U: int, n_V: int, m: int) -> float:
    if n_U * n_V == 0:
        return 0.5
    return density_for_mu(n_U, n_V, m, min(ACCIDENTAL_MU, n_U * n_V))


def _plant_once(
    rng: np.random.Generator, n_U: int, n_V: int, m: int, k: int, p: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """One draw: background, k cleared pairs, accidental pairs killed; None if a kill is impossible."""
    U, V = _bernoulli(rng, n_U, m, p), _bernoulli(rng, n_V, m, p)
    flat = np.sort(rng.choice(n_U * n_V, size=k, replace=False)) if k else np.empty(0, np.int64)
    planted = np.stack([flat // max(n_V, 1), flat % max(n_V, 1)], axis=1).astype(np.int64)
    for i, j in planted:
        common = np.flatnonzero(U[i] & V[j])
        on_u = rng.random(common.size) < 0.5
        U[i, common[on_u]] = 0
        V[j, common[~on_u]] = 0
    partners_of_u: dict[int, list[int]] = {}
    partners_of_v: dict[int, list[int]] = {}
    for i, j in planted.tolist():
        partners_of_u.setdefault(i, []).append(j)
        partners_of_v.setdefault(j, []).append(i)
    wanted = set(map(tuple, planted.tolist()))
    for i, j in orthogonal_pairs_array(OV(U, V), max_pairs=None).tolist():
        if (i, j) in wanted or (U[i] & V[j]).any():
            continue
        blocked_u = np.bitwise_or.reduce(V[partners_of_u.get(i, [])], axis=0, initial=0)
        blocked_v = np.bitwise_or.reduce(U[partners_of_v.get(j, [])], axis=0, initial=0)
        allowed = np.flatnonzero((U[i] | (blocked_u == 0)) & (V[j] | (blocked_v == 0)))
        if allowed.size == 0:
            return None
        coord = rng.choice(allowed)
        U[i, coord] = 1
        V[j, coord] = 1
    return U, V, planted


def _verified(ov: OV, planted: np.ndarray) -> OV:
    found = orthogonal_pairs_array(ov, max_pairs=None)
    if found.shape != planted.shape or not (found == planted).all():
        raise VerificationFailed(
            f"{ov.meta['generator']}: the instance has {len(found)} orthogonal pairs, "
            f"expected exactly the {len(planted)} planted ones"
        )
    return ov
