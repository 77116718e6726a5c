"""Structured CNF families with known status: graph colouring and four classic principles.

* :func:`graph_coloring` -- "``G`` is ``k``-colourable", satisfiable iff ``k >= chi(G)``.
* :func:`pigeonhole`, :func:`ordering_principle`, :func:`parity_principle`,
  :func:`mutilated_chessboard` -- unsatisfiable; built by ``pysat.examples.genhard`` (PHP,
  GT, PAR, CB), which we call rather than re-write.  All four need exponential-size
  resolution refutations except GT, which has polynomial ones; they are the standard hard
  unsatisfiable benchmarks for resolution-based (CDCL) solvers.
* :func:`named_graph` -- the graphs ``finegrain generate coloring --graph SPEC`` accepts.

Each family's formula records what it is in ``cnf.comments``, so a written file says it.

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
    from pysat.examples.genhard import CB

    return _plain(
        CB(size, exhaustive=exhaustive),
        f"c mutilated_chessboard size={size} board={2 * size}x{2 * size} exhaustive={exhaustive} status=UNSAT",
    )


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
    try:
        return build(*args, seed=seed) if seeded else build(*args)
    except (nx.NetworkXError, ValueError) as exc:
        raise InvalidInstance(f"graph {spec!r}: {exc}") from None
