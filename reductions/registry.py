"""The registry of reductions: a networkx multigraph of problems, one edge per rule.

A rule is a function ``instance -> Reduced`` registered with :func:`reduction`.  Nodes are
problem names (``"ksat"``, ``"ov"``, ``"maxip"``, ``"bhcp"``, ``"gapann"``,
``"attention"`` (AAttC), ``"gradient"`` (AAttLGC)); edges are keyed by rule name, so two
routes between the same problems (Construction H and Construction S, say) coexist.

Answers.  Each problem has an answer type: ``ksat`` a model (list of DIMACS literals) or
``None``; ``ov`` an index pair ``(i, j)`` or ``None``; ``gradient`` a
:class:`attention.GradientResult` (the oracle's output); see each rule's docstring.

Decoding.  ``Reduced.lift(solver)`` turns a solver of the target problem (a callable
``target_instance -> answer``) into the source instance's answer.  A many-one (Karp) rule
calls the solver once on ``Reduced.target`` and maps the answer back; an oracle (Turing)
rule may call it on several instances derived from the target (other lambda, other E,
other probe columns) and records what it did in ``Reduced.stats`` (oracle calls, margin,
the oracle's stated error, the statistic read).  Decoders are deterministic and raise
:class:`~reductions.errors.PrecisionError` instead of guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

import networkx as nx

from reductions.errors import InvalidInstance, NoReductionPath

Solver = Callable[[Any], Any]


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
        red = self.apply(instance, **options)
        red.rule = self.name
        return red


GRAPH = nx.MultiDiGraph()


def normalise(name: str) -> str:
    """Canonical rule/problem name: lower case, ``-``/spaces to ``_``."""
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
    ``default`` marks the rule preferred when several join the same problems.
    """

    def register(func: Callable[..., Reduced]) -> Callable[..., Reduced]:
        rule_name = normalise(name or func.__module__.rsplit(".", 1)[-1])
        src, dst = normalise(source), normalise(target)
        for _, _, key in GRAPH.edges(keys=True):
            if key == rule_name:
                raise ValueError(f"reduction {rule_name!r} is registered twice")
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
        func.rule = rule  # type: ignore[attr-defined]
        return func

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
    """The registry node an instance belongs to (``"ksat"``, ``"ov"``, ``"gradient"``, ...)."""
    from pysat.formula import CNF

    from attention.instance import AttentionInstance
    from reductions.problems.ov import OV

    if isinstance(instance, CNF):
        return "ksat"
    if isinstance(instance, OV):
        return "ov"
    if isinstance(instance, AttentionInstance):
        return "gradient"
    kind = getattr(instance, "problem", None)
    if isinstance(kind, str):
        return normalise(kind)
    raise InvalidInstance(f"cannot tell which problem a {type(instance).__name__} instance is")
