"""Replaying a recorded session in the dashboard: play, pause, speed, scrub, recompute, export.

The whole session is processed once by :func:`hipimu.core.pipeline.process_session`
(what ``hipimu angles`` writes: the numbers shown are the pipeline's), in the
engine's thread; a playhead then hands the window the angles up to it, at
0.25x to 4x real time. Seeking re-sends the last 30 s before the new
position. Recomputing runs the pipeline again with other calibration windows
or another orientation filter and keeps the playhead where it was.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from hipimu.apps.dashboard.controller import Controller
from hipimu.apps.dashboard.engine import TrialRecorder
from hipimu.apps.dashboard.model import KEEP_S, SensorStatus
from hipimu.core.live_types import AngleBlock
from hipimu.core.model import intervals

__all__ = ["ReplayEngine", "SPEEDS"]

logger = logging.getLogger(__name__)

SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0)
#: The playhead advances in steps this long (wall clock): twice the display's frame rate, so
#: that every 60 Hz frame finds new angles (two 60 Hz clocks beat: some frames found none).
FRAME_S = 1.0 / 120.0


class ReplayEngine(Controller):
    """Controller of a replay (see the module doc). ``start_s``: the first playhead
    position (default: the start); ``playing``: start playing at once."""

    mode = "replay"

    def __init__(self, path: Path, *, session: Any = None, options: Any = None, calibration_dir: Path | None = None,
                 speed: float = 1.0, start_s: float | None = None, playing: bool = True) -> None:
        super().__init__()
        from hipimu.core.pipeline import PipelineOptions

        self.path = Path(path)
        self.options = options or PipelineOptions()
        self.calibration_dir = calibration_dir
        self.speed = float(speed)
        self.position_s = start_s
        self.playing = playing
        self._q: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self.session: Any = session  # loaded here when not given
        self.result: Any = None
        self.loaded = threading.Event()
        self.failed: str | None = None

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="hipimu-replay", daemon=True)
            self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self._q.put(("quit", None))
            self._thread.join(30.0)

    def wait_loaded(self, timeout_s: float = 120.0) -> bool:
        return self.loaded.wait(timeout_s) and self.failed is None

    # -- actions (any thread) ---------------------------------------------------------
    def play(self) -> None:
        self._q.put(("play", None))

    def pause(self) -> None:
        self._q.put(("pause", None))

    def set_speed(self, speed: float) -> None:
        self._q.put(("speed", float(speed)))

    def seek(self, time_s: float) -> None:
        self._q.put(("seek", float(time_s)))

    def recompute(self, *, static: tuple[float, float] | None = None,
                  functional: tuple[float, float] | None = None, method: str | None = None) -> None:
        self._q.put(("recompute", (static, functional, method)))

    def export_csv(self, path: Path, start_s: float | None = None, end_s: float | None = None) -> None:
        self._q.put(("export", (Path(path), start_s, end_s)))

    # -- the thread ---------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._load()
        except Exception as exc:
            from hipimu.errors import HipimuError

            if not isinstance(exc, HipimuError):
                logger.exception("replay failed to load")
            self.failed = f"{self.path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            self.post("error", self.failed)
            self.loaded.set()
            return
        self.loaded.set()
        last = time.monotonic()
        while True:
            try:
                kind, arg = self._q.get(timeout=FRAME_S)
            except queue.Empty:
                kind, arg = "frame", None
            now = time.monotonic()
            if kind == "quit":
                return
            try:
                self._handle(kind, arg, now - last)
            except Exception as exc:  # an action failing must not end the replay
                from hipimu.errors import HipimuError

                if not isinstance(exc, HipimuError):
                    logger.exception("replay action %s failed", kind)
                self.post("error", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            if kind == "frame":
                last = now

    def _load(self) -> None:
        from hipimu.storage.recording import load_session

        self.post("status", f"loading {self.path} ...")
        if self.session is None:
            self.session = load_session(self.path)
        self.post("session", self.session.info)
        self._process()
        for e in self.session.events:
            self.post("event", e)
        stats = self.session.results.get("link_stats", {})
        rows = []
        for role, dev in self.session.devices.items():
            s = stats.get(role, {}) if isinstance(stats, dict) else {}
            rows.append(SensorStatus(role, s.get("name", "") or "", dev.device_id, "recorded",
                                     _num(s.get("battery_percent")), dev.rate_hz, _num(s.get("loss_percent"), 0.0),
                                     _num(s.get("rssi_dbm")), math.nan, int(s.get("reconnects", 0) or 0)))
        self.post("sensors", rows)
        if self.position_s is None:  # from the end of the calibration routine (before it: no angles worth showing)
            self.position_s = self.result.calibration.windows.end_s
        self._post_results()
        self._jump(self.position_s)

    def _process(self) -> None:
        from hipimu.core.pipeline import process_session
        from hipimu.storage.sensor_calibration_files import load_sensor_calibrations

        ids = [d.device_id for d in self.session.devices.values()]
        cals = load_sensor_calibrations(ids, self.calibration_dir) if self.calibration_dir else load_sensor_calibrations(ids)
        t0 = time.perf_counter()
        self.result = process_session(self.session, self.options, cals,
                                      progress=lambda f, stage: self.post("status", f"computing angles: {stage} {100 * f:.0f} %"))
        a = self.result.angles
        cal = self.result.calibration
        self.post("status", f"{self.path.name}: calibration grade {cal.grade} ({cal.windows.found} windows), "
                            f"{len(a.time_s)} instants in {time.perf_counter() - t0:.1f} s")

    def _post_results(self) -> None:
        a = self.result.angles
        for t0, t1, ev in intervals(self.session.events, "trial"):
            rec = TrialRecorder(ev.label, ev.data.get("side", "both"), int(ev.data.get("index", 0) or 0), t0)
            i0, i1 = np.searchsorted(a.time_s, [t0, t1], side="left")
            if i1 <= i0:
                continue
            rec.add(self._block(i0, i1))
            result = rec.result(t1)
            if result is not None:
                self.post("result", result)

    @property
    def duration_s(self) -> float:
        return float(self.result.angles.time_s[-1])

    def _state(self) -> dict[str, Any]:
        a = self.result.angles
        return {"duration_s": float(a.time_s[-1]), "start_s": float(a.time_s[0]), "position_s": self.position_s,
                "playing": self.playing, "speed": self.speed}

    def _block(self, i0: int, i1: int) -> AngleBlock:
        a = self.result.angles
        return AngleBlock(a.time_s[i0:i1], {s: h[i0:i1] for s, h in a.hip.items()}, a.pelvis[i0:i1], a.quality[i0:i1])

    def _trial_at(self, t: float) -> dict[str, Any]:
        for t0, t1, ev in intervals(self.session.events, "trial"):
            if t0 <= t <= t1:
                return {"active": True, "test": ev.label, "side": ev.data.get("side", "both"),
                        "index": ev.data.get("index", 0), "start_s": t0}
        return {"active": False, "test": "", "side": "", "index": 0}

    def _jump(self, t: float) -> None:
        a = self.result.angles
        t = float(min(max(t, a.time_s[0]), a.time_s[-1]))
        self.position_s = t
        self.post("reset")
        self._trial = self._trial_at(t)
        # the trial's state first (the peak hold starts at the trial's start), then the angles
        self.post("trial", self._trial)
        i0, i1 = np.searchsorted(a.time_s, [t - KEEP_S, t], side="right")
        if i1 > i0:
            self.post("angles", self._block(int(i0), int(i1)))
        self.post("replay", self._state())

    def _handle(self, kind: str, arg: Any, dt: float) -> None:
        if kind == "play":
            if self.position_s is not None and self.position_s >= self.duration_s:
                self._jump(float(self.result.angles.time_s[0]))
            self.playing = True
        elif kind == "pause":
            self.playing = False
        elif kind == "speed":
            if not SPEEDS[0] <= arg <= SPEEDS[-1]:
                raise ValueError(f"speed {arg:g}x: from {SPEEDS[0]:g}x to {SPEEDS[-1]:g}x")
            self.speed = arg
        elif kind == "seek":
            self._jump(arg)
            return
        elif kind == "recompute":
            self._recompute(*arg)
            return
        elif kind == "export":
            self._export(*arg)
            return
        elif kind == "frame" and self.playing:
            self._advance(dt * self.speed)
            return
        self.post("replay", self._state())

    def _advance(self, step_s: float) -> None:
        a = self.result.angles
        t_prev = self.position_s
        t = min(t_prev + step_s, float(a.time_s[-1]))
        i0, i1 = np.searchsorted(a.time_s, [t_prev, t], side="right")
        trial = self._trial_at(t)
        if trial != self._trial:  # crossing into or out of a trial (before its angles: the peak hold starts there)
            self._trial = trial
            self.post("trial", trial)
        if i1 > i0:
            self.post("angles", self._block(int(i0), int(i1)))
        self.position_s = t
        if t >= a.time_s[-1]:
            self.playing = False
        self.post("replay", self._state())

    def _recompute(self, static: tuple[float, float] | None, functional: tuple[float, float] | None,
                   method: str | None) -> None:
        import dataclasses

        from hipimu.core.pipeline import PipelineOptions
        from hipimu.errors import InputError

        if (static is None) != (functional is None):
            raise InputError("give both calibration windows (standing and movement), or neither")
        options = dataclasses.replace(self.options, static=static, functional=functional,
                                      method=method or self.options.method)
        PipelineOptions.__post_init__(options)
        old, old_options = self.result, self.options
        self.options = options
        try:
            self._process()
        except Exception:
            self.result, self.options = old, old_options
            raise
        self.post("clear_results")
        self._post_results()
        self._jump(self.position_s)

    def _export(self, path: Path, start_s: float | None, end_s: float | None) -> None:
        from hipimu.core.pipeline import angle_table_deg
        from hipimu.storage.angles_csv import write_angles_csv

        a = self.result.angles
        lo = a.time_s[0] if start_s is None else start_s
        hi = a.time_s[-1] if end_s is None else end_s
        if not hi > lo:
            raise ValueError(f"export {lo:g}-{hi:g} s: the end must be after the start")
        table = angle_table_deg(a)
        table["quality"] = a.quality
        m = (a.time_s >= lo) & (a.time_s <= hi)
        if not m.any():
            raise ValueError(f"no angles between {lo:g} and {hi:g} s")
        write_angles_csv({k: v[m] for k, v in table.items()}, path, overwrite=True)
        self.post("status", f"exported {int(m.sum())} rows ({lo:.1f}-{hi:.1f} s) to {path}")
        self.post("exported", str(path))


def _num(v: Any, default: float = math.nan) -> float:
    try:
        return float(v) if v is not None else default
    except (TypeError, ValueError):
        return default
