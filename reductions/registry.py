"""The registry of reductions: a networkx multigraph of problems, one edge per rule.

A rule is a function ``instance -> Reduced`` registered with :func:`reduction`.  Nodes are
problem names (``"ksat"``, ``"ov"``, ``"maxip"``, ``"bhcp"``, ``"gapann"``,
``"attention"`` (AAttC), ``"gradient"`` (AAttLGC)); edges are keyed by rule name, so two
routes between the same problems (Construction H and Construction S, say) coexist.

Answers.  Each problem has an answer type: ``ksat`` a model (list of DIMACS literals) or
``None``; ``ov``, ``maxip``, ``bhcp``, ``gapann`` an index pair ``(i, j)`` or ``None``;
``gradient`` a :class:`attention.GradientResult` (the oracle's output); see each rule's
docstring and :data:`PROBLEMS`.

Decoding.  ``Reduced.lift(solver)`` turns a solver of the target problem (a callable
``target_instance -> answer``) into the source instance's answer.  A many-one (Karp) rule
calls the solver once on ``Reduced.target`` and maps the answer back; an oracle (Turing)
rule may call it on several instances derived from the target (other lambda, other E,
other probe columns) and records what it did in ``Reduced.stats`` (oracle calls, margin,
the oracle's stated error, the statistic read).  Decoders are deterministic and raise
:class:`~reductions.errors.PrecisionError` instead of guessing.

Composition.  :func:`find_path` picks a chain of rules, :func:`compose` chains them into a
:class:`ComposedRule` whose result lifts a solver of the last problem back to the first
(witness included), and :func:`reduce` does both for an instance.

Formulas.  Each rule states the target's sizes (``n``, ``d``, ``B``, ...) and its number of
oracle calls as sympy expressions in the source's parameters (:data:`PROBLEMS` lists the
parameters of every node).  :meth:`ComposedRule.formulas` substitutes them along a path, so
``k-SAT -> gradient`` gives ``n``, ``d``, ``B`` as functions of ``N`` and ``m``;
:func:`check_formulas` evaluates them against measured values; :func:`seth_arithmetic`
derives what an ``O(n^(2-delta))`` algorithm for the last problem would give for k-SAT.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import re
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import networkx as nx

from reductions.errors import FinegrainError, InvalidInstance, NoReductionPath

if TYPE_CHECKING:  # sympy is imported lazily: the CLI's fast paths never need it
    import sympy

Solver = Callable[[Any], Any]


# ----------------------------------------------------------------------------- problems
def _pair_sides(instance: Any, dim: str) -> dict[str, int]:
    U, V = getattr(instance, "U"), getattr(instance, "V")
    return {"n_U": int(U.shape[0]), "n_V": int(V.shape[0]), dim: int(U.shape[1])}


def _measure_ksat(cnf: Any) -> dict[str, int]:
    return {
        "N": int(cnf.nv),
        "m": len(cnf.clauses),
        "k": max((len(c) for c in cnf.clauses), default=0),
    }


def _measure_ov(ov: Any) -> dict[str, int]:
    return _pair_sides(ov, "m")


def _measure_maxip(inst: Any) -> dict[str, Any]:
    return {**_pair_sides(inst, "d"), "tau": int(inst.tau)}


def _measure_bhcp(inst: Any) -> dict[str, Any]:
    from reductions.rules.ov_to_bhcp import parity_gap

    return {**_pair_sides(inst, "d"), "t": int(inst.t), "g": parity_gap(inst)}


def _measure_gapann(inst: Any) -> dict[str, Any]:
    return {**_pair_sides(inst, "d"), "t": int(inst.t), "eps": float(inst.eps)}


def _measure_attention(inst: Any) -> dict[str, Any]:
    return {"n": int(inst.n), "n_k": int(inst.n_k), "d": int(inst.d), "B": float(inst.B)}


@dataclass(frozen=True)
class Problem:
    """One node of the registry: a problem, its parameters and its answer type.

    ``params`` maps each parameter symbol (the names the rules' formulas use) to
    ``(kind, description)`` with ``kind`` one of ``"size"`` (integer >= 0) and ``"real"``
    (real > 0).  ``measure(instance)`` returns the parameters' measured values.
    """

    name: str
    title: str
    answer: str
    params: dict[str, tuple[str, str]]
    measure: Callable[[Any], dict[str, Any]]
    aliases: tuple[str, ...] = ()


PROBLEMS: dict[str, Problem] = {
    p.name: p
    for p in (
        Problem(
            "ksat",
            "k-SAT (CNF satisfiability)",
            "a model as DIMACS literals, or None",
            {
                "N": ("size", "variables (the DIMACS header's count)"),
                "m": ("size", "clauses"),
                "k": ("size", "longest clause"),
            },
            _measure_ksat,
            ("sat", "cnf", "cnfsat", "3sat"),
        ),
        Problem(
            "ov",
            "Orthogonal Vectors",
            "an index pair (i, j) with <U[i], V[j]> = 0, or None",
            {"n_U": ("size", "vectors in U"), "n_V": ("size", "vectors in V"), "m": ("size", "dimension")},
            _measure_ov,
            ("orthogonalvectors",),
        ),
        Problem(
            "maxip",
            "Max inner product, decision (is max <U[i], V[j]> >= tau?)",
            "an index pair (i, j) with <U[i], V[j]> >= tau, or None",
            {
                "n_U": ("size", "vectors in U"),
                "n_V": ("size", "vectors in V"),
                "d": ("size", "dimension"),
                "tau": ("size", "threshold"),
            },
            _measure_maxip,
            ("mips", "maxinnerproduct"),
        ),
        Problem(
            "bhcp",
            "Bichromatic Hamming closest pair, decision (is min dist(U[i], V[j]) <= t?)",
            "an index pair (i, j) with dist(U[i], V[j]) <= t, or None",
            {
                "n_U": ("size", "vectors in U"),
                "n_V": ("size", "vectors in V"),
                "d": ("size", "dimension"),
                "t": ("size", "distance threshold"),
                "g": ("size", "parity gap: 2 if every distance has the parity of t, else 1"),
            },
            _measure_bhcp,
            ("closestpair", "hammingclosestpair"),
        ),
        Problem(
            "gapann",
            "Gap approximate nearest neighbour (dist <= t vs all dist >= (1+eps) t)",
            "an index pair (i, j) with dist(U[i], V[j]) <= t, or None",
            {
                "n_U": ("size", "vectors in U"),
                "n_V": ("size", "vectors in V"),
                "d": ("size", "dimension"),
                "t": ("size", "distance threshold"),
                "eps": ("real", "relative gap"),
            },
            _measure_gapann,
            ("ann", "gapnn"),
        ),
        Problem(
            "attention",
            "Approximate attention computation AAttC (AS23 Def. 1.2)",
            "the forward output with its error bound (an attention.ForwardResult)",
            {
                "n": ("size", "queries"),
                "n_k": ("size", "keys"),
                "d": ("size", "head dimension"),
                "B": ("real", "entry bound max(||A1 X||_inf, ||A2||_inf)"),
            },
            _measure_attention,
            ("aattc", "attc", "forward"),
        ),
        Problem(
            "gradient",
            "Approximate attention loss gradient AAttLGC (AS24 Def. 1.4)",
            "dL/dX with its error bound (an attention.GradientResult)",
            {
                "n": ("size", "queries"),
                "n_k": ("size", "keys"),
                "d": ("size", "head dimension"),
                "B": ("real", "entry bound max(||A1 X||_inf, ||A2||_inf)"),
            },
            _measure_attention,
            ("aattlgc", "grad", "attentiongradient"),
        ),
    )
}


def problem_name(name: str) -> str:
    """The registry node called ``name``: case, punctuation and the usual aliases are ignored.

    Examples
    --------
    >>> problem_name("k-SAT"), problem_name("Max-IP"), problem_name("AAttLGC")
    ('ksat', 'maxip', 'gradient')
    """
    key = re.sub(r"[^a-z0-9]", "", str(name).lower())
    for problem in PROBLEMS.values():
        if key == problem.name or key in problem.aliases:
            return problem.name
    raise NoReductionPath(f"unknown problem {name!r}; known problems: {', '.join(PROBLEMS)}")


def measure(problem: str, instance: Any) -> dict[str, Any]:
    """The parameters of ``instance`` as a ``problem`` instance (see :data:`PROBLEMS`)."""
    node = PROBLEMS[problem_name(problem)]
    try:
        return node.measure(instance)
    except (AttributeError, TypeError, ValueError) as exc:
        raise InvalidInstance(
            f"cannot measure a {type(instance).__name__} as a {node.name} instance ({exc})"
        ) from None


# ----------------------------------------------------------------------------- rules
@dataclass(eq=False)
class Reduced:
    """The result of applying one rule to one instance.

    Attributes
    ----------
    source, target : the instance reduced and the instance produced.
    lift : ``solver_of_target -> answer_of_source`` (see the module docstring).
    params : measured sizes and parameters of the target (``n``, ``d``, ``B``, ``m``, ...),
        the same names as the rule's formulas.
    stats : filled in by ``lift``: ``oracle_calls``, ``margin``, ``oracle_error``,
        ``statistic``, ``threshold``, ...
    rule : name of the rule that produced it.
    """

    source: Any
    target: Any
    lift: Callable[[Solver], Any]
    params: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    rule: str = ""

    @classmethod
    def karp(cls, source: Any, target: Any, decode: Callable[[Any], Any], **kwargs: Any) -> "Reduced":
        """A many-one reduction: one solver call on ``target``, answer mapped by ``decode``."""
        red = cls(source=source, target=target, lift=lambda solver: None, **kwargs)

        def lift(solver: Solver) -> Any:
            red.stats["oracle_calls"] = red.stats.get("oracle_calls", 0) + 1
            return decode(solver(target))

        red.lift = lift
        return red


_SYMBOL_CACHE: dict[tuple[str, str], Any] = {}


def symbol(name: str, kind: str = "size") -> "sympy.Symbol":
    """The sympy symbol of a parameter: ``size`` = nonnegative integer, ``real`` = positive."""
    import sympy

    key = (name, kind)
    if key not in _SYMBOL_CACHE:
        if kind == "size":
            _SYMBOL_CACHE[key] = sympy.Symbol(name, integer=True, nonnegative=True)
        else:
            _SYMBOL_CACHE[key] = sympy.Symbol(name, positive=True)
    return _SYMBOL_CACHE[key]


def problem_symbols(problem: str) -> dict[str, "sympy.Symbol"]:
    """The sympy symbols of a problem's parameters, by name."""
    return {name: symbol(name, kind) for name, (kind, _) in PROBLEMS[problem].params.items()}


def _parser_globals() -> dict[str, Any]:
    import sympy

    return {name: getattr(sympy, name) for name in ("Integer", "Float", "Rational", "Symbol")}


#: The functions a formula may use besides the source's parameters.
FORMULA_FUNCTIONS = ("log", "sqrt", "exp", "ceiling", "floor", "Max", "Min", "Rational", "binomial", "factorial", "pi")


def parse_formula(text: str, problem: str) -> "sympy.Expr":
    """Parse ``text`` as a sympy expression in the parameters of ``problem``.

    Raises ``ValueError`` naming any name that is neither a parameter of ``problem`` nor a
    sympy function (``log``, ``ceiling``, ``Max``, ...).
    """
    import sympy
    from sympy.parsing.sympy_parser import parse_expr

    local = dict(problem_symbols(problem))
    names = set(re.findall(r"[A-Za-z_][A-Za-z_0-9]*", str(text)))
    unknown = sorted(names - set(local) - set(FORMULA_FUNCTIONS))
    if unknown:
        raise ValueError(
            f"formula {text!r} uses {', '.join(unknown)}, which are not parameters of {problem} "
            f"({', '.join(local)}) nor functions ({', '.join(FORMULA_FUNCTIONS)})"
        )
    local.update({name: getattr(sympy, name) for name in FORMULA_FUNCTIONS})
    try:
        return sympy.sympify(parse_expr(str(text), local_dict=local, global_dict=_parser_globals(), evaluate=True))
    except Exception as exc:
        raise ValueError(f"formula {text!r} does not parse ({exc})") from None


@dataclass(frozen=True)
class Rule:
    """A registered reduction (one edge of the registry)."""

    name: str
    source: str
    target: str
    apply: Callable[..., Reduced]
    reference: str
    formulas: dict[str, str]
    oracle_calls: str = "1"
    default: bool = False
    doc: str = ""

    def __call__(self, instance: Any, **options: Any) -> Reduced:
        from reductions.guards import check_chain

        check_chain([self], instance)  # ResourceError before building what would not fit in memory
        red = self.apply(instance, **options)
        red.rule = self.name
        return red

    @cached_property
    def expressions(self) -> dict[str, "sympy.Expr"]:
        """``formulas`` parsed: target parameter -> sympy expression in the source's parameters."""
        return {key: parse_formula(text, self.source) for key, text in self.formulas.items()}

    @cached_property
    def calls_expression(self) -> "sympy.Expr":
        """``oracle_calls`` parsed in the source's parameters."""
        return parse_formula(self.oracle_calls, self.source)

    @cached_property
    def option_names(self) -> tuple[str, ...]:
        """The keyword options ``apply`` accepts (after the instance)."""
        params = list(inspect.signature(self.apply).parameters.values())[1:]
        return tuple(p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))

    @property
    def summary(self) -> str:
        """The first line of the rule's docstring."""
        return self.doc.strip().splitlines()[0] if self.doc.strip() else self.name


