"""What the dashboard shows, as plain data: no Qt, no angle computation.

The engine (:mod:`hipimu.apps.dashboard.engine`, a thread of its own) sends
:class:`Update` objects; the window drains them on its frame timer, applies
them here (:meth:`DashboardModel.apply`) and draws from the result. Angles
arrive computed (radians, :class:`~hipimu.core.live_types.AngleBlock`); here
they are only turned into degrees, kept in ring buffers for the time series,
and summarised for display: current values, peak hold, quality light, pelvis
change since the trial began.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hipimu.core.conventions import CALIBRATION_PHASES_OF_METHOD, ROLES, SIDES
from hipimu.core.live_types import AngleBlock, GuideState
from hipimu.apps.config import load_bands
from hipimu.core.model import Event, SessionInfo
from hipimu.core.norms import COMPENSATION_DEG, DEFAULT_BANDS_DEG
from hipimu.core.quality import RELIABLE

__all__ = ["Ring", "SensorStatus", "TrialResult", "Update", "DashboardModel", "QUALITY_LEVELS", "CALIBRATION_METHOD_LABELS",
           "DEFAULT_BANDS_DEG", "load_bands", "quality_level", "link_quality"]

#: Time series shown (s) and kept (s, a little more: the plot's left edge).
WINDOW_S = 30.0
KEEP_S = 32.0

#: Quality light: green at or above the first (reliable: hipimu.core.quality.RELIABLE),
#: amber at or above the second (an expected hip rotation error of ~2 deg), else red.
QUALITY_LEVELS = (RELIABLE, 0.2)

#: Pelvis change (deg) during a rotation trial above which it is flagged as compensation.
COMPENSATION_FLAG_DEG = COMPENSATION_DEG

#: Target bands (deg) per test (hipimu.core.norms; sources: docs/norms.md), shown behind the
#: hip rotation trace and next to the numbers; ``--bands FILE`` or ``$HIPIMU_CONFIG_DIR/bands.json``
#: override them (hipimu.apps.config.load_bands).


#: The guided calibration methods the calibration screen offers, as it names them.
CALIBRATION_METHOD_LABELS = {"routine": "Standing routine", "seated": "Seated (cannot stand)", "walk": "Walk"}


def quality_level(q: float | None) -> str:
    """``green``, ``amber`` or ``red`` for an angle quality 0..1 (NaN: red); ``none``
    when there are no angles (None: not calibrated yet)."""
    if q is None:
        return "none"
    if not q >= QUALITY_LEVELS[1]:
        return "red"
    return "green" if q >= QUALITY_LEVELS[0] else "amber"


def link_quality(state: str, loss_percent: float, rssi_dbm: float) -> str:
    """``good``, ``fair``, ``poor`` or ``lost`` for one sensor's link."""
    if state not in ("streaming", "recorded", ""):
        return "lost" if state in ("reconnecting", "stopped") else "fair"
    if loss_percent > 5.0 or rssi_dbm < -90.0:
        return "poor"
    if loss_percent > 1.0 or rssi_dbm < -80.0:
        return "fair"
    return "good"


class Ring:
    """The last ``capacity`` rows of a time series: ``t`` (N,) and ``v`` (N, channels)."""

    def __init__(self, capacity: int, channels: int) -> None:
        self.capacity = int(capacity)
        self._t = np.zeros(self.capacity)
        self._v = np.zeros((self.capacity, channels))
        self._end = 0  # rows written in total (the next row's absolute index)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def clear(self) -> None:
        self._end = self._size = 0

    def append(self, t: np.ndarray, v: np.ndarray) -> None:
        t = np.asarray(t, dtype=np.float64)
        v = np.asarray(v, dtype=np.float64).reshape(len(t), -1)
        if len(t) > self.capacity:
            t, v = t[-self.capacity:], v[-self.capacity:]
        n = len(t)
        i = self._end % self.capacity
        first = min(n, self.capacity - i)
        self._t[i:i + first], self._v[i:i + first] = t[:first], v[:first]
        self._t[:n - first], self._v[:n - first] = t[first:], v[first:]
        self._end += n
        self._size = min(self._size + n, self.capacity)

    def drop_from(self, t0: float) -> None:
        """Forget the rows at or after ``t0`` (a revision replaces them)."""
        t, _ = self.data()
        keep = int(np.searchsorted(t, t0, side="left"))
        dropped = len(t) - keep
        self._end -= dropped
        self._size -= dropped

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        """(t, v) in time order (views when they do not wrap, else copies)."""
        n = self._size
        start = (self._end - n) % self.capacity
        if start + n <= self.capacity:
            return self._t[start:start + n], self._v[start:start + n]
        k = self.capacity - start
        return (np.concatenate([self._t[start:], self._t[:n - k]]),
                np.concatenate([self._v[start:], self._v[:n - k]]))

    def last(self) -> tuple[float, np.ndarray] | None:
        if not self._size:
            return None
        i = (self._end - 1) % self.capacity
        return float(self._t[i]), self._v[i].copy()


