"""OV -> attention gradient (AAttLGC): Construction H + probe columns + decoder (c).  The default route.

Construction H (THEORY 2.4) at ``s = ln(8 n (n+1))`` (``n = max(n_U, n_V)``), embedded at
``X = I`` with ``A1 = sqrt(d') Q``, ``A2 = sqrt(d') K``, ``A3 = [v, 0, ...]``, ``Y = I``
and two probe columns (THEORY 4.7): ``P`` (``A1[:, P] = beta rho``, ``rho = (1_n; 0_n)``,
``A2[:, P] = 0``) and ``W`` (``A1[:, W] = 0``, ``A2[:, W] = beta v``), ``beta = sqrt(d' s)``
(the size of the other entries, so ``B`` is unchanged); target ``E[:, 0] = -mu rho``.  By
THEORY 0.2 the gradient's ``(P, W)`` entry is

    G[P, W] = (beta^2/d') sum_{j < n} (T_j + mu) T_j (1 - T_j)

**Lemma** (THEORY 4.7).  ``T_j <= 1/2`` for every row; a row with an orthogonal partner has
``T_j >= 1/(n+1)``, one without ``T_j <= e^{-s} = 1/(8n(n+1))``.  So the one-call value
``V1 = d' G[P, W] / (mu beta^2) = sum_j T_j (1 - T_j)(1 + T_j/mu)`` is
``>= g(1/(n+1)) >= 1/(2(n+1))`` on YES and ``<= n g(e^{-s}) <= (1 + 1/(2 mu))/(8(n+1))``
on NO (``g(T) = T(1-T)(1+T/mu)``): decide at the midpoint, margin
``(g(1/(n+1)) - n g(e^{-s})) / 2 >= 5/(32(n+1))`` (``mu >= 1``).  Two calls (the second at
``E = 0``) give ``sum_j T_j (1 - T_j)`` exactly (margin ``>= 3/(16(n+1))``).

Sizes and bounds: ``2n`` tokens, ``d' = 2m + 2``, raw entries ``B_raw = sqrt(s)``,
normalised ``B = sqrt((2m + 2) ln(8n(n+1)))``, max score ``m ln(8n(n+1))``, ``E`` entries
``mu`` (default ``d' (n+1)``, an ``O(log n)``-bit integer).  Precision: the oracle's
entrywise error must be below ``mu beta^2 margin / d' = mu s margin`` (``>= (5/32) d' s``
with the default ``mu``: **constant precision from one gradient at one point**, THEORY 4.8
item 1; the probe scale ``beta`` gains the factor ``d' s`` over THEORY's ``beta = 1``).  Oracle calls:
1 (or 2) to decide, ``+ <= ceil(log2 n)`` to find the witness row by halving, then a key scan
(``O(n m)``, no call) or ``+ <= ceil(log2 n)`` calls of key halving.  The registered
``oracle_calls`` ``1 + ceil(log2 n)`` is the default form's worst case (exact for ``n`` a
power of 2).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from reductions.decoders.probe import ProbeDecoder, check_mu, default_mu, probe_instance, probe_scale, row_gap
from reductions.embedding import padded_sides
from reductions.errors import InvalidInstance, PrecisionError
from reductions.problems.ov import OV
from reductions.registry import Reduced, reduction
from reductions.rules.ov_to_attention_h import (
    attention_params,
    construction_h,
    orthogonal_partner,
    ov_decoder,
    scale_gradient,
)

KEY_SEARCHES = ("scan", "halving")


@reduction(
    source="ov",
    target="gradient",
    reference="AS24 Theorem E.5 (corrected, THEORY 4.8 item 1): Construction H + decoder (c), THEORY 4.7",
    formulas={
        "n": "2*Max(n_U, n_V, 1)",
        "n_k": "2*Max(n_U, n_V, 1)",
        "d": "2*m + 2",
        "B": "sqrt((2*m + 2)*log(8*Max(n_U, n_V, 1)*(Max(n_U, n_V, 1) + 1)))",
    },
    oracle_calls="1 + ceiling(log(Max(n_U, n_V, 1), 2))",
    default=True,
)
def reduce(ov: OV, *, mu: float | None = None, two_call: bool = False, key_search: str = "scan") -> Reduced:
    """OV -> AAttLGC: one gradient with a probe column pair decides OV (decoder (c)).

    Parameters
    ----------
    ov : the OV instance (sides of any sizes; the smaller is padded by repeating a vector).
    mu : target entries ``E[:, 0] = -mu rho``; default ``d' (n + 1)`` (constant precision).
    two_call : isolate ``sum_j T_j (1 - T_j)`` exactly with a second call at ``E = 0``.
    key_search : ``"scan"`` (the partner of the witness row by an ``O(n m)`` scan) or
        ``"halving"`` (``<= ceil(log2 n)`` more gradient calls with key probes).

    Returns
    -------
    Reduced
        ``target``: the detection instance (an :class:`~attention.AttentionInstance`);
        ``lift(gradient_oracle)`` returns an orthogonal pair or ``None``; ``stats`` logs every
        decision (statistic, threshold, margin, oracle error) and the calls.

    Notes
    -----
    AS24 Theorem E.5 as corrected in THEORY 4.8 item 1 (see the module docstring for the
    lemma, the gap and the margin).  ``n = 2 max(n_U, n_V)`` tokens, ``d = 2m + 2``,
    ``B = sqrt((2m+2) ln(8n(n+1)))``.  Calls: ``<= 1 + ceil(log2 n)`` on YES (``+1`` with
    ``two_call``, ``+ <= ceil(log2 n)`` with key halving), 1 on NO.  Departure from the
    paper: ``E != 0`` (Definition 1.4 bounds ``E`` only by its bit length) and a single
    point ``lambda = 1`` instead of a Riemann sum over ``lambda``.

    Examples
    --------
    >>> red = reduce(OV([[1, 0], [0, 1]], [[1, 1], [1, 0]]))
    >>> red.target.n, red.target.d, red.params["mu"]
    (4, 6, 18.0)
    """
    if key_search not in KEY_SEARCHES:
        raise InvalidInstance(f"key_search: expected one of {', '.join(KEY_SEARCHES)}, got {key_search!r}")
    U, V, empty = padded_sides(ov.U, ov.V)
    n = U.shape[0]
    raw = construction_h(U, V, scale_gradient(n))
    mu = default_mu(raw) if mu is None else check_mu(mu)
    rho = np.concatenate([np.ones(n), np.zeros(n)])
    instance, _ = probe_instance(raw, rho, raw.v, -mu * rho, mu)
    partner, decode = orthogonal_partner(U, V), ov_decoder(ov)
    key_bounds = {"key_yes": 1.0 / (2 * n), "key_no": math.exp(-raw.s) / n}
    gap = row_gap(raw, mu, n, two_call)
    params = attention_params(instance, raw, mu * probe_scale(raw) ** 2 * gap.margin / instance.d)
    red = Reduced(ov, instance, lift=lambda solver: None, params={**params, "mu": mu})

    def lift(solver: Any) -> tuple[int, int] | None:
        if empty:
            red.stats.update(oracle_calls=0)
            return None
        decoder = ProbeDecoder(raw, solver, mu, two_call, **key_bounds)
        try:
            if not decoder.detect():
                return None
            i = decoder.witness_row()
            j = decoder.witness_key(i) if key_search == "halving" else partner(i)
        finally:
            red.stats.update(decoder.stats())
        if j is None or int(np.dot(U[i].astype(np.int64), V[j].astype(np.int64))) != 0:
            raise PrecisionError(
                f"row {i} was decoded as a witness row but has no orthogonal partner (key {j}): the "
                "oracle's output contradicts its stated error bound"
            )
        return decode(i, j)

    red.lift = lift
    return red