GRAPH = nx.MultiDiGraph()


def normalise(name: str) -> str:
    """Canonical rule/problem name: lower case, ``-``/spaces to ``_``.

    Examples
    --------
    >>> normalise(" OV-to-Gradient probe ")
    'ov_to_gradient_probe'
    """
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def reduction(
    *,
    source: str,
    target: str,
    reference: str,
    formulas: dict[str, str] | None = None,
    oracle_calls: str = "1",
    name: str | None = None,
    default: bool = False,
) -> Callable[[Callable[..., Reduced]], Callable[..., Reduced]]:
    """Register ``func(instance, **options) -> Reduced`` as the rule ``source -> target``.

    ``formulas`` maps target parameter names to sympy-parsable expressions in the source's
    parameters (e.g. ``{"n_U": "2**ceiling(N/2)", "m": "m"}``); ``oracle_calls`` likewise.
    ``default`` marks the rule preferred when several join the same problems.  Names are
    normalised (:func:`normalise`, :func:`problem_name`).  The decorated function, called
    directly, behaves as the rule (its result names the rule).  Registering a second function
    under a name already taken raises ``ValueError`` (re-importing the same function
    replaces it).
    """

    def register(func: Callable[..., Reduced]) -> Callable[..., Reduced]:
        rule_name = normalise(name or func.__module__.rsplit(".", 1)[-1])
        src, dst = problem_name(source), problem_name(target)
        qualname = f"{func.__module__}.{func.__qualname__}"
        for u, v, key, data in list(GRAPH.edges(keys=True, data=True)):
            if key != rule_name:
                continue
            old = data["rule"].apply
            if f"{old.__module__}.{old.__qualname__}" != qualname:
                raise ValueError(
                    f"reduction {rule_name!r} is registered twice ({qualname} and "
                    f"{old.__module__}.{old.__qualname__}); give one of them another name"
                )
            GRAPH.remove_edge(u, v, key=key)
        rule = Rule(
            name=rule_name,
            source=src,
            target=dst,
            apply=func,
            reference=reference,
            formulas=dict(formulas or {}),
            oracle_calls=oracle_calls,
            default=default,
            doc=func.__doc__ or "",
        )
        GRAPH.add_edge(src, dst, key=rule_name, rule=rule)

        @functools.wraps(func)
        def apply(instance: Any, **options: Any) -> Reduced:
            return rule(instance, **options)

        apply.rule = rule  # type: ignore[attr-defined]
        return apply

    return register


