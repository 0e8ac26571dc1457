"""Clock synchronisation: inter-sensor alignment of the device -> host clock mapping.

Simulates three 208 Hz boards (device clocks -100, +37, +100 ppm, random
offsets) on BLE links (hipimu.sources.simulate.link: connection events at a
random phase, 2 % retransmissions, a common 2 ms stack latency, exponential OS
jitter of 0.3 ms mean with 0.5 % spikes of 1-5 ms), pairs each packet's
arrival with its notify instant (hipimu.core.clocksync.packet_notify_device_s)
and maps every sample's device time to the host clock two ways:

* live: a ClockSync per sensor, fed in arrival order; a packet's samples are
  mapped with the fit as it stands when the packet arrives (what the live
  view does);
* batch: fit_clock over the whole session's observations (re-timing a
  finished recording).

The error of a sample is its mapped host time minus its true instant; the
inter-sensor alignment error is the difference of two sensors' errors (on a
10 ms grid, every pair), so the common latency cancels. Reported: max and 99th
percentile (ms) for live after 10 s and after 60 s and for batch; warm-up: the
time after which the live error stays under 1 ms (worst seed); drift error:
the worst |estimated - true| drift (ppm) of the final live fit and of the
batch knots; us/add: mean cost of ClockSync.add (this machine).

Table 1: every sensor at one CI (and a mixed row), MTU 247 (11-sample
packets) and MTU 23 (one sample per packet); the host pings every ~1 s and
the fits use the data packets, the data packets and the ping responses, or
the ping responses only (same sessions). Table 2: the window length on
20-minute sessions whose device rates ramp by +5 / -5 / 0 ppm over their first
10 minutes (a crystal warming up on the body), CI 30 ms: why a sliding window,
and how long ("batch fit s": fit_clock per 20-minute board). Table 3: which
device instant to pair with a packet's arrival, with one sensor at MTU 23
among two at 247 (and whether subtracting each packet's air time helps).

Fitting the ping responses alone is poor (their delays are bimodal, see the
module doc of hipimu.core.clocksync): those rows show why the BLE source
feeds data packets. Asserts nothing.

Run: .venv/bin/python bench/clock_sync.py [--seeds N] [--duration S] [--quick]
(default 3 seeds of 240 s, about 5 minutes; --quick: 1 seed, tables 1 and 3 only).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time

import numpy as np

from hipimu.core.clocksync import ClockSync, fit_clock
from hipimu.sources.simulate.link import SensorLink, scenario

PPM = (-100.0, 37.0, 100.0)
CIS = {"7.5": 0.0075, "15": 0.015, "30": 0.03, "50": 0.05, "7.5/15/50": (0.0075, 0.015, 0.05)}
GRID_S = 0.01
LIMIT_S = 1e-3


def live_errors(link: SensorLink, *, data: bool = True, pings: bool = False, pairing: str = "notify",
                airtime: bool = False, **sync_kwargs) -> tuple[np.ndarray, ClockSync, float]:
    """Per-sample live mapping error (s; NaN before the first observation), the
    final estimator, mean seconds per add. ``airtime``: arrivals minus the
    packet's air time."""
    cs = ClockSync(**sync_kwargs)
    dev = link.packet_notify_device_s if pairing == "notify" else link.packet_last_device_s
    arr = link.packet_arrival_s - (link.packet_airtime_s if airtime else 0.0)
    events = [(a, 0, i) for i, a in enumerate(link.packet_arrival_s.tolist())]
    if pings:
        events += [(a, 1, i) for i, a in enumerate(link.ping_arrival_s.tolist())]
    events.sort()
    err = np.full(link.sample_true_s.size, np.nan)
    spent, adds = 0.0, 0
    for a, kind, i in events:
        if kind or data:
            d, h = (float(link.ping_device_s[i]), a) if kind else (float(dev[i]), float(arr[i]))
            t = time.perf_counter()
            cs.add(d, h)
            spent += time.perf_counter() - t
            adds += 1
        if not kind and adds:
            f, c = link.packet_first[i], link.packet_count[i]
            err[f:f + c] = cs.to_host(link.sample_device_s[f:f + c]) - link.sample_true_s[f:f + c]
    return err, cs, spent / max(adds, 1)


