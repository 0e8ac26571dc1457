"""`hipimu summary`: one session, a declared test, a folder (cohort CSV, IR reserve across a
subject's sessions), and bad input (one clear line, exit code != 0, nothing half-written)."""

from __future__ import annotations

import csv
import dataclasses
import re
import shutil
import subprocess

import pytest

from hipimu.apps.cli import main
from hipimu.apps.summary import SUMMARY_COLUMNS
from hipimu.core.model import SampleBlock
from hipimu.core.norms import band_status
from hipimu.sources.simulate import simulate_session, task_truth
from hipimu.storage.recording import save_session


def _save(session, path, subject=None, events=None, test=None, recorded=None):
    info = session.info if subject is None else dataclasses.replace(session.info, subject_id=subject)
    info = info if test is None else dataclasses.replace(info, test=test)
    info = info if recorded is None else dataclasses.replace(info, created_utc=recorded)
    session = dataclasses.replace(session, info=info, events=session.events if events is None else events)
    save_session(session, path)
    return path


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    d = tmp_path_factory.mktemp("sessions")
    seated, _ = simulate_session("seated_rotation", seed=3)
    squat, _ = simulate_session("squat", seed=3)
    cohort = d / "cohort"
    cohort.mkdir()
    paths = {
        "seated": _save(seated, cohort / "s01_seated.hipimu", subject="S01", recorded="2026-03-02T09:00:00Z"),
        "squat": _save(squat, cohort / "s01_squat.hipimu", subject="S01"),
        # the same squat without its trial and rep events and not saying its test: the task must be declared
        "bare": _save(squat, d / "bare_squat.hipimu", test="",
                      events=[e for e in squat.events if not e.kind.startswith(("trial", "rep"))]),
    }
    # a follow-up of S01's seated test six weeks later (named to sort before the first visit: the
    # recording time orders them); the first visit copied next to it
    follow = d / "followup"
    follow.mkdir()
    later, _ = simulate_session("seated_rotation", seed=4)
    paths["followup"] = _save(later, follow / "a_followup.hipimu", subject="S01", recorded="2026-04-13T09:00:00Z")
    shutil.copy(paths["seated"], follow / "s01_seated.hipimu")
    # no calibration routine: the recording starts after it
    cut = {r: b.between(40.0, 1e9) for r, b in seated.samples.items()}
    late = dataclasses.replace(seated, samples=cut, events=[e for e in seated.events if e.time_s >= 40.0])
    paths["late"] = _save(late, d / "no_calibration.hipimu")
    pelvis_only = dataclasses.replace(seated, samples={"pelvis": seated.samples["pelvis"]},
                                      devices={"pelvis": seated.devices["pelvis"]})
    paths["pelvis_only"] = _save(pelvis_only, d / "pelvis_only.hipimu")
    return d, paths


def _pdf_text(path):
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_one_session(sessions, tmp_path):
    _, p = sessions
    out = tmp_path / "seated.csv"
    assert main(["summary", str(p["seated"]), "-o", str(out)]) == 0
    rows = read(out)
    assert tuple(rows[0]) == SUMMARY_COLUMNS
    trials = [r for r in rows if r["kind"] == "trial"]
    scripted = task_truth("seated_rotation", 3)
    assert [(r["side"], int(r["index"])) for r in trials] == [(t["side"], t["index"]) for t in scripted]
    for r, t in zip(trials, scripted):
        assert r["test"] == "seated_rotation" and r["found"] == "events"
        assert float(r["max_ir_deg"]) == pytest.approx(t["ir_deg"], abs=2.0)
        assert float(r["max_er_deg"]) == pytest.approx(t["er_deg"], abs=2.0)
        assert float(r["arc_deg"]) == pytest.approx(float(r["max_ir_deg"]) + float(r["max_er_deg"]), abs=0.02)
        assert r["compensating"] == "0"
        # each value against its band (docs/norms.md): the seated norm, the practitioners' goals
        ir, er, arc = float(r["max_ir_deg"]), float(r["max_er_deg"]), float(r["arc_deg"])
        assert (r["max_ir_norm"], r["max_er_norm"]) == (band_status(ir, (28, 38)), band_status(er, (35, 42)))
        assert (r["max_ir_goal"], r["max_er_goal"], r["arc_goal"]) == (
            band_status(ir, (25, 45)), band_status(er, (50, 90)), band_status(arc, (75, 100)))
        assert r["max_er_goal"] == "below"  # ~35-42 deg of ER: short of the 50-deg goal
    means = {r["side"]: r for r in rows if r["kind"] == "mean"}
    assert set(means) == {"left", "right"} and means["right"]["n"] == "3" and float(means["right"]["max_ir_sd_deg"]) > 0
    (sym,) = [r for r in rows if r["kind"] == "symmetry"]
    r_, l_ = float(means["right"]["max_ir_deg"]), float(means["left"]["max_ir_deg"])
    assert float(sym["max_ir_deg"]) == pytest.approx(100 * (r_ - l_) / ((r_ + l_) / 2), abs=0.05)


