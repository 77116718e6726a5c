"""The exact attention loss gradient in float64 (or float32), in blocks of query rows.

For an instance ``(A1, A2, A3, E, X, Y)`` (THEORY 0.1, AS24 Lemma C.7 with the 1/d factor)::

    S = A1 X A2^T / d            f = softmax_rows(S)        h = A3 Y
    Att = f h                     c = Att - E               L = 0.5 ||c||_F^2
    q = c h^T                     r = (f o q) 1 = rowsum(Att o c)
    p = f o (q - r 1^T)           dL/dX = (1/d) A1^T p A2

Every quantity is row-local except the last product, so the computation runs over blocks
``J`` of ``b`` query rows: a block forms its ``b x n_k`` scores (row max subtracted before
``exp``), its ``b x d`` forward output, ``r`` from the ``O(b d)`` identity, then ``p`` in
place of the scores and ``W_J = p A2`` (``b x d``); the gradient is
``sum_J (1/d) A1[J]^T W_J``.  Memory: ``O((n + n_k) d + threads * b * n_k)``.

:func:`gradient_partial` returns the contribution of a range of query rows (a sum over
blocks, in block order), so ``dL/dX`` is the sum of the partials of any partition of the
rows into ranges; :func:`gradient` is that sum over the ranges ``[0, b), [b, 2b), ...``
taken left to right, which is what :mod:`attention.distributed` does on a cluster.

Two kernels compute the blocks: ``"fused"`` (:mod:`attention.kernels`: one numba pass per
block, register-blocked products, no BLAS, blocks on a thread pool; the default from
``n_k d >= FUSED_MIN_KEY_ENTRIES``) and ``"numpy"`` (BLAS per block, float64 or float32, the
reference; also used by :func:`forward` and :func:`loss`).

Every result carries an a-priori bound on its error (:func:`error_bounds`), computed from
norms of the inputs; see its Notes for the analysis and its assumptions.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import asdict, astuple, dataclass, replace
from typing import Any, Callable, ContextManager, Iterator

import numpy as np

from attention.errors import InvalidInstance, PrecisionError
from attention.instance import AttentionInstance
from attention.results import ForwardResult, GradientResult, LossResult

#: ``progress(rows_done, rows)``: told as blocks of query rows are done (a progress bar).
Progress = Callable[[int, int], None]

__all__ = [
    "gradient",
    "forward",
    "loss",
    "gradient_partial",
    "error_bounds",
    "magnitudes",
    "Precision",
    "Magnitudes",
    "ErrorBounds",
    "precision",
    "naive_gradient",
]

#: Rows per block: about 8 MiB per ``block x n_k`` buffer at ``n_k = 16384``.
DEFAULT_BLOCK_ELEMENTS = 2**20
#: Relative error of the computed exponential, in units of the unit roundoff (4 ulp = 8 u).
EXP_ERROR_UNITS = 8.0
#: Factor covering the rounding in computing the magnitudes and the bound themselves.
SAFE = 1.0 + 2.0**-30


# --------------------------------------------------------------------------- arithmetic model
@dataclass(frozen=True)
class Precision:
    """The floating-point model an error bound is stated for.

    ``u`` unit roundoff; ``exp_rel`` bound on the relative error of ``exp`` (away from
    underflow); ``tiny`` the smallest normal number (an ``exp`` below it may lose all relative
    accuracy); ``eta`` the spacing of subnormals (absolute error of an underflowing product);
    ``input_rounding`` 1 when the float64 inputs are first rounded to the working precision.
    """

    name: str
    u: float
    exp_rel: float
    tiny: float
    eta: float
    input_rounding: int


def precision(dtype: Any = np.float64) -> Precision:
    """The :class:`Precision` of the float64 or float32 oracle."""
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise InvalidInstance(f"dtype: expected float64 or float32, got {dt}")
    info = np.finfo(dt)
    u = float(info.eps) / 2
    return Precision(
        name=dt.name,
        u=u,
        exp_rel=EXP_ERROR_UNITS * u,
        tiny=float(info.tiny),
        eta=float(info.smallest_subnormal),
        input_rounding=int(dt != np.dtype(np.float64)),
    )


def gamma(k: float, u: float) -> float:
    """``gamma_k = k u / (1 - k u)``: the relative error of ``k`` roundings (Higham, Lemma 3.1)."""
    if k * u >= 0.5:
        return math.inf
    return k * u / (1 - k * u)


def _exp_up(x: float) -> float:
    return math.inf if x > 700 else math.exp(x)


# --------------------------------------------------------------------------- magnitudes
@dataclass(frozen=True)
class Magnitudes:
    """A-priori norms of the inputs over a range of query rows (all bounds on the exact values).

    ``qn`` max row 2-norm of ``|A1| |X|``; ``kn``, ``k1``, ``kmax`` max row 2-norm, row 1-norm
    and entry of ``|A2|``; ``hn``, ``h1``, ``hmax`` the same for ``|A3| |Y|``; ``en``, ``e1``,
    ``emax`` for ``E``; ``a1`` max column 1-norm of ``A1`` (over the rows); ``rows``, ``n_k``, ``d``.
    """

    rows: int
    n_k: int
    d: int
    qn: float
    kn: float
    k1: float
    kmax: float
    hn: float
    h1: float
    hmax: float
    en: float
    e1: float
    emax: float
    a1: float


def _row_norms(M: np.ndarray) -> tuple[float, float, float]:
    """Max row 2-norm, max row 1-norm and max entry of a non-negative matrix (rounded up)."""
    if M.shape[0] == 0:
        return 0.0, 0.0, 0.0
    two = float(np.sqrt(np.einsum("ij,ij->i", M, M)).max())
    return two * SAFE, float(M.sum(axis=1).max()) * SAFE, float(M.max())


@dataclass(frozen=True)
class _KeyMagnitudes:
    kn: float
    k1: float
    kmax: float
    hn: float
    h1: float
    hmax: float


def _key_magnitudes(inst: AttentionInstance) -> _KeyMagnitudes:
    kn, k1, kmax = _row_norms(np.abs(inst.A2))
    hn, h1, hmax = _row_norms(np.abs(inst.A3) @ np.abs(inst.Y))
    return _KeyMagnitudes(kn, k1, kmax, hn, h1, hmax * SAFE)


def magnitudes(
    instance: AttentionInstance, start: int = 0, stop: int | None = None, *, keys: _KeyMagnitudes | None = None
) -> Magnitudes:
    """The :class:`Magnitudes` of query rows ``[start, stop)`` (``O((rows + n_k) d^2)``)."""
    stop = instance.n if stop is None else stop
    keys = _key_magnitudes(instance) if keys is None else keys
    A1 = np.abs(instance.A1[start:stop])
    qn, _, _ = _row_norms(A1 @ np.abs(instance.X))
    en, e1, emax = _row_norms(np.abs(instance.E[start:stop]))
    a1 = float(A1.sum(axis=0).max()) * SAFE if stop > start else 0.0
    return Magnitudes(
        rows=stop - start, n_k=instance.n_k, d=instance.d, qn=qn, en=en, e1=e1, emax=emax, a1=a1,
        **asdict(keys),
    )


# --------------------------------------------------------------------------- the error bound
@dataclass(frozen=True)
class SumDepths:
    """Roundings a term of each long sum can meet on its way to the result (its depth).

    A sum whose every term passes through at most ``k`` roundings (products included) has
    relative error at most ``gamma_k`` per term (Higham, Lemma 3.4), whatever the order.
    ``keys_sum``: the softmax denominator; ``keys_dot``: an entry of ``f h`` and of ``p A2``,
    with the scaling by ``1/l``; ``rows_dot``: an entry of ``A1^T W / d`` with the division and
    the block sums; ``loss``: ``0.5 sum c^2`` with the block sums.
    """

    keys_sum: int
    keys_dot: int
    rows_dot: int
    loss: int

    @classmethod
    def worst_case(cls, rows: int, n_k: int, d: int) -> "SumDepths":
        """Any order of summation (BLAS, numpy): a sum of ``k`` terms has depth at most ``k``."""
        return cls(keys_sum=n_k, keys_dot=n_k + 2, rows_dot=rows + 2, loss=rows * d + 1)


@dataclass(frozen=True)
class ErrorBounds:
    """Guaranteed bounds on the errors of the computed quantities (see :func:`error_bounds`).

    ``scores`` entrywise error of ``S``; ``weights`` relative error of each entry of ``f``;
    ``att`` entrywise error of ``Att``; ``loss`` absolute error of ``L``; ``gradient``
    entrywise error of ``dL/dX``.  ``terms`` holds every intermediate bound by name,
    ``depths`` the summation depths used.
    """

    scores: float
    weights: float
    att: float
    loss: float
    gradient: float
    terms: dict[str, float]
    depths: SumDepths


def error_bounds(
    mag: Magnitudes, prec: Precision, rescales: int = 0, depths: SumDepths | None = None
) -> ErrorBounds:
    """A-priori bounds on the rounding errors of the blocked oracle over a range of rows.

    Parameters
    ----------
    mag : norms of the inputs over the row range (:func:`magnitudes`).
    prec : the arithmetic (:func:`precision`; the mpmath oracle passes its own).
    rescales : how many times a row's running softmax sum may be rescaled (0 for a kernel
        that subtracts the exact row max; at most the number of key tiles of an online one).
    depths : the summation depths of the kernel (:class:`SumDepths`); default the worst case
        ``SumDepths.worst_case`` (sums of ``k`` terms in any order).

    Returns
    -------
    ErrorBounds

    Notes
    -----
    Standard model (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed.,
    Sections 2.2, 3.1): every operation is correctly rounded, ``fl(x op y) = (x op y)(1 + e)``
    with ``|e| <= u``, plus an absolute ``eta`` for a product that underflows; a dot product of
    length ``k`` summed in any order (BLAS, with or without FMA; no Strassen-like algorithm)
    has error at most ``gamma_k sum |x_i y_i| + k eta`` with ``gamma_k = k u / (1 - k u)``;
    ``exp`` is within ``exp_rel`` relative (4 ulp; numpy's float64 and float32 ``exp`` are
    checked against mpmath in the tests) or ``tiny`` absolute.  With ``sigma = qn kn / d``
    (``|S_jk| <= sigma`` by Cauchy-Schwarz) the bounds are, stage by stage:

    - scores: ``dS = gamma_{2d+2+3i} sigma`` (``i`` = 1 when inputs are rounded to float32);
    - weights: the shift ``m`` need not be the true max (softmax is shift invariant); the
      argument ``S - m`` is off by ``u |S - m| <= 2 u sigma``, ``exp`` by ``exp_rel``, the row
      sum by ``gamma_{n_k + R}`` and normalising adds two roundings, so
      ``|f^ - f| <= rho f`` entrywise with
      ``rho = e^{2 dS} (1 + w)/(1 - w) (1 + u)^2 / (1 - gamma_{n_k+R}) - 1``,
      ``w = e^{2 u sigma}(1 + exp_rel)(1 + a)^R - 1`` (``a`` = error of one rescale factor);
      underflow adds ``4 n_k tiny`` to each row's 1-norm error ``phi``;
    - ``Att``: ``phi hmax + gamma_d hmax + gamma_{n_k+R+1} (1 + phi) hmax`` (rows of ``f``
      sum to one, so errors in ``f`` count by their row 1-norm);
    - ``c``, ``r``, ``q``: products of the above with the row norms of ``h`` and
      ``c`` (``||c_j||_2 <= hn + en`` since ``Att_j`` is a convex combination of rows of ``h``);
    - ``p = f o (q - r)``: ``sum_k |p^ - p|_jk <= phi |t| + dt + gamma_2 (1 + phi)|t|`` with
      ``|t| <= 2 (hn + en) hn``;
    - ``W = p A2``: ``kmax (dp1 + gamma_{n_k} p1)``; ``dL/dX = (1/d) A1^T W``:
      ``(a1 / d)(dW + gamma_{rows+2+i} max|W|)``.

    With the default ``depths`` the last sum is over the ``rows`` of the range in any order, so
    the bound of a range holds however its rows are split into blocks and the block results are
    added up; a kernel that fixes its order of summation passes its :class:`SumDepths` (the
    fused kernel's: :func:`attention.kernels.summation_depths`, e.g. ``TILE + n_k / TILE``
    instead of ``n_k``), and each ``gamma`` of a long sum uses that depth.  Second-order
    terms are kept (the bound is not first-order), and the magnitudes and the bound are
    rounded up by the factor ``1 + 2^-30``.  The bound is typically 10-1000 times the
    observed error (the tests report the ratio): it takes worst cases of every sum.
    """
    u, iv, eta = prec.u, prec.input_rounding, prec.eta
    d, nk, rows = mag.d, mag.n_k, mag.rows
    sd = math.sqrt(d)
    depths = SumDepths.worst_case(rows, nk, d) if depths is None else depths

    def g(k: float) -> float:
        return gamma(k, u)

    sigma = mag.qn * mag.kn / d
    dS = g(2 * d + 2 + 3 * iv) * sigma + eta * (mag.k1 + 3)
    sigma_hat = sigma + dS
    arg = _exp_up(2 * u * sigma_hat)
    a_rescale = arg * (1 + prec.exp_rel) * (1 + u) - 1
    w = arg * (1 + prec.exp_rel) * (1 + a_rescale) ** rescales - 1
    g_l = g(depths.keys_sum + rescales)
    if w >= 1 or g_l >= 1:
        rho = math.inf
    else:
        rho = _exp_up(2 * dS) * (1 + w) / (1 - w) * (1 + u) ** 2 / (1 - g_l) - 1
    phi = rho + 4 * nk * prec.tiny

    g_in = g(d + 2 * iv)
    dh, dh1, dhn = g_in * mag.hmax + d * eta, g_in * mag.h1 + d * d * eta, g_in * mag.hn + sd * d * eta
    hmax_hat = mag.hmax + dh
    d_att = phi * hmax_hat + dh + g(depths.keys_dot + rescales) * (1 + phi) * hmax_hat + nk * eta
    att_max = mag.hmax + d_att

    emax_hat = mag.emax * (1 + iv * u)
    dc = d_att + iv * u * mag.emax + u * (att_max + emax_hat)
    cn, c1 = mag.hn + mag.en, mag.h1 + mag.e1
    dr = dc * (mag.h1 + d * d_att) + d_att * c1 + g(d) * (cn + sd * dc) * (mag.hn + sd * d_att) + d * eta
    dq = dc * (mag.h1 + dh1) + cn * dhn + g(d) * (cn + sd * dc) * (mag.hn + dhn) + d * eta
    tmax = 2 * cn * mag.hn
    dt = dq + dr + u * (tmax + dq + dr)
    t_hat = tmax + dt
    dp1 = phi * t_hat + dt + g(2) * (1 + phi) * t_hat + nk * eta
    p1 = (1 + phi) * (1 + g(2)) * t_hat
    kmax_hat = mag.kmax * (1 + iv * u)
    dW = dp1 * kmax_hat + iv * u * mag.kmax * p1 + g(depths.keys_dot) * p1 * kmax_hat + nk * eta
    w_max = (1 + g(depths.keys_dot)) * p1 * kmax_hat + nk * eta
    grad = mag.a1 / d * (dW + g(depths.rows_dot + iv) * w_max) + (rows + 2) * eta
    loss = 0.5 * (rows * dc * (2 * c1 + d * dc) + g(depths.loss) * rows * (cn + sd * dc) ** 2) + rows * d * eta
    terms = dict(
        sigma=sigma, scores=dS, weights=rho, weights_row=phi, h=dh, att=d_att, c=dc, r=dr, q=dq,
        t=dt, t_max=tmax, p_row=dp1, W=dW, W_max=w_max, gradient=grad, loss=loss,
    )
    terms = {k: _round_up(v) for k, v in terms.items()}
    return ErrorBounds(
        scores=terms["scores"], weights=terms["weights"], att=terms["att"], loss=terms["loss"],
        gradient=terms["gradient"], terms=terms, depths=depths,
    )


def _round_up(x: float) -> float:
    if math.isnan(x):
        return math.inf
    return x * SAFE if x > 0 else x


# --------------------------------------------------------------------------- the computation
@dataclass(frozen=True, eq=False)
class _Keys:
    """What every block needs, in the working dtype: ``K = A2``, ``h = A3 Y``, ``X``, ``1/d``."""

    K: np.ndarray
    h: np.ndarray
    X: np.ndarray
    dtype: np.dtype
    d: int


def _keys(inst: AttentionInstance, dtype: np.dtype) -> _Keys:
    K = np.ascontiguousarray(inst.A2, dtype=dtype)
    Y = inst.Y.astype(dtype, copy=False)
    h = np.ascontiguousarray(inst.A3.astype(dtype, copy=False) @ Y)
    return _Keys(K=K, h=h, X=inst.X.astype(dtype, copy=False), dtype=dtype, d=inst.d)


def _block(keys: _Keys, A1: np.ndarray, E: np.ndarray) -> tuple[np.ndarray, float]:
    """One block of query rows: ``((1/d) A1^T p A2, 0.5 ||c||^2)`` of these rows."""
    with np.errstate(over="ignore", invalid="ignore"):      # overflow is checked by the caller
        A1c, f = _softmax_block(keys, A1)
        att = f @ keys.h
        c = att - E.astype(keys.dtype, copy=False)
        loss = 0.5 * float(np.einsum("ij,ij->", c, c, dtype=keys.dtype))
        r = np.einsum("ij,ij->i", c, att)
        T = c @ keys.h.T                                  # q
        T -= r[:, None]
        T *= f                                            # p = f o (q - r)
        W = T @ keys.K
        return (A1c.T @ W) / keys.dtype.type(keys.d), loss


def _softmax_block(keys: _Keys, A1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(A1, f)`` of a block in the working dtype: scores shifted by the row max, exp, normalised."""
    dt = keys.dtype
    A1 = A1.astype(dt, copy=False)
    Q = (A1 @ keys.X) / dt.type(keys.d)
    S = Q @ keys.K.T                                  # b x n_k scores
    S -= S.max(axis=1, keepdims=True)
    np.exp(S, out=S)
    S *= (dt.type(1) / S.sum(axis=1, keepdims=True))  # f
    return A1, S


