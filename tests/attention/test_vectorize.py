"""attention.vectorize: the 512-bit preference reaches what is compiled inside, and only that."""

from __future__ import annotations

import re

import numpy as np
import pytest
from numba import njit, types

from attention.vectorize import VECTOR_WIDTH_ATTRIBUTE, wide_vectors


def _sum_of_products():  # type: ignore[no-untyped-def]
    """A new function object each call (numba shares compiled code between dispatchers of one)."""

    def dot(a, b):  # type: ignore[no-untyped-def]
        total = 0.0
        for i in range(a.shape[0]):
            total += a[i] * b[i]
        return total

    return dot


SIGNATURE = (types.float64[::1], types.float64[::1])


def _own_attributes(ir: str) -> str:
    """The attribute group of the compiled function itself (not of helpers linked beside it,
    which numba compiles once per process and shares)."""
    define = next(
        line for line in ir.splitlines()
        if line.startswith("define") and "dot" in line and "cpython" not in line and "cfunc" not in line
    )
    group = re.search(r"#(\d+)\s*\{?\s*$", define)
    assert group is not None, define
    return next(line for line in ir.splitlines() if line.startswith(f"attributes #{group.group(1)} "))


@pytest.mark.parametrize("slp", [False, True])
def test_attribute_is_set_inside_and_numba_is_restored(slp):
    from numba.core import codegen, config

    before = (codegen.CPUCodeLibrary.add_ir_module, config.SLP_VECTORIZE)
    wide, plain = njit(_sum_of_products()), njit(_sum_of_products())
    with wide_vectors(slp=slp):
        wide.compile(SIGNATURE)
        assert config.SLP_VECTORIZE == (1 if slp else before[1])
    plain.compile(SIGNATURE)
    assert (codegen.CPUCodeLibrary.add_ir_module, config.SLP_VECTORIZE) == before
    assert VECTOR_WIDTH_ATTRIBUTE in _own_attributes(wide.inspect_llvm(SIGNATURE))
    assert VECTOR_WIDTH_ATTRIBUTE not in _own_attributes(plain.inspect_llvm(SIGNATURE))
    x, y = np.arange(37.0), np.linspace(0, 1, 37)
    assert wide(x, y) == pytest.approx(float(x @ y), rel=1e-14) and plain(x, y) == pytest.approx(float(x @ y), rel=1e-14)


def test_restored_after_an_error_inside():
    from numba.core import codegen

    before = codegen.CPUCodeLibrary.add_ir_module
    with pytest.raises(RuntimeError), wide_vectors():
        raise RuntimeError("inside")
    assert codegen.CPUCodeLibrary.add_ir_module is before