def test_declared_test_without_events(sessions, tmp_path):
    _, p = sessions
    out = tmp_path / "bare.csv"
    assert main(["summary", str(p["bare"]), "-o", str(out)]) == 2  # no trial events and no --test
    assert not out.exists()
    assert main(["summary", str(p["bare"]), "--test", "squat", "-o", str(out)]) == 0
    reps = [r for r in read(out) if r["kind"] == "rep"]
    assert sorted({int(r["index"]) for r in reps}) == [1, 2, 3, 4, 5]
    depths = [float(r["depth_deg"]) for r in reps if r["side"] == "right"]
    for r in reps:
        assert r["depth_norm"] == band_status(float(r["depth_deg"]), (90, 125))
        assert r["ir_at_bottom_norm"] == band_status(float(r["ir_at_bottom_deg"]), (0, 15))
    assert depths == pytest.approx([t["depth_right_deg"] for t in task_truth("squat", 3)], abs=2.0)


def test_a_folder_gives_one_cohort_csv_with_the_ir_reserve(sessions, tmp_path, capsys):
    d, p = sessions
    out = tmp_path / "cohort.csv"
    assert main(["summary", str(d / "cohort"), "-o", str(out)]) == 0
    rows = read(out)
    assert {r["session"] for r in rows if r["kind"] in ("trial", "rep")} == {"s01_seated", "s01_squat"}
    reserve = {r["side"]: r for r in rows if r["kind"] == "reserve"}
    assert set(reserve) == {"left", "right"}
    means = {(r["test"], r["side"]): r for r in rows if r["kind"] == "mean"}
    for side, r in reserve.items():
        assert r["subject_id"] == "S01" and r["test"] == "seated_rotation"
        table, used = float(means[("seated_rotation", side)]["max_ir_deg"]), float(means[("squat", side)]["ir_at_bottom_deg"])
        assert float(r["ir_reserve_deg"]) == pytest.approx(table - used, abs=0.02)
    assert "2 sessions" in capsys.readouterr().out


