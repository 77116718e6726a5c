"""Structured CNF families with known status: graph colouring and four classic principles.

* :func:`graph_coloring` -- "``G`` is ``k``-colourable", satisfiable iff ``k >= chi(G)``.
* :func:`pigeonhole`, :func:`ordering_principle`, :func:`parity_principle`,
  :func:`mutilated_chessboard` -- unsatisfiable; built by ``pysat.examples.genhard`` (PHP,
  GT, PAR, CB), which we call rather than re-write.  All four need exponential-size
  resolution refutations except GT, which has polynomial ones; they are the standard hard
  unsatisfiable benchmarks for resolution-based (CDCL) solvers.
* :func:`named_graph` -- the graphs ``finegrain generate coloring --graph SPEC`` accepts.

Each family's formula records what it is in ``cnf.comments``, so a written file says it.

Sizes explode polynomially (PHP with ``n`` holes has ``~n^3 / 2`` literals, GT ``3 n^3``, a
complete graph ``n^2 / 2`` edges): every family counts its clauses and literals from the
parameters first (:func:`family_counts`, :func:`graph_counts`) and refuses sizes whose
estimate does not fit in the available memory with a :class:`~attention.errors.ResourceError`
naming the estimate and the largest parameter that fits, before anything is built.

Examples
--------
>>> import networkx as nx
>>> cnf = graph_coloring(nx.cycle_graph(5), 3)
>>> cnf.nv, len(cnf.clauses)
(15, 35)
>>> php = pigeonhole(3)                      # 4 pigeons, 3 holes
>>> php.nv, len(php.clauses)
(12, 22)
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from itertools import combinations
from math import comb, lgamma, log
from typing import Any

import networkx as nx
from pysat.formula import CNF

from reductions.errors import InvalidInstance
from reductions.problems.cnf import make_cnf


def graph_coloring(G: nx.Graph, k: int, exactly_one: bool = True) -> CNF:
    """CNF saying "the graph ``G`` has a proper ``k``-colouring".

    Parameters
    ----------
    G : networkx.Graph
        Any networkx graph; directions and parallel edges are ignored, a self-loop makes
        the formula unsatisfiable.  Node ``i`` is the i-th node of ``list(G)``.
    k : int
        Number of colours, ``k >= 0``.
    exactly_one : bool
        Also forbid two colours on one node (default).  Then the models are exactly the
        proper colourings with colours ``0..k-1``, and their number is the chromatic
        polynomial ``P(G, k)``.

    Notes
    -----
    Variable ``i k + c + 1`` says "node i has colour c" (``nv = |V| k``).  Clauses: for each
    node, at least one colour (width k); with ``exactly_one``, for each node and pair of
    colours, not both (width 2); for each edge ``uv`` and colour ``c``, not both ``u`` and ``v``
    coloured ``c`` (width 2).  Status: satisfiable iff ``k >= chi(G)``.  This is the encoding
    of cnfgen's ``GraphColoringFormula`` (``functional=True``) with the same numbering.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise InvalidInstance(f"k = {k!r}: expected a number of colours >= 0")
    if not isinstance(G, nx.Graph):
        raise InvalidInstance(f"expected a networkx graph, got {type(G).__name__}")
    nodes, edges = G.number_of_nodes(), G.number_of_edges()
    _require_cnf_memory(
        f"graph_coloring of a graph with {nodes} nodes and {edges} edges with k = {k} colours",
        lambda colours: coloring_counts(nodes, edges, colours, exactly_one), k, "k",
    )
    index = {node: i for i, node in enumerate(G)}

    def var(node: Hashable, colour: int) -> int:
        return index[node] * k + colour + 1

    clauses = [[var(node, c) for c in range(k)] for node in G]
    if exactly_one:
        clauses += [[-var(node, a), -var(node, b)] for node in G for a, b in combinations(range(k), 2)]
    edges = _undirected_edges(G, index)
    for u, v in edges:
        clauses += [sorted({-var(u, c), -var(v, c)}) for c in range(k)]
    comment = f"c graph_coloring nodes={len(index)} edges={len(edges)} k={k} exactly_one={exactly_one}"
    return make_cnf(clauses, nv=len(index) * k, comments=[comment, "c variable i*k+c+1: node i has colour c"])


