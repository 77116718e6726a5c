"""The polynomial-method attention forward, loss and gradient in ``n^(1+o(1))`` time.

AS23 Section 3 (forward) and AS24 Section D (gradient, Lemmas D.1-D.5, Theorem D.6) with the
details of THEORY 5.2-5.5.  Given a polynomial ``P`` of degree ``g`` with relative error
``delta`` for ``e^x`` on the score range ``[-R, R]`` (:mod:`attention.polynomials`) and the
features ``U1 = phi(A1 X)``, ``U2 = psi(A2 - 1 k0^T)`` (:mod:`attention.features`,
rank ``r = C(d + g, g)``), so that ``U1 U2^T ~ exp(S - shift)`` entrywise:

1. ``w = U1 (U2^T 1)`` (the row sums ``D~``); ``f~ = diag(w)^-1 U1 U2^T`` is never formed.
2. ``h = A3 Y``, ``fh = diag(w)^-1 U1 (U2^T h)`` (= ``Att~``), ``c~ = fh - E``.
3. ``q~ = c~ h^T`` (rank ``d``); 4. ``p1 = f~ o q~`` (Kronecker rank ``r d``);
5. ``r~_j = <c~_j, fh_j>`` (= ``(f~ o q~) 1``); ``p2 = diag(r~) f~`` (rank ``r``);
6. ``dL/dX ~ (1/d) A1^T (p1 - p2) A2`` contracted as
   ``(1/d) sum_j A1_j^T [ sum_l c~_jl (U1_j M_l) - r~_j (U1_j M_0) ] / w_j`` with
   ``M_l = U2^T (h_l o A2c)``, ``M_0 = U2^T A2c``.

All of ``U2^T [1, h, A2c, h_1 o A2c, ..., h_d o A2c]`` is one ``r x (d+1)^2`` matrix ``Z``
accumulated over blocks of keys; each block of queries then needs ``monomials(A1 X) Z``
(``b x (d+1)^2``).  Memory ``O(block r + r d^2)``: no ``n x n`` matrix, no ``n x r d``
Kronecker factor.  Cost ``2 (n + n_k) r (d+1)^2`` flops plus ``(n + n_k) r`` multiplies for
the features, against ``8 n n_k d`` flops and ``n n_k`` exponentials for the exact oracle.

**Per-row shift.**  The keys are centred, ``A2c = A2 - 1 k0^T`` with ``k0`` the centre of
their bounding box.  This subtracts ``<(A1 X)_j, k0>/d`` from row ``j`` of the scores, which
the softmax ignores, and since ``p 1 = 0`` (also for ``p~``: ``f~`` rows sum to 1 and ``r~``
is their ``f~ o q~`` row sum) ``A1^T p A2 = A1^T p A2c``.  The score range is then
``R = max_j min(||q_j||_2 max_k ||A2c_k||_2, sum_l |q_jl| max_k |A2c_kl|) / d``, at most
``B^2``, and is rounded up to the grid ``2^(i/16)`` so that polynomials are reused.

**What eps means.**  ``eps`` is a target relative to the largest entry of the exact output:
``max_ab |(dL/dX)_ab|`` for ``gradient``, ``max_jl |Att_jl|`` for ``forward``, ``|L|`` for
``loss``.  Two modes:

- ``certify=False`` (default, the rule of THEORY 5.4): the polynomial gets relative error
  ``delta <= eps / 2`` on the score range, so every entry of the attention matrix is within
  ``eta ~ eps`` relative, and the float64 rounding of the entries must stay below ``eps / 4``
  (else the float64 floor applies, below).  The measured gradient error is then about
  ``delta / 2`` relative to ``max |G|`` (THEORY 5.2).  ``error_bound`` is the rigorous bound
  below; it holds always, but on instances whose gradient cancels (random ones: ``|G| = O(1)``
  while the summed terms are ``O(n)``) it exceeds ``eps max |G|`` by up to ``~n``.
  ``info["certified"]`` says whether ``error_bound <= eps (max |G~| - error_bound)``.
- ``certify=True``: ``error_bound <= eps (||out~||_inf - error_bound)`` is proven, hence
  ``||out~ - out||_inf <= eps ||out||_inf``.  A pilot pass with ``delta = 1e-2`` measures the
  output's size and the bound's sensitivity; the next pass uses the degree the bound asks
  for (half of the allowed error for the polynomial, half for the rounding); a further pass
  follows only if the certificate missed.  ``atol`` accepts an absolute bound instead
  (``error_bound <= atol`` suffices), for outputs that are zero.  Because the bound grows
  like ``n`` relative to a cancelling gradient, this costs a few more degrees and, in
  float64, reaches its floor at moderate ``n`` (see below).

With ``degree=...`` the degree is fixed instead: ``eps`` is not used, the bound is reported.

**Error bound** (THEORY 5.4, sharpened per row; ``eta = 2 delta'/(1 - delta')``, ``delta'``
the polynomial's certified ``delta`` plus the float64 terms below, ``W_l = max_k h_kl -
min_k h_kl``, ``alpha_b = max_k |A2c_kb|``): since ``f~ = f (1 + e)`` with ``|e| <= eta``,
``sum_k f_jk e_jk = 0``, the error of ``fh`` is at most ``eta W_l / 2`` and, exactly,

    |G~_ab - G_ab| <= (1/d) alpha_b sum_j |A1_ja| eta (1.5 sum_l |c~_jl| W_l + 0.5 sum_l W_l^2)
                      + float64 terms ,
    |Att~ - Att|_jl <= eta W_l / 2 + float64 terms .

This is THEORY 5.4's ``n alpha1 alpha2 eta ||h|| (3 ||c|| + 2 ||h||)`` with the row sums
kept, computed in ``O(n d^2)`` during the pass.  It is rigorous for every sign pattern of
the errors; on random instances, whose gradient is ``O(1)`` by cancellation while the
summed terms are ``O(n)``, it exceeds the measured error (about ``delta`` relative to
``max |G|``) by a factor of order ``10 n``.

**Float64 floor** (THEORY 5.5).  A feature inner product sums terms up to
``P_abs = sum_t |c_t| R^t ~ e^R`` while the smallest value is ``~e^-R``; each computed sum
over ``m`` terms carries a relative error ``tau = gamma_m e^R P_abs / (1 - delta')``
(``gamma_m = m u / (1 - m u)``, ``m = n + n_k + r + 2d + 8``, worst-case summation), the
feature products ``gamma_{3g+4} e^R P_abs`` (coefficient rounding included), the scores
``A1 X``, ``A2 - k0`` ``exp(2 gamma_{d+2} R_abs) - 1``.  These enter the bound, per row
``tau (6 sum_l v_l^2 + 11 sum_l |c~_jl| v_l + 4 |r~_j|)`` with ``v_l = max_k (|A3| |Y|)_kl``
(which also covers the rounding of ``h = A3 Y``).  In the default mode the entries' rounding
must stay below ``eps / 4``; with ``certify`` the rounding part of the bound must fit half of
the allowed error.  When it does not, the request is below the float64 floor: with
``precision="auto"`` the
same algorithm runs on mpmath numbers (object arrays) when ``(n + n_k) r (d+1)^2 <=``
:data:`MP_WORK_LIMIT`, otherwise :class:`~attention.errors.PrecisionError` is raised.

**Departures from AS24 Section D.**  ``q = c h^T`` (its Lemma D.3 writes ``h c^T``); ``r~``
from the ``O(n d)`` identity instead of ``O(n k1 k2)``; the ``p1``, ``p2`` factors are never
formed, the contraction goes through ``Z`` (same flops as 5.2 step 6, one GEMM per block);
the polynomial is the relative-minimax one on the instance's shifted score range rather
than AA22's on ``[0, B^2]``; the ``1/d`` factor is kept (THEORY 0.1).

**Refusals.**  :class:`~attention.errors.ResourceError` when the degree needed has
``C(d + g, g) > max_rank`` (never a silent quadratic run); ``PrecisionError`` below the
float64 floor (above) or when the output is zero to within the certified error and no
``atol`` is given.

References
----------
J. Alman, Z. Song, Fast attention requires bounded entries, NeurIPS 2023.
J. Alman, Z. Song, The fine-grained complexity of gradient computation for training large
language models, NeurIPS 2024, Section D.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable

import mpmath
import numpy as np

from attention.errors import InvalidInstance, PrecisionError, ResourceError
from attention.features import monomials, query_weights, rank
from attention.instance import AttentionInstance
from attention.polynomials import KINDS, MAX_DEGREE, ExpPolynomial, exp_polynomial, smallest_polynomial
from attention.results import ForwardResult, GradientResult, LossResult

__all__ = ["gradient", "forward", "loss", "score_range", "grid_up", "DEFAULT_MAX_RANK", "MP_WORK_LIMIT", "PILOT_DELTA"]

#: Default cap on the feature rank ``C(d + g, g)``.
DEFAULT_MAX_RANK = 20_000
#: Largest ``(n + n_k) r (d+1)^2`` run on mpmath numbers when float64 cannot certify.
MP_WORK_LIMIT = 3_000_000
#: Relative error of the pilot pass's polynomial.
PILOT_DELTA = 1e-2
#: Elements of one block of features (``block * r``): 8 MiB of float64, so that a block and its
#: parents stay in a 32 MiB L3 cache at every n (flat time per row).
BLOCK_ELEMENTS = 2**20
U64 = 2.0**-53
#: Factor covering the float64 rounding in evaluating the bound itself.
SAFE = 1.0 + 2.0**-30
_MAX_PASSES = 4
_SAFETY = 0.5  # plan for half of the allowed error


# ------------------------------------------------------------------------------ arithmetic
@dataclass(frozen=True)
class _Arith:
    """float64 or mpmath arithmetic: the unit roundoff and how arrays are converted."""

    name: str
    u: float
    prec: int  # binary digits (53 for float64)

    @property
    def is_mp(self) -> bool:
        return self.name != "float64"

    def array(self, a: np.ndarray) -> np.ndarray:
        if not self.is_mp:
            return a
        return np.frompyfunc(mpmath.mpf, 1, 1)(np.asarray(a, dtype=np.float64)).astype(object)

    def coefficients(self, poly: ExpPolynomial):
        return list(poly.coefficients) if self.is_mp else poly.coef64


FLOAT64 = _Arith("float64", U64, 53)


def _mp_arith(prec: int) -> _Arith:
    return _Arith(f"mpmath:{prec}bit", 2.0**-prec, prec)


def _gamma(k: float, u: float) -> float:
    if k * u >= 0.5:
        return math.inf
    return k * u / (1 - k * u)


# ------------------------------------------------------------------------------ the instance
@dataclass(frozen=True, eq=False)
class _Prepared:
    """The polynomial-independent data of an instance (O((n + n_k) d))."""

    inst: AttentionInstance
    Qm: np.ndarray  # A1 X
    A2c: np.ndarray  # centred keys
    h: np.ndarray  # A3 Y
    k0: np.ndarray
    R: float  # score range after the shift (exact bound for the computed Qm, A2c)
    R_grid: float  # R rounded up to 2^(i/16)
    R_abs: float  # the score range of |A1| |X| against |A2c| (for the rounding of the scores)
    W: np.ndarray  # column ranges of h
    hmax: np.ndarray  # column max of |A3| |Y| (>= max |h|, also bounds the rounding of h)
    alpha: np.ndarray  # column max |A2c|


def _thin(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``A @ B`` for a tall ``A`` with few columns (BLAS is slow on such shapes; einsum is not)."""
    return np.einsum("ij,jk->ik", A, B)


