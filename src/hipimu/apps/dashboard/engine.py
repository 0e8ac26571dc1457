"""The live session behind the dashboard: BLE, recording and angles, off the GUI thread.

Two threads of its own, so the window never waits on the radio, the disk or
the maths:

* the **BLE thread** runs an asyncio loop: scanning, assigning, and a session =
  :func:`hipimu.apps._ble.record_session` on a
  :class:`~hipimu.sources.ble.BleSource` (bleak's backend, or the simulated
  one of ``--simulate``), which appends every block to the recording as it
  arrives and hands it on;
* the **processing thread** feeds the blocks to a
  :class:`~hipimu.core.live.LiveProcessor` (guided calibration, then angles),
  runs trials (start, stop, zero, markers), and posts
  :class:`~hipimu.apps.dashboard.model.Update` objects for the window.

Events (calibration phases, zero, trials, markers) go back to the BLE thread
to be recorded, with their session times. ``autopilot`` (the demo): a
simulated clinician starts the session and, once calibrated, presses zero and
starts and stops the trials at the times of the virtual subject's script.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from hipimu.apps.dashboard.controller import Controller
from hipimu.apps.dashboard.model import COMPENSATION_FLAG_DEG, SensorStatus, TrialResult
from hipimu.core.conventions import ROLES, SIDES, TESTS
from hipimu.core.live_types import AngleBlock
from hipimu.core.model import Event, SampleBlock, SessionInfo

__all__ = ["LiveEngine", "LiveOptions", "TrialRecorder"]

logger = logging.getLogger(__name__)

#: How often the processing thread hands out angles (s): new data for every frame at 60 fps.
ADVANCE_S = 1.0 / 60.0
#: How often the link statistics are posted (s).
STATS_S = 0.5
#: Angles kept for a trial that starts at an instant already handed out (s).
RECENT_S = 3.0


@dataclass
class LiveOptions:
    """How the live engine connects and records.

    ``simulate``: the simulated bleak backend (virtual boards on the virtual
    subject doing ``scenario``); ``refs``: role -> sensor (device id, short
    id or address; default: the remembered roles); ``out_dir``: where
    sessions are recorded; ``autopilot``: the simulated clinician (only with
    ``simulate``); ``calibration_method``: the guided calibration
    (``routine``, ``seated``, ``walk``; the calibration screen switches it).
    """

    simulate: bool = False
    scenario: str = "seated_rotation"
    seed: int = 0
    refs: dict[str, str] | None = None
    rate_hz: int = 208
    mag: bool = False
    out_dir: Path = Path("sessions")
    autopilot: bool = False
    scan_timeout_s: float = 10.0
    angle_rate_hz: float = 100.0
    speed: float | None = None  #: with simulate: the simulator streamed directly (no BLE) this fast
    calibration_method: str = "routine"

    @property
    def direct(self) -> bool:
        """The simulator without the simulated radio (faster than real time allowed)."""
        return self.simulate and self.speed is not None


class TrialRecorder:
    """The angles of the running trial (radians), revisions applied; summarised at its end."""

    def __init__(self, test: str, side: str, index: int, start_s: float) -> None:
        self.test, self.side, self.index, self.start_s = test, side, index, start_s
        self._blocks: list[AngleBlock] = []

    def add(self, block: AngleBlock) -> None:
        if block.revises:
            t0 = float(block.time_s[0])
            kept = []
            for b in self._blocks:
                m = b.time_s < t0
                if m.any():
                    kept.append(AngleBlock(b.time_s[m], {s: a[m] for s, a in b.hip.items()}, b.pelvis[m], b.quality[m]))
            self._blocks = kept
        m = block.time_s >= self.start_s
        if m.any():
            self._blocks.append(AngleBlock(block.time_s[m], {s: a[m] for s, a in block.hip.items()},
                                           block.pelvis[m], block.quality[m]))

    def result(self, end_s: float) -> TrialResult | None:
        from hipimu.core.analysis import summarize_trial

        if not self._blocks:
            return None
        t = np.concatenate([b.time_s for b in self._blocks])
        keep = t <= end_s
        sides = [s for s in SIDES if s in self._blocks[0].hip and self.side in (s, "both")]
        hip = {s: np.concatenate([b.hip[s] for b in self._blocks])[keep] for s in sides}
        pelvis = np.concatenate([b.pelvis for b in self._blocks])[keep]
        quality = np.concatenate([b.quality for b in self._blocks])[keep]
        if not keep.any() or not hip:
            return None
        summary = summarize_trial(self.test, hip, pelvis)
        values: dict[str, float] = {}
        for s, d in summary.items():
            for k, v in d.items():
                values[f"{s}_{k.removesuffix('_rad')}_deg" if len(summary) > 1 else f"{k.removesuffix('_rad')}_deg"] = float(np.degrees(v))
        flags = []
        comp = max((d.get("pelvic_compensation_rad", 0.0) for d in summary.values()), default=0.0)
        if np.degrees(comp) > COMPENSATION_FLAG_DEG:
            flags.append(f"pelvis moved {np.degrees(comp):.0f}°")
        if float(quality.min()) < 0.2:
            flags.append("heading unreliable during the trial")
        return TrialResult(self.test, self.side, self.index, self.start_s, float(t[keep][-1]), values, flags)


class LiveEngine(Controller):
    """Controller of a live session (see the module doc)."""

    mode = "live"

    def __init__(self, options: LiveOptions | None = None) -> None:
        super().__init__()
        self.options = options or LiveOptions()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._world: Any = None
        self._backend: Any = None
        self._session_task: asyncio.Task | None = None
        self._stop_session: asyncio.Event | None = None
        self._markers: asyncio.Queue | None = None
        self._proc: _Processing | None = None
        self._closing = False
        self.last_recording: Path | None = None

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="hipimu-ble", daemon=True)
        self._thread.start()
        self._ready.wait(30.0)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as exc:  # pragma: no cover - reported, never silent
            logger.exception("live engine crashed")
            self.post("error", f"the live engine stopped: {exc}")

    async def _main(self) -> None:
        from hipimu.sources.ble._bleak import Backend

        self._loop = asyncio.get_running_loop()
        self._closed = asyncio.Event()
        try:
            if self.options.direct:
                self._ready.set()
                self.post("status", f"the virtual subject at {self.options.speed:g}x, no radio")
                if self.options.autopilot:
                    self._autostart()
            elif self.options.simulate:
                from hipimu.sources.ble.simbackend import SimulatedWorld

                o = self.options
                self._world = SimulatedWorld.default(scenario=o.scenario, seed=o.seed, rate_hz=o.rate_hz, mag=o.mag)
                self._ready.set()
                self.post("status", f"simulated sensors on the virtual subject ({o.scenario}, seed {o.seed}): preparing ...")
                await self._world.ready()
                self._backend = Backend(*self._world.backends())
                self.post("status", "simulated sensors ready")
                if o.autopilot:
                    self._autostart()
            else:
                self._backend = Backend()
                self._ready.set()
            await self._closed.wait()
        finally:
            self._ready.set()
            if self._session_task is not None:
                if self._stop_session is not None:
                    self._stop_session.set()
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(self._session_task, 30.0)

    def _call(self, coro_fn, *args: Any) -> None:
        """Run ``coro_fn(*args)`` on the BLE loop (from any thread); errors become ``error`` updates."""
        if self._loop is None:
            self.post("error", "the engine is not running")
            return

        async def guarded() -> None:
            try:
                await coro_fn(*args)
            except Exception as exc:
                from hipimu.errors import HipimuError

                if not isinstance(exc, HipimuError):
                    logger.exception("dashboard action failed")
                self.post("error", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)

        self._loop.call_soon_threadsafe(lambda: self._loop.create_task(guarded()))  # type: ignore[union-attr]

    def close(self) -> None:
        self._closing = True
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._closed.set)
            self._thread.join(60.0)
        if self._proc is not None:
            self._proc.stop()

    # -- sensors -----------------------------------------------------------------
    def scan(self) -> None:
        self._call(self._scan)

    async def _scan(self) -> None:
        from hipimu.sources.ble._bleak import scan
        from hipimu.sources.ble.roles import load_roles
        from hipimu.sources.ble.source import describe_sensor

        self.post("status", "scanning ...")
        found = await scan(self._backend, timeout_s=4.0)
        remembered = {dev: r for r, dev in load_roles().items()}
        rows = []
        for adv in sorted(found.values(), key=lambda a: a.name):
            row: dict[str, Any] = {"name": adv.name, "address": adv.address, "rssi": adv.rssi_dbm, "device_id": ""}
            try:  # device id, battery, firmware: a short connection
                row.update(await describe_sensor(self._backend, adv))
            except Exception as exc:  # one unreachable board must not hide the others
                row["error"] = str(exc).splitlines()[0]
            row["role"] = remembered.get(row.get("device_id", ""), "")
            rows.append(row)
            self.post("scan", list(rows))
        self.post("scan", rows)
        self.post("status", f"{len(rows)} sensor(s) found")

    def assign(self, role: str, device_id: str) -> None:
        self._call(self._assign, role, device_id)

    async def _assign(self, role: str, device_id: str) -> None:
        from hipimu.sources.ble.roles import load_roles, save_roles

        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        roles = {**{r: d for r, d in load_roles().items() if d != device_id}, role: device_id}
        path = save_roles(roles)
        self.post("status", f"{device_id} is the {role} sensor (remembered in {path})")
        await self._scan()

    def identify(self, role: str) -> None:
        self._call(self._identify, role)

    async def _identify(self, role: str) -> None:
        from hipimu.sources.ble._bleak import scan
        from hipimu.sources.ble.assign import identify_by_shaking

        found = await scan(self._backend, timeout_s=4.0)

        async def ask(r: str, attempt: int) -> bool:
            self.post("status", f"Shake the sensor for {r.upper()} now, for 4 s" + (" (again: harder)" if attempt else ""))
            if self._world is not None:
                self._world.shake({b.role: b.device_id for b in self._world.boards.values()}[r], 3.5)
            return True

        roles = await identify_by_shaking(found, [role], ask, backend=self._backend)
        await self._assign(role, roles[role])

    # -- session --------------------------------------------------------------------
    def start_session(self, info: SessionInfo, path: Path | None = None) -> None:
        self._call(self._start_session, info, path)

    def _autostart(self) -> None:
        o = self.options
        info = SessionInfo(subject_id=f"SIM-{o.seed}", test=o.scenario if o.scenario in TESTS else "free",
                           notes="demo: the virtual subject, the simulated clinician at the controls")
        self.post("session", info)

        async def go() -> None:
            if not o.direct:
                await self._scan()  # what the clinician would look at first
            await self._start_session(info, None)

        self._call(go)

    async def _start_session(self, info: SessionInfo, path: Path | None) -> None:
        from hipimu.apps._ble import record_session
        from hipimu.sources.ble.roles import resolve_roles
        from hipimu.sources.ble.source import BleSource

        if self._session_task is not None and not self._session_task.done():
            raise RuntimeError("a session is already running: end it first")
        o = self.options
        if o.direct:
            refs = {r: "simulated" for r in ROLES}
        elif self._world is not None and not o.refs:
            refs = resolve_roles({b.role: b.device_id for b in self._world.boards.values()}, remembered={})
        else:
            refs = resolve_roles(o.refs or {})
        wanted = set(info.sides)
        if wanted:
            refs = {r: v for r, v in refs.items() if r == "pelvis" or r.removeprefix("thigh_") in wanted}
        if path is None:
            o.out_dir.mkdir(parents=True, exist_ok=True)
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            path = o.out_dir / f"{info.subject_id or 'session'}-{stamp}.hipimu"
        source: Any
        if o.direct:
            from hipimu.sources.simulate import SimulatedSource

            source = SimulatedSource(o.scenario, speed=o.speed, seed=o.seed, rate_hz=float(o.rate_hz), mag=o.mag)
            via = f"hipimu.sources.simulate at {o.speed:g}x (no radio)"
        else:
            source = BleSource(refs, rate_hz=o.rate_hz, mag=o.mag, backend=self._backend, scan_timeout_s=o.scan_timeout_s)
            via = "simulated bleak backend (hipimu.sources.ble.simbackend)"
        simulated = o.simulate
        info = SessionInfo.from_dict({**info.to_dict(), "source": ("simulate" if o.direct else "ble-simulated" if simulated else "ble"),
                                      "simulated": simulated,
                                      "simulation": {"scenario": o.scenario, "seed": o.seed, "via": via} if simulated else {}})
        self.post("session", info)
        self.post("status", "connecting " + ", ".join(f"{r} ({v})" for r, v in refs.items()) + " ...")
        self._stop_session = asyncio.Event()
        self._markers = asyncio.Queue()
        t_open = [0.0]

        def on_open(src: Any) -> None:
            t_open[0] = time.monotonic()
            rates = {r: d.rate_hz for r, d in src.devices.items()}
            self._proc = _Processing(self, rates, self._autopilot_script(src) if o.autopilot else None)
            self._proc.start()
            self.post("recording", {"active": True, "path": str(path), "elapsed_s": 0.0})
            self.post("status", f"recording to {path}; calibration: follow the steps")

        def on_block(block: SampleBlock) -> None:
            if self._proc is not None:
                self._proc.put(("block", block))

        last_stats = [0.0]

        def on_tick(src: Any, elapsed_s: float) -> None:
            now = time.monotonic()
            if now - last_stats[0] >= STATS_S:
                last_stats[0] = now
                if hasattr(src, "stats"):
                    self.post("sensors", [_status(s) for s in src.stats().values()])
                else:
                    self.post("sensors", [SensorStatus(r, "simulated", d.device_id, "streaming", math.nan, d.rate_hz)
                                          for r, d in src.devices.items()])
                self.post("recording", {"elapsed_s": elapsed_s})

        async def run() -> None:
            try:
                result = await record_session(source, path, info, stop=self._stop_session, on_tick=on_tick, tick_s=0.1,
                                              markers=self._markers, on_block=on_block, on_open=on_open)
            except Exception as exc:
                self.post("error", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                self.post("recording", {"active": False})
                if self._proc is not None:
                    self._proc.stop()
                raise
            if self._proc is not None:
                self._proc.stop()
            self.last_recording = path
            self.post("recording", {"active": False, "elapsed_s": result.duration_s})
            if hasattr(source, "stats"):
                self.post("sensors", [_status(s, state="stopped") for s in source.stats().values()])
            self.post("status", f"session saved: {path} ({result.duration_s:.0f} s)")

        self._session_task = asyncio.current_task()
        await run()

    def _autopilot_script(self, source: Any) -> list[tuple[float, str, Event]] | None:
        """The scenario's actions in session time (s), for the simulated clinician."""
        world = self._world
        if self.options.direct:  # the script's own time is the session's
            return sorted(((e.time_s, e.kind, e) for e in source.events if e.kind in ("zero", "trial_start", "trial_end")),
                          key=lambda a: a[0])
        if world is None:
            return None
        epoch, t0 = world.subject_epoch_s, getattr(source, "t0_host_s", None)
        if epoch is None or t0 is None:
            return None
        shift = epoch - t0  # session time = script time + shift
        period = world.subject_duration_s()
        actions = []
        for cycle in range(50):
            for e in world.subject_events():
                if e.kind in ("zero", "trial_start", "trial_end"):
                    actions.append((e.time_s + shift + cycle * period, e.kind, e))
        return sorted(actions, key=lambda a: a[0])

    def record_event(self, event: Event) -> None:
        """(processing thread) record ``event`` and show it."""
        if self._loop is not None and self._markers is not None:
            self._loop.call_soon_threadsafe(self._markers.put_nowait, event)
        self.post("event", event)

    def set_calibration_method(self, method: str) -> None:
        from hipimu.core.live import GUIDED_METHODS

        if method not in GUIDED_METHODS:
            self.post("error", f"unknown calibration method {method!r} (known: {', '.join(GUIDED_METHODS)})")
            return
        if self._proc is None or not self._proc.thread.is_alive():  # before the session: the guide starts with it
            self.options.calibration_method = method
            self.post("calibration_method", method)
            return
        self._proc.put(("method", method))

    def restart_calibration(self) -> None:
        self._to_proc(("restart", None))

    def redo_step(self) -> None:
        self._to_proc(("redo", None))

    def start_trial(self, test: str, side: str) -> None:
        if test not in TESTS or side not in ("left", "right", "both"):
            self.post("error", f"unknown test or side: {test} {side}")
            return
        self._to_proc(("trial_start", (test, side)))

    def stop_trial(self) -> None:
        self._to_proc(("trial_end", None))

    def zero(self, side: str | None = None) -> None:
        self._to_proc(("zero", side))

    def marker(self, text: str) -> None:
        self._to_proc(("marker", text.strip() or "marker"))

    def end_session(self) -> None:
        if self._loop is None or self._stop_session is None:
            self.post("status", "no session is running")
            return
        self._to_proc(("trial_end", None))
        self._loop.call_soon_threadsafe(self._stop_session.set)
        self.post("status", "ending the session: finishing the recording ...")

    def _to_proc(self, item: tuple[str, Any]) -> None:
        if self._proc is None:
            self.post("status", "start a session first")
            return
        self._proc.put(item)

    def session_done(self, timeout_s: float = 30.0) -> bool:
        """Wait until the running session has ended (tests)."""
        t_end = time.monotonic() + timeout_s
        while time.monotonic() < t_end:
            task = self._session_task
            if task is None or task.done():
                return True
            time.sleep(0.05)
        return False


