"""The figures of reductions.plots: what they draw, the files they write, and what they refuse."""

from __future__ import annotations

import html
import math
import re
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from attention.errors import FinegrainError, InvalidInstance
from reductions import plots

pytest.importorskip("matplotlib")


def _svg_texts(path) -> str:
    """All text drawn in an SVG written with svg.fonttype = none (one string)."""
    found = re.findall(r"<text[^>]*>(.*?)</text>", path.read_text(encoding="utf-8"), re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", t)) for t in found)


def _points(ns=(32, 64), rng_seed=0):
    rng = np.random.default_rng(rng_seed)
    out = []
    for n in ns:
        thr = 11 / (32 * (n + 1))
        gap = 0.45 * thr
        out.append(plots.SeparationPoint(n, rng.uniform(1.5, 3) * thr, thr, gap, 1e-3 * thr, True, "a -> b"))
        out.append(plots.SeparationPoint(n, rng.uniform(0, 0.3) * thr, thr, gap, 1e-3 * thr, False, "a -> b"))
        out.append(plots.SeparationPoint(n, 0.0, thr, gap, 1e-3 * thr, False, "a -> b"))  # underflows the log axis
    return out


# ----------------------------------------------------------------------------- pure helpers
@given(
    slope=st.floats(0.3, 3.0),
    scale=st.floats(1e-9, 1e-2),
    noise=st.lists(st.floats(-0.02, 0.02), min_size=6, max_size=6),
)
def test_fit_slope_recovers_a_power_law(slope, scale, noise):
    ns = [2.0**k for k in range(10, 16)]
    ts = [scale * n**slope * math.exp(e) for n, e in zip(ns, noise)]
    fitted, intercept = plots.fit_slope(ns, ts)
    reference = np.polyfit(np.log(ns), np.log(ts), 1)  # the same fit by hand
    assert fitted == pytest.approx(reference[0], rel=1e-9)
    assert intercept == pytest.approx(reference[1], rel=1e-9, abs=1e-9)
    assert abs(fitted - slope) < 0.05  # noise of 2% per point moves the slope by < 0.05


def test_fit_slope_refuses_degenerate_input():
    with pytest.raises(InvalidInstance, match="two or more distinct n"):
        plots.fit_slope([8, 8], [1.0, 2.0])
    with pytest.raises(InvalidInstance, match="positive"):
        plots.fit_slope([8, 16], [0.0, 2.0])


@given(st.lists(st.tuples(st.floats(1e-3, 1e3), st.floats(1e-3, 1e3)), min_size=1, max_size=8))
def test_crossover_is_the_first_n_of_the_winning_tail(pairs):
    ns = [2.0**k for k in range(len(pairs))]
    exact = list(zip(ns, (p[0] for p in pairs)))
    fast = list(zip(ns, (p[1] for p in pairs)))
    got = plots.crossover(exact, fast)
    wins = [f < e for e, f in pairs]
    if not wins[-1]:
        assert got is None
    else:
        first = max(i for i in range(len(wins)) if i == 0 or not wins[i - 1])  # start of the last run of wins
        assert got == ns[first]


@given(
    thr=st.floats(1e-6, 1.0),
    ratio=st.floats(0.0, 10.0),
    band=st.floats(0.0, 2.0),
    truth=st.booleans(),
)
def test_separation_point_is_correct_iff_it_clears_the_band_on_the_right_side(thr, ratio, band, truth):
    p = plots.SeparationPoint(16, ratio * thr, thr, 0.5 * thr, band * thr, truth)
    assert p.ratio == pytest.approx(ratio)
    expected = (ratio - band > 1) if truth else (ratio + band < 1)
    if abs((ratio - band if truth else ratio + band) - 1) > 1e-9:  # away from float ties
        assert p.correct == expected


def test_separation_point_reads_the_first_decision_of_the_decoding_step():
    plain = SimpleNamespace(n=8, stats={"oracle_calls": 0})
    decision = {"statistic": 0.02, "threshold": 0.01, "margin": 0.004, "oracle_error": 1e-9}
    witness_search = {"statistic": 0.011, "threshold": 0.01, "margin": 0.004, "oracle_error": 1e-3}
    decoding = SimpleNamespace(n=128, stats={**witness_search, "decisions": [witness_search, decision]})
    decision["purpose"], witness_search["purpose"] = "detect", "row halving"
    report = SimpleNamespace(steps=[plain, decoding], ground_truth=True, path=["ksat_to_ov", "probe"])
    p = plots.separation_point(report)
    assert (p.n, p.statistic, p.threshold, p.margin, p.error, p.truth) == (128, 0.02, 0.01, 0.004, 1e-9, True)
    assert p.label == "ksat_to_ov -> probe"
    del decision["purpose"]  # no purpose stated: the first decision
    assert plots.separation_point(report).statistic == 0.011
    del decoding.stats["decisions"]  # a decoder without a log: its top-level numbers
    assert plots.separation_point(report).statistic == 0.011
    with pytest.raises(InvalidInstance, match="no step states a decoded statistic"):
        plots.separation_point(SimpleNamespace(steps=[plain], ground_truth=False, path=[]))
    with pytest.raises(InvalidInstance, match="expected a reductions.verify.Report"):
        plots.separation_point(object())


# ----------------------------------------------------------------------------- figures and files
@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_separation_figure_is_written_with_labels_and_provenance(tmp_path, suffix):
    out = tmp_path / f"sep{suffix}"
    pts = _points()
    plots.plot_separation(pts, out, provenance={"finegrain_version": "9.9", "command": "finegrain verify x", "seed": 5})
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG") if suffix == ".png" else b"<svg" in data[:2000]
    assert plots.read_plot_provenance(out) == {"finegrain_version": "9.9", "command": "finegrain verify x", "seed": 5}
    if suffix == ".svg":
        text = _svg_texts(out)
        assert "decoded statistic / threshold" in text and "tokens n of the gradient instance" in text
        n_yes, n_no = sum(p.truth for p in pts), sum(not p.truth for p in pts)
        assert f"YES (ground truth): {n_yes} instances" in text
        assert f"NO (ground truth): {n_no} instances" in text
        assert f"{len(pts)}/{len(pts)} separated" in text
        assert f"largest oracle error / margin: {max(p.error / p.margin for p in pts):.2g}" in text
        assert "triangles: ratio <=" in text  # the zero statistics are drawn at the floor, and said so


def test_separation_figure_counts_a_point_inside_the_band_as_not_separated(tmp_path):
    pts = _points(ns=(32,))
    thr = pts[0].threshold
    pts.append(plots.SeparationPoint(32, 1.0005 * thr, thr, 0.45 * thr, 1e-3 * thr, True))  # inside the band
    out = tmp_path / "sep.svg"
    plots.plot_separation(pts, out)
    assert f"{len(pts) - 1}/{len(pts)} separated" in _svg_texts(out)


def test_scaling_figure_shows_the_fitted_slopes(tmp_path):
    ns = [2**k for k in range(10, 15)]
    timings = {"exact": [(n, 3e-10 * n**2) for n in ns], "fast": [(n, 2e-3 + 1e-6 * n) for n in ns]}
    out = tmp_path / "scaling.svg"
    plots.plot_scaling(timings, out)
    text = _svg_texts(out)
    for name, pts in timings.items():
        upper = [p for p in pts if p[0] >= ns[2]]  # the larger half of the five sizes
        slope = np.polyfit(np.log([p[0] for p in upper]), np.log([p[1] for p in upper]), 1)[0]
        assert f"{name}: slope {slope:.2f} (fit over n >= {ns[2]})" in text
    cross = next(n for n in ns if all(2e-3 + 1e-6 * m < 3e-10 * m**2 for m in ns if m >= n))
    assert f"fast faster from n = {cross}" in text
    assert "wall-clock time per gradient [s]" in text and "tokens n (log scale)" in text


def test_figures_never_overwrite_without_force(tmp_path):
    out = tmp_path / "t.png"
    out.write_bytes(b"keep me")
    with pytest.raises(FinegrainError, match="--force"):
        plots.plot_scaling({"exact": [(8, 1.0), (16, 4.0)]}, out)
    assert out.read_bytes() == b"keep me"
    plots.plot_scaling({"exact": [(8, 1.0), (16, 4.0)]}, out, force=True)
    assert out.read_bytes().startswith(b"\x89PNG")
    assert [p.name for p in tmp_path.iterdir()] == ["t.png"]  # no temporary file left behind


def test_figures_refuse_bad_input(tmp_path):
    with pytest.raises(InvalidInstance, match=r"must end in \.png or \.svg"):
        plots.plot_scaling({"exact": [(8, 1.0)]}, tmp_path / "t.jpg")
    with pytest.raises(InvalidInstance, match="nothing to plot"):
        plots.plot_scaling({"exact": []}, tmp_path / "t.png")
    with pytest.raises(InvalidInstance, match="nothing to plot"):
        plots.plot_separation([], tmp_path / "s.png")
    with pytest.raises(FinegrainError, match="does not exist"):
        plots.plot_separation(_points(), tmp_path / "missing" / "s.png")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- finegrain verify --plot
@pytest.mark.parametrize("seed", [0, 3])
def test_verify_plot_draws_the_library_reports_detect_decision(tmp_path, monkeypatch, seed):
    from reductions.cli import main
    from reductions.generators.ksat import random_ksat
    from reductions.problems.cnf import write_dimacs
    from reductions.verify import verify

    monkeypatch.chdir(tmp_path)
    cnf = random_ksat(6, ratio=4.26, seed=seed)
    write_dimacs(cnf, "f.cnf")
    assert main(["verify", "f.cnf", "--plot", "sep.svg"]) == 0
    report = verify(cnf)
    expected = plots.separation_point(report)
    detect = [d for d in report.steps[-1].stats["decisions"] if d["purpose"] == "detect"][0]
    assert (expected.statistic, expected.threshold) == (detect["statistic"], detect["threshold"])
    text = _svg_texts(tmp_path / "sep.svg")
    label = "YES" if expected.truth else "NO"
    assert f"{label} (ground truth): 1 instance" in text and "1/1 separated" in text
    assert expected.truth == (seed == 0)  # seed 0 is satisfiable, seed 3 is not: both sides are drawn
    assert plots.read_plot_provenance(tmp_path / "sep.svg")["command"] == "finegrain verify f.cnf --plot sep.svg"


def test_verify_plot_refuses_before_running(tmp_path, monkeypatch, capsys):
    from reductions.cli import main
    from reductions.generators.ksat import random_ksat
    from reductions.problems.cnf import write_dimacs

    monkeypatch.chdir(tmp_path)
    write_dimacs(random_ksat(6, ratio=4.26, seed=1), "f.cnf")
    (tmp_path / "sep.png").write_bytes(b"keep")
    assert main(["verify", "f.cnf", "--plot", "sep.png"]) == 2
    assert main(["verify", "f.cnf", "--plot", "sep.pdf"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "--force" in err[0] and "must end in .png or .svg" in err[1]
    assert (tmp_path / "sep.png").read_bytes() == b"keep" and not (tmp_path / "sep.pdf").exists()


def test_figures_get_the_permissions_of_a_new_file(tmp_path):
    import os
    import stat

    old = os.umask(0o027)
    try:
        out = plots.plot_scaling({"exact": [(8, 1.0), (16, 4.0)]}, tmp_path / "t.png")
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o640  # 0666 & ~umask, not mkstemp's 0600


def test_verify_progress_bar_counts_the_oracle_calls(tmp_path, monkeypatch, capsys):
    import json
    from contextlib import contextmanager

    from reductions.cli import main
    from reductions.commands import verify as verify_command
    from reductions.generators.ksat import random_ksat
    from reductions.problems.cnf import write_dimacs

    updates = []

    @contextmanager
    def fake_progress(**kwargs):
        yield type("Bar", (), {"update": lambda self, k: updates.append(k)})()

    monkeypatch.setattr(verify_command, "progress", fake_progress)
    monkeypatch.chdir(tmp_path)
    write_dimacs(random_ksat(8, ratio=4.26, seed=1), "f.cnf")
    assert main(["verify", "f.cnf", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["oracle"] == "exact" and sum(updates) == report["oracle_calls"] > 1
    updates.clear()
    assert main(["verify", "f.cnf", "--to", "ov", "--json"]) == 0  # no attention oracle: nothing counted
    assert updates == [] and json.loads(capsys.readouterr().out)["oracle"] == "exact"


# ----------------------------------------------------------------------------- provenance in the image files
def _png_text_chunks(path) -> dict[str, str]:
    """The tEXt/iTXt chunks of a PNG, parsed from the bytes (no image library, CRCs checked)."""
    import struct
    import zlib

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = {}, 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        assert struct.unpack(">I", data[at + 8 + length : at + 12 + length])[0] == zlib.crc32(kind + body)
        if kind == b"tEXt":
            key, _, value = body.partition(b"\0")
            chunks[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"iTXt":  # key \0 flag method \0 lang \0 translated \0 text
            key, _, rest = body.partition(b"\0")
            flag, rest = rest[0], rest[2:]
            rest = rest.split(b"\0", 2)[2]
            chunks[key.decode("latin-1")] = (zlib.decompress(rest) if flag else rest).decode("utf-8")
        at += 12 + length
    return chunks


def _svg_metadata(path) -> dict[str, str]:
    """``dc:description`` and ``dc:creator`` of an SVG, through an XML parser."""
    import xml.etree.ElementTree as ET

    dc = "{http://purl.org/dc/elements/1.1/}"
    root = ET.parse(path).getroot()
    found = {}
    for name in ("description", "creator"):
        element = root.find(f".//{dc}{name}")
        if element is not None:
            found[name] = "".join(element.itertext()).strip()
    return found


def test_phase_plot_records_the_csv_provenance_in_png_and_svg(tmp_path, monkeypatch, capsys):
    import json

    import attention.phase
    from reductions.cli import main

    real = attention.phase.run_phase
    monkeypatch.setattr(  # two points instead of the quick grid's eight: the files are the subject
        attention.phase, "run_phase", lambda n, c, **kw: real([2**10], [0.25, 3.0], **{**kw, "exact_error_max_n": 0})
    )
    monkeypatch.chdir(tmp_path)
    argv = ["phase", "--quick", "--kind", "chebyshev", "--seed", "4", "-o", "p.csv", "--plot", "p.png"]
    assert main(argv) == 0
    capsys.readouterr()
    csv_record = json.loads((tmp_path / "p.csv").read_text().splitlines()[0].removeprefix("# provenance "))
    assert csv_record["seed"] == 4 and csv_record["command"] == "finegrain " + " ".join(argv)
    png = _png_text_chunks(tmp_path / "p.png")
    assert json.loads(png["Description"]) == csv_record
    assert png["Software"] == f"finegrain {csv_record['finegrain_version']}"
    svg = _svg_metadata(tmp_path / "p.svg")
    assert json.loads(svg["description"]) == csv_record and svg["creator"] == png["Software"]
    for path in ("p.png", "p.svg"):
        assert plots.read_plot_provenance(tmp_path / path) == csv_record


def test_verify_plot_png_records_the_command_line(tmp_path, monkeypatch):
    from reductions.cli import main
    from reductions.generators.ksat import random_ksat
    from reductions.problems.cnf import write_dimacs

    monkeypatch.chdir(tmp_path)
    write_dimacs(random_ksat(6, ratio=4.26, seed=0), "f.cnf")
    assert main(["verify", "f.cnf", "--plot", "sep.png"]) == 0
    import json

    record = json.loads(_png_text_chunks(tmp_path / "sep.png")["Description"])
    assert record["command"] == "finegrain verify f.cnf --plot sep.png" and "finegrain_version" in record


def test_save_figures_writes_all_or_none(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    fig = Figure()
    fig.add_subplot(1, 1, 1).plot([0, 1], [1, 0])
    png, svg = tmp_path / "a.png", tmp_path / "a.svg"
    svg.write_text("keep")
    with pytest.raises(FinegrainError, match="--force"):
        plots.save_figures(fig, [png, svg])
    assert not png.exists() and svg.read_text() == "keep"  # refused before drawing anything

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    svg.unlink()
    calls = []
    real = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, fh, **kw: calls.append(kw["format"]) or (
        interrupted() if kw["format"] == "svg" else real(self, fh, **kw)))
    with pytest.raises(KeyboardInterrupt):
        plots.save_figures(fig, [png, svg], provenance={"seed": 1})
    assert calls == ["png", "svg"] and sorted(tmp_path.iterdir()) == []  # the drawn PNG was not kept
