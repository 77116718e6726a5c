"""CNF formulas: helpers around :class:`pysat.formula.CNF` (there is no second CNF class).

A formula is a ``pysat.formula.CNF``: ``cnf.clauses`` is a list of clauses, each a list of
DIMACS literals (``v`` or ``-v`` for a variable ``1 <= v <= cnf.nv``), and ``cnf.nv`` is the
number of variables.  **Here ``nv`` is the DIMACS header's count**, which may exceed the
largest variable in a clause (the split point ``N / 2`` of the k-SAT -> OV reduction and the
model count ``2^N`` depend on it).  pysat itself does not keep it, so:

* ``CNF(from_clauses=...)`` and pysat's own DIMACS reader recompute ``nv = max |literal|``;
  set ``cnf.nv`` *after* building (:func:`make_cnf` does) or read with :func:`read_cnf`.
* ``cnf.append``, ``cnf.extend`` (``nv = max(nv, |literals|)``), ``cnf.copy()`` and pysat's
  writers (``to_fp``, ``to_dimacs``) keep an ``nv`` set this way.

Tautologies, repeated literals and empty clauses are kept exactly as read: they are legal
DIMACS, and the checkers and solvers here handle them (an empty clause is unsatisfiable).

DIMACS reading
--------------
:func:`read_cnf` / :func:`parse_dimacs` read into a ``CNF`` with a clear
:class:`~reductions.errors.DimacsError` naming the file and line (``f.cnf line 14: ...``).

============================================  =================  ==================
input                                          strict (default)   lenient
============================================  =================  ==================
comment lines (``c ...``), blank lines         anywhere           anywhere
gzip-compressed file (detected by magic bytes) read               read
``p cnf <variables> <clauses>`` header         required, once,    same
                                               before clauses
literal ``|l| > variables``, non-integer       error              error
token, last clause without final ``0``,
clause count != header count
one clause per line, ending in ``0``           required           clauses may span
                                                                  lines or share one
SATLIB ``%`` end marker                        error              ends the formula
Windows line endings (CR LF)                   error              accepted
UTF-8 byte-order mark                          error              accepted
comment that is not valid UTF-8                error              accepted (replaced)
leading blanks before ``c`` / ``p``            error              accepted
============================================  =================  ==================

Lenient mode relaxes only layout: the header count, the literal range, the final ``0`` and
the clause count are checked in both modes, because a violation there usually means a
truncated or corrupted file, and reading it anyway would give a silently wrong answer.

Examples
--------
>>> cnf = parse_dimacs("c example\\np cnf 4 2\\n1 -2 0\\n2 3 0\\n")
>>> cnf.nv, cnf.clauses
(4, [[1, -2], [2, 3]])
>>> parse_dimacs("p cnf 3 1\\n1 -5 0\\n", source="f.cnf")
Traceback (most recent call last):
...
reductions.errors.DimacsError: f.cnf line 2: literal -5 is out of range: the header declares 3 variables
>>> is_satisfying(cnf, [1, 2, -3, -4])
True
"""

from __future__ import annotations

import gzip
import json
import os
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pysat.formula import CNF

from attention.errors import FinegrainError
from reductions.errors import DimacsError, InvalidInstance

#: Largest variable count accepted: pysat's solvers index variables with a C ``int``.
MAX_VARIABLES = 2**31 - 1
#: Comment prefix of the provenance record written by :func:`write_dimacs`.
PROVENANCE_TAG = "c finegrain"
#: Comment prefix under which planted generators record their model.
PLANTED_TAG = "c planted-model"

_GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"
_INTEGER = re.compile(rb"0|-?[1-9][0-9]*")
_COUNT = re.compile(rb"0|[1-9][0-9]*")
_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")
_LENIENT = "lenient mode accepts it (strict=False; finegrain --lenient)"
_MAX_DIGITS = 12  # longer integer tokens are out of range anyway; never convert them


