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
from scipy.optimize import minimize, minimize_scalar
from scipy.spatial.transform import Rotation, Slerp

from hipimu.core.calibration import AnatomicalCalibration
from hipimu.core.conventions import ROLES, SIDES, hip_angles_rad, pelvis_angles_rad
from hipimu.core.model import Event
from hipimu.core.orientation import Orientation

__all__ = ["Angles", "HeadingAnchor", "compute_angles", "common_grid", "quality"]

#: How long after a zero event the neutral posture is held and averaged (s).
ZERO_HOLD_S = 1.0

#: Still upright standing (free movement only): every sensor turning slower
#: than this (deg/s, 0.5 s average) for at least STANCE_MIN_S, each femur
#: within STANCE_MAX_FEMUR_TILT_DEG of vertical, pelvic tilt and obliquity
#: within STANCE_MAX_PELVIS_DEG of the standing calibration.
STANCE_MAX_RATE_DEG_S = 5.0
STANCE_MIN_S = 1.0
STANCE_MAX_FEMUR_TILT_DEG = 15.0
STANCE_MAX_PELVIS_DEG = 10.0
#: A long stance re-aligns every this many seconds (the drift goes on).
STANCE_CHUNK_S = 5.0

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
#: ... and by this fraction of every turn about the vertical (gyro scale and
#: axis errors differ between sensors; ~0.5 % for MEMS gyros after a bias-only
#: sensor calibration). With a magnetometer the heading is observed.
TURN_ERROR_FRACTION = 0.005
TURN_ERROR_FRACTION_9D = 0.0


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
    stance_windows: list[tuple[float, float]] | None = None,
) -> Angles:
    """Hip angles of every instrumented thigh and pelvis angles on a common grid.

    ``stance_windows``: spans (s) of free movement in which still upright
    standing re-aligns the thighs' headings (:func:`_stance_anchors`)."""
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
    if stance_windows:
        anchors += _stance_anchors(grid, pelvis, seg_local, sides, anchors, calibration, stance_windows)
    hip = {}
    sensor_world = {"pelvis": pelvis_yaw * sensor_local["pelvis"]}
    for side in sides:
        role = f"thigh_{side}"
        yaw = _yaw(_offsets_on_grid(grid, anchors, role))
        femur = yaw * seg_local[role] * _axial(_offsets_on_grid(grid, anchors, role, "axial_rad"))
        sensor_world[role] = yaw * sensor_local[role]
        hip[side] = hip_angles_rad(pelvis, femur, side)
    turned = {r: _turned_deg(sensor_local[r], grid) for r in roles}
    q = quality(grid, {r: orientations[r] for r in roles}, anchors, use_mag=use_mag, turned_deg=turned)
    return Angles(grid, hip, pelvis_angles_rad(pelvis, calibration.reference_pelvis), anchors, q, sensor_world)


