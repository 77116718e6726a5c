"""Property-based fuzzing of every file parser: only documented errors, and exact round trips.

Parsers: DIMACS (strict and lenient, :func:`~reductions.problems.cnf.parse_dimacs`), OV text
(:func:`~reductions.problems.ov.parse_ov_text`), OV ``.npz`` (:func:`~reductions.problems.ov.read_ov`)
and attention ``.npz`` (:meth:`attention.AttentionInstance.load`).  For each:

- random bytes, and random mutations of valid files (bytes flipped, deleted, inserted,
  duplicated, truncated), either parse to a well-formed instance or raise the parser's
  documented error (``DimacsError``, ``FormatError``, ``InvalidInstance``) -- never anything
  else;
- valid files written by the library read back exactly (clauses and variable count; vectors
  and meta; arrays bit for bit and meta).
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from attention import AttentionInstance
from reductions.errors import DimacsError, FormatError, InvalidInstance
from reductions.problems.cnf import check_cnf, dimacs_string, make_cnf, parse_dimacs
from reductions.problems.ov import OV, format_ov_text, parse_ov_text, read_ov, write_ov

#: Examples per property and format; ``FUZZ_SCALE=20 pytest tests/reliability/test_fuzz.py`` runs a campaign.
SCALE = int(os.environ.get("FUZZ_SCALE", "1"))
EXAMPLES = {"bytes": 250 * SCALE, "mutations": 250 * SCALE, "round_trip": 80 * SCALE}


def fuzz(kind: str) -> settings:
    return settings(
        max_examples=EXAMPLES[kind],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
metas = st.dictionaries(st.text(max_size=8), json_values, max_size=3)


# ----------------------------------------------------------------------------- valid instances
@st.composite
def formulas(draw: st.DrawFn) -> Any:
    nv = draw(st.integers(0, 12))
    literal = st.integers(1, max(nv, 1)).flatmap(lambda v: st.sampled_from([v, -v]))
    clauses = draw(st.lists(st.lists(literal, max_size=4), max_size=10)) if nv else draw(st.lists(st.just([]), max_size=2))
    comments = draw(st.lists(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12), max_size=2))
    return make_cnf(clauses, nv=nv, comments=comments)


@st.composite
def ov_instances(draw: st.DrawFn) -> OV:
    m = draw(st.integers(1, 70))
    U = draw(arrays(np.uint8, (draw(st.integers(0, 5)), m), elements=st.integers(0, 1)))
    V = draw(arrays(np.uint8, (draw(st.integers(0, 5)), m), elements=st.integers(0, 1)))
    return OV(U, V, meta=draw(metas))


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@st.composite
def attention_instances(draw: st.DrawFn) -> AttentionInstance:
    n, n_k, d = (draw(st.integers(1, 4)) for _ in range(3))
    shapes = {"A1": (n, d), "A2": (n_k, d), "A3": (n_k, d), "E": (n, d), "X": (d, d), "Y": (d, d)}
    mats = {name: draw(arrays(np.float64, shape, elements=finite)) for name, shape in shapes.items()}
    return AttentionInstance(meta=draw(metas), **mats)


# ----------------------------------------------------------------------------- the formats
@dataclass(frozen=True)
class Format:
    """A parser: how to write a valid file as bytes, how to read bytes, its documented error."""

    name: str
    instances: st.SearchStrategy
    to_bytes: Callable[[Any], bytes]
    read: Callable[[bytes, Path], Any]
    error: type
    well_formed: Callable[[Any], None]


def _npz(**arrays_: Any) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays_)
    return buf.getvalue()


def _via_file(reader: Callable[[Path], Any]) -> Callable[[bytes, Path], Any]:
    def read(data: bytes, folder: Path) -> Any:
        path = folder / "fuzz.npz"
        path.write_bytes(data)
        return reader(path)

    return read


def _ov_ok(ov: Any) -> None:
    assert isinstance(ov, OV) and ov.U.shape[1] == ov.V.shape[1] >= 1 and set(np.unique(ov.U)) <= {0, 1}
    json.dumps(ov.meta, allow_nan=False)


def _att_ok(inst: Any) -> None:
    assert isinstance(inst, AttentionInstance)
    assert all(np.isfinite(getattr(inst, a)).all() for a in ("A1", "A2", "A3", "E", "X", "Y"))


FORMATS = {
    "dimacs_strict": Format(
        "dimacs_strict", formulas(), lambda f: dimacs_string(f).encode(),
        lambda data, _: parse_dimacs(data, strict=True, source="fuzz.cnf"), DimacsError, check_cnf,
    ),
    "dimacs_lenient": Format(
        "dimacs_lenient", formulas(), lambda f: dimacs_string(f).encode(),
        lambda data, _: parse_dimacs(data, strict=False, source="fuzz.cnf"), DimacsError, check_cnf,
    ),
    "ov_text": Format(
        "ov_text", ov_instances(), format_ov_text, lambda data, _: parse_ov_text(data, name="fuzz.ov"),
        FormatError, _ov_ok,
    ),
    "ov_npz": Format(
        "ov_npz", ov_instances(),
        lambda ov: _npz(U=ov.U, V=ov.V, meta=np.array(json.dumps(ov.meta))),
        _via_file(read_ov), FormatError, _ov_ok,
    ),
    "attention_npz": Format(
        "attention_npz", attention_instances(),
        lambda inst: _npz(meta=np.array(json.dumps(inst.meta)), **{a: getattr(inst, a) for a in ("A1", "A2", "A3", "E", "X", "Y")}),
        _via_file(AttentionInstance.load), InvalidInstance, _att_ok,
    ),
}


def parses_or_documented_error(fmt: Format, data: bytes, folder: Path) -> None:
    try:
        result = fmt.read(data, folder)
    except fmt.error as exc:
        assert "\n" not in str(exc)
        return
    fmt.well_formed(result)


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` after 1-4 random edits: flip, delete, insert, duplicate a slice, truncate."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "delete", "insert", "duplicate", "truncate"]))
        if not out:
            op = "insert"
        at = draw(st.integers(0, max(len(out) - 1, 0)))
        span = draw(st.integers(1, 16))
        if op == "flip":
            out[at] ^= draw(st.integers(1, 255))
        elif op == "delete":
            del out[at : at + span]
        elif op == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=span))
        elif op == "duplicate":
            out[at:at] = out[at : at + span]
        else:
            del out[at:]
    return bytes(out)


# ----------------------------------------------------------------------------- the properties
@pytest.mark.parametrize("name", sorted(FORMATS))
def test_random_bytes_raise_only_the_documented_error(name, tmp_path_factory):
    fmt, folder = FORMATS[name], tmp_path_factory.mktemp(name)
    prefix = st.sampled_from([b"", b"PK\x03\x04", b"p cnf 3 2\n", b"1 1 3\n", b"\x1f\x8b"])

    @fuzz("bytes")
    @given(prefix, st.binary(max_size=400))
    def run(head: bytes, data: bytes) -> None:
        parses_or_documented_error(fmt, head + data, folder)

    run()


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_mutated_valid_files_raise_only_the_documented_error(name, tmp_path_factory):
    fmt, folder = FORMATS[name], tmp_path_factory.mktemp(name)

    @fuzz("mutations")
    @given(fmt.instances.map(fmt.to_bytes).flatmap(mutated))
    def run(data: bytes) -> None:
        parses_or_documented_error(fmt, data, folder)

    run()


def _same_cnf(a: Any, b: Any) -> bool:
    return a.nv == b.nv and a.clauses == b.clauses


@pytest.mark.parametrize("strict", [True, False])
@fuzz("round_trip")
@given(cnf=formulas())
def test_dimacs_round_trip_is_exact(cnf, strict):
    back = parse_dimacs(dimacs_string(cnf, {"seed": 1}), strict=strict)
    assert _same_cnf(back, cnf)
    assert back.comments[1:] == cnf.comments  # after the provenance line


@pytest.mark.parametrize("suffix", [".ov", ".npz"])
@fuzz("round_trip")
@given(ov=ov_instances())
def test_ov_file_round_trip_is_exact(ov, suffix, tmp_path_factory):
    path = write_ov(ov, tmp_path_factory.mktemp("ov") / f"inst{suffix}")
    back = read_ov(path)
    assert back.U.shape == ov.U.shape and back.V.shape == ov.V.shape
    assert (back.U == ov.U).all() and (back.V == ov.V).all() and back.meta == ov.meta


@fuzz("round_trip")
@given(inst=attention_instances())
def test_attention_file_round_trip_is_bit_exact(inst, tmp_path_factory):
    back = AttentionInstance.load(inst.save(tmp_path_factory.mktemp("att") / "inst.npz"))
    for name in ("A1", "A2", "A3", "E", "X", "Y"):
        a, b = getattr(inst, name), getattr(back, name)
        assert a.shape == b.shape and a.tobytes() == b.tobytes()  # bit for bit, -0.0 and subnormals too
    assert back.meta == inst.meta


@fuzz("bytes")
@given(st.sampled_from(["c finegrain {", "c planted-model "]), st.text(max_size=40) | st.just("[" * 50_000))
def test_comment_records_of_a_dimacs_file_are_read_or_ignored(tag, rest):
    """``read_provenance`` / ``planted_model`` on whatever a file's comments hold: a record or None."""
    from reductions.problems.cnf import planted_model, read_provenance

    cnf = make_cnf([[1]], nv=1, comments=[tag + rest])
    record, model = read_provenance(cnf), planted_model(cnf)
    assert record is None or isinstance(record, dict)
    assert model is None or all(isinstance(lit, int) and lit != 0 for lit in model)
