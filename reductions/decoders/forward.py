"""Decoder for the attention-forward (AAttC) oracle: the largest row output, then a witness scan.

The constructions of THEORY 2.4-2.6 promise, for every real query row ``i``,
``T_i >= t_yes`` if the row has a witness and ``T_i <= t_no`` if it has none, where
``T = softmax_rows(S) v`` is column 0 of the attention output.  So ``max_i T_i`` decides
the instance with margin ``(t_yes - t_no) / 2`` in the oracle's entrywise error, and every
row whose estimate is above the threshold truly has ``T_i > t_no``; scanning those rows (by
decreasing estimate) for a partner finds a witness in ``O(n D)`` per row.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from attention.instance import AttentionInstance
from reductions.decoders.common import Gap, read_forward, summarise
from reductions.embedding import RawAttention
from reductions.errors import PrecisionError

Solver = Callable[[AttentionInstance], Any]


def row_gap(raw: RawAttention) -> Gap:
    """The promise gap of ``max_i T_i`` over the real query rows."""
    return Gap(raw.t_yes, raw.t_no, label="max_i T_i")


def decide_forward(
    solver: Solver,
    instance: AttentionInstance,
    raw: RawAttention,
    partner: Callable[[int], int | None],
    stats: dict[str, Any],
) -> tuple[int, int] | None:
    """One forward call; ``None`` (NO) or ``(row, partner(row))`` for a row above the threshold.

    ``partner(i)`` returns a witness partner of padded row ``i`` or ``None``; it is tried on
    the rows above the threshold in decreasing order of ``T_i``.  Fills ``stats``.

    Raises
    ------
    PrecisionError
        the oracle's stated error is not below the margin, its answer is NaN, or no row
        above the threshold has a partner (the oracle's answer contradicts its error bound).
    """
    att, error = read_forward(solver(instance), instance.n, instance.d)
    T = att[: raw.rows, 0]
    gap = row_gap(raw)
    statistic = float(np.max(T))
    record = gap.record(statistic, error, None)
    stats.update(summarise([record], calls=1))          # kept when the decision refuses
    verdict = record["verdict"] = gap.decide(statistic, error)
    if not verdict:
        return None
    above = np.flatnonzero(T > gap.threshold)
    for i in above[np.argsort(-T[above], kind="stable")]:
        j = partner(int(i))
        if j is not None:
            stats["witness_row_rank"] = int(np.sum(T > T[i]))
            return int(i), int(j)
    raise PrecisionError(
        f"no row above the threshold {gap.threshold:.3g} has a partner: the oracle's output "
        f"contradicts its stated error bound {error:.3g}"
    )
