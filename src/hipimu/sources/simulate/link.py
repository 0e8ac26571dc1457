"""The BLE link between a board and the host, as a timing model (pure numpy).

For the clock synchronisation of :mod:`hipimu.core.clocksync`: when does a
notification the board sends at a true instant arrive on the host's monotonic
clock? Used by ``tests/test_clocksync.py`` and ``bench/clock_sync.py``. True
time here is the host's clock (the host is the reference; its rate error
does not matter because every sensor is mapped onto it).

The model (:func:`deliver`), per link:

* connection events every ``ci_s`` of the central's controller clock (its own
  ``event_clock_ppm`` against the host clock) at an arbitrary ``phase_s``;
* a notification queued at instant s goes out in the first event after s;
  packets leave in order, one every ``airtime_s`` (a data PDU plus its empty
  acknowledgement and two inter-frame spaces, :func:`airtime_s`), and a packet
  queued before the transmission of the previous one began joins that event
  (the link layer's "more data" bit); an event sends at most
  ``max_per_event`` (default: as many as fit the interval);
* each transmission fails with probability ``retx_prob``: the event closes and
  the packet (and everything queued behind it) waits for the next event;
* the host sees it ``latency_s`` after its reception (the controller, HCI,
  kernel, D-Bus and bleak: roughly constant) plus OS jitter: exponential with
  mean ``jitter_s``, and with probability ``spike_prob`` an extra uniform
  ``spike_s`` (a busy event loop); notifications reach the program in order.

So ``arrival >= send + airtime + latency`` always: the one-sided delays that a
lower-envelope fit assumes.

:func:`scenario` builds a multi-sensor session: 208 Hz boards batching as the
firmware does (:func:`packet_bounds`, the same rule as
:func:`~hipimu.sources.simulate.packets.block_packets`), device clocks with
rate errors (optionally ramping, as a crystal warming up on the body), per
sensor CI and phase, and optional TIME_SYNC pings: the host writes at a
random instant, the write goes out in the next connection event, the board
handles it there (``ping_processing_s`` later: the device time it reports)
and queues the response, which leaves in the event after that (behind any
data queued before it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hipimu.core.protocol import (
    ATT_HEADER_SIZE,
    HEADER_SIZE,
    MAX_PACKET_DELAY_S,
    SAMPLE_SIZE_6D,
    samples_per_packet,
    sample_offsets_us,
)

__all__ = ["airtime_s", "deliver", "packet_bounds", "DeviceClock", "SensorLink", "scenario"]

L2CAP_HEADER_SIZE = 4
LL_OVERHEAD_BYTES = 1 + 4 + 2 + 3  #: preamble, access address, LL header, CRC (1M PHY)
T_IFS_S = 150e-6
EMPTY_PDU_S = 80e-6  #: an empty LL PDU (the acknowledgement) at 1M PHY
PING_RESPONSE_SIZE = 3 + 8  #: opcode, token, status + nonce, device time


def airtime_s(att_payload_bytes: int, *, ll_max_payload: int = 251, phy_mbps: float = 1.0) -> float:
    """Air time of one notification of ``att_payload_bytes`` (the ATT value)
    with its acknowledgements: LL PDUs of at most ``ll_max_payload`` bytes (251
    with data length extension, 27 without), each followed by an empty PDU and
    two 150 us inter-frame spaces."""
    ll = att_payload_bytes + ATT_HEADER_SIZE + L2CAP_HEADER_SIZE
    pdus = -(-ll // ll_max_payload)
    bits = 8 * (ll + pdus * LL_OVERHEAD_BYTES)
    return bits / (phy_mbps * 1e6) + pdus * (2 * T_IFS_S + EMPTY_PDU_S / phy_mbps)


def deliver(
    send_s: np.ndarray,
    *,
    ci_s: float,
    phase_s: float = 0.0,
    airtime_s: float | np.ndarray = 0.7e-3,
    max_per_event: int | None = None,
    retx_prob: float = 0.0,
    latency_s: float = 2e-3,
    jitter_s: float = 0.3e-3,
    spike_prob: float = 0.005,
    spike_s: tuple[float, float] = (1e-3, 5e-3),
    event_clock_ppm: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """(n,) arrival times (host clock, s) of notifications queued at ``send_s``
    (true = host time, s, non-decreasing) on one link (see the module doc).

    ``airtime_s`` may be per packet. Returns non-decreasing times.
    """
    send = np.asarray(send_s, dtype=np.float64)
    n = send.size
    if n and np.any(np.diff(send) < 0):
        raise ValueError("send_s must be non-decreasing (one link's queue)")
    if ci_s <= 0:
        raise ValueError(f"ci_s must be positive, got {ci_s}")
    air = np.broadcast_to(np.asarray(airtime_s, dtype=np.float64), (n,))
    ci = ci_s * (1.0 + event_clock_ppm * 1e-6)
    cap = max_per_event if max_per_event is not None else max(1, int((ci_s - 0.5e-3) / float(air.max(initial=1e-3))))
    rng = np.random.default_rng(seed)
    fails = rng.random(n * 4 + 16) < retx_prob  # attempt outcomes, consumed in order
    k_fail = 0
    rx = np.empty(n)
    ev = -np.inf  # the current event's anchor
    busy_until = -np.inf  # when its last packet so far ended
    last_start = -np.inf  # when that packet's transmission began (its "more data" bit was set then)
    sent = 0  # packets sent in the current event
    for i in range(n):
        s = send[i]
        if not (s <= last_start and sent < cap):  # the event closed (or is full): the first event after s
            nxt = phase_s + np.floor((s - phase_s) / ci + 1.0) * ci
            ev = max(nxt, ev + ci)
            busy_until, sent = ev, 0
        while True:
            last_start = busy_until
            busy_until += air[i]
            sent += 1
            failed = fails[k_fail] if k_fail < fails.size else rng.random() < retx_prob
            k_fail += 1
            if not failed:
                break
            ev += ci  # the event closes on an error; the next one retries
            busy_until, sent = ev, 0
        rx[i] = busy_until
    jitter = rng.exponential(jitter_s, n) if jitter_s > 0 else np.zeros(n)
    spikes = rng.random(n) < spike_prob
    jitter[spikes] += rng.uniform(spike_s[0], spike_s[1], int(spikes.sum()))
    return np.maximum.accumulate(rx + latency_s + jitter) if n else rx


def packet_bounds(device_us: np.ndarray, per_packet: int, *, max_delay_s: float | None = MAX_PACKET_DELAY_S) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The firmware's batching of consecutive samples (no drops) stamped
    ``device_us`` (int, device clock): (first index, count, full) per packet.

    A packet takes at most ``per_packet`` samples and only those taken less
    than ``max_delay_s`` after its first; ``full``: it holds ``per_packet``
    (it leaves when its last sample is taken; otherwise when its first sample
    is ``max_delay_s`` old).
    """
    t = np.asarray(device_us, dtype=np.int64)
    n = t.size
    lim = np.full(n, n, dtype=np.int64) if max_delay_s is None else np.searchsorted(t, t + round(max_delay_s * 1e6), side="left")
    firsts, counts = [], []
    i = 0
    while i < n:
        end = min(i + per_packet, int(lim[i]), n)
        firsts.append(i)
        counts.append(end - i)
        i = end
    first = np.asarray(firsts, dtype=np.int64)
    count = np.asarray(counts, dtype=np.int64)
    return first, count, count == per_packet


