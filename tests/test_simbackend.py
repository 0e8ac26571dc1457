"""The simulated bleak backend, exercised only through bleak's public API
(BleakScanner / BleakClient with ``backend=``, bleak-retry-connector's
``establish_connection``) and hipimu's protocol decoder.

Counts and rates are checked against device time (the decoded timestamps),
never against how fast the wall clock ran.
"""

from __future__ import annotations

import asyncio
import sys
import time

import numpy as np
import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakError
from bleak_retry_connector import establish_connection

from hipimu.core import protocol as P
from hipimu.sources.ble.simbackend import SimulatedWorld
from hipimu.sources.simulate.packets import quantize

SCENARIO = dict(scenario="static", duration_s=1.0)  # the quickest body scenario to simulate


def run(coro, timeout: float = 20.0):
    async def guarded():
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(guarded())


def make_world(**kwargs) -> SimulatedWorld:
    world = SimulatedWorld.default(**{**SCENARIO, **kwargs})
    world.prepare()
    return world


class Control:
    """Write requests and wait for their responses (the host side of PROTOCOL.md)."""

    def __init__(self, client: BleakClient) -> None:
        self.client = client
        self.responses: asyncio.Queue[P.Response] = asyncio.Queue()
        self.token = 0

    async def subscribe(self) -> None:
        await self.client.start_notify(P.CONTROL_CHAR_UUID, lambda _c, d: self.responses.put_nowait(P.decode_response(d)))

    async def raw(self, data: bytes) -> P.Response:
        await self.client.write_gatt_char(P.CONTROL_CHAR_UUID, data, response=True)
        return await asyncio.wait_for(self.responses.get(), 2.0)

    async def __call__(self, opcode: P.Opcode, **args: int) -> P.Response:
        self.token = (self.token + 1) & 0xFF
        r = await self.raw(P.encode_command(opcode, self.token, **args))
        assert (r.opcode, r.token) == (opcode, self.token)
        return r


class Recorder:
    """A data subscription decoded by PacketStream."""

    def __init__(self, config: P.DeviceConfig, role: str) -> None:
        self.stream = P.PacketStream(config, role)
        self.events: list[P.StreamEvent] = []

    def __call__(self, _char, data: bytearray) -> None:
        assert isinstance(data, bytearray)
        self.events.extend(self.stream.feed(data, time.monotonic()))

    def blocks(self):
        return [e.block for e in self.events if isinstance(e, P.Samples)]

    def arrays(self):
        b = self.blocks()
        return (np.concatenate([x.time_s for x in b]), np.concatenate([x.acc_m_s2 for x in b]),
                np.concatenate([x.gyr_rad_s for x in b]), np.concatenate([x.seq for x in b]))


async def connect_and_subscribe(world: SimulatedWorld, device, client_cls, **client_kwargs):
    client = BleakClient(device, backend=client_cls, **client_kwargs)
    await client.connect()
    config = P.decode_config(await client.read_gatt_char(P.CONFIG_CHAR_UUID))
    rec = Recorder(config, world.board(device).role)
    await client.start_notify(P.DATA_CHAR_UUID, rec)
    control = Control(client)
    await control.subscribe()
    return client, config, rec, control


def expected(world: SimulatedWorld, board, config: P.DeviceConfig, seq: np.ndarray, start: int = -1):
    """What the virtual subject made for samples ``seq`` of a START, quantized as the board does."""
    truth = board.truth[start]
    block = world.subject(truth.rate_hz).samples[board.role]
    idx = (truth.subject_index + seq) % truth.subject_samples
    assert truth.subject_samples == len(block)
    acc = quantize(block.acc_m_s2[idx], config.acc_scale_m_s2) * config.acc_scale_m_s2
    gyr = quantize(block.gyr_rad_s[idx], config.gyr_scale_rad_s) * config.gyr_scale_rad_s
    return acc, gyr