def _forward_block(keys: _Keys, A1: np.ndarray, E: np.ndarray, habs: np.ndarray) -> tuple[np.ndarray, float, float]:
    """``(Att, 0.5 ||c||^2, max f |A3||Y|)`` of a block (the last for the a-posteriori bound)."""
    with np.errstate(over="ignore", invalid="ignore"):
        _, f = _softmax_block(keys, A1)
        att = f @ keys.h
        c = att - E.astype(keys.dtype, copy=False)
        loss = 0.5 * float(np.einsum("ij,ij->", c, c, dtype=keys.dtype))
        weighted = float((f.astype(np.float64, copy=False) @ habs).max())
        return att, loss, weighted


def _ranges(start: int, stop: int, block: int) -> Iterator[tuple[int, int]]:
    for lo in range(start, stop, block):
        yield lo, min(lo + block, stop)


KERNELS = ("auto", "fused", "numpy")
#: ``kernel="auto"`` uses the fused kernel (compiled once per process, a few seconds) from
#: this many key-side entries ``n_k * d`` on; below it the numpy kernel (no compilation).
FUSED_MIN_KEY_ENTRIES = 2**12


@dataclass(frozen=True)
class _Plan:
    """How a call runs: kernel, rows per block, threads and the arithmetic."""

    kernel: str
    block: int
    threads: int
    dtype: np.dtype
    prec: Precision


