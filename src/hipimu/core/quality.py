"""How much to trust the hip angles, sample by sample: an expected hip-rotation error.

Every grid instant gets an **expected error** ``E`` (deg) of hip rotation (the
angle most exposed to heading and axis errors; adduction with the femur
horizontal shares the heading part), the sum of documented contributions, per
thigh (the worse thigh counts):

``E = E_cal + E_heading + E_soft_tissue + E_disturbance (+ E_mag in 9D)``

* ``E_cal`` -- the anatomical calibration. Its axes carry an error ``a``
  (deg) that depends on the method and grade (:data:`AXIS_ERROR_DEG`,
  :data:`METHOD_FACTOR`); it shows in proportion to how far the femur is from
  the posture in which the thigh was last tared (the calibration's still
  posture: upright standing, or sitting for ``seated``; a ``zero`` event: the
  hold's posture): ``a * |sin(tilt) - sin(tilt_ref)|``
  (``tilt``: femur from vertical). A static-only calibration's axes come from
  the mounting: it also gets :data:`STATIC_FLOOR_DEG` in any posture, reached
  :data:`STATIC_TRUST_S` after its standing window (never reliable for long).
* ``E_heading`` -- the relative heading of pelvis and thigh. 6D: integrated,
  it grows from the thigh's last alignment (standing calibration, zero event,
  still standing) with time (:data:`HEADING_DRIFT_DEG_S_6D`) and with turning
  (:data:`TURN_ERROR_FRACTION` of the larger of the two segments' turns about
  the vertical). 9D: observed, a small residual drift only
  (:data:`HEADING_DRIFT_DEG_S_9D`).
* ``E_mag`` (9D, when the magnetometer samples are given) -- a disturbed field
  (its norm and dip deviating from their values during the standing
  calibration) pulls the heading: :data:`MAG_DEG_PER_UT` per uT of norm
  change plus :data:`MAG_DEG_PER_DIP_DEG` per degree of dip change.
* ``E_soft_tissue`` -- the thigh sensor under-reads hip rotation as the skin
  slides over the femur: :data:`SOFT_TISSUE_FRACTION` of the hip rotation.
* ``E_disturbance`` -- fast movement and impacts: the orientation filters lag
  and lean on an accelerometer that measures more than gravity.
  :data:`RATE_ERROR_S` x the fastest segment's angular speed (deg/s), plus,
  when the accelerometer samples are given, :data:`ACC_DEG_PER_G` per g of
  specific force away from 1 g; held with a decay of
  :data:`DISTURBANCE_HOLD_S` (a brief dip after the event).

The quality is ``1 / (1 + (E / ERROR_AT_RELIABLE_DEG) ** QUALITY_EXPONENT)``:
1 for a small expected error, :data:`RELIABLE` (0.5) at 1.5 deg, under 0.1
beyond 2.6 deg; 0 wherever a sensor's samples were lost (filled over a gap).
1.5 deg is the issue's accuracy target for hip rotation; with the exponent 4
the quality stays near 1 while the expected error is well below it and falls
quickly past it, so that ``quality >= RELIABLE`` selects samples whose error
stays within ~2x the target (the 95th percentile, measured with
``bench/accuracy.py``, is <= 3 deg).

Pure: arrays in, arrays out. :class:`QualityTracker` keeps what the series so
far needs (cumulative turns, the disturbance hold, the turn and posture at
each anchor) so that the live path, fed chunk by chunk, gives the batch
path's numbers; the batch path calls it once over the whole series.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

__all__ = ["RELIABLE", "ERROR_AT_RELIABLE_DEG", "QualityTracker", "quality_from_error"]

#: quality >= RELIABLE: the angles are reliable (the CLI's and the report's
#: "reliable" share, the dashboard's green/amber boundary).
RELIABLE = 0.5
#: The expected hip rotation error (deg) at which the quality is RELIABLE.
ERROR_AT_RELIABLE_DEG = 1.5
QUALITY_EXPONENT = 4.0

#: Hip rotation error (deg) per unit sin(femur tilt) that the anatomical
#: calibration's axes leave, by grade. A: measured with bench/accuracy.py on
#: the 9D squats (heading observed, ~100 deg of flexion, no zero event: hip
#: rotation RMSE 0.96-1.02 over 10 seeds); the knee-lift axis error itself is
#: up to 1.8 deg, RMS 1.3 (bench/knee_lift_axis.py), of which part goes into
#: rotation. B, C scaled by their axis bands (3-6, 6-10 deg against A's < 3);
#: D: the mounting itself (a strap tilts a board by up to ~20 deg).
AXIS_ERROR_DEG = {"A": 1.0, "B": 3.0, "C": 5.5, "D": 10.0}
#: Per method, times the grade's axis error: the routine's knee lifts are the
#: reference; walking and seated movements define the axes less cleanly
#: (smaller, less planar excursions).
METHOD_FACTOR = {"routine": 1.0, "walk": 1.5, "seated": 1.3, "static": 1.0}
#: A static-only calibration: this much (deg) in every posture, reached this
#: long (s) after its standing window (a policy, not a measurement: its axes
#: are assumed from the mounting, and within seconds the subject moves).
STATIC_FLOOR_DEG = 2.0
STATIC_TRUST_S = 5.0

#: Relative heading drift (deg/s) from the last alignment: residual gyro bias
#: about the vertical (6D, VQF with rest bias estimation; measured on the
#: virtual subject standing for 400 s after the routine without re-alignment,
#: seeds 4-6: 0 to 0.023 deg/s of hip rotation error growth, ~0.016 typical);
#: 9D: the magnetometer holds it, about a tenth remains.
HEADING_DRIFT_DEG_S_6D = 0.015
HEADING_DRIFT_DEG_S_9D = 0.002
#: Fraction of every turn about the vertical (6D): gyro scale and axis errors
#: differ between boards (~0.5 % after a bias-only sensor calibration), so a
#: 180 deg turn leaves two sensors ~1 deg apart. 9D: observed.
TURN_ERROR_FRACTION = 0.005
TURN_ERROR_FRACTION_9D = 0.0

#: Magnetic disturbance (9D): a horizontal disturbance of d uT against the
#: ~20 uT horizontal earth field turns the heading by up to atan(d / 20)
#: (~2.9 deg/uT); VQF rejects what it detects (norm > 10 %, dip > 10 deg off),
#: so a tenth of that is charged per uT of norm change, and the dip change
#: likewise per degree (geometry, not measured: the virtual subject's field is
#: undisturbed).
MAG_DEG_PER_UT = 0.3
MAG_DEG_PER_DIP_DEG = 0.2

#: Soft tissue: the skin and muscle under a thigh sensor slide over the femur
#: when the hip rotates, so the sensor under-reads hip rotation (hardware.md,
#: section 9): expected error (deg) per deg of hip rotation. An assumption,
#: not a measurement on people (the literature reports more for the thigh's
#: axial rotation; the virtual subject's thigh sensors lag by 3-8 %).
SOFT_TISSUE_FRACTION = 0.05

#: Fast movement: expected error (deg) per deg/s of the fastest segment's
#: angular speed (i.e. a lag, s): filters and soft tissue lag the bone.
RATE_ERROR_S = 0.004
#: Impacts: expected error (deg) per g of specific force away from 1 g.
ACC_DEG_PER_G = 1.0
#: The disturbance decays with this time constant (s) after the event.
DISTURBANCE_HOLD_S = 0.5

_UP = np.array([0.0, 1.0, 0.0])
_G = 9.80665
_TINY = 1e-300
#: Cumulative turns are summed in integers of this (deg): exact, so chunk by chunk = all at once.
_TURN_UNIT_DEG = 1e-9


def quality_from_error(err_deg: np.ndarray) -> np.ndarray:
    """Expected error (deg) -> quality 0..1 (RELIABLE at ERROR_AT_RELIABLE_DEG)."""
    x = np.asarray(err_deg, dtype=np.float64) / ERROR_AT_RELIABLE_DEG
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + x**QUALITY_EXPONENT)


def calibration_axis_error_deg(calibration: Any) -> tuple[str, float]:
    """(method, axis error in deg) of an anatomical calibration (a static
    calibration is graded D)."""
    method = calibration.method
    grade = "D" if method == "static" else calibration.grade
    return method, AXIS_ERROR_DEG.get(grade, AXIS_ERROR_DEG["D"]) * METHOD_FACTOR.get(method, 1.5)


def world_steps(r: Rotation) -> np.ndarray:
    """Rotation vectors (rad, world frame) from each orientation to the next."""
    return (r[1:] * r[:-1].inv()).as_rotvec()


class QualityTracker:
    """The quality of a growing series of grid instants.

    ``calibration``: the :class:`~hipimu.core.calibration.AnatomicalCalibration`;
    ``roles``: the sensors (pelvis first); ``use_mag``: 9D;
    ``mag_reference``: role -> (norm uT, dip deg) at the standing calibration
    (9D, when magnetometer samples are given to :meth:`update`);
    ``keep_s``: how much history a revision may reach back (None: all).
    """

    def __init__(self, calibration: Any, roles: Sequence[str], *, use_mag: bool,
                 mag_reference: Mapping[str, tuple[float, float]] | None = None, keep_s: float | None = None) -> None:
        self.roles = list(roles)
        self.thighs = [r for r in self.roles if r != "pelvis"]
        self.use_mag = use_mag
        self.method, self.axis_deg = calibration_axis_error_deg(calibration)
        self.static_from_s = float(calibration.windows.static[1])
        self.mag_reference = dict(mag_reference or {})
        self.keep_s = keep_s
        self._prev: dict[str, Rotation] = {}  # role -> last rotation seen
        self._turned: dict[str, int] = {}  # role -> cumulative turn (_TURN_UNIT_DEG) at the last instant
        self._dist_max = -np.inf  # running max of log(x_k) + t_k / tau
        self._t_end = -np.inf
        # history of per-instant inputs: t, turned per role, sin(tilt) per thigh, disturbance
        self._hist: dict[str, np.ndarray] = {}
        self._anchor_memo: dict[tuple[str, float], tuple[float, float, float]] = {}

    # -- per-instant inputs ------------------------------------------------------------
    def _new_inputs(self, grid: np.ndarray, local: Mapping[str, Rotation], thigh_segments: Mapping[str, Rotation],
                    steps: Mapping[str, np.ndarray] | None, acc_norm_m_s2: Mapping[str, np.ndarray] | None) -> dict[str, np.ndarray]:
        cols: dict[str, np.ndarray] = {"t": grid}
        speed = np.zeros(len(grid))
        dt = np.diff(grid)
        for r in self.roles:
            prev = self._prev.get(r)
            if steps is not None and prev is None:
                st = steps[r]
            else:
                chain = local[r] if prev is None else Rotation.concatenate([prev, local[r]])
                st = world_steps(chain)
            # in integer units of _TURN_UNIT_DEG: a sum that does not depend on the chunking
            ang = np.round(np.abs(np.degrees(st[:, 1])) / _TURN_UNIT_DEG).astype(np.int64)
            base = self._turned.get(r, 0)
            if prev is None:
                cum = np.concatenate([[0], np.cumsum(ang)]) + base
                w = np.degrees(np.linalg.norm(st, axis=1)) / dt if len(dt) else np.zeros(0)
                w = np.concatenate([w[:1] if len(w) else [0.0], w])
            else:
                cum = base + np.cumsum(ang)
                dtc = np.diff(np.concatenate([[self._t_end], grid]))
                w = np.degrees(np.linalg.norm(st, axis=1)) / dtc
            cols[f"turn:{r}"] = cum * _TURN_UNIT_DEG
            speed = np.maximum(speed, w)
            self._prev[r] = local[r][-1]
            self._turned[r] = int(cum[-1])
        for r in self.thighs:
            up_y = np.clip(thigh_segments[r].apply(_UP)[:, 1], -1.0, 1.0)
            cols[f"sin:{r}"] = np.sqrt(np.maximum(0.0, 1.0 - up_y * up_y))  # sin of the tilt from vertical
        x = RATE_ERROR_S * speed
        if acc_norm_m_s2:
            for r in self.roles:
                if r in acc_norm_m_s2:
                    x = x + ACC_DEG_PER_G * np.abs(acc_norm_m_s2[r] / _G - 1.0)
        # decaying peak hold: d(t) = max_{k<=t} x_k exp(-(t - t_k)/tau), in the log domain
        a = np.log(np.maximum(x, _TINY)) + grid / DISTURBANCE_HOLD_S
        m = np.maximum.accumulate(np.concatenate([[self._dist_max], a]))[1:]
        self._dist_max = float(m[-1])
        cols["dist"] = np.exp(m - grid / DISTURBANCE_HOLD_S)
        self._t_end = float(grid[-1])
        return cols

    def _append(self, cols: dict[str, np.ndarray]) -> None:
        if not self._hist:
            self._hist = {k: v.copy() for k, v in cols.items()}
        else:
            self._hist = {k: np.concatenate([self._hist[k], cols[k]]) for k in cols}

    def _trim(self) -> None:
        if self.keep_s is not None:
            keep = self._hist["t"] >= self._t_end - self.keep_s
            if not keep.all():
                self._hist = {k: v[keep] for k, v in self._hist.items()}

    def _from_history(self, grid: np.ndarray) -> dict[str, np.ndarray]:
        i = np.clip(np.searchsorted(self._hist["t"], grid - 1e-9), 0, len(self._hist["t"]) - 1)
        return {k: v[i] for k, v in self._hist.items()}

    def _at_anchor(self, role: str, t: float) -> tuple[float, float, float]:
        """(pelvis turn, thigh turn, thigh sin(tilt)) at the first instant at or after ``t``,
        remembered per anchor (the history is kept only for ``keep_s``)."""
        key = (role, float(t))
        if key not in self._anchor_memo:
            h = self._hist
            i = min(int(np.searchsorted(h["t"], t)), len(h["t"]) - 1)
            self._anchor_memo[key] = (float(h["turn:pelvis"][i]), float(h[f"turn:{role}"][i]), float(h[f"sin:{role}"][i]))
        return self._anchor_memo[key]

    # -- the quality -----------------------------------------------------------------------
    def update(self, grid: np.ndarray, anchors: Sequence[Any], local: Mapping[str, Rotation],
               thigh_segments: Mapping[str, Rotation], filled: np.ndarray, *,
               steps: Mapping[str, np.ndarray] | None = None,
               acc_norm_m_s2: Mapping[str, np.ndarray] | None = None,
               mag: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
               hip_rotation_deg: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """Quality (N,) on ``grid``: new instants (after every one seen so far) or a
        revision of instants seen before (then their inputs come from the history).

        ``anchors``: the heading alignments (``time_s``, ``role``, ``source``);
        ``local``: role -> sensor orientation in its own world on the grid;
        ``thigh_segments``: thigh role -> segment orientation on the grid
        (``local * segment_in_sensor``); ``filled``: a sensor's sample was filled
        over a gap; ``steps``: role -> :func:`world_steps` of ``local`` (batch:
        already computed); ``acc_norm_m_s2``: role -> |specific force| on the grid;
        ``mag``: role -> (norm uT, dip deg) on the grid (9D); ``hip_rotation_deg``:
        thigh role -> the hip rotation on the grid (as handed out: a revision gives
        the revised values), for the soft-tissue part."""
        grid = np.asarray(grid, dtype=np.float64)
        if not len(grid):
            return np.zeros(0)
        if grid[0] <= self._t_end:
            cols = self._from_history(grid)
        else:
            cols = self._new_inputs(grid, local, thigh_segments, steps, acc_norm_m_s2)
            self._append(cols)
        drift = HEADING_DRIFT_DEG_S_9D if self.use_mag else HEADING_DRIFT_DEG_S_6D
        frac = TURN_ERROR_FRACTION_9D if self.use_mag else TURN_ERROR_FRACTION
        since_static = np.clip((grid - self.static_from_s) / STATIC_TRUST_S, 0.0, 1.0)
        err = np.zeros(len(grid))
        for r in self.thighs:
            own = sorted((a for a in anchors if a.role == r), key=lambda a: a.time_s)
            times = np.array([a.time_s for a in own], dtype=np.float64)
            idx = np.searchsorted(times, grid, side="right") - 1
            at = times[np.clip(idx, 0, None)]
            since = np.where(idx >= 0, grid - at, np.inf)
            ref = {t: self._at_anchor(r, t) for t in np.unique(at)}
            pel0 = np.array([ref[t][0] for t in at])
            own0 = np.array([ref[t][1] for t in at])
            turned = np.maximum(cols[f"turn:{r}"] - own0, cols["turn:pelvis"] - pel0)
            e = drift * since + frac * turned
            # calibration axes: relative to the posture of the last tare of the femur's axes
            # (the calibration's own still posture -- standing: upright; seated: horizontal --
            # or a zero event's hold)
            tare_times = np.array([a.time_s for a in own if a.source == "zero event"], dtype=np.float64)
            j = np.searchsorted(tare_times, grid, side="right") - 1
            sin_cal = self._at_anchor(r, float(times[0]))[2] if len(times) else 0.0
            sin_ref = np.full(len(grid), sin_cal)
            if len(tare_times):
                refs = np.array([self._at_anchor(r, t)[2] for t in tare_times])
                sin_ref = np.where(j >= 0, refs[np.clip(j, 0, None)], sin_cal)
            e = e + self.axis_deg * np.abs(cols[f"sin:{r}"] - sin_ref)
            if self.method == "static":
                e = e + STATIC_FLOOR_DEG * since_static
            if hip_rotation_deg is not None and r in hip_rotation_deg:
                e = e + SOFT_TISSUE_FRACTION * np.abs(hip_rotation_deg[r])
            err = np.maximum(err, e)
        err = err + cols["dist"]
        if self.use_mag and mag:
            for r, (norm, dip) in mag.items():
                if r in self.mag_reference:
                    n0, d0 = self.mag_reference[r]
                    err = err + MAG_DEG_PER_UT * np.abs(norm - n0) + MAG_DEG_PER_DIP_DEG * np.abs(dip - d0)
        self._trim()  # after the anchors' lookups: they may reach back into this block
        q = quality_from_error(err)
        q[np.asarray(filled, dtype=bool)] = 0.0
        return q
