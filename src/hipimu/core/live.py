"""Angles as the samples arrive: the live counterpart of :mod:`hipimu.core.pipeline`.

:class:`LiveProcessor` is fed sample blocks (any source, any order across
sensors) and, each time it is advanced, hands out what became computable:

1. before the anatomical calibration, the :class:`CalibrationGuide` follows the
   chosen method (docs/calibration.md) live -- ``routine``: stand still (a
   countdown), two hip hinges, three knee lifts per instrumented leg, stand
   still; ``seated``: sit still, three small seated hip lifts per leg, sit
   still; ``walk``: stand still, then walk straight ahead (strides counted);
   each phase is detected from the sensors' own movement, counted, and
   recorded as ``phase_start``/``phase_end`` events; at the end the method's
   calibration runs on those windows, exactly as the batch pipeline does with
   the recorded events -- pass, or fail with the step to redo;
2. after it, hip and pelvis angles on the same grid (``k / rate_hz``) and with
   the same functions as :func:`hipimu.core.kinematics.compute_angles`, so a
   recording of the session processed afterwards gives the same numbers:
   orientations come from the same incremental filter, the calibration from
   the same windows (the guide's events), heading re-alignments from the same
   ``zero`` events (:meth:`LiveProcessor.zero`; the hold's second is revised
   when it is over). Still-standing re-alignment (free movement) needs the
   whole stance and is applied only when the session is processed afterwards;
   live, the quality falls with time since the last zero instead.

Pure core: arrays in, arrays out, no I/O. The dashboard's engine owns one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from hipimu.core.calibration import MAX_STILL_RATE_DEG_S, AnatomicalCalibration, CalibrationError
from hipimu.core.calibration_seated import LIFT_MOVING_DEG_S
from hipimu.core.calibration_select import anatomical_calibration
from hipimu.core.conventions import CALIBRATION_PHASES_OF_METHOD, ROLES, SIDES, hip_angles_rad, pelvis_angles_rad
from hipimu.core.kinematics import (
    ZERO_HOLD_S,
    HeadingAnchor,
    _axial,
    _offsets_on_grid,
    _sensor_on_grid,
    _yaw,
    _zero_anchor,
)
from hipimu.core.live_types import AngleBlock, GuideState, GuideStep
from hipimu.core.model import Event, SampleBlock
from hipimu.core.orientation import Orientation, OrientationTracker
from hipimu.core.segment_axes import HIPIMU_BOARD_MOUNT, Mount
from hipimu.core.quality import QualityTracker

__all__ = ["LiveProcessor", "LiveOutput", "CalibrationGuide", "GUIDED_METHODS"]

#: The calibration methods the guide can run, in the order offered.
GUIDED_METHODS = tuple(CALIBRATION_PHASES_OF_METHOD)

UP = np.array([0.0, 1.0, 0.0])

#: The guide looks at the sensors on this grid (s) and averages their angular
#: speed over the last GUIDE_AVERAGE_S.
GUIDE_STEP_S = 0.02
GUIDE_AVERAGE_S = 0.5
#: Standing still: this long for the first phase, this long for the last (s).
STAND_S = 3.0
STAND_FINAL_S = 2.0
#: Sitting still (the seated routine): the same.
SIT_S, SIT_FINAL_S = STAND_S, STAND_FINAL_S
#: A deliberate movement turns a segment faster than this (deg/s): it opens a phase
#: (a small seated hip lift is slower: hipimu.core.calibration_seated's threshold).
MOVING_DEG_S = 30.0
#: A movement is counted when the segment tilts this far from its standing
#: (seated: sitting) inclination (deg) and comes back within the second threshold.
HINGE_DOWN_DEG, HINGE_BACK_DEG = 20.0, 10.0
LIFT_UP_DEG, LIFT_BACK_DEG = 30.0, 15.0
SEATED_LIFT_UP_DEG, SEATED_LIFT_BACK_DEG = 8.0, 4.0
#: A stride: the (right) thigh's flexion peak, its inclination from standing passing
#: the first and coming back below the second (deg).
STRIDE_UP_DEG, STRIDE_BACK_DEG = 15.0, 5.0
#: The walk is done after this many strides once the subject stands still this long
#: (s), or after the second number of strides.
WALK_STRIDES, WALK_MAX_STRIDES = 5, 8
WALK_STOP_S = 1.0
#: After the last movement the segment is still this long: the phase ends (s).
SETTLE_S = 0.5
#: Phase windows extend this far before the first movement (s), as detection does.
LEAD_S = 0.5
#: Orientation kept once calibrated (s): the zero hold and the revisions need some past.
KEEP_S = 20.0
#: ... and before: the routine must fit in this (older samples are dropped).
KEEP_UNCALIBRATED_S = 300.0
#: New angles at most this often (s of data): each computation has a fixed cost (~4 ms of
#: scipy calls for three sensors, whatever its length), and a display redraws its numbers
#: at 10 Hz. The angles are the same whatever the cadence.
ANGLES_EVERY_S = 0.1

_INSTRUCTIONS = {
    "stand": "Stand still, upright, feet hip-width apart, toes forward",
    "hip_hinge": "Two slow hip hinges: bow forward from the hips (~45°), knees straight, and back up",
    "knee_lift_right": "Three slow knee lifts with the RIGHT leg to ~60° hip flexion",
    "knee_lift_left": "Three slow knee lifts with the LEFT leg to ~60° hip flexion",
    "stand_final": "Stand still again",
    "sit": "Sit still, upright on the plinth: thighs horizontal and supported, feet free, off the backrest",
    "seated_lift_right": "Three small hip lifts with the RIGHT leg: the knee a hand's width off the seat, slowly, and down",
    "seated_lift_left": "Three small hip lifts with the LEFT leg: the knee a hand's width off the seat, slowly, and down",
    "sit_final": "Sit still again",
    "walk": "Walk straight ahead at a normal pace, at least 5 strides, then stand still",
}
_TARGETS = {"stand": 0, "hip_hinge": 2, "knee_lift_right": 3, "knee_lift_left": 3, "stand_final": 0,
            "sit": 0, "seated_lift_right": 3, "seated_lift_left": 3, "sit_final": 0, "walk": WALK_STRIDES}
_MOVER = {"hip_hinge": "pelvis", "knee_lift_right": "thigh_right", "knee_lift_left": "thigh_left",
          "seated_lift_right": "thigh_right", "seated_lift_left": "thigh_left"}
#: Still phases: how long (s).
_STILL = {"stand": STAND_S, "stand_final": STAND_FINAL_S, "sit": SIT_S, "sit_final": SIT_FINAL_S}
#: Movement phases: (opens above deg/s, counted past deg, back below deg).
_COUNTING = {"hip_hinge": (MOVING_DEG_S, HINGE_DOWN_DEG, HINGE_BACK_DEG),
             "knee_lift_right": (MOVING_DEG_S, LIFT_UP_DEG, LIFT_BACK_DEG),
             "knee_lift_left": (MOVING_DEG_S, LIFT_UP_DEG, LIFT_BACK_DEG),
             "seated_lift_right": (LIFT_MOVING_DEG_S, SEATED_LIFT_UP_DEG, SEATED_LIFT_BACK_DEG),
             "seated_lift_left": (LIFT_MOVING_DEG_S, SEATED_LIFT_UP_DEG, SEATED_LIFT_BACK_DEG),
             "walk": (MOVING_DEG_S, STRIDE_UP_DEG, STRIDE_BACK_DEG)}
_WHAT = {"hip_hinge": "hinges", "knee_lift_right": "knee lifts", "knee_lift_left": "knee lifts",
         "seated_lift_right": "hip lifts", "seated_lift_left": "hip lifts", "walk": "strides"}


class _Buffer:
    """One sensor's orientation so far (growing arrays, trimmed at the front)."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.t = np.zeros(0)
        self.q = np.zeros((0, 4))
        self.filled = np.zeros(0, dtype=bool)
        self.rest = np.zeros(0, dtype=bool)

    def add(self, o: Orientation) -> None:
        if len(o):
            self.t = np.concatenate([self.t, o.time_s])
            self.q = np.concatenate([self.q, o.quat_wxyz])
            self.filled = np.concatenate([self.filled, o.filled])
            self.rest = np.concatenate([self.rest, o.rest])

    def trim_before(self, t0: float) -> None:
        k = max(int(np.searchsorted(self.t, t0)) - 1, 0)
        if k > 0:
            self.t, self.q, self.filled, self.rest = self.t[k:], self.q[k:], self.filled[k:], self.rest[k:]

    def orientation(self) -> Orientation:
        return Orientation(self.role, self.t, self.q, self.rest, None, self.filled)

    @property
    def end_s(self) -> float:
        return float(self.t[-1]) if len(self.t) else -math.inf


