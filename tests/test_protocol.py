"""The sensor protocol (hipimu.core.protocol) against firmware/PROTOCOL.md, the
firmware's C core and the virtual sensor (hipimu.sources.simulate.packets).

* byte layouts checked against the tables of PROTOCOL.md (parsed from it) and
  the constants of hipimu_core.h;
* Python encoder -> decoder round trips (hypothesis);
* the stream fed packet by packet, byte by byte, split at every point, with
  losses, duplicates, reordering, seq and t0 wraps, device drops;
* fuzzing: decoders raise nothing but DecodeError, the stream nothing at all;
* the REAL C encoder (firmware/build/libhipimu_core.so, built by
  ``make -C firmware lib``) through ctypes: same bytes, same batching rule;
* the virtual sensor's packets decode back to the simulated samples.
"""

from __future__ import annotations

import ctypes
import dataclasses
import math
import random
import re
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hipimu.core import protocol as P
from hipimu.core.model import SampleBlock, concat_blocks
from hipimu.errors import HipimuError, UnknownRoleError
from hipimu.sources.ble.simbluez import firmware_core
from hipimu.sources.ble.simbluez.firmware_core import HipDevice
from hipimu.sources.simulate import simulate_session
from hipimu.sources.simulate import packets as V

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"
PROTOCOL_MD = (FIRMWARE / "PROTOCOL.md").read_text()
HEADER_H = (FIRMWARE / "core" / "include" / "hipimu_core.h").read_text()

CFG = P.DeviceConfig(mtu=247, device_id="a1b2c3d4e5f60718", status_flags=1)
CFG_MAG = dataclasses.replace(CFG, mag_enabled=True, mag_part=1, mag_scale_ut=100 / 6842)
PERIOD_US = 1e6 / 208


def md_table(heading_regex: str) -> list[list[str]]:
    """Rows (cells stripped) of the first table after a heading matching the regex."""
    m = re.search(heading_regex, PROTOCOL_MD, re.M)
    assert m, heading_regex
    rows, started = [], False
    for line in PROTOCOL_MD[m.end():].splitlines():
        if line.startswith("|"):
            started = True
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not set("".join(cells)) <= set("-: "):
                rows.append(cells)
        elif started:
            break
    return rows[1:]  # without the header row


# ---------------------------------------------------------------------------
# Constants and layouts against PROTOCOL.md and hipimu_core.h
# ---------------------------------------------------------------------------


def test_gatt_uuids_match_protocol_md():
    rows = {r[0]: r[1].strip("`") for r in md_table(r"^## GATT")}
    assert rows["hipimu service"] == P.SERVICE_UUID
    assert rows["data"] == P.DATA_CHAR_UUID
    assert rows["control"] == P.CONTROL_CHAR_UUID
    assert rows["config"] == P.CONFIG_CHAR_UUID
    assert "0x180F" in rows["Battery Service"] and P.BATTERY_SERVICE_UUID.startswith("0000180f-")
    assert "0x2A19" in rows["Battery Service"] and P.BATTERY_LEVEL_CHAR_UUID.startswith("00002a19-")
    info = rows["Device Information"]
    for short, uuid in [("0x180A", P.DEVICE_INFORMATION_SERVICE_UUID), ("0x2A29", P.MANUFACTURER_NAME_CHAR_UUID),
                        ("0x2A24", P.MODEL_NUMBER_CHAR_UUID), ("0x2A25", P.SERIAL_NUMBER_CHAR_UUID),
                        ("0x2A26", P.FIRMWARE_REVISION_CHAR_UUID)]:
        assert short in info and uuid == f"0000{short[2:].lower()}-0000-1000-8000-00805f9b34fb"
    assert f'"{P.MANUFACTURER_NAME}"' in info
    assert P.advertised_name("a1b2c3d4e5f60718") == "hipimu-0718"


def test_constants_match_the_c_header():
    defines = {m[1]: int(m[2], 0) for m in re.finditer(r"#define HIP_(\w+) \(?(0x[0-9a-fA-F]+|\d+)u?\b", HEADER_H)}
    assert defines["PROTOCOL_VERSION"] == P.PROTOCOL_VERSION
    assert defines["HEADER_SIZE"] == P.HEADER_SIZE
    assert defines["SAMPLE_SIZE_6D"] == P.SAMPLE_SIZE_6D
    assert defines["SAMPLE_SIZE_9D"] == P.SAMPLE_SIZE_9D
    assert defines["AXES_MAX"] == P.AXES_9D
    assert defines["MAX_SAMPLES_PER_PACKET"] == P.MAX_SAMPLES_PER_PACKET
    assert defines["MAX_PACKET_DELAY_US"] == P.MAX_PACKET_DELAY_US
    assert defines["ATT_MTU_MIN"] == P.ATT_MTU_MIN
    assert defines["ATT_MTU_MAX"] == P.ATT_MTU_MAX
    assert defines["CONFIG_SIZE"] == P.CONFIG_SIZE
    assert defines["FLAG_MAG"] == P.FLAG_MAG
    if "ATT_MTU_MIN_9D" in defines:
        assert defines["ATT_MTU_MIN_9D"] == P.ATT_MTU_MIN_9D
    assert P.PACKET_MAX_SIZE == P.ATT_MTU_MAX - 3  # HIP_PACKET_MAX
    enums = {m[1]: int(m[2], 0) for m in re.finditer(r"\bHIP_((?:OP|ERR)_\w+|OK) = (0x[0-9a-fA-F]+|\d+)", HEADER_H)}
    assert {f"OP_{o.name}": o.value for o in P.Opcode} == {k: v for k, v in enums.items() if k.startswith("OP_")}
    assert {s.name: s.value for s in P.Status} == {
        k: v for k, v in enums.items() if not k.startswith("OP_")}


def test_opcodes_and_arguments_match_protocol_md():
    rows = md_table(r"^## Commands")
    assert len(rows) == len(P.Opcode)
    for opcode, _name, args, payload in rows:
        op = P.Opcode(int(opcode, 16))
        names = re.findall(r"`(\w+)` (u8|u16|u32)", args)
        assert [n for n, _ in names] == [n for n, _ in P.COMMAND_ARGS[op]], op
        sizes = {"u8": "B", "u16": "H", "u32": "I"}
        assert [sizes[t] for _, t in names] == [c for _, c in P.COMMAND_ARGS[op]], op
        want = re.findall(r"`(\w+)` (u8|u16|u32)", payload)
        assert [(n, sizes[t]) for n, t in want] == list(P.RESPONSE_PAYLOAD.get(op, ())), op


def test_status_codes_match_protocol_md():
    rows = md_table(r"^Response: `0x80")  # (the ERR_UNKNOWN_OPCODE row has an unescaped | in a cell)
    assert {int(r[0]): r[1] for r in rows} == {s.value: s.name for s in P.Status}


def test_mtu_table_of_protocol_md():
    rows = md_table(r"^### Batching and the MTU")
    assert len(rows) == 4
    for mtu, payload, six, nine in rows:
        m = int(re.match(r"\d+", mtu)[0])
        assert int(payload) == m - P.ATT_HEADER_SIZE
        assert P.samples_per_packet(m, False) == int(six)
        assert P.samples_per_packet(m, True) == (0 if nine.startswith("-") else int(nine))
    assert P.samples_per_packet(P.ATT_MTU_MIN_9D - 1, True) == 0 < P.samples_per_packet(P.ATT_MTU_MIN_9D, True)
    assert P.samples_per_packet(0, False) == P.samples_per_packet(22, False) == 0
    assert P.samples_per_packet(517, False) == 19  # counts as 247: the largest packet the firmware builds
    # the budget section's packet sizes
    assert len(P.encode_packet(0, 0, 0, np.zeros((19, 6), np.int16))) == 236
    assert len(P.encode_packet(0, 0, 0, np.zeros((13, 9), np.int16))) == 242


