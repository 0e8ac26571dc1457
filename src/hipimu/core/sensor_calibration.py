"""Per-device sensor calibration: gyro bias, accelerometer offset and gain,
magnetometer hard and soft iron.

Pure computation (numpy and scipy): reading and writing the
``calibration/<device-id>.json`` files is :mod:`hipimu.storage.sensor_calibration_files`,
the command is ``hipimu calibrate-sensor``.

Model (sensor frame, SI units)::

    gyr = gyr_raw - gyr_bias_rad_s
    acc = acc_gain @ (acc_raw - acc_offset_m_s2)
    mag = mag_soft_iron @ (mag_raw - mag_hard_iron_ut)     (when calibrated)

``acc_gain`` and ``mag_soft_iron`` are symmetric 3x3 matrices (diagonal when
the data cannot tell the off-diagonal terms): only the magnitude of a
corrected vector is observable in a static calibration, and any matrix is a
rotation times a symmetric one, so the symmetric form is the canonical one;
it does not turn the sensor frame.

Estimation:

* :func:`estimate_from_still_poses` -- the board lying still in at least six
  orientations (each axis up and down). Still segments are found
  automatically; gyro bias = mean gyro over them; accelerometer offset and
  gain by nonlinear least squares so that ``|acc| = g`` in every still pose.
* :func:`estimate_mag` -- the board turned slowly through all directions:
  ellipsoid fit (hard iron = centre, soft iron = symmetric shape matrix),
  normalised so that the corrected field magnitude is the ellipsoid's mean
  radius (the local field strength).

Both raise :class:`~hipimu.errors.InputError` with a one-line message when the
data do not allow a trustworthy calibration.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from hipimu import __version__
from hipimu.core._arrays import runs
from hipimu.core.conventions import GRAVITY_M_S2
from hipimu.core.model import SampleBlock
from hipimu.errors import InputError

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "SensorCalibration",
    "MagFit",
    "StillSegment",
    "find_still_segments",
    "estimate_from_still_poses",
    "estimate_mag",
]

FORMAT_NAME = "hipimu-sensor-calibration"
#: Bumped when the meaning of a field changes; a reader refuses files whose
#: ``min_reader_version`` is above the version it implements.
FORMAT_VERSION = 1

MG_M_S2 = GRAVITY_M_S2 / 1000.0  # one milli-g

# --- still detection ------------------------------------------------------------
#: Moving window for the standard deviation that decides "still", s.
STILL_WINDOW_S = 0.5
#: Shortest still segment that counts (after trimming its ends), s.
MIN_SEGMENT_S = 1.5
#: Cut from both ends of every still run, s (beyond half a window).
TRIM_S = 0.25
#: Thresholds: ``STILL_NOISE_FACTOR`` x the quietest 10 % of the recording,
#: clipped to these bounds (norm of the per-axis moving std).
GYR_STILL_SD_RAD_S = (math.radians(0.1), math.radians(1.0))
ACC_STILL_SD_M_S2 = (0.01, 0.15)
STILL_NOISE_FACTOR = 4.0
#: A still segment whose acc drifts more than this (0.5 s chunk means vs the
#: segment mean) is dropped: the board was creeping, not lying still.
ACC_DRIFT_MAX_M_S2 = 0.05

# --- six-pose gates ---------------------------------------------------------------
MIN_STILL_TOTAL_S = 9.0
MIN_POSES = 6
#: Still segments whose gravity directions are closer than this are one pose.
POSE_SEPARATION_DEG = 15.0
#: Each of +x, -x, +y, -y, +z, -z must point up within this angle in some pose.
AXIS_UP_TOLERANCE_DEG = 30.0
#: Largest RMS of |corrected acc| - g over the still segments, m/s^2 (~5 mg).
ACC_RESIDUAL_MAX_M_S2 = 0.05
#: Plausibility: |scale error| and |offset| an LSM6DS3-class part can have.
ACC_SCALE_ERROR_MAX = 0.10
ACC_OFFSET_MAX_M_S2 = 2.0
#: Full symmetric gain only when at least this many still segments and the
#: column-normalised Jacobian is better conditioned than this.
SYMMETRIC_MIN_SEGMENTS = 12
SYMMETRIC_MAX_COND = 50.0

# --- magnetometer gates -------------------------------------------------------------
MAG_MIN_SAMPLES = 200
MAG_MAX_FIT_SAMPLES = 6000
#: Fraction of 100 evenly spread directions that have a sample within 30 deg.
MAG_MIN_COVERAGE = 0.5
MAG_COVERAGE_CAP_DEG = 30.0
#: Smallest eigenvalue of the covariance of the sample directions (1/3 for a
#: uniform sphere, 0 for a turn in one plane).
MAG_MIN_SPREAD = 0.05
MAG_RESIDUAL_MAX_UT = 2.0
MAG_RESIDUAL_MAX_FRACTION = 0.04
#: Largest ratio of the soft-iron matrix's eigenvalues.
MAG_MAX_ANISOTROPY = 1.5


def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _vec(name: str, a: Any) -> np.ndarray:
    v = np.array(a, dtype=np.float64)
    if v.shape != (3,) or not np.isfinite(v).all():
        raise ValueError(f"{name} must be 3 finite numbers, got {a!r}")
    return v


def _mat(name: str, a: Any) -> np.ndarray:
    m = np.array(a, dtype=np.float64)
    if m.shape != (3, 3) or not np.isfinite(m).all():
        raise ValueError(f"{name} must be a 3x3 matrix of finite numbers, got {a!r}")
    if np.linalg.det(m) <= 0:
        raise ValueError(f"{name} must have a positive determinant")
    return m


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.generic):
        return x.item()
    return x


# ----------------------------------------------------------------------------
# The calibration
# ----------------------------------------------------------------------------


@dataclass
class SensorCalibration:
    """Corrections for one sensor board, identified by its device id.

    Attributes
    ----------
    device_id:          the board (``DeviceInfo.device_id``)
    gyr_bias_rad_s:     (3,) subtracted from the gyroscope, rad/s
    acc_offset_m_s2:    (3,) subtracted from the accelerometer, m/s^2
    acc_gain:           (3, 3) dimensionless, ``acc = acc_gain @ (raw - offset)``
    mag_hard_iron_ut:   (3,) or None, subtracted from the magnetometer, uT
    mag_soft_iron:      (3, 3) or None, ``mag = mag_soft_iron @ (raw - hard_iron)``
    mag_field_strength_ut: |corrected field| where the mag was calibrated, uT
    created_utc:        ISO 8601 time of the estimate
    method:             how it was estimated (free text)
    quality:            residuals and counts (units in the key names)
    source:             what it was estimated from (recordings, roles)
    software_version:   the hipimu that made it
    extra:              keys of a newer format, kept so that nothing is lost
    """

    device_id: str
    gyr_bias_rad_s: np.ndarray
    acc_offset_m_s2: np.ndarray
    acc_gain: np.ndarray
    mag_hard_iron_ut: np.ndarray | None = None
    mag_soft_iron: np.ndarray | None = None
    mag_field_strength_ut: float | None = None
    created_utc: str = ""
    method: str = ""
    quality: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    software_version: str = f"hipimu {__version__}"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.device_id, str):
            raise ValueError(f"device_id must be a string, got {self.device_id!r}")
        self.gyr_bias_rad_s = _vec("gyr_bias_rad_s", self.gyr_bias_rad_s)
        self.acc_offset_m_s2 = _vec("acc_offset_m_s2", self.acc_offset_m_s2)
        self.acc_gain = _mat("acc_gain", self.acc_gain)
        if (self.mag_hard_iron_ut is None) != (self.mag_soft_iron is None):
            raise ValueError("mag_hard_iron_ut and mag_soft_iron are given together or not at all")
        if self.mag_hard_iron_ut is not None:
            self.mag_hard_iron_ut = _vec("mag_hard_iron_ut", self.mag_hard_iron_ut)
            self.mag_soft_iron = _mat("mag_soft_iron", self.mag_soft_iron)
        if self.mag_field_strength_ut is not None:
            self.mag_field_strength_ut = float(self.mag_field_strength_ut)

    # -- construction ---------------------------------------------------------

    @classmethod
    def identity(cls, device_id: str) -> "SensorCalibration":
        """No correction at all."""
        return cls(device_id, np.zeros(3), np.zeros(3), np.eye(3), method="identity (no correction)")

    @property
    def has_mag(self) -> bool:
        return self.mag_hard_iron_ut is not None

    def with_mag(self, fit: "MagFit") -> "SensorCalibration":
        """A copy with the magnetometer part of ``fit`` (replacing any earlier one)."""
        return dataclasses.replace(
            self,
            mag_hard_iron_ut=fit.hard_iron_ut.copy(),
            mag_soft_iron=fit.soft_iron.copy(),
            mag_field_strength_ut=fit.field_strength_ut,
            method=(self.method + "; " if self.method else "") + fit.method,
            quality={**self.quality, **fit.quality},
            source=dict(self.source),
            extra=dict(self.extra),
        )

    # -- use ---------------------------------------------------------------------

    def acc_scale_error(self) -> np.ndarray:
        """(3,) per-axis scale error of the raw accelerometer that the gain
        undoes (``raw ~ (1 + e) * true``), dimensionless; from the diagonal
        of the inverse gain."""
        return np.diag(np.linalg.inv(self.acc_gain)) - 1.0

    def correct_gyr(self, gyr_rad_s: np.ndarray) -> np.ndarray:
        return np.asarray(gyr_rad_s, dtype=np.float64) - self.gyr_bias_rad_s

    def correct_acc(self, acc_m_s2: np.ndarray) -> np.ndarray:
        return (np.asarray(acc_m_s2, dtype=np.float64) - self.acc_offset_m_s2) @ self.acc_gain.T

    def correct_mag(self, mag_ut: np.ndarray) -> np.ndarray:
        """Corrected field; unchanged (a copy) when the mag is not calibrated."""
        m = np.array(mag_ut, dtype=np.float64)
        if self.mag_hard_iron_ut is None or self.mag_soft_iron is None:
            return m
        return (m - self.mag_hard_iron_ut) @ self.mag_soft_iron.T

    def apply(self, block: SampleBlock) -> SampleBlock:
        """The block with corrected samples (a new block; ``block`` is not modified).

        Time, sequence numbers and role are kept; a block with a magnetometer
        keeps its raw field when this calibration has no magnetometer part.
        """
        return SampleBlock(
            block.role,
            block.time_s.copy(),
            self.correct_acc(block.acc_m_s2),
            self.correct_gyr(block.gyr_rad_s),
            None if block.mag_ut is None else self.correct_mag(block.mag_ut),
            None if block.seq is None else block.seq.copy(),
        )

    # -- JSON ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON content of ``calibration/<device-id>.json`` (see calibration/README.md)."""
        d: dict[str, Any] = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "min_reader_version": 1,
            "device_id": self.device_id,
            "created_utc": self.created_utc,
            "software_version": self.software_version,
            "gyr_bias_rad_s": self.gyr_bias_rad_s.tolist(),
            "acc_offset_m_s2": self.acc_offset_m_s2.tolist(),
            "acc_gain": self.acc_gain.tolist(),
            "mag_hard_iron_ut": None if self.mag_hard_iron_ut is None else self.mag_hard_iron_ut.tolist(),
            "mag_soft_iron": None if self.mag_soft_iron is None else self.mag_soft_iron.tolist(),
            "mag_field_strength_ut": self.mag_field_strength_ut,
            "method": self.method,
            "quality": _jsonable(self.quality),
            "source": _jsonable(self.source),
        }
        for k, v in self.extra.items():
            d.setdefault(k, _jsonable(v))
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SensorCalibration":
        """Inverse of :meth:`to_dict`. Raises ``ValueError`` (missing or bad
        fields, another format, a file that needs a newer hipimu)."""
        if not isinstance(d, dict):
            raise ValueError("a sensor calibration must be a JSON object")
        fmt = d.get("format", FORMAT_NAME)
        if fmt != FORMAT_NAME:
            raise ValueError(f"not a hipimu sensor calibration (format {fmt!r})")
        need = d.get("min_reader_version", 1)
        if not isinstance(need, int) or need > FORMAT_VERSION:
            raise ValueError(f"written by a newer hipimu (needs reader version {need}, this is {FORMAT_VERSION})")
        missing = [k for k in ("device_id", "gyr_bias_rad_s", "acc_offset_m_s2", "acc_gain") if k not in d]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        known = {f.name for f in dataclasses.fields(cls)}
        envelope = {"format", "format_version", "min_reader_version"}
        extra = dict(d.get("extra") or {})
        extra.update({k: v for k, v in d.items() if k not in known and k not in envelope})
        kwargs = {k: v for k, v in d.items() if k in known and k != "extra"}
        for k in ("quality", "source"):
            if kwargs.get(k) is None:
                kwargs[k] = {}
            elif not isinstance(kwargs[k], dict):
                raise ValueError(f"{k} must be a JSON object")
        for k in ("created_utc", "method", "software_version"):
            if kwargs.get(k) is None:
                kwargs[k] = ""
        try:
            return cls(**kwargs, extra=extra)
        except TypeError as exc:  # a field of the wrong JSON type
            raise ValueError(str(exc)) from exc