@dataclass
class LiveOutput:
    """What one :meth:`LiveProcessor.advance` produced: events to record (the
    guide's phases), new or revised angles, the guide when it changed, and the
    calibration the moment it passed."""

    events: list[Event] = field(default_factory=list)
    angles: list[AngleBlock] = field(default_factory=list)
    guide: GuideState | None = None
    calibration: AnatomicalCalibration | None = None


# ---------------------------------------------------------------------------
# The guided calibration
# ---------------------------------------------------------------------------


class CalibrationGuide:
    """Follows the calibration ``method`` live (``routine``, ``seated``,
    ``walk``), phase by phase, from the sensors' angular speed (deg/s,
    averaged over the last 0.5 s) and inclination (deg from their standing,
    or for ``seated`` sitting, one). Fed on a 20 ms grid by :class:`LiveProcessor`."""

    def __init__(self, roles: list[str], method: str = "routine") -> None:
        if method not in CALIBRATION_PHASES_OF_METHOD:
            raise CalibrationError(f"unknown guided calibration method {method!r} (known: {', '.join(GUIDED_METHODS)})", gate="input")
        self.roles = roles
        self.method = method
        self.movers = dict(_MOVER)
        if method == "walk":  # strides are counted on the right thigh (the left without one)
            self.movers["walk"] = "thigh_right" if "thigh_right" in roles else "thigh_left"
        phases = [p for p in CALIBRATION_PHASES_OF_METHOD[method] if p not in _MOVER or _MOVER[p] in roles]
        #: The still phase every inclination is measured from.
        self.reference = phases[0]
        self.state = GuideState([GuideStep(p, _INSTRUCTIONS[p], target=_TARGETS[p]) for p in phases], method=method)
        self.state.steps[0].status = "active"
        self.spans: dict[str, tuple[float, float]] = {}
        self.events: list[Event] = []
        self.changed = True
        self._reset_step()

    # -- control -----------------------------------------------------------------
    def _reset_step(self) -> None:
        self._still_from: float | None = None
        self._move_start: float | None = None
        self._last_move: float | None = None
        self._away = False
        self._other_away = False
        self._since_active: float | None = None

    @property
    def step(self) -> GuideStep | None:
        s = self.state
        return s.steps[s.active] if s.result == "running" and s.active < len(s.steps) else None

    def activate(self, index: int, message: str = "") -> None:
        """Make step ``index`` the active one (redo); later steps that were done stay done."""
        s = self.state
        s.active = index
        s.result = "running"
        s.message = ""
        s.countdown_s = None
        step = s.steps[index]
        step.status, step.count = "active", 0
        step.message = message
        self._reset_step()
        self.changed = True

    def restart(self) -> None:
        for step in self.state.steps:
            step.status, step.count, step.message = "waiting", 0, ""
        self.spans.clear()
        self.activate(0)

    def redo(self) -> None:
        s = self.state
        failed = [i for i, st in enumerate(s.steps) if st.status == "failed"]
        self.activate(failed[0] if failed else min(s.active, len(s.steps) - 1))

    def _finish_step(self, span: tuple[float, float], message: str) -> None:
        s = self.state
        step = s.steps[s.active]
        step.status, step.message = "done", message
        label = step.phase
        self.spans[label] = span
        self.events += [Event(span[0], "phase_start", label), Event(span[1], "phase_end", label)]
        s.countdown_s = None
        nxt = [i for i, st in enumerate(s.steps) if st.status != "done"]
        if nxt:
            s.active = nxt[0]
            s.steps[s.active].status, s.steps[s.active].count = "active", 0
        else:
            s.active = len(s.steps)
        self._reset_step()
        self.changed = True

    def complete(self) -> bool:
        return all(st.status == "done" for st in self.state.steps)

    def fail(self, message: str, phase: str | None = None) -> None:
        """The calibration failed on the windows: mark the step to redo (``phase``, the
        error's, when it is one of this method's steps; else found from the message),
        make it active."""
        phases = [st.phase for st in self.state.steps]
        if phase not in phases:
            phase = _phase_of_failure(message, phases)
        index = phases.index(phase)
        step = self.state.steps[index]
        self.activate(index, message)
        step.status = "failed"
        step.message = message
        self.state.result = "failed"
        self.state.message = f"calibration failed: {message}. Redo: {_INSTRUCTIONS[phase].lower()}"
        self.changed = True

    def passed(self, cal: AnatomicalCalibration) -> None:
        self.state.result = "passed"
        notes = f" ({'; '.join(cal.notes)})" if cal.notes else ""
        self.state.message = f"calibration passed: {cal.method}, grade {cal.grade}{notes}"
        self.changed = True

    # -- detection -----------------------------------------------------------------
    def update(self, t: np.ndarray, speed: dict[str, np.ndarray], tilt: dict[str, np.ndarray]) -> None:
        """Grid instants ``t`` with each role's angular speed (deg/s) and inclination
        change from the reference still phase (deg; NaN before it)."""
        for i in range(len(t)):
            step = self.step
            if step is None:
                return
            ti = float(t[i])
            if self._since_active is None:
                self._since_active = ti
            still = all(speed[r][i] < MAX_STILL_RATE_DEG_S for r in self.roles)
            if step.phase in _STILL:
                need = _STILL[step.phase]
                if not still:
                    if self._still_from is not None or self.state.countdown_s is not None:
                        self.state.countdown_s = None
                        self.changed = True
                    self._still_from = None
                    continue
                if self._still_from is None:
                    self._still_from = ti
                left = need - (ti - self._still_from)
                shown = math.ceil(max(left, 0.0))
                if self.state.countdown_s is None or math.ceil(self.state.countdown_s) != shown:
                    self.changed = True
                self.state.countdown_s = max(left, 0.0)
                if left <= 0:
                    self._finish_step((self._still_from, ti), f"still for {need:.0f} s")
                continue
            mover = self.movers[step.phase]
            opens, down, back = _COUNTING[step.phase]
            if self._move_start is None:
                if speed[mover][i] > opens:
                    self._move_start = ti
                    self._last_move = ti
                continue
            if speed[mover][i] > MAX_STILL_RATE_DEG_S:
                self._last_move = ti
            a = tilt[mover][i]
            if not self._away and a > down:
                self._away = True
                self.changed = True
            elif self._away and a < back:
                self._away = False
                step.count += 1
                step.message = ""
                self.changed = True
            if step.phase == "walk":
                self._still_from = (self._still_from if self._still_from is not None else ti) if still else None
                stopped = self._still_from is not None and ti - self._still_from >= WALK_STOP_S
                if step.count >= WALK_MAX_STRIDES or (step.count >= step.target and stopped):
                    self._finish_step((self._move_start - LEAD_S, ti), f"{step.count} strides")
                continue
            if mover != "pelvis":  # the other leg must stay down
                other = "thigh_left" if mover == "thigh_right" else "thigh_right"
                if other in tilt and tilt[other][i] > down and not self._other_away:
                    self._other_away = True
                    what = "knee" if step.phase.startswith("knee") else "knee off the seat"
                    step.message = f"that was the {other.split('_')[1]} leg: lift the {mover.split('_')[1].upper()} {what}"
                    step.count = 0
                    self.changed = True
                elif self._other_away and other in tilt and tilt[other][i] < back:
                    self._other_away = False
            assert self._last_move is not None
            if step.count >= step.target and not self._away and ti - self._last_move >= SETTLE_S:
                self._finish_step((self._move_start - LEAD_S, ti), f"{step.count} {_WHAT[step.phase]}")