def make_cnf(clauses: Iterable[Iterable[int]], nv: int | None = None, comments: Iterable[str] = ()) -> CNF:
    """A ``CNF`` with the given clauses and variable count ``nv`` (default: the largest variable).

    Parameters
    ----------
    clauses : iterable of iterables of int
        DIMACS literals, nonzero; each clause is copied into a new list.
    nv : int, optional
        Number of variables; must be at least the largest ``|literal|``.
    comments : iterable of str
        Comment lines (a ``"c "`` prefix is added where missing).

    Examples
    --------
    >>> make_cnf([[1, -2]], nv=5).nv
    5
    >>> make_cnf([[1, 0]])
    Traceback (most recent call last):
    ...
    attention.errors.InvalidInstance: clause 1: literal 0 is not allowed (0 ends a clause in DIMACS)
    """
    cnf = CNF()
    cnf.clauses = [[_as_literal(lit, index) for lit in clause] for index, clause in enumerate(clauses, start=1)]
    top = max((abs(lit) for clause in cnf.clauses for lit in clause), default=0)
    cnf.nv = top if nv is None else _as_count(nv, "nv")
    if cnf.nv < top:
        raise InvalidInstance(f"nv = {cnf.nv} but a clause uses variable {top}; nv must be >= {top}")
    cnf.comments = [_as_comment(text) for text in comments]
    return cnf


def check_cnf(cnf: Any) -> CNF:
    """``cnf`` if it is a well-formed ``CNF`` (integer literals within ``1..nv``), else :class:`InvalidInstance`."""
    if not isinstance(cnf, CNF):
        raise InvalidInstance(f"expected a pysat.formula.CNF, got {type(cnf).__name__}")
    nv = _as_count(cnf.nv, "cnf.nv")
    for index, clause in enumerate(cnf.clauses, start=1):
        for lit in clause:
            if abs(_as_literal(lit, index)) > nv:
                raise InvalidInstance(
                    f"clause {index}: literal {lit} is out of range 1..{nv} (cnf.nv); "
                    "raise cnf.nv or fix the clause"
                )
    return cnf


def _as_literal(lit: Any, index: int) -> int:
    if isinstance(lit, bool) or not hasattr(lit, "__index__"):
        raise InvalidInstance(f"clause {index}: literal {lit!r} is not an integer")
    value = int(lit)
    if value == 0:
        raise InvalidInstance(f"clause {index}: literal 0 is not allowed (0 ends a clause in DIMACS)")
    return value


def _as_count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__") or not 0 <= int(value) <= MAX_VARIABLES:
        raise InvalidInstance(f"{name} = {value!r}: expected an integer in 0..{MAX_VARIABLES}")
    return int(value)


def _as_comment(text: str) -> str:
    """One comment line: line breaks become blanks, other control characters escapes, ``c`` prefixed."""
    text = " ".join(str(text).splitlines())
    text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", lambda m: f"\\x{ord(m.group()):02x}", text)
    return text if text.startswith("c") else f"c {text}"


# --------------------------------------------------------------------------- reading


@dataclass
class _Parse:
    """State of one parse: the source name for messages, the mode and what was read so far."""

    source: str
    strict: bool
    nv: int = -1
    declared: int = 0
    header_line: int = 0
    clauses: list[list[int]] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)
    pending_line: int = 0

    def error(self, line: int | str, text: str) -> DimacsError:
        return DimacsError(f"{self.source} line {line}: {text}")


