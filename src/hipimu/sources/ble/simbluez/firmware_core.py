"""ctypes binding of the portable firmware core (``firmware/core``).

The host build of the core, ``firmware/build/libhipimu_core.so`` (``make -C
firmware lib``), loaded with :mod:`ctypes`. Standard library only: the
simulated BlueZ (``template.py``, run by Debian's ``/usr/bin/python3``, which
has no numpy) loads this file by its path, and ``tests/test_protocol.py``
imports it.

* :func:`load` -- the library with the argument and result types of every
  function of ``hipimu_core.h`` declared, and a layout check of the ctypes
  mirror :class:`HipDevice` against the C struct.
* :class:`HipSample`, :class:`HipFifo`, :class:`HipDevice` -- ctypes mirrors
  of the core's structs (``hipimu_core.h``; keep them in step with it).
* :class:`CoreDevice` -- one ``hip_device`` set up like the board's
  ``setup()`` does, with small wrappers for the calls a board makes.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

__all__ = [
    "AXES_MAX",
    "CONFIG_SIZE",
    "FIFO_CAPACITY",
    "PACKET_MAX",
    "RESPONSE_MAX",
    "HipSample",
    "HipFifo",
    "HipDevice",
    "CoreDevice",
    "default_library_path",
    "load",
]

AXES_MAX = 9  # HIP_AXES_MAX
FIFO_CAPACITY = 256  # HIP_FIFO_CAPACITY
PACKET_MAX = 244  # HIP_PACKET_MAX = HIP_ATT_MTU_MAX - 3
RESPONSE_MAX = 11  # HIP_RESPONSE_MAX
CONFIG_SIZE = 40  # HIP_CONFIG_SIZE

_c = ctypes


class HipSample(_c.Structure):
    """``hip_sample``."""

    _fields_ = [("t_us", _c.c_uint64), ("v", _c.c_int16 * AXES_MAX), ("dropped_before", _c.c_uint8)]


class HipFifo(_c.Structure):
    """``hip_fifo``."""

    _fields_ = [("buf", HipSample * FIFO_CAPACITY), ("head", _c.c_uint16), ("count", _c.c_uint16),
                ("pending_drops", _c.c_uint32), ("dropped_total", _c.c_uint32)]


class HipDevice(_c.Structure):
    """``hip_device``; :func:`load` checks it against the C struct."""

    _fields_ = [("device_id", _c.c_uint8 * 8), ("fw_version", _c.c_uint8 * 3), ("imu_part", _c.c_uint8),
                ("mag_part", _c.c_uint8), ("imu_ok", _c.c_bool), ("mag_ok", _c.c_bool),
                ("charging", _c.c_bool), ("battery_percent", _c.c_uint8), ("rate_hz", _c.c_uint16),
                ("acc_range_g", _c.c_uint8), ("gyr_range_dps", _c.c_uint16), ("mag_enabled", _c.c_bool),
                ("att_mtu", _c.c_uint16), ("streaming", _c.c_bool), ("seq", _c.c_uint8),
                ("identify_seconds", _c.c_uint8), ("fifo", HipFifo)]


_SIGNATURES = {  # name: (restype, argtypes), as in hipimu_core.h
    "hip_encode_packet": (_c.c_size_t, [_c.c_void_p, _c.c_size_t, _c.c_uint8, _c.c_uint8, _c.c_uint32,
                                        _c.c_void_p, _c.c_uint8, _c.c_bool]),
    "hip_samples_per_packet": (_c.c_uint8, [_c.c_uint16, _c.c_bool]),
    "hip_fifo_init": (None, [_c.c_void_p]),
    "hip_fifo_push": (_c.c_bool, [_c.c_void_p, _c.c_uint64, _c.c_void_p, _c.c_uint8]),
    "hip_fifo_note_lost": (None, [_c.c_void_p, _c.c_uint32]),
    "hip_fifo_count": (_c.c_uint16, [_c.c_void_p]),
    "hip_fifo_peek": (_c.c_void_p, [_c.c_void_p, _c.c_uint16]),
    "hip_fifo_pop": (None, [_c.c_void_p, _c.c_uint16]),
    "hip_clock_init": (None, [_c.c_void_p]),
    "hip_clock_now_us": (_c.c_uint64, [_c.c_void_p, _c.c_uint32]),
    "hip_burst_sample_time_us": (_c.c_uint64, [_c.c_uint64, _c.c_uint16, _c.c_uint16, _c.c_uint32]),
    "hip_device_init": (None, [_c.c_void_p]),
    "hip_handle_command": (_c.c_size_t, [_c.c_void_p, _c.c_void_p, _c.c_size_t, _c.c_uint64, _c.c_void_p,
                                         _c.c_size_t]),
    "hip_encode_config": (_c.c_size_t, [_c.c_void_p, _c.c_void_p, _c.c_size_t]),
    "hip_acc_scale_m_s2": (_c.c_float, [_c.c_uint8]),
    "hip_gyr_scale_rad_s": (_c.c_float, [_c.c_uint16]),
    "hip_mag_scale_uT": (_c.c_float, [_c.c_uint8]),
    "hip_next_packet": (_c.c_size_t, [_c.c_void_p, _c.c_uint64, _c.c_void_p, _c.c_size_t]),
}


def default_library_path() -> Path:
    """``$HIPIMU_CORE_LIB`` if set, else ``firmware/build/libhipimu_core.so`` of
    the source tree this file is in."""
    env = os.environ.get("HIPIMU_CORE_LIB")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[5] / "firmware" / "build" / "libhipimu_core.so"


def load(path: str | os.PathLike | None = None) -> ctypes.CDLL:
    """Load the core library, declare every function's types, check the layout of
    :class:`HipDevice` against the C struct (raises RuntimeError if it changed)."""
    lib = ctypes.CDLL(str(default_library_path() if path is None else path))
    for name, (restype, argtypes) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    _check_layout(lib)
    return lib


def _check_layout(lib: ctypes.CDLL) -> None:
    """hip_device_init's defaults land in the mirror's fields; the config encoder
    reads identity, MTU and battery from where the mirror writes them; the FIFO
    functions see the mirror's ``fifo`` member."""
    dev = HipDevice()
    lib.hip_device_init(ctypes.byref(dev))
    problems = []
    if (dev.rate_hz, dev.acc_range_g, dev.gyr_range_dps, dev.att_mtu, dev.imu_part, dev.streaming) != (
            208, 8, 1000, 23, 1, False):
        problems.append("hip_device_init defaults")
    for i in range(8):
        dev.device_id[i] = 0xA0 + i
    dev.att_mtu, dev.battery_percent, dev.imu_ok = 0x1234, 77, True
    out = (ctypes.c_uint8 * 64)()
    if lib.hip_encode_config(ctypes.byref(dev), out, 64) != CONFIG_SIZE:
        problems.append("hip_encode_config size")
    cfg = bytes(out[:CONFIG_SIZE])
    if cfg[4:12] != bytes(range(0xA0, 0xA8)) or cfg[32:34] != b"\x34\x12" or cfg[35] != 77 or cfg[36] & 1 != 1:
        problems.append("config fields (device_id, att_mtu, battery_percent, imu_ok)")
    fifo = ctypes.addressof(dev) + HipDevice.fifo.offset
    v = (ctypes.c_int16 * AXES_MAX)(*range(1, 10))
    lib.hip_fifo_push(fifo, 5, v, 6)
    if lib.hip_fifo_count(fifo) != 1 or dev.fifo.count != 1 or list(dev.fifo.buf[0].v) != [1, 2, 3, 4, 5, 6, 0, 0, 0]:
        problems.append("fifo member")
    if problems:
        raise RuntimeError("hip_device's layout changed (" + "; ".join(problems) + "): update the ctypes mirror "
                           "HipDevice in " + __file__)


