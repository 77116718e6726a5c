"""The malformed-input corpus under ``tests/data/bad/ov`` and ``tests/data/bad/npz``: how each file is made.

Every file is one :class:`Case`: its name, the bytes or arrays it holds, the error class the
library reader must raise and a phrase its message must contain.  ``python
tests/reliability/bad_corpus.py`` rewrites the corpus (the DIMACS files under
``tests/data/bad/dimacs`` are catalogued in ``tests/reductions/test_cnf.py``).

Readers: ``ov/*`` and ``npz/ov_*`` go through :func:`reductions.problems.ov.read_ov`,
``npz/att_*`` through :meth:`attention.AttentionInstance.load`.  A case with ``available``
is read with that much memory reported available: the ``*_deflate_bomb`` archives (66 kB on
disk, 64 MiB of zeros expanded) are refused at 16 MiB as a 40 GB bomb is on a real machine.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from numpy.lib import format as npy_format

ROOT = Path(__file__).resolve().parents[1] / "data" / "bad"


@dataclass(frozen=True)
class Case:
    """One corpus file: ``folder/name``, how to write it, and the error its reader must raise."""

    folder: str
    name: str
    write: Callable[[Path], None]
    error: str  # class name: FormatError, InvalidInstance, ...
    phrase: str  # must appear in the message
    available: int | None = None  # the memory the reader is told is available (None: the machine's)

    @property
    def path(self) -> Path:
        return ROOT / self.folder / self.name


def _text(data: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(data)


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def _npy_header_only(descr: str, shape: tuple[int, ...]) -> bytes:
    """An ``.npy`` member whose header declares ``shape`` but which holds 64 bytes of data."""
    buf = io.BytesIO()
    npy_format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue() + bytes(64)


def _zip(members: dict[str, bytes]) -> Callable[[Path], None]:
    """A zip archive with fixed timestamps (byte-for-byte reproducible)."""

    def write(path: Path) -> None:
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in members.items():
                archive.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data)

    return write


def _bomb(members: dict[str, bytes], name: str, descr: str, shape: tuple[int, ...]) -> Callable[[Path], None]:
    """A deflate bomb: member ``name`` is a true ``.npy`` of zeros of ``shape`` (header and data
    agree), compressed about 1000:1; the other members are stored as they are.  Written in
    chunks, so building it needs no memory of its expanded size."""

    def write(path: Path) -> None:
        with zipfile.ZipFile(path, "w") as archive:
            for member, data in members.items():
                archive.writestr(zipfile.ZipInfo(member, date_time=(2024, 1, 1, 0, 0, 0)), data)
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w") as out:
                npy_format.write_array_header_1_0(out, {"descr": descr, "fortran_order": False, "shape": shape})
                left = int(np.prod(shape)) * np.dtype(descr).itemsize
                while left:
                    chunk = min(left, 1 << 20)
                    out.write(bytes(chunk))
                    left -= chunk

    return write


#: The memory the bomb cases are read with: well below what they expand to (64 MiB).
BOMB_AVAILABLE = 16 * 2**20


def _arrays(**arrays: np.ndarray) -> Callable[[Path], None]:
    return _zip({f"{name}.npy": _npy(np.asarray(value)) for name, value in arrays.items()})


def _meta(obj: object) -> np.ndarray:
    return np.array(obj if isinstance(obj, str) else json.dumps(obj))


# ----------------------------------------------------------------------------- OV text
GOOD_OV = b"c finegrain OV instance\n2 2 3\n011\n100\n101\n010\n"
DEEP = "[" * 100_000 + "]" * 100_000

OV_TEXT = [
    Case("ov", "ragged_rows.ov", _text(b"2 2 3\n011\n10\n101\n010\n"), "FormatError", "line 3: vector has 2 characters"),
    Case("ov", "long_row.ov", _text(b"2 2 3\n011\n1000\n101\n010\n"), "FormatError", "line 3: vector has 4 characters"),
    Case("ov", "non_binary_digit.ov", _text(b"2 2 3\n011\n120\n101\n010\n"), "FormatError", "line 3: character 2 is '2'"),
    Case("ov", "letter.ov", _text(b"2 2 3\n011\n100\nx01\n010\n"), "FormatError", "line 4: character 1 is 'x'"),
    Case("ov", "spaces_between_bits.ov", _text(b"1 1 3\n0 1 1\n100\n"), "FormatError", "line 2: vector has 5 characters"),
    Case("ov", "too_few_rows.ov", _text(b"2 2 3\n011\n100\n101\n"), "FormatError", "file ends after 3 vector lines"),
    Case("ov", "too_many_rows.ov", _text(b"1 1 3\n011\n100\n111\n"), "FormatError", "line 4: extra vector line"),
    Case("ov", "header_two_numbers.ov", _text(b"2 3\n011\n100\n"), "FormatError", "expected the header 'n_U n_V m'"),
    Case("ov", "header_negative.ov", _text(b"-1 2 3\n011\n100\n"), "FormatError", "expected the header 'n_U n_V m'"),
    Case("ov", "header_not_integer.ov", _text(b"1.5 1 3\n011\n100\n"), "FormatError", "expected the header 'n_U n_V m'"),
    Case("ov", "header_overflow.ov", _text(b"1 1 1000000000000000000000\n0\n1\n"), "FormatError", "below 10^18"),
    Case("ov", "header_m_zero.ov", _text(b"0 0 0\n"), "FormatError", "m = 0"),
    Case("ov", "header_huge_counts.ov", _text(b"999999999999999999 1 3\n011\n100\n"), "FormatError", "file ends after 2 vector lines"),
    Case("ov", "empty.ov", _text(b""), "FormatError", "no header line"),
    Case("ov", "only_comments.ov", _text(b"c nothing here\n# nor here\n"), "FormatError", "no header line"),
    Case("ov", "meta_not_json.ov", _text(b"c meta {seed: 1}\n1 1 2\n01\n10\n"), "FormatError", "line 1: 'c meta' is not followed by valid JSON"),
    Case("ov", "meta_not_object.ov", _text(b'c meta [1, 2]\n1 1 2\n01\n10\n'), "FormatError", "must hold a JSON object"),
    Case("ov", "meta_twice.ov", _text(b'c meta {}\nc meta {}\n1 1 2\n01\n10\n'), "FormatError", "second 'c meta' line"),
    Case("ov", "meta_nan.ov", _text(b'c meta {"x": NaN}\n1 1 2\n01\n10\n'), "FormatError", "line 1"),
    Case("ov", "meta_float_overflow.ov", _text(b'c meta {"x": 1e400}\n1 1 2\n01\n10\n'), "FormatError", "line 1"),
    Case("ov", "meta_deeply_nested.ov", _text(b"c meta " + DEEP.encode() + b"\n1 1 2\n01\n10\n"), "FormatError", "'c meta' is not followed by valid JSON"),
    Case("ov", "binary_garbage.ov", _text(bytes(range(256)) * 4), "FormatError", "expected the header"),
    Case("ov", "nul_in_vector.ov", _text(b"1 1 3\n0\x001\n100\n"), "FormatError", "line 2: character 2"),
    Case("ov", "utf16.ov", _text("1 1 2\n01\n10\n".encode("utf-16")), "FormatError", "expected the header"),
    Case("ov", "latin1_in_vector.ov", _text("1 1 3\n01é\n100\n".encode("latin-1")), "FormatError", "line 2: character 3"),
    Case("ov", "zip_magic_text.ov", _text(b"PK this is not a zip archive\n"), "FormatError", "not a readable .npz archive"),
    Case("ov", "gzip_compressed.ov", _text(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + bytes(20)), "FormatError", "expected the header"),
]

# ----------------------------------------------------------------------------- OV .npz
U2 = np.array([[0, 1, 1], [1, 0, 0]], dtype=np.uint8)
V2 = np.array([[1, 0, 1], [0, 1, 0]], dtype=np.uint8)
GOOD_META = _meta({"generator": "bad_corpus"})
_good_ov_npz = {"U.npy": _npy(U2), "V.npy": _npy(V2), "meta.npy": _npy(GOOD_META)}


def _corrupted(members: dict[str, bytes], member: str) -> Callable[[Path], None]:
    """The archive with one byte of ``member``'s data flipped (its CRC no longer matches)."""

    def write(path: Path) -> None:
        _zip(members)(path)
        data = bytearray(path.read_bytes())
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo(member)
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
        data[start + info.file_size - 1] ^= 0xFF
        path.write_bytes(bytes(data))

    return write


