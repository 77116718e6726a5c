"""Source problems, their generators, the reductions of the SETH chain, the registry and verifiers.

``from reductions import reduce, verify`` gives the two functions
(:func:`reductions.registry.reduce`, :func:`reductions.verify.verify`).  They are imported
eagerly: the submodule ``reductions.verify`` shares the function's name, and importing a
submodule binds it as an attribute of its package.  Importing it here, before rebinding the
name to the function, makes that binding happen once, first, so ``reductions.verify`` is the
function whatever is imported later (the module stays ``sys.modules["reductions.verify"]``
and ``from reductions.verify import Report`` works as usual).  Neither module imports a
problem module or a solver at load time, so :mod:`solvers` can import the problem modules
without a cycle.
"""

from __future__ import annotations

from reductions.registry import reduce
from reductions.verify import verify

__all__ = ["reduce", "verify"]
