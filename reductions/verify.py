"""End-to-end verification of a reduction chain against ground truth (THEORY 6 item 12).

``verify(instance, path=..., oracle=...)`` reduces the instance along a path, runs the last
problem's solver (for ``gradient``/``attention`` an attention oracle: ``"exact"`` float64,
``"mp"`` mpmath, ``"fast"`` polynomial method, or any callable), lifts its answer back,
checks the witness on the original instance, compares the verdict with ground truth (a SAT
solver for k-SAT, brute force for OV and the distance problems) and reports per-step sizes,
the entry bound B (formula and measured), the margin each decoder needed against the
error its oracle stated, oracle calls and times.  A verdict whose margin is not above the
stated error is refused (:class:`~reductions.errors.PrecisionError`) or, with
``recompute=True``, recomputed with the mpmath oracle; it is never guessed.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

from reductions.errors import FinegrainError, InvalidInstance, NoReductionPath, PrecisionError
from reductions.registry import (
    ComposedReduced,
    FormulaCheck,
    check_formulas,
    compose,
    compose_formulas,
    evaluate,
    measure,
    problem_of,
    resolve_path,
)

ORACLES = ("exact", "mp", "fast")
NUMERIC_PROBLEMS = ("attention", "gradient")
#: Last problems of a chain whose solver can run on a Dask cluster (:func:`oracle_solver`).
CLUSTER_PROBLEMS = ("gradient", "attention", "ov")


# ----------------------------------------------------------------------------- ground truth
def satisfies(cnf: Any, model: Any) -> bool:
    """Checker: is ``model`` a complete assignment (one literal per variable 1..N) satisfying ``cnf``?"""
    from reductions.problems.cnf import is_satisfying

    try:
        lits = [int(x) for x in model]
    except (TypeError, ValueError):
        return False
    if sorted(abs(lit) for lit in lits) != list(range(1, int(cnf.nv) + 1)):
        return False
    return is_satisfying(cnf, lits)


def is_close_pair(inst: Any, pair: Any) -> bool:
    """Checker of the ``bhcp``/``gapann`` nodes: ``pair`` is an index pair at distance ``<= t``."""
    try:
        i, j = (int(x) for x in pair)
    except Exception:
        return False
    return 0 <= i < inst.n_U and 0 <= j < inst.n_V and inst.distance(i, j) <= inst.t


def solve_close_pair(inst: Any) -> tuple[int, int] | None:
    """Brute force for the ``bhcp``/``gapann`` nodes: a pair at distance ``<= t``, or ``None``.

    Raises :class:`InvalidInstance` when the minimum distance breaks the Gap-ANN promise
    (strictly between ``t`` and ``(1 + eps) t``): the answer is then undefined.
    """
    from solvers.bhcp import solve_bhcp

    closest = solve_bhcp(inst)
    if closest is None or closest[2] >= inst.far:
        return None
    if closest[2] <= inst.t:
        return closest[0], closest[1]
    raise InvalidInstance(
        f"the instance breaks the Gap-ANN promise: minimum distance {closest[2]} lies strictly between "
        f"t = {inst.t} and (1 + eps) t = {inst.far}"
    )


def _pair_checker(problem: str) -> Callable[[Any, Any], bool]:
    if problem == "ov":
        from reductions.problems.ov import is_orthogonal_pair

        return is_orthogonal_pair
    if problem == "maxip":
        from reductions.problems.maxip import is_maxip_witness

        return is_maxip_witness
    return is_close_pair


def check_witness(problem: str, instance: Any, answer: Any) -> bool | None:
    """Is ``answer`` a valid witness for ``instance``?  ``None`` when it carries no witness."""
    if answer is None or answer is True:
        return None
    if problem == "ksat":
        return satisfies(instance, answer)
    if problem in NUMERIC_PROBLEMS:
        return None
    return bool(_pair_checker(problem)(instance, answer))


def brute_solver(problem: str) -> Callable[[Any], Any]:
    """The ground-truth solver of a combinatorial node: instance -> witness or ``None``."""
    if problem == "ksat":
        from solvers.sat import solve_sat

        def sat(cnf: Any) -> Any:
            result = solve_sat(cnf)
            return list(result.model) if result.satisfiable else None

        return sat
    if problem == "ov":
        from solvers.ov import solve_ov

        return solve_ov
    if problem == "maxip":
        from reductions.problems.maxip import solve_maxip

        return solve_maxip
    if problem in ("bhcp", "gapann"):
        return solve_close_pair
    raise NoReductionPath(f"no ground truth for {problem} instances; start from ksat, ov, maxip, bhcp or gapann")


def oracle_solver(problem: str, oracle: str | Callable[[Any], Any], scheduler: Any = None) -> Callable[[Any], Any]:
    """The solver handed to the chain's last step.

    For ``gradient`` (``attention``) nodes: ``attention.gradient`` (``forward``) with
    ``method=oracle``; for combinatorial nodes: the brute-force solver.  A callable
    ``oracle`` is used as given.  With ``scheduler`` (a ``distributed.Client``, ``"local"``
    or an address; see :mod:`reductions.distributed_common`) the work runs on that Dask
    cluster: the exact oracle by :mod:`attention.distributed`, one block of the oracle's
    default size per task (so the gradient is the in-process oracle's bits and bound; the
    forward is its bits with the ranges' own bounds, never larger than the oracle's), and the OV brute force by :func:`solvers.ov_distributed.solve_ov_distributed` (the
    same lexicographically first pair); other nodes have no cluster solver.
    """
    if callable(oracle):
        return oracle
    if oracle not in ORACLES:
        raise InvalidInstance(f"oracle: unknown oracle {oracle!r}; choose one of {', '.join(ORACLES)} or pass a callable")
    if scheduler is not None:
        return _cluster_solver(problem, oracle, scheduler)
    if problem == "gradient":
        import attention

        return lambda inst: attention.gradient(inst, method=oracle)
    if problem == "attention":
        import attention

        return lambda inst: attention.forward(inst, method=oracle)
    return brute_solver(problem)


def _cluster_solver(problem: str, oracle: str, scheduler: Any) -> Callable[[Any], Any]:
    if problem in NUMERIC_PROBLEMS and oracle != "exact":
        raise FinegrainError(f"oracle: a Dask cluster runs the exact oracle only, not {oracle!r}")
    if problem == "gradient":
        from attention import distributed

        return lambda inst: distributed.gradient(inst, scheduler, task_rows="block")
    if problem == "attention":
        from attention import distributed

        return lambda inst: distributed.forward(inst, scheduler)
    if problem == "ov":
        from solvers.ov_distributed import solve_ov_distributed

        return lambda ov: solve_ov_distributed(ov, scheduler)
    raise FinegrainError(
        f"no solver for {problem} instances on a Dask cluster (only {', '.join(CLUSTER_PROBLEMS)}); "
        "end the chain at one of those, or run without a scheduler"
    )


# ----------------------------------------------------------------------------- report
@dataclass
class StepReport:
    """One reduction step: the problem reached, its sizes, B, and the decoder's precision."""

    problem: str
    rule: str
    n: int | None
    d: int | None
    B: float | None
    B_formula: float | None
    margin: float | None
    oracle_error: float | None
    oracle_calls: int | None
    seconds_reduce: float
    params: dict[str, Any] = field(default_factory=dict)
    predicted: dict[str, float] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    """What :func:`verify` found.  ``to_json()`` is what ``finegrain verify --json`` prints."""

    problem: str
    source_params: dict[str, Any]
    path: list[str]
    oracle: str
    ground_truth: bool
    ground_truth_witness: Any
    chain_answer: bool
    chain_witness: Any
    agree: bool
    witness_ok: bool | None
    formulas_ok: bool
    recomputed: bool
    oracle_calls: int
    seconds: dict[str, float]
    steps: list[StepReport]
    formula_checks: list[FormulaCheck]

    @property
    def ok(self) -> bool:
        """Verdict agrees, witness (if any) valid, every formula equals its measured value."""
        return self.agree and self.witness_ok is not False and self.formulas_ok

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["formula_checks"] = [c.to_json() for c in self.formula_checks]
        out["ok"] = self.ok
        return _plain(out)

    def summary(self) -> str:
        """A few human-readable lines."""
        yes = {True: "YES", False: "NO"}
        params = ", ".join(f"{k} = {v}" for k, v in self.source_params.items())
        lines = [
            f"{self.problem} instance: {params}",
            f"path: {' -> '.join(self.path)}   oracle: {self.oracle}"
            + ("   (recomputed with mp)" if self.recomputed else ""),
            f"ground truth: {yes[self.ground_truth]}   chain: {yes[self.chain_answer]}   "
            f"{'agree' if self.agree else 'DISAGREE'}   witness: "
            + {None: "-", True: "valid", False: "INVALID"}[self.witness_ok],
        ]
        for s in self.steps:
            b = "" if s.B is None else f"  B = {s.B:.6g} (formula {_fmt(s.B_formula)})"
            m = "" if s.margin is None else f"  margin {s.margin:.3g} vs oracle error {_fmt(s.oracle_error)}"
            lines.append(f"  {s.rule:>28} -> {s.problem:<9} n = {s.n}  d = {s.d}{b}{m}")
        lines.append(
            f"oracle calls: {self.oracle_calls}   formulas: {'all equal to measured' if self.formulas_ok else 'MISMATCH'}   "
            + "   ".join(f"{k} {v:.3g}s" for k, v in self.seconds.items())
        )
        return "\n".join(lines)


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars/arrays and tuples to builtins."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