def _truncated(members: dict[str, bytes]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        _zip(members)(path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])

    return write


OV_NPZ = [
    Case("npz", "ov_missing_V.npz", _arrays(U=U2, meta=GOOD_META), "FormatError", "missing ['V']"),
    Case("npz", "ov_extra_array.npz", _arrays(U=U2, V=V2, meta=GOOD_META, W=V2), "FormatError", "unexpected ['W']"),
    Case("npz", "ov_float_dtype.npz", _arrays(U=U2.astype(float), V=V2, meta=GOOD_META), "FormatError", "array U must be a 2-D uint8 matrix"),
    Case("npz", "ov_one_dimensional.npz", _arrays(U=U2.ravel(), V=V2, meta=GOOD_META), "FormatError", "array U must be a 2-D uint8 matrix"),
    Case("npz", "ov_non_binary.npz", _arrays(U=U2 * 2, V=V2, meta=GOOD_META), "FormatError", "is not 0 or 1"),
    Case("npz", "ov_dimension_mismatch.npz", _arrays(U=U2, V=V2[:, :2], meta=GOOD_META), "FormatError", "both sides need the same m"),
    Case("npz", "ov_zero_dimension.npz", _arrays(U=U2[:, :0], V=V2[:, :0], meta=GOOD_META), "FormatError", "m must be >= 1"),
    Case("npz", "ov_object_array.npz", _arrays(U=np.array([[0, 1], [1]], dtype=object), V=V2, meta=GOOD_META), "FormatError", "array U cannot be read"),
    Case("npz", "ov_meta_not_json.npz", _arrays(U=U2, V=V2, meta=_meta("{seed: 1}")), "FormatError", "array meta is not valid JSON"),
    Case("npz", "ov_meta_not_object.npz", _arrays(U=U2, V=V2, meta=_meta("[1, 2]")), "FormatError", "must hold a JSON object"),
    Case("npz", "ov_meta_bytes.npz", _arrays(U=U2, V=V2, meta=np.array(b"{}")), "FormatError", "0-d string holding JSON"),
    Case("npz", "ov_meta_nan.npz", _arrays(U=U2, V=V2, meta=_meta('{"x": NaN}')), "FormatError", "meta: not JSON-serialisable"),
    Case("npz", "ov_meta_deeply_nested.npz", _arrays(U=U2, V=V2, meta=_meta(DEEP)), "FormatError", "array meta is not valid JSON"),
    Case("npz", "ov_huge_declared_shape.npz", _zip({**_good_ov_npz, "U.npy": _npy_header_only("|u1", (2**40, 64))}), "FormatError", "array U: its header declares shape (1099511627776, 64) of uint8 (7.04e+13 bytes) but the archive holds 64 bytes"),
    Case("npz", "ov_deflate_bomb.npz", _bomb({k: v for k, v in _good_ov_npz.items() if k != "U.npy"}, "U.npy", "|u1", (2**20, 64)), "ResourceError", "reading its arrays as declared (U (1048576, 64) uint8", BOMB_AVAILABLE),
    Case("npz", "ov_not_npy_member.npz", _zip({**_good_ov_npz, "U.npy": b"not an array at all"}), "FormatError", "array U cannot be read: not an .npy array"),
    Case("npz", "ov_negative_dimension.npz", _zip({**_good_ov_npz, "U.npy": _npy_header_only("|u1", (-1, 3))}), "FormatError", "negative dimension, shape (-1, 3)"),
    Case("npz", "ov_crc_corrupted.npz", _corrupted(_good_ov_npz, "U.npy"), "FormatError", "array U cannot be read"),
    Case("npz", "ov_truncated.npz", _truncated(_good_ov_npz), "FormatError", "not a readable .npz archive"),
    Case("npz", "ov_empty_archive.npz", _zip({}), "FormatError", "missing ['U', 'V', 'meta']"),
]