@dataclass
class SensorStatus:
    """One sensor as the sensors table shows it."""

    role: str
    name: str = ""
    device_id: str = ""
    state: str = "waiting"
    battery_percent: float = math.nan
    rate_hz: float = math.nan
    loss_percent: float = 0.0
    rssi_dbm: float = math.nan
    latency_ms: float = math.nan
    reconnects: int = 0

    @property
    def connected(self) -> bool:
        """Streaming now (live), or a sensor of the recording (replay)."""
        return self.state in ("streaming", "recorded")

    @property
    def link(self) -> str:
        return link_quality(self.state, self.loss_percent, self.rssi_dbm)


@dataclass
class TrialResult:
    """One finished trial (degrees, at the user's edge)."""

    test: str
    side: str
    index: int
    start_s: float
    end_s: float
    values_deg: dict[str, float] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)


@dataclass
class Update:
    """A change from the engine. ``kind`` and its payload:

    ``angles`` (AngleBlock), ``sensors`` (list of SensorStatus), ``guide``
    (GuideState), ``event`` (Event, recorded), ``trial`` (dict: test, side,
    index, active), ``result`` (TrialResult), ``recording`` (dict: path,
    active, elapsed_s), ``session`` (SessionInfo), ``status`` (str: a line
    for the status bar), ``error`` (str), ``replay`` (dict: duration_s,
    position_s, playing, speed), ``scan`` (list of dict: scan rows),
    ``calibration_method`` (str: the guided calibration method chosen),
    ``reset`` (a replay seek: the series start again), ``clear_results``
    (recomputed: the results follow), ``exported`` (str: a CSV written).
    """

    kind: str
    payload: Any = None


