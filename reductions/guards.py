"""Memory guards: refuse an instance that would not fit, up front, with the estimate and a way out.

A reduction chain materialises every node: k-SAT with ``N`` variables and ``m`` clauses
becomes an OV instance of ``2^ceil(N/2) + 2^floor(N/2)`` vectors of ``m`` bytes, then an
attention instance with ``2 n`` tokens (``n = 2^ceil(N/2)``) of width ``2m + 2`` in float64.
At ``N = 40`` (``m = 170``) the chain needs ~120 GB, almost all of it the attention step; at
``N = 60`` (``m = 256``) the OV step alone ~1700 GB.  Instead of an out-of-memory kill
halfway, :func:`check_chain` (called by every rule application and composed chain in
:mod:`reductions.registry`) and :func:`require_memory` raise
:class:`~attention.errors.ResourceError` before anything is built, naming the estimate, what is
available and the option that would work (OV without storing it: blocked generation by
:class:`solvers.ov_distributed.SatOV`, searched by ``solve_cnf_distributed``, locally or on
a Dask cluster).

Estimates (bytes; ``n_U, n_V`` vectors, dimension ``m``; ``n`` queries, ``n_k`` keys,
width ``d``) follow what the builders allocate; ``benchmarks/bench_soak.py`` prints them next to
the measured peak RSS:

- OV instance: ``(n_U + n_V) m`` (uint8, read-only) plus ``8 ceil(m/64)`` per vector once
  bit-packed; building it holds the caller's arrays, the validated copies and two boolean
  masks (``n_U m + 2 max(n_U, n_V) m`` transient); from k-SAT
  (:mod:`reductions.rules.ksat_to_ov`) the generator's 65536-row blocks take
  ``12 * 65536 m`` bytes at a time, on top of the sides being built.
- attention (gradient) instance from OV (:mod:`reductions.embedding`): 8 float64 matrices of
  ``max(n, n_k) x d`` resident (``A1, A2, A3, E``, the patterns ``Qp, Kp``, and what the
  allocator keeps of the build's temporaries) and 12 more while decoding (a new instance per
  oracle call, its scaled copy, ``h = A3 Y``, the fused kernel's padded key copies and the
  magnitudes of the oracle's error bound), plus two ``block x n_k`` buffers.
- a SAT model (:func:`require_model_memory`): one literal per declared variable,
  :data:`MODEL_BYTES_PER_VARIABLE` bytes each.

The k-SAT -> OV rule's own limit (``reductions.rules.ksat_to_ov.MAX_SIDE_BITS``) is checked
first, with its estimate computed in logarithms (a header may declare 2^31 variables).

Available memory (:func:`attention.memory.available_memory`, re-exported here with
:func:`require_memory` and :data:`HEADROOM`) is the smallest of ``MemAvailable``, the cgroup
limit minus usage and the address-space rlimit; :data:`HEADROOM` of it is usable.

Examples
--------
>>> ksat_to_ov_footprint(N=60, m=256).peak > 2**40        # 2^30 vectors of 256 bytes a side
True
>>> require_memory(2**50, "a demonstration", "use a smaller instance", available=2**30)
Traceback (most recent call last):
...
attention.errors.ResourceError: a demonstration needs about 1.1e+06 GB but 0.97 GB are available (90% of 1.1 GB); use a smaller instance
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import attention.memory
from attention.errors import ResourceError
from attention.memory import HEADROOM, available_memory, format_gb, require_memory

#: Rows per block of the k-SAT -> OV generator (``reductions.rules.ksat_to_ov``) and the bytes
#: its temporaries take per row and clause (an int64 matrix and up to four boolean ones at once).
KSAT_BLOCK_ROWS = 1 << 16
KSAT_BLOCK_BYTES = 12
#: Memory of an attention instance from OV and of its decoding, in ``n x d`` float64 matrices
#: (measured: ``benchmarks/bench_soak.py`` prints estimate and peak RSS side by side).
ATTENTION_RESIDENT = 8
ATTENTION_TRANSIENT = 12
#: Bytes of a chain not proportional to its sizes (Python objects, logs, small arrays).
OVERHEAD = 8 * 2**20
#: Bytes per variable of a SAT model: a Python int and its list slot, and its output text.
MODEL_BYTES_PER_VARIABLE = 64
#: Bytes of a generated CNF per literal and per clause: the generator's own arrays or lists and
#: the ``pysat`` clause lists ``make_cnf`` copies them into, alive together (measured with
#: tracemalloc from k = 2 to 5 and on the genhard families: 86-125 bytes per literal in all).
CNF_BYTES_PER_LITERAL = 96
CNF_BYTES_PER_CLAUSE = 96

OV_ALTERNATIVE = (
    "use an instance with fewer vectors (an OV instance from a k-SAT formula need not be stored: "
    "finegrain solve FILE.cnf --scheduler local|ADDRESS generates its vectors block by block, "
    "solvers.ov_distributed.solve_cnf_distributed, docs/distributed.md)"
)


#: Most variables per-block generation takes (``solvers.ov_distributed.SatOV`` indexes each
#: half by a uint64).
SATOV_MAX_VARS = 126


def ksat_ov_alternative(N: int) -> str:
    """What works when the OV instance of an ``N``-variable formula does not fit: per-block generation.

    Up to :data:`SATOV_MAX_VARS` variables; beyond, a SAT solver or a smaller formula.

    Examples
    --------
    >>> "2^30 x 2^30 pairs" in ksat_ov_alternative(60)
    True
    >>> "block by block" in ksat_ov_alternative(SATOV_MAX_VARS + 1)
    False
    """
    N1 = (N + 1) // 2
    if N > SATOV_MAX_VARS:
        return (
            "decide the formula with a SAT solver (finegrain solve FILE), or reduce a formula with fewer "
            f"variables (per-block generation, finegrain solve FILE --scheduler, stops at {SATOV_MAX_VARS})"
        )
    return (
        "to decide the formula without storing the OV sides, generate them block by block: "
        "finegrain solve FILE --scheduler local|ADDRESS (solvers.ov_distributed.solve_cnf_distributed: "
        "each task builds its tile's vectors from the clauses, in worker processes on this machine or on "
        f"a Dask cluster, docs/distributed.md; it still checks all 2^{N1} x 2^{N - N1} pairs); "
        "or decide it with a SAT solver (finegrain solve FILE); or reduce a formula with fewer variables"
    )
ATTENTION_ALTERNATIVE = (
    "decide the instance without the attention step (finegrain solve FILE: a SAT solver or the "
    "OV brute force; for OV instances of this size solvers.ov_distributed.solve_ov_distributed), "
    "or use an instance with fewer vectors"
)

__all__ = [
    "HEADROOM",
    "Footprint",
    "available_memory",
    "require_memory",
    "ov_footprint",
    "ksat_to_ov_footprint",
    "attention_footprint",
    "node_footprint",
    "chain_footprints",
    "chain_peak",
    "check_chain",
    "require_model_memory",
    "require_ksat_side_limit",
    "ksat_ov_alternative",
    "cnf_bytes",
    "require_generated",
]


# ----------------------------------------------------------------------------- estimates
@dataclass(frozen=True)
class Footprint:
    """Memory of one node of a chain: ``resident`` once built and kept, ``transient`` on top of it
    while it is built or used (temporaries, per-call instances, oracle buffers)."""

    what: str
    resident: int
    transient: int
    alternative: str

    @property
    def peak(self) -> int:
        """``resident + transient``."""
        return self.resident + self.transient


def ov_footprint(n_U: int, n_V: int, m: int, what: str = "") -> Footprint:
    """An OV instance: ``(n_U + n_V) m`` bytes, plus its bit-packed words when a solver packs it.

    Building it holds the caller's arrays and the instance's validated copies, and the
    validation masks of one side (two boolean matrices): ``n_U m + 2 max(n_U, n_V) m``
    transient.

    Examples
    --------
    >>> ov_footprint(4, 4, 64).resident           # 8 vectors x 64 bytes + 8 x one uint64 word
    576
    """
    n_U, n_V, m = int(n_U), int(n_V), max(int(m), 1)
    unpacked, packed = (n_U + n_V) * m, (n_U + n_V) * 8 * math.ceil(m / 64)
    what = what or f"an OV instance of {n_U} + {n_V} vectors of dimension {m}"
    return Footprint(what, unpacked + packed, unpacked + 2 * max(n_U, n_V) * m, OV_ALTERNATIVE)


def ksat_to_ov_footprint(N: int, m: int) -> Footprint:
    """The OV instance of a k-SAT formula with ``N`` variables and ``m`` clauses (Williams 2005).

    ``n_U = 2^ceil(N/2)``, ``n_V = 2^floor(N/2)``, dimension ``max(m, 1)`` (THEORY 1.3).
    Transient: the larger of the generator's block temporaries
    (:data:`KSAT_BLOCK_BYTES` per row and clause for ``65536`` rows) with the sides built so
    far, and the instance's validation (:func:`ov_footprint`).
    """
    n_U, n_V, dim = 2 ** math.ceil(N / 2), 2 ** (N // 2), max(int(m), 1)
    what = f"k-SAT -> OV with N = {N} variables and m = {m} clauses (2^{math.ceil(N / 2)} + 2^{N // 2} vectors of {dim} bytes)"
    base = ov_footprint(n_U, n_V, dim, what)
    block = KSAT_BLOCK_BYTES * min(KSAT_BLOCK_ROWS, n_U) * dim + (n_U + n_V) * dim
    return Footprint(what, base.resident, max(base.transient, block), ksat_ov_alternative(N))


def attention_footprint(n: int, n_k: int, d: int, what: str = "") -> Footprint:
    """An attention (gradient) instance built from OV by :func:`reductions.embedding.embed`, and decoded.

    In units of one ``max(n, n_k) x d`` float64 matrix: :data:`ATTENTION_RESIDENT` resident
    (``A1, A2, A3, E``, the construction's patterns ``Qp, Kp`` and the build's freed
    temporaries the allocator keeps), :data:`ATTENTION_TRANSIENT` transient (a decoder builds
    a new instance per oracle call, with its scaled copy; the exact oracle forms ``h = A3 Y``
    and the magnitudes of its error bound), plus the oracle's two ``block x n_k`` buffers.

    Examples
    --------
    >>> fp = attention_footprint(8, 8, 10)
    >>> fp.resident == ATTENTION_RESIDENT * 8 * 8 * 10
    True
    """
    from attention.oracle import default_block

    n, n_k, d = int(n), int(n_k), int(d)
    matrix = 8 * max(n, n_k) * d
    buffers = 2 * 8 * min(default_block(n_k), n) * n_k
    what = what or f"an attention instance with n = {n} queries, n_k = {n_k} keys, d = {d}"
    return Footprint(what, ATTENTION_RESIDENT * matrix, ATTENTION_TRANSIENT * matrix + buffers, ATTENTION_ALTERNATIVE)


def require_model_memory(cnf: Any) -> None:
    """Refuse (``ResourceError``) a SAT model the process cannot hold: one literal per declared variable.

    A solver's answer lists ``cnf.nv`` literals (the DIMACS header's count, variables in no
    clause included), :data:`MODEL_BYTES_PER_VARIABLE` bytes each as Python integers and
    output text; a header declaring two billion variables asks for ~140 GB.
    """
    top = max((abs(lit) for clause in cnf.clauses for lit in clause), default=0)
    require_memory(
        MODEL_BYTES_PER_VARIABLE * int(cnf.nv),
        f"a complete model of the header's nv = {cnf.nv} variables",
        f"the clauses use variables 1..{top}: lower the header's variable count (p cnf {top} ...) "
        "if the others are not meant to exist",
    )


def cnf_bytes(clauses: int, literals: int) -> int:
    """Peak bytes of generating a CNF with this many clauses and literals (see the constants).

    Examples
    --------
    >>> cnf_bytes(clauses=1000, literals=3000) == 96 * 3000 + 96 * 1000
    True
    """
    return CNF_BYTES_PER_LITERAL * int(literals) + CNF_BYTES_PER_CLAUSE * int(clauses)


def require_generated(
    what: str, estimate: Callable[[int], float], size: int, name: str, hint: str = "", available: int | None = None
) -> None:
    """Refuse (``ResourceError``) generating an instance whose ``estimate(size)`` bytes do not fit.

    ``estimate`` is increasing in the size parameter ``name``; the message gives the estimate
    and the largest ``name`` that fits (found by bisection), then ``hint``.

    Examples
    --------
    >>> require_generated("ten bytes a row", lambda n: 10 * n, 10**12, "n", available=2 * 10**9)
    Traceback (most recent call last):
    ...
    attention.errors.ResourceError: ten bytes a row needs about 1e+04 GB but 1.8 GB are available (90% of 2 GB); n <= 180000000 fits (1.8 GB)
    """
    available = attention.memory.available_memory() if available is None else int(available)
    usable = HEADROOM * available
    needed = estimate(size)
    if needed <= usable:
        return
    lo, hi = 0, int(size)  # estimate(hi) > usable; find the largest lo with estimate(lo) <= usable
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if estimate(mid) <= usable else (lo, mid)
    fits = f"{name} <= {lo} fits ({format_gb(estimate(lo))})" if estimate(lo) <= usable else f"no {name} fits"
    require_memory(needed, what, fits + hint, available)


def _as_int(value: Any) -> int | None:
    if value is None:
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float64: too large to build anyway
        return 2**62
    except (TypeError, ValueError):
        return None
    return int(math.ceil(number)) if math.isfinite(number) else None


def node_footprint(problem: str, params: dict[str, Any]) -> Footprint | None:
    """The footprint of a chain node from its parameters (the registry's names), or None.

    ``ov``: ``n_U, n_V, m``; ``gradient`` / ``attention``: ``n, n_k, d``.  Other nodes
    (k-SAT, Max-IP, BHCP, ...) are at most the size of the OV node they come from or go to.
    """
    if problem == "ov":
        sizes = [_as_int(params.get(k)) for k in ("n_U", "n_V", "m")]
        return None if None in sizes else ov_footprint(*sizes)  # type: ignore[arg-type]
    if problem in ("gradient", "attention"):
        n, d = _as_int(params.get("n")), _as_int(params.get("d"))
        n_k = _as_int(params.get("n_k", params.get("n")))
        if None in (n, n_k, d):
            return None
        return attention_footprint(n, n_k, d)  # type: ignore[arg-type]
    return None


_COMPILED: dict[tuple[str, ...], list[dict[str, Callable[..., float]]]] = {}


def _compiled(rules: Sequence[Any]) -> list[dict[str, Callable[..., float]]]:
    """The composed size formulas of every node after the first, as fast callables (cached per path).

    ``compose_formulas`` (the rules' own sympy formulas, substituted along the path) compiled by
    ``sympy.lambdify``: evaluating them costs microseconds, so every rule application can be
    checked.
    """
    key = tuple(rule.name for rule in rules)
    if key not in _COMPILED:
        import sympy

        from reductions.registry import compose_formulas, problem_symbols

        symbols = problem_symbols(rules[0].source)
        args = [symbols[name] for name in symbols]
        _COMPILED[key] = [
            {name: sympy.lambdify(args, expr, modules="math") for name, expr in node.items()}
            for node in compose_formulas(list(rules))[1:]
        ]
    return _COMPILED[key]


def _evaluate(formulas: dict[str, Callable[..., float]], values: list[Any]) -> dict[str, float]:
    out = {}
    for name, formula in formulas.items():
        try:
            out[name] = formula(*values)
        except (ValueError, TypeError, OverflowError, ZeroDivisionError):  # not determined by these values
            continue
    return out


def chain_footprints(rules: Sequence[Any], instance: Any) -> list[Footprint]:
    """Footprints of every node a chain of rules would build from ``instance``.

    Sizes come from the rules' own formulas (:func:`reductions.registry.compose_formulas`)
    evaluated at the instance's measured parameters; nodes without a size estimate are
    skipped.  A first step k-SAT -> OV uses :func:`ksat_to_ov_footprint` (it adds the
    generator's temporaries) and is refused above the generator's own limit
    (:data:`reductions.rules.ksat_to_ov.MAX_SIDE_BITS`).
    """
    from reductions.registry import measure, problem_symbols

    if not rules:
        return []
    try:
        measured = measure(rules[0].source, instance)
    except Exception:  # not an instance of the source problem: the rule itself refuses it clearly
        return []
    values = [measured[name] for name in problem_symbols(rules[0].source)]
    out = []
    for k, (rule, formulas) in enumerate(zip(rules, _compiled(rules))):
        if k == 0 and rule.source == "ksat" and rule.target == "ov":
            require_ksat_side_limit(int(measured["N"]), int(measured["m"]))  # before 2^(N/2) is computed
            footprint = ksat_to_ov_footprint(int(measured["N"]), int(measured["m"]))
        else:
            footprint = node_footprint(rule.target, _evaluate(formulas, values))
        if footprint is not None:
            out.append(footprint)
    return out


def require_ksat_side_limit(N: int, m: int) -> None:
    """The k-SAT -> OV generator's own limit (``2^MAX_SIDE_BITS`` vectors a side), refused with the
    estimate (in logarithms past ``2^200`` vectors: ``2^(N/2)`` has about ``N/2`` bits, a billion
    for the largest DIMACS header) and the option that works (:func:`ksat_ov_alternative`).

    Called by the guard before every k-SAT -> OV step and by the rule itself."""
    from reductions.rules.ksat_to_ov import MAX_SIDE_BITS, split_point

    N1 = split_point(N)
    if N1 > MAX_SIDE_BITS:
        if N1 <= 200:  # the estimate of every other refusal, as a number
            size = format_gb(chain_peak([ksat_to_ov_footprint(N, m)]))
        else:  # 2^N1 has too many digits to be worth computing: the unpacked sides, in logarithms
            size = f"2^{N1 + math.log2(max(m, 1)) + (1.0 if N % 2 == 0 else math.log2(1.5)):.0f} bytes"
        raise ResourceError(
            f"k-SAT -> OV with N = {N} variables and m = {m} clauses needs 2^{N1} + 2^{N - N1} vectors "
            f"of {max(m, 1)} bytes, about {size}, beyond the generator's limit of 2^{MAX_SIDE_BITS} "
            f"vectors per side (reductions.rules.ksat_to_ov.MAX_SIDE_BITS); {ksat_ov_alternative(N)}"
        )


def chain_peak(footprints: Sequence[Footprint]) -> int:
    """Every node stays referenced by the composed reduction: sum of residents + largest transient
    + :data:`OVERHEAD` (the Python objects, decoder logs and small arrays around them)."""
    if not footprints:
        return 0
    return sum(f.resident for f in footprints) + max(f.transient for f in footprints) + OVERHEAD


def check_chain(rules: Sequence[Any], instance: Any, available: int | None = None) -> list[Footprint]:
    """Refuse (``ResourceError``) a chain whose estimated peak does not fit; returns the footprints.

    The message names the node that dominates the estimate and the option that would work.
    """
    footprints = chain_footprints(rules, instance)
    if footprints:
        biggest = max(footprints, key=lambda f: f.peak)
        path = " -> ".join([rules[0].source, *(r.target for r in rules)])
        what = f"{path} (largest step: {biggest.what})"
        require_memory(chain_peak(footprints), what, biggest.alternative, available)
    return footprints
