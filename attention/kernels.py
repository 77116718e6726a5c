"""Fused numba kernel for one block of query rows of the exact attention gradient (float64).

For a block of ``b`` query rows the kernel computes, without BLAS and without leaving the
core's caches for long (THEORY 0.1)::

    S   = Q K^T                 (Q = A1 X / d; b x n_k, into a per-thread buffer)
    P   = exp(S - rowmax S),  l = rowsum P          (in place)
    Att = (P h) / l,  c = Att - E,  r = rowsum(c o Att),  loss = 0.5 ||c||^2
    p   = P o ((c h^T - r) / l)                      (in place; q never stored)
    W   = p K,        G_b = A1_b^T W / d

that is ``8 b n_k d`` flops and ``b n_k`` exponentials, the minimum, with the ``b x n_k``
buffer (the memory ``O(threads * b * n_k)``) passed over three times: ``S`` is written with
its row max kept on the way (column-wise maxima in the NT epilogue), then chunk by chunk of
``CHUNK`` keys the exponential and ``P h``, and again chunk by chunk ``p`` and ``p K``, so a
chunk's scores stay in L2 between the two products that use them.  Blocks run on a
thread pool (the kernels release the GIL); their ``d x d`` terms are added in block order,
so the result does not depend on the number of threads.

The two matrix-product shapes are register-blocked micro-kernels generated from templates:
``NT`` (``out[i, k] = sum_a A[i, a] B[k, a]`` over panels of 32 keys, 4 x 32 accumulators,
used for ``S`` and for ``q`` with the ``p`` epilogue fused in) and ``NN``
(``out[i, :] += sum_k P[i, k] B[k, :]``, 4 rows x 16 or 32 columns, key tiles of 64 whose
``64 x 32`` slice of ``B`` stays in L1 while all the block's rows pass over it).  Tile shapes
and loop orders were chosen by measurement: with the earlier 4 x 16 NT tile and 128-key NN tiles
(rows outermost) a block took 1.2x as long at d = 64 (the whole gradient at n = 16384 on 2
cores, ``benchmarks/bench_oracle.py``: 2.18 s against 1.56 s).  The kernel
module (templates, the hand-written functions below, decorations) is written once per source
version to a cache directory and compiled by numba with LLVM's SLP vectoriser switched on
(numba leaves it off by default; it turns the straight-line accumulator code into AVX2/AVX-512
FMAs), 512-bit vectors preferred where the core has them (:mod:`attention.vectorize`), and
``cache=True``, so later processes load the machine code in well under a second;
``exp`` is a vectorisable Cody-Waite reduction with a degree-13 Taylor polynomial.

Notes
-----
Every dot product is a sum over its terms in some order, every exponential is within
``EXP_MAX_ULP`` ulp (checked against mpmath in the tests), the softmax shift is the exact row
max and ``p`` is formed with three roundings; so the a-priori bound of
:func:`attention.oracle.error_bounds` (with ``rescales = 0``) holds for this kernel as it does
for the numpy one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import math
import os
import sys
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

import numpy as np

from attention import vectorize

#: Rows and keys of the NT register tile; keys per NN tile (its columns: ``FusedKeys.nc``).
MR, NR, TILE = 4, 32, 64
#: Keys per chunk of the second and third passes (a multiple of ``TILE`` and ``NR``).
CHUNK = 512
assert CHUNK % TILE == 0 and CHUNK % NR == 0 and NR % 8 == 0
#: The exponential's error bound claimed (and tested): relative, in ulp of the result.
EXP_MAX_ULP = 4

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01      # 32 significant bits: k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_XMIN = -708.3964185322641                # ln(2^-1022): below it exp(x) < tiny, returned as 0
_TAYLOR = tuple(1.0 / math.factorial(i) for i in range(14))


# --------------------------------------------------------------------------- code templates
def _accumulators(cols: int) -> list[list[str]]:
    return [[f"c{i}_{j}" for j in range(cols)] for i in range(MR)]


def _tile_body(acc: list[list[str]], b_load: str, a_load: str, indent: str) -> list[str]:
    """The rank-1 update ``c_i_j += a_i b_j``, ``b_j = b_load(j)``, ``a_i = a_load(i)``, one line
    per scalar (straight-line code the SLP vectoriser packs into vector loads and FMAs)."""
    cols = len(acc[0])
    lines = [f"{indent}b{j} = {b_load.format(j=j)}" for j in range(cols)]
    for i in range(MR):
        lines.append(f"{indent}a{i} = {a_load.format(i=i)}")
        lines += [f"{indent}{acc[i][j]} += a{i} * b{j}" for j in range(cols)]
    return lines


def _zeros(acc: list[list[str]], indent: str) -> list[str]:
    return [f"{indent}{a} = 0.0" for row in acc for a in row]


def _nt_source(name: str, epilogue: str) -> str:
    """``out[i, NR p + j] <- epilogue(sum_a A[i, a] Bp[p, a, j])`` for 4 rows at a time, panels
    ``p0 <= p < p1``.  The ``scores`` epilogue also keeps the column-wise running maximum
    ``M[i, j] = max_p out[i, NR p + j]`` over the panels of keys ``< nvalid`` only (the row max
    without another pass over the scores); the ``p`` epilogue forms ``p`` from ``q`` (and
    ignores ``M`` and ``nvalid``: both share one signature)."""
    acc = _accumulators(NR)
    lines = [f"def {name}(A, Bp, S, M, r, invl, bp, p0, p1, dp, nvalid):"]
    lines += ["    for p in range(p0, p1):", f"        for i0 in range(0, bp, {MR}):"]
    lines += _zeros(acc, " " * 12) + ["            for a in range(dp):"]
    lines += _tile_body(acc, "Bp[p, a, {j}]", "A[i0 + {i}, a]", " " * 16)
    if epilogue == "scores":
        lines += [f"            if (p + 1) * {NR} <= nvalid:"]
        for i in range(MR):
            for j in range(NR):
                old, new = f"M[i0 + {i}, {j}]", acc[i][j]
                lines += [f"                {old} = {new} if {new} > {old} else {old}"]
    for i in range(MR):
        if epilogue == "p":
            lines += [f"            ri = r[i0 + {i}]", f"            li = invl[i0 + {i}]"]
        for j in range(NR):
            target = f"S[i0 + {i}, p * {NR} + {j}]"
            value = acc[i][j] if epilogue == "scores" else f"{target} * (li * ({acc[i][j]} - ri))"
            lines += [f"            {target} = {value}"]
    return "\n".join(lines)


def _nn_source(name: str, nc: int) -> str:
    """``out3[i, cc, :] += sum_k P[i, k] B3[k, cc, :]`` for 4 rows and ``nc`` columns at a time.

    Per key tile, the ``tile x nc`` slice of ``B3`` (16 KiB at 64 x 32) stays in L1 while every
    group of rows passes over it; the rows and keys are indexed through slices starting at the
    tile, so the inner loop's indices start at 0 (no wraparound code for negative indices).
    """
    acc = _accumulators(nc)
    lines = [f"def {name}(P, B3, out3, bp, nchunks, ks, ke, tile):"]
    lines += [
        "    for k0 in range(ks, ke, tile):",
        "        k1 = min(k0 + tile, ke)",
        "        Bt = B3[k0:k1]",
        "        for cc in range(nchunks):",
        f"            for i0 in range(0, bp, {MR}):",
    ]
    lines += [f"                p{i} = P[i0 + {i}, k0:k1]" for i in range(MR)]
    lines += _zeros(acc, " " * 16) + ["                for k in range(k1 - k0):"]
    lines += _tile_body(acc, "Bt[k, cc, {j}]", "p{i}[k]", " " * 20)
    for i in range(MR):
        lines += [f"                out3[i0 + {i}, cc, {j}] += {acc[i][j]}" for j in range(nc)]
    return "\n".join(lines)


# The functions below are the kernel module's hand-written part: plain Python, copied by
# :func:`_module_source` into the generated module (where ``nt_scores``, ``nt_p``, ``nn``,
# ``bits_to_f64`` and the constants are defined) and compiled there by numba.
def exp_shift_lanes(row, n, n_valid, shift, lanes):  # type: ignore[no-untyped-def]
    """row[:n_valid] <- exp(row - shift), row[n_valid:n] <- 0; lanes[l] += row[k] for k = l mod 8
    below n - n % 8 (so with chunks of multiples of 8 keys a row's lanes are those of its chunks,
    chunk after chunk); returns the sum of the last n % 8 entries."""
    for k in range(min(n, n_valid)):
        x = row[k] - shift
        xc = max(x, XMIN - 1.0)                                                # noqa: F821
        kf = np.floor(xc * LOG2E + 0.5)                                        # noqa: F821
        t = (xc - kf * LN2_HI) - kf * LN2_LO                                   # noqa: F821
        poly = C13                                                             # noqa: F821
        poly = poly * t + C12                                                  # noqa: F821
        poly = poly * t + C11                                                  # noqa: F821
        poly = poly * t + C10                                                  # noqa: F821
        poly = poly * t + C9                                                   # noqa: F821
        poly = poly * t + C8                                                   # noqa: F821
        poly = poly * t + C7                                                   # noqa: F821
        poly = poly * t + C6                                                   # noqa: F821
        poly = poly * t + C5                                                   # noqa: F821
        poly = poly * t + C4                                                   # noqa: F821
        poly = poly * t + C3                                                   # noqa: F821
        poly = poly * t + C2                                                   # noqa: F821
        poly = poly * t + 1.0
        poly = poly * t + 1.0
        v = poly * bits_to_f64((np.int64(kf) + 1023) << 52)                    # noqa: F821
        row[k] = 0.0 if x < XMIN else v                                        # noqa: F821
    for k in range(max(n_valid, 0), n):
        row[k] = 0.0
    s0, s1, s2, s3, s4, s5, s6, s7 = lanes[0], lanes[1], lanes[2], lanes[3], lanes[4], lanes[5], lanes[6], lanes[7]
    top = n - n % 8
    for k in range(0, top, 8):
        s0 += row[k]
        s1 += row[k + 1]
        s2 += row[k + 2]
        s3 += row[k + 3]
        s4 += row[k + 4]
        s5 += row[k + 5]
        s6 += row[k + 6]
        s7 += row[k + 7]
    lanes[0], lanes[1], lanes[2], lanes[3], lanes[4], lanes[5], lanes[6], lanes[7] = s0, s1, s2, s3, s4, s5, s6, s7
    rest = 0.0
    for k in range(top, n):
        rest += row[k]
    return rest


def lane_sum(s):  # type: ignore[no-untyped-def]
    """The row sum from its 8 lanes."""
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))


def exp_shift_sum(row, n_valid, n, shift):  # type: ignore[no-untyped-def]
    """row[:n_valid] <- exp(row - shift), row[n_valid:n] <- 0; returns the sum (8 lanes)."""
    lanes = np.zeros(8)
    rest = exp_shift_lanes(row, n, n_valid, shift, lanes)
    return lane_sum(lanes) + rest


def row_max(row, n):  # type: ignore[no-untyped-def]
    """max(row[:n]) in 4 lanes."""
    m0 = m1 = m2 = m3 = -np.inf
    top = n - n % 4
    for k in range(0, top, 4):
        m0 = max(m0, row[k])
        m1 = max(m1, row[k + 1])
        m2 = max(m2, row[k + 2])
        m3 = max(m3, row[k + 3])
    for k in range(top, n):
        m0 = max(m0, row[k])
    return max(max(m0, m1), max(m2, m3))


def block(A1, X, Q, E, Kp, Hp, K3, H3, S, Att3, C, W3, G, n_k, rows, d):  # type: ignore[no-untyped-def]
    """G <- A1^T p K / d over the block's rows; returns 0.5 ||c||^2 over them."""
    bp, dp = Q.shape
    nkp = S.shape[1]
    npan = nkp // NR                                                           # noqa: F821
    nchunks = Att3.shape[1]
    for i in range(rows):
        for b in range(d):
            acc = 0.0
            for a in range(d):
                acc += A1[i, a] * X[a, b]
            Q[i, b] = acc / d
    r = np.empty(bp)
    invl = np.empty(bp)
    M = np.full((bp, NR), -np.inf)                                             # noqa: F821
    nt_scores(Q, Kp, S, M, r, invl, bp, 0, npan, dp, n_k)                      # noqa: F821
    full = n_k // NR * NR                                                      # noqa: F821
    m = np.empty(bp)
    for i in range(bp):
        m[i] = max(row_max(M[i], NR), row_max(S[i, full:n_k], n_k - full))     # noqa: F821
    # Then chunk by chunk of keys (the chunk's scores stay in L2 from the exponential to f h,
    # and from p to p K); sums run in the same order as over whole rows.
    lanes = np.zeros((bp, 8))                 # chunks are multiples of 8 keys: no rest to add
    Att3[:] = 0.0
    for c0 in range(0, nkp, CHUNK):                                            # noqa: F821
        c1 = min(c0 + CHUNK, nkp)                                              # noqa: F821
        for i in range(bp):
            exp_shift_lanes(S[i, c0:c1], c1 - c0, n_k - c0, m[i], lanes[i])
        nn(S, H3, Att3, bp, nchunks, c0, c1, TILE)                             # noqa: F821
    for i in range(bp):
        invl[i] = 1.0 / lane_sum(lanes[i])
    Att = Att3.reshape((bp, dp))
    loss = 0.0
    for i in range(bp):
        ri = 0.0
        for a in range(dp):
            Att[i, a] *= invl[i]
            C[i, a] = Att[i, a] - E[i, a]
            ri += C[i, a] * Att[i, a]
            if i < rows:
                loss += C[i, a] * C[i, a]
        r[i] = ri
    W3[:] = 0.0
    for c0 in range(0, nkp, CHUNK):                                            # noqa: F821
        c1 = min(c0 + CHUNK, nkp)                                              # noqa: F821
        nt_p(C, Hp, S, M, r, invl, bp, c0 // NR, c1 // NR, dp, n_k)            # noqa: F821
        nn(S, K3, W3, bp, nchunks, c0, c1, TILE)                               # noqa: F821
    W = W3.reshape((bp, dp))
    G[:] = 0.0
    for j in range(rows):
        for a in range(d):
            x = A1[j, a]
            for b in range(d):
                G[a, b] += x * W[j, b]
    for a in range(d):
        for b in range(d):
            G[a, b] /= d
    return 0.5 * loss


_HEADER = '''"""Generated by attention.kernels._module_source: do not edit (the source is attention/kernels.py)."""
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

MR, NR, TILE, CHUNK = {MR}, {NR}, {TILE}, {CHUNK}
LOG2E, LN2_HI, LN2_LO, XMIN = {LOG2E!r}, {LN2_HI!r}, {LN2_LO!r}, {XMIN!r}
{taylor}
OPTS = dict(fastmath={{"contract"}}, boundscheck=False, nogil=True, error_model="numpy", cache=True)
VECTOR_WIDTH = {VECTOR_WIDTH!r}  # compiled with this LLVM function attribute (attention.kernels)
f8_1, f8_2, f8_3, i8 = types.float64[::1], types.float64[:, ::1], types.float64[:, :, ::1], types.int64


@intrinsic
def bits_to_f64(typingctx, x):
    if x != types.int64:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen
'''

_DECORATE = '''
nt_scores = njit(types.void(f8_2, f8_3, f8_2, f8_2, f8_1, f8_1, i8, i8, i8, i8, i8), **OPTS)(nt_scores)
nt_p = njit(types.void(f8_2, f8_3, f8_2, f8_2, f8_1, f8_1, i8, i8, i8, i8, i8), **OPTS)(nt_p)
nn = njit(types.void(f8_2, f8_3, f8_3, i8, i8, i8, i8, i8), **OPTS)(nn)
exp_shift_lanes = njit(types.float64(f8_1, i8, i8, types.float64, f8_1), **OPTS)(exp_shift_lanes)
lane_sum = njit(types.float64(f8_1), **OPTS)(lane_sum)
exp_shift_sum = njit(types.float64(f8_1, i8, i8, types.float64), **OPTS)(exp_shift_sum)
row_max = njit(types.float64(f8_1, i8), **OPTS)(row_max)
block = njit(
    types.float64(f8_2, f8_2, f8_2, f8_2, f8_3, f8_3, f8_3, f8_3, f8_2, f8_3, f8_2, f8_3, f8_2, i8, i8, i8),
    **OPTS,
)(block)
'''


def _module_source(nc: int) -> str:
    """The kernel module for NN tiles of ``nc`` columns: header, generated micro-kernels, the
    hand-written functions above, decorations."""
    taylor = "\n".join(f"C{i} = {c!r}" for i, c in enumerate(_TAYLOR) if i >= 2)
    header = _HEADER.format(
        MR=MR, NR=NR, TILE=TILE, CHUNK=CHUNK, VECTOR_WIDTH=vectorize.VECTOR_WIDTH_ATTRIBUTE, LOG2E=_LOG2E, LN2_HI=_LN2_HI, LN2_LO=_LN2_LO, XMIN=_XMIN, taylor=taylor
    )
    hand = [inspect.getsource(fn) for fn in (exp_shift_lanes, lane_sum, exp_shift_sum, row_max, block)]
    generated = [_nt_source("nt_scores", "scores"), _nt_source("nt_p", "p"), _nn_source("nn", nc)]
    return "\n\n\n".join([header, *generated, *hand, _DECORATE])


def _cache_dir() -> Path:
    """Where the generated module (and numba's cache of it) lives: ``$FINEGRAIN_CACHE``,
    else ``$XDG_CACHE_HOME/finegrain``, else ``~/.cache/finegrain``; a temporary directory
    when none is writable (then every process compiles again)."""
    root = os.environ.get("FINEGRAIN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "finegrain"
    )
    path = Path(root) / "kernels"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".probe{os.getpid()}"
        probe.write_text("")
        probe.unlink()
        return path
    except OSError:
        return Path(tempfile.mkdtemp(prefix="finegrain-kernels-"))


_LOCK = threading.Lock()


@lru_cache(maxsize=None)
def _module(nc: int) -> ModuleType:
    """Write (once per source version), import and compile the kernel module."""
    source = _module_source(nc)
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    name = f"finegrain_fused_{digest}"
    path = _cache_dir() / f"{name}.py"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(source)
        os.replace(tmp, path)
    try:
        return _load(name, path)
    except Exception:                         # a stale or corrupt numba cache: drop it, compile
        for stale in (path.parent / "__pycache__").glob(f"{name}.*"):
            stale.unlink(missing_ok=True)
        return _load(name, path)


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module                # numba's cache finds the globals by module name
    try:
        with vectorize.wide_vectors(slp=True):
            spec.loader.exec_module(module)   # compiles (or loads numba's cache) with SLP on
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _kernels(nc: int = 16) -> ModuleType:
    with _LOCK:
        return _module(nc)


def exp_shifted(x: np.ndarray, shift: float = 0.0) -> tuple[np.ndarray, float]:
    """``(exp(x - shift), sum)`` by the kernel's exponential (for tests of its accuracy)."""
    row = np.array(x, dtype=np.float64).ravel().copy()
    total = _kernels().exp_shift_sum(row, row.size, row.size, float(shift))
    return row, total


# --------------------------------------------------------------------------- key side and blocks
def _round_up(x: int, m: int) -> int:
    return -(-x // m) * m


def _columns(d: int) -> tuple[int, int]:
    """``(nc, dp)``: NN tile columns (32 when that pads ``d`` no further than 16, measured faster
    at d = 64; else 16) and ``d`` padded to a multiple of it."""
    nc = 32 if _round_up(d, 32) == _round_up(d, 16) else 16
    return nc, _round_up(d, nc)


@dataclass(frozen=True, eq=False)
class FusedKeys:
    """The key side in the kernel's layouts: ``K = A2`` and ``h = A3 Y``, padded with zeros.

    ``Kp``, ``Hp``: panels ``(n_kp/NR, dp, NR)`` (key-contiguous, for the NT products);
    ``K3``, ``H3``: ``(n_kp, dp/nc, nc)`` row-major chunks (for the NN products); see
    :func:`_columns` for ``nc`` and ``dp``.
    """

    Kp: np.ndarray
    Hp: np.ndarray
    K3: np.ndarray
    H3: np.ndarray
    n_k: int
    d: int
    dp: int
    nc: int

    @classmethod
    def build(cls, K: np.ndarray, h: np.ndarray) -> "FusedKeys":
        n_k, d = K.shape
        nc, dp = _columns(d)
        nkp = _round_up(n_k, NR)

        def padded(M: np.ndarray) -> np.ndarray:
            out = np.zeros((nkp, dp))
            out[:n_k, :d] = M
            return out

        Kz, hz = padded(K), padded(h)
        panels = lambda M: np.ascontiguousarray(M.reshape(nkp // NR, NR, dp).transpose(0, 2, 1))  # noqa: E731
        return cls(
            Kp=panels(Kz), Hp=panels(hz), K3=Kz.reshape(nkp, dp // nc, nc), H3=hz.reshape(nkp, dp // nc, nc),
            n_k=n_k, d=d, dp=dp, nc=nc,
        )


class _Buffers(threading.local):
    """Per-thread work arrays, reused across blocks (``block x n_k`` scores and ``block x d`` rows)."""

    def get(self, bp: int, keys: FusedKeys) -> tuple[np.ndarray, ...]:
        shape = (bp, keys.dp, keys.Kp.shape[0] * NR, keys.nc)
        if getattr(self, "shape", None) != shape:
            nkp, dp, nc = shape[2], keys.dp, keys.nc
            self.arrays = (
                np.zeros((bp, dp)), np.zeros((bp, dp)), np.empty((bp, nkp)),
                np.empty((bp, dp // nc, nc)), np.empty((bp, dp)), np.empty((bp, dp // nc, nc)),
            )
            self.shape = shape
        return self.arrays


_BUFFERS = _Buffers()


def block_terms(keys: FusedKeys, X: np.ndarray, A1: np.ndarray, E: np.ndarray) -> tuple[np.ndarray, float]:
    """``((1/d) A1^T p A2, 0.5 ||c||^2)`` of one block of query rows (its rows of ``A1``, ``E``)."""
    rows, d = A1.shape
    bp = _round_up(rows, MR)
    Qb, Eb, S, Att3, C, W3 = _BUFFERS.get(bp, keys)
    Qb[:] = 0.0                               # the padding must be zero (buffers are reused)
    Eb[:] = 0.0
    Eb[:rows, :d] = E
    G = np.empty((d, d))
    loss = _kernels(keys.nc).block(
        np.array(A1, order="C"), np.array(X, order="C"), Qb, Eb, keys.Kp, keys.Hp, keys.K3, keys.H3,
        S, Att3, C, W3, G, keys.n_k, rows, d,
    )
    return G, float(loss)


def summation_depths(rows: int, n_k: int, d: int, block: int) -> tuple[int, int, int, int]:
    """The depths of the kernel's long sums (see :class:`attention.oracle.SumDepths`).

    Softmax denominator: 8 lanes of ``n_kp / 8`` terms, then 4 additions.  ``f h`` and
    ``p A2``: each key tile of ``TILE`` keys is a chain of FMAs (one rounding per term; a
    separate product rounding is counted too), the tile sums are added into the output one by
    one, then ``f h`` is scaled by ``1/l``.  ``A1^T W / d``: a chain over the block's rows,
    the division, then the block terms in order.  The loss: a chain over ``block * dp``
    squares, the ``1/2``, the block terms.  Every depth is an upper bound.
    """
    nkp = _round_up(n_k, NR)
    _, dp = _columns(d)
    block = min(block, rows)
    blocks = -(-rows // block)
    return (
        nkp // 8 + 4,
        TILE + 1 + -(-nkp // TILE) + 1,
        block + 1 + 1 + blocks,
        block * dp + 1 + 1 + blocks,
    )


_BLAS_HOLD: dict[str, Any] = {"depth": 0, "limit": None}   # the main thread's, only it uses it


@lru_cache(maxsize=1)
def _blas_controller() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextmanager
def serial_blas() -> Iterator[None]:
    """BLAS on one thread while a fused computation prepares and runs (from the main thread).

    The ``O((n + n_k) d^2)`` products before the kernel (``A3 Y``, the bound's magnitudes)
    call numpy's BLAS; a multi-threaded OpenBLAS then keeps its threads spinning for a while
    after each call (by design, to be ready for the next), taking cores from the kernel's own
    threads: measured on 2 cores, d = 64, about 50 ms per gradient instead of 45 at n = 2048
    and 2.2-2.4 s instead of 1.9-2.1 s at n = 16384.  On one thread those products cost little.
    OpenBLAS takes its thread count from the main thread only (a call from another thread
    changes nothing, so a limit set there could not be undone there either); elsewhere this
    is a no-op.  Nested uses share one limit (threadpoolctl's), restored by the outermost.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _BLAS_HOLD["depth"] == 0:
        _BLAS_HOLD["limit"] = _blas_controller().limit(limits=1, user_api="blas")
    _BLAS_HOLD["depth"] += 1
    try:
        yield
    finally:
        _BLAS_HOLD["depth"] -= 1
        if _BLAS_HOLD["depth"] == 0:
            _BLAS_HOLD["limit"].restore_original_limits()
            _BLAS_HOLD["limit"] = None


def warm_up() -> None:
    """Compile (or load from numba's cache) both kernel variants now instead of on first use."""
    for nc in (16, 32):
        _kernels(nc)
