"""Source problems, their generators, the reductions of the SETH chain, the registry and verifiers.

``from reductions import reduce, verify`` (loaded lazily so that the problem modules can be
imported by :mod:`solvers` without pulling in the whole registry).
"""

from __future__ import annotations

from typing import Any

__all__ = ["reduce", "verify"]


def __getattr__(name: str) -> Any:
    if name == "reduce":
        from reductions.registry import reduce

        return reduce
    if name == "verify":
        from reductions.verify import verify

        return verify
    raise AttributeError(f"module 'reductions' has no attribute {name!r}")
