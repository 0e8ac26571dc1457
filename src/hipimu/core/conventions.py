"""Frames, signs, units, sensor roles and column names: hipimu's conventions as code.

Everything here is also written out, for people, in ``docs/conventions.md``;
``tests/test_conventions.py`` keeps the two in step.

Frames
------
Segment frames follow ISB (Wu et al. 2002), the same for both legs:
X anterior, Y superior, Z to the subject's right. The femur frame coincides with
the pelvis frame when the subject stands in the calibration posture, so every
hip angle is zero there.

The world ("lab") frame is right-handed with Y up (against gravity); X and Z are
horizontal. Its heading is arbitrary (no magnetometer) or fixed to the subject's
forward direction at the standing calibration. Gravity in the world frame is
``(0, -GRAVITY_M_S2, 0)``; an accelerometer at rest measures ``+GRAVITY_M_S2``
along the world's up axis, expressed in its own frame (specific force).

Angles
------
* Hip: femur relative to pelvis, ``R_pf = R_wp^T R_wf``, decomposed as intrinsic
  Z-X-Y: flexion about the pelvis Z, adduction about the floating X, rotation
  about the femur Y. On the left leg adduction and rotation are negated, so that
  flexion, adduction and internal rotation are positive on both sides.
* Pelvis: pelvis relative to its orientation at the standing calibration,
  ``R_rp = R_wr^T R_wp``, decomposed as intrinsic Y-X-Z (rotation, obliquity,
  tilt; Baker 2001). Signs are chosen for clinicians: tilt + anterior (top of the
  pelvis forward), obliquity + when the right iliac crest rises, rotation + when
  the right side moves forward. With ISB axes that makes tilt and obliquity the
  negated elementary angles (see ``pelvis_angles_rad``).

Units
-----
SI everywhere inside: m/s^2, rad/s, microtesla, seconds, radians. Degrees exist
only at the user's edge (CSV columns ending ``_deg``, printed text).
Quaternions are scalar-first ``[w, x, y, z]``; rotations are scipy
``Rotation`` objects, never hand-written quaternion algebra.

Arrays put time on axis 0; names carry units (``time_s``, ``acc_m_s2``,
``gyr_rad_s``, ``mag_ut``, ``rate_hz``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.spatial.transform import Rotation

from hipimu.errors import UnknownRoleError

__all__ = [
    "GRAVITY_M_S2",
    "AXIS_ANTERIOR",
    "AXIS_SUPERIOR",
    "AXIS_RIGHT",
    "SIDES",
    "Side",
    "Role",
    "ROLES",
    "role",
    "thigh_role",
    "SEGMENTS",
    "RAW_CSV_COLUMNS",
    "RAW_CSV_MAG_COLUMNS",
    "HIP_QUANTITIES",
    "PELVIS_QUANTITIES",
    "ANGLE_COLUMNS",
    "hip_column",
    "pelvis_column",
    "EVENT_KINDS",
    "CALIBRATION_PHASES",
    "SEATED_CALIBRATION_PHASES",
    "WALK_CALIBRATION_PHASES",
    "CALIBRATION_PHASES_OF_METHOD",
    "TESTS",
    "hip_angles_rad",
    "hip_rotation_from_angles",
    "pelvis_angles_rad",
    "pelvis_rotation_from_angles",
    "rotation_from_quat_wxyz",
    "quat_wxyz",
    "SignRow",
    "SIGN_TABLE",
]

#: Standard gravity, m/s^2.
GRAVITY_M_S2 = 9.80665

#: Index of each anatomical axis in a segment frame (ISB).
AXIS_ANTERIOR = 0  # X
AXIS_SUPERIOR = 1  # Y
AXIS_RIGHT = 2  # Z

Side = Literal["left", "right"]
SIDES: tuple[Side, ...] = ("left", "right")

#: Body segments hipimu knows. Shanks are reserved for knee angles later.
SEGMENTS = ("pelvis", "thigh", "shank")


@dataclass(frozen=True)
class Role:
    """Where a sensor is worn: a segment, and for limb segments a side."""

    name: str
    segment: str
    side: Side | None
    placement: str

    @property
    def is_limb(self) -> bool:
        return self.side is not None


#: Sensor roles, in display order. Adding ``shank_left``/``shank_right`` is one
#: line each here; nothing else keys on the literal names.
ROLES: dict[str, Role] = {
    r.name: r
    for r in (
        Role("pelvis", "pelvis", None, "sacrum, flat part between the posterior superior iliac spines"),
        Role("thigh_left", "thigh", "left", "lateral distal third of the left thigh"),
        Role("thigh_right", "thigh", "right", "lateral distal third of the right thigh"),
    )
}


def role(name: str) -> Role:
    """The :class:`Role` called ``name``; :class:`UnknownRoleError` otherwise."""
    try:
        return ROLES[name]
    except KeyError:
        known = ", ".join(ROLES)
        raise UnknownRoleError(f"unknown sensor {name!r} (known: {known})") from None


def thigh_role(side: Side) -> str:
    """Role name of the thigh sensor on ``side``."""
    if side not in SIDES:
        raise ValueError(f"side must be 'left' or 'right', not {side!r}")
    return f"thigh_{side}"


# ----------------------------------------------------------------------------
# Column names
# ----------------------------------------------------------------------------

#: Long-format raw CSV (import and export): one row per sample per sensor.
RAW_CSV_COLUMNS = ("time_s", "sensor", "acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z")
#: Optional magnetometer columns that may follow ``RAW_CSV_COLUMNS``.
RAW_CSV_MAG_COLUMNS = ("mag_x", "mag_y", "mag_z")

#: Hip angle quantities, in the order of the intrinsic Z-X-Y decomposition.
HIP_QUANTITIES = ("flexion", "adduction", "rotation")
#: Pelvis angle quantities, as reported (tilt, obliquity, rotation).
PELVIS_QUANTITIES = ("tilt", "obliquity", "rotation")


def hip_column(quantity: str, side: Side) -> str:
    """CSV column of a hip angle, e.g. ``hip_rotation_left_deg``."""
    if quantity not in HIP_QUANTITIES:
        raise ValueError(f"unknown hip quantity {quantity!r}")
    if side not in SIDES:
        raise ValueError(f"side must be 'left' or 'right', not {side!r}")
    return f"hip_{quantity}_{side}_deg"


def pelvis_column(quantity: str) -> str:
    """CSV column of a pelvis angle, e.g. ``pelvis_tilt_deg``."""
    if quantity not in PELVIS_QUANTITIES:
        raise ValueError(f"unknown pelvis quantity {quantity!r}")
    return f"pelvis_{quantity}_deg"


#: Angle CSV (and simulator truth CSV) columns, in this order.
ANGLE_COLUMNS = (
    ("time_s",)
    + tuple(hip_column(q, s) for s in SIDES for q in HIP_QUANTITIES)
    + tuple(pelvis_column(q) for q in PELVIS_QUANTITIES)
)

# ----------------------------------------------------------------------------
# Events, calibration phases, tests
# ----------------------------------------------------------------------------

#: Event kinds in a recording. Point events; intervals are start/end pairs
#: sharing a label (and, for trials and reps, ``data["index"]``).
EVENT_KINDS = {
    "phase_start": "a calibration phase begins (label: the phase)",
    "phase_end": "a calibration phase ends (label: the phase)",
    "trial_start": "a test trial begins (label: the test; data: side, index)",
    "trial_end": "a test trial ends (label: the test; data: side, index)",
    "rep_start": "a squat repetition begins (data: index)",
    "rep_end": "a squat repetition ends (data: index)",
    "zero": "the subject holds a neutral posture in the test position",
    "marker": "a free-text marker set by the operator (label: the text)",
    "link": "a sensor's BLE link changed (label: lost or restored; data: role, device_id, and on restored down_s and lost_samples)",
}

#: The anatomical calibration routine, in order (docs/calibration.md).
CALIBRATION_PHASES = (
    "stand",  # stand still, upright, feet hip-width, toes forward, >= 3 s
    "hip_hinge",  # two slow hip hinges, ~45 deg, thighs vertical
    "knee_lift_right",  # three slow knee lifts to ~60 deg hip flexion, right
    "knee_lift_left",  # the same on the left
    "stand_final",  # stand still >= 2 s
)

#: The seated calibration routine, in order (for patients who cannot stand).
SEATED_CALIBRATION_PHASES = (
    "sit",  # sit still, upright, thighs horizontal and supported, >= 3 s
    "seated_lift_right",  # three small seated hip lifts (knee a hand's width off the seat), right
    "seated_lift_left",  # the same on the left
    "sit_final",  # sit still >= 2 s
)

#: The walk calibration, in order.
WALK_CALIBRATION_PHASES = (
    "stand",  # stand still >= 3 s
    "walk",  # walk straight ahead, >= 5 strides
)

#: Guided calibration method -> its phases (the dashboard's guide offers these).
CALIBRATION_PHASES_OF_METHOD = {
    "routine": CALIBRATION_PHASES,
    "seated": SEATED_CALIBRATION_PHASES,
    "walk": WALK_CALIBRATION_PHASES,
}

#: Clinical tests a session can hold.
TESTS = ("seated_rotation", "prone_rotation", "squat", "free")

# ----------------------------------------------------------------------------
# Angle functions
# ----------------------------------------------------------------------------

# Sign of (adduction, rotation) relative to the elementary X and Y angles.
_HIP_SIDE_SIGN = {"right": 1.0, "left": -1.0}


def _check_side(side: str) -> float:
    try:
        return _HIP_SIDE_SIGN[side]
    except KeyError:
        raise ValueError(f"side must be 'left' or 'right', not {side!r}") from None


def _as_2d(angles: np.ndarray) -> np.ndarray:
    out = np.asarray(angles, dtype=np.float64)
    if out.ndim == 1:
        out = out[None, :]
    if out.shape[-1] != 3:
        raise ValueError(f"angles must have 3 columns, got shape {out.shape}")
    return out


def hip_angles_rad(r_world_pelvis: Rotation, r_world_femur: Rotation, side: Side) -> np.ndarray:
    """Hip angles of the femur relative to the pelvis, radians.

    Parameters
    ----------
    r_world_pelvis, r_world_femur:
        Segment orientations (segment frame -> world frame), one rotation or N.
    side:
        ``"left"`` or ``"right"``: which femur.

    Returns
    -------
    ndarray, shape (N, 3)
        Columns flexion, adduction, internal rotation (positive on both sides).
    """
    sign = _check_side(side)
    r_pf = r_world_pelvis.inv() * r_world_femur
    zxy = np.atleast_2d(r_pf.as_euler("ZXY"))
    return zxy * np.array([1.0, sign, sign])


def hip_rotation_from_angles(angles_rad: np.ndarray, side: Side) -> Rotation:
    """Femur-in-pelvis rotation for (flexion, adduction, internal rotation) rows.

    The exact inverse of :func:`hip_angles_rad` for middle angles in (-90, 90) deg.
    """
    sign = _check_side(side)
    a = _as_2d(angles_rad) * np.array([1.0, sign, sign])
    return Rotation.from_euler("ZXY", a)


def pelvis_angles_rad(r_world_pelvis: Rotation, r_world_reference: Rotation) -> np.ndarray:
    """Pelvis angles relative to the standing reference, radians.

    ``r_world_reference`` is the pelvis orientation during the standing
    calibration (one rotation, or one per sample).

    Returns
    -------
    ndarray, shape (N, 3)
        Columns tilt (+ anterior), obliquity (+ right crest up),
        rotation (+ right side forward).
    """
    r_rel = r_world_reference.inv() * r_world_pelvis
    yxz = np.atleast_2d(r_rel.as_euler("YXZ"))  # columns: rotation(Y), obliquity(X), tilt(Z)
    # Elementary +Z turns the top of the pelvis backwards and +X lowers the right
    # side; clinicians want the opposite signs for tilt and obliquity.
    return np.column_stack([-yxz[:, 2], -yxz[:, 1], yxz[:, 0]])


def pelvis_rotation_from_angles(angles_rad: np.ndarray) -> Rotation:
    """Pelvis-in-reference rotation for (tilt, obliquity, rotation) rows.

    The exact inverse of :func:`pelvis_angles_rad` for obliquity in (-90, 90) deg.
    """
    a = _as_2d(angles_rad)
    return Rotation.from_euler("YXZ", np.column_stack([a[:, 2], -a[:, 1], -a[:, 0]]))


def rotation_from_quat_wxyz(q: np.ndarray) -> Rotation:
    """Rotation from scalar-first quaternion(s) ``[w, x, y, z]``."""
    q = np.asarray(q, dtype=np.float64)
    return Rotation.from_quat(q, scalar_first=True)


def quat_wxyz(r: Rotation) -> np.ndarray:
    """Scalar-first quaternion(s) ``[w, x, y, z]`` of a rotation, w >= 0."""
    q = r.as_quat(canonical=True, scalar_first=True)
    return q


# ----------------------------------------------------------------------------
# The sign table: "movement -> expected sign", for people and for tests
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SignRow:
    """One row of the movement -> expected sign table.

    ``key`` names the movement in tests; ``angle`` is a column quantity
    (``hip_flexion``, ``pelvis_tilt``, ...); ``sign`` is +1 or -1; ``sides``
    lists the sides the row applies to (pelvis rows: ``("both",)``).
    """

    key: str
    movement: str
    angle: str
    sign: int
    sides: tuple[str, ...]


SIGN_TABLE: tuple[SignRow, ...] = (
    SignRow("knee_forward", "standing, knee lifted forward", "hip_flexion", +1, SIDES),
    SignRow("thigh_backward", "standing, thigh moved backward behind the body", "hip_flexion", -1, SIDES),
    SignRow("knee_to_midline", "standing, knee moved toward the midline", "hip_adduction", +1, SIDES),
    SignRow("leg_out_to_side", "standing, leg moved out to the side", "hip_adduction", -1, SIDES),
    SignRow("seated_foot_out", "sitting (hip and knee at 90 deg), foot swung outward", "hip_rotation", +1, SIDES),
    SignRow("seated_foot_in", "sitting (hip and knee at 90 deg), foot swung inward", "hip_rotation", -1, SIDES),
    SignRow("prone_foot_out", "lying prone (knee at 90 deg), foot falls outward", "hip_rotation", +1, SIDES),
    SignRow("prone_foot_in", "lying prone (knee at 90 deg), foot falls inward", "hip_rotation", -1, SIDES),
    SignRow("hip_hinge", "standing, trunk bowed forward from the hips, thighs still", "hip_flexion", +1, SIDES),
    SignRow("standing_toes_in", "standing, knee cap turned inward (toes in)", "hip_rotation", +1, SIDES),
    SignRow("pelvis_forward", "pelvis tipped forward (anterior tilt)", "pelvis_tilt", +1, ("both",)),
    SignRow("pelvis_backward", "pelvis tucked under (posterior tilt)", "pelvis_tilt", -1, ("both",)),
    SignRow("right_crest_up", "right iliac crest rises", "pelvis_obliquity", +1, ("both",)),
    SignRow("left_crest_up", "left iliac crest rises", "pelvis_obliquity", -1, ("both",)),
    SignRow("right_side_forward", "right side of the pelvis moves forward", "pelvis_rotation", +1, ("both",)),
    SignRow("left_side_forward", "left side of the pelvis moves forward", "pelvis_rotation", -1, ("both",)),
)
