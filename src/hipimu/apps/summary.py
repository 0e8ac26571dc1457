"""Sessions -> analysis -> rows (degrees) for the summary CSV and the report.

:func:`analyse_session` loads a recording, computes its angles (the same
pipeline as ``hipimu angles``) and analyses them (:mod:`hipimu.core.analysis`);
:func:`summary_rows` turns the analysis into the CSV's rows (one per trial or
rep and side, then the IR reserve and the left/right comparison);
:func:`session_quality` says how good the data were (loss, clock drift,
calibration grade, angle quality).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hipimu.core.analysis import (
    ROTATION_TESTS,
    AnalysisOptions,
    SessionAnalysis,
    analyze,
    ir_reserve,
    side_stats,
    symmetry_index,
)
from hipimu.core.norms import DEFAULT_BANDS_DEG, MDC_DEG, band_status
from hipimu.core.quality import RELIABLE

__all__ = ["Analysed", "analyse_session", "summary_rows", "group_rows", "subject_rows", "change_rows",
           "session_quality", "session_label", "write_csv", "SUMMARY_COLUMNS", "CHANGE_QUANTITIES", "find_sessions"]

#: The summary CSV's columns, in order (degrees, seconds). Rows: ``kind`` trial, rep,
#: mean (per test and side over trials/reps), symmetry (right vs left, %), reserve,
#: change (a subject's session against their previous one).
SUMMARY_COLUMNS = (
    "session", "subject_id", "recorded_utc", "kind", "test", "side", "index", "start_s", "end_s", "found",
    "max_ir_deg", "max_er_deg", "arc_deg", "ir_held_s", "er_held_s",
    "pelvic_compensation_deg", "pelvis_tilt_change_deg", "pelvis_obliquity_change_deg",
    "pelvis_rotation_change_deg", "compensating", "apparent_max_ir_deg", "apparent_max_er_deg",
    "depth_deg", "ir_at_bottom_deg", "adduction_at_bottom_deg", "tilt_top_deg", "tilt_bottom_deg",
    "butt_wink_deg", "knee_flare_abduction_deg", "knee_flare_er_deg", "depth_lr_diff_deg", "ir_at_bottom_lr_diff_deg",
    "n", "max_ir_sd_deg", "max_er_sd_deg", "arc_sd_deg", "depth_sd_deg", "ir_at_bottom_sd_deg",
    "max_ir_norm", "max_er_norm", "arc_goal", "max_ir_goal", "max_er_goal", "depth_norm", "ir_at_bottom_norm",
    "table_ir_deg", "squat_ir_deg", "ir_reserve_deg", "quality_min",
    "compared_with", "mdc_deg", "beyond_mdc",
)

#: What a change row compares between sessions (the rotation tests' means): the
#: quantities the minimal detectable change is quoted for.
CHANGE_QUANTITIES = ("max_ir_deg", "max_er_deg", "arc_deg")


@dataclass
class Analysed:
    """One analysed session: where from, what it holds, its angles and analysis."""

    path: Path
    session: Any  # hipimu.core.model.Session
    result: Any  # hipimu.core.pipeline.PipelineResult
    analysis: SessionAnalysis
    quality: dict[str, Any]
    #: how rows and reports name the session (default: the file's stem; in a folder, its
    #: path below the folder, so that equal file names in different subfolders stay apart)
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or self.path.stem

    @property
    def subject_id(self) -> str:
        return self.session.info.subject_id


def analyse_session(path: Path, *, test: str | None = None, calibration_dir: Path | None = None,
                    options: AnalysisOptions | None = None, label: str = "") -> Analysed:
    """Load, compute the angles, analyse (raises HipimuError with a one-line reason)."""
    from hipimu.core.calibration import CalibrationError
    from hipimu.core.pipeline import process_session
    from hipimu.errors import InputError
    from hipimu.storage.recording import load_session
    from hipimu.storage.sensor_calibration_files import load_sensor_calibrations

    session = load_session(path)
    cals = load_sensor_calibrations([d.device_id for d in session.devices.values()], calibration_dir or Path("calibration"))
    try:
        result = process_session(session, None, cals)
    except CalibrationError as exc:
        raise InputError(f"{path}: no angles without the calibration routine: {exc}") from exc
    cal_end = result.calibration.windows.end_s
    declared = test or None
    try:
        analysis = analyze(result.angles, session.events, test=declared or _declared_test(session),
                           calibration_end_s=cal_end, options=options)
    except ValueError as exc:
        raise InputError(f"{path}: {exc}") from exc
    return Analysed(Path(path), session, result, analysis, session_quality(session, result), label)


def _declared_test(session: Any) -> str | None:
    """The recording's own test, used only when it has no trial events."""
    if any(e.kind == "trial_start" for e in session.events):
        return None
    t = session.info.test
    return t if t in ("seated_rotation", "prone_rotation", "squat") else None