def test_data_packet_byte_layout():
    counts = np.array([[1, -2, 3, -4, 5, -6], [32767, -32768, 0, 256, -256, 7]], dtype=np.int16)
    data = P.encode_packet(0xAB, 0xCD, 0x12345678, counts)
    assert data == bytes.fromhex("10 02 ab cd 78563412" "0100 feff 0300 fcff 0500 faff" "ff7f 0080 0000 0001 00ff 0700")
    mag = P.encode_packet(0, 255, 0xFFFFFFFF, np.arange(9).reshape(1, 9))
    assert mag[:8] == bytes.fromhex("11 01 00 ff ffffffff") and len(mag) == 8 + 18
    assert mag[8:] == b"".join(struct.pack("<h", i) for i in range(9))
    p = P.decode_packet(data)
    assert (p.seq, p.dropped, p.t0_us, p.count, p.with_mag) == (0xAB, 0xCD, 0x12345678, 2, False)
    assert np.array_equal(p.counts, counts) and p.counts.dtype == np.int16


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "shorter than the 8-byte header"),
        (bytes.fromhex("10 01 00 00 000000"), "7 bytes, shorter"),
        (bytes.fromhex("20 01 00 00 00000000") + bytes(12), "protocol version 2"),
        (bytes.fromhex("00 01 00 00 00000000") + bytes(12), "protocol version 0"),
        (bytes.fromhex("12 01 00 00 00000000") + bytes(12), "reserved flag bits"),
        (bytes.fromhex("18 01 00 00 00000000") + bytes(12), "reserved flag bits"),
        (bytes.fromhex("10 00 00 00 00000000"), "count 0"),
        (bytes.fromhex("10 01 00 00 00000000") + bytes(11), "expected 8 + 1 x 12 = 20"),
        (bytes.fromhex("10 01 00 00 00000000") + bytes(18), "26 bytes, expected 8 + 1 x 12 = 20"),
        (bytes.fromhex("11 01 00 00 00000000") + bytes(12), "expected 8 + 1 x 18 = 26"),
    ],
)
def test_malformed_packets_raise_decode_error(data, words):
    with pytest.raises(P.DecodeError, match=re.escape(words)) as info:
        P.decode_packet(data)
    assert isinstance(info.value, HipimuError)
    assert "\n" not in str(info.value)


def test_encode_packet_misuse_is_value_or_type_error():
    ok = np.zeros((1, 6), np.int16)
    for args in [(256, 0, 0, ok), (0, -1, 0, ok), (0, 0, 2**32, ok), (0, 0, 0, np.zeros((0, 6))),
                 (0, 0, 0, np.zeros((33, 6), np.int16)), (0, 0, 0, np.zeros((2, 7), np.int16)),
                 (0, 0, 0, np.array([[40000, 0, 0, 0, 0, 0]]))]:
        with pytest.raises(ValueError):
            P.encode_packet(*args)
    with pytest.raises(TypeError):
        P.encode_packet(0, 0, 0, np.zeros((1, 6)))  # floats: quantize first
    with pytest.raises(TypeError):
        P.decode_packet("10 01")  # type: ignore[arg-type]


def test_sample_offsets_round_as_protocol_md_says():
    for centihz in (5200, 10400, 20800, 20000, 1, 65535):
        got = P.sample_offsets_us(40, centihz)
        want = [math.floor(i * 1e6 / (centihz / 100) + 0.5) for i in range(40)]
        assert got.tolist() == want
    assert P.sample_offsets_us(3, 12800).tolist() == [0, 7813, 15625]  # 128 Hz: a tie, rounded up


@given(
    seq=st.integers(0, 255), dropped=st.integers(0, 255), t0=st.integers(0, 2**32 - 1),
    counts=st.integers(1, 32).flatmap(lambda n: st.sampled_from([6, 9]).flatmap(lambda a: arrays(np.int16, (n, a)))),
)
def test_packet_round_trip(seq, dropped, t0, counts):
    data = P.encode_packet(seq, dropped, t0, counts)
    assert len(data) == 8 + counts.size * 2
    p = P.decode_packet(data)
    assert (p.seq, p.dropped, p.t0_us, p.with_mag) == (seq, dropped, t0, counts.shape[1] == 9)
    assert np.array_equal(p.counts, counts)
    assert P.decode_packet(bytearray(data)).t0_us == P.decode_packet(memoryview(data)).t0_us == t0


# ---------------------------------------------------------------------------
# Config characteristic
# ---------------------------------------------------------------------------

CONFIG_FIELDS = {  # PROTOCOL.md field name -> (DeviceConfig attribute, struct code)
    "protocol_version": ("protocol_version", "B"), "firmware": ("firmware_version", "3B"),
    "device_id": ("device_id", "8s"), "imu_part": ("imu_part", "B"), "mag_part": ("mag_part", "B"),
    "rate_centihz": ("rate_centihz", "H"), "acc_range_g": ("acc_range_g", "B"), "mag_enabled": ("mag_enabled", "B"),
    "gyr_range_dps": ("gyr_range_dps", "H"), "acc_scale": ("acc_scale_m_s2", "f"), "gyr_scale": ("gyr_scale_rad_s", "f"),
    "mag_scale": ("mag_scale_ut", "f"), "mtu": ("mtu", "H"), "streaming": ("streaming", "B"),
    "battery_percent": ("battery_percent", "B"), "status_flags": ("status_flags", "I"),
}


def test_config_byte_layout_matches_protocol_md():
    assert re.search(r"## Config characteristic \(read\), 40 bytes", PROTOCOL_MD)
    c = P.DeviceConfig(firmware_version=(1, 2, 3), device_id="a1b2c3d4e5f60718", imu_part=2, mag_part=1,
                       rate_centihz=10400, acc_range_g=16, mag_enabled=True, gyr_range_dps=2000,
                       acc_scale_m_s2=0.25, gyr_scale_rad_s=0.125, mag_scale_ut=0.5, mtu=185, streaming=True,
                       battery_percent=87, status_flags=0b101)
    data = P.encode_config(c)
    assert len(data) == P.CONFIG_SIZE == 40
    rows = md_table(r"^## Config characteristic")
    end = 0
    for offset, size, what in rows:
        name = m[1] if (m := re.match(r"`(\w+)`", what)) else what.split()[0]
        attr, code = CONFIG_FIELDS[name]
        offset, size = int(offset), int(size)
        assert offset == end, f"gap or overlap before {name}"
        assert struct.calcsize("<" + code) == size, name
        value = getattr(c, attr)
        want = {"3B": lambda v: bytes(v), "8s": lambda v: bytes.fromhex(v)}.get(code, lambda v: struct.pack("<" + code, v))(value)
        assert data[offset:offset + size] == want, name
        end = offset + size
    assert end == 40 and len(rows) == len(CONFIG_FIELDS)
    assert data[4:12] == bytes.fromhex("a1b2c3d4e5f60718")  # most significant first
    back = P.decode_config(data)
    assert back == c
    assert (back.rate_hz, back.firmware, back.imu_name, back.mag_name) == (104.0, "1.2.3", "LSM6DSOX", "LIS3MDL")
    assert (back.imu_found, back.mag_found, back.charging) == (True, False, True)


def test_default_config_is_the_firmware_default_and_datasheet_scales():
    c = P.DeviceConfig()
    assert (c.rate_hz, c.acc_range_g, c.gyr_range_dps, c.mag_enabled, c.mtu, c.streaming) == (208.0, 8, 1000, False, 23, False)
    # PROTOCOL.md's example: LSM6DS3TR-C at +-8 g: 0.244 mg/LSB; +-1000 dps: 35 mdps/LSB
    assert c.acc_scale_m_s2 == pytest.approx(0.244e-3 * 9.80665, rel=1e-7)
    assert c.gyr_scale_rad_s == pytest.approx(35e-3 * math.pi / 180, rel=1e-7)
    info = CFG_MAG.to_device_info("pelvis")
    assert info.device_id == "a1b2c3d4e5f60718" and info.has_mag and info.rate_hz == 208.0
    assert info.acc_range_m_s2 == pytest.approx(8 * 9.80665) and info.gyr_range_rad_s == pytest.approx(math.radians(1000))
    assert info.mag_range_ut == pytest.approx(32768 * 100 / 6842, rel=1e-6)
    assert info.extra["mtu"] == 247


f32 = st.floats(min_value=2.0**-40, max_value=1e6, width=32, allow_subnormal=False)


@st.composite
def configs(draw):
    mag = draw(st.booleans())
    return P.DeviceConfig(
        firmware_version=tuple(draw(st.lists(st.integers(0, 255), min_size=3, max_size=3))),
        device_id=draw(st.binary(min_size=8, max_size=8)).hex(),
        imu_part=draw(st.integers(0, 255)), mag_part=draw(st.integers(0, 255)),
        rate_centihz=draw(st.integers(1, 0xFFFF)), acc_range_g=draw(st.integers(0, 255)), mag_enabled=mag,
        gyr_range_dps=draw(st.integers(0, 0xFFFF)), acc_scale_m_s2=draw(f32), gyr_scale_rad_s=draw(f32),
        mag_scale_ut=draw(f32) if mag else draw(st.sampled_from([0.0, 0.125])), mtu=draw(st.integers(0, 0xFFFF)),
        streaming=draw(st.booleans()), battery_percent=draw(st.integers(0, 255)),
        status_flags=draw(st.integers(0, 2**32 - 1)),
    )


@given(configs())
def test_config_round_trip(c):
    data = P.encode_config(c)
    assert len(data) == 40
    assert P.decode_config(data) == c
    assert P.encode_config(P.decode_config(data)) == data


def _config_bytes(**at):
    data = bytearray(P.encode_config(CFG))
    for offset, value in at.items():
        off = int(offset[1:])
        data[off:off + len(value)] = value
    return bytes(data)


