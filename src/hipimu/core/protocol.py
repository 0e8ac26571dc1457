"""The hipimu sensor protocol, version 1: bytes in, events out (sans-IO).

``firmware/PROTOCOL.md`` is the one definition of the wire format; this module
mirrors it for the host. Nothing here touches a radio, a socket or a file: a
BLE source hands over the bytes it received (and when), and gets back events.

* Constants: GATT UUIDs, :class:`Opcode`, :class:`Status`, sizes, limits.
* Data packets: :func:`encode_packet` / :func:`decode_packet` (:class:`Packet`),
  :func:`samples_per_packet` (the batching rule at an ATT MTU).
* Config characteristic: :class:`DeviceConfig`, :func:`encode_config` /
  :func:`decode_config`.
* Control characteristic: :func:`encode_command` / :func:`decode_command`
  (:class:`Command`), :func:`encode_response` / :func:`decode_response`
  (:class:`Response`).
* :class:`PacketStream`: one device's data notifications -> :class:`Samples`,
  :class:`Gap`, :class:`Duplicate`, :class:`Late`, :class:`Malformed` events,
  with the 32-bit device time unwrapped (:class:`DeviceTimeUnwrapper`).

Two kinds of error, never mixed up:

* the peer sent bytes that are not protocol v1 -> :class:`DecodeError` (a
  :class:`~hipimu.errors.HipimuError`, one line, says what is wrong). The
  stream API never raises it: it counts and reports :class:`Malformed`.
* the caller misused this API (a seq of 300, int16 counts out of range, an
  unknown command argument) -> ``ValueError`` / ``TypeError``: a bug.

Units: device times are microseconds of the device clock (``*_us``, integers)
or seconds (``*_s``); accelerations m/s^2, angular rates rad/s, magnetic field
uT, all in the IMU's own axes (the board's silk-screen axes, the sensor frame).
"""

from __future__ import annotations

import math
import struct
from collections import deque
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Union

import numpy as np

from hipimu.core.model import DeviceInfo, SampleBlock
from hipimu.errors import DecodeError

__all__ = [
    # constants
    "PROTOCOL_VERSION", "SERVICE_UUID", "DATA_CHAR_UUID", "CONTROL_CHAR_UUID", "CONFIG_CHAR_UUID",
    "BATTERY_SERVICE_UUID", "BATTERY_LEVEL_CHAR_UUID", "DEVICE_INFORMATION_SERVICE_UUID",
    "MANUFACTURER_NAME_CHAR_UUID", "MODEL_NUMBER_CHAR_UUID", "SERIAL_NUMBER_CHAR_UUID",
    "FIRMWARE_REVISION_CHAR_UUID", "MANUFACTURER_NAME", "DEVICE_NAME_PREFIX",
    "HEADER_SIZE", "SAMPLE_SIZE_6D", "SAMPLE_SIZE_9D", "AXES_6D", "AXES_9D", "FLAG_MAG", "FLAGS_RESERVED",
    "MAX_SAMPLES_PER_PACKET", "MAX_PACKET_DELAY_S", "MAX_PACKET_DELAY_US", "ATT_HEADER_SIZE",
    "ATT_MTU_MIN", "ATT_MTU_MAX", "ATT_MTU_MIN_9D", "PACKET_MAX_SIZE", "CONFIG_SIZE", "DEVICE_TIME_WRAP_US",
    "DROPPED_MAX", "RESPONSE_FLAG", "RATES_HZ", "ACC_RANGES_G", "GYR_RANGES_DPS", "IDENTIFY_SECONDS_MAX",
    "IMU_PARTS", "MAG_PARTS", "STATUS_IMU_FOUND", "STATUS_MAG_FOUND", "STATUS_CHARGING", "GRAVITY_M_S2",
    "Opcode", "Status", "COMMAND_ARGS", "RESPONSE_PAYLOAD",
    # errors and codecs
    "DecodeError", "CommandError",
    "Packet", "samples_per_packet", "sample_offsets_us", "encode_packet", "decode_packet",
    "DeviceConfig", "encode_config", "decode_config", "advertised_name",
    "Command", "Response", "encode_command", "decode_command", "encode_response", "decode_response",
    # stream
    "DeviceTimeUnwrapper", "PacketStream", "StreamStats",
    "Samples", "Gap", "Duplicate", "Late", "Malformed", "StreamEvent",
]

# ---------------------------------------------------------------------------
# Constants (PROTOCOL.md; names follow firmware/core/include/hipimu_core.h)
# ---------------------------------------------------------------------------

PROTOCOL_VERSION = 1

SERVICE_UUID = "7e1a0001-5c6b-4e8f-9a2d-3b4c5d6e7f80"
DATA_CHAR_UUID = "7e1a0002-5c6b-4e8f-9a2d-3b4c5d6e7f80"  #: notify
CONTROL_CHAR_UUID = "7e1a0003-5c6b-4e8f-9a2d-3b4c5d6e7f80"  #: write with response + notify
CONFIG_CHAR_UUID = "7e1a0004-5c6b-4e8f-9a2d-3b4c5d6e7f80"  #: read


def _sig_uuid(short: int) -> str:
    return f"0000{short:04x}-0000-1000-8000-00805f9b34fb"


BATTERY_SERVICE_UUID = _sig_uuid(0x180F)
BATTERY_LEVEL_CHAR_UUID = _sig_uuid(0x2A19)  #: read + notify, percent
DEVICE_INFORMATION_SERVICE_UUID = _sig_uuid(0x180A)
MANUFACTURER_NAME_CHAR_UUID = _sig_uuid(0x2A29)
MODEL_NUMBER_CHAR_UUID = _sig_uuid(0x2A24)
SERIAL_NUMBER_CHAR_UUID = _sig_uuid(0x2A25)  #: the device id
FIRMWARE_REVISION_CHAR_UUID = _sig_uuid(0x2A26)
MANUFACTURER_NAME = "hipimu"
DEVICE_NAME_PREFIX = "hipimu-"

