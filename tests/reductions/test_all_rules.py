"""ONE round-trip test over every registered rule and every composed path (the registry is the list).

For each chain: hypothesis instances of its first problem, solved at the last problem (brute
force, or the exact attention oracle), answer lifted back.  The verdict must equal ground
truth, the witness must check on the original instance, and every size formula (per step and
composed) must equal the measured value.  A decoder may refuse (PrecisionError) only if it is
a declared negative control.
"""

from __future__ import annotations

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reductions import registry
from reductions.errors import PrecisionError
from reductions.testing import instances
from reductions.verify import NUMERIC_PROBLEMS, verify

#: Rules that are expected to refuse on small instances (THEORY 4.5: the paper's Riemann sum).
NEGATIVE_CONTROLS = {"ov_to_gradient_riemann"}
#: Chains start where ground truth exists.
STARTS = ("ksat", "ov")


def chains() -> list[tuple[str, ...]]:
    """Every single rule, and every simple path of >= 2 rules from ksat/ov to any node.

    A rule whose source has no ground truth (an attention instance) is tested inside the
    composed paths that reach it from OV.
    """
    rules = registry.all_rules()
    out = [(r.name,) for r in rules if r.source not in NUMERIC_PROBLEMS]
    graph = registry.GRAPH
    for start in STARTS:
        for target in graph.nodes:
            if target == start or not nx.has_path(graph, start, target):
                continue
            for path in registry.all_paths(start, target):
                if len(path) >= 2:
                    out.append(tuple(r.name for r in path))
    return out


def _strategy(source: str, numeric: bool) -> st.SearchStrategy:
    if source == "ksat":
        return instances("ksat", max_vars=7 if numeric else 12, max_clauses=10 if numeric else 20)
    return instances(source, max_n=16 if numeric else 64, max_m=8 if numeric else 16)


def test_every_rule_is_exercised():
    covered = {name for chain in chains() for name in chain}
    assert covered == {r.name for r in registry.all_rules()}


@pytest.mark.parametrize("chain", chains(), ids=lambda c: "+".join(c))
def test_every_rule_and_path_round_trips(chain):
    rules = [registry.get_rule(name) for name in chain]
    numeric = rules[-1].target in NUMERIC_PROBLEMS
    calls = registry.compose(rules).oracle_calls()
    many_calls = not calls.is_number or calls > 4
    examples = 6 if many_calls else (15 if numeric else 40)
    refusable = NEGATIVE_CONTROLS & set(chain)

    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_strategy(rules[0].source, numeric))
    def round_trip(instance):
        try:
            report = verify(instance, path=list(chain), to=None, oracle="exact")
        except PrecisionError:
            assert refusable, f"{chain} refused although it is not a negative control"
            return
        assert report.agree, report.summary()
        assert report.witness_ok is not False, report.summary()
        bad = [c for c in report.formula_checks if not c.ok]
        assert not bad, bad

    round_trip()
