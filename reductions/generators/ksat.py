"""Random k-CNF formulas: uniform (``random_ksat``) and with a planted solution (``planted_ksat``).

Both draw clauses independently (with replacement, the standard model ``F_k(n, m)``): each
clause has ``k`` distinct variables chosen uniformly and independent uniform signs, listed in
increasing variable order.  ``cnf.nv`` is ``n_vars`` even if a variable occurs in no clause.
Seeds give reproducible formulas (``np.random.default_rng(seed)``, no global state);
``seed=None`` draws a fresh seed from OS entropy, and the seed used is recorded in the
formula's first comment (``c random_ksat n_vars=... seed=...``), so every formula can be rebuilt.
Sizes that would not fit in memory (:func:`generation_bytes`) are refused with a
:class:`~attention.errors.ResourceError` naming the estimate and the largest size that fits,
before anything is drawn.

Examples
--------
>>> cnf = random_ksat(20, 85, k=3, seed=7)
>>> cnf.nv, len(cnf.clauses), {len(c) for c in cnf.clauses}
(20, 85, {3})
>>> planted = planted_ksat(20, ratio=4.26, seed=7)
>>> from reductions.problems.cnf import is_satisfying
>>> is_satisfying(planted.cnf, planted.model)
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

import numpy as np
from pysat.formula import CNF

from reductions.errors import InvalidInstance
from reductions.problems.cnf import make_cnf, planted_comment

Hiding = Literal["naive", "q-hidden"]


class PlantedCNF(NamedTuple):
    """A satisfiable formula and the planted model that satisfies it (DIMACS literals, one per variable)."""

    cnf: CNF
    model: list[int]


def random_ksat(
    n_vars: int, n_clauses: int | None = None, k: int = 3, ratio: float | None = None, seed: int | None = None
) -> CNF:
    """Uniform random k-CNF: ``m`` independent clauses of ``k`` distinct variables with random signs.

    Parameters
    ----------
    n_vars : int
        Number of variables ``n >= k`` (``cnf.nv``).
    n_clauses : int, optional
        Number of clauses ``m``; give this or ``ratio``.
    k : int
        Clause width, ``1 <= k <= n_vars``.
    ratio : float, optional
        Clause/variable ratio: ``m = round(ratio * n)``.
    seed : int, optional
        Seed of ``np.random.default_rng``.

    Notes
    -----
    Random 3-CNF is hardest near the satisfiability threshold ``m / n ~ 4.27`` (most formulas
    satisfiable below it, unsatisfiable above it).  Through Williams' reduction (THEORY.md
    1.3) the formula becomes OV with ``2 * 2^(n/2)`` vectors of dimension ``m``.
    """
    m = _clause_count(n_vars, n_clauses, k, ratio)
    _require_memory("random_ksat", n_vars, m, k, planted=False)
    seed = resolve_seed(seed)
    rng = np.random.default_rng(seed)
    clauses = _draw_clauses(rng, n_vars, k, m, lambda batch: np.ones(len(batch), dtype=bool))
    params = _describe("random_ksat", n_vars, m, k, seed)
    return make_cnf(clauses.tolist(), nv=n_vars, comments=[params])


def planted_ksat(
    n_vars: int,
    n_clauses: int | None = None,
    k: int = 3,
    ratio: float | None = None,
    seed: int | None = None,
    hiding: Hiding = "naive",
) -> PlantedCNF:
    """Random k-CNF satisfied by a planted uniform random assignment, which is returned.

    Parameters are those of :func:`random_ksat`, and ``hiding``:

    ``"naive"``
        Clauses are drawn uniformly among those the planted model satisfies.
    ``"q-hidden"``
        A clause with ``t >= 1`` literals true under the planted model is kept with
        probability ``q^(t - 1)``, with ``q`` the root in ``[0, 1)`` of
        ``sum_t C(k, t) q^(t-1) (2t - k) = 0`` (:func:`hiding_q`; ``q = 0.618`` for ``k = 3``).
        Then every literal agrees with the planted model with probability exactly 1/2, so
        counting literal signs says nothing about it (Jia, Moore and Strain 2005).  Needs
        ``k >= 2``.

    Returns
    -------
    PlantedCNF
        ``(cnf, model)``; ``model`` is also recorded in ``cnf.comments`` as
        ``c planted-model ... 0`` (read it back with
        :func:`~reductions.problems.cnf.planted_model`), so a written file keeps it.

    Notes
    -----
    The naive model is easy at high ratios: each literal agrees with the planted model with
    probability ``2^(k-1) / (2^k - 1)`` (4/7 for k = 3), and majority vote finds it.  Prefer
    ``"q-hidden"`` for hardness studies.

    References
    ----------
    H. Jia, C. Moore, D. Strain, "Generating hard satisfiable formulas by hiding solutions
    deceptively", JAIR 24 (2005) 107-118.
    """
    m = _clause_count(n_vars, n_clauses, k, ratio)
    if hiding not in ("naive", "q-hidden"):
        raise InvalidInstance(f"hiding = {hiding!r}: choose 'naive' or 'q-hidden'")
    _require_memory("planted_ksat", n_vars, m, k, planted=True)
    seed = resolve_seed(seed)
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 2, size=n_vars + 1).astype(bool)  # values[v] for variable v (index 0 unused)
    q = hiding_q(k) if hiding == "q-hidden" else 1.0

    def keep(batch: np.ndarray) -> np.ndarray:
        true = np.count_nonzero((batch > 0) == values[np.abs(batch)], axis=1)
        accept = np.where(true > 0, q ** np.maximum(true - 1, 0), 0.0)
        return rng.random(len(batch)) < accept

    clauses = _draw_clauses(rng, n_vars, k, m, keep)
    model = [v if values[v] else -v for v in range(1, n_vars + 1)]
    comments = [_describe("planted_ksat", n_vars, m, k, seed) + f" hiding={hiding}", planted_comment(model)]
    return PlantedCNF(make_cnf(clauses.tolist(), nv=n_vars, comments=comments), model)


#: Bytes per variable of planted_ksat beyond the clauses: the planted values, the model as a
#: list of Python ints and its ``c planted-model`` comment (measured: 113 at 10^6 variables).
PLANTED_BYTES_PER_VARIABLE = 128


def generation_bytes(n_vars: int, n_clauses: int, k: int, planted: bool = False) -> int:
    """Peak bytes of :func:`random_ksat` (or :func:`planted_ksat`): ``m`` clauses of ``k`` literals.

    :func:`reductions.guards.cnf_bytes` of the clauses (the drawn batches, their lists and
    the formula's copies), plus :data:`PLANTED_BYTES_PER_VARIABLE` per variable when planted.

    Examples
    --------
    >>> generation_bytes(100, 1000, 3) == 96 * 3000 + 96 * 1000
    True
    """
    from reductions.guards import cnf_bytes

    return cnf_bytes(n_clauses, n_clauses * k) + (PLANTED_BYTES_PER_VARIABLE * n_vars if planted else 0)


def _require_memory(generator: str, n_vars: int, m: int, k: int, planted: bool) -> None:
    """Refuse (``ResourceError``) sizes that do not fit, naming the clauses (or variables) that would."""
    from reductions.guards import require_generated

    what = f"{generator} with {n_vars} variables and {m} clauses of width {k}"
    if planted and generation_bytes(n_vars, 0, k, True) > generation_bytes(0, m, k, True):
        estimate, size, name = (lambda n: generation_bytes(n, m, k, True)), n_vars, "n_vars"
    else:
        estimate, size, name = (lambda c: generation_bytes(n_vars, c, k, planted)), m, "n_clauses"
    require_generated(what, estimate, size, name, " with the other sizes as given")


def resolve_seed(seed: int | None) -> int:
    """``seed`` checked (an integer >= 0), or a fresh one from OS entropy when None."""
    if seed is None:
        return int(np.random.SeedSequence().entropy % (1 << 63))
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidInstance(f"seed = {seed!r}: expected an integer >= 0")
    return int(seed)


def hiding_q(k: int) -> float:
    """The ``q`` of q-hidden planting: root in ``[0, 1)`` of ``sum_{t=1..k} C(k,t) q^(t-1) (2t - k)``.

    The polynomial is negative at 0 (``k (2 - k)`` for k >= 3) and equals ``k`` at 1 with one
    sign change in its coefficients, so it has a single root in ``(0, 1)``, found by
    bisection to double precision.  For ``k = 2`` the root is 0 (keep only clauses with one
    true literal).

    Examples
    --------
    >>> round(hiding_q(3), 12) == round((5 ** 0.5 - 1) / 2, 12)
    True
    """
    if k < 2:
        raise InvalidInstance(f"q-hidden planting needs clause width k >= 2, got k = {k}")
    from math import comb

    def poly(q: float) -> float:
        return sum(comb(k, t) * q ** (t - 1) * (2 * t - k) for t in range(1, k + 1))

    lo, hi = 0.0, 1.0
    if poly(lo) >= 0:
        return lo
    for _ in range(200):
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if poly(mid) < 0 else (lo, mid)
    return lo


def _clause_count(n_vars: int, n_clauses: int | None, k: int, ratio: float | None) -> int:
    """Validate the parameters; the number of clauses."""
    for name, value in (("n_vars", n_vars), ("k", k)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InvalidInstance(f"{name} = {value!r}: expected an integer >= 1")
    if k > n_vars:
        raise InvalidInstance(f"k = {k} > n_vars = {n_vars}: a clause needs k distinct variables")
    if (n_clauses is None) == (ratio is None):
        raise InvalidInstance("give exactly one of n_clauses (number of clauses) and ratio (clauses per variable)")
    if ratio is not None:
        if not np.isfinite(ratio) or ratio < 0:
            raise InvalidInstance(f"ratio = {ratio!r}: expected a finite number >= 0")
        return int(round(ratio * n_vars))
    if isinstance(n_clauses, bool) or not isinstance(n_clauses, (int, np.integer)) or n_clauses < 0:
        raise InvalidInstance(f"n_clauses = {n_clauses!r}: expected an integer >= 0")
    return int(n_clauses)


def _draw_clauses(
    rng: np.random.Generator, n: int, k: int, m: int, keep: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """``m`` clauses (rows of signed variables, sorted by variable) drawn until ``keep`` accepts ``m``.

    Rows with a repeated variable are redrawn (rejection keeps the k-subset uniform).
    """
    out: list[np.ndarray] = []
    have = 0
    while have < m:
        batch = max(64, 2 * (m - have))
        variables = np.sort(rng.integers(1, n + 1, size=(batch, k)), axis=1)
        signs = np.where(rng.integers(0, 2, size=(batch, k)) == 1, 1, -1)
        clauses = (variables * signs)[np.all(np.diff(variables, axis=1) > 0, axis=1)]
        clauses = clauses[keep(clauses)]
        out.append(clauses[: m - have])
        have += len(out[-1])
    return np.concatenate(out) if out else np.zeros((0, k), dtype=np.int64)


def _describe(generator: str, n: int, m: int, k: int, seed: int) -> str:
    return f"c {generator} n_vars={n} n_clauses={m} k={k} seed={seed}"
