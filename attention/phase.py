"""The phase-transition experiment: the polynomial method against the threshold ``B ~ sqrt(log n)``.

AS23 Theorems 1.3/1.4 and AS24 Theorems 1.5/1.6: with ``d = O(log n)`` and entries bounded by
``B``, the attention gradient to error ``1/poly(n)`` takes ``n^{1+o(1)}`` time when
``B = o(sqrt(log n))`` (the polynomial method, :mod:`attention.fast`) and, under SETH, no
``n^{2-q}`` time when ``B = Theta(sqrt(log n))``.  The experiment measures the upper-bound
side on random instances (entries uniform in ``[-B, B]``, ``d = d(n)``):

* for ``n`` and ``B = c sqrt(ln n)`` on a grid of ``c``: the score range ``R`` of the instance
  (:func:`attention.fast.score_range`), the smallest degree ``g`` whose polynomial has
  relative error ``<= 1/n`` on ``[-R, R]``, the rank ``r = C(d + g, g)``, the exponent
  ``log_n`` of the predicted cost ratio ``fast / exact = 4 n r (d+1)^2 / (8 n^2 d)``
  (negative: the fast method wins), and the time of both methods;
* the error reached at the fixed rank budget ``r <= n^0.5``: the certified relative error
  ``delta`` of the attention entries and (for small ``n``) the measured gradient error.

With ``d(n) = round(log2(n) / 2)`` (default, ``d = Theta(log n)``) the degree needed at
``B = c sqrt(ln n)`` is ``Theta(log n)`` for fixed ``c`` (``R ~ c^2 ln n`` and
``ln(1/delta) = ln n``), so ``r = n^{h(c)}``: the cost exponent depends on ``c`` alone and the
curves of different ``n`` collapse when drawn against ``c = B / sqrt(ln n)``; the threshold
``c*`` where the exponent crosses 0 is the experiment's ``B ~ sqrt(log n)``.

Rows are plain dicts with the keys :data:`COLUMNS` (write them with :func:`write_csv`);
:func:`phase_figure` draws the figure and :func:`plot_phase` writes it as PNG/SVG (matplotlib is
imported inside).
"""

from __future__ import annotations

import csv
import math
import time
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from attention.errors import FinegrainError, InvalidInstance, ResourceError
from attention.features import rank
from attention.instance import AttentionInstance

COLUMNS = (
    "n",
    "log2_n",
    "d",
    "c",
    "B",
    "R",
    "delta_target",
    "degree_needed",
    "censored",
    "rank_needed",
    "kronecker_rank_needed",
    "cost_exponent",
    "fast_wins",
    "time_fast_s",
    "time_exact_s",
    "time_exact_kind",
    "error_bound_rel",
    "measured_error_rel",
    "rank_budget",
    "degree_budget",
    "delta_budget",
    "budget_error_bound_rel",
    "budget_measured_error_rel",
)

#: Default grid: n = 2^10 .. 2^16 and c = B / sqrt(ln n) from 0.25 to 3.
DEFAULT_N = tuple(2**k for k in range(10, 17))
DEFAULT_C = tuple(float(c) for c in np.round(np.linspace(0.25, 3.0, 12), 4))


def d_of_n(n: int) -> int:
    """The head dimension of the experiment: ``max(2, round(log2(n) / 2))`` (``d = Theta(log n)``).

    Examples
    --------
    >>> [d_of_n(2**k) for k in (10, 13, 16)]
    [5, 6, 8]
    """
    return max(2, round(math.log2(n) / 2))


def cost_exponent(n: int, d: int, r: int) -> float:
    """``log_n`` of the predicted flop ratio fast / exact, ``2 n r (d+1)^2 * 2 / (8 n^2 d)``.

    Examples
    --------
    >>> round((2**16) ** -cost_exponent(2**16, 4, 330))  # d = 4, r = 330: ~64x fewer flops at n = 2^16
    64
    """
    return math.log(r * (d + 1) ** 2 / (2 * n * d)) / math.log(n)


def point_seed(seed: int, n: int, c: float) -> int:
    """The instance seed of the point ``(n, c)``: the same point gets the same instance in any grid."""
    return int(np.random.SeedSequence([seed, n, int(round(c * 10_000))]).generate_state(1)[0])