def all_rules() -> list[Rule]:
    """Every registered rule, in registration order."""
    _load_rules()
    return [data["rule"] for _, _, data in GRAPH.edges(data=True)]


def get_rule(name: str) -> Rule:
    """The rule called ``name`` (normalised)."""
    _load_rules()
    key = normalise(name)
    for _, _, k, data in GRAPH.edges(keys=True, data=True):
        if k == key:
            return data["rule"]
    raise NoReductionPath(f"no rule named {name!r}; known rules: {', '.join(r.name for r in all_rules())}")


def _load_rules() -> None:
    import reductions.rules  # noqa: F401  (registers every rule on import)


def problem_of(instance: Any) -> str:
    """The registry node an instance belongs to (``"ksat"``, ``"ov"``, ``"gradient"``, ...).

    An :class:`~attention.AttentionInstance` is a ``gradient`` instance unless its ``meta``
    says ``"problem": "attention"``; a :class:`~reductions.problems.bhcp.BHCP` with ``(t, eps)``
    is a ``gapann`` instance unless its ``meta`` says ``"problem": "bhcp"``; other types name
    their node in a ``problem`` attribute.
    """
    from pysat.formula import CNF

    from attention.instance import AttentionInstance
    from reductions.problems.bhcp import BHCP
    from reductions.problems.ov import OV

    if isinstance(instance, CNF):
        return "ksat"
    if isinstance(instance, OV):
        return "ov"
    if isinstance(instance, AttentionInstance):
        return problem_name(instance.meta.get("problem", "gradient"))
    if isinstance(instance, BHCP):
        if instance.t is None:
            raise InvalidInstance(
                "a BHCP instance without a threshold t is an optimisation instance; the registry's "
                "bhcp and gapann nodes ask 'is some pair at distance <= t?': give t and eps"
            )
        return problem_name(instance.meta.get("problem", "gapann"))
    kind = getattr(instance, "problem", None)
    if isinstance(kind, str):
        return problem_name(kind)
    raise InvalidInstance(f"cannot tell which problem a {type(instance).__name__} instance is")


