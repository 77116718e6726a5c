"""OV instances: validation, bit packing, the text and .npz formats (round trips, malformed files, fuzz)."""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from attention.errors import FinegrainError, OutputExists
from reductions.errors import FormatError, InvalidInstance
from reductions.problems.ov import (
    OV,
    format_ov_text,
    is_orthogonal_pair,
    pack_bits,
    parse_ov_text,
    read_ov,
    write_ov,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
metas = st.dictionaries(st.text(), json_values, max_size=4)


@st.composite
def ov_instances(draw: st.DrawFn, max_n: int = 6, max_m: int = 140) -> OV:
    m = draw(st.integers(1, max_m))
    U = draw(arrays(np.uint8, (draw(st.integers(0, max_n)), m), elements=st.integers(0, 1)))
    V = draw(arrays(np.uint8, (draw(st.integers(0, max_n)), m), elements=st.integers(0, 1)))
    return OV(U, V, meta=draw(metas))


def same(a: OV, b: OV) -> bool:
    return (
        a.U.shape == b.U.shape
        and a.V.shape == b.V.shape
        and bool((a.U == b.U).all() and (a.V == b.V).all())
        and a.meta == b.meta
    )


# --------------------------------------------------------------------------- the instance
@pytest.mark.parametrize(
    "U, V, meta, fragment",
    [
        ([[0, 2]], [[0, 1]], {}, "U: entry [0, 1] = 2 is not 0 or 1"),
        ([[0, 1]], [[0.5, 1]], {}, "V: entry [0, 0] = 0.5 is not 0 or 1"),
        ([[0, 1]], [[0, 1, 1]], {}, "U has dimension m = 2 but V has m = 3"),
        ([0, 1], [[0, 1]], {}, "U: expected a 2-D matrix"),
        ([[0, 1], [1]], [[0, 1]], {}, "U: cannot be read as a matrix"),
        (np.zeros((2, 0)), np.zeros((2, 0)), {}, "U: vectors have dimension m = 0"),
        ([["0", "1"]], [[0, 1]], {}, "U: expected 0/1 entries, got dtype <U1"),
        ([[0, 1]], [[0, 1]], [1], "meta: expected a dict"),
        ([[0, 1]], [[0, 1]], {"x": np.int64(3)}, "meta: not JSON-serialisable"),
        ([[0, 1]], [[0, 1]], {"x": float("nan")}, "meta: not JSON-serialisable"),
    ],
)
def test_invalid_instances_name_the_problem(U, V, meta, fragment):
    with pytest.raises(InvalidInstance) as info:
        OV(U, V, meta=meta)
    assert fragment in str(info.value)


def test_instance_owns_its_arrays():
    U = np.array([[1, 0]], dtype=np.uint8)
    ov = OV(U, [[0, 1]])
    U[0, 0] = 0  # the caller's array stays writable and does not alias the instance
    assert ov.U.tolist() == [[1, 0]] and not ov.U.flags.writeable
    with pytest.raises(ValueError):
        ov.U[0, 0] = 1


@given(ov_instances(max_m=200))
def test_pack_bits_puts_coordinate_l_in_bit_l_mod_64_of_word_l_div_64(ov):
    for side, packed in ((ov.U, ov.U_packed), (ov.V, ov.V_packed)):
        assert packed.dtype == np.uint64 and packed.shape == (len(side), -(-ov.m // 64))
        for row, words in zip(side, packed):
            as_int = sum(int(w) << (64 * k) for k, w in enumerate(words))
            assert as_int == sum(1 << l for l in range(ov.m) if row[l])  # padding bits are 0


@given(ov_instances(), st.integers(-2, 8), st.integers(-2, 8))
def test_is_orthogonal_pair_checks_indices_and_inner_product(ov, i, j):
    inside = 0 <= i < ov.n_U and 0 <= j < ov.n_V
    expected = inside and not any(int(a) & int(b) for a, b in zip(ov.U[i], ov.V[j]))
    assert is_orthogonal_pair(ov, (i, j)) == expected
    assert is_orthogonal_pair(ov, "not a pair") is False


# --------------------------------------------------------------------------- round trips
@given(ov_instances())
def test_text_round_trip_is_exact(ov):
    assert same(parse_ov_text(format_ov_text(ov)), ov)


@given(ov_instances(), st.sampled_from(["inst.ov", "inst.txt", "inst.npz"]))
def test_file_round_trip_is_exact(tmp_path_factory, ov, name):
    path = tmp_path_factory.mktemp("rt") / name
    assert write_ov(ov, path) == path
    assert same(read_ov(path), ov)
    assert os.listdir(path.parent) == [name]  # no temporary file left behind


def test_text_reader_accepts_comments_blank_lines_and_crlf():
    text = b"# made by hand\r\n\r\nc another comment\r\n2 1 3\r\n011\r\nc between vectors\r\n  100  \r\n\r\n111\r\n"
    ov = parse_ov_text(text)
    assert ov.U.tolist() == [[0, 1, 1], [1, 0, 0]] and ov.V.tolist() == [[1, 1, 1]] and ov.meta == {}


def test_empty_sides_round_trip(tmp_path):
    ov = OV(np.zeros((0, 5), np.uint8), [[1, 0, 1, 0, 1]])
    for name in ("e.ov", "e.npz"):
        back = read_ov(write_ov(ov, tmp_path / name))
        assert back.U.shape == (0, 5) and back.V.tolist() == [[1, 0, 1, 0, 1]]


def test_write_refuses_to_overwrite_without_force(tmp_path):
    path = tmp_path / "x.ov"
    write_ov(OV([[1]], [[0]]), path)
    with pytest.raises(OutputExists, match="exists"):
        write_ov(OV([[0]], [[0]]), path)
    assert read_ov(path).U.tolist() == [[1]]
    write_ov(OV([[0]], [[0]]), path, force=True)
    assert read_ov(path).U.tolist() == [[0]]


def test_write_rejects_a_non_instance_and_a_missing_directory(tmp_path):
    with pytest.raises(InvalidInstance, match="expected an OV instance"):
        write_ov([[1]], tmp_path / "x.ov")
    with pytest.raises(FinegrainError, match="does not exist"):
        write_ov(OV([[1]], [[0]]), tmp_path / "missing" / "x.ov")


# --------------------------------------------------------------------------- malformed text files
VALID = "c meta {\"seed\": 1}\n2 1 3\n011\n100\n111\n"


@pytest.mark.parametrize(
    "text, line, fragment",
    [
        ("", 1, "no header line"),
        ("c only a comment\n# and another\n", 2, "no header line"),
        ("2 1\n011\n100\n111\n", 1, "expected the header 'n_U n_V m'"),
        ("2 one 3\n011\n100\n111\n", 1, "expected the header 'n_U n_V m'"),
        ("-2 1 3\n011\n100\n111\n", 1, "expected the header 'n_U n_V m'"),
        ("2 1 0\n\n\n", 1, "m = 0"),
        ("2 1 3\n011\n10\n111\n", 3, "vector has 2 characters, the header (line 1) says m = 3"),
        ("2 1 3\n011\n1000\n111\n", 3, "vector has 4 characters"),
        ("2 1 3\n011\n120\n111\n", 3, "character 2 is '2'"),
        ("2 1 3\n011\n1 0\n111\n", 3, "character 2 is ' '"),
        ("2 1 3\n011\n100\n", 3, "file ends after 2 vector lines; the header (line 1) says n_U + n_V = 2 + 1 = 3"),
        ("2 1 3\n011\n100\n111\n000\n", 5, "extra vector line"),
        ("c meta {\"seed\": \n2 1 3\n011\n100\n111\n", 1, "'c meta' is not followed by valid JSON"),
        ("c meta [1, 2]\n2 1 3\n011\n100\n111\n", 1, "must hold a JSON object, got list"),
        ("c meta " + "[" * 100000 + "\n2 1 3\n011\n100\n111\n", 1, "'c meta' is not followed by valid JSON"),
        ("c meta {}\nc meta {}\n2 1 3\n011\n100\n111\n", 2, "second 'c meta' line (first on line 1)"),
        ("2 1 3\n011\n1\xe90\n111\n", 3, "character 2 is"),
    ],
)
def test_malformed_text_gives_one_format_error_naming_file_and_line(tmp_path, text, line, fragment):
    path = tmp_path / "bad.ov"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(FormatError) as info:
        read_ov(path)
    message = str(info.value)
    assert message.startswith(f"{path} line {line}: "), message
    assert fragment in message, message
    assert "\n" not in message


def test_valid_reference_file_parses():
    ov = parse_ov_text(VALID.encode())
    assert ov.meta == {"seed": 1} and ov.U.tolist() == [[0, 1, 1], [1, 0, 0]]


def test_missing_file_is_a_format_error(tmp_path):
    with pytest.raises(FormatError, match="cannot read the file"):
        read_ov(tmp_path / "nope.ov")


# --------------------------------------------------------------------------- malformed .npz files
def _npz(path, **arrays):
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path


GOOD_U = np.array([[0, 1, 1], [1, 0, 0]], np.uint8)
GOOD_V = np.array([[1, 1, 1]], np.uint8)
GOOD_META = np.array(json.dumps({"seed": 1}))


@pytest.mark.parametrize(
    "arrays, fragment",
    [
        (dict(V=GOOD_V, meta=GOOD_META), "missing ['U']"),
        (dict(U=GOOD_U, V=GOOD_V), "missing ['meta']"),
        (dict(U=GOOD_U, V=GOOD_V, meta=GOOD_META, X=GOOD_U), "unexpected ['X']"),
        (dict(U=GOOD_U.astype(np.int64), V=GOOD_V, meta=GOOD_META), "array U must be a 2-D uint8 matrix, got int64"),
        (dict(U=GOOD_U, V=GOOD_V[0], meta=GOOD_META), "array V must be a 2-D uint8 matrix, got uint8 of shape (3,)"),
        (dict(U=GOOD_U[None], V=GOOD_V, meta=GOOD_META), "shape (1, 2, 3)"),
        (dict(U=GOOD_U * 2, V=GOOD_V, meta=GOOD_META), "U: entry [0, 1] = 2 is not 0 or 1"),
        (dict(U=GOOD_U[:, :2], V=GOOD_V, meta=GOOD_META), "U has dimension m = 2 but V has m = 3"),
        (dict(U=np.zeros((1, 0), np.uint8), V=np.zeros((1, 0), np.uint8), meta=GOOD_META), "m = 0"),
        (dict(U=GOOD_U, V=GOOD_V, meta=np.array('{"seed": ')), "array meta is not valid JSON"),
        (dict(U=GOOD_U, V=GOOD_V, meta=np.array("[1]")), "array meta must hold a JSON object, got list"),
        (dict(U=GOOD_U, V=GOOD_V, meta=np.array(3)), "array meta must be a 0-d string"),
        (dict(U=GOOD_U, V=GOOD_V, meta=np.array(["{}", "{}"])), "array meta must be a 0-d string"),
        (dict(U=GOOD_U, V=GOOD_V, meta=np.array({"a": 1}, dtype=object)), "array meta cannot be read"),
    ],
)
def test_malformed_npz_gives_one_format_error_naming_file_and_array(tmp_path, arrays, fragment):
    path = _npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(FormatError) as info:
        read_ov(path)
    assert str(info.value).startswith(f"{path}: ") and fragment in str(info.value), str(info.value)


def test_truncated_or_corrupt_npz_is_a_format_error(tmp_path):
    good = _npz(tmp_path / "good.npz", U=GOOD_U, V=GOOD_V, meta=GOOD_META).read_bytes()
    for k, data in enumerate([good[: len(good) // 2], good[:-30], b"PK\x03\x04garbage"]):
        path = tmp_path / f"cut{k}.npz"
        path.write_bytes(data)
        with pytest.raises(FormatError, match="bad|not a readable|cannot be read"):
            read_ov(path)


def test_a_single_npy_array_is_not_an_ov_archive(tmp_path):
    path = tmp_path / "one.npz"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("U.npy", b"not really an array")
    path.write_bytes(buffer.getvalue())
    with pytest.raises(FormatError):
        read_ov(path)


# --------------------------------------------------------------------------- fuzz
def _parses_or_format_error(data: bytes) -> None:
    try:
        ov = parse_ov_text(data, name="fuzz.ov")
    except (FormatError, InvalidInstance):
        return
    assert isinstance(ov, OV)


@given(st.binary(max_size=300))
def test_fuzz_random_bytes_raise_only_format_errors(data):
    _parses_or_format_error(data)


TOKENS = [b"0", b"1", b"\n", b" ", b"c", b"#", b"2", b"meta", b"{", b"}", b"-", b"\r"]


@given(st.lists(st.sampled_from(TOKENS), max_size=60))
def test_fuzz_format_like_tokens_raise_only_format_errors(tokens):
    _parses_or_format_error(b"".join(tokens))


mutations = st.lists(
    st.tuples(
        st.sampled_from(["replace", "delete", "insert", "dup_line", "drop_line"]),
        st.integers(0, 10**6),
        st.binary(min_size=1, max_size=2),
    ),
    min_size=1,
    max_size=4,
)


def _mutate(data: bytes, steps: list) -> bytes:
    for kind, position, payload in steps:
        lines = data.split(b"\n")
        k = position % (len(data) + 1)
        line = position % len(lines)
        if kind == "replace":
            data = data[:k] + payload + data[k + 1 :]
        elif kind == "delete":
            data = data[:k] + data[k + 1 :]
        elif kind == "insert":
            data = data[:k] + payload + data[k:]
        elif kind == "dup_line":
            data = b"\n".join(lines[: line + 1] + lines[line:])
        else:
            data = b"\n".join(lines[:line] + lines[line + 1 :])
    return data


@given(ov_instances(max_n=4, max_m=12), mutations)
def test_fuzz_mutated_valid_text_raises_only_format_errors(ov, steps):
    _parses_or_format_error(_mutate(format_ov_text(ov), steps))


@given(ov_instances(max_n=3, max_m=8), mutations)
def test_fuzz_mutated_npz_raises_only_format_errors(tmp_path_factory, ov, steps):
    folder = tmp_path_factory.mktemp("fz")
    data = write_ov(ov, folder / "a.npz").read_bytes()
    path = folder / "b.npz"
    path.write_bytes(_mutate(data, steps))
    try:
        read_ov(path)
    except FormatError:
        pass