def coloring_counts(nodes: int, edges: int, k: int, exactly_one: bool = True) -> tuple[int, int, int]:
    """``(clauses, literals, variables)`` of :func:`graph_coloring` (at most: parallel edges count once).

    Examples
    --------
    >>> import networkx as nx
    >>> cnf = graph_coloring(nx.cycle_graph(5), 3)
    >>> coloring_counts(5, 5, 3) == (len(cnf.clauses), sum(map(len, cnf.clauses)), cnf.nv)
    True
    """
    pairs = comb(k, 2) if exactly_one else 0
    return nodes + nodes * pairs + edges * k, nodes * k + 2 * nodes * pairs + 2 * edges * k, nodes * k


def _undirected_edges(G: nx.Graph, index: dict[Hashable, int]) -> list[tuple[Hashable, Hashable]]:
    """Each edge once, as (u, v) with ``index[u] <= index[v]``, in order of first appearance."""
    seen: dict[tuple[int, int], tuple[Hashable, Hashable]] = {}
    for u, v in G.edges():
        key = (min(index[u], index[v]), max(index[u], index[v]))
        seen.setdefault(key, (u, v) if index[u] <= index[v] else (v, u))
    return list(seen.values())


def decode_coloring(G: nx.Graph, k: int, model: Iterable[int]) -> dict[Hashable, int]:
    """The colouring a model of :func:`graph_coloring` encodes: node -> its smallest true colour."""
    true = {lit for lit in model if lit > 0}
    colouring = {}
    for i, node in enumerate(G):
        colours = [c for c in range(k) if i * k + c + 1 in true]
        if not colours:
            raise InvalidInstance(f"model gives node {node!r} no colour; it is not a model of the colouring formula")
        colouring[node] = colours[0]
    return colouring


def pigeonhole(holes: int, kval: int = 1) -> CNF:
    """PHP: ``kval * holes + 1`` pigeons in ``holes`` holes, at most ``kval`` per hole. Unsatisfiable.

    ``kval = 1`` is PHP(n+1, n).  Variable ``x_ij`` (pigeon i in hole j); each pigeon sits in
    a hole, no hole holds more than ``kval`` pigeons.  Built by ``genhard.PHP``; for
    ``kval = 1`` it is cnfgen's ``PigeonholePrinciple(n + 1, n)`` clause for clause.

    Notes
    -----
    Status: unsatisfiable.  Resolution refutations need size ``2^Omega(n)`` (Haken 1985).
    """
    _positive(holes, "holes")
    _positive(kval, "kval")
    _require_family("pigeonhole", holes, "holes", kval=kval)
    from pysat.examples.genhard import PHP

    comment = f"c pigeonhole holes={holes} kval={kval} pigeons={kval * holes + 1} status=UNSAT"
    return _plain(PHP(holes, kval=kval), comment)


def ordering_principle(size: int) -> CNF:
    """GT (ordering principle): "a partial order on ``size`` elements has no maximal element". Unsatisfiable.

    Built by ``genhard.GT`` (same principle as cnfgen's ``OrderingPrinciple``).

    Notes
    -----
    Status: unsatisfiable.  ``size (size - 1)`` variables; polynomial-size resolution
    refutations exist (Staalmarck 1996), so it is easy for CDCL solvers.
    """
    _positive(size, "size")
    _require_family("ordering_principle", size, "size")
    from pysat.examples.genhard import GT

    return _plain(GT(size), f"c ordering_principle size={size} status=UNSAT")


def parity_principle(size: int) -> CNF:
    """PAR: "the complete graph on ``2 size + 1`` nodes has a perfect matching". Unsatisfiable.

    Built by ``genhard.PAR`` (cnfgen: ``PerfectMatchingPrinciple(complete_graph(2 size + 1))``).

    Notes
    -----
    Status: unsatisfiable (an odd number of nodes cannot be perfectly matched).
    ``C(2 size + 1, 2)`` variables; hard for resolution.
    """
    _positive(size, "size")
    _require_family("parity_principle", size, "size")
    from pysat.examples.genhard import PAR

    return _plain(PAR(size), f"c parity_principle size={size} nodes={2 * size + 1} status=UNSAT")