def _score_bounds(Qm: np.ndarray, A2c: np.ndarray, d: int) -> float:
    kmax = np.abs(A2c).max(axis=0)
    knorm = math.sqrt(float((A2c**2).sum(axis=1).max()))
    cs = np.sqrt((Qm**2).sum(axis=1)) * knorm
    box = np.einsum("ij,j->i", np.abs(Qm), kmax)
    return float(np.minimum(cs, box).max()) / d


def grid_up(R: float) -> float:
    """The smallest ``2^(i/16) >= R`` (``0`` for ``R = 0``): the score ranges polynomials are built for.

    Examples
    --------
    >>> grid_up(1.0), round(grid_up(1.01), 4)
    (1.0, 1.0443)
    """
    if R == 0:
        return 0.0
    i = math.ceil(16 * math.log2(R))
    value = 2.0 ** (i / 16)
    return value if value >= R else 2.0 ** ((i + 1) / 16)


def _prepare(inst: AttentionInstance) -> _Prepared:
    d = inst.d
    Qm = _thin(inst.A1, inst.X)
    k0 = (inst.A2.max(axis=0) + inst.A2.min(axis=0)) / 2
    A2c = inst.A2 - k0
    h = _thin(inst.A3, inst.Y)
    hab = _thin(np.abs(inst.A3), np.abs(inst.Y)).max(axis=0) * (1 + 4 * U64)
    R = _score_bounds(Qm, A2c, d) * (1 + 8 * U64)
    R_abs = _score_bounds(_thin(np.abs(inst.A1), np.abs(inst.X)), A2c, d) * (1 + 8 * U64)
    return _Prepared(
        inst=inst,
        Qm=Qm,
        A2c=A2c,
        h=h,
        k0=k0,
        R=R,
        R_grid=grid_up(R),
        R_abs=R_abs,
        W=(h.max(axis=0) - h.min(axis=0)) + 2 * _gamma(d + 1, U64) * hab,
        hmax=hab,
        alpha=np.abs(A2c).max(axis=0),
    )


