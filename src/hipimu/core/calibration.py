"""Anatomical (sensor-to-segment) calibration from the clinician's routine.

The routine (docs/calibration.md): stand still; two slow hip hinges; three slow
knee lifts per instrumented leg; stand still. From it, for every sensor,
whatever its mounting:

* the segment's **vertical (Y) axis** in the sensor frame: gravity while
  standing (the segments are upright then);
* the segment's **mediolateral (Z) axis**: the principal axis of the segment's
  own angular velocity -- the pelvis in the hip hinges, each thigh in its knee
  lifts -- with its sign from the known direction of the movement (a hinge
  tips the pelvis forward, a knee lift flexes the hip);
* X = Y x Z (anterior), after making Z exactly perpendicular to Y;
* each sensor's **heading offset**: in 6D every sensor's world has its own
  heading; while standing all segment frames point the same way (all hip
  angles are zero there by definition), which aligns them.

Everything is pure numpy/scipy on arrays: orientations in, a
:class:`AnatomicalCalibration` out. Failures are :class:`CalibrationError`
with a one-line message a clinician can act on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from hipimu.core._arrays import moving_average, runs, wrap_rad
from hipimu.core.conventions import ROLES
from hipimu.core.model import Event
from hipimu.core.orientation import Orientation
from hipimu.errors import HipimuError

__all__ = [
    "CalibrationError",
    "CalibrationWindows",
    "SegmentCalibration",
    "AnatomicalCalibration",
    "find_windows",
    "calibrate",
    "heading_about_vertical",
]

UP = np.array([0.0, 1.0, 0.0])

#: Gates. A movement must turn its segment at least this far (deg).
MIN_EXCURSION_DEG = 20.0
#: The functional axis must be within this of horizontal while standing (deg).
MAX_AXIS_TILT_DEG = 10.0
#: Standing still: mean angular rate below this (deg/s).
MAX_STILL_RATE_DEG_S = 5.0


class CalibrationError(HipimuError):
    """The anatomical calibration cannot be trusted; the message says what to redo."""


@dataclass(frozen=True)
class CalibrationWindows:
    """Time windows (s, session time base) of the routine's parts.

    ``static``: standing still. ``functional``: role -> the window in which
    that segment's own movement defines its mediolateral axis (pelvis: the
    hinges; thighs: their knee lifts). ``found``: how they were obtained
    ("events", "given", "detected").
    """

    static: tuple[float, float]
    functional: dict[str, tuple[float, float]]
    found: str

    @property
    def end_s(self) -> float:
        """Where the routine ends: the last of its windows' ends."""
        return max([self.static[1], *(b for _, b in self.functional.values())])


@dataclass
class SegmentCalibration:
    """Calibration of one sensor: ``segment_in_sensor`` maps segment-frame
    vectors into the sensor frame (its columns are the segment's X, Y, Z axes
    in sensor coordinates); ``heading_offset_rad`` turns the sensor's world
    about the vertical into the common world (the pelvis sensor's)."""

    role: str
    segment_in_sensor: Rotation
    heading_offset_rad: float
    axis_tilt_deg: float  # functional axis vs horizontal while standing
    planarity_deg: float  # spread of the angular velocity around its axis
    excursion_deg: float  # how far the functional movement turned the segment

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "segment_in_sensor_wxyz": self.segment_in_sensor.as_quat(canonical=True, scalar_first=True).tolist(),
            "segment_axes_in_sensor": self.segment_in_sensor.as_matrix().T.tolist(),  # rows: X, Y, Z
            "heading_offset_deg": float(np.degrees(self.heading_offset_rad)),
            "axis_tilt_deg": self.axis_tilt_deg,
            "planarity_deg": self.planarity_deg,
            "excursion_deg": self.excursion_deg,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SegmentCalibration":
        return cls(
            d["role"],
            Rotation.from_quat(d["segment_in_sensor_wxyz"], scalar_first=True),
            float(np.radians(d["heading_offset_deg"])),
            float(d["axis_tilt_deg"]),
            float(d["planarity_deg"]),
            float(d["excursion_deg"]),
        )