def mutilated_chessboard(size: int, exhaustive: bool = False) -> CNF:
    """CB: "a ``2 size x 2 size`` board without two opposite corners is tiled by dominoes". Unsatisfiable.

    Built by ``genhard.CB``; with ``exhaustive`` every cell gets both constraints (then it
    matches cnfgen's ``MutilatedChessboard(2 size, 2 size)`` in size).

    Notes
    -----
    Status: unsatisfiable for ``size >= 2`` (the two removed corners have the same colour).
    ``size = 1`` is refused: the remaining two cells are not adjacent and genhard returns an
    empty, satisfiable formula.  Hard for resolution.
    """
    _positive(size, "size")
    if size < 2:
        raise InvalidInstance("mutilated_chessboard: size must be >= 2 (genhard's size-1 board is an empty formula)")
    _require_family("mutilated_chessboard", size, "size")
    from pysat.examples.genhard import CB

    return _plain(
        CB(size, exhaustive=exhaustive),
        f"c mutilated_chessboard size={size} board={2 * size}x{2 * size} exhaustive={exhaustive} status=UNSAT",
    )


# --------------------------------------------------------------------------- memory

#: Bytes per variable of a genhard formula beyond its clauses: the ``IDPool`` entry naming it
#: (a string key such as ``'v_12_7'``, its id and the reverse list).
GENHARD_BYTES_PER_VARIABLE = 256


#: Counts beyond this are reported as this (``C(p, kval+1)`` for a large ``kval`` has millions of
#: digits; no such formula fits anywhere).
COUNT_CAP = 2**128


def _comb(n: int, r: int) -> int:
    """``C(n, r)``, or :data:`COUNT_CAP` when it exceeds it (judged from log-gamma before computing)."""
    if r < 0 or r > n:
        return 0
    if (lgamma(n + 1) - lgamma(r + 1) - lgamma(n - r + 1)) / log(2) > 130:
        return COUNT_CAP
    return min(comb(n, r), COUNT_CAP)


def _count_text(x: int) -> str:
    return f"more than {COUNT_CAP // 2:.3g}" if x >= COUNT_CAP // 2 else str(x)


def family_counts(family: str, size: int, kval: int = 1) -> tuple[int, int, int]:
    """``(clauses, literals, variables)`` of a genhard family at ``size`` (exact; CB: an upper bound).

    PHP (``p = kval n + 1`` pigeons, ``n`` holes): ``p + n C(p, kval+1)`` clauses,
    ``p n + n C(p, kval+1) (kval+1)`` literals.  GT: ``C(n,2) + n(n-1)(n-2) + n`` clauses.  PAR
    (``N = 2 size + 1`` nodes): ``N + N C(N-1, 2)`` clauses.  CB: each of the ``4 size^2`` cells has
    at most 4 neighbours, so at most 7 clauses and 16 literals, and ``8 size^2`` variables.

    Examples
    --------
    >>> cnf = pigeonhole(5, kval=2)
    >>> family_counts("pigeonhole", 5, kval=2) == (len(cnf.clauses), sum(map(len, cnf.clauses)), cnf.nv)
    True
    """
    n = int(size)
    if family == "pigeonhole":
        p = kval * n + 1
        groups = n * _comb(p, kval + 1)
        return p + groups, p * n + groups * (kval + 1), p * n
    if family == "ordering_principle":
        return comb(n, 2) + n * (n - 1) * (n - 2) + n, 2 * comb(n, 2) + 3 * n * (n - 1) * (n - 2) + n * (n - 1), n * (n - 1)
    if family == "parity_principle":
        N = 2 * n + 1
        return N + N * comb(N - 1, 2), N * (N - 1) + 2 * N * comb(N - 1, 2), comb(N, 2)
    if family == "mutilated_chessboard":
        cells = 4 * n * n
        return 7 * cells, 16 * cells, 2 * cells
    raise InvalidInstance(f"unknown family {family!r}")


def _cnf_estimate(counts: tuple[int, int, int]) -> int:
    from reductions.guards import cnf_bytes

    clauses, literals, variables = counts
    return cnf_bytes(clauses, literals) + GENHARD_BYTES_PER_VARIABLE * variables


