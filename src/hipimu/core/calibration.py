"""Anatomical (sensor-to-segment) calibration: its result types and the
clinician's routine (the other methods: :mod:`hipimu.core.calibration_walk`,
:mod:`hipimu.core.calibration_seated`; the choice among them:
:mod:`hipimu.core.calibration_select`).

The routine (docs/calibration.md): stand still; two slow hip hinges; three slow
knee lifts per instrumented leg; stand still. From it, for every sensor,
whatever its mounting:

* the segment's **vertical (Y) axis** in the sensor frame: gravity while
  standing (the segments are upright then);
* the segment's **mediolateral (Z) axis**: the principal axis of the segment's
  own angular velocity -- the pelvis in the hip hinges, each thigh in its knee
  lifts -- with its sign from the posture (the excursion away from standing
  is anterior tilt for the pelvis, flexion for a thigh), blended with the
  sensor's mounting where one is known, weighted by how well each is observed;
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
from scipy.spatial.transform import Rotation

from hipimu.core._arrays import moving_average, runs
from hipimu.core.conventions import ROLES
from hipimu.core.model import Event
from hipimu.core.orientation import Orientation
from hipimu.core.segment_axes import (
    SKIN_NORMAL_IN_SEGMENT,
    UP,
    Mount,
    between,
    blend_horizontal,
    frame_from_y_z,
    heading_about_vertical,
    heading_offsets,
    mean_turn_rate_deg_s,
    principal_axis,
    relative_to_pelvis,
    rotations,
    sign_by_posture,
    sign_by_tilt,
    steps,
    vertical_in_sensor,
)
from hipimu.errors import HipimuError

__all__ = [
    "CalibrationError",
    "CalibrationWindows",
    "SegmentCalibration",
    "AnatomicalCalibration",
    "METHODS",
    "find_windows",
    "calibrate",
    "heading_about_vertical",
    "check_mounting",
    "mount_estimate",
    "still_posture",
    "rate_deg_s",
    "first_still",
    "own_movement_window",
    "closing_still",
    "body_roles",
    "detection_grid",
    "window_span",
    "relative_still",
    "blend_with_mount",
    "set_headings",
    "align_headings",
    "axis_tilt_deg",
    "phase_spans",
]

#: The calibration methods, best first (docs/calibration.md).
METHODS = ("routine", "walk", "seated", "static")

#: Gates. A movement must turn its segment at least this far (deg).
MIN_EXCURSION_DEG = 20.0
#: The functional axis must be within this of horizontal while standing (deg).
MAX_AXIS_TILT_DEG = 10.0
#: Standing still: mean angular rate below this (deg/s).
MAX_STILL_RATE_DEG_S = 5.0


#: A direction from a sensor's mounting is this uncertain (deg): straps tilt
#: the board on the skin by up to ~20 deg and a thigh is round.
MOUNT_SD_DEG = 15.0


class CalibrationError(HipimuError):
    """The anatomical calibration cannot be trusted; the message says what to redo.

    ``phase``: the part of the recording or routine at fault (``stand``,
    ``hip_hinge``, ``knee_lift_right``, ``walk``, ``sit``, ...; None: not one
    part); ``gate``: which check failed (``still``, ``motion``, ``axis_tilt``,
    ``wrong_leg``, ``swapped``, ``not_found``, ``mounting`` (not known),
    ``mounting_contradiction`` (the data contradict it: upside down), ``input``)."""

    def __init__(self, message: str, *, phase: str | None = None, gate: str = "input") -> None:
        super().__init__(message)
        self.phase = phase
        self.gate = gate


@dataclass(frozen=True)
class CalibrationWindows:
    """Time windows (s, session time base) of the routine's parts.

    ``static``: standing (or, ``seated``, sitting) still. ``functional``:
    role -> the window in which that segment's movement defines its
    mediolateral axis (routine: the pelvis's hinges, each thigh's knee lifts;
    walk: the straight walking; seated: the seated hip lifts); roles without
    one take their axis from the mounting. ``found``: how they were obtained
    ("events", "given", "detected"). ``final``: the closing still posture of
    the routine (``stand_final``, ``sit_final``), or None: the headings are
    aligned there, nearest the test (without a magnetometer they drift apart
    during the movements in between).
    """

    static: tuple[float, float]
    functional: dict[str, tuple[float, float]]
    found: str
    final: tuple[float, float] | None = None

    @property
    def aligned_s(self) -> float:
        """Where the headings were aligned: the closing still posture, else the first."""
        return (self.final or self.static)[0]

    @property
    def end_s(self) -> float:
        """Where the routine ends: the last of its windows' ends."""
        return max([self.static[1], *(b for _, b in self.functional.values()), *(self.final or ())])


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
    reference orientation (standing, common world), the windows used, the
    ``method`` (:data:`METHODS`) and a grade: A (axes within 3 deg of ideal),
    B (6 deg), C (10 deg), D (axes from the mounting alone: flagged)."""

    segments: dict[str, SegmentCalibration]
    reference_pelvis: Rotation
    windows: CalibrationWindows
    grade: str
    notes: list[str] = field(default_factory=list)
    method: str = "routine"

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "method": self.method,
            "grade": self.grade,
            "notes": list(self.notes),
            "static_s": list(self.windows.static),
            "functional_s": {r: list(w) for r, w in self.windows.functional.items()},
            "windows_found_by": self.windows.found,
            "final_s": list(self.windows.final) if self.windows.final else None,
            "reference_pelvis_wxyz": self.reference_pelvis.as_quat(canonical=True, scalar_first=True).tolist(),
            "segments": {r: s.to_dict() for r, s in self.segments.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "AnatomicalCalibration":
        return cls(
            {r: SegmentCalibration.from_dict(s) for r, s in d["segments"].items()},
            Rotation.from_quat(d["reference_pelvis_wxyz"], scalar_first=True),
            CalibrationWindows(tuple(d["static_s"]), {r: tuple(w) for r, w in d["functional_s"].items()}, d["windows_found_by"],
                               tuple(d["final_s"]) if d.get("final_s") else None),
            d["grade"],
            list(d.get("notes", [])),
            d.get("method", "routine"),
        )


# ----------------------------------------------------------------------------
# Finding the routine's windows
# ----------------------------------------------------------------------------

_PHASE_OF_ROLE = {"pelvis": "hip_hinge", "thigh_right": "knee_lift_right", "thigh_left": "knee_lift_left"}


def phase_spans(events: list[Event] | None) -> dict[str, tuple[float, float]]:
    """Calibration phase label -> (start, end) s from ``phase_start``/``phase_end``
    events; a phase done again replaces the earlier one."""
    spans: dict[str, tuple[float, float]] = {}
    open_: dict[str, float] = {}
    for e in events or []:
        if e.kind == "phase_start":
            open_[e.label] = e.time_s
        elif e.kind == "phase_end" and e.label in open_:
            spans[e.label] = (open_.pop(e.label), e.time_s)
    return spans


def _windows_from_events(events: list[Event], roles: list[str]) -> CalibrationWindows | None:
    spans = phase_spans(events)
    if "stand" not in spans or not all(_PHASE_OF_ROLE[r] in spans for r in roles):
        return None
    return CalibrationWindows(spans["stand"], {r: spans[_PHASE_OF_ROLE[r]] for r in roles}, "events", spans.get("stand_final"))


def rate_deg_s(o: Orientation, grid: np.ndarray) -> np.ndarray:
    """Angular speed of a sensor (deg/s) on ``grid`` (increasing), from its
    orientation. Only the samples up to the first at or after the grid's end
    take part: the interpolation never looks further (same result as with the
    whole recording)."""
    k = min(max(int(np.searchsorted(o.time_s, grid[-1])) + 1, 2), len(o)) if grid.size else len(o)
    rv, dt = steps(rotations(o, slice(0, k)), o.time_s[:k])
    return np.interp(grid, o.time_s[1:k], np.degrees(np.linalg.norm(rv, axis=1) / dt))


def find_windows(orientations: dict[str, Orientation], events: list[Event] | None = None) -> CalibrationWindows:
    """The routine's windows: from phase events, or detected (windows given
    by the user are :mod:`hipimu.core.calibration_select`'s to take).

    Detection looks at the first minutes of the recording: the first >= 2 s in
    which every sensor is still is the standing phase; afterwards the pelvis
    sensor's own movement (thighs nearly still) is the hinge, and each thigh's
    movement (other thigh nearly still) its knee lifts.
    """
    roles = [r for r in ROLES if r in orientations]
    if "pelvis" not in roles:
        raise CalibrationError("no pelvis sensor: hip and pelvis angles need one on the sacrum", gate="input")
    if events:
        w = _windows_from_events(events, roles)
        if w is not None:
            return w
    return _detect_windows(orientations, roles)


def first_still(grid: np.ndarray, rate: dict[str, np.ndarray], min_s: float = 2.0) -> tuple[float, float] | None:
    """The first stretch (s) of >= ``min_s`` in which every sensor's averaged
    rate (``rate``: role -> deg/s on ``grid``) is below the stillness gate."""
    still = np.all([v < MAX_STILL_RATE_DEG_S for v in rate.values()], axis=0)
    found = [(a, b) for a, b in runs(still) if grid[b - 1] - grid[a] >= min_s]
    return (float(grid[found[0][0]]), float(grid[found[0][1] - 1])) if found else None


def detection_grid(orientations: dict[str, Orientation], limit_s: float) -> np.ndarray:
    """The 20-ms grid on which the methods look for their windows: where every
    sensor recorded, at most ``limit_s`` from the start (nothing later is read)."""
    t0 = max(float(o.time_s[0]) for o in orientations.values())
    t1 = min(min(float(o.time_s[-1]) for o in orientations.values()), t0 + limit_s)
    return np.arange(t0, t1, 0.02)


def _detect_windows(orientations: dict[str, Orientation], roles: list[str]) -> CalibrationWindows:
    grid = detection_grid(orientations, 120.0)  # the routine is at the start (rate_deg_s reads no further)
    if grid.size < 200:
        raise CalibrationError("the recording is too short to hold the calibration routine", gate="not_found")
    rate = {r: moving_average(rate_deg_s(orientations[r], grid), 25) for r in roles}
    static = first_still(grid, rate)
    if static is None:
        raise CalibrationError("found no standing-still phase (>= 2 s, all sensors still) at the start: stand still for 3 s, then start the routine",
                               phase="stand", gate="not_found")
    after = grid > static[1]
    functional: dict[str, tuple[float, float]] = {}
    moving = 30.0  # deg/s: a deliberate movement
    for r in roles:
        others = [o for o in roles if o != r and (r == "pelvis" or o != "pelvis")]
        w = own_movement_window(grid, rate, r, others, after, moving)
        if w is None:
            what = "hip hinges" if r == "pelvis" else f"knee lifts of the {ROLES[r].side} leg"
            raise CalibrationError(f"found no {what} after the standing phase: repeat the routine", phase=_PHASE_OF_ROLE[r], gate="not_found")
        functional[r] = w
    return CalibrationWindows(static, functional, "detected", closing_still(grid, rate, max(b for _, b in functional.values())))


def closing_still(grid: np.ndarray, rate: dict[str, np.ndarray], after_s: float, within_s: float = 6.0) -> tuple[float, float] | None:
    """The closing still posture of a routine: the first >= 1.5 s with every
    sensor still that starts within ``within_s`` after ``after_s``."""
    m = grid > after_s
    w = first_still(grid[m], {r: v[m] for r, v in rate.items()}, 1.5) if m.sum() > 1 else None
    return w if w is not None and w[0] - after_s <= within_s else None


def own_movement_window(grid: np.ndarray, rate: dict[str, np.ndarray], role: str, others: list[str], allowed: np.ndarray,
                        moving_deg_s: float) -> tuple[float, float] | None:
    """The window (s) of ``role``'s own movements: where (``allowed``) it turns
    faster than ``moving_deg_s`` and every one of ``others`` at most half as
    fast; the first cluster of such runs (>= 0.3 s each, gaps under 3 s belong
    together), widened by 0.5 s at both ends. None when there is none."""
    own = allowed & (rate[role] > moving_deg_s)
    for o in others:
        own &= rate[o] < 0.5 * rate[role]
    moves = [(a, b) for a, b in runs(own) if grid[b - 1] - grid[a] >= 0.3]
    if not moves:
        return None
    first_a, last_b = moves[0]
    for a, b in moves[1:]:
        if grid[a] - grid[last_b - 1] > 3.0:
            break
        last_b = b
    return float(grid[first_a]) - 0.5, float(grid[last_b - 1]) + 0.5


# ----------------------------------------------------------------------------
# Axes
# ----------------------------------------------------------------------------


def window_span(o: Orientation, w: tuple[float, float], phase: str | None) -> slice:
    """The span of ``o``'s samples in window ``w``; raises when it holds fewer than 20."""
    idx = np.flatnonzero(between(o, w))
    if idx.size < 20:
        raise CalibrationError(f"{o.role}: too few samples in the window {w[0]:.1f}-{w[1]:.1f} s", phase=phase, gate="not_found")
    return slice(idx[0], idx[-1] + 1)


