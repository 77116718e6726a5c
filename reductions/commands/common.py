"""Helpers shared by the subcommands: safe output files, JSON printing, progress bars."""

from __future__ import annotations

import json
import shlex
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from attention.fileio import atomic_write, check_output_path

__all__ = ["atomic_write", "check_output_path", "provenance", "print_json", "message", "progress", "ticking", "advance", "STEPS"]

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
    """A tqdm progress bar on stderr, drawn only when both stdout and stderr are terminals.

    Output piped or redirected (``finegrain solve f.cnf --json > out.json``, a CI log) gets
    no bar: the data stay clean and the log free of carriage-return redraws.
    """
    from tqdm.auto import tqdm

    kwargs.setdefault("disable", not (sys.stdout.isatty() and sys.stderr.isatty()))
    kwargs.setdefault("file", sys.stderr)
    return tqdm(iterable, **kwargs)


#: ``bar_format`` of a bar over a few steps of unequal length (no rate, no ETA).
STEPS = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}]"


def advance(bar: Any, n: int, description: str | None = None) -> None:
    """Put ``bar`` at step ``n`` (of a few) with ``description`` and draw it now (after its delay)."""
    if bar.disable:
        return
    if description is not None:
        bar.set_description(description, refresh=False)
    bar.n = n
    _redraw(bar)


def _redraw(bar: Any) -> None:
    now = time.time()
    if now - bar.start_t >= bar.delay:  # refresh() alone would ignore the delay
        bar.refresh()
        bar.last_print_t = now  # as update() records a redraw: close() then clears the line


@contextmanager
def ticking(bar: Any, interval: float = 0.5) -> Iterator[Any]:
    """Redraw ``bar`` every ``interval`` seconds while a step that reports no progress runs.

    A library call (drawing a formula, one rule of a chain) gives no updates of its own; the
    redraw keeps the elapsed time moving so a long step does not look hung.  Nothing is
    drawn before the bar's ``delay`` has passed, and nothing at all when it is disabled.
    """
    if bar.disable:
        yield bar
        return
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(interval):
            _redraw(bar)

    thread = threading.Thread(target=tick, name="finegrain-progress", daemon=True)
    thread.start()
    try:
        yield bar
    finally:
        stop.set()
        thread.join()