def _require_cnf_memory(what: str, counts: Callable[[int], tuple[int, int, int]], size: int, name: str) -> None:
    """Refuse (``ResourceError``) a formula whose counts at ``size`` do not fit; names the largest ``name`` that does."""
    from reductions.guards import require_generated

    clauses, literals, _ = counts(size)
    require_generated(
        f"{what} ({_count_text(clauses)} clauses, {_count_text(literals)} literals)",
        lambda s: _cnf_estimate(counts(s)), size, name,
    )


def _require_family(family: str, size: int, name: str, kval: int = 1) -> None:
    what = f"{family} with {name} = {size}" + (f", kval = {kval}" if family == "pigeonhole" else "")
    _require_cnf_memory(what, lambda s: family_counts(family, s, kval), size, name)


def _positive(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInstance(f"{name} = {value!r}: expected an integer >= 1")


def _plain(formula: CNF, comment: str) -> CNF:
    """A plain ``CNF`` (not genhard's subclass) with genhard's clauses and ``nv`` and a describing comment."""
    return make_cnf(formula.clauses, nv=formula.nv, comments=[comment])


# --------------------------------------------------------------------------- named graphs

def _queens(n: int) -> nx.Graph:
    """The ``n x n`` queen graph: squares attacking each other along a row, column or diagonal."""
    squares = [(r, c) for r in range(n) for c in range(n)]
    G = nx.Graph()
    G.add_nodes_from(squares)
    G.add_edges_from(
        (a, b) for a, b in combinations(squares, 2)
        if a[0] == b[0] or a[1] == b[1] or abs(a[0] - b[0]) == abs(a[1] - b[1])
    )
    return G


_SMALL = (
    "bull chvatal cubical desargues diamond dodecahedral frucht heawood hoffman_singleton house house_x "
    "icosahedral krackhardt_kite moebius_kantor octahedral pappus petersen sedgewick_maze tetrahedral "
    "truncated_cube truncated_tetrahedron tutte"
).split()

#: name -> (constructor, argument types, takes a seed); ``named_graph`` parses ``NAME:a,b``.
GRAPHS: dict[str, tuple[Callable[..., nx.Graph], tuple[type, ...], bool]] = {
    **{name: (getattr(nx, f"{name}_graph"), (), False) for name in _SMALL},
    "complete": (nx.complete_graph, (int,), False),
    "cycle": (nx.cycle_graph, (int,), False),
    "path": (nx.path_graph, (int,), False),
    "wheel": (nx.wheel_graph, (int,), False),
    "star": (nx.star_graph, (int,), False),
    "hypercube": (nx.hypercube_graph, (int,), False),
    "mycielski": (nx.mycielski_graph, (int,), False),
    "grid": (nx.grid_2d_graph, (int, int), False),
    "complete_bipartite": (nx.complete_bipartite_graph, (int, int), False),
    "queen": (_queens, (int,), False),
    "gnp": (nx.gnp_random_graph, (int, float), True),
    "gnm": (nx.gnm_random_graph, (int, int), True),
    "regular": (nx.random_regular_graph, (int, int), True),
}


#: Bytes of a networkx graph per node and per edge (dict-of-dicts adjacency; measured on the
#: families below: 0.5-1.2 times this estimate), and per label coordinate of a hypercube's
#: nodes (tuples of d bits, built by repeated products).
NX_BYTES_PER_NODE = 800
NX_BYTES_PER_EDGE = 160
NX_BYTES_PER_LABEL_BIT = 256


def graph_counts(name: str, args: list[Any]) -> tuple[int, int]:
    """``(nodes, edges)`` of ``named_graph(NAME:ARGS)`` from its arguments (gnp: the expectation).

    Examples
    --------
    >>> G = named_graph("queen:6")
    >>> graph_counts("queen", [6]) == (G.number_of_nodes(), G.number_of_edges())
    True
    """
    if name in ("cycle", "path", "wheel", "star"):
        n = args[0]
        extra = {"cycle": (n, n if n > 2 else max(n - 1, 0)), "path": (n, max(n - 1, 0)),
                 "wheel": (n, 2 * (n - 1)), "star": (n + 1, n)}
        return extra[name]
    if name == "complete":
        return args[0], comb(args[0], 2)
    if name == "hypercube":
        d = min(args[0], 128)  # 2^128 nodes fit nowhere: no need for the exact power
        return 2**d, d * 2 ** max(d - 1, 0)
    if name == "mycielski":
        nodes, edges = 1, 0
        for _ in range(min(args[0], 128) - 1):  # nodes double each step
            nodes, edges = 2 * nodes + 1, 3 * edges + nodes
        return nodes, edges
    if name == "grid":
        r, c = args
        return r * c, r * max(c - 1, 0) + c * max(r - 1, 0)
    if name == "complete_bipartite":
        return args[0] + args[1], args[0] * args[1]
    if name == "queen":
        n = args[0]
        return n * n, n * (n - 1) * (5 * n - 1) // 3
    if name == "gnp":
        return args[0], int(comb(args[0], 2) * min(max(args[1], 0.0), 1.0))
    if name == "gnm":
        return args[0], args[1]
    if name == "regular":
        return args[1], args[0] * args[1] // 2
    return 0, 0  # the small named graphs


def graph_bytes(name: str, args: list[Any]) -> int:
    """Bytes of building ``named_graph(NAME:ARGS)``: :data:`NX_BYTES_PER_NODE` and :data:`NX_BYTES_PER_EDGE`."""
    nodes, edges = graph_counts(name, args)
    per_node = NX_BYTES_PER_NODE + (NX_BYTES_PER_LABEL_BIT * min(args[0], 128) if name == "hypercube" else 0)
    return per_node * nodes + NX_BYTES_PER_EDGE * edges


#: The argument a graph's size grows with (its position and name in ``NAME:ARGS``).
_SIZE_ARGUMENT = {"hypercube": (0, "d"), "grid": (0, "r"), "complete_bipartite": (0, "a"), "regular": (1, "n")}


def _require_graph_memory(spec: str, name: str, args: list[Any]) -> None:
    """Refuse (``ResourceError``) a graph whose :func:`graph_bytes` do not fit; names the largest size that does."""
    from reductions.guards import require_generated

    index, label = _SIZE_ARGUMENT.get(name, (0, "n"))

    def estimate(size: int) -> int:
        return graph_bytes(name, [*args[:index], size, *args[index + 1 :]])

    nodes, edges = graph_counts(name, args)
    require_generated(
        f"graph {spec!r} ({_count_text(nodes)} nodes, {_count_text(edges)} edges)",
        estimate, args[index], label, f" in {name}" + (" with the other arguments as given" if len(args) > 1 else ""),
    )


def named_graph(spec: str, seed: int | None = None) -> nx.Graph:
    """The graph named by ``spec``: ``NAME`` or ``NAME:ARG,ARG`` (``petersen``, ``cycle:5``, ``gnp:30,0.2``).

    Names: the networkx small graphs (``petersen``, ``dodecahedral``, ...); ``complete:n``,
    ``cycle:n``, ``path:n``, ``wheel:n``, ``star:n``, ``hypercube:d``, ``mycielski:n``
    (triangle-free, chromatic number n), ``grid:r,c``, ``complete_bipartite:a,b``,
    ``queen:n``; random (use ``seed``): ``gnp:n,p``, ``gnm:n,m``, ``regular:d,n``.

    Examples
    --------
    >>> G = named_graph("petersen"); (G.number_of_nodes(), G.number_of_edges())
    (10, 15)
    >>> named_graph("gnp:30,0.2", seed=3).edges == named_graph("gnp:30,0.2", seed=3).edges
    True
    """
    name, _, rest = spec.partition(":")
    if name not in GRAPHS:
        raise InvalidInstance(f"unknown graph {name!r}; choose one of: {', '.join(sorted(GRAPHS))}")
    build, types, seeded = GRAPHS[name]
    raw = [part.strip() for part in rest.split(",")] if rest else []
    if len(raw) != len(types):
        usage = name + (":" + ",".join(t.__name__ for t in types) if types else "")
        raise InvalidInstance(f"graph {spec!r}: expected {usage}")
    try:
        args = [t(part) for t, part in zip(types, raw)]
    except ValueError:
        raise InvalidInstance(f"graph {spec!r}: arguments must be {', '.join(t.__name__ for t in types)}") from None
    if args and all(a >= 0 for a in args):  # negative: networkx's own message below
        _require_graph_memory(spec, name, args)
    try:
        return build(*args, seed=seed) if seeded else build(*args)
    except (nx.NetworkXError, ValueError) as exc:
        raise InvalidInstance(f"graph {spec!r}: {exc}") from None
