"""The float64 blocked oracle against independent computations, and its stated error bound.

References: mpmath at 50 digits (attention.oracle_mp, which forms (f o q) 1 directly), central
finite differences of the mp loss, a sympy symbolic derivative, torch autograd through
scaled_dot_product_attention, the naive unblocked formula, and the identity of THEORY 0.2.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attention import AttentionInstance, InvalidInstance, PrecisionError
from attention import api, oracle, oracle_mp

U64 = 2.0**-53


@st.composite
def instances(draw: st.DrawFn, max_n: int = 9, max_d: int = 4, max_B: float = 40.0) -> AttentionInstance:
    """Random small instances: rectangular, E != 0, Y != I, X != I, entry bound up to ``max_B``."""
    n = draw(st.integers(1, max_n))
    n_k = draw(st.integers(1, max_n))
    d = draw(st.integers(1, max_d))
    B = draw(st.sampled_from([0.1, 1.0, 3.0, 10.0, max_B]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return AttentionInstance(
        A1=rng.uniform(-B, B, (n, d)),
        A2=rng.uniform(-B, B, (n_k, d)),
        A3=rng.normal(size=(n_k, d)) * draw(st.sampled_from([0.5, 1.0, 20.0])),
        E=rng.normal(size=(n, d)) * draw(st.sampled_from([0.0, 1.0, 5.0])),
        X=np.eye(d) + 0.3 * rng.standard_normal((d, d)),
        Y=rng.standard_normal((d, d)),
    )


def _max_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(np.asarray(a) - np.asarray(b)).max())


# --------------------------------------------------------------------------- against mpmath
@settings(max_examples=40)
@given(instances(), st.integers(1, 5))
def test_gradient_within_stated_bound_of_mpmath(inst, block):
    ref = oracle_mp.gradient(inst, digits=50)
    res = oracle.gradient(inst, block=block)
    err = _max_err(res.gradient, ref.gradient)
    assert err <= res.error_bound + ref.error_bound
    assert abs(res.loss - ref.loss) <= res.loss_error_bound + ref.loss_error_bound
    fwd, fwd_ref = oracle.forward(inst, block=block), oracle_mp.forward(inst, digits=50)
    assert _max_err(fwd.att, fwd_ref.att) <= fwd.error_bound + fwd_ref.error_bound


def test_bound_is_not_absurdly_loose():
    """Ratio stated / observed error on typical instances (printed; capped at 1e7)."""
    ratios = []
    for seed, B in [(0, 1.0), (1, 5.0), (2, 20.0), (3, 40.0)]:
        inst = AttentionInstance.random(n=24, n_k=17, d=4, B=B, seed=seed)
        ref = oracle_mp.gradient(inst)
        res = oracle.gradient(inst, block=5)
        observed = max(_max_err(res.gradient, ref.gradient), U64 * float(np.abs(ref.gradient).max()))
        ratios.append(res.error_bound / observed)
        assert res.error_bound >= observed
    print("stated/observed gradient error ratios:", [f"{r:.3g}" for r in ratios])
    assert max(ratios) < 1e7


def test_large_entries_scores_in_the_hundreds():
    """B = 50, d = 8: scores up to ~ B^2 = 2500 (hundreds in practice); no overflow, answer kept."""
    inst = AttentionInstance.random(n=12, n_k=10, d=8, B=50.0, seed=4, target_scale=3.0)
    S = inst.A1 @ inst.X @ inst.A2.T / inst.d
    assert np.abs(S).max() > 200
    ref = oracle_mp.gradient(inst)
    res = oracle.gradient(inst, block=3)
    assert np.isfinite(res.gradient).all() and np.isfinite(res.loss)
    assert _max_err(res.gradient, ref.gradient) <= res.error_bound + ref.error_bound
    assert res.error_bound < 1e-6 * max(1.0, float(np.abs(ref.gradient).max()))


def test_forward_bound_follows_the_weighted_values():
    """T = f v, v in {0, 1}, with the weight on v = 0 (T ~ 1e-9): the a-posteriori bound scales
    with T, not with max |v| = 1, and still covers the error against mpmath."""
    rng = np.random.default_rng(5)
    n, n_k, d = 9, 12, 3
    v = (np.arange(n_k) % 3 == 0).astype(float)
    A2 = rng.uniform(-1, 1, (n_k, d))
    A2[:, 2] = np.where(v == 1, -20.0, 0.0)           # keys with v = 1 score about -20 * 20 / d lower
    A1 = rng.uniform(-1, 1, (n, d))
    A1[:, 2] = 20.0
    A3 = np.zeros((n_k, d))
    A3[:, 0] = v
    inst = AttentionInstance(A1=A1, A2=A2, A3=A3, E=np.zeros((n, d)), X=np.eye(d), Y=np.eye(d))
    fwd, ref = oracle.forward(inst), oracle_mp.forward(inst)
    T = np.array([float(row[0]) for row in ref.info["mp_att"]])
    assert 0 < T.max() < 1e-30
    assert fwd.error_bound < 1e-12 * fwd.info["bound_terms"]["att"]
    assert _max_err(fwd.att, ref.att) <= fwd.error_bound + ref.error_bound


# --------------------------------------------------------------------------- finite differences
def _mp_matrix(M):
    return [[mpmath.mpf(float(x)) for x in row] for row in M]


@pytest.mark.parametrize("seed, B", [(5, 1.0), (6, 4.0), (7, 25.0)])
def test_gradient_equals_central_differences_of_the_mp_loss(seed, B):
    inst = AttentionInstance.random(n=5, n_k=4, d=3, B=B, seed=seed, target_scale=2.0)
    res = oracle.gradient(inst)
    with mpmath.workdps(60):
        A1, A2, A3, E, X, Y = (_mp_matrix(getattr(inst, k)) for k in ("A1", "A2", "A3", "E", "X", "Y"))
        step = mpmath.mpf(10) ** -20
        fd = np.zeros((inst.d, inst.d))
        for a in range(inst.d):
            for b in range(inst.d):
                Xp = [row[:] for row in X]
                Xm = [row[:] for row in X]
                Xp[a][b] += step
                Xm[a][b] -= step
                diff = oracle_mp.mp_loss(A1, A2, A3, E, Xp, Y) - oracle_mp.mp_loss(A1, A2, A3, E, Xm, Y)
                fd[a, b] = float(diff / (2 * step))
    # the difference quotient is exact to ~1e-30 here; only the float64 rounding of fd counts
    assert _max_err(res.gradient, fd) <= res.error_bound + U64 * float(np.abs(fd).max())


# --------------------------------------------------------------------------- sympy
@pytest.mark.parametrize("n, n_k, d, seed", [(1, 1, 1, 0), (2, 3, 2, 1), (3, 2, 3, 2)])
def test_gradient_equals_sympy_symbolic_derivative(n, n_k, d, seed):
    sympy = pytest.importorskip("sympy")
    inst = AttentionInstance.random(n=n, n_k=n_k, d=d, B=2.0, seed=seed, target_scale=1.0)
    xs = sympy.Matrix(d, d, lambda a, b: sympy.Symbol(f"x{a}{b}"))

    def exact(M):
        return sympy.Matrix(M.shape[0], M.shape[1], lambda i, j: sympy.Rational(float(M[i, j])))

    A1, A2, A3, E, Y = (exact(getattr(inst, k)) for k in ("A1", "A2", "A3", "E", "Y"))
    S = A1 * xs * A2.T / d
    h = A3 * Y
    L = 0
    for j in range(n):
        weights = [sympy.exp(S[j, k]) for k in range(n_k)]
        total = sum(weights)
        for col in range(d):
            att = sum(w * h[k, col] for k, w in enumerate(weights)) / total
            L += (att - E[j, col]) ** 2 / 2
    point = {xs[a, b]: sympy.Rational(float(inst.X[a, b])) for a in range(d) for b in range(d)}
    sym = np.array([[float(sympy.diff(L, xs[a, b]).evalf(40, subs=point)) for b in range(d)] for a in range(d)])
    res = oracle.gradient(inst)
    assert _max_err(res.gradient, sym) <= res.error_bound + U64 * float(np.abs(sym).max())
    assert abs(res.loss - float(L.evalf(40, subs=point))) <= res.loss_error_bound + U64 * res.loss


# --------------------------------------------------------------------------- torch
def _torch_gradient(inst: AttentionInstance) -> tuple[np.ndarray, float]:
    torch = pytest.importorskip("torch")
    t = {k: torch.tensor(getattr(inst, k), dtype=torch.float64) for k in ("A1", "A2", "A3", "E", "X", "Y")}
    X = t["X"].clone().requires_grad_(True)
    out = torch.nn.functional.scaled_dot_product_attention(
        (t["A1"] @ X)[None, None], t["A2"][None, None], (t["A3"] @ t["Y"])[None, None], scale=1.0 / inst.d
    )[0, 0]
    L = 0.5 * ((out - t["E"]) ** 2).sum()
    L.backward()
    return X.grad.numpy(), float(L.detach())


@settings(max_examples=25)
@given(instances(max_n=40, max_d=8))
def test_gradient_equals_torch_autograd_through_sdpa(inst):
    G_torch, L_torch = _torch_gradient(inst)
    res = oracle.gradient(inst, block=7)
    # torch's float64 arithmetic is the same sequence of operations; the stated bound covers each
    assert _max_err(res.gradient, G_torch) <= 2 * res.error_bound
    assert abs(res.loss - L_torch) <= 2 * res.loss_error_bound


@pytest.mark.parametrize("kernel", ["numpy", "fused"])
def test_torch_large_rectangular(kernel):
    inst = AttentionInstance.random(n=300, n_k=170, d=16, B=20.0, seed=8, target_scale=2.0)
    G_torch, L_torch = _torch_gradient(inst)
    res = oracle.gradient(inst, block=64, kernel=kernel)
    assert _max_err(res.gradient, G_torch) <= 2 * res.error_bound
    assert abs(res.loss - L_torch) <= 2 * res.loss_error_bound


# --------------------------------------------------------------------------- naive formula
@given(instances(max_n=30, max_d=6), st.integers(1, 40))
def test_blocked_equals_naive_unblocked_formula(inst, block):
    G, L = oracle.naive_gradient(inst)
    res = oracle.gradient(inst, block=block)
    assert _max_err(res.gradient, G) <= 2 * res.error_bound
    assert abs(res.loss - L) <= 2 * res.loss_error_bound


# --------------------------------------------------------------------------- properties
@given(instances(max_n=20, max_d=5), st.integers(0, 2**32 - 1))
def test_row_shift_of_scores_changes_nothing(inst, seed):
    """A2 -> A2 + 1 v^T adds (A1 X v / d)_j to row j of S: f, Att, L are unchanged, and so is
    dL/dX because p 1 = 0 (THEORY 0.1)."""
    v = np.random.default_rng(seed).uniform(-3, 3, inst.d)
    shifted = inst.replace(A2=inst.A2 + v[None, :])
    a, b = oracle.gradient(inst), oracle.gradient(shifted)
    fa, fb = oracle.forward(inst), oracle.forward(shifted)
    assert _max_err(fa.att, fb.att) <= fa.error_bound + fb.error_bound
    assert abs(a.loss - b.loss) <= a.loss_error_bound + b.loss_error_bound
    assert _max_err(a.gradient, b.gradient) <= a.error_bound + b.error_bound


@given(instances(max_n=25, max_d=5), st.integers(1, 25), st.integers(1, 25))
def test_block_size_does_not_change_the_answer(inst, b1, b2):
    r1, r2 = oracle.gradient(inst, block=b1), oracle.gradient(inst, block=b2)
    assert r1.error_bound == r2.error_bound          # the bound holds for every blocking
    assert _max_err(r1.gradient, r2.gradient) <= 2 * r1.error_bound
    assert abs(r1.loss - r2.loss) <= 2 * r1.loss_error_bound


finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


@given(
    st.integers(1, 6), st.integers(1, 6), st.integers(1, 3), st.data(),
)
def test_finite_input_gives_finite_output(n, n_k, d, data):
    def mat(r, c):
        return np.array(data.draw(st.lists(finite, min_size=r * c, max_size=r * c))).reshape(r, c)

    inst = AttentionInstance(mat(n, d), mat(n_k, d), mat(n_k, d), mat(n, d), mat(d, d), mat(d, d))
    res = oracle.gradient(inst)
    assert np.isfinite(res.gradient).all() and math.isfinite(res.loss)
    assert np.isfinite(oracle.forward(inst).att).all()
    assert res.error_bound >= 0 and res.loss_error_bound >= 0


# --------------------------------------------------------------------------- THEORY 0.2
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_single_value_column_identity(seed):
    """h = [v, 0, ...] with v in {0,1}^{n_k}: dL/dX = (1/d) A1^T diag(T - e)(f diag(v) - diag(T) f) A2."""
    rng = np.random.default_rng(seed)
    n, n_k, d = 14, 11, 5
    v = rng.integers(0, 2, n_k).astype(float)
    A3 = np.zeros((n_k, d))
    A3[:, 0] = v
    inst = AttentionInstance(
        A1=rng.uniform(-4, 4, (n, d)), A2=rng.uniform(-4, 4, (n_k, d)), A3=A3,
        E=rng.normal(size=(n, d)), X=rng.normal(size=(d, d)), Y=np.eye(d),
    )
    S = inst.A1 @ inst.X @ inst.A2.T / d
    f = np.exp(S - S.max(axis=1, keepdims=True))
    f /= f.sum(axis=1, keepdims=True)
    T, e = f @ v, inst.E[:, 0]
    formula = inst.A1.T @ np.diag(T - e) @ (f @ np.diag(v) - np.diag(T) @ f) @ inst.A2 / d
    res = oracle.gradient(inst, block=4)
    assert _max_err(res.gradient, formula) <= 2 * res.error_bound
    # dL/dX is affine in e: only column 1 of E matters
    other = inst.replace(E=np.column_stack([inst.E[:, 0], rng.normal(size=(n, d - 1))]))
    assert _max_err(oracle.gradient(other).gradient, res.gradient) <= 2 * res.error_bound


# --------------------------------------------------------------------------- partials, threads
@given(instances(max_n=30, max_d=4), st.data())
def test_partials_over_any_partition_sum_to_the_gradient(inst, data):
    cuts = sorted(set(data.draw(st.lists(st.integers(1, max(inst.n - 1, 1)), max_size=4))) - {inst.n})
    edges = [0, *cuts, inst.n]
    parts = [oracle.gradient_partial(inst, lo, hi) for lo, hi in zip(edges, edges[1:])]
    total = sum(p[0] for p in parts)
    full = oracle.gradient(inst)
    m = len(parts)
    fold = oracle.gamma(m, U64) * float(sum(np.abs(p[0]) for p in parts).max())
    assert _max_err(total, full.gradient) <= sum(p[2] for p in parts) + fold + full.error_bound
    assert abs(sum(p[1] for p in parts) - full.loss) <= 2 * full.loss_error_bound


def test_one_block_partial_has_the_bits_of_its_term_and_threads_do_not_change_bits():
    inst = AttentionInstance.random(n=50, n_k=33, d=6, B=3.0, seed=9)
    block = 16
    G = np.zeros((6, 6))
    for lo in range(0, inst.n, block):
        G += oracle.gradient_partial(inst, lo, min(lo + block, inst.n), block=block)[0]
    one = oracle.gradient(inst, block=block, threads=1)
    two = oracle.gradient(inst, block=block, threads=3)
    assert np.array_equal(G, one.gradient) and np.array_equal(one.gradient, two.gradient)
    assert one.loss == two.loss


def test_api_dispatches_to_the_oracles():
    inst = AttentionInstance.random(n=4, d=2, seed=3)
    assert np.array_equal(api.gradient(inst).gradient, oracle.gradient(inst).gradient)
    assert api.gradient(inst, method="mp").method == "mp"
    assert api.loss(inst).loss == oracle.loss(inst).loss


# --------------------------------------------------------------------------- float32
@settings(max_examples=30)
@given(instances(max_n=12, max_d=4, max_B=10.0))
def test_float32_within_its_own_bound(inst):
    ref = oracle_mp.gradient(inst)
    res = oracle.gradient(inst, dtype=np.float32)
    assert res.info["dtype"] == "float32"
    assert _max_err(res.gradient, ref.gradient) <= res.error_bound + ref.error_bound
    assert abs(res.loss - ref.loss) <= res.loss_error_bound + ref.loss_error_bound
    assert res.error_bound >= oracle.gradient(inst).error_bound


# --------------------------------------------------------------------------- the exp assumption
@pytest.mark.parametrize("dtype, lo", [(np.float64, -745.0), (np.float32, -103.0)])
def test_numpy_exp_is_within_the_assumed_ulps(dtype, lo):
    """error_bounds assumes exp within EXP_ERROR_UNITS u relative (or tiny absolute)."""
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.uniform(lo, 0, 4000), -rng.exponential(1.0, 2000), [0.0, -1e-300]]).astype(dtype)
    got = np.exp(z)
    prec = oracle.precision(dtype)
    with mpmath.workdps(40):
        for zi, gi in zip(z.tolist(), got.tolist()):
            true = mpmath.exp(mpmath.mpf(zi))
            assert abs(gi - true) <= prec.exp_rel * true + prec.tiny
    assert np.exp(dtype(0.0)) == 1.0


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"block": 0}, "block:"),
        ({"block": 2.5}, "block:"),
        ({"threads": 0}, "threads:"),
        ({"dtype": np.int64}, "dtype:"),
    ],
)
def test_bad_options_name_the_argument(kwargs, fragment):
    inst = AttentionInstance.random(n=3, d=2, seed=0)
    with pytest.raises(InvalidInstance, match=fragment):
        oracle.gradient(inst, **kwargs)


@pytest.mark.parametrize("start, stop", [(-1, 2), (2, 2), (0, 4), (1.0, 2)])
def test_bad_row_range(start, stop):
    inst = AttentionInstance.random(n=3, d=2, seed=0)
    with pytest.raises(InvalidInstance, match="start"):
        oracle.gradient_partial(inst, start, stop)


def test_not_an_instance():
    with pytest.raises(InvalidInstance, match="instance"):
        oracle.gradient(np.eye(2))


def test_overflow_raises_precision_error_instead_of_inf():
    rng = np.random.default_rng(0)
    inst = AttentionInstance(
        A1=rng.normal(size=(3, 2)), A2=rng.normal(size=(3, 2)), A3=np.full((3, 2), 1e300),
        E=np.full((3, 2), -1e300), X=np.eye(2), Y=np.eye(2) * 1e8,
    )
    with pytest.raises(PrecisionError, match="overflowed"):
        oracle.gradient(inst)


@pytest.mark.parametrize("kernel, threads", [("numpy", 1), ("numpy", 3), ("fused", 2)])
def test_progress_reports_every_row_once_and_leaves_the_result_unchanged(kernel, threads):
    from attention.oracle import gradient as exact_gradient

    inst = AttentionInstance.random(n=37, d=4, n_k=11, seed=5)
    calls = []
    with_bar = exact_gradient(inst, block=5, threads=threads, kernel=kernel, progress=lambda done, n: calls.append((done, n)))
    plain = exact_gradient(inst, block=5, threads=threads, kernel=kernel)
    assert np.array_equal(with_bar.gradient, plain.gradient) and with_bar.loss == plain.loss
    assert [n for _, n in calls] == [37] * 8                      # ceil(37 / 5) blocks
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[-1] == 37 and len(set(done)) == 8