@pytest.mark.parametrize(
    "data, words",
    [
        (P.encode_config(CFG)[:39], "39 bytes, expected 40"),
        (P.encode_config(CFG) + b"\0", "41 bytes"),
        (_config_bytes(o0=b"\x02"), "protocol version 2"),
        (_config_bytes(o14=b"\0\0"), "rate 0"),
        (_config_bytes(o17=b"\x02"), "expected 0 or 1"),
        (_config_bytes(o34=b"\x07"), "expected 0 or 1"),
        (_config_bytes(o20=struct.pack("<f", math.nan)), "acc_scale"),
        (_config_bytes(o24=struct.pack("<f", -1.0)), "gyr_scale"),
        (_config_bytes(o24=struct.pack("<f", math.inf)), "gyr_scale"),
        (_config_bytes(o17=b"\x01"), "mag_scale 0.0 is not a positive"),
    ],
)
def test_malformed_config_raises_decode_error(data, words):
    with pytest.raises(P.DecodeError, match=re.escape(words)):
        P.decode_config(data)


def test_config_misuse_is_value_error():
    for kw in [dict(device_id="A1B2C3D4E5F60718"), dict(device_id="abc"), dict(rate_centihz=0), dict(mtu=70000),
               dict(acc_scale_m_s2=math.nan), dict(gyr_scale_rad_s=0.0), dict(mag_enabled=True),
               dict(firmware_version=(1, 2)), dict(acc_scale_m_s2=1e39)]:
        with pytest.raises(ValueError):
            P.DeviceConfig(**kw)


# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------


def test_command_and_response_bytes():
    O = P.Opcode
    assert P.encode_command(O.START, 7) == bytes([0x01, 7])
    assert P.encode_command(O.STOP, 0) == bytes([0x02, 0])
    assert P.encode_command(O.SET_RATE, 1, rate_hz=208) == bytes.fromhex("03 01 d000")
    assert P.encode_command(O.SET_RANGES, 2, acc_range_g=8, gyr_range_dps=1000) == bytes.fromhex("04 02 08 e803")
    assert P.encode_command(O.IDENTIFY, 3, seconds=10) == bytes.fromhex("05 03 0a")
    assert P.encode_command(O.TIME_SYNC, 4, host_nonce=0xDEADBEEF) == bytes.fromhex("06 04 efbeadde")
    assert P.encode_command(O.RESET_DROPPED, 5) == bytes.fromhex("07 05")
    assert P.encode_command(O.SET_MAG, 6, enabled=True) == bytes.fromhex("08 06 01")
    assert P.encode_command(8, 6, enabled=0) == bytes.fromhex("08 06 00")

    r = P.decode_response(bytes.fromhex("86 04 00 efbeadde 78563412"))
    assert (r.opcode, r.token, r.status, r.ok, r.host_nonce, r.device_time_us) == (6, 4, P.Status.OK, True, 0xDEADBEEF, 0x12345678)
    r = P.decode_response(bytes.fromhex("87 05 00 2a000000"))
    assert r.dropped_total == 42 and r.host_nonce is None
    r = P.decode_response(bytes.fromhex("83 01 03"))
    assert (r.opcode, r.status_name, r.ok, r.payload) == (3, "ERR_BAD_VALUE", False, {})
    r = P.decode_response(bytes.fromhex("86 01 04"))  # errors carry no payload, TIME_SYNC included
    assert r.status == P.Status.ERR_BUSY and r.device_time_us is None
    r = P.decode_response(bytes.fromhex("89 01 01"))  # unknown opcode 0x09
    assert (r.opcode, r.status) == (0x09, P.Status.ERR_UNKNOWN_OPCODE)
    r = P.decode_response(bytes.fromhex("80 00 02"))  # the answer to an empty write
    assert (r.opcode, r.token, r.status) == (0, 0, P.Status.ERR_BAD_LENGTH)
    assert P.encode_response(6, 4, P.Status.OK, host_nonce=0xDEADBEEF, device_time_us=0x12345678) == bytes.fromhex(
        "86 04 00 efbeadde 78563412")
    assert P.encode_response(0x09, 1, 1) == bytes.fromhex("89 01 01")
    assert P.encode_response(0, 0, P.Status.ERR_BAD_LENGTH) == bytes.fromhex("80 00 02")


@st.composite
def commands(draw):
    op = draw(st.sampled_from(list(P.Opcode)))
    bits = {"B": 8, "H": 16, "I": 32}
    args = {name: draw(st.integers(0, 2 ** bits[code] - 1)) for name, code in P.COMMAND_ARGS[op]}
    return op, draw(st.integers(0, 255)), args


@given(commands(), st.sampled_from(list(P.Status)), st.data())
def test_command_and_response_round_trip(cmd, status, data):
    op, token, args = cmd
    req = P.encode_command(op, token, **args)
    assert P.decode_command(req) == P.Command(op, token, args)
    payload = {n: data.draw(st.integers(0, 2**32 - 1)) for n, _ in P.RESPONSE_PAYLOAD.get(op, ())} if status == P.Status.OK else {}
    resp = P.encode_response(op, token, status, **payload)
    assert P.decode_response(resp) == P.Response(op, token, status, payload)


@pytest.mark.parametrize(
    "req, status, opcode, token",
    [
        (b"", P.Status.ERR_BAD_LENGTH, 0, 0),
        (b"\x01", P.Status.ERR_BAD_LENGTH, 1, 0),  # opcode without token
        (b"\x99", P.Status.ERR_UNKNOWN_OPCODE, 0x99, 0),
        (b"\x00\x05", P.Status.ERR_UNKNOWN_OPCODE, 0, 5),
        (b"\x09\x05\x01", P.Status.ERR_UNKNOWN_OPCODE, 9, 5),  # unknown wins over length
        (b"\x03\x01\xd0", P.Status.ERR_BAD_LENGTH, 3, 1),
        (b"\x01\x01\x00", P.Status.ERR_BAD_LENGTH, 1, 1),
        (b"\x06\x02\x01\x02\x03\x04\x05", P.Status.ERR_BAD_LENGTH, 6, 2),
    ],
)
def test_bad_requests_say_what_the_device_answers(req, status, opcode, token):
    with pytest.raises(P.CommandError) as info:
        P.decode_command(req)
    e = info.value
    assert (e.status, e.opcode, e.token) == (status, opcode, token)
    assert isinstance(e, P.DecodeError) and "\n" not in str(e)


@pytest.mark.parametrize(
    "data, words",
    [
        (b"\x86\x01", "shorter"),
        (b"\x06\x01\x00", "lacks the response bit"),
        (b"\x81\x01\x07", "unknown status 7"),
        (b"\x89\x01\x00", "unknown opcode 0x09"),
        (b"\x80\x01\x00", "unknown opcode 0x00"),
        (b"\x86\x01\x00\x00", "1 payload bytes, expected 8"),
        (b"\x81\x01\x00\x00", "expected 0"),
        (b"\x83\x01\x03\x00", "expected 0"),
    ],
)
def test_malformed_responses_raise_decode_error(data, words):
    with pytest.raises(P.DecodeError, match=re.escape(words)):
        P.decode_response(data)


def test_command_misuse_is_type_or_value_error():
    with pytest.raises(ValueError):
        P.encode_command(0x09, 0)
    with pytest.raises(ValueError):
        P.encode_command(P.Opcode.START, 256)
    with pytest.raises(TypeError):
        P.encode_command(P.Opcode.SET_RATE, 0)  # rate_hz missing
    with pytest.raises(TypeError):
        P.encode_command(P.Opcode.START, 0, rate_hz=52)
    with pytest.raises(ValueError):
        P.encode_command(P.Opcode.SET_RATE, 0, rate_hz=70000)
    with pytest.raises(TypeError):
        P.encode_command(P.Opcode.SET_RATE, 0, rate_hz=52.0)
    with pytest.raises(TypeError):
        P.encode_response(P.Opcode.TIME_SYNC, 0, P.Status.OK)  # payload missing
    with pytest.raises(TypeError):
        P.encode_response(P.Opcode.STOP, 0, P.Status.ERR_BUSY, dropped_total=1)


# ---------------------------------------------------------------------------
# The stream
# ---------------------------------------------------------------------------


def make_packets(n_packets, *, per=5, t0_us=1_000_000, seq0=0, mag=False, centihz=20800, seed=0):
    """Consecutive packets of ``per`` samples: list of dicts with data, seq, t0 (64-bit), counts."""
    rng = np.random.default_rng(seed)
    step = int(P.sample_offsets_us(per + 1, centihz)[per])
    out = []
    for k in range(n_packets):
        counts = rng.integers(-32768, 32768, (per, 9 if mag else 6)).astype(np.int16)
        t0 = t0_us + k * step
        seq = (seq0 + k) & 0xFF
        out.append(dict(data=P.encode_packet(seq, 0, t0 & 0xFFFFFFFF, counts), seq=seq, t0=t0, counts=counts))
    return out


def feed_all(stream, chunks, arrival=None):
    events = []
    for i, c in enumerate(chunks):
        events += stream.feed(c, None if arrival is None else arrival + i)
    return events


def of(events, cls):
    return [e for e in events if isinstance(e, cls)]


