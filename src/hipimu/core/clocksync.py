"""Device clock -> host clock: a drift-compensated lower-envelope fit.

Every sensor board stamps its samples with its own clock (a 32768 Hz RTC,
rate error up to +-100 ppm against the host, an arbitrary offset). To put the
samples of several boards on one time axis, each board's device time is
mapped onto the host's monotonic clock. This module is the pure core of that:
observations in, a mapping out. Numbers below are from bench/clock_sync.py
(three 208 Hz boards at -100/+37/+100 ppm on the BLE link model of
hipimu.sources.simulate.link, 3 seeds of 240 s unless said otherwise);
"alignment error" is the difference of two boards' mapping errors (mapped
minus true host time), so a latency common to all boards cancels.

Observations
------------
One observation is a pair (``device_s``, ``host_s``): a device instant at
which the board queued a notification (unwrapped, s) and the host instant it
arrived (s). BLE delivers a notification at the next connection event
(every 7.5-50 ms, arbitrary phase), sometimes events later (retransmissions),
plus the stack's roughly constant latency and OS jitter, so::

    host_s = true_host(device_s) + latency + delay,   delay >= 0

The delays are one-sided: the lowest observations carry the timing, the rest
only lie higher. Hence a lower envelope, not a regression (a least-squares
line puts boards at different CIs more than 5 ms apart: tests).

* Data packets: pair each arrival with the packet's notify instant,
  :func:`packet_notify_device_s`: its last sample if it is full, otherwise
  ``min(t0 + 50 ms, last sample + one period)``. At 208 Hz and MTU >= 143 no
  packet is full (the 50 ms rule ends it at 11 samples): the board sends it
  50 ms after its first sample, 1.9 ms after its last. Pairing with the last
  sample instead is safe (never below the envelope) but shifts the envelope
  by that lag, which differs between boards at different MTUs or rates: with
  one board at MTU 23 among two at 247, alignment 2.37 ms instead of 0.45 ms.
* TIME_SYNC pings: the board handles a request at the connection event that
  delivers it and stamps the response with that instant; the response leaves
  one connection interval later. Raw (device time, arrival) pairs therefore
  lie about one CI above the data envelope and change nothing while data
  flow (bench: identical errors with and without them); alone (before START)
  they make a poor fit (their delays are bimodal: alignment errors up to
  60 ms, drift off by up to 520 ppm). But (device time, arrival - CI) is an
  observation of the data's kind at a phase the host chooses at random, free
  of the wait for a connection event. That matters when the packet period
  locks to the CI: at 208 Hz (11 samples, 52.885 ms per packet) against a
  50 ms CI the data's delays visit only a few phases ~0.96 ms apart, so a
  board's data envelope can sit up to ~1 ms above the truth for minutes.
  BlueZ does not report the CI; :func:`connection_interval_s` finds it from
  the data arrivals. The BLE source (``hipimu.sources.ble.source``) feeds data
  packets and CI-corrected pings; through bleak on the simulated BlueZ
  (tests/test_ble.py, CIs 7.5/30/50 ms, +-100 ppm, 20 s) this took the
  inter-sensor alignment from 0.7-1.3 ms (data only) to 0.13-0.26 ms. On real
  boards a command handled a little after its connection event (the
  firmware's main loop) makes pings read low by that delay: the same for
  every board running the same firmware, so it cancels between boards.
* Take the arrival time when the notification reaches the program, from one
  monotonic clock for all boards (``time.monotonic()``). Anything that differs
  per board and is not in the model (air time: MTU, PHY, data length
  extension; a board-specific lag between a packet's last sample and its
  notification; a stamping error on the board) shifts that board.

The fit
-------
In (x, y) = (device_s, host_s - device_s) the truth is a nearly flat line
(slope = drift, |slope| <= ~1e-4) under all points. Over a sliding window of
``window_s``:

1. per ``bucket_s`` (0.25 s) bucket keep only the lowest point (the hull of
   the bucket minima differs from that of all points by at most slope x
   bucket, < 25 us at 100 ppm, and a 120 s window holds at most 480);
2. the lower convex hull of the bucket minima (Andrew's monotone chain);
3. offset: the hull at the window's mean observation time -- the line below
   all points that maximises its value there, the LP of Moon, Skelly and
   Towsley (1999), the maximum-likelihood line for delays with a flat density
   near zero; drift: the slope between the hull's values at the window's
   quarter points, rather than the slope of the one hull edge at the mean
   (often short): it cut the live error after 60 s from 0.38/0.55/0.70/0.91 ms
   to 0.26/0.36/0.50/0.75 ms at CI 7.5/15/30/50 ms (60 s window). Anchoring
   the LP at the newest time instead (the last hull edge is short and steep)
   gave errors of 100+ ms, at 3/4 of the window tens of ms.

Window: 120 s. More observations lower the envelope's error; the device
clock's rate change over the window is model error: a crystal's rate drifts
with temperature (a board warming up on the body), so one line over a whole
recording is wrong. On 20-minute sessions whose rates ramp by +5/-5/0 ppm
over 10 minutes (CI 30 ms) the batch alignment error (max) is 0.54, 0.36,
0.25, 0.24, 0.30, 0.53 ms for windows of 30, 60, 120, 180, 300, 600 s and
1.32 ms for the whole session; 120 s also keeps the chord error of a faster
change small (5 ppm in 2 minutes: 75 us, 470 us at 300 s).

What limits it: at 208 Hz and MTU >= 143 packets leave every 11/208 s =
52.885 ms. With the CI a multiple n of 1.25 ms, their notify instants fall
on only a few phases of the interval, 96 us x gcd(550, n) apart: 0.19 ms at
CI 7.5, 15 and 30 ms, but 0.96 ms at 50 ms (also 12.5 and 25 ms; 2.1 ms at
27.5 ms). The phases drift only as fast as the IMU's rate differs from the
host controller's (ppm), so the envelope of a board can sit anywhere up to
that spacing above the truth for minutes: no fit of arrival times can do
better. Batch alignment error (max): 0.09/0.38/0.29/0.72 ms at CI
7.5/15/30/50 ms, 0.63 ms mixed (7.5/15/50), <= 0.42 ms at MTU 23; over 20
seeds at CI 50 ms, 0.56 ms. Drift error <= 6 ppm.

Live: :class:`ClockSync`
------------------------
One per device. ``add(device_s, host_s)`` is amortised O(1) (a bucket
update); the hull is recomputed lazily, at most once per new bucket (4 per
second, 0.25 ms for 480 points): 2-5 us per add on average, refits included.
``to_host`` maps with the current fit: the line through the envelope at the
window's mean time with the quarter-point slope, extrapolated to the query.
Before the window spans ``min_span_s`` (2 s) it is offset only (the lowest
observation, slope 1); before any observation ``to_host`` raises ValueError.

Warm-up: the live alignment error stays under 1 ms after 4.4/5.6/10.8/18.3 s
at CI 7.5/15/30/50 ms (worst of 3 seeds; over 20 seeds, under 1 ms after 30 s
at CI <= 30 ms). At CI 50 ms the phase spacing above plus the extrapolation
(live fits end at the newest observation) give up to 1.0 ms after 60 s here
and 1.2 ms after 120 s in the worst of 20 seeds: prefer CI <= 30 ms for the
live view; the batch re-fit of the recording is under 1 ms either way. Live
and batch agree within 0.5 ms after 60 s (CI 15 ms, tests).

A bogus observation below the envelope (a host clock glitch: a late packet
can only lie higher) would pull the envelope down for a whole window. Once
ready, an observation more than ``reject_below_s`` (2 ms) below the current
fit is rejected and counted (``rejected``); while the window spans less than
``settle_s`` (10 s) the threshold grows as ``settle_s / span`` (a young fit
is less certain: in 144 simulated links of 60 s, legitimate observations lay
up to 6.8 ms below it at spans of 2-5 s, 2.0 ms at 5-10 s, 1.25 ms beyond:
never more than 0.7 of the threshold). The guard needs the
envelope pinned by many observations: it is off while the window holds fewer
than ``guard_min_rate_hz`` (5) per second (data packets come at >= 17/s).
After ``relock_after`` (25) rejections in a row the fit is taken to be wrong
(the host clock stepped) and restarts from them (``relocks``). A device clock
reset (device time jumping back) is the caller's to detect:
:meth:`ClockSync.reset`. Observations older than the window are ignored
(``stale``); slightly out-of-order ones are fine.

Batch: :func:`fit_clock` -> :class:`ClockMap`
---------------------------------------------
Re-times a finished recording from all its observations (0.25 s per hour of
one board at 19 observations/s, 0.9 s at 208/s): knots every ``knot_s``
(5 s); each knot's value is the same envelope fit over the window centred on
it (shifted inside the recording at its ends, extrapolated to the knot with
the quarter-point slope); the mapping is piecewise linear through the knots,
strictly increasing (segment slopes kept within ``1 +- MAX_RATE_ERROR``),
beyond the ends extended with the end knots' drift. First, observations more
than ``reject_below_s`` below the lowest bucket of their +-5 s neighbourhood
are dropped (at >= ``guard_min_rate_hz`` observations per second).
:meth:`ClockMap.to_dict` / :meth:`ClockMap.from_dict`: the knots as JSON-able
lists, to store with a recording and re-apply. One device clock base per
call: split at resets.

Units: seconds (``_s``), drift in ppm (``_ppm``): host clock rate against the
device clock minus 1, so a device clock 100 ppm fast has a drift of about -100.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hipimu.core.protocol import MAX_PACKET_DELAY_S

__all__ = [
    "DEFAULT_WINDOW_S",
    "DEFAULT_BUCKET_S",
    "DEFAULT_KNOT_S",
    "MAX_RATE_ERROR",
    "ClockSync",
    "ClockMap",
    "fit_clock",
    "connection_interval_s",
    "lower_hull",
    "envelope_line",
    "packet_notify_device_s",
]

DEFAULT_WINDOW_S = 120.0
DEFAULT_BUCKET_S = 0.25
DEFAULT_MIN_SPAN_S = 2.0
DEFAULT_REJECT_BELOW_S = 2e-3
DEFAULT_SETTLE_S = 10.0
DEFAULT_RELOCK_AFTER = 25
DEFAULT_GUARD_MIN_RATE_HZ = 5.0
DEFAULT_KNOT_S = 5.0
DEFAULT_OUTLIER_RADIUS_S = 5.0
MAX_RATE_ERROR = 1e-3  #: a ClockMap's segments keep their slope within 1 +- this (1000 ppm)
CI_UNIT_S = 1.25e-3  #: BLE connection intervals are multiples of 1.25 ms (7.5 ms .. 4 s)


def connection_interval_s(arrival_s: Any, *, window_s: float = 1.5e-3, min_fraction: float = 0.5,
                          min_ratio: float = 0.8, max_ci_s: float = 0.1, min_arrivals: int = 100) -> float | None:
    """The connection interval of one link from its notifications' arrival times.

    Notifications arrive at connection events (every CI on the central's
    clock) plus a stack latency that is mostly near its minimum, so the
    arrival times modulo the true CI bunch up just above one value. For each
    BLE interval (a multiple of 1.25 ms, 7.5 ms up to ``max_ci_s``): the
    share of arrivals (modulo the interval) inside the densest ``window_s``.
    The CI is the largest interval whose share reaches ``min_fraction`` and
    ``min_ratio`` times the share of each of its divisors among the
    intervals. Divisors of the CI bunch the arrivals at least as well (so the
    ratio holds at the CI); a multiple of it, e.g. twice the CI or the packet
    period of 7 CIs, splits them over several bunches (ratio ~0.5). A host
    stall stamps arrivals late and lowers every share alike: through bleak
    on the simulated BlueZ the share at the true CI is 0.9-1.0, down to
    0.75-0.85 when the event loop stalled early in a recording, and at twice
    the CI up to 0.6 on short prefixes. None when no interval qualifies or
    with fewer than ``min_arrivals``. (A CI taken too large would make
    corrected pings read low by the excess; a divisor only makes them useless.)
    """
    t = np.sort(np.asarray(arrival_s, dtype=np.float64).ravel())
    if t.size < min_arrivals:
        return None
    t = t - t[0]
    share: dict[int, float] = {}
    for n in range(6, int(round(max_ci_s / CI_UNIT_S)) + 1):
        r = np.sort(np.mod(t, n * CI_UNIT_S))
        wrapped = np.concatenate([r, r + n * CI_UNIT_S])
        # arrivals in [r_i, r_i + window) for every start r_i (circularly)
        share[n] = float((np.searchsorted(wrapped, r + window_s, side="left") - np.arange(r.size)).max() / r.size)
    for n in sorted(share, reverse=True):
        divisors = [share[m] for m in share if m < n and n % m == 0]
        if share[n] >= min_fraction and all(share[n] >= min_ratio * d for d in divisors):
            return n * CI_UNIT_S
    return None


JITTER_HISTORY = 512  #: observations ClockSync.jitter_s looks back over


def packet_notify_device_s(t0_s: Any, last_s: Any, full: Any, period_s: float, *, max_delay_s: float = MAX_PACKET_DELAY_S) -> np.ndarray:
    """The earliest device instant at which the board can have notified a
    packet: the device time to pair with its arrival (arrays in, array out).

    A full packet (``count == samples_per_packet(mtu)``) leaves once its last
    sample is taken: ``last_s``. Any other left when its first sample was
    ``max_delay_s`` old, or when the sample that ended it (after a drop, or
    ``max_delay_s`` or more after the first) was taken, at least one
    ``period_s`` after its last sample: ``min(t0_s + max_delay_s, last_s +
    period_s)``.
    """
    t0 = np.asarray(t0_s, dtype=np.float64)
    last = np.asarray(last_s, dtype=np.float64)
    return np.where(np.asarray(full, dtype=bool), last, np.minimum(t0 + max_delay_s, last + period_s))


def lower_hull(x: Any, y: Any) -> np.ndarray:
    """Indices of the lower convex hull's vertices of points (x, y), ``x``
    strictly increasing, left to right (Andrew's monotone chain, O(n))."""
    xs = np.asarray(x, dtype=np.float64).tolist()
    ys = np.asarray(y, dtype=np.float64).tolist()
    return np.asarray(_hull(xs, ys), dtype=np.int64)


def _hull(xs: list[float], ys: list[float]) -> list[int]:
    h: list[int] = []
    for i in range(len(xs)):
        xi, yi = xs[i], ys[i]
        while len(h) >= 2:
            a, b = h[-2], h[-1]
            # keep b only if a -> b -> i turns left
            if (xs[b] - xs[a]) * (yi - ys[a]) - (ys[b] - ys[a]) * (xi - xs[a]) <= 0.0:
                h.pop()
            else:
                break
        h.append(i)
    return h


def _edge_at(xs: list[float], ys: list[float], hull: list[int], x_star: float) -> tuple[float, float]:
    """(value at x_star, slope) of the hull edge spanning x_star (end edges beyond the ends)."""
    if len(hull) == 1:
        return ys[hull[0]], 0.0
    lo, hi = 0, len(hull) - 1
    while hi - lo > 1:  # the last vertex at or left of x_star
        mid = (lo + hi) // 2
        if xs[hull[mid]] <= x_star:
            lo = mid
        else:
            hi = mid
    a, b = hull[lo], hull[lo + 1]
    slope = (ys[b] - ys[a]) / (xs[b] - xs[a])
    return ys[a] + slope * (x_star - xs[a]), slope


def _envelope_fit(xs: list[float], ys: list[float], x_star: float, lo: float, hi: float) -> tuple[float, float]:
    """One window [lo, hi]: (the lower hull at ``x_star``, the slope between the
    hull's values at the window's quarter points)."""
    hull = _hull(xs, ys)
    v = _edge_at(xs, ys, hull, x_star)[0]
    qa, qb = lo + 0.25 * (hi - lo), lo + 0.75 * (hi - lo)
    m = (_edge_at(xs, ys, hull, qb)[0] - _edge_at(xs, ys, hull, qa)[0]) / (qb - qa)
    return v, m


def envelope_line(x: Any, y: Any, x_star: float) -> tuple[float, float]:
    """The line below all points (x, y) (``x`` strictly increasing) with the
    largest value at ``x_star``: (that value, its slope). It is the lower
    hull's edge spanning ``x_star``; at ``x_star`` = mean x, the LP of Moon,
    Skelly and Towsley (1999)."""
    xs = np.asarray(x, dtype=np.float64).tolist()
    ys = np.asarray(y, dtype=np.float64).tolist()
    if not xs:
        raise ValueError("no points")
    return _edge_at(xs, ys, _hull(xs, ys), float(x_star))


class ClockSync:
    """Online device -> host clock mapping of ONE device (see the module doc).

    ``add(device_s, host_s)`` observations, ``to_host(device_s)`` maps;
    ``offset_s``, ``drift_ppm``, ``jitter_s``, ``n``, ``span_s``, ``ready``
    describe the current fit; ``rejected``, ``stale``, ``relocks`` count.
    """

    def __init__(
        self,
        *,
        window_s: float = DEFAULT_WINDOW_S,
        bucket_s: float = DEFAULT_BUCKET_S,
        min_span_s: float = DEFAULT_MIN_SPAN_S,
        reject_below_s: float = DEFAULT_REJECT_BELOW_S,
        settle_s: float = DEFAULT_SETTLE_S,
        relock_after: int = DEFAULT_RELOCK_AFTER,
        guard_min_rate_hz: float = DEFAULT_GUARD_MIN_RATE_HZ,
    ) -> None:
        if not (0 < bucket_s <= window_s):
            raise ValueError(f"need 0 < bucket_s <= window_s, got {bucket_s}, {window_s}")
        if not min_span_s > 0:
            raise ValueError(f"min_span_s must be positive, got {min_span_s}")
        if relock_after < 1:
            raise ValueError(f"relock_after must be >= 1, got {relock_after}")
        self.window_s = float(window_s)
        self.bucket_s = float(bucket_s)
        self.min_span_s = float(min_span_s)
        self.reject_below_s = float(reject_below_s)
        self.settle_s = float(settle_s)
        self.relock_after = int(relock_after)
        self.guard_min_rate_hz = float(guard_min_rate_hz)
        self._cap = max(1, int(round(window_s / bucket_s)))  # bucket slots in the window
        self.rejected = 0  #: observations rejected as lying too far below the fit
        self.stale = 0  #: observations older than the window (ignored)
        self.relocks = 0  #: restarts after relock_after rejections in a row
        self.reset()

    def reset(self) -> None:
        """Forget every observation (after a device clock reset, say); the
        counters stay."""
        cap = self._cap
        self._origin = math.nan  # device_s of x = 0
        self._bx = np.zeros(cap)  # per bucket slot: x of its lowest point
        self._by = np.full(cap, np.inf)  # its y = host - device
        self._bc = np.zeros(cap, dtype=np.int64)  # observations in the bucket
        self._bs = np.zeros(cap)  # the sum of their x
        self._k_new = -(1 << 62)  # the newest bucket's number
        self._x_new = -math.inf
        self._n = 0
        self._dirty = False
        self._fit_k = 0
        self._line: tuple[float, float, float] | None = None  # (x0, y0, slope): y = y0 + slope (x - x0)
        self._fit_ready = False
        self._fit_span = 0.0
        self._held: list[tuple[float, float]] = []  # the rejections in a row
        self._heights = np.full(JITTER_HISTORY, np.nan)
        self._h_i = 0

    # -- input ----------------------------------------------------------------
    def add(self, device_s: Any, host_s: Any) -> int:
        """Add observations: ``device_s`` (a notification's device instant,
        unwrapped, s) and ``host_s`` (its arrival, host monotonic clock, s);
        scalars or equal-length 1-D arrays, in arrival order. Returns how many
        were accepted (neither rejected nor stale)."""
        if isinstance(device_s, float) and isinstance(host_s, float):  # the common, fast path
            if not (math.isfinite(device_s) and math.isfinite(host_s)):
                raise ValueError("device_s and host_s must be finite")
            return self._add1(device_s, host_s)
        d = np.atleast_1d(np.asarray(device_s, dtype=np.float64))
        h = np.atleast_1d(np.asarray(host_s, dtype=np.float64))
        if d.shape != h.shape or d.ndim != 1:
            raise ValueError(f"device_s and host_s must be scalars or equal-length 1-D arrays, got {d.shape}, {h.shape}")
        if not (np.all(np.isfinite(d)) and np.all(np.isfinite(h))):
            raise ValueError("device_s and host_s must be finite")
        return sum(self._add1(di, hi) for di, hi in zip(d.tolist(), h.tolist()))

    def _add1(self, d: float, h: float) -> int:
        if self._line is None:
            self._origin = d
        x = d - self._origin
        y = h - d
        k = math.floor(x / self.bucket_s)
        if k <= self._k_new - self._cap:
            self.stale += 1
            return 0
        if self._line is not None:
            x0, y0, m = self._current_line()
            if self._fit_ready and self._n >= self.guard_min_rate_hz * self._fit_span:
                depth = y0 + m * (x - x0) - y
                if depth > self.reject_below_s * max(1.0, self.settle_s / self._fit_span):
                    self.rejected += 1
                    self._held.append((d, h))
                    if len(self._held) < self.relock_after:
                        return 0
                    held = self._held
                    self.relocks += 1
                    self.reset()
                    return sum(self._add1(dd, hh) for dd, hh in held)
                self._heights[self._h_i % JITTER_HISTORY] = -depth
                self._h_i += 1
        self._held = []
        if k > self._k_new:
            self._advance(k)
        s = k % self._cap
        self._bc[s] += 1
        self._bs[s] += x
        self._n += 1
        self._x_new = max(self._x_new, x)
        if y < self._by[s]:
            self._bx[s] = x
            self._by[s] = y
            self._dirty = True
        if self._line is None:
            self._refit()
        return 1

    def _advance(self, k: int) -> None:
        """Make bucket k the newest: empty the slots of the buckets it pushes out."""
        cap = self._cap
        if k - self._k_new >= cap:
            self._by[:] = np.inf
            self._bc[:] = 0
            self._bs[:] = 0.0
            self._n = 0
        else:
            for j in range(self._k_new + 1, k + 1):
                s = j % cap
                self._n -= int(self._bc[s])
                self._by[s] = np.inf
                self._bc[s] = 0
                self._bs[s] = 0.0
        self._k_new = k
        self._dirty = True

    # -- the fit ----------------------------------------------------------------
    def _refit(self) -> None:
        slots = np.arange(self._k_new - self._cap + 1, self._k_new + 1) % self._cap
        y = self._by[slots]
        ok = np.isfinite(y)
        x, y = self._bx[slots][ok], y[ok]
        self._dirty = False
        self._fit_k = self._k_new
        span = float(x[-1] - x[0])
        self._fit_span = span
        if span < self.min_span_s:
            i = int(np.argmin(y))
            self._line = (float(x[i]), float(y[i]), 0.0)
            self._fit_ready = False
            return
        x_mean = float(self._bs.sum() / self._bc.sum())
        xs, ys = x.tolist(), y.tolist()
        v, m = _envelope_fit(xs, ys, x_mean, xs[0], xs[-1])
        self._line = (x_mean, v, m)
        self._fit_ready = True

    def _current_line(self) -> tuple[float, float, float]:
        # refit when a new bucket has started (or on every change while warming up)
        if self._dirty and (self._fit_k != self._k_new or not self._fit_ready):
            self._refit()
        if self._line is None:
            raise ValueError("ClockSync has no observation yet")
        return self._line

    # -- output -----------------------------------------------------------------
    def to_host(self, device_s: Any) -> Any:
        """Host time (s) of device time(s) ``device_s`` by the current fit: a
        float for a scalar, else an array. ValueError before any observation."""
        x0, y0, m = self._current_line()
        d = np.asarray(device_s, dtype=np.float64)
        out = d + (y0 + m * ((d - self._origin) - x0))
        return float(out) if out.ndim == 0 else out

    @property
    def ready(self) -> bool:
        """The window spans ``min_span_s``: the drift is estimated (before: offset only)."""
        if self._line is None:
            return False
        self._current_line()
        return self._fit_ready

    @property
    def n(self) -> int:
        """Observations in the window."""
        return self._n

    @property
    def span_s(self) -> float:
        """Device time spanned by the window's bucket minima (s)."""
        if self._line is None:
            return 0.0
        self._current_line()
        return self._fit_span

    @property
    def offset_s(self) -> float:
        """host - device (s) at the newest device time (NaN before any observation)."""
        if self._line is None:
            return math.nan
        d = self._x_new + self._origin
        return float(self.to_host(d)) - d

    @property
    def drift_ppm(self) -> float:
        """Host clock rate against the device clock, minus 1, in ppm (a device
        clock 100 ppm fast gives about -100); NaN until ``ready``."""
        return self._current_line()[2] * 1e6 if self.ready else math.nan

    @property
    def jitter_s(self) -> float:
        """Median height (s) of the last JITTER_HISTORY observations above the
        fit when they arrived: the typical delivery delay beyond the shortest
        (about half the CI plus OS jitter); NaN until ``ready``."""
        h = self._heights[np.isfinite(self._heights)]
        return float(np.median(h)) if h.size else math.nan


@dataclass(frozen=True, eq=False)
class ClockMap:
    """A recording's device -> host mapping (:func:`fit_clock`): piecewise linear
    through the knots (``knot_device_s``, ``knot_host_s``, both strictly
    increasing), beyond the ends the end knots' drift (``knot_drift_ppm``: the
    fit's drift at each knot). ``jitter_s``: median height of the observations
    above the mapping."""

    knot_device_s: np.ndarray
    knot_host_s: np.ndarray
    knot_drift_ppm: np.ndarray
    window_s: float
    n_observations: int
    rejected: int
    jitter_s: float

    def to_host(self, device_s: Any) -> Any:
        """Host time(s) (s) of device time(s): a float for a scalar, else an array."""
        d = np.asarray(device_s, dtype=np.float64)
        kd, kh, kr = self.knot_device_s, self.knot_host_s, 1.0 + 1e-6 * self.knot_drift_ppm
        out = np.interp(d, kd, kh)
        out = np.where(d < kd[0], kh[0] + (d - kd[0]) * kr[0], out)
        out = np.where(d > kd[-1], kh[-1] + (d - kd[-1]) * kr[-1], out)
        return float(out) if out.ndim == 0 else out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary that :meth:`from_dict` turns back into the same mapping."""
        return {
            "method": "lower-envelope",
            "window_s": self.window_s,
            "n_observations": self.n_observations,
            "rejected": self.rejected,
            "jitter_s": self.jitter_s if math.isfinite(self.jitter_s) else None,
            "knot_device_s": self.knot_device_s.tolist(),
            "knot_host_s": self.knot_host_s.tolist(),
            "knot_drift_ppm": self.knot_drift_ppm.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClockMap:
        kd = np.asarray(d["knot_device_s"], dtype=np.float64)
        kh = np.asarray(d["knot_host_s"], dtype=np.float64)
        kr = np.asarray(d["knot_drift_ppm"], dtype=np.float64)
        if kd.ndim != 1 or kd.size == 0 or kh.shape != kd.shape or kr.shape != kd.shape:
            raise ValueError("a clock map needs >= 1 knot and as many host times and drifts as device times")
        if not (np.all(np.isfinite(kd)) and np.all(np.isfinite(kh)) and np.all(np.isfinite(kr))):
            raise ValueError("a clock map's knots must be finite")
        if np.any(np.diff(kd) <= 0) or np.any(np.diff(kh) <= 0):
            raise ValueError("a clock map's knot times must be strictly increasing")
        jitter = d.get("jitter_s")
        return cls(kd, kh, kr, float(d["window_s"]), int(d["n_observations"]), int(d.get("rejected", 0)),
                   math.nan if jitter is None else float(jitter))


def _bucket_minima(x: np.ndarray, y: np.ndarray, bucket_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, index) of the lowest point of every non-empty bucket; x sorted."""
    k = np.floor((x - x[0]) / bucket_s).astype(np.int64)
    order = np.lexsort((y, k))  # by bucket, then y
    ks = k[order]
    idx = order[np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])]
    return x[idx], y[idx], idx