# ----------------------------------------------------------------------------- paths
def _simple_edge_paths(source: str, target: str) -> list[list[Rule]]:
    _load_rules()
    if source not in GRAPH or target not in GRAPH:
        return []
    if source == target:
        return [[]]
    return [
        [GRAPH.edges[u, v, k]["rule"] for u, v, k in path]
        for path in nx.all_simple_edge_paths(GRAPH, source, target)
    ]


def reachable(source: str) -> list[str]:
    """The problems reachable from ``source`` by registered rules (sorted)."""
    _load_rules()
    src = problem_name(source)
    if src not in GRAPH:
        return []
    return sorted(nx.descendants(GRAPH, src))


def all_paths(source: str, target: str) -> list[list[Rule]]:
    """Every simple chain of rules from ``source`` to ``target``, preferred first."""
    order = {rule.name: i for i, rule in enumerate(all_rules())}
    paths = _simple_edge_paths(problem_name(source), problem_name(target))
    return sorted(paths, key=lambda p: _path_cost(p, order))


def _path_cost(path: Sequence[Rule], order: dict[str, int]) -> tuple:
    return (len(path), sum(not r.default for r in path), [order[r.name] for r in path])


def find_path(source: str, target: str, via: Iterable[str] | str | None = None) -> list[Rule]:
    """The preferred chain of rules from ``source`` to ``target``.

    Preferred = fewest rules, then fewest non-``default`` rules, then registration order.
    ``via`` lists problems or rule names the chain must pass through, in that order (a
    comma-separated string is accepted).

    Raises
    ------
    NoReductionPath
        naming the problems reachable from ``source``.
    """
    src, dst = problem_name(source), problem_name(target)
    stops = _split_names(via)
    for path in all_paths(src, dst):
        if _passes_through(path, stops):
            return path
    where = f" via {', '.join(stops)}" if stops else ""
    raise NoReductionPath(
        f"no chain of reductions from {src} to {dst}{where}; from {src} one can reach: "
        f"{', '.join(reachable(src)) or 'nothing'}"
    )