def score_range(instance: AttentionInstance) -> float:
    """The half-width ``R`` of the shifted scores the polynomial must cover (before gridding).

    ``R = max_j min(||q_j||_2 max_k ||k_k - k0||_2, sum_l |q_jl| max_k |k_kl - k0_l|) / d`` with
    ``q = A1 X`` and ``k0`` the centre of the keys' bounding box; ``R <= B^2``.

    Examples
    --------
    >>> inst = AttentionInstance.random(n=64, d=4, B=1.0, seed=0)
    >>> 0 < score_range(inst) <= inst.B ** 2
    True
    """
    if not isinstance(instance, AttentionInstance):
        raise InvalidInstance(f"instance: expected an AttentionInstance, got {type(instance).__name__}")
    return _prepare(instance).R


# ------------------------------------------------------------------------------ one pass
@dataclass
class _Pass:
    """The outputs of one streaming pass at a fixed polynomial and their bound ingredients."""

    poly: ExpPolynomial
    arith: _Arith
    rank: int
    block: int
    loss: float
    gradient: np.ndarray | None
    att: np.ndarray | None
    eta: float = 0.0
    tau: float = 0.0
    delta_total: float = 0.0
    # the bound of each output is eta * K_eta + tau * K_tau (entrywise, then max)
    K: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    extra: dict[str, float] = field(default_factory=dict)

    def bound(self, what: str, eta: float | None = None, tau: float | None = None) -> float:
        """The certified bound of ``what`` (``"gradient"``, ``"forward"``, ``"loss"``)."""
        eta = self.eta if eta is None else eta
        tau = self.tau if tau is None else tau
        k_eta, k_tau = self.K[what]
        return SAFE * (float((eta * k_eta + tau * k_tau).max()) + self.extra.get(what, 0.0))

    def value(self, what: str) -> Any:
        return {"gradient": self.gradient, "forward": self.att, "loss": self.loss}[what]

    def scale(self, what: str) -> float:
        """``||out~||_inf``."""
        return float(np.abs(np.asarray(self.value(what))).max())