# ----------------------------------------------------------------------------
# Still segments
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StillSegment:
    """Samples ``start:stop`` of a block during which the board lay still."""

    start: int
    stop: int
    t0_s: float
    t1_s: float
    acc_mean_m_s2: np.ndarray
    gyr_mean_rad_s: np.ndarray
    acc_sd_m_s2: np.ndarray
    gyr_sd_rad_s: np.ndarray

    @property
    def duration_s(self) -> float:
        return self.t1_s - self.t0_s

    @property
    def n(self) -> int:
        return self.stop - self.start


def _moving_sd(x: np.ndarray, w: int) -> np.ndarray:
    """Norm over axes of the per-axis std in a centred window of ``w`` samples."""
    n = x.shape[0]
    xc = x - x.mean(axis=0)  # better conditioned sums
    c1 = np.vstack([np.zeros((1, 3)), np.cumsum(xc, axis=0)])
    c2 = np.vstack([np.zeros((1, 3)), np.cumsum(xc * xc, axis=0)])
    half = w // 2
    i = np.arange(n)
    lo = np.clip(i - half, 0, n)
    hi = np.clip(i - half + w, 0, n)
    cnt = (hi - lo)[:, None].astype(np.float64)
    mean = (c1[hi] - c1[lo]) / cnt
    var = np.maximum((c2[hi] - c2[lo]) / cnt - mean * mean, 0.0)
    return np.sqrt(var.sum(axis=1))