HEADER_SIZE = 8
AXES_6D = 6
AXES_9D = 9
SAMPLE_SIZE_6D = 2 * AXES_6D  #: bytes: ax ay az gx gy gz, int16
SAMPLE_SIZE_9D = 2 * AXES_9D  #: bytes: + mx my mz
FLAG_MAG = 0x01  #: version_flags bit 0: samples carry a magnetometer triplet
FLAGS_RESERVED = 0x0E  #: version_flags bits 3-1: must be 0
MAX_SAMPLES_PER_PACKET = 32
MAX_PACKET_DELAY_US = 50_000
MAX_PACKET_DELAY_S = MAX_PACKET_DELAY_US * 1e-6  #: a packet leaves at most this long after its first sample
ATT_HEADER_SIZE = 3  #: notification payload = ATT_MTU - 3
ATT_MTU_MIN = 23
ATT_MTU_MAX = 247
ATT_MTU_MIN_9D = 29  #: the smallest MTU a 9D sample fits
PACKET_MAX_SIZE = ATT_MTU_MAX - ATT_HEADER_SIZE  #: largest notification payload, bytes
CONFIG_SIZE = 40
DEVICE_TIME_WRAP_US = 1 << 32  #: the wire's t0_us wraps every 2^32 us = 71 min 35 s
DROPPED_MAX = 255  #: the dropped field saturates here
RESPONSE_FLAG = 0x80  #: response opcode = 0x80 | request opcode

RATES_HZ = (52, 104, 208)
ACC_RANGES_G = (2, 4, 8, 16)
GYR_RANGES_DPS = (125, 250, 500, 1000, 2000)
IDENTIFY_SECONDS_MAX = 30  #: IDENTIFY takes 1..30 s
IMU_PARTS = {1: "LSM6DS3TR-C", 2: "LSM6DSOX", 3: "BMI270", 4: "LSM6DS33"}
MAG_PARTS = {0: "", 1: "LIS3MDL", 2: "LIS2MDL", 3: "BMM150"}
STATUS_IMU_FOUND = 0x01  #: config status_flags bits
STATUS_MAG_FOUND = 0x02
STATUS_CHARGING = 0x04
GRAVITY_M_S2 = 9.80665  #: standard gravity, the "g" of acc_range_g


class Opcode(IntEnum):
    """Control-characteristic request opcodes."""

    START = 0x01
    STOP = 0x02
    SET_RATE = 0x03
    SET_RANGES = 0x04
    IDENTIFY = 0x05
    TIME_SYNC = 0x06
    RESET_DROPPED = 0x07
    SET_MAG = 0x08


class Status(IntEnum):
    """Response status codes."""

    OK = 0
    ERR_UNKNOWN_OPCODE = 1
    ERR_BAD_LENGTH = 2
    ERR_BAD_VALUE = 3
    ERR_BUSY = 4
    ERR_MTU_TOO_SMALL = 5
    ERR_NO_SENSOR = 6


_OPCODES = frozenset(int(o) for o in Opcode)

#: Request arguments per opcode: (name, struct code), in wire order.
COMMAND_ARGS: dict[Opcode, tuple[tuple[str, str], ...]] = {
    Opcode.START: (),
    Opcode.STOP: (),
    Opcode.SET_RATE: (("rate_hz", "H"),),
    Opcode.SET_RANGES: (("acc_range_g", "B"), ("gyr_range_dps", "H")),
    Opcode.IDENTIFY: (("seconds", "B"),),
    Opcode.TIME_SYNC: (("host_nonce", "I"),),
    Opcode.RESET_DROPPED: (),
    Opcode.SET_MAG: (("enabled", "B"),),
}
#: Payload of an OK response per opcode (error responses carry none).
RESPONSE_PAYLOAD: dict[Opcode, tuple[tuple[str, str], ...]] = {
    Opcode.TIME_SYNC: (("host_nonce", "I"), ("device_time_us", "I")),
    Opcode.RESET_DROPPED: (("dropped_total", "I"),),
}


class CommandError(DecodeError):
    """A control request the device must refuse; ``status`` is the error to answer with,
    ``opcode`` and ``token`` what the response carries (PROTOCOL.md, Commands)."""

    def __init__(self, message: str, status: Status, opcode: int, token: int):
        super().__init__(message)
        self.status = status
        self.opcode = opcode
        self.token = token


def _check_uint(name: str, value: Any, bits: int) -> int:
    if not isinstance(value, (int, np.integer)):  # bool is an int: True -> 1
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    value = int(value)
    if not 0 <= value < (1 << bits):
        raise ValueError(f"{name} must be in [0, {(1 << bits) - 1}], got {value}")
    return value


def _as_bytes(data: Any) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    return bytes(data)


# ---------------------------------------------------------------------------
# Data packets
# ---------------------------------------------------------------------------