class DashboardModel:
    """Everything the window draws. Owned by the GUI thread; changed only by :meth:`apply` and the
    few view-side actions (peak reset)."""

    def __init__(self, *, rate_hz: float = 100.0, bands: dict[str, dict[str, tuple[float, float]]] | None = None,
                 mode: str = "live") -> None:
        self.mode = mode
        self.rate_hz = rate_hz
        self.bands = bands if bands is not None else load_bands(None)
        capacity = int(KEEP_S * rate_hz) + 16
        self.hip = {s: Ring(capacity, 3) for s in SIDES}  # deg: flexion, adduction, IR
        self.pelvis = Ring(capacity, 3)  # deg: tilt, obliquity, rotation
        self.quality = Ring(capacity, 1)
        self.sides: list[str] = []
        self.now_s = math.nan
        self.sensors: dict[str, SensorStatus] = {}
        self.scan_rows: list[dict[str, Any]] = []
        self.guide: GuideState | None = None
        self.calibration_method = "routine"  # the guided calibration chosen (the guide's, once it runs)
        self.session = SessionInfo()
        self.events: list[Event] = []
        self.trial: dict[str, Any] = {"active": False, "test": "", "side": "", "index": 0}
        self.results: list[TrialResult] = []
        self.recording: dict[str, Any] = {"active": False, "path": "", "elapsed_s": 0.0}
        self.replay: dict[str, Any] = {}
        self.status = ""
        self.errors: list[str] = []
        self.exported: list[str] = []
        # per-trial peak hold: side -> {"ir": (deg, t), "er": (deg, t)}; pelvis at the trial's start
        self.peaks: dict[str, dict[str, tuple[float, float]]] = {}
        self._peak_from_s = -math.inf
        self._pelvis_at_start: np.ndarray | None = None
        self.pelvis_change_max_deg = np.zeros(3)
        self.version = 0  # bumped by every change: the window redraws when it moved

    # -- from the engine ---------------------------------------------------------

    def apply(self, update: Update) -> None:
        getattr(self, f"_on_{update.kind}")(update.payload)
        self.version += 1

    def _on_angles(self, block: AngleBlock) -> None:
        if not len(block):
            return
        t = block.time_s
        if block.revises:
            for ring in (*self.hip.values(), self.pelvis, self.quality):
                ring.drop_from(float(t[0]))
        for side, a in block.hip.items():
            if side not in self.sides:
                self.sides = [s for s in SIDES if s in (*self.sides, side)]
            self.hip[side].append(t, np.degrees(a))
        self.pelvis.append(t, np.degrees(block.pelvis))
        self.quality.append(t, block.quality)
        self.now_s = float(t[-1])
        if block.revises:
            self._recompute_peaks()
        else:
            self._update_peaks(t, {s: np.degrees(a) for s, a in block.hip.items()}, np.degrees(block.pelvis))

    def _on_sensors(self, rows: list[SensorStatus]) -> None:
        self.sensors = {r.role: r for r in sorted(rows, key=lambda r: list(ROLES).index(r.role) if r.role in ROLES else 9)}

    def _on_scan(self, rows: list[dict[str, Any]]) -> None:
        self.scan_rows = list(rows)

    def _on_guide(self, state: GuideState) -> None:
        self.guide = state
        self.calibration_method = state.method

    def _on_calibration_method(self, method: str) -> None:
        if method in CALIBRATION_PHASES_OF_METHOD:
            self.calibration_method = method

    def _on_event(self, event: Event) -> None:
        self.events.append(event)

    def _on_trial(self, trial: dict[str, Any]) -> None:
        self.trial = dict(trial)
        if trial.get("active"):
            self.reset_peaks(float(trial.get("start_s", self.now_s)))

    def _on_result(self, result: TrialResult) -> None:
        self.results.append(result)

    def _on_recording(self, rec: dict[str, Any]) -> None:
        self.recording = {**self.recording, **rec}

    def _on_session(self, info: SessionInfo) -> None:
        self.session = info

    def _on_status(self, line: str) -> None:
        self.status = line

    def _on_error(self, line: str) -> None:
        self.errors.append(line)
        self.status = line

    def _on_replay(self, state: dict[str, Any]) -> None:
        self.replay = {**self.replay, **state}

    def _on_clear_results(self, _payload: Any) -> None:
        self.results = []

    def _on_exported(self, path: str) -> None:
        self.exported.append(path)

    def _on_reset(self, _payload: Any) -> None:
        """A replay seek: the series start again."""
        for ring in (*self.hip.values(), self.pelvis, self.quality):
            ring.clear()
        self.now_s = math.nan
        self.reset_peaks(-math.inf)

    # -- peak hold ------------------------------------------------------------------

    def reset_peaks(self, from_s: float | None = None) -> None:
        """Start the peak hold (and the pelvis change) afresh from ``from_s`` (default: now)."""
        self._peak_from_s = self.now_s if from_s is None else from_s
        if not math.isfinite(self._peak_from_s):
            self._peak_from_s = -math.inf
        self._recompute_peaks()
        self.version += 1

    def _recompute_peaks(self) -> None:
        self.peaks = {}
        self._pelvis_at_start = None
        self.pelvis_change_max_deg = np.zeros(3)
        tp, vp = self.pelvis.data()
        sel = tp >= self._peak_from_s
        hips = {}
        for side in self.sides:
            t, v = self.hip[side].data()
            hips[side] = v[t >= self._peak_from_s]
        self._update_peaks(tp[sel], hips, vp[sel])

    def _update_peaks(self, t: np.ndarray, hip_deg: dict[str, np.ndarray], pelvis_deg: np.ndarray) -> None:
        keep = t >= self._peak_from_s
        if not keep.any():
            return
        t = t[keep]
        for side, a in hip_deg.items():
            rot = a[keep][:, 2]
            p = self.peaks.setdefault(side, {})
            i, j = int(np.argmax(rot)), int(np.argmin(rot))
            if rot[i] > 0 and rot[i] > p.get("ir", (-math.inf, 0.0))[0]:
                p["ir"] = (float(rot[i]), float(t[i]))
            if rot[j] < 0 and -rot[j] > p.get("er", (-math.inf, 0.0))[0]:
                p["er"] = (float(-rot[j]), float(t[j]))
        pel = pelvis_deg[keep]
        if self._pelvis_at_start is None:
            self._pelvis_at_start = pel[0].copy()
        change = np.abs(pel - self._pelvis_at_start).max(axis=0)
        self.pelvis_change_max_deg = np.maximum(self.pelvis_change_max_deg, change)

    # -- what the window reads --------------------------------------------------------

    def current(self) -> dict[str, Any]:
        """The latest values (deg): ``hip[side]`` = (flexion, adduction, IR), ``pelvis`` = (tilt,
        obliquity, rotation), ``quality`` 0..1, ``level`` (light), ``pelvis_change`` since the trial
        began (deg, 3), ``time_s``."""
        out: dict[str, Any] = {"time_s": self.now_s, "hip": {}, "pelvis": None, "quality": math.nan}
        for side in self.sides:
            last = self.hip[side].last()
            if last is not None:
                out["hip"][side] = last[1]
        last = self.pelvis.last()
        if last is not None:
            out["pelvis"] = last[1]
            if self._pelvis_at_start is not None:
                out["pelvis_change"] = last[1] - self._pelvis_at_start
        q = self.quality.last()
        if q is not None:
            out["quality"] = float(q[1][0])
        out["level"] = quality_level(out["quality"] if q is not None else None)
        return out

    def heading_unreliable(self) -> bool:
        return self.current()["level"] == "red" and bool(self.sides)

    def compensation_flagged(self) -> bool:
        return bool(self.trial.get("active")) and float(self.pelvis_change_max_deg.max()) > COMPENSATION_FLAG_DEG

    def band(self, quantity: str, test: str | None = None) -> tuple[float, float] | None:
        test = test or self.trial.get("test") or self.session.test or "free"
        return self.bands.get(test, {}).get(quantity)

    def calibration_phases(self) -> tuple[str, ...]:
        """The steps of the chosen calibration method (before the guide runs: all of them;
        the guide leaves out a leg without a sensor)."""
        if self.guide is not None and self.guide.method == self.calibration_method:
            return tuple(st.phase for st in self.guide.steps)
        return CALIBRATION_PHASES_OF_METHOD[self.calibration_method]

    def calibration_method_switchable(self) -> bool:
        """The method can be changed: no guide yet, or no step of it done."""
        return self.guide is None or not self.guide.started
