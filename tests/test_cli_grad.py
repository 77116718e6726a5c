"""``finegrain grad``: the CLI prints exactly what the library computes; bad input exits 2."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from attention import AttentionInstance, gradient
from reductions.cli import main


@pytest.fixture
def instance_file(tmp_path):
    inst = AttentionInstance.random(n=7, n_k=5, d=3, B=4.0, seed=11, target_scale=2.0)
    path = tmp_path / "inst.npz"
    inst.save(path)
    return inst, path


@pytest.mark.parametrize("method, extra, opts", [("exact", [], {}), ("mp", ["--digits", "40"], {"digits": 40})])
def test_json_equals_the_library_call(instance_file, capsys, method, extra, opts):
    inst, path = instance_file
    assert main(["grad", str(path), "--method", method, *extra, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    lib = gradient(inst, method=method, **opts)
    assert np.array_equal(np.array(out["gradient"]), lib.gradient)      # bit for bit
    assert out["loss"] == lib.loss and out["error_bound"] == lib.error_bound
    assert out["loss_error_bound"] == lib.loss_error_bound
    assert (out["n"], out["n_k"], out["d"], out["B"], out["method"]) == (7, 5, 3, inst.B, method)


def test_dtype_float32_equals_the_library_call_and_its_bound_covers_float64(tmp_path, capsys):
    """--dtype float32: the library's float32 result bit for bit; it is within its own (looser)
    bound of the float64 answer, and that bound is the looser one."""
    inst = AttentionInstance.random(n=300, n_k=200, d=8, B=3.0, seed=5)
    path = tmp_path / "inst.npz"
    inst.save(path)
    assert main(["grad", str(path), "--dtype", "float32", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    lib32 = gradient(inst, dtype=np.float32)
    lib64 = gradient(inst)
    assert out["dtype"] == "float32" and np.array_equal(np.array(out["gradient"]), lib32.gradient)
    assert out["error_bound"] == lib32.error_bound > 1e4 * lib64.error_bound
    assert np.abs(lib32.gradient - lib64.gradient).max() <= lib32.error_bound + lib64.error_bound
    assert 0 < np.abs(lib32.gradient - lib64.gradient).max()              # really float32 arithmetic
    assert main(["grad", str(path)]) == 0 and "(float32)" not in capsys.readouterr().out
    assert main(["grad", str(path), "--dtype", "float32"]) == 0
    assert "method exact (float32)" in capsys.readouterr().out


def test_text_output_carries_the_same_numbers(instance_file, capsys):
    inst, path = instance_file
    assert main(["grad", str(path)]) == 0
    text = capsys.readouterr().out.splitlines()
    lib = gradient(inst)
    rows = np.array([[float(x) for x in line.split()] for line in text[3:]])
    assert np.array_equal(rows, lib.gradient)
    assert repr(lib.loss) in text[1] and f"{lib.error_bound:.3g}" in text[2]


@pytest.mark.skipif(importlib.util.find_spec("attention.fast") is None, reason="attention.fast not written yet")
def test_fast_method_passes_eps_and_reports_rank_and_degree(tmp_path, capsys):
    inst = AttentionInstance.random(n=40, d=2, B=0.5, seed=3)
    path = tmp_path / "small.npz"
    inst.save(path)
    assert main(["grad", str(path), "--method", "fast", "--eps", "1e-4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    lib = gradient(inst, method="fast", eps=1e-4)
    assert np.array_equal(np.array(out["gradient"]), lib.gradient)
    assert out["rank"] == lib.info.get("rank") and out["degree"] == lib.info.get("degree")
    exact = gradient(inst)
    assert np.abs(lib.gradient - exact.gradient).max() <= out["error_bound"] + exact.error_bound


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--eps", "1e-3"], "--eps applies to --method fast only"),
        (["--method", "exact", "--digits", "30"], "--digits applies to --method mp only"),
        (["--method", "mp", "--dtype", "float32"], "--dtype applies to --method exact only"),
        (["--method", "mp", "--digits", "0"], "digits"),
    ],
)
def test_misused_options_exit_2_with_one_line(instance_file, capsys, argv, fragment):
    _, path = instance_file
    assert main(["grad", str(path), *argv]) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1


def test_bad_files_exit_2_with_one_line(tmp_path, capsys):
    missing = tmp_path / "nope.npz"
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip archive")
    partial = tmp_path / "partial.npz"
    np.savez(partial, A1=np.ones((2, 2)))
    for path, fragment in [(missing, "no such file"), (garbage, "not a readable"), (partial, "missing array")]:
        assert main(["grad", str(path)]) == 2
        err = capsys.readouterr().err
        assert fragment in err and len(err.strip().splitlines()) == 1


def test_mp_refuses_large_instances(tmp_path, capsys):
    path = tmp_path / "big.npz"
    AttentionInstance.random(n=300, d=4, seed=0).save(path)
    assert main(["grad", str(path), "--method", "mp"]) == 2
    assert "exceeds" in capsys.readouterr().err
