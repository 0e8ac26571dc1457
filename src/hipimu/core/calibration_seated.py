"""The ``seated`` and ``static`` calibrations: for patients who cannot stand
or hinge, and for recordings that hold nothing but standing still.

``seated`` (docs/calibration.md): sitting still upright on a plinth, thighs
horizontal and supported, then a few small hip lifts per leg (the knee lifted
a hand's width off the seat). Sitting still gives each thigh's anterior axis
(X: up, the femur lies horizontal) and the pelvis's vertical (Y); each thigh's
lifts give its flexion axis (Z), signed from the posture (a lift goes up,
away from the seat). The pelvis's lateral axis: with magnetometers the mean of
both hips' flexion axes seen from the pelvis sensor, else the mounting. The
headings are set so that while sitting the femurs' lateral axes point the way
the pelvis's does. The zero: hip rotation and adduction as while sitting with
the thighs straight ahead; hip flexion assumes the thighs horizontal and the
pelvis upright while sitting, so it and pelvic tilt carry the sitting pelvic
tilt (graded C at best, noted).

``static``: standing still only. Y from gravity, Z from the sensors' mounting
(hipimu boards: +z out of the skin; other sensors: ``--mount``). Every error of
the strap's seat on the skin goes straight into the angles: graded D, noted.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from hipimu.core._arrays import moving_average
from hipimu.core.calibration import (
    MAX_AXIS_TILT_DEG,
    AnatomicalCalibration,
    CalibrationError,
    CalibrationWindows,
    SegmentCalibration,
    align_headings,
    axis_tilt_deg,
    blend_with_mount,
    body_roles,
    check_mounting,
    detection_grid,
    first_still,
    mount_estimate,
    own_movement_window,
    phase_spans,
    rate_deg_s,
    relative_still,
    set_headings,
    still_posture,
    window_span,
)
from hipimu.core.calibration_walk import pelvis_lateral_axis
from hipimu.core.conventions import ROLES
from hipimu.core.model import Event
from hipimu.core.orientation import Orientation
from hipimu.core.segment_axes import (
    Mount,
    frame_from_x_z,
    frame_from_y_z,
    principal_axis,
    relative_to_pelvis,
    rotations,
    sign_by_posture,
    sign_by_tilt,
    vertical_in_sensor,
)

__all__ = ["SEATED_PHASES", "find_seated_windows", "calibrate_seated", "find_static_window", "calibrate_static"]

#: Phase labels of the seated calibration (events, as the dashboard records them).
SEATED_PHASES = {"sit": None, "seated_lift_right": "thigh_right", "seated_lift_left": "thigh_left", "sit_final": None}
#: A seated hip lift turns the thigh at least this far (deg), and at most
#: this far: from 90 deg of hip flexion there is little room; a bigger
#: "lift" is a standing knee lift.
MIN_LIFT_DEG = 8.0
MAX_LIFT_DEG = 40.0
#: ... moving faster than this (deg/s) while the other segments are nearly still.
LIFT_MOVING_DEG_S = 12.0


def find_seated_windows(orientations: dict[str, Orientation], events: list[Event] | None = None,
                        static: tuple[float, float] | None = None) -> CalibrationWindows:
    """Sitting still and each thigh's seated lifts: from phase events, or
    detected (the first >= 2 s still, then each thigh's own movements with
    the other segments nearly still)."""
    roles = [r for r in ROLES if r in orientations]
    spans = phase_spans(events)
    thighs = [r for r in roles if r != "pelvis"]
    want = {r: f"seated_lift_{ROLES[r].side}" for r in thighs}
    if static is None and "sit" in spans and all(p in spans for p in want.values()):
        return CalibrationWindows(spans["sit"], {r: spans[p] for r, p in want.items()}, "events", spans.get("sit_final"))
    grid = detection_grid(orientations, 180.0)
    if grid.size < 200:
        raise CalibrationError("seated: the recording is too short", phase="sit", gate="not_found")
    rate = {r: moving_average(rate_deg_s(orientations[r], grid), 25) for r in roles}
    if static is None:
        static = first_still(grid, rate)
        if static is None:
            raise CalibrationError("seated: found no sitting still (>= 2 s, all sensors still): sit still for 3 s", phase="sit", gate="not_found")
    functional = {}
    for r in thighs:
        w = own_movement_window(grid, rate, r, [o for o in roles if o != r], grid > static[1], LIFT_MOVING_DEG_S)
        if w is None:
            raise CalibrationError(f"seated: found no {ROLES[r].side} hip lifts after sitting still: lift the {ROLES[r].side} knee off the seat 3 times",
                                   phase=want[r], gate="not_found")
        functional[r] = w
    # sitting still looks like standing still to the sensors: without the seated
    # routine's events only a seated test that follows says the subject sat
    seated_tests = [e.time_s for e in events or [] if e.kind == "trial_start" and e.label == "seated_rotation"]
    if not any(t > max(b for _, b in functional.values()) for t in seated_tests):
        raise CalibrationError("seated: no seated routine in the events and no seated test after the still part: sitting cannot be told "
                               "from standing: record the seated routine, or give its windows (--static A:B --window thigh_right=C:D ...)", phase="sit", gate="not_found")
    return CalibrationWindows(static, functional, "detected")


def calibrate_seated(
    orientations: dict[str, Orientation],
    windows: CalibrationWindows,
    mounts: dict[str, Mount] | None = None,
    *,
    use_mag: bool = False,
) -> AnatomicalCalibration:
    """The seated calibration (module docstring); raises :class:`CalibrationError`."""
    roles, thighs = body_roles(orientations, "seated")
    mounts = mounts or {}
    statics = {r: still_posture(orientations[r], windows.static, "sitting", "sit") for r in roles}
    up = {r: vertical_in_sensor(statics[r]) for r in roles}  # thighs: X; pelvis: Y
    z: dict[str, np.ndarray] = {}
    planarity: dict[str, float] = {}
    excursion: dict[str, float] = {}
    yaw = {r: 0.0 for r in thighs}
    segments: dict[str, SegmentCalibration] = {}
    still_world: dict[str, Rotation] = {}
    for second in (False, True):
        for r in thighs:
            o, phase = orientations[r], f"seated_lift_{ROLES[r].side}"
            span = window_span(o, windows.functional[r], phase)
            if second:  # relative to the pelvis: its sway during a lift left out
                rot = relative_to_pelvis(o, orientations["pelvis"], span, yaw[r])
                ref = relative_still(o, orientations["pelvis"], windows.static, yaw[r])
            else:
                rot, ref = rotations(o, span), statics[r].mean()
            a, planarity[r] = principal_axis([(rot, o.time_s[span])])
            a, excursion[r] = (sign_by_posture if second else sign_by_tilt)(a, rot, ref, 1.0)
            if excursion[r] < MIN_LIFT_DEG:
                raise CalibrationError(f"seated: too little motion in the {ROLES[r].side} hip lifts ({excursion[r]:.0f} deg, needs >= {MIN_LIFT_DEG:.0f}): "
                                       "lift the knee a hand's width off the seat", phase=phase, gate="motion")
            if excursion[r] > MAX_LIFT_DEG:
                raise CalibrationError(f"seated: the {ROLES[r].side} thigh turned {excursion[r]:.0f} deg (a seated hip lift turns it at most "
                                       f"{MAX_LIFT_DEG:.0f}): the subject was standing, not sitting", phase=phase, gate="motion")
            z[r] = a
            prior = mount_estimate(r, mounts.get(r), up[r])
            if prior is None and windows.found != "events":
                raise CalibrationError("seated: without the seated routine's phase events or a known sensor mounting, seated hip lifts "
                                       "cannot be told from rotations: record the seated routine, or declare --mount ROLE=AXES",
                                       phase=phase, gate="not_found")
            if prior is not None and abs(a @ prior[0]) < np.cos(np.radians(45.0)):
                raise CalibrationError(f"seated: the {ROLES[r].side} movement turned the thigh about its long axis, not a hip lift: "
                                       "lift the knee straight up off the seat", phase=phase, gate="axis_tilt")
            tilt = axis_tilt_deg(a, up[r])
            if tilt > MAX_AXIS_TILT_DEG:
                raise CalibrationError(f"seated: the {ROLES[r].side} lift axis is {tilt:.0f} deg from horizontal (max {MAX_AXIS_TILT_DEG:.0f}): "
                                       "lift the knee straight up", phase=phase, gate="axis_tilt")
            # the femur lies horizontal: "up" is its anterior axis; Z from the lifts, leaning on the mounting as far as they are unclear
            seg_in_sensor = frame_from_x_z(up[r], blend_with_mount(r, a, planarity[r], mounts.get(r), up[r]))
            check_mounting(r, seg_in_sensor, mounts.get(r), phase)
            segments[r] = SegmentCalibration(r, seg_in_sensor, 0.0, tilt, planarity[r], excursion[r])
            still_world[r] = (statics[r] * seg_in_sensor).mean()
        pelvis_z = pelvis_lateral_axis(orientations, z, windows, {r: 0.0 for r in thighs}, mounts.get("pelvis"), up["pelvis"],
                                       use_mag=use_mag, phase="sit")
        pelvis_in_sensor = frame_from_y_z(up["pelvis"], pelvis_z)
        segments["pelvis"] = SegmentCalibration("pelvis", pelvis_in_sensor, 0.0, 0.0, 0.0, 0.0)
        still_world["pelvis"] = (statics["pelvis"] * pelvis_in_sensor).mean()
        offsets = set_headings(segments, still_world, (0.0, 0.0, 1.0))  # sitting: the lateral axes agree
        if not use_mag:
            yaw = {r: offsets[r] - offsets["pelvis"] for r in thighs}
    check_mounting("pelvis", segments["pelvis"].segment_in_sensor, mounts.get("pelvis"), "sit")
    worst = max(max(s.axis_tilt_deg, s.planarity_deg) for r, s in segments.items() if r != "pelvis")
    notes = ["seated: hip flexion and pelvic tilt are relative to upright sitting with the thighs horizontal"]
    still_world = align_headings(orientations, segments, windows, still_world, notes, sitting=True)  # the closing sit, nearest the test
    if worst >= 6:
        notes.append(f"axes up to {worst:.1f} deg from ideal")
    return AnatomicalCalibration(segments, still_world["pelvis"], windows, "C", notes, "seated")


#: Tests done off the feet: stillness shortly before one is sitting or lying, not standing.
_OFF_FEET_TESTS = ("seated_rotation", "prone_rotation")
#: ... shortly: a still window ending within this of such a trial's start (s).
_OFF_FEET_MARGIN_S = 15.0


def find_static_window(orientations: dict[str, Orientation], events: list[Event] | None = None) -> CalibrationWindows:
    """The first >= 2 s in which every sensor is still, and not just before a
    seated or prone test (sitting or lying still is not standing: with the
    skin normals alone the two cannot be told apart)."""
    roles = [r for r in ROLES if r in orientations]
    grid = detection_grid(orientations, 120.0)
    static = first_still(grid, {r: moving_average(rate_deg_s(orientations[r], grid), 25) for r in roles}) if grid.size > 100 else None
    if static is None:
        raise CalibrationError("found no standing still (>= 2 s, all sensors still) in the first 2 minutes: every method needs one; "
                               "stand still for 3 s at the start", phase="stand", gate="not_found")
    off_feet = [e.time_s for e in events or [] if e.kind == "trial_start" and e.label in _OFF_FEET_TESTS]
    if off_feet and static[1] > min(off_feet) - _OFF_FEET_MARGIN_S:
        raise CalibrationError("found no standing still before the seated/prone test (the still part is the subject sitting or lying): "
                               "stand still for 3 s at the start, or give --static A:B", phase="stand", gate="not_found")
    return CalibrationWindows(static, {}, "detected")


def calibrate_static(
    orientations: dict[str, Orientation],
    windows: CalibrationWindows,
    mounts: dict[str, Mount] | None = None,
) -> AnatomicalCalibration:
    """The static calibration (module docstring); raises :class:`CalibrationError`
    naming the sensor whose mounting is unknown."""
    roles = [r for r in ROLES if r in orientations]
    mounts = mounts or {}
    missing = [r for r in roles if r not in mounts]
    if missing:
        raise CalibrationError(f"static: the mounting of {', '.join(missing)} is unknown: declare it with --mount ROLE=AXES "
                               "(the sensor axis pointing out of the skin, e.g. --mount thigh_left=+z)", phase="stand", gate="mounting")
    segments: dict[str, SegmentCalibration] = {}
    still_world: dict[str, Rotation] = {}
    for r in roles:
        st = still_posture(orientations[r], windows.static)
        y_s = vertical_in_sensor(st)
        est = mount_estimate(r, mounts[r], y_s)
        if est is None:
            raise CalibrationError(f"static: {r}'s out-of-skin axis points up or down while standing ({mounts[r].source}): "
                                   "check the declared mounting", phase="stand", gate="mounting")
        seg_in_sensor = frame_from_y_z(y_s, est[0])
        check_mounting(r, seg_in_sensor, mounts[r], "stand")
        segments[r] = SegmentCalibration(r, seg_in_sensor, 0.0, 0.0, 0.0, 0.0)
        still_world[r] = (st * seg_in_sensor).mean()
    set_headings(segments, still_world)
    notes = ["static: axes from the sensors' mounting alone (" + "; ".join(sorted({m.source for m in mounts.values()})) + "): "
             "a strap tilted on the skin tilts the angles; flagged"]
    return AnatomicalCalibration(segments, still_world["pelvis"], windows, "D", notes, "static")
