"""Decoder (c): the gradient is affine in E; probe columns read ``sum_j T_j (1 - T_j)`` in 1-2 calls.

THEORY 0.2 and 4.7.  Embed an H-shaped attention instance (``T_j <= 1/2`` for every row)
with one query-probe column ``P`` (``A1[:, P] = beta rho``, ``A2[:, P] = 0``) and one
key-probe column ``W`` (``A1[:, W] = 0``, ``A2[:, W] = beta z``, ``z`` supported on the real
keys, where ``v = 1``), at ``X = I``.  The scores do not change, and with ``E[:, 0] = e``

    G(e)[P, W] = (beta^2/d') sum_j rho_j (T_j - e_j) (1 - T_j) (f z)_j        (exact).

With ``z = v`` (so ``f z = T``) and ``e = -mu rho``:

- **one call**: ``V1 = d' G(-mu rho)[P, W] / (mu beta^2) = sum_j rho_j g(T_j)``,
  ``g(T) = T (1 - T) (1 + T/mu)``, error ``d' eps / (mu beta^2)``;
- **two calls**: ``V2 = d' (G(-mu rho) - G(0))[P, W] / (mu beta^2) = sum_j rho_j T_j (1 - T_j)``
  exactly, error ``2 d' eps / (mu beta^2)``.

``beta = sqrt(d' s)`` is the size of the main entries of ``A1``, ``A2`` (THEORY 4.7 has
``beta = 1``): the entry bound ``B`` does not change, while the probe entry grows by
``beta^2`` against an oracle error bound that is one number for all entries (and is set by
the main block) -- about ``d' s`` (``~10^3``) times more room at no cost.

``g`` is increasing on ``[0, 1/2]``, so a set ``C`` of rows (``rho = 1_C``) containing a
witness row gives ``V >= g(t_yes)`` and one without gives ``V <= |C| g(t_no)``: the decision
gap.  For Construction H at ``s = ln(8 n (n+1))`` (``t_yes = 1/(n+1)``,
``t_no = 1/(8 n (n+1))``) the margin is ``>= 5/(32 (n+1))`` for ``mu >= 1``; the oracle's
entrywise error must be below ``mu beta^2 margin / d' = mu s margin``, at least
``(5/32) d' s`` for ``mu = d' (n+1)``.

**Witness by halving** (one call per round): a candidate set known to hold a witness row
is halved; the half's value says whether it holds one (``<= ceil(log2 n)`` calls).  Then the
partner: scan the keys (no call), or halve over keys with ``rho = e_i``,
``z = v o 1_K``: ``V = (1 + T_i/mu) (1 - T_i) sum_{k in K} f_ik``, which is
``>= key_yes / 2`` if ``K`` holds a partner of ``i`` and ``<= (1 + 1/(2 mu)) |K| key_no``
if not (``<= ceil(log2 n)`` more calls).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from attention.instance import AttentionInstance
from reductions.decoders.common import Gap, halve, read_gradient, summarise
from reductions.embedding import Layout, RawAttention, embed
from reductions.errors import InvalidInstance

Solver = Callable[[AttentionInstance], Any]


def row_gap(raw: RawAttention, mu: float, count: int, two_call: bool = False) -> Gap:
    """Gap of the probe value over ``count`` rows: ``g(t_yes)`` vs ``count g(t_no)``.

    ``g(T) = T (1 - T) (1 + T/mu)`` (one call) or ``T (1 - T)`` (two calls).

    Examples
    --------
    >>> from reductions.rules.ov_to_attention_h import construction_h, scale_gradient
    >>> raw = construction_h(np.eye(4, dtype=np.uint8), np.eye(4, dtype=np.uint8), scale_gradient(4))
    >>> gap = row_gap(raw, mu=1.0, count=4)
    >>> bool(gap.margin >= 5 / (32 * 5))
    True
    """

    def g(T: float) -> float:
        return T * (1 - T) * (1.0 if two_call else 1 + T / mu)

    label = f"probe value over {count} rows ({'two calls' if two_call else 'one call'})"
    return Gap(g(raw.t_yes), count * g(raw.t_no), label=label)


def key_gap(mu: float, count: int, key_yes: float, key_no: float) -> Gap:
    """Gap of the key-probe value over ``count`` keys: ``key_yes / 2`` vs ``(1 + 1/(2 mu)) count key_no``."""
    return Gap(0.5 * key_yes, (1 + 0.5 / mu) * count * key_no, label=f"key probe over {count} keys")


#: Largest target entry: the loss ``0.5 ||c||^2 ~ n mu^2`` must stay inside float64 (and the
#: stated precision ``mu margin beta^2 / d'`` finite).
MAX_MU = 1e150


def check_mu(mu: Any) -> float:
    """``mu`` as a positive finite float at most :data:`MAX_MU`, or :class:`InvalidInstance`."""
    try:
        value = float(mu)
    except (TypeError, ValueError, OverflowError):
        value = math.nan
    if isinstance(mu, bool) or not (math.isfinite(value) and value > 0):
        raise InvalidInstance(f"mu: the target entry size must be a positive finite number, got {mu!r}")
    if value > MAX_MU:
        raise InvalidInstance(
            f"mu = {value:.3g}: at most {MAX_MU:g} (the loss grows like n mu^2 and would overflow float64)"
        )
    return value


def probe_scale(raw: RawAttention) -> float:
    """``beta = sqrt(d' s) max|patterns|``: the main entries' size, given to the probe columns."""
    return math.sqrt(raw.d + 2) * raw.B_raw


def probe_instance(
    raw: RawAttention, rho: np.ndarray, z: np.ndarray, e: np.ndarray | None, mu: float
) -> tuple[AttentionInstance, Layout]:
    """The instance of one probe call: columns ``P = beta rho``, ``W = beta z``, ``E[:, 0] = e``.

    ``meta`` records ``decoder = "probe"``, ``mu``, ``beta`` and the layout (the probe columns
    are the last two, ``P = d' - 2`` and ``W = d' - 1``).
    """
    beta = probe_scale(raw)
    return embed(raw, e=e, R=beta * rho, Z=beta * z, meta={"decoder": "probe", "mu": mu, "beta": beta})


def default_mu(raw: RawAttention) -> float:
    """``mu = d' (n + 1)`` with ``d' = d + 2``: constant entrywise precision (THEORY 4.7)."""
    return float((raw.d + 2) * (raw.rows + 1))


@dataclass
class ProbeDecoder:
    """Decoder (c) on an H-shaped instance, calling ``solver`` (a gradient oracle).

    Parameters
    ----------
    raw : H-shaped instance: ``T_j <= 1/2`` for every row, real keys where ``v = 1``.
    solver : ``AttentionInstance -> GradientResult``.
    mu : the size of the target entries ``E[:, 0] = -mu rho`` (> 0).
    two_call : isolate ``sum T (1 - T)`` exactly with a second call at ``E = 0``.
    key_yes, key_no : per-key bounds for key halving: ``f_ik >= key_yes`` for a partner
        ``k`` of a witness row ``i``, ``f_ik <= key_no`` for a non-partner.
    """

    raw: RawAttention
    solver: Solver
    mu: float
    two_call: bool = False
    key_yes: float = 0.0
    key_no: float = 0.0
    calls: int = 0
    decisions: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.mu = check_mu(self.mu)

    # ------------------------------------------------------------------ the statistic
    def row_gap(self, count: int, two_call: bool = False) -> Gap:
        """Gap of the probe value over a set of ``count`` rows (:func:`row_gap`)."""
        return row_gap(self.raw, self.mu, count, two_call)

    def key_gap(self, count: int) -> Gap:
        """Gap of the key-probe value over a set of ``count`` keys (:func:`key_gap`)."""
        return key_gap(self.mu, count, self.key_yes, self.key_no)

    def _block(self, rho: np.ndarray, z: np.ndarray, e: np.ndarray | None) -> tuple[float, float, float]:
        """``(G[P, W], error, d' / beta^2)`` from one oracle call."""
        inst, layout = probe_instance(self.raw, rho, z, e, self.mu)
        G, error = read_gradient(self.solver(inst), inst.d)
        self.calls += 1
        P, W = layout.query_probes.start, layout.key_probes.start
        return float(G[P, W]), error, inst.d / probe_scale(self.raw) ** 2

    def value(self, rho: np.ndarray, z: np.ndarray, two_call: bool) -> tuple[float, float]:
        """``d' G(-mu rho)[P, W] / (mu beta^2)`` (minus the ``E = 0`` block if ``two_call``) and its error."""
        block, error, unit = self._block(rho, z, -self.mu * rho)
        if two_call:
            block0, error0, _ = self._block(rho, z, None)
            block, error = block - block0, error + error0
        return unit * block / self.mu, unit * error / self.mu

    def _decide(self, gap: Gap, rho: np.ndarray, z: np.ndarray, two_call: bool, purpose: str) -> bool:
        statistic, error = self.value(rho, z, two_call)
        record = gap.record(statistic, error, None, purpose=purpose)
        self.decisions.append(record)                        # kept when the decision refuses
        record["verdict"] = gap.decide(statistic, error)
        return record["verdict"]

    # ------------------------------------------------------------------ the decoder
    def _rows(self, members: np.ndarray) -> np.ndarray:
        rho = np.zeros(self.raw.n_q)
        rho[members] = 1.0
        return rho

    def detect(self) -> bool:
        """Is there a witness row?  One call (two with ``two_call``)."""
        n = self.raw.rows
        gap = self.row_gap(n, self.two_call)
        return self._decide(gap, self._rows(np.arange(n)), self.raw.v, self.two_call, "detect")

    def witness_row(self) -> int:
        """A witness row by halving (after :meth:`detect` said YES): ``<= ceil(log2 n)`` calls."""

        def holds(half: np.ndarray) -> bool:
            gap = self.row_gap(half.size)
            return self._decide(gap, self._rows(half), self.raw.v, False, "row halving")

        return halve(np.arange(self.raw.rows), holds)

    def witness_key(self, row: int) -> int:
        """A partner key of witness row ``row`` by halving over the real keys: ``<= ceil(log2 n)`` calls."""
        rho = self._rows(np.array([row]))

        def holds(half: np.ndarray) -> bool:
            z = np.zeros(self.raw.n_k)
            z[half] = 1.0
            return self._decide(self.key_gap(half.size), rho, z, False, "key halving")

        return halve(np.flatnonzero(self.raw.v), holds)

    def stats(self) -> dict[str, Any]:
        """``Reduced.stats``: calls, the tightest decision's numbers, the full log."""
        return summarise(self.decisions, self.calls)
