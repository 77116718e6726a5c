"""Helpers shared by the subcommands: safe output files, JSON printing, progress bars."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

from attention.fileio import atomic_write, check_output_path

__all__ = ["atomic_write", "check_output_path", "provenance", "print_json", "message", "progress"]

#: The argv of the running ``finegrain`` command (set by ``reductions.cli.main``).
CURRENT_ARGV: list[str] | None = None


def provenance(seed: Any = None, **extra: Any) -> dict[str, Any]:
    """What every output file records: version, command line, seed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("finegrain")
    except PackageNotFoundError:
        ver = "unknown"
    argv = CURRENT_ARGV if CURRENT_ARGV is not None else sys.argv[1:]
    record = {"finegrain_version": ver, "command": shlex.join(["finegrain", *argv]), "seed": seed}
    record.update(extra)
    return record


def print_json(obj: Any) -> None:
    """Print ``obj`` as JSON on stdout (numpy scalars and arrays converted)."""
    print(json.dumps(obj, default=_to_builtin, indent=None))


def _to_builtin(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def message(text: str) -> None:
    """A human-readable line on stderr."""
    print(text, file=sys.stderr)


def progress(iterable: Any = None, **kwargs: Any) -> Any:
    """A tqdm progress bar on stderr, disabled when stderr is not a terminal."""
    from tqdm.auto import tqdm

    kwargs.setdefault("disable", not sys.stderr.isatty())
    kwargs.setdefault("file", sys.stderr)
    return tqdm(iterable, **kwargs)