def _split_names(names: Iterable[str] | str | None) -> list[str]:
    if names is None:
        return []
    if isinstance(names, str):
        names = names.split(",")
    return [n.strip() for n in names if n.strip()]


def _passes_through(path: Sequence[Rule], stops: Sequence[str]) -> bool:
    """Do the path's rules/nodes contain ``stops`` as a subsequence?"""
    items: list[tuple[str, str]] = []
    for rule in path:
        items += [("node", rule.source), ("rule", rule.name)]
    if path:
        items.append(("node", path[-1].target))
    position = 0
    for stop in stops:
        wanted = _stop_key(stop)
        while position < len(items) and items[position] != wanted:
            position += 1
        if position == len(items):
            return False
        position += 1
    return True


def _stop_key(stop: str) -> tuple[str, str]:
    try:
        return ("node", problem_name(stop))
    except NoReductionPath:
        return ("rule", get_rule(stop).name)


def resolve_path(path: Iterable[str] | str | None, source: str, target: str | None) -> list[Rule]:
    """Turn a user's ``path`` into rules from ``source`` (to ``target`` if given).

    ``path`` is ``None`` (the preferred path to ``target``), a list (or comma-separated
    string) of rule names that chain from ``source`` (if the first one starts elsewhere, the
    preferred path through them, in order), or of problems/rules to pass through (as
    ``via`` of :func:`find_path`).
    """
    names = _split_names(path)
    src = problem_name(source)
    if not names:
        if target is None:
            raise NoReductionPath("give a target problem (--to) or a path (--path)")
        return find_path(src, target)
    if all(_is_rule_name(n) for n in names):
        rules = [get_rule(n) for n in names]
        if rules[0].source == src:
            _check_chain(rules, src, target)
            return rules
        return find_path(src, target if target is not None else rules[-1].target, via=names)
    dst = target if target is not None else _last_problem(names)
    return find_path(src, dst, via=names)


def _is_rule_name(name: str) -> bool:
    _load_rules()
    return any(k == normalise(name) for _, _, k in GRAPH.edges(keys=True))


def _last_problem(names: Sequence[str]) -> str:
    last = names[-1]
    try:
        return problem_name(last)
    except NoReductionPath:
        return get_rule(last).target


def _check_chain(rules: Sequence[Rule], source: str, target: str | None) -> None:
    at = source
    for rule in rules:
        if rule.source != at:
            raise NoReductionPath(
                f"rule {rule.name} reduces {rule.source} -> {rule.target}, but the chain is at {at}"
            )
        at = rule.target
    if target is not None and at != problem_name(target):
        raise NoReductionPath(f"the path ends at {at}, not at {problem_name(target)}")


# ----------------------------------------------------------------------------- composition
@dataclass(eq=False)
class ComposedReduced(Reduced):
    """A chain of :class:`Reduced` steps acting as one reduction.

    ``steps[k]`` is the reduction made by ``rules[k]`` on the instance at node ``k``;
    ``lift(solver)`` takes a solver of the last problem and returns the first problem's
    answer, re-applying a rule to any derived instance an oracle rule asks about.
    ``stats`` holds ``oracle_calls`` (calls to the last solver), ``seconds_reduce``,
    ``seconds_oracle`` and ``seconds_decode``; ``steps[k].stats`` the per-step details.
    """

    rules: list[Rule] = field(default_factory=list)
    steps: list[Reduced] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    extra_steps: list[Reduced] = field(default_factory=list)

    def problems(self) -> list[str]:
        """The nodes of the chain, first to last."""
        return [self.rules[0].source] + [r.target for r in self.rules]


@dataclass(frozen=True, eq=False)
class ComposedRule:
    """A chain of rules, applied as one (see :func:`compose`)."""

    rules: tuple[Rule, ...]

    @property
    def name(self) -> str:
        return " -> ".join(r.name for r in self.rules)

    @property
    def source(self) -> str:
        return self.rules[0].source

    @property
    def target(self) -> str:
        return self.rules[-1].target

    def __call__(
        self, instance: Any, *, on_step: Callable[[int, Rule], None] | None = None, **options: Any
    ) -> ComposedReduced:
        """Apply the rules in order; ``on_step(k, rule)`` (if given) is called before rule ``k`` runs."""
        from reductions.guards import check_chain

        per_rule = _split_options(self.rules, options)
        check_chain(self.rules, instance)  # the whole chain's memory, before its first step runs
        steps: list[Reduced] = []
        current = instance
        for k, (rule, opts) in enumerate(zip(self.rules, per_rule)):
            if on_step is not None:
                on_step(k, rule)
            start = time.perf_counter()
            red = rule(current, **opts)
            red.stats["seconds_reduce"] = time.perf_counter() - start
            steps.append(red)
            current = red.target
        composed = ComposedReduced(
            source=instance,
            target=current,
            lift=lambda solver: None,
            params=dict(steps[-1].params),
            rule=self.name,
            rules=list(self.rules),
            steps=steps,
            options=dict(options),
        )
        composed.stats["seconds_reduce"] = sum(s.stats["seconds_reduce"] for s in steps)
        composed.lift = _make_lift(composed, per_rule)
        return composed

    def formulas(self) -> dict[str, "sympy.Expr"]:
        """The last problem's parameters as sympy expressions in the first one's.

        A parameter is left out when one of the rules does not state a formula for a
        parameter it depends on.
        """
        return compose_formulas(self.rules)[-1]

    def oracle_calls(self) -> "sympy.Expr":
        """Calls to the last problem's solver per call of the composed lift (product of the steps')."""
        import sympy

        known = compose_formulas(self.rules)
        total = sympy.Integer(1)
        for rule, before in zip(self.rules, known):
            total *= _substitute(rule.calls_expression, _as_symbols(rule.source, before))
        return total