def _scores_inputs(prep: _Prepared, arith: _Arith) -> tuple[np.ndarray, np.ndarray]:
    """``(A1 X, A2 - k0)`` in the working arithmetic (mpmath: recomputed from the float64 inputs)."""
    if not arith.is_mp:
        return prep.Qm, prep.A2c
    inst = prep.inst
    return arith.array(inst.A1) @ arith.array(inst.X), arith.array(inst.A2) - arith.array(prep.k0)


def _columns(prep: _Prepared, A2c: np.ndarray, want_gradient: bool, lo: int, hi: int, arith: _Arith) -> np.ndarray:
    """``[1, h, A2c, h_1 o A2c, ..., h_d o A2c]`` (or ``[1, h]``) for keys ``lo:hi``."""
    h = arith.array(prep.h[lo:hi]) if not arith.is_mp else arith.array(prep.inst.A3[lo:hi]) @ arith.array(prep.inst.Y)
    ones = np.ones((hi - lo, 1), dtype=h.dtype) if not arith.is_mp else arith.array(np.ones((hi - lo, 1)))
    parts = [ones, h]
    if want_gradient:
        a = A2c[lo:hi]
        parts += [a, (h[:, :, None] * a[:, None, :]).reshape(hi - lo, -1)]
    return np.concatenate(parts, axis=1)


