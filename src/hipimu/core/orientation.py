"""Per-sensor orientation from raw samples: VQF by default, ahrs filters for comparison.

Frames: the result is the sensor-to-world rotation ``R_ws`` in hipimu's world
frame (Y up, see ``docs/conventions.md``). In 6D the heading of each sensor's
world is arbitrary (each filter starts with its own); in 9D it is magnetic
(X east, Z south, Y up). Units: rad/s, m/s^2, uT in; quaternions scalar-first out.

Samples go into the filter as they were recorded, at the device's nominal
sampling interval. A gap (lost packets) is filled with linearly interpolated
samples so that the integration spans it; those samples are flagged ``filled``.

Two forms that give the same result, bit for bit (tested):

* :func:`estimate_orientation` -- a whole recording (offline);
* :class:`OrientationTracker` -- block by block, as a live source delivers them.

Both run the filter's compiled batch update; no per-sample Python loop for VQF.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from hipimu.core.model import SampleBlock

__all__ = ["FILTERS", "Orientation", "OrientationTracker", "estimate_orientation", "R_WORLD_FROM_ZUP"]

#: Orientation filters: name -> description.
FILTERS = {
    "vqf": "VQF (Laidig & Seel 2023), compiled core, rest and motion gyro-bias estimation (default)",
    "madgwick": "ahrs Madgwick (gain 0.033), for comparison",
    "mahony": "ahrs Mahony, for comparison",
    "ekf": "ahrs extended Kalman filter, for comparison",
}

#: Filters work in a z-up earth frame (VQF: ENU). hipimu's world is Y up:
#: world = (x_e, z_e, -y_e), i.e. X east, Y up, Z south in 9D.
R_WORLD_FROM_ZUP = Rotation.from_matrix([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

#: A gap longer than this many nominal intervals is filled (1.5: one lost sample).
_GAP_FACTOR = 1.5


@dataclass(frozen=True, eq=False)
class Orientation:
    """Orientation of one sensor.

    ``time_s`` (N,): the recorded sample instants plus filled ones in gaps;
    ``quat_wxyz`` (N, 4): sensor-to-world ``R_ws``; ``rest`` (N,): the filter
    detected rest; ``gyr_bias_rad_s`` (N, 3) or None: the filter's gyro-bias
    estimate; ``filled`` (N,): the sample was interpolated over a gap.
    """

    role: str
    time_s: np.ndarray
    quat_wxyz: np.ndarray
    rest: np.ndarray
    gyr_bias_rad_s: np.ndarray | None
    filled: np.ndarray

    def rotation(self) -> Rotation:
        return Rotation.from_quat(self.quat_wxyz, scalar_first=True)

    def __len__(self) -> int:
        return int(self.time_s.shape[0])


def _fill_gaps(
    t: np.ndarray,
    acc: np.ndarray,
    gyr: np.ndarray,
    mag: np.ndarray | None,
    ts_s: float,
    prev: tuple[float, np.ndarray, np.ndarray, np.ndarray | None] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """Insert linearly interpolated samples where consecutive samples are more
    than ``_GAP_FACTOR`` nominal intervals apart. ``prev`` is the last sample
    before ``t[0]`` (the previous block), so blocks are filled exactly as the
    whole recording would be."""
    if prev is not None:
        t = np.concatenate([[prev[0]], t])
        acc = np.vstack([prev[1], acc])
        gyr = np.vstack([prev[2], gyr])
        if mag is not None:
            mag = np.vstack([prev[3], mag])
    dt = np.diff(t)
    missing = np.where(dt > _GAP_FACTOR * ts_s, np.rint(dt / ts_s).astype(np.int64) - 1, 0)
    missing = np.maximum(missing, 0)
    if missing.sum() == 0:
        filled = np.zeros(t.shape[0], dtype=bool)
    else:
        # position of every output sample on a "sample index" axis: originals at
        # integer steps, filled samples evenly between their neighbours
        counts = np.concatenate([[0], missing + 1])
        orig_pos = np.cumsum(counts).astype(np.float64)
        n_out = int(orig_pos[-1]) + 1
        pos = np.arange(n_out, dtype=np.float64)
        filled = np.ones(n_out, dtype=bool)
        filled[orig_pos.astype(np.int64)] = False
        t_new = np.interp(pos, orig_pos, t)
        acc = np.column_stack([np.interp(pos, orig_pos, acc[:, i]) for i in range(3)])
        gyr = np.column_stack([np.interp(pos, orig_pos, gyr[:, i]) for i in range(3)])
        if mag is not None:
            mag = np.column_stack([np.interp(pos, orig_pos, mag[:, i]) for i in range(3)])
        t = t_new
    if prev is not None:
        t, acc, gyr, filled = t[1:], acc[1:], gyr[1:], filled[1:]
        if mag is not None:
            mag = mag[1:]
    return t, acc, gyr, mag, filled


class _VqfBackend:
    def __init__(self, ts_s: float, use_mag: bool, params: dict[str, Any] | None) -> None:
        from vqf import VQF

        self.use_mag = use_mag
        self._vqf = VQF(ts_s, **(params or {}))  # VQFParams names as keywords

    def update(self, gyr: np.ndarray, acc: np.ndarray, mag: np.ndarray | None):
        out = self._vqf.updateBatch(
            np.ascontiguousarray(gyr), np.ascontiguousarray(acc), np.ascontiguousarray(mag) if self.use_mag else None
        )
        q = out["quat9D"] if self.use_mag else out["quat6D"]
        return q, out["restDetected"].astype(bool), out["bias"]


def _backend(method: str, ts_s: float, use_mag: bool, params: dict[str, Any] | None):
    if method == "vqf":
        return _VqfBackend(ts_s, use_mag, params)
    if method in ("madgwick", "mahony", "ekf"):
        from hipimu.core._ahrs_filters import AhrsBackend

        return AhrsBackend(method, ts_s, use_mag, params)
    raise ValueError(f"unknown orientation filter {method!r} (known: {', '.join(FILTERS)})")


class OrientationTracker:
    """Incremental orientation of one sensor, fed block by block.

    Parameters
    ----------
    role:      the sensor's role
    rate_hz:   the device's nominal sampling rate (the filter's time step is its inverse)
    use_mag:   fuse the magnetometer (9D); the blocks must carry ``mag_ut``
    method:    one of :data:`FILTERS`
    params:    filter parameters passed through (VQF: its ``VQFParams`` names)
    """

    def __init__(
        self,
        role: str,
        rate_hz: float,
        *,
        use_mag: bool = False,
        method: str = "vqf",
        params: dict[str, Any] | None = None,
    ) -> None:
        if not rate_hz > 0:
            raise ValueError("rate_hz must be positive")
        self.role = role
        self.ts_s = 1.0 / rate_hz
        self.use_mag = use_mag
        self._backend = _backend(method, self.ts_s, use_mag, params)
        self._prev: tuple[float, np.ndarray, np.ndarray, np.ndarray | None] | None = None

    def update(self, block: SampleBlock) -> Orientation:
        """Orientation at the samples of ``block`` (and at filled gap samples before them)."""
        if block.role != self.role:
            raise ValueError(f"tracker of {self.role!r} got a block of {block.role!r}")
        if self.use_mag and block.mag_ut is None:
            raise ValueError(f"{self.role}: 9D fusion needs magnetometer samples")
        mag = block.mag_ut if self.use_mag else None
        if len(block) == 0:
            z = np.zeros((0, 3))
            return Orientation(self.role, np.zeros(0), np.zeros((0, 4)), np.zeros(0, bool), z, np.zeros(0, bool))
        t, acc, gyr, mag, filled = _fill_gaps(block.time_s, block.acc_m_s2, block.gyr_rad_s, mag, self.ts_s, self._prev)
        self._prev = (float(t[-1]), acc[-1:], gyr[-1:], None if mag is None else mag[-1:])
        q_zup, rest, bias = self._backend.update(gyr, acc, mag)
        r = R_WORLD_FROM_ZUP * Rotation.from_quat(q_zup, scalar_first=True)
        return Orientation(self.role, t, r.as_quat(scalar_first=True), rest, bias, filled)


def estimate_orientation(
    block: SampleBlock,
    rate_hz: float,
    *,
    use_mag: bool = False,
    method: str = "vqf",
    params: dict[str, Any] | None = None,
) -> Orientation:
    """Orientation over a whole recording of one sensor (see :class:`OrientationTracker`)."""
    return OrientationTracker(block.role, rate_hz, use_mag=use_mag, method=method, params=params).update(block)