def quality(
    grid: np.ndarray,
    orientations: dict[str, Orientation],
    anchors: list[HeadingAnchor],
    *,
    use_mag: bool,
    turned_deg: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Per-instant quality of the hip angles, 0 (unreliable) .. 1.

    ``1 - (expected relative-heading error) / 5 deg`` (5 deg: the clinical
    minimal detectable change), times 0 where a sensor's samples were lost
    (filled over a gap). Hip rotation (femur upright) or adduction (femur
    horizontal) depend directly on the relative heading of pelvis and thigh,
    which without a magnetometer is not observed and only integrated. Its
    expected error since the thigh's last alignment (standing calibration,
    zero event, still standing) grows

    * with time: gyro bias about the vertical, ``HEADING_DRIFT_DEG_S_*``;
    * with turning: gyro scale and axis errors differ between sensors, so a
      whole-body turn of 180 deg leaves them ~``TURN_ERROR_FRACTION`` x 180
      deg apart; ``turned_deg``: role -> cumulative turn about the vertical
      (deg) of the segment on the grid.
    """
    drift = HEADING_DRIFT_DEG_S_9D if use_mag else HEADING_DRIFT_DEG_S_6D
    turn_frac = TURN_ERROR_FRACTION_9D if use_mag else TURN_ERROR_FRACTION
    q = np.ones_like(grid)
    thighs = [r for r in orientations if r != "pelvis"]
    for r in thighs:
        times = np.array(sorted(a.time_s for a in anchors if a.role == r))
        idx = np.searchsorted(times, grid, side="right") - 1
        start = np.clip(np.searchsorted(grid, times[np.clip(idx, 0, None)]), 0, len(grid) - 1)
        since = np.where(idx >= 0, grid - times[np.clip(idx, 0, None)], np.inf)
        err = drift * since
        if turned_deg is not None:
            turned = np.maximum(turned_deg[r] - turned_deg[r][start], turned_deg["pelvis"] - turned_deg["pelvis"][start])
            err = err + turn_frac * turned
        q = np.minimum(q, np.clip(1.0 - err / QUALITY_ZERO_AT_DEG, 0.0, 1.0))
    for o in orientations.values():
        filled = np.interp(grid, o.time_s, o.filled.astype(np.float64)) > 0
        q[filled] = 0.0
    return q


def _turned_deg(r: Rotation, grid: np.ndarray) -> np.ndarray:
    """Cumulative turn about the world vertical (deg), from the world-frame
    angular velocity's vertical part."""
    step = (r[1:] * r[:-1].inv()).as_rotvec()  # world frame
    return np.degrees(np.concatenate([[0.0], np.cumsum(np.abs(step[:, 1]))]))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index runs where ``mask`` is true."""
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def _speed_deg_s(r: Rotation, grid: np.ndarray) -> np.ndarray:
    """Angular speed on the grid (deg/s), averaged over 0.5 s."""
    w = np.degrees(np.linalg.norm((r[:-1].inv() * r[1:]).as_rotvec(), axis=1)) / np.diff(grid)
    w = np.concatenate([w[:1], w])
    n = max(1, int(round(0.5 / float(np.median(np.diff(grid))))))
    return np.convolve(w, np.ones(n) / n, mode="same")


def _stance_anchors(
    grid: np.ndarray,
    pelvis: Rotation,
    seg_local: dict[str, Rotation],
    sides: list[str],
    anchors: list[HeadingAnchor],
    calibration: AnatomicalCalibration,
    windows: list[tuple[float, float]],
) -> list[HeadingAnchor]:
    """Heading re-alignments at moments of still, upright standing.

    Assumption (used only in free movement, never inside a test, where the
    stance is part of what is measured): a subject who stands still and
    upright between movements stands as in the standing calibration, with
    the hips in neutral rotation. Whole-body turns and gyro bias make the
    relative heading of pelvis and thigh sensors wander by several degrees a
    minute without a magnetometer; each still stance resets it. With the
    femur upright the heading moves hip rotation only, so the offset that
    makes the mean rotation zero over the stance is taken from its start on
    (the axial turn of the last zero event is kept).
    """
    allowed = np.zeros(grid.shape, dtype=bool)
    for a, b in windows:
        allowed |= (grid >= a) & (grid <= b)
    upright = np.all(np.abs(np.degrees(pelvis_angles_rad(pelvis, calibration.reference_pelvis)[:, :2])) < STANCE_MAX_PELVIS_DEG, axis=1)
    still = _speed_deg_s(pelvis, grid) < STANCE_MAX_RATE_DEG_S
    cos_tilt = np.cos(np.radians(STANCE_MAX_FEMUR_TILT_DEG))
    for side in sides:
        f = seg_local[f"thigh_{side}"]
        still &= _speed_deg_s(f, grid) < STANCE_MAX_RATE_DEG_S
        upright &= f.apply([0.0, 1.0, 0.0])[:, 1] > cos_tilt
    n_min = int(np.ceil(STANCE_MIN_S / float(np.median(np.diff(grid)))))
    out: list[HeadingAnchor] = []
    n_chunk = int(round(STANCE_CHUNK_S / float(np.median(np.diff(grid)))))
    chunks = []
    for a, b in _runs(allowed & still & upright):
        chunks += [(i, min(i + n_chunk, b)) for i in range(a, b, n_chunk)]
    for i0, i1 in chunks:
        if i1 - i0 < n_min:
            continue
        sl = slice(i0, i1)
        for side in sides:
            role = f"thigh_{side}"
            t0 = grid[i0 : i0 + 1]
            delta0 = float(_offsets_on_grid(t0, anchors, role)[0])
            axial = float(_offsets_on_grid(t0, anchors, role, "axial_rad")[0])
            femur_local = seg_local[role][sl] * _axial(axial)

            def cost(delta: float) -> float:
                return float(np.mean(hip_angles_rad(pelvis[sl], _yaw(delta) * femur_local, side)[:, 2] ** 2))

            res = minimize_scalar(cost, bounds=(delta0 - np.pi / 4, delta0 + np.pi / 4), method="bounded", options={"xatol": 1e-6})
            out.append(HeadingAnchor(float(grid[i0]), role, float(np.angle(np.exp(1j * res.x))), "still standing", axial))
    return out


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