def still_posture(o: Orientation, w: tuple[float, float], what: str = "standing", phase: str = "stand") -> Rotation:
    """The sensor's orientations in a still window; raises when it moved."""
    ms = between(o, w)
    if ms.sum() < 20:
        raise CalibrationError(f"too few {o.role} samples in the {what} window {w[0]:.1f}-{w[1]:.1f} s", phase=phase, gate="not_found")
    r = rotations(o, ms)
    rate = mean_turn_rate_deg_s(r, o.time_s[ms])
    if rate > MAX_STILL_RATE_DEG_S:
        verb = "stand" if what == "standing" else "sit"
        raise CalibrationError(f"the subject was not still during the {what} phase ({o.role} turned {rate:.0f} deg/s on average): {verb} still for 3 s",
                               phase=phase, gate="still")
    return r


def body_roles(orientations: dict[str, Orientation], method: str) -> tuple[list[str], list[str]]:
    """(roles, thighs) of a recording, in :data:`ROLES` order; raises unless
    there is a pelvis sensor and at least one thigh sensor."""
    roles = [r for r in ROLES if r in orientations]
    thighs = [r for r in roles if r != "pelvis"]
    if "pelvis" not in roles or not thighs:
        raise CalibrationError(f"{method}: needs a pelvis sensor and at least one thigh sensor")
    return roles, thighs