@dataclass
class AnatomicalCalibration:
    """The whole calibration: per-role :class:`SegmentCalibration`, the pelvis
    reference orientation (standing, common world), the windows used, and a
    grade: A (axes within 3 deg of ideal), B (6 deg), C (10 deg)."""

    segments: dict[str, SegmentCalibration]
    reference_pelvis: Rotation
    windows: CalibrationWindows
    grade: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "grade": self.grade,
            "notes": list(self.notes),
            "static_s": list(self.windows.static),
            "functional_s": {r: list(w) for r, w in self.windows.functional.items()},
            "windows_found_by": self.windows.found,
            "reference_pelvis_wxyz": self.reference_pelvis.as_quat(canonical=True, scalar_first=True).tolist(),
            "segments": {r: s.to_dict() for r, s in self.segments.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "AnatomicalCalibration":
        return cls(
            {r: SegmentCalibration.from_dict(s) for r, s in d["segments"].items()},
            Rotation.from_quat(d["reference_pelvis_wxyz"], scalar_first=True),
            CalibrationWindows(tuple(d["static_s"]), {r: tuple(w) for r, w in d["functional_s"].items()}, d["windows_found_by"]),
            d["grade"],
            list(d.get("notes", [])),
        )


# ----------------------------------------------------------------------------
# Finding the routine's windows
# ----------------------------------------------------------------------------

_PHASE_OF_ROLE = {"pelvis": "hip_hinge", "thigh_right": "knee_lift_right", "thigh_left": "knee_lift_left"}


def _windows_from_events(events: list[Event], roles: list[str]) -> CalibrationWindows | None:
    spans: dict[str, tuple[float, float]] = {}
    open_: dict[str, float] = {}
    for e in events:
        if e.kind == "phase_start":  # a phase done again replaces the earlier one
            open_[e.label] = e.time_s
        elif e.kind == "phase_end" and e.label in open_:
            spans[e.label] = (open_.pop(e.label), e.time_s)
    if "stand" not in spans or not all(_PHASE_OF_ROLE[r] in spans for r in roles):
        return None
    return CalibrationWindows(spans["stand"], {r: spans[_PHASE_OF_ROLE[r]] for r in roles}, "events")


def _steps(r: Rotation, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Body-frame rotation vectors (rad) between consecutive orientations and
    the intervals (s, never zero): ``rotvec / dt`` is the angular velocity in
    the sensor frame, with the filter's bias estimate already removed."""
    return (r[:-1].inv() * r[1:]).as_rotvec(), np.maximum(np.diff(t), 1e-9)


def _rotation(o: Orientation, sel: slice | np.ndarray) -> Rotation:
    """``o.rotation()[sel]``, converting only the selected samples (a long
    recording holds millions; the result is the same, bit for bit)."""
    return Rotation.from_quat(o.quat_wxyz[sel], scalar_first=True)


def _rate_deg_s(o: Orientation, grid: np.ndarray) -> np.ndarray:
    """Angular speed of a sensor (deg/s) on ``grid`` (increasing), from its
    orientation. Only the samples up to the first at or after the grid's end
    take part: the interpolation never looks further (same result as with the
    whole recording)."""
    k = min(max(int(np.searchsorted(o.time_s, grid[-1])) + 1, 2), len(o)) if grid.size else len(o)
    rv, dt = _steps(_rotation(o, slice(0, k)), o.time_s[:k])
    return np.interp(grid, o.time_s[1:k], np.degrees(np.linalg.norm(rv, axis=1) / dt))


def find_windows(
    orientations: dict[str, Orientation],
    events: list[Event] | None = None,
    *,
    static: tuple[float, float] | None = None,
    functional: tuple[float, float] | None = None,
) -> CalibrationWindows:
    """The routine's windows: given explicitly, from phase events, or detected.

    Detection looks at the first minutes of the recording: the first >= 2 s in
    which every sensor is still is the standing phase; afterwards the pelvis
    sensor's own movement (thighs nearly still) is the hinge, and each thigh's
    movement (other thigh nearly still) its knee lifts.
    """
    roles = [r for r in ROLES if r in orientations]
    if "pelvis" not in roles:
        raise CalibrationError("no pelvis sensor: hip and pelvis angles need one on the sacrum")
    if static is not None or functional is not None:
        if static is None or functional is None:
            raise CalibrationError("give both --static A:B and --functional C:D, or neither")
        for name, (a, b) in (("static", static), ("functional", functional)):
            if not b > a:
                raise CalibrationError(f"--{name} {a:g}:{b:g}: the end must be after the start")
        return CalibrationWindows(static, {r: functional for r in roles}, "given")
    if events:
        w = _windows_from_events(events, roles)
        if w is not None:
            return w
    return _detect_windows(orientations, roles)


def _detect_windows(orientations: dict[str, Orientation], roles: list[str]) -> CalibrationWindows:
    t0 = max(float(o.time_s[0]) for o in orientations.values())
    t1 = min(float(o.time_s[-1]) for o in orientations.values())
    t1 = min(t1, t0 + 120.0)  # the routine is at the start (_rate_deg_s reads no further)
    grid = np.arange(t0, t1, 0.02)
    if grid.size < 200:
        raise CalibrationError("the recording is too short to hold the calibration routine")
    rate = {r: moving_average(_rate_deg_s(orientations[r], grid), 25) for r in roles}
    still = np.all([rate[r] < MAX_STILL_RATE_DEG_S for r in roles], axis=0)
    static_runs = [(a, b) for a, b in runs(still) if grid[b - 1] - grid[a] >= 2.0]
    if not static_runs:
        raise CalibrationError("found no standing-still phase (>= 2 s, all sensors still) at the start: stand still for 3 s, then start the routine")
    sa, sb = static_runs[0]
    static = (float(grid[sa]), float(grid[sb - 1]))
    after = grid > static[1]
    functional: dict[str, tuple[float, float]] = {}
    moving = 30.0  # deg/s: a deliberate movement
    for r in roles:
        others = [o for o in roles if o != r and (r == "pelvis" or o != "pelvis")]
        own = after & (rate[r] > moving)
        for o in others:
            own &= rate[o] < 0.5 * rate[r]
        moves = [(a, b) for a, b in runs(own) if grid[b - 1] - grid[a] >= 0.3]
        if not moves:
            what = "hip hinges" if r == "pelvis" else f"knee lifts of the {ROLES[r].side} leg"
            raise CalibrationError(f"found no {what} after the standing phase: repeat the routine")
        # the first cluster of runs (gaps under 3 s belong together)
        first_a, last_b = moves[0]
        for a, b in moves[1:]:
            if grid[a] - grid[last_b - 1] > 3.0:
                break
            last_b = b
        functional[r] = (float(grid[first_a]) - 0.5, float(grid[last_b - 1]) + 0.5)
    return CalibrationWindows(static, functional, "detected")


# ----------------------------------------------------------------------------
# Axes
# ----------------------------------------------------------------------------


def _between(o: Orientation, w: tuple[float, float]) -> np.ndarray:
    return (o.time_s >= w[0]) & (o.time_s <= w[1]) & ~o.filled


def heading_about_vertical(v_world: np.ndarray) -> float:
    """Heading (rad) of a vector's horizontal part: angle from world +X
    towards world -Z about +Y (right-hand rule about the vertical)."""
    return float(np.arctan2(-v_world[..., 2], v_world[..., 0]))


def _functional_axis(rot: Rotation, time_s: np.ndarray, sign_of_first_move: float) -> tuple[np.ndarray, float, float]:
    """Principal angular-velocity axis (sensor frame) of the orientations
    ``rot`` at ``time_s``, signed so that the movement's main excursion is
    ``sign_of_first_move`` about it.

    Returns (unit axis, planarity deg, excursion deg)."""
    rv, dt = _steps(rot, time_s)
    omega = rv / dt[:, None]
    u, s, vt = np.linalg.svd(omega, full_matrices=False)
    axis = vt[0]
    planarity = float(np.degrees(np.arctan2(s[1], s[0])))
    theta = np.cumsum(rv @ axis)  # rotation about the axis since the window start, rad
    k = int(np.argmax(np.abs(theta)))
    excursion = float(np.degrees(abs(theta[k])))
    if np.sign(theta[k]) != sign_of_first_move:
        axis = -axis
    return axis, planarity, excursion


def _window_span(o: Orientation, w: tuple[float, float]) -> slice:
    idx = np.flatnonzero(_between(o, w))
    if idx.size < 20:
        raise CalibrationError(f"{o.role}: too few samples in the functional window {w[0]:.1f}-{w[1]:.1f} s")
    return slice(idx[0], idx[-1] + 1)


def _relative_to_pelvis(thigh: Orientation, pelvis: Orientation, span: slice, yaw_rad: float) -> Rotation:
    """The thigh sensor's orientation relative to the pelvis sensor over
    ``span`` (thigh samples), the thigh's world turned by ``yaw_rad`` about the
    vertical into the pelvis sensor's world."""
    pt = pelvis.time_s
    t = np.clip(thigh.time_s[span], pt[0], pt[-1])
    # Slerp only over the pelvis samples around the window: from the start of
    # the interval holding t[0] (Slerp's searchsorted(side="left") - 1) to the
    # end of the one holding t[-1]; every instant then falls in the same
    # interval as with the whole recording, and the result is bit-identical.
    i0 = max(int(np.searchsorted(pt, t[0])) - 1, 0)
    i1 = min(max(int(np.searchsorted(pt, t[-1])) + 1, i0 + 2), len(pt))
    p = Slerp(pt[i0:i1], _rotation(pelvis, slice(i0, i1)))(t)
    yaw = Rotation.from_rotvec(yaw_rad * UP)
    return p.inv() * yaw * _rotation(thigh, span)


def _segment_in_sensor(y_s: np.ndarray, a: np.ndarray) -> Rotation:
    """Segment frame with Y = ``y_s`` and Z = the part of ``a`` perpendicular to it."""
    z_s = a - (a @ y_s) * y_s
    z_s /= np.linalg.norm(z_s)
    return Rotation.from_matrix(np.column_stack([np.cross(y_s, z_s), y_s, z_s]))


def calibrate(orientations: dict[str, Orientation], windows: CalibrationWindows) -> AnatomicalCalibration:
    """Compute the anatomical calibration; raise :class:`CalibrationError` on a
    failed quality gate."""
    roles = [r for r in ROLES if r in orientations]
    if "pelvis" not in roles:
        raise CalibrationError("no pelvis sensor: hip and pelvis angles need one on the sacrum")
    notes: list[str] = []
    _check_motion_assignment(orientations, windows, roles)
    segments: dict[str, SegmentCalibration] = {}
    seg_world_static: dict[str, Rotation] = {}
    worst_tilt = 0.0
    r_statics: dict[str, Rotation] = {}
    for r in roles:
        o = orientations[r]
        ms = _between(o, windows.static)
        if ms.sum() < 20:
            raise CalibrationError(f"too few {r} samples in the standing window {windows.static[0]:.1f}-{windows.static[1]:.1f} s")
        r_static = r_statics[r] = _rotation(o, ms)
        rv, dt = _steps(r_static, o.time_s[ms])
        # the angle turned over the time it took (not the mean of per-sample rates: live
        # sample times carry the clock fit's jitter, and a short interval inflates its rate)
        rate = float(np.degrees(np.linalg.norm(rv, axis=1).sum() / dt.sum()))
        if rate > MAX_STILL_RATE_DEG_S:
            raise CalibrationError(f"the subject was not still during the standing phase ({r} turned {rate:.0f} deg/s on average): stand still for 3 s")
        y_s = r_static.inv().apply(UP).mean(axis=0)
        y_s /= np.linalg.norm(y_s)
        # a hinge tips the pelvis forward: a negative turn about +Z; a knee lift flexes the hip: positive
        sign = -1.0 if r == "pelvis" else 1.0
        span = _window_span(o, windows.functional[r])
        a, planarity, excursion = _functional_axis(_rotation(o, span), o.time_s[span], sign)
        if excursion < MIN_EXCURSION_DEG:
            what = "hip hinges" if r == "pelvis" else f"{ROLES[r].side} knee lifts"
            raise CalibrationError(f"too little motion in the {what}: {r} turned {excursion:.0f} deg, needs >= {MIN_EXCURSION_DEG:.0f}; repeat them slower and larger")
        tilt = float(np.degrees(np.arcsin(np.clip(abs(a @ y_s), 0, 1))))
        if tilt > MAX_AXIS_TILT_DEG:
            raise CalibrationError(
                f"{r}: the movement axis is {tilt:.0f} deg from horizontal (max {MAX_AXIS_TILT_DEG:.0f}); "
                + ("bow straight forward from the hips" if r == "pelvis" else "lift the knee straight forward")
            )
        worst_tilt = max(worst_tilt, tilt, planarity)
        seg_in_sensor = _segment_in_sensor(y_s, a)
        seg_world_static[r] = (r_static * seg_in_sensor).mean()
        segments[r] = SegmentCalibration(r, seg_in_sensor, 0.0, tilt, planarity, excursion)
    _align_headings(segments, seg_world_static)
    # Second pass: a knee lift also tips the pelvis a little (posterior tilt,
    # obliquity); the hip's flexion axis is the thigh's turn relative to the
    # pelvis, which needs the headings of the first pass (their error only
    # turns the small pelvic part, a second-order effect).
    for r in roles:
        if r == "pelvis":
            continue
        o = orientations[r]
        span = _window_span(o, windows.functional[r])
        yaw = segments[r].heading_offset_rad - segments["pelvis"].heading_offset_rad
        rel = _relative_to_pelvis(o, orientations["pelvis"], span, yaw)
        a, _, _ = _functional_axis(rel, o.time_s[span], 1.0)
        seg = segments[r]
        seg.segment_in_sensor = _segment_in_sensor(seg.segment_in_sensor.apply(UP), a)
        seg_world_static[r] = (r_statics[r] * seg.segment_in_sensor).mean()
    _align_headings(segments, seg_world_static)
    reference = seg_world_static["pelvis"]
    grade = "A" if worst_tilt < 3 else "B" if worst_tilt < 6 else "C"
    if grade != "A":
        notes.append(f"axes up to {worst_tilt:.1f} deg from ideal")
    return AnatomicalCalibration(segments, reference, windows, grade, notes)


def _align_headings(segments: dict[str, SegmentCalibration], seg_world_static: dict[str, Rotation]) -> None:
    """Every segment points like the pelvis while standing: set the heading offsets."""
    pelvis_heading = heading_about_vertical(seg_world_static["pelvis"].apply([1.0, 0.0, 0.0]))
    for r, seg in segments.items():
        h = heading_about_vertical(seg_world_static[r].apply([1.0, 0.0, 0.0]))
        seg.heading_offset_rad = float(wrap_rad(pelvis_heading - h))


def _excursion_deg(o: Orientation, w: tuple[float, float]) -> float:
    m = _between(o, w)
    if m.sum() < 2:
        return 0.0
    r = _rotation(o, m)
    return float(np.degrees(np.max(np.linalg.norm((r[0].inv() * r).as_rotvec(), axis=1))))


def _check_motion_assignment(orientations: dict[str, Orientation], windows: CalibrationWindows, roles: list[str]) -> None:
    """The segment meant to move in each functional window must move most."""
    if windows.found == "given":
        return  # one window for everything: nothing to compare
    for r in roles:
        w = windows.functional[r]
        exc = {o: _excursion_deg(orientations[o], w) for o in roles}
        biggest = max(exc, key=exc.get)
        if biggest == r:
            continue
        if r == "pelvis":
            raise CalibrationError(
                f"during the hip hinges the {biggest} sensor turned most ({exc[biggest]:.0f} deg vs pelvis {exc[r]:.0f}): "
                f"are the pelvis and {biggest} sensors swapped?"
            )
        if biggest == "pelvis":
            raise CalibrationError(
                f"during the {ROLES[r].side} knee lifts the pelvis sensor turned most ({exc[biggest]:.0f} deg vs {r} {exc[r]:.0f}): "
                f"are the pelvis and {r} sensors swapped?"
            )
        raise CalibrationError(
            f"during the {ROLES[r].side} knee lifts the {ROLES[biggest].side} leg moved ({exc[biggest]:.0f} deg vs {exc[r]:.0f}): "
            f"lift the {ROLES[r].side} knee, or check that the thigh sensors are not swapped"
        )
