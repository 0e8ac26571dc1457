"""Clinical analysis of angle series: rotation tests, squat reps, pelvic
compensation, IR reserve. Arrays in, numbers out; radians inside (degrees only
in :mod:`hipimu.core.norms` and at the user's edge).

Inputs are the pipeline's angles (:class:`hipimu.core.kinematics.Angles` or
anything with ``time_s``, ``hip[side]`` (N, 3: flexion, adduction, IR) and
``pelvis`` (N, 3: tilt, obliquity, rotation)) and the session's events.

Rotation tests (seated, prone). The trials are the recording's
``trial_start``/``trial_end`` events of that test; without them they are
found (:func:`find_rotation_trials`): each excursion of a hip's rotation
beyond ``excursion_rad`` from neutral, the leg that moves (the other hip's
rotation stays near neutral), IR and ER excursions less than ``merge_gap_s``
apart making one trial. Per trial (:class:`RotationTrial`): max IR, max ER
(both positive), arc, seconds held within ``end_range_rad`` of each end,
pelvic compensation (the largest change of tilt, obliquity or rotation from
the trial's start; flagged beyond ``compensation_rad``), and the apparent
IR/ER: the thigh's rotation against the room, i.e. the hip angles with the
pelvis held where it was at the trial's start (what a goniometer on the
shank reads when the pelvis is not watched). Apparent minus true is what the
pelvis contributed.

Squats. Reps are found on the mean hip flexion (:func:`find_squat_reps`):
each excursion above ``rep_flexion_rad``, from where flexion leaves its
standing level (``rep_onset_rad`` above the lowest flexion before the rep)
to where it is back. Per rep and side (:class:`SquatRep`): depth (peak
flexion), IR and adduction at the peak, pelvic tilt at the top (rep start)
and at the bottom (its most posterior while flexion stays within
:data:`BOTTOM_RAD` of the peak: the wink completes while the hips stay
deep), butt wink (the largest anterior tilt before that instant minus the
tilt there), knee flare (abduction and ER gained from the top to the peak),
and IR against flexion during the descent.

IR reserve (:func:`ir_reserve`): per side, the table's max IR (mean over the
rotation trials of one test) minus the IR used at the bottom of the squat
(mean over the reps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, Sequence

import numpy as np

from hipimu.core._arrays import runs
from hipimu.core.conventions import (
    HIP_QUANTITIES,
    PELVIS_QUANTITIES,
    SIDES,
    hip_column,
    pelvis_column,
    hip_angles_rad,
    hip_rotation_from_angles,
    pelvis_rotation_from_angles,
)
from hipimu.core.model import Event, intervals
from hipimu.core.norms import COMPENSATION_DEG, MDC_DEG

__all__ = [
    "AnalysisOptions", "AngleSeries", "RotationTrial", "SquatRep", "SessionAnalysis", "analyze", "angles_from_table",
    "find_rotation_trials", "find_squat_reps", "rotation_trial", "squat_rep", "ir_reserve",
    "side_stats", "symmetry_index", "summarize_trial", "ROTATION_TESTS",
]

ROTATION_TESTS = ("seated_rotation", "prone_rotation")
#: A squat's bottom: hip flexion within this of the rep's peak.
BOTTOM_RAD = math.radians(3.0)


class _Angles(Protocol):
    time_s: np.ndarray
    hip: dict[str, np.ndarray]
    pelvis: np.ndarray


@dataclass(frozen=True)
class AnalysisOptions:
    """Thresholds of the analysis (radians, seconds)."""

    compensation_rad: float = math.radians(COMPENSATION_DEG)
    end_range_rad: float = math.radians(5.0)  #: "held near end range": within this of the trial's max
    excursion_rad: float = math.radians(10.0)  #: a rotation excursion goes beyond this from neutral ...
    neutral_rad: float = math.radians(4.0)  #: ... and starts and ends within this of it
    merge_gap_s: float = 1.8  #: IR and ER excursions closer than this are one trial
    min_excursion_s: float = 0.4
    trial_margin_s: float = 0.25  #: a found trial starts and ends this long before/after its excursions
    rep_flexion_rad: float = math.radians(45.0)  #: a squat rep reaches at least this hip flexion
    rep_onset_rad: float = math.radians(5.0)  #: a rep starts/ends this far above the standing flexion
    baseline_s: float = 0.25  #: the pelvis at a trial's start: its mean over this long
    mdc_rad: float = math.radians(MDC_DEG)

    def __post_init__(self) -> None:
        for name, v in self.__dict__.items():
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"analysis option {name} must be a positive number, got {v!r}")


@dataclass
class RotationTrial:
    """One rotation trial of one side (radians, seconds)."""

    test: str
    side: str
    index: int
    start_s: float
    end_s: float
    found: str  #: "events" or "detected"
    max_ir_rad: float
    max_er_rad: float
    arc_rad: float
    ir_held_s: float
    er_held_s: float
    pelvic_compensation_rad: float
    pelvis_change_rad: np.ndarray  #: (3,) tilt, obliquity, rotation: largest change from the start
    compensating: bool
    apparent_max_ir_rad: float
    apparent_max_er_rad: float
    quality_min: float = math.nan


@dataclass
class SquatRep:
    """One squat rep of one side (radians, seconds)."""

    side: str
    index: int
    start_s: float
    bottom_s: float
    end_s: float
    found: str  #: "detected" (reps are always found in the angles)
    depth_rad: float
    ir_at_bottom_rad: float
    adduction_at_bottom_rad: float
    tilt_top_rad: float
    tilt_bottom_rad: float
    butt_wink_rad: float
    knee_flare_abduction_rad: float
    knee_flare_er_rad: float
    ir_vs_flexion: tuple[np.ndarray, np.ndarray] = field(repr=False, default=(np.zeros(0), np.zeros(0)))
    quality_min: float = math.nan


@dataclass
class SessionAnalysis:
    rotation: list[RotationTrial]
    squat: list[SquatRep]
    sides: list[str]
    options: AnalysisOptions
    notes: list[str] = field(default_factory=list)

    def tests(self) -> list[str]:
        found = [t.test for t in self.rotation] + (["squat"] if self.squat else [])
        return [t for t in (*ROTATION_TESTS, "squat") if t in found]


# ---------------------------------------------------------------------------
# Rotation tests
# ---------------------------------------------------------------------------


def _excursions(t: np.ndarray, rot: np.ndarray, o: AnalysisOptions) -> list[tuple[int, int, int]]:
    """(start, end, sign) index spans where ``rot`` goes beyond ``excursion_rad``,
    widened to where it is back within ``neutral_rad``."""
    out = []
    near = np.abs(rot) <= o.neutral_rad
    for sign in (1, -1):
        for a, b in runs(sign * rot > o.excursion_rad):
            before = np.flatnonzero(near[:a])
            after = np.flatnonzero(near[b:])
            a0 = int(before[-1]) if len(before) else 0
            b0 = b + int(after[0]) if len(after) else len(rot) - 1
            if t[b0] - t[a0] >= o.min_excursion_s:
                out.append((a0, b0, sign))
    out = sorted(set(out))
    merged: list[tuple[int, int, int]] = []
    for span in out:  # a peak that dips inside the band and out again is still one excursion
        if merged and merged[-1][2] == span[2] and span[0] <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], span[1]), span[2])
        else:
            merged.append(span)
    return merged


def find_rotation_trials(angles: _Angles, start_s: float = -math.inf, end_s: float = math.inf,
                         options: AnalysisOptions | None = None) -> list[tuple[str, float, float]]:
    """Rotation trials in ``[start_s, end_s]`` without events: ``(side, start, end)``
    in time order (see the module doc)."""
    o = options or AnalysisOptions()
    t = angles.time_s
    sel = (t >= start_s) & (t <= end_s)
    idx = np.flatnonzero(sel)
    if len(idx) < 2:
        return []
    i0 = int(idx[0])
    tt = t[sel]
    exc = {s: [(a + i0, b + i0, sg) for a, b, sg in _excursions(tt, angles.hip[s][sel, 2], o)] for s in angles.hip}
    spans = []
    for side, lst in exc.items():
        others = [s for s in angles.hip if s != side]
        for a, b, sg in lst:
            peak = float(np.max(np.abs(angles.hip[side][a:b + 1, 2])))
            # the leg that moves: the other hip turning as much at the same time means it is the other's
            if any(float(np.max(np.abs(angles.hip[s][a:b + 1, 2]))) > peak for s in others):
                continue
            spans.append((side, a, b, sg))
    spans.sort(key=lambda x: (x[1], x[0]))
    trials: list[list[tuple[str, int, int, int]]] = []
    for sp in spans:
        cur = trials[-1] if trials else None
        if (cur is not None and cur[-1][0] == sp[0] and t[sp[1]] - t[cur[-1][2]] < o.merge_gap_s
                and sp[3] not in [x[3] for x in cur]):
            cur.append(sp)
        else:
            trials.append([sp])
    out = []
    for tr in trials:
        a = max(float(t[tr[0][1]]) - o.trial_margin_s, float(tt[0]))
        b = min(float(t[tr[-1][2]]) + o.trial_margin_s, float(tt[-1]))
        out.append((tr[0][0], a, b))
    return out


def rotation_trial(angles: _Angles, side: str, start_s: float, end_s: float, *, test: str = "seated_rotation",
                   index: int = 1, found: str = "events", options: AnalysisOptions | None = None,
                   quality: np.ndarray | None = None) -> RotationTrial:
    """The summary of one rotation trial of ``side`` between ``start_s`` and ``end_s``."""
    o = options or AnalysisOptions()
    t = angles.time_s
    m = (t >= start_s) & (t <= end_s)
    if m.sum() < 2:
        raise ValueError(f"the {side} trial {start_s:.1f}-{end_s:.1f} s holds no angles")
    tm = t[m]
    hip = angles.hip[side][m]
    pelvis = angles.pelvis[m]
    rot = hip[:, 2]
    max_ir, max_er = float(max(rot.max(), 0.0)), float(max(-rot.min(), 0.0))
    dt = np.diff(tm, append=tm[-1])  # each sample stands for the time to the next

    def held(values: np.ndarray, peak: float) -> float:
        return float(dt[values >= peak - o.end_range_rad].sum()) if peak > o.excursion_rad else 0.0

    nb = max(int(np.searchsorted(tm, tm[0] + o.baseline_s)), 1)
    base = pelvis[:nb].mean(axis=0)
    change = np.abs(pelvis - base).max(axis=0)
    comp = float(change.max())
    # the thigh against the room: the pelvis held at its start
    p0 = pelvis_rotation_from_angles(np.tile(base, (len(tm), 1)))
    femur_world = pelvis_rotation_from_angles(pelvis) * hip_rotation_from_angles(hip, side)
    apparent = hip_angles_rad(p0, femur_world, side)[:, 2]
    return RotationTrial(
        test=test, side=side, index=index, start_s=float(tm[0]), end_s=float(tm[-1]), found=found,
        max_ir_rad=max_ir, max_er_rad=max_er, arc_rad=max_ir + max_er,
        ir_held_s=held(rot, max_ir), er_held_s=held(-rot, max_er),
        pelvic_compensation_rad=comp, pelvis_change_rad=change, compensating=comp > o.compensation_rad,
        apparent_max_ir_rad=float(max(apparent.max(), 0.0)), apparent_max_er_rad=float(max(-apparent.min(), 0.0)),
        quality_min=float(np.min(quality[m])) if quality is not None else math.nan,
    )


# ---------------------------------------------------------------------------
# Squats
# ---------------------------------------------------------------------------


def find_squat_reps(angles: _Angles, start_s: float = -math.inf, end_s: float = math.inf,
                    options: AnalysisOptions | None = None) -> list[tuple[float, float]]:
    """Squat reps in ``[start_s, end_s]``: ``(start, end)`` in time order (see the module doc)."""
    o = options or AnalysisOptions()
    t = angles.time_s
    sel = np.flatnonzero((t >= start_s) & (t <= end_s))
    if len(sel) < 3:
        return []
    tt = t[sel]
    flex = np.mean([angles.hip[s][sel, 0] for s in angles.hip], axis=0)
    deep = runs(flex > o.rep_flexion_rad)
    reps = []
    prev_end = 0
    for k, (a, b) in enumerate(deep):
        nxt = deep[k + 1][0] if k + 1 < len(deep) else len(flex)
        peak = a + int(np.argmax(flex[a:b]))
        base_before = float(flex[prev_end:peak + 1].min())
        base_after = float(flex[peak:nxt].min())
        below = np.flatnonzero(flex[prev_end:peak] <= base_before + o.rep_onset_rad)
        s0 = prev_end + int(below[-1]) if len(below) else prev_end
        above = np.flatnonzero(flex[peak:nxt] <= base_after + o.rep_onset_rad)
        e0 = peak + int(above[0]) if len(above) else nxt - 1
        reps.append((float(tt[s0]), float(tt[e0])))
        prev_end = e0
    return reps


def squat_rep(angles: _Angles, side: str, start_s: float, end_s: float, *, index: int = 1, found: str = "detected",
              quality: np.ndarray | None = None, flexion_step_rad: float = math.radians(5.0)) -> SquatRep:
    """The summary of one squat rep of ``side`` between ``start_s`` and ``end_s``."""
    t = angles.time_s
    m = (t >= start_s) & (t <= end_s)
    if m.sum() < 3:
        raise ValueError(f"the squat rep {start_s:.1f}-{end_s:.1f} s holds no angles")
    tm, hip, tilt = t[m], angles.hip[side][m], angles.pelvis[m, 0]
    i = int(np.argmax(hip[:, 0]))
    descent = slice(0, i + 1)
    # the bottom: flexion within BOTTOM_RAD of its peak; the pelvis' tilt there is its most
    # posterior (the wink completes while the hips stay deep)
    bottom = np.flatnonzero(hip[:, 0] >= hip[i, 0] - BOTTOM_RAD)
    j = int(bottom[np.argmin(tilt[bottom])])
    # IR against flexion on the way down: flexion made monotonic (its running maximum), on a 5-deg grid
    f_run = np.maximum.accumulate(hip[descent, 0])
    grid = np.arange(math.ceil(f_run[0] / flexion_step_rad), math.floor(f_run[-1] / flexion_step_rad) + 1) * flexion_step_rad
    _, first = np.unique(f_run, return_index=True)
    curve = np.interp(grid, f_run[first], hip[descent, 2][first]) if len(first) > 1 else np.full(len(grid), np.nan)
    return SquatRep(
        side=side, index=index, start_s=float(tm[0]), bottom_s=float(tm[i]), end_s=float(tm[-1]), found=found,
        depth_rad=float(hip[i, 0]), ir_at_bottom_rad=float(hip[i, 2]), adduction_at_bottom_rad=float(hip[i, 1]),
        tilt_top_rad=float(tilt[0]), tilt_bottom_rad=float(tilt[j]),
        butt_wink_rad=float(tilt[:j + 1].max() - tilt[j]),
        knee_flare_abduction_rad=float(-(hip[i, 1] - hip[0, 1])), knee_flare_er_rad=float(-(hip[i, 2] - hip[0, 2])),
        ir_vs_flexion=(grid, curve),
        quality_min=float(np.min(quality[m])) if quality is not None else math.nan,
    )


# ---------------------------------------------------------------------------
# The session
# ---------------------------------------------------------------------------


def task_start_s(events: Sequence[Event], calibration_end_s: float | None = None) -> float:
    """Where the task starts: after the calibration routine (its last phase event, or
    the calibration's windows), else the recording's start."""
    ends = [e.time_s for e in events if e.kind == "phase_end"]
    if calibration_end_s is not None and math.isfinite(calibration_end_s):
        ends.append(calibration_end_s)
    return max(ends) if ends else -math.inf


def analyze(angles: _Angles, events: Sequence[Event], *, test: str | None = None,
            calibration_end_s: float | None = None, quality: np.ndarray | None = None,
            options: AnalysisOptions | None = None) -> SessionAnalysis:
    """Everything of a session: the trials of its events (of any test), or, without
    trial events, the task ``test`` (required then) found after the calibration routine."""
    o = options or AnalysisOptions()
    if quality is None:
        quality = getattr(angles, "quality", None)
    sides = [s for s in SIDES if s in angles.hip]
    if not sides:
        raise ValueError("the session has no thigh sensor: no hip angles to analyse")
    rot: list[RotationTrial] = []
    reps: list[SquatRep] = []
    notes: list[str] = []
    trials = [(a, b, ev) for a, b, ev in intervals(list(events), "trial")]
    if test is not None and trials and not any(ev.label == test for _, _, ev in trials):
        notes.append(f"the recording's trials are {', '.join(sorted({ev.label for _, _, ev in trials}))}, not {test}: "
                     f"the task {test} is looked for after the calibration routine")
        trials = []
    elif test is not None:
        trials = [x for x in trials if x[2].label == test]
    if trials:
        counters: dict[tuple[str, str], int] = {}
        for a, b, ev in trials:
            if ev.label in ROTATION_TESTS:
                side = ev.data.get("side", "both")
                for s in (sides if side in ("both", None, "") else [side]):
                    if s not in sides:
                        notes.append(f"{ev.label} trial at {a:.1f} s: no {s} thigh sensor")
                        continue
                    k = counters[(ev.label, s)] = counters.get((ev.label, s), 0) + 1
                    idx = int(ev.data.get("index") or k)
                    rot.append(rotation_trial(angles, s, a, b, test=ev.label, index=idx, found="events",
                                              options=o, quality=quality))
            elif ev.label == "squat":  # reps are always found in the angles (rep events, if any, are not used)
                reps += _reps(angles, find_squat_reps(angles, a, b, o), sides, "detected", quality,
                              start_index=_next_rep(reps))
    else:
        if test is None:
            raise ValueError("the recording has no trial events: say which test it holds (--test)")
        if test not in (*ROTATION_TESTS, "squat"):
            raise ValueError(f"unknown test {test!r} (known: {', '.join((*ROTATION_TESTS, 'squat'))})")
        t0 = task_start_s(events, calibration_end_s)
        if test == "squat":
            reps += _reps(angles, find_squat_reps(angles, t0, math.inf, o), sides, "detected", quality, 1)
        else:
            counters = {}
            for side, a, b in find_rotation_trials(angles, t0, math.inf, o):
                k = counters[side] = counters.get(side, 0) + 1
                rot.append(rotation_trial(angles, side, a, b, test=test, index=k, found="detected",
                                          options=o, quality=quality))
        if not rot and not reps:
            notes.append(f"no {test} {'reps' if test == 'squat' else 'trials'} found after the calibration routine")
    return SessionAnalysis(rot, reps, sides, o, notes)


def _next_rep(reps: list[SquatRep]) -> int:
    return max((r.index for r in reps), default=0) + 1


def _reps(angles: _Angles, spans: Sequence[tuple[float, float]], sides: list[str], found: str,
          quality: np.ndarray | None, start_index: int) -> list[SquatRep]:
    out = []
    for k, (a, b) in enumerate(spans):
        for s in sides:
            out.append(squat_rep(angles, s, a, b, index=start_index + k, found=found, quality=quality))
    return out


# ---------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------


def side_stats(values: Sequence[float]) -> tuple[int, float, float]:
    """(n, mean, SD) with the sample SD (n - 1; NaN for one value)."""
    v = np.asarray([x for x in values if math.isfinite(x)], dtype=np.float64)
    if not len(v):
        return 0, math.nan, math.nan
    return len(v), float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else math.nan


def symmetry_index(right: float, left: float) -> float:
    """Robinson's symmetry index, %: 100 (R - L) / ((R + L) / 2); 0 is symmetric,
    positive when the right is larger (NaN when undefined)."""
    mean = (right + left) / 2.0
    if not (math.isfinite(mean) and abs(mean) > 1e-12):
        return math.nan
    return 100.0 * (right - left) / mean


def ir_reserve(rotation: Sequence[RotationTrial], squat: Sequence[SquatRep]) -> list[dict[str, Any]]:
    """Per rotation test and side with both: the table's max IR (mean over trials) minus
    the IR at the bottom of the squat (mean over reps), radians."""
    out = []
    for test in ROTATION_TESTS:
        for side in SIDES:
            table = [r.max_ir_rad for r in rotation if r.test == test and r.side == side]
            used = [r.ir_at_bottom_rad for r in squat if r.side == side]
            if table and used:
                t_ir, s_ir = float(np.mean(table)), float(np.mean(used))
                out.append({"test": test, "side": side, "table_ir_rad": t_ir, "squat_ir_rad": s_ir,
                            "reserve_rad": t_ir - s_ir, "n_trials": len(table), "n_reps": len(used)})
    return out


# ---------------------------------------------------------------------------
# One trial (the dashboard's results at a glance)
# ---------------------------------------------------------------------------


def summarize_trial(test: str, hip: dict[str, np.ndarray], pelvis_rad: np.ndarray) -> dict[str, dict[str, float]]:
    """side -> summary of one trial's angles (``test``: seated_rotation, prone_rotation,
    squat or free; free trials get the rotation summary plus the peak flexion).
    Radians; the keys end in ``_rad``."""
    if not len(pelvis_rad):
        raise ValueError("the trial holds no angles")
    n = len(pelvis_rad)
    t = np.arange(n, dtype=np.float64)  # the samples' order is all the summaries use
    out = {}
    for side, a in hip.items():
        ang = AngleSeries(t, {side: a}, pelvis_rad)
        if test == "squat":
            r = squat_rep(ang, side, 0.0, float(n))
            out[side] = {"depth_rad": r.depth_rad, "ir_at_bottom_rad": r.ir_at_bottom_rad,
                         "adduction_at_bottom_rad": r.adduction_at_bottom_rad, "tilt_top_rad": r.tilt_top_rad,
                         "tilt_bottom_rad": r.tilt_bottom_rad, "butt_wink_rad": r.butt_wink_rad,
                         "max_ir_rad": float(a[:, 2].max())}
        else:
            r2 = rotation_trial(ang, side, 0.0, float(n), options=replace(AnalysisOptions(), baseline_s=1.0))
            out[side] = {"max_ir_rad": r2.max_ir_rad, "max_er_rad": r2.max_er_rad, "arc_rad": r2.arc_rad,
                         "pelvic_compensation_rad": r2.pelvic_compensation_rad,
                         "pelvis_tilt_change_rad": float(r2.pelvis_change_rad[0]),
                         "pelvis_obliquity_change_rad": float(r2.pelvis_change_rad[1]),
                         "pelvis_rotation_change_rad": float(r2.pelvis_change_rad[2])}
            if test == "free":
                out[side]["max_flexion_rad"] = float(a[:, 0].max())
    return out


@dataclass
class AngleSeries:
    """Plain angle arrays (radians, time on axis 0): what the analysis reads."""

    time_s: np.ndarray
    hip: dict[str, np.ndarray]
    pelvis: np.ndarray


def angles_from_table(table: dict[str, np.ndarray]) -> AngleSeries:
    """An angle table in degrees (the columns of :func:`hipimu.core.pipeline.angle_table_deg`,
    or the simulator's truth) as radians, hip angles for the sides it has."""
    hip = {s: np.radians(np.column_stack([table[hip_column(q, s)] for q in HIP_QUANTITIES]))
           for s in SIDES if hip_column("flexion", s) in table}
    pelvis = np.radians(np.column_stack([table[pelvis_column(q)] for q in PELVIS_QUANTITIES]))
    return AngleSeries(np.asarray(table["time_s"], dtype=np.float64), hip, pelvis)