def emitted(events):
    return concat_blocks([e.block for e in of(events, P.Samples)])


def norm(events):
    """Events without arrival times or raw bytes, comparable across framings."""
    out = []
    for e in events:
        if isinstance(e, P.Samples):
            b = e.block
            out.append(("S", e.packet_seq, e.dropped, b.time_s.tolist(), b.acc_m_s2.tolist(), b.gyr_rad_s.tolist(),
                        None if b.mag_ut is None else b.mag_ut.tolist(), b.seq.tolist()))
        elif isinstance(e, P.Malformed):
            out.append(("M",))
        else:
            out.append(dataclasses.replace(e, arrival_time_s=None))
    return out


def assert_in_order(events):
    b = emitted(events)
    assert np.all(np.diff(b.time_s) > 0) and np.all(np.diff(b.seq) > 0)


def test_stream_packet_by_packet():
    pk = make_packets(20)
    s = P.PacketStream(CFG, "pelvis")
    events = feed_all(s, [p["data"] for p in pk], arrival=100.0)
    assert [type(e) for e in events] == [P.Samples] * 20
    assert [e.arrival_time_s for e in events] == [100.0 + i for i in range(20)]
    for e, p in zip(events, pk):
        b = e.block
        assert b.role == "pelvis" and e.packet_seq == p["seq"] and not b.has_mag
        assert b.time_s.tolist() == ((p["t0"] + P.sample_offsets_us(5, 20800)) * 1e-6).tolist()
        assert np.array_equal(b.acc_m_s2, p["counts"][:, :3] * CFG.acc_scale_m_s2)
        assert np.array_equal(b.gyr_rad_s, p["counts"][:, 3:] * CFG.gyr_scale_rad_s)
    b = emitted(events)
    assert b.seq.tolist() == list(range(100))
    assert np.allclose(np.diff(b.time_s), 1 / 208, atol=1e-6)
    st_ = s.stats
    assert (st_.packets, st_.samples, st_.lost, st_.duplicates, st_.malformed, st_.device_dropped) == (20, 100, 0, 0, 0, 0)
    assert st_.bytes == sum(len(p["data"]) for p in pk)


def test_stream_with_magnetometer():
    pk = make_packets(3, mag=True, per=4)
    events = feed_all(P.PacketStream(CFG_MAG, "thigh_left"), [p["data"] for p in pk])
    b = emitted(events)
    assert b.has_mag and b.role == "thigh_left"
    counts = np.vstack([p["counts"] for p in pk])
    assert np.array_equal(b.mag_ut, counts[:, 6:] * CFG_MAG.mag_scale_ut)


def test_stream_fed_byte_by_byte_equals_packet_by_packet():
    pk = make_packets(12, per=3, mag=True)
    ref = norm(feed_all(P.PacketStream(CFG_MAG, "pelvis"), [p["data"] for p in pk]))
    s = P.PacketStream(CFG_MAG, "pelvis", framing="bytes")
    stream = b"".join(p["data"] for p in pk)
    events = feed_all(s, [stream[i:i + 1] for i in range(len(stream))]) + s.close()
    assert norm(events) == ref
    assert s.stats.packets == 12 and s.stats.malformed == 0


def test_stream_split_at_every_point():
    pk = make_packets(3, per=2)
    stream = b"".join(p["data"] for p in pk)
    ref = norm(feed_all(P.PacketStream(CFG, "pelvis"), [p["data"] for p in pk]))
    for cut in range(len(stream) + 1):
        s = P.PacketStream(CFG, "pelvis", framing="bytes")
        assert norm(s.feed(stream[:cut]) + s.feed(stream[cut:]) + s.close()) == ref, cut
        for cut2 in range(cut, len(stream) + 1, 7):
            s = P.PacketStream(CFG, "pelvis", framing="bytes")
            got = s.feed(stream[:cut]) + s.feed(stream[cut:cut2]) + s.feed(stream[cut2:]) + s.close()
            assert norm(got) == ref, (cut, cut2)