def read_cnf(path: str | os.PathLike, strict: bool = True) -> CNF:
    """Read a DIMACS CNF file (plain or gzip-compressed) into a ``CNF`` keeping the header's ``nv``.

    Parameters
    ----------
    path : str or path-like
        The file; gzip compression is detected from its first bytes, not its name.
    strict : bool
        Strict DIMACS (default) or the lenient mode of the module docstring's table.

    Raises
    ------
    DimacsError
        The file is malformed; the message names the file and line and how to fix it.
    FinegrainError
        The file cannot be read at all (missing, a directory, no permission).
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise FinegrainError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    return parse_dimacs(data, strict=strict, source=os.fspath(path))


def parse_dimacs(data: bytes | str, strict: bool = True, source: str = "<string>") -> CNF:
    """Parse DIMACS CNF text (``bytes``, possibly gzip-compressed, or ``str``) into a ``CNF``.

    See the module docstring for what ``strict`` accepts.  ``cnf.nv`` is the header's
    variable count, ``cnf.comments`` the comment lines (without line ends).
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    if data.startswith(_GZIP_MAGIC):
        data = _gunzip(data, source)
    state = _Parse(source=source, strict=strict)
    control = _CONTROL.search(data)
    if control:
        line = data.count(b"\n", 0, control.start()) + 1
        raise state.error(line, f"binary data (byte 0x{control.group()[0]:02x}); this is not a DIMACS text file")
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    number = 0
    for number, raw in enumerate(lines, start=1):
        line = _clean(state, number, raw)
        if line.startswith(b"%"):
            if strict:
                raise state.error(number, f"'%' end marker (SATLIB style); remove it, or {_LENIENT}")
            break
        _read_line(state, number, line)
    return _finish(state, number)


def _gunzip(data: bytes, source: str) -> bytes:
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise DimacsError(f"{source}: starts like a gzip file but cannot be decompressed ({exc})") from None


def _clean(state: _Parse, number: int, raw: bytes) -> bytes:
    """The line without its CR / BOM (lenient) or an error for them (strict)."""
    if number == 1 and raw.startswith(_BOM):
        if state.strict:
            raise state.error(number, f"file starts with a UTF-8 byte-order mark; save it without, or {_LENIENT}")
        raw = raw[len(_BOM) :]
    if raw.endswith(b"\r"):
        if state.strict:
            raise state.error(number, f"Windows line ending (CR LF); convert it (dos2unix), or {_LENIENT}")
        raw = raw[:-1]
    stripped = raw.lstrip()
    if state.strict and len(stripped) < len(raw) and stripped[:1] in (b"c", b"p"):
        first = stripped[:1].decode()
        raise state.error(number, f"blanks before '{first}': comment and header lines start in column 1; {_LENIENT}")
    return stripped if not state.strict else raw


def _read_line(state: _Parse, number: int, line: bytes) -> None:
    if line.startswith(b"c"):
        state.comments.append(_decode_comment(state, number, line))
        return
    tokens = line.split()
    if not tokens:
        return
    if line.startswith(b"p"):
        _read_header(state, number, tokens)
        return
    if state.nv < 0:
        raise state.error(
            number, f"{_show(tokens[0])} before the 'p cnf <variables> <clauses>' header; the header comes first"
        )
    _read_clause_tokens(state, number, tokens)