def _phase_of_failure(message: str, phases: list[str]) -> str:
    """Which step a calibration error without a (known) phase sends the clinician back to."""
    m = message.lower()
    for key, phase in (("standing", "stand"), ("stand still", "stand"), ("sitting", "sit"), ("sit still", "sit"),
                       ("hinge", "hip_hinge"), ("right knee", "knee_lift_right"), ("left knee", "knee_lift_left"),
                       ("right hip lift", "seated_lift_right"), ("left hip lift", "seated_lift_left"),
                       ("walk", "walk"),
                       ("thigh_right", "knee_lift_right"), ("thigh_left", "knee_lift_left"),
                       ("thigh_right", "seated_lift_right"), ("thigh_left", "seated_lift_left"), ("pelvis", "hip_hinge")):
        if key in m and phase in phases:
            return phase
    return phases[0]


# ---------------------------------------------------------------------------
# The processor
# ---------------------------------------------------------------------------


class LiveProcessor:
    """Incremental orientation, guided calibration and angles.

    ``rates_hz``: role -> the device's nominal rate; ``rate_hz``: the angle
    grid; ``calibration``: start calibrated (no guide) with a known one;
    ``mounts``: role -> sensor mounting (None: hipimu boards, +z out of the skin);
    ``angles_every_s``: new angles at most this often (data time; see
    :data:`ANGLES_EVERY_S`; ``advance(flush=True)`` hands out everything);
    ``calibration_method``: the guided calibration (:data:`GUIDED_METHODS`:
    ``routine``, ``seated``, ``walk``; :meth:`set_calibration_method` switches
    it while no step is done).
    """

    def __init__(self, rates_hz: dict[str, float], *, use_mag: bool = False, method: str = "vqf",
                 filter_params: dict | None = None, rate_hz: float = 100.0,
                 calibration: AnatomicalCalibration | None = None, angles_every_s: float = ANGLES_EVERY_S,
                 mounts: dict[str, Mount] | None = None, calibration_method: str = "routine") -> None:
        self.roles = [r for r in ROLES if r in rates_hz]
        # live sensors are hipimu boards unless said otherwise (+z out of the skin)
        self.mounts = {r: HIPIMU_BOARD_MOUNT for r in self.roles} if mounts is None else dict(mounts)
        if "pelvis" not in self.roles or not any(r.startswith("thigh_") for r in self.roles):
            raise CalibrationError("live angles need a pelvis sensor and at least one thigh sensor")
        self.sides = [s for s in SIDES if f"thigh_{s}" in self.roles]
        self.rate_hz = float(rate_hz)
        self.use_mag = use_mag
        self._trackers = {r: OrientationTracker(r, rates_hz[r], use_mag=use_mag, method=method, params=filter_params)
                          for r in self.roles}
        self._buf = {r: _Buffer(r) for r in self.roles}
        if calibration_method not in CALIBRATION_PHASES_OF_METHOD:
            raise CalibrationError(f"unknown guided calibration method {calibration_method!r} (known: {', '.join(GUIDED_METHODS)})",
                                   gate="input")
        self.calibration_method = calibration_method
        self.guide = CalibrationGuide(self.roles, calibration_method) if calibration is None else None
        self.calibration = calibration
        self.anchors: list[HeadingAnchor] = []
        self._guide_t = -math.inf  # last guide grid instant done
        self._guide_prev: dict[str, Rotation] = {}
        self._speed_hist: dict[str, list[float]] = {r: [] for r in self.roles}
        self._up_ref: dict[str, np.ndarray] = {}
        self._k_next: int | None = None  # next angle grid index
        self._pending_zero: list[tuple[float, list[str]]] = []
        self._quality_tracker: QualityTracker | None = None  # of self._quality_for
        self._quality_for: AnatomicalCalibration | None = None
        self.angles_every_s = float(angles_every_s)
        self._angles_at = -math.inf  # data time of the last angles handed out
        if calibration is not None:
            self._start_angles(calibration)

    # -- input -------------------------------------------------------------------
    def feed(self, block: SampleBlock) -> None:
        """One block of one sensor (roles not in ``rates_hz`` are ignored)."""
        if block.role in self._trackers and len(block):
            self._buf[block.role].add(self._trackers[block.role].update(block))

    @property
    def now_s(self) -> float:
        """The latest instant every sensor has reached."""
        return min(b.end_s for b in self._buf.values())

    def zero(self, time_s: float | None = None, side: str | None = None) -> Event:
        """Zero in neutral from ``time_s`` (default: now): the event to record. Its heading
        alignment is applied once the hold is over (the next ``advance`` after it)."""
        t = self.now_s if time_s is None else float(time_s)
        if not math.isfinite(t):
            t = 0.0
        sides = [side] if side in self.sides else list(self.sides)
        self._pending_zero.append((t, sides))
        return Event(t, "zero", "", {"side": side} if side in self.sides else {})

    def restart_calibration(self) -> None:
        if self.guide is None or self.guide.method != self.calibration_method:
            self._new_guide()
        else:
            self.guide.restart()
        self.guide.changed = True

    def set_calibration_method(self, method: str) -> bool:
        """Guide ``method`` from now on: True when switched (or already it); False
        when a step of the running guide is done (restart the calibration first)."""
        if method not in CALIBRATION_PHASES_OF_METHOD:
            raise CalibrationError(f"unknown guided calibration method {method!r} (known: {', '.join(GUIDED_METHODS)})", gate="input")
        if method == self.calibration_method and self.guide is not None:
            return True
        if self.guide is not None and self.guide.state.started:
            return False
        self.calibration_method = method
        if self.guide is not None:
            self._new_guide()
        return True

    def _new_guide(self) -> None:
        self.guide = CalibrationGuide(self.roles, self.calibration_method)
        self._up_ref.clear()

    def redo_step(self) -> None:
        if self.guide is not None:
            self.guide.redo()

    # -- output ------------------------------------------------------------------
    def advance(self, flush: bool = False) -> LiveOutput:
        """Everything the data fed so far allows: guide progress and events, the
        calibration when it passes, new angles (at most every ``angles_every_s``
        of data unless ``flush``)."""
        out = LiveOutput()
        now = self.now_s
        if not math.isfinite(now):  # no data yet: only the guide (a method switched) to show
            if self.guide is not None and self.guide.changed:
                out.guide = _copy_state(self.guide.state)
                self.guide.changed = False
            return out
        if self.guide is not None and self.guide.step is not None:
            self._run_guide(now)
            out.events += self.guide.events
            self.guide.events = []
            if self.guide.complete() and self.guide.state.result == "running":
                try:
                    cal = self._calibrate()
                except CalibrationError as exc:
                    self.guide.fail(str(exc), exc.phase)
                else:
                    self.guide.passed(cal)
                    self._start_angles(cal)
                    out.calibration = cal
        if self.guide is not None and self.guide.changed:
            out.guide = _copy_state(self.guide.state)
            self.guide.changed = False
        if self.calibration is not None:
            if flush or now - self._angles_at >= self.angles_every_s:
                self._angles_at = now
                out.angles += self._run_angles(now)
            keep = now - KEEP_S
        else:
            keep = now - KEEP_UNCALIBRATED_S
        if self._pending_zero:
            keep = min(keep, min(t for t, _ in self._pending_zero) - 1.0)
        for b in self._buf.values():
            b.trim_before(keep)
        return out

    # -- the guide ------------------------------------------------------------------
    def _calibrate(self) -> AnatomicalCalibration:
        """The guided method's calibration: exactly what
        :func:`hipimu.core.calibration_select.anatomical_calibration` computes
        from the recorded phase events afterwards (the same call on the same
        phases and orientations)."""
        guide = self.guide
        assert guide is not None
        orientations = {r: self._buf[r].orientation() for r in self.roles}
        events = [Event(t, kind, label) for label, (a, b) in guide.spans.items() for t, kind in ((a, "phase_start"), (b, "phase_end"))]
        return anatomical_calibration(orientations, events, method=guide.method, mounts=self.mounts, use_mag=self.use_mag)

    def _run_guide(self, now: float) -> None:
        start = max(self._guide_t + GUIDE_STEP_S, max(float(b.t[0]) for b in self._buf.values()))
        if not math.isfinite(self._guide_t):
            start = math.ceil(start / GUIDE_STEP_S) * GUIDE_STEP_S
        grid = start + GUIDE_STEP_S * np.arange(int(math.floor((now - start) / GUIDE_STEP_S + 1e-9)) + 1)
        if not len(grid) or grid[-1] > now + 1e-9:
            grid = grid[grid <= now + 1e-9]
        if not len(grid):
            return
        speed, tilt = {}, {}
        n_avg = max(int(round(GUIDE_AVERAGE_S / GUIDE_STEP_S)), 1)
        for r in self.roles:
            b = self._buf[r]
            rot = _nearest(b, grid)
            prev = self._guide_prev.get(r)
            chain = rot if prev is None else Rotation.concatenate([prev, rot])
            step_deg = np.degrees((chain[:-1].inv() * chain[1:]).magnitude()) / GUIDE_STEP_S
            if prev is None:
                step_deg = np.concatenate([[0.0], step_deg])
            self._guide_prev[r] = rot[-1]
            hist = self._speed_hist[r]
            avg = np.empty(len(grid))
            for i, v in enumerate(step_deg):
                hist.append(float(v))
                if len(hist) > n_avg:
                    del hist[0]
                avg[i] = sum(hist) / len(hist)
            speed[r] = avg
            up = rot.inv().apply(UP)
            ref = self._up_ref.get(r)
            tilt[r] = (np.full(len(grid), np.nan) if ref is None
                       else np.degrees(np.arccos(np.clip(up @ ref, -1.0, 1.0))))
        self._guide_t = float(grid[-1])
        ref_phase = self.guide.reference
        before = self.guide.spans.get(ref_phase)
        self.guide.update(grid, speed, tilt)
        stand = self.guide.spans.get(ref_phase)
        if stand is not None and stand != before:
            for r in self.roles:  # the standing (sitting) inclination each movement is measured from
                b = self._buf[r]
                m = (b.t >= stand[0]) & (b.t <= stand[1])
                if m.any():
                    v = Rotation.from_quat(b.q[m], scalar_first=True).inv().apply(UP).mean(axis=0)
                    self._up_ref[r] = v / np.linalg.norm(v)

    # -- angles ---------------------------------------------------------------------
    def _start_angles(self, cal: AnatomicalCalibration) -> None:
        self.calibration = cal
        self.anchors = [HeadingAnchor(cal.windows.aligned_s, r, cal.segments[r].heading_offset_rad, "standing calibration")
                        for r in self.roles if r in cal.segments]
        self._k_next = None

    def _offset(self, role: str, grid: np.ndarray, what: str = "offset_rad") -> np.ndarray:
        return _offsets_on_grid(grid, self.anchors, role, what)

    def _grid_between(self, k0: int, t_end: float) -> np.ndarray:
        k1 = int(math.floor(t_end * self.rate_hz + 1e-9))
        return np.arange(k0, k1 + 1) / self.rate_hz if k1 >= k0 else np.zeros(0)

    def _segments(self, grid: np.ndarray) -> tuple[Rotation, np.ndarray, dict[str, Rotation], dict[str, Rotation]]:
        cal = self.calibration
        assert cal is not None
        local = {r: _sensor_on_grid(self._buf[r].orientation(), grid) for r in self.roles}
        seg = {r: local[r] * cal.segments[r].segment_in_sensor for r in self.roles}
        pelvis = _yaw(self._offset("pelvis", grid)) * seg["pelvis"]
        return pelvis, pelvis_angles_rad(pelvis, cal.reference_pelvis), seg, local

    def _run_angles(self, now: float) -> list[AngleBlock]:
        blocks = []
        start = max(float(b.t[0]) for b in self._buf.values())
        if self._k_next is None:
            self._k_next = int(math.ceil(start * self.rate_hz - 1e-9))
        # zero events whose hold is over: their anchors, and the angles revised from them
        revise_from = math.inf
        for t0, sides in list(self._pending_zero):
            if now < t0 + ZERO_HOLD_S:
                continue
            self._pending_zero.remove((t0, sides))
            k0 = int(math.ceil(max(t0, start) * self.rate_hz - 1e-9))
            grid = self._grid_between(k0, t0 + ZERO_HOLD_S)
            if len(grid) < 3:
                continue
            pelvis, _, seg, _ = self._segments(grid)
            for side in sides:
                anchor = _zero_anchor(grid, pelvis, seg[f"thigh_{side}"], side, t0)
                if anchor is not None:
                    self.anchors.append(anchor)
                    revise_from = min(revise_from, t0)
        if math.isfinite(revise_from):
            k_rev = int(math.ceil(max(revise_from, start) * self.rate_hz - 1e-9))
            if k_rev < self._k_next:
                grid = self._grid_between(k_rev, (self._k_next - 1) / self.rate_hz)
                blocks.append(self._angles(grid, revises=True))
        grid = self._grid_between(self._k_next, now)
        if len(grid):
            blocks.append(self._angles(grid))
            self._k_next += len(grid)
        return [b for b in blocks if len(b)]

    def _angles(self, grid: np.ndarray, revises: bool = False) -> AngleBlock:
        pelvis, pelvis_ang, seg, local = self._segments(grid)
        hip = {}
        for side in self.sides:
            role = f"thigh_{side}"
            femur = _yaw(self._offset(role, grid)) * seg[role] * _axial(self._offset(role, grid, "axial_rad"))
            hip[side] = hip_angles_rad(pelvis, femur, side)
        return AngleBlock(grid, hip, pelvis_ang, self._quality(grid, local, seg, hip), revises)

    def _quality(self, grid: np.ndarray, local: dict[str, Rotation], seg: dict[str, Rotation], hip: dict[str, np.ndarray]) -> np.ndarray:
        """:func:`hipimu.core.kinematics.quality`, incrementally: the same
        :class:`~hipimu.core.quality.QualityTracker`, fed block by block (a revision after a
        zero event re-reads the instants it saw before from its history)."""
        if self._quality_tracker is None or self._quality_for is not self.calibration:
            self._quality_tracker = QualityTracker(self.calibration, self.roles, use_mag=self.use_mag, keep_s=KEEP_S)
            self._quality_for = self.calibration
        filled = np.zeros(len(grid), dtype=bool)
        for r in self.roles:
            b = self._buf[r]
            filled |= np.interp(grid, b.t, b.filled.astype(np.float64)) > 0
        return self._quality_tracker.update(grid, self.anchors, local, {r: seg[r] for r in self.roles if r != "pelvis"}, filled,
                                            hip_rotation_deg={f"thigh_{s}": np.degrees(h[:, 2]) for s, h in hip.items()})


def _nearest(b: _Buffer, grid: np.ndarray) -> Rotation:
    i = np.clip(np.searchsorted(b.t, grid), 0, len(b.t) - 1)
    return Rotation.from_quat(b.q[i], scalar_first=True)


def _copy_state(s: GuideState) -> GuideState:
    return GuideState([GuideStep(st.phase, st.instruction, st.status, st.count, st.target, st.message) for st in s.steps],
                      s.active, s.countdown_s, s.result, s.message, s.method)