def default_block(n_k: int, d: int = 64, kernel: str = "numpy") -> int:
    """Rows per block (the bits of the result depend on it, the error bound does not).

    numpy kernel: ``DEFAULT_BLOCK_ELEMENTS // n_k`` rows (at most 4096), large BLAS calls;
    fused kernel: 64 rows for ``d > 16`` and 32 otherwise (measured best here), fewer when the
    ``block x n_k`` buffer would exceed ``2^22`` entries (32 MiB), a multiple of 4.
    """
    if kernel == "fused":
        rows = 64 if d > 16 else 32
        return int(max(4, min(rows, (2**22 // max(n_k, 1)) // 4 * 4)))
    return int(min(4096, max(1, DEFAULT_BLOCK_ELEMENTS // max(n_k, 1))))


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _positive(value: Any, name: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidInstance(f"{name}: expected a positive integer {what}, got {value!r}")
    return int(value)


def _plan(
    instance: AttentionInstance, block: int | None, threads: int | None, dtype: Any, kernel: str
) -> _Plan:
    if not isinstance(instance, AttentionInstance):
        raise InvalidInstance(f"instance: expected an AttentionInstance, got {type(instance).__name__}")
    prec = precision(dtype)
    if kernel not in KERNELS:
        raise InvalidInstance(f"kernel: expected one of {', '.join(KERNELS)}, got {kernel!r}")
    if kernel == "auto":
        big = instance.n_k * instance.d >= FUSED_MIN_KEY_ENTRIES
        kernel = "fused" if big and prec.name == "float64" else "numpy"
    if kernel == "fused" and prec.name != "float64":
        raise InvalidInstance("kernel: the fused kernel is float64 only; use kernel='numpy' for float32")
    block = default_block(instance.n_k, instance.d, kernel) if block is None else block
    threads = (_cores() if kernel == "fused" else 1) if threads is None else threads
    return _Plan(
        kernel=kernel, block=_positive(block, "block", "number of rows"),
        threads=_positive(threads, "threads", "number of threads"), dtype=np.dtype(dtype), prec=prec,
    )


def _blas_for(plan: _Plan) -> ContextManager[None]:
    """The fused kernel runs its own threads: BLAS (the preparation's small products) on one
    thread meanwhile (:func:`attention.kernels.serial_blas`); the numpy kernel keeps BLAS's."""
    if plan.kernel == "fused":
        from attention import kernels

        return kernels.serial_blas()
    return nullcontext()


def _check_range(instance: AttentionInstance, start: int, stop: int) -> None:
    for name, value in (("start", start), ("stop", stop)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise InvalidInstance(f"{name}: expected an integer row index, got {value!r}")
    if not 0 <= start < stop <= instance.n:
        raise InvalidInstance(
            f"start, stop: need 0 <= start < stop <= n = {instance.n}, got [{start}, {stop})"
        )


def _map_blocks(
    fn: Callable[[tuple[int, int]], Any], ranges: list[tuple[int, int]], threads: int
) -> list[Any]:
    if threads == 1 or len(ranges) == 1:
        return [fn(rg) for rg in ranges]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(fn, ranges))


def _require_finite(value: np.ndarray | float, what: str, prec: Precision) -> None:
    if not np.all(np.isfinite(value)):
        raise PrecisionError(
            f"{what} overflowed {prec.name}: the instance's entries are too large for this "
            "precision; use dtype=float64 or method='mp', or rescale the instance"
        )


def _block_function(instance: AttentionInstance, plan: _Plan) -> Callable[[int, int], tuple[np.ndarray, float]]:
    """``(lo, hi) -> (G_J, L_J)`` for the plan's kernel (the key side prepared once)."""
    if plan.kernel == "fused":
        from attention import kernels

        fused = kernels.FusedKeys.build(instance.A2, instance.A3 @ instance.Y)
        return lambda lo, hi: kernels.block_terms(fused, instance.X, instance.A1[lo:hi], instance.E[lo:hi])
    keys = _keys(instance, plan.dtype)

    return lambda lo, hi: _block(keys, instance.A1[lo:hi], instance.E[lo:hi])


def _fold(
    instance: AttentionInstance, start: int, stop: int, plan: _Plan, progress: Progress | None = None
) -> tuple[np.ndarray, float]:
    """Sum of the block terms over ``[start, stop)`` in block order (same bits for any threads).

    ``progress(rows_done, rows)`` is called after each block (from the worker threads, one
    call at a time, ``rows_done`` increasing); it does not change the result.
    """
    one = _block_function(instance, plan)
    lock, done = threading.Lock(), [0]

    def term(rg: tuple[int, int]) -> tuple[np.ndarray, float]:
        result = one(*rg)
        if progress is not None:
            with lock:
                done[0] += rg[1] - rg[0]
                progress(done[0], stop - start)
        return result

    parts = _map_blocks(term, list(_ranges(start, stop, plan.block)), plan.threads)
    G = np.zeros((instance.d, instance.d), dtype=plan.dtype)
    L = 0.0
    for Gp, Lp in parts:
        G += Gp
        L += Lp
    return G.astype(np.float64), L


def _bounds(instance: AttentionInstance, start: int, stop: int, plan: _Plan) -> ErrorBounds:
    """The bound of rows ``[start, stop)`` with the summation depths of the plan's kernel.

    Raises PrecisionError when it is not finite in the working precision: then an intermediate
    could overflow (and the fused kernel's ``exp`` does not propagate NaN), so nothing is
    computed.
    """
    depths = None
    if plan.kernel == "fused":
        from attention import kernels

        fused = kernels.summation_depths(stop - start, instance.n_k, instance.d, plan.block)
        worst = SumDepths.worst_case(stop - start, instance.n_k, instance.d)
        depths = SumDepths(*(min(a, b) for a, b in zip(fused, astuple(worst))))
    with np.errstate(over="ignore", invalid="ignore"):     # an infinite magnitude is refused below
        mag = magnitudes(instance, start, stop)
    bounds = error_bounds(mag, plan.prec, depths=depths)
    top = float(np.finfo(plan.dtype).max) / 4
    if not all(0 <= value < top for value in bounds.terms.values()):
        _require_finite(math.inf, "an intermediate (by the a-priori bound)", plan.prec)
    return bounds


def gradient_partial(
    instance: AttentionInstance,
    start: int,
    stop: int,
    *,
    block: int | None = None,
    threads: int | None = None,
    dtype: Any = np.float64,
    kernel: str = "auto",
) -> tuple[np.ndarray, float, float]:
    """The contribution of query rows ``[start, stop)`` to ``dL/dX`` and to ``L``.

    Returns ``(G_J, L_J, err_J)`` with ``G_J = (1/d) A1[J]^T p[J] A2`` (d x d, float64),
    ``L_J = 0.5 ||c[J]||_F^2`` and ``err_J`` a guaranteed bound on ``max |G_J - exact|``.

    Notes
    -----
    ``dL/dX = sum_J G_J`` and ``L = sum_J L_J`` for any partition of ``[0, n)`` into ranges
    ``J`` (each row's ``p`` and ``c`` depend on that row of ``A1`` and ``E`` and on all of
    ``A2, A3, X, Y`` only).  ``err_J`` covers the range's own arithmetic; adding ``m``
    partials in floating point adds at most ``gamma_{m-1} sum_J |G_J|`` entrywise (and
    ``gamma_{m-1} sum_J L_J`` to the loss).  A range is computed as blocks of ``block`` rows
    from ``start``, summed in order, so a partial over exactly one block of :func:`gradient`
    has the same bits as that block's term inside :func:`gradient` (same ``kernel``; with
    ``kernel="auto"`` the choice depends on ``n_k * d`` only, not on the rows).

    Examples
    --------
    >>> inst = AttentionInstance.random(n=6, d=3, seed=1)
    >>> G1, L1, e1 = gradient_partial(inst, 0, 4)
    >>> G2, L2, e2 = gradient_partial(inst, 4, 6)
    >>> full = gradient(inst)
    >>> bool(abs(G1 + G2 - full.gradient).max() <= e1 + e2 + full.error_bound)
    True
    """
    plan = _plan(instance, block, threads, dtype, kernel)
    _check_range(instance, start, stop)
    with _blas_for(plan):
        bounds = _bounds(instance, start, stop, plan)
        G, L = _fold(instance, int(start), int(stop), plan)
    _require_finite(G, "the gradient", plan.prec)
    return G, L, bounds.gradient


def gradient(
    instance: AttentionInstance,
    *,
    block: int | None = None,
    threads: int | None = None,
    dtype: Any = np.float64,
    kernel: str = "auto",
    progress: Progress | None = None,
) -> GradientResult:
    """``dL/dX`` (d x d) in ``dtype`` arithmetic, in blocks of query rows, with its guaranteed error.

    Parameters
    ----------
    instance : the attention instance.
    block : query rows per block (default :func:`default_block`); memory
        ``O((n + n_k) d + threads * block * n_k)``.
    threads : blocks computed concurrently (default: every available core for the fused
        kernel, 1 for the numpy kernel, whose BLAS calls use their own threads).
    dtype : ``np.float64`` (default) or ``np.float32``; the result is float64 either way and the
        bound is stated for the arithmetic used (``u = 2^-53`` or ``2^-24``).
    kernel : ``"fused"`` (:mod:`attention.kernels`: numba, float64, no BLAS; compiled once per
        process), ``"numpy"`` (BLAS per block; float64 or float32) or ``"auto"`` (fused when
        ``n_k * d >= FUSED_MIN_KEY_ENTRIES`` and float64).  Both satisfy the same bound.
    progress : optional ``progress(rows_done, n)``, called as each block of rows is done (for
        a progress bar; the result does not depend on it).

    Returns
    -------
    GradientResult
        ``gradient``, ``loss``, ``error_bound`` (max entrywise error), ``loss_error_bound``,
        ``method="exact"`` and ``info`` (``block``, ``dtype``, ``bound``: how it was obtained,
        ``bound_terms``: every intermediate bound).

    Notes
    -----
    AS24 Lemma C.7 with the ``1/d`` factor (THEORY 0.1).  Cost ``8 n n_k d`` flops and ``n n_k``
    exponentials.  The error bound is the a-priori analysis of :func:`error_bounds` over all
    rows, which holds for any block size and any order of the block sums; with float64 and
    ``B <= 50`` it is around ``1e-10`` relative to the gradient's natural scale.

    Examples
    --------
    >>> inst = AttentionInstance.random(n=8, d=4, n_k=5, seed=0)
    >>> res = gradient(inst)
    >>> res.gradient.shape, res.method
    ((4, 4), 'exact')
    >>> bool(res.error_bound < 1e-12)
    True
    """
    plan = _plan(instance, block, threads, dtype, kernel)
    with _blas_for(plan):
        bounds = _bounds(instance, 0, instance.n, plan)
        G, L = _fold(instance, 0, instance.n, plan, progress)
    _require_finite(G, "the gradient", plan.prec)
    _require_finite(L, "the loss", plan.prec)
    return GradientResult(
        gradient=G,
        loss=L,
        error_bound=bounds.gradient,
        loss_error_bound=bounds.loss,
        method="exact",
        info=_info(plan, bounds),
    )


def _info(plan: _Plan, bounds: ErrorBounds) -> dict[str, Any]:
    return {
        "block": plan.block,
        "threads": plan.threads,
        "dtype": plan.prec.name,
        "kernel": plan.kernel,
        "bound": (
            "a-priori rounding-error analysis (attention.oracle.error_bounds): "
            f"u = {plan.prec.u:.3g}, exp within {EXP_ERROR_UNITS / 2:g} ulp, "
            + ("the fused kernel's summation depths" if plan.kernel == "fused" else "sums in any order")
        ),
        "bound_terms": dict(bounds.terms),
        "summation_depths": asdict(bounds.depths),
    }


def _forward_pass(
    instance: AttentionInstance, block: int | None, threads: int | None, dtype: Any
) -> tuple[np.ndarray, float, ErrorBounds, dict[str, Any]]:
    """``(Att, L, bounds, info)`` by the forward half of the numpy blocks."""
    plan = _plan(instance, block, threads, dtype, "numpy")
    bounds = _bounds(instance, 0, instance.n, plan)
    keys = _keys(instance, plan.dtype)
    habs = np.abs(instance.A3) @ np.abs(instance.Y)
    ranges = list(_ranges(0, instance.n, plan.block))
    parts = _map_blocks(
        lambda rg: _forward_block(keys, instance.A1[rg[0]:rg[1]], instance.E[rg[0]:rg[1]], habs),
        ranges, plan.threads,
    )
    att = np.concatenate([a for a, _, _ in parts]).astype(np.float64)
    L = math.fsum(L for _, L, _ in parts)
    _require_finite(att, "the forward output", plan.prec)
    _require_finite(L, "the loss", plan.prec)
    weighted = max(w for _, _, w in parts)
    posterior = _att_posterior(bounds, plan.prec, instance, weighted)
    bounds = replace(bounds, att=min(bounds.att, posterior), terms={**bounds.terms, "att_posterior": posterior})
    return att, L, bounds, _info(plan, bounds)


def _att_posterior(bounds: ErrorBounds, prec: Precision, instance: AttentionInstance, weighted: float) -> float:
    """Entrywise bound on ``Att`` from the computed ``M = max f^ (|A3||Y|)`` (a posteriori).

    ``|Att^ - Att|_jl <= ((rho (1 + g_h) + g_h) / (1 - rho) + g_K (1 + g_h)) (f |h|)_jl`` plus
    underflow, where ``rho`` bounds the relative error of each entry of ``f`` (the a-priori
    analysis), ``g_h = gamma_{d+2i}`` that of ``h``, ``g_K`` that of the sum over keys; and
    ``(f |h|)_jl <= M (1 + gamma_d) / ((1 - gamma_{n_k}) (1 - rho))`` (all terms non-negative).
    When the attention puts its weight on small values (T = f v with v in {0, 1} and small T,
    as in THEORY 2.4) this is far below the a-priori ``hmax``-scaled bound.
    """
    rho = bounds.terms["weights"]
    u, iv, d, n_k = prec.u, prec.input_rounding, instance.d, instance.n_k
    g_h, g_k, g_d = gamma(d + 2 * iv, u), gamma(bounds.depths.keys_dot, u), gamma(d + 2, 2.0**-53)
    if rho >= 0.5 or g_k >= 0.5:
        return math.inf
    fh = weighted / ((1 - g_d) * (1 - gamma(n_k + 1, 2.0**-53)) * (1 - rho))
    factor = (rho * (1 + g_h) + g_h) / (1 - rho) + g_k * (1 + g_h)
    hmax = instance.value_bound * (1 + g_h) + d * prec.eta
    return _round_up(factor * fh + 4 * n_k * prec.tiny * hmax + n_k * prec.eta)


def forward(
    instance: AttentionInstance,
    *,
    block: int | None = None,
    threads: int | None = None,
    dtype: Any = np.float64,
) -> ForwardResult:
    """``Att = softmax_rows(A1 X A2^T / d) A3 Y`` (n x d) with its entrywise error bound.

    Examples
    --------
    >>> import numpy as np
    >>> inst = AttentionInstance.random(n=3, d=2, seed=0).replace(X=np.zeros((2, 2)))
    >>> res = forward(inst)          # X = 0: every row of f is uniform, Att = mean of h
    >>> bool(np.allclose(res.att, (inst.A3 @ inst.Y).mean(axis=0)))
    True
    """
    att, _, bounds, info = _forward_pass(instance, block, threads, dtype)
    return ForwardResult(att=att, error_bound=bounds.att, method="exact", info=info)


def loss(
    instance: AttentionInstance,
    *,
    block: int | None = None,
    threads: int | None = None,
    dtype: Any = np.float64,
) -> LossResult:
    """``L = 0.5 ||Att - E||_F^2`` with its error bound (the forward pass only).

    Notes
    -----
    The partial losses of the blocks are added with :func:`math.fsum` (correctly rounded), so
    the stated bound (:func:`error_bounds`, which allows any order of addition) holds.
    """
    _, L, bounds, info = _forward_pass(instance, block, threads, dtype)
    return LossResult(loss=L, error_bound=bounds.loss, method="exact", info=info)


def naive_gradient(instance: AttentionInstance) -> tuple[np.ndarray, float]:
    """``(dL/dX, L)`` by the unblocked formulas of THEORY 0.1 (``n x n_k`` memory; for tests).

    The textbook sequence of AS24 Section C, with ``(f o q) 1`` formed explicitly and the
    softmax shifted by the row max; no error bound.
    """
    A1, A2, A3, E, X, Y = (instance.A1, instance.A2, instance.A3, instance.E, instance.X, instance.Y)
    d = instance.d
    S = A1 @ X @ A2.T / d
    f = np.exp(S - S.max(axis=1, keepdims=True))
    f /= f.sum(axis=1, keepdims=True)
    h = A3 @ Y
    c = f @ h - E
    q = c @ h.T
    fq = f * q
    p = fq - fq.sum(axis=1, keepdims=True) * f
    return A1.T @ p @ A2 / d, 0.5 * float((c**2).sum())

