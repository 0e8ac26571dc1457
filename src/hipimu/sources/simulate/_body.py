"""The virtual subject's body and sensors: geometry, kinematics, sensor physics.

This module (with ``_motion`` and ``_scenarios``) is the independent ground
truth hipimu's estimation code is checked against: it imports only the
standard library, numpy and scipy, and re-implements the conventions from
their written definitions.

Frames and conventions
----------------------
* World: right-handed, Y up, X and Z horizontal; the subject faces +X at the
  standing calibration. Gravity ``G_WORLD_M_S2 = (0, -9.80665, 0)``.
* Segment frames (ISB, both legs): X anterior, Y superior, Z to the subject's
  right. Pelvis origin midway between the hip joint centres; femur origin at
  the hip joint centre. The femur frame equals the pelvis frame in the
  standing calibration posture.
* The reference pelvis orientation (standing calibration) is the identity:
  world axes = pelvis axes of the nominal standing posture.
* Hip: ``R_pf = R_wp^T R_wf = Rz(a) Rx(b) Ry(c)`` (intrinsic Z-X-Y);
  right: flexion a, adduction b, internal rotation c; left: flexion a,
  adduction -b, internal rotation -c.
* Pelvis relative to the reference: ``R_rp = Ry(p) Rx(q) Rz(s)`` (intrinsic
  Y-X-Z); rotation p, obliquity -q, tilt -s.
* Quaternions are scalar-first ``[w, x, y, z]``; rotations are scipy
  ``Rotation`` objects, ``R_ab`` maps frame-b coordinates to frame a.
* Units: m, s, rad, m/s^2, rad/s, uT inside; trajectory channels are in
  degrees and metres (they are the human-readable script).

Sensors
-------
Accelerometer: specific force ``R_ws^T (a_w - g_w)`` in the sensor frame.
Gyroscope: angular velocity of the sensor in its own frame. Magnetometer:
Earth field (49 uT, 65 deg inclination downward, north at a random azimuth)
in the sensor frame. Each sensor has its own clock
``t_k = phase + k / (rate (1 + ppm 1e-6))``; errors follow an
LSM6DS3TR-C / LIS3MDL-like model (see :func:`draw_errors`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import make_interp_spline
from scipy.spatial.transform import Rotation, RotationSpline

from ._motion import smoothstep

__all__ = [
    "GRAVITY_M_S2",
    "G_WORLD_M_S2",
    "ROLES",
    "ROLE_SEGMENT",
    "SIDE_SIGN",
    "Body",
    "pelvis_rotation",
    "hip_rotation",
    "hip_angles_deg",
    "pelvis_angles_deg",
    "wrap_deg",
    "heading_deg",
    "standing_rebase",
    "SoftTissue",
    "noise_model",
    "skin_normal",
    "sample_instants",
    "SegmentKinematics",
    "segment_kinematics",
    "draw_mounting",
    "draw_clock",
    "draw_errors",
    "MagField",
    "synthesize_sensor",
]

GRAVITY_M_S2 = 9.80665
G_WORLD_M_S2 = np.array([0.0, -GRAVITY_M_S2, 0.0])

ROLES = ("pelvis", "thigh_left", "thigh_right")
#: Segment each sensor role is worn on.
ROLE_SEGMENT = {"pelvis": "pelvis", "thigh_left": "femur_left", "thigh_right": "femur_right"}
#: Sign applied to the elementary X and Y hip angles (and hip centre Z) per side.
SIDE_SIGN = {"left": -1.0, "right": 1.0}

# --- LSM6DS3TR-C / LIS3MDL-like sensor model (nominal values) -----------------
ACC_RANGE_M_S2 = 8.0 * GRAVITY_M_S2  # +-8 g
GYR_RANGE_RAD_S = math.radians(1000.0)  # +-1000 dps
MAG_RANGE_UT = 400.0  # +-4 gauss
ADC_COUNTS = 65536  # 16 bit
GYR_BIAS_SD_RAD_S = math.radians(0.5)
GYR_BIAS_RW_RAD_S_SQRT_S = math.radians(0.01)
GYR_NOISE_DENSITY_RAD_S_SQRT_HZ = math.radians(5e-3)
GYR_SCALE_MAX = 0.005
ACC_BIAS_SD_M_S2 = 0.020 * GRAVITY_M_S2
ACC_SCALE_MAX = 0.01
ACC_NOISE_DENSITY_M_S2_SQRT_HZ = 90e-6 * GRAVITY_M_S2
MAG_NOISE_UT = 0.3
MAG_HARD_IRON_SD_UT = 3.0
CLOCK_PPM_MAX = 50.0
MOUNT_TILT_MAX_DEG = 15.0
MOUNT_TILT_MAX_REAL_DEG = 20.0  # realism="real": straps sit less well


def noise_model() -> dict:
    """The nominal sensor error model, JSON-able (SI units)."""
    return {
        "acc_range_m_s2": ACC_RANGE_M_S2,
        "gyr_range_rad_s": GYR_RANGE_RAD_S,
        "mag_range_ut": MAG_RANGE_UT,
        "adc_bits": 16,
        "gyr_bias_sd_rad_s": GYR_BIAS_SD_RAD_S,
        "gyr_bias_random_walk_rad_s_sqrt_s": GYR_BIAS_RW_RAD_S_SQRT_S,
        "gyr_noise_density_rad_s_sqrt_hz": GYR_NOISE_DENSITY_RAD_S_SQRT_HZ,
        "gyr_scale_error_max": GYR_SCALE_MAX,
        "acc_bias_sd_m_s2": ACC_BIAS_SD_M_S2,
        "acc_scale_error_max": ACC_SCALE_MAX,
        "acc_noise_density_m_s2_sqrt_hz": ACC_NOISE_DENSITY_M_S2_SQRT_HZ,
        "mag_noise_rms_ut": MAG_NOISE_UT,
        "mag_hard_iron_sd_ut": MAG_HARD_IRON_SD_UT,
        "clock_ppm_max": CLOCK_PPM_MAX,
        "mount_tilt_max_deg": MOUNT_TILT_MAX_DEG,
        "white_noise_sigma": "density * sqrt(rate_hz / 2)",
    }


@dataclass(frozen=True)
class Body:
    """Body dimensions and sensor sites (segment frames, metres)."""

    hip_half_width_m: float = 0.09  # hip centres at pelvis (0, 0, +-0.09)
    femur_length_m: float = 0.43
    pelvis_height_standing_m: float = 0.95  # pelvis origin above the floor
    sacrum_sensor_m: tuple[float, float, float] = (-0.10, 0.06, 0.0)  # pelvis frame
    thigh_sensor_m: tuple[float, float, float] = (0.0, -0.28, 0.075)  # femur frame, right; z negated left

    def hip_centre_m(self, side: str) -> np.ndarray:
        """Hip joint centre in the pelvis frame, m."""
        return np.array([0.0, 0.0, SIDE_SIGN[side] * self.hip_half_width_m])

    def sensor_site_m(self, role: str) -> np.ndarray:
        """Sensor position in its segment frame, m."""
        if role == "pelvis":
            return np.array(self.sacrum_sensor_m, dtype=np.float64)
        side = role.split("_")[1]
        x, y, z = self.thigh_sensor_m
        return np.array([x, y, SIDE_SIGN[side] * z])

    def to_dict(self) -> dict:
        return {
            "hip_half_width_m": self.hip_half_width_m,
            "femur_length_m": self.femur_length_m,
            "pelvis_height_standing_m": self.pelvis_height_standing_m,
            "hip_centre_left_m": self.hip_centre_m("left").tolist(),
            "hip_centre_right_m": self.hip_centre_m("right").tolist(),
            "sensor_sites_m": {r: self.sensor_site_m(r).tolist() for r in ROLES},
            "reference_pelvis_wxyz": [1.0, 0.0, 0.0, 0.0],
        }


# ----------------------------------------------------------------------------
# Angles <-> rotations (implemented here from the written conventions)
# ----------------------------------------------------------------------------


def pelvis_rotation(tilt_deg: np.ndarray, obliquity_deg: np.ndarray, rotation_deg: np.ndarray) -> Rotation:
    """Pelvis-to-world rotation(s) for pelvis angles, degrees.

    The reference (standing calibration) is the identity, so this is
    ``R_wp = Ry(rotation) Rx(-obliquity) Rz(-tilt)`` (intrinsic Y-X-Z).
    """
    yxz = np.column_stack([np.atleast_1d(rotation_deg), -np.atleast_1d(obliquity_deg), -np.atleast_1d(tilt_deg)])
    return Rotation.from_euler("YXZ", yxz, degrees=True)


def hip_rotation(flexion_deg: np.ndarray, adduction_deg: np.ndarray, rotation_deg: np.ndarray, side: str) -> Rotation:
    """Femur-in-pelvis rotation(s) ``R_pf`` for hip angles (degrees; IR +)."""
    s = SIDE_SIGN[side]
    zxy = np.column_stack(
        [np.atleast_1d(flexion_deg), s * np.atleast_1d(adduction_deg), s * np.atleast_1d(rotation_deg)]
    )
    return Rotation.from_euler("ZXY", zxy, degrees=True)


def hip_angles_deg(r_world_pelvis: Rotation, r_world_femur: Rotation, side: str) -> np.ndarray:
    """(N, 3) flexion, adduction, internal rotation (degrees) of femur in pelvis."""
    s = SIDE_SIGN[side]
    zxy = np.atleast_2d((r_world_pelvis.inv() * r_world_femur).as_euler("ZXY", degrees=True))
    return zxy * np.array([1.0, s, s])


def pelvis_angles_deg(r_world_ref: Rotation, r_world_pelvis: Rotation) -> np.ndarray:
    """(N, 3) tilt, obliquity, rotation (degrees; rotation wrapped to [-180, 180))
    of ``r_world_pelvis`` relative to the reference ``r_world_ref``: the inverse
    of :func:`pelvis_rotation` (``R_rp = Ry(p) Rx(q) Rz(s)``; rotation p,
    obliquity -q, tilt -s)."""
    yxz = np.atleast_2d((r_world_ref.inv() * r_world_pelvis).as_euler("YXZ", degrees=True))
    return np.column_stack([-yxz[:, 2], -yxz[:, 1], wrap_deg(yxz[:, 0])])


def heading_deg(v: np.ndarray) -> np.ndarray:
    """Heading (degrees) of world vector(s) ``v`` about +Y: ``Ry(h)`` maps +X onto it."""
    v = np.atleast_2d(v)
    return np.degrees(np.arctan2(-v[:, 2], v[:, 0]))


def standing_rebase(r_standing: dict[str, Rotation]) -> tuple[dict[str, Rotation], dict[str, float]]:
    """Per-segment corrections that make the standing pose the zero of every angle.

    ``r_standing``: segment name -> its single segment-to-world orientation at
    standing (``pelvis`` required). For each segment ``C`` (right-multiplied,
    segment frame): Y column = the world vertical in segment coordinates, Z =
    the segment's own e_z made perpendicular to it (normalised), X = Y x Z; and
    a world yaw ``psi`` (degrees, about +Y) that gives ``Yaw(psi) F C`` the
    heading of ``F_pelvis C_pelvis`` (psi = 0 for the pelvis). Returns (C,
    psi) dicts; the rebased frames are ``Yaw(psi) F(t) C``.
    """
    up = np.array([0.0, 1.0, 0.0])
    corr, psi = {}, {}
    for name, r in r_standing.items():
        y = r.inv().apply(up)
        y = y / np.linalg.norm(y)
        z = np.array([0.0, 0.0, 1.0]) - y[2] * y
        z = z / np.linalg.norm(z)
        corr[name] = Rotation.from_matrix(np.column_stack([np.cross(y, z), y, z]))
    h_pelvis = heading_deg((r_standing["pelvis"] * corr["pelvis"]).apply([1.0, 0.0, 0.0]))[0]
    for name, r in r_standing.items():
        h = heading_deg((r * corr[name]).apply([1.0, 0.0, 0.0]))[0]
        psi[name] = 0.0 if name == "pelvis" else float(wrap_deg(h_pelvis - h))
    return corr, psi


def wrap_deg(a: np.ndarray) -> np.ndarray:
    """Angles wrapped to [-180, 180) degrees."""
    return (np.asarray(a) + 180.0) % 360.0 - 180.0


# ----------------------------------------------------------------------------
# Segment kinematics from the scripted channels
# ----------------------------------------------------------------------------


@dataclass
class SegmentKinematics:
    """Segment poses on a time grid.

    ``r_pelvis``, ``r_femur[side]``: segment-to-world rotations;
    ``pelvis_pos_m``: (K, 3) pelvis origin in the world, m;
    ``pelvis_deg``: (K, 3) tilt, obliquity, rotation (rotation wrapped to [-180, 180));
    ``hip_deg[side]``: (K, 3) flexion, adduction, internal rotation.
    """

    t_s: np.ndarray
    r_pelvis: Rotation
    r_femur: dict[str, Rotation]
    pelvis_pos_m: np.ndarray
    pelvis_deg: np.ndarray
    hip_deg: dict[str, np.ndarray]

    def sensor_position_m(self, body: Body, role: str) -> np.ndarray:
        """(K, 3) world position of the sensor site of ``role``, m."""
        site = body.sensor_site_m(role)
        if role == "pelvis":
            return self.pelvis_pos_m + self.r_pelvis.apply(site)
        side = role.split("_")[1]
        hip = self.pelvis_pos_m + self.r_pelvis.apply(body.hip_centre_m(side))
        return hip + self.r_femur[side].apply(site)


def segment_kinematics(t_s: np.ndarray, ch: dict[str, np.ndarray]) -> SegmentKinematics:
    """Segment orientations and pelvis position from channel values on ``t_s``.

    Channels (degrees / metres / weight): ``pelvis_tilt``, ``pelvis_obliquity``,
    ``pelvis_rotation`` (heading included) give the base pelvis pose;
    ``comp_tilt``, ``comp_obliquity``, ``comp_rotation`` are added to them
    (pelvic compensation); ``pos_x``, ``pos_y``, ``pos_z`` the pelvis origin;
    ``hip_{flexion,adduction,rotation}_{side}`` each leg's own hip motion and
    ``anchor_{side}`` in [0, 1] how much that femur ignores the compensation:
    with anchor 1 the femur keeps the orientation it would have with the base
    pelvis (it stays still in the world while the pelvis compensates, like a
    stance leg or a thigh resting on a plinth), with 0 it moves with the pelvis.

    ``R_wf = R_wp (R_wp^T R_wp,base)^anchor R_pf,own``. The pelvis truth is the
    summed channels; the hip truth is the exact Z-X-Y decomposition of
    ``R_wp^T R_wf``, which equals the leg's own channels wherever the
    compensation or the anchor is zero.
    """
    tilt = ch["pelvis_tilt"] + ch["comp_tilt"]
    obl = ch["pelvis_obliquity"] + ch["comp_obliquity"]
    rot = ch["pelvis_rotation"] + ch["comp_rotation"]
    r_base = pelvis_rotation(ch["pelvis_tilt"], ch["pelvis_obliquity"], ch["pelvis_rotation"])
    r_p = pelvis_rotation(tilt, obl, rot)
    d_rotvec = (r_p.inv() * r_base).as_rotvec()
    r_f, hip = {}, {}
    for side in ("left", "right"):
        own = hip_rotation(ch[f"hip_flexion_{side}"], ch[f"hip_adduction_{side}"], ch[f"hip_rotation_{side}"], side)
        w = np.clip(ch[f"anchor_{side}"], 0.0, 1.0)
        r_f[side] = r_p * Rotation.from_rotvec(w[:, None] * d_rotvec) * own
        hip[side] = hip_angles_deg(r_p, r_f[side], side)
    pos = np.column_stack([ch["pos_x"], ch["pos_y"], ch["pos_z"]])
    pelvis = np.column_stack([tilt, obl, wrap_deg(rot)])
    return SegmentKinematics(np.asarray(t_s, dtype=np.float64), r_p, r_f, pos, pelvis, hip)


# ----------------------------------------------------------------------------
# Soft tissue: the thigh sensor's rotation relative to the femur
# ----------------------------------------------------------------------------

#: Rise time (s) of an impact oscillation (a C3 ramp, so the gyro stays smooth).
IMPACT_RISE_S = 0.03
#: An impact oscillation is cut after this many decay times (exp(-12) ~ 6e-6).
IMPACT_SPAN_DECAYS = 12.0


@dataclass(frozen=True)
class SoftTissue:
    """Skin-and-muscle motion of a thigh sensor relative to the femur (``W``,
    femur frame; the sensor's world orientation is ``F W M``, its site stays on
    the bone).

    ``W = exp(theta_axial e_y + sum_i w_i(t) axis_i)`` with
    ``theta_axial = -axial_k * hip rotation + flexion_coupling * hip flexion``
    (degrees; the skin under-reads rotation and creeps a little with flexion)
    and, after each impact at ``t_i``, a damped oscillation
    ``w_i = amp_i ramp((t - t_i) / IMPACT_RISE_S) exp(-(t - t_i) / decay_i)
    sin(2 pi freq_i (t - t_i))`` about the unit axis ``axis_i`` (femur frame).
    """

    axial_k: float
    flexion_coupling: float
    impact_t_s: np.ndarray
    impact_amp_deg: np.ndarray
    impact_freq_hz: np.ndarray
    impact_decay_s: np.ndarray
    impact_axis: np.ndarray  # (n, 3)

    def rotvec_deg(self, t_s: np.ndarray, hip_deg: np.ndarray) -> np.ndarray:
        """(N, 3) rotation vector of ``W`` in degrees at ``t_s`` (``hip_deg``: (N, 3)
        flexion, adduction, internal rotation of that hip at the same instants)."""
        t = np.asarray(t_s, dtype=np.float64)
        out = np.zeros((t.shape[0], 3))
        out[:, 1] = -self.axial_k * hip_deg[:, 2] + self.flexion_coupling * hip_deg[:, 0]
        for ti, a, f, d, ax in zip(self.impact_t_s, self.impact_amp_deg, self.impact_freq_hz,
                                   self.impact_decay_s, self.impact_axis):
            i0, i1 = np.searchsorted(t, [ti, ti + IMPACT_SPAN_DECAYS * d])
            if i1 > i0:
                u = t[i0:i1] - ti
                w = a * smoothstep(u / IMPACT_RISE_S) * np.exp(-u / d) * np.sin(2 * np.pi * f * u)
                out[i0:i1] += w[:, None] * ax[None, :]
        return out

    def rotation(self, t_s: np.ndarray, hip_deg: np.ndarray) -> Rotation:
        """``W`` (sensor-site skin to femur) at ``t_s``."""
        return Rotation.from_rotvec(np.radians(self.rotvec_deg(t_s, hip_deg)))

    def to_dict(self) -> dict:
        return {
            "axial_k": self.axial_k,
            "flexion_coupling_deg_per_deg": self.flexion_coupling,
            "impacts": len(self.impact_t_s),
            "impact_amp_deg": [float(x) for x in self.impact_amp_deg],
            "impact_freq_hz": [float(x) for x in self.impact_freq_hz],
            "impact_decay_s": [float(x) for x in self.impact_decay_s],
        }


# ----------------------------------------------------------------------------
# Per-sensor draws: mounting, clock, errors
# ----------------------------------------------------------------------------

# Sensor axes (columns) in the segment frame before the random turn and tilt:
# sensor z out of the skin, sensor x superior.
_BASE_MOUNT = {
    "pelvis": np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]),  # z = -X
    "thigh_right": np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),  # z = +Z
    "thigh_left": np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]]),  # z = -Z
}


def skin_normal(role: str) -> np.ndarray:
    """Outward skin normal at the sensor site, segment frame (unit)."""
    return _BASE_MOUNT[role][:, 2].copy()


def draw_mounting(rng: np.random.Generator, role: str,
                  tilt_max_deg: float = MOUNT_TILT_MAX_DEG) -> tuple[Rotation, dict]:
    """Sensor-to-segment rotation: back on the skin (sensor +z out of the skin),
    turned uniformly 0-360 deg about the normal, then tilted by up to
    ``tilt_max_deg`` (default ``MOUNT_TILT_MAX_DEG``) about a random axis in the
    board's plane. The draws are the same whatever ``tilt_max_deg`` (only the
    tilt is scaled)."""
    turn = rng.uniform(0.0, 360.0)
    tilt = rng.uniform(0.0, tilt_max_deg)
    axis_angle = rng.uniform(0.0, 2 * np.pi)
    base = Rotation.from_matrix(_BASE_MOUNT[role])
    axis = np.array([math.cos(axis_angle), math.sin(axis_angle), 0.0])
    r = base * Rotation.from_rotvec(math.radians(tilt) * axis) * Rotation.from_euler("z", turn, degrees=True)
    return r, {"turn_deg": turn, "tilt_deg": tilt, "tilt_axis_deg": math.degrees(axis_angle)}


def draw_clock(rng: np.random.Generator, rate_hz: float) -> tuple[float, float]:
    """(phase_s in [0, 1/rate), ppm in [-50, 50])."""
    phase = rng.uniform(0.0, 1.0 / rate_hz)
    ppm = rng.uniform(-CLOCK_PPM_MAX, CLOCK_PPM_MAX)
    return phase, ppm


def draw_errors(rng: np.random.Generator, rate_hz: float, ideal: bool, mag: bool) -> dict:
    """Constant sensor errors (SI units), drawn whatever ``ideal``/``mag`` say
    so that those flags never change other draws; zeroed when ``ideal``."""
    gyr_bias = rng.normal(0.0, GYR_BIAS_SD_RAD_S, 3)
    gyr_scale = rng.uniform(-GYR_SCALE_MAX, GYR_SCALE_MAX, 3)
    acc_bias = rng.normal(0.0, ACC_BIAS_SD_M_S2, 3)
    acc_scale = rng.uniform(-ACC_SCALE_MAX, ACC_SCALE_MAX, 3)
    hard_iron = rng.normal(0.0, MAG_HARD_IRON_SD_UT, 3)
    k = 0.0 if ideal else 1.0
    nyq = math.sqrt(rate_hz / 2.0)
    return {
        "ideal": bool(ideal),
        "gyr_bias_rad_s": (k * gyr_bias).tolist(),
        "gyr_scale_error": (k * gyr_scale).tolist(),
        "gyr_bias_random_walk_rad_s_sqrt_s": k * GYR_BIAS_RW_RAD_S_SQRT_S,
        "gyr_noise_density_rad_s_sqrt_hz": k * GYR_NOISE_DENSITY_RAD_S_SQRT_HZ,
        "gyr_noise_sigma_rad_s": k * GYR_NOISE_DENSITY_RAD_S_SQRT_HZ * nyq,
        "gyr_lsb_rad_s": 0.0 if ideal else 2 * GYR_RANGE_RAD_S / ADC_COUNTS,
        "acc_bias_m_s2": (k * acc_bias).tolist(),
        "acc_scale_error": (k * acc_scale).tolist(),
        "acc_noise_density_m_s2_sqrt_hz": k * ACC_NOISE_DENSITY_M_S2_SQRT_HZ,
        "acc_noise_sigma_m_s2": k * ACC_NOISE_DENSITY_M_S2_SQRT_HZ * nyq,
        "acc_lsb_m_s2": 0.0 if ideal else 2 * ACC_RANGE_M_S2 / ADC_COUNTS,
        "mag_hard_iron_ut": (k * hard_iron).tolist() if mag else None,
        "mag_noise_sigma_ut": (k * MAG_NOISE_UT) if mag else None,
        "mag_lsb_ut": (0.0 if ideal else 2 * MAG_RANGE_UT / ADC_COUNTS) if mag else None,
    }


@dataclass(frozen=True)
class MagField:
    """Earth field: ``strength_ut``, ``inclination_deg`` (downward),
    ``north_azimuth_deg``: horizontal north = Ry(azimuth) applied to world +X."""

    strength_ut: float = 49.0
    inclination_deg: float = 65.0
    north_azimuth_deg: float = 0.0

    def world_ut(self) -> np.ndarray:
        inc = math.radians(self.inclination_deg)
        north = Rotation.from_euler("y", self.north_azimuth_deg, degrees=True).apply([1.0, 0.0, 0.0])
        return self.strength_ut * (math.cos(inc) * north + math.sin(inc) * np.array([0.0, -1.0, 0.0]))

    def to_dict(self) -> dict:
        return {
            "strength_ut": self.strength_ut,
            "inclination_deg": self.inclination_deg,
            "north_azimuth_deg": self.north_azimuth_deg,
            "world_ut": self.world_ut().tolist(),
            "north_definition": "horizontal north = Ry(north_azimuth_deg) applied to world +X",
        }


# ----------------------------------------------------------------------------
# Sensor synthesis
# ----------------------------------------------------------------------------


def _quantize(x: np.ndarray, lsb: float, full_scale: float) -> np.ndarray:
    """Round to the ADC step and saturate at the 16-bit limits."""
    if lsb <= 0:
        return x
    counts = np.clip(np.round(x / lsb), -ADC_COUNTS // 2, ADC_COUNTS // 2 - 1)
    return counts * lsb


def sample_instants(rate_hz: float, phase_s: float, ppm: float, end_s: float) -> tuple[np.ndarray, np.ndarray]:
    """(seq, time_s) of a sensor clock over [0, end_s]."""
    eff = rate_hz * (1.0 + ppm * 1e-6)
    n = int(math.floor((end_s - phase_s) * eff)) + 1
    k = np.arange(max(n, 0), dtype=np.int64)
    t = phase_s + k / eff
    keep = t <= end_s
    return k[keep], t[keep]


def synthesize_sensor(
    *,
    role: str,
    knots_s: np.ndarray,
    segment_spline: RotationSpline,
    position_knots_m: np.ndarray,
    mounting: Rotation,
    rate_hz: float,
    phase_s: float,
    ppm: float,
    end_s: float,
    errors: dict,
    mag_field: MagField | None,
    noise_rng: np.random.Generator,
    loss: float,
    loss_rng: np.random.Generator,
    sensor_spline: RotationSpline | None = None,
) -> dict:
    """Samples of one sensor at its own instants.

    ``segment_spline``: RotationSpline of its segment-to-world orientation on
    ``knots_s``; ``position_knots_m``: (K, 3) world position of the sensor site
    on the knots (fitted here with a quintic interpolating spline);
    ``mounting``: sensor-to-segment rotation; ``sensor_spline`` (optional):
    RotationSpline of the sensor-to-world orientation itself on ``knots_s``
    (a time-varying skin motion between segment and board), used instead of
    ``segment_spline * mounting``. Returns time_s, seq,
    acc_m_s2, gyr_rad_s, mag_ut (or None) and orientation_wxyz (true
    sensor-to-world) after packet loss.
    """
    seq, t = sample_instants(rate_hz, phase_s, ppm, end_s)
    n = t.shape[0]
    if sensor_spline is None:
        r_seg = segment_spline(t)
        w_seg = segment_spline(t, 1)  # body-frame angular rate of the segment, rad/s
        r_ws = r_seg * mounting
        gyr_true = mounting.inv().apply(w_seg)
    else:
        r_ws = sensor_spline(t)
        gyr_true = sensor_spline(t, 1)
    acc_w = make_interp_spline(knots_s, position_knots_m, k=5, axis=0)(t, 2)
    acc_true = r_ws.inv().apply(acc_w - G_WORLD_M_S2)
    mag_true = r_ws.inv().apply(mag_field.world_ut()) if mag_field is not None else None

    # Noise draws happen in a fixed order whatever the flags say.
    dt = 1.0 / rate_hz
    gyr_white = noise_rng.standard_normal((n, 3))
    gyr_walk = np.cumsum(noise_rng.standard_normal((n, 3)), axis=0) * math.sqrt(dt)
    acc_white = noise_rng.standard_normal((n, 3))
    mag_white = noise_rng.standard_normal((n, 3))

    gyr = (
        gyr_true * (1.0 + np.asarray(errors["gyr_scale_error"]))
        + np.asarray(errors["gyr_bias_rad_s"])
        + errors["gyr_bias_random_walk_rad_s_sqrt_s"] * gyr_walk
        + errors["gyr_noise_sigma_rad_s"] * gyr_white
    )
    acc = (
        acc_true * (1.0 + np.asarray(errors["acc_scale_error"]))
        + np.asarray(errors["acc_bias_m_s2"])
        + errors["acc_noise_sigma_m_s2"] * acc_white
    )
    gyr = _quantize(gyr, errors["gyr_lsb_rad_s"], GYR_RANGE_RAD_S)
    acc = _quantize(acc, errors["acc_lsb_m_s2"], ACC_RANGE_M_S2)
    mag = None
    if mag_true is not None:
        mag = mag_true + np.asarray(errors["mag_hard_iron_ut"]) + errors["mag_noise_sigma_ut"] * mag_white
        mag = _quantize(mag, errors["mag_lsb_ut"], MAG_RANGE_UT)

    keep = np.ones(n, dtype=bool)
    if loss > 0 and n:
        packet = seq // 8
        lost = loss_rng.random(int(packet[-1]) + 1) < loss
        keep = ~lost[packet]
    return {
        "time_s": t[keep],
        "acc_m_s2": acc[keep],
        "gyr_rad_s": gyr[keep],
        "mag_ut": None if mag is None else mag[keep],
        "seq": seq[keep],
        "orientation_wxyz": r_ws[keep].as_quat(canonical=True, scalar_first=True),
        "gyr_bias_final_rad_s": (np.asarray(errors["gyr_bias_rad_s"])
                                 + errors["gyr_bias_random_walk_rad_s_sqrt_s"] * gyr_walk[-1]).tolist()
        if n else errors["gyr_bias_rad_s"],
    }
