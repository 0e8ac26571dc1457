"""Hip and pelvis angles from sensor orientations and the anatomical calibration.

``R_w,seg(t) = Ry(delta_role(t)) * R_w_i,s(t) * R_s,seg``: the sensor's
orientation in its own world, turned about the vertical into the common
(pelvis-sensor) world by the role's heading offset, times the fixed
segment-in-sensor rotation. Angles then follow ``docs/conventions.md`` through
:mod:`hipimu.core.conventions`.

Heading offsets start at the standing calibration's values. Without a
magnetometer they drift with the residual gyro bias about the vertical and
with turns, so they are re-estimated from known postures, each from its
moment on (:class:`HeadingAnchor`): a ``zero`` event (the subject holds a
neutral posture in the test position) sets the thigh's heading and its turn
about its own long axis so that adduction and rotation are zero during the
hold; in free movement, still upright standing sets the heading so that hip
rotation is zero (:func:`_stance_anchors`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize, minimize_scalar
from scipy.spatial.transform import Rotation

from hipimu.core._arrays import moving_average, runs, wrap_rad
from hipimu.core.calibration import AnatomicalCalibration
from hipimu.core.segment_axes import rotations
from hipimu.core.conventions import ROLES, SIDES, hip_angles_rad, pelvis_angles_rad
from hipimu.core.model import Event
from hipimu.core.orientation import Orientation
from hipimu.core.quality import QualityTracker, world_steps

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

#: Still-standing heading: Gauss-Newton (secant) iterations on the mean
#: squared hip rotation stop when every chunk's step is below this (rad), and
#: after at most _STANCE_MAX_ITER (then, for any chunk not converged, bounded
#: scalar minimisation as a fallback).
_STANCE_TOL_RAD = 1e-10
_STANCE_MAX_ITER = 25
_STANCE_FIRST_STEP_RAD = 1e-3

#: Weight (per rad^2 of axial turn, against the mean squared angles in rad^2)
#: that keeps a zero event's axial turn at zero where it is not observable.
ZERO_AXIAL_PRIOR = 1e-3




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
    sensor-to-common-world rotations on the grid (composed when first read).
    """

    time_s: np.ndarray
    hip: dict[str, np.ndarray]
    pelvis: np.ndarray
    anchors: list[HeadingAnchor]
    quality: np.ndarray
    sensor_world: Mapping[str, Rotation]


class _SensorWorld(Mapping[str, Rotation]):
    """role -> ``yaw[role] * sensor_local[role]``, composed on first access
    (only ``hipimu angles --orientations`` reads them; a long recording's
    compositions take a while)."""

    def __init__(self, yaw: dict[str, Rotation], sensor_local: dict[str, Rotation]) -> None:
        self._parts = {r: (yaw[r], sensor_local[r]) for r in yaw}
        self._done: dict[str, Rotation] = {}

    def __getitem__(self, role: str) -> Rotation:
        if role not in self._done:
            yaw, local = self._parts[role]
            self._done[role] = yaw * local
        return self._done[role]

    def __iter__(self) -> Iterator[str]:
        return iter(self._parts)

    def __len__(self) -> int:
        return len(self._parts)


def common_grid(orientations: dict[str, Orientation], rate_hz: float) -> np.ndarray:
    """Instants ``k / rate_hz`` covered by every sensor."""
    t0 = max(float(o.time_s[0]) for o in orientations.values())
    t1 = min(float(o.time_s[-1]) for o in orientations.values())
    k0, k1 = int(np.ceil(t0 * rate_hz - 1e-9)), int(np.floor(t1 * rate_hz + 1e-9))
    if k1 <= k0:
        raise ValueError("the sensors' recordings do not overlap in time")
    return np.arange(k0, k1 + 1) / rate_hz