def compose(rules: Sequence[Rule | str]) -> ComposedRule:
    """Chain ``rules`` (Rule objects or names) into one reduction.

    Raises
    ------
    NoReductionPath
        if a rule's source is not the previous rule's target, or ``rules`` is empty.
    """
    resolved = tuple(r if isinstance(r, Rule) else get_rule(r) for r in rules)
    if not resolved:
        raise NoReductionPath("compose() needs at least one rule")
    _check_chain(resolved, resolved[0].source, None)
    return ComposedRule(resolved)


def _split_options(rules: Sequence[Rule], options: dict[str, Any]) -> list[dict[str, Any]]:
    """Give each option to every rule that accepts it; refuse options no rule accepts."""
    unused = set(options)
    per_rule = []
    for rule in rules:
        accepted = {k: v for k, v in options.items() if k in rule.option_names}
        unused -= set(accepted)
        per_rule.append(accepted)
    if unused:
        known = sorted({o for r in rules for o in r.option_names})
        raise InvalidInstance(
            f"option(s) {', '.join(sorted(unused))} are not accepted by any rule of the path "
            f"{' -> '.join(r.name for r in rules)}; accepted: {', '.join(known) or 'none'}"
        )
    return per_rule


def _make_lift(composed: ComposedReduced, per_rule: list[dict[str, Any]]) -> Callable[[Solver], Any]:
    rules, steps = composed.rules, composed.steps

    def lift(solver: Solver) -> Any:
        timing = {"oracle": 0.0, "calls": 0}

        def final(instance: Any) -> Any:
            start = time.perf_counter()
            try:
                return solver(instance)
            finally:
                timing["oracle"] += time.perf_counter() - start
                timing["calls"] += 1

        def solve_at(k: int, instance: Any) -> Any:
            """Answer for the instance at node k (k = len(rules): ask ``solver``)."""
            if k == len(rules):
                return final(instance)
            red = steps[k]
            if instance is not red.source:  # an oracle rule asked about a derived instance
                red = rules[k](instance, **per_rule[k])
                composed.extra_steps.append(red)
            return red.lift(lambda inst: solve_at(k + 1, inst))

        start = time.perf_counter()
        answer = solve_at(0, composed.source)
        total = time.perf_counter() - start
        composed.stats["oracle_calls"] = composed.stats.get("oracle_calls", 0) + timing["calls"]
        composed.stats["seconds_oracle"] = composed.stats.get("seconds_oracle", 0.0) + timing["oracle"]
        composed.stats["seconds_decode"] = (
            composed.stats.get("seconds_decode", 0.0) + total - timing["oracle"]
        )
        return answer

    return lift


def reduce(
    instance: Any,
    to: str | None = None,
    path: Iterable[str] | str | None = None,
    *,
    on_step: Callable[[int, Rule], None] | None = None,
    **options: Any,
) -> ComposedReduced:
    """Reduce ``instance`` to the problem ``to`` along the preferred (or the given) path.

    ``options`` go to the rules that accept them (e.g. ``mu=`` of the probe decoder); an
    option no rule of the path accepts is refused.  The result's ``lift(solver)`` maps an
    answer of the last problem back to ``instance`` (witness included).  ``on_step(k, rule)``
    is called before the ``k``-th rule of the path runs (``finegrain reduce`` draws its
    progress bar with it).

    Examples
    --------
    >>> from pysat.formula import CNF
    >>> from reductions.problems.ov import is_orthogonal_pair
    >>> red = reduce(CNF(from_clauses=[[1, 2], [-1], [-2, 3]]), to="ov")
    >>> red.target.n_U, red.target.n_V, red.target.m
    (4, 2, 3)
    >>> brute = lambda ov: next(((i, j) for i in range(ov.n_U) for j in range(ov.n_V)
    ...                          if is_orthogonal_pair(ov, (i, j))), None)
    >>> red.lift(brute)
    [-1, 2, 3]
    """
    source = problem_of(instance)
    rules = resolve_path(path, source, to)
    if not rules:
        raise NoReductionPath(f"the instance already is a {source} instance; nothing to reduce")
    return compose(rules)(instance, on_step=on_step, **options)