def mount_estimate(role: str, mount: Mount | None, y_s: np.ndarray) -> tuple[np.ndarray, float] | None:
    """The segment's Z (sensor frame) from the declared mounting, with its sd
    (deg), given the vertical ``y_s``: the skin normal is lateral on a thigh,
    posterior on the sacrum. None without a mounting, or when the skin
    normal is too close to the vertical to say anything."""
    if mount is None:
        return None
    n_seg = SKIN_NORMAL_IN_SEGMENT[role]
    horiz = mount.out - (mount.out @ y_s) * y_s
    if np.linalg.norm(horiz) < np.sin(np.radians(30.0)):
        return None
    horiz /= np.linalg.norm(horiz)
    # the skin normal is the segment's +Z (right thigh), -Z (left thigh) or -X (pelvis: Z = X x Y)
    z = horiz * n_seg[2] if role != "pelvis" else np.cross(-horiz, y_s)
    return z / np.linalg.norm(z), MOUNT_SD_DEG


def check_mounting(role: str, seg_in_sensor: Rotation, mount: Mount | None, phase: str | None) -> None:
    """A sensor whose declared out-of-skin (or up) axis points into the body
    (or down) is upside down, or on the other leg: refuse."""
    if mount is None:
        return
    normal = seg_in_sensor.apply(SKIN_NORMAL_IN_SEGMENT[role])
    if mount.out @ normal < 0.0:
        where = "into the thigh" if role != "pelvis" else "into the body"
        extra = ", or on the other leg" if role != "pelvis" else ""
        raise CalibrationError(f"{role}: the sensor's out-of-skin axis points {where}: is it upside down{extra}? ({mount.source})",
                               phase=phase, gate="mounting_contradiction")
    if mount.up is not None and mount.up @ seg_in_sensor.apply(UP) < 0.0:
        raise CalibrationError(f"{role}: the sensor's up axis points down: is it upside down? ({mount.source})", phase=phase,
                               gate="mounting_contradiction")


