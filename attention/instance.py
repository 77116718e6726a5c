"""Attention loss-gradient instances (Alman-Song 2024, Definitions 1.2 and 1.4).

An instance holds ``A1 in R^{n x d}`` (queries), ``A2, A3 in R^{n_k x d}`` (keys, values),
``E in R^{n x d}`` (target) and ``X, Y in R^{d x d}``.  The loss is

    L(X) = 0.5 * || softmax_rows(A1 X A2^T / d) A3 Y - E ||_F^2 ,

and the entry bound of Definition 1.4 is ``B = max(||A1 X||_inf, ||A2||_inf)``.  The
paper bounds ``A3`` and ``E`` only by their bit length; ``||A3 Y||_inf`` is reported
because every error bound scales with it.

Files are ``.npz`` archives with arrays ``A1, A2, A3, E, X, Y`` (float64) and a JSON
string ``meta`` (provenance, parameters, decoding data), read with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from attention.errors import InvalidInstance
from attention.fileio import atomic_write
from attention.npzfile import ArrayHeader, read_headers, require_arrays_memory

ARRAY_NAMES = ("A1", "A2", "A3", "E", "X", "Y")


def as_matrix(value: Any, name: str) -> np.ndarray:
    """Return ``value`` as a C-contiguous float64 matrix, or raise :class:`InvalidInstance`.

    Integer and float inputs are accepted; bool, complex, object and string arrays,
    non-2-D arrays, empty matrices and NaN/Inf entries are refused with a message that
    names the argument.
    """
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise InvalidInstance(f"{name}: cannot be read as a matrix ({exc})") from None
    if arr.dtype == object or arr.dtype.kind not in "iuf":
        raise InvalidInstance(
            f"{name}: expected a real numeric matrix, got dtype {arr.dtype}; "
            "convert it to float64"
        )
    if arr.ndim != 2:
        raise InvalidInstance(f"{name}: expected a 2-D matrix, got shape {arr.shape}")
    if arr.size == 0:
        raise InvalidInstance(f"{name}: empty matrix (shape {arr.shape}); every dimension must be >= 1")
    with np.errstate(over="raise"):
        try:
            out = np.ascontiguousarray(arr, dtype=np.float64)
        except FloatingPointError:
            raise InvalidInstance(f"{name}: entries overflow float64") from None
    if not np.isfinite(out).all():
        bad = np.argwhere(~np.isfinite(out))[0]
        raise InvalidInstance(
            f"{name}: non-finite entry {out[tuple(bad)]} at index {tuple(int(i) for i in bad)}; "
            "all entries must be finite"
        )
    return out


def _is_npy(path: Path) -> bool:
    """Does ``path`` start with the ``.npy`` magic string (a single array, not an archive)?"""
    with open(path, "rb") as fh:
        return fh.read(6) == b"\x93NUMPY"


@dataclass(frozen=True, eq=False)
class AttentionInstance:
    """One attention loss-gradient instance ``(A1, A2, A3, E, X, Y)`` with metadata.

    Parameters
    ----------
    A1 : (n, d) array, the query inputs.
    A2 : (n_k, d) array, the key inputs.
    A3 : (n_k, d) array, the value inputs.
    E : (n, d) array, the target.
    X, Y : (d, d) arrays, the query-key and value weights.
    meta : dict, JSON-serialisable provenance and parameters; round-trips exactly.

    Notes
    -----
    Scores are ``S = A1 X A2^T / d`` (the normalised convention of AS24 Definition 1.2).
    ``B = max(||A1 X||_inf, ||A2||_inf)`` is the entry bound of Definition 1.4; the scores
    satisfy ``|S_jk| <= B^2``.

    Examples
    --------
    >>> import numpy as np
    >>> inst = AttentionInstance.random(n=4, d=2, seed=0)
    >>> (inst.n, inst.n_k, inst.d)
    (4, 4, 2)
    >>> AttentionInstance(np.ones((2, 2)), np.ones((3, 2)), np.ones((2, 2)), np.zeros((2, 2)),
    ...                   np.eye(2), np.eye(2))
    Traceback (most recent call last):
    ...
    attention.errors.InvalidInstance: A3: shape (2, 2) must be (n_k, d) = (3, 2) like A2
    """

    A1: np.ndarray
    A2: np.ndarray
    A3: np.ndarray
    E: np.ndarray
    X: np.ndarray
    Y: np.ndarray
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ARRAY_NAMES:
            arr = as_matrix(getattr(self, name), name)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        n, d = self.A1.shape
        n_k = self.A2.shape[0]
        expected = {
            "A2": ((n_k, d), "(n_k, d)"),
            "A3": ((n_k, d), "(n_k, d)"),
            "E": ((n, d), "(n, d)"),
            "X": ((d, d), "(d, d)"),
            "Y": ((d, d), "(d, d)"),
        }
        if self.A2.shape[1] != d:
            raise InvalidInstance(
                f"A2: has {self.A2.shape[1]} columns but A1 has d = {d}; keys and queries share d"
            )
        for name, (shape, label) in expected.items():
            got = getattr(self, name).shape
            if got != shape:
                like = "like A2" if name == "A3" else "from A1"
                raise InvalidInstance(f"{name}: shape {got} must be {label} = {shape} {like}")
        if not isinstance(self.meta, dict):
            raise InvalidInstance(f"meta: expected a dict, got {type(self.meta).__name__}")
        try:
            json.dumps(self.meta, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidInstance(f"meta: not JSON-serialisable ({exc})") from None

    # ------------------------------------------------------------------ sizes and bounds
    @property
    def n(self) -> int:
        """Number of queries (rows of A1 and E)."""
        return self.A1.shape[0]

    @property
    def n_k(self) -> int:
        """Number of keys (rows of A2 and A3)."""
        return self.A2.shape[0]

    @property
    def d(self) -> int:
        """Head dimension."""
        return self.A1.shape[1]

    @property
    def B(self) -> float:
        """Entry bound ``max(||A1 X||_inf, ||A2||_inf)`` of AS24 Definition 1.4."""
        return float(max(np.abs(self.A1 @ self.X).max(), np.abs(self.A2).max()))

    @property
    def value_bound(self) -> float:
        """``||A3 Y||_inf``, the size of the values every error bound scales with."""
        return float(np.abs(self.A3 @ self.Y).max())

    @property
    def score_bound(self) -> float:
        """``max_jk |S_jk|`` bounded without forming S: ``max_j ||(A1 X)_j||_2 max_k ||A2_k||_2 / d``."""
        qn = np.sqrt(((self.A1 @ self.X) ** 2).sum(axis=1)).max()
        kn = np.sqrt((self.A2**2).sum(axis=1)).max()
        return float(qn * kn / self.d)

    def replace(self, **changes: Any) -> "AttentionInstance":
        """A copy with some arrays (or ``meta``) replaced; validated again."""
        fields = {name: getattr(self, name) for name in ARRAY_NAMES}
        fields["meta"] = dict(self.meta)
        fields.update(changes)
        return AttentionInstance(**fields)

    # ------------------------------------------------------------------ construction
    @classmethod
    def random(
        cls,
        n: int,
        d: int,
        *,
        n_k: int | None = None,
        B: float = 1.0,
        seed: int | None = None,
        target_scale: float = 1.0,
    ) -> "AttentionInstance":
        """A random instance with ``A1, A2`` uniform in ``[-B, B]``, ``X = I``, ``Y`` near ``I``.

        ``A3`` and ``E`` are uniform in ``[-1, 1]`` and ``[-target_scale, target_scale]``.
        """
        rng = np.random.default_rng(seed)
        n_k = n if n_k is None else n_k
        meta = {
            "generator": "AttentionInstance.random",
            "n": n,
            "n_k": n_k,
            "d": d,
            "B": B,
            "seed": seed,
        }
        return cls(
            A1=rng.uniform(-B, B, (n, d)),
            A2=rng.uniform(-B, B, (n_k, d)),
            A3=rng.uniform(-1, 1, (n_k, d)),
            E=rng.uniform(-target_scale, target_scale, (n, d)),
            X=np.eye(d),
            Y=np.eye(d) + 0.1 * rng.standard_normal((d, d)),
            meta=meta,
        )

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike, *, force: bool = False) -> Path:
        """Write the instance as ``.npz`` (arrays plus JSON ``meta``), atomically.

        Refuses to overwrite an existing file unless ``force`` is true.
        """
        path = Path(path)
        if path.suffix != ".npz":
            raise InvalidInstance(f"{path}: instance files must end in .npz")
        arrays = {name: getattr(self, name) for name in ARRAY_NAMES}
        meta = json.dumps(self.meta, allow_nan=False, sort_keys=True)
        with atomic_write(path, "wb", force=force) as fh:
            np.savez(fh, meta=np.array(meta), **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "AttentionInstance":
        """Read an instance written by :meth:`save` (or any ``.npz`` with the six arrays).

        Every array's ``.npy`` header is checked before its data is read
        (:mod:`attention.npzfile`): a header declaring more data than the archive holds is an
        :class:`InvalidInstance`, and arrays that would not fit in memory (as float64, see
        :func:`_load_bytes`) are refused with a :class:`~attention.errors.ResourceError`
        before anything is decompressed.
        """
        path = Path(path)
        if path.is_file() and _is_npy(path):
            raise InvalidInstance(
                f"{path}: a single .npy array, not an .npz archive with " + ", ".join(ARRAY_NAMES)
            )
        if path.is_file() and not zipfile.is_zipfile(path):
            raise InvalidInstance(
                f"{path}: not a readable .npz archive (an instance file is a zip of the arrays "
                f"{', '.join(ARRAY_NAMES)}); write one with finegrain reduce FILE --to gradient -o OUT.npz"
            )
        try:
            archive = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise InvalidInstance(f"{path}: no such file") from None
        except Exception as exc:
            raise InvalidInstance(f"{path}: not a readable .npz archive ({exc})") from None
        if not isinstance(archive, np.lib.npyio.NpzFile):  # not a regular file (a pipe) holding one .npy
            raise InvalidInstance(
                f"{path}: a single .npy array, not an .npz archive with " + ", ".join(ARRAY_NAMES)
            )
        with archive:
            missing = [name for name in ARRAY_NAMES if name not in archive.files]
            if missing:
                raise InvalidInstance(
                    f"{path}: missing array(s) {', '.join(missing)}; an instance file needs "
                    + ", ".join(ARRAY_NAMES)
                )
            names = [*ARRAY_NAMES, *(["meta"] if "meta" in archive.files else [])]
            headers = read_headers(archive.zip, names, str(path), InvalidInstance)
            require_arrays_memory(headers, _load_bytes(headers), str(path), LOAD_ALTERNATIVE)
            arrays = {}
            for name in ARRAY_NAMES:
                try:
                    arrays[name] = archive[name]
                except Exception as exc:  # object arrays refused by allow_pickle=False
                    raise InvalidInstance(f"{path}: array {name} cannot be read ({exc})") from None
            meta: dict = {}
            if "meta" in archive.files:
                try:
                    raw = archive["meta"]
                    meta = json.loads(str(raw[()]))
                except Exception as exc:
                    raise InvalidInstance(f"{path}: field meta is not valid JSON ({exc})") from None
                if not isinstance(meta, dict):
                    raise InvalidInstance(f"{path}: field meta must be a JSON object")
        try:
            return cls(meta=meta, **arrays)
        except InvalidInstance as exc:
            raise InvalidInstance(f"{path}: {exc}") from None


#: What :meth:`AttentionInstance.load` suggests when a file's arrays do not fit.
LOAD_ALTERNATIVE = (
    "load it on a machine with more memory, or check where the file came from "
    "(a few MB on disk declaring many GB is a compressed bomb, not an instance)"
)
#: Bytes of Python objects per byte of the ``meta`` array (UCS4 text, its str, the parsed JSON).
META_FACTOR = 3


def _load_bytes(headers: dict[str, ArrayHeader]) -> int:
    """Peak bytes of :meth:`AttentionInstance.load` for arrays with these declared headers.

    The arrays as stored, plus a float64 C-order copy of each that is not one already
    (``as_matrix``), plus the largest array's finiteness mask (one byte per entry), plus
    :data:`META_FACTOR` times the ``meta`` array.

    Examples
    --------
    >>> import numpy as np
    >>> h = ArrayHeader("A1", (1000, 8), np.dtype("<f4"), False, 32000, 32000, 100)
    >>> _load_bytes({"A1": h}) == 32000 + 8 * 8000 + 8000
    True
    """
    arrays = [h for name, h in headers.items() if name in ARRAY_NAMES]
    stored = sum(h.nbytes for h in arrays)
    copies = sum(
        8 * h.count for h in arrays if h.dtype != np.dtype(np.float64) or (h.fortran_order and len(h.shape) > 1)
    )
    mask = max((h.count for h in arrays), default=0)
    meta = headers["meta"].nbytes * META_FACTOR if "meta" in headers else 0
    return stored + copies + mask + meta