def _degree_cap(n: int, d: int, exponent_cap: float) -> int:
    """The largest degree whose cost exponent is at most ``exponent_cap``."""
    g = 0
    while cost_exponent(n, d, rank(d, g + 1)) <= exponent_cap:
        g += 1
    return g


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def run_phase(
    n_values: Sequence[int] = DEFAULT_N,
    c_values: Sequence[float] = DEFAULT_C,
    *,
    d: int | None = None,
    kind: str = "minimax",
    seed: int = 0,
    exponent_cap: float = 0.5,
    time_flops_cap: float = 2e10,
    exact_error_max_n: int = 2**12,
    exact_time_max_n: int = 2**14,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run the experiment on the grid ``n_values x c_values``; one row (dict) per point.

    Parameters
    ----------
    n_values : sequence lengths ``n`` (queries = keys).
    c_values : ``B / sqrt(ln n)``.
    d : head dimension (default :func:`d_of_n`).
    kind : polynomial family (:data:`attention.polynomials.KINDS`).
    seed : seed of the random instances (the point ``(n, c)`` uses :func:`point_seed`).
    exponent_cap : degrees whose cost exponent exceeds this are not searched (the row is
        ``censored``: the degree needed is larger than ``degree_needed``).
    time_flops_cap : the fast gradient is run (and timed) only below this many flops.
    exact_error_max_n : the exact oracle is run per instance (measured errors) up to this ``n``.
    exact_time_max_n : the exact oracle is timed up to this ``n``; beyond, its time is
        extrapolated by ``n^2`` from the largest timed ``n`` (``time_exact_kind``).
    progress : called with each finished row.

    Notes
    -----
    Error target ``1/n`` (relative error of every attention entry, AS23's ``1/poly(n)``);
    rank budget ``floor(sqrt(n))``.  Cost: the polynomial searches (mpmath Remez, cached)
    and the fast runs are small; the exact runs dominate (``8 n^2 d`` flops each).
    """
    from attention import fast, oracle
    from attention.polynomials import exp_polynomial, smallest_polynomial

    _check_grid(n_values, c_values)
    rows: list[dict[str, Any]] = []
    exact_times: dict[int, float] = {}
    for n in n_values:
        dim = d_of_n(n) if d is None else d
        for c in c_values:
            B = c * math.sqrt(math.log(n))
            inst = AttentionInstance.random(n=n, d=dim, B=B, seed=point_seed(seed, n, c))
            R = fast.score_range(inst)
            R_grid = fast.grid_up(R)
            row: dict[str, Any] = {"n": n, "log2_n": int(round(math.log2(n))), "d": dim, "c": c, "B": B, "R": R}
            row["delta_target"] = 1.0 / n
            cap = _degree_cap(n, dim, exponent_cap)
            try:
                poly = smallest_polynomial(R_grid, 1.0 / n, kind, max_degree=cap)
                g, censored = poly.degree, False
            except ResourceError:
                g, censored = cap + 1, True
            r = rank(dim, g)
            row.update(
                degree_needed=g,
                censored=censored,
                rank_needed=r,
                kronecker_rank_needed=r * dim,
                cost_exponent=cost_exponent(n, dim, r),
                fast_wins=(not censored) and cost_exponent(n, dim, r) < 0,
            )
            exact = None
            if n <= exact_error_max_n or (n <= exact_time_max_n and n not in exact_times):
                exact, t_exact = _timed(lambda: oracle.gradient(inst))
                exact_times.setdefault(n, t_exact)
            row.update(_exact_time(n, exact_times))
            nan = float("nan")
            timed = not censored and 4 * n * r * (dim + 1) ** 2 <= time_flops_cap
            seconds, bound, measured = _fast_run(fast, inst, g, kind, exact) if timed else (nan, nan, nan)
            row.update(time_fast_s=seconds, error_bound_rel=bound, measured_error_rel=measured)
            g_b = _budget_degree(n, dim)
            _, bound_b, measured_b = _fast_run(fast, inst, g_b, kind, exact)
            row.update(
                rank_budget=rank(dim, g_b),
                degree_budget=g_b,
                delta_budget=exp_polynomial(R_grid, g_b, kind).delta,
                budget_error_bound_rel=bound_b,
                budget_measured_error_rel=measured_b,
            )
            rows.append(row)
            if progress is not None:
                progress(row)
    return rows


def _check_grid(n_values: Sequence[int], c_values: Sequence[float]) -> None:
    if not n_values or any(not isinstance(n, (int, np.integer)) or n < 4 for n in n_values):
        raise InvalidInstance(f"n_values: expected integers >= 4, got {list(n_values)!r}")
    if not c_values or any(not (isinstance(c, (int, float)) and 0 < c < 50) for c in c_values):
        raise InvalidInstance(f"c_values: expected numbers in (0, 50), got {list(c_values)!r}")


def _budget_degree(n: int, d: int) -> int:
    """The largest degree with ``C(d + g, g) <= sqrt(n)``."""
    g = 0
    while rank(d, g + 1) <= math.sqrt(n):
        g += 1
    return g


def _exact_time(n: int, exact_times: dict[int, float]) -> dict[str, Any]:
    if n in exact_times:
        return {"time_exact_s": exact_times[n], "time_exact_kind": "measured"}
    if not exact_times:
        return {"time_exact_s": float("nan"), "time_exact_kind": "none"}
    n0 = max(exact_times)
    return {"time_exact_s": exact_times[n0] * (n / n0) ** 2, "time_exact_kind": "extrapolated n^2"}


def _fast_run(fast: Any, inst: AttentionInstance, g: int, kind: str, exact: Any) -> tuple[float, float, float]:
    """``(seconds, bound / max|G~|, measured error / max|G~|)`` of the fast gradient at degree ``g``.

    ``nan`` where not available (no exact gradient; or the polynomial is not positive on the
    scores, so the method has no usable result at this degree).
    """
    nan = float("nan")
    try:
        res, seconds = _timed(lambda: fast.gradient(inst, degree=g, kind=kind, max_rank=10**9))
    except FinegrainError:
        return nan, nan, nan
    scale = float(np.abs(res.gradient).max()) or 1.0
    measured = nan if exact is None else float(np.abs(res.gradient - exact.gradient).max()) / scale
    return seconds, res.error_bound / scale, measured


def write_csv(rows: Iterable[dict[str, Any]], fh: Any) -> None:
    """Write the rows with a header of :data:`COLUMNS` to the open text file ``fh``."""
    writer = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _fmt(row.get(k)) for k in COLUMNS})


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return repr(value)
    return value


def threshold(rows: Sequence[dict[str, Any]]) -> dict[int, float]:
    """Per ``n``: the ``c = B / sqrt(ln n)`` where the cost exponent crosses 0 (linear interpolation).

    Censored rows count as above 0.  ``nan`` when no crossing lies inside the grid.
    """
    out: dict[int, float] = {}
    for n in sorted({row["n"] for row in rows}):
        pts = sorted((row["c"], row["cost_exponent"]) for row in rows if row["n"] == n)
        out[n] = float("nan")
        for (c0, e0), (c1, e1) in zip(pts, pts[1:]):
            if e0 < 0 <= e1:
                out[n] = c0 + (c1 - c0) * (0 - e0) / (e1 - e0)
                break
    return out


def plot_phase(rows: Sequence[dict[str, Any]], png: Any, svg: Any = None) -> None:
    """Draw :func:`phase_figure` of ``rows`` to ``png`` (and ``svg``): file names or binary files.

    ``finegrain phase --plot`` writes the same figure with its provenance in the image metadata
    (:func:`reductions.plots.save_figures`).
    """
    fig = phase_figure(rows)
    fig.savefig(png, dpi=120, format="png")
    if svg is not None:
        fig.savefig(svg, format="svg")


def phase_figure(rows: Sequence[dict[str, Any]]) -> Any:
    """The experiment as a matplotlib Figure: (a) the ``(n, B)`` plane with the threshold and
    ``sqrt(ln n)`` curves, (b) the cost exponent against ``c = B / sqrt(ln n)``, (c) the error at
    rank budget ``n^0.5``.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    ns = sorted({row["n"] for row in rows})
    colors = {n: matplotlib.colormaps["viridis"](k / max(len(ns) - 1, 1)) for k, n in enumerate(ns)}
    fig = Figure(figsize=(16, 5.2), layout="constrained")
    ax_a, ax_b, ax_c = fig.subplots(1, 3)
    _panel_plane(ax_a, rows, ns)
    for n in ns:
        pts = sorted((r["c"], r["cost_exponent"], r["censored"]) for r in rows if r["n"] == n)
        label = f"n = 2^{int(round(math.log2(n)))} (d = {next(r['d'] for r in rows if r['n'] == n)})"
        ax_b.plot([p[0] for p in pts], [p[1] for p in pts], "-o", color=colors[n], label=label, ms=4)
        cens = [p for p in pts if p[2]]
        if cens:
            ax_b.plot([p[0] for p in cens], [p[1] for p in cens], "^", color=colors[n], ms=9)
        bud = sorted((r["c"], min(r["delta_budget"], 1.0)) for r in rows if r["n"] == n)
        ax_c.semilogy([p[0] for p in bud], [p[1] for p in bud], "-o", color=colors[n], label=label, ms=4)
        meas = sorted((r["c"], r["budget_measured_error_rel"]) for r in rows if r["n"] == n)
        meas = [p for p in meas if np.isfinite(p[1]) and p[1] > 0]
        if meas:
            ax_c.semilogy([p[0] for p in meas], [p[1] for p in meas], "x--", color=colors[n], ms=6)
    ax_b.axhline(0, color="k", lw=1)
    ax_b.text(0.02, 0.03, "below 0: fast wins", transform=ax_b.transAxes, fontsize=9)
    ax_b.set_xlabel("c = B / sqrt(ln n)   (entry bound in units of sqrt(ln n))")
    ax_b.set_ylabel("log_n( predicted fast flops / exact flops )")
    ax_b.set_title("(b) cost of error 1/n: curves collapse in c\n(triangles: degree search capped, true value higher)", fontsize=10)
    ax_b.legend(fontsize=8)
    ax_c.set_xlabel("c = B / sqrt(ln n)")
    ax_c.set_ylabel("relative error (dimensionless)")
    ax_c.set_title("(c) error at rank budget r <= n^0.5\nlines: certified entry error, x: measured gradient error", fontsize=10)
    ax_c.axhline(1.0, color="grey", lw=0.8, ls=":")
    ax_c.legend(fontsize=8)
    fig.suptitle(
        "Polynomial-method attention gradient (AS24 Thm D.6) on random instances: "
        "cheap below B ~ c* sqrt(ln n), hopeless above"
    )
    return fig


def _panel_plane(ax: Any, rows: Sequence[dict[str, Any]], ns: Sequence[int]) -> None:
    """(a): every point in the ``(n, B)`` plane coloured by the cost exponent; the threshold curve."""
    import matplotlib

    xs = np.array([r["n"] for r in rows], dtype=float)
    ys = np.array([r["B"] for r in rows])
    zs = np.array([r["cost_exponent"] for r in rows])
    cens = np.array([bool(r["censored"]) for r in rows])
    norm = matplotlib.colors.TwoSlopeNorm(vmin=min(zs.min(), -0.01), vcenter=0.0, vmax=max(zs.max(), 0.01))
    sc = ax.scatter(xs[~cens], ys[~cens], c=zs[~cens], cmap="coolwarm", norm=norm, s=40, marker="o")
    ax.scatter(xs[cens], ys[cens], c=zs[cens], cmap="coolwarm", norm=norm, s=60, marker="^")
    ax.figure.colorbar(sc, ax=ax, label="log_n(fast flops / exact flops) for error 1/n")
    grid = np.geomspace(min(ns), max(ns), 100)
    for c in (0.5, 1.0, 2.0, 3.0):
        ax.plot(grid, c * np.sqrt(np.log(grid)), ":", color="grey", lw=1)
        ax.text(grid[-1], c * math.sqrt(math.log(grid[-1])), f" {c:g} sqrt(ln n)", fontsize=8, va="center")
    crossings = threshold(rows)
    found = [(n, c) for n, c in crossings.items() if np.isfinite(c)]
    if found:
        c_star = float(np.median([c for _, c in found]))
        ax.plot([n for n, _ in found], [c * math.sqrt(math.log(n)) for n, c in found], "ks-", ms=5, label="measured threshold")
        ax.plot(grid, c_star * np.sqrt(np.log(grid)), "k-", lw=2, label=f"B = {c_star:.2f} sqrt(ln n)")
        ax.legend(loc="upper left", fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("n (sequence length, log scale)")
    ax.set_ylabel("B (entry bound of A1 X and A2)")
    dims = sorted({r["d"] for r in rows})
    ax.set_title(f"(a) where the fast gradient wins (blue) or loses (red)\nfor error 1/n, d = {', '.join(map(str, dims))}", fontsize=10)