def samples_per_packet(att_mtu: int, with_mag: bool) -> int:
    """Samples the firmware puts into one packet at this ATT MTU (0: none fit).

    As many ``12``- (6D) or ``18``-byte (9D) samples as fit ``att_mtu - 3 - 8``
    bytes, at most :data:`MAX_SAMPLES_PER_PACKET`; mirrors ``hip_samples_per_packet``:
    an MTU under 23 does not exist (0), one over 247 counts as 247 (the
    largest packet the firmware builds, :data:`PACKET_MAX_SIZE`).
    """
    att_mtu = _check_uint("att_mtu", att_mtu, 16)
    if att_mtu < ATT_MTU_MIN:
        return 0
    size = SAMPLE_SIZE_9D if with_mag else SAMPLE_SIZE_6D
    room = min(att_mtu, ATT_MTU_MAX) - ATT_HEADER_SIZE - HEADER_SIZE
    return min(MAX_SAMPLES_PER_PACKET, room // size)


def sample_offsets_us(n: int, rate_centihz: int) -> np.ndarray:
    """(n,) int64: ``round(i * 1e6 / rate_hz)`` us for i = 0..n-1, ``rate_hz = rate_centihz / 100``.

    Exact integer arithmetic, halves rounded up (PROTOCOL.md leaves ties open;
    they occur only at rates like 128 Hz, never at 52/104/208 Hz).
    """
    if rate_centihz <= 0:
        raise ValueError(f"rate_centihz must be positive, got {rate_centihz}")
    i = np.arange(n, dtype=np.int64)
    return (2 * i * 100_000_000 + rate_centihz) // (2 * rate_centihz)


@dataclass(frozen=True, eq=False)
class Packet:
    """One decoded data packet, as on the wire.

    ``seq``: packet number mod 256; ``dropped``: samples the device dropped just
    before this packet's first sample (saturates at 255); ``t0_us``: device time
    of the first sample, low 32 bits, us; ``counts``: (count, 6 or 9) int16 raw
    IMU counts ``ax ay az gx gy gz [mx my mz]`` in the IMU's axes (read-only).
    """

    seq: int
    dropped: int
    t0_us: int
    counts: np.ndarray

    @property
    def count(self) -> int:
        return int(self.counts.shape[0])

    @property
    def with_mag(self) -> bool:
        return self.counts.shape[1] == AXES_9D


def encode_packet(seq: int, dropped: int, t0_us: int, counts_int16: Any) -> bytes:
    """The bytes of one data packet (mirror of the C ``hip_encode_packet``).

    ``counts_int16``: (n, 6) or (n, 9) integers within int16, 1 <= n <= 32;
    9 columns set the magnetometer flag. ``t0_us`` is the low 32 bits of the
    device time of the first sample. Raises ValueError/TypeError on misuse
    (the C encoder returns 0 instead). Fitting an MTU is the caller's business
    (:func:`samples_per_packet`).
    """
    seq = _check_uint("seq", seq, 8)
    dropped = _check_uint("dropped", dropped, 8)
    t0_us = _check_uint("t0_us", t0_us, 32)
    counts = np.asarray(counts_int16)
    if counts.ndim != 2 or counts.shape[1] not in (AXES_6D, AXES_9D):
        raise ValueError(f"counts must have shape (n, 6) or (n, 9), got {counts.shape}")
    n = counts.shape[0]
    if not 1 <= n <= MAX_SAMPLES_PER_PACKET:
        raise ValueError(f"a packet holds 1 to {MAX_SAMPLES_PER_PACKET} samples, got {n}")
    if counts.dtype != np.int16:
        if not np.issubdtype(counts.dtype, np.integer):
            raise TypeError(f"counts must be integers, got dtype {counts.dtype}")
        if counts.min() < -32768 or counts.max() > 32767:
            raise ValueError("counts must fit int16 (quantize and saturate first)")
    flags = (PROTOCOL_VERSION << 4) | (FLAG_MAG if counts.shape[1] == AXES_9D else 0)
    header = struct.pack("<BBBBI", flags, n, seq, dropped, t0_us)
    return header + counts.astype("<i2").tobytes()


def _parse_header(data: bytes) -> tuple[bool, int]:
    """(with_mag, count) of a header, or DecodeError for version/flags/count."""
    flags, count = data[0], data[1]
    version = flags >> 4
    if version != PROTOCOL_VERSION:
        raise DecodeError(f"data packet: protocol version {version}, this host speaks {PROTOCOL_VERSION}")
    if flags & FLAGS_RESERVED:
        raise DecodeError(f"data packet: reserved flag bits set (version_flags 0x{flags:02x})")
    if count == 0:
        raise DecodeError("data packet: count 0 (a packet carries at least one sample)")
    return bool(flags & FLAG_MAG), count


def decode_packet(data: bytes | bytearray | memoryview) -> Packet:
    """Decode one data notification. Raises :class:`DecodeError` if it is malformed:
    shorter than the header, version other than 1, reserved bits set, count 0, or
    a length other than ``8 + count * (12 | 18)``."""
    data = _as_bytes(data)
    if len(data) < HEADER_SIZE:
        raise DecodeError(f"data packet: {len(data)} bytes, shorter than the {HEADER_SIZE}-byte header")
    with_mag, count = _parse_header(data)
    size = SAMPLE_SIZE_9D if with_mag else SAMPLE_SIZE_6D
    expected = HEADER_SIZE + count * size
    if len(data) != expected:
        raise DecodeError(f"data packet: {len(data)} bytes, expected {HEADER_SIZE} + {count} x {size} = {expected}")
    _, _, seq, dropped, t0_us = struct.unpack_from("<BBBBI", data)
    counts = np.frombuffer(data, dtype="<i2", offset=HEADER_SIZE).reshape(count, size // 2).astype(np.int16)
    counts.flags.writeable = False
    return Packet(seq, dropped, t0_us, counts)


# ---------------------------------------------------------------------------
# Config characteristic
# ---------------------------------------------------------------------------

_CONFIG = struct.Struct("<B3B8sBBHBBHfffHBBI")
assert _CONFIG.size == CONFIG_SIZE


_F32_MAX = float(np.finfo(np.float32).max)


def _f32(x: float) -> float:
    return float(np.float32(x))


@dataclass(frozen=True)
class DeviceConfig:
    """The config characteristic (40 bytes): what a board is and how it samples.

    Defaults are the firmware's after power-up (``hip_device_init``): 208 Hz,
    +-8 g, +-1000 dps, no magnetometer, MTU 23, idle, with the LSM6DS3TR-C
    scales. Scales are float32 on the wire: m/s^2, rad/s and uT per count.
    ``device_id``: 16 lowercase hex digits, most significant first.
    """

    protocol_version: int = PROTOCOL_VERSION
    firmware_version: tuple[int, int, int] = (0, 0, 0)
    device_id: str = "0000000000000000"
    imu_part: int = 1
    mag_part: int = 0
    rate_centihz: int = 20800
    acc_range_g: int = 8
    mag_enabled: bool = False
    gyr_range_dps: int = 1000
    acc_scale_m_s2: float = _f32(0.244e-3 * GRAVITY_M_S2)
    gyr_scale_rad_s: float = _f32(35e-3 * math.pi / 180.0)
    mag_scale_ut: float = 0.0
    mtu: int = ATT_MTU_MIN
    streaming: bool = False
    battery_percent: int = 0
    status_flags: int = 0

    def __post_init__(self) -> None:
        for name, bits in (("protocol_version", 8), ("imu_part", 8), ("mag_part", 8), ("rate_centihz", 16),
                           ("acc_range_g", 8), ("gyr_range_dps", 16), ("mtu", 16), ("battery_percent", 8),
                           ("status_flags", 32)):
            _check_uint(name, getattr(self, name), bits)
        fw = tuple(self.firmware_version)
        if len(fw) != 3:
            raise ValueError(f"firmware_version must be (major, minor, patch), got {self.firmware_version!r}")
        for x in fw:
            _check_uint("firmware_version", x, 8)
        object.__setattr__(self, "firmware_version", tuple(int(x) for x in fw))
        if not (isinstance(self.device_id, str) and len(self.device_id) == 16
                and all(c in "0123456789abcdef" for c in self.device_id)):
            raise ValueError(f"device_id must be 16 lowercase hex digits, got {self.device_id!r}")
        if self.rate_centihz == 0:
            raise ValueError("rate_centihz must be positive")
        for name in ("acc_scale_m_s2", "gyr_scale_rad_s", "mag_scale_ut"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and 0 <= v <= _F32_MAX):
                raise ValueError(f"{name} must be a finite float32 >= 0, got {v!r}")
            object.__setattr__(self, name, _f32(v))  # what the wire holds
        if self.acc_scale_m_s2 <= 0 or self.gyr_scale_rad_s <= 0:
            raise ValueError("acc_scale_m_s2 and gyr_scale_rad_s must be positive")
        if self.mag_enabled and self.mag_scale_ut <= 0:
            raise ValueError("mag_scale_ut must be positive when mag_enabled")
        object.__setattr__(self, "mag_enabled", bool(self.mag_enabled))
        object.__setattr__(self, "streaming", bool(self.streaming))

    @property
    def rate_hz(self) -> float:
        """Sampling rate, Hz."""
        return self.rate_centihz / 100.0

    @property
    def axes(self) -> int:
        return AXES_9D if self.mag_enabled else AXES_6D

    @property
    def samples_per_packet(self) -> int:
        """Samples per full packet at this config's MTU."""
        return samples_per_packet(self.mtu, self.mag_enabled)

    @property
    def firmware(self) -> str:
        return ".".join(str(x) for x in self.firmware_version)

    @property
    def imu_name(self) -> str:
        return IMU_PARTS.get(self.imu_part, f"unknown IMU part {self.imu_part}")

    @property
    def mag_name(self) -> str:
        return MAG_PARTS.get(self.mag_part, f"unknown magnetometer part {self.mag_part}")

    @property
    def imu_found(self) -> bool:
        return bool(self.status_flags & STATUS_IMU_FOUND)

    @property
    def mag_found(self) -> bool:
        return bool(self.status_flags & STATUS_MAG_FOUND)

    @property
    def charging(self) -> bool:
        return bool(self.status_flags & STATUS_CHARGING)

    def to_device_info(self, role: str) -> DeviceInfo:
        """The :class:`~hipimu.core.model.DeviceInfo` of this board worn as ``role``.

        Ranges: acc ``acc_range_g * 9.80665`` m/s^2, gyr ``gyr_range_dps`` in
        rad/s, mag ``32768 * mag_scale_ut`` uT (None without mag). The raw
        config fields go to ``extra``.
        """
        extra = {
            "protocol_version": self.protocol_version,
            "imu_part": self.imu_part,
            "mag_part": self.mag_part,
            "rate_centihz": self.rate_centihz,
            "acc_range_g": self.acc_range_g,
            "gyr_range_dps": self.gyr_range_dps,
            "acc_scale_m_s2": self.acc_scale_m_s2,
            "gyr_scale_rad_s": self.gyr_scale_rad_s,
            "mag_scale_ut": self.mag_scale_ut,
            "magnetometer": self.mag_name,
            "mtu": self.mtu,
            "battery_percent": self.battery_percent,
            "status_flags": self.status_flags,
        }
        return DeviceInfo(
            device_id=self.device_id,
            role=role,
            rate_hz=self.rate_hz,
            firmware=self.firmware,
            imu=self.imu_name,
            acc_range_m_s2=self.acc_range_g * GRAVITY_M_S2,
            gyr_range_rad_s=math.radians(self.gyr_range_dps),
            mag_range_ut=32768 * self.mag_scale_ut if self.mag_enabled else None,
            has_mag=self.mag_enabled,
            extra=extra,
        )


def advertised_name(device_id: str) -> str:
    """The complete local name a board advertises: ``hipimu-`` + the last 4 hex
    digits of its device id (lowercase, as the id is written)."""
    return DEVICE_NAME_PREFIX + device_id[-4:]


def encode_config(config: DeviceConfig) -> bytes:
    """The 40 bytes of the config characteristic (scales rounded to float32)."""
    c = config
    return _CONFIG.pack(
        c.protocol_version, *c.firmware_version, bytes.fromhex(c.device_id), c.imu_part, c.mag_part,
        c.rate_centihz, c.acc_range_g, int(c.mag_enabled), c.gyr_range_dps,
        c.acc_scale_m_s2, c.gyr_scale_rad_s, c.mag_scale_ut, c.mtu, int(c.streaming), c.battery_percent,
        c.status_flags,
    )


def decode_config(data: bytes | bytearray | memoryview) -> DeviceConfig:
    """Decode the config characteristic. Raises :class:`DecodeError` on a length
    other than 40, a protocol version other than 1, a zero rate, flags other
    than 0/1, or scales that are not finite positive numbers (zero mag scale
    allowed without mag). Unknown part numbers and ranges are kept as they are."""
    data = _as_bytes(data)
    if len(data) != CONFIG_SIZE:
        raise DecodeError(f"config: {len(data)} bytes, expected {CONFIG_SIZE}")
    (version, fw0, fw1, fw2, dev, imu, mag, rate, acc_g, mag_on, gyr_dps,
     acc_s, gyr_s, mag_s, mtu, streaming, battery, status) = _CONFIG.unpack(data)
    if version != PROTOCOL_VERSION:
        raise DecodeError(f"config: protocol version {version}, this host speaks {PROTOCOL_VERSION}")
    if rate == 0:
        raise DecodeError("config: sampling rate 0")
    if mag_on not in (0, 1) or streaming not in (0, 1):
        raise DecodeError(f"config: mag_enabled {mag_on} / streaming {streaming}, expected 0 or 1")
    for name, v in (("acc_scale", acc_s), ("gyr_scale", gyr_s)):
        if not (math.isfinite(v) and v > 0):
            raise DecodeError(f"config: {name} {v!r} is not a positive number")
    if not (math.isfinite(mag_s) and mag_s >= 0) or (mag_on and mag_s == 0):
        raise DecodeError(f"config: mag_scale {mag_s!r} is not a {'positive' if mag_on else 'non-negative'} number")
    return DeviceConfig(
        protocol_version=version, firmware_version=(fw0, fw1, fw2), device_id=dev.hex(), imu_part=imu,
        mag_part=mag, rate_centihz=rate, acc_range_g=acc_g, mag_enabled=bool(mag_on), gyr_range_dps=gyr_dps,
        acc_scale_m_s2=acc_s, gyr_scale_rad_s=gyr_s, mag_scale_ut=mag_s, mtu=mtu, streaming=bool(streaming),
        battery_percent=battery, status_flags=status,
    )


# ---------------------------------------------------------------------------
# Control characteristic: requests and responses
# ---------------------------------------------------------------------------


def _fields_format(fields: tuple[tuple[str, str], ...]) -> str:
    return "<" + "".join(code for _, code in fields)


def _pack_fields(what: str, fields: tuple[tuple[str, str], ...], values: dict[str, Any]) -> bytes:
    names = [n for n, _ in fields]
    if set(values) != set(names):
        raise TypeError(f"{what} takes {names or 'no arguments'}, got {sorted(values)}")
    bits = {"B": 8, "H": 16, "I": 32}
    return struct.pack(_fields_format(fields), *(_check_uint(n, values[n], bits[c]) for n, c in fields))


def _opcode(opcode: Any) -> Opcode:
    try:
        return Opcode(opcode)
    except ValueError:
        raise ValueError(f"unknown opcode {opcode!r}") from None


@dataclass(frozen=True)
class Command:
    """A decoded control request: ``opcode``, ``token`` (echoed), ``args`` by name."""

    opcode: Opcode
    token: int
    args: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Response:
    """A decoded control response.

    ``opcode``: the request's opcode (response byte without bit 7); ``token``:
    the request's token; ``status``; ``payload`` by name: TIME_SYNC
    ``host_nonce`` and ``device_time_us`` (low 32 bits of the device time when
    the request was handled, us), RESET_DROPPED ``dropped_total``.
    """

    opcode: int
    token: int
    status: Status
    payload: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == Status.OK

    @property
    def status_name(self) -> str:
        return self.status.name

    @property
    def host_nonce(self) -> int | None:
        return self.payload.get("host_nonce")

    @property
    def device_time_us(self) -> int | None:
        return self.payload.get("device_time_us")

    @property
    def dropped_total(self) -> int | None:
        return self.payload.get("dropped_total")


def encode_command(opcode: Opcode | int, token: int, **args: int) -> bytes:
    """A control request: ``opcode, token, arguments`` (see :data:`COMMAND_ARGS`), e.g.
    ``encode_command(Opcode.SET_RANGES, 7, acc_range_g=8, gyr_range_dps=1000)``.

    Checks only that each argument fits its field; whether the device accepts
    the value (``ERR_BAD_VALUE``) is the device's call.
    """
    op = _opcode(opcode)
    token = _check_uint("token", token, 8)
    return bytes((op, token)) + _pack_fields(op.name, COMMAND_ARGS[op], args)


def decode_command(data: bytes | bytearray | memoryview) -> Command:
    """Decode a control request (the device's side, for a simulated board).

    Raises :class:`CommandError` carrying the status, opcode and token the
    device answers with: an empty write -> ``ERR_BAD_LENGTH`` (opcode 0, token
    0); an unknown opcode -> ``ERR_UNKNOWN_OPCODE`` (checked first); a wrong
    length -> ``ERR_BAD_LENGTH``. Argument values are not checked here.
    """
    data = _as_bytes(data)
    if not data:
        raise CommandError("command: empty write", Status.ERR_BAD_LENGTH, 0, 0)
    token = data[1] if len(data) > 1 else 0
    try:
        op = Opcode(data[0])
    except ValueError:
        raise CommandError(f"command: unknown opcode 0x{data[0]:02x}", Status.ERR_UNKNOWN_OPCODE, data[0], token) from None
    fields = COMMAND_ARGS[op]
    fmt = _fields_format(fields)
    expected = 2 + struct.calcsize(fmt)
    if len(data) != expected:
        raise CommandError(f"command {op.name}: {len(data)} bytes, expected {expected}", Status.ERR_BAD_LENGTH, op, token)
    values = struct.unpack_from(fmt, data, 2)
    return Command(op, token, {n: v for (n, _), v in zip(fields, values)})


def encode_response(opcode: int, token: int, status: Status | int, **payload: int) -> bytes:
    """A control response (the device's side): ``0x80 | opcode, token, status, payload``.

    ``opcode`` is the request's opcode byte (any value: unknown opcodes are
    answered too). An OK response to TIME_SYNC / RESET_DROPPED takes its
    payload (:data:`RESPONSE_PAYLOAD`); every other response takes none.
    """
    opcode = _check_uint("opcode", opcode, 8)
    token = _check_uint("token", token, 8)
    status = Status(status)
    fields = RESPONSE_PAYLOAD.get(Opcode(opcode), ()) if opcode in _OPCODES and status == Status.OK else ()
    return bytes((RESPONSE_FLAG | opcode, token, status)) + _pack_fields("response", fields, payload)


def decode_response(data: bytes | bytearray | memoryview) -> Response:
    """Decode a control response. Raises :class:`DecodeError` if bit 7 of the
    opcode is clear, it is shorter than 3 bytes, the status is unknown, a
    non-error response names an unknown opcode, or the payload length is not
    the one its opcode and status call for."""
    data = _as_bytes(data)
    if len(data) < 3:
        raise DecodeError(f"response: {len(data)} bytes, shorter than opcode, token, status")
    if not data[0] & RESPONSE_FLAG:
        raise DecodeError(f"response: opcode byte 0x{data[0]:02x} lacks the response bit 0x80")
    opcode, token = data[0] & 0x7F, data[1]
    try:
        status = Status(data[2])
    except ValueError:
        raise DecodeError(f"response: unknown status {data[2]}") from None
    known = opcode in _OPCODES
    empty_write = opcode == 0 and status == Status.ERR_BAD_LENGTH
    if not known and status != Status.ERR_UNKNOWN_OPCODE and not empty_write:
        raise DecodeError(f"response: unknown opcode 0x{opcode:02x} with status {status.name}")
    fields = RESPONSE_PAYLOAD.get(Opcode(opcode), ()) if known and status == Status.OK else ()
    fmt = _fields_format(fields)
    if len(data) != 3 + struct.calcsize(fmt):
        name = Opcode(opcode).name if known else f"0x{opcode:02x}"
        raise DecodeError(f"response to {name} ({status.name}): {len(data) - 3} payload bytes, "
                          f"expected {struct.calcsize(fmt)}")
    values = struct.unpack_from(fmt, data, 3)
    return Response(opcode, token, status, {n: v for (n, _), v in zip(fields, values)})


# ---------------------------------------------------------------------------
# The stream: one device's notifications -> events
# ---------------------------------------------------------------------------


class DeviceTimeUnwrapper:
    """The wire's 32-bit device times (us) -> one monotonic 64-bit device clock.

    The first value is taken as is (device time mod 2^32); each later one is
    placed within +-2^31 us (+-35.8 min) of the newest seen so far. Use the
    stream's instance (:attr:`PacketStream.clock`) for TIME_SYNC replies too,
    so that they share the stream's time base.
    """

    def __init__(self) -> None:
        self.newest_us: int | None = None

    def unwrap(self, t32_us: int, *, update: bool = True) -> int:
        """The 64-bit device time (us) of a wire time ``t32_us``; ``update``:
        advance the reference if it is the newest so far."""
        t32_us = _check_uint("t32_us", t32_us, 32)
        if self.newest_us is None:
            value = t32_us
        else:
            half = DEVICE_TIME_WRAP_US // 2
            delta = (t32_us - self.newest_us + half) % DEVICE_TIME_WRAP_US - half
            value = self.newest_us + delta
        if update and (self.newest_us is None or value > self.newest_us):
            self.newest_us = value
        return value


@dataclass(frozen=True, eq=False)
class Samples:
    """A packet's samples. ``block.time_s``: device time, s (unwrapped;
    sample i at ``t0 + round(i * 1e6 / rate_hz)`` us); ``block.seq``: the
    running sample counter of this stream (counts lost and dropped samples,
    estimated across gaps); values in SI units, sensor frame."""

    block: SampleBlock
    packet_seq: int
    dropped: int
    arrival_time_s: float | None = None


@dataclass(frozen=True)
class Gap:
    """Samples missing just before the next :class:`Samples` event.

    ``lost_packets``: packets that never arrived (seq and time); estimated
    ``lost_samples_estimate`` they held; ``device_dropped``: samples the
    device itself dropped (its FIFO was full; the packet's ``dropped`` field,
    extended from the time gap when it saturates); ``start_s``/``end_s``:
    device time, s, of the first missing sample and of the next received one.
    """

    lost_packets: int
    lost_samples_estimate: int
    device_dropped: int
    start_s: float
    end_s: float
    arrival_time_s: float | None = None


@dataclass(frozen=True)
class Duplicate:
    """A packet that was already emitted (same seq and t0) arrived again; ignored."""

    seq: int
    t0_s: float
    arrival_time_s: float | None = None


@dataclass(frozen=True)
class Late:
    """A packet older than samples already emitted arrived; not emitted (the
    stream never goes back in time). Its samples were counted as lost."""

    seq: int
    t0_s: float
    n_samples: int
    arrival_time_s: float | None = None


@dataclass(frozen=True)
class Malformed:
    """Bytes that are not a valid packet of this stream; ``reason`` one line."""

    reason: str
    data: bytes = b""
    arrival_time_s: float | None = None


StreamEvent = Union[Samples, Gap, Duplicate, Late, Malformed]


@dataclass
class StreamStats:
    """Counters of a :class:`PacketStream` since it was made."""

    packets: int = 0  #: packets emitted as Samples
    samples: int = 0  #: samples emitted
    lost: int = 0  #: packets lost (estimated when seq wrapped during a gap)
    lost_samples: int = 0  #: samples in lost packets (estimated from the time gap)
    duplicates: int = 0
    late: int = 0
    malformed: int = 0  #: malformed packets (or skipped byte runs in bytes framing)
    device_dropped: int = 0  #: samples the device dropped
    gaps: int = 0  #: Gap events
    seq_resets: int = 0  #: seq jumped while time ran on (RESET_DROPPED)
    bytes: int = 0  #: bytes fed


_RECENT_PACKETS = 512  # memory for duplicate detection


class PacketStream:
    """Sans-IO decoder of one device's data notifications.

    ``feed(data, arrival_time_s)`` returns the events the bytes complete.
    ``framing="packet"`` (BLE): each ``feed`` is one whole notification.
    ``framing="bytes"``: packets back to back in arbitrary chunks (a capture
    file, a serial link), re-framed by each header's count; a byte run that
    does not start a plausible header is skipped and reported once as
    :class:`Malformed` when the next header is found (or at :meth:`close`).

    Ordering: events come in device-time order; a packet older than what was
    already emitted is a :class:`Duplicate` (seen before) or :class:`Late`
    (never emitted). A forward jump in time makes a :class:`Gap`: the missing
    sample count comes from the time gap (``t0 - expected t0``, rounded to
    sample periods), the device's part from ``dropped`` (or from the time gap
    when ``dropped`` saturated at 255), the lost packets from seq modulo 256,
    the multiple of 256 chosen from the time gap and the recent packet sizes
    (:meth:`_lost_packets`). A seq jump without a time gap is a seq reset
    (RESET_DROPPED), not a loss. Sample times are device times (s): map them
    to host time with TIME_SYNC replies unwrapped by :attr:`clock`.

    Limits: a gap (or a bogus forward jump of ``t0``) over 2^31 us (35.8 min)
    cannot be told from a late packet, since the wire's device time is 32
    bits; after such a jump packets are Late until the device time passes
    it. Call :meth:`restart` after STOP/START; make a new stream after a
    reconnection or a device reboot.

    Malformed input never raises; API misuse (feeding a str) does.
    """

    def __init__(self, config: DeviceConfig, role: str, *, framing: str = "packet") -> None:
        if framing not in ("packet", "bytes"):
            raise ValueError(f"framing must be 'packet' or 'bytes', got {framing!r}")
        SampleBlock.empty(role)  # validates the role (UnknownRoleError)
        self.config = config
        self.role = role
        self.framing = framing
        self.clock = DeviceTimeUnwrapper()
        self.stats = StreamStats()
        self._with_mag = config.mag_enabled
        self._sample_size = SAMPLE_SIZE_9D if self._with_mag else SAMPLE_SIZE_6D
        self._period_us = 1e8 / config.rate_centihz
        self._offsets_us = sample_offsets_us(256, config.rate_centihz)
        self._spp_bound = max(1, config.samples_per_packet)
        self._buf = bytearray()
        self._garbage = bytearray()
        self._recent: deque[tuple[int, int]] = deque()
        self._recent_set: set[tuple[int, int]] = set()
        self._emitted_until_us: int | None = None  # device time of the last emitted sample
        self._recent_counts: deque[int] = deque(maxlen=16)  # samples per packet lately
        self._next_index = 0
        self.restart()

    def restart(self) -> None:
        """Forget packet continuity (after STOP/START: seq restarts at 0 and the
        time gap since the last packet is no loss). Keeps the clock, the stats and
        the rule that nothing older than already emitted samples is emitted."""
        self._last_seq: int | None = None
        self._next_t_us: int | None = None  # expected device time of the next sample

    # -- feeding -----------------------------------------------------------

    def feed(self, data: bytes | bytearray | memoryview, arrival_time_s: float | None = None) -> list[StreamEvent]:
        """Decode ``data`` (see ``framing``), received at host time ``arrival_time_s``
        (s, any clock; copied into the events). Never raises on bad bytes."""
        data = _as_bytes(data)
        self.stats.bytes += len(data)
        out: list[StreamEvent] = []
        if self.framing == "packet":
            self._packet(data, arrival_time_s, out)
        else:
            self._buf += data
            self._reframe(arrival_time_s, out)
        return out

    def close(self, arrival_time_s: float | None = None) -> list[StreamEvent]:
        """End of input (bytes framing): report skipped or incomplete trailing bytes."""
        out: list[StreamEvent] = []
        rest = bytes(self._garbage + self._buf)
        self._garbage.clear()
        self._buf.clear()
        if rest:
            self._malformed(f"{len(rest)} trailing bytes are not a whole packet", rest, arrival_time_s, out)
        return out

    def _reframe(self, arrival_time_s: float | None, out: list[StreamEvent]) -> None:
        """Cut whole packets off the buffer. A plausible header is this stream's
        version_flags byte followed by a count of 1..32; anything else is skipped."""
        buf = self._buf
        flags = PROTOCOL_VERSION << 4 | (FLAG_MAG if self._with_mag else 0)
        while len(buf) >= 2:
            if not (buf[0] == flags and 1 <= buf[1] <= MAX_SAMPLES_PER_PACKET):
                i = buf.find(flags, 1)
                while 0 <= i < len(buf) - 1 and not 1 <= buf[i + 1] <= MAX_SAMPLES_PER_PACKET:
                    i = buf.find(flags, i + 1)
                cut = len(buf) if i < 0 else i  # i == len - 1: a flags byte waiting for its count
                self._garbage += buf[:cut]
                del buf[:cut]
                continue
            if self._garbage:
                skipped = bytes(self._garbage)
                self._garbage.clear()
                self._malformed(f"skipped {len(skipped)} bytes that do not start a packet", skipped, arrival_time_s, out)
            length = HEADER_SIZE + buf[1] * self._sample_size
            if len(buf) < length:
                return
            packet = bytes(buf[:length])
            del buf[:length]
            self._packet(packet, arrival_time_s, out)

    # -- one packet ----------------------------------------------------------

    def _lost_packets(self, k: int, lost_samples: int) -> int:
        """Packets lost in a gap of ``lost_samples`` samples, seq advanced by ``k + 1``.

        Each packet holds 1 to ``spp_bound`` samples, so the count lies in
        ``[ceil(lost / spp_bound), lost]`` and is ``k`` modulo 256: of those
        candidates, the one nearest ``lost / (mean samples per recent packet)``.
        Nothing fits (seq was reset too): the smallest possible count.
        """
        low = -(-lost_samples // self._spp_bound)
        if k > lost_samples:
            self.stats.seq_resets += 1
            return low
        typical = sum(self._recent_counts) / len(self._recent_counts) if self._recent_counts else self._spp_bound
        guess = lost_samples / typical
        first = k + 256 * max(0, -(-(low - k) // 256))  # smallest candidate >= low
        if first > lost_samples:
            return k
        j = max(0, round((guess - first) / 256))
        best = first + 256 * j
        while best > lost_samples:
            best -= 256
        return max(best, first)

    def _malformed(self, reason: str, data: bytes, arrival_time_s: float | None, out: list[StreamEvent]) -> None:
        self.stats.malformed += 1
        out.append(Malformed(reason, data, arrival_time_s))

    def _packet(self, data: bytes, arrival: float | None, out: list[StreamEvent]) -> None:
        try:
            p = decode_packet(data)
        except DecodeError as exc:
            self._malformed(str(exc), data, arrival, out)
            return
        if p.with_mag != self._with_mag:
            self._malformed(f"data packet {'with' if p.with_mag else 'without'} magnetometer, the config says "
                            f"{'with' if self._with_mag else 'without'}: re-read the config", data, arrival, out)
            return
        n = p.count
        t0 = self.clock.unwrap(p.t0_us)
        key = (p.seq, t0)
        if self._emitted_until_us is not None and t0 <= self._emitted_until_us:
            if key in self._recent_set:
                self.stats.duplicates += 1
                out.append(Duplicate(p.seq, t0 * 1e-6, arrival))
            else:
                self.stats.late += 1
                out.append(Late(p.seq, t0 * 1e-6, n, arrival))
            return
        # A newer packet: what is missing between the previous one and this?
        dropped = p.dropped
        lost_packets = lost_samples = 0
        if self._next_t_us is None:  # first packet (after restart)
            missing = dropped
            start_us = t0 - round(dropped * self._period_us)
        else:
            start_us = self._next_t_us
            missing = max(0, round((t0 - self._next_t_us) / self._period_us), dropped)
            k = (p.seq - self._last_seq - 1) & 0xFF  # type: ignore[operator]
            lost_samples = missing - dropped
            if lost_samples > 0 and k == 0 and dropped == DROPPED_MAX:
                dropped, lost_samples = missing, 0  # saturated: the device dropped more than 255
            if lost_samples == 0:
                if k:
                    self.stats.seq_resets += 1
            else:
                lost_packets = self._lost_packets(k, lost_samples)
        if lost_packets or lost_samples or dropped:
            self.stats.gaps += 1
            self.stats.lost += lost_packets
            self.stats.lost_samples += lost_samples
            self.stats.device_dropped += dropped
            out.append(Gap(lost_packets, lost_samples, dropped, start_us * 1e-6, t0 * 1e-6, arrival))
        self._next_index += missing
        offsets = self._offsets_us[:n]
        times_us = t0 + offsets
        counts = p.counts.astype(np.float64)
        cfg = self.config
        block = SampleBlock(
            self.role,
            times_us * 1e-6,
            counts[:, 0:3] * cfg.acc_scale_m_s2,
            counts[:, 3:6] * cfg.gyr_scale_rad_s,
            counts[:, 6:9] * cfg.mag_scale_ut if self._with_mag else None,
            self._next_index + np.arange(n, dtype=np.int64),
        )
        self._next_index += n
        self._last_seq = p.seq
        self._next_t_us = t0 + int(self._offsets_us[n])
        self._emitted_until_us = int(times_us[-1])
        self._spp_bound = max(self._spp_bound, min(n, MAX_SAMPLES_PER_PACKET))
        self._recent_counts.append(n)
        self._recent.append(key)
        self._recent_set.add(key)
        if len(self._recent) > _RECENT_PACKETS:
            self._recent_set.discard(self._recent.popleft())
        self.stats.packets += 1
        self.stats.samples += n
        out.append(Samples(block, p.seq, p.dropped, arrival))