def test_scan_finds_the_boards():
    world = make_world()
    scanner_cls, _ = world.backends()

    async def main():
        seen = []
        async with BleakScanner(lambda d, a: seen.append((d, a)), service_uuids=[P.SERVICE_UUID], backend=scanner_cls):
            await asyncio.sleep(0.25)
        found = await BleakScanner.discover(0.25, return_adv=True, service_uuids=[P.SERVICE_UUID], backend=scanner_cls)
        other = await BleakScanner.discover(0.2, service_uuids=["0000feed-0000-1000-8000-00805f9b34fb"],
                                            backend=scanner_cls)
        passive = await BleakScanner.discover(0.2, return_adv=True, scanning_mode="passive", backend=scanner_cls)
        some = next(iter(world.boards.values()))
        by_address = await BleakScanner.find_device_by_address(some.address.lower(), timeout=1.0, backend=scanner_cls)
        world.set_absent(some)
        absent = await BleakScanner.discover(0.25, return_adv=True, backend=scanner_cls)
        world.set_absent(some, False)
        return seen, found, other, passive, by_address, absent, some

    seen, found, other, passive, by_address, absent, some = run(main())
    assert len(found) == 3 and len(world.boards) == 3
    assert {a.local_name for _, a in found.values()} == {P.advertised_name(b.device_id) for b in world.boards.values()}
    for address, (device, adv) in found.items():
        board = world.board(address)
        assert device.address == address == board.address and device.name == board.name
        assert adv.service_uuids == [P.SERVICE_UUID] and adv.tx_power is None
        assert -100 < adv.rssi < -20 and abs(adv.rssi - board.rssi_dbm) <= 3.5
    assert {d.address for d, _ in seen} == set(found)  # the detection callback saw every board
    assert len({a.rssi for _, a in seen}) > 1  # RSSI jitters
    assert other == []  # service filter
    assert len(passive) == 3 and all(a.local_name is None for _, a in passive.values())  # name only in scan response
    assert by_address is not None and by_address.address == some.address
    assert set(absent) == set(found) - {some.address}


def test_connect_read_stream_and_commands():
    world = make_world()
    scanner_cls, client_cls = world.backends()

    async def main():
        found = await BleakScanner.discover(0.3, return_adv=True, service_uuids=[P.SERVICE_UUID], backend=scanner_cls)
        device = found[world.board("thigh_left").address][0]
        client, config, rec, control = await connect_and_subscribe(world, device, client_cls)
        board = world.board(device)
        info = {
            "battery": (await client.read_gatt_char(P.BATTERY_LEVEL_CHAR_UUID))[0],
            "serial": (await client.read_gatt_char(P.SERIAL_NUMBER_CHAR_UUID)).decode(),
            "maker": (await client.read_gatt_char(P.MANUFACTURER_NAME_CHAR_UUID)).decode(),
            "fw": (await client.read_gatt_char(P.FIRMWARE_REVISION_CHAR_UUID)).decode(),
            "mtu": client.mtu_size,
            "services": {s.uuid for s in client.services},
        }
        r_rate = await control(P.Opcode.SET_RATE, rate_hz=208)
        r_start = await control(P.Opcode.START)
        await asyncio.sleep(2.0)
        r_busy = await control(P.Opcode.SET_RATE, rate_hz=104)
        before = board.device_time_us(time.monotonic())
        r_sync = await control(P.Opcode.TIME_SYNC, host_nonce=0xDEADBEEF)
        after = board.device_time_us(time.monotonic())
        streaming = P.decode_config(await client.read_gatt_char(P.CONFIG_CHAR_UUID)).streaming
        r_stop = await control(P.Opcode.STOP)
        await client.disconnect()
        return board, config, rec, info, (r_rate, r_start, r_busy, r_sync, r_stop), (before, after), streaming

    board, config, rec, info, responses, (before, after), streaming = run(main())
    r_rate, r_start, r_busy, r_sync, r_stop = responses
    assert config.device_id == board.device_id == info["serial"]
    assert config.rate_centihz == 20800 and not config.streaming and config.mtu == 247 == info["mtu"]
    assert info["battery"] == config.battery_percent and 5 <= info["battery"] <= 100
    assert info["maker"] == "hipimu" and info["fw"] == config.firmware
    assert {P.SERVICE_UUID, P.BATTERY_SERVICE_UUID, P.DEVICE_INFORMATION_SERVICE_UUID} <= info["services"]
    assert r_rate.ok and r_start.ok and r_stop.ok and streaming
    assert r_busy.status == P.Status.ERR_BUSY
    assert r_sync.ok and r_sync.host_nonce == 0xDEADBEEF
    assert (r_sync.device_time_us - before) % 2**32 <= (after - before) % 2**32

    stats = rec.stream.stats
    assert stats.malformed == stats.lost == stats.gaps == stats.device_dropped == stats.seq_resets == 0
    t, acc, gyr, seq = rec.arrays()
    n, span = len(t), t[-1] - t[0]
    assert span > 1.5  # ~2 s of device time went by
    assert abs((n - 1) / span - 208.0) < 1.0  # samples per second of device time
    assert np.array_equal(seq, np.arange(n))  # nothing missing
    sizes = [b.time_s.shape[0] for b in rec.blocks()]
    assert max(sizes) == 11 and np.mean(sizes) > 10  # the 50 ms rule at 208 Hz, MTU 247
    truth = board.truth[-1]
    assert round(t[0] * 1e6) == truth.device_time_us % 2**32  # the first sample's device time
    want_acc, want_gyr = expected(board.world, board, config, seq)
    assert np.array_equal(acc, want_acc) and np.array_equal(gyr, want_gyr)
    assert abs(np.linalg.norm(acc.mean(axis=0)) - 9.81) < 0.5  # standing still: gravity


