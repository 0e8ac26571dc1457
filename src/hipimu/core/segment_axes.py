"""The building blocks every anatomical calibration method shares.

A method finds, for each sensor, the segment's axes in the sensor frame
(``segment_in_sensor``: its columns are the segment's X, Y, Z in sensor
coordinates) from postures (gravity while still), movements (the principal
axis of angular velocity) and the sensor's declared mounting
(:class:`Mount`). Signs always come from posture and anatomy -- the
excursion *away from the still posture* is flexion for a thigh and anterior
tilt for a pelvis -- never from which way a window happens to start.

Pure numpy/scipy: orientations in, rotations and unit vectors out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from hipimu.core._arrays import wrap_rad
from hipimu.core.orientation import Orientation

__all__ = [
    "UP",
    "Mount",
    "HIPIMU_BOARD_MOUNT",
    "SKIN_NORMAL_IN_SEGMENT",
    "parse_mount",
    "rotations",
    "steps",
    "between",
    "mean_turn_rate_deg_s",
    "vertical_in_sensor",
    "principal_axis",
    "sign_by_posture",
    "sign_by_tilt",
    "frame_from_y_z",
    "frame_from_x_z",
    "relative_to_pelvis",
    "heading_about_vertical",
    "heading_offsets",
    "horizontal_angle_deg",
    "blend_horizontal",
]

UP = np.array([0.0, 1.0, 0.0])

#: The outward skin normal at each sensor site, segment frame (hardware.md
#: section 9: sacrum, lateral thighs).
SKIN_NORMAL_IN_SEGMENT: dict[str, np.ndarray] = {
    "pelvis": np.array([-1.0, 0.0, 0.0]),
    "thigh_right": np.array([0.0, 0.0, 1.0]),
    "thigh_left": np.array([0.0, 0.0, -1.0]),
}

_AXES = {"x": 0, "y": 1, "z": 2}


@dataclass(frozen=True)
class Mount:
    """How a sensor sits on the skin: ``out`` (unit, sensor frame) points out
    of the skin; ``up`` (or None) points up along the segment while standing.
    ``source`` says who declared it."""

    out: np.ndarray
    up: np.ndarray | None
    source: str


def _axis(text: str) -> np.ndarray:
    t = text.strip().lower()
    if len(t) != 2 or t[0] not in "+-" or t[1] not in _AXES:
        raise ValueError(f"{text!r} is not a sensor axis (one of +x -x +y -y +z -z)")
    v = np.zeros(3)
    v[_AXES[t[1]]] = 1.0 if t[0] == "+" else -1.0
    return v


def parse_mount(text: str) -> Mount:
    """``OUT`` or ``OUT,UP``: the sensor axis pointing out of the skin and,
    optionally, the one pointing up, e.g. ``+z`` or ``-x,+y``."""
    parts = text.split(",")
    if len(parts) not in (1, 2):
        raise ValueError(f"{text!r}: give OUT or OUT,UP, e.g. +z or -x,+y")
    out = _axis(parts[0])
    up = _axis(parts[1]) if len(parts) == 2 else None
    if up is not None and abs(out @ up) > 0.5:
        raise ValueError(f"{text!r}: the out-of-skin and up axes must differ")
    return Mount(out, up, f"declared ({text})")


#: hipimu boards sit back-down on the skin: +z points out (hardware.md).
HIPIMU_BOARD_MOUNT = Mount(np.array([0.0, 0.0, 1.0]), None, "hipimu board (+z out of the skin, hardware.md)")


def rotations(o: Orientation, sel: slice | np.ndarray) -> Rotation:
    """``o.rotation()[sel]``, converting only the selected samples (bit for bit the same)."""
    return Rotation.from_quat(o.quat_wxyz[sel], scalar_first=True)


def steps(r: Rotation, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Body-frame rotation vectors (rad) between consecutive orientations and
    the intervals (s, never zero): ``rotvec / dt`` is the angular velocity in
    the sensor frame, with the filter's bias estimate already removed."""
    return (r[:-1].inv() * r[1:]).as_rotvec(), np.maximum(np.diff(t), 1e-9)


def between(o: Orientation, w: tuple[float, float]) -> np.ndarray:
    """Samples of ``o`` inside window ``w`` (s) that were measured, not filled."""
    return (o.time_s >= w[0]) & (o.time_s <= w[1]) & ~o.filled


def mean_turn_rate_deg_s(r: Rotation, time_s: np.ndarray) -> float:
    """The angle turned over the time taken (deg/s): not the mean of per-sample
    rates, which live sample times (carrying the clock fit's jitter) inflate."""
    rv, dt = steps(r, time_s)
    return float(np.degrees(np.linalg.norm(rv, axis=1).sum() / dt.sum()))


def vertical_in_sensor(r: Rotation) -> np.ndarray:
    """The world vertical in sensor coordinates, averaged over ``r`` (unit)."""
    y = r.inv().apply(UP).mean(axis=0)
    return y / np.linalg.norm(y)


def principal_axis(parts: list[tuple[Rotation, np.ndarray]]) -> tuple[np.ndarray, float]:
    """Principal axis (unit, body frame, arbitrary sign) of the angular
    velocity over one or more stretches (``(orientations, time_s)``), and the
    planarity (deg): the spread of the angular velocity around the axis."""
    omega = np.concatenate([rv / dt[:, None] for rv, dt in (steps(r, t) for r, t in parts)])
    _, s, vt = np.linalg.svd(omega, full_matrices=False)
    return vt[0], float(np.degrees(np.arctan2(s[1], s[0])))


