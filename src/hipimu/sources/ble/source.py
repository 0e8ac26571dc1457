"""Sensor boards over BLE as a :class:`~hipimu.sources.base.Source`.

::

    refs = {"pelvis": SensorRef.parse("3f2a"), "thigh_right": SensorRef.parse("9c01")}
    async with BleSource(refs, rate_hz=208) as src:      # scan, connect, configure, start
        async for block in src.blocks():                  # SampleBlock, one sensor each
            ...
            src.stats()                                   # role -> LinkStats (live)
            src.pop_events()                              # link lost / restored events

What happens, per board (PROTOCOL.md):

1. Scan with the hipimu service-UUID filter until every asked-for board has
   advertised (or ``scan_timeout_s``: :class:`~hipimu.errors.SensorNotFoundError`
   naming the missing ones and what was seen).
2. Connect the boards one after the other (bleak-retry-connector retries
   transient failures), read the config characteristic, check the device id,
   subscribe to control and data notifications, STOP if it was streaming,
   SET_RATE and SET_MAG, read the config again (scales, negotiated MTU), and
   send TIME_SYNC pings so the clock map has points before any data.
3. START all boards; from then on each board's notifications are decoded by
   its own :class:`~hipimu.core.protocol.PacketStream`.

Notification callbacks only enqueue ``(generation, bytes, arrival time)``;
one task per board decodes. Every connection gets a new generation number,
and bytes from an older generation are counted (``stale_callbacks``) and
dropped, so a reconnect can never double the data.

Time: a sample's instant is its **device** time (the packet's ``t0_us`` plus
the sample period), never its arrival time. Each board's clock is mapped to
the host's monotonic clock by :class:`~hipimu.core.clocksync.ClockSync`, a
drift-compensated lower-envelope fit of (device time of a packet's last
sample, arrival time) pairs and of TIME_SYNC replies (one ping every
``ping_interval_s``), robust to BLE delivery jitter, which only ever delays.
``time_s`` of the yielded blocks is that host time minus :attr:`t0_host_s`
(the session's zero); ``device_time_s`` keeps the device time, so a finished
recording can be re-timed with the whole session's fit
(:meth:`BleSource.clock_maps`).

Link loss: the board stops streaming when the link drops (as the firmware
does); the source records a ``link lost`` event, reconnects with backoff
(``reconnect_backoff_s``), configures and STARTs again, and records
``link restored`` with the length of the hole. The hole stays a hole: no
samples are invented, the running sample counter ``seq`` jumps by the
samples the device time says are missing. A board that rebooted (its clock
went backwards) gets a new clock fit; its device times are shifted to
continue the old ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import random
import statistics
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from hipimu.core.clocksync import ClockSync, connection_interval_s, fit_clock, packet_notify_device_s
from hipimu.core.model import Event, SampleBlock, SessionInfo
from hipimu.core.protocol import (
    BATTERY_LEVEL_CHAR_UUID,
    CONFIG_CHAR_UUID,
    CONTROL_CHAR_UUID,
    DATA_CHAR_UUID,
    RATES_HZ,
    DecodeError,
    DeviceConfig,
    Gap,
    Opcode,
    PacketStream,
    Response,
    Samples,
    Status,
    StreamStats,
    decode_config,
    decode_response,
    encode_command,
)
from hipimu.errors import BluetoothError, InputError, SensorNotFoundError
from hipimu.sources.base import Source
from hipimu.sources.ble._bleak import Advert, Backend, bluetooth_errors, connect, scan
from hipimu.sources.ble.roles import SensorRef
from hipimu.sources.ble.stats import LinkStats, RateMeter

__all__ = ["BleSource", "DeviceLink", "describe_sensor"]

_COMMAND_TIMEOUT_S = 3.0
_SENTINEL = object()


class _Stopped(Exception):
    """The source is stopping: leave the current connection attempt."""


class DeviceLink:
    """One board: its connection(s), commands, decoding and clock map."""

    def __init__(self, role: str, ref: SensorRef, advert: Advert, backend: Backend, *, rate_hz: int, mag: bool,
                 ping_interval_s: float, battery_interval_s: float, reconnect_backoff_s: tuple[float, float],
                 output: asyncio.Queue, events: list[Event], clock_window_s: float) -> None:
        self.role = role
        self.ref = ref
        self.advert = advert
        self.backend = backend
        self.rate_hz = rate_hz
        self.mag = mag
        self.ping_interval_s = ping_interval_s
        self.battery_interval_s = battery_interval_s
        self.backoff_s = reconnect_backoff_s
        self._output = output
        self._events = events
        self.stats = LinkStats(role, address=advert.address, name=advert.name, rssi_dbm=advert.rssi_dbm)
        self.config: DeviceConfig | None = None
        self.t0_host_s: float | None = None
        self.clock = ClockSync(window_s=clock_window_s)
        self._clock_window_s = clock_window_s
        # Every observation pairs (device s, host s), in the continued device-time base below.
        self._obs_device: list[float] = []
        self._obs_host: list[float] = []
        self._client: Any = None
        self._gen = 0
        self._raw: asyncio.Queue = asyncio.Queue()
        self._pending: dict[int, asyncio.Future] = {}
        self._token = random.randrange(256)
        self._stream: PacketStream | None = None
        self._index_offset = 0  # running sample counter carried across connections
        self._device_offset_s = 0.0  # added to a rebooted board's device times so that they continue
        self._last_device_s: float | None = None  # newest emitted sample, continued base
        self._last_time_s: float | None = None  # newest emitted session time
        self._connected = asyncio.Event()
        self._lost = asyncio.Event()
        self._closing = False
        self._restored: tuple[float, float] | None = None  # (lost, restored) host times of a hole not yet closed
        self._next_seq = 0
        self._last_ping: tuple[float, float] | None = None  # (device s, host s) of the newest ping
        self._offset0_s: float | None = None  # clock offset when data began (stats show the change)
        self._pings_raw: list[tuple[float, float, int]] = []  # TIME_SYNCs while data flow: (device s, reply arrival, connection)
        self._ci_by_gen: dict[int, float] = {}  # connection -> its interval (latest estimate)
        self._arrivals: deque[float] = deque(maxlen=400)  # data arrivals of this connection (CI estimate)
        self._ci_s: float | None = None  # this connection's interval, from the arrivals
        self._n_arrivals = 0
        self._has_data = False  # data packets have reached the clock fit (since the last clock reset)
        self._rate = RateMeter()
        self._latency: deque[float] = deque(maxlen=64)
        self._carried = StreamStats()  # counters of this board's finished streams (earlier connections)
        self._pump_task: asyncio.Task | None = None

    # -- callbacks: only enqueue ------------------------------------------

    def _data_cb(self, gen: int):
        def cb(_char: Any, data: bytearray) -> None:
            self._raw.put_nowait((gen, "data", bytes(data), time.monotonic()))
        return cb

    def _control_cb(self, gen: int):
        def cb(_char: Any, data: bytearray) -> None:
            self._raw.put_nowait((gen, "control", bytes(data), time.monotonic()))
        return cb

    def _disconnected_cb(self, gen: int):
        def cb(_client: Any) -> None:
            self._raw.put_nowait((gen, "disconnected", b"", time.monotonic()))
        return cb

    # -- the pump: decodes in order -----------------------------------------

    async def _pump(self) -> None:
        while True:
            gen, kind, data, arrival = await self._raw.get()
            if kind == "stop":
                return
            if gen != self._gen:
                if kind != "disconnected":
                    self.stats.stale_callbacks += 1
                continue
            if kind == "data":
                self._on_data(data, arrival)
            elif kind == "control":
                self._on_control(data, arrival)
            elif kind == "disconnected":
                self._on_disconnected(arrival)

    def _on_control(self, data: bytes, arrival: float) -> None:
        try:
            resp = decode_response(data)
        except DecodeError as exc:
            self.stats.last_error = f"bad control response: {exc}"
            return
        fut = self._pending.pop(resp.token, None)
        if fut is not None and not fut.done():
            fut.set_result((resp, arrival))

    def _session_time(self, device_s: np.ndarray) -> np.ndarray:
        assert self.t0_host_s is not None
        return np.asarray(self.clock.to_host(device_s), dtype=np.float64) - self.t0_host_s

    def _on_data(self, data: bytes, arrival: float) -> None:
        stream = self._stream
        if stream is None or self.t0_host_s is None:
            return
        s = self.stats
        for ev in stream.feed(data, arrival):
            if isinstance(ev, Samples):
                self._emit(ev.block, arrival)
            elif isinstance(ev, Gap):
                s.gaps += 1
        # totals over this board's connections: the finished streams' (carried) + this one's
        now, before = stream.stats, self._carried
        s.lost_samples = before.lost_samples + now.lost_samples
        s.lost_packets = before.lost + now.lost
        s.device_dropped = before.device_dropped + now.device_dropped
        s.duplicates = before.duplicates + now.duplicates
        s.late = before.late + now.late
        s.malformed = before.malformed + now.malformed

    def _carry_stream_stats(self) -> None:
        """Fold the finished stream's counters into the carried totals."""
        if self._stream is None:
            return
        for f in dataclasses.fields(StreamStats):
            setattr(self._carried, f.name, getattr(self._carried, f.name) + getattr(self._stream.stats, f.name))

    def _emit(self, block: SampleBlock, arrival: float) -> None:
        dev = block.time_s + self._device_offset_s
        if self._last_device_s is not None and dev[0] <= self._last_device_s:
            keep = dev > self._last_device_s  # never back in time (a rebooted board's overlap)
            if not keep.any():
                return
            block = block.slice(int(np.argmax(keep)), len(block))
            dev = dev[int(np.argmax(keep)):]
        if self._restored is not None:
            lost_at, restored_at = self._restored
            self._restored = None
            lost = 0
            if self._last_device_s is not None:
                lost = max(0, round((float(dev[0]) - self._last_device_s) * self.config.rate_hz) - 1)  # type: ignore[union-attr]
            self._index_offset = self._next_seq + lost - int(block.seq[0])  # type: ignore[index]
            self._carried.lost_samples += lost  # the hole, counted as lost on the radio
            self._events.append(Event(self._t(restored_at), "link", "restored", {
                "role": self.role, "device_id": self.stats.device_id, "down_s": round(restored_at - lost_at, 3),
                "lost_samples": lost}))
        cfg = self.config
        assert cfg is not None
        self._arrivals.append(arrival)
        self._n_arrivals += 1
        # ~3 ms a call: every 25th packet until the interval is known, then every 100th
        if self._n_arrivals % (25 if self._ci_s is None else 100) == 0:
            self._estimate_ci()
        notify = float(packet_notify_device_s(dev[0], dev[-1], len(block) == cfg.samples_per_packet, 1.0 / cfg.rate_hz))
        self._observe(notify, arrival)
        t = self._session_time(dev)
        # The live map may step back by a little while it settles: keep time strictly increasing.
        if self._last_time_s is not None and t[0] <= self._last_time_s:
            t = np.maximum(t, self._last_time_s + 1e-6 * np.arange(1, len(t) + 1))
        if np.any(np.diff(t) <= 0):
            t = np.maximum.accumulate(t) + 1e-9 * np.arange(len(t))
        self._last_time_s = float(t[-1])
        self._last_device_s = float(dev[-1])
        assert block.seq is not None
        out = SampleBlock(self.role, t, block.acc_m_s2, block.gyr_rad_s, block.mag_ut, block.seq + self._index_offset, dev)
        self._next_seq = int(out.seq[-1]) + 1  # type: ignore[index]
        s = self.stats
        s.samples += len(out)
        s.packets += 1
        self._rate.add(float(dev[-1]), s.samples)
        s.rate_hz = self._rate.rate_hz
        self._latency.append(arrival - float(self.clock.to_host(dev[-1])))  # last sample -> on screen
        s.latency_ms = 1e3 * statistics.median(self._latency)
        s.backlog = self._raw.qsize()
        self._update_clock_stats()
        s.updated_s = arrival
        self._output.put_nowait(out)

    def _estimate_ci(self) -> None:
        """This connection's interval from its data arrivals (None while unclear)."""
        self._ci_s = connection_interval_s(self._arrivals)
        if self._ci_s is not None:
            self._ci_by_gen[self._gen] = self._ci_s
        self.stats.connection_interval_ms = math.nan if self._ci_s is None else self._ci_s * 1e3

    def _observe(self, device_s: float, host_s: float) -> None:
        """A data packet's (notify instant, arrival): into the live fit and the session's."""
        if not self._has_data:
            self._has_data = True
            self.clock.reset()  # forget the pings: data packets define the envelope from now on
        self.clock.add(device_s, host_s)
        self._obs_device.append(device_s)
        self._obs_host.append(host_s)

    def _update_clock_stats(self) -> None:
        s = self.stats
        with contextlib.suppress(Exception):
            offset = float(self.clock.offset_s)
            if self._offset0_s is None and self._has_data:
                self._offset0_s = offset
            s.clock_offset_ms = math.nan if self._offset0_s is None else 1e3 * (offset - self._offset0_s)
            s.clock_drift_ppm = float(self.clock.drift_ppm) if self.clock.ready else math.nan
            s.clock_jitter_ms = 1e3 * float(self.clock.jitter_s)

    def _on_disconnected(self, arrival: float) -> None:
        if self._closing:
            return
        self._connected.clear()
        self._lost.set()
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(BluetoothError(f"{self.role}: link lost"))
        self._pending.clear()

    # -- commands ------------------------------------------------------------

    async def command(self, opcode: Opcode, **args: int) -> tuple[Response, float]:
        """Write a request and wait for its response: (response, arrival host time)."""
        self._token = (self._token + 1) & 0xFF
        token = self._token
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending[token] = fut
        try:
            with bluetooth_errors(f"{self.role}: {opcode.name}"):
                await self._client.write_gatt_char(CONTROL_CHAR_UUID, encode_command(opcode, token, **args), response=True)
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                # cancellation that arrives as the response does (the source then never stops).
                async with asyncio.timeout(_COMMAND_TIMEOUT_S):
                    resp, arrival = await fut
            except TimeoutError:
                raise BluetoothError(f"{self.role}: no response to {opcode.name} within {_COMMAND_TIMEOUT_S:g} s") from None
        finally:
            self._pending.pop(token, None)
        if resp.status != Status.OK:
            raise BluetoothError(f"{self.role} ({self.stats.name}): {opcode.name} refused: {resp.status_name}")
        return resp, arrival

    async def ping(self) -> None:
        """One TIME_SYNC: a clock observation (device time, arrival of the reply)."""
        nonce = random.getrandbits(32)
        resp, arrival = await self.command(Opcode.TIME_SYNC, host_nonce=nonce)
        if resp.host_nonce != nonce or self._stream is None:
            return
        t32 = int(resp.device_time_us)  # type: ignore[arg-type]
        dev_s = self._stream.clock.unwrap(t32) * 1e-6 + self._device_offset_s
        # the newest (device s, host s) pair known for this board's clock
        known = [p for p in (self._last_ping, (self._obs_device[-1], self._obs_host[-1]) if self._obs_device else None) if p]
        ref = max(known, key=lambda p: p[1]) if known else None
        if ref is not None:
            expected = ref[0] + (arrival - ref[1])
            if abs(dev_s - expected) > 1.0:
                # The board restarted (its clock began again) or its clock jumped: a new
                # clock fit, and device times shifted so that they continue the old ones.
                self._device_offset_s += expected - dev_s
                dev_s = expected
                self.clock.reset()
                self._has_data = False
                self._offset0_s = None
                self._carry_stream_stats()
                self._stream = PacketStream(self.config, self.role)  # type: ignore[arg-type]
                self._stream.clock.unwrap(t32)
                self.stats.last_error = "the board restarted (its clock jumped): clock fit restarted"
        self._last_ping = (dev_s, arrival)
        if not self._has_data:
            # Pings give the clock map a start before any data flows (coarse: the
            # reply is one connection interval late).
            self.clock.add(dev_s, arrival)
        else:
            # The board handles a request at the connection event that delivers it and
            # stamps it then; the reply leaves one interval later. So arrival - CI is
            # the host instant of the stamp plus the stack's latency: a point on the
            # envelope at a random phase, free of the wait for a connection event that
            # keeps data packets above it when their period locks to the CI (at 208 Hz
            # and CI 50 ms the data alone leave each board up to ~1 ms high). The
            # whole-session fit corrects with the connection's final CI estimate.
            self._pings_raw.append((dev_s, arrival, self._gen))
            if self._ci_s is not None:
                self.clock.add(dev_s, arrival - self._ci_s)
        self._update_clock_stats()

    async def read_battery(self) -> None:
        with contextlib.suppress(BluetoothError), bluetooth_errors(f"{self.role}: battery"):
            data = await self._client.read_gatt_char(BATTERY_LEVEL_CHAR_UUID)
            if data:
                self.stats.battery_percent = float(data[0])

    # -- connection ------------------------------------------------------------

    async def connect_and_configure(self) -> None:
        """Connect, check, subscribe, configure (not START)."""
        if self._pump_task is None:
            self._pump_task = asyncio.create_task(self._pump(), name=f"hipimu-ble-pump-{self.role}")
        self.stats.state = "connecting"
        self._gen += 1
        gen = self._gen
        client = await connect(self.backend, self.advert, self._disconnected_cb(gen))
        if self._closing:
            with contextlib.suppress(Exception):
                await client.disconnect()
            raise _Stopped()
        self._client = client
        self._arrivals.clear()  # a new connection may have another interval
        self._n_arrivals = 0
        self._ci_s = None
        self._lost.clear()
        self._connected.set()
        self.stats.state = "configuring"
        try:
            with bluetooth_errors(f"{self.role}: reading the config"):
                config = decode_config(await client.read_gatt_char(CONFIG_CHAR_UUID))
        except DecodeError as exc:
            raise BluetoothError(f"{self.role} ({self.advert.name}): not a hipimu protocol v1 board ({exc})") from exc
        if not self.ref.matches_id(config.device_id):
            raise SensorNotFoundError(
                f"{self.role}: {self.advert.name} at {self.advert.address} is device {config.device_id}, not {self.ref.value}"
            )
        if self.stats.device_id and config.device_id != self.stats.device_id:
            raise BluetoothError(f"{self.role}: a different board ({config.device_id}) answered at {self.advert.address}")
        with bluetooth_errors(f"{self.role}: subscribing"):
            await client.start_notify(CONTROL_CHAR_UUID, self._control_cb(gen))
            await client.start_notify(DATA_CHAR_UUID, self._data_cb(gen))
        if config.streaming:
            await self.command(Opcode.STOP)
        if config.rate_hz != self.rate_hz:
            await self.command(Opcode.SET_RATE, rate_hz=self.rate_hz)
        if config.mag_enabled != self.mag:
            if self.mag and not config.mag_found:
                raise BluetoothError(f"{self.role} ({self.advert.name}): no magnetometer on this board (record without --mag)")
            await self.command(Opcode.SET_MAG, enabled=int(self.mag))
        with bluetooth_errors(f"{self.role}: reading the config"):
            config = decode_config(await client.read_gatt_char(CONFIG_CHAR_UUID))
        if config.mag_enabled and config.samples_per_packet == 0:
            raise BluetoothError(f"{self.role}: the link's MTU {config.mtu} is too small for 9D samples")
        self.config = config
        s = self.stats
        s.device_id, s.firmware, s.mtu = config.device_id, config.firmware, config.mtu
        s.nominal_rate_hz = config.rate_hz
        s.battery_percent = float(config.battery_percent)
        # A new stream per connection (the MTU may differ); the device clock's unwrapping continues.
        old = self._stream
        self._carry_stream_stats()
        self._stream = PacketStream(config, self.role)
        if old is not None:
            self._stream.clock.newest_us = old.clock.newest_us
        for _ in range(3):
            await self.ping()

    async def start_streaming(self) -> None:
        await self.command(Opcode.START)
        self.stats.state = "streaming"

    async def run(self) -> None:
        """Keep the link up until closed: pings, battery, reconnects."""
        next_battery = time.monotonic() + self.battery_interval_s
        while not self._closing:
            lost = asyncio.create_task(self._lost.wait())
            try:
                while not self._closing and not self._lost.is_set():
                    done, _ = await asyncio.wait({lost}, timeout=self.ping_interval_s * random.uniform(0.7, 1.3))
                    if done or self._closing:
                        break
                    with contextlib.suppress(BluetoothError):
                        await self.ping()
                    if time.monotonic() >= next_battery:
                        next_battery = time.monotonic() + self.battery_interval_s
                        await self.read_battery()
            finally:
                lost.cancel()
            if self._closing:
                return
            await self._reconnect()

    async def _reconnect(self) -> None:
        lost_at = time.monotonic()
        s = self.stats
        s.state = "reconnecting"
        self._events.append(Event(self._t(lost_at), "link", "lost", {"role": self.role, "device_id": s.device_id}))
        with contextlib.suppress(Exception):
            await self._client.disconnect()  # else BlueZ keeps the old connection around
        delay = self.backoff_s[0]
        failures = 0
        while not self._closing:
            try:
                await self.connect_and_configure()
                await self.start_streaming()
                break
            except _Stopped:
                return
            except BluetoothError as exc:
                failures += 1
                s.last_error = str(exc)
                s.state = "reconnecting"
                with contextlib.suppress(Exception):
                    if self._client is not None:
                        await self._client.disconnect()
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, self.backoff_s[1])
                if failures % 2 == 0 and not self._closing:
                    # The adapter may have forgotten the board: look for its advertisement again.
                    with contextlib.suppress(BluetoothError):
                        addr = self.advert.address
                        found = await scan(self.backend, timeout_s=min(3.0, self.backoff_s[1]), until=lambda f: addr in f)
                        if addr in found:
                            self.advert = found[addr]
                            self.stats.rssi_dbm = found[addr].rssi_dbm
        if self._closing:
            return
        s.reconnects += 1
        # The "restored" event goes out with the first block after the hole, once
        # the device time tells how many samples the hole holds (_emit).
        self._restored = (lost_at, time.monotonic())

    def _t(self, host_s: float) -> float:
        return host_s - (self.t0_host_s if self.t0_host_s is not None else host_s)

    def request_stop(self) -> None:
        """From now on: no more pings, no reconnects; ``run`` returns."""
        self._closing = True
        self._lost.set()

    async def close(self) -> None:
        """STOP streaming and disconnect (best effort); stop the tasks."""
        self._closing = True
        self.stats.state = "stopped"
        if self._client is not None and self._connected.is_set():
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await self.command(Opcode.STOP)
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5.0):
                    await self._client.disconnect()
        self._raw.put_nowait((self._gen, "stop", b"", 0.0))
        if self._pump_task is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await self._pump_task

    def clock_map(self) -> Any:
        """The whole session's clock fit (device s -> host s), or None without observations."""
        if len(self._obs_device) < 2:
            return None
        self._estimate_ci()  # the final estimate, from every arrival kept
        pings = [(d, a - self._ci_by_gen[g]) for d, a, g in self._pings_raw if g in self._ci_by_gen]
        dev = self._obs_device + [d for d, _ in pings]
        host = self._obs_host + [h for _, h in pings]
        return fit_clock(np.asarray(dev), np.asarray(host), window_s=self._clock_window_s)