def axis_tilt_deg(axis: np.ndarray, vertical: np.ndarray) -> float:
    """How far (deg) a movement axis is from the plane perpendicular to ``vertical``."""
    return float(np.degrees(np.arcsin(np.clip(abs(axis @ vertical), 0, 1))))


def _functional_sd_deg(planarity_deg: float) -> float:
    """How uncertain a movement's axis is (deg): off-axis motion spreads the
    angular velocity around it; a clean movement pins the axis to ~1 deg."""
    return max(1.0, 0.5 * planarity_deg)


def calibrate(
    orientations: dict[str, Orientation],
    windows: CalibrationWindows,
    mounts: dict[str, Mount] | None = None,
) -> AnatomicalCalibration:
    """The routine: compute the anatomical calibration; raise
    :class:`CalibrationError` on a failed quality gate.

    ``mounts``: role -> the sensor's mounting, where known (hipimu boards,
    ``--mount``): a prior for each axis and a check for upside-down sensors."""
    roles = [r for r in ROLES if r in orientations]
    mounts = mounts or {}
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
        phase = _PHASE_OF_ROLE[r]
        r_static = r_statics[r] = still_posture(o, windows.static)
        y_s = vertical_in_sensor(r_static)
        span = window_span(o, windows.functional[r], phase)
        rot = rotations(o, span)
        a, planarity = principal_axis([(rot, o.time_s[span])])
        # a hinge tips the pelvis forward (a negative turn about +Z); a knee lift flexes the hip (positive)
        a, excursion = sign_by_tilt(a, rot, r_static.mean(), -1.0 if r == "pelvis" else 1.0)
        if excursion < MIN_EXCURSION_DEG:
            what = "hip hinges" if r == "pelvis" else f"{ROLES[r].side} knee lifts"
            raise CalibrationError(f"too little motion in the {what}: {r} turned {excursion:.0f} deg, needs >= {MIN_EXCURSION_DEG:.0f}; repeat them slower and larger",
                                   phase=phase, gate="motion")
        tilt = axis_tilt_deg(a, y_s)
        if tilt > MAX_AXIS_TILT_DEG:
            raise CalibrationError(
                f"{r}: the movement axis is {tilt:.0f} deg from horizontal (max {MAX_AXIS_TILT_DEG:.0f}); "
                + ("bow straight forward from the hips" if r == "pelvis" else "lift the knee straight forward"),
                phase=phase, gate="axis_tilt",
            )
        worst_tilt = max(worst_tilt, tilt, planarity)
        seg_in_sensor = frame_from_y_z(y_s, blend_with_mount(r, a, planarity, mounts.get(r), y_s))
        check_mounting(r, seg_in_sensor, mounts.get(r), phase)
        seg_world_static[r] = (r_static * seg_in_sensor).mean()
        segments[r] = SegmentCalibration(r, seg_in_sensor, 0.0, tilt, planarity, excursion)
    set_headings(segments, seg_world_static)
    # Second pass: a knee lift also tips the pelvis a little (posterior tilt,
    # obliquity); the hip's flexion axis is the thigh's turn relative to the
    # pelvis, which needs the headings of the first pass (their error only
    # turns the small pelvic part, a second-order effect). Not the hinges: there
    # the pelvis turns about its own lateral axis, which differs from the
    # femur's by the subject's habitual hip rotation while standing (measured:
    # blending it in made the squats' rotation worse on the real-mode subject,
    # bench/rotation_error_sources.py).
    for r in roles:
        if r == "pelvis":
            continue
        o = orientations[r]
        yaw = segments[r].heading_offset_rad - segments["pelvis"].heading_offset_rad
        rel_static = relative_still(o, orientations["pelvis"], windows.static, yaw)
        seg = segments[r]
        y_s = seg.segment_in_sensor.apply(UP)
        span = window_span(o, windows.functional[r], _PHASE_OF_ROLE[r])
        rel = relative_to_pelvis(o, orientations["pelvis"], span, yaw)
        a, planarity = principal_axis([(rel, o.time_s[span])])
        a, _ = sign_by_posture(a, rel, rel_static, 1.0)
        seg.segment_in_sensor = frame_from_y_z(y_s, blend_with_mount(r, a, planarity, mounts.get(r), y_s))
        seg_world_static[r] = (r_statics[r] * seg.segment_in_sensor).mean()
    reference = align_headings(orientations, segments, windows, seg_world_static, notes)["pelvis"]
    grade = "A" if worst_tilt < 3 else "B" if worst_tilt < 6 else "C"
    if grade != "A":
        notes.append(f"axes up to {worst_tilt:.1f} deg from ideal")
    return AnatomicalCalibration(segments, reference, windows, grade, notes, "routine")


def blend_with_mount(role: str, functional: np.ndarray, planarity_deg: float, mount: Mount | None, normal: np.ndarray) -> np.ndarray:
    """A movement's axis (its planarity, deg, says how clean it was), leaning on
    the mounting as far as the movement is unclear; both in the plane
    perpendicular to ``normal`` (the vertical; for a seated thigh, its anterior axis)."""
    prior = mount_estimate(role, mount, normal)
    if prior is None:
        return functional
    return blend_horizontal([(functional, _functional_sd_deg(planarity_deg)), prior], normal)[0]


def relative_still(thigh: Orientation, pelvis: Orientation, w: tuple[float, float], yaw: float) -> Rotation:
    """The thigh sensor relative to the pelvis sensor in a still window (mean)."""
    idx = np.flatnonzero(between(thigh, w))
    return relative_to_pelvis(thigh, pelvis, slice(idx[0], idx[-1] + 1), yaw).mean()


def set_headings(segments: dict[str, SegmentCalibration], seg_world_still: dict[str, Rotation],
                 axis: tuple[float, float, float] = (1.0, 0.0, 0.0)) -> dict[str, float]:
    """Every segment points like the pelvis in the still posture (``axis``:
    X while standing, Z while sitting): set the heading offsets; returns them."""
    offsets = heading_offsets(seg_world_still, np.array(axis))
    for r, off in offsets.items():
        segments[r].heading_offset_rad = off
    return offsets


