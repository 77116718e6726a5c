"""BHCP decision "is min dist <= t?" -> Gap-ANN(t, eps) with the widest gap the instance has.

Distances are integers, so "``dist <= t`` or ``dist >= t + 1``" always holds: the BHCP decision
is Gap-ANN with ``eps = 1/t``.  When every distance has the parity of ``t`` (THEORY 1.5's
exact-gap instances: ``dist = m + 2 <a, b>``), ``dist >= t + 1`` forces ``dist >= t + 2`` and
the gap doubles: Gap-ANN with ``t = m``, ``eps = 2/m`` (THEORY 1.6, 2.6).  This is the form
AS23 start from; their ``sqrt(log n)`` entry bound needs a *constant* eps (Rubinstein 2018),
which no concrete-size reduction provides (THEORY 1.6).
"""

from __future__ import annotations

from fractions import Fraction

from reductions.errors import InvalidInstance
from reductions.problems.bhcp import BHCP
from reductions.registry import Reduced, reduction
from reductions.rules.ov_to_maxip import same_pair
from reductions.rules.ov_to_bhcp import parity_gap, threshold_instance


@reduction(
    source="bhcp",
    target="gapann",
    reference="THEORY 1.4, 1.6 and 2.6 (Gap-ANN as AS23 use it; Rubinstein 2018 for a constant gap)",
    formulas={"n_U": "n_U", "n_V": "n_V", "d": "d", "t": "t", "eps": "g/t"},
    default=True,
)
def reduce(inst: BHCP) -> Reduced:
    """BHCP "min dist <= t?" -> Gap-ANN(t, g/t), ``g`` the parity gap (2 for OV's exact-gap instances).

    Returns
    -------
    Reduced
        ``target`` the same vectors as a Gap-ANN instance (``meta["problem"] = "gapann"``)
        with ``eps = g/t``; ``lift`` is the identity on answers (a pair at distance
        ``<= t``, or ``None``).

    Notes
    -----
    THEORY 1.4 and 2.6.  YES (some ``dist <= t``) is the same question; NO (all
    ``dist >= t + 1``) implies all ``dist >= t + g = (1 + g/t) t`` because distances are
    integers of the parity of ``t`` when ``g = 2`` (:func:`parity_gap`).  Sizes unchanged;
    ``eps = g/t`` (``2/m`` after :mod:`~reductions.rules.ov_to_bhcp`); time
    ``O((n_U + n_V) d)``.  Needs ``t >= 1`` (at ``t = 0`` the gap ``(1 + eps) t`` is 0).

    Examples
    --------
    >>> red = reduce(BHCP([[1, 0, 1]], [[1, 1, 1], [1, 0, 0]], t=1, eps=1, meta={"problem": "bhcp"}))
    >>> red.target.t, red.target.eps, red.target.meta["problem"]
    (1, Fraction(2, 1), 'gapann')
    """
    if inst.t is None or inst.t < 1:
        raise InvalidInstance(
            f"t = {inst.t}: Gap-ANN needs a distance threshold t >= 1 (give the BHCP instance its t)"
        )
    g = parity_gap(inst)
    meta = {**inst.meta, "reduction": "bhcp_to_gapann", "parity_gap": g}
    target = threshold_instance(inst.U, inst.V, inst.t, Fraction(g, inst.t), "gapann", meta)
    return Reduced.karp(
        inst,
        target,
        same_pair,
        params={"n_U": target.n_U, "n_V": target.n_V, "d": target.m, "t": target.t, "eps": float(target.eps)},
    )