def test_stream_losses():
    pk = make_packets(20, per=5)
    kept = [p for i, p in enumerate(pk) if i not in (3, 7, 8)]
    s = P.PacketStream(CFG, "pelvis")
    events = feed_all(s, [p["data"] for p in kept])
    gaps = of(events, P.Gap)
    assert [(g.lost_packets, g.lost_samples_estimate, g.device_dropped) for g in gaps] == [(1, 5, 0), (2, 10, 0)]
    assert gaps[0].start_s == pytest.approx(pk[3]["t0"] * 1e-6) and gaps[0].end_s == pytest.approx(pk[4]["t0"] * 1e-6)
    assert isinstance(events[events.index(gaps[0]) + 1], P.Samples)  # a gap comes before the samples after it
    b = emitted(events)
    assert b.seq.tolist() == [i for i in range(100) if i // 5 not in (3, 7, 8)]
    assert (s.stats.lost, s.stats.lost_samples, s.stats.gaps, s.stats.packets) == (3, 15, 2, 17)


@pytest.mark.parametrize("per, lost", [(1, 256), (1, 300), (1, 600), (5, 256), (5, 300), (19, 300), (5, 20)])
def test_stream_loss_longer_than_the_seq_wraps(per, lost):
    """seq is 8 bits: 256 lost packets look like none; t0 tells."""
    pk = make_packets(lost + 10, per=per)
    kept = pk[:5] + pk[5 + lost:]
    s = P.PacketStream(CFG, "pelvis")
    events = feed_all(s, [p["data"] for p in kept])
    (g,) = of(events, P.Gap)
    assert (g.lost_packets, g.lost_samples_estimate, g.device_dropped) == (lost, lost * per, 0)
    assert emitted(events).seq[-1] == (lost + 10) * per - 1


def test_stream_duplicates_are_reported_not_emitted():
    pk = make_packets(10)
    order = [0, 1, 2, 2, 3, 4, 1, 5, 6, 7, 8, 9, 9]
    s = P.PacketStream(CFG, "pelvis")
    events = feed_all(s, [pk[i]["data"] for i in order])
    assert [e.seq for e in of(events, P.Duplicate)] == [2, 1, 9]
    assert of(events, P.Duplicate)[0].t0_s == pytest.approx(pk[2]["t0"] * 1e-6)
    assert emitted(events).seq.tolist() == list(range(50))
    assert (s.stats.duplicates, s.stats.packets, s.stats.lost, s.stats.late) == (3, 10, 0, 0)


def test_stream_reordering_never_goes_back_in_time():
    pk = make_packets(8)
    order = [0, 1, 3, 2, 4, 6, 5, 7]
    s = P.PacketStream(CFG, "pelvis")
    events = feed_all(s, [pk[i]["data"] for i in order])
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["Samples", "Samples", "Gap", "Samples", "Late", "Samples", "Gap", "Samples", "Late", "Samples"]
    assert [(e.seq, e.n_samples) for e in of(events, P.Late)] == [(2, 5), (5, 5)]
    assert_in_order(events)
    assert (s.stats.late, s.stats.lost, s.stats.packets) == (2, 2, 6)


def test_stream_seq_wraps_without_loss():
    pk = make_packets(600, per=1, seq0=250)
    s = P.PacketStream(CFG, "pelvis")
    events = feed_all(s, [p["data"] for p in pk])
    assert len(of(events, P.Samples)) == 600 and not of(events, P.Gap)
    assert (s.stats.lost, s.stats.seq_resets) == (0, 0)


def test_stream_unwraps_t0_across_2_32_us():
    start = 2**32 - 30_000  # 30 ms before the wire's t0 wraps
    pk = make_packets(40, per=5, t0_us=start)
    assert pk[0]["t0"] < 2**32 < pk[-1]["t0"]
    assert P.decode_packet(pk[-1]["data"]).t0_us < 1_000_000  # the wire value wrapped
    s = P.PacketStream(CFG, "pelvis")
    events = feed_all(s, [p["data"] for p in pk])
    b = emitted(events)
    assert b.time_s[0] == pytest.approx(start * 1e-6) and b.time_s[-1] > 2**32 * 1e-6
    assert np.allclose(np.diff(b.time_s), 1 / 208, atol=1e-6) and not of(events, P.Gap)
    # a loss spanning the wrap, and a late packet from before it
    s = P.PacketStream(CFG, "pelvis")
    events = feed_all(s, [pk[i]["data"] for i in [0, 1, 12, 2]])
    (g,) = of(events, P.Gap)
    assert (g.lost_packets, g.lost_samples_estimate) == (10, 50)
    assert len(of(events, P.Late)) == 1


def test_stream_survives_many_wraps():
    """Hours of packets (one every 17 min of device time, 4 lost between):
    the device clock runs on monotonically."""
    step_us = 17 * 60 * 10**6
    s = P.PacketStream(dataclasses.replace(CFG, rate_centihz=1), "pelvis")  # 0.01 Hz: 1 sample per 100 s
    t = 123
    times = []
    for k in range(20):
        d = P.encode_packet(k * 5 & 0xFF, 0, t & 0xFFFFFFFF, np.zeros((1, 6), np.int16))
        ev = s.feed(d)
        times.append(emitted(ev).time_s[0])
        t += step_us
    assert np.allclose(np.diff(times), step_us * 1e-6)


def test_stream_device_drops():
    pk = make_packets(6, per=5)
    # the device dropped 7 samples before packet 3: its t0 and everything after moves 7 periods on
    shift = int(P.sample_offsets_us(8, 20800)[7])
    later = [dict(p, t0=p["t0"] + shift) for p in pk[3:]]
    chunks = [p["data"] for p in pk[:3]]
    for p in later:
        dropped = 7 if p is later[0] else 0
        chunks.append(P.encode_packet(p["seq"], dropped, p["t0"] & 0xFFFFFFFF, p["counts"]))
    s = P.PacketStream(CFG, "pelvis")
    events = feed_all(s, chunks)
    (g,) = of(events, P.Gap)
    assert (g.lost_packets, g.lost_samples_estimate, g.device_dropped) == (0, 0, 7)
    assert of(events, P.Samples)[3].dropped == 7
    assert emitted(events).seq.tolist() == list(range(15)) + list(range(22, 37))
    assert (s.stats.device_dropped, s.stats.lost) == (7, 0)


def test_stream_device_drops_saturated_and_mixed_with_loss():
    pk = make_packets(10, per=5)
    shift = int(P.sample_offsets_us(401, 20800)[400])  # 400 dropped: the field saturates at 255
    chunks = [p["data"] for p in pk[:2]]
    chunks += [P.encode_packet(p["seq"], 255 if i == 0 else 0, (p["t0"] + shift) & 0xFFFFFFFF, p["counts"])
               for i, p in enumerate(pk[2:5])]
    s = P.PacketStream(CFG, "pelvis")
    (g,) = of(feed_all(s, chunks), P.Gap)
    assert (g.lost_packets, g.lost_samples_estimate, g.device_dropped) == (0, 0, 400)
    # packets lost and the device dropped 3 before the next received one
    shift = int(P.sample_offsets_us(4, 20800)[3])
    chunks = [p["data"] for p in pk[:2]] + [P.encode_packet(pk[4]["seq"], 3, (pk[4]["t0"] + shift) & 0xFFFFFFFF, pk[4]["counts"])]
    s = P.PacketStream(CFG, "pelvis")
    (g,) = of(feed_all(s, chunks), P.Gap)
    assert (g.lost_packets, g.lost_samples_estimate, g.device_dropped) == (2, 10, 3)


def test_stream_first_packet_with_drops():
    d = P.encode_packet(0, 3, 1_000_000, np.zeros((2, 6), np.int16))
    events = P.PacketStream(CFG, "pelvis").feed(d)
    assert isinstance(events[0], P.Gap) and (events[0].lost_packets, events[0].device_dropped) == (0, 3)
    assert events[1].block.seq.tolist() == [3, 4]


def test_stream_seq_reset_is_not_a_loss():
    """RESET_DROPPED zeroes seq mid-stream; time runs on."""
    pk = make_packets(10, per=5)
    chunks = [p["data"] for p in pk[:6]] + [P.encode_packet(k, 0, p["t0"], p["counts"]) for k, p in enumerate(pk[6:])]
    s = P.PacketStream(CFG, "pelvis")
    events = feed_all(s, chunks)
    assert not of(events, P.Gap) and emitted(events).seq.tolist() == list(range(50))
    assert (s.stats.seq_resets, s.stats.lost) == (1, 0)


def test_stream_restart_after_stop_start():
    pk = make_packets(5, per=5)
    s = P.PacketStream(CFG, "pelvis")
    events = feed_all(s, [p["data"] for p in pk])
    s.restart()  # STOP, START 10 s later: seq restarts at 0, nothing lost
    again = make_packets(3, per=5, t0_us=pk[-1]["t0"] + 10_000_000, seed=1)
    events += feed_all(s, [p["data"] for p in again])
    assert not of(events, P.Gap) and len(of(events, P.Samples)) == 8
    assert_in_order(events)
    assert s.feed(pk[2]["data"])[0].__class__ in (P.Late, P.Duplicate)  # still never back in time


def test_stream_malformed_packets_are_counted_not_fatal():
    pk = make_packets(6, per=2)
    garbage = [b"", b"\x10", bytes.fromhex("20 01 00 00 00000000") + bytes(12),
               bytes.fromhex("12 01 00 00 00000000") + bytes(12), bytes.fromhex("10 00 00 00 00000000"),
               pk[0]["data"][:-1], pk[0]["data"] + b"\0",
               P.encode_packet(9, 0, 0, np.zeros((1, 9), np.int16))]  # mag, but the config has none
    chunks = []
    for i, p in enumerate(pk):
        chunks.append(p["data"])
        chunks += garbage[i::len(pk)]
    s = P.PacketStream(CFG, "pelvis")
    events = feed_all(s, chunks)
    bad = of(events, P.Malformed)
    assert len(bad) == len(garbage) == s.stats.malformed
    assert all(m.reason and "\n" not in m.reason for m in bad)
    assert any("re-read the config" in m.reason for m in bad)
    assert emitted(events).seq.tolist() == list(range(12)) and not of(events, P.Gap)


def test_bytes_framing_resynchronises_after_garbage():
    pk = make_packets(5, per=2)
    junk = bytes([0xFF, 0x00, 0x20, 0x05, 0x10, 0x00, 0x42])  # no plausible header inside (0x10 0x00: count 0)
    stream = pk[0]["data"] + junk + pk[1]["data"] + pk[2]["data"] + junk[:3] + pk[3]["data"] + pk[4]["data"] + b"\x10\x02\x00"
    for chunks in ([stream], [stream[i:i + 1] for i in range(len(stream))], [stream[i:i + 5] for i in range(0, len(stream), 5)]):
        s = P.PacketStream(CFG, "pelvis", framing="bytes")
        events = feed_all(s, chunks) + s.close()
        assert emitted(events).seq.tolist() == list(range(10))
        bad = of(events, P.Malformed)
        assert [m.data for m in bad] == [junk, junk[:3], b"\x10\x02\x00"]
        assert s.stats.malformed == 3


def test_stream_misuse():
    with pytest.raises(TypeError):
        P.PacketStream(CFG, "pelvis").feed("10 01")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        P.PacketStream(CFG, "pelvis", framing="lines")
    with pytest.raises(UnknownRoleError):
        P.PacketStream(CFG, "elbow")


def test_device_time_unwrapper():
    u = P.DeviceTimeUnwrapper()
    assert u.unwrap(2**32 - 10) == 2**32 - 10
    assert u.unwrap(5) == 2**32 + 5  # wrapped
    assert u.unwrap(2**32 - 20) == 2**32 - 20  # a bit older: not wrapped again
    assert u.newest_us == 2**32 + 5
    assert u.unwrap(2**31, update=False) == 2**32 + 2**31 and u.newest_us == 2**32 + 5
    # TIME_SYNC replies share the stream's time base
    s = P.PacketStream(CFG, "pelvis")
    s.feed(P.encode_packet(0, 0, 2**32 - 1000, np.zeros((1, 6), np.int16)))
    reply = P.decode_response(P.encode_response(P.Opcode.TIME_SYNC, 1, 0, host_nonce=1, device_time_us=500))
    assert s.clock.unwrap(reply.device_time_us) == 2**32 + 500


# ---------------------------------------------------------------------------
# Fuzzing: >= 10 000 examples each; nothing but DecodeError, the stream nothing
# ---------------------------------------------------------------------------
# Hypothesis draws are the cost here (~0.5 ms each), so an example is a blob of
# bytes (shrinkable) plus a small "shape" that turns it into an almost valid
# packet, or a seed from which a whole stream is built with random.Random.

FUZZ = settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def shape_packet(shape: int, blob: bytes) -> bytes:
    """``blob`` as is (shape 0) or made into a packet that is valid (1), off by
    one byte (2), with random version/flags (3), with a wrong count (4), or
    mutated in one byte (5+)."""
    if shape == 0 or len(blob) < 2:
        return blob
    mag = blob[0] & 1
    size = 18 if mag else 12
    payload = blob[2:]
    n = max(1, min(255, (len(payload) - 6) // size))
    body = (payload[:6] + bytes(6))[:6] + (payload[6:] + bytes(n * size))[: n * size]
    flags = 0x10 | mag
    if shape == 3:
        flags = blob[1]
    if shape == 4:
        n = blob[1] if blob[1] != n else 0
    data = bytearray([flags, n]) + body
    if shape == 2:
        data = data[:-1] if blob[1] & 1 else data + blob[-1:]
    if shape >= 5:
        data[blob[1] % len(data)] ^= 1 << (shape % 8)
    return bytes(data)


def random_stream(seed: int):
    """A config and a run of notifications: mostly a consistent stream (with
    losses, drops, duplicates, reordering, clock jumps, seq resets), laced
    with garbage, truncated and mutated packets."""
    rnd = random.Random(seed)
    mag = rnd.random() < 0.5
    centihz = rnd.choice([5200, 10400, 20800, 20000, rnd.randint(1, 0xFFFF)])
    config = dataclasses.replace(CFG_MAG if mag else CFG, rate_centihz=centihz, mtu=rnd.choice([23, 185, 247, 0]))
    size = 18 if mag else 12
    offsets = P.sample_offsets_us(34, centihz)
    seq, t = rnd.randrange(256), rnd.randrange(2**32)
    chunks: list[bytes] = []
    for _ in range(rnd.randint(0, 14)):
        kind = rnd.choice("nnnnnnnljdrsgmtx")
        n = rnd.choice([1, 5, 11, 19, rnd.randint(1, 33)])
        if kind == "l":  # lost packets
            seq += rnd.randint(1, 300)
            t += int(offsets[n]) * rnd.randint(1, 300)
        elif kind == "j":  # the clock jumps anywhere
            t += rnd.randint(-(2**33), 2**33)
        elif kind == "s":  # seq reset
            seq = 0
        if kind in "nljs":
            dropped = rnd.choice([0, 0, 0, 1, 255])
            t += int(offsets[1]) * dropped
            counts = rnd.randbytes(n * size)
            chunks.append(struct.pack("<BBBBI", 0x10 | mag, n, seq & 0xFF, dropped, t & 0xFFFFFFFF) + counts)
            seq += 1
            t += int(offsets[n]) + rnd.choice([0, 0, 0, 1, -1, 700, -700])
        elif kind == "d" and chunks:
            chunks.append(rnd.choice(chunks))
        elif kind == "r" and len(chunks) >= 2:
            chunks[-1], chunks[-2] = chunks[-2], chunks[-1]
        elif kind == "g":
            chunks.append(rnd.randbytes(rnd.randint(0, 60)))
        elif kind == "t" and chunks:
            chunks.append(chunks[-1][: rnd.randrange(len(chunks[-1]) + 1)])
        elif kind == "m" and chunks:
            c = bytearray(chunks[-1] or b"\0")
            c[rnd.randrange(len(c))] ^= 1 << rnd.randrange(8)
            chunks.append(bytes(c))
        elif kind == "x":
            chunks.append(shape_packet(rnd.randrange(8), rnd.randbytes(rnd.randint(0, 100))))
    return config, chunks, rnd.choice([1, 2, 5, 16, 40, 1000, 10**6, 10**6, 10**6, 10**6])


def check_stream_invariants(s, events):
    samples = of(events, P.Samples)
    assert s.stats.packets == len(samples)
    assert s.stats.samples == sum(len(e.block) for e in samples)
    assert s.stats.malformed == len(of(events, P.Malformed))
    assert s.stats.duplicates == len(of(events, P.Duplicate)) and s.stats.late == len(of(events, P.Late))
    gaps = of(events, P.Gap)
    assert s.stats.lost == sum(g.lost_packets for g in gaps) and s.stats.device_dropped == sum(g.device_dropped for g in gaps)
    assert all(g.lost_packets >= 0 and g.lost_samples_estimate >= g.lost_packets and g.device_dropped >= 0 for g in gaps)
    if samples:
        assert_in_order(events)


def check_decode_packet(data: bytes, shape: int) -> None:
    try:
        p = P.decode_packet(data)
    except P.DecodeError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert len(data) == 8 + p.count * (18 if p.with_mag else 12)
    if p.count <= P.MAX_SAMPLES_PER_PACKET:
        assert P.encode_packet(p.seq, p.dropped, p.t0_us, p.counts) == data  # decode is the encoder's inverse


@pytest.mark.slow
@FUZZ
@given(st.integers(0, 7), st.binary(max_size=400), st.integers(0, 2**64 - 1))
def test_fuzz_decode_packet_and_packet_stream(shape, blob, seed):
    """One test, 10 000 examples (hypothesis's per-example overhead dominates):
    decode_packet raises nothing but DecodeError, and decodes exactly what the
    encoder makes; a PacketStream fed the shaped blob and a random stream, as
    notifications and as a byte stream in random chunks, raises nothing at all,
    its counters match its events and its samples are in time order."""
    data = shape_packet(shape, blob)
    check_decode_packet(data, shape)
    config, chunks, step = random_stream(seed)
    chunks.insert(seed % (len(chunks) + 1), data)
    s = P.PacketStream(config, "pelvis")
    events = [e for i, c in enumerate(chunks) for e in s.feed(c, float(i))]
    check_stream_invariants(s, events)
    raw = b"".join(chunks)
    s2 = P.PacketStream(config, "pelvis", framing="bytes")
    events2 = [e for i in range(0, len(raw), step) for e in s2.feed(raw[i:i + step])] + s2.close()
    check_stream_invariants(s2, events2)
    assert s2.stats.bytes == len(raw)


@settings(max_examples=2000, deadline=None)
@given(st.integers(0, 9), st.binary(max_size=50))
def test_fuzz_config_and_control_decoders(shape, blob):
    data = blob
    if shape >= 5 and blob:  # a valid config or request with one byte changed
        base = bytearray(P.encode_config(CFG_MAG) if shape < 8 else P.encode_command(P.Opcode.SET_RANGES, 1, acc_range_g=8, gyr_range_dps=1000))
        base[blob[0] % len(base)] = blob[-1]
        data = bytes(base)
    for decode in (P.decode_config, P.decode_response, P.decode_command):
        try:
            decode(data)
        except P.DecodeError as exc:
            assert "\n" not in str(exc)


# ---------------------------------------------------------------------------
# The real C encoder (firmware/core via ctypes)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clib():
    """Build firmware/build/libhipimu_core.so with ``make -C firmware lib`` and load it.
    A build failure fails the test (never skips): the C core must keep building."""
    try:
        run = subprocess.run(["make", "-C", str(FIRMWARE), "lib"], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"make -C firmware lib could not run: {exc}")
    if run.returncode != 0:
        pytest.fail(f"make -C firmware lib failed ({run.returncode}):\n{run.stdout}\n{run.stderr}")
    path = FIRMWARE / "build" / "libhipimu_core.so"
    if not path.exists():
        pytest.fail(f"make -C firmware lib did not build {path}")
    lib = firmware_core.load(path)  # every function's types declared, HipDevice's layout checked
    return lib


def c_encode(lib, cap, seq, dropped, t0, counts, n=None, with_mag=None):
    counts = np.ascontiguousarray(counts, dtype=np.int16)
    out = (ctypes.c_uint8 * max(cap, 1))()
    n = counts.shape[0] if n is None else n
    with_mag = counts.shape[1] == 9 if with_mag is None else with_mag
    size = lib.hip_encode_packet(out, cap, seq, dropped, t0, counts.ctypes.data, n, with_mag)
    return bytes(out[:size])


def test_c_samples_per_packet_equals_python(clib):
    for mtu in range(0, 600):
        for mag in (False, True):
            assert clib.hip_samples_per_packet(mtu, mag) == P.samples_per_packet(mtu, mag), (mtu, mag)


@settings(max_examples=100, deadline=None)
@given(arrays(np.int16, (P.MAX_SAMPLES_PER_PACKET, 9)), st.integers(0, 255), st.integers(0, 255), st.integers(0, 2**32 - 1))
def test_c_encoder_bytes_equal_python_at_every_mtu(clib, pool, seq, dropped, t0):
    """For every ATT MTU 23..247, 6D and 9D: a full packet of samples from the
    C encoder decodes in Python to the same values and equals Python's bytes;
    one sample more does not fit. The samples of each MTU are a different cut
    of a hypothesis-drawn pool (one example covers all 450 cases)."""
    flat = pool.ravel()
    for mtu in range(P.ATT_MTU_MIN, P.ATT_MTU_MAX + 1):
        cap = mtu - P.ATT_HEADER_SIZE
        for mag in (False, True):
            n = clib.hip_samples_per_packet(mtu, mag)
            assert n == P.samples_per_packet(mtu, mag)
            axes = 9 if mag else 6
            if n == 0:
                assert c_encode(clib, cap, 0, 0, 0, np.zeros((1, axes))) == b""
                continue
            counts = np.roll(flat, 7 * mtu + mag)[: n * axes].reshape(n, axes)
            s_, d_, t_ = (seq + mtu) & 0xFF, dropped ^ mtu & 0xFF, (t0 + mtu * 0x01000193) & 0xFFFFFFFF
            c_bytes = c_encode(clib, cap, s_, d_, t_, counts)
            assert c_bytes == P.encode_packet(s_, d_, t_, counts), (mtu, mag)
            assert len(c_bytes) <= cap
            p = P.decode_packet(c_bytes)
            assert (p.seq, p.dropped, p.t0_us, p.with_mag) == (s_, d_, t_, mag)
            assert np.array_equal(p.counts, counts)
            if n < P.MAX_SAMPLES_PER_PACKET:
                assert c_encode(clib, cap, s_, d_, t_, np.zeros((n + 1, axes))) == b""


def test_c_encoder_rejects_what_python_rejects(clib):
    z = np.zeros((33, 6), np.int16)
    assert c_encode(clib, 1000, 0, 0, 0, z, n=0) == b""
    assert c_encode(clib, 1000, 0, 0, 0, z, n=33) == b""
    assert len(c_encode(clib, 1000, 0, 0, 0, z, n=32)) == 8 + 32 * 12
    for n in (0, 33):
        with pytest.raises(ValueError):
            P.encode_packet(0, 0, 0, z[:n])


def c_device(lib):
    dev = ctypes.create_string_buffer(1 << 20)  # larger than any hip_device
    lib.hip_device_init(dev)
    return dev


def c_config(lib, dev):
    out = (ctypes.c_uint8 * 64)()
    assert lib.hip_encode_config(dev, out, 64) == 40
    return bytes(out[:40])


def c_command(lib, dev, req, now_us=0):
    buf = (ctypes.c_uint8 * max(len(req), 1)).from_buffer_copy(req or b"\0")
    resp = (ctypes.c_uint8 * 64)()
    size = lib.hip_handle_command(dev, buf, len(req), now_us, resp, 64)
    assert size >= 3
    return bytes(resp[:size])


def test_c_config_decodes_in_python(clib):
    c = P.decode_config(c_config(clib, c_device(clib)))
    assert (c.protocol_version, c.rate_hz, c.acc_range_g, c.gyr_range_dps, c.mag_enabled, c.mtu, c.streaming) == (
        1, 208.0, 8, 1000, False, 23, False)
    assert c.acc_scale_m_s2 == P.DeviceConfig().acc_scale_m_s2 == V.board_config().acc_scale_m_s2
    assert c.gyr_scale_rad_s == P.DeviceConfig().gyr_scale_rad_s == V.board_config().gyr_scale_rad_s
    for g in P.ACC_RANGES_G:
        assert clib.hip_acc_scale_m_s2(g) == V.board_config(acc_range_g=g).acc_scale_m_s2
    for dps in P.GYR_RANGES_DPS:
        assert clib.hip_gyr_scale_rad_s(dps) == V.board_config(gyr_range_dps=dps).gyr_scale_rad_s


def test_c_command_responses_decode_in_python(clib):
    dev = c_device(clib)
    O, S = P.Opcode, P.Status

    def ask(req, now_us=0):
        return P.decode_response(c_command(clib, dev, req, now_us))

    r = ask(P.encode_command(O.TIME_SYNC, 9, host_nonce=0xCAFEBABE), now_us=(5 << 32) + 1234)
    assert (r.opcode, r.token, r.status, r.host_nonce, r.device_time_us) == (O.TIME_SYNC, 9, S.OK, 0xCAFEBABE, 1234)
    assert ask(P.encode_command(O.SET_RATE, 1, rate_hz=104)).status == S.OK
    assert P.decode_config(c_config(clib, dev)).rate_centihz == 10400
    assert ask(P.encode_command(O.SET_RATE, 2, rate_hz=100)).status == S.ERR_BAD_VALUE
    assert ask(P.encode_command(O.SET_RANGES, 3, acc_range_g=4, gyr_range_dps=500)).status == S.OK
    c = P.decode_config(c_config(clib, dev))
    assert (c.acc_range_g, c.gyr_range_dps) == (4, 500)
    assert c.acc_scale_m_s2 == V.board_config(acc_range_g=4).acc_scale_m_s2
    assert ask(P.encode_command(O.IDENTIFY, 4, seconds=31)).status == S.ERR_BAD_VALUE
    r = ask(P.encode_command(O.RESET_DROPPED, 5))
    assert (r.status, r.dropped_total) == (S.OK, 0)
    assert ask(b"\x09\x06").status == S.ERR_UNKNOWN_OPCODE
    r = ask(b"")
    assert (r.opcode, r.token, r.status) == (0, 0, S.ERR_BAD_LENGTH)


@settings(max_examples=1000, deadline=None)
@given(st.one_of(st.binary(max_size=9), commands().map(lambda c: P.encode_command(c[0], c[1], **c[2]))))
def test_c_command_handler_agrees_with_decode_command(clib, req):
    """Any write: Python decodes the C response; what decode_command refuses, the
    C core refuses with the same status, opcode and token."""
    resp = P.decode_response(c_command(clib, c_device(clib), req))
    try:
        cmd = P.decode_command(req)
    except P.CommandError as e:
        assert (resp.status, resp.opcode, resp.token) == (e.status, e.opcode & 0x7F, e.token)
    else:
        assert (resp.opcode, resp.token) == (cmd.opcode, cmd.token)
        assert resp.status not in (P.Status.ERR_UNKNOWN_OPCODE, P.Status.ERR_BAD_LENGTH)


def c_board(lib, *, mtu, mag):
    """A streaming C hip_device with IMU (and magnetometer) found, at this MTU."""
    dev = HipDevice()
    lib.hip_device_init(ctypes.byref(dev))
    assert (dev.rate_hz, dev.acc_range_g, dev.gyr_range_dps, dev.att_mtu, dev.imu_part) == (208, 8, 1000, 23, 1), \
        "hip_device's layout changed: update the ctypes mirror HipDevice"
    dev.imu_ok = dev.mag_ok = True
    dev.mag_part, dev.att_mtu, dev.device_id[7] = 1, mtu, 0x42
    config = P.decode_config(c_config(lib, ctypes.byref(dev)))
    assert (config.mtu, config.imu_found, config.device_id) == (mtu, True, "0000000000000042")
    if mag:
        assert P.decode_response(c_command(lib, ctypes.byref(dev), P.encode_command(P.Opcode.SET_MAG, 1, enabled=1))).ok
    assert P.decode_response(c_command(lib, ctypes.byref(dev), P.encode_command(P.Opcode.START, 2))).ok
    return dev, P.decode_config(c_config(lib, ctypes.byref(dev)))


def c_stream(lib, dev, t_us, counts, *, skip_polls=()):
    """Push samples into the C FIFO at their times, polling hip_next_packet after
    each push (except at sample indices in ``skip_polls``, to overflow the FIFO);
    flush at the end. Returns the packets."""
    out, packets = (ctypes.c_uint8 * P.PACKET_MAX_SIZE)(), []
    fifo = ctypes.addressof(dev) + HipDevice.fifo.offset
    counts = np.ascontiguousarray(counts, dtype=np.int16)

    def poll(now):
        while size := lib.hip_next_packet(ctypes.byref(dev), now, out, len(out)):
            packets.append(bytes(out[:size]))

    for k in range(len(t_us)):
        lib.hip_fifo_push(fifo, int(t_us[k]), counts[k].ctypes.data, counts.shape[1])
        if k not in skip_polls:
            poll(int(t_us[k]))
    poll(int(t_us[-1]) + P.MAX_PACKET_DELAY_US)
    return packets


@pytest.mark.parametrize("mtu, mag", [(23, False), (29, True), (185, False), (185, True), (247, False), (247, True)])
def test_c_batcher_sends_the_virtual_sensors_packets(clib, mtu, mag):
    """The firmware's FIFO + batcher (hip_next_packet) and the virtual sensor
    batch the same samples into byte-identical packets, across the t0 wrap;
    PacketStream decodes them back."""
    dev, config = c_board(clib, mtu=mtu, mag=mag)
    assert config.mag_enabled == mag and config.rate_hz == 208.0
    rng = np.random.default_rng(mtu)
    n = 700
    t_s = (2**32 - 1_000_000) * 1e-6 + np.arange(n) / 208.0  # the wire's t0 wraps after 1 s
    block = SampleBlock("pelvis", t_s, rng.normal(0, 20, (n, 3)), rng.normal(0, 3, (n, 3)),
                        rng.normal(0, 50, (n, 3)) if mag else None, np.arange(n))
    virtual = V.block_packets(block, config)
    parts = [V.quantize(block.acc_m_s2, config.acc_scale_m_s2), V.quantize(block.gyr_rad_s, config.gyr_scale_rad_s)]
    if mag:
        parts.append(V.quantize(block.mag_ut, config.mag_scale_ut))
    firmware = c_stream(clib, dev, np.rint(t_s * 1e6).astype(np.int64), np.hstack(parts))
    assert firmware == [p.data for p in virtual]
    assert max(p.count for p in virtual) == min(P.samples_per_packet(mtu, mag), 11)  # 50 ms at 208 Hz: 11 samples
    s = P.PacketStream(config, "pelvis")
    events = feed_all(s, firmware)
    assert s.stats.packets == len(firmware) and not of(events, P.Gap)
    got = emitted(events)
    assert np.abs(got.time_s - t_s).max() < 1.5e-6 and got.seq.tolist() == list(range(n))


def test_c_fifo_overflow_reaches_the_host_as_device_drops(clib):
    """The radio stalls: 300 samples arrive unpolled, the 256-sample FIFO (still
    holding the few of an unfinished packet) drops the newest 44 and more; the
    host sees a Gap of exactly the FIFO's count of device-dropped samples, at
    the right place."""
    dev, config = c_board(clib, mtu=247, mag=False)
    n = 800
    t_us = 5_000_000 + np.rint(np.arange(n) * 1e6 / 208).astype(np.int64)
    counts = np.arange(n * 6, dtype=np.int64).reshape(n, 6) % 30000
    packets = c_stream(clib, dev, t_us, counts, skip_polls=set(range(100, 400)))
    s = P.PacketStream(config, "pelvis")
    events = feed_all(s, packets)
    (g,) = of(events, P.Gap)
    dropped = dev.fifo.dropped_total
    assert 45 <= dropped < 45 + 11
    assert (g.lost_packets, g.lost_samples_estimate, g.device_dropped) == (0, 0, dropped)
    got = emitted(events)
    want = [k for k in range(n) if not 401 - dropped <= k <= 400]  # the newest ones (400: pushed before its poll)
    assert got.seq.tolist() == want
    assert np.array_equal(got.acc_m_s2 / config.acc_scale_m_s2, counts[want, :3])
    assert np.abs(got.time_s - t_us[want] * 1e-6).max() < 1.5e-6  # t0 + round(i * period) vs round(k * period)
    assert s.stats.device_dropped == dropped


# ---------------------------------------------------------------------------
# The virtual sensor
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim():
    session, _ = simulate_session("static", seed=3, duration_s=1.0, mag=True)
    return session


def decode_virtual(config, role, packets):
    s = P.PacketStream(config, role)
    events = [e for p in packets if not p.lost for e in s.feed(p.data)]
    return s, events


def test_virtual_sensor_round_trip(sim):
    """Packets of the virtual board decode back to the simulated block within
    quantization, across a t0 wrap and a seq wrap."""
    offset_s = (2**32 - 5_000_000) * 1e-6  # the wire's t0 wraps 5 s in
    for role in sim.roles:
        block = sim.samples[role]
        config = V.config_for_device(sim.devices[role], mtu=185)
        assert config.mag_enabled and config.rate_hz == 200.0
        packets = V.block_packets(block, config, seq_start=200, device_clock_offset_s=offset_s)
        assert [p.seq for p in packets[:3]] == [200, 201, 202] and len(packets) > 300
        s, events = decode_virtual(config, role, packets)
        assert not of(events, P.Gap) and not of(events, P.Malformed)
        got = emitted(events)
        assert len(got) == len(block) and got.seq.tolist() == (block.seq - block.seq[0]).tolist()
        assert got.time_s[-1] > 2**32 * 1e-6
        assert np.abs(got.time_s - (offset_s + block.time_s)).max() < 4e-6  # IMU rate error within a packet
        for name, scale in (("acc_m_s2", config.acc_scale_m_s2), ("gyr_rad_s", config.gyr_scale_rad_s),
                            ("mag_ut", config.mag_scale_ut)):
            x, y = getattr(block, name), getattr(got, name)
            assert np.array_equal(y, V.quantize(x, scale) * scale), name
            inside = np.abs(x) < 32767 * scale
            assert np.all(np.abs(y - x)[inside] <= scale / 2 * (1 + 1e-9)), name


def test_virtual_sensor_batching(sim):
    block = sim.samples["pelvis"]
    period_us = 1e6 / 200
    for mtu in (23, 29, 185, 247):
        for mag in (False, True):
            config = V.board_config("x", rate_hz=200.0, mag=mag, mtu=mtu)
            spp = P.samples_per_packet(mtu, mag)
            if spp == 0:
                with pytest.raises(ValueError, match="MTU 23"):
                    V.block_packets(block, config)
                continue
            packets = V.block_packets(block, config)
            assert all(1 <= p.count <= spp and len(p.data) <= mtu - 3 for p in packets)
            assert sum(p.count for p in packets) == len(block)
            spans = [(block.time_s[p.first + p.count - 1] - block.time_s[p.first]) * 1e6 for p in packets]
            assert max(spans) < P.MAX_PACKET_DELAY_US  # the 50 ms latency bound
            assert min(p.count for p in packets[:-1]) == min(spp, 10)  # 200 Hz: 10 or 11 samples in 50 ms
            sends = [p.send_time_s for p in packets]
            assert all(np.diff(sends) >= 0) and all(
                s >= block.time_s[p.first + p.count - 1] for s, p in zip(sends, packets))
            full = V.block_packets(block, config, max_packet_delay_s=None)
            assert all(p.count == spp for p in full[:-1])


def test_virtual_sensor_packet_loss(sim):
    block = sim.samples["thigh_right"]
    config = V.config_for_device(sim.devices["thigh_right"])
    packets = V.block_packets(block, config, loss=0.1, seed=5)
    lost = [p for p in packets if p.lost]
    assert 0.05 < len(lost) / len(packets) < 0.15
    while packets[-1].lost:
        packets.pop()  # lost at the very end: nobody can tell
    lost = [p for p in packets if p.lost]
    s, events = decode_virtual(config, "thigh_right", packets)
    assert s.stats.lost == len(lost) and s.stats.lost_samples == sum(p.count for p in lost)
    got = emitted(events)
    assert got.seq.tolist() == [i for p in packets if not p.lost for i in range(p.first, p.first + p.count)]


def test_virtual_sensor_device_drops_and_wrapped_seq():
    """Samples missing from block.seq are device drops: the packet ends there,
    the next one says how many."""
    n = 400
    seq = np.arange(n + 300)
    keep = (seq < 100) | ((seq >= 103) & (seq < 200)) | (seq >= 500)  # 3 dropped, then 300 (saturates 255)
    seq = seq[keep]
    t = seq / 208.0 + 1.0
    rng = np.random.default_rng(0)
    block = SampleBlock("pelvis", t, rng.normal(0, 5, (len(t), 3)), rng.normal(0, 1, (len(t), 3)), None, seq)
    config = V.board_config("x", rate_hz=208.0, mtu=247)
    packets = V.block_packets(block, config, seq_start=250)
    assert [p.dropped for p in packets if p.dropped] == [3, 255]
    assert {block.seq[p.first] for p in packets if p.dropped} == {103, 500}
    s, events = decode_virtual(config, "pelvis", packets)
    assert [(g.lost_packets, g.device_dropped) for g in of(events, P.Gap)] == [(0, 3), (0, 300)]
    assert emitted(events).seq.tolist() == seq.tolist()


def test_virtual_sensor_from_a_lossy_simulation():
    session, _ = simulate_session("static", seed=1, duration_s=1.0, loss=0.05)
    block = session.samples["pelvis"]
    assert np.any(np.diff(block.seq) > 1)
    config = V.config_for_device(session.devices["pelvis"])
    s, events = decode_virtual(config, "pelvis", V.block_packets(block, config))
    assert emitted(events).seq.tolist() == (block.seq - 0).tolist()
    assert s.stats.lost == 0 and s.stats.device_dropped == len(np.arange(block.seq[-1] + 1)) - len(block)


def test_virtual_sensor_quantizes_and_saturates():
    t = np.arange(3) / 208.0
    acc = np.array([[1000.0, -1000.0, 0.0012], [0.0, 0.0, -0.0012], [78.4, -78.4, 9.80665]])
    block = SampleBlock("pelvis", t, acc, np.zeros((3, 3)))
    config = V.board_config("x")
    (p,) = V.block_packets(block, config)
    counts = P.decode_packet(p.data).counts
    assert counts[0, :2].tolist() == [32767, -32768]
    assert counts[:, 3:].tolist() == [[0, 0, 0]] * 3
    assert counts[2, 2] == round(9.80665 / config.acc_scale_m_s2)
    assert abs(counts[0, 2]) <= 1 and abs(counts[1, 2]) <= 1


def test_virtual_board_config():
    c = V.board_config("sim-pelvis-0", rate_hz=200.0, mag=True, mtu=185)
    assert re.fullmatch(r"[0-9a-f]{16}", c.device_id) and c.device_id == V.device_id_hex("sim-pelvis-0")
    assert V.device_id_hex("a1b2c3d4e5f60718") == "a1b2c3d4e5f60718"
    assert (c.rate_centihz, c.mag_enabled, c.mtu, c.samples_per_packet) == (20000, True, 185, 9)
    assert P.decode_config(P.encode_config(c)) == c
    assert c.acc_scale_m_s2 == pytest.approx(0.244e-3 * 9.80665, rel=1e-7)
    with pytest.raises(ValueError):
        V.board_config(rate_hz=1000.0)
    with pytest.raises(ValueError):
        V.board_config(acc_range_g=3)
    out = V.session_packets(simulate_session("static", seed=2, duration_s=0.5)[0], mtu=247)
    assert set(out) == {"pelvis", "thigh_left", "thigh_right"}
    assert all(cfg.mtu == 247 and pk for cfg, pk in out.values())