@dataclass(frozen=True)
class DeviceClock:
    """A board's RTC against true (host) time: it reads ``offset_s + t +
    1e-6 * integral of rate_ppm(t)`` with ``rate_ppm = ppm`` plus a linear ramp of
    ``ramp_ppm`` over ``ramp_s`` starting at ``ramp_start_s`` (then constant)."""

    ppm: float = 0.0
    offset_s: float = 0.0
    ramp_ppm: float = 0.0
    ramp_s: float = 600.0
    ramp_start_s: float = 0.0

    def rate_ppm(self, t_s: np.ndarray) -> np.ndarray:
        u = np.clip((np.asarray(t_s, dtype=np.float64) - self.ramp_start_s) / self.ramp_s, 0.0, 1.0)
        return self.ppm + self.ramp_ppm * u

    def device_s(self, t_s: np.ndarray) -> np.ndarray:
        t = np.asarray(t_s, dtype=np.float64)
        tau = np.clip(t - self.ramp_start_s, 0.0, self.ramp_s)
        ramp = self.ramp_ppm * (tau**2 / (2.0 * self.ramp_s) + np.maximum(t - self.ramp_start_s - self.ramp_s, 0.0))
        return self.offset_s + t + 1e-6 * (self.ppm * t + ramp)

    def true_s(self, device_s: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`device_s` (Newton; the rate is within 1e-3 of 1)."""
        d = np.asarray(device_s, dtype=np.float64)
        t = d - self.offset_s
        for _ in range(3):
            t = t - (self.device_s(t) - d) / (1.0 + 1e-6 * self.rate_ppm(t))
        return t


@dataclass
class SensorLink:
    """One simulated sensor and its link.

    Samples: ``sample_true_s`` (when the IMU took them, host clock) and
    ``sample_device_s`` (the device times a decoder rebuilds: the packet's
    ``t0`` plus the nominal offsets). Packets: ``packet_first``/``packet_count``
    into the samples, ``packet_full``, ``packet_send_s`` (true instant the board
    notifies it), ``packet_arrival_s`` (host). ``packet_last_device_s``: device
    time of its last sample; ``packet_notify_device_s``: its notify instant as
    the host can bound it (:func:`hipimu.core.clocksync.packet_notify_device_s`);
    ``packet_airtime_s``: its air time.
    Pings: ``ping_write_s`` (host), ``ping_device_s`` (device time the board
    reports), ``ping_arrival_s`` (response, host).
    """

    name: str
    ci_s: float
    clock: DeviceClock
    mtu: int
    sample_true_s: np.ndarray
    sample_device_s: np.ndarray
    packet_first: np.ndarray
    packet_count: np.ndarray
    packet_full: np.ndarray
    packet_send_s: np.ndarray
    packet_arrival_s: np.ndarray
    packet_last_device_s: np.ndarray
    packet_notify_device_s: np.ndarray
    packet_airtime_s: np.ndarray
    ping_write_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ping_device_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ping_arrival_s: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def observations(self, *, data: bool = True, pings: bool = True, pairing: str = "notify") -> tuple[np.ndarray, np.ndarray]:
        """(device_s, host_s) in arrival order: with ``data``, of every packet
        (``pairing``: ``"notify"`` its notify instant, ``"last"`` its last
        sample); with ``pings``, of every ping response."""
        if pairing not in ("notify", "last"):
            raise ValueError(f"pairing must be 'notify' or 'last', got {pairing!r}")
        dev = self.packet_notify_device_s if pairing == "notify" else self.packet_last_device_s
        d, h = (dev, self.packet_arrival_s) if data else (np.zeros(0), np.zeros(0))
        if pings and self.ping_device_s.size:
            d = np.concatenate([d, self.ping_device_s])
            h = np.concatenate([h, self.ping_arrival_s])
        order = np.argsort(h, kind="stable")
        return d[order], h[order]


def scenario(
    *,
    duration_s: float = 120.0,
    rate_hz: float = 208.0,
    mtu: int | tuple[int, ...] = 247,
    ci_s: float | tuple[float, ...] = (0.0075, 0.015, 0.05),
    ppm: tuple[float, ...] = (-100.0, 37.0, 100.0),
    ramp_ppm: float | tuple[float, ...] = 0.0,
    ramp_s: float = 600.0,
    pings: bool = False,
    ping_period_s: float = 1.0,
    ping_processing_s: tuple[float, float] = (0.1e-3, 1.0e-3),
    retx_prob: float = 0.02,
    latency_s: float = 2e-3,
    jitter_s: float = 0.3e-3,
    spike_prob: float = 0.005,
    imu_ppm_max: float = 50.0,
    dle: bool = True,
    seed: int = 0,
) -> list[SensorLink]:
    """One :class:`SensorLink` per entry of ``ppm`` (device clock rate errors;
    ``mtu``, ``ci_s`` and ``ramp_ppm`` per sensor or shared).

    Each board starts sampling at a random instant in the first second at
    ``rate_hz`` (its IMU off by up to ``imu_ppm_max``: with the controller
    clock's +-20 ppm this sets how fast packets drift through the phases of
    the connection interval), has a random device clock offset (up to 2^32 us:
    device times are unwrapped) and a random event phase; every link has the
    same ``latency_s`` (a common latency cancels between sensors), 2 %
    retransmissions, exponential OS jitter of ``jitter_s`` mean and 0.5 %
    spikes of 1-5 ms by default. 6D samples; data length extension above
    MTU 23 (``dle``), 1M PHY.
    """
    from hipimu.core.clocksync import packet_notify_device_s  # the host's rule, shared with the BLE source

    rng = np.random.default_rng(seed)
    m = len(ppm)

    def per(x):
        return tuple(x) if isinstance(x, (tuple, list)) else (x,) * m

    mtus, cis, ramps = per(mtu), per(ci_s), per(ramp_ppm)
    out = []
    for k in range(m):
        clock = DeviceClock(ppm=ppm[k], offset_s=float(rng.uniform(0, 2**32 * 1e-6)), ramp_ppm=ramps[k], ramp_s=ramp_s)
        t_start = float(rng.uniform(0.0, 1.0))
        period = 1.0 / (rate_hz * (1.0 + rng.uniform(-imu_ppm_max, imu_ppm_max) * 1e-6))
        true_s = t_start + period * np.arange(int((duration_s - t_start) / period))
        dev_us = np.rint(clock.device_s(true_s) * 1e6).astype(np.int64)
        spp = samples_per_packet(mtus[k], False)
        first, count, full = packet_bounds(dev_us, spp)
        # what the decoder rebuilds: t0 + round(i * 1e6 / rate)
        rate_centihz = round(rate_hz * 100)
        offs = sample_offsets_us(int(count.max()), rate_centihz)
        pk = np.repeat(np.arange(first.size), count)
        idx = np.arange(true_s.size) - first[pk]
        sample_dev_s = (dev_us[first][pk] + offs[idx]) * 1e-6
        last_dev_s = sample_dev_s[first + count - 1]
        # the board notifies a full packet when its last sample is taken, else when its first is 50 ms old
        send_true = np.where(full, true_s[first + count - 1], clock.true_s(dev_us[first] * 1e-6 + MAX_PACKET_DELAY_S))
        notify_dev = packet_notify_device_s(dev_us[first] * 1e-6, last_dev_s, full, 1.0 / rate_hz)
        sizes = HEADER_SIZE + count * SAMPLE_SIZE_6D
        ll_max = 251 if (dle and mtus[k] > 23) else 27
        air = np.array([airtime_s(int(b), ll_max_payload=ll_max) for b in np.unique(sizes)])
        air_of = air[np.searchsorted(np.unique(sizes), sizes)]
        # pings: write at a random instant in each period -> next event -> handled -> response queued
        phase = float(rng.uniform(0.0, cis[k]))
        ctrl_ppm = float(rng.uniform(-20.0, 20.0))
        ci_eff = cis[k] * (1.0 + ctrl_ppm * 1e-6)
        if pings:
            w = ping_period_s * np.arange(1, int(duration_s / ping_period_s)) + rng.uniform(0.0, ping_period_s, int(duration_s / ping_period_s) - 1)
            w = w[w < duration_s - 0.2]
            ev = phase + np.floor((w + 0.5e-3 - phase) / ci_eff + 1.0) * ci_eff  # host -> controller, then the next event
            handled = ev + rng.uniform(*ping_processing_s, w.size)
            ping_dev = np.rint(clock.device_s(handled) * 1e6) * 1e-6
            q_send = np.concatenate([send_true, handled])
            q_air = np.concatenate([air_of, np.full(w.size, airtime_s(PING_RESPONSE_SIZE, ll_max_payload=ll_max))])
        else:
            w = handled = ping_dev = np.zeros(0)
            q_send, q_air = send_true, air_of
        order = np.argsort(q_send, kind="stable")
        arr_sorted = deliver(q_send[order], ci_s=cis[k], phase_s=phase, airtime_s=q_air[order], retx_prob=retx_prob,
                             latency_s=latency_s, jitter_s=jitter_s, spike_prob=spike_prob, event_clock_ppm=ctrl_ppm,
                             seed=seed * 1000 + k)
        arrival = np.empty_like(arr_sorted)
        arrival[order] = arr_sorted
        out.append(SensorLink(
            name=f"s{k}", ci_s=cis[k], clock=clock, mtu=mtus[k],
            sample_true_s=true_s, sample_device_s=sample_dev_s,
            packet_first=first, packet_count=count, packet_full=full, packet_send_s=send_true,
            packet_arrival_s=arrival[:first.size], packet_last_device_s=last_dev_s, packet_notify_device_s=notify_dev,
            packet_airtime_s=air_of,
            ping_write_s=w, ping_device_s=ping_dev, ping_arrival_s=arrival[first.size:],
        ))
    return out
