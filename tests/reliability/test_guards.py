"""Memory guards: instances that would not fit are refused up front, with the estimate and a way out.

The estimates are checked against the memory really allocated (tracemalloc's peak of live
numpy and Python allocations) on small sizes, the refusals at the issue's example (k-SAT ->
OV with N = 60) and at a chain whose attention step would need ~100 GB (N = 40), in the
library and on the CLI; the k-SAT -> OV rule's own limit (``MAX_SIDE_BITS``) and the guard
agree.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

import attention.memory
import reductions.guards as guards
from attention.errors import InvalidInstance, ResourceError
from reductions.cli import main
from reductions.generators import families
from reductions.generators import ksat as ksat_gen
from reductions.generators import ov as ov_gen
from reductions.generators.ksat import planted_ksat, random_ksat
from reductions.generators.ov import planted_ov, random_ov, random_ov_mu
from reductions.problems.cnf import make_cnf
from reductions.registry import find_path, reduce
from reductions.rules import ksat_to_ov

GB = 10**9


def formula(N: int, m: int) -> object:
    """A formula with N variables (header count) and m clauses, built without any big allocation."""
    return make_cnf([[1, -2, 3]] * m, nv=N)


def test_available_memory_reads_meminfo(tmp_path):
    fake = tmp_path / "meminfo"
    fake.write_text("MemTotal:       24684092 kB\nMemFree:  100 kB\nMemAvailable:   1000 kB\n")
    assert attention.memory._meminfo_available(fake) == 1000 * 1024
    assert attention.memory._meminfo_available(tmp_path / "missing") is None
    assert 0 < guards.available_memory() <= 2**62


def test_require_memory_names_estimate_availability_and_alternative():
    guards.require_memory(10**6, "a small thing", "n/a", available=10**9)
    with pytest.raises(ResourceError) as info:
        guards.require_memory(5 * GB, "a big thing", "do something smaller", available=2 * GB)
    message = str(info.value)
    assert "a big thing needs about 5 GB" in message and "1.8 GB are available" in message
    assert message.endswith("do something smaller")


def _peak_allocation(run) -> tuple[object, int]:
    tracemalloc.start()
    try:
        result = run()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_issue_example_ksat_to_ov_with_60_variables_is_refused_up_front():
    cnf = formula(60, 255)
    for run in (lambda: reduce(cnf, to="ov"), lambda: ksat_to_ov.reduce(cnf), lambda: reduce(cnf, to="gradient")):
        with pytest.raises(ResourceError) as info:
            _peak_allocation(run)
        message = str(info.value)
        assert "N = 60" in message and "GB" in message and "solve_cnf_distributed" in message
    tracemalloc.start()
    with pytest.raises(ResourceError):
        reduce(cnf, to="ov")
    assert tracemalloc.get_traced_memory()[1] < 20 * 2**20  # nothing of the 2^30-vector sides was allocated
    tracemalloc.stop()


def test_the_guard_and_the_rules_own_limit_agree():
    """Above 2^MAX_SIDE_BITS vectors per side both refuse; the guard also names the alternative."""
    N = 2 * ksat_to_ov.MAX_SIDE_BITS + 1          # ceil(N/2) = MAX_SIDE_BITS + 1
    cnf = formula(N, 1)
    with pytest.raises(ResourceError, match="limit of 2\\^26 vectors per side.*solve_cnf_distributed"):
        guards.chain_footprints(find_path("ksat", "ov"), cnf)
    with pytest.raises(ResourceError, match="vectors per side"):
        ksat_to_ov.reduce.rule.apply(cnf)           # the rule alone, without the guard
    below = formula(2 * ksat_to_ov.MAX_SIDE_BITS, 1)
    assert guards.chain_footprints(find_path("ksat", "ov"), below)  # within the limit: an estimate


def test_the_refusal_names_per_block_generation_and_it_is_documented_and_offered():
    """The k-SAT -> OV refusal names the route that needs no memory for the vectors; docs/distributed.md
    documents it and ``finegrain solve`` offers ``--scheduler``."""
    for run in (lambda cnf: reduce(cnf, to="ov"), ksat_to_ov.reduce.rule.apply):
        with pytest.raises(ResourceError) as info:
            run(formula(60, 255))
        message = str(info.value)
        assert "finegrain solve FILE --scheduler local|ADDRESS" in message and "docs/distributed.md" in message
        assert "2^30 x 2^30 pairs" in message and "SAT solver" in message
    docs = (Path(__file__).resolve().parents[2] / "docs" / "distributed.md").read_text()
    import re

    assert "solve_cnf_distributed" in docs and re.search(r"\$ finegrain solve \S+\.cnf --scheduler local\n", docs)
    assert "--scheduler" in _help(["solve", "--help"])


def _help(argv: list[str]) -> str:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main(argv)
    return out.getvalue()


def test_per_block_generation_decides_what_the_guard_refuses(monkeypatch):
    """At N = 26 with half the memory the OV sides need, the guard refuses k-SAT -> OV, and
    solve_cnf_distributed (in this process, 256-row blocks) decides the same formula in less
    than a tenth of the guard's estimate, agreeing with a SAT solver."""
    from reductions.problems.cnf import is_satisfying
    from solvers.ov_distributed import SatOV, solve_cnf_distributed
    from solvers.sat import solve_sat

    solve_cnf_distributed(random_ksat(12, 50, 3, seed=0), block=256)  # warm-up: imports, compiled kernels
    for seed in (1, 3):
        cnf = random_ksat(26, 120, 3, seed=seed)
        needed = guards.chain_peak([guards.ksat_to_ov_footprint(26, 120)])
        monkeypatch.setattr(attention.memory, "available_memory", lambda: int(needed / 2))
        with pytest.raises(ResourceError, match="--scheduler"):
            reduce(cnf, to="ov")
        model, peak = _peak_allocation(lambda: solve_cnf_distributed(cnf, block=256))
        assert peak < needed / 10
        assert (model is not None) == solve_sat(cnf).satisfiable
        assert model is None or is_satisfying(cnf, model)
    SatOV(n_vars=guards.SATOV_MAX_VARS, clauses=[[1]])  # the limit the message states is SatOV's
    with pytest.raises(InvalidInstance):
        SatOV(n_vars=guards.SATOV_MAX_VARS + 1, clauses=[[1]])


