"""Reading ``.npz`` archives without trusting them: every array's header is checked before its data.

An ``.npz`` is a zip of ``.npy`` members.  ``numpy.load`` allocates the shape a member's
header declares and then decompresses into it, so a small file can ask for terabytes: a
header declaring shape ``(10^12,)`` over a few bytes of data, or a deflate bomb (zeros
compress about 1000:1: a 40 MB archive can expand to 40 GB).  Before any array is read,
:func:`read_headers` decompresses only the first bytes of each member (its ``.npy`` header,
at most :data:`MAX_HEADER_SIZE` bytes) and refuses, with the reader's own error class:

- a member that is not an ``.npy`` array (no magic string, an unreadable header, a negative
  dimension);
- a header declaring more data than the member holds: ``ZipInfo.file_size`` (the
  uncompressed size) minus the header.  Such a file is malformed or truncated, and numpy
  would allocate the declared size before finding out.  ``zipfile`` never returns more than
  ``file_size`` bytes of a member, so a header that passes bounds what reading produces.

:func:`require_arrays_memory` then refuses (:class:`~attention.errors.ResourceError`, via
:func:`attention.memory.require_memory`) a file whose declared arrays, and what its reader
builds from them, do not fit in the available memory; the message lists the declared shapes
and the archive's size on disk.  Object arrays (a pickle inside the member) are left to
``numpy.load(allow_pickle=False)``, which refuses them without reading their data.

Examples
--------
>>> import io, zipfile
>>> import numpy as np
>>> from numpy.lib import format as npy
>>> from attention.errors import InvalidInstance
>>> buf = io.BytesIO()
>>> with zipfile.ZipFile(buf, "w") as zf:
...     with zf.open("A.npy", "w") as member:
...         npy.write_array_header_1_0(member, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
...         _ = member.write(bytes(8))
>>> read_headers(zipfile.ZipFile(buf), ["A"], "bomb.npz", InvalidInstance)
Traceback (most recent call last):
...
attention.errors.InvalidInstance: bomb.npz: array A: its header declares shape (1000000000000,) of float64 (8e+12 bytes) but the archive holds 8 bytes of its data; the file is malformed or truncated
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from typing import Iterable

import numpy as np
from numpy.lib import format as npy_format

from attention.errors import FinegrainError
from attention.memory import require_memory

#: Largest ``.npy`` header read (numpy's own default limit for ``np.load``).
MAX_HEADER_SIZE = 10_000

__all__ = ["ArrayHeader", "MAX_HEADER_SIZE", "member_name", "read_headers", "require_arrays_memory"]


@dataclass(frozen=True)
class ArrayHeader:
    """What one ``.npy`` member of an archive declares, read without its data.

    ``nbytes`` is the declared data size ``prod(shape) * itemsize``; ``stored`` the bytes of
    data the member holds (its uncompressed size minus the header); ``compressed`` its size
    in the archive.
    """

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    nbytes: int
    stored: int
    compressed: int

    @property
    def count(self) -> int:
        """Number of elements, ``prod(shape)``."""
        return math.prod(self.shape)

    def describe(self) -> str:
        """``"A1 (3, 2) float64"``."""
        return f"{self.name} {self.shape} {self.dtype}"


def member_name(archive: zipfile.ZipFile, name: str) -> str:
    """The member ``numpy.load`` reads for array ``name``: ``name`` itself if present, else ``name.npy``."""
    return name if name in archive.NameToInfo else f"{name}.npy"


def read_headers(
    archive: zipfile.ZipFile, names: Iterable[str], source: str, error: type[FinegrainError]
) -> dict[str, ArrayHeader]:
    """The declared shape, dtype and size of each named array, checked against what its member holds.

    Parameters
    ----------
    archive : the open zip file (``numpy.lib.npyio.NpzFile.zip``).
    names : array names (members ``NAME.npy`` or ``NAME``), each present in the archive.
    source : the file's name, first in every message.
    error : the class raised for a malformed member (the reader's own, e.g. ``FormatError``).

    Raises
    ------
    error
        A member is not an ``.npy`` array, or declares more data than it holds.
    """
    headers = {}
    for name in names:
        info = archive.getinfo(member_name(archive, name))
        try:
            with archive.open(info) as member:
                version = npy_format.read_magic(member)
                if version not in ((1, 0), (2, 0), (3, 0)):
                    raise ValueError(f"unknown .npy format version {version[0]}.{version[1]}")
                if version == (1, 0):
                    shape, fortran_order, dtype = npy_format.read_array_header_1_0(member, MAX_HEADER_SIZE)
                else:  # 2.0 and 3.0 (a utf8 header: only structured dtypes' field names differ)
                    shape, fortran_order, dtype = npy_format.read_array_header_2_0(member, MAX_HEADER_SIZE)
                offset = member.tell()
        except Exception as exc:  # bad magic or header, corrupt deflate data, encrypted, unknown compression
            raise error(f"{source}: array {name} cannot be read: not an .npy array, or a malformed header ({exc})") from None
        if any(dim < 0 for dim in shape):
            raise error(f"{source}: array {name}: its header declares a negative dimension, shape {shape}")
        header = ArrayHeader(
            name, tuple(shape), dtype, bool(fortran_order), math.prod(shape) * dtype.itemsize,
            max(info.file_size - offset, 0), info.compress_size,
        )
        if not dtype.hasobject and header.nbytes > header.stored:
            raise error(
                f"{source}: array {name}: its header declares shape {header.shape} of {dtype} "
                f"({header.nbytes:.3g} bytes) but the archive holds {header.stored} bytes of its data; "
                "the file is malformed or truncated"
            )
        headers[name] = header
    return headers


def require_arrays_memory(
    headers: dict[str, ArrayHeader], bytes_needed: float, source: str, alternative: str, available: int | None = None
) -> None:
    """Refuse (``ResourceError``) reading arrays that need ``bytes_needed`` when that does not fit.

    The message names the file, the declared shapes (the largest first) and their size in the
    archive, so a deflate bomb is recognisable: ``x.npz: reading its arrays as declared (A1
    (2500000000, 2) float64, ...; 39 MB in the archive) needs about 40 GB but ...``.
    """
    listed = sorted(headers.values(), key=lambda h: -h.nbytes)
    shown = ", ".join(h.describe() for h in listed[:4]) + (", ..." if len(listed) > 4 else "")
    packed = sum(h.compressed for h in listed)
    require_memory(
        bytes_needed,
        f"{source}: reading its arrays as declared ({shown}; {packed / 1e6:.2g} MB in the archive)",
        alternative,
        available,
    )