def _default_block(r: int, n: int) -> int:
    return int(min(max(n, 1), max(64, BLOCK_ELEMENTS // r)))


def _run(prep: _Prepared, poly: ExpPolynomial, want: str, block: int | None, arith: _Arith) -> _Pass:
    """One pass: key side ``Z = U2^T H`` by blocks, then the query blocks (5.2 steps 1-6)."""
    inst = prep.inst
    n, n_k, d = inst.n, inst.n_k, inst.d
    g = poly.degree
    r = rank(d, g)
    want_gradient = want == "gradient"
    block = _default_block(r, max(n, n_k)) if block is None else block
    if arith.is_mp:
        block = max(n, n_k)
    ctx = mpmath.workprec(arith.prec) if arith.is_mp else nullcontext()
    with ctx:
        Qm, A2c = _scores_inputs(prep, arith)
        weights = query_weights(arith.coefficients(poly), d)
        m = (d + 1) ** 2 if want_gradient else d + 1
        Z = np.zeros((r, m), dtype=object if arith.is_mp else np.float64)
        for lo in range(0, n_k, block):
            hi = min(lo + block, n_k)
            Z += monomials(A2c[lo:hi], g).T @ _columns(prep, A2c, want_gradient, lo, hi, arith)
        Zw = weights[:, None] * Z
        acc = _Accumulator(prep, want, arith)
        for lo in range(0, n, block):
            hi = min(lo + block, n)
            V = monomials(Qm[lo:hi], g) @ Zw
            acc.add(lo, hi, V)
    return acc.finish(poly, r, block)


class _Accumulator:
    """Sums over the query blocks: loss, gradient, forward rows and the bound's row sums."""

    def __init__(self, prep: _Prepared, want: str, arith: _Arith) -> None:
        self.prep, self.want, self.arith = prep, want, arith
        d = prep.inst.d
        zero = np.zeros((d, d), dtype=object if arith.is_mp else np.float64)
        self.G = zero
        self.loss_terms: list = []
        self.att = np.empty((prep.inst.n, d)) if want == "forward" else None
        self.abs_c = np.zeros(d)  # sum_j |c_jl|
        self.row_eta = np.zeros(d)  # sum_j |A1_ja| (1.5 sum_l |c_jl| W_l)
        self.row_tau = np.zeros(d)  # sum_j |A1_ja| (11 sum_l |c_jl| hmax_l + 4 |r_j|)
        self.abs_a1 = np.zeros(d)  # sum_j |A1_ja|

    def add(self, lo: int, hi: int, V: np.ndarray) -> None:
        prep, d = self.prep, self.prep.inst.d
        w = V[:, 0]
        if float(w.min()) <= 0:
            raise PrecisionError("fast: a feature row sum is not positive; the polynomial does not cover the scores")
        fh = V[:, 1 : 1 + d] / w[:, None]
        E = self.arith.array(prep.inst.E[lo:hi])
        c = fh - E
        self.loss_terms.append((c * c).sum())
        c64 = np.asarray(c, dtype=np.float64)
        self.abs_c += np.abs(c64).sum(axis=0)
        if self.att is not None:
            self.att[lo:hi] = np.asarray(fh, dtype=np.float64)
        if self.want != "gradient":
            return
        Fa = V[:, 1 + d : 1 + 2 * d] / w[:, None]
        Fha = (V[:, 1 + 2 * d :] / w[:, None]).reshape(hi - lo, d, d)
        rr = (c * fh).sum(axis=1)
        T = np.einsum("jl,jlc->jc", c, Fha) - rr[:, None] * Fa
        A1 = self.arith.array(prep.inst.A1[lo:hi])
        self.G = self.G + A1.T @ T
        abs_a1 = np.abs(prep.inst.A1[lo:hi])
        abs_c = np.abs(c64)
        self.row_eta += abs_a1.T @ (1.5 * abs_c @ prep.W)
        self.row_tau += abs_a1.T @ (11 * abs_c @ prep.hmax + 4 * np.abs(np.asarray(rr, dtype=np.float64)))
        self.abs_a1 += abs_a1.sum(axis=0)

    def finish(self, poly: ExpPolynomial, r: int, block: int) -> _Pass:
        prep, arith = self.prep, self.arith
        inst = prep.inst
        n, n_k, d = inst.n, inst.n_k, inst.d
        delta_total, tau = _rounding(prep, poly, arith)
        if delta_total >= 1:
            raise PrecisionError(
                f"fast: the attention entries cannot be certified (relative error {delta_total:.3g} >= 1 "
                f"at R = {prep.R:.4g}, degree {poly.degree})"
            )
        eta = 2 * delta_total / (1 - delta_total)
        loss_mp = sum(self.loss_terms[1:], self.loss_terms[0]) / 2
        loss = float(loss_mp)
        # forward: |dAtt_jl| <= eta W_l / 2 + 3 tau hmax_l (sums, division, h = A3 Y)
        fwd_eta, fwd_tau = prep.W / 2, 3 * prep.hmax
        out = _Pass(poly, arith, r, block, loss, None, self.att, eta, tau, delta_total)
        out.K["forward"] = (fwd_eta, fwd_tau)
        # loss: sum_jl e_l |c_jl| + n sum_l e_l^2 / 2 (+ rounding of the sum, in extra)
        out.K["loss"] = (np.array([fwd_eta @ self.abs_c]), np.array([fwd_tau @ self.abs_c]))
        out.extra["loss"] = _gamma(n * d + 2, arith.u) * abs(loss) + n * float(((eta * fwd_eta + tau * fwd_tau) ** 2).sum()) / 2
        if arith.is_mp:  # results are rounded to float64
            out.extra["loss"] += U64 * abs(loss)
            out.extra["forward"] = U64 * float(prep.hmax.max())
        if self.want == "gradient":
            G = self.G / d
            out.gradient = np.asarray(G, dtype=np.float64)
            const_eta = 0.5 * float((prep.W**2).sum()) + 1.5 * 2 * (tau * prep.hmax) @ prep.W
            const_tau = 6 * float((prep.hmax**2).sum())
            k_eta = np.outer(self.row_eta + const_eta * self.abs_a1, prep.alpha) / d
            k_tau = np.outer(self.row_tau + const_tau * self.abs_a1, prep.alpha) / d
            out.K["gradient"] = (k_eta, k_tau)
            out.extra["gradient"] = (2 * U64 if arith.is_mp else U64) * float(np.abs(out.gradient).max())
        return out


def _rounding(prep: _Prepared, poly: ExpPolynomial, arith: _Arith) -> tuple[float, float]:
    """``(delta', tau)``: the entries' total relative perturbation and the sums' relative error.

    ``delta' = (1 + delta)(1 + gamma_{3g+4} e^R P_abs)(1 + delta_score) - 1`` (polynomial,
    feature products, scores ``A1 X`` and ``A2 - k0`` computed in the working arithmetic,
    ``delta_score = exp(2 gamma_{d+2} R_abs) - 1``) and ``tau = gamma_m e^R P_abs / (1 - delta')`` with
    ``m = n + n_k + r + 2d + 8`` (THEORY 5.5: sums of terms up to ``P_abs ~ e^R`` whose
    smallest value is ``e^-R``).
    """
    inst = prep.inst
    growth = math.exp(prep.R_grid) * poly.abs_sum
    delta_feat = _gamma(3 * poly.degree + 4, arith.u) * growth
    delta_score = math.expm1(2 * _gamma(inst.d + 2, arith.u) * prep.R_abs)
    delta_total = (1 + poly.delta) * (1 + delta_feat) * (1 + delta_score) - 1
    m = inst.n + inst.n_k + rank(inst.d, poly.degree) + 2 * inst.d + 8
    tau = _gamma(m, arith.u) * growth / max(1 - delta_total, 1e-300)
    return delta_total, tau


# ------------------------------------------------------------------------------ planning
def _check_options(
    instance: Any, eps: float, atol: float, max_rank: int, kind: str, block: int | None,
    degree: int | None, precision: str,
) -> None:
    if not isinstance(instance, AttentionInstance):
        raise InvalidInstance(f"instance: expected an AttentionInstance, got {type(instance).__name__}")
    if not (isinstance(eps, (int, float)) and 0 < eps < 1):
        raise InvalidInstance(f"eps: the relative error must be a number in (0, 1), got {eps!r}")
    if not (isinstance(atol, (int, float)) and math.isfinite(atol) and atol >= 0):
        raise InvalidInstance(f"atol: expected a finite number >= 0, got {atol!r}")
    if isinstance(max_rank, bool) or not isinstance(max_rank, (int, np.integer)) or max_rank < 1:
        raise InvalidInstance(f"max_rank: expected a positive integer, got {max_rank!r}")
    if kind not in KINDS:
        raise InvalidInstance(f"kind: unknown polynomial kind {kind!r}; choose one of {', '.join(KINDS)}")
    if block is not None and (isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 1):
        raise InvalidInstance(f"block: expected a positive integer number of rows, got {block!r}")
    if degree is not None and (isinstance(degree, bool) or not isinstance(degree, (int, np.integer)) or degree < 0):
        raise InvalidInstance(f"degree: expected an integer >= 0, got {degree!r}")
    if precision not in ("auto", "float64", "mp"):
        raise InvalidInstance(f"precision: expected 'auto', 'float64' or 'mp', got {precision!r}")


def _max_degree(d: int, max_rank: int) -> int:
    g = 0
    while g < MAX_DEGREE and rank(d, g + 1) <= max_rank:
        g += 1
    return g


def _polynomial(prep: _Prepared, delta: float, kind: str, max_rank: int, why: str) -> ExpPolynomial:
    """The smallest polynomial for ``delta`` on ``[-R_grid, R_grid]`` within the rank cap."""
    d = prep.inst.d
    g_max = _max_degree(d, max_rank)
    try:
        return smallest_polynomial(prep.R_grid, delta, kind, max_degree=g_max)
    except ResourceError:
        raise ResourceError(
            f"fast: {why} needs relative error {delta:.3g} of exp on the score range [-{prep.R:.4g}, {prep.R:.4g}], "
            f"which needs a {kind} polynomial of degree > {g_max}, i.e. rank > C({d}+{g_max + 1}, {g_max + 1}) = "
            f"{rank(d, g_max + 1)} > max_rank = {max_rank}; raise max_rank (cost ~ 2 (n + n_k) r (d+1)^2 flops) "
            "or use method='exact'"
        ) from None


def _work(prep: _Prepared, r: int) -> int:
    return (prep.inst.n + prep.inst.n_k) * r * (prep.inst.d + 1) ** 2


def _mp_arith_for(prep: _Prepared, poly: ExpPolynomial, target: float) -> _Arith:
    """mpmath arithmetic whose rounding terms are below ``target / 1000`` (relative)."""
    _, tau64 = _rounding(prep, poly, FLOAT64)
    prec = 64
    while tau64 * 2.0 ** (53 - prec) > target / 1000:
        prec += 16
        if prec > 4096:
            raise PrecisionError(f"fast: relative error {target:.3g} of the attention entries is out of reach")
    return _mp_arith(prec)


def _arith_for(prep: _Prepared, poly: ExpPolynomial, target: float, precision: str, what: str) -> _Arith:
    """The arithmetic in which the entries' rounding stays below ``target`` (relative), or refuse."""
    if precision == "mp":
        return _mp_arith_for(prep, poly, target)
    delta_total, tau = _rounding(prep, poly, FLOAT64)
    if delta_total - poly.delta + tau <= target:
        return FLOAT64
    r = rank(prep.inst.d, poly.degree)
    if precision == "auto" and _work(prep, r) <= MP_WORK_LIMIT:
        return _mp_arith_for(prep, poly, target)
    raise PrecisionError(
        f"fast: the {what} asks for relative error {target:.3g} of the attention entries, below what float64 "
        f"can certify here ({delta_total - poly.delta + tau:.3g}: score range R = {prep.R:.4g}, so sums of "
        f"terms of size e^R = {math.exp(prep.R):.3g} give values of size e^-R, and n + n_k + r = "
        f"{prep.inst.n + prep.inst.n_k + r} additions); use a larger eps, precision='mp' (feasible for "
        f"(n + n_k) r (d+1)^2 <= {MP_WORK_LIMIT:g}, here {_work(prep, r):g}) or method='mp'"
    )


#: The options of :func:`gradient`, :func:`forward` and :func:`loss` and their defaults.
DEFAULTS: dict[str, Any] = {
    "eps": 1e-6,
    "atol": 0.0,
    "max_rank": DEFAULT_MAX_RANK,
    "kind": "minimax",
    "block": None,
    "degree": None,
    "precision": "auto",
    "certify": False,
}


def _solve(instance: AttentionInstance, what: str, options: dict[str, Any]) -> tuple[_Pass, _Prepared, list[int], dict[str, Any]]:
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise InvalidInstance(f"{', '.join(unknown)}: unknown option(s) of method 'fast'; known: {', '.join(DEFAULTS)}")
    opts = {**DEFAULTS, **options}
    result, prep, degrees = _dispatch(instance, what, **opts)
    return result, prep, degrees, opts


def _dispatch(
    instance: AttentionInstance, what: str, *, eps: float, atol: float, max_rank: int, kind: str,
    block: int | None, degree: int | None, precision: str, certify: bool,
) -> tuple[_Pass, _Prepared, list[int]]:
    _check_options(instance, eps, atol, max_rank, kind, block, degree, precision)
    prep = _prepare(instance)
    d = instance.d
    if degree is not None:
        if rank(d, degree) > max_rank:
            raise ResourceError(
                f"fast: degree {degree} has rank C({d}+{degree}, {degree}) = {rank(d, degree)} > max_rank = {max_rank}"
            )
        poly = exp_polynomial(prep.R_grid, int(degree), kind)
        arith = _mp_arith_for(prep, poly, U64) if precision == "mp" else FLOAT64
        return _run(prep, poly, what, block, arith), prep, [int(degree)]
    if not certify:
        poly = _polynomial(prep, eps / 2, kind, max_rank, f"eps = {eps:g}")
        arith = _arith_for(prep, poly, eps / 4, precision, what)
        return _run(prep, poly, what, block, arith), prep, [poly.degree]
    return _certified(prep, what, eps=eps, atol=atol, max_rank=max_rank, kind=kind, block=block, precision=precision)


def _certified(
    prep: _Prepared, what: str, *, eps: float, atol: float, max_rank: int, kind: str, block: int | None,
    precision: str,
) -> tuple[_Pass, _Prepared, list[int]]:
    """Passes until ``bound <= max(eps (||out~|| - bound), atol)`` is proven (module Notes)."""
    poly = _polynomial(prep, PILOT_DELTA, kind, max_rank, "the pilot pass")
    arith = _mp_arith_for(prep, poly, U64) if precision == "mp" else FLOAT64
    current = _run(prep, poly, what, block, arith)
    degrees = [poly.degree]
    for _ in range(_MAX_PASSES):
        bound = current.bound(what)
        if bound <= max(eps * (current.scale(what) - bound), atol):
            return current, prep, degrees
        budget = _SAFETY * max(eps * current.scale(what), atol)
        sensitivity = current.bound(what, tau=0.0) / max(current.eta, 1e-300)
        float_part = current.bound(what, eta=0.0)
        if sensitivity == 0 or current.scale(what) <= 2 * float_part or budget <= 4 * U64 * current.scale(what):
            raise PrecisionError(
                f"fast: the {what} is zero to within its certified error {bound:.3g} (size "
                f"{current.scale(what):.3g}); pass atol=... to accept an absolute error"
            )
        # split the budget: half for the polynomial, half for the rounding
        eta_needed = budget / 2 / sensitivity
        delta_needed = min(eta_needed / (2 + eta_needed), current.poly.delta / 2)
        poly = _polynomial(prep, delta_needed, kind, max_rank, f"eps = {eps:g}")
        k_tau = float_part / max(current.tau, 1e-300)
        relative_floor = budget / 2 / (2 * sensitivity + k_tau)
        arith = _arith_for(prep, poly, relative_floor, precision if not current.arith.is_mp else "mp", what)
        current = _run(prep, poly, what, block, arith)
        degrees.append(poly.degree)
    raise PrecisionError(
        f"fast: could not certify eps = {eps:g} for the {what} after {len(degrees)} passes "
        f"(degrees {degrees}, last bound {current.bound(what):.3g}, output size {current.scale(what):.3g})"
    )


def _info(result: _Pass, prep: _Prepared, what: str, degrees: list[int], opts: dict[str, Any]) -> dict[str, Any]:
    inst = prep.inst
    eps, atol = opts["eps"], opts["atol"]
    d = inst.d
    m = (d + 1) ** 2 if what == "gradient" else d + 1
    return {
        "rank": result.rank,
        "degree": result.poly.degree,
        "kronecker_rank": result.rank * d,
        "delta": result.poly.delta,
        "bound": result.bound(what),
        "kind": opts["kind"],
        "certify": opts["certify"],
        "eps": eps,
        "atol": atol,
        "R": prep.R,
        "R_grid": prep.R_grid,
        "key_shift": prep.k0.tolist(),
        "eta": result.eta,
        "float_floor": result.tau,
        "precision": result.arith.name,
        "block": result.block,
        "degrees_tried": degrees,
        "certified": bool(result.bound(what) <= max(eps * (result.scale(what) - result.bound(what)), atol)),
        "flops": 2 * (inst.n + inst.n_k) * result.rank * m,
        "exact_flops": 8 * inst.n * inst.n_k * d,
    }


# ------------------------------------------------------------------------------ public API
def gradient(
    instance: AttentionInstance,
    *,
    eps: float = 1e-6,
    atol: float = 0.0,
    max_rank: int = DEFAULT_MAX_RANK,
    kind: str = "minimax",
    block: int | None = None,
    degree: int | None = None,
    precision: str = "auto",
    certify: bool = False,
) -> GradientResult:
    """``dL/dX`` by the polynomial method (AS24 Theorem D.6) with a certified entrywise error.

    Parameters
    ----------
    instance : the attention instance.
    eps : target error relative to ``max_ab |(dL/dX)_ab|`` (see the module Notes).
    atol : with ``certify``, an absolute error that is also accepted (default 0).
    max_rank : largest feature rank ``C(d + g, g)`` allowed; beyond it ResourceError.
    kind : polynomial family (``"minimax"``, ``"chebyshev"``, ``"taylor"``).
    block : rows per block (default ``2^20 / r``, at least 64).
    degree : fix the degree (``eps``/``atol`` unused; the bound is reported).
    precision : ``"auto"`` (float64, or mpmath for small instances below the float64
        floor), ``"float64"`` or ``"mp"``.
    certify : prove ``error_bound <= eps max |dL/dX|`` (several passes) instead of choosing
        ``delta = eps / 2`` a priori.

    Returns
    -------
    GradientResult
        ``gradient``, ``loss``, ``error_bound`` (certified ``max_ab`` error), ``loss_error_bound``,
        ``method="fast"``, ``info`` with ``rank``, ``degree``, ``kronecker_rank``, ``delta``
        (certified relative error of the polynomial), ``bound``, the score range ``R``, the
        key shift, ``eta``, ``float_floor``, ``precision`` and ``degrees_tried``.

    Notes
    -----
    Time ``2 (n + n_k) r (d+1)^2`` flops with ``r = C(d + g, g)``; for ``d = O(log n)``,
    ``B = o(sqrt(log n))`` and ``eps = 1/poly(n)`` the degree is ``o(log n)`` and
    ``r = n^{o(1)}`` (THEORY 2.2 item 3).  Memory ``O(block r + r d^2)``.

    Examples
    --------
    >>> inst = AttentionInstance.random(n=256, d=4, B=1.0, seed=0)
    >>> res = gradient(inst, eps=1e-6)
    >>> res.info["rank"] == rank(4, res.info["degree"])
    True
    >>> res.info["delta"] <= 0.5e-6
    True
    >>> cert = gradient(inst, eps=1e-6, certify=True)
    >>> bool(cert.error_bound <= 1e-6 * (np.abs(cert.gradient).max() - cert.error_bound))
    True
    """
    options = {
        "eps": eps, "atol": atol, "max_rank": max_rank, "kind": kind, "block": block, "degree": degree,
        "precision": precision, "certify": certify,
    }
    result, prep, degrees, opts = _solve(instance, "gradient", options)
    return GradientResult(
        gradient=result.gradient,
        loss=result.loss,
        error_bound=result.bound("gradient"),
        loss_error_bound=result.bound("loss"),
        method="fast",
        info=_info(result, prep, "gradient", degrees, opts),
    )


def forward(instance: AttentionInstance, **options: Any) -> ForwardResult:
    """``Att ~ D~^-1 U1 (U2^T A3 Y)`` (AS23 Section 3) with a certified entrywise error.

    The options are those of :func:`gradient`; ``eps`` is relative to ``max_jl |Att_jl|``.

    Examples
    --------
    >>> inst = AttentionInstance.random(n=128, d=2, seed=1)
    >>> res = forward(inst, eps=1e-8, certify=True)
    >>> res.att.shape, bool(res.error_bound <= 1e-8 * np.abs(res.att).max())
    ((128, 2), True)
    """
    result, prep, degrees, opts = _solve(instance, "forward", options)
    return ForwardResult(result.att, result.bound("forward"), "fast", _info(result, prep, "forward", degrees, opts))


def loss(instance: AttentionInstance, **options: Any) -> LossResult:
    """``L = 0.5 ||Att~ - E||_F^2`` with a certified error; ``eps`` is relative to ``|L|``.

    The options are those of :func:`gradient`.

    Examples
    --------
    >>> inst = AttentionInstance.random(n=128, d=2, seed=1)
    >>> res = loss(inst, eps=1e-8, certify=True)
    >>> bool(res.error_bound <= 1e-8 * res.loss)
    True
    """
    result, prep, degrees, opts = _solve(instance, "loss", options)
    return LossResult(result.loss, result.bound("loss"), "fast", _info(result, prep, "loss", degrees, opts))