def _rate_hz(t: np.ndarray) -> float:
    dt = np.diff(t)
    dt = dt[dt > 0]
    if dt.size == 0:
        raise InputError("too few samples to tell the sampling rate")
    return 1.0 / float(np.median(dt))


def find_still_segments(
    block: SampleBlock, *, min_duration_s: float = MIN_SEGMENT_S, window_s: float = STILL_WINDOW_S
) -> list[StillSegment]:
    """Segments of at least ``min_duration_s`` during which the board lay still.

    Still = low moving standard deviation of the gyro and of the
    accelerometer (``window_s`` windows) relative to the quietest part of the
    recording (clipped to :data:`GYR_STILL_SD_RAD_S` / :data:`ACC_STILL_SD_M_S2`),
    no drift of the acc within the segment; the ends of every still run are
    trimmed by half a window plus :data:`TRIM_S`, so that the slow start and
    end of a turn do not count.
    """
    n = len(block)
    if n < 10:
        return []
    t = block.time_s
    rate = _rate_hz(t)
    w = max(5, int(round(window_s * rate)))
    gsd = _moving_sd(block.gyr_rad_s, w)
    asd = _moving_sd(block.acc_m_s2, w)
    g_thr = float(np.clip(STILL_NOISE_FACTOR * np.percentile(gsd, 10), *GYR_STILL_SD_RAD_S))
    a_thr = float(np.clip(STILL_NOISE_FACTOR * np.percentile(asd, 10), *ACC_STILL_SD_M_S2))
    still = (gsd < g_thr) & (asd < a_thr)
    trim = w // 2 + int(round(TRIM_S * rate))
    chunk = max(1, int(round(0.5 * rate)))
    out = []
    for i0, i1 in runs(still):
        i0, i1 = i0 + trim, i1 - trim
        if i1 - i0 < 2 or t[i1 - 1] - t[i0] < min_duration_s:
            continue
        acc = block.acc_m_s2[i0:i1]
        mean = acc.mean(axis=0)
        chunks = [acc[k : k + chunk].mean(axis=0) for k in range(0, i1 - i0 - chunk + 1, chunk)]
        if chunks and max(float(np.linalg.norm(c - mean)) for c in chunks) > ACC_DRIFT_MAX_M_S2:
            continue
        gyr = block.gyr_rad_s[i0:i1]
        out.append(
            StillSegment(i0, i1, float(t[i0]), float(t[i1 - 1]), mean, gyr.mean(axis=0), acc.std(axis=0), gyr.std(axis=0))
        )
    return out


