"""Safe output files for every package: atomic writes that never overwrite without asking."""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from attention.errors import FinegrainError, OutputExists


def check_output_path(path: str | os.PathLike, force: bool) -> Path:
    """``path`` as a Path; refuses an existing file unless ``force``; its directory must exist."""
    path = Path(path)
    if path.exists() and not force:
        raise OutputExists(f"{path} exists; pass --force (force=True) to overwrite it")
    if not path.parent.exists():
        raise FinegrainError(f"{path.parent} does not exist; create the directory first")
    return path


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", force: bool = False) -> Iterator[Any]:
    """Open a temp file beside ``path``; rename it over ``path`` only when the block succeeds.

    An exception or an interrupt inside the block leaves no file behind (and the old file,
    if any, untouched).  An operating-system error (no permission, read-only file system, disk
    full, the target is a directory) is a :class:`FinegrainError` naming the file.
    """
    path = check_output_path(path, force)
    # Named before it exists and created inside the try: an interrupt at any moment (even
    # between the file's creation and the return of the call creating it) is cleaned up.
    tmp: Path | None = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    try:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            tmp = None  # nothing of ours to remove
            raise FinegrainError(f"{path}: cannot create a file in {path.parent} ({exc.strerror or exc})") from None
        with os.fdopen(fd, mode) as fh:
            yield fh
        os.chmod(tmp, _new_file_mode())  # created 0600; a new file gets the usual 0666 & ~umask
        os.replace(tmp, path)
    except OSError as exc:
        raise FinegrainError(f"{path}: cannot write the file ({exc.strerror or exc}); it was left unchanged") from None
    finally:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)


def _new_file_mode() -> int:
    """The permissions ``open(path, "w")`` would give a new file: ``0o666`` minus the umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask
