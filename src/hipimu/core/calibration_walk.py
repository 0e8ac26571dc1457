"""The ``walk`` calibration: standing still, then ordinary walking.

For recordings without the routine (a gait-lab trial: stand, walk, turn, walk
back). From the standing window: each segment's vertical (Y). From the
longest straight-walking stretch (turns left out): each thigh's flexion axis
(Z), the principal axis of its turn relative to the pelvis, signed from the
posture (relative to standing the thigh flexes further than it extends). The
pelvis's lateral axis: with magnetometers (one world for every sensor) the
mean of both hips' flexion axes seen from the pelvis sensor, blended with the
mounting where known; without, from the mounting alone (in 6D the thighs'
headings relative to the pelvis are themselves unknown, so their axes say
nothing about the pelvis's).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from hipimu.core._arrays import moving_average, runs
from hipimu.core.calibration import (
    AnatomicalCalibration,
    CalibrationError,
    CalibrationWindows,
    SegmentCalibration,
    axis_tilt_deg,
    blend_with_mount,
    body_roles,
    check_mounting,
    detection_grid,
    first_still,
    mount_estimate,
    rate_deg_s,
    relative_still,
    set_headings,
    still_posture,
    window_span,
)
from hipimu.core.conventions import ROLES
from hipimu.core.orientation import Orientation
from hipimu.core.segment_axes import (
    Mount,
    between,
    blend_horizontal,
    frame_from_y_z,
    principal_axis,
    relative_to_pelvis,
    rotations,
    sign_by_posture,
    sign_by_tilt,
    vertical_in_sensor,
)

__all__ = ["find_walk_windows", "straight_walks", "calibrate_walk", "hip_axes_in_pelvis", "pelvis_lateral_axis", "WALK_MIN_S", "HIP_AXES_SD_DEG"]

#: Walking: both thighs turning faster than this on average over 1 s (deg/s).
WALKING_DEG_S = 40.0
#: Straight: the pelvis turns about the vertical slower than this over 1 s (deg/s).
STRAIGHT_DEG_S = 20.0
#: A straight stretch used for the axes lasts at least this (s; ~5 strides).
WALK_MIN_S = 4.0
#: Each stretch loses this much at both ends (s): starting and stopping are not gait.
TRIM_S = 0.5
#: Gates: a thigh's flexion excursion from standing while walking (deg) and its axis tilt (deg).
MIN_WALK_EXCURSION_DEG = 8.0
MAX_WALK_AXIS_TILT_DEG = 15.0
#: Hip axes seen from the pelvis sensor are this uncertain (deg) with a magnetometer.
HIP_AXES_SD_DEG = 3.0


def _yaw_rate_deg_s(o: Orientation, grid: np.ndarray) -> np.ndarray:
    """The sensor's signed turn rate about the world vertical (deg/s) on ``grid``."""
    k = min(max(int(np.searchsorted(o.time_s, grid[-1])) + 1, 2), len(o))
    r = rotations(o, slice(0, k))
    w = (r[1:] * r[:-1].inv()).as_rotvec()[:, 1] / np.maximum(np.diff(o.time_s[:k]), 1e-9)
    return np.interp(grid, o.time_s[1:k], np.degrees(w))


def straight_walks(orientations: dict[str, Orientation], after_s: float, before_s: float | None = None) -> list[tuple[float, float]]:
    """Stretches (s) of straight walking after ``after_s`` (and before
    ``before_s``), longest first: every thigh moving, the pelvis not turning,
    each >= :data:`WALK_MIN_S`. With ``before_s`` nothing after it is read
    (the grid ends there), so a recording that goes on gives the same
    stretches as one that stops at ``before_s`` (live and afterwards agree)."""
    roles = [r for r in ROLES if r in orientations]
    grid = detection_grid(orientations, 600.0)
    if before_s is not None:
        grid = grid[grid < before_s]
    if grid.size < 100:
        return []
    n = int(round(1.0 / float(grid[1] - grid[0])))
    walking = grid > after_s
    for r in roles:
        if r != "pelvis":
            walking &= moving_average(rate_deg_s(orientations[r], grid), n) > WALKING_DEG_S
    straight = np.abs(moving_average(_yaw_rate_deg_s(orientations["pelvis"], grid), n)) < STRAIGHT_DEG_S
    out = []
    for a, b in runs(walking & straight):
        ta, tb = float(grid[a]) + TRIM_S, float(grid[b - 1]) - TRIM_S
        if tb - ta >= WALK_MIN_S:
            out.append((ta, tb))
    return sorted(out, key=lambda w: w[0] - w[1])


def find_walk_windows(orientations: dict[str, Orientation], static: tuple[float, float] | None = None,
                      within: tuple[float, float] | None = None) -> CalibrationWindows:
    """Standing still (the first >= 2 s with every sensor still, unless given),
    then the longest straight-walking stretch after it (inside ``within``
    when given: the guided calibration's ``walk`` phase)."""
    roles = [r for r in ROLES if r in orientations]
    if static is None:
        grid = detection_grid(orientations, 120.0)
        static = first_still(grid, {r: moving_average(rate_deg_s(orientations[r], grid), 25) for r in roles})
        if static is None:
            raise CalibrationError("walk: found no standing still (>= 2 s, all sensors still) before the walk: stand still for 3 s first",
                                   phase="stand", gate="not_found")
    walks = straight_walks(orientations, static[1] if within is None else max(static[1], within[0]),
                           None if within is None else within[1])
    if not walks:
        raise CalibrationError(f"walk: found no straight walking (>= {WALK_MIN_S:.0f} s, every thigh moving, no turn) after standing: "
                               "walk at least 5 strides in a straight line", phase="walk", gate="not_found")
    return CalibrationWindows(static, {r: walks[0] for r in roles}, "detected")


def hip_axes_in_pelvis(orientations: dict[str, Orientation], thigh_z: dict[str, np.ndarray], windows: dict[str, tuple[float, float]],
                       yaw: dict[str, float]) -> np.ndarray:
    """Mean direction, pelvis sensor frame, of the hips' flexion axes over each
    thigh's window (each thigh's axis carried into the pelvis sensor's frame,
    the thigh's world turned by ``yaw`` about the vertical)."""
    acc = np.zeros(3)
    for r, z in thigh_z.items():
        idx = np.flatnonzero(between(orientations[r], windows[r]))
        rel = relative_to_pelvis(orientations[r], orientations["pelvis"], slice(idx[0], idx[-1] + 1), yaw[r])
        v = rel.apply(z).mean(axis=0)
        acc += v / np.linalg.norm(v)
    return acc / np.linalg.norm(acc)


def pelvis_lateral_axis(orientations: dict[str, Orientation], thigh_z: dict[str, np.ndarray], windows: CalibrationWindows,
                        yaw: dict[str, float], mount: Mount | None, vertical: np.ndarray, *, use_mag: bool, phase: str) -> np.ndarray:
    """The pelvis's lateral axis (pelvis sensor frame) for the walk and seated
    methods: with magnetometers the hips' flexion axes over the thighs'
    windows (:func:`hip_axes_in_pelvis`), blended with the mounting; without,
    the mounting alone (the thighs' headings relative to the pelvis are
    themselves unknown in 6D). Raises when neither is there."""
    estimates = []
    if use_mag:
        estimates.append((hip_axes_in_pelvis(orientations, thigh_z, windows.functional, yaw), HIP_AXES_SD_DEG))
    prior = mount_estimate("pelvis", mount, vertical)
    if prior is not None:
        estimates.append(prior)
    if not estimates:
        what = "from walking" if phase == "walk" else "while sitting"
        raise CalibrationError(f"{'walk' if phase == 'walk' else 'seated'}: without magnetometers the pelvis sensor's forward direction is not "
                               f"observable {what}: declare its mounting (--mount pelvis=AXES) or fuse in 9D (--mag)", phase=phase, gate="mounting")
    return blend_horizontal(estimates, vertical)[0]


def calibrate_walk(
    orientations: dict[str, Orientation],
    windows: CalibrationWindows,
    mounts: dict[str, Mount] | None = None,
    *,
    use_mag: bool = False,
) -> AnatomicalCalibration:
    """The walk calibration (module docstring); raises :class:`CalibrationError`."""
    roles, thighs = body_roles(orientations, "walk")
    mounts = mounts or {}
    statics = {r: still_posture(orientations[r], windows.static) for r in roles}
    y = {r: vertical_in_sensor(statics[r]) for r in roles}
    worst = 0.0
    z: dict[str, np.ndarray] = {}
    for r in thighs:  # first pass: each thigh's own turn
        o = orientations[r]
        span = window_span(o, windows.functional[r], "walk")
        rot = rotations(o, span)
        a, planarity = principal_axis([(rot, o.time_s[span])])
        a, excursion = sign_by_tilt(a, rot, statics[r].mean(), 1.0)
        if excursion < MIN_WALK_EXCURSION_DEG:
            raise CalibrationError(f"walk: the {ROLES[r].side} thigh flexed only {excursion:.0f} deg while walking (needs >= {MIN_WALK_EXCURSION_DEG:.0f}): "
                                   "walk at a normal pace", phase="walk", gate="motion")
        z[r] = a
    segments: dict[str, SegmentCalibration] = {}
    still_world: dict[str, Rotation] = {}

    yaw = {r: 0.0 for r in thighs}  # 9D: one world; 6D: set by the standing alignment below
    for second in (False, True):
        pelvis_z = pelvis_lateral_axis(orientations, z, windows, yaw, mounts.get("pelvis"), y["pelvis"], use_mag=use_mag, phase="walk")
        segments["pelvis"] = SegmentCalibration("pelvis", frame_from_y_z(y["pelvis"], pelvis_z), 0.0, 0.0, 0.0, 0.0)
        still_world["pelvis"] = (statics["pelvis"] * segments["pelvis"].segment_in_sensor).mean()
        for r in thighs:
            o = orientations[r]
            a = z[r]
            planarity = excursion = 0.0
            if second:  # the thigh's turn relative to the pelvis: the pelvis's own sway left out
                span = window_span(o, windows.functional[r], "walk")
                rel = relative_to_pelvis(o, orientations["pelvis"], span, yaw[r])
                rel_still = relative_still(o, orientations["pelvis"], windows.static, yaw[r])
                a, planarity = principal_axis([(rel, o.time_s[span])])
                a, excursion = sign_by_posture(a, rel, rel_still, 1.0)
                z[r] = a
            tilt = axis_tilt_deg(a, y[r])
            if tilt > MAX_WALK_AXIS_TILT_DEG:
                raise CalibrationError(f"walk: the {ROLES[r].side} thigh's swing axis is {tilt:.0f} deg from horizontal (max {MAX_WALK_AXIS_TILT_DEG:.0f}): "
                                       "is the sensor loose?", phase="walk", gate="axis_tilt")
            seg_in_sensor = frame_from_y_z(y[r], blend_with_mount(r, a, planarity, mounts.get(r), y[r]))
            check_mounting(r, seg_in_sensor, mounts.get(r), "walk")
            segments[r] = SegmentCalibration(r, seg_in_sensor, 0.0, tilt, planarity, excursion)
            still_world[r] = (statics[r] * seg_in_sensor).mean()
            worst = max(worst, tilt, planarity) if second else worst
        offsets = set_headings(segments, still_world)
        if not use_mag:
            yaw = {r: offsets[r] - offsets["pelvis"] for r in thighs}
    check_mounting("pelvis", segments["pelvis"].segment_in_sensor, mounts.get("pelvis"), "walk")
    w = windows.functional[thighs[0]]
    grade = "B" if worst < 6 else "C"
    notes = [f"walk: axes from {w[1] - w[0]:.1f} s of straight walking ({w[0]:.1f}-{w[1]:.1f} s)"]
    if not use_mag:
        notes.append(f"pelvis forward direction from its mounting ({mounts['pelvis'].source})")
    return AnatomicalCalibration(segments, still_world["pelvis"], windows, grade, notes, "walk")
