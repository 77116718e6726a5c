"""The fused numba kernel: same answer as the numpy kernel and as mpmath, within the stated bound."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attention import AttentionInstance, InvalidInstance, PrecisionError
from attention import kernels, oracle, oracle_mp


@st.composite
def instances(draw: st.DrawFn, max_n: int = 40, max_n_k: int = 70) -> AttentionInstance:
    """Shapes that exercise every padding path: rows % 4, keys % 32, d % 8 (d <= 16 or 64)."""
    n = draw(st.integers(1, max_n))
    n_k = draw(st.integers(1, max_n_k))
    d = draw(st.sampled_from([1, 3, 8, 13, 16, 64]))
    B = draw(st.sampled_from([0.5, 2.0, 10.0, 40.0]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return AttentionInstance(
        A1=rng.uniform(-B, B, (n, d)), A2=rng.uniform(-B, B, (n_k, d)),
        A3=rng.normal(size=(n_k, d)) * draw(st.sampled_from([1.0, 30.0])),
        E=rng.normal(size=(n, d)), X=np.eye(d) + 0.2 * rng.standard_normal((d, d)),
        Y=rng.standard_normal((d, d)),
    )


def _err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max())


@settings(max_examples=40)
@given(instances(), st.integers(1, 23))
def test_fused_equals_numpy_kernel_within_the_bound(inst, block):
    fused = oracle.gradient(inst, kernel="fused", block=block, threads=2)
    ref = oracle.gradient(inst, kernel="numpy")
    assert fused.info["kernel"] == "fused" and fused.error_bound <= ref.error_bound
    assert _err(fused.gradient, ref.gradient) <= fused.error_bound + ref.error_bound
    assert abs(fused.loss - ref.loss) <= fused.loss_error_bound + ref.loss_error_bound


@settings(max_examples=15)
@given(instances(max_n=10, max_n_k=20))
def test_fused_within_stated_bound_of_mpmath(inst):
    if inst.n * inst.n_k * inst.d > oracle_mp.MAX_WORK:
        inst = inst.replace(A1=inst.A1[:2], E=inst.E[:2])
    ref = oracle_mp.gradient(inst)
    res = oracle.gradient(inst, kernel="fused")
    assert _err(res.gradient, ref.gradient) <= res.error_bound + ref.error_bound
    assert abs(res.loss - ref.loss) <= res.loss_error_bound + ref.loss_error_bound


@settings(max_examples=15, deadline=None)
@given(
    st.integers(1, 9), st.integers(kernels.CHUNK - 40, 2 * kernels.CHUNK + 70), st.sampled_from([1, 5, 16]),
    st.booleans(), st.integers(0, 2**32 - 1),
)
def test_fused_across_key_chunks_and_negative_scores(n, n_k, d, negative, seed):
    """Keys over one and two chunks (and a partial last panel of padded keys, whose zero scores
    must not enter the row max): equal to the numpy kernel within the bounds.  With
    ``negative``, every score is below -800, so a padded zero taken as the row max would make
    every weight underflow and the answer NaN."""
    rng = np.random.default_rng(seed)
    if negative:
        n_k += n_k % kernels.NR == 0                  # a partial last panel: padded keys exist
        A1, A2, X = rng.uniform(30, 40, (n, d)), -rng.uniform(30, 40, (n_k, d)), np.eye(d)
    else:
        A1, A2, X = rng.uniform(-3, 3, (n, d)), rng.uniform(-3, 3, (n_k, d)), rng.standard_normal((d, d))
    inst = AttentionInstance(
        A1=A1, A2=A2, A3=rng.normal(size=(n_k, d)), E=rng.normal(size=(n, d)), X=X, Y=rng.standard_normal((d, d)),
    )
    assert not negative or (inst.A1 @ inst.X @ inst.A2.T).max() / d < -800     # exp(score) = 0
    fused = oracle.gradient(inst, kernel="fused")
    ref = oracle.gradient(inst, kernel="numpy")
    assert np.isfinite(fused.gradient).all()
    assert _err(fused.gradient, ref.gradient) <= fused.error_bound + ref.error_bound
    assert abs(fused.loss - ref.loss) <= fused.loss_error_bound + ref.loss_error_bound


def test_fused_large_scores_and_underflowing_weights():
    """Scores in the hundreds: most weights underflow to 0; the row max is kept, no NaN."""
    inst = AttentionInstance.random(n=37, n_k=53, d=16, B=50.0, seed=3, target_scale=2.0)
    S = inst.A1 @ inst.X @ inst.A2.T / inst.d
    assert (S.max(axis=1, keepdims=True) - S).max() > 708       # some exp(S - max) underflow
    res = oracle.gradient(inst, kernel="fused")
    G, L = oracle.naive_gradient(inst)
    assert np.isfinite(res.gradient).all()
    assert _err(res.gradient, G) <= 2 * res.error_bound and abs(res.loss - L) <= 2 * res.loss_error_bound


def test_threads_do_not_change_bits_and_partials_match_blocks():
    inst = AttentionInstance.random(n=70, n_k=45, d=13, B=3.0, seed=4)
    one = oracle.gradient(inst, kernel="fused", block=12, threads=1)
    three = oracle.gradient(inst, kernel="fused", block=12, threads=3)
    assert np.array_equal(one.gradient, three.gradient) and one.loss == three.loss
    G = np.zeros((13, 13))
    for lo in range(0, 70, 12):
        G += oracle.gradient_partial(inst, lo, min(lo + 12, 70), kernel="fused", block=12)[0]
    assert np.array_equal(G, one.gradient)


def test_auto_picks_by_key_side_size():
    small = AttentionInstance.random(n=3, n_k=5, d=2, seed=0)
    assert oracle.gradient(small).info["kernel"] == "numpy"
    big = AttentionInstance.random(n=2, n_k=oracle.FUSED_MIN_KEY_ENTRIES // 16, d=16, seed=0)
    res = oracle.gradient(big)
    assert res.info["kernel"] == "fused"
    assert _err(res.gradient, oracle.gradient(big, kernel="numpy").gradient) <= 2 * res.error_bound


def test_kernel_exp_is_within_the_claimed_ulps():
    """The bound assumes exp within EXP_ERROR_UNITS u relative or tiny absolute (mpmath check)."""
    rng = np.random.default_rng(0)
    x = np.concatenate([
        rng.uniform(-745, 0, 3000), -rng.exponential(1.0, 3000), rng.uniform(-1e-6, 0, 500),
        [0.0, -0.0, -1e-300, -707.9, -708.0, -708.1, -709.0, -745.2, -1e4, -np.inf],
    ])
    got, total = kernels.exp_shifted(x)
    prec = oracle.precision(np.float64)
    with mpmath.workdps(40):
        for xi, gi in zip(x.tolist(), got.tolist()):
            true = mpmath.exp(mpmath.mpf(xi)) if xi != -np.inf else mpmath.mpf(0)
            assert abs(gi - true) <= prec.exp_rel * true + prec.tiny, xi
        ulps = [abs(gi - mpmath.exp(xi)) / np.spacing(gi) for xi, gi in zip(x.tolist(), got.tolist()) if gi > 1e-300]
    assert max(ulps) <= kernels.EXP_MAX_ULP
    assert got[x == 0].tolist() == [1.0, 1.0]        # the row max gets weight exactly 1
    assert abs(total - got.sum()) <= 1e-12 * got.sum()
    # the shift is subtracted before exp
    shifted, _ = kernels.exp_shifted(np.array([700.0, 699.0]), shift=700.0)
    assert shifted[0] == 1.0 and abs(shifted[1] - np.exp(-1.0)) <= 2 * np.spacing(np.exp(-1.0))


@pytest.mark.parametrize(
    "kwargs, fragment",
    [({"kernel": "fused", "dtype": np.float32}, "float64 only"), ({"kernel": "blas"}, "kernel:")],
)
def test_bad_kernel_options(kwargs, fragment):
    inst = AttentionInstance.random(n=3, d=2, seed=0)
    with pytest.raises(InvalidInstance, match=fragment):
        oracle.gradient(inst, **kwargs)


@pytest.mark.parametrize("B, seed", [(1.0, 0), (8.0, 1), (30.0, 2)])
def test_bound_with_the_kernels_summation_depths_against_mpmath(B, seed):
    """Many key tiles and row blocks, so the fused bound uses depths far below n_k and n."""
    inst = AttentionInstance.random(n=40, n_k=700, d=2, B=B, seed=seed, target_scale=2.0)
    res = oracle.gradient(inst, kernel="fused", block=6)
    worst = oracle.gradient(inst, kernel="numpy")
    assert res.error_bound < worst.error_bound
    ref = oracle_mp.gradient(inst, digits=30)
    assert _err(res.gradient, ref.gradient) <= res.error_bound + ref.error_bound
    assert abs(res.loss - ref.loss) <= res.loss_error_bound + ref.loss_error_bound


@pytest.mark.parametrize("kernel", ["fused", "numpy"])
def test_scores_beyond_float64_raise_instead_of_garbage(kernel):
    """|S| could overflow (1e200 * 1e200): refused by the a-priori bound before computing."""
    inst = AttentionInstance.random(n=5, n_k=6, d=3, seed=0)
    huge = inst.replace(A1=inst.A1 * 1e200, A2=inst.A2 * 1e200)
    with pytest.raises(PrecisionError, match="overflowed"):
        oracle.gradient(huge, kernel=kernel)
    with pytest.raises(PrecisionError, match="overflowed"):
        oracle.gradient_partial(huge, 0, 2, kernel=kernel)


def _blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_serial_blas_limits_while_held_and_restores_after_the_outermost():
    """Main thread: one thread inside (nested too), restored on leaving.  Another thread's use
    (OpenBLAS ignores thread counts set there) changes nothing, and cannot undo the main's."""
    import threading

    before = _blas_threads()
    if not before or max(before) == 1:
        pytest.skip("BLAS runs on one thread here: nothing to limit")
    seen: list[list[int]] = []
    with kernels.serial_blas():
        assert set(_blas_threads()) == {1}
        with kernels.serial_blas():
            assert set(_blas_threads()) == {1}
        assert set(_blas_threads()) == {1}

        def other() -> None:
            with kernels.serial_blas():
                seen.append(_blas_threads())

        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert seen == [[1] * len(before)] and set(_blas_threads()) == {1}
    assert _blas_threads() == before
    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert seen[-1] == before and _blas_threads() == before


def test_fused_gradient_leaves_blas_threads_as_they_were(monkeypatch):
    """Restored after a fused call, after a refused one, and untouched by the numpy kernel."""
    inst = AttentionInstance.random(n=40, n_k=300, d=16, seed=2)
    before = _blas_threads()
    oracle.gradient(inst, kernel="fused")
    assert _blas_threads() == before
    seen = []
    monkeypatch.setattr(oracle, "_fold", lambda *a, **k: seen.append(_blas_threads()) or (_ for _ in ()).throw(RuntimeError("x")))
    with pytest.raises(RuntimeError):
        oracle.gradient(inst, kernel="fused")
    assert set(seen[0]) <= {1} and _blas_threads() == before
    seen.clear()
    with pytest.raises(RuntimeError):
        oracle.gradient(inst, kernel="numpy")
    assert seen[0] == before