def test_drop_link_then_reconnect_with_retry_connector():
    world = make_world()
    scanner_cls, client_cls = world.backends()
    down_s = 1.0

    async def main():
        device = await BleakScanner.find_device_by_name(world.board("pelvis").name, timeout=2.0, backend=scanner_cls)
        assert device is not None
        gone = asyncio.Event()
        client = await establish_connection(BleakClient, device, "pelvis", lambda c: gone.set(), backend=client_cls)
        control = Control(client)
        await control.subscribe()
        assert (await control(P.Opcode.START)).ok
        await asyncio.sleep(0.2)
        t_drop = time.monotonic()
        world.drop_link(device, down_s=down_s)
        await asyncio.wait_for(gone.wait(), 1.0)
        state = (client.is_connected, world.board(device).streaming)
        refused = None
        try:
            await BleakClient(device, backend=client_cls).connect()
        except BleakError as exc:
            refused = exc
        again = await establish_connection(BleakClient, device, "pelvis", backend=client_cls)
        t_back = time.monotonic()
        config = P.decode_config(await again.read_gatt_char(P.CONFIG_CHAR_UUID))
        await again.disconnect()
        return state, refused, t_back - t_drop, config, again.is_connected

    state, refused, waited, config, still = run(main())
    assert state == (False, False)  # disconnected and the board stopped streaming
    assert refused is not None and "le-connection-abort-by-local" in str(refused)
    assert waited >= down_s
    assert not config.streaming and not still
    counters = world.board("pelvis").counters
    assert counters.link_drops == 1 and counters.connections == 2 and counters.connect_refused >= 2


def test_inject_is_counted_as_malformed():
    world = make_world()
    _, client_cls = world.backends()

    async def main():
        board = world.board("thigh_right")
        client, config, rec, control = await connect_and_subscribe(world, board.address, client_cls)
        assert (await control(P.Opcode.START)).ok
        await asyncio.sleep(0.3)
        assert world.inject(board, b"\x10\x05\x00\x00garbage")
        await asyncio.sleep(0.3)
        await client.disconnect()
        return rec

    rec = run(main())
    assert rec.stream.stats.malformed == 1
    assert [e for e in rec.events if isinstance(e, P.Malformed)][0].data == b"\x10\x05\x00\x00garbage"
    assert rec.stream.stats.samples > 50 and rec.stream.stats.lost == 0


