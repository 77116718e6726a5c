"""Hypothesis strategies for small instances of every registry node, shipped with the package.

Use them in your own tests::

    from hypothesis import given
    from reductions.testing import cnfs, ov_instances, instances

    @given(instances("bhcp"))
    def test_my_solver(inst): ...

``cnfs`` draws satisfiable and unsatisfiable formulas in balance, ``ov_instances`` OV
instances with and without orthogonal pairs in balance, and ``instances(problem)`` an
instance of any registry node (OV instances pushed along the preferred path for the nodes
below OV, so promise problems such as Gap-ANN get instances that keep their promise).
Everything shrinks: formulas clause by clause, OV instances in size and seed.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
from hypothesis import strategies as st
from pysat.formula import CNF

from reductions.problems.ov import OV
from reductions.registry import find_path, problem_name


@st.composite
def cnfs(
    draw: st.DrawFn,
    max_vars: int = 12,
    max_clauses: int = 20,
    max_width: int = 3,
    min_vars: int = 0,
) -> CNF:
    """A CNF with at most ``max_vars`` variables, satisfiable or unsatisfiable in balance.

    Satisfiable ones have a planted model (each clause gets a literal it makes true);
    unsatisfiable ones contain all ``2^w`` sign patterns on ``w <= 3`` variables (or an
    empty clause).  The header count ``nv`` may exceed the variables used, clauses may
    repeat literals or be tautologies.
    """
    N = draw(st.integers(min_vars, max_vars))
    want_sat = draw(st.booleans())
    clauses: list[list[int]] = []
    if N:
        literal = st.integers(1, N).flatmap(lambda v: st.sampled_from([v, -v]))
        clause = st.lists(literal, min_size=1, max_size=max_width)
        clauses = draw(st.lists(clause, max_size=max_clauses))
    if want_sat:
        model = draw(st.lists(st.booleans(), min_size=N, max_size=N))
        clauses = [_satisfied_by(c, model, draw) for c in clauses]
    else:
        clauses = clauses + _unsat_core(draw, N)
        order = draw(st.permutations(range(len(clauses))))
        clauses = [clauses[i] for i in order]
    return _with_header(clauses, N)


def _with_header(clauses: list[list[int]], N: int) -> CNF:
    cnf = CNF(from_clauses=clauses)
    cnf.nv = N
    return cnf


def _satisfied_by(clause: list[int], model: list[bool], draw: st.DrawFn) -> list[int]:
    if any((lit > 0) == model[abs(lit) - 1] for lit in clause):
        return clause
    k = draw(st.integers(0, len(clause) - 1))
    return [(-lit if i == k else lit) for i, lit in enumerate(clause)]


def _unsat_core(draw: st.DrawFn, N: int) -> list[list[int]]:
    if N == 0:
        return [[]]
    width = draw(st.integers(0, min(3, N)))
    if width == 0:
        return [[]]
    variables = draw(st.lists(st.integers(1, N), min_size=width, max_size=width, unique=True))
    return [
        [v if (pattern >> t) & 1 else -v for t, v in enumerate(variables)] for pattern in range(1 << width)
    ]


@st.composite
def ov_instances(
    draw: st.DrawFn, max_n: int = 64, max_m: int = 16, min_n: int = 1, min_m: int = 1
) -> OV:
    """An OV instance (``n_U, n_V <= max_n``, ``m <= max_m``), with and without orthogonal pairs in balance.

    YES instances get a planted pair; NO instances are repaired by setting one shared
    coordinate of every orthogonal pair to 1 (adding ones never creates a pair).
    """
    n_U = draw(st.integers(min_n, max_n))
    n_V = draw(st.integers(min_n, max_n))
    m = draw(st.integers(min_m, max_m))
    density = draw(st.sampled_from([0.2, 0.35, 0.5, 0.7]))
    want_yes = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    U = (rng.random((n_U, m)) < density).astype(np.uint8)
    V = (rng.random((n_V, m)) < density).astype(np.uint8)
    if want_yes:
        i, j = int(rng.integers(n_U)), int(rng.integers(n_V))
        V[j] &= 1 - U[i]
    else:
        for i, j in np.argwhere(U.astype(np.int64) @ V.T.astype(np.int64) == 0):
            col = int(rng.integers(m))
            U[i, col] = V[j, col] = 1
    return OV(U, V, meta={"generator": "reductions.testing.ov_instances"})


def instances(problem: str, **sizes: Any) -> st.SearchStrategy:
    """Small instances of registry node ``problem`` (``sizes`` go to the base strategy).

    ``ksat`` -> :func:`cnfs`; ``ov`` -> :func:`ov_instances`; any other node -> OV
    instances reduced along the preferred path from ``ov`` (its ``target``).
    """
    node = problem_name(problem)
    if node == "ksat":
        return cnfs(**sizes)
    base = ov_instances(**sizes)
    if node == "ov":
        return base
    from reductions.registry import compose

    chain = compose(find_path("ov", node))
    return base.map(lambda ov: chain(ov).target)


@contextmanager
def registry_snapshot() -> Iterator[None]:
    """Register throw-away rules inside the block; the registry is restored afterwards.

    >>> from reductions.registry import GRAPH, all_rules
    >>> before = len(all_rules())
    >>> with registry_snapshot():
    ...     GRAPH.remove_edge("ksat", "ov", key="ksat_to_ov")
    >>> len(all_rules()) == before
    True
    """
    from reductions.registry import GRAPH, all_rules

    all_rules()
    saved = list(GRAPH.edges(keys=True, data=True))
    try:
        yield
    finally:
        GRAPH.clear()
        for u, v, k, data in saved:
            GRAPH.add_edge(u, v, key=k, **data)