def _status(s: Any, state: str | None = None) -> SensorStatus:
    return SensorStatus(s.role, s.name, s.device_id, state or s.state, s.battery_percent, s.rate_hz, s.loss_percent,
                        s.rssi_dbm, s.latency_ms, s.reconnects)


class _Processing:
    """The processing thread: blocks and commands in, updates out."""

    def __init__(self, engine: LiveEngine, rates_hz: dict[str, float],
                 script: list[tuple[float, str, Event]] | None) -> None:
        from hipimu.core.live import LiveProcessor

        o = engine.options
        self.engine = engine
        self.processor = LiveProcessor(rates_hz, use_mag=o.mag, rate_hz=o.angle_rate_hz, calibration_method=o.calibration_method)
        self.queue: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="hipimu-angles", daemon=True)
        self.trial: TrialRecorder | None = None
        self.trial_index = 0
        self.script = script or []
        self._recent: list[AngleBlock] = []  # the last RECENT_S of angles handed out

    def start(self) -> None:
        self.thread.start()

    def put(self, item: tuple[str, Any]) -> None:
        self.queue.put(item)

    def stop(self) -> None:
        self.queue.put(("stop", None))
        if threading.current_thread() is not self.thread:
            self.thread.join(10.0)

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # never silent: the window shows it
            logger.exception("angle processing failed")
            self.engine.post("error", f"angle processing stopped: {exc}")

    def _loop(self) -> None:
        last = 0.0
        while True:
            try:
                item = self.queue.get(timeout=ADVANCE_S)
            except queue.Empty:
                item = None
            items = [item] if item is not None else []
            while True:  # everything waiting, then one advance
                try:
                    items.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            for kind, payload in items:
                if kind == "stop":
                    self._advance(flush=True)
                    return
                self._handle(kind, payload)
            now = time.monotonic()
            if now - last >= ADVANCE_S:
                last = now
                self._advance()

    def _handle(self, kind: str, payload: Any) -> None:
        p = self.processor
        eng = self.engine
        if kind == "block":
            p.feed(payload)
        elif kind == "method":
            if p.set_calibration_method(payload):
                eng.options.calibration_method = payload
                eng.post("calibration_method", payload)
            else:
                eng.post("status", "the calibration has begun: restart it to choose another method")
        elif kind == "restart":
            p.restart_calibration()
        elif kind == "redo":
            p.redo_step()
        elif kind == "zero":
            if p.calibration is None:
                eng.post("status", "zero needs the calibration first")
                return
            eng.record_event(p.zero(side=payload))
            eng.post("status", "zero: hold the neutral position for 1 s")
        elif kind == "marker":
            eng.record_event(Event(_now(p), "marker", payload))
        elif kind == "trial_start":
            test, side, *at = payload
            t = at[0] if at else _now(p)
            self._end_trial(t)
            self.trial_index += 1
            self.trial = TrialRecorder(test, side, self.trial_index, t)
            for block in self._recent:  # a trial started at a past instant (the simulated clinician)
                self.trial.add(block)
            eng.record_event(Event(t, "trial_start", test, {"side": side, "index": self.trial_index}))
            eng.post("trial", {"active": True, "test": test, "side": side, "index": self.trial_index, "start_s": t})
        elif kind == "trial_end":
            self._end_trial(_now(p))

    def _end_trial(self, t: float) -> None:
        tr = self.trial
        if tr is None:
            return
        self.trial = None
        eng = self.engine
        eng.record_event(Event(t, "trial_end", tr.test, {"side": tr.side, "index": tr.index}))
        eng.post("trial", {"active": False, "test": tr.test, "side": tr.side, "index": tr.index})
        result = tr.result(t)
        if result is not None:
            eng.post("result", result)

    def _advance(self, flush: bool = False) -> None:
        p = self.processor
        out = p.advance(flush)
        eng = self.engine
        for e in out.events:
            eng.record_event(e)
        if out.guide is not None:
            eng.post("guide", out.guide)
        if out.calibration is not None:
            eng.post("status", f"calibrated ({out.calibration.method}, grade {out.calibration.grade}): choose a test and start a trial")
        for block in out.angles:
            if self.trial is not None:
                self.trial.add(block)
            eng.post("angles", block)
            self._recent.append(block)
        if out.angles:
            t_end = float(out.angles[-1].time_s[-1])
            while self._recent and float(self._recent[0].time_s[-1]) < t_end - RECENT_S:
                self._recent.pop(0)
        self._autopilot()

    def _autopilot(self) -> None:
        p = self.processor
        if not self.script or p.calibration is None:
            return
        now = p.now_s
        while self.script and self.script[0][0] <= now:
            t, kind, ev = self.script.pop(0)
            if t < now - 2.0:
                continue  # before the calibration passed: skipped
            if kind == "zero":
                side = ev.data.get("side")
                self.engine.record_event(p.zero(t, side))
            elif kind == "trial_start":
                self._handle("trial_start", (ev.label if ev.label in TESTS else "free", ev.data.get("side", "both"), t))
            elif kind == "trial_end":
                self._end_trial(t)


def _now(p: Any) -> float:
    t = p.now_s
    return t if math.isfinite(t) else 0.0
