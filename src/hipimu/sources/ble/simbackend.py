"""A simulated bleak backend: hipimu boards without Bluetooth hardware (demo mode, tests).

bleak 3.x lets a caller replace the platform backend (``backend=``); this
module provides two backend classes that serve a :class:`SimulatedWorld` of
virtual hipimu boards. Code written against bleak's public API runs unchanged
on them::

    world = SimulatedWorld.default(scenario="squat", seed=0)   # 3 boards, 208 Hz
    Scanner, Client = world.backends()     # backend classes bound to this world
    devices = await BleakScanner.discover(2.0, return_adv=True,
                                          service_uuids=[SERVICE_UUID], backend=Scanner)
    client = BleakClient(ble_device, on_disconnect, backend=Client)
    client = await establish_connection(BleakClient, ble_device, name, on_disconnect,
                                        backend=Client)     # bleak-retry-connector

Which world a backend class serves: bleak instantiates the backend class
itself, so the world is a class attribute. :meth:`SimulatedWorld.backends`
returns subclasses bound to that world (named like the base classes, so
``backend_id`` reads ``SimulatedScannerBackend`` / ``SimulatedClientBackend``).
The bare :class:`SimulatedScannerBackend` / :class:`SimulatedClientBackend`
serve the *current* world: the one last passed to :func:`set_current_world`
(or :meth:`SimulatedWorld.install`), else a ``SimulatedWorld.default()`` made
on first use.

The virtual board
-----------------
Each board behaves like ``firmware/board/hipimu_sensor`` on top of the
portable core (``firmware/core``), decided in Python with
:mod:`hipimu.core.protocol`:

* GATT of ``firmware/PROTOCOL.md`` (hipimu service, Battery, Device
  Information); advertises the service UUID, the name ``hipimu-xxxx`` only in
  the scan response (a passive scan sees no name), stops advertising while
  connected or switched off, and advertises again after a disconnection.
* Commands: every request answered exactly as ``command.c`` does
  (:func:`~hipimu.core.protocol.decode_command` gives the early errors, then
  argument values, then state: ERR_BUSY, ERR_NO_SENSOR, ERR_MTU_TOO_SMALL);
  START from idle empties the FIFO, zeroes ``seq`` and the dropped total;
  the first 100 ms after START are discarded (gyro start-up, as the firmware
  does); STOP on disconnection. Responses go out only if the host enabled
  notifications of the control characteristic.
* Samples: the virtual subject (:func:`~hipimu.sources.simulate.simulate_session`,
  the board's ``role``) at the board's rate, looped: sample ``k`` after a START
  is subject sample ``(subject_index + k) mod N`` where ``subject_index`` is
  the subject's position at the first sample's instant (the subject's clock
  starts at the world's first START, ``subject_clock="first_start"``, or at
  world creation, ``"world"``). Values are quantized with the config's scales.
  The subject is simulated once per rate (about 1 s, in a worker thread,
  shared by all worlds of the process); nothing longer than one scenario is
  ever held.
* Timing: the IMU samples at ``rate * (1 + imu_ppm)`` (the subject's own
  clock error) from a random phase; it is read in bursts at the firmware's
  FIFO watermark (``rate // 50`` samples at >= 100 Hz, else 1; ``imu_watermark``
  overrides) and the burst's samples are stamped as ``hip_burst_sample_time_us``
  does: the read instant's device time minus whole nominal periods. The device
  clock is a 32768 Hz RTC: ``device_time_us(t) = offset + (t - boot) * (1 + ppm
  * 1e-6)`` s -> us, floored to RTC ticks (``t`` = ``time.monotonic()``).
  Packets are built at burst reads only (below), so a packet leaves the board
  later than the earliest instant the host can bound from its content
  (:func:`hipimu.core.clocksync.packet_notify_device_s`): at 208 Hz (bursts of
  4, 11-sample packets) by 2.9, 7.7, 12.5 or 17.3 ms, in turn, the same for
  every board. Sample rate and CI are exact but for ppm, so build instants and
  connection events are commensurate (208 = 16 x 13): over a recording the
  shortest wait from a 2.9 ms packet's build to its connection event is set by
  the link's phase, anywhere in [0, CI/13) at CI 50 ms (3.8 ms; [0, 0.77) at
  30 ms, [0, 0.19) at 7.5 ms), and drifts only with the IMU's ppm: a
  board-specific offset of the lower envelope of (bound, arrival) that is not
  a delivery error.
* Batching: the core's batcher (``batcher.c``): consecutive samples, as many as
  fit the MTU, only those less than 50 ms after the first; a packet is
  built at a burst read once it cannot grow or its first sample is 50 ms old,
  or, when the radio queue was full, at the connection event that frees a
  buffer (the firmware's loop waits in ``ble_notify_data``; a freed buffer
  does not wake it otherwise). (The firmware's loop also wakes at the oldest
  sample's 50 ms deadline and builds from the samples read by then, which at
  208 Hz makes 8-sample packets; this model waits for the next burst read.)
  The sample FIFO holds 256 samples; when the radio cannot keep up (or the
  data characteristic is not subscribed) it fills and new samples are dropped
  and reported in the next packet's ``dropped``.
* Radio: a connection event every CI (default 15 ms, what the firmware
  requests), at most ``max_packets_per_event`` notifications per event, a
  ``tx_buffers``-deep radio queue; requests reach the board at the next
  connection event, responses (write/read and the control notification)
  arrive one event later. Optional radio packet loss ``loss`` (a packet whose
  seq was used but never arrives). Notifications are delivered on the client's
  event loop as bleak does: ``callback(characteristic, bytearray)``, at the
  connection event's instant: the board's costly work for an event (burst
  reads, batching, quantization, encoding) is done ``PREPARE_S`` (3 ms) ahead,
  and the event wakes the loop through a Linux timerfd watched like a socket
  (elsewhere, or on a loop without ``add_reader``: ``loop.call_at``, which
  epoll rounds up to whole milliseconds). Measured with three boards (CI 7.5,
  30, 50 ms) and hipimu's BLE source on the same loop: callbacks run 0.05-0.25
  ms after the event (median 0.15 ms, 99th percentile ~0.6 ms; later only
  while the loop is busy with other work), alike for every board (asyncio
  timers with the work done at the event: 0.2-2 ms, median 1 ms).

Test and demo hooks (:class:`SimulatedWorld`): :meth:`~SimulatedWorld.drop_link`,
:meth:`~SimulatedWorld.inject`, :meth:`~SimulatedWorld.shake`,
:meth:`~SimulatedWorld.set_absent`, per-board :attr:`SimulatedBoard.truth`
(one :class:`StartTruth` per START: the host-monotonic instant of its first
sample) and :attr:`SimulatedBoard.counters`. Hooks may be called from any
thread; they act on the link's event loop.

Semantics copied from bleak's BlueZ backend (the platform hipimu targets):
``disconnected_callback`` fires on every disconnection, also one the host
asked for with ``disconnect()``; after a disconnection ``services`` is gone
and reads/writes raise ``BleakError("Not connected")``; a connection attempt
to a board that does not answer fails with a ``BleakError`` mentioning
``le-connection-abort-by-local`` (which bleak-retry-connector retries as a
transient error); an unknown address raises ``BleakDeviceNotFoundError``.
Unlike BlueZ, ``mtu_size`` reports the negotiated MTU (BlueZ reports 23).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import math
import os
import random
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError, BleakGATTProtocolError, BleakGATTProtocolErrorCode

from hipimu.core.protocol import (
    ACC_RANGES_G,
    ATT_MTU_MAX,
    ATT_MTU_MIN,
    BATTERY_LEVEL_CHAR_UUID,
    BATTERY_SERVICE_UUID,
    CONFIG_CHAR_UUID,
    CONTROL_CHAR_UUID,
    DATA_CHAR_UUID,
    DEVICE_INFORMATION_SERVICE_UUID,
    DROPPED_MAX,
    FIRMWARE_REVISION_CHAR_UUID,
    GYR_RANGES_DPS,
    IDENTIFY_SECONDS_MAX,
    MANUFACTURER_NAME,
    MANUFACTURER_NAME_CHAR_UUID,
    MAX_PACKET_DELAY_US,
    MODEL_NUMBER_CHAR_UUID,
    RATES_HZ,
    SERIAL_NUMBER_CHAR_UUID,
    SERVICE_UUID,
    STATUS_IMU_FOUND,
    STATUS_MAG_FOUND,
    CommandError,
    DeviceConfig,
    Opcode,
    Status,
    advertised_name,
    decode_command,
    encode_config,
    encode_packet,
    encode_response,
    samples_per_packet,
)
from hipimu.sources.simulate.packets import board_config, device_id_hex, quantize

__all__ = [
    "SimulatedWorld",
    "SimulatedBoard",
    "StartTruth",
    "BoardCounters",
    "SimulatedScannerBackend",
    "SimulatedClientBackend",
    "SimulatedDeviceDetails",
    "current_world",
    "set_current_world",
    "FIFO_CAPACITY",
    "IMU_SETTLE_S",
    "RTC_HZ",
]

logger = logging.getLogger(__name__)

FIFO_CAPACITY = 256  #: samples (HIP_FIFO_CAPACITY: 1.2 s at 208 Hz)
IMU_SETTLE_S = 0.1  #: samples of the first 100 ms after START are discarded (HIP_IMU_SETTLE_US)
RTC_HZ = 32768  #: the device clock's tick rate
BATTERY_PERIOD_S = 30.0  #: the firmware reads the battery every 30 s
CCCD_UUID = "00002902-0000-1000-8000-00805f9b34fb"
MODEL_NUMBER = "hipimu-sensor (simulated)"
_ROLES = ("pelvis", "thigh_left", "thigh_right")
_ABORT = "le-connection-abort-by-local"


def _now() -> float:
    return time.monotonic()


# ---------------------------------------------------------------------------
# The virtual subject: simulated once per (scenario, seed, rate), shared
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _RoleData:
    time_s: np.ndarray
    acc: np.ndarray
    gyr: np.ndarray
    mag: np.ndarray | None
    imu_ppm: float


@dataclass(frozen=True, eq=False)
class _Subject:
    session: Any  # hipimu.core.model.Session
    roles: dict[str, _RoleData]
    duration_s: float


_SUBJECTS: dict[tuple, concurrent.futures.Future] = {}
_SUBJECTS_LOCK = threading.Lock()
_SUBJECTS_KEEP = 8
_EXECUTOR: concurrent.futures.ThreadPoolExecutor | None = None


def _make_subject(scenario: str, seed: int, rate_hz: int, duration_s: float | None) -> _Subject:
    from hipimu.sources.simulate import simulate_session

    session, _truth = simulate_session(scenario, seed=seed, rate_hz=float(rate_hz), mag=True, duration_s=duration_s)
    sensors = session.info.simulation.get("sensors", {})
    roles = {}
    duration = 0.0
    for role, block in session.samples.items():
        ppm = float(sensors.get(role, {}).get("errors", {}).get("clock_ppm", 0.0))
        roles[role] = _RoleData(block.time_s, block.acc_m_s2, block.gyr_rad_s, block.mag_ut, ppm)
        duration = max(duration, len(block) / (rate_hz * (1.0 + ppm * 1e-6)))
    return _Subject(session, roles, duration)


def _subject_future(key: tuple) -> concurrent.futures.Future:
    global _EXECUTOR
    with _SUBJECTS_LOCK:
        fut = _SUBJECTS.get(key)
        if fut is not None and not (fut.done() and fut.exception() is not None):
            return fut
        if _EXECUTOR is None:
            _EXECUTOR = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="hipimu-simworld")
        fut = _EXECUTOR.submit(_make_subject, *key)
        _SUBJECTS[key] = fut
        done = [k for k, f in _SUBJECTS.items() if f.done()]
        for k in done[: max(0, len(_SUBJECTS) - _SUBJECTS_KEEP)]:
            del _SUBJECTS[k]
        return fut


# ---------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StartTruth:
    """What really happened at one START of a board.

    ``host_time_s``: host-monotonic instant (``time.monotonic()``) of the first
    sample the board kept; ``device_time_us``: its 64-bit device timestamp (the
    low 32 bits are the first packet's ``t0_us``); ``command_time_s``: when the
    board handled START; ``subject_index``: the subject sample it carries
    (sample ``k`` carries ``(subject_index + k) % subject_samples``);
    ``subject_time_s``: the subject's script time at the first sample.
    """

    host_time_s: float
    device_time_us: int
    command_time_s: float
    rate_hz: int
    subject_index: int
    subject_samples: int
    subject_time_s: float


@dataclass
class BoardCounters:
    """What a board did (since the world was made)."""

    adverts: int = 0
    connections: int = 0
    disconnections: int = 0
    link_drops: int = 0  #: disconnections by drop_link / set_absent
    connect_refused: int = 0
    commands: int = 0  #: control writes handled
    responses_sent: int = 0
    starts: int = 0
    packets_built: int = 0
    packets_sent: int = 0  #: delivered to the host
    packets_lost: int = 0  #: lost on the radio (``loss``)
    samples_built: int = 0
    samples_dropped: int = 0  #: FIFO overflow (device drops)
    injected: int = 0
    ignored_writes: int = 0  #: writes without response to the control characteristic


@dataclass(frozen=True)
class SimulatedDeviceDetails:
    """``BLEDevice.details`` of a simulated board (deliberately not a dict: bleak-retry-connector
    treats a dict with a ``path`` as a BlueZ device)."""

    device_id: str
    address: str
    role: str


# ---------------------------------------------------------------------------
# Streaming state of one START
# ---------------------------------------------------------------------------


class _Stream:
    """The IMU of one START: sample instants, burst reads, device stamps, subject data."""

    def __init__(self, board: SimulatedBoard, t_start: float, data: _RoleData, config: DeviceConfig,
                 rng: random.Random) -> None:
        self.board = board
        self.config = config
        self.rate_hz = int(round(config.rate_hz))
        self.rate_eff = self.rate_hz * (1.0 + data.imu_ppm * 1e-6)
        self.t_imu0 = t_start + rng.random() / self.rate_hz
        self.w = board.imu_watermark or (self.rate_hz // 50 if self.rate_hz >= 100 else 1)
        self.period_x16 = (16_000_000 + self.rate_hz // 2) // self.rate_hz
        self.spp = samples_per_packet(config.mtu, config.mag_enabled)
        self.data = data
        self.n_subject = len(data.time_s)
        self.j0 = 0  # subject sample of the first kept sample (set by the board)
        # first kept sample: stamped >= START + 100 ms
        target = board.device_time_us(t_start) + int(IMU_SETTLE_S * 1e6)
        i = max(0, math.ceil((t_start + IMU_SETTLE_S - self.t_imu0) * self.rate_eff) - 2 * self.w)
        while self.stamp(i) < target:
            i += 1
        self.i0 = i

    def t(self, i: int) -> float:
        return self.t_imu0 + i / self.rate_eff

    def burst_end(self, i: int) -> int:
        return (i // self.w + 1) * self.w - 1

    def arrival(self, i: int) -> float:
        return self.t(self.burst_end(i))

    def stamp(self, i: int) -> int:
        """64-bit device time (us) the firmware gives sample i."""
        be = self.burst_end(i)
        return self.board.device_time_us(self.t(be)) - (((be - i) * self.period_x16 + 8) >> 4)

    def last_arrived(self, t: float) -> int:
        """Index of the last sample read from the IMU by host time t (-1: none)."""
        taken = math.floor((t - self.t_imu0) * self.rate_eff + 1e-6)
        return ((taken + 1) // self.w) * self.w - 1

    def first_burst_at_or_after(self, t: float, i_min: int) -> int:
        i = max(i_min, math.ceil((t - self.t_imu0) * self.rate_eff - 1e-6))
        return self.burst_end(i)


# ---------------------------------------------------------------------------
# The board
# ---------------------------------------------------------------------------


class SimulatedBoard:
    """One virtual hipimu board (peripheral state; at most one link at a time)."""

    def __init__(self, world: SimulatedWorld, role: str, device_id: str, *, ci_ms: float, clock_ppm: float,
                 clock_offset_s: float, rssi_dbm: float, battery_percent: int, seed: int) -> None:
        self.world = world
        self.role = role
        self.device_id = device_id
        self.name = advertised_name(device_id)
        raw = bytearray(bytes.fromhex(device_id)[-6:])
        raw[0] |= 0xC0  # a random static address
        self.address = ":".join(f"{b:02X}" for b in raw)
        self.ci_s = float(ci_ms) * 1e-3
        self.clock_ppm = float(clock_ppm)
        self.boot_s = world.created_s
        self.clock_offset_us = int(round(clock_offset_s * 1e6))
        self.rssi_dbm = float(rssi_dbm)
        self.battery_start = int(battery_percent)
        self.firmware_version = tuple(world.firmware_version)
        self.mtu = int(min(max(world.mtu, ATT_MTU_MIN), 0xFFFF))
        self.loss = float(world.loss)
        self.imu_watermark = world.imu_watermark
        self.imu_ok = True
        self.mag_ok = bool(world.mag_fitted)
        # state (firmware RAM: survives connections)
        self.rate_hz = int(world.rate_hz)
        self.acc_range_g = 8
        self.gyr_range_dps = 1000
        self.mag_enabled = bool(world.mag) and self.mag_ok
        self.streaming = False
        self.seq = 0
        self.identify_until = 0.0
        self.absent = False
        self.down_until = 0.0
        self.truth: list[StartTruth] = []
        self.counters = BoardCounters()
        #: set to a list to log each delivered data notification as (connection event
        #: instant, host clock when the callback ran): the schedule and its wall-clock lateness
        self.delivery_log: list[tuple[float, float]] | None = None
        self._rng = random.Random(seed)
        self._loss_rng = random.Random(seed + 1)
        self._link: _Link | None = None
        self._stream: _Stream | None = None
        self._shakes: list[tuple[float, float, float, float, float]] = []
        self._fifo_reset()

    def __repr__(self) -> str:
        return f"<SimulatedBoard {self.name} {self.address} {self.role} id={self.device_id}>"

    # -- clock, battery, config ------------------------------------------------

    def device_time_us(self, host_time_s: float) -> int:
        """The board's 64-bit device time (us) at host-monotonic instant ``host_time_s``."""
        us = self.clock_offset_us + (host_time_s - self.boot_s) * (1.0 + self.clock_ppm * 1e-6) * 1e6
        ticks = math.floor(us * RTC_HZ / 1e6)
        return (ticks * 1_000_000) // RTC_HZ

    def _host_time_of(self, device_us: float) -> float:
        return self.boot_s + (device_us - self.clock_offset_us) * 1e-6 / (1.0 + self.clock_ppm * 1e-6)

    def battery_percent(self, t: float | None = None) -> int:
        """Battery level: drains 1 % per ``world.battery_drain_s`` (updated every 30 s), never under 5 %."""
        t = _now() if t is None else t
        checks = math.floor(max(0.0, t - self.boot_s) / BATTERY_PERIOD_S) * BATTERY_PERIOD_S
        return max(5, self.battery_start - int(checks // self.world.battery_drain_s))

    @property
    def connected(self) -> bool:
        return self._link is not None

    @property
    def identifying(self) -> bool:
        return _now() < self.identify_until

    @property
    def advertising(self) -> bool:
        return not self.absent and _now() >= self.down_until and self._link is None

    @property
    def config(self) -> DeviceConfig:
        """The config characteristic's current value."""
        return self._config(_now())

    def _config(self, t: float) -> DeviceConfig:
        cfg = board_config(self.device_id, rate_hz=self.rate_hz, acc_range_g=self.acc_range_g,
                           gyr_range_dps=self.gyr_range_dps, mag=self.mag_enabled,
                           mtu=self._link.mtu if self._link else ATT_MTU_MIN,
                           firmware_version=self.firmware_version, battery_percent=self.battery_percent(t),
                           streaming=self.streaming)
        flags = (STATUS_IMU_FOUND if self.imu_ok else 0) | (STATUS_MAG_FOUND if self.mag_ok else 0)
        return dataclasses.replace(cfg, mag_part=1 if self.mag_ok else 0,
                                   mag_scale_ut=cfg.mag_scale_ut if self.mag_ok else 0.0, status_flags=flags)

    def _read(self, uuid: str, t: float) -> bytes:
        if uuid == CONFIG_CHAR_UUID:
            return encode_config(self._config(t))
        if uuid == BATTERY_LEVEL_CHAR_UUID:
            return bytes((self.battery_percent(t),))
        if uuid == MANUFACTURER_NAME_CHAR_UUID:
            return MANUFACTURER_NAME.encode()
        if uuid == MODEL_NUMBER_CHAR_UUID:
            return MODEL_NUMBER.encode()
        if uuid == SERIAL_NUMBER_CHAR_UUID:
            return self.device_id.encode()
        if uuid == FIRMWARE_REVISION_CHAR_UUID:
            return ".".join(str(x) for x in self.firmware_version).encode()
        raise BleakGATTProtocolError(BleakGATTProtocolErrorCode.READ_NOT_PERMITTED)

    # -- commands (command.c) ----------------------------------------------------

    def _command(self, data: bytes, t: float) -> tuple[bytes, bool]:
        """Handle a control write at host time t; returns (response, ready to go).
        ``ready`` is False only when START must wait for the subject's data."""
        try:
            cmd = decode_command(data)
        except CommandError as exc:
            return encode_response(exc.opcode, exc.token, exc.status), True
        op, token, args = cmd.opcode, cmd.token, cmd.args
        payload: dict[str, int] = {}
        status = Status.OK
        if op == Opcode.START:
            if not self.streaming:
                if not self.imu_ok or (self.mag_enabled and not self.mag_ok):
                    status = Status.ERR_NO_SENSOR
                elif samples_per_packet(self._link.mtu if self._link else ATT_MTU_MIN, self.mag_enabled) == 0:
                    status = Status.ERR_MTU_TOO_SMALL
                else:
                    fut = self.world._subject_future(self.rate_hz)
                    if not fut.done():
                        return b"", False
                    self._start(t, fut.result())
        elif op == Opcode.STOP:
            self._stop()
        elif op == Opcode.SET_RATE:
            if args["rate_hz"] not in RATES_HZ:
                status = Status.ERR_BAD_VALUE
            elif self.streaming:
                status = Status.ERR_BUSY
            else:
                self.rate_hz = args["rate_hz"]
                self.world._subject_future(self.rate_hz)  # start simulating it now
        elif op == Opcode.SET_RANGES:
            if args["acc_range_g"] not in ACC_RANGES_G or args["gyr_range_dps"] not in GYR_RANGES_DPS:
                status = Status.ERR_BAD_VALUE
            elif self.streaming:
                status = Status.ERR_BUSY
            else:
                self.acc_range_g, self.gyr_range_dps = args["acc_range_g"], args["gyr_range_dps"]
        elif op == Opcode.IDENTIFY:
            if not 1 <= args["seconds"] <= IDENTIFY_SECONDS_MAX:
                status = Status.ERR_BAD_VALUE
            else:
                self.identify_until = t + args["seconds"]
        elif op == Opcode.TIME_SYNC:
            payload = {"host_nonce": args["host_nonce"], "device_time_us": self.device_time_us(t) & 0xFFFFFFFF}
        elif op == Opcode.RESET_DROPPED:
            payload = {"dropped_total": min(self._dropped_total, 0xFFFFFFFF)}
            self._dropped_total = 0
            self.seq = 0
        elif op == Opcode.SET_MAG:
            if args["enabled"] > 1:
                status = Status.ERR_BAD_VALUE
            elif self.streaming:
                status = Status.ERR_BUSY
            elif args["enabled"] == 1 and not self.mag_ok:
                status = Status.ERR_NO_SENSOR
            else:
                self.mag_enabled = args["enabled"] == 1
        if status != Status.OK:
            payload = {}
        return encode_response(op, token, status, **payload), True

    def _start(self, t: float, subject: _Subject) -> None:
        self._fifo_reset()
        self.seq = 0
        self.streaming = True
        self.counters.starts += 1
        config = self._config(t)
        data = subject.roles[self.role]
        s = _Stream(self, t, data, config, self._rng)
        t0 = s.t(s.i0)
        epoch = self.world._subject_epoch(t0)
        sub_t = (t0 - epoch) % subject.duration_s
        j0 = int(np.searchsorted(data.time_s, sub_t)) % s.n_subject
        s.j0 = j0
        self._stream = s
        self._arr_next = s.i0
        self.truth.append(StartTruth(t0, s.stamp(s.i0), t, s.rate_hz, j0, s.n_subject, sub_t))

    def _stop(self) -> None:
        self.streaming = False
        self._stream = None
        self._fifo_reset(keep_totals=True)

    # -- sample FIFO and batcher (fifo.c, batcher.c) -----------------------------

    def _fifo_reset(self, keep_totals: bool = False) -> None:
        self._runs: deque[list[int]] = deque()  # [first index, count, dropped_before]
        self._fifo_count = 0
        self._pending_drops = 0
        self._arr_next = 0
        self._last_check = -math.inf
        if not keep_totals:
            self._dropped_total = 0

    def _arrive(self, t: float) -> None:
        s = self._stream
        if s is None:
            return
        last = s.last_arrived(t)
        new = last - self._arr_next + 1
        if new <= 0:
            return
        acc = min(new, FIFO_CAPACITY - self._fifo_count)
        if acc > 0:
            runs = self._runs
            if self._pending_drops:
                runs.append([self._arr_next, acc, min(self._pending_drops, DROPPED_MAX)])
                self._pending_drops = 0
            elif runs and runs[-1][0] + runs[-1][1] == self._arr_next:
                runs[-1][1] += acc
            else:
                runs.append([self._arr_next, acc, 0])
            self._fifo_count += acc
        dropped = new - acc
        if dropped:
            self._pending_drops += dropped
            self._dropped_total += dropped
            self.counters.samples_dropped += dropped
        self._arr_next += new

    def _can_send(self) -> bool:
        link = self._link
        return (self.streaming and self._stream is not None and link is not None
                and DATA_CHAR_UUID in link.cccd and link.data_in_queue < self.world.tx_buffers)

    def _next_due(self) -> float | None:
        """Host time of the next burst read at which a packet is due (None: nothing can go)."""
        if not self._can_send():
            return None
        s = self._stream
        assert s is not None
        if self._runs:
            a, count, _ = self._runs[0]
            if len(self._runs) > 1 and count < s.spp:
                return s.arrival(self._runs[1][0])  # a drop ends the head packet: due already
        else:
            a = self._arr_next
        t_full = s.arrival(a + s.spp - 1)
        target = s.stamp(a) + MAX_PACKET_DELAY_US
        j = s.first_burst_at_or_after(self._host_time_of(target), a)
        while self.device_time_us(s.t(j)) < target:
            j += s.w
        while j - s.w >= s.burst_end(a) and self.device_time_us(s.t(j - s.w)) >= target:
            j -= s.w
        return min(t_full, s.t(j))

    def _build(self, t: float) -> int:
        """Build the packets due at host time t while the radio queue has room."""
        built = 0
        s = self._stream
        while self._runs and self._can_send():
            assert s is not None
            run = self._runs[0]
            a, avail, dropped = run
            first = s.stamp(a)
            n, ended = 1, s.spp == 1
            while not ended and n < avail:
                if s.stamp(a + n) - first >= MAX_PACKET_DELAY_US:
                    ended = True
                else:
                    n += 1
                    ended = n == s.spp
            if not ended and n == avail and len(self._runs) > 1:
                ended = True
            late = self.device_time_us(t) - first >= MAX_PACKET_DELAY_US
            if not (ended or late):
                break
            packet = encode_packet(self.seq, dropped, first & 0xFFFFFFFF, self._counts(s, a, n))
            self.seq = (self.seq + 1) & 0xFF
            run[0] += n
            run[1] -= n
            run[2] = 0
            if run[1] == 0:
                self._runs.popleft()
            self._fifo_count -= n
            self.counters.packets_built += 1
            self.counters.samples_built += n
            assert self._link is not None
            self._link.queue_notification(DATA_CHAR_UUID, packet, t, is_data=True)
            built += 1
        return built

    def _counts(self, s: _Stream, a: int, n: int) -> np.ndarray:
        d = s.data
        k = np.arange(a - s.i0, a - s.i0 + n)
        idx = (s.j0 + k) % s.n_subject
        acc, gyr = d.acc[idx], d.gyr[idx]
        if self._shakes:
            acc, gyr = self._shaken(s, a, n, acc, gyr)
        cfg = s.config
        parts = [quantize(acc, cfg.acc_scale_m_s2), quantize(gyr, cfg.gyr_scale_rad_s)]
        if cfg.mag_enabled and d.mag is not None:
            # the firmware reads the magnetometer once per burst (sample and hold)
            be = (np.arange(a, a + n) // s.w + 1) * s.w - 1
            parts.append(quantize(d.mag[(s.j0 + be - s.i0) % s.n_subject], cfg.mag_scale_ut))
        return np.hstack(parts)

    def _shaken(self, s: _Stream, a: int, n: int, acc: np.ndarray, gyr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = s.t_imu0 + np.arange(a, a + n) / s.rate_eff
        self._shakes = [sh for sh in self._shakes if sh[1] > t[0]]  # forget the ones over
        acc, gyr = acc.copy(), gyr.copy()
        for start, end, gyr_amp, acc_amp, freq in self._shakes:
            on = (t >= start) & (t < end)
            if not on.any():
                continue
            ph = 2 * np.pi * freq * (t[on] - start)
            wave = np.stack([np.sin(ph), np.sin(ph + 2.1), np.sin(ph + 4.2)], axis=1)
            gyr[on] += gyr_amp * wave
            acc[on] += acc_amp * wave
        return acc, gyr

    # -- link events -------------------------------------------------------------

    def _observe(self, t: float) -> None:
        """While nothing can be sent, samples only pile up in the FIFO: account for them up to t."""
        if not self._can_send():
            self._arrive(t)
            self._last_check = max(self._last_check, t)

    def _run_until(self, t: float) -> None:
        """Process the burst reads up to host time t at which packets become due."""
        for _ in range(100_000):
            due = self._next_due()
            if due is None or due > t:
                return
            due = max(due, self._last_check)
            self._arrive(due)
            built = self._build(due)
            self._last_check = due
            if not built:
                # nothing due after all (rounding): look again at the next burst
                s = self._stream
                assert s is not None
                self._last_check = s.arrival(s.last_arrived(due) + 1)
                if self._last_check > t:
                    return
        raise RuntimeError("simulated board: batcher did not converge")  # pragma: no cover

    def _refill(self, t: float) -> None:
        """A radio buffer freed at t while the radio queue was full: the firmware's loop,
        blocked in ``ble_notify_data``, goes on and builds what is due now. (A freed
        buffer does not wake the loop otherwise: packets are built at burst reads.)"""
        if self._can_send():
            self._arrive(t)
            self._build(t)
            self._last_check = max(self._last_check, t)

    def _on_disconnect(self) -> None:
        if self.streaming:
            self._stop()  # STOP, no response: nobody to stream to
        self._link = None


# ---------------------------------------------------------------------------
# Precise wake-ups on the event loop
# ---------------------------------------------------------------------------

PREPARE_S = 0.003  #: a board computes a connection event's packets this long before it


def _timerfd_api() -> tuple[Callable[[], int], Callable[[int, float], None]] | None:
    """(create, set absolute CLOCK_MONOTONIC expiry; 0 disarms) of Linux timerfds, or None."""
    if not sys.platform.startswith("linux"):
        return None
    if hasattr(os, "timerfd_create"):  # Python >= 3.13
        def create() -> int:
            return os.timerfd_create(time.CLOCK_MONOTONIC, flags=os.TFD_NONBLOCK | os.TFD_CLOEXEC)

        def settime(fd: int, t: float) -> None:
            os.timerfd_settime(fd, flags=os.TFD_TIMER_ABSTIME, initial=t)

        return create, settime
    try:
        import ctypes

        class _Timespec(ctypes.Structure):
            _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

        class _Itimerspec(ctypes.Structure):
            _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]

        libc = ctypes.CDLL(None, use_errno=True)
        libc.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.timerfd_create.restype = ctypes.c_int
        libc.timerfd_settime.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Itimerspec), ctypes.c_void_p]
        libc.timerfd_settime.restype = ctypes.c_int
    except (OSError, AttributeError, ImportError):
        return None
    # time.monotonic() is CLOCK_MONOTONIC on Linux; TFD_NONBLOCK/TFD_CLOEXEC are O_NONBLOCK/O_CLOEXEC
    clock, flags = time.CLOCK_MONOTONIC, os.O_NONBLOCK | os.O_CLOEXEC

    def create_c() -> int:
        fd = libc.timerfd_create(clock, flags)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        return fd

    def settime_c(fd: int, t: float) -> None:
        sec = math.floor(t) if t > 0 else 0
        nsec = min(999_999_999, max(0, round((t - sec) * 1e9))) if t > 0 else 0
        spec = _Itimerspec(_Timespec(0, 0), _Timespec(sec, nsec))
        if libc.timerfd_settime(fd, 1, ctypes.byref(spec), None) != 0:  # 1: TFD_TIMER_ABSTIME
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))

    return create_c, settime_c