def _cluster_poses(segments: list[StillSegment]) -> list[np.ndarray]:
    """Distinct gravity directions (unit vectors, sensor frame) among the segments."""
    cos_sep = math.cos(math.radians(POSE_SEPARATION_DEG))
    poses: list[np.ndarray] = []
    weights: list[float] = []
    for s in segments:
        u = s.acc_mean_m_s2 / np.linalg.norm(s.acc_mean_m_s2)
        dots = [float(p @ u) for p in poses]
        if dots and max(dots) > cos_sep:
            k = int(np.argmax(dots))
            v = poses[k] * weights[k] + u * s.duration_s
            poses[k] = v / np.linalg.norm(v)
            weights[k] += s.duration_s
        else:
            poses.append(u)
            weights.append(s.duration_s)
    return poses


_AXIS_NAMES = ("x", "y", "z")


def _missing_up_axes(poses: list[np.ndarray]) -> list[str]:
    cos_tol = math.cos(math.radians(AXIS_UP_TOLERANCE_DEG))
    missing = []
    for k, name in enumerate(_AXIS_NAMES):
        for sign, sym in ((1.0, "+"), (-1.0, "-")):
            if not any(sign * p[k] >= cos_tol for p in poses):
                missing.append(f"{sym}{name}")
    return missing


