"""Running finegrain's heavy kernels on a Dask cluster: scheduler choice, clients, reductions.

Three places run a kernel as many independent tasks: the exact attention gradient (one task
per block of query rows, :mod:`attention.distributed`), the Orthogonal Vectors brute force
(one task per tile of ``U x V``, :mod:`solvers.ov_distributed`), and the per-block instance
generators they use.  This module holds what they share:

* the ``--scheduler`` option of the CLI (:func:`add_scheduler_argument`) and the client it
  names (:func:`client_from_argument`): ``None`` runs every task in this process, one after
  the other, without importing dask; ``"local"`` starts a :class:`distributed.LocalCluster`
  of worker processes on this machine; any other value is the address of a running Dask
  scheduler (``tcp://host:8786``), started with ``dask scheduler`` / ``dask worker``;
* :func:`fold_reduce` and :func:`tree_reduce`, reduction trees whose shape depends only on
  the number of items, so a sum is the same bits whichever worker computes which node, in
  process or on a cluster (the fold does exactly the additions of a single-process loop);
* :func:`scatter_shared` (data every task needs, sent once to every worker) and
  :func:`aligned` (realign what a worker receives, so that numpy takes the same code path
  as in one process);
* :func:`cluster_failures` and :func:`run_with_retries`, which turn the ways a cluster can
  lose work (a worker killed too often, ``Client.restart``, lost scattered data, a lost
  connection) into one :class:`ClusterError` or a rerun from scratch, never into a partial
  or wrong answer.

dask is the optional extra ``finegrain[dist]``; it is imported only inside functions.
This module imports nothing but :mod:`attention.errors`, so that :mod:`attention` and
:mod:`solvers` can use it without pulling in the reduction registry.
"""

from __future__ import annotations

import argparse
import os
import time
from contextlib import contextmanager
from types import ModuleType
from typing import Any, Callable, Iterator, Sequence, TypeVar

from attention.errors import FinegrainError

T = TypeVar("T")

#: What to tell a user who asked for a cluster without the extra installed.
INSTALL_HINT = 'pip install "finegrain[dist]"'

#: Keyword arguments of the ``"local"`` cluster: worker processes, one thread each, no
#: dashboard, and the scheduler's small HTTP server (health checks) on a free port rather
#: than 8787, which another cluster on the machine may hold.
LOCAL_CLUSTER_OPTIONS = {
    "processes": True,
    "threads_per_worker": 1,
    "dashboard_address": None,
    "scheduler_kwargs": {"dashboard_address": ":0"},
}

SCHEDULER_HELP = (
    "where the tasks run: omit for this process (no dask needed), 'local' for a Dask "
    "cluster of worker processes on this machine, or the address of a running Dask "
    "scheduler such as tcp://10.0.0.5:8786 (see docs/distributed.md)"
)


class ClusterError(FinegrainError, RuntimeError):
    """The cluster lost work (workers died, the cluster restarted, the connection dropped).

    Raised instead of returning a result that misses the lost part; rerunning is safe
    (every task is deterministic).  ``retriable`` is false when a rerun would fail the same
    way (a task whose workers keep dying, e.g. out of memory).
    """

    def __init__(self, message: str, retriable: bool = True) -> None:
        super().__init__(message)
        self.retriable = retriable