# ----------------------------------------------------------------------------- verify
def verify(
    instance: Any,
    path: Iterable[str] | str | None = None,
    oracle: str | Callable[[Any], Any] = "exact",
    *,
    to: str | None = "gradient",
    recompute: bool = False,
    ground_truth: tuple[bool, Any] | None = None,
    **options: Any,
) -> Report:
    """Run ``instance`` through a reduction chain and check the answer against ground truth.

    Parameters
    ----------
    instance : a CNF (``pysat.formula.CNF``), an OV instance, or an instance of another
        combinatorial node.
    path : rule names (or problems to pass through); default: the preferred path to ``to``.
    oracle : ``"exact"``, ``"mp"``, ``"fast"`` or a callable solving the last problem.
    to : the last problem when ``path`` does not end the chain (default ``"gradient"``).
    recompute : when a decoder refuses (margin not above the oracle's error), rerun the
        whole chain with the mpmath oracle instead of raising.
    ground_truth : ``(answer, witness)`` if already known (skips the solver).
    options : passed to the rules that accept them (e.g. ``mu=`` of the probe decoder).

    Returns
    -------
    Report
        ``agree`` (verdicts equal), ``witness_ok`` (the chain's witness checked on
        ``instance``; ``None`` for NO answers), ``formulas_ok``, per-step sizes and B, margins,
        oracle errors, calls and times.

    Raises
    ------
    PrecisionError
        when a step's margin is not above the oracle's stated error and ``recompute`` is
        false (or the mp oracle cannot separate them either).

    Notes
    -----
    THEORY 6 item 12: SAT -> OV -> H/S -> AAttLGC -> decoder -> answer + witness -> model,
    compared with the SAT solver, refusing whenever margin <= oracle error (+ quadrature
    error, which the quadrature decoder adds to its stated error).

    Examples
    --------
    >>> from pysat.formula import CNF
    >>> report = verify(CNF(from_clauses=[[1, 2], [-1, 2], [-2, 3]]), to="maxip")
    >>> report.ground_truth, report.chain_answer, report.agree, report.witness_ok
    (True, True, True, True)
    >>> [s.problem for s in report.steps]
    ['ov', 'maxip']
    """
    source = problem_of(instance)
    rules = resolve_path(path, source, to)
    if not rules:
        raise NoReductionPath(f"the instance already is a {to} instance; give a longer path")
    oracle_name = oracle if isinstance(oracle, str) else getattr(oracle, "__name__", "callable")
    solver = oracle_solver(rules[-1].target, oracle)
    start = time.perf_counter()
    truth, truth_witness = ground_truth if ground_truth is not None else _ground_truth(source, instance)
    seconds_truth = time.perf_counter() - start

    recomputed = False
    try:
        answer, red = _run(rules, instance, solver, options)
    except PrecisionError:
        if not (recompute and oracle != "mp" and rules[-1].target in NUMERIC_PROBLEMS):
            raise
        answer, red = _run(rules, instance, oracle_solver(rules[-1].target, "mp"), options)
        recomputed, oracle_name = True, "mp"

    checks = check_formulas(red)
    chain_answer = answer is not None
    return Report(
        problem=source,
        source_params=measure(source, instance),
        path=[r.name for r in rules],
        oracle=oracle_name,
        ground_truth=bool(truth),
        ground_truth_witness=truth_witness,
        chain_answer=chain_answer,
        chain_witness=None if answer is True else answer,
        agree=chain_answer == bool(truth),
        witness_ok=check_witness(source, instance, answer),
        formulas_ok=all(c.ok for c in checks),
        recomputed=recomputed,
        oracle_calls=int(red.stats.get("oracle_calls", 0)),
        seconds={
            "ground_truth": seconds_truth,
            "reduce": red.stats.get("seconds_reduce", 0.0),
            "oracle": red.stats.get("seconds_oracle", 0.0),
            "decode": red.stats.get("seconds_decode", 0.0),
        },
        steps=_step_reports(red),
        formula_checks=checks,
    )


