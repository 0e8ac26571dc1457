"""Plain-text and JSON views of a session for the command line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from hipimu.core.conventions import SIDES, hip_column, pelvis_column
from hipimu.core.model import Session
from hipimu.core.timing import timing_stats
from hipimu.storage.recording import FORMAT_VERSION


def session_overview(session: Session, path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Everything ``hipimu info`` shows, as JSON-able data."""
    sensors = []
    for r in session.roles:
        blk = session.samples[r]
        st = timing_stats(blk.time_s)
        dev = session.devices.get(r)
        seq_missing = None
        if blk.seq is not None and len(blk) > 1:
            seq_missing = int(np.sum(np.clip(np.diff(blk.seq) - 1, 0, None)))
        sensors.append(
            {
                "role": r,
                "device_id": dev.device_id if dev else "",
                "firmware": dev.firmware if dev else "",
                "nominal_rate_hz": dev.rate_hz if dev else None,
                "samples": st.n,
                "start_s": st.start_s,
                "end_s": st.end_s,
                "duration_s": st.duration_s,
                "effective_rate_hz": st.rate_hz,
                "gaps": st.gaps,
                "missing_samples": st.missing,
                "longest_gap_s": st.longest_gap_s,
                "seq_missing": seq_missing,
                "mag": blk.has_mag,
            }
        )
    return {
        "file": str(path) if path is not None else None,
        "format_version": session.format_version,
        "warnings": list(session.warnings),
        "session": session.info.to_dict(),
        "devices": {r: d.to_dict() for r, d in session.devices.items()},
        "sensors": sensors,
        "events": [{"time_s": e.time_s, "kind": e.kind, "label": e.label, "data": e.data} for e in session.events],
        "sensor_calibration": session.sensor_calibration,
        "results": sorted(session.results),
    }


def _fmt(v: float, spec: str) -> str:
    return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, spec)


def session_summary_text(session: Session, path: str | os.PathLike[str] | None = None) -> str:
    ov = session_overview(session, path)
    info = session.info
    lines = []
    if path is not None:
        size = Path(path).stat().st_size / 1e6 if Path(path).exists() else float("nan")
        lines.append(f"{path}  (hipimu recording, format {session.format_version or FORMAT_VERSION}, {size:.1f} MB)")
    for w in session.warnings:
        lines.append(f"  warning: {w}")
    sim = f"   SIMULATED (scenario {info.simulation.get('scenario')}, seed {info.simulation.get('seed')})" if info.simulated else ""
    lines.append(f"  subject  {info.subject_id or '-'}   test {info.test or '-'}   sides {', '.join(info.sides) or '-'}{sim}")
    lines.append(f"  created  {info.created_utc or '-'} by {info.software_version or '-'}   source {info.source or '-'}")
    if info.operator:
        lines.append(f"  operator {info.operator}")
    if info.notes:
        lines.append(f"  notes    {info.notes}")
    lines.append("")
    lines.append("sensors")
    hdr = f"  {'role':<13}{'device':<22}{'samples':>9}{'start s':>9}{'dur s':>9}{'rate Hz':>10}{'nominal':>9}{'gaps':>6}{'missing':>9}{'longest s':>10}  mag"
    lines.append(hdr)
    for s in ov["sensors"]:
        lines.append(
            f"  {s['role']:<13}{s['device_id'][:21]:<22}{s['samples']:>9}{_fmt(s['start_s'], '.3f'):>9}"
            f"{_fmt(s['duration_s'], '.1f'):>9}{_fmt(s['effective_rate_hz'], '.3f'):>10}{_fmt(s['nominal_rate_hz'], 'g'):>9}"
            f"{s['gaps']:>6}{s['missing_samples']:>9}{_fmt(s['longest_gap_s'], '.3f'):>10}  {'yes' if s['mag'] else 'no'}"
        )
    if not ov["sensors"]:
        lines.append("  (no samples)")
    cal = ", ".join(session.sensor_calibration) or "none"
    lines.append(f"  sensor calibration in force: {cal}")
    if session.results:
        lines.append(f"  stored results: {', '.join(sorted(session.results))}")
    lines.append("")
    lines.append(f"events ({len(session.events)})")
    for e in session.events:
        data = " ".join(f"{k}={v}" for k, v in e.data.items())
        lines.append(f"  {e.time_s:9.3f} s  {e.kind:<12} {e.label:<18} {data}".rstrip())
    if not session.events:
        lines.append("  (none)")
    return "\n".join(lines)


def truth_summary_text(session: Session, truth: dict[str, np.ndarray]) -> str:
    """The virtual subject's ground truth per trial or repetition, in degrees."""
    t = truth["time_s"]
    out = ["Ground truth of the virtual subject (degrees) -- what hipimu's angle estimates are checked against:"]

    def window(t0: float, t1: float) -> np.ndarray:
        return (t >= t0) & (t <= t1)

    trials = [iv for iv in session.intervals("trial") if iv[2].label in ("seated_rotation", "prone_rotation")]
    reps = session.intervals("rep")
    if trials:
        out.append(f"  {'test':<16}{'side':<7}{'trial':>5}{'start s':>9}{'max IR':>8}{'max ER':>8}{'arc':>7}{'pelvis obl':>12}{'pelvis rot':>12}")
        for t0, t1, ev in trials:
            side = ev.data.get("side", "right")
            w = window(t0, t1)
            rot = truth[hip_column("rotation", side)][w]
            obl = truth[pelvis_column("obliquity")][w]
            prot = truth[pelvis_column("rotation")][w]
            out.append(
                f"  {ev.label:<16}{side:<7}{ev.data.get('index', ''):>5}{t0:>9.1f}{rot.max():>8.1f}{-rot.min():>8.1f}"
                f"{rot.max() - rot.min():>7.1f}{np.ptp(obl):>12.1f}{np.ptp(prot):>12.1f}"
            )
        out.append("  (max ER shown positive; pelvis columns: range during the trial)")
    if reps:
        out.append(f"  {'rep':>4}{'start s':>9}{'depth R':>9}{'depth L':>9}{'IR@bottom R':>13}{'IR@bottom L':>13}{'tilt top':>10}{'tilt bottom':>13}")
        for t0, t1, ev in reps:
            w = window(t0, t1)
            idx = np.flatnonzero(w)
            fr = truth[hip_column("flexion", "right")][idx]
            fl = truth[hip_column("flexion", "left")][idx]
            bottom = idx[np.argmax(fr)]
            tilt = truth[pelvis_column("tilt")]
            out.append(
                f"  {ev.data.get('index', ''):>4}{t0:>9.1f}{fr.max():>9.1f}{fl.max():>9.1f}"
                f"{truth[hip_column('rotation', 'right')][bottom]:>13.1f}{truth[hip_column('rotation', 'left')][bottom]:>13.1f}"
                f"{tilt[idx[0]]:>10.1f}{tilt[bottom]:>13.1f}"
            )
    if not trials and not reps:
        out.append(f"  {'angle':<26}{'min':>8}{'max':>8}")
        for c in [hip_column(q, s) for s in SIDES for q in ("flexion", "adduction", "rotation")] + [
            pelvis_column(q) for q in ("tilt", "obliquity", "rotation")
        ]:
            out.append(f"  {c:<26}{truth[c].min():>8.1f}{truth[c].max():>8.1f}")
    return "\n".join(out)
