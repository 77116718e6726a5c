"""The phase-transition experiment: a small run gives the CSV columns, a sane threshold and a plot."""

from __future__ import annotations

import csv
import io
import math

import pytest

from attention.errors import InvalidInstance
from attention.features import rank
from attention.phase import COLUMNS, cost_exponent, plot_phase, run_phase, threshold, write_csv


@pytest.fixture(scope="module")
def rows():
    return run_phase([2**10, 2**11], [0.25, 0.75, 3.0], kind="chebyshev", exact_error_max_n=2**10)


def test_rows_have_the_columns_and_consistent_values(rows):
    assert len(rows) == 6
    for row in rows:
        assert set(COLUMNS) <= set(row)
        assert row["B"] == pytest.approx(row["c"] * math.sqrt(math.log(row["n"])))
        assert 0 < row["R"] <= row["B"] ** 2
        assert row["rank_needed"] == rank(row["d"], row["degree_needed"])
        assert row["cost_exponent"] == pytest.approx(cost_exponent(row["n"], row["d"], row["rank_needed"]))
        assert row["rank_budget"] <= math.sqrt(row["n"]) < rank(row["d"], row["degree_budget"] + 1)
        if not row["censored"] and row["n"] <= 2**10:  # measured against the exact oracle
            assert row["measured_error_rel"] <= row["error_bound_rel"]
    # more entry range needs more rank, and the largest c is beyond reach
    for n in (2**10, 2**11):
        mine = sorted((r for r in rows if r["n"] == n), key=lambda r: r["c"])
        assert [r["rank_needed"] for r in mine] == sorted(r["rank_needed"] for r in mine)
        assert mine[0]["fast_wins"] and mine[-1]["censored"] and not mine[-1]["fast_wins"]
    crossing = threshold(rows)
    assert all(0.25 < c < 3.0 for c in crossing.values())


def test_csv_and_plot(rows, tmp_path):
    buf = io.StringIO()
    write_csv(rows, buf)
    parsed = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert tuple(parsed[0]) == COLUMNS and len(parsed) == len(rows)
    assert float(parsed[0]["B"]) == rows[0]["B"]  # floats round-trip exactly
    pytest.importorskip("matplotlib")
    png, svg = tmp_path / "phase.png", tmp_path / "phase.svg"
    plot_phase(rows, str(png), str(svg))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert b"<svg" in svg.read_bytes()[:500]


def test_bad_grid():
    with pytest.raises(InvalidInstance, match="n_values"):
        run_phase([2], [1.0])
    with pytest.raises(InvalidInstance, match="c_values"):
        run_phase([2**10], [-1.0])


def test_cli_writes_what_the_library_computes(rows, tmp_path):
    pytest.importorskip("matplotlib")
    from reductions.cli import main

    out, png = tmp_path / "p.csv", tmp_path / "p.png"
    argv = ["phase", "--quick", "--kind", "chebyshev", "-o", str(out), "--plot", str(png)]
    assert main(argv) == 0
    lines = out.read_text().splitlines()
    assert lines[0].startswith("# provenance ") and '"seed": 0' in lines[0]
    parsed = list(csv.DictReader(lines[1:]))
    assert tuple(parsed[0]) == COLUMNS and len(parsed) == 8
    for got in parsed:  # the same point (n, c) gets the same instance in any grid
        for want in rows:
            if want["n"] == int(got["n"]) and want["c"] == float(got["c"]):
                assert int(got["degree_needed"]) == want["degree_needed"]
                assert float(got["R"]) == want["R"]
    assert png.exists() and png.with_suffix(".svg").exists()
    assert main(argv) == 2  # no overwrite without --force