def test_below_the_rules_limit_the_available_memory_decides(monkeypatch):
    cnf = random_ksat(20, 85, 3, seed=1)
    needed = guards.chain_peak([guards.ksat_to_ov_footprint(20, 85)])
    monkeypatch.setattr(attention.memory, "available_memory", lambda: int(needed / guards.HEADROOM) - 1)
    with pytest.raises(ResourceError, match=r"k-SAT -> OV with N = 20 variables and m = 85 clauses"):
        ksat_to_ov.reduce(cnf)
    monkeypatch.setattr(attention.memory, "available_memory", lambda: int(needed / guards.HEADROOM) + 2)
    assert ksat_to_ov.reduce(cnf).target.n_U == 2**10


def test_a_chain_whose_attention_step_does_not_fit_is_refused_before_its_first_step():
    cnf = formula(40, 170)
    footprints = guards.chain_footprints(find_path("ksat", "gradient"), cnf)
    assert [f.resident < f.transient + f.resident for f in footprints] == [True, True]
    assert guards.chain_peak(footprints) > 50 * GB
    with pytest.raises(ResourceError, match="largest step: an attention instance with n = 2097152"):
        _, peak = _peak_allocation(lambda: reduce(cnf, to="gradient"))
    tracemalloc.start()
    with pytest.raises(ResourceError):
        reduce(cnf, to="gradient")
    assert tracemalloc.get_traced_memory()[1] < 20 * 2**20  # the 2^20-vector OV step was not built either
    tracemalloc.stop()