def _ground_truth(problem: str, instance: Any) -> tuple[bool, Any]:
    witness = brute_solver(problem)(instance)
    return witness is not None, witness


def solve_through(
    instance: Any,
    to: str = "gradient",
    oracle: str | Callable[[Any], Any] = "exact",
    path: Iterable[str] | str | None = None,
    **options: Any,
) -> tuple[Any, ComposedReduced]:
    """Answer ``instance`` by reducing it to ``to`` (preferred path or ``path``) and asking ``oracle``.

    Returns ``(answer, reduction)``: the answer lifted back to ``instance`` (a model / a pair
    / ``None``) and the composed reduction with its per-step ``stats``.  Raises
    :class:`PrecisionError` when a step's margin is not above its oracle's stated error.

    Examples
    --------
    >>> from pysat.formula import CNF
    >>> answer, red = solve_through(CNF(from_clauses=[[1, -2], [2]]))
    >>> answer, [r.name for r in red.rules], red.stats["oracle_calls"]
    ([1, 2], ['ksat_to_ov', 'ov_to_gradient_probe'], 2)
    """
    rules = resolve_path(path, problem_of(instance), to)
    if not rules:
        raise NoReductionPath(f"the instance already is a {to} instance; nothing to reduce")
    return _run(rules, instance, oracle_solver(rules[-1].target, oracle), options)