def _sensor_on_grid(o: Orientation, grid: np.ndarray) -> Rotation:
    """``Slerp(o.time_s, o.rotation())(grid)``, bit for bit, with the same
    scipy operations, but the turn between consecutive samples is computed only
    for the intervals that hold a grid instant (half of them for 200 Hz samples
    on a 100 Hz grid)."""
    t = o.time_s
    ind = np.searchsorted(t, grid) - 1  # Slerp: side="left", t[0] itself in the first interval
    ind[grid == t[0]] = 0
    if np.any((ind < 0) | (ind > len(t) - 2)):
        raise ValueError(f"Interpolation times must be within the range [{t[0]}, {t[-1]}], both inclusive.")
    used, which = np.unique(ind, return_inverse=True)
    rotvecs = (rotations(o, used).inv() * rotations(o, used + 1)).as_rotvec()
    alpha = (grid - t[ind]) / (t[ind + 1] - t[ind])
    return rotations(o, ind) * Rotation.from_rotvec(rotvecs[which] * alpha[:, None])


def _yaw(angle_rad: np.ndarray | float) -> Rotation:
    a = np.atleast_1d(np.asarray(angle_rad, dtype=np.float64))
    return Rotation.from_rotvec(a[:, None] * np.array([0.0, 1.0, 0.0]))


def _axial(angle_rad: np.ndarray | float) -> Rotation:
    return _yaw(angle_rad)  # about the segment's own Y when applied on the right


def _offsets_on_grid(grid: np.ndarray, anchors: list[HeadingAnchor], role: str, what: str = "offset_rad") -> np.ndarray:
    """Piecewise-constant heading offset (or ``axial_rad``) of ``role`` on the
    grid: the last anchor at or before each instant (of equal times, the last
    given), the first anchor's before it."""
    own = sorted((a for a in anchors if a.role == role), key=lambda a: a.time_s)
    times = np.array([a.time_s for a in own], dtype=np.float64)
    values = np.array([getattr(a, what) for a in own], dtype=np.float64)
    return values[np.maximum(np.searchsorted(times, grid, side="right") - 1, 0)]


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
    # each sensor's turn from one grid instant to the next, world frame: its
    # vertical part for the quality, its angle (= the segment's) for stillness
    steps = {r: world_steps(sensor_local[r]) for r in roles}
    seg_local = {r: sensor_local[r] * calibration.segments[r].segment_in_sensor for r in roles}
    anchors = [HeadingAnchor(calibration.windows.aligned_s, r, calibration.segments[r].heading_offset_rad, "standing calibration") for r in roles]
    pelvis_yaw = _yaw(_offsets_on_grid(grid, anchors, "pelvis"))  # zero events only re-align thighs
    pelvis = pelvis_yaw * seg_local["pelvis"]
    pelvis_ang = pelvis_angles_rad(pelvis, calibration.reference_pelvis)
    sides = [s for s in SIDES if f"thigh_{s}" in roles]
    if use_zero_events and events:
        for ev in sorted((e for e in events if e.kind == "zero"), key=lambda e: e.time_s):
            for side in [ev.data["side"]] if ev.data.get("side") in sides else sides:
                anchor = _zero_anchor(grid, pelvis, seg_local[f"thigh_{side}"], side, ev.time_s)
                if anchor is not None:
                    anchors.append(anchor)
    if stance_windows:
        speed = {r: _speed_deg_s(steps[r], grid) for r in roles}
        anchors += _stance_anchors(grid, pelvis, pelvis_ang, seg_local, speed, sides, anchors, stance_windows)
    hip = {}
    yaw = {"pelvis": pelvis_yaw}
    for side in sides:
        role = f"thigh_{side}"
        yaw[role] = _yaw(_offsets_on_grid(grid, anchors, role))
        femur = yaw[role] * seg_local[role] * _axial(_offsets_on_grid(grid, anchors, role, "axial_rad"))
        hip[side] = hip_angles_rad(pelvis, femur, side)
    q = quality(grid, {r: orientations[r] for r in roles}, anchors, calibration, use_mag=use_mag,
                local=sensor_local, thigh_segments={r: seg_local[r] for r in roles if r != "pelvis"}, steps=steps,
                hip_rotation_deg={f"thigh_{s}": np.degrees(hip[s][:, 2]) for s in sides})
    return Angles(grid, hip, pelvis_ang, anchors, q, _SensorWorld(yaw, sensor_local))