def test_the_cli_refuses_with_one_line(tmp_path, capsys):
    path = tmp_path / "big.cnf"
    path.write_text("p cnf 40 170\n" + "1 -2 3 0\n" * 170)
    for argv in (["reduce", str(path), "--to", "gradient", "-o", str(tmp_path / "out.npz")],
                 ["verify", str(path)]):
        assert main(argv) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and "GB" in err[0] and "available" in err[0]
    assert not (tmp_path / "out.npz").exists()


def test_bad_input_still_gets_the_rules_own_error():
    with pytest.raises(InvalidInstance, match="pysat.formula.CNF"):
        ksat_to_ov.reduce("not a formula")


@pytest.mark.parametrize("N, m", [(16, 68), (22, 94)])
def test_the_ksat_to_ov_estimate_covers_what_is_allocated(N, m):
    cnf = random_ksat(N, m, 3, seed=2)

    def build():
        ov = ksat_to_ov.reduce(cnf).target
        return ov.U_packed, ov.V_packed

    _, peak = _peak_allocation(build)
    footprint = guards.ksat_to_ov_footprint(N, m)
    assert guards.chain_footprints(find_path("ksat", "ov"), cnf) == [footprint]
    assert peak <= guards.chain_peak([footprint]) <= 4 * peak + guards.OVERHEAD


def test_the_route_estimate_covers_what_is_allocated():
    """k-SAT -> OV -> gradient (the default route) reduced and decoded with the exact oracle."""
    import attention

    cnf = random_ksat(12, 51, 3, seed=3)
    rules = find_path("ksat", "gradient")

    def route(formula=cnf):
        red = reduce(formula, to="gradient")
        return red.lift(lambda inst: attention.gradient(inst))

    route(random_ksat(6, 25, 3, seed=3))  # warm-up: imports, compiled kernels, caches
    from attention import kernels

    kernels.warm_up()
    _, peak = _peak_allocation(route)
    estimate = guards.chain_peak(guards.chain_footprints(rules, cnf))
    assert peak <= estimate <= 10 * peak + guards.OVERHEAD


def test_node_footprints_for_each_problem():
    assert guards.node_footprint("ov", {"n_U": 4, "n_V": 4, "m": 3}).resident == 8 * 3 + 8 * 8
    fp = guards.node_footprint("gradient", {"n": 8, "n_k": 8, "d": 10})
    assert fp.resident == guards.ATTENTION_RESIDENT * 8 * 8 * 10
    assert guards.node_footprint("maxip", {"n_U": 4}) is None
    assert guards.node_footprint("gradient", {"n": 8}) is None
    assert guards.chain_peak([fp, fp]) == 2 * fp.resident + fp.transient + guards.OVERHEAD