def test_concurrent_boards_do_not_mix_and_shake_stands_out():
    world = make_world()
    scanner_cls, client_cls = world.backends()
    shaken = world.board("thigh_left")

    async def main():
        found = await BleakScanner.discover(0.3, return_adv=True, service_uuids=[P.SERVICE_UUID], backend=scanner_cls)
        links = await asyncio.gather(*(connect_and_subscribe(world, d, client_cls) for d, _ in found.values()))
        starts = await asyncio.gather(*(control(P.Opcode.START) for *_, control in links))
        world.shake(shaken, 2.0)
        await asyncio.sleep(1.2)
        for client, *_ in links:
            await client.disconnect()
        return links, starts

    links, starts = run(main())
    assert all(r.ok for r in starts)
    assert {cfg.device_id for _, cfg, _, _ in links} == set(world.boards)
    gyro = {}
    for client, config, rec, _ in links:
        board = world.board(client.address)
        assert config.device_id == board.device_id
        t, acc, gyr, seq = rec.arrays()
        assert len(seq) > 150 and np.array_equal(seq, np.arange(len(seq)))
        assert rec.stream.stats.lost == rec.stream.stats.malformed == rec.stream.stats.seq_resets == 0
        gyro[board.role] = np.linalg.norm(gyr, axis=1).mean()
        if board is not shaken:  # each stream carries its own board's subject data
            want_acc, want_gyr = expected(world, board, config, seq)
            assert np.array_equal(acc, want_acc) and np.array_equal(gyr, want_gyr)
    calm = [v for role, v in gyro.items() if role != shaken.role]
    assert gyro[shaken.role] > 3.0 and gyro[shaken.role] > 10 * max(calm)


def test_notifications_leave_at_connection_events():
    """Each link's data notifications go at its connection events (CI 7.5, 30 and
    50 ms side by side) and never before them; packets are built at burst reads
    only. How late the callbacks run on this machine's clock is a measurement,
    not a test: bench/simbackend_timing.py prints it."""
    cis = {"pelvis": 7.5, "thigh_right": 50.0, "thigh_left": 30.0}
    world = make_world(ci_ms=cis)
    _, client_cls = world.backends()
    sizes: dict[str, list[int]] = {r: [] for r in cis}
    for role in cis:
        world.board(role).delivery_log = []

    def on_data(role):
        def cb(_c, data: bytearray) -> None:
            sizes[role].append(P.decode_packet(data).count)
        return cb

    async def main():
        clients = []
        for role in cis:
            board = world.board(role)
            client = BleakClient(board.address, backend=client_cls)
            await client.connect()
            await client.start_notify(P.DATA_CHAR_UUID, on_data(role))
            control = Control(client)
            await control.subscribe()
            assert (await control(P.Opcode.START)).ok
            clients.append(client)
        await asyncio.sleep(2.5)
        for client in clients:
            await client.disconnect()

    run(main())
    for role, ci_ms in cis.items():
        # 208 Hz, MTU 247: every packet is ended by the 50 ms rule at a burst read, none
        # is built early at a connection event (CI 50 ms: a packet waits up to 50 ms)
        assert len(sizes[role]) > 30 and set(sizes[role]) == {11}, (role, sizes[role])
        log = np.asarray(world.board(role).delivery_log)
        assert len(log) == len(sizes[role])
        ce, ran = log[:, 0], log[:, 1]
        k = (ce - ce[0]) / (ci_ms * 1e-3)
        assert np.allclose(k, np.round(k), atol=1e-6), role  # on the grid
        assert np.all(ran >= ce - 1e-6), role  # never before its event
        late_ms = (ran - ce) * 1e3
        print(f"{role}: CI {ci_ms} ms, callbacks late by median {np.median(late_ms):.3f} ms, "
              f"max {late_ms.max():.3f} ms")