def batch_errors(link: SensorLink, *, data: bool = True, pings: bool = False, pairing: str = "notify",
                 airtime: bool = False, **fit_kwargs):
    d, h = link.observations(data=data, pings=pings, pairing=pairing)
    if airtime:  # the packets' own air times (pings are not used with this)
        h = h - link.packet_airtime_s[np.argsort(link.packet_arrival_s, kind="stable")]
    m = fit_clock(d, h, **fit_kwargs)
    return m.to_host(link.sample_device_s) - link.sample_true_s, m


def inter(links: list[SensorLink], errs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(grid times, worst |error difference| over sensor pairs at each; NaN
    where a sensor has no mapping yet) in s."""
    grid = np.arange(max(l.sample_true_s[0] for l in links), min(l.sample_true_s[-1] for l in links), GRID_S)
    e = [np.interp(grid, l.sample_true_s, x) for l, x in zip(links, errs)]
    return grid, np.max([np.abs(a - b) for a, b in itertools.combinations(e, 2)], axis=0)


def true_drift_ppm(link: SensorLink, t_s) -> np.ndarray:
    return 1e6 * (1.0 / (1.0 + 1e-6 * link.clock.rate_ppm(t_s)) - 1.0)


def stats_ms(d: np.ndarray) -> str:
    d = d[np.isfinite(d)]
    return f"{1e3 * d.max():5.2f} {1e3 * np.percentile(d, 99):5.2f}" if d.size else "    -     -"


OBSERVATIONS = {"data": (True, False), "data+pings": (True, True), "pings": (False, True)}


def table1(seeds: int, duration_s: float) -> None:
    print(f"Table 1: inter-sensor alignment error (ms, max p99 over {seeds} seed(s) x {duration_s:g} s), 3 sensors at "
          f"{', '.join(f'{p:+g}' for p in PPM)} ppm; the host pings every ~1 s, the fits use the observations named")
    head = (f"{'CI ms':<10}{'MTU':>4} {'observations':<11} {'live>10s':>12} {'live>60s':>12} {'batch':>12} {'warm-up s':>10}"
            f" {'drift ppm live/batch':>21} {'us/add':>7}")
    print(head)
    print("-" * len(head))
    for (ci_name, ci), mtu in itertools.product(CIS.items(), (247, 23)):
        sessions = [scenario(duration_s=duration_s, ci_s=ci, mtu=mtu, ppm=PPM, pings=True, seed=seed) for seed in range(seeds)]
        for obs, (data, pings) in OBSERVATIONS.items():
            l10, l60, bt, warm, dl, db, cost = [], [], [], 0.0, 0.0, 0.0, []
            for links in sessions:
                live = [live_errors(l, data=data, pings=pings) for l in links]
                batch = [batch_errors(l, data=data, pings=pings) for l in links]
                grid, d = inter(links, [x[0] for x in live])
                t = grid - grid[0]
                l10.append(d[t >= 10.0])
                l60.append(d[t >= 60.0])
                over = np.flatnonzero(~(d <= LIMIT_S))  # NaN (no mapping yet) counts as over
                warm = max(warm, float(t[over[-1]] + GRID_S) if over.size else 0.0)
                bt.append(inter(links, [x[0] for x in batch])[1])
                for l, (_, cs, c), (_, m) in zip(links, live, batch):
                    cost.append(c)
                    t_mid = l.sample_true_s[-1] - 0.5 * min(cs.window_s, cs.span_s)  # about the live fit's anchor
                    dl = max(dl, abs(cs.drift_ppm - float(true_drift_ppm(l, t_mid))))
                    db = max(db, float(np.max(np.abs(m.knot_drift_ppm - true_drift_ppm(l, l.clock.true_s(m.knot_device_s))))))
            warm_s = f"{warm:10.1f}" if warm < duration_s - 1 else f"{'> ' + format(duration_s, 'g'):>10}"
            print(f"{ci_name:<10}{mtu:>4} {obs:<11} {stats_ms(np.concatenate(l10)):>12} {stats_ms(np.concatenate(l60)):>12} "
                  f"{stats_ms(np.concatenate(bt)):>12} {warm_s} {dl:10.1f} /{db:9.1f} {1e6 * np.mean(cost):7.1f}")
    print()


def table2(seeds: int) -> None:
    duration_s = 1200.0
    print(f"Table 2: window length, {duration_s / 60:g}-minute sessions, device rates ramping by +5 / -5 / 0 ppm over the first 10 min, CI 30 ms, MTU 247, {seeds} seed(s)")
    head = f"{'window s':>9} {'live>60s':>12} {'batch':>12} {'us/add':>7} {'batch fit s':>11}"
    print(head)
    print("-" * len(head))
    sessions = [scenario(duration_s=duration_s, ci_s=0.03, mtu=247, ppm=PPM, ramp_ppm=(5.0, -5.0, 0.0), ramp_s=600.0, seed=100 + s) for s in range(seeds)]
    for window in (30.0, 60.0, 120.0, 180.0, 300.0, 600.0, duration_s):
        lv, bt, cost, fit_s = [], [], [], 0.0
        for links in sessions:
            live = [live_errors(l, window_s=window) for l in links]
            grid, d = inter(links, [x[0] for x in live])
            lv.append(d[grid - grid[0] >= 60.0])
            cost += [x[2] for x in live]
            errs = []
            for l in links:
                t = time.perf_counter()
                e, _ = batch_errors(l, window_s=window)
                fit_s += time.perf_counter() - t
                errs.append(e)
            bt.append(inter(links, errs)[1])
        name = f"{window:g}" if window < duration_s else "whole"
        print(f"{name:>9} {stats_ms(np.concatenate(lv)):>12} {stats_ms(np.concatenate(bt)):>12} {1e6 * np.mean(cost):7.1f} {fit_s / (3 * len(sessions)):11.3f}")
    print()


def table3(seeds: int, duration_s: float) -> None:
    print("Table 3: device instant paired with a packet's arrival; sensors at MTU 247, 23, 247, CI 15 ms (ms, max p99)")
    head = f"{'pairing':<28} {'live>60s':>12} {'batch':>12}"
    print(head)
    print("-" * len(head))
    sessions = [scenario(duration_s=duration_s, ci_s=0.015, mtu=(247, 23, 247), ppm=PPM, seed=200 + s) for s in range(seeds)]
    for pairing, airtime, name in (("notify", False, "notify instant (default)"), ("last", False, "last sample"),
                                   ("notify", True, "notify, arrival - air time")):
        lv, bt = [], []
        for links in sessions:
            grid, d = inter(links, [live_errors(l, pairing=pairing, airtime=airtime)[0] for l in links])
            lv.append(d[grid - grid[0] >= 60.0])
            bt.append(inter(links, [batch_errors(l, pairing=pairing, airtime=airtime)[0] for l in links])[1])
        print(f"{name:<28} {stats_ms(np.concatenate(lv)):>12} {stats_ms(np.concatenate(bt)):>12}")
    print()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=240.0, help="session length for tables 1 and 3, s")
    ap.add_argument("--quick", action="store_true", help="1 seed, tables 1 and 3 only")
    args = ap.parse_args(argv)
    seeds = 1 if args.quick else args.seeds
    t = time.perf_counter()
    table1(seeds, args.duration)
    if not args.quick:
        table2(seeds)
    table3(seeds, args.duration)
    print(f"({time.perf_counter() - t:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