def align_headings(orientations: dict[str, Orientation], segments: dict[str, SegmentCalibration], windows: CalibrationWindows,
                   seg_world_still: dict[str, Rotation], notes: list[str], *, sitting: bool = False) -> dict[str, Rotation]:
    """The final heading alignment: in the closing still posture
    (``windows.final``), nearest the test, when there is one and it was still
    (else a note, and the first posture, ``seg_world_still``). Returns the
    segments' orientations in the posture used (the pelvis's: the reference)."""
    what, phase, axis = ("sitting", "sit_final", (0.0, 0.0, 1.0)) if sitting else ("standing", "stand_final", (1.0, 0.0, 0.0))
    if windows.final is not None:
        try:
            seg_world_still = {r: (still_posture(orientations[r], windows.final, what, phase) * segments[r].segment_in_sensor).mean()
                               for r in segments}
        except CalibrationError:
            notes.append(f"the closing {'sit' if sitting else 'stand'} was not still: headings aligned in the first")
    set_headings(segments, seg_world_still, axis)
    return seg_world_still


def _excursion_deg(o: Orientation, w: tuple[float, float]) -> float:
    m = between(o, w)
    if m.sum() < 2:
        return 0.0
    r = rotations(o, m)
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
                f"are the pelvis and {biggest} sensors swapped?", phase="hip_hinge", gate="swapped"
            )
        if biggest == "pelvis":
            raise CalibrationError(
                f"during the {ROLES[r].side} knee lifts the pelvis sensor turned most ({exc[biggest]:.0f} deg vs {r} {exc[r]:.0f}): "
                f"are the pelvis and {r} sensors swapped?", phase=_PHASE_OF_ROLE[r], gate="swapped"
            )
        raise CalibrationError(
            f"during the {ROLES[r].side} knee lifts the {ROLES[biggest].side} leg moved ({exc[biggest]:.0f} deg vs {exc[r]:.0f}): "
            f"lift the {ROLES[r].side} knee, or check that the thigh sensors are not swapped", phase=_PHASE_OF_ROLE[r], gate="wrong_leg"
        )