def test_command_errors_and_other_rates():
    world = make_world()
    _, client_cls = world.backends()

    async def main():
        board = world.board("pelvis")
        client, _, _, control = await connect_and_subscribe(world, board.address, client_cls)
        out = {
            "empty": await control.raw(b""),
            "unknown": await control.raw(b"\x42\x07"),
            "length": await control.raw(b"\x03\x08\xd0"),
            "rate": await control(P.Opcode.SET_RATE, rate_hz=100),
            "ranges": await control(P.Opcode.SET_RANGES, acc_range_g=3, gyr_range_dps=1000),
            "identify0": await control(P.Opcode.IDENTIFY, seconds=0),
            "identify": await control(P.Opcode.IDENTIFY, seconds=2),
            "mag": await control(P.Opcode.SET_MAG, enabled=1),
            "mag_off": await control(P.Opcode.SET_MAG, enabled=0),
            "reset": await control(P.Opcode.RESET_DROPPED),
            "ranges_ok": await control(P.Opcode.SET_RANGES, acc_range_g=16, gyr_range_dps=2000),
            "rate52": await control(P.Opcode.SET_RATE, rate_hz=52),
        }
        out["identifying"] = board.identifying
        config = P.decode_config(await client.read_gatt_char(P.CONFIG_CHAR_UUID))
        rec = Recorder(config, board.role)
        await client.start_notify(P.DATA_CHAR_UUID, rec)
        out["start"] = await control(P.Opcode.START)
        out["start_again"] = await control(P.Opcode.START)  # idempotent
        await asyncio.sleep(0.8)
        await client.disconnect()
        return out, config, rec, board

    out, config, rec, board = run(main())
    assert (out["empty"].opcode, out["empty"].token, out["empty"].status) == (0, 0, P.Status.ERR_BAD_LENGTH)
    assert (out["unknown"].opcode, out["unknown"].status) == (0x42, P.Status.ERR_UNKNOWN_OPCODE)
    assert (out["length"].opcode, out["length"].status) == (P.Opcode.SET_RATE, P.Status.ERR_BAD_LENGTH)
    for key in ("rate", "ranges", "identify0"):
        assert out[key].status == P.Status.ERR_BAD_VALUE, key
    for key in ("identify", "mag", "mag_off", "reset", "ranges_ok", "rate52", "start", "start_again"):
        assert out[key].ok, key
    assert out["reset"].dropped_total == 0 and out["identifying"]
    assert (config.rate_centihz, config.acc_range_g, config.gyr_range_dps, config.mag_enabled) == (5200, 16, 2000, False)
    t, acc, gyr, seq = rec.arrays()
    assert np.array_equal(seq, np.arange(len(seq))) and len(seq) >= 10
    assert max(b.time_s.shape[0] for b in rec.blocks()) == 3  # 50 ms rule at 52 Hz
    assert abs((len(t) - 1) / (t[-1] - t[0]) - 52.0) < 0.5
    want_acc, want_gyr = expected(world, board, config, seq)
    assert np.array_equal(acc, want_acc) and np.array_equal(gyr, want_gyr)


def test_small_mtu_refuses_mag_start():
    world = make_world(mtu=23, mag=True)
    _, client_cls = world.backends()

    async def main():
        client, config, _, control = await connect_and_subscribe(world, world.board("pelvis").address, client_cls)
        refused = await control(P.Opcode.START)
        await client.disconnect()
        return client.mtu_size, config, refused

    mtu, config, refused = run(main())
    assert config.mtu == 23 == mtu and config.mag_enabled
    assert refused.status == P.Status.ERR_MTU_TOO_SMALL


@pytest.mark.parametrize("bad", [dict(rate_hz=100), dict(roles=("knee",)), dict(scenario="nope")])
def test_world_rejects_bad_parameters(bad):
    with pytest.raises(ValueError):
        SimulatedWorld(**{**SCENARIO, **bad, "prepare": False})