# ----------------------------------------------------------------------------
# Six-pose estimation
# ----------------------------------------------------------------------------

_SYM_INDEX = ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))


def _sym(p6: np.ndarray) -> np.ndarray:
    m = np.empty((3, 3))
    for v, (i, j) in zip(p6, _SYM_INDEX):
        m[i, j] = m[j, i] = v
    return m


def _acc_residuals(p: np.ndarray, a: np.ndarray, g: float, full: bool) -> np.ndarray:
    m = _sym(p[3:9]) if full else np.diag(p[3:6])
    return np.linalg.norm((a - p[:3]) @ m.T, axis=1) - g


def _acc_jacobian_full(p: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Jacobian of the symmetric-gain residuals, columns normalised to unit length."""
    m = _sym(p[3:9])
    d = a - p[:3]
    c = d @ m.T
    u = c / np.linalg.norm(c, axis=1)[:, None]
    cols = [-(u @ m)[:, k] for k in range(3)]
    for i, j in _SYM_INDEX:
        cols.append(u[:, i] * d[:, j] + (u[:, j] * d[:, i] if i != j else 0.0))
    jac = np.column_stack(cols)
    norms = np.linalg.norm(jac, axis=0)
    return jac / np.where(norms > 0, norms, 1.0)


def _fit_acc(a: np.ndarray, g: float) -> tuple[np.ndarray, np.ndarray, str, float]:
    """(offset, gain, model, condition) for segment means ``a`` (K, 3)."""
    # Start: offset from opposite poses, unit gain.
    o0 = 0.5 * (a.max(axis=0) + a.min(axis=0))
    p0 = np.concatenate([o0, np.ones(3)])
    diag = least_squares(_acc_residuals, p0, args=(a, g, False), x_scale=np.r_[0.1, 0.1, 0.1, 0.01, 0.01, 0.01],
                         xtol=1e-12, ftol=1e-12, gtol=1e-12)
    # |diag(s) d| does not see the signs of s: report the positive gains.
    offset, gain, model = diag.x[:3], np.diag(np.abs(diag.x[3:6])), "diagonal"
    cond = math.inf
    if a.shape[0] >= SYMMETRIC_MIN_SEGMENTS:
        p_full = np.concatenate([diag.x[:3], np.abs(diag.x[3:6]), np.zeros(3)])
        sv = np.linalg.svd(_acc_jacobian_full(p_full, a), compute_uv=False)
        cond = float(sv[0] / sv[-1]) if sv[-1] > 0 else math.inf
        if cond < SYMMETRIC_MAX_COND:
            full = least_squares(_acc_residuals, p_full, args=(a, g, True), xtol=1e-12, ftol=1e-12, gtol=1e-12)
            if np.linalg.eigvalsh(_sym(full.x[3:9]))[0] > 0:  # else keep the diagonal fit
                offset, gain, model = full.x[:3], _sym(full.x[3:9]), "symmetric"
    return offset, gain, model, cond


def estimate_from_still_poses(
    block: SampleBlock, *, g: float = GRAVITY_M_S2, device_id: str = "", source: dict[str, Any] | None = None
) -> SensorCalibration:
    """Gyro bias and accelerometer offset and gain from a six-pose recording.

    ``block``: one board lying still in at least six orientations (each axis
    up and down, >= 1.5 s each; ~5 s is better), with turns in between.
    ``g``: the local gravity, m/s^2 (sets the absolute scale only).

    The returned calibration has no magnetometer part (see :func:`estimate_mag`
    and :meth:`SensorCalibration.with_mag`). Its ``quality`` holds
    ``still_s``, ``still_segments``, ``poses`` (distinct), ``acc_residual_rms_m_s2``
    (RMS over the still segments of ``|corrected mean acc| - g``),
    ``acc_fit_dof`` (segments minus fitted parameters: 0 means an exact fit,
    so the residual tells nothing), ``acc_model``, ``acc_noise_m_s2`` and
    ``gyr_noise_rad_s`` (mean per-axis std within segments) and
    ``gyr_bias_std_rad_s`` (largest per-axis std of the segment means: how
    much the bias moved between poses).

    Raises :class:`~hipimu.errors.InputError` (one line) when there is too
    little still time, fewer than six distinct poses, an axis that never
    pointed up or down, or a fit that leaves too large a residual or
    implausible values.
    """
    segs = find_still_segments(block)
    still_s = sum(s.duration_s for s in segs)
    if still_s < MIN_STILL_TOTAL_S:
        raise InputError(
            f"only {still_s:.1f} s of still data in {len(segs)} segment(s) (need >= {MIN_STILL_TOTAL_S:g} s): "
            f"lay the board still for ~5 s in each of six orientations"
        )
    poses = _cluster_poses(segs)
    missing = _missing_up_axes(poses)
    if len(poses) < MIN_POSES or missing:
        n = len(poses)
        raise InputError(
            f"found {n} distinct still pose{'' if n == 1 else 's'}; a six-pose calibration needs the board "
            f"lying still with each axis up and with each axis down"
            + (f" (no pose with {', '.join(missing)} up)" if missing else "")
        )
    a = np.array([s.acc_mean_m_s2 for s in segs])
    offset, gain, model, cond = _fit_acc(a, g)
    resid = np.linalg.norm((a - offset) @ gain.T, axis=1) - g
    rms = float(np.sqrt(np.mean(resid**2)))
    n_par = 9 if model == "symmetric" else 6
    if rms > ACC_RESIDUAL_MAX_M_S2:
        raise InputError(
            f"accelerometer fit leaves {rms / MG_M_S2:.1f} mg RMS of |acc| - g over {len(segs)} still segments "
            f"(max {ACC_RESIDUAL_MAX_M_S2 / MG_M_S2:.0f} mg): was the board really still, or moved during a pose?"
        )
    scale_err = np.diag(np.linalg.inv(gain)) - 1.0
    if np.max(np.abs(scale_err)) > ACC_SCALE_ERROR_MAX or np.max(np.abs(offset)) > ACC_OFFSET_MAX_M_S2:
        raise InputError(
            f"implausible accelerometer calibration (scale error up to {100 * np.max(np.abs(scale_err)):.1f} %, "
            f"offset up to {np.max(np.abs(offset)) / MG_M_S2:.0f} mg): check the recording and the sensor"
        )
    n_still = sum(s.n for s in segs)
    gyr_bias = sum(s.gyr_mean_rad_s * s.n for s in segs) / n_still
    seg_bias = np.array([s.gyr_mean_rad_s for s in segs])
    quality = {
        "still_s": round(still_s, 3),
        "still_segments": len(segs),
        "poses": len(poses),
        "acc_model": model,
        "acc_fit_dof": len(segs) - n_par,
        "acc_residual_rms_m_s2": rms,
        "acc_residual_max_m_s2": float(np.max(np.abs(resid))),
        "acc_noise_m_s2": float(np.mean([s.acc_sd_m_s2.mean() for s in segs])),
        "gyr_noise_rad_s": float(np.mean([s.gyr_sd_rad_s.mean() for s in segs])),
        "gyr_bias_std_rad_s": float(np.max(seg_bias.std(axis=0))),
        "gravity_m_s2": float(g),
    }
    if math.isfinite(cond):
        quality["acc_symmetric_condition"] = cond
    method = (
        f"six-pose still calibration: gyro bias = mean gyro over {still_s:.1f} s still; "
        f"acc offset and {model} gain by least squares on |acc| = g over {len(segs)} still segments "
        f"({len(poses)} poses)"
    )
    return SensorCalibration(
        device_id,
        gyr_bias,
        offset,
        gain,
        created_utc=_utc_now(),
        method=method,
        quality=quality,
        source=dict(source or {}),
    )


# ----------------------------------------------------------------------------
# Magnetometer
# ----------------------------------------------------------------------------


@dataclass
class MagFit:
    """Result of :func:`estimate_mag`: ``corrected = soft_iron @ (raw - hard_iron_ut)``
    has magnitude ``field_strength_ut``; ``soft_iron`` is symmetric with
    determinant 1."""

    hard_iron_ut: np.ndarray
    soft_iron: np.ndarray
    field_strength_ut: float
    quality: dict[str, Any]
    method: str


def _fibonacci_sphere(n: int) -> np.ndarray:
    i = np.arange(n) + 0.5
    polar = np.arccos(1.0 - 2.0 * i / n)
    az = math.pi * (1.0 + math.sqrt(5.0)) * i
    return np.column_stack([np.cos(az) * np.sin(polar), np.sin(az) * np.sin(polar), np.cos(polar)])


_SPHERE_100 = _fibonacci_sphere(100)


def _direction_coverage(v: np.ndarray) -> tuple[float, float]:
    """(fraction of 100 spread directions with a sample within the cap, smallest
    eigenvalue of the direction covariance) of vectors ``v``."""
    u = v / np.linalg.norm(v, axis=1)[:, None]
    cos_cap = math.cos(math.radians(MAG_COVERAGE_CAP_DEG))
    covered = np.zeros(len(_SPHERE_100), dtype=bool)
    for k in range(0, len(u), 2000):
        covered |= (_SPHERE_100 @ u[k : k + 2000].T).max(axis=1) > cos_cap
    spread = float(np.linalg.eigvalsh(u.T @ u / len(u))[0])
    return float(covered.mean()), spread


def _sqrtm_spd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(0.5 * (a + a.T))
    return (v * np.sqrt(w)) @ v.T


def estimate_mag(block: SampleBlock) -> MagFit:
    """Hard and soft iron from a recording of the board turned through all directions.

    Algebraic ellipsoid fit, refined by nonlinear least squares on
    ``|L (m - h)| = 1``; the soft-iron matrix is ``L`` scaled to determinant
    1 and the field strength the ellipsoid's geometric-mean radius, so the
    corrected magnitude equals it.

    ``quality``: ``mag_residual_rms_ut`` (RMS of ``|corrected| - strength``),
    ``mag_coverage`` (fraction of 100 evenly spread directions that the
    corrected field came within 30 deg of), ``mag_spread`` (smallest
    eigenvalue of the direction covariance; 1/3 is a uniform sphere),
    ``mag_anisotropy`` (ratio of the soft-iron eigenvalues), ``mag_samples``.

    Raises :class:`~hipimu.errors.InputError` without a magnetometer, with
    too few samples, too little coverage of directions, a residual above
    ``max(2 uT, 4 %)`` or an implausibly strong soft-iron correction.
    """
    if block.mag_ut is None:
        raise InputError(f"sensor {block.role} has no magnetometer")
    m_all = block.mag_ut
    if m_all.shape[0] < MAG_MIN_SAMPLES:
        raise InputError(f"only {m_all.shape[0]} magnetometer samples (need >= {MAG_MIN_SAMPLES})")
    step = max(1, m_all.shape[0] // MAG_MAX_FIT_SAMPLES)
    m = m_all[::step]
    poor = "turn the board slowly through all directions (every axis up, down and around)"

    centre0 = m.mean(axis=0)
    x = m - centre0  # fit in centred coordinates (better conditioned)
    scale = float(np.sqrt(np.mean(np.sum(x * x, axis=1))))
    if not scale > 0:
        raise InputError(f"the magnetometer of {block.role} does not change: {poor}")
    xs = x / scale
    d = np.column_stack([xs[:, 0] ** 2, xs[:, 1] ** 2, xs[:, 2] ** 2, 2 * xs[:, 0] * xs[:, 1],
                         2 * xs[:, 0] * xs[:, 2], 2 * xs[:, 1] * xs[:, 2], 2 * xs[:, 0], 2 * xs[:, 1], 2 * xs[:, 2]])
    v, *_ = np.linalg.lstsq(d, np.ones(len(xs)), rcond=None)
    a_mat = _sym(np.array([v[0], v[1], v[2], v[3], v[4], v[5]]))
    try:
        centre_s = -np.linalg.solve(a_mat, v[6:9])
    except np.linalg.LinAlgError:
        raise InputError(f"magnetometer data of {block.role} do not form an ellipsoid: {poor}") from None
    k = 1.0 + centre_s @ a_mat @ centre_s
    shape = a_mat / k if k != 0 else a_mat
    if k <= 0 or np.linalg.eigvalsh(shape)[0] <= 0:
        raise InputError(f"magnetometer data of {block.role} do not form an ellipsoid: {poor}")
    h0 = centre0 + scale * centre_s
    l0 = _sqrtm_spd(shape) / scale
    # Refuse poor coverage before refining: a degenerate fit can take long to converge.
    coverage, spread = _direction_coverage((m - h0) @ l0.T)
    if coverage < MAG_MIN_COVERAGE or spread < MAG_MIN_SPREAD:
        raise InputError(
            f"magnetometer data of {block.role} cover {100 * coverage:.0f} % of directions "
            f"(need >= {100 * MAG_MIN_COVERAGE:.0f} %): {poor}"
        )

    def resid(p: np.ndarray) -> np.ndarray:
        return np.linalg.norm((m - p[:3]) @ _sym(p[3:9]).T, axis=1) - 1.0

    p0 = np.concatenate([h0, [l0[i, j] for i, j in _SYM_INDEX]])
    fit = least_squares(resid, p0, x_scale=np.r_[np.full(3, scale), np.full(6, 1.0 / scale)], xtol=1e-10, ftol=1e-10,
                        max_nfev=200)
    hard = fit.x[:3]
    l_mat = _sym(fit.x[3:9])
    w = np.linalg.eigvalsh(l_mat)
    if w[0] <= 0:
        raise InputError(f"magnetometer data of {block.role} do not form an ellipsoid: {poor}")
    strength = float(np.prod(w) ** (-1.0 / 3.0))
    soft = l_mat * strength
    corrected = (m_all - hard) @ soft.T
    mag_norm = np.linalg.norm(corrected, axis=1)
    rms = float(np.sqrt(np.mean((mag_norm - strength) ** 2)))
    coverage, spread = _direction_coverage(corrected[::step])
    anisotropy = float(w[-1] / w[0])
    quality = {
        "mag_samples": int(m_all.shape[0]),
        "mag_residual_rms_ut": rms,
        "mag_coverage": coverage,
        "mag_spread": spread,
        "mag_anisotropy": anisotropy,
    }
    if coverage < MAG_MIN_COVERAGE or spread < MAG_MIN_SPREAD:
        raise InputError(
            f"magnetometer data of {block.role} cover {100 * coverage:.0f} % of directions "
            f"(need >= {100 * MAG_MIN_COVERAGE:.0f} %): {poor}"
        )
    limit = max(MAG_RESIDUAL_MAX_UT, MAG_RESIDUAL_MAX_FRACTION * strength)
    if rms > limit:
        raise InputError(
            f"magnetometer fit of {block.role} leaves {rms:.1f} uT RMS (max {limit:.1f} uT): "
            "iron or a magnet nearby, or a disturbed field; calibrate away from metal"
        )
    if anisotropy > MAG_MAX_ANISOTROPY:
        raise InputError(
            f"magnetometer soft-iron correction of {block.role} is implausibly strong (axes differ "
            f"{100 * (anisotropy - 1):.0f} %): calibrate away from metal and turn the board through all directions"
        )
    method = (
        f"magnetometer ellipsoid fit over {m_all.shape[0]} samples: hard iron = centre, soft iron = symmetric "
        f"shape (det 1), field strength {strength:.1f} uT"
    )
    return MagFit(hard, soft, strength, quality, method)