def quality(
    grid: np.ndarray,
    orientations: dict[str, Orientation],
    anchors: list[HeadingAnchor],
    calibration: AnatomicalCalibration,
    *,
    use_mag: bool,
    local: dict[str, Rotation],
    thigh_segments: dict[str, Rotation],
    steps: dict[str, np.ndarray] | None = None,
    hip_rotation_deg: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Per-instant quality of the hip angles, 0 (unreliable) .. 1: the expected
    hip rotation error model of :mod:`hipimu.core.quality` (calibration method
    and grade, heading since the last alignment, fast movement), over the whole
    series at once, and 0 where a sensor's samples were lost (filled over a gap).

    ``local``: role -> sensor orientation in its own world on the grid;
    ``thigh_segments``: thigh role -> segment orientation on the grid;
    ``steps``: role -> :func:`world_steps` of ``local`` (if already computed);
    ``hip_rotation_deg``: thigh role -> hip rotation on the grid (soft tissue)."""
    filled = np.zeros(grid.shape, dtype=bool)
    for o in orientations.values():
        filled |= np.interp(grid, o.time_s, o.filled.astype(np.float64)) > 0
    tracker = QualityTracker(calibration, list(orientations), use_mag=use_mag)
    return tracker.update(grid, anchors, local, thigh_segments, filled, steps=steps, hip_rotation_deg=hip_rotation_deg)


def _speed_deg_s(step: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Angular speed on the grid (deg/s), averaged over 0.5 s, from the steps
    between grid instants (:func:`world_steps`: their angle is the same in
    the world and the body frame, and for a segment as for its sensor)."""
    w = np.degrees(np.linalg.norm(step, axis=1)) / np.diff(grid)
    w = np.concatenate([w[:1], w])
    return moving_average(w, int(round(0.5 / float(np.median(np.diff(grid))))))


def _stance_anchors(
    grid: np.ndarray,
    pelvis: Rotation,
    pelvis_ang: np.ndarray,
    seg_local: dict[str, Rotation],
    speed: dict[str, np.ndarray],
    sides: list[str],
    anchors: list[HeadingAnchor],
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
    minimises the mean squared rotation over the stance is taken from its
    start on (the axial turn of the last zero event is kept).

    ``pelvis_ang``: :func:`pelvis_angles_rad` of ``pelvis``; ``speed``: role
    -> :func:`_speed_deg_s` on the grid.
    """
    allowed = np.zeros(grid.shape, dtype=bool)
    for a, b in windows:
        allowed |= (grid >= a) & (grid <= b)
    upright = np.all(np.abs(np.degrees(pelvis_ang[:, :2])) < STANCE_MAX_PELVIS_DEG, axis=1)
    still = speed["pelvis"] < STANCE_MAX_RATE_DEG_S
    cos_tilt = np.cos(np.radians(STANCE_MAX_FEMUR_TILT_DEG))
    for side in sides:
        f = seg_local[f"thigh_{side}"]
        still &= speed[f"thigh_{side}"] < STANCE_MAX_RATE_DEG_S
        upright &= f.apply([0.0, 1.0, 0.0])[:, 1] > cos_tilt
    n_min = int(np.ceil(STANCE_MIN_S / float(np.median(np.diff(grid)))))
    n_chunk = int(round(STANCE_CHUNK_S / float(np.median(np.diff(grid)))))
    chunks = []
    for a, b in runs(allowed & still & upright):
        chunks += [(i, min(i + n_chunk, b)) for i in range(a, b, n_chunk)]
    chunks = [(i0, i1) for i0, i1 in chunks if i1 - i0 >= n_min]
    if not chunks or not sides:
        return []
    # all chunks at once: their samples one after the other
    i0s = np.array([i0 for i0, _ in chunks])
    counts = np.array([i1 - i0 for i0, i1 in chunks])
    idx = np.concatenate([np.arange(i0, i1) for i0, i1 in chunks])
    t0 = grid[i0s]
    result = {}
    for side in sides:
        role = f"thigh_{side}"
        delta0 = _offsets_on_grid(t0, anchors, role)
        axial = _offsets_on_grid(t0, anchors, role, "axial_rad")
        femur_local = seg_local[role][idx]
        if np.any(axial != 0.0):
            femur_local = femur_local * _axial(np.repeat(axial, counts))
        delta = _neutral_rotation_headings(pelvis[idx], femur_local, side, delta0, counts)
        result[side] = (delta, axial)
    out: list[HeadingAnchor] = []
    for k in range(len(chunks)):
        for side in sides:
            delta, axial = result[side]
            out.append(HeadingAnchor(float(t0[k]), f"thigh_{side}", float(wrap_rad(delta[k])), "still standing", float(axial[k])))
    return out


def _neutral_rotation_headings(pelvis: Rotation, femur_local: Rotation, side: str, delta0: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per chunk (``counts``: its samples, consecutive in ``pelvis`` and
    ``femur_local``), the heading offset ``delta`` (any turn from ``delta0``:
    after long sessions the drift can be large) that minimises the mean squared
    hip rotation of ``_yaw(delta) * femur_local``.

    With the femur near vertical the rotation is close to linear in the
    heading, so Gauss-Newton steps with the rotation's slope from the last two
    evaluations (secant) converge in a few iterations, for all chunks at once.
    Turning the femur by ``e`` about the world vertical turns its rotation
    relative to the pelvis, ``R0`` at ``delta0``, by ``e`` about the vertical
    seen from the pelvis, ``w``: the hip angles at ``delta0 + e`` are those of
    femur ``R0`` in a pelvis turned by ``-e`` about ``w`` (one composition per
    evaluation). A chunk that does not converge (or ends with a higher cost
    than at ``delta0``) falls back to bounded scalar minimisation of the same
    cost."""
    n = len(counts)
    cid = np.repeat(np.arange(n), counts)
    p_inv = pelvis.inv()
    r0 = p_inv * (_yaw(delta0[cid]) * femur_local)
    w = p_inv.apply([0.0, 1.0, 0.0])

    def rotation_at(m: np.ndarray, e: np.ndarray) -> np.ndarray:  # samples m, heading delta0 + e (per sample)
        return hip_angles_rad(Rotation.from_rotvec(-e[:, None] * w[m]), r0[m], side)[:, 2]

    every = np.ones(len(cid), dtype=bool)
    e_prev, r_prev = np.zeros(n), rotation_at(every, np.zeros(len(cid)))
    cost0 = np.add.reduceat(r_prev**2, np.concatenate([[0], np.cumsum(counts)[:-1]])) / counts
    e = np.full(n, _STANCE_FIRST_STEP_RAD)
    r = r_prev.copy()
    active = np.ones(n, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        for _ in range(_STANCE_MAX_ITER):
            m = active[cid]
            ca = cid[m]
            r[m] = rotation_at(m, e[ca])
            slope = (r[m] - r_prev[m]) / (e - e_prev)[ca]
            starts = np.concatenate([[0], np.cumsum(counts[active])[:-1]])
            step = -np.add.reduceat(r[m] * slope, starts) / np.add.reduceat(slope * slope, starts)
            e_prev[active], r_prev[m] = e[active], r[m]
            e[active] += step
            done = np.abs(step) < _STANCE_TOL_RAD
            active[np.flatnonzero(active)[done]] = False
            if not active.any():
                break
    # the cost repeats every turn, with one minimum per turn
    cost = np.add.reduceat(r_prev**2, np.concatenate([[0], np.cumsum(counts)[:-1]])) / counts  # at the last evaluation
    e = wrap_rad(e)
    delta = delta0 + e
    bad = active | ~np.isfinite(e) | ~(cost <= cost0)
    for k in np.flatnonzero(bad):
        sl = slice(int(np.sum(counts[:k])), int(np.sum(counts[: k + 1])))
        p, f = pelvis[sl], femur_local[sl]

        def cost(d: float) -> float:
            return float(np.mean(hip_angles_rad(p, _yaw(d) * f, side)[:, 2] ** 2))

        delta[k] = minimize_scalar(cost, bounds=(delta0[k] - np.pi, delta0[k] + np.pi), method="bounded", options={"xatol": 1e-6}).x
    return delta


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
    return HeadingAnchor(float(t_zero), f"thigh_{side}", float(wrap_rad(delta)), "zero event", axial)