# ----------------------------------------------------------------------------- attention .npz
_rng = np.random.default_rng(20240101)
_n, _d = 3, 2
GOOD_ATT = {
    "A1": _rng.uniform(-1, 1, (_n, _d)),
    "A2": _rng.uniform(-1, 1, (_n, _d)),
    "A3": _rng.uniform(-1, 1, (_n, _d)),
    "E": _rng.uniform(-1, 1, (_n, _d)),
    "X": np.eye(_d),
    "Y": np.eye(_d),
    "meta": GOOD_META,
}


def _att(**changes: object) -> Callable[[Path], None]:
    """The good attention instance with some arrays replaced (``None`` drops one)."""
    arrays = {**GOOD_ATT, **changes}
    return _arrays(**{k: v for k, v in arrays.items() if v is not None})


def _with_nan(name: str, value: float) -> np.ndarray:
    out = GOOD_ATT[name].copy()
    out[1, 0] = value
    return out


def _beyond_float64(shape: tuple[int, int]) -> np.ndarray:
    """``1e600`` in x87 extended precision (finite there, beyond float64); the 6 padding bytes of
    each 16-byte element zeroed so the file is reproducible."""
    value = np.full(shape, 1e300, dtype=np.longdouble) * np.longdouble(1e300)
    raw = value.view(np.uint8).reshape(-1, value.itemsize)
    raw[:, 10:] = 0
    return value


_good_att_members = {f"{k}.npy": _npy(v) for k, v in GOOD_ATT.items()}