_TIMERFD: Any = ...  # resolved on first use


def _timerfd() -> tuple[Callable[[], int], Callable[[int, float], None]] | None:
    global _TIMERFD
    if _TIMERFD is ...:
        _TIMERFD = _timerfd_api()
    return _TIMERFD


class _Waker:
    """Calls ``fn`` on ``loop`` at an absolute ``time.monotonic()`` instant.

    asyncio's timers wake the selector loop up to ~1 ms late (epoll takes whole
    milliseconds), by an amount that depends on the instant: a board-specific
    delivery delay a real controller does not have. On Linux the wake-up is a
    timerfd watched by the loop like a socket (a real backend's notifications
    also arrive on a file descriptor): ~0.1 ms late. Elsewhere (or if the loop
    cannot watch file descriptors) it is ``loop.call_at``.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, fn: Callable[[], None]) -> None:
        self.loop = loop
        self.fn = fn
        self.fd: int | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._settime: Callable[[int, float], None] | None = None
        api = _timerfd()
        if api is not None:
            fd = -1
            try:
                fd = api[0]()
                loop.add_reader(fd, self._ready)
            except (OSError, NotImplementedError, RuntimeError, AttributeError, ValueError):
                if fd >= 0:
                    os.close(fd)
            else:
                self.fd, self._settime = fd, api[1]
                self._finalizer = weakref.finalize(self, os.close, fd)

    def at(self, t: float) -> None:
        if self.fd is not None and self._settime is not None:
            self._settime(self.fd, max(t, 1e-6))
            return
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self.loop.call_at(self.loop.time() + (t - _now()), self._fire)

    def cancel(self) -> None:
        if self.fd is not None and self._settime is not None:
            self._settime(self.fd, 0.0)
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def close(self) -> None:
        self.cancel()
        fd, self.fd = self.fd, None
        if fd is not None:
            try:
                self.loop.remove_reader(fd)
            except (RuntimeError, ValueError):  # the loop is closed
                pass
            self._finalizer()  # closes fd

    def _fire(self) -> None:
        self._handle = None
        self.fn()

    def _ready(self) -> None:
        if self.fd is None:
            return
        try:
            os.read(self.fd, 8)
        except (BlockingIOError, InterruptedError):  # disarmed or re-armed since it became readable
            return
        self.fn()


# ---------------------------------------------------------------------------
# A connection
# ---------------------------------------------------------------------------


@dataclass
class _TxItem:
    uuid: str
    data: bytes
    ready: float
    is_data: bool


@dataclass
class _Request:
    issued: float
    kind: str  # "write" | "read" | "cccd"
    uuid: str = ""
    data: bytes = b""
    future: asyncio.Future | None = None


class _Link:
    """One connection between a client backend and a board, driven by connection events."""

    def __init__(self, board: SimulatedBoard, client: SimulatedClientBackend, loop: asyncio.AbstractEventLoop,
                 t_connect: float) -> None:
        self.board = board
        self.client = client
        self.loop = loop
        self.ci = board.ci_s
        self.anchor = t_connect + board._rng.random() * self.ci
        self.mtu = min(board.mtu, ATT_MTU_MAX) if board.mtu >= ATT_MTU_MIN else ATT_MTU_MIN
        self.cccd: set[str] = set()
        self.callbacks: dict[str, NotifyCallback] = {}
        self.tx: deque[_TxItem] = deque()
        self.data_in_queue = 0
        self.requests: deque[_Request] = deque()
        self.acks: deque[tuple[float, asyncio.Future, Any]] = deque()
        self.open = True
        self.waiting_data = False
        self._next: float | None = None  # the next connection event to process (host time)
        self._waker = _Waker(loop, self._on_timer)  # fires at _next
        self._pre: asyncio.TimerHandle | None = None  # the board's work for _next, PREPARE_S before it
        self._pre_for: float | None = None
        self._battery_sent = board.battery_percent(t_connect)
        self._battery_next = math.inf

    # -- time ------------------------------------------------------------------

    def next_ce(self, t: float) -> float:
        """The first connection event at or after t."""
        n = math.ceil((t - self.anchor) / self.ci - 1e-9)
        return self.anchor + max(n, 0) * self.ci

    def wake(self, t: float) -> None:
        """Make sure the connection event at or after t is processed."""
        if not self.open:
            return
        ce = self.next_ce(t)
        if self._next is None or ce < self._next - 1e-9:
            self._next = ce
            self._arm()

    def _arm(self) -> None:
        t = self._next
        if t is None or not self.open:
            self._waker.cancel()
            self._cancel_pre()
            return
        self._waker.at(t)
        if self._pre_for != t:
            self._cancel_pre()
            self._pre_for = t
            self._pre = self.loop.call_at(self.loop.time() + (t - PREPARE_S - _now()), self._prepare)

    def _cancel_pre(self) -> None:
        if self._pre is not None:
            self._pre.cancel()
            self._pre = None
        self._pre_for = None

    def _prepare(self) -> None:
        """Ahead of the connection event at _next: the board's burst reads and packets
        up to it (the costly part), so that at the event only the radio work remains."""
        self._pre = None
        t = self._next
        if not self.open or t is None or t != self._pre_for:
            return
        try:
            self.board._run_until(t)
        except Exception:
            logger.exception("simulated link %s crashed", self.board.name)
            raise

    def _on_timer(self) -> None:
        now = _now()
        try:
            while self.open and self._next is not None and self._next <= now + 1e-6:
                t = self._next
                self._process(t)
                self._next = self._compute_next(t)
        except Exception:  # a bug here must not silently stop the link
            logger.exception("simulated link %s crashed", self.board.name)
            raise
        self._arm()

    # -- queues ----------------------------------------------------------------

    def queue_notification(self, uuid: str, payload: bytes, ready: float, *, is_data: bool = False) -> None:
        self.tx.append(_TxItem(uuid, payload, ready, is_data))
        if is_data:
            self.data_in_queue += 1

    def request(self, kind: str, uuid: str = "", data: bytes = b"") -> asyncio.Future:
        if not self.open:
            raise BleakError("Not connected")
        fut = self.loop.create_future()
        now = _now()
        self.requests.append(_Request(now, kind, uuid, bytes(data), fut))
        self.wake(now)
        return fut

    # -- one connection event ------------------------------------------------------

    def _process(self, t: float) -> None:
        board = self.board
        later = t + 0.5 * self.ci  # deliverable at the next connection event
        board._observe(t)
        # 1. requests that reached the board at this event, in order
        while self.requests and self.requests[0].issued <= t + 1e-9:
            req = self.requests[0]
            if req.kind == "write":
                response, ready = board._command(req.data, t)
                if not ready:  # START waits for the subject's data (first use of a rate)
                    self._wait_for_data()
                    break
                board.counters.commands += 1
                if CONTROL_CHAR_UUID in self.cccd:
                    self.tx.append(_TxItem(CONTROL_CHAR_UUID, response, later, False))
                    board.counters.responses_sent += 1
                self.acks.append((later, req.future, None))
            elif req.kind == "read":
                try:
                    value: Any = bytearray(board._read(req.uuid, t))
                except BleakError as exc:
                    value = exc
                self.acks.append((later, req.future, value))
            elif req.kind == "cccd":
                enable = req.data == b"\x01"
                (self.cccd.add if enable else self.cccd.discard)(req.uuid)
                if req.uuid == BATTERY_LEVEL_CHAR_UUID:
                    self._battery_next = (self._battery_check_after(t) if enable else math.inf)
                self.acks.append((later, req.future, None))
            self.requests.popleft()
        # 2. battery check (every 30 s, notified when it changed)
        if t >= self._battery_next:
            level = board.battery_percent(t)
            if level != self._battery_sent:
                self._battery_sent = level
                self.tx.append(_TxItem(BATTERY_LEVEL_CHAR_UUID, bytes((level,)), t, False))
            self._battery_next = self._battery_check_after(t)
        # 3. the board's packets due by now
        board._run_until(t)
        # 4. the radio: up to max_packets_per_event notifications
        budget = board.world.max_packets_per_event
        while budget > 0:
            if not self.tx or self.tx[0].ready > t + 1e-9:
                break
            item = self.tx.popleft()
            budget -= 1
            if item.is_data:
                blocked = self.data_in_queue >= board.world.tx_buffers
                self.data_in_queue -= 1
                if blocked:  # the firmware's loop waited for this buffer: it goes on at once
                    board._refill(t)
                if board.loss > 0 and board._loss_rng.random() < board.loss:
                    board.counters.packets_lost += 1
                    continue
                board.counters.packets_sent += 1
            if item.is_data and board.delivery_log is not None:
                board.delivery_log.append((t, _now()))
            self._deliver(item)
            if not self.open:
                return
        # 5. responses (ATT write/read responses)
        while self.acks and self.acks[0][0] <= t + 1e-9:
            _, fut, value = self.acks.popleft()
            if fut is not None and not fut.done():
                if isinstance(value, BaseException):
                    fut.set_exception(value)
                else:
                    fut.set_result(value)

    def _battery_check_after(self, t: float) -> float:
        b = self.board
        return b.boot_s + (math.floor((t - b.boot_s) / BATTERY_PERIOD_S) + 1) * BATTERY_PERIOD_S

    def _deliver(self, item: _TxItem) -> None:
        cb = self.callbacks.get(item.uuid)
        if cb is None or item.uuid not in self.cccd:
            return
        try:
            cb(bytearray(item.data))
        except Exception:
            logger.exception("notification callback of %s raised", self.board.name)

    def _compute_next(self, t: float) -> float | None:
        after = t + 1e-6
        cands = []
        if self.requests and not self.waiting_data:
            cands.append(self.next_ce(max(after, self.requests[0].issued)))
        if self.tx:
            cands.append(self.next_ce(max(after, self.tx[0].ready)))
        if self.acks:
            cands.append(self.next_ce(max(after, self.acks[0][0])))
        due = self.board._next_due()
        if due is not None:
            cands.append(self.next_ce(max(after, due)))
        if self._battery_next < math.inf:
            cands.append(self.next_ce(max(after, self._battery_next)))
        return min(cands) if cands else None

    def _wait_for_data(self) -> None:
        if self.waiting_data:
            return
        self.waiting_data = True
        fut = self.board.world._subject_future(self.board.rate_hz)

        def ready(_f: concurrent.futures.Future) -> None:
            def go() -> None:
                self.waiting_data = False
                self.wake(_now())
            try:
                self.loop.call_soon_threadsafe(go)
            except RuntimeError:  # the loop is closed
                pass

        fut.add_done_callback(ready)

    # -- teardown ------------------------------------------------------------------

    def close(self) -> None:
        """End the link (both sides): the board STOPs, pending requests fail."""
        if not self.open:
            return
        self.open = False
        self._waker.close()
        self._cancel_pre()
        self._next = None
        for req in self.requests:
            if req.future is not None and not req.future.done():
                req.future.set_exception(BleakError("Not connected"))
        for _, fut, _v in self.acks:
            if fut is not None and not fut.done():
                fut.set_exception(BleakError("Not connected"))
        self.requests.clear()
        self.acks.clear()
        self.tx.clear()
        self.cccd.clear()
        self.callbacks.clear()
        if self.board._link is self:
            self.board._on_disconnect()
        self.board.counters.disconnections += 1


# ---------------------------------------------------------------------------
# The world
# ---------------------------------------------------------------------------


def _per_board(value: Any, role: str, index: int, default: Callable[[], Any]) -> Any:
    if value is None:
        return default()
    if isinstance(value, Mapping):
        return value[role] if role in value else default()
    if isinstance(value, (list, tuple)):
        return value[index]
    return value


class SimulatedWorld:
    """A registry of virtual hipimu boards worn by the virtual subject.

    Parameters (a per-board parameter takes one value for all boards, a
    mapping role -> value, or None for a seeded random value):

    scenario, seed, duration_s:
        The virtual subject (:data:`~hipimu.sources.simulate.SCENARIOS`); its
        script loops for as long as the boards stream.
    roles:
        One board per role (of ``pelvis``, ``thigh_left``, ``thigh_right``).
    rate_hz, mag:
        The boards' state after power-up (``mag`` requires ``mag_fitted``).
    mtu:
        The ATT MTU every link negotiates (23..247; BlueZ and the nRF52: 247).
    loss:
        Probability that the radio loses a data packet.
    ci_ms:
        Connection interval per board, 7.5..50 ms (default 15, the firmware's request).
    clock_ppm, clock_offset_s:
        Device clock rate error (default uniform +-20 ppm) and device time at
        world creation (default: 5 s to 1 h of uptime).
    rssi_dbm, battery_percent:
        Mean RSSI (default -45..-75 dBm; each advert jitters +-3 dB) and battery level at creation.
    subject_clock:
        ``"first_start"`` (the subject's script starts at the world's first
        START) or ``"world"`` (at world creation).
    adv_interval_s:
        How often a scan reports each advertising board.
    connect_s, connect_fail_s:
        Time to connect (link + service discovery), and until an attempt on a
        board that does not answer fails.
    max_packets_per_event, tx_buffers, imu_watermark:
        Notifications per connection event; radio buffers the firmware can
        fill; IMU FIFO watermark in samples (None: the firmware's rate // 50).
    """

    def __init__(
        self,
        scenario: str = "squat",
        *,
        seed: int = 0,
        roles: Iterable[str] = _ROLES,
        rate_hz: int = 208,
        mag: bool = False,
        duration_s: float | None = None,
        mtu: int = ATT_MTU_MAX,
        loss: float = 0.0,
        ci_ms: Any = 15.0,
        clock_ppm: Any = None,
        clock_offset_s: Any = None,
        rssi_dbm: Any = None,
        battery_percent: Any = None,
        firmware_version: tuple[int, int, int] = (0, 1, 0),
        mag_fitted: bool = True,
        subject_clock: str = "first_start",
        adv_interval_s: float = 0.1,
        connect_s: float = 0.1,
        connect_fail_s: float = 0.3,
        max_packets_per_event: int = 6,
        tx_buffers: int = 3,
        imu_watermark: int | None = None,
        battery_drain_s: float = 600.0,
        prepare: bool = True,
    ) -> None:
        from hipimu.sources.simulate import SCENARIOS

        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r} (known: {', '.join(SCENARIOS)})")
        roles = tuple(roles)
        if not roles or any(r not in _ROLES for r in roles) or len(set(roles)) != len(roles):
            raise ValueError(f"roles must be distinct names of {_ROLES}, got {roles!r}")
        if rate_hz not in RATES_HZ:
            raise ValueError(f"rate_hz must be one of {RATES_HZ}, got {rate_hz!r}")
        if not 0.0 <= loss < 1.0:
            raise ValueError(f"loss must be in [0, 1), got {loss!r}")
        if subject_clock not in ("first_start", "world"):
            raise ValueError(f"subject_clock must be 'first_start' or 'world', got {subject_clock!r}")
        if imu_watermark is not None and imu_watermark < 1:
            raise ValueError("imu_watermark must be >= 1")
        self.scenario = scenario
        self.seed = int(seed)
        self.duration_s = duration_s
        self.rate_hz = int(rate_hz)
        self.mag = bool(mag)
        self.mag_fitted = bool(mag_fitted)
        self.mtu = int(mtu)
        self.loss = float(loss)
        self.firmware_version = tuple(firmware_version)
        self.subject_clock = subject_clock
        self.adv_interval_s = float(adv_interval_s)
        self.connect_s = float(connect_s)
        self.connect_fail_s = float(connect_fail_s)
        self.max_packets_per_event = int(max_packets_per_event)
        self.tx_buffers = int(tx_buffers)
        self.imu_watermark = imu_watermark
        self.battery_drain_s = float(battery_drain_s)
        self.created_s = _now()
        self._epoch: float | None = self.created_s if subject_clock == "world" else None
        self._lock = threading.Lock()
        self._backend_classes: tuple[type, type] | None = None
        rng = np.random.default_rng([self.seed, 0x5B1E])
        from hipimu.sources.simulate._body import ROLES as SIM_ROLES

        self.boards: dict[str, SimulatedBoard] = {}
        for i, role in enumerate(roles):
            draws = rng.uniform(size=4)  # drawn for every board so a fixed value does not shift the others
            device_id = device_id_hex(f"sim-{role}-{self.seed}")
            ci = float(_per_board(ci_ms, role, i, lambda: 15.0))
            if not 7.5 <= ci <= 50.0:
                raise ValueError(f"ci_ms must be within 7.5..50 ms, got {ci}")
            board = SimulatedBoard(
                self, role, device_id, ci_ms=ci,
                clock_ppm=float(_per_board(clock_ppm, role, i, lambda: (draws[0] * 2 - 1) * 20.0)),
                clock_offset_s=float(_per_board(clock_offset_s, role, i, lambda: 5.0 + draws[1] * 3595.0)),
                rssi_dbm=float(_per_board(rssi_dbm, role, i, lambda: -45.0 - draws[2] * 30.0)),
                battery_percent=int(_per_board(battery_percent, role, i, lambda: 60 + int(draws[3] * 40))),
                seed=self.seed * 1000 + SIM_ROLES.index(role) * 17 + 1,
            )
            self.boards[device_id] = board
        if prepare:
            self._subject_future(self.rate_hz)

    @classmethod
    def default(cls, scenario: str = "squat", *, seed: int = 0, roles: Iterable[str] = _ROLES, rate_hz: int = 208,
                mag: bool = False, **kwargs: Any) -> SimulatedWorld:
        """Three boards (pelvis, both thighs) at 208 Hz on the subject doing ``scenario``;
        the subject starts simulating in the background at once."""
        return cls(scenario, seed=seed, roles=roles, rate_hz=rate_hz, mag=mag, **kwargs)

    def __repr__(self) -> str:
        return f"<SimulatedWorld {self.scenario} seed={self.seed} boards={[b.name for b in self.boards.values()]}>"

    # -- backends ----------------------------------------------------------------

    def backends(self) -> tuple[type[SimulatedScannerBackend], type[SimulatedClientBackend]]:
        """(scanner backend class, client backend class) serving this world, for
        ``BleakScanner(..., backend=)`` and ``BleakClient(..., backend=)``."""
        if self._backend_classes is None:
            scanner = type("SimulatedScannerBackend", (SimulatedScannerBackend,), {"world": self})
            client = type("SimulatedClientBackend", (SimulatedClientBackend,), {"world": self})
            self._backend_classes = (scanner, client)
        return self._backend_classes  # type: ignore[return-value]

    @property
    def scanner_backend(self) -> type[SimulatedScannerBackend]:
        return self.backends()[0]

    @property
    def client_backend(self) -> type[SimulatedClientBackend]:
        return self.backends()[1]

    def install(self) -> SimulatedWorld:
        """Make this the world the bare backend classes serve; returns self."""
        set_current_world(self)
        return self

    # -- the subject -------------------------------------------------------------

    def _subject_key(self, rate_hz: int) -> tuple:
        return (self.scenario, self.seed, int(rate_hz), self.duration_s)

    def _subject_future(self, rate_hz: int) -> concurrent.futures.Future:
        return _subject_future(self._subject_key(rate_hz))

    @property
    def subject_epoch_s(self) -> float | None:
        """Host monotonic instant (s) of the subject's script time 0 (None before the first START
        with ``subject_clock="first_start"``)."""
        with self._lock:
            return self._epoch

    def subject_events(self) -> list[Any]:
        """The scenario script's events (script time, s; blocking until the subject is simulated):
        the demo's simulated clinician acts on them."""
        return list(self.subject().events)

    def subject_duration_s(self) -> float:
        """The script's length (s): the subject starts it again after it."""
        return float(self._subject_future(self.rate_hz).result().duration_s)

    def _subject_epoch(self, t: float) -> float:
        with self._lock:
            if self._epoch is None:
                self._epoch = t
            return self._epoch

    def prepare(self, rates: Iterable[int] | None = None) -> None:
        """Simulate the subject at these rates now (default: the boards' rates), blocking."""
        for r in self._rates(rates):
            self._subject_future(r).result()

    async def ready(self, rates: Iterable[int] | None = None) -> None:
        """Async :meth:`prepare`."""
        for r in self._rates(rates):
            await asyncio.wrap_future(self._subject_future(r))

    def _rates(self, rates: Iterable[int] | None) -> list[int]:
        return sorted({b.rate_hz for b in self.boards.values()} if rates is None else {int(r) for r in rates})

    def subject(self, rate_hz: int | None = None):
        """The subject's simulated :class:`~hipimu.core.model.Session` at ``rate_hz``
        (what the boards stream, before quantization; blocks until simulated)."""
        return self._subject_future(self.rate_hz if rate_hz is None else rate_hz).result().session

    # -- lookup ------------------------------------------------------------------

    def board(self, key: Any) -> SimulatedBoard:
        """A board by device id, address, advertised name, role, BLEDevice or board."""
        if isinstance(key, SimulatedBoard):
            return key
        if isinstance(key, BLEDevice):
            key = key.address
        k = str(key).lower()
        for b in self.boards.values():
            if k in (b.device_id, b.address.lower(), b.name, b.role):
                return b
        raise KeyError(f"no simulated board {key!r} (boards: {', '.join(b.name for b in self.boards.values())})")

    def find(self, address: str) -> SimulatedBoard | None:
        try:
            return self.board(address)
        except KeyError:
            return None

    # -- hooks -------------------------------------------------------------------

    def drop_link(self, device: Any, down_s: float = 2.0) -> None:
        """Unexpected disconnection (out of range): the client's disconnected_callback
        fires, the board STOPs, and it neither advertises nor accepts a connection for
        ``down_s`` seconds."""
        b = self.board(device)
        b.down_until = max(b.down_until, _now() + float(down_s))
        self._lose_link(b)

    def set_absent(self, device: Any, absent: bool = True) -> None:
        """Switch a board off (not advertising, connections fail, any link lost) or on again."""
        b = self.board(device)
        b.absent = bool(absent)
        if absent:
            self._lose_link(b)

    def inject(self, device: Any, data: bytes, characteristic: str = DATA_CHAR_UUID) -> bool:
        """Send raw bytes as a notification of ``characteristic`` at the next connection
        event (e.g. a malformed packet). False if the board is not connected."""
        b = self.board(device)
        link = b._link
        if link is None:
            return False
        payload = bytes(data)

        def go() -> None:
            if link.open:
                link.tx.append(_TxItem(characteristic.lower(), payload, _now(), False))
                b.counters.injected += 1
                link.wake(_now())

        _on_loop(link.loop, go)
        return True

    def shake(self, device: Any, seconds: float = 3.0, *, gyr_rad_s: float = 8.0, acc_m_s2: float = 20.0,
              freq_hz: float = 3.0) -> None:
        """Shake a board for ``seconds`` from now: adds a large oscillation (``gyr_rad_s``,
        ``acc_m_s2`` amplitude, ``freq_hz``) to its gyro and accelerometer samples."""
        b = self.board(device)
        start = _now()
        b._shakes = [*b._shakes, (start, start + float(seconds), float(gyr_rad_s), float(acc_m_s2), float(freq_hz))]

    def _lose_link(self, b: SimulatedBoard) -> None:
        link = b._link
        if link is None:
            return
        b.counters.link_drops += 1
        _on_loop(link.loop, lambda: link.client._link_closed(link, unsolicited=True))


def _on_loop(loop: asyncio.AbstractEventLoop, fn: Callable[[], None]) -> None:
    """Run fn on loop: now if we are on it, else thread-safely soon."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop or loop.is_closed():
        fn()
    else:
        try:
            loop.call_soon_threadsafe(fn)
        except RuntimeError:
            fn()


_CURRENT: SimulatedWorld | None = None
_CURRENT_LOCK = threading.Lock()


def current_world() -> SimulatedWorld:
    """The world the bare backend classes serve (a default one is made on first use)."""
    global _CURRENT
    with _CURRENT_LOCK:
        if _CURRENT is None:
            _CURRENT = SimulatedWorld.default()
        return _CURRENT


def set_current_world(world: SimulatedWorld | None) -> None:
    """Set (or with None, forget) the world the bare backend classes serve."""
    global _CURRENT
    with _CURRENT_LOCK:
        _CURRENT = world


# ---------------------------------------------------------------------------
# bleak backends
# ---------------------------------------------------------------------------


class SimulatedScannerBackend(BaseBleakScanner):
    """bleak scanner backend over a :class:`SimulatedWorld` (see the module doc)."""

    world: ClassVar[SimulatedWorld | None] = None

    def __init__(self, detection_callback: AdvertisementDataCallback | None, service_uuids: list[str] | None,
                 scanning_mode: str = "active", **kwargs: Any) -> None:
        super().__init__(detection_callback, service_uuids)
        self._world = type(self).world or current_world()
        self._passive = scanning_mode == "passive"
        self._task: asyncio.Task | None = None
        self._rng = random.Random()

    async def start(self) -> None:
        if self._task is not None:
            raise BleakError("Scanner is already running")
        self.seen_devices = {}
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        boards = list(self._world.boards.values())
        interval = max(0.01, self._world.adv_interval_s)
        t0 = _now()
        nxt = [t0 + self._rng.random() * min(interval, 0.05) for _ in boards]
        while True:
            i = min(range(len(boards)), key=nxt.__getitem__)
            delay = nxt[i] - _now()
            if delay > 0:
                await asyncio.sleep(delay)
            nxt[i] += interval * (0.9 + 0.2 * self._rng.random())
            b = boards[i]
            if b.advertising:
                self._advert(b)

    def _advert(self, b: SimulatedBoard) -> None:
        if not self.is_allowed_uuid([SERVICE_UUID]):
            return
        b.counters.adverts += 1
        rssi = int(round(b.rssi_dbm + self._rng.uniform(-3.0, 3.0)))
        name = None if self._passive else b.name
        adv = AdvertisementData(local_name=name, manufacturer_data={}, service_data={}, service_uuids=[SERVICE_UUID],
                                tx_power=None, rssi=rssi, platform_data=(b.device_id,))
        device = self.create_or_update_device(b.address, b.address, name, SimulatedDeviceDetails(b.device_id, b.address, b.role), adv)
        try:
            self.call_detection_callbacks(device, adv)
        except Exception:
            logger.exception("detection callback raised")


def _gatt(board: SimulatedBoard, link: _Link, only: set[str] | None) -> BleakGATTServiceCollection:
    """The board's GATT table (PROTOCOL.md) as bleak objects."""
    coll = BleakGATTServiceCollection()
    mwr = (lambda: link.mtu - 3)
    table = [
        (0x0010, SERVICE_UUID, [(DATA_CHAR_UUID, ["notify"]), (CONTROL_CHAR_UUID, ["write", "notify"]),
                                (CONFIG_CHAR_UUID, ["read"])]),
        (0x0020, BATTERY_SERVICE_UUID, [(BATTERY_LEVEL_CHAR_UUID, ["read", "notify"])]),
        (0x0030, DEVICE_INFORMATION_SERVICE_UUID, [(MANUFACTURER_NAME_CHAR_UUID, ["read"]),
                                                   (MODEL_NUMBER_CHAR_UUID, ["read"]),
                                                   (SERIAL_NUMBER_CHAR_UUID, ["read"]),
                                                   (FIRMWARE_REVISION_CHAR_UUID, ["read"])]),
    ]
    for handle, suuid, chars in table:
        if only and suuid not in only:
            continue
        service = BleakGATTService(suuid, handle, suuid)
        coll.add_service(service)
        h = handle + 1
        for cuuid, props in chars:
            char = BleakGATTCharacteristic(cuuid, h, cuuid, list(props), mwr, service)
            coll.add_characteristic(char)
            if "notify" in props:
                coll.add_descriptor(BleakGATTDescriptor(CCCD_UUID, h + 1, CCCD_UUID, char))
                h += 3
            else:
                h += 2
    return coll


class SimulatedClientBackend(BaseBleakClient):
    """bleak client backend over a :class:`SimulatedWorld` (see the module doc)."""

    world: ClassVar[SimulatedWorld | None] = None

    def __init__(self, address_or_ble_device: BLEDevice | str, *, disconnected_callback: Callable[[], None] | None = None,
                 timeout: float = 10.0, services: set[str] | None = None, **kwargs: Any) -> None:
        super().__init__(address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout)
        self._world = type(self).world or current_world()
        self._services_filter = {s.lower() for s in services} if services else None
        self._link: _Link | None = None
        board = self._world.find(self.address)
        self._name = board.name if board else self.address.replace(":", "-")

    # -- properties --------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def mtu_size(self) -> int:
        return self._link.mtu if self._link is not None else ATT_MTU_MIN

    @property
    def is_connected(self) -> bool:
        return self._link is not None and self._link.open

    @property
    def board(self) -> SimulatedBoard | None:
        """The simulated board behind this client (None if the address is unknown)."""
        return self._world.find(self.address)

    # -- connection ----------------------------------------------------------------

    async def connect(self, pair: bool = False, **kwargs: Any) -> None:
        if self.is_connected:
            raise BleakError("Client is already connected")
        board = self._world.find(self.address)
        if board is None:
            raise BleakDeviceNotFoundError(self.address, f"Device with address {self.address} was not found.")
        timeout = float(kwargs.get("timeout", self._timeout))
        async with asyncio.timeout(timeout):
            if not board.advertising:
                await asyncio.sleep(self._world.connect_fail_s)
                board.counters.connect_refused += 1
                raise BleakError(f"{self.address}: {_ABORT} (simulated board {board.name} does not answer)")
            await asyncio.sleep(self._world.connect_s)
            if not board.advertising:
                board.counters.connect_refused += 1
                raise BleakError(f"{self.address}: {_ABORT} (simulated board {board.name} does not answer)")
            link = _Link(board, self, asyncio.get_running_loop(), _now())
            board._link = link
            board.counters.connections += 1
            self._link = link
            self.services = _gatt(board, link, self._services_filter)

    async def disconnect(self) -> None:
        link = self._link
        if link is None or not link.open:
            return
        await asyncio.sleep(max(0.0, link.next_ce(_now()) - _now()))  # LL_TERMINATE_IND at the next event
        self._link_closed(link, unsolicited=False)

    def _link_closed(self, link: _Link, *, unsolicited: bool) -> None:
        if self._link is not link:
            return
        link.close()
        self._link = None
        self.services = None
        cb = self._disconnected_callback
        if cb is not None:
            if unsolicited:
                link.loop.call_soon(cb)
            else:
                cb()  # BlueZ calls it on a requested disconnection too, before disconnect() returns

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        logger.debug("simulated boards need no pairing")

    async def unpair(self) -> None:
        logger.debug("simulated boards need no pairing")

    # -- GATT ----------------------------------------------------------------------

    def _require(self) -> _Link:
        if self._link is None or not self._link.open:
            raise BleakError("Not connected")
        return self._link

    async def read_gatt_char(self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False,
                             **kwargs: Any) -> bytearray:
        link = self._require()
        if "read" not in characteristic.properties:
            raise BleakGATTProtocolError(BleakGATTProtocolErrorCode.READ_NOT_PERMITTED)
        return await link.request("read", characteristic.uuid)

    async def read_gatt_descriptor(self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False,
                                   **kwargs: Any) -> bytearray:
        link = self._require()
        if descriptor.uuid == CCCD_UUID:
            return bytearray(b"\x01\x00" if descriptor.characteristic_uuid in link.cccd else b"\x00\x00")
        raise BleakGATTProtocolError(BleakGATTProtocolErrorCode.READ_NOT_PERMITTED)

    async def write_gatt_char(self, characteristic: BleakGATTCharacteristic, data: Any, response: bool) -> None:
        link = self._require()
        props = characteristic.properties
        if response:
            if "write" not in props:
                raise BleakGATTProtocolError(BleakGATTProtocolErrorCode.WRITE_NOT_PERMITTED)
            await link.request("write", characteristic.uuid, bytes(data))
        else:
            # an ATT Write Command to an attribute without that property is dropped silently
            logger.warning("write without response to %s of %s ignored (it takes write with response)",
                           characteristic.uuid, link.board.name)
            link.board.counters.ignored_writes += 1

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
        self._require()
        raise BleakGATTProtocolError(BleakGATTProtocolErrorCode.WRITE_NOT_PERMITTED)

    async def start_notify(self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any) -> None:
        link = self._require()
        if "notify" not in characteristic.properties and "indicate" not in characteristic.properties:
            raise BleakError(f"Characteristic {characteristic.uuid} does not support notifications")
        link.callbacks[characteristic.uuid] = callback
        await link.request("cccd", characteristic.uuid, b"\x01")

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        link = self._require()
        link.callbacks.pop(characteristic.uuid, None)
        await link.request("cccd", characteristic.uuid, b"\x00")
