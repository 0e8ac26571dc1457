"""The virtual sensor board: simulated samples as the exact bytes a board notifies.

A simulated :class:`~hipimu.core.model.SampleBlock` (from
:func:`~hipimu.sources.simulate.simulate_session`) becomes the data packets of
``firmware/PROTOCOL.md`` that a hipimu board would send for it: samples
quantized to int16 counts with the config's scales (saturating at the 16-bit
range), batched at the ATT MTU with the firmware's rules, seq numbers, the
32-bit wrapping ``t0_us``, device drops and optional packet loss. Simulated
BLE peripherals send these; :class:`~hipimu.core.protocol.PacketStream`
decodes them back.

The device clock
----------------
The simulator's ``time_s`` are the true instants (session time, s) at which
each IMU took its samples; they already carry the IMU's own clock errors
(a random phase and a sample rate +-50 ppm off nominal). The board stamps
samples with a separate clock, its RTC; here that clock reads
``device_clock_offset_s + time_s * (1 + device_clock_ppm * 1e-6)`` seconds,
in whole microseconds. The defaults (offset 0, 0 ppm) make device time equal
session time, so decoded blocks line up with the simulated ones; an offset
near ``2**32`` us exercises the wrap of ``t0_us``. On the wire only each
packet's ``t0_us`` is kept: a decoder rebuilds sample i at
``t0 + round(i * 1e6 / rate_hz)``, which differs from the simulated instant
by the IMU's rate error within one packet (< 3 us at 50 ppm and 50 ms).

Samples missing from ``block.seq`` (e.g. ``simulate_session(loss=...)``)
become device drops: the firmware ends the packet before them and the next
packet carries their number in ``dropped``. Packet loss on the radio is
``loss=`` here.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass

import numpy as np

from hipimu.core.model import DeviceInfo, SampleBlock, Session
from hipimu.core.protocol import (
    ATT_MTU_MAX,
    DROPPED_MAX,
    GRAVITY_M_S2,
    MAX_PACKET_DELAY_S,
    PROTOCOL_VERSION,
    STATUS_IMU_FOUND,
    STATUS_MAG_FOUND,
    DeviceConfig,
    encode_packet,
    samples_per_packet,
)

__all__ = [
    "ACC_SENSITIVITY_MG",
    "GYR_SENSITIVITY_MDPS",
    "MAG_SENSITIVITY_UT",
    "VirtualPacket",
    "board_config",
    "config_for_device",
    "device_id_hex",
    "quantize",
    "block_packets",
    "session_packets",
]

#: LSM6DS3TR-C accelerometer sensitivity per range (datasheet), mg per LSB.
ACC_SENSITIVITY_MG = {2: 0.061, 4: 0.122, 8: 0.244, 16: 0.488}
#: LSM6DS3TR-C gyroscope sensitivity per range (datasheet), mdps per LSB.
GYR_SENSITIVITY_MDPS = {125: 4.375, 250: 8.75, 500: 17.5, 1000: 35.0, 2000: 70.0}
#: LIS3MDL at +-4 gauss: 6842 LSB/gauss, in uT per LSB.
MAG_SENSITIVITY_UT = 100.0 / 6842.0

_INT16_MIN, _INT16_MAX = -32768, 32767


def device_id_hex(device_id: str) -> str:
    """A 16-hex-digit device id: ``device_id`` itself if it is one, else a stable
    hash of it (simulated ids like ``sim-pelvis-0`` are not hex)."""
    if re.fullmatch(r"[0-9a-f]{16}", device_id):
        return device_id
    return hashlib.blake2b(device_id.encode(), digest_size=8).hexdigest()


def board_config(
    device_id: str = "sim",
    *,
    rate_hz: float = 208.0,
    acc_range_g: int = 8,
    gyr_range_dps: int = 1000,
    mag: bool = False,
    mtu: int = ATT_MTU_MAX,
    firmware_version: tuple[int, int, int] = (0, 1, 0),
    battery_percent: int = 100,
    streaming: bool = True,
) -> DeviceConfig:
    """The config a simulated LSM6DS3TR-C (+ LIS3MDL) board reports.

    ``rate_hz`` is stored in centi-hertz (any rate up to 655.35 Hz, not only the
    firmware's 52/104/208, so that simulated sessions at 200 Hz can be sent);
    scales are the datasheet sensitivities for the ranges.
    """
    if acc_range_g not in ACC_SENSITIVITY_MG or gyr_range_dps not in GYR_SENSITIVITY_MDPS:
        raise ValueError(f"unsupported ranges +-{acc_range_g} g / +-{gyr_range_dps} dps")
    rate_centihz = round(rate_hz * 100)
    if not 1 <= rate_centihz <= 0xFFFF:
        raise ValueError(f"rate_hz {rate_hz} does not fit the config's centi-hertz field (max 655.35)")
    return DeviceConfig(
        protocol_version=PROTOCOL_VERSION,
        firmware_version=firmware_version,
        device_id=device_id_hex(device_id),
        imu_part=1,
        mag_part=1,
        rate_centihz=rate_centihz,
        acc_range_g=acc_range_g,
        mag_enabled=mag,
        gyr_range_dps=gyr_range_dps,
        acc_scale_m_s2=ACC_SENSITIVITY_MG[acc_range_g] * 1e-3 * GRAVITY_M_S2,
        gyr_scale_rad_s=math.radians(GYR_SENSITIVITY_MDPS[gyr_range_dps] * 1e-3),
        mag_scale_ut=MAG_SENSITIVITY_UT,  # the part's scale, also while disabled (as the firmware reports it)
        mtu=mtu,
        streaming=streaming,
        battery_percent=battery_percent,
        status_flags=STATUS_IMU_FOUND | STATUS_MAG_FOUND,
    )


def config_for_device(info: DeviceInfo, *, mtu: int = ATT_MTU_MAX) -> DeviceConfig:
    """:func:`board_config` for a simulated device: its rate and magnetometer, the
    smallest firmware ranges that cover its ``acc_range_m_s2`` / ``gyr_range_rad_s``
    (the simulator's +-8 g / +-1000 dps by default)."""
    acc_g = 8 if info.acc_range_m_s2 is None else info.acc_range_m_s2 / GRAVITY_M_S2
    gyr_dps = 1000 if info.gyr_range_rad_s is None else math.degrees(info.gyr_range_rad_s)
    acc_range = next((g for g in sorted(ACC_SENSITIVITY_MG) if g >= acc_g - 1e-9), max(ACC_SENSITIVITY_MG))
    gyr_range = next((d for d in sorted(GYR_SENSITIVITY_MDPS) if d >= gyr_dps - 1e-9), max(GYR_SENSITIVITY_MDPS))
    return board_config(info.device_id, rate_hz=info.rate_hz, acc_range_g=acc_range, gyr_range_dps=gyr_range,
                        mag=info.has_mag, mtu=mtu)


def quantize(values: np.ndarray, scale: float) -> np.ndarray:
    """Physical values -> int16 counts: ``round(values / scale)``, saturated at the
    int16 range as an IMU saturates at full scale."""
    return np.clip(np.rint(np.asarray(values, dtype=np.float64) / scale), _INT16_MIN, _INT16_MAX).astype(np.int16)


@dataclass(frozen=True)
class VirtualPacket:
    """One notification of the virtual board.

    ``data``: the packet's bytes; ``seq``, ``dropped`` and ``t0_us`` (low 32
    bits) as in its header; ``first``/``count``: the block's samples
    ``first:first + count`` it carries; ``send_time_s``: session time at which
    the board notifies it (its last sample when full, else its first sample +
    the 50 ms batching delay, or the next sample after a drop: for pacing a
    simulated peripheral); ``lost``: the radio loses it (``loss=``).
    """

    data: bytes
    seq: int
    dropped: int
    t0_us: int
    first: int
    count: int
    send_time_s: float
    lost: bool = False


def block_packets(
    block: SampleBlock,
    config: DeviceConfig,
    *,
    seq_start: int = 0,
    device_clock_offset_s: float = 0.0,
    device_clock_ppm: float = 0.0,
    max_packet_delay_s: float | None = MAX_PACKET_DELAY_S,
    loss: float = 0.0,
    seed: int = 0,
) -> list[VirtualPacket]:
    """The packets a board with ``config`` sends for ``block`` (see the module doc).

    Batching follows the firmware: as many samples as fit ``config.mtu``
    (:func:`~hipimu.core.protocol.samples_per_packet`), but a packet holds only
    samples taken less than ``max_packet_delay_s`` after its first one (None:
    no delay limit) and ends where samples were dropped. ``seq`` counts from
    ``seq_start`` (0 after START), wrapping at 256, lost packets included;
    ``loss``: probability that the radio loses a packet (drawn from ``seed``).
    Magnetometer values are sent iff ``config.mag_enabled`` (the block must
    then have them).
    """
    if config.mag_enabled and block.mag_ut is None:
        raise ValueError("config has the magnetometer enabled but the block has no mag_ut")
    spp = samples_per_packet(config.mtu, config.mag_enabled)
    if spp == 0:
        raise ValueError(f"no {'9D' if config.mag_enabled else '6D'} sample fits a packet at MTU {config.mtu}")
    if not 0.0 <= loss < 1.0:
        raise ValueError(f"loss must be in [0, 1), got {loss}")
    n = len(block)
    if n == 0:
        return []
    parts = [quantize(block.acc_m_s2, config.acc_scale_m_s2), quantize(block.gyr_rad_s, config.gyr_scale_rad_s)]
    if config.mag_enabled:
        parts.append(quantize(block.mag_ut, config.mag_scale_ut))  # type: ignore[arg-type]
    counts = np.hstack(parts)
    t_dev_us = np.rint(device_clock_offset_s * 1e6 + block.time_s * 1e6 * (1.0 + device_clock_ppm * 1e-6)).astype(np.int64)
    # dropped before sample k (gaps in the block's running sample counter)
    drops = np.zeros(n, dtype=np.int64)
    if block.seq is not None:
        drops[0] = max(0, int(block.seq[0]))
        drops[1:] = np.maximum(np.diff(block.seq) - 1, 0)
    drop_at = np.flatnonzero(drops[1:]) + 1  # packets end before these samples
    delay_us = None if max_packet_delay_s is None else max_packet_delay_s * 1e6

    bounds: list[tuple[int, int, str]] = []  # (first, end, why it ended)
    i = 0
    while i < n:
        end, why = min(i + spp, n), "full"
        if delay_us is not None:
            j = int(np.searchsorted(t_dev_us, t_dev_us[i] + delay_us, side="left"))
            if j < end:
                end, why = j, "delay"
        k = int(np.searchsorted(drop_at, i, side="right"))
        if k < len(drop_at) and drop_at[k] < end:
            end, why = int(drop_at[k]), "drop"
        if end == n and why == "full" and end - i < spp:
            why = "delay"  # the last, partial packet leaves after the delay
        bounds.append((i, end, why))
        i = end

    lost = np.random.default_rng(seed).random(len(bounds)) < loss if loss > 0 else np.zeros(len(bounds), bool)
    delay_s = 0.0 if max_packet_delay_s is None else max_packet_delay_s
    out = []
    for p, (first, end, why) in enumerate(bounds):
        seq = (seq_start + p) & 0xFF
        dropped = min(int(drops[first]), DROPPED_MAX)
        t0 = int(t_dev_us[first]) & 0xFFFFFFFF
        if why == "full":
            send = float(block.time_s[end - 1])
        elif why == "drop":
            send = min(float(block.time_s[first]) + delay_s, float(block.time_s[end])) if delay_s else float(block.time_s[end])
        else:
            send = float(block.time_s[first]) + delay_s
        out.append(VirtualPacket(encode_packet(seq, dropped, t0, counts[first:end]), seq, dropped, t0, first,
                                 end - first, send, bool(lost[p])))
    return out


def session_packets(session: Session, *, mtu: int = ATT_MTU_MAX, **kwargs) -> dict[str, tuple[DeviceConfig, list[VirtualPacket]]]:
    """role -> (config, packets) for every sensor of a simulated session
    (``kwargs`` go to :func:`block_packets`; the loss seed is offset per role)."""
    out = {}
    seed = int(kwargs.pop("seed", 0))
    for i, role in enumerate(session.roles):
        config = config_for_device(session.devices[role], mtu=mtu)
        out[role] = (config, block_packets(session.samples[role], config, seed=seed + i, **kwargs))
    return out