def _below_neighbours(x: np.ndarray, y: np.ndarray, bucket_s: float, radius_s: float, reject_below_s: float) -> np.ndarray:
    """Indices of points whose bucket minimum lies more than ``reject_below_s``
    below every other bucket within ``radius_s`` (y detrended by the caller)."""
    bx, by, bi = _bucket_minima(x, y, bucket_s)
    grid = np.floor((bx - x[0]) / bucket_s).astype(np.int64)
    full = np.full(int(grid[-1]) + 1, np.inf)
    full[grid] = by
    r = max(1, int(round(radius_s / bucket_s)))
    pad = np.concatenate([np.full(r, np.inf), full, np.full(r, np.inf)])
    win = np.lib.stride_tricks.sliding_window_view(pad, 2 * r + 1)
    others = np.minimum(win[:, :r].min(axis=1), win[:, r + 1:].min(axis=1))[grid]
    return bi[by < others - reject_below_s]


def fit_clock(
    device_s: Any,
    host_s: Any,
    *,
    window_s: float = DEFAULT_WINDOW_S,
    knot_s: float = DEFAULT_KNOT_S,
    bucket_s: float = DEFAULT_BUCKET_S,
    min_span_s: float = DEFAULT_MIN_SPAN_S,
    reject_below_s: float = DEFAULT_REJECT_BELOW_S,
    outlier_radius_s: float = DEFAULT_OUTLIER_RADIUS_S,
    guard_min_rate_hz: float = DEFAULT_GUARD_MIN_RATE_HZ,
) -> ClockMap:
    """The :class:`ClockMap` of one device's observations over a whole
    recording (any order; non-finite pairs are dropped). See the module doc.
    A recording spanning less than ``min_span_s``: one knot, no drift."""
    d = np.asarray(device_s, dtype=np.float64).ravel()
    h = np.asarray(host_s, dtype=np.float64).ravel()
    if d.shape != h.shape:
        raise ValueError(f"device_s and host_s differ in length: {d.size} vs {h.size}")
    if not (knot_s > 0 and 0 < bucket_s <= window_s and min_span_s > 0):
        raise ValueError("need knot_s > 0, 0 < bucket_s <= window_s and min_span_s > 0")
    finite = np.isfinite(d) & np.isfinite(h)
    d, h = d[finite], h[finite]
    if d.size == 0:
        raise ValueError("no observations")
    order = np.argsort(d, kind="stable")
    d, h = d[order], h[order]
    origin = float(d[0])
    x = d - origin
    y = h - d
    good = np.ones(x.size, dtype=bool)
    if x[-1] >= min_span_s and x.size >= guard_min_rate_hz * x[-1]:
        bx, by, _ = _bucket_minima(x, y, bucket_s)
        m0 = envelope_line(bx, by, 0.5 * bx[-1])[1] if bx.size > 1 else 0.0  # rough, to detrend the test
        for _ in range(5):  # a rejected minimum may hide another below its neighbours
            keep = np.flatnonzero(good)
            bad = _below_neighbours(x[keep], y[keep] - m0 * x[keep], bucket_s, outlier_radius_s, reject_below_s)
            if bad.size == 0:
                break
            good[keep[bad]] = False
    rejected = int(np.count_nonzero(~good))
    x, y = x[good], y[good]
    bx, by, _ = _bucket_minima(x, y, bucket_s)
    span = float(bx[-1] - bx[0])
    if span < min_span_s:
        i = int(np.argmin(by))
        kx, ky, km = bx[i:i + 1], by[i:i + 1], np.zeros(1)
    else:
        n_knots = int(math.ceil(span / knot_s)) + 1
        kx = np.linspace(bx[0], bx[-1], n_knots)
        ky, km = np.empty(n_knots), np.empty(n_knots)
        half = 0.5 * window_s
        bxl, byl = bx.tolist(), by.tolist()
        for j, c in enumerate(kx.tolist()):
            # the window centred on the knot, shifted inside the recording at its ends
            mid = min(max(c, bx[0] + half), bx[-1] - half) if span > window_s else 0.5 * (bx[0] + bx[-1])
            lo = int(np.searchsorted(bx, mid - half, side="left"))
            hi = int(np.searchsorted(bx, mid + half, side="right"))
            v, m = _envelope_fit(bxl[lo:hi], byl[lo:hi], mid, bxl[lo], bxl[hi - 1])
            ky[j] = v + m * (c - mid)
            km[j] = m
        # strictly increasing whatever the data: segment slopes within 1 +- MAX_RATE_ERROR
        seg = np.clip(np.diff(ky) / np.diff(kx), -MAX_RATE_ERROR, MAX_RATE_ERROR)
        ky = ky[0] + np.concatenate([[0.0], np.cumsum(seg * np.diff(kx))])
    heights = y - (np.interp(x, kx, ky) if kx.size > 1 else ky[0])
    kdev = kx + origin
    return ClockMap(kdev, kdev + ky, km * 1e6, float(window_s), int(d.size), rejected, float(np.median(heights)))