def session_quality(session: Any, result: Any) -> dict[str, Any]:
    """Loss, clock drift and gaps per sensor; calibration method and grade; how often the angles were reliable."""
    from hipimu.core.timing import timing_stats

    sensors = []
    for role, blk in session.samples.items():
        st = timing_stats(blk.time_s)
        dev = session.devices.get(role)
        nominal = dev.rate_hz if dev is not None else math.nan
        expected = st.n + st.missing
        sensors.append({
            "role": role, "device_id": dev.device_id if dev is not None else "", "samples": st.n,
            "rate_hz": st.rate_hz, "nominal_hz": nominal,
            "loss_percent": 100.0 * st.missing / expected if expected else math.nan,
            "gaps": st.gaps, "longest_gap_s": st.longest_gap_s,
            # samples taken (received + lost) per second against the nominal rate: the device clock's error
            "drift_ppm": ((st.n - 1 + st.missing) / st.duration_s / nominal - 1.0) * 1e6
            if nominal == nominal and st.duration_s > 0 else math.nan,
        })
    q = np.asarray(result.angles.quality)
    cal = result.calibration
    return {"sensors": sensors, "calibration_method": cal.method, "calibration_grade": cal.grade, "calibration_notes": list(cal.notes),
            "angles_reliable_percent": float(100.0 * np.mean(q >= RELIABLE)) if len(q) else math.nan,
            "duration_s": float(result.angles.time_s[-1] - result.angles.time_s[0]) if len(q) else 0.0}


def _deg(x: float) -> float:
    return math.degrees(x) if x == x else math.nan


def summary_rows(a: Analysed, bands: dict[str, dict[str, tuple[float, float]]] | None = None) -> list[dict[str, Any]]:
    """The CSV rows of one session (see :data:`SUMMARY_COLUMNS`), degrees."""
    bands = bands or DEFAULT_BANDS_DEG
    goals = bands.get("goals", {})
    an = a.analysis
    base = {"session": a.name, "subject_id": a.subject_id, "recorded_utc": a.session.info.created_utc}
    rows: list[dict[str, Any]] = []
    for r in an.rotation:
        b = bands.get(r.test, {})
        rows.append({**base, "kind": "trial", "test": r.test, "side": r.side, "index": r.index,
                     "start_s": r.start_s, "end_s": r.end_s, "found": r.found,
                     "max_ir_deg": _deg(r.max_ir_rad), "max_er_deg": _deg(r.max_er_rad), "arc_deg": _deg(r.arc_rad),
                     "ir_held_s": r.ir_held_s, "er_held_s": r.er_held_s,
                     "pelvic_compensation_deg": _deg(r.pelvic_compensation_rad),
                     "pelvis_tilt_change_deg": _deg(r.pelvis_change_rad[0]),
                     "pelvis_obliquity_change_deg": _deg(r.pelvis_change_rad[1]),
                     "pelvis_rotation_change_deg": _deg(r.pelvis_change_rad[2]),
                     "compensating": int(r.compensating),
                     "apparent_max_ir_deg": _deg(r.apparent_max_ir_rad), "apparent_max_er_deg": _deg(r.apparent_max_er_rad),
                     "max_ir_norm": band_status(_deg(r.max_ir_rad), b.get("ir")),
                     "max_er_norm": band_status(_deg(r.max_er_rad), b.get("er")),
                     "arc_goal": band_status(_deg(r.arc_rad), goals.get("arc")),
                     "max_ir_goal": band_status(_deg(r.max_ir_rad), goals.get("ir")),
                     "max_er_goal": band_status(_deg(r.max_er_rad), goals.get("er")),
                     "quality_min": r.quality_min})
    by_index: dict[int, dict[str, Any]] = {}
    for r in an.squat:
        by_index.setdefault(r.index, {})[r.side] = r
    sq = bands.get("squat", {})
    for r in an.squat:
        other = by_index[r.index].get("left" if r.side == "right" else "right")
        row = {**base, "kind": "rep", "test": "squat", "side": r.side, "index": r.index,
               "start_s": r.start_s, "end_s": r.end_s, "found": r.found,
               "depth_deg": _deg(r.depth_rad), "ir_at_bottom_deg": _deg(r.ir_at_bottom_rad),
               "adduction_at_bottom_deg": _deg(r.adduction_at_bottom_rad),
               "tilt_top_deg": _deg(r.tilt_top_rad), "tilt_bottom_deg": _deg(r.tilt_bottom_rad),
               "butt_wink_deg": _deg(r.butt_wink_rad), "knee_flare_abduction_deg": _deg(r.knee_flare_abduction_rad),
               "knee_flare_er_deg": _deg(r.knee_flare_er_rad),
               "depth_norm": band_status(_deg(r.depth_rad), sq.get("flexion")),
               "ir_at_bottom_norm": band_status(_deg(r.ir_at_bottom_rad), sq.get("ir")), "quality_min": r.quality_min}
        if other is not None and r.side == "right":  # right minus left, on the right's row
            row["depth_lr_diff_deg"] = _deg(r.depth_rad - other.depth_rad)
            row["ir_at_bottom_lr_diff_deg"] = _deg(r.ir_at_bottom_rad - other.ir_at_bottom_rad)
        rows.append(row)
    rows += group_rows(rows, bands)
    for res in ir_reserve(an.rotation, an.squat):
        rows.append({**base, "kind": "reserve", "test": res["test"], "side": res["side"],
                     "table_ir_deg": _deg(res["table_ir_rad"]), "squat_ir_deg": _deg(res["squat_ir_rad"]),
                     "ir_reserve_deg": _deg(res["reserve_rad"]), "n": res["n_trials"]})
    return rows


