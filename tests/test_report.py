"""The PDF report: the pages a session calls for (and no others), each of them drawn
(rendered by poppler, not blank), the labels a reader looks for in the text, missing
values as "–", the norm bands given, and nothing overwritten unless asked."""

from __future__ import annotations

import dataclasses
import math
import re
import shutil
import subprocess

import pytest
from conftest import png_is_not_blank

from hipimu.apps.report import write_report
from hipimu.apps.summary import analyse_session
from hipimu.core.analysis import SessionAnalysis
from hipimu.core.norms import DEFAULT_BANDS_DEG
from hipimu.errors import InputError
from hipimu.sources.simulate import simulate_session
from hipimu.storage.recording import save_session


def _poppler(tool: str) -> str:
    exe = shutil.which(tool)
    assert exe, f"{tool} is missing: 'make test' installs it (poppler-utils)"
    return exe


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """scenario -> Analysed, each simulated and analysed once; ``both``: a session holding
    the seated test and squats (seated_rotation_squat), with a note added."""
    d = tmp_path_factory.mktemp("sessions")
    out = {}
    for scenario, seed in (("seated_rotation", 3), ("squat", 3), ("seated_rotation_squat", 0)):
        session, _ = simulate_session(scenario, seed=seed)
        save_session(session, d / f"{scenario}.hipimu")
        out[scenario] = analyse_session(d / f"{scenario}.hipimu")
    both = out["seated_rotation_squat"]
    out["both"] = dataclasses.replace(both, analysis=dataclasses.replace(
        both.analysis, notes=[*both.analysis.notes, "a note from the analysis"]))
    return out


def pdf_text(path) -> str:
    return subprocess.run([_poppler("pdftotext"), "-layout", str(path), "-"], check=True, capture_output=True,
                          text=True).stdout


def rendered_pages(pdf, out_dir) -> list:
    subprocess.run([_poppler("pdftoppm"), "-r", "40", "-png", str(pdf), str(out_dir / "page")], check=True,
                   capture_output=True)
    return sorted(out_dir.glob("page-*.png"))


@pytest.mark.parametrize("scenario, pages, labels", [
    ("seated_rotation", 4, ["Seated rotation", "max IR", "max ER", "apparent IR", "pelvis Δ", "IR held (s)",
                            "SIM-seated_rotation-3", "Minimal detectable change: 5°", "Left / right", "Data quality"]),
    ("squat", 4, ["Squat", "butt wink", "depth", "IR at the bottom", "IR against hip flexion", "SIM-squat-3",
                  "Minimal detectable change: 5°", "Data quality", "drift (ppm)"]),
], ids=["seated_rotation", "squat"])
def test_report_pages_are_drawn_and_labelled(analysed, tmp_path, scenario, pages, labels):
    a = analysed[scenario]
    pdf = tmp_path / "report.pdf"
    assert write_report(a, pdf) == pages
    info = subprocess.run([_poppler("pdfinfo"), str(pdf)], check=True, capture_output=True, text=True).stdout
    assert re.search(rf"Pages:\s+{pages}\n", info) and "(A4)" in info
    pngs = rendered_pages(pdf, tmp_path)
    assert len(pngs) == pages
    for png in pngs:
        assert png_is_not_blank(png), png.name
    text = pdf_text(pdf)
    for label in labels:
        assert label in text, label
    assert f"page {pages} of {pages}" in text
    assert re.search(r"Calibration: routine, grade [ABC]", text)  # the method and its grade, on the data-quality page
    if scenario == "squat":  # no rotation page and no rotation table
        assert "max IR" not in text and "apparent IR" not in text


def test_both_tests_give_five_pages_and_the_ir_reserve(analysed, tmp_path):
    pdf = tmp_path / "both.pdf"
    assert write_report(analysed["both"], pdf) == 5
    assert all(png_is_not_blank(p) for p in rendered_pages(pdf, tmp_path))
    text = pdf_text(pdf)
    assert "IR reserve, left" in text and "IR reserve, right" in text
    assert "a note from the analysis" in text and "max IR" in text and "butt wink" in text


def test_nothing_found_gives_summary_and_quality_only(analysed, tmp_path):
    a = analysed["seated_rotation"]
    empty = dataclasses.replace(a, analysis=SessionAnalysis([], [], a.analysis.sides, a.analysis.options,
                                                            ["no squat reps found after the calibration routine"]))
    pdf = tmp_path / "empty.pdf"
    assert write_report(empty, pdf) == 2
    text = pdf_text(pdf)
    assert "No rotation trials and no squat reps" in text and "no squat reps found" in text
    assert "Data quality" in text


def test_missing_values_print_a_dash(analysed, tmp_path):
    a = analysed["both"]
    nan = math.nan
    rot = [dataclasses.replace(r, max_ir_rad=nan, arc_rad=nan, apparent_max_ir_rad=nan, ir_held_s=nan)
           if r.side == "left" else r for r in a.analysis.rotation]
    reps = [dataclasses.replace(r, butt_wink_rad=nan, depth_rad=nan) for r in a.analysis.squat]
    broken = dataclasses.replace(a, analysis=dataclasses.replace(a.analysis, rotation=rot, squat=reps))
    pdf = tmp_path / "nan.pdf"
    assert write_report(broken, pdf) == 5
    text = pdf_text(pdf)
    assert "nan" not in text.lower()
    assert re.search(r"max IR +– +– +\d+\.\d ± \d+\.\d +within", text)  # left: no mean, no status; right as before
    assert re.search(r"left +1 +– +– +\d+\.\d", text)  # the trial table: max IR, apparent IR
    assert re.search(r"butt wink +– +– +– +–", text)


def test_bands_given_are_the_ones_shown(analysed, tmp_path):
    bands = {**DEFAULT_BANDS_DEG, "seated_rotation": {"ir": (50.0, 60.0), "er": (35.0, 42.0)}}
    pdf = tmp_path / "bands.pdf"
    write_report(analysed["seated_rotation"], pdf, bands=bands)
    text = pdf_text(pdf)
    assert "50-60" in text and "28-38" not in text
    assert "below" in text


def test_existing_output_is_kept_unless_overwrite(analysed, tmp_path):
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"an older report")
    with pytest.raises(InputError, match="already exists"):
        write_report(analysed["squat"], pdf)
    assert pdf.read_bytes() == b"an older report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.pdf"]  # no temporary file left behind
    assert write_report(analysed["squat"], pdf, overwrite=True) == 4
    assert pdf.read_bytes().startswith(b"%PDF")
    with pytest.raises(InputError):
        write_report(analysed["squat"], tmp_path / "no such folder" / "report.pdf")