ATT_NPZ = [
    Case("npz", "att_missing_E.npz", _att(E=None), "InvalidInstance", "missing array(s) E"),
    Case("npz", "att_complex_dtype.npz", _att(A1=GOOD_ATT["A1"].astype(complex)), "InvalidInstance", "A1: expected a real numeric matrix, got dtype complex128"),
    Case("npz", "att_string_dtype.npz", _att(A2=np.array([["a", "b"]] * 3)), "InvalidInstance", "A2: expected a real numeric matrix"),
    Case("npz", "att_bool_dtype.npz", _att(A3=np.ones((3, 2), dtype=bool)), "InvalidInstance", "A3: expected a real numeric matrix, got dtype bool"),
    Case("npz", "att_object_array.npz", _att(X=np.array([[1.0, None], [0.0, 1.0]], dtype=object)), "InvalidInstance", "array X cannot be read"),
    Case("npz", "att_nan_entry.npz", _att(A1=_with_nan("A1", np.nan)), "InvalidInstance", "A1: non-finite entry nan at index (1, 0)"),
    Case("npz", "att_inf_entry.npz", _att(E=_with_nan("E", np.inf)), "InvalidInstance", "E: non-finite entry inf at index (1, 0)"),
    Case("npz", "att_key_width_mismatch.npz", _att(A2=np.ones((3, 3))), "InvalidInstance", "A2: has 3 columns but A1 has d = 2"),
    Case("npz", "att_value_rows_mismatch.npz", _att(A3=np.ones((4, 2))), "InvalidInstance", "A3: shape (4, 2) must be (n_k, d) = (3, 2)"),
    Case("npz", "att_X_not_square.npz", _att(X=np.ones((2, 3))), "InvalidInstance", "X: shape (2, 3) must be (d, d) = (2, 2)"),
    Case("npz", "att_one_dimensional.npz", _att(Y=np.ones(2)), "InvalidInstance", "Y: expected a 2-D matrix, got shape (2,)"),
    Case("npz", "att_three_dimensional.npz", _att(A1=np.ones((3, 2, 1))), "InvalidInstance", "A1: expected a 2-D matrix, got shape (3, 2, 1)"),
    Case("npz", "att_empty_matrix.npz", _att(A1=np.ones((0, 2)), E=np.ones((0, 2))), "InvalidInstance", "A1: empty matrix"),
    Case("npz", "att_float_overflow.npz", _att(A2=_beyond_float64((3, 2))), "InvalidInstance", "A2: entries overflow float64"),
    Case("npz", "att_meta_not_json.npz", _att(meta=_meta("{seed: 1}")), "InvalidInstance", "field meta is not valid JSON"),
    Case("npz", "att_meta_not_object.npz", _att(meta=_meta("[1, 2]")), "InvalidInstance", "meta must be a JSON object"),
    Case("npz", "att_meta_nan.npz", _att(meta=_meta('{"x": NaN}')), "InvalidInstance", "meta: not JSON-serialisable"),
    Case("npz", "att_meta_deeply_nested.npz", _att(meta=_meta(DEEP)), "InvalidInstance", "field meta is not valid JSON"),
    Case("npz", "att_huge_declared_shape.npz", _zip({**_good_att_members, "A1.npy": _npy_header_only("<f8", (2**40, 2))}), "InvalidInstance", "array A1: its header declares shape (1099511627776, 2) of float64 (1.76e+13 bytes) but the archive holds 64 bytes"),
    Case("npz", "att_huge_declared_meta.npz", _zip({**_good_att_members, "meta.npy": _npy_header_only("<U250000000", ())}), "InvalidInstance", "array meta: its header declares shape () of <U250000000 (1e+09 bytes)"),
    Case("npz", "att_deflate_bomb.npz", _bomb({k: v for k, v in _good_att_members.items() if k != "A1.npy"}, "A1.npy", "<f8", (2**22, 2)), "ResourceError", "reading its arrays as declared (A1 (4194304, 2) float64", BOMB_AVAILABLE),
    Case("npz", "att_member_without_suffix.npz", _zip({**{k: v for k, v in _good_att_members.items() if k != "E.npy"}, "E": b"\x00" * 100}), "InvalidInstance", "array E cannot be read: not an .npy array"),
    Case("npz", "att_crc_corrupted.npz", _corrupted(_good_att_members, "E.npy"), "InvalidInstance", "array E cannot be read"),
    Case("npz", "att_truncated.npz", _truncated(_good_att_members), "InvalidInstance", "not a readable .npz archive"),
    Case("npz", "att_text_file.npz", _text(b"A1 = [[1, 2]]\n"), "InvalidInstance", "not a readable .npz archive"),
    Case("npz", "att_empty_file.npz", _text(b""), "InvalidInstance", "not a readable .npz archive"),
    Case("npz", "att_single_npy.npz", lambda path: path.write_bytes(_npy(GOOD_ATT["A1"])), "InvalidInstance", "a single .npy array, not an .npz archive"),
]

CASES = OV_TEXT + OV_NPZ + ATT_NPZ


def build(root: Path = ROOT) -> None:
    """Write every case under ``root/<folder>/<name>``."""
    for case in CASES:
        target = root / case.folder / case.name
        target.parent.mkdir(parents=True, exist_ok=True)
        case.write(target)


if __name__ == "__main__":
    build()