@pytest.mark.parametrize("command", [["solve"], ["solve", "--via", "gradient"], ["verify"]])
def test_a_header_declaring_two_billion_variables_is_refused_not_run(command, tmp_path, capsys):
    """The SAT model lists every declared variable (~140 GB here) and the OV sides have 2^(N/2)
    vectors: both are refused with the estimate, in logarithms where it has a billion bits."""
    path = tmp_path / "huge_header.cnf"
    path.write_text("p cnf 2147483647 1\n1 -2 0\n")
    assert main([command[0], str(path), *command[1:]]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert ("lower the header's variable count (p cnf 2 ...)" in err[0]) or ("2^1073741825 bytes" in err[0])


def test_the_model_guard_allows_what_fits():
    from solvers.sat import solve_sat

    result = solve_sat(make_cnf([[1, -2]], nv=10_000))
    assert result.satisfiable and len(result.model) == 10_000
    with pytest.raises(ResourceError, match="nv = 2147483647"):
        solve_sat(make_cnf([[1, -2]], nv=2**31 - 1))


# ----------------------------------------------------------------------------- generators
GENERATE_TOO_BIG = [
    (["generate", "ov", "--n", "1000000000", "--m", "64"], "random_ov with n_U = 1000000000", "n_U + n_V <= "),
    (["generate", "ov", "--n", "1000000000", "--m", "64", "--planted", "3"], "planted_ov with n_U = 1000000000", "n_U + n_V <= "),
    (["generate", "ksat", "--vars", "1000000000", "--clauses", "100000000000"], "random_ksat with 1000000000 variables", "n_clauses <= "),
    (["generate", "ksat", "--vars", "1000000000", "--clauses", "10", "--planted"], "planted_ksat with 1000000000 variables", "n_vars <= "),
    (["generate", "ksat", "--vars", "1000000000", "--ratio", "4.26"], "random_ksat with 1000000000 variables and 4260000000 clauses", "n_clauses <= "),
    (["generate", "php", "--holes", "100000"], "pigeonhole with holes = 100000", "holes <= "),
    (["generate", "gt", "--size", "100000"], "ordering_principle with size = 100000", "size <= "),
    (["generate", "par", "--size", "100000"], "parity_principle with size = 100000", "size <= "),
    (["generate", "cb", "--size", "10000000"], "mutilated_chessboard with size = 10000000", "size <= "),
    (["generate", "coloring", "--graph", "complete:10000000", "--colors", "3"], "graph 'complete:10000000'", "n <= "),
    (["generate", "coloring", "--graph", "hypercube:1000000000", "--colors", "3"], "graph 'hypercube:1000000000'", "d <= "),
    (["generate", "coloring", "--graph", "cycle:50", "--colors", "100000000"], "graph_coloring of a graph with 50 nodes", "k <= "),
]


@pytest.mark.parametrize("argv, what, fits", GENERATE_TOO_BIG, ids=[" ".join(a[1:4]) for a, _, _ in GENERATE_TOO_BIG])
def test_generators_refuse_impossible_sizes_up_front_with_one_line(argv, what, fits, tmp_path, capsys):
    """The estimate, what is available and the largest size that fits, in one line (exit 2), before
    anything is drawn: no traceback, no output file, a few MB allocated at most."""
    out = tmp_path / "out"
    tracemalloc.start()
    try:
        status = main([*argv, "--seed", "1", "-o", str(out)] if argv[1] in ("ov", "ksat", "coloring") else [*argv, "-o", str(out)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    err = capsys.readouterr().err.splitlines()
    assert status == 2 and len(err) == 1, err
    assert what in err[0] and " needs about " in err[0] and " GB are available" in err[0] and fits in err[0]
    assert list(tmp_path.iterdir()) == [] and peak < 20 * 2**20


def _fits(message: str, name: str) -> int:
    import re

    return int(re.search(re.escape(name) + r" <= (\d+) fits", message).group(1))


SMALL_MEMORY = 32 * 2**20
GENERATORS = {  # name: (build at a size, the estimate at that size, the size asked for)
    "random_ov": (lambda t: random_ov(t // 2, t - t // 2, 64, seed=1), lambda t: ov_gen.generation_bytes(t // 2, t - t // 2, 64), 10**9, "n_U + n_V"),
    "random_ksat": (lambda c: random_ksat(1000, c, 3, seed=1), lambda c: ksat_gen.generation_bytes(1000, c, 3), 10**9, "n_clauses"),
    "planted_ksat": (lambda n: planted_ksat(n, 10, 3, seed=1), lambda n: ksat_gen.generation_bytes(n, 10, 3, True), 10**9, "n_vars"),
    "pigeonhole": (lambda h: families.pigeonhole(h), lambda h: families._cnf_estimate(families.family_counts("pigeonhole", h)), 10**4, "holes"),
    "ordering_principle": (lambda n: families.ordering_principle(n), lambda n: families._cnf_estimate(families.family_counts("ordering_principle", n)), 10**4, "size"),
    "complete graph": (lambda n: families.named_graph(f"complete:{n}"), lambda n: families.graph_bytes("complete", [n]), 10**6, "n"),
}


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_the_largest_size_the_refusal_names_is_generated(name, monkeypatch):
    """With 32 MiB available: the refusal states the estimate at the size asked for, and the size it
    says fits is generated, within the estimate (tracemalloc's peak), with the same memory."""
    build, estimate, asked, label = GENERATORS[name]
    monkeypatch.setattr(attention.memory, "available_memory", lambda: SMALL_MEMORY)
    with pytest.raises(ResourceError) as info:
        build(asked)
    message = str(info.value)
    assert f"needs about {guards.format_gb(estimate(asked))}" in message
    size = _fits(message, label)
    assert estimate(size) <= guards.HEADROOM * SMALL_MEMORY < estimate(size + 1)
    build(min(size, 64) // 2 + 1)  # warm-up: imports, first-call allocations
    _, peak = _peak_allocation(lambda: build(size))
    assert peak <= estimate(size) + 2**20


ESTIMATED = {  # name: (build, its estimate), at sizes that take well under a second
    "random_ov 2^14 x 64": (lambda: random_ov(2**13, 2**13, 64, seed=2), lambda: ov_gen.generation_bytes(2**13, 2**13, 64)),
    "random_ov_mu 2^12 x 200": (lambda: random_ov_mu(2**12, 2**12, 200, 1.0, seed=2), lambda: ov_gen.generation_bytes(2**12, 2**12, 200)),
    "planted_ov 2^12 x 64 k=200": (lambda: planted_ov(2**11, 2**11, 64, 200, seed=2), lambda: ov_gen.generation_bytes(2**11, 2**11, 64, 200)),
    "random_ksat k=5": (lambda: random_ksat(10**4, 10**5, 5, seed=2), lambda: ksat_gen.generation_bytes(10**4, 10**5, 5)),
    "planted_ksat q-hidden": (lambda: planted_ksat(10**5, 10**5, 3, seed=2, hiding="q-hidden"), lambda: ksat_gen.generation_bytes(10**5, 10**5, 3, True)),
    "pigeonhole 15 holes kval 2": (lambda: families.pigeonhole(15, kval=2), lambda: families._cnf_estimate(families.family_counts("pigeonhole", 15, 2))),
    "parity_principle 20": (lambda: families.parity_principle(20), lambda: families._cnf_estimate(families.family_counts("parity_principle", 20))),
    "mutilated_chessboard 40": (lambda: families.mutilated_chessboard(40, exhaustive=True), lambda: families._cnf_estimate(families.family_counts("mutilated_chessboard", 40))),
    "coloring grid 80x80": (lambda: families.graph_coloring(families.named_graph("grid:80,80"), 4), lambda: families._cnf_estimate(families.coloring_counts(6400, 12640, 4))),
    "hypercube 11": (lambda: families.named_graph("hypercube:11"), lambda: families.graph_bytes("hypercube", [11])),
}


@pytest.mark.parametrize("name", sorted(ESTIMATED))
def test_generator_estimates_cover_what_is_allocated(name):
    build, estimate = ESTIMATED[name]
    build()  # warm-up
    _, peak = _peak_allocation(build)
    assert peak <= estimate() <= 3 * peak + 2**20, (peak, estimate())


def test_blocked_draws_give_the_bits_of_one_draw(monkeypatch):
    """Bernoulli entries drawn a block of rows at a time are those of one draw of the whole matrix."""
    import numpy as np

    whole = np.random.default_rng(5).random((300, 7)) < 0.3
    monkeypatch.setattr(ov_gen, "DRAW_BYTES", 8 * 7 * 16)  # 16 rows per block, 19 blocks
    blocked = ov_gen._bernoulli(np.random.default_rng(5), 300, 7, 0.3)
    assert (blocked == whole).all()
    small = random_ov(100, 90, 7, p=0.3, seed=9)
    monkeypatch.setattr(ov_gen, "DRAW_BYTES", 8 * 2**20)
    assert (random_ov(100, 90, 7, p=0.3, seed=9).U == small.U).all()