def _decode_comment(state: _Parse, number: int, line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        if state.strict:
            raise state.error(
                number,
                f"comment is not valid UTF-8 (byte 0x{line[exc.start]:02x} at column {exc.start + 1}); {_LENIENT}",
            ) from None
        return line.decode("utf-8", errors="replace")


def _read_header(state: _Parse, number: int, tokens: list[bytes]) -> None:
    if state.nv >= 0:
        raise state.error(number, f"second header (the first is at line {state.header_line})")
    if len(tokens) != 4 or tokens[:2] != [b"p", b"cnf"] or not all(_COUNT.fullmatch(t) for t in tokens[2:]):
        shown = _show(b" ".join(tokens))
        raise state.error(number, f"bad header {shown}; expected 'p cnf <variables> <clauses>' with integers >= 0")
    if len(tokens[2]) > _MAX_DIGITS or int(tokens[2]) > MAX_VARIABLES:
        raise state.error(
            number, f"header declares {_show(tokens[2])} variables; at most {MAX_VARIABLES} are supported"
        )
    state.nv, state.declared, state.header_line = int(tokens[2]), int(tokens[3]), number


def _read_clause_tokens(state: _Parse, number: int, tokens: list[bytes]) -> None:
    if not state.pending:
        state.pending_line = number
    for position, token in enumerate(tokens, start=1):
        lit = _literal(state, number, token)
        if lit:
            state.pending.append(lit)
            continue
        if state.strict and position != len(tokens):
            raise state.error(
                number,
                f"a 0 in the middle of the line ends a clause early (strict: one clause per line); {_LENIENT}",
            )
        if len(state.clauses) == state.declared:
            raise state.error(
                number, f"more clauses than the {state.declared} the header declares (line {state.header_line})"
            )
        state.clauses.append(state.pending)
        state.pending = []
        state.pending_line = number
    if state.strict and state.pending:
        raise state.error(number, "clause does not end in 0 (strict DIMACS: one clause per line, ending in 0)")


def _literal(state: _Parse, number: int, token: bytes) -> int:
    if not _INTEGER.fullmatch(token):
        raise state.error(number, f"{_show(token)} is not an integer literal")
    if len(token) > _MAX_DIGITS or abs(int(token)) > state.nv:
        shown = token.decode() if len(token) <= 24 else f"{token[:20].decode()}... ({len(token)} digits)"
        raise state.error(number, f"literal {shown} is out of range: the header declares {state.nv} variables")
    return int(token)


def _finish(state: _Parse, last: int) -> CNF:
    if state.nv < 0:
        what = "the file is empty" if last == 0 else "no 'p cnf <variables> <clauses>' header"
        raise state.error(
            f"{max(last, 1)} (end of file)", f"{what}; a DIMACS CNF starts with 'p cnf <variables> <clauses>'"
        )
    if state.pending:
        raise state.error(
            f"{last} (end of file)",
            f"the last clause (from line {state.pending_line}) does not end in 0; is the file truncated?",
        )
    if len(state.clauses) != state.declared:
        raise state.error(
            f"{last} (end of file)",
            f"the header (line {state.header_line}) declares {state.declared} clauses "
            f"but the file has {len(state.clauses)}",
        )
    cnf = CNF()  # not CNF(from_clauses=...): that would recompute nv from the literals
    cnf.clauses, cnf.nv, cnf.comments = state.clauses, state.nv, state.comments
    return cnf


def _show(token: bytes) -> str:
    """A token for an error message: quoted, printable, at most 40 characters."""
    text = repr(token.decode("ascii", errors="backslashreplace"))
    return text if len(text) <= 40 else text[:36] + "...'"


# --------------------------------------------------------------------------- writing


def dimacs_string(cnf: CNF, provenance: Mapping[str, Any] | None = None) -> str:
    """DIMACS text of ``cnf`` (header ``p cnf cnf.nv len(clauses)``), a provenance comment first.

    The first line is ``c finegrain {json}`` recording ``provenance`` (at least the finegrain
    version); then ``cnf.comments``, the header and one clause per line.  The text is read
    back by :func:`parse_dimacs` in strict mode to the same clauses and ``nv``.

    Examples
    --------
    >>> print(dimacs_string(make_cnf([[1, -3], []], nv=3), {"finegrain_version": "0.1.0"}), end="")
    c finegrain {"finegrain_version": "0.1.0"}
    p cnf 3 2
    1 -3 0
    0
    """
    check_cnf(cnf)
    record = {"finegrain_version": _version()} if provenance is None else dict(provenance)
    lines = [f"{PROVENANCE_TAG} {json.dumps(record, sort_keys=False, default=str)}"]
    lines += [_as_comment(text) for text in cnf.comments]
    lines.append(f"p cnf {cnf.nv} {len(cnf.clauses)}")
    lines += [" ".join([*map(str, clause), "0"]) for clause in cnf.clauses]
    return "\n".join(lines) + "\n"


def write_dimacs(
    cnf: CNF, path: str | os.PathLike, provenance: Mapping[str, Any] | None = None, force: bool = False
) -> None:
    """Write ``cnf`` as DIMACS to ``path`` (gzip-compressed if it ends in ``.gz``), atomically.

    The file records ``provenance`` in its first comment line (see :func:`dimacs_string`).
    An existing file is overwritten only with ``force=True``; the file appears only when
    completely written.  Compressed output is byte-for-byte reproducible (gzip mtime 0).
    """
    from reductions.commands.common import atomic_write

    data = dimacs_string(cnf, provenance).encode("utf-8", errors="backslashreplace")
    if os.fspath(path).endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    with atomic_write(path, "wb", force=force) as fh:
        fh.write(data)


def read_provenance(cnf: CNF) -> dict[str, Any] | None:
    """The provenance record of the first ``c finegrain {json}`` comment, or None."""
    for text in cnf.comments:
        if text.startswith(PROVENANCE_TAG + " {"):
            try:
                return json.loads(text[len(PROVENANCE_TAG) :])
            except (json.JSONDecodeError, RecursionError):  # RecursionError: nested too deeply
                return None
    return None


def planted_model(cnf: CNF) -> list[int] | None:
    """The model recorded by a planted generator (``c planted-model l1 l2 ... 0``), or None.

    A record that is not a list of integer literals (a damaged file) gives None.
    """
    for text in cnf.comments:
        if text.startswith(PLANTED_TAG + " "):
            tokens = [t for t in text[len(PLANTED_TAG) :].split() if t != "0"]
            if not all(re.fullmatch(r"-?[1-9][0-9]{0,11}", t) for t in tokens):
                return None
            return [int(t) for t in tokens]
    return None


def planted_comment(model: Sequence[int]) -> str:
    """The comment line recording a planted model (read back by :func:`planted_model`)."""
    return " ".join([PLANTED_TAG, *map(str, model), "0"])


def _version() -> str:
    from reductions.commands.common import provenance

    return str(provenance()["finegrain_version"])


# --------------------------------------------------------------------------- checking


def is_satisfying(cnf: CNF, model: Iterable[int]) -> bool:
    """Checker: does the assignment ``model`` (DIMACS literals) satisfy every clause of ``cnf``?

    ``model`` lists true literals (``v`` true, ``-v`` false); it may be partial, in which
    case it satisfies ``cnf`` when every clause has a literal in it (then every completion
    does too).  A model that is not an assignment of ``cnf``'s variables (``v`` and ``-v``
    both, a literal 0 or beyond ``cnf.nv``) satisfies nothing: the answer is False.

    Examples
    --------
    >>> cnf = make_cnf([[1, 2], [-1, 2], []], nv=2)
    >>> is_satisfying(cnf, [1, 2])        # the empty clause is never satisfied
    False
    >>> is_satisfying(make_cnf([[1, 2], [-1, 2]]), [-1, 2])
    True
    """
    true = set()
    for lit in model:
        if isinstance(lit, bool) or not hasattr(lit, "__index__"):
            raise InvalidInstance(f"model: {lit!r} is not an integer literal")
        true.add(int(lit))
    if 0 in true or any(-lit in true or abs(lit) > cnf.nv for lit in true):
        return False
    return all(any(lit in true for lit in clause) for clause in cnf.clauses)


def drop_tautologies(cnf: CNF) -> CNF:
    """A copy of ``cnf`` without tautological clauses (``x`` and ``-x`` both) and repeated literals.

    The result has the same ``nv`` and the same models.

    Examples
    --------
    >>> cnf = drop_tautologies(make_cnf([[1, -1, 2], [2, 2, -3]], nv=4))
    >>> cnf.clauses, cnf.nv
    ([[2, -3]], 4)
    """
    clauses = [list(dict.fromkeys(clause)) for clause in cnf.clauses if not _is_tautology(clause)]
    return make_cnf(clauses, nv=cnf.nv, comments=cnf.comments)


def _is_tautology(clause: Iterable[int]) -> bool:
    literals = set(clause)
    return any(-lit in literals for lit in literals)
