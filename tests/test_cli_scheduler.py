"""``--scheduler`` on ``finegrain grad``, ``solve`` and ``verify``: the same output as one process.

The cluster is a ``LocalCluster`` of 2 worker processes (one thread each) started here and
passed to the CLI by its address, ``--scheduler tcp://...``, as a remote cluster would be.
Each answer is compared with the same command without ``--scheduler`` and checked on the
instance (SAT models on the formula, pairs by the orthogonality checker, gradients against
the naive O(n^2 d) formula within the stated bound).
"""

from __future__ import annotations

import json
from contextlib import contextmanager

import numpy as np
import pytest

from attention import AttentionInstance
from attention import distributed as ad
from attention import oracle
from attention.errors import FinegrainError
from reductions.cli import main
from reductions.commands import grad as grad_command
from reductions.commands import solve as solve_command
from reductions.generators.ksat import random_ksat
from reductions.generators.ov import planted_ov, random_ov
from reductions.problems.cnf import make_cnf, write_dimacs
from reductions.problems.ov import OV, is_orthogonal_pair, read_ov, write_ov
from reductions.verify import oracle_solver, satisfies
from solvers.ov import solve_ov
from solvers.sat import solve_sat

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def address():
    """The address of a 2-process LocalCluster (one thread per worker, no dashboard)."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        scheduler_kwargs={"dashboard_address": ":0"},
    ) as cluster, distributed.Client(cluster) as client:
        client.wait_for_workers(2, timeout=60)
        yield cluster.scheduler_address


def run(capsys, *argv):
    """``finegrain ARGV``: (exit status, stdout, stderr)."""
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def run_json(capsys, *argv):
    status, out, err = run(capsys, *argv, "--json")
    assert status == 0, err
    return json.loads(out)


@contextmanager
def recorded_bar(module, monkeypatch):
    """Replace ``module.progress`` by a bar that records ``n`` at each refresh and each update."""
    seen = []

    class Bar:
        def __init__(self, **kwargs):
            self.n, self.total = 0, kwargs.get("total")

        def update(self, k):
            self.n += k
            seen.append(self.n)

        def refresh(self):
            seen.append(self.n)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(module, "progress", lambda **kwargs: Bar(**kwargs))
    yield seen


# --------------------------------------------------------------------------- grad
# The fused kernel in 32 blocks of 64 rows, the numpy kernel in 16 blocks of 1024: enough that the
# library's default tasks (n / 8 rows on 2 workers) would hold several blocks, which changes bits.
@pytest.mark.parametrize("sizes", [dict(n=2048, n_k=100, d=70), dict(n=16384, n_k=1024, d=2)], ids=["fused", "numpy"])
def test_grad_json_is_the_same_bits_as_in_process(address, tmp_path, capsys, monkeypatch, sizes):
    inst = AttentionInstance.random(**sizes, B=3.0, seed=5)
    path = tmp_path / "inst.npz"
    inst.save(path)
    here = run_json(capsys, "grad", path)
    with recorded_bar(grad_command, monkeypatch) as seen:
        there = run_json(capsys, "grad", path, "--scheduler", address)
    assert there == here  # every float of the JSON, bit for bit
    reference, _ = oracle.naive_gradient(inst)  # independent formula, within the stated bound
    assert np.abs(np.array(there["gradient"]) - reference).max() <= there["error_bound"] * 1.01 + 1e-300
    blocks = -(-inst.n // oracle.default_block(inst.n_k, inst.d, "fused" if inst.n_k * inst.d >= 4096 else "numpy"))
    assert len(seen) == blocks > 1 and seen[-1] == inst.n and seen == sorted(seen)  # one step per row block


def test_distributed_gradient_with_block_tasks_reports_progress_in_process():
    inst = AttentionInstance.random(n=200, n_k=80, d=60, seed=2)
    steps = []
    res = ad.gradient(inst, task_rows="block", progress=lambda done, n: steps.append((done, n)))
    ref = oracle.gradient(inst)
    assert np.array_equal(res.gradient, ref.gradient) and res.loss == ref.loss and res.error_bound == ref.error_bound
    assert res.info["task_rows"] == res.info["block"] and steps[-1] == (200, 200)


# --------------------------------------------------------------------------- solve
SAT_CNF = random_ksat(12, 40, seed=4)
UNSAT_CNF = make_cnf([[a * 1, b * 2, c * 3] for a in (1, -1) for b in (1, -1) for c in (1, -1)] + [[4, 5, -6]], nv=9)


@pytest.mark.parametrize("cnf, answer", [(SAT_CNF, True), (UNSAT_CNF, False)], ids=["sat", "unsat"])
def test_solve_cnf_on_the_cluster(address, tmp_path, capsys, cnf, answer):
    path = tmp_path / "f.cnf"
    write_dimacs(cnf, path)
    assert solve_sat(cnf).satisfiable is answer  # the instances are what they claim
    here = run_json(capsys, "solve", path)
    via_ov = run_json(capsys, "solve", path, "--via", "ov")
    there = run_json(capsys, "solve", path, "--scheduler", address)
    assert set(there) == set(here)  # the record of the single-process solver
    assert there["satisfiable"] is here["satisfiable"] is answer
    if answer:
        assert satisfies(cnf, there["witness"])
        assert there["witness"] == via_ov["witness"]  # the model of the first orthogonal pair
    else:
        assert there["witness"] is None
    assert run_json(capsys, "solve", path, "--via", "ov", "--scheduler", address) | {"time": 0} == via_ov | {"time": 0}


@pytest.mark.parametrize("pair", [True, False], ids=["pair", "no-pair"])
@pytest.mark.parametrize("suffix", [".ov", ".npz"])
def test_solve_ov_on_the_cluster(address, tmp_path, capsys, pair, suffix):
    ov = planted_ov(300, 200, 24, k=3, seed=1) if pair else planted_ov(300, 200, 24, k=0, seed=1)
    path = tmp_path / f"inst{suffix}"
    write_ov(ov, path)
    here = run_json(capsys, "solve", path)
    there = run_json(capsys, "solve", path, "--scheduler", address)
    assert set(there) == set(here) and there["has_pair"] is here["has_pair"] is pair
    assert there["witness"] == here["witness"]  # the lexicographically first pair
    expected = solve_ov(ov, method="numpy")
    assert there["witness"] == (None if expected is None else list(expected))
    if pair:
        assert is_orthogonal_pair(ov, there["witness"])


def test_solve_via_gradient_on_the_cluster_counts_oracle_calls(address, tmp_path, capsys, monkeypatch):
    path = tmp_path / "f.cnf"
    write_dimacs(random_ksat(8, 30, seed=2), path)
    here = run_json(capsys, "solve", path, "--via", "gradient")
    with recorded_bar(solve_command, monkeypatch) as seen:
        there = run_json(capsys, "solve", path, "--via", "gradient", "--scheduler", address)
    assert there | {"time": 0} == here | {"time": 0}
    assert seen == list(range(1, here["oracle_calls"] + 1)) and here["oracle_calls"] > 1


# --------------------------------------------------------------------------- verify
def comparable(value):
    """The report without its timings (every key naming seconds)."""
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items() if "seconds" not in k}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    return value


@pytest.mark.parametrize("kind", ["cnf", "ov"])
def test_verify_report_equals_the_in_process_one(address, tmp_path, capsys, kind):
    if kind == "cnf":
        cnf = random_ksat(10, 42, seed=7)
        path = tmp_path / "f.cnf"
        write_dimacs(cnf, path)
        truth = solve_sat(cnf).satisfiable
    else:
        ov = random_ov(12, 12, 6, p=0.5, seed=3)
        path = tmp_path / "inst.ov"
        write_ov(ov, path)
        truth = solve_ov(ov, method="numpy") is not None
    here = run_json(capsys, "verify", path)
    there = run_json(capsys, "verify", path, "--scheduler", address)
    assert comparable(there) == comparable(here)  # verdict, witness, margins, oracle errors, calls
    assert there["ground_truth"] is truth and there["ok"] is True and there["oracle_calls"] > 1
    assert there["steps"][-1]["margin"] > there["steps"][-1]["oracle_error"]


def test_verify_to_attention_on_the_cluster_states_no_larger_bound(address, tmp_path, capsys):
    """The forward on the cluster is the oracle's bits, its bound the ranges' own (never larger)."""
    path = tmp_path / "f.cnf"
    write_dimacs(random_ksat(8, 30, seed=2), path)
    here = run_json(capsys, "verify", path, "--to", "attention")
    there = run_json(capsys, "verify", path, "--to", "attention", "--scheduler", address)
    mine, theirs = here["steps"][-1], there["steps"][-1]
    assert mine["margin"] == theirs["margin"] and theirs["oracle_error"] <= mine["oracle_error"]
    for key in ("ground_truth", "chain_answer", "chain_witness", "agree", "witness_ok", "oracle_calls", "ok"):
        assert there[key] == here[key], key


def test_verify_to_ov_on_the_cluster(address, tmp_path, capsys):
    path = tmp_path / "f.cnf"
    write_dimacs(SAT_CNF, path)
    here = run_json(capsys, "verify", path, "--to", "ov")
    there = run_json(capsys, "verify", path, "--to", "ov", "--scheduler", address)
    assert comparable(there) == comparable(here) and there["ok"] and satisfies(SAT_CNF, there["chain_witness"])


def test_counterexample_file_of_an_ov_instance_records_provenance(tmp_path, monkeypatch):
    from reductions.commands import common
    from reductions.commands.verify import save_instance

    monkeypatch.setattr(common, "CURRENT_ARGV", ["verify", "x.ov", "--counterexample", "out.ov"])
    ov = OV([[1, 0]], [[0, 1]], meta={"seed": 3})
    for name in ("out.ov", "out.npz"):
        save_instance(ov, "ov", tmp_path / name, force=False)
        back = read_ov(tmp_path / name)
        assert back.meta["seed"] == 3 and np.array_equal(back.U, ov.U) and np.array_equal(back.V, ov.V)
        assert back.meta["provenance"]["command"] == "finegrain verify x.ov --counterexample out.ov"
        assert "finegrain_version" in back.meta["provenance"]


# --------------------------------------------------------------------------- refusals
@pytest.fixture
def files(tmp_path):
    cnf, npz = tmp_path / "f.cnf", tmp_path / "inst.npz"
    write_dimacs(random_ksat(6, 20, seed=1), cnf)
    AttentionInstance.random(n=6, d=2, seed=1).save(npz)
    return {"cnf": cnf, "npz": npz}


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["grad", "npz", "--scheduler", "nowhere"], "'nowhere' is neither 'local' nor an address"),
        (["solve", "cnf", "--scheduler", "nowhere"], "'nowhere' is neither 'local' nor an address"),
        (["verify", "cnf", "--scheduler", "nowhere"], "'nowhere' is neither 'local' nor an address"),
        (["grad", "npz", "--scheduler", "tcp://127.0.0.1:1", "--scheduler-timeout", "0.5"], "cannot reach the Dask scheduler"),
        (["verify", "cnf", "--scheduler", "tcp://127.0.0.1:1", "--scheduler-timeout", "0.5"], "cannot reach the Dask scheduler"),
        (["grad", "npz", "--method", "fast", "--scheduler", "local"], "--scheduler runs --method exact only"),
        (["grad", "npz", "--method", "mp", "--scheduler", "local"], "--scheduler runs --method exact only"),
        (["grad", "npz", "--dtype", "float32", "--scheduler", "local"], "--scheduler computes in float64 only"),
        (["verify", "cnf", "--oracle", "mp", "--scheduler", "local"], "runs the exact oracle only"),
        (["solve", "cnf", "--via", "gradient", "--oracle", "fast", "--scheduler", "local"], "runs the exact oracle only"),
        (["verify", "cnf", "--to", "maxip", "--scheduler", "local"], "no solver for maxip instances on a Dask cluster"),
        (["solve", "cnf", "--solver", "minisat22", "--scheduler", "local"], "drop --solver"),
        (["grad", "npz", "--scheduler-timeout", "5"], "applies with --scheduler ADDRESS only"),
        (["grad", "npz", "--scheduler", "tcp://127.0.0.1:1", "--scheduler-timeout", "-1"], "positive number of seconds"),
    ],
)
def test_bad_scheduler_arguments_exit_2_with_one_line(files, capsys, argv, fragment):
    argv = [str(files.get(a, a)) for a in argv]
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    assert fragment in err and len(err.strip().splitlines()) == 1, err


def test_cluster_solver_refusals_in_the_library():
    with pytest.raises(FinegrainError, match="exact oracle only"):
        oracle_solver("gradient", "mp", scheduler="local")
    with pytest.raises(FinegrainError, match="no solver for bhcp"):
        oracle_solver("bhcp", "exact", scheduler="local")


# --------------------------------------------------------------------------- a cluster of our own
def test_scheduler_local_starts_and_stops_its_own_cluster(tmp_path, capsys):
    ov = planted_ov(64, 64, 16, k=1, seed=9)
    path = tmp_path / "inst.ov"
    write_ov(ov, path)
    there = run_json(capsys, "solve", path, "--scheduler", "local")
    assert there["has_pair"] and there["witness"] == list(solve_ov(ov)) and is_orthogonal_pair(ov, there["witness"])