def require_distributed() -> ModuleType:
    """Import :mod:`distributed`, or raise :class:`FinegrainError` saying how to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise FinegrainError(
            f"scheduler: running on a Dask cluster needs dask.distributed ({exc}); "
            f"install it with: {INSTALL_HINT}"
        ) from None
    return distributed


def check_scheduler(value: Any) -> Any:
    """Validate a scheduler argument: ``None``, ``"local"``, an address, or a ``Client``.

    Returns the value unchanged (an address stripped of surrounding blanks).

    Examples
    --------
    >>> check_scheduler(None) is None
    True
    >>> check_scheduler(" tcp://10.0.0.5:8786 ")
    'tcp://10.0.0.5:8786'
    >>> check_scheduler("nowhere")
    Traceback (most recent call last):
    ...
    attention.errors.FinegrainError: scheduler: 'nowhere' is neither 'local' nor an address like tcp://HOST:PORT
    """
    if value is None:
        return None
    if not isinstance(value, str):
        if _is_client(value):
            return value
        raise FinegrainError(
            f"scheduler: expected None, 'local', an address or a distributed.Client, "
            f"got {type(value).__name__}"
        )
    text = value.strip()
    if text == "local" or "://" in text or _looks_like_host_port(text):
        return text
    raise FinegrainError(
        f"scheduler: {value!r} is neither 'local' nor an address like tcp://HOST:PORT"
    )


def _looks_like_host_port(text: str) -> bool:
    host, sep, port = text.rpartition(":")
    return bool(sep and host and port.isdigit())


def _is_client(value: Any) -> bool:
    try:
        from distributed import Client
    except ImportError:  # without dask nothing is a client
        return False
    return isinstance(value, Client)


@contextmanager
def client_from_argument(value: Any, n_workers: int | None = None, timeout: float = 20.0) -> Iterator[Any]:
    """The Dask client a scheduler argument names, for the duration of a ``with`` block.

    Parameters
    ----------
    value : None, "local", str or distributed.Client
        ``None``: yields ``None`` (run in this process; dask is not imported).
        ``"local"``: starts a :class:`distributed.LocalCluster` of ``n_workers`` worker
        processes (default: the number of CPUs), one thread each, no dashboard, and shuts it
        down on exit.  An address (``tcp://HOST:PORT``): connects to that scheduler and
        disconnects on exit (the cluster keeps running).  A ``Client``: yielded unchanged
        and left open.
    n_workers : int, optional
        Worker processes of a ``"local"`` cluster.
    timeout : float
        Seconds to wait for a remote scheduler to answer.

    Raises
    ------
    FinegrainError
        dask is not installed (with the install command), or the argument is malformed.
    ClusterError
        The scheduler cannot be reached.

    Examples
    --------
    >>> with client_from_argument(None) as client:
    ...     print(client)
    None
    """
    value = check_scheduler(value)
    if not isinstance(value, str):  # None or a Client
        yield value
        return
    distributed = require_distributed()
    if value == "local":
        workers = n_workers or os.cpu_count() or 1
        with distributed.LocalCluster(n_workers=workers, **LOCAL_CLUSTER_OPTIONS) as cluster:
            with distributed.Client(cluster) as client:
                yield client
        return
    try:
        client = distributed.Client(value, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(
            f"scheduler: cannot reach the Dask scheduler at {value} ({exc}); start one with "
            "`dask scheduler` and workers with `dask worker ADDRESS`, or use --scheduler local"
        ) from None
    with client:
        yield client


@contextmanager
def scheduler_client(scheduler: Any) -> Iterator[Any]:
    """Like :func:`client_from_argument`, with a ``"local"`` cluster of 2 workers at most.

    The library functions take ``scheduler=`` in this form; a caller that runs many
    computations should open one client with :func:`client_from_argument` and pass it.
    """
    with client_from_argument(scheduler, n_workers=min(2, os.cpu_count() or 1)) as client:
        yield client


def add_scheduler_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--scheduler local|ADDRESS`` to a subcommand's parser (default: this process).

    Wire it as::

        add_scheduler_argument(parser)                  # in register(subparsers)
        with client_from_argument(args.scheduler) as client:
            result = gradient(instance, scheduler=client)
    """
    parser.add_argument("--scheduler", metavar="local|ADDRESS", default=None, help=SCHEDULER_HELP)


@contextmanager
def cluster_failures(what: str) -> Iterator[None]:
    """Turn the ways a Dask computation can lose work into :class:`ClusterError`.

    Caught: cancelled futures (``Client.restart``, lost scattered data),
    :class:`distributed.KilledWorker` (a task's workers died too often) and a closed
    connection to the scheduler.  Errors raised by the tasks themselves (bad input) pass
    through unchanged.
    """
    from concurrent.futures import CancelledError

    from distributed import KilledWorker
    from distributed.comm.core import CommClosedError

    try:
        yield
    except KilledWorker as exc:
        raise ClusterError(
            f"{what}: workers died while running task {exc.task!r} (killed too often; "
            "out of memory?); nothing was returned; give workers more memory or smaller blocks",
            retriable=False,
        ) from None
    except CancelledError as exc:
        raise ClusterError(
            f"{what}: the cluster cancelled the computation ({exc or 'restart or lost data'}); "
            "nothing was returned; rerun it"
        ) from None
    except CommClosedError as exc:
        raise ClusterError(f"{what}: lost the connection to the scheduler ({exc}); rerun it") from None


def run_with_retries(run: Callable[[], T], what: str, retries: int, pause: float = 1.0) -> T:
    """Call ``run()``; after a :class:`ClusterError` wait ``pause`` seconds and call it again.

    At most ``retries`` reruns; the error of the last attempt is raised.  Every task is
    deterministic, so a rerun from scratch returns the same answer.
    """
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise FinegrainError(f"retries: must be an integer >= 0, got {retries!r}")
    for attempt in range(retries + 1):
        try:
            return run()
        except ClusterError as exc:
            if attempt == retries or not exc.retriable:
                raise
            time.sleep(pause * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


def scatter_shared(client: Any, value: Any, what: str, timeout: float = 120.0) -> Any:
    """Send ``value`` to every worker once (``broadcast``); its future.

    Waits for at least one worker first (after ``Client.restart`` there may be none yet);
    a failure here (workers leaving while the data is sent) is a :class:`ClusterError`,
    since no task of ours has run.
    """
    try:
        client.wait_for_workers(1, timeout=timeout)
        return client.scatter(value, broadcast=True, hash=False)
    except Exception as exc:  # noqa: BLE001 - any failure here is the cluster's
        raise ClusterError(f"{what}: could not send the shared data to the workers ({exc!r}); rerun it") from None


def aligned(value: Any) -> Any:
    """``value``, copied if it is a numpy array not aligned to its itemsize.

    Arrays deserialised by Dask are views into message frames at any byte offset; numpy
    computes with unaligned arrays without BLAS, in another order of operations, so results
    would differ in the last bits from the same computation in one process.  Tasks realign
    what they receive.

    Examples
    --------
    >>> import numpy as np
    >>> raw = np.zeros(17, dtype=np.uint8)[1:].view(np.float64)   # 2 floats at an odd address
    >>> raw.flags.aligned, aligned(raw).flags.aligned
    (False, True)
    """
    if getattr(value, "flags", None) is not None and not value.flags.aligned:
        return value.copy()
    return value


def block_ranges(n: int, block: int) -> list[tuple[int, int]]:
    """Split ``range(n)`` into consecutive ``[start, stop)`` blocks of ``block`` (the last shorter).

    Examples
    --------
    >>> block_ranges(10, 4)
    [(0, 4), (4, 8), (8, 10)]
    """
    if isinstance(block, bool) or not isinstance(block, int) or block < 1:
        raise FinegrainError(f"block: must be a positive integer, got {block!r}")
    return [(start, min(start + block, n)) for start in range(0, n, block)]


def tree_reduce(items: Sequence[T], combine: Callable[[list[T]], T], fan_in: int) -> T:
    """Reduce ``items`` by a balanced tree whose shape depends only on ``len(items)`` and ``fan_in``.

    Each level replaces consecutive groups of up to ``fan_in`` items by ``combine(group)``, in
    order (a group of one passes up unchanged), until one item is left.  ``combine`` may
    compute a value (in process) or submit a task and return its future (on a cluster): the
    tree, hence the rounding of a floating-point sum, is the same.  Depth
    ``ceil(log_fan_in(len(items)))``.

    Examples
    --------
    >>> tree_reduce([1, 2, 3, 4, 5], lambda g: f"({'+'.join(map(str, g))})", 2)
    '(((1+2)+(3+4))+5)'
    """
    level = _check_reduce(items, fan_in)
    while len(level) > 1:
        level = [
            combine(group) if len(group) > 1 else group[0]
            for group in (level[k : k + fan_in] for k in range(0, len(level), fan_in))
        ]
    return level[0]


def fold_reduce(items: Sequence[T], combine: Callable[[list[T]], T], fan_in: int) -> T:
    """Reduce ``items`` left to right, ``fan_in`` inputs per combine: a left-deep tree.

    The first node combines ``items[:fan_in]``; each next node combines the previous
    result with the next ``fan_in - 1`` items.  When ``combine`` is a left-to-right sum,
    the additions are exactly those of ``((x0 + x1) + x2) + ...``, the order of a
    single-process loop, so the result is the same bits; every node still gets at most
    ``fan_in`` inputs, and the nodes run as soon as their inputs exist.

    Examples
    --------
    >>> fold_reduce([1, 2, 3, 4, 5], lambda g: f"({'+'.join(map(str, g))})", 3)
    '((1+2+3)+4+5)'
    """
    level = _check_reduce(items, fan_in)
    if len(level) == 1:
        return level[0]
    acc = combine(level[:fan_in])
    for k in range(fan_in, len(level), fan_in - 1):
        acc = combine([acc, *level[k : k + fan_in - 1]])
    return acc


def _check_reduce(items: Sequence[T], fan_in: int) -> list[T]:
    if not items:
        raise FinegrainError("nothing to reduce (no blocks)")
    if isinstance(fan_in, bool) or not isinstance(fan_in, int) or fan_in < 2:
        raise FinegrainError(f"fan_in: must be an integer >= 2, got {fan_in!r}")
    return list(items)


def additions_depth(count: int, fan_in: int, shape: str) -> int:
    """Most additions any item goes through when ``count`` items are summed by a reduction.

    ``shape`` is ``"fold"`` (:func:`fold_reduce`: ``count - 1``) or ``"tree"``
    (:func:`tree_reduce`: ``(fan_in - 1)`` per level).  A floating-point sum of ``x_i``
    with ``h`` such additions on every path errs by at most ``gamma_h sum_i |x_i|``,
    ``gamma_h = h u / (1 - h u)`` (Higham, *Accuracy and Stability of Numerical
    Algorithms*, 2nd ed., Section 4.2).

    Examples
    --------
    >>> [additions_depth(c, 2, "tree") for c in (1, 2, 3, 4, 5)], additions_depth(5, 2, "fold")
    ([0, 1, 2, 2, 3], 4)
    """
    if shape == "fold":
        return count - 1
    depth, level = 0, count
    while level > 1:
        level = -(-level // fan_in)
        depth += 1
    return depth * (fan_in - 1)