class CoreDevice:
    """One board's ``hip_device``, set up like ``setup()`` of the board layer:
    identity, parts found, battery; MTU 23 until a link negotiates more.

    The calls a board makes: :meth:`command` (a control write; returns the
    response bytes), :meth:`config` (the config characteristic), :meth:`push`
    (one IMU sample into the FIFO), :meth:`next_packet` (the next data packet
    due, or ``b""``). ``dev`` is the ctypes struct itself (fields readable and
    writable, e.g. ``dev.att_mtu``, ``dev.streaming``).
    """

    def __init__(self, lib: ctypes.CDLL, device_id: bytes, *, imu_ok: bool = True, mag_ok: bool = False,
                 battery_percent: int = 100, fw_version: tuple[int, int, int] = (0, 1, 0),
                 acc_range_g: int | None = None, gyr_range_dps: int | None = None) -> None:
        if len(device_id) != 8:
            raise ValueError("device_id must be 8 bytes, most significant first")
        self.lib = lib
        self.dev = HipDevice()
        self.ref = ctypes.byref(self.dev)
        self.fifo = ctypes.addressof(self.dev) + HipDevice.fifo.offset
        lib.hip_device_init(self.ref)
        d = self.dev
        d.device_id[:] = list(device_id)
        d.fw_version[:] = list(fw_version)
        d.imu_part = 1  # LSM6DS3TR-C
        d.imu_ok = bool(imu_ok)
        d.mag_ok = bool(mag_ok)
        d.mag_part = 1 if mag_ok else 0  # LIS3MDL
        d.battery_percent = int(battery_percent)
        if acc_range_g is not None:
            d.acc_range_g = acc_range_g
        if gyr_range_dps is not None:
            d.gyr_range_dps = gyr_range_dps
        self._resp = (ctypes.c_uint8 * 64)()
        self._cfg = (ctypes.c_uint8 * 64)()
        self._packet = (ctypes.c_uint8 * PACKET_MAX)()

    def command(self, request: bytes, now_us: int) -> bytes:
        """``hip_handle_command``: one control write handled at device time ``now_us``."""
        req = (ctypes.c_uint8 * max(len(request), 1)).from_buffer_copy(bytes(request) or b"\0")
        n = self.lib.hip_handle_command(self.ref, req, len(request), now_us, self._resp, len(self._resp))
        return bytes(self._resp[:n])

    def config(self) -> bytes:
        """``hip_encode_config``: the config characteristic's 40 bytes."""
        n = self.lib.hip_encode_config(self.ref, self._cfg, len(self._cfg))
        return bytes(self._cfg[:n])

    def push(self, t_us: int, values_address: int, n_axes: int) -> bool:
        """``hip_fifo_push`` of ``n_axes`` int16 at address ``values_address``; False: dropped."""
        return self.lib.hip_fifo_push(self.fifo, t_us, values_address, n_axes)

    def next_packet(self, now_us: int) -> bytes:
        """``hip_next_packet``: the next packet due at device time ``now_us``, or ``b""``."""
        n = self.lib.hip_next_packet(self.ref, now_us, self._packet, PACKET_MAX)
        return bytes(self._packet[:n]) if n else b""

    @property
    def fifo_count(self) -> int:
        return self.lib.hip_fifo_count(self.fifo)

    def acc_scale(self) -> float:
        return self.lib.hip_acc_scale_m_s2(self.dev.acc_range_g)

    def gyr_scale(self) -> float:
        return self.lib.hip_gyr_scale_rad_s(self.dev.gyr_range_dps)
