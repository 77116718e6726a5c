"""Helpers shared by the subcommands: safe output files, JSON printing, progress bars."""

from __future__ import annotations

import json
import os
import shlex
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from attention.errors import FinegrainError


def provenance(seed: Any = None, **extra: Any) -> dict[str, Any]:
    """What every output file records: version, command line, seed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("finegrain")
    except PackageNotFoundError:
        ver = "unknown"
    record = {"finegrain_version": ver, "command": shlex.join(["finegrain", *sys.argv[1:]]), "seed": seed}
    record.update(extra)
    return record


def check_output_path(path: str | os.PathLike, force: bool) -> Path:
    """Refuse to overwrite an existing file unless ``force``; the directory must exist."""
    path = Path(path)
    if path.exists() and not force:
        raise FinegrainError(f"{path} exists; pass --force to overwrite it")
    if not path.parent.exists():
        raise FinegrainError(f"{path.parent} does not exist; create the directory first")
    return path


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", force: bool = False) -> Iterator[Any]:
    """Open a temp file beside ``path``; rename it over ``path`` only when the block succeeds."""
    path = check_output_path(path, force)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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
