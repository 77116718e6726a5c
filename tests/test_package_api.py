"""``from reductions import reduce, verify`` gives the functions, whatever was imported before."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

CHECK = textwrap.dedent(
    """
    {before}
    from reductions import reduce, verify
    import reductions
    assert callable(verify) and verify.__module__ == "reductions.verify" and verify.__name__ == "verify", verify
    assert callable(reduce) and reduce.__module__ == "reductions.registry" and reduce.__name__ == "reduce", reduce
    assert reductions.verify is verify and reductions.reduce is reduce
    import reductions.verify
    from reductions.verify import Report, verify as direct
    assert direct is verify and sys.modules["reductions.verify"].Report is Report
    from reductions import verify as again
    assert again is verify
    """
)


@pytest.mark.parametrize(
    "before",
    [
        "import sys",
        "import sys; import reductions.verify",
        "import sys; from reductions.verify import Report",
        "import sys; import solvers.sat",  # the problem modules first (solvers import them)
        "import sys; import reductions.problems.ov, solvers.ov",
        "import sys; import attention",
        "import sys; import reductions.cli",
        "import sys, importlib; importlib.import_module('reductions.verify')",
    ],
)
def test_reduce_and_verify_are_the_functions_in_a_fresh_interpreter(before: str) -> None:
    done = subprocess.run([sys.executable, "-c", CHECK.format(before=before)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_verify_function_is_not_shadowed_by_its_module_in_this_process() -> None:
    import reductions.verify  # noqa: F401  (the module, already loaded by other tests or not)
    from reductions import verify

    module = sys.modules["reductions.verify"]
    assert verify is module.verify and verify is not module
    report = verify(_tiny_cnf(), to="ov")
    assert report.agree and report.ground_truth is True


def _tiny_cnf():  # type: ignore[no-untyped-def]
    from pysat.formula import CNF

    return CNF(from_clauses=[[1, 2], [-1, 2], [1, -2]])  # satisfiable only by x1 = x2 = True