_MEANS = {"trial": ("max_ir_deg", "max_er_deg", "arc_deg", "pelvic_compensation_deg", "apparent_max_ir_deg",
                    "apparent_max_er_deg"),
          "rep": ("depth_deg", "ir_at_bottom_deg", "adduction_at_bottom_deg", "tilt_top_deg", "tilt_bottom_deg",
                  "butt_wink_deg", "knee_flare_abduction_deg", "knee_flare_er_deg")}
_SDS = ("max_ir", "max_er", "arc", "depth", "ir_at_bottom")
_PELVIS = ("pelvic_compensation_deg", "tilt_top_deg", "tilt_bottom_deg", "butt_wink_deg")


def group_rows(rows: Sequence[dict[str, Any]], bands: dict[str, dict[str, tuple[float, float]]] | None = None
               ) -> list[dict[str, Any]]:
    """Mean (and SD) per session, test and side over trials/reps, then the right-vs-left
    symmetry index (%) of those means."""
    bands = bands or DEFAULT_BANDS_DEG
    goals = bands.get("goals", {})
    out = []
    keys = []
    for r in rows:
        if r["kind"] in _MEANS:
            k = (r["session"], r["subject_id"], r["kind"], r["test"], r["side"])
            if k not in keys:
                keys.append(k)
    means: dict[tuple, dict[str, Any]] = {}
    for k in keys:
        session, subject, kind, test, side = k
        sel = [r for r in rows if (r["session"], r["subject_id"], r["kind"], r["test"], r["side"]) == k]
        row = {"session": session, "subject_id": subject, "recorded_utc": sel[0].get("recorded_utc", ""),
               "kind": "mean", "test": test, "side": side, "n": len(sel),
               "start_s": min(r["start_s"] for r in sel), "end_s": max(r["end_s"] for r in sel)}
        for c in _MEANS[kind]:
            n, mean, sd = side_stats([r.get(c, math.nan) for r in sel])
            row[c] = mean
            if c.removesuffix("_deg") in _SDS:
                row[c.removesuffix("_deg") + "_sd_deg"] = sd
        b = bands.get(test, {})
        if kind == "trial":
            row["max_ir_norm"] = band_status(row["max_ir_deg"], b.get("ir"))
            row["max_er_norm"] = band_status(row["max_er_deg"], b.get("er"))
            row["arc_goal"] = band_status(row["arc_deg"], goals.get("arc"))
            row["max_ir_goal"] = band_status(row["max_ir_deg"], goals.get("ir"))
            row["max_er_goal"] = band_status(row["max_er_deg"], goals.get("er"))
            row["compensating"] = sum(int(r.get("compensating", 0)) for r in sel)
        else:
            row["depth_norm"] = band_status(row["depth_deg"], b.get("flexion"))
            row["ir_at_bottom_norm"] = band_status(row["ir_at_bottom_deg"], b.get("ir"))
        means[k] = row
        out.append(row)
    for (session, subject, kind, test, side), right in means.items():
        if side != "right":
            continue
        left = means.get((session, subject, kind, test, "left"))
        if left is None:
            continue
        row = {"session": session, "subject_id": subject, "recorded_utc": right.get("recorded_utc", ""),
               "kind": "symmetry", "test": test, "side": "right_vs_left",
               "n": min(right["n"], left["n"])}
        for c in _MEANS[kind]:
            if c in _PELVIS:  # one pelvis: no left and right to compare
                continue
            row[c] = symmetry_index(right[c], left[c]) if c in ("max_ir_deg", "max_er_deg", "arc_deg", "depth_deg") \
                else right[c] - left[c]
        out.append(row)
    return out


