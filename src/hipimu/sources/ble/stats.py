"""What a sensor's link is doing, for the clinician: live per-sensor statistics.

A :class:`LinkStats` is a plain snapshot (no bleak, no asyncio) so that the
command line prints it now and the dashboard draws it later.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["LinkStats", "RateMeter", "format_stats_line", "STATS_HEADER"]


@dataclass
class LinkStats:
    """One sensor's link, as of ``updated_s`` (host monotonic, s).

    ``rate_hz``: samples received per second of device time over the last few
    seconds; ``loss_percent``: samples lost on the radio (packets never
    received) or by the device (``device_dropped``, its FIFO overflowed) over
    all samples that should have arrived; ``latency_ms``: median of arrival
    minus the mapped instant of each packet's last sample (how late the live
    view is; a host that cannot keep up shows here and in ``backlog``, not as
    loss, since nothing is lost, only late); ``clock_offset_ms``: how far the device clock has moved against
    the host clock since streaming began (the drift at work); ``clock_drift_ppm``:
    its rate (host rate against the device's, minus 1); ``rssi_dbm``: the last value the adapter reported (BlueZ
    reports it while scanning; a connected board's is the one seen before
    connecting).
    """

    role: str
    address: str = ""
    name: str = ""
    device_id: str = ""
    state: str = "waiting"  #: waiting, connecting, configuring, streaming, reconnecting, stopped
    samples: int = 0
    packets: int = 0
    lost_samples: int = 0
    lost_packets: int = 0
    device_dropped: int = 0
    duplicates: int = 0
    late: int = 0
    malformed: int = 0
    gaps: int = 0
    reconnects: int = 0
    stale_callbacks: int = 0  #: notifications from a connection already replaced (ignored)
    backlog: int = 0  #: notifications received but not yet decoded (grows when the computer cannot keep up)
    rate_hz: float = math.nan
    nominal_rate_hz: float = math.nan
    latency_ms: float = math.nan
    clock_offset_ms: float = math.nan
    clock_drift_ppm: float = math.nan
    clock_jitter_ms: float = math.nan
    connection_interval_ms: float = math.nan  #: estimated from the arrivals (BlueZ does not tell)
    rssi_dbm: float = math.nan
    battery_percent: float = math.nan
    mtu: int = 0
    firmware: str = ""
    last_error: str = ""
    updated_s: float = 0.0

    @property
    def loss_percent(self) -> float:
        missing = self.lost_samples + self.device_dropped
        total = self.samples + missing
        return 100.0 * missing / total if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["loss_percent"] = self.loss_percent
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


@dataclass
class RateMeter:
    """Samples per second of device time over the last ``window_s``."""

    window_s: float = 5.0
    _points: deque = field(default_factory=deque)  # (device_s, cumulative samples)

    def add(self, device_s: float, cumulative: int) -> None:
        self._points.append((device_s, cumulative))
        while len(self._points) > 2 and device_s - self._points[1][0] >= self.window_s:
            self._points.popleft()

    def reset(self) -> None:
        self._points.clear()

    @property
    def rate_hz(self) -> float:
        if len(self._points) < 2:
            return math.nan
        (t0, n0), (t1, n1) = self._points[0], self._points[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else math.nan


STATS_HEADER = (
    f"{'sensor':<12} {'state':<12} {'rate Hz':>8} {'loss %':>7} {'dropped':>7} {'reconn':>6} "
    f"{'RSSI':>5} {'batt %':>6} {'offset ms':>10} {'drift ppm':>9} {'latency ms':>10}"
)


def _num(v: float, fmt: str) -> str:
    return format(v, fmt) if math.isfinite(v) else "-"


def format_stats_line(s: LinkStats) -> str:
    """One fixed-width line of :data:`STATS_HEADER`."""
    return (
        f"{s.role:<12} {s.state:<12} {_num(s.rate_hz, '8.1f'):>8} {s.loss_percent:7.2f} {s.device_dropped:7d} "
        f"{s.reconnects:6d} {_num(s.rssi_dbm, '5.0f'):>5} {_num(s.battery_percent, '6.0f'):>6} "
        f"{_num(s.clock_offset_ms, '10.2f'):>10} {_num(s.clock_drift_ppm, '9.1f'):>9} {_num(s.latency_ms, '10.1f'):>10}"
    )