def test_change_between_a_subjects_sessions_against_the_mdc(sessions, tmp_path, capsys):
    d, p = sessions
    out = tmp_path / "followup.csv"
    assert main(["summary", str(d / "followup"), "-o", str(out)]) == 0
    rows = read(out)
    means = {(r["session"], r["side"]): r for r in rows if r["kind"] == "mean"}
    change = {r["side"]: r for r in rows if r["kind"] == "change"}
    assert set(change) == {"left", "right"}
    truth = {seed: [t for t in task_truth("seated_rotation", seed) if t["kind"] == "trial"] for seed in (3, 4)}
    for side, r in change.items():
        # the later visit against the earlier one, whatever the names' order
        assert (r["session"], r["compared_with"], r["subject_id"], r["mdc_deg"]) == ("a_followup", "s01_seated", "S01", "5.00")
        for q in ("max_ir_deg", "max_er_deg", "arc_deg"):
            d_q = float(means[("a_followup", side)][q]) - float(means[("s01_seated", side)][q])
            assert float(r[q]) == pytest.approx(d_q, abs=0.02)
        # the change of the scripted IR (seed 4 minus seed 3), within the measurement's error
        scripted = [sum(t["ir_deg"] for t in truth[seed] if t["side"] == side) / 3 for seed in (4, 3)]
        assert float(r["max_ir_deg"]) == pytest.approx(scripted[0] - scripted[1], abs=1.0)
    # the right arc grew by ~6 deg (beyond the MDC); nothing on the left changed by 5 deg
    assert change["right"]["beyond_mdc"] == "arc+" and float(change["right"]["arc_deg"]) > 5.0
    assert change["left"]["beyond_mdc"] == ""
    text = capsys.readouterr().out
    assert "2 between-session change rows" in text
    assert "change: S01 seated_rotation right: arc +" in text and "beyond the 5 deg minimal detectable change" in text
    # the reports: the follow-up's first page shows the change since the first visit, marked beyond the MDC
    reports = tmp_path / "reports"
    assert main(["report", str(d / "followup"), "-o", str(reports)]) == 0
    follow_text = _pdf_text(reports / "a_followup.pdf")
    assert "Change since the previous session (s01_seated)" in follow_text
    assert re.search(r"Seated rotation, right +[+-]\d+\.\d° +[+-]\d+\.\d° +\+\d+\.\d° \* +yes", follow_text)
    assert re.search(r"Seated rotation, left( +[+-]\d+\.\d°){3} +no", follow_text)
    assert "Change since" not in _pdf_text(reports / "s01_seated.pdf")  # the first visit has nothing to compare with
    # a larger MDC: no change beyond it
    out2 = tmp_path / "followup_mdc8.csv"
    assert main(["summary", str(d / "followup"), "--mdc-deg", "8", "-o", str(out2)]) == 0
    assert [r["beyond_mdc"] for r in read(out2) if r["kind"] == "change"] == ["", ""]


def test_equal_file_names_in_subfolders_stay_apart(sessions, tmp_path, capsys):
    d, p = sessions
    root = tmp_path / "clinic"
    for sub, src in (("s01", p["seated"]), ("s02", p["followup"])):
        (root / sub).mkdir(parents=True)
        shutil.copy(src, root / sub / "visit.hipimu")
    out = tmp_path / "clinic.csv"
    assert main(["summary", str(root), "-o", str(out)]) == 0
    rows = read(out)
    assert {r["session"] for r in rows} == {"s01/visit", "s02/visit"}
    assert sum(r["kind"] == "mean" and r["session"] == "s01/visit" for r in rows) == 2  # 3 trials each side, not 6
    assert all(r["n"] == "3" for r in rows if r["kind"] == "mean")
    reports = tmp_path / "reports"
    assert main(["report", str(root), "-o", str(reports)]) == 0
    assert sorted(x.relative_to(reports).as_posix() for x in reports.rglob("*.pdf")) == ["s01/visit.pdf", "s02/visit.pdf"]


def test_a_bad_session_in_a_folder_is_named_and_the_rest_written(sessions, tmp_path, capsys):
    _, p = sessions
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a.hipimu").write_bytes(p["seated"].read_bytes())
    (folder / "b.hipimu").write_bytes(b"not a recording")
    out = tmp_path / "mixed.csv"
    assert main(["summary", str(folder), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "b.hipimu" in err and "1 of 2 sessions" in err
    assert {r["session"] for r in read(out)} == {"a"}


@pytest.mark.parametrize("which, message", [("late", "calibration"), ("pelvis_only", "thigh")])
def test_bad_sessions_get_one_clear_line(sessions, tmp_path, capsys, which, message):
    _, p = sessions
    out = tmp_path / "x.csv"
    assert main(["summary", str(p[which]), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hipimu: error:") and message in err[0]
    assert not out.exists()


def test_existing_output_and_unknown_test(sessions, tmp_path, capsys):
    _, p = sessions
    out = tmp_path / "keep.csv"
    out.write_text("precious\n")
    assert main(["summary", str(p["seated"]), "-o", str(out)]) == 2
    assert out.read_text() == "precious\n"
    with pytest.raises(SystemExit) as exc:
        main(["summary", str(p["seated"]), "--test", "lunge", "-o", str(tmp_path / "y.csv")])
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err
    for flag, bad in (("--mdc-deg", "-1"), ("--compensation-deg", "lots")):
        with pytest.raises(SystemExit) as exc:
            main(["summary", str(p["seated"]), flag, bad, "-o", str(tmp_path / "y.csv")])
        assert exc.value.code == 2 and "between 0 and 90" in capsys.readouterr().err
    assert not (tmp_path / "y.csv").exists()
