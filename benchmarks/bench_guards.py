"""Memory guards: each guard's estimate next to the peak resident set really reached, per step.

Usage::

    python benchmarks/bench_guards.py            # the sizes below (about a minute)
    python benchmarks/bench_guards.py --quick    # the smaller sizes only (a few seconds)
    python benchmarks/bench_guards.py --json out.json

Each row runs in a fresh process: the step first runs on a tiny input (imports, compiled
kernels, caches), then the peak resident set is reset (``/proc/self/clear_refs``, Linux) and
the step runs at its size; **actual** is the growth of the peak (``VmHWM``) over the resident
set before the step.  ``ru_maxrss`` is not used: a child inherits its parent's across exec.
**estimate** is what the guard compares with the available memory before the step runs:

- ``ksat->ov N``: ``chain_peak`` of k-SAT -> OV (``reductions.guards``, the instance and its
  bit-packed words; m = round(4.26 N));
- ``generate ov n``: ``reductions.generators.ov.generation_bytes(n, n, 64)`` of
  ``random_ov(n, n, 64)``; the row ``... -o .ov`` runs the whole ``finegrain generate ov -o
  FILE.ov`` (generation plus writing the text, which the generator's estimate does not cover);
- ``load attention n x d``: ``AttentionInstance.load`` of an instance saved at that size (float64,
  and float32 arrays converted on loading), estimated from the file's headers;
- ``read ov .npz n``: ``read_ov`` of an OV ``.npz`` with ``n + n`` vectors of dimension 64;
- ``bomb``: a 1 MB archive of zeros declaring 1 GiB (a float64 ``A1``, header and data
  agree) read with the available memory reported as 256 MiB: refused from the headers; actual
  is what refusing cost.

``est/actual`` above 1 means the guard is conservative.  The exit status is 1 if an estimate
is below the measured peak by more than 10% (plus 4 MB for the allocator's pages), except on
the ``-o .ov`` row, which shows what the generator's estimate leaves out.

(Named ``bench_guards.py`` it becomes ``finegrain bench guards``, once ``"guards"`` is added to
``reductions.commands.bench.BENCHMARKS``, which must list exactly the ``bench_*.py`` scripts.)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from bench_soak import _reset_peak, _status  # VmRSS / VmHWM, and resetting the peak (benchmarks/ is on sys.path)

FULL = [
    ("ksat->ov", 20), ("ksat->ov", 24), ("ksat->ov", 28),
    ("generate ov", 2**16), ("generate ov", 2**20), ("generate ov -o .ov", 2**20),
    ("load attention f64", 2**16), ("load attention f32", 2**16), ("load attention f64", 2**18),
    ("read ov .npz", 2**20),
    ("bomb", 1),
]
QUICK = [
    ("ksat->ov", 20), ("ksat->ov", 24), ("generate ov", 2**16), ("generate ov -o .ov", 2**16),
    ("load attention f64", 2**14), ("read ov .npz", 2**16), ("bomb", 1),
]
#: Rows that may measure more than their guard estimates (printed, not held against it);
#: none since the OV text is written in chunks of ``TEXT_CHUNK_ROWS`` vectors.
UNGUARDED: dict[str, str] = {}
D = 32  # head dimension of the attention rows
M = 64  # OV dimension
#: Slack of the pass/fail check: the estimate may be below the peak by 10% plus allocator pages.
SLACK, PAGES = 0.10, 4 * 2**20


# ----------------------------------------------------------------------------- the steps
def _ksat_to_ov(size: int, folder: Path) -> tuple[Callable[[int], Any], int]:
    from reductions.generators.ksat import random_ksat
    from reductions.guards import chain_footprints, chain_peak
    from reductions.registry import find_path, reduce

    def step(N: int) -> Any:
        ov = reduce(random_ksat(N, round(4.26 * N), 3, seed=N), to="ov").target
        return ov.U_packed, ov.V_packed

    cnf = random_ksat(size, round(4.26 * size), 3, seed=size)
    return step, chain_peak(chain_footprints(find_path("ksat", "ov"), cnf))


def _generate_ov(size: int, folder: Path) -> tuple[Callable[[int], Any], int]:
    from reductions.generators.ov import generation_bytes, random_ov

    return (lambda n: random_ov(n, n, M, seed=1)), generation_bytes(size, size, M)


def _generate_ov_text(size: int, folder: Path) -> tuple[Callable[[int], Any], int]:
    from reductions.cli import main
    from reductions.generators.ov import generation_bytes

    def step(n: int) -> Any:
        return main(["generate", "ov", "--n", str(n), "--m", str(M), "--seed", "1", "-o", str(folder / f"{n}.ov")])

    return step, generation_bytes(size, size, M)


def _load_attention(dtype: str) -> Callable[[int, Path], tuple[Callable[[int], Any], int]]:
    def prepare(size: int, folder: Path) -> tuple[Callable[[int], Any], int]:
        import numpy as np

        from attention import AttentionInstance
        from attention.instance import ARRAY_NAMES, _load_bytes
        from attention.npzfile import read_headers

        def path(n: int) -> Path:
            target = folder / f"att_{dtype}_{n}.npz"
            if not target.exists():
                inst = AttentionInstance.random(n=n, d=D, seed=1)
                arrays = {name: getattr(inst, name).astype(dtype) for name in ARRAY_NAMES}
                np.savez(target, meta=np.array(json.dumps(inst.meta)), **arrays)
            return target

        small, big = path(64), path(size)
        with np.load(big) as archive:
            estimate = _load_bytes(read_headers(archive.zip, [*ARRAY_NAMES, "meta"], str(big), ValueError))
        return (lambda n: AttentionInstance.load(small if n < size else big)), estimate

    return prepare


def _read_ov_npz(size: int, folder: Path) -> tuple[Callable[[int], Any], int]:
    import numpy as np

    from reductions.generators.ov import random_ov
    from reductions.problems.ov import NPZ_ARRAYS, _npz_load_bytes, read_ov, write_ov
    from attention.npzfile import read_headers

    small, big = folder / "small.npz", folder / f"ov_{size}.npz"
    write_ov(random_ov(64, 64, M, seed=1), small, force=True)
    write_ov(random_ov(size, size, M, seed=1), big, force=True)
    with np.load(big) as archive:
        estimate = _npz_load_bytes(read_headers(archive.zip, NPZ_ARRAYS, str(big), ValueError))
    return (lambda n: read_ov(small if n < size else big)), estimate


def _bomb(size: int, folder: Path) -> tuple[Callable[[int], Any], int]:
    import zipfile

    import numpy as np
    from numpy.lib import format as npy

    import attention.memory
    from attention import AttentionInstance
    from attention.instance import _load_bytes
    from attention.npzfile import read_headers

    path = folder / "bomb.npz"
    inst = AttentionInstance.random(n=4, d=2, seed=1)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in ("A2", "A3", "E", "X", "Y"):
            with archive.open(f"{name}.npy", "w") as member:
                npy.write_array(member, getattr(inst, name))
        with archive.open("A1.npy", "w", force_zip64=True) as member:
            npy.write_array_header_1_0(member, {"descr": "<f8", "fortran_order": False, "shape": (2**26, 2)})
            for _ in range(2**10):
                member.write(bytes(2**20))
    attention.memory.available_memory = lambda: 2**28
    with np.load(path) as archive:
        estimate = _load_bytes(read_headers(archive.zip, ["A1", "A2", "A3", "E", "X", "Y"], str(path), ValueError))
    good = folder / "good.npz"
    inst.save(good, force=True)
    return (lambda n: AttentionInstance.load(good if n < 1 else path)), estimate


STEPS: dict[str, Callable[[int, Path], tuple[Callable[[int], Any], int]]] = {
    "ksat->ov": _ksat_to_ov,
    "generate ov": _generate_ov,
    "generate ov -o .ov": _generate_ov_text,
    "load attention f64": _load_attention("float64"),
    "load attention f32": _load_attention("float32"),
    "read ov .npz": _read_ov_npz,
    "bomb": _bomb,
}
WARM_UP = {"ksat->ov": 10, "bomb": 0}  # the tiny size each step runs first (default 64)


def probe(kind: str, size: int) -> dict[str, Any]:
    """Run one step in this process (a fresh one, started by :func:`rows`) and measure it."""
    from attention.errors import FinegrainError

    with tempfile.TemporaryDirectory() as folder:
        step, estimate = STEPS[kind](size, Path(folder))
        step(WARM_UP.get(kind, 64))
        base, start = _reset_peak(), time.perf_counter()
        try:
            step(size)
            outcome = "ran"
        except FinegrainError as exc:
            outcome = f"refused: {exc}"
        seconds = time.perf_counter() - start
        growth = max(_status("VmHWM") - base, 0)
    return {"step": kind, "size": size, "estimate": estimate, "actual": growth, "seconds": seconds, "outcome": outcome}


def rows(plan: list[tuple[str, int]]) -> list[dict[str, Any]]:
    out = []
    for kind, size in plan:
        proc = subprocess.run([sys.executable, __file__, "--probe", kind, str(size)], capture_output=True, text=True)
        if proc.returncode != 0:
            out.append({"step": kind, "size": size, "outcome": f"probe failed: {proc.stderr.strip()[-300:]}"})
            continue
        out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return out


def _size_text(kind: str, size: int) -> str:
    if kind == "ksat->ov":
        return f"N = {size}, m = {round(4.26 * size)}"
    if kind.startswith("load attention"):
        return f"n = 2^{size.bit_length() - 1}, d = {D}"
    if kind == "bomb":
        return "1 GiB declared, 256 MiB free"
    return f"n = 2^{size.bit_length() - 1}, m = {M}"


def print_table(table: list[dict[str, Any]]) -> int:
    """Print the rows; the number of rows whose estimate is below the measured peak (beyond the slack)."""
    print("Memory guards: estimate vs measured peak RSS growth (fresh process per row; MB = 1e6 bytes)")
    print(f"{'step':<20} {'size':<26} {'estimate MB':>12} {'actual MB':>10} {'est/actual':>10} {'s':>7}  outcome")
    under = 0
    for r in table:
        if "estimate" not in r:
            print(f"{r['step']:<20} {r['size']:<26}  {r['outcome']}")
            under += 1
            continue
        est, act = r["estimate"] / 1e6, r["actual"] / 1e6
        ratio = f"{est / act:>10.2f}" if act >= 1 else f"{'-':>10}"
        refused = r["outcome"].startswith("refused")
        if not refused and r["estimate"] < (1 - SLACK) * r["actual"] - PAGES:
            if r["step"] in UNGUARDED:
                r["outcome"] += f" ({UNGUARDED[r['step']]})"
            else:
                under += 1
                ratio += " LOW"
        print(f"{r['step']:<20} {_size_text(r['step'], r['size']):<26} {est:>12.1f} {act:>10.1f} {ratio} "
              f"{r['seconds']:>7.2f}  {r['outcome'][:110]}")
    return under


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the smaller sizes only")
    parser.add_argument("--json", help="also write the measurements to this JSON file")
    parser.add_argument("--probe", nargs=2, metavar=("STEP", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps(probe(args.probe[0], int(args.probe[1]))))
        return 0
    table = rows(QUICK if args.quick else FULL)
    under = print_table(table)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": table}, indent=1) + "\n")
    return 1 if under else 0


if __name__ == "__main__":
    sys.exit(main())
