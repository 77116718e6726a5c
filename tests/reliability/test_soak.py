"""Soak: the default route on >= 10^4 random instances (slow), with a short smoke run by default.

The instances and the route are those of ``benchmarks/bench_soak.py`` (k-SAT and OV, YES and NO in
balance, up to 256 OV vectors per side and scores past float64's ``exp`` limit); ground
truth is a SAT solver or brute force, every YES witness is checked on the original instance.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

_path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_soak.py"
_spec = importlib.util.spec_from_file_location("finegrain_soak", _path)
soak = importlib.util.module_from_spec(_spec)
sys.modules["finegrain_soak"] = soak
_spec.loader.exec_module(soak)


def check(count: int, seed: int) -> dict:
    outcomes = soak.soak(count, seed)
    total = soak.summarise(outcomes)[-1]
    assert total["class"] == "all" and total["instances"] == count
    assert total["wrong"] == 0, [o for o in outcomes if o.wrong][:5]
    assert total["crashes"] == 0, [o.note for o in outcomes if o.verdict == "crash"][:5]
    assert abs(total["yes"] - total["no"]) <= 1
    decided = [o for o in outcomes if o.verdict in ("yes", "no")]
    assert all(o.ratio > 1 for o in decided)  # every decision had its margin above the stated error
    assert all(math.isinf(o.ratio) or o.calls > 0 for o in decided)
    return total


def test_soak_smoke():
    check(24, seed=1)


@pytest.mark.slow
def test_soak_ten_thousand_instances():
    total = check(10_000, seed=20240611)
    assert total["max_score"] > 709  # the stream reaches past float64's exp limit