def sign_by_posture(axis: np.ndarray, r: Rotation, reference: Rotation, positive: float) -> tuple[np.ndarray, float]:
    """Sign ``axis`` from the posture: the turn about it away from the still
    ``reference`` orientation reaches furthest in the ``positive`` (+1 or -1)
    direction (a knee lifts forward, never as far backward; a hinge tips the
    pelvis forward). Returns the signed axis and that furthest excursion (deg).

    Independent of where the window starts: every sample is measured from
    the posture, not from the first one."""
    return _signed(axis, (reference.inv() * r).as_rotvec() @ axis, positive)


def sign_by_tilt(axis: np.ndarray, r: Rotation, reference: Rotation, positive: float) -> tuple[np.ndarray, float]:
    """:func:`sign_by_posture` for a segment's own orientations in the world:
    the turn away from the still posture measured by how the segment tilts
    (the vertical seen from the sensor), so that turning round while walking
    (a heading change) does not count. A flexion by ``theta`` about ``axis``
    turns the vertical seen from the sensor by ``-theta`` about it."""
    u0 = reference.inv().apply(UP)
    u = r.inv().apply(UP)
    return _signed(axis, -np.arcsin(np.clip(np.cross(u0, u) @ axis, -1.0, 1.0)), positive)


def _signed(axis: np.ndarray, theta: np.ndarray, positive: float) -> tuple[np.ndarray, float]:
    """``axis`` turned to point so that the furthest excursion ``theta`` (rad,
    about it, robust 2nd/98th percentiles) is in the ``positive`` direction;
    and that excursion (deg)."""
    hi, lo = np.percentile(theta, [98.0, 2.0])
    far = hi if abs(hi) >= abs(lo) else lo
    if np.sign(far) != positive:
        axis = -axis
    return axis, float(np.degrees(abs(far)))


def frame_from_y_z(y_s: np.ndarray, z_hint: np.ndarray) -> Rotation:
    """Segment frame with Y = ``y_s`` and Z = the part of ``z_hint`` perpendicular to it."""
    z = z_hint - (z_hint @ y_s) * y_s
    z /= np.linalg.norm(z)
    return Rotation.from_matrix(np.column_stack([np.cross(y_s, z), y_s, z]))


def frame_from_x_z(x_s: np.ndarray, z_hint: np.ndarray) -> Rotation:
    """Segment frame with X = ``x_s`` and Z = the part of ``z_hint`` perpendicular to it."""
    z = z_hint - (z_hint @ x_s) * x_s
    z /= np.linalg.norm(z)
    return Rotation.from_matrix(np.column_stack([x_s, np.cross(z, x_s), z]))


def relative_to_pelvis(thigh: Orientation, pelvis: Orientation, span: slice, yaw_rad: float) -> Rotation:
    """The thigh sensor's orientation relative to the pelvis sensor over
    ``span`` (thigh samples), the thigh's world turned by ``yaw_rad`` about the
    vertical into the pelvis sensor's world."""
    pt = pelvis.time_s
    t = np.clip(thigh.time_s[span], pt[0], pt[-1])
    # Slerp only over the pelvis samples around the window: every instant falls
    # in the same interval as with the whole recording (bit-identical result).
    i0 = max(int(np.searchsorted(pt, t[0])) - 1, 0)
    i1 = min(max(int(np.searchsorted(pt, t[-1])) + 1, i0 + 2), len(pt))
    p = Slerp(pt[i0:i1], rotations(pelvis, slice(i0, i1)))(t)
    return p.inv() * Rotation.from_rotvec(yaw_rad * UP) * rotations(thigh, span)


def heading_about_vertical(v_world: np.ndarray) -> float:
    """Heading (rad) of a vector's horizontal part: angle from world +X
    towards world -Z about +Y (right-hand rule about the vertical)."""
    return float(np.arctan2(-v_world[..., 2], v_world[..., 0]))


def heading_offsets(seg_world_still: dict[str, Rotation], axis: np.ndarray, reference_role: str = "pelvis") -> dict[str, float]:
    """Per role, the turn about the vertical (rad) that makes the segment's
    ``axis`` (segment frame) point, in the still posture, the way the
    reference segment's does: X while standing (every segment faces forward),
    Z while sitting (the femurs point forward, their lateral axes as the pelvis's)."""
    ref = heading_about_vertical(seg_world_still[reference_role].apply(axis))
    return {r: float(wrap_rad(ref - heading_about_vertical(rw.apply(axis)))) for r, rw in seg_world_still.items()}


def horizontal_angle_deg(a: np.ndarray, b: np.ndarray, y_s: np.ndarray) -> float:
    """Angle (deg) between the parts of ``a`` and ``b`` perpendicular to ``y_s``."""
    pa, pb = a - (a @ y_s) * y_s, b - (b @ y_s) * y_s
    return float(np.degrees(np.arctan2(np.linalg.norm(np.cross(pa, pb)), pa @ pb)))


def blend_horizontal(estimates: list[tuple[np.ndarray, float]], y_s: np.ndarray) -> tuple[np.ndarray, float]:
    """Inverse-variance weighted mean of direction estimates ``(unit vector,
    sd_deg)`` in the plane perpendicular to ``y_s``: an axis observed well by a
    movement dominates; a poorly excited one leans on the prior (mounting).
    Returns the unit vector and its sd (deg)."""
    ref = estimates[0][0] - (estimates[0][0] @ y_s) * y_s
    ref /= np.linalg.norm(ref)
    side = np.cross(y_s, ref)
    angles, weights = [], []
    for v, sd in estimates:
        p = v - (v @ y_s) * y_s
        angles.append(np.arctan2(p @ side, p @ ref))
        weights.append(1.0 / max(sd, 1e-3) ** 2)
    w = np.array(weights)
    ang = float(np.sum(w * np.array(angles)) / w.sum())
    return np.cos(ang) * ref + np.sin(ang) * side, float(1.0 / np.sqrt(w.sum()))
