"""Hip and pelvis angles from sensor orientations and the anatomical calibration.

``R_w,seg(t) = Ry(delta_role(t)) * R_w_i,s(t) * R_s,seg``: the sensor's
orientation in its own world, turned about the vertical into the common
(pelvis-sensor) world by the role's heading offset, times the fixed
segment-in-sensor rotation. Angles then follow ``docs/conventions.md`` through
:mod:`hipimu.core.conventions`.

Heading offsets start at the standing calibration's values. Without a
magnetometer they drift with the residual gyro bias about the vertical, so a
``zero`` event (the subject holds a neutral posture in the test position)
re-estimates the offset of that side's thigh from that moment on, choosing the
turn about the vertical that makes the hip's adduction and rotation zero while
the posture is held.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.spatial.transform import Rotation, Slerp

from hipimu.core.calibration import AnatomicalCalibration
from hipimu.core.conventions import ROLES, SIDES, hip_angles_rad, pelvis_angles_rad
from hipimu.core.model import Event
from hipimu.core.orientation import Orientation

__all__ = ["Angles", "HeadingAnchor", "compute_angles", "common_grid", "quality"]

#: How long after a zero event the neutral posture is held and averaged (s).
ZERO_HOLD_S = 1.0

#: Weight (per rad^2 of axial turn, against the mean squared angles in rad^2)
#: that keeps a zero event's axial turn at zero where it is not observable.
ZERO_AXIAL_PRIOR = 1e-3

#: Quality model. Without a magnetometer the relative heading of two sensors
#: drifts with the residual gyro bias about the vertical; its uncertainty grows
#: from the last alignment at about this rate (deg/s), and the quality reaches
#: 0 when it reaches the clinical minimal detectable change (~5 deg).
HEADING_DRIFT_DEG_S_6D = 0.02
HEADING_DRIFT_DEG_S_9D = 0.002
QUALITY_ZERO_AT_DEG = 5.0


@dataclass
class HeadingAnchor:
    """From ``time_s`` on, ``role``'s heading offset is ``offset_rad`` and its
    segment frame is turned by ``axial_rad`` about the segment's own long axis
    (Y) beyond the anatomical calibration (``source``: why)."""

    time_s: float
    role: str
    offset_rad: float
    source: str
    axial_rad: float = 0.0


@dataclass
class Angles:
    """Angles on a common time grid, radians.

    ``hip[side]`` (N, 3): flexion, adduction, internal rotation; ``pelvis``
    (N, 3): tilt, obliquity, rotation; ``anchors``: heading alignments used;
    ``quality`` (N,): 0..1, see :func:`quality`; ``sensor_world`` role ->
    sensor-to-common-world rotations on the grid.
    """

    time_s: np.ndarray
    hip: dict[str, np.ndarray]
    pelvis: np.ndarray
    anchors: list[HeadingAnchor]
    quality: np.ndarray
    sensor_world: dict[str, Rotation]


def common_grid(orientations: dict[str, Orientation], rate_hz: float) -> np.ndarray:
    """Instants ``k / rate_hz`` covered by every sensor."""
    t0 = max(float(o.time_s[0]) for o in orientations.values())
    t1 = min(float(o.time_s[-1]) for o in orientations.values())
    k0, k1 = int(np.ceil(t0 * rate_hz - 1e-9)), int(np.floor(t1 * rate_hz + 1e-9))
    if k1 <= k0:
        raise ValueError("the sensors' recordings do not overlap in time")
    return np.arange(k0, k1 + 1) / rate_hz


def _sensor_on_grid(o: Orientation, grid: np.ndarray) -> Rotation:
    return Slerp(o.time_s, o.rotation())(grid)


def _yaw(angle_rad: np.ndarray | float) -> Rotation:
    a = np.atleast_1d(np.asarray(angle_rad, dtype=np.float64))
    return Rotation.from_rotvec(a[:, None] * np.array([0.0, 1.0, 0.0]))


def _axial(angle_rad: np.ndarray | float) -> Rotation:
    return _yaw(angle_rad)  # about the segment's own Y when applied on the right


def _offsets_on_grid(grid: np.ndarray, anchors: list[HeadingAnchor], role: str, what: str = "offset_rad") -> np.ndarray:
    """Piecewise-constant heading offset (or ``axial_rad``) of ``role`` on the grid."""
    own = sorted((a for a in anchors if a.role == role), key=lambda a: a.time_s)
    out = np.full(grid.shape, getattr(own[0], what))
    for a in own[1:]:
        out[grid >= a.time_s] = getattr(a, what)
    return out


def compute_angles(
    orientations: dict[str, Orientation],
    calibration: AnatomicalCalibration,
    *,
    rate_hz: float = 100.0,
    events: list[Event] | None = None,
    use_zero_events: bool = True,
    use_mag: bool = False,
) -> Angles:
    """Hip angles of every instrumented thigh and pelvis angles on a common grid."""
    roles = [r for r in ROLES if r in orientations and r in calibration.segments]
    grid = common_grid({r: orientations[r] for r in roles}, rate_hz)
    sensor_local = {r: _sensor_on_grid(orientations[r], grid) for r in roles}  # in the sensor's own world
    seg_local = {r: sensor_local[r] * calibration.segments[r].segment_in_sensor for r in roles}
    anchors = [HeadingAnchor(calibration.windows.static[0], r, calibration.segments[r].heading_offset_rad, "standing calibration") for r in roles]
    pelvis_yaw = _yaw(_offsets_on_grid(grid, anchors, "pelvis"))  # zero events only re-align thighs
    pelvis = pelvis_yaw * seg_local["pelvis"]
    sides = [s for s in SIDES if f"thigh_{s}" in roles]
    if use_zero_events and events:
        for ev in sorted((e for e in events if e.kind == "zero"), key=lambda e: e.time_s):
            for side in [ev.data["side"]] if ev.data.get("side") in sides else sides:
                anchor = _zero_anchor(grid, pelvis, seg_local[f"thigh_{side}"], side, ev.time_s)
                if anchor is not None:
                    anchors.append(anchor)
    hip = {}
    sensor_world = {"pelvis": pelvis_yaw * sensor_local["pelvis"]}
    for side in sides:
        role = f"thigh_{side}"
        yaw = _yaw(_offsets_on_grid(grid, anchors, role))
        femur = yaw * seg_local[role] * _axial(_offsets_on_grid(grid, anchors, role, "axial_rad"))
        sensor_world[role] = yaw * sensor_local[role]
        hip[side] = hip_angles_rad(pelvis, femur, side)
    q = quality(grid, {r: orientations[r] for r in roles}, anchors, use_mag=use_mag)
    return Angles(grid, hip, pelvis_angles_rad(pelvis, calibration.reference_pelvis), anchors, q, sensor_world)


def quality(grid: np.ndarray, orientations: dict[str, Orientation], anchors: list[HeadingAnchor], *, use_mag: bool) -> np.ndarray:
    """Per-instant quality of the hip angles, 0 (unreliable) .. 1.

    The product of:

    * heading: 1 - (expected relative-heading error) / 5 deg, the expected
      error growing linearly with the time since the thigh's last heading
      alignment (standing calibration or zero event), faster without a
      magnetometer; hip rotation (femur upright) or adduction (femur
      horizontal) depend directly on that heading;
    * data: 0 where a sensor's samples were lost (filled over a gap).
    """
    drift = HEADING_DRIFT_DEG_S_9D if use_mag else HEADING_DRIFT_DEG_S_6D
    q = np.ones_like(grid)
    thighs = [r for r in orientations if r != "pelvis"]
    for r in thighs:
        times = np.array(sorted(a.time_s for a in anchors if a.role == r))
        idx = np.searchsorted(times, grid, side="right") - 1
        since = np.where(idx >= 0, grid - times[np.clip(idx, 0, None)], np.inf)
        q = np.minimum(q, np.clip(1.0 - drift * since / QUALITY_ZERO_AT_DEG, 0.0, 1.0))
    for o in orientations.values():
        filled = np.interp(grid, o.time_s, o.filled.astype(np.float64)) > 0
        q[filled] = 0.0
    return q


def _zero_anchor(grid: np.ndarray, pelvis: Rotation, femur_local: Rotation, side: str, t_zero: float) -> HeadingAnchor | None:
    """The heading offset and axial turn that make adduction and rotation zero
    during the hold.

    Two unknowns, two angles: the turn about the vertical and the turn about
    the femur's long axis. With the femur far from vertical (seated, prone)
    they move adduction and rotation independently and both are found; with
    the femur upright both move rotation only, and a weak prior keeps the
    axial turn at zero (the heading takes it all)."""
    m = (grid >= t_zero) & (grid <= t_zero + ZERO_HOLD_S)
    if m.sum() < 3:
        return None
    p, f = pelvis[m], femur_local[m]

    def cost(x: np.ndarray) -> float:
        a = hip_angles_rad(p, _yaw(x[0]) * f * _axial(x[1]), side)
        return float(np.mean(a[:, 1] ** 2 + a[:, 2] ** 2) + ZERO_AXIAL_PRIOR * x[1] ** 2)

    # coarse heading scan (the cost can have a second, mirrored minimum), then refine both
    deltas = np.radians(np.arange(-180.0, 180.0, 5.0))
    best = deltas[int(np.argmin([cost(np.array([d, 0.0])) for d in deltas]))]
    res = minimize(cost, np.array([best, 0.0]), method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-12})
    delta, axial = (float(v) for v in res.x)
    return HeadingAnchor(float(t_zero), f"thigh_{side}", float(np.angle(np.exp(1j * delta))), "zero event", axial)