# ----------------------------------------------------------------------------- formulas
def _substitute(expr: "sympy.Expr", values: dict[Any, Any]) -> "sympy.Expr":
    return _tidy(expr.xreplace(values))


def compose_formulas(rules: Sequence[Rule]) -> list[dict[str, "sympy.Expr"]]:
    """For each node of the chain, its parameters (by name) as expressions in the first node's.

    Entry 0 is the first node (its own symbols), entry ``k + 1`` the target of
    ``rules[k]``.  A parameter is left out when its rule states no formula for it or its
    formula needs a parameter the previous entry lacks.
    """
    first = problem_symbols(rules[0].source)
    out: list[dict[str, Any]] = [dict(first)]
    for rule in rules:
        known = _as_symbols(rule.source, out[-1])
        out.append(
            {
                name: _substitute(expr, known)
                for name, expr in rule.expressions.items()
                if expr.free_symbols <= set(known)
            }
        )
    return out


def _as_symbols(problem: str, by_name: dict[str, Any]) -> dict[Any, Any]:
    symbols = problem_symbols(problem)
    return {symbols[name]: expr for name, expr in by_name.items() if name in symbols}


def _tidy(expr: "sympy.Expr") -> "sympy.Expr":
    """Rewrite ``log(b**x)`` as ``x log(b)`` (``b > 0``, ``x`` real) and drop ``Max``/``Min``
    arguments dominated because ``ceiling(x) >= floor(x)``.

    sympy cannot decide ``2**ceiling(N/2) >= 2**floor(N/2)``; an argument that turns into
    another one when its ``floor`` calls become ``ceiling`` is dominated by it, provided it
    is nondecreasing in those calls (checked: it is a ``floor`` call, or a power with a
    base > 1 and such an exponent, or a positive multiple of one).
    """
    import sympy

    def monotone(e: Any) -> bool:
        if isinstance(e, sympy.floor):
            return True
        if isinstance(e, sympy.Pow):
            return bool(e.base.is_number and e.base > 1 and monotone(e.exp))
        if isinstance(e, sympy.Mul):
            coeff, rest = e.as_coeff_Mul()
            return bool(coeff.is_positive and monotone(rest))
        if isinstance(e, sympy.Add):
            return all(monotone(a) or not a.has(sympy.floor) for a in e.args)
        return False

    def shrink(cls: Any, args: tuple, larger: bool) -> Any:
        keep = list(args)
        for a, b in itertools.permutations(args, 2):
            up = a.replace(sympy.floor, sympy.ceiling)
            if a in keep and b in keep and up == b and monotone(a):
                keep.remove(a if larger else b)
        return cls(*keep)

    expr = expr.replace(
        lambda e: isinstance(e, (sympy.Max, sympy.Min)),
        lambda e: shrink(type(e), e.args, isinstance(e, sympy.Max)),
    )
    return expr.replace(
        lambda e: isinstance(e, sympy.log) and len(e.args) == 1 and isinstance(e.args[0], sympy.Pow)
        and bool(e.args[0].base.is_positive) and bool(e.args[0].exp.is_real),
        lambda e: e.args[0].exp * sympy.log(e.args[0].base),
    )


def evaluate(expr: "sympy.Expr", values: dict[str, Any]) -> float:
    """``expr`` at the parameter values ``values`` (by name), as a float."""
    subs = {s: values[str(s)] for s in expr.free_symbols if str(s) in values}
    missing = sorted(str(s) for s in expr.free_symbols if str(s) not in values)
    if missing:
        raise InvalidInstance(f"formula {expr} needs {', '.join(missing)}, which were not measured")
    import sympy

    return float(sympy.sympify(sympy.sympify(expr).xreplace(subs)).evalf(30))


@dataclass(frozen=True)
class FormulaCheck:
    """One formula evaluated at measured source parameters, against the measured value."""

    rule: str
    name: str
    formula: str
    predicted: float
    measured: float
    ok: bool

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def check_formulas(red: Reduced, source_params: dict[str, Any] | None = None) -> list[FormulaCheck]:
    """Every formula of ``red``'s rule (or every step and the composition) vs measured values.

    For a :class:`ComposedReduced` the result holds each step's checks (formulas in the step's
    source parameters, evaluated at the values measured on the step's source) followed by
    the composed formulas (in the first problem's parameters) against the last target.
    """
    if isinstance(red, ComposedReduced):
        checks: list[FormulaCheck] = []
        for rule, step in zip(red.rules, red.steps):
            checks += _check_rule(rule, step, _source_params(rule.source, step))
        first = _source_params(red.rules[0].source, red.steps[0])
        composed = ComposedRule(tuple(red.rules))
        for name, expr in composed.formulas().items():
            checks.append(_one_check(composed.name, name, expr, first, red.params))
        return checks
    rule = get_rule(red.rule)
    return _check_rule(rule, red, source_params or _source_params(rule.source, red))