def subject_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The IR reserve across a subject's sessions (a folder of them): per subject id,
    rotation test and side, the table's max IR (mean of the sessions' means) minus the
    IR at the bottom of the squat (mean of the sessions' means), when no one session
    holds both (those have their own reserve rows). Session cell: the sessions used."""
    out = []
    own = {(r["subject_id"], r["test"], r["side"]) for r in rows if r["kind"] == "reserve"}
    subjects = sorted({r["subject_id"] for r in rows if r["subject_id"]})
    for subject in subjects:
        means = [r for r in rows if r["kind"] == "mean" and r["subject_id"] == subject]
        for test in ("seated_rotation", "prone_rotation"):
            for side in ("left", "right"):
                if (subject, test, side) in own:
                    continue
                table = [r for r in means if r["test"] == test and r["side"] == side]
                squat = [r for r in means if r["test"] == "squat" and r["side"] == side]
                if not table or not squat:
                    continue
                t_ir = float(np.mean([r["max_ir_deg"] for r in table]))
                s_ir = float(np.mean([r["ir_at_bottom_deg"] for r in squat]))
                out.append({"session": " + ".join(sorted({r["session"] for r in table + squat})), "subject_id": subject,
                            "kind": "reserve", "test": test, "side": side, "table_ir_deg": t_ir,
                            "squat_ir_deg": s_ir, "ir_reserve_deg": t_ir - s_ir, "n": sum(r["n"] for r in table)})
    return out


def change_rows(rows: Sequence[dict[str, Any]], mdc_deg: float = MDC_DEG) -> list[dict[str, Any]]:
    """Between-session change: per subject id, rotation test and side, each session's mean
    against the same subject's previous session (by recording time, then name) --
    later minus earlier for :data:`CHANGE_QUANTITIES` -- and ``beyond_mdc`` naming the
    quantities whose change is at least ``mdc_deg`` (e.g. ``max_ir+ arc+``; empty: no
    change beyond what the measurement's own variability explains)."""
    means = [r for r in rows if r["kind"] == "mean" and r["test"] in ROTATION_TESTS and r["subject_id"]]
    out = []
    for key in sorted({(r["subject_id"], r["test"], r["side"]) for r in means}):
        seq = sorted((r for r in means if (r["subject_id"], r["test"], r["side"]) == key),
                     key=lambda r: (r.get("recorded_utc") or "", r["session"]))
        for before, after in zip(seq, seq[1:]):
            row = {"session": after["session"], "subject_id": key[0], "recorded_utc": after.get("recorded_utc", ""),
                   "kind": "change", "test": key[1], "side": key[2], "n": min(before["n"], after["n"]),
                   "compared_with": before["session"], "mdc_deg": mdc_deg}
            flags = []
            for c in CHANGE_QUANTITIES:
                d = after.get(c, math.nan) - before.get(c, math.nan)
                row[c] = d
                if math.isfinite(d) and abs(d) >= mdc_deg:
                    flags.append(c.removesuffix("_deg") + ("+" if d > 0 else "-"))
            row["beyond_mdc"] = " ".join(flags)
            out.append(row)
    return out


def write_csv(rows: Sequence[dict[str, Any]], path: Path, *, overwrite: bool = False) -> None:
    """The rows with :data:`SUMMARY_COLUMNS` (empty cells for what a row does not have),
    numbers to 2 decimals; written whole or not at all. Symmetry rows hold the
    symmetry index (%) in the max/arc/depth columns and right minus left elsewhere."""
    from hipimu.storage._atomic import atomic_output

    with atomic_output(path, overwrite=overwrite) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(SUMMARY_COLUMNS)
        for r in rows:
            w.writerow([_cell(r.get(c)) for c in SUMMARY_COLUMNS])


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        return "" if not math.isfinite(v) else f"{v:.2f}"
    return str(v)


def session_label(path: Path, root: Path) -> str:
    """A session's name in a folder's outputs: its path below ``root`` without the suffix
    (``s01/visit2`` for ``root/s01/visit2.hipimu``); the file's stem for a single file."""
    try:
        return Path(path).relative_to(root).with_suffix("").as_posix() if Path(root).is_dir() else Path(path).stem
    except ValueError:
        return Path(path).stem


def find_sessions(path: Path) -> list[Path]:
    """A recording, or every recording (``*.hipimu``) in a folder and its subfolders, sorted."""
    from hipimu.errors import InputError

    if path.is_dir():
        found = sorted(p for p in path.rglob("*.hipimu") if p.is_file())
        if not found:
            raise InputError(f"{path}: no recordings (*.hipimu) in this folder")
        return found
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    return [path]
