"""``finegrain grad``: the loss gradient ``dL/dX`` of an instance file, with its stated error.

Reads an ``.npz`` instance (arrays ``A1, A2, A3, E, X, Y`` and JSON ``meta``), calls
:func:`attention.gradient` with the chosen method and prints the d x d gradient, the loss
and the error bound the method guarantees.  ``--json`` prints
``{"gradient", "loss", "error_bound", "loss_error_bound", "n", "n_k", "d", "B", "method"}``
(plus ``"rank"`` and ``"degree"`` for ``--method fast``, ``"dtype"`` for ``--method exact``:
``float64``, or ``float32`` with ``--dtype float32``); floats are printed exactly
(shortest round-trip form), so the JSON equals the library's result bit for bit.

``--scheduler local|ADDRESS`` computes the exact gradient on a Dask cluster with
:func:`attention.distributed.gradient`, one block of the oracle's default size per task,
the partials added in block order: the same bits as without it (module docstring of
:mod:`attention.distributed`), so the output is the same.  A progress bar counts the rows
done (on a cluster as the tasks finish; in this process, where the oracle has no
per-block callback, when the one call returns).
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from attention.errors import FinegrainError
from reductions.commands.common import print_json, progress
from reductions.commands.solve import add_cluster_arguments, check_cluster_arguments, open_client

METHODS = ("exact", "mp", "fast")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "grad",
        help="the loss gradient dL/dX of an instance file, with its error bound",
        description=(
            "Compute dL/dX = (1/d) A1^T p A2 of L(X) = 0.5 ||softmax(A1 X A2^T / d) A3 Y - E||_F^2 "
            "(AS24 Lemma C.7) for an .npz instance, with the loss and the entrywise error the "
            "method guarantees.  exact: float64 (or --dtype float32, with its own looser bound) in "
            "blocks of query rows, O(n^2 d); mp: mpmath "
            "with --digits digits (small instances); fast: the polynomial method with target "
            "error --eps.  --scheduler runs the exact method on a Dask cluster, one block of "
            "rows per task, with the same bits as in this process."
        ),
        epilog="Example: finegrain grad inst.npz --method mp --digits 60 --json",
    )
    parser.add_argument("file", help="instance file (.npz with A1, A2, A3, E, X, Y and meta)")
    parser.add_argument("--method", choices=METHODS, default="exact", help="oracle (default exact)")
    parser.add_argument(
        "--eps",
        type=float,
        help="--method fast only: target entrywise error relative to max|dL/dX| (default 1e-6); the "
        "polynomial is fitted to eps/2 on the score range.  A target, not a guarantee: the stated "
        "error_bound is the guarantee (on gradients that cancel it can exceed eps max|dL/dX|)",
    )
    parser.add_argument("--digits", type=int, help="decimal digits (--method mp only; default 50)")
    parser.add_argument(
        "--dtype",
        choices=DTYPES,
        help="--method exact only: the arithmetic (default float64; float32 runs the BLAS block kernel "
        "and states the bound for unit roundoff 2^-24)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    add_cluster_arguments(parser)
    parser.set_defaults(func=run)


DTYPES = ("float64", "float32")


def options(method: str, eps: float | None, digits: int | None, dtype: str | None = None) -> dict[str, Any]:
    """The keyword options passed to :func:`attention.gradient` for the CLI flags."""
    if eps is not None and method != "fast":
        raise FinegrainError(f"--eps applies to --method fast only (got --method {method})")
    if digits is not None and method != "mp":
        raise FinegrainError(f"--digits applies to --method mp only (got --method {method})")
    if dtype is not None and method != "exact":
        raise FinegrainError(f"--dtype applies to --method exact only (got --method {method})")
    if eps is not None:
        return {"eps": eps}
    if digits is not None:
        return {"digits": digits}
    if dtype is not None:
        return {"dtype": np.dtype(dtype)}
    return {}


def check_cluster_method(method: str, dtype: Any = None) -> None:
    """A Dask cluster runs the exact method only, in float64."""
    if method != "exact":
        raise FinegrainError(f"--scheduler runs --method exact only (got --method {method})")
    if dtype is not None and np.dtype(dtype) != np.float64:
        raise FinegrainError("--scheduler computes in float64 only; drop --dtype float32 or --scheduler")


def compute(
    source: Any, method: str = "exact", client: Any = None, progress: Any = None, **opts: Any
) -> dict[str, Any]:
    """What ``finegrain grad --json`` prints, as a dict (the library call behind the CLI).

    ``source`` is an instance file or an :class:`~attention.AttentionInstance`.  With a Dask
    ``client`` (exact method only): :func:`attention.distributed.gradient` with
    ``task_rows="block"``, the same bits.  ``progress(rows_done, n)`` reports the rows done.
    """
    from attention import AttentionInstance, distributed, gradient

    instance = source if isinstance(source, AttentionInstance) else AttentionInstance.load(source)
    if client is None:
        if method == "exact" and progress is not None:
            opts = {**opts, "progress": progress}  # the oracle reports each block of rows
        result = gradient(instance, method=method, **opts)
        if progress is not None:
            progress(instance.n, instance.n)
    else:
        check_cluster_method(method, opts.get("dtype"))
        result = distributed.gradient(instance, client, task_rows="block", progress=progress)
    record: dict[str, Any] = {
        "gradient": np.asarray(result.gradient, dtype=np.float64).tolist(),
        "loss": float(result.loss),
        "error_bound": float(result.error_bound),
        "loss_error_bound": float(result.loss_error_bound),
        "n": instance.n,
        "n_k": instance.n_k,
        "d": instance.d,
        "B": instance.B,
        "method": result.method,
    }
    if method == "fast":
        record.update({key: result.info.get(key) for key in ("rank", "degree")})
    if method == "exact":
        record["dtype"] = np.dtype(opts.get("dtype", np.float64)).name
    return record


def render(record: dict[str, Any]) -> str:
    """The human-readable form: sizes, loss, error bounds, then the gradient row by row."""
    lines = [
        f"instance: n = {record['n']} queries, n_k = {record['n_k']} keys, d = {record['d']}, "
        f"B = {record['B']:.6g}; method {record['method']}"
        + (f" ({record['dtype']})" if record.get("dtype", "float64") != "float64" else ""),
        f"loss L = {record['loss']!r}  (error <= {record['loss_error_bound']:.3g})",
        f"dL/dX ({record['d']} x {record['d']}), every entry within {record['error_bound']:.3g}:",
    ]
    lines += ["  " + " ".join(repr(x) for x in row) for row in record["gradient"]]
    if record["method"] == "fast":
        lines.append(f"rank {record.get('rank')}, degree {record.get('degree')}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from attention import AttentionInstance

    check_cluster_arguments(args)
    if args.scheduler is not None:
        check_cluster_method(args.method, args.dtype)
    opts = options(args.method, args.eps, args.digits, args.dtype)
    instance = AttentionInstance.load(args.file)
    with open_client(args) as client, progress(desc="dL/dX", total=instance.n, unit=" rows") as bar:

        def advance(done: int, total: int) -> None:
            bar.n = done
            bar.refresh()

        record = compute(instance, args.method, client=client, progress=advance, **opts)
    if args.json:
        print_json(record)
    else:
        print(render(record))
    return 0
