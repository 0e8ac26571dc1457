"""Comparison orientation filters from the ``ahrs`` package (Madgwick, Mahony, EKF).

Used by :mod:`hipimu.core.orientation` for ``method`` in ``"madgwick"``,
``"mahony"``, ``"ekf"``; VQF stays the default. These filters run one sample at
a time in Python (ahrs has no batch update that keeps state between calls), so
they run at ~5-25 k samples/s, 100-500x slower than VQF's compiled batch
update (~2-3 M samples/s). They are only for comparison.

Interface (the same as the VQF backend)::

    backend = AhrsBackend(method, ts_s, use_mag, params)
    q_zup_wxyz, rest, bias = backend.update(gyr, acc, mag)   # block after block

In: ``gyr`` (n, 3) rad/s, ``acc`` (n, 3) m/s^2 specific force (reads +g along
up at rest), ``mag`` (n, 3) any unit (the filters only use its direction) or
None, all in the sensor frame, at the fixed interval ``ts_s``.

Out: ``q_zup_wxyz`` (n, 4) scalar-first sensor-to-earth quaternion (written
with w >= 0) in a z-up earth frame, as VQF gives it. In 9D the earth frame is
VQF's ENU: x east, y magnetic north, z up. ``rest`` is all False (no rest
detection in ahrs); ``bias`` is Mahony's gyro-bias estimate (n, 3) rad/s,
None for the others.

State (quaternion, Mahony bias, EKF covariance) lives in the backend, so
feeding a recording in blocks gives the same quaternions, bit for bit, as one
call with all of it.

Frames of the ahrs filters (0.4.0; checked in ``tests/test_ahrs_filters.py``):

* All three keep a sensor-to-earth quaternion with earth z along the
  accelerometer reading, i.e. UP for raw data (specific force).
* Madgwick's magnetic reference is ``(bx, 0, bz)``: earth x = magnetic north,
  so it is north-west-up; its output is turned by +90 deg about z into ENU.
* Mahony's magnetic reference is ``(0, by, bz)``: east-north-up already.
* EKF: ``frame='NED'`` gives the gravity reference ``(0, 0, 1)``, which with
  raw (up-reading) accelerometer data makes earth z up; its ``frame='ENU'``
  would flip z and is not used. The magnetic reference is given as the unit
  vector ``(0, cos dip, -sin dip)`` (ENU, field pointing down by ``dip``), so
  its output is ENU too. ``dip`` is measured from the first sample (angle of
  the field below the horizontal plane of that sample's accelerometer
  reading) unless ``params["magnetic_dip_deg"]`` gives it. ahrs's per-sample
  ``EKF.update`` only uses the magnetometer rows when ``ekf.mag`` is not None,
  so it is set for 9D.

Start: the first sample's accelerometer (and magnetometer in 9D) gives the
initial orientation (tilt; heading from the field in 9D; in 6D the smallest
rotation that levels the sensor, so the 6D heading is arbitrary, as VQF's),
so no filter has to converge from an arbitrary start. (Madgwick and Mahony
skip a sample entirely, accelerometer correction included, when its angular
rate is exactly zero.)

Options (``params``), with the defaults used here:

* madgwick: ``gain`` (0.033, 6D and 9D: on the simulator, with this
  module's first-sample start, it gave smaller tilt errors during fast moves
  than 0.1: max 1.2-3.8 deg against 2.3-7.6 deg on seated_rotation);
* mahony: ``k_P`` (1.0), ``k_I`` (0.3) (ahrs defaults);
* ekf: ``var_gyr`` (0.3**2), ``var_acc`` (0.5**2), ``var_mag`` (0.8**2)
  (ahrs defaults), ``magnetic_dip_deg`` (from the first sample; 9D only).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

__all__ = ["AHRS_METHODS", "AhrsBackend"]

#: method -> {option: default}; None = chosen at run time (see module docstring).
AHRS_METHODS: dict[str, dict[str, float | None]] = {
    "madgwick": {"gain": 0.033},
    "mahony": {"k_P": 1.0, "k_I": 0.3},
    "ekf": {"var_gyr": 0.3**2, "var_acc": 0.5**2, "var_mag": 0.8**2, "magnetic_dip_deg": None},
}

# Madgwick's earth frame is north-west-up: ENU = Rz(+90 deg) * NWU.
_ENU_FROM_NWU = Rotation.from_rotvec([0.0, 0.0, math.pi / 2])


def _check_params(method: str, params: dict[str, Any] | None) -> dict[str, float]:
    known = AHRS_METHODS[method]
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ValueError(f"{method}: params must be a dict or None, got {type(params).__name__}")
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(
            f"{method}: unknown option(s) {', '.join(map(repr, unknown))} (known: {', '.join(known)})"
        )
    out: dict[str, float] = {}
    for key, value in params.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(f"{method}: option {key!r} must be a number, got {value!r}")
        value = float(value)
        if key == "magnetic_dip_deg":
            if not -90.0 < value < 90.0:
                raise ValueError(f"{method}: magnetic_dip_deg must be in (-90, 90), got {value!r}")
        elif key == "k_I":
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"{method}: option 'k_I' must be finite and >= 0, got {value!r}")
        elif not (math.isfinite(value) and value > 0.0):
            raise ValueError(f"{method}: option {key!r} must be finite and > 0, got {value!r}")
        out[key] = value
    return out


def _initial_enu(acc: np.ndarray, mag: np.ndarray | None) -> np.ndarray:
    """Sensor-to-earth (z up; ENU in 9D) quaternion, wxyz, from one sample."""
    up = acc / np.linalg.norm(acc)
    if mag is None:
        # tilt only: the smallest rotation taking the measured up to earth z
        rot, _ = Rotation.align_vectors([[0.0, 0.0, 1.0]], [up])
    else:
        east = np.cross(mag, up)
        east /= np.linalg.norm(east)
        north = np.cross(up, east)
        rot = Rotation.from_matrix(np.vstack([east, north, up]))  # rows: earth axes in the sensor frame
    return rot.as_quat(scalar_first=True)


class AhrsBackend:
    """One ahrs filter, fed block by block (see the module docstring)."""

    def __init__(self, method: str, ts_s: float, use_mag: bool, params: dict[str, Any] | None) -> None:
        if method not in AHRS_METHODS:
            raise ValueError(f"unknown ahrs filter {method!r} (known: {', '.join(AHRS_METHODS)})")
        ts_s = float(ts_s)
        if not (math.isfinite(ts_s) and ts_s > 0.0):
            raise ValueError(f"{method}: ts_s must be a positive number of seconds, got {ts_s!r}")
        self.method = method
        self.ts_s = ts_s
        self.use_mag = bool(use_mag)
        opts = {k: v for k, v in AHRS_METHODS[method].items() if v is not None}
        opts.update(_check_params(method, params))
        self.options = opts
        self._q: np.ndarray | None = None  # last quaternion, in the filter's own frame
        freq = 1.0 / ts_s
        if method == "madgwick":
            from ahrs.filters import Madgwick

            self._filter = Madgwick(frequency=freq, Dt=ts_s, gain=opts["gain"])
            self._step = self._filter.updateMARG if self.use_mag else self._filter.updateIMU
        elif method == "mahony":
            from ahrs.filters import Mahony

            self._filter = Mahony(frequency=freq, Dt=ts_s, k_P=opts["k_P"], k_I=opts["k_I"])
            self._step = self._filter.updateMARG if self.use_mag else self._filter.updateIMU
        else:
            from ahrs.filters import EKF

            # the magnetic reference is set from the first sample (see _start)
            self._filter = EKF(
                frequency=freq, Dt=ts_s, frame="NED", magnetic_ref=0.0,
                var_gyr=opts["var_gyr"], var_acc=opts["var_acc"], var_mag=opts["var_mag"],
            )
            self._step = self._filter.update

    # -- frames ------------------------------------------------------------

    def _to_filter_frame(self, q_enu: np.ndarray) -> np.ndarray:
        if self.method == "madgwick":
            return (_ENU_FROM_NWU.inv() * Rotation.from_quat(q_enu, scalar_first=True)).as_quat(scalar_first=True)
        return q_enu

    def _to_enu(self, q: np.ndarray) -> np.ndarray:
        if self.method == "madgwick":
            q = (_ENU_FROM_NWU * Rotation.from_quat(q, scalar_first=True)).as_quat(scalar_first=True)
        return np.where(q[:, :1] < 0.0, -q, q)

    def _start(self, acc0: np.ndarray, mag0: np.ndarray | None) -> None:
        if not np.linalg.norm(acc0) > 0:
            raise ValueError(f"{self.method}: the first accelerometer sample is zero; cannot find the initial tilt")
        if mag0 is not None and not np.linalg.norm(np.cross(mag0, acc0)) > 0:
            raise ValueError(
                f"{self.method}: the first magnetometer sample is zero or vertical; cannot find the heading"
            )
        self._q = self._to_filter_frame(_initial_enu(acc0, mag0))
        if self.method == "ekf" and mag0 is not None:
            dip = self.options.get("magnetic_dip_deg")
            if dip is None:
                s = -float(np.dot(mag0, acc0)) / (np.linalg.norm(mag0) * np.linalg.norm(acc0))
                dip_rad = math.asin(min(1.0, max(-1.0, s)))
            else:
                dip_rad = math.radians(dip)
            self.options["magnetic_dip_deg"] = math.degrees(dip_rad)
            # ENU reference: horizontal part along north (y), vertical part down (-z)
            self._filter.m_ref = np.array([0.0, math.cos(dip_rad), -math.sin(dip_rad)])
            self._filter.mag = mag0  # ahrs's EKF uses the magnetometer rows only when .mag is set

    # -- update ------------------------------------------------------------

    def update(self, gyr: np.ndarray, acc: np.ndarray, mag: np.ndarray | None):
        gyr = np.asarray(gyr, dtype=np.float64)
        acc = np.asarray(acc, dtype=np.float64)
        if gyr.ndim != 2 or gyr.shape[1] != 3 or acc.shape != gyr.shape:
            raise ValueError(f"{self.method}: gyr and acc must be (n, 3) arrays of the same shape, "
                             f"got {gyr.shape} and {acc.shape}")
        if self.use_mag:
            if mag is None:
                raise ValueError(f"{self.method}: 9D fusion needs magnetometer samples")
            mag = np.asarray(mag, dtype=np.float64)
            if mag.shape != gyr.shape:
                raise ValueError(f"{self.method}: mag must have the shape of gyr {gyr.shape}, got {mag.shape}")
        else:
            mag = None
        n = gyr.shape[0]
        bias = np.zeros((n, 3)) if self.method == "mahony" else None
        rest = np.zeros(n, dtype=bool)
        if n == 0:
            return np.zeros((0, 4)), rest, bias
        if self._q is None:
            self._start(acc[0], None if mag is None else mag[0])

        out = np.empty((n, 4))
        q = self._q
        step = self._step
        if self.method == "mahony":
            filt = self._filter
            if mag is None:
                for i in range(n):
                    q = step(q, gyr[i], acc[i])
                    out[i] = q
                    bias[i] = filt.b
            else:
                for i in range(n):
                    q = step(q, gyr[i], acc[i], mag[i])
                    out[i] = q
                    bias[i] = filt.b
            q = np.array(q, dtype=np.float64)
        elif mag is None:
            for i in range(n):
                q = step(q, gyr[i], acc[i])
                out[i] = q
        else:
            for i in range(n):
                q = step(q, gyr[i], acc[i], mag[i])
                out[i] = q
        self._q = np.array(q, dtype=np.float64)
        return self._to_enu(out), rest, bias
