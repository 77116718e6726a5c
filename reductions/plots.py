"""Figures that show the two sides of the sqrt(log n) threshold (matplotlib, PNG or SVG).

Two figures, each readable without the code:

* :func:`plot_separation` -- the lower-bound side.  For every instance run through a chain
  (a list of :class:`reductions.verify.Report`), the statistic the decoder read from the
  gradient oracle, divided by the decision threshold, for YES and NO instances (ground
  truth), with the promise gap the reduction guarantees and the oracle's stated error (the
  band a verdict would be refused in).  The reduction works when YES points lie above the
  band, NO points below it, and the band is narrow against the gap.
* :func:`plot_scaling` -- the upper-bound side.  Wall-clock time of the gradient against the
  number of tokens n for the exact ``O(n^2 d)`` oracle and the polynomial-method fast
  algorithm, on log-log axes, with the least-squares slope of each curve.

matplotlib is imported inside the functions (it is an optional dependency: ``pip install
"finegrain[plot]"``), and figures are drawn on a bare :class:`matplotlib.figure.Figure`
(no pyplot state, no display needed).  Files are written atomically, never over an
existing file unless ``force``, and carry their provenance (finegrain version, command
line, seed) in the image metadata: the PNG text chunk / SVG ``<dc:description>`` holds the
JSON of :func:`reductions.commands.common.provenance`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from attention.errors import FinegrainError, InvalidInstance

#: File suffixes a figure can be written as.
FORMATS = (".png", ".svg")

_YES, _NO = "#1f6fb4", "#d1495b"  # colour-blind-safe blue / red
_METHOD_STYLE = {"exact": ("#444444", "o"), "fast": ("#2a9d8f", "s"), "mp": ("#8d6a9f", "^")}


# ----------------------------------------------------------------------------- data
@dataclass(frozen=True)
class SeparationPoint:
    """One decoded instance: what the decoder read and what it compared it with.

    All four numbers are in the statistic's units (the convention of
    :mod:`reductions.decoders.common`).

    Attributes
    ----------
    n : int
        Tokens of the gradient instance the oracle was called on.
    statistic : float
        The value the decoder read.
    threshold : float
        Decide YES iff ``statistic > threshold``.
    margin : float
        The promise gap's half-width: YES instances read ``>= threshold + margin``, NO
        instances ``<= threshold - margin`` (exact arithmetic).
    error : float
        The oracle's stated error propagated to the statistic (0 if none); the decoder
        refuses unless ``error < margin``.
    truth : bool
        Ground truth (SAT solver / brute force).
    label : str
        The route (rule names joined by arrows), shown in the title.
    """

    n: int
    statistic: float
    threshold: float
    margin: float
    error: float
    truth: bool
    label: str = ""

    @property
    def ratio(self) -> float:
        """``statistic / threshold``: YES instances need ratio > 1 + band, NO < 1 - band."""
        return self.statistic / self.threshold

    @property
    def band(self) -> float:
        """Half-width of the refusal band around the threshold, relative to it."""
        return self.error / self.threshold

    @property
    def correct(self) -> bool:
        """The verdict ``statistic > threshold`` equals ground truth and clears the band."""
        if self.truth:
            return self.statistic - self.error > self.threshold
        return self.statistic + self.error < self.threshold


def separation_point(report: Any) -> SeparationPoint:
    """The :class:`SeparationPoint` of a :class:`reductions.verify.Report`.

    Reads the last step that states a ``statistic`` and a ``threshold`` (the numeric
    decoder's step), and of its logged decisions (``stats["decisions"]``, oracle calls in
    order) the one whose ``purpose`` is ``"detect"`` (else the first): the YES/NO
    decision; later ones locate the witness.
    """
    steps = getattr(report, "steps", None)
    if steps is None:
        raise InvalidInstance("report: expected a reductions.verify.Report (with .steps)")
    for step in reversed(steps):
        decisions = step.stats.get("decisions") or [step.stats]
        first = next((d for d in decisions if d.get("purpose") == "detect"), decisions[0])
        if "statistic" in first and "threshold" in first:
            return SeparationPoint(
                n=int(step.n or 0),
                statistic=float(first["statistic"]),
                threshold=float(first["threshold"]),
                margin=float(first.get("margin") or 0.0),
                error=float(first.get("oracle_error") or 0.0),
                truth=bool(report.ground_truth),
                label=" -> ".join(report.path),
            )
    raise InvalidInstance(
        "report: no step states a decoded statistic and threshold; plot reports of a path that "
        "ends in a numeric decoder (e.g. the default k-SAT -> gradient route)"
    )


def fit_slope(ns: Sequence[float], seconds: Sequence[float]) -> tuple[float, float]:
    """Least-squares fit ``log t = slope * log n + c``; returns ``(slope, c)`` (natural logs).

    Examples
    --------
    >>> slope, _ = fit_slope([1e3, 2e3, 4e3], [1.0, 4.0, 16.0])
    >>> round(slope, 6)
    2.0
    """
    import numpy as np

    n, t = np.asarray(ns, dtype=float), np.asarray(seconds, dtype=float)
    if len(n) < 2 or np.ptp(n) == 0:
        raise InvalidInstance("a slope needs timings at two or more distinct n")
    if not (np.isfinite(n).all() and np.isfinite(t).all() and (n > 0).all() and (t > 0).all()):
        raise InvalidInstance("timings and n must be positive and finite to fit a log-log slope")
    x, y = np.log(n), np.log(t)
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept)


# ----------------------------------------------------------------------------- figures
def plot_separation(
    reports: Iterable[Any],
    path: str | os.PathLike,
    *,
    force: bool = False,
    title: str | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """Draw the decoded statistic of YES and NO instances against the threshold; save to ``path``.

    Parameters
    ----------
    reports : iterable of Report or SeparationPoint
        Reports of :func:`reductions.verify.verify` on YES and NO instances (any mix of sizes).
    path : file name ending in ``.png`` or ``.svg``.
    force : overwrite an existing file.
    title : figure title (default names the route).
    provenance : recorded in the file's metadata (default: version and command line).

    Returns
    -------
    Path
        The file written.

    Notes
    -----
    The y axis is ``statistic / threshold`` on a log scale, so instances of different sizes
    share one threshold line (y = 1); a point whose ratio underflows the axis is drawn at
    the bottom edge as a downward triangle.  Dashed lines mark the promise gap
    ``1 +- margin / threshold`` (exact YES statistics lie above it, NO below); the shaded
    band is ``1 +- oracle error / threshold``: a statistic inside it would be refused
    (:class:`~attention.errors.PrecisionError`), never guessed.  The reduction works when
    the band is much narrower than the gap.  For the default route (Construction H + probe
    decoder (c), THEORY 4.7) YES instances read ``S >= 1/(2(n+1))`` and NO instances
    ``S <= 1/(8(n+1))``.
    """
    points = [p if isinstance(p, SeparationPoint) else separation_point(p) for p in reports]
    if not points:
        raise InvalidInstance("reports: nothing to plot; give at least one verify report")
    fig = _figure((8.6, 4.4))
    ax = fig.add_subplot(1, 1, 1)
    _draw_separation(ax, points)
    route = next((p.label for p in points if p.label), "")
    ax.set_title(_wrap(title or "Decoded statistic vs threshold" + (f"\n{route}" if route else "")), fontsize=10)
    return save_figure(fig, path, force=force, provenance=provenance)


def _draw_separation(ax: Any, points: list[SeparationPoint]) -> None:
    import numpy as np

    sizes = sorted({p.n for p in points})
    position = {n: i for i, n in enumerate(sizes)}
    positive = [p.ratio for p in points if p.ratio > 0]
    floor = 10 ** math.floor(math.log10(min(min(positive, default=1.0), 1e-3)) - 1)
    floor = max(floor, 1e-18)
    rng = np.random.default_rng(0)  # deterministic horizontal jitter only
    for truth, colour, marker, name in ((True, _YES, "o", "YES (ground truth)"), (False, _NO, "x", "NO (ground truth)")):
        group = [p for p in points if p.truth == truth]
        if not group:
            continue
        x = np.array([position[p.n] for p in group], dtype=float) + rng.uniform(-0.18, 0.18, len(group))
        y = np.array([p.ratio for p in group])
        low = y <= floor
        label = f"{name}: {len(group)} instance{'s' * (len(group) != 1)}"
        ax.scatter(x[~low], y[~low], color=colour, marker=marker, s=28, label=label, zorder=3)
        if low.any():
            ax.scatter(x[low], np.full(low.sum(), floor * 1.5), color=colour, marker="v", s=28, zorder=3,
                       label=None if (~low).any() else label)
    ax.axhline(1.0, color="black", lw=1.2, label="decision threshold (ratio 1)")
    for i, n in enumerate(sizes):
        here = [p for p in points if p.n == n]
        gap = min(p.margin / p.threshold for p in here)
        if gap > 0:
            kwargs = {"color": "0.25", "lw": 1.0, "ls": "--"}
            ax.plot([i - 0.4, i + 0.4], [1 + gap] * 2, **kwargs, label="promise: YES above, NO below" if i == 0 else None)
            ax.plot([i - 0.4, i + 0.4], [max(1 - gap, floor)] * 2, **kwargs)
        band = max(p.band for p in here)
        if band > 0:
            ax.fill_between([i - 0.4, i + 0.4], max(1 - band, floor), 1 + band, color="0.55", alpha=0.5, lw=0,
                            label="refused: within the oracle's stated error" if i == 0 else None)
    ax.set_yscale("log")
    top = max(max(positive, default=1.0), 1 + max(p.band for p in points), 1 + max(p.margin / p.threshold for p in points)) * 4
    ax.set_ylim(floor, top)
    ax.set_xticks(range(len(sizes)), [str(n) for n in sizes])
    ax.set_xlim(-0.6, len(sizes) - 0.4)
    ax.set_xlabel("tokens n of the gradient instance (one column per size)")
    ax.set_ylabel("decoded statistic / threshold\n(dimensionless, log scale)")
    wrong = sum(not p.correct for p in points)
    note = [f"{len(points) - wrong}/{len(points)} separated beyond the oracle's error"]
    if all(p.margin > 0 for p in points):
        note.append(f"largest oracle error / margin: {max(p.error / p.margin for p in points):.2g}")
    if any(p.ratio <= floor for p in points):
        note.append(f"triangles: ratio <= {floor:.0e} (drawn at the axis floor)")
    ax.text(0.99, 0.02, "\n".join(note), transform=ax.transAxes, ha="right", va="bottom", fontsize=8)
    ax.grid(True, which="major", axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def plot_scaling(
    timings: Mapping[str, Sequence[tuple[float, float]]],
    path: str | os.PathLike,
    *,
    force: bool = False,
    title: str | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """Time vs n for each method on log-log axes with the fitted slope of each; save to ``path``.

    Parameters
    ----------
    timings : ``{"exact": [(n, seconds), ...], "fast": [...], ...}``
        Wall-clock seconds of one gradient call at each number of tokens n.
    path : file name ending in ``.png`` or ``.svg``.
    force, title, provenance : as in :func:`plot_separation`.

    Notes
    -----
    The exact oracle costs ``~8 n^2 d`` flops (THEORY 0.1, slope 2); the polynomial method
    ``~4 n r d^2`` with rank ``r = C(d+g, g)`` independent of n at fixed (d, B, eps)
    (THEORY 5.2, slope 1).  The legend shows the least-squares slope of each curve
    (:func:`fit_slope`) over its larger half of n (:func:`asymptotic`: small n measure fixed
    costs); when both curves are present the figure also marks the measured
    crossover (from which n on the fast method is faster) when it lies inside the measured range.
    """
    series = {name: sorted((float(n), float(t)) for n, t in pts) for name, pts in timings.items() if pts}
    if not series:
        raise InvalidInstance("timings: nothing to plot; give (n, seconds) pairs for at least one method")
    fig = _figure((6.4, 4.6))
    ax = fig.add_subplot(1, 1, 1)
    for name, pts in series.items():
        colour, marker = _METHOD_STYLE.get(name, ("#e9c46a", "D"))
        ns, ts = [p[0] for p in pts], [p[1] for p in pts]
        label = name
        fit = asymptotic(pts)
        if len({n for n, _ in fit}) >= 2:
            slope, intercept = fit_slope([p[0] for p in fit], [p[1] for p in fit])
            label = f"{name}: slope {slope:.2f} (fit over n >= {fit[0][0]:g})"
            grid = [fit[0][0], max(ns)]
            ax.plot(grid, [math.exp(intercept) * n**slope for n in grid], color=colour, lw=1, ls="--", alpha=0.8)
        ax.plot(ns, ts, color=colour, marker=marker, lw=0, ms=6, label=label)
    cross = crossover(series.get("exact", []), series.get("fast", []))
    if cross is not None and cross > min(n for n, _ in series["fast"]):
        ax.axvline(cross, color="0.4", lw=0.8, ls=":", label=f"fast faster from n = {cross:g}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("tokens n (log scale)")
    ax.set_ylabel("wall-clock time per gradient [s] (log scale)")
    ax.set_title(_wrap(title or "Attention gradient: exact O(n^2 d) vs polynomial method"), fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", framealpha=0.9)
    return save_figure(fig, path, force=force, provenance=provenance)


def asymptotic(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points a slope is fitted to: the larger half of the distinct n (all, if fewer than 4).

    Small n are dominated by fixed costs (calls, polynomial set-up), which bend a log-log
    curve; the growth rate shows at large n.

    Examples
    --------
    >>> asymptotic([(1, 1.0), (2, 1.0), (4, 2.0), (8, 8.0)])
    [(4, 2.0), (8, 8.0)]
    >>> asymptotic([(1, 1.0), (2, 4.0)])
    [(1, 1.0), (2, 4.0)]
    """
    ordered = sorted(points)
    sizes = sorted({n for n, _ in ordered})
    if len(sizes) < 4:
        return ordered
    cut = sizes[len(sizes) // 2]
    return [p for p in ordered if p[0] >= cut]


def crossover(exact: Sequence[tuple[float, float]], fast: Sequence[tuple[float, float]]) -> float | None:
    """The smallest n measured for both methods from which on the fast one is always faster.

    Examples
    --------
    >>> crossover([(1, 1.0), (2, 4.0), (4, 16.0)], [(1, 2.0), (2, 3.0), (4, 5.0)])
    2.0
    >>> crossover([(1, 1.0)], [(1, 2.0)]) is None
    True
    """
    exact_at = dict(exact)
    common = sorted(n for n, _ in fast if n in exact_at)
    wins = [dict(fast)[n] < exact_at[n] for n in common]
    for i, n in enumerate(common):
        if all(wins[i:]):
            return float(n)
    return None


# ----------------------------------------------------------------------------- files
def _wrap(title: str, width: int = 72) -> str:
    """A title broken into lines of at most ``width`` characters (existing breaks kept)."""
    import textwrap

    return "\n".join(textwrap.fill(line, width) for line in title.splitlines())


def _figure(size: tuple[float, float]) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - depends on the installation
        raise FinegrainError('plots need matplotlib: pip install "finegrain[plot]"') from None
    return Figure(figsize=size, layout="constrained")


def check_plot_path(path: str | os.PathLike) -> str:
    """The figure format of ``path`` (``"png"`` or ``"svg"``), or a one-line error."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InvalidInstance(f"{path}: a plot file must end in {' or '.join(FORMATS)}")
    return suffix[1:]


def save_figure(
    fig: Any, path: str | os.PathLike, *, force: bool = False, provenance: Mapping[str, Any] | None = None
) -> Path:
    """Write ``fig`` to ``path`` (PNG or SVG by suffix) atomically, with provenance metadata.

    Refuses an existing ``path`` unless ``force``.  The provenance JSON goes to the PNG
    ``Description`` text chunk or the SVG ``dc:description`` element; read it back with
    :func:`read_plot_provenance`.
    """
    return save_figures(fig, [path], force=force, provenance=provenance)[0]


def save_figures(
    fig: Any,
    paths: Sequence[str | os.PathLike],
    *,
    force: bool = False,
    provenance: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write ``fig`` to each of ``paths`` (PNG or SVG by suffix), all or none, with provenance.

    As :func:`save_figure`; every file is drawn into a temporary file beside its target and
    the files are moved into place only when all were drawn (an error or an interrupt leaves
    none of them).  ``provenance`` defaults to :func:`reductions.commands.common.provenance`
    (finegrain version, command line).
    """
    from contextlib import ExitStack

    from reductions.commands.common import atomic_write
    from reductions.commands.common import provenance as default_provenance

    formats = [check_plot_path(path) for path in paths]
    record = dict(provenance) if provenance is not None else default_provenance()
    import matplotlib

    with ExitStack() as stack:
        handles = [stack.enter_context(atomic_write(path, "wb", force=force)) for path in paths]
        with matplotlib.rc_context({"svg.fonttype": "none"}):  # SVG keeps text as text
            for fh, fmt in zip(handles, formats):
                fig.savefig(fh, format=fmt, dpi=150, metadata=figure_metadata(fmt, record))
    return [Path(path) for path in paths]


def figure_metadata(fmt: str, provenance: Mapping[str, Any]) -> dict[str, str]:
    """matplotlib ``savefig(metadata=...)`` recording ``provenance`` (JSON) for ``fmt`` png or svg.

    PNG: the ``Description`` and ``Software`` text chunks; SVG: the ``dc:description`` and
    ``dc:creator`` elements (matplotlib's names ``Description`` and ``Creator``).

    Examples
    --------
    >>> figure_metadata("svg", {"finegrain_version": "1.0", "seed": 3})
    {'Description': '{"finegrain_version": "1.0", "seed": 3}', 'Creator': 'finegrain 1.0'}
    """
    text = json.dumps(dict(provenance), sort_keys=True, default=str)
    creator = f"finegrain {provenance.get('finegrain_version', '')}".strip()
    return {"Description": text, "Creator" if fmt == "svg" else "Software": creator}


def read_plot_provenance(path: str | os.PathLike) -> dict[str, Any]:
    """The provenance recorded by :func:`save_figure` in a PNG or SVG file."""
    fmt = check_plot_path(path)
    if fmt == "png":
        from PIL import Image

        with Image.open(path) as image:
            text = image.text.get("Description", "")  # type: ignore[attr-defined]
    else:
        import re
        from html import unescape

        found = re.search(r"<dc:description>(.*?)</dc:description>", Path(path).read_text(encoding="utf-8"), re.S)
        text = unescape(found.group(1)) if found else ""
    if not text:
        raise InvalidInstance(f"{path}: no finegrain provenance in this figure")
    return json.loads(text)