def _source_params(problem: str, red: Reduced) -> dict[str, Any]:
    return measure(problem, red.source)


def _check_rule(rule: Rule, red: Reduced, source_params: dict[str, Any]) -> list[FormulaCheck]:
    return [
        _one_check(rule.name, name, expr, source_params, red.params)
        for name, expr in rule.expressions.items()
    ]


def _one_check(rule: str, name: str, expr: Any, source: dict[str, Any], measured: dict[str, Any]) -> FormulaCheck:
    predicted = evaluate(expr, source)
    if name not in measured:
        raise InvalidInstance(f"rule {rule} states a formula for {name} but does not report its measured value")
    value = float(measured[name])
    return FormulaCheck(rule, name, str(expr), predicted, value, _close(predicted, value))


# ----------------------------------------------------------------------------- SETH
@dataclass(frozen=True)
class SethArithmetic:
    """What an ``O(n^(2-delta) poly(d))`` algorithm for the last problem of a path gives for k-SAT.

    ``time`` is the k-SAT running time (oracle calls x the algorithm's time on the
    reduced instance + the reduction's own time ``n d``) with ``m = alpha N`` clauses;
    ``exponent`` is ``lim_{N -> oo} log2(time) / N`` for ``0 < delta <= 1``; SETH (with
    sparsification, which makes ``m = O(N)``) says it cannot be below 1 for all k.
    """

    path: tuple[str, ...]
    n: Any
    d: Any
    calls: Any
    time: Any
    exponent: Any
    delta: Any
    alpha: Any
    c: Any

    def base(self, delta: float) -> float:
        """The base ``b`` of the k-SAT bound ``b^N`` for a numeric ``delta``."""
        return float(2 ** self.exponent.subs(self.delta, delta))


def seth_arithmetic(path: Sequence[Rule] | None = None) -> SethArithmetic:
    """The SETH arithmetic of a ``ksat -> ... -> gradient`` path (the default one if ``None``).

    Notes
    -----
    With ``n(N, m)`` tokens, head dimension ``d(N, m)`` and ``calls(N, m)`` oracle calls, an
    algorithm for the last problem running in ``n^(2-delta) d^c`` time decides k-SAT in
    ``T = calls * n^(2-delta) d^c + n d``.  For the Williams split ``n = Theta(2^(N/2))`` so
    ``log2 T / N -> 1 - delta/2``, i.e. k-SAT in ``O(2^((1-delta/2) N))`` for every k,
    refuting SETH (AS24 Theorem 1.5; THEORY 1.3 and 4.8).  ``ceiling``/``floor`` are
    bounded by ``x + 1`` and ``x`` so the exponent is an upper bound.
    """
    import sympy

    rules = list(path) if path is not None else find_path("ksat", "gradient")
    if not rules or rules[0].source != "ksat":
        raise NoReductionPath("the SETH arithmetic needs a path that starts at ksat")
    composed = ComposedRule(tuple(rules))
    formulas = composed.formulas()
    for needed in ("n", "d"):
        if needed not in formulas:
            raise NoReductionPath(f"the path {composed.name} does not state a formula for {needed}")
    N, m = symbol("N"), symbol("m")
    delta, alpha, c = sympy.Symbol("delta", positive=True), sympy.Symbol("alpha", positive=True), sympy.Symbol("c", positive=True)
    n, d, calls = formulas["n"], formulas["d"], composed.oracle_calls()
    T = calls * n ** (2 - delta) * d**c + n * d
    m_pos = sympy.Symbol("m", integer=True, positive=True)  # m >= 1: Max(m, 1) = m
    bound = T.subs(m, m_pos).subs(m_pos, alpha * N).replace(sympy.ceiling, lambda x: x + 1).replace(sympy.floor, lambda x: x)
    bound = bound.subs(symbol("k"), 3)
    terms = sympy.Add.make_args(sympy.expand(bound))
    rates = {sympy.simplify(sympy.limit(sympy.expand_log(sympy.log(t, 2), force=True) / N, N, sympy.oo)) for t in terms}
    return SethArithmetic(
        path=tuple(r.name for r in rules),
        n=n,
        d=d,
        calls=calls,
        time=T,
        exponent=_max_for_unit_delta(rates, delta),
        delta=delta,
        alpha=alpha,
        c=c,
    )


def _max_for_unit_delta(rates: set, delta: Any) -> Any:
    """``Max(*rates)`` for ``0 < delta <= 1``, dropping rates dominated on that interval.

    Each rate is affine in delta (checked), so comparing at delta = 0 and 1 decides.
    """
    import sympy

    rates = list(rates)
    for r in rates:
        if sympy.degree(r, delta) > 1:
            raise FinegrainError(f"rate {r} is not affine in delta")
    keep = [
        r
        for r in rates
        if not any(
            o != r and all((o - r).subs(delta, x) >= 0 for x in (0, 1)) for o in rates
        )
    ]
    return sympy.Max(*keep)
