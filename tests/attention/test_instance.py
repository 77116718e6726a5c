"""AttentionInstance: validation, bounds, and the .npz round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from attention import AttentionInstance, InvalidInstance
from attention.errors import OutputExists


def _arrays(n=3, n_k=4, d=2, seed=0):
    rng = np.random.default_rng(seed)
    return dict(
        A1=rng.normal(size=(n, d)),
        A2=rng.normal(size=(n_k, d)),
        A3=rng.normal(size=(n_k, d)),
        E=rng.normal(size=(n, d)),
        X=rng.normal(size=(d, d)),
        Y=rng.normal(size=(d, d)),
    )


@pytest.mark.parametrize(
    "name, value, fragment",
    [
        ("A1", np.ones((3, 3)), "A2: has 2 columns"),
        ("A3", np.ones((3, 2)), "A3: shape (3, 2) must be (n_k, d)"),
        ("E", np.ones((4, 2)), "E: shape (4, 2) must be (n, d)"),
        ("X", np.ones((2, 3)), "X: shape (2, 3) must be (d, d)"),
        ("Y", np.ones((2,)), "Y: expected a 2-D matrix"),
        ("A2", np.full((4, 2), np.nan), "A2: non-finite entry"),
        ("E", np.full((3, 2), np.inf), "E: non-finite entry"),
        ("A1", np.ones((0, 2)), "A1: empty matrix"),
        ("A1", np.array([["a", "b"]] * 3), "A1: expected a real numeric matrix"),
        ("X", np.eye(2, dtype=complex), "X: expected a real numeric matrix"),
    ],
)
def test_bad_input_names_the_argument(name, value, fragment):
    arrays = _arrays()
    arrays[name] = value
    with pytest.raises(InvalidInstance) as err:
        AttentionInstance(**arrays)
    assert fragment in str(err.value)


def test_entry_bound_is_the_max_of_A1X_and_A2():
    arrays = _arrays(seed=3)
    inst = AttentionInstance(**arrays)
    expected = max(np.abs(arrays["A1"] @ arrays["X"]).max(), np.abs(arrays["A2"]).max())
    assert inst.B == pytest.approx(expected, rel=1e-15)
    assert inst.value_bound == pytest.approx(np.abs(arrays["A3"] @ arrays["Y"]).max(), rel=1e-15)
    S = arrays["A1"] @ arrays["X"] @ arrays["A2"].T / inst.d
    assert np.abs(S).max() <= inst.score_bound * (1 + 1e-12)


@given(
    n=st.integers(1, 5),
    n_k=st.integers(1, 5),
    d=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
    meta=st.dictionaries(
        st.text(max_size=5),
        st.one_of(st.integers(-(2**60), 2**60), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8), st.none()),
        max_size=4,
    ),
)
def test_npz_round_trip_is_exact(tmp_path_factory, n, n_k, d, seed, meta):
    inst = AttentionInstance(meta=meta, **_arrays(n, n_k, d, seed))
    path = tmp_path_factory.mktemp("rt") / "inst.npz"
    inst.save(path)
    back = AttentionInstance.load(path)
    for name in ("A1", "A2", "A3", "E", "X", "Y"):
        assert np.array_equal(getattr(back, name), getattr(inst, name))
        assert getattr(back, name).dtype == np.float64
    assert json.dumps(back.meta, sort_keys=True) == json.dumps(meta, sort_keys=True)


def test_save_refuses_to_overwrite(tmp_path):
    inst = AttentionInstance(**_arrays())
    path = inst.save(tmp_path / "a.npz")
    with pytest.raises(OutputExists, match="exists"):
        inst.save(path)
    inst.save(path, force=True)


def test_load_reports_missing_arrays_and_object_arrays(tmp_path):
    arrays = _arrays()
    del arrays["Y"]
    np.savez(tmp_path / "m.npz", **arrays)
    with pytest.raises(InvalidInstance, match="missing array"):
        AttentionInstance.load(tmp_path / "m.npz")
    arrays = _arrays()
    arrays["X"] = np.array([[object(), 1], [2, 3]], dtype=object)
    np.savez(tmp_path / "o.npz", **arrays)
    with pytest.raises(InvalidInstance, match="X"):
        AttentionInstance.load(tmp_path / "o.npz")
    (tmp_path / "g.npz").write_bytes(b"not a zip")
    with pytest.raises(InvalidInstance, match="not a readable"):
        AttentionInstance.load(tmp_path / "g.npz")
