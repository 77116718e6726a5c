"""The exact attention gradient, loss and forward on a Dask cluster, one task per range of query rows.

Every quantity of THEORY 0.1 is row-local except the last product, so the exact gradient is a
sum over ranges of query rows ``J = [start, stop)``:

    dL/dX = sum_J  G_J,     G_J = (1/d) A1[J]^T p[J] A2,     L = sum_J 0.5 ||c[J]||_F^2 ,

and a range needs only its own rows of ``A1`` and ``E`` and all of ``A2, A3, X, Y``.  A task
computes ``G_J`` with the single-process kernel :func:`attention.oracle.gradient_partial`
(the same code, in the same blocks of ``block`` rows, so every block's term has the same
bits as inside :func:`attention.oracle.gradient`); the ``d x d`` partials are then summed by
a reduction tree of tasks.  The shared arrays ``A2, A3, X, Y`` are sent once to every worker
(``scatter(broadcast=True)``); the rows travel with their task.

**Same answer as one process.**  A range of ``task_rows`` rows is a whole number of blocks.
The partials are added in range order, ``fan_in`` per reduction task (``reduction="fold"``,
the default: a left-deep tree doing the additions of a loop), so:

- with ``task_rows == block`` the float64 gradient and loss are the same bits as
  :func:`attention.oracle.gradient` with that ``block``, on any cluster (float32: the
  oracle adds its blocks in float32, here the float64 partials are added in float64); :func:`forward` is
  the same bits whenever ``task_rows`` is a multiple of ``block``, :func:`loss` whenever
  ``task_rows == block`` (it adds the ranges' losses with :func:`math.fsum`, as the oracle
  adds its blocks');
- otherwise only the grouping of the additions of block terms differs; the stated error
  bound is the oracle's a-priori bound (:func:`attention.oracle.error_bounds`), which holds
  for any order and grouping of the row sums, so it covers this result too.

``reduction="tree"`` adds the partials by a balanced tree (depth ``log_fan_in`` of the number
of tasks instead of ``#tasks / fan_in``), also deterministic and within the same bound.

**Instances too large to store.**  Besides an :class:`~attention.instance.AttentionInstance`,
every function takes a *row source* (:class:`RowSource`): an object that generates the rows
of ``A1`` and ``E`` of any range and the key side ``(A2, A3, X, Y)`` on demand.  The source (a
formula, say: kilobytes) is what is sent to the workers; each task builds its rows there, so
no ``n x d`` array exists anywhere, and the error bound is assembled from the ranges' own
magnitudes.  :func:`materialise` builds the whole instance of a source (small cases).

Notes
-----
Cost per task: ``8 r n_k d`` flops and ``r n_k`` exponentials for ``r = task_rows``, memory
``O(n_k d + block n_k)`` on the worker.  Bytes shipped: ``16 n_k d + 16 d^2`` once per worker
(the key side), ``16 r d`` per task (its rows; nothing for a row source) and ``8 d^2 + O(1)``
back.  ``docs/distributed.md`` works out the scaling for ``n = 2^20`` and ``2^24``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from attention.errors import InvalidInstance, PrecisionError
from attention.instance import AttentionInstance
from attention.results import ForwardResult, GradientResult, LossResult
from reductions.distributed_common import (
    aligned,
    block_ranges,
    cluster_failures,
    fold_reduce,
    run_with_retries,
    scatter_shared,
    scheduler_client,
    tree_reduce,
)

#: Partials summed per reduction task.
DEFAULT_FAN_IN = 16
REDUCTIONS = ("fold", "tree")
#: Default rows per task on a cluster: enough ranges to keep every worker thread busy ...
TASKS_PER_THREAD = 4
#: ... but no more rows than this (about 2 s of one core at n_k = 65536, d = 64).
MAX_TASK_ROWS = 4096


# --------------------------------------------------------------------------- row sources
@dataclass(frozen=True, eq=False)
class KeySide:
    """What every range needs: keys ``A2``, values ``A3`` and the weights ``X``, ``Y``."""

    A2: np.ndarray
    A3: np.ndarray
    X: np.ndarray
    Y: np.ndarray

    def key_side(self) -> "KeySide":
        return self

    def __setstate__(self, state: dict) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, aligned(value))


class RowSource(Protocol):
    """An attention instance given range by range (picklable; sent to every worker once).

    ``rows(start, stop)`` returns ``(A1[start:stop], E[start:stop])``; ``key_side()`` returns
    the :class:`KeySide` (a generator may build it on first use and keep it); ``meta`` is a
    JSON-serialisable description.
    """

    n: int
    n_k: int
    d: int
    meta: dict

    def key_side(self) -> KeySide: ...

    def rows(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]: ...


def _as_source(instance: Any) -> Any:
    if isinstance(instance, AttentionInstance):
        return instance
    if all(hasattr(instance, name) for name in ("n", "n_k", "d", "key_side", "rows")):
        return instance
    raise InvalidInstance(
        f"instance: expected an AttentionInstance or a row source (n, n_k, d, key_side(), "
        f"rows(start, stop)), got {type(instance).__name__}"
    )


def _key_side(instance: AttentionInstance) -> KeySide:
    return KeySide(A2=instance.A2, A3=instance.A3, X=instance.X, Y=instance.Y)


def range_instance(
    shared: Any, start: int, stop: int, rows: tuple[np.ndarray, np.ndarray] | None = None
) -> AttentionInstance:
    """The instance made of query rows ``[start, stop)`` and all the keys.

    ``shared`` is an :class:`AttentionInstance`, a :class:`RowSource` or a :class:`KeySide`;
    the rows (``A1`` and ``E`` of the range) are taken from it when not given.
    """
    if isinstance(shared, AttentionInstance):
        if rows is None and (start, stop) == (0, shared.n):
            return shared
        keys = _key_side(shared)
        A1, E = (shared.A1[start:stop], shared.E[start:stop]) if rows is None else rows
    else:
        keys = shared.key_side()
        A1, E = shared.rows(start, stop) if rows is None else rows
    A1, E = aligned(A1), aligned(E)
    return AttentionInstance(A1=A1, A2=keys.A2, A3=keys.A3, E=E, X=keys.X, Y=keys.Y)


def materialise(source: Any, task_rows: int = MAX_TASK_ROWS) -> AttentionInstance:
    """The whole instance of a row source (``2 (n + n_k) d`` floats: small cases only)."""
    source = _as_source(source)
    if isinstance(source, AttentionInstance):
        return source
    pieces = [source.rows(start, stop) for start, stop in block_ranges(source.n, task_rows)]
    keys = source.key_side()
    return AttentionInstance(
        A1=np.concatenate([p[0] for p in pieces]),
        A2=keys.A2,
        A3=keys.A3,
        E=np.concatenate([p[1] for p in pieces]),
        X=keys.X,
        Y=keys.Y,
        meta=dict(getattr(source, "meta", {}) or {}),
    )


# --------------------------------------------------------------------------- the reduction's instance, per block
class _Vectors(Protocol):
    """OV vectors by index range (:class:`solvers.ov_distributed.SatOV` is one)."""

    n_U: int
    n_V: int
    m: int

    def U_block(self, start: int, stop: int) -> np.ndarray: ...

    def V_block(self, start: int, stop: int) -> np.ndarray: ...


def _padded_rows(block: Callable[[int, int], np.ndarray], size: int, index: np.ndarray) -> np.ndarray:
    """Rows ``index`` of a side padded by repeating its row 0 (index ``>= size`` reads row 0).

    ``index`` is a few increasing runs; each run is generated with one ``block`` call.
    """
    index = np.where(index < size, index, 0)
    cuts = np.flatnonzero(np.diff(index) != 1) + 1
    runs = np.split(index, cuts)
    return np.concatenate([block(int(run[0]), int(run[-1]) + 1) for run in runs])


@dataclass(frozen=True, eq=False)
class ProbeRows:
    """The OV -> gradient instance of :mod:`reductions.rules.ov_to_gradient_probe`, by row range.

    Construction H with probe columns (THEORY 2.4, 4.7), generated from a source of OV
    vectors (a :class:`~solvers.ov_distributed.SatOV`: a CNF formula) one range of query
    rows at a time, so neither the ``2^(N/2) x m`` OV sides nor the ``2n x d'`` query
    matrices are ever stored; each worker builds the key side once.

    Parameters
    ----------
    vectors : an object with ``n_U, n_V, m, U_block(start, stop), V_block(start, stop)``.
    mu : the target size ``E[:, 0] = -mu rho``; default that of the rule, ``d' (n + 1)``.

    Notes
    -----
    With ``n = max(n_U, n_V)`` (the smaller side padded by repeating its row 0),
    ``s = ln(8 n (n+1))`` and ``d' = 2m + 2``: query ``r < 2n`` has the pattern
    ``(a_i, 1 - a_i)``, ``i = r mod n``, and the probe ``rho_r = [r < n]``; key ``k < n`` has
    ``(1 - b_k, 1_m)`` and the probe ``v_k = 1``, key ``n + k`` the dummy ``1_{2m}``;
    ``E[:, 0] = -mu rho``.  Scaling, probe columns and layout are those of the rule itself:
    each range is passed through :func:`reductions.decoders.probe.probe_instance` with the
    other side reduced to one placeholder row, so the arrays are the rule's, bit for bit
    (the tests compare them).  A range of ``r`` rows costs ``O(r m)``, the key side ``O(n m)``
    once per worker (``16 n d'`` bytes).

    Examples
    --------
    >>> from solvers.ov_distributed import SatOV
    >>> source = ProbeRows(SatOV(n_vars=4, clauses=[[1, -3], [2, 4]]))
    >>> (source.n, source.n_k, source.d), source.mu
    ((8, 8, 6), 30.0)
    >>> A1, E = source.rows(3, 5)
    >>> (A1[:, 4] > 0).tolist(), E[:, 0].tolist()   # the query probe and the target: rows 3, 4 of 8
    ([True, False], [-30.0, -0.0])
    """

    vectors: Any
    mu: float | None = None

    def __post_init__(self) -> None:
        from reductions.decoders.probe import check_mu, default_mu
        from reductions.rules.ov_to_attention_h import scale_gradient

        n_ov = max(self.vectors.n_U, self.vectors.n_V, 1)
        object.__setattr__(self, "n_ov", n_ov)
        object.__setattr__(self, "s", scale_gradient(n_ov))
        placeholder = np.ones((1, 2 * self.vectors.m))
        raw = self._raw(placeholder, placeholder, np.zeros(1))
        object.__setattr__(self, "mu", default_mu(raw) if self.mu is None else check_mu(self.mu))

    @property
    def n(self) -> int:
        return 2 * self.n_ov

    @property
    def n_k(self) -> int:
        return 2 * self.n_ov

    @property
    def d(self) -> int:
        return 2 * self.vectors.m + 2

    @property
    def meta(self) -> dict:
        return dict(self._embed(np.arange(1), keys=False).meta, generator="ProbeRows")

    def decide(self, result: GradientResult) -> bool:
        """Decoder (c), one call: is the formula satisfiable (the OV instance YES), from ``dL/dX``.

        The statistic ``V1 = d' G[P, W] / (mu beta^2)`` and its promise gap are the rule's
        (:func:`reductions.decoders.probe.row_gap`, THEORY 4.7); the oracle's error bound is
        carried to the statistic, and a margin not above it raises
        :class:`~attention.errors.PrecisionError` instead of guessing.
        """
        from reductions.decoders.probe import row_gap

        unit = self.d / (self.mu * self.meta["beta"] ** 2)
        placeholder = np.ones((1, 2 * self.vectors.m))
        gap = row_gap(self._raw(placeholder, placeholder, np.zeros(1)), self.mu, self.n_ov)
        return gap.decide(unit * float(result.gradient[-2, -1]), unit * result.error_bound)

    def rows(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """``(A1[start:stop], E[start:stop])``."""
        inst = self._embed(np.arange(start, stop), keys=False)
        return inst.A1, inst.E

    def key_side(self) -> KeySide:
        """``(A2, A3, X, Y)``, built on first use and kept (one copy per worker)."""
        cached = self.__dict__.get("_keys")
        if cached is None:
            inst = self._embed(np.arange(self.n_k), keys=True)
            cached = KeySide(A2=inst.A2, A3=inst.A3, X=inst.X, Y=inst.Y)
            object.__setattr__(self, "_keys", cached)
        return cached

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_keys"}  # ship the recipe, not the keys

    def _raw(self, Qp: np.ndarray, Kp: np.ndarray, v: np.ndarray) -> Any:
        from reductions.embedding import RawAttention

        m = self.vectors.m
        return RawAttention(
            Qp, Kp, v, self.s, rows=self.n_ov, t_yes=1.0 / (self.n_ov + 1), t_no=math.exp(-self.s),
            yes_copies=2, max_score=self.s * m, spread=self.s * m,
            meta={"construction": "H", "m": m, "n_ov": self.n_ov},
        )

    def _embed(self, index: np.ndarray, keys: bool) -> AttentionInstance:
        """The rule's embedding of queries ``index`` (or of keys ``index``) against one placeholder."""
        from reductions.decoders.probe import probe_instance
        from reductions.problems.ov import OV
        from reductions.rules.ov_to_maxip import maxip_encoding

        n, m = self.n_ov, self.vectors.m
        placeholder = np.ones((1, 2 * m))
        real = index < n
        if keys:
            V = _padded_rows(self.vectors.V_block, self.vectors.n_V, index[real]) if real.any() else np.zeros((0, m), np.uint8)
            _, Bk = maxip_encoding(OV(np.zeros((0, m), np.uint8), V))
            Kp = np.concatenate([Bk, np.ones((int((~real).sum()), 2 * m))]).astype(np.float64)
            v = real.astype(np.float64)
            inst, _ = probe_instance(self._raw(placeholder, Kp, v), np.zeros(1), v, None, self.mu)
        else:
            U = _padded_rows(self.vectors.U_block, self.vectors.n_U, index % n) if index.size else np.zeros((0, m), np.uint8)
            Aq, _ = maxip_encoding(OV(U, np.zeros((0, m), np.uint8)))
            rho = real.astype(np.float64)
            raw = self._raw(Aq.astype(np.float64), placeholder, np.zeros(1))
            inst, _ = probe_instance(raw, rho, np.zeros(1), -self.mu * rho, self.mu)
        return inst


# --------------------------------------------------------------------------- the tasks
@dataclass(frozen=True, eq=False)
class Partial:
    """What a range (or a run of ranges) contributes: ``G_J``, ``L_J`` and the input magnitudes."""

    gradient: np.ndarray
    loss: float
    magnitudes: Any


def _gradient_task(shared: Any, start: int, stop: int, rows: Any, options: dict[str, Any]) -> Partial:
    """One task: ``(G_J, L_J)`` of query rows ``J = [start, stop)`` by the oracle's own kernel."""
    from attention.oracle import gradient_partial, magnitudes

    inst = range_instance(shared, start, stop, rows)
    G, L, _ = gradient_partial(inst, 0, stop - start, **options)
    return Partial(G, L, magnitudes(inst))


def _forward_task(
    shared: Any, start: int, stop: int, rows: Any, options: dict[str, Any]
) -> tuple[tuple[np.ndarray, float], Any]:
    """One task: the forward rows ``Att[J]`` and their stated error (the oracle's forward on the range).

    Each row of ``Att`` depends on its own query row only, so the range's bound (the smaller
    of the a-priori and the a-posteriori one, :func:`attention.oracle.forward`) holds for
    these rows as computed here.
    """
    from attention.oracle import forward, magnitudes

    inst = range_instance(shared, start, stop, rows)
    result = forward(inst, **options)
    return (result.att, result.error_bound), magnitudes(inst)


def _loss_task(shared: Any, start: int, stop: int, rows: Any, options: dict[str, Any]) -> tuple[float, Any]:
    """One task: ``L_J`` (the oracle's loss on the range, its blocks added by ``fsum``)."""
    from attention.oracle import loss, magnitudes

    inst = range_instance(shared, start, stop, rows)
    return loss(inst, **options).loss, magnitudes(inst)


def _add_partials(*parts: Partial) -> Partial:
    """Left to right, from zero: the additions ``G = 0; G += G_J; ...`` of the oracle's loop."""
    G = np.zeros_like(parts[0].gradient)
    L = 0.0
    for part in parts:
        G += part.gradient
        L += part.loss
    return Partial(G, L, merge_magnitudes([p.magnitudes for p in parts]))


def merge_magnitudes(parts: Sequence[Any]) -> Any:
    """The :class:`attention.oracle.Magnitudes` of a union of row ranges (bounds stay bounds).

    Row maxima are maxima; ``a1`` (the max column 1-norm of ``A1``) is bounded by the sum of
    the ranges' ``a1``, rounded up; the key magnitudes are the same in every range.
    """
    first = parts[0]
    return replace(
        first,
        rows=sum(p.rows for p in parts),
        qn=max(p.qn for p in parts),
        en=max(p.en for p in parts),
        e1=max(p.e1 for p in parts),
        emax=max(p.emax for p in parts),
        a1=_sum_up(p.a1 for p in parts),
    )


def _sum_up(values: Any) -> float:
    """At least the exact sum of non-negative ``values`` (``fsum`` rounded up one ulp)."""
    total = math.fsum(values)
    return float(np.nextafter(total, np.inf)) if total > 0 else 0.0


# --------------------------------------------------------------------------- where the tasks run
class _Here:
    """Runs every task in this process, in range order (``scheduler=None``; no dask)."""

    threads = 1

    def __init__(self, source: Any) -> None:
        self.source = source

    def map_ranges(self, task: Callable[..., Any], ranges: Sequence[tuple[int, int]], *args: Any) -> list[Any]:
        return [task(self.source, start, stop, None, *args) for start, stop in ranges]

    def follow(self, parts: Sequence[Any], ranges: Sequence[tuple[int, int]], done: Callable[[int], None]) -> None:
        for start, stop in ranges:  # computed already, in range order
            done(stop - start)

    def submit(self, func: Callable[..., Any], *args: Any) -> Any:
        return func(*args)

    def gather(self, value: Any) -> Any:
        return value


class _OnCluster:
    """Runs the tasks on a Dask cluster; the shared part is scattered once to every worker.

    A stored instance ships its key side once and each range's rows with its task; a row
    source ships itself once and each task generates its rows on the worker.
    """

    def __init__(self, client: Any, source: Any, what: str) -> None:
        self.client = client
        self.source = source
        self.stored = isinstance(source, AttentionInstance)
        payload = _key_side(source) if self.stored else source
        self.shared = scatter_shared(client, payload, what)
        self.threads = max(1, sum(client.nthreads().values()))

    def map_ranges(self, task: Callable[..., Any], ranges: Sequence[tuple[int, int]], *args: Any) -> list[Any]:
        return [
            self.client.submit(task, self.shared, start, stop, self._rows(start, stop), *args, pure=False)
            for start, stop in ranges
        ]

    def follow(self, parts: Sequence[Any], ranges: Sequence[tuple[int, int]], done: Callable[[int], None]) -> None:
        """Call ``done(rows)`` as each range's task finishes (failed or cancelled ones too:
        :meth:`gather` raises their error next)."""
        from distributed import as_completed

        rows = {part.key: stop - start for part, (start, stop) in zip(parts, ranges)}
        for part in as_completed(parts):
            done(rows[part.key])

    def _rows(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray] | None:
        if not self.stored:
            return None
        return self.source.A1[start:stop], self.source.E[start:stop]

    def submit(self, func: Callable[..., Any], *args: Any) -> Any:
        return self.client.submit(func, *args, pure=False)

    def gather(self, value: Any) -> Any:
        return self.client.gather(value)


def _run(scheduler: Any, source: Any, what: str, retries: int, job: Callable[[Any], Any]) -> Any:
    """``job(executor)`` here or on the cluster named by ``scheduler`` (rerun after lost work)."""
    if scheduler is None:
        return job(_Here(source))

    def attempt() -> Any:
        with scheduler_client(scheduler) as client, cluster_failures(what):
            return job(_OnCluster(client, source, what))

    return run_with_retries(attempt, what, retries)


# --------------------------------------------------------------------------- options
@dataclass(frozen=True)
class _Plan:
    """How a call runs: the oracle's kernel and block, rows per task, the reduction."""

    block: int
    kernel: str | None
    task_rows: int | None
    task_threads: int | None
    fan_in: int
    reduction: str
    dtype: Any

    def rows_per_task(self, n: int, threads: int, in_process_stored: bool) -> int:
        """``task_rows`` if given; else all rows (a stored instance in this process) or
        about ``n / (TASKS_PER_THREAD * threads)``, at most ``MAX_TASK_ROWS``; a multiple of ``block``."""
        if self.task_rows is not None:
            return self.task_rows
        if in_process_stored:
            return max(n, 1)
        rows = min(MAX_TASK_ROWS, -(-n // (TASKS_PER_THREAD * threads)))
        return max(self.block, rows // self.block * self.block)

    def options(self, executor: Any) -> dict[str, Any]:
        """Keyword arguments of the oracle call in each task (threads: all cores here, per task on a cluster)."""
        options = {"block": self.block, "dtype": self.dtype, "threads": None if isinstance(executor, _Here) else self.task_threads}
        if self.kernel is not None:
            options["kernel"] = self.kernel
        return options


def _ranges(plan: _Plan, source: Any, executor: Any) -> list[tuple[int, int]]:
    in_process_stored = isinstance(executor, _Here) and isinstance(source, AttentionInstance)
    return block_ranges(source.n, plan.rows_per_task(source.n, executor.threads, in_process_stored))


def _kernel(source: Any, kernel: str, dtype: Any) -> str:
    """The kernel :func:`attention.oracle.gradient` would use for this instance (``"auto"`` resolved)."""
    from attention.oracle import FUSED_MIN_KEY_ENTRIES, KERNELS, precision

    if kernel not in KERNELS:
        raise InvalidInstance(f"kernel: expected one of {', '.join(KERNELS)}, got {kernel!r}")
    if kernel != "auto":
        return kernel
    big = source.n_k * source.d >= FUSED_MIN_KEY_ENTRIES
    return "fused" if big and precision(dtype).name == "float64" else "numpy"


def _plan(
    source: Any,
    block: int | None,
    task_rows: int | str | None,
    dtype: Any,
    kernel: str | None = None,
    task_threads: int | None = 1,
    fan_in: int = DEFAULT_FAN_IN,
    reduction: str = "fold",
) -> _Plan:
    """Validated options; ``kernel=None`` for the forward pass (the oracle's numpy kernel);
    ``task_rows="block"`` is one block per task."""
    from attention.oracle import default_block, precision

    precision(dtype)  # validates dtype
    if reduction not in REDUCTIONS:
        raise InvalidInstance(f"reduction: expected one of {', '.join(REDUCTIONS)}, got {reduction!r}")
    resolved = None if kernel is None else _kernel(source, kernel, dtype)
    block = default_block(source.n_k, source.d, resolved or "numpy") if block is None else block
    _require_positive(block, "block")
    if isinstance(task_rows, str) and task_rows == "block":
        task_rows = int(block)  # one block per task: the oracle's bits
    if task_threads is not None:
        _require_positive(task_threads, "task_threads")
    if task_rows is not None:
        _require_positive(task_rows, "task_rows")
        if task_rows % block:
            raise InvalidInstance(
                f"task_rows: {task_rows} is not a multiple of block = {block}; a task computes "
                "whole blocks (pass task_rows = k * block)"
            )
    if isinstance(fan_in, bool) or not isinstance(fan_in, int) or fan_in < 2:
        raise InvalidInstance(f"fan_in: must be an integer >= 2, got {fan_in!r}")
    return _Plan(int(block), resolved, None if task_rows is None else int(task_rows), task_threads, fan_in, reduction, dtype)


def _require_positive(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidInstance(f"{name}: must be a positive integer number of rows, got {value!r}")


def _bounds(source: Any, parts_magnitudes: Any, plan: _Plan) -> Any:
    """The oracle's a-priori bounds: over the stored instance, or over the merged ranges.

    With the summation depths of the oracle's kernel: the partials are added in range order
    (or by a tree, whose depth is no larger), so a block term meets no more additions than in
    the oracle's own loop over its blocks.
    """
    from attention.oracle import error_bounds, magnitudes, precision

    mag = magnitudes(source) if isinstance(source, AttentionInstance) else parts_magnitudes
    return error_bounds(mag, precision(plan.dtype), depths=_depths(source, plan))


def _depths(source: Any, plan: _Plan) -> Any:
    """As :func:`attention.oracle.gradient` states them: the fused kernel's, capped by the worst case."""
    if plan.kernel != "fused":
        return None
    from dataclasses import astuple

    from attention.kernels import summation_depths
    from attention.oracle import SumDepths

    fused = summation_depths(source.n, source.n_k, source.d, plan.block)
    worst = SumDepths.worst_case(source.n, source.n_k, source.d)
    return SumDepths(*(min(a, b) for a, b in zip(fused, astuple(worst))))


def _info(plan: _Plan, ranges: Sequence[tuple[int, int]], executor: Any, scheduler: Any, bounds: Any) -> dict[str, Any]:
    return {
        "block": plan.block,
        "kernel": plan.kernel or "numpy",
        "task_rows": ranges[0][1] - ranges[0][0],
        "tasks": len(ranges),
        "reduction": plan.reduction,
        "fan_in": plan.fan_in,
        "scheduler": "this process" if scheduler is None else str(getattr(scheduler, "scheduler", scheduler)),
        "worker_threads": executor.threads,
        "dtype": np.dtype(plan.dtype).name,
        "bound": "a-priori rounding-error analysis (attention.oracle.error_bounds), any order of the row sums",
        "bound_terms": dict(bounds.terms),
    }


def _require_finite(value: Any, what: str) -> None:
    if not np.all(np.isfinite(value)):
        raise PrecisionError(f"{what} overflowed: rescale the instance or use method='mp'")


# --------------------------------------------------------------------------- public API
def gradient(
    instance: Any,
    scheduler: Any = None,
    *,
    block: int | None = None,
    task_rows: int | str | None = None,
    reduction: str = "fold",
    fan_in: int = DEFAULT_FAN_IN,
    dtype: Any = np.float64,
    kernel: str = "auto",
    task_threads: int | None = 1,
    retries: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> GradientResult:
    """``dL/dX`` as a sum over ranges of query rows, one task per range, here or on a Dask cluster.

    Parameters
    ----------
    instance : AttentionInstance or RowSource
        A stored instance, or a source generating its rows per range inside the tasks.
    scheduler : None, "local", address or distributed.Client
        ``None`` (default) runs the ranges in this process without dask; ``"local"`` a
        2-worker cluster on this machine; ``"tcp://HOST:PORT"`` a running Dask scheduler; a
        ``Client`` is used as is (see :mod:`reductions.distributed_common`).
    block : int, optional
        Rows per kernel block, as in :func:`attention.oracle.gradient` (default: the
        oracle's, :func:`attention.oracle.default_block` of the kernel used); memory
        ``O(block n_k)`` per kernel thread.
    task_rows : int, optional
        Rows per task, a multiple of ``block``.  Default: all rows for a stored instance in
        this process (one call of the oracle's kernel), else about
        ``n / (4 * worker threads)``, at most 4096.  ``task_rows = block`` (or ``"block"``:
        one block of the default size per task) reproduces the oracle's bits (module docstring).
    reduction : {"fold", "tree"}
        How the ``d x d`` partials are added: left to right in range order (the oracle's
        order), or by a balanced tree.
    fan_in : int
        Partials per reduction task.
    dtype : np.float64 or np.float32
        Working precision of the kernel; the bound is stated for it.
    kernel : {"auto", "fused", "numpy"}
        The oracle's kernel (``"auto"`` resolved as :func:`attention.oracle.gradient` does).
    task_threads : int or None
        Threads of the oracle's kernel inside one task on a cluster: 1 (the default) when
        every worker runs one task per core; ``None`` lets a task use every core (workers
        started with ``--nthreads 1`` on many-core machines).  In this process the oracle's
        default (all cores for the fused kernel).  The bits do not depend on it.
    retries : int
        Reruns from scratch after the cluster lost work (workers died, restart).
    progress : callable, optional
        ``progress(rows_done, n)``, called as the ranges' tasks finish on the cluster (in
        this process, once they are computed); a rerun counts from 0 again.

    Returns
    -------
    GradientResult
        ``method="exact"``; ``error_bound`` and ``loss_error_bound`` are the oracle's
        a-priori bounds (:func:`attention.oracle.error_bounds`); ``info`` adds ``tasks``,
        ``task_rows``, ``reduction``, ``scheduler``, ``worker_threads``.

    Raises
    ------
    reductions.distributed_common.ClusterError
        The cluster lost work on every attempt; no partial result is returned.

    Notes
    -----
    AS24 Lemma C.7 with the ``1/d`` factor (THEORY 0.1): ``dL/dX = (1/d) A1^T p A2`` is the
    sum over row ranges ``J`` of ``(1/d) A1[J]^T p[J] A2``.  Work ``8 n n_k d`` flops and
    ``n n_k`` exponentials in ``ceil(n / task_rows)`` tasks; the reduction adds
    ``ceil(n / task_rows)`` ``d x d`` matrices.

    Examples
    --------
    >>> from attention import oracle
    >>> inst = AttentionInstance.random(n=12, d=3, seed=0)
    >>> res = gradient(inst, block=4, task_rows=4)           # 3 tasks, in this process
    >>> bool(np.array_equal(res.gradient, oracle.gradient(inst, block=4).gradient))
    True
    >>> res.info["tasks"], res.error_bound == oracle.gradient(inst).error_bound
    (3, True)
    """
    source = _as_source(instance)
    plan = _plan(source, block, task_rows, dtype, kernel, task_threads, fan_in, reduction)

    def job(executor: Any) -> GradientResult:
        ranges = _ranges(plan, source, executor)
        parts = executor.map_ranges(_gradient_task, ranges, plan.options(executor))
        shape = fold_reduce if plan.reduction == "fold" else tree_reduce
        reduced = shape(parts, lambda group: executor.submit(_add_partials, *group), plan.fan_in)
        if progress is not None:
            done = [0]

            def count(rows: int) -> None:
                done[0] += rows
                progress(done[0], source.n)

            executor.follow(parts, ranges, count)
        total = executor.gather(reduced)
        _require_finite(total.gradient, "the gradient")
        _require_finite(total.loss, "the loss")
        bounds = _bounds(source, total.magnitudes, plan)
        return GradientResult(
            gradient=total.gradient,
            loss=total.loss,
            error_bound=bounds.gradient,
            loss_error_bound=bounds.loss,
            method="exact",
            info=_info(plan, ranges, executor, scheduler, bounds),
        )

    return _run(scheduler, source, "gradient", retries, job)


def forward(
    instance: Any,
    scheduler: Any = None,
    *,
    block: int | None = None,
    task_rows: int | None = None,
    dtype: Any = np.float64,
    retries: int = 2,
) -> ForwardResult:
    """``Att = softmax_rows(A1 X A2^T / d) A3 Y`` (n x d), one task per range of query rows.

    The rows of each range come back in order; with ``task_rows`` a multiple of ``block``
    they are the same bits as :func:`attention.oracle.forward`.  The whole ``n x d`` output is
    gathered here (``8 n d`` bytes).  The stated entrywise error is the largest of the
    ranges' own bounds (each the oracle's, a posteriori where that is smaller), never above
    the bound :func:`attention.oracle.forward` states for the whole instance.  Options as in
    :func:`gradient`.

    Examples
    --------
    >>> from attention import oracle
    >>> inst = AttentionInstance.random(n=10, d=2, seed=3)
    >>> res = forward(inst, block=2, task_rows=4)
    >>> bool(np.array_equal(res.att, oracle.forward(inst, block=2).att)), res.info["tasks"]
    (True, 3)
    """
    def make(values: list[tuple[np.ndarray, float]], bounds: Any, info: dict[str, Any]) -> ForwardResult:
        error = min(bounds.att, max(bound for _, bound in values))
        att = np.concatenate([rows for rows, _ in values])
        return ForwardResult(att=att, error_bound=error, method="exact", info=info)

    return _per_range(instance, scheduler, _forward_task, make, block, task_rows, dtype, retries)


def loss(
    instance: Any,
    scheduler: Any = None,
    *,
    block: int | None = None,
    task_rows: int | None = None,
    dtype: Any = np.float64,
    retries: int = 2,
) -> LossResult:
    """``L = 0.5 ||Att - E||_F^2`` (the forward pass only), one task per range of query rows.

    The ranges' losses are added with :func:`math.fsum` (correctly rounded), as the oracle
    adds its blocks': with ``task_rows == block`` the result is the same bits as
    :func:`attention.oracle.loss`.  Options as in :func:`gradient`.

    Examples
    --------
    >>> from attention import oracle
    >>> inst = AttentionInstance.random(n=10, d=2, seed=3)
    >>> loss(inst, block=2, task_rows=2).loss == oracle.loss(inst, block=2).loss
    True
    """
    def make(values: list[float], bounds: Any, info: dict[str, Any]) -> LossResult:
        total = math.fsum(values)
        _require_finite(total, "the loss")
        return LossResult(loss=total, error_bound=bounds.loss, method="exact", info=info)

    return _per_range(instance, scheduler, _loss_task, make, block, task_rows, dtype, retries)


def _per_range(
    instance: Any,
    scheduler: Any,
    task: Callable[..., tuple[Any, Any]],
    make: Callable[[list[Any], Any, dict[str, Any]], Any],
    block: int | None,
    task_rows: int | None,
    dtype: Any,
    retries: int,
) -> Any:
    """Run ``task`` on every range and ``make(values in range order, bounds, info)``."""
    source = _as_source(instance)
    plan = _plan(source, block, task_rows, dtype)

    def job(executor: Any) -> Any:
        ranges = _ranges(plan, source, executor)
        parts = executor.gather(executor.map_ranges(task, ranges, plan.options(executor)))
        bounds = _bounds(source, merge_magnitudes([m for _, m in parts]), plan)
        return make([value for value, _ in parts], bounds, _info(plan, ranges, executor, scheduler, bounds))

    return _run(scheduler, source, task.__name__.strip("_").replace("_task", ""), retries, job)