def _run(rules: list, instance: Any, solver: Callable[[Any], Any], options: dict[str, Any]) -> tuple[ComposedReduced, Any]:
    red = compose(rules)(instance, **options)
    answer = red.lift(solver)
    for step in [*red.steps, *red.extra_steps]:
        margin, error = step.stats.get("margin"), step.stats.get("oracle_error")
        if margin is not None and error is not None and not margin > error:
            raise PrecisionError(
                f"step {step.rule}: margin {margin:.3g} is not above the oracle's stated error "
                f"{error:.3g}; use the mp oracle (recompute=True / --oracle mp)"
            )
    return answer, red


def _step_reports(red: ComposedReduced) -> list[StepReport]:
    first = measure(red.rules[0].source, red.source)
    predicted_all = compose_formulas(red.rules)[1:]
    out = []
    for rule, step, predicted in zip(red.rules, red.steps, predicted_all):
        params = {k: v for k, v in step.params.items() if isinstance(v, (int, float, str, bool)) or v is None}
        values = {name: evaluate(expr, first) for name, expr in predicted.items()}
        out.append(
            StepReport(
                problem=rule.target,
                rule=rule.name,
                n=_first_of(params, "n", "n_U"),
                d=_first_of(params, "d", "m"),
                B=params.get("B"),
                B_formula=values.get("B"),
                margin=step.stats.get("margin"),
                oracle_error=step.stats.get("oracle_error"),
                oracle_calls=step.stats.get("oracle_calls"),
                seconds_reduce=step.stats.get("seconds_reduce", 0.0),
                params=params,
                predicted=values,
                stats={k: v for k, v in step.stats.items() if isinstance(v, (int, float, str, bool)) or k == "decisions"},
            )
        )
    return out


def _first_of(params: dict[str, Any], *names: str) -> Any:
    for name in names:
        if name in params:
            return params[name]
    return None


# ----------------------------------------------------------------------------- counterexamples
def find_counterexample(
    path: Iterable[str] | str | None = None,
    *,
    source: str = "ksat",
    to: str | None = "gradient",
    oracle: str | Callable[[Any], Any] = "exact",
    max_examples: int = 100,
    **options: Any,
) -> Any | None:
    """Search small instances of ``source`` for one the chain gets wrong; the smallest found, or ``None``.

    "Wrong" means: verdict differs from ground truth, an invalid witness, or a size formula
    that differs from the measured value.  A refusal (``PrecisionError``) is not wrong.
    Hypothesis shrinks what it finds, so the instance returned is locally minimal.
    """
    from hypothesis import HealthCheck, Phase, find, settings
    from hypothesis.errors import NoSuchExample

    from reductions.testing import instances

    def wrong(instance: Any) -> bool:
        try:
            return not verify(instance, path, oracle, to=to, **options).ok
        except PrecisionError:
            return False

    config = settings(
        max_examples=max_examples,
        database=None,
        deadline=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    try:
        return find(instances(source), wrong, settings=config)
    except NoSuchExample:
        return None
