"""Orthogonal Vectors (OV): is there ``u in U``, ``v in V`` with ``<u, v> = 0``?

``U in {0,1}^(n_U x m)``, ``V in {0,1}^(n_V x m)`` (the sides are not called A and B: B is
the paper's entry bound).  Vectors are stored unpacked (``uint8``, read-only) and bit-packed
(``uint64`` words, bit ``l % 64`` of word ``l // 64`` is coordinate ``l``; the padding bits
of the last word are 0).  Ground-truth solvers live in :mod:`solvers.ov`, generators in
:mod:`reductions.generators.ov`.

File formats
------------
Both formats round-trip exactly (``U``, ``V`` and ``meta``); :func:`read_ov` tells them
apart by content (a ``.npz`` is a zip archive, it starts with ``PK``), :func:`write_ov` by
the suffix (``.npz`` or anything else for text).

**Text** (suggested suffix ``.ov``), line oriented, ASCII::

    c finegrain OV instance
    c meta {"generator": "random_ov", "seed": 7}
    2 3 4
    0110
    1000
    1001
    0001
    0110

- The first line that is neither blank nor a comment is the header ``n_U n_V m``: three
  non-negative decimal integers separated by white space, ``m >= 1``.
- Then exactly ``n_U + n_V`` vector lines: first the ``n_U`` vectors of ``U``, then the
  ``n_V`` vectors of ``V``, each a string of exactly ``m`` characters ``0``/``1`` (coordinate
  0 first).  A side may be empty (``n_U = 0``).
- Lines starting with ``c`` or ``#`` are comments and may appear anywhere; blank lines are
  ignored; leading/trailing white space (and a ``\r`` of CRLF files) is stripped.
- ``c meta <JSON object>`` (at most one such line) carries the instance's ``meta``.

Every malformed file raises one :class:`~reductions.errors.FormatError` naming the file and
line: ``inst.ov line 5: vector has 3 characters, the header (line 3) says m = 4``.

**.npz**: arrays ``U`` and ``V`` (``uint8``, 2-D, 0/1, same number of columns ``m >= 1``)
and ``meta`` (a 0-d unicode array holding a JSON object); no other arrays.  Read with
``allow_pickle=False``; a missing or extra array, a wrong dtype or shape, a non-0/1 entry or
a ``meta`` that is not a JSON object is a ``FormatError`` naming the file and the array.

``meta`` must be JSON-serialisable (checked when the instance is built); it is stored as
JSON, so after a round trip tuples come back as lists.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from attention.fileio import atomic_write
from attention.memory import require_memory
from attention.npzfile import ArrayHeader, read_headers, require_arrays_memory
from reductions.errors import FormatError, InvalidInstance


def require_binary(value: Any, name: str) -> np.ndarray:
    """``value`` as a read-only ``uint8`` 0/1 matrix, or :class:`InvalidInstance` naming the bad entry."""
    try:
        arr = np.asarray(value)
    except Exception as exc:
        raise InvalidInstance(f"{name}: cannot be read as a matrix ({exc})") from None
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise InvalidInstance(f"{name}: expected 0/1 entries, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise InvalidInstance(f"{name}: expected a 2-D matrix (one vector per row), got shape {arr.shape}")
    if arr.shape[1] == 0:
        raise InvalidInstance(f"{name}: vectors have dimension m = 0; m must be >= 1")
    if arr.size and arr.dtype.kind != "b":
        bad = arr > 1 if arr.dtype.kind == "u" else (arr != 0) & (arr != 1)  # one mask for unsigned
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise InvalidInstance(
                f"{name}: entry [{i}, {j}] = {arr[i, j].item()!r} is not 0 or 1; OV vectors are binary"
            )
    out = np.array(arr, dtype=np.uint8, order="C", copy=True)  # owned: the caller's array stays writable
    out.setflags(write=False)
    return out


def pack_bits(M: np.ndarray) -> np.ndarray:
    """Pack a 0/1 matrix (rows = vectors) into ``uint64`` words: shape ``(rows, ceil(m / 64))``."""
    rows, m = M.shape
    words = (m + 63) // 64
    padded = np.zeros((rows, words * 64), dtype=np.uint8)
    padded[:, :m] = M
    packed = np.packbits(padded.reshape(rows, words, 64), axis=2, bitorder="little")
    return np.ascontiguousarray(packed.view("<u8").reshape(rows, words).astype(np.uint64))


def require_meta(meta: Any) -> None:
    """``meta`` must be a JSON-serialisable dict (it is written to files as JSON)."""
    if not isinstance(meta, dict):
        raise InvalidInstance(f"meta: expected a dict, got {type(meta).__name__}")
    try:
        json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInstance(
            f"meta: not JSON-serialisable ({exc}); use plain int/float/str/list/dict values"
        ) from None


@dataclass(frozen=True, eq=False)
class BinarySides:
    """Two sides ``U``, ``V`` of 0/1 vectors of one dimension ``m`` (base of OV and BHCP instances).

    Validated and stored as read-only ``uint8`` copies; a side may be empty.
    """

    U: np.ndarray
    V: np.ndarray

    def __post_init__(self) -> None:
        U = require_binary(self.U, "U")
        V = require_binary(self.V, "V")
        if U.shape[1] != V.shape[1]:
            raise InvalidInstance(
                f"U has dimension m = {U.shape[1]} but V has m = {V.shape[1]}; both sides need the same m"
            )
        object.__setattr__(self, "U", U)
        object.__setattr__(self, "V", V)

    @property
    def n_U(self) -> int:
        return self.U.shape[0]

    @property
    def n_V(self) -> int:
        return self.V.shape[0]

    @property
    def m(self) -> int:
        return self.U.shape[1]


@dataclass(frozen=True, eq=False)
class OV(BinarySides):
    """Orthogonal Vectors instance: is there ``(i, j)`` with ``<U[i], V[j]> = 0``?

    ``U in {0,1}^(n_U x m)``, ``V in {0,1}^(n_V x m)``; either side may be empty (then the
    answer is no).  ``meta`` carries provenance (generator, seed, planted pairs).

    Examples
    --------
    >>> ov = OV([[1, 0], [0, 1]], [[1, 1], [1, 0]])
    >>> (ov.n_U, ov.n_V, ov.m)
    (2, 2, 2)
    >>> OV([[1, 2]], [[0, 1]])
    Traceback (most recent call last):
    ...
    attention.errors.InvalidInstance: U: entry [0, 1] = 2 is not 0 or 1; OV vectors are binary
    """

    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        require_meta(self.meta)

    @property
    def U_packed(self) -> np.ndarray:
        """``U`` bit-packed into ``uint64`` words (computed once, cached)."""
        return self._packed("U")

    @property
    def V_packed(self) -> np.ndarray:
        """``V`` bit-packed into ``uint64`` words (computed once, cached)."""
        return self._packed("V")

    def _packed(self, side: str) -> np.ndarray:
        key = f"_{side}_packed"
        cached = self.__dict__.get(key)
        if cached is None:
            cached = pack_bits(getattr(self, side))
            cached.setflags(write=False)
            object.__setattr__(self, key, cached)
        return cached

    def with_meta(self, meta: dict) -> "OV":
        """The same vectors with ``meta`` (the validated read-only sides are shared, not copied).

        Examples
        --------
        >>> ov = OV([[1, 0]], [[0, 1]])
        >>> other = ov.with_meta({"seed": 2})
        >>> other.meta, other.U is ov.U
        ({'seed': 2}, True)
        """
        require_meta(meta)
        new = object.__new__(OV)
        for name, value in (("U", self.U), ("V", self.V), ("meta", meta)):
            object.__setattr__(new, name, value)
        return new

    def inner(self, i: int, j: int) -> int:
        """``<U[i], V[j]>``."""
        return int(np.dot(self.U[i].astype(np.int64), self.V[j].astype(np.int64)))


def is_orthogonal_pair(ov: OV, pair: Any) -> bool:
    """Checker: is ``pair = (i, j)`` a valid index pair with ``<U[i], V[j]> = 0``?"""
    try:
        i, j = (int(x) for x in pair)
    except Exception:
        return False
    if not (0 <= i < ov.n_U and 0 <= j < ov.n_V):
        return False
    return ov.inner(i, j) == 0


# --------------------------------------------------------------------------- file formats
_META_TAG = "c meta"
_HEADER_TOKEN = re.compile(rb"[0-9]{1,18}")
_ZIP_MAGIC = b"PK"
NPZ_ARRAYS = ("U", "V", "meta")


def format_ov_text(ov: OV) -> bytes:
    """The text form of ``ov`` (see the module docstring), as bytes.

    Examples
    --------
    >>> print(format_ov_text(OV([[0, 1, 1]], [[1, 0, 0]], meta={"seed": 1})).decode(), end="")
    c finegrain OV instance: header n_U n_V m, then the U rows, then the V rows
    c meta {"seed": 1}
    1 1 3
    011
    100
    """
    return b"".join(iter_ov_text(ov))


#: Vectors per chunk of :func:`iter_ov_text` (a chunk holds ``rows * (m + 1)`` bytes).
TEXT_CHUNK_ROWS = 1 << 16


def iter_ov_text(ov: OV, rows: int = TEXT_CHUNK_ROWS) -> Iterator[bytes]:
    """The text form of ``ov`` in chunks of at most ``rows`` vectors (the header first).

    Writing chunk by chunk needs ``rows (m + 1)`` bytes beyond the instance instead of the
    whole text (``(n_U + n_V)(m + 1)`` bytes); the chunks joined are :func:`format_ov_text`.

    Examples
    --------
    >>> [len(chunk) for chunk in iter_ov_text(OV([[0, 1]] * 3, [[1, 0]] * 2), rows=2)][1:]
    [6, 3, 6]
    """
    yield (
        "c finegrain OV instance: header n_U n_V m, then the U rows, then the V rows\n"
        f"{_META_TAG} {json.dumps(ov.meta, allow_nan=False, sort_keys=True)}\n"
        f"{ov.n_U} {ov.n_V} {ov.m}\n"
    ).encode()
    for side in (ov.U, ov.V):
        for start in range(0, side.shape[0], rows):
            part = side[start : start + rows]
            lines = np.empty((part.shape[0], ov.m + 1), np.uint8)
            np.add(part, np.uint8(ord("0")), out=lines[:, :-1])
            lines[:, -1] = ord("\n")
            yield lines.tobytes()


def parse_ov_text(data: bytes, name: str = "<text>") -> OV:
    """Parse the text format (module docstring); ``name`` labels the errors.

    Raises
    ------
    FormatError
        Naming ``name`` and the line: bad header, wrong number of vector lines, a vector of
        the wrong length or with a character other than ``0``/``1``, a bad ``c meta`` line.

    Examples
    --------
    >>> ov = parse_ov_text(b"1 2 3\\n011\\n100\\n# a comment\\n001\\n")
    >>> ov.V.tolist()
    [[1, 0, 0], [0, 0, 1]]
    >>> parse_ov_text(b"1 1 3\\n011\\n10\\n", name="x.ov")
    Traceback (most recent call last):
    ...
    reductions.errors.FormatError: x.ov line 3: vector has 2 characters, the header (line 1) says m = 3
    """
    meta: dict | None = None
    meta_line = 0
    header: tuple[int, int, int] | None = None
    header_line = 0
    rows: list[bytes] = []
    row_lines: list[int] = []
    last = 1  # the last line with content: where a truncated file is reported
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        line = raw.strip()
        if not line:
            continue
        last = lineno
        if line[:1] in (b"c", b"#"):
            tokens = line.split(maxsplit=2)
            if tokens[:2] == [b"c", b"meta"]:
                if meta is not None:
                    raise FormatError(f"{name} line {lineno}: second 'c meta' line (first on line {meta_line})")
                meta, meta_line = _parse_meta(tokens[2] if len(tokens) == 3 else b"", name, lineno), lineno
            continue
        if header is None:
            header, header_line = _parse_header(line, name, lineno), lineno
            continue
        rows.append(line)
        row_lines.append(lineno)
    if header is None:
        raise FormatError(f"{name} line {last}: no header line 'n_U n_V m' found")
    U, V = _vectors_from_rows(rows, row_lines, header, header_line, name, last)
    return OV(U, V, meta=meta or {})


def _parse_meta(payload: bytes, name: str, lineno: int) -> dict:
    try:
        meta = json.loads(payload.decode("utf-8"))
        json.dumps(meta, allow_nan=False)  # NaN, Infinity and 1e400 read as floats that are not JSON
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise FormatError(f"{name} line {lineno}: 'c meta' is not followed by valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise FormatError(f"{name} line {lineno}: 'c meta' must hold a JSON object, got {type(meta).__name__}")
    return meta


def _parse_header(line: bytes, name: str, lineno: int) -> tuple[int, int, int]:
    tokens = line.split()
    if len(tokens) != 3 or not all(_HEADER_TOKEN.fullmatch(t) for t in tokens):
        shown = line[:60].decode("ascii", "replace")
        raise FormatError(
            f"{name} line {lineno}: expected the header 'n_U n_V m' "
            f"(three non-negative integers below 10^18), got {shown!r}"
        )
    n_U, n_V, m = (int(t) for t in tokens)
    if m < 1:
        raise FormatError(f"{name} line {lineno}: header says m = 0; vectors need dimension m >= 1")
    return n_U, n_V, m


def _vectors_from_rows(
    rows: list[bytes],
    row_lines: list[int],
    header: tuple[int, int, int],
    header_line: int,
    name: str,
    last_line: int,
) -> tuple[np.ndarray, np.ndarray]:
    n_U, n_V, m = header
    expected = n_U + n_V
    if len(rows) > expected:
        raise FormatError(
            f"{name} line {row_lines[expected]}: extra vector line; the header (line {header_line}) "
            f"says n_U + n_V = {n_U} + {n_V} = {expected}"
        )
    if len(rows) < expected:
        raise FormatError(
            f"{name} line {last_line}: file ends after {len(rows)} vector lines; the header "
            f"(line {header_line}) says n_U + n_V = {n_U} + {n_V} = {expected}"
        )
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=expected)
    bad_rows = np.flatnonzero(lengths != m)
    if bad_rows.size:
        k = bad_rows[0]
        raise FormatError(
            f"{name} line {row_lines[k]}: vector has {lengths[k]} characters, "
            f"the header (line {header_line}) says m = {m}"
        )
    digits = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(expected, m) - np.uint8(ord("0"))
    bad = digits > 1
    if bad.any():
        k, col = np.argwhere(bad)[0]
        char = rows[k][col : col + 1].decode("ascii", "replace")
        raise FormatError(
            f"{name} line {row_lines[k]}: character {col + 1} is {char!r}; vectors are strings of 0 and 1"
        )
    return digits[:n_U], digits[n_U:]


def _save_npz(ov: OV, fh: Any) -> None:
    meta = json.dumps(ov.meta, allow_nan=False, sort_keys=True)
    np.savez(fh, U=ov.U, V=ov.V, meta=np.array(meta))


#: What the OV readers suggest when a file's vectors do not fit in memory.
READ_ALTERNATIVE = (
    "load it on a machine with more memory, or check where the file came from (a few MB on disk "
    "declaring many GB is a compressed bomb); an OV instance of a k-SAT formula need not be stored: "
    "solvers.ov_distributed.solve_cnf_distributed generates its vectors block by block"
)
#: Peak bytes of :func:`parse_ov_text` per byte of text and per line (the text, its lines as
#: Python bytes with their line numbers, the joined digits, their 0/1 matrix and the OV's copies).
TEXT_BYTES_PER_BYTE = 5
TEXT_BYTES_PER_LINE = 100


def _npz_load_bytes(headers: dict[str, ArrayHeader]) -> int:
    """Peak bytes of reading an OV ``.npz`` with these declared headers.

    ``U`` and ``V`` as stored, the instance's validated copies and one side's 0/1 check (a
    boolean per entry), plus ``meta`` three times (its UCS4 array, its text, the parsed JSON).
    """
    sides = [headers[k].nbytes for k in ("U", "V")]
    return 2 * sum(sides) + max(sides) + 3 * headers["meta"].nbytes


def _load_npz(path: Path) -> OV:
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError, EOFError, ...
        raise FormatError(f"{path}: not a readable .npz archive ({exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise FormatError(f"{path}: a single .npy array, not an .npz archive with U, V and meta")
    with archive:
        missing = [k for k in NPZ_ARRAYS if k not in archive.files]
        extra = sorted(set(archive.files) - set(NPZ_ARRAYS))
        if missing or extra:
            raise FormatError(
                f"{path}: an OV .npz holds exactly the arrays U, V, meta; "
                f"missing {missing or 'none'}, unexpected {extra or 'none'}"
            )
        headers = read_headers(archive.zip, NPZ_ARRAYS, str(path), FormatError)
        for key in NPZ_ARRAYS:  # dtype and shape from the headers, before any data is read
            if not headers[key].dtype.hasobject:  # object arrays: numpy refuses them when read
                _check_npz_array(path, key, headers[key].dtype, headers[key].shape)
        require_arrays_memory(headers, _npz_load_bytes(headers), str(path), READ_ALTERNATIVE)
        arrays = {}
        for key in NPZ_ARRAYS:
            try:
                arrays[key] = archive[key]
            except Exception as exc:  # object arrays refused by allow_pickle=False, CRC errors
                raise FormatError(f"{path}: array {key} cannot be read ({exc})") from None
    try:
        meta = json.loads(str(arrays["meta"][()]))
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"{path}: array meta is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise FormatError(f"{path}: array meta must hold a JSON object, got {type(meta).__name__}")
    try:
        return OV(arrays["U"], arrays["V"], meta=meta)
    except InvalidInstance as exc:
        raise FormatError(f"{path}: {exc}") from None


def _check_npz_array(path: Path, key: str, dtype: np.dtype, shape: tuple[int, ...]) -> None:
    """``U``, ``V``: 2-D ``uint8``; ``meta``: a 0-d unicode string."""
    if key == "meta":
        if len(shape) != 0 or dtype.kind != "U":
            raise FormatError(
                f"{path}: array meta must be a 0-d string holding JSON, got dtype {dtype} and shape {shape}"
            )
    elif dtype != np.uint8 or len(shape) != 2:
        raise FormatError(f"{path}: array {key} must be a 2-D uint8 matrix, got {dtype} of shape {shape}")


def read_ov(path: str | os.PathLike) -> OV:
    """Read an OV instance from a text or ``.npz`` file (told apart by content).

    Nothing larger than memory is attempted: an ``.npz`` is checked array by array from its
    headers (:mod:`attention.npzfile`), a text file from its size and number of lines
    (:data:`TEXT_BYTES_PER_BYTE`, :data:`TEXT_BYTES_PER_LINE`), before it is parsed.

    Raises
    ------
    FormatError
        The file is malformed; the message names the file and the line (text) or array (npz).
    ResourceError
        The instance it holds (or declares) would not fit in the available memory.
    FinegrainError
        The file does not exist or cannot be read.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            if fh.read(2) == _ZIP_MAGIC:
                return _load_npz(path)
            size = os.fstat(fh.fileno()).st_size
            require_memory(
                TEXT_BYTES_PER_BYTE * size, f"{path}: parsing {size / 1e6:.3g} MB of OV text", READ_ALTERNATIVE
            )
            fh.seek(0)
            data = fh.read()
    except OSError as exc:
        raise FormatError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    lines = data.count(b"\n") + 1
    require_memory(
        TEXT_BYTES_PER_BYTE * len(data) + TEXT_BYTES_PER_LINE * lines,
        f"{path}: parsing {len(data) / 1e6:.3g} MB of OV text in {lines} lines",
        READ_ALTERNATIVE,
    )
    return parse_ov_text(data, name=str(path))


def write_ov(ov: OV, path: str | os.PathLike, force: bool = False) -> Path:
    """Write ``ov`` to ``path``: ``.npz`` if the suffix is ``.npz``, else the text format.

    Atomic (a temporary file beside ``path`` is renamed over it when complete); refuses to
    overwrite an existing file unless ``force``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> ov = OV([[1, 0]], [[0, 1], [1, 1]], meta={"note": "tiny"})
    >>> back = read_ov(write_ov(ov, folder / "tiny.ov"))
    >>> (back.U.tolist(), back.V.tolist(), back.meta)
    ([[1, 0]], [[0, 1], [1, 1]], {'note': 'tiny'})
    """
    if not isinstance(ov, OV):
        raise InvalidInstance(f"ov: expected an OV instance, got {type(ov).__name__}")
    path = Path(path)
    with atomic_write(path, "wb", force=force) as fh:
        if path.suffix == ".npz":
            _save_npz(ov, fh)
        else:
            for chunk in iter_ov_text(ov):
                fh.write(chunk)
    return path