async def describe_sensor(backend: Backend, advert: Advert) -> dict[str, Any]:
    """What a short connection tells about a board: device id, firmware, battery,
    IMU, magnetometer, streaming; disconnects again."""
    client = await connect(backend, advert, lambda _c: None, attempts=2)
    try:
        with bluetooth_errors(f"{advert.name}: reading the config"):
            raw = await client.read_gatt_char(CONFIG_CHAR_UUID)
            battery = await client.read_gatt_char(BATTERY_LEVEL_CHAR_UUID)
        try:
            config = decode_config(raw)
        except DecodeError as exc:
            raise BluetoothError(f"{advert.name}: not a hipimu protocol v1 board ({exc})") from exc
        return {"device_id": config.device_id, "firmware": config.firmware,
                "battery_percent": float(battery[0]) if battery else float(config.battery_percent),
                "imu": config.imu_name, "magnetometer": config.mag_name if config.mag_found else "",
                "streaming": config.streaming, "rate_hz": config.rate_hz}
    finally:
        with contextlib.suppress(Exception):
            await client.disconnect()


class BleSource(Source):
    """Streams sensor boards over BLE (see the module doc)."""

    def __init__(
        self,
        refs: dict[str, SensorRef],
        *,
        rate_hz: int = 208,
        mag: bool = False,
        backend: Backend | None = None,
        scan_timeout_s: float = 10.0,
        ping_interval_s: float = 0.5,
        battery_interval_s: float = 30.0,
        reconnect_backoff_s: tuple[float, float] = (0.5, 5.0),
        clock_window_s: float = 60.0,
    ) -> None:
        super().__init__()
        if not refs:
            raise InputError("no sensors to connect")
        if rate_hz not in RATES_HZ:
            raise InputError(f"rate {rate_hz} Hz: the boards sample at {', '.join(map(str, RATES_HZ))} Hz")
        self.refs = refs
        self.rate_hz = rate_hz
        self.mag = mag
        self.backend = backend or Backend()
        self.scan_timeout_s = scan_timeout_s
        self._link_kwargs = dict(rate_hz=rate_hz, mag=mag, ping_interval_s=ping_interval_s,
                                 battery_interval_s=battery_interval_s, reconnect_backoff_s=reconnect_backoff_s,
                                 clock_window_s=clock_window_s)
        self.links: dict[str, DeviceLink] = {}
        self.t0_host_s: float | None = None
        self._queue: asyncio.Queue = asyncio.Queue()
        self._live_events: list[Event] = []
        self._tasks: list[asyncio.Task] = []
        self._stopped = False
        self.info = SessionInfo(source="ble")

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        refs = self.refs

        def all_seen(found: dict[str, Advert]) -> bool:
            return all(any(ref.matches_advert(a.address, a.name) for a in found.values()) for ref in refs.values())

        found = await scan(self.backend, timeout_s=self.scan_timeout_s, until=all_seen)
        adverts: dict[str, Advert] = {}
        for role_name, ref in refs.items():
            match = [a for a in found.values() if ref.matches_advert(a.address, a.name)]
            if match:
                adverts[role_name] = max(match, key=lambda a: a.rssi_dbm if math.isfinite(a.rssi_dbm) else -999)
        missing = [r for r in refs if r not in adverts]
        if missing:
            seen = ", ".join(sorted(f"{a.name or '?'} ({a.address})" for a in found.values())) or "no hipimu sensor at all"
            what = ", ".join(f"{r} ({refs[r]})" for r in missing)
            raise SensorNotFoundError(
                f"not found in a {self.scan_timeout_s:g} s scan: {what}; seen: {seen}. "
                f"Is the sensor charged, awake (move it) and near?"
            )
        for role_name, adv in adverts.items():  # serially: BlueZ connects one at a time anyway
            link = DeviceLink(role_name, refs[role_name], adv, self.backend, output=self._queue,
                              events=self._live_events, **self._link_kwargs)
            self.links[role_name] = link
            await link.connect_and_configure()
            assert link.config is not None
            self.devices[role_name] = link.config.to_device_info(role_name)
        self.t0_host_s = time.monotonic()
        for link in self.links.values():
            link.t0_host_s = self.t0_host_s
        for link in self.links.values():
            await link.start_streaming()
        for link in self.links.values():
            self._tasks.append(asyncio.create_task(link.run(), name=f"hipimu-ble-link-{link.role}"))

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for link in self.links.values():
            link.request_stop()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(BaseException):
                await t
        for link in self.links.values():
            await link.close()
        self._queue.put_nowait(_SENTINEL)

    async def blocks(self) -> AsyncIterator[SampleBlock]:  # type: ignore[override]
        while True:
            item = await self._queue.get()
            if item is _SENTINEL:
                return
            yield item

    def stats(self) -> dict[str, LinkStats]:
        """role -> the link's live statistics (a snapshot)."""
        return {r: link.stats for r, link in self.links.items()}

    def pop_events(self) -> list[Event]:
        """Link events (lost, restored) since the last call."""
        out, self._live_events[:] = list(self._live_events), []
        return out

    def clock_maps(self) -> dict[str, Any]:
        """role -> callable(device_time_s) -> session time_s from the whole session's clock fit."""
        maps = {}
        t0 = self.t0_host_s or 0.0
        for r, link in self.links.items():
            cm = link.clock_map()
            if cm is not None:
                maps[r] = (lambda cm: lambda dev: np.asarray(cm.to_host(dev)) - t0)(cm)
        return maps

    def clock_summary(self) -> dict[str, Any]:
        """role -> JSON-able clock fit (for the recording's results)."""
        out = {}
        for r, link in self.links.items():
            cm = link.clock_map()
            out[r] = {"t0_host_s": self.t0_host_s, "observations": len(link._obs_device),
                      "fit": None if cm is None else cm.to_dict()}
        return out
