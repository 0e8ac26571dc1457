"""The simulated BlueZ (hipimu.sources.ble.simbluez) through bleak's REAL BlueZ backend.

A private dbus-daemon, the python-dbusmock template with sensors that run the
real firmware core (firmware/build/libhipimu_core.so), and raw bleak
(BleakScanner / BleakClient, nothing of hipimu's BLE source): scanning with
the service filter, GATT reads, commands, streaming decoded by
hipimu.core.protocol against the script's samples and the device clock model,
link loss and reconnection, injected bytes, the AcquireNotify path.
"""

from __future__ import annotations

import asyncio
import os
import time

import numpy as np
import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakDBusError
from bleak_retry_connector import establish_connection

from hipimu.core import protocol as P
from hipimu.sources.ble.simbluez.harness import SimulatedBlueZ

O, S = P.Opcode, P.Status
WRAP = 1 << 32


@pytest.fixture
def sim():
    with SimulatedBlueZ() as s, s.activate():
        yield s


def run(coro, timeout=60.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def find(addresses, timeout=5.0, **scanner_kwargs):
    """BLEDevices of ``addresses`` from one scan with the hipimu service filter."""
    found = {}
    async with BleakScanner(service_uuids=[P.SERVICE_UUID], **scanner_kwargs) as scanner:
        async with asyncio.timeout(timeout):
            async for device, _adv in scanner.advertisement_data():
                if device.address in addresses:
                    found[device.address] = device
                if len(found) == len(addresses):
                    break
    return found


class Control:
    """The control characteristic: subscribe, then request -> response by token."""

    def __init__(self, client):
        self.client = client
        self.responses = asyncio.Queue()
        self.token = 0

    async def subscribe(self):
        await self.client.start_notify(P.CONTROL_CHAR_UUID, lambda _c, d: self.responses.put_nowait(bytes(d)))
        return self

    async def ask(self, opcode, **args):
        self.token = (self.token + 1) & 0xFF
        await self.client.write_gatt_char(P.CONTROL_CHAR_UUID, P.encode_command(opcode, self.token, **args),
                                          response=True)
        while True:
            r = P.decode_response(await asyncio.wait_for(self.responses.get(), 2.0))
            if r.token == self.token:
                return r


class DataLog:
    """Data notifications as (arrival host time, bytes)."""

    def __init__(self):
        self.items = []

    def __call__(self, _char, data):
        self.items.append((time.monotonic(), bytes(data)))

    @property
    def packets(self):
        return [d for _t, d in self.items]


def decode(config, role, packets):
    stream = P.PacketStream(config, role)
    events = [e for p in packets for e in stream.feed(p)]
    return stream, events


# ---------------------------------------------------------------------------


def test_scan_with_the_service_filter_finds_the_advertising_sensors(sim):
    addrs = [sim.add_sensor(role, rssi=rssi) for role, rssi in (("pelvis", -50), ("thigh_left", -62), ("thigh_right", -74))]
    hidden = sim.add_sensor("pelvis", advertise=False)
    rssi_base = dict(zip(addrs, (-50, -62, -74)))

    async def scan(uuids, seconds):
        seen = {}
        with_cb = lambda d, adv: seen.setdefault(d.address, []).append((d.name, adv.local_name, adv.rssi, adv.service_uuids))  # noqa: E731
        async with BleakScanner(with_cb, service_uuids=uuids):
            await asyncio.sleep(seconds)
        return seen

    seen = run(scan([P.SERVICE_UUID], 1.0))
    assert set(seen) == set(addrs), "exactly the three advertising sensors"
    for a in addrs:
        reports = seen[a]
        name = P.advertised_name(sim.script(a).device_id)
        assert name == sim.name(a) and name.startswith("hipimu-") and len(name) == 11
        assert all(r[0] == name and r[1] == name and P.SERVICE_UUID in r[3] for r in reports)
        rssi = [r[2] for r in reports]
        assert len(rssi) >= 5 and all(abs(x - rssi_base[a]) <= 2 for x in rssi), rssi
        assert len(set(rssi)) > 1, "RSSI varies a little"
    assert run(scan(["0000180d-0000-1000-8000-00805f9b34fb"], 0.3)) == {}, "another service filter finds none"

    sim.set_advertising(hidden, True)
    assert set(run(scan([P.SERVICE_UUID], 0.5))) == set(addrs) | {hidden}


def test_connect_and_read_config_battery_device_information_mtu(sim):
    a = sim.add_sensor("thigh_right", mtu=185, battery=57)
    device_id = sim.script(a).device_id

    async def main():
        device = (await find({a}))[a]
        async with BleakClient(device) as client:
            config = P.decode_config(await client.read_gatt_char(P.CONFIG_CHAR_UUID))
            assert (config.device_id, config.mtu, config.rate_hz, config.streaming, config.battery_percent) == (
                device_id, 185, 208.0, False, 57)
            assert (config.imu_found, config.mag_found, config.acc_range_g, config.gyr_range_dps) == (True, False, 8, 1000)
            assert config.acc_scale_m_s2 == pytest.approx(sim.script(a).config.acc_scale_m_s2, rel=1e-6)
            assert await client.read_gatt_char(P.BATTERY_LEVEL_CHAR_UUID) == bytes([57])
            assert (await client.read_gatt_char(P.SERIAL_NUMBER_CHAR_UUID)).decode() == device_id
            assert (await client.read_gatt_char(P.MANUFACTURER_NAME_CHAR_UUID)).decode() == P.MANUFACTURER_NAME
            assert (await client.read_gatt_char(P.MODEL_NUMBER_CHAR_UUID)).decode() == "XIAO nRF52840 Sense"
            assert (await client.read_gatt_char(P.FIRMWARE_REVISION_CHAR_UUID)).decode() == config.firmware
            # the negotiated MTU, both ways bleak's BlueZ backend can learn it
            data_char = client.services.get_characteristic(P.DATA_CHAR_UUID)
            assert data_char.max_write_without_response_size == 185 - 3
            await client._backend._acquire_mtu()  # AcquireNotify on a notify characteristic
            assert client.mtu_size == 185
            # battery notifications; commands the core refuses
            levels = asyncio.Queue()
            await client.start_notify(P.BATTERY_LEVEL_CHAR_UUID, lambda _c, d: levels.put_nowait(bytes(d)))
            sim.set_battery(a, 42)
            assert await asyncio.wait_for(levels.get(), 2.0) == bytes([42])
            await client.stop_notify(P.BATTERY_LEVEL_CHAR_UUID)
            sim.set_battery(a, 41)
            await asyncio.sleep(0.1)
            assert levels.empty(), "no notifications after StopNotify"
            control = await Control(client).subscribe()
            assert (await control.ask(O.SET_MAG, enabled=1)).status == S.ERR_NO_SENSOR
            assert (await control.ask(O.SET_RATE, rate_hz=100)).status == S.ERR_BAD_VALUE
            assert P.decode_config(await client.read_gatt_char(P.CONFIG_CHAR_UUID)).battery_percent == 41

    run(main())
    stats = sim.stats(a)
    assert stats["commands"] == 2 and stats["connects"] == 1


def test_stream_two_seconds_zero_loss_script_values_and_device_clock(sim):
    """SET_RATE 208, START, 2 s, TIME_SYNC, STOP: every packet decodes, nothing
    lost, the samples are the script's counts, every packet's t0 is the device
    time the clock model gives for its first sample's true instant (the device
    clock runs 40 ppm fast and wraps its 32 bits during the run), packets
    arrive at connection events after their samples were taken."""
    offset_s = (WRAP - 1_500_000) * 1e-6  # the wire's 32-bit device time wraps 1.5 s after boot
    a = sim.add_sensor("thigh_left", clock_ppm=40.0, clock_offset_s=offset_s, ci_s=0.02, link_seed=3)
    script = sim.script(a)
    log = DataLog()

    async def main():
        device = (await find({a}))[a]
        async with BleakClient(device) as client:
            config = P.decode_config(await client.read_gatt_char(P.CONFIG_CHAR_UUID))
            control = await Control(client).subscribe()
            await client.start_notify(P.DATA_CHAR_UUID, log)
            assert (await control.ask(O.SET_RATE, rate_hz=208)).ok
            assert (await control.ask(O.START)).ok
            await asyncio.sleep(2.0)
            sent = time.monotonic()
            sync = await control.ask(O.TIME_SYNC, host_nonce=0xC0FFEE)
            received = time.monotonic()
            assert (await control.ask(O.STOP)).ok
            await asyncio.sleep(0.1)
            return config, sync, sent, received

    config, sync, sent, received = run(main())
    truth = sim.truth(a)
    stats = sim.stats(a)
    (start,) = truth["starts"]

    stream, events = decode(config, "thigh_left", log.packets)
    assert not [e for e in events if not isinstance(e, P.Samples)], "no gaps, no malformed packets"
    assert stream.stats.lost == 0 and stream.stats.device_dropped == 0
    assert len(log.packets) == stats["packets_sent"] == stats["notifications"]["data"]
    decoded = [P.decode_packet(p) for p in log.packets]
    counts = np.vstack([p.counts for p in decoded])
    n = len(counts)
    assert 0 <= start["samples_pushed"] - n <= 11, "STOP discards at most one unfinished packet"
    assert n > 1.9 * 208
    expected = sim.expected_samples(a, truth=truth)
    assert np.array_equal(counts, expected["counts"][:n]), "the samples are the script's quantized samples"
    assert np.array_equal(expected["counts"][:n], script.counts[expected["index"][:n], :6])

    # device times: t0 exactly the model's time of the first sample; the rest within the 50 ppm IMU
    # rate error and the 32768 Hz RTC's tick
    firsts = np.cumsum([0] + [p.count for p in decoded[:-1]])
    assert [p.t0_us for p in decoded] == (expected["device_us"][firsts] % WRAP).tolist()
    assert any(p.t0_us < decoded[0].t0_us for p in decoded), "the device time wrapped during the run"
    got_us = np.concatenate([e.block.time_s for e in events]) * 1e6
    diff = (got_us - expected["device_us"][:n] + WRAP / 2) % WRAP - WRAP / 2
    assert np.abs(diff).max() < 40
    model_us = (offset_s + (expected["host_s"][:n] - truth["boot_host_s"]) * (1 + 40e-6)) * 1e6
    assert np.abs(expected["device_us"][:n] - model_us).max() <= 1e6 / 32768 + 1
    assert start["first_device_us"] >= start["device_us"] + 100_000, "the IMU's settle time is skipped"

    # TIME_SYNC: the device time of the connection event that carried the request
    assert (sync.status, sync.host_nonce) == (S.OK, 0xC0FFEE)
    ts = truth["time_syncs"][-1]
    assert sync.device_time_us == ts["device_us"] % WRAP
    assert sent < ts["host_s"] < received
    assert int(sim.device_us(truth, ts["host_s"])) == ts["device_us"]

    # delivery: each packet leaves at a connection event after its samples were taken, within the
    # 50 ms batching delay (+ one connection interval), and reaches bleak after that event
    conn = truth["connections"][-1]
    ci = conn["ci_s"]
    sent = np.array(truth["data_packets"])
    assert sent[:, 2].astype(np.int64).tolist() == [p.t0_us for p in decoded], "the mock's log of the same packets"
    event_s, emitted_s = sent[:, 0], sent[:, 1]
    k = (event_s - conn["first_event_host_s"]) / ci
    assert np.abs(k - np.round(k)).max() < 1e-6, "packets leave at connection events only"
    last_taken = expected["host_s"][firsts + np.array([p.count for p in decoded]) - 1]
    first_taken = expected["host_s"][firsts]
    assert np.all(event_s >= last_taken) and np.all(event_s - first_taken < 0.05 + ci + 1e-9)
    arrival = np.array([t for t, _ in log.items])
    assert np.all(arrival >= emitted_s) and np.all(emitted_s >= event_s)
    assert np.median(arrival - event_s) < 0.02, "notification latency"
    after_event = (arrival - conn["first_event_host_s"]) % ci
    assert np.median(after_event) < ci / 2, "arrivals cluster just after connection events"


def test_set_rate_104_streams_every_other_script_sample_from_the_script_start(sim):
    a = sim.add_sensor("pelvis", ci_s=0.0075, script_from_start=True)
    log = DataLog()

    async def main():
        device = (await find({a}))[a]
        async with BleakClient(device) as client:
            control = await Control(client).subscribe()
            await client.start_notify(P.DATA_CHAR_UUID, log)
            assert (await control.ask(O.SET_RATE, rate_hz=104)).ok
            assert (await control.ask(O.START)).ok
            await asyncio.sleep(1.0)
            return P.decode_config(await client.read_gatt_char(P.CONFIG_CHAR_UUID))

    config = run(main())
    assert config.rate_hz == 104.0 and config.streaming
    truth = sim.truth(a)
    (start,) = truth["starts"]
    assert (start["stride"], start["rate_hz"], start["first_index"]) == (2, 104, 0)
    stream, events = decode(config, "pelvis", log.packets)
    assert stream.stats.lost == 0 and stream.stats.gaps == 0 and stream.stats.samples > 80
    counts = np.vstack([P.decode_packet(p).counts for p in log.packets])
    expected = sim.expected_samples(a, truth=truth, count=len(counts))
    assert np.all(np.diff(expected["index"]) == 2)
    assert np.array_equal(counts, expected["counts"])
    assert max(P.decode_packet(p).count for p in log.packets) == 6  # 50 ms at 104 Hz


def test_magnetometer_sensor_streams_9d_and_set_ranges_rescales(sim):
    a = sim.add_sensor("thigh_right", mag=True, mtu=185)
    log = DataLog()

    async def main():
        device = (await find({a}))[a]
        async with BleakClient(device) as client:
            before = P.decode_config(await client.read_gatt_char(P.CONFIG_CHAR_UUID))
            control = await Control(client).subscribe()
            await client.start_notify(P.DATA_CHAR_UUID, log)
            assert (await control.ask(O.SET_MAG, enabled=1)).ok
            assert (await control.ask(O.SET_RANGES, acc_range_g=16, gyr_range_dps=2000)).ok
            assert (await control.ask(O.START)).ok
            await asyncio.sleep(0.8)
            assert (await control.ask(O.SET_MAG, enabled=0)).status == S.ERR_BUSY
            after = P.decode_config(await client.read_gatt_char(P.CONFIG_CHAR_UUID))
            return before, after

    before, after = run(main())
    assert before.mag_found and not before.mag_enabled and after.mag_enabled and after.acc_range_g == 16
    decoded = [P.decode_packet(p) for p in log.packets]
    assert decoded and all(p.with_mag for p in decoded) and max(p.count for p in decoded) == 9  # MTU 185: 9 x 9D
    counts = np.vstack([p.counts for p in decoded]).astype(np.int64)
    expected = sim.expected_samples(a, count=len(counts))
    assert expected["counts"].shape[1] == 9
    script = expected["counts"].astype(np.int64)
    fa = before.acc_scale_m_s2 / after.acc_scale_m_s2
    fg = before.gyr_scale_rad_s / after.gyr_scale_rad_s
    assert np.array_equal(counts[:, :3], np.clip(np.round(script[:, :3] * fa), -32768, 32767))
    assert np.array_equal(counts[:, 3:6], np.clip(np.round(script[:, 3:6] * fg), -32768, 32767))
    assert np.array_equal(counts[:, 6:], script[:, 6:]), "magnetometer counts as scripted"
    assert sim.stats(a)["range_mismatch"] == 1


def test_drop_link_fires_disconnected_callback_and_reconnecting_works_after_down_s(sim):
    a = sim.add_sensor("pelvis")
    down_s = 1.0

    async def main():
        device = (await find({a}))[a]
        lost = asyncio.Event()
        client = BleakClient(device, disconnected_callback=lambda _c: lost.set(), timeout=5.0)
        await client.connect()
        log = DataLog()
        control = await Control(client).subscribe()
        await client.start_notify(P.DATA_CHAR_UUID, log)
        assert (await control.ask(O.START)).ok
        await asyncio.sleep(0.5)
        assert log.items, "streaming before the drop"
        t_drop = time.monotonic()
        await sim.run(sim.drop_link, a, down_s)
        await asyncio.wait_for(lost.wait(), 1.0)
        t_lost = time.monotonic()
        n_at_loss = len(log.items)
        assert not client.is_connected
        await client.disconnect()  # release the old D-Bus connection before reconnecting
        # while the sensor is unreachable, Connect stays pending: bleak times out (retryable)
        with pytest.raises(asyncio.TimeoutError):
            await client.connect(timeout=0.3)
        await client.disconnect()
        await client.connect(timeout=5.0)  # pending until the sensor is back
        t_back = time.monotonic()
        config = P.decode_config(await client.read_gatt_char(P.CONFIG_CHAR_UUID))
        assert not config.streaming, "the board STOPped when the link was lost"
        control = await Control(client).subscribe()
        log2 = DataLog()
        await client.start_notify(P.DATA_CHAR_UUID, log2)
        assert (await control.ask(O.START)).ok
        await asyncio.sleep(0.5)
        await client.disconnect()
        return t_drop, t_lost, t_back, n_at_loss, len(log.items), config, log2

    t_drop, t_lost, t_back, n_at_loss, n_after, config, log2 = run(main())
    assert t_lost - t_drop < 0.2
    assert n_after == n_at_loss, "nothing arrives after the link is lost"
    assert t_back - t_drop >= down_s - 0.02
    stream, _ = decode(config, "pelvis", log2.packets)
    assert stream.stats.samples > 50 and stream.stats.lost == 0
    truth, stats = sim.truth(a), sim.stats(a)
    assert [c["end_reason"] for c in truth["connections"]] == ["lost", "local"]
    assert (stats["link_drops"], stats["connects"], len(truth["starts"])) == (1, 2, 2)
    assert truth["starts"][0]["stop_host_s"] == pytest.approx(t_drop, abs=0.1)


def test_supervision_timeout_delays_the_disconnect_and_fails_pending_requests(sim):
    a = sim.add_sensor("thigh_left")

    async def main():
        device = (await find({a}))[a]
        lost = asyncio.Event()
        client = BleakClient(device, disconnected_callback=lambda _c: lost.set())
        await client.connect()
        t_drop = time.monotonic()
        sim.drop_link(a, down_s=0.5, supervision_s=0.3)
        with pytest.raises(BleakDBusError, match="Not connected"):  # waits for the supervision timeout
            await client.read_gatt_char(P.CONFIG_CHAR_UUID)
        t_failed = time.monotonic()
        await asyncio.wait_for(lost.wait(), 1.0)
        await client.disconnect()
        return t_failed - t_drop

    waited = run(main())
    assert 0.28 < waited < 0.6
    assert sim.truth(a)["connections"][0]["end_reason"] == "lost"


def test_unreachable_sensor_fails_connect_retryably_and_retry_connector_gets_it_back(sim):
    a = sim.add_sensor("thigh_right", connect_timeout_s=0.3)

    async def main():
        device = (await find({a}))[a]
        sim.drop_link(a, 1.2)
        client = BleakClient(device, timeout=5.0)
        t = time.monotonic()
        with pytest.raises(BleakDBusError) as info:  # the mock's own LE connection timeout
            await client.connect()
        assert "le-connection-timeout" in str(info.value) and time.monotonic() - t < 1.0
        await client.disconnect()
        t = time.monotonic()
        client = await establish_connection(BleakClient, device, "simulated sensor", max_attempts=6)
        elapsed = time.monotonic() - t
        assert client.is_connected
        serial = (await client.read_gatt_char(P.SERIAL_NUMBER_CHAR_UUID)).decode()
        await client.disconnect()
        return elapsed, serial

    elapsed, serial = run(main())
    assert serial == sim.script(a).device_id
    assert elapsed < 5.0
    assert sim.stats(a)["connect_timeouts"] >= 1


def test_injected_malformed_notifications_arrive_as_they_are(sim):
    a = sim.add_sensor("pelvis")
    garbage = bytes.fromhex("99 00 de ad be ef")

    async def main():
        device = (await find({a}))[a]
        async with BleakClient(device) as client:
            sim.inject(a, garbage)  # nobody subscribed yet: the board cannot send it
            await asyncio.sleep(0.1)
            control = await Control(client).subscribe()
            log = DataLog()
            await client.start_notify(P.DATA_CHAR_UUID, log)
            config = P.decode_config(await client.read_gatt_char(P.CONFIG_CHAR_UUID))
            sim.inject(a, garbage)
            sim.inject(a, b"\x81\x07\x00", "control")  # a response to a request nobody sent
            await asyncio.sleep(0.2)
            stray = P.decode_response(control.responses.get_nowait())
            return log.packets, config, stray

    packets, config, stray = run(main())
    assert packets == [garbage]
    _, events = decode(config, "pelvis", packets)
    assert len(events) == 1 and isinstance(events[0], P.Malformed)
    assert (stray.opcode, stray.token, stray.status) == (O.START, 7, S.OK)
    stats = sim.stats(a)
    assert (stats["injected"], stats["inject_dropped"]) == (2, 1)


def test_acquire_notify_path_streams_without_loss(sim):
    a = sim.add_sensor("thigh_right", mtu=247)
    log = DataLog()

    async def main():
        device = (await find({a}))[a]
        async with BleakClient(device) as client:
            control = await Control(client).subscribe()
            await client.start_notify(P.DATA_CHAR_UUID, log, bluez={"use_start_notify": False})
            assert "NotifyAcquired" in client.services.get_characteristic(P.DATA_CHAR_UUID).obj[1]
            assert (await control.ask(O.START)).ok
            await asyncio.sleep(1.0)
            await client.stop_notify(P.DATA_CHAR_UUID)
            await asyncio.sleep(0.2)
            return P.decode_config(await client.read_gatt_char(P.CONFIG_CHAR_UUID))

    config = run(main())
    stream, events = decode(config, "thigh_right", log.packets)
    assert stream.stats.lost == 0 and stream.stats.gaps == 0 and stream.stats.samples > 150
    counts = np.vstack([P.decode_packet(p).counts for p in log.packets])
    assert np.array_equal(counts, sim.expected_samples(a, count=len(counts))["counts"])
    stats = sim.stats(a)
    assert stats["acquired_sent"] == len(log.packets) == stats["notifications"]["data"], "all through the socket"
    assert "data" not in stats["subscribed"], "closing the socket turned the CCCD off"
    assert stats["fifo_count"] > 0, "the board keeps sampling into its FIFO"


def test_processes_are_gone_after_close_even_when_the_test_fails():
    pids = {}
    with pytest.raises(ZeroDivisionError):
        with SimulatedBlueZ() as s:
            pids = s.pids
            assert set(pids) == {"mock", "daemon"} and s.startup_s < 5.0
            assert s.ping()["version"] == 1
            1 / 0
    for pid in pids.values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
