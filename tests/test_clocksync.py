"""Device clock -> host clock mapping (hipimu.core.clocksync) on the simulated
BLE link (hipimu.sources.simulate.link).

The issue's requirement: inter-sensor alignment error < 1 ms with device
clocks at -100..+100 ppm and connection intervals of 7.5-50 ms. The
alignment error of two sensors is the difference of their mapping errors
(mapped host time - true instant), so a common latency cancels; checked on a
10 ms grid over the session, for the batch re-fit (whole session) and the
live estimate after its warm-up. The numbers behind the thresholds are in
bench/clock_sync.py and the module doc of hipimu.core.clocksync.
"""

from __future__ import annotations

import functools
import itertools
import json
import math

import numpy as np
import pytest

from hipimu.core.clocksync import MAX_RATE_ERROR, ClockMap, ClockSync, envelope_line, fit_clock, lower_hull, packet_notify_device_s
from hipimu.core.protocol import MAX_PACKET_DELAY_S, samples_per_packet
from hipimu.core.model import SampleBlock
from hipimu.sources.simulate import packets as V
from hipimu.sources.simulate.link import DeviceClock, SensorLink, airtime_s, deliver, scenario

PPM = (-100.0, 37.0, 100.0)
DURATION_S = 120.0
#: live warm-up (s) after which the live error must be < 1 ms, CI <= 30 ms
#: (bench: the worst of 20 seeds stays under 1 ms after 18 s)
WARMUP_S = 30.0


def live_errors(link: SensorLink, **kwargs) -> tuple[np.ndarray, ClockSync]:
    """Per-sample error (s) of the live mapping: each packet's samples mapped
    with the fit as it stands when the packet arrives."""
    cs = ClockSync(**kwargs)
    err = np.empty(link.sample_true_s.size)
    for i in np.argsort(link.packet_arrival_s, kind="stable"):
        cs.add(float(link.packet_notify_device_s[i]), float(link.packet_arrival_s[i]))
        f, c = link.packet_first[i], link.packet_count[i]
        err[f:f + c] = cs.to_host(link.sample_device_s[f:f + c]) - link.sample_true_s[f:f + c]
    return err, cs


def batch_errors(link: SensorLink, **kwargs) -> tuple[np.ndarray, ClockMap]:
    m = fit_clock(*link.observations(pings=False), **kwargs)
    return m.to_host(link.sample_device_s) - link.sample_true_s, m


def alignment(links: list[SensorLink], errs: list[np.ndarray], from_s: float = 0.0) -> float:
    """Worst |difference of two sensors' errors| (s) after ``from_s`` into the session."""
    t0 = max(l.sample_true_s[0] for l in links)
    grid = np.arange(t0 + from_s, min(l.sample_true_s[-1] for l in links), 0.01)
    e = [np.interp(grid, l.sample_true_s, x) for l, x in zip(links, errs)]
    return float(max(np.max(np.abs(a - b)) for a, b in itertools.combinations(e, 2)))


@functools.cache
def session(ci_s, mtu=247, seed=0) -> list[SensorLink]:
    return scenario(duration_s=DURATION_S, ci_s=ci_s, mtu=mtu, ppm=PPM, seed=seed)


@functools.cache
def fitted(ci_s, mtu=247, seed=0):
    links = session(ci_s, mtu, seed)
    return links, [live_errors(l) for l in links], [batch_errors(l) for l in links]


CASES = [(0.0075, 247), (0.015, 247), (0.03, 247), (0.05, 247), ((0.0075, 0.015, 0.05), 247), (0.0075, 23)]


def case_id(c):
    ci, mtu = c
    return f"ci{'-'.join(f'{x * 1e3:g}' for x in (ci if isinstance(ci, tuple) else (ci,)))}ms-mtu{mtu}"


# ---------------------------------------------------------------------------
# The requirement
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_batch_alignment_under_1_ms(case):
    links, _, batch = fitted(*case)
    assert alignment(links, [e for e, _ in batch]) < 1e-3
    assert all(m.rejected == 0 for _, m in batch)  # no legitimate observation lost


@pytest.mark.parametrize("case", [c for c in CASES if max(np.atleast_1d(c[0])) <= 0.03], ids=case_id)
def test_live_alignment_under_1_ms_after_warm_up(case):
    links, live, _ = fitted(*case)
    assert alignment(links, [e for e, _ in live], WARMUP_S) < 1e-3
    assert all(cs.rejected == 0 and cs.relocks == 0 for _, cs in live)


@pytest.mark.parametrize("case", [c for c in CASES if max(np.atleast_1d(c[0])) > 0.03], ids=case_id)
def test_live_alignment_at_ci_50_ms(case):
    """At CI 50 ms a 208 Hz board's 52.9 ms packets sample only 52 phases of
    the interval (0.96 ms apart), so the envelope is known to ~1 ms until the
    phases drift: the live estimate (extrapolated to now) is only held to
    1.5 ms after 60 s here (bench: worst of 20 seeds 1.2 ms); the batch re-fit
    stays under 1 ms (above)."""
    links, live, _ = fitted(*case)
    assert alignment(links, [e for e, _ in live], 60.0) < 1.5e-3


def test_a_mean_fit_would_fail():
    """The envelope matters: a least-squares line through the same observations
    puts sensors at different CIs tens of ms apart."""
    links = session((0.0075, 0.015, 0.05))
    errs = []
    for l in links:
        d, h = l.observations(pings=False)
        coef = np.polyfit(d - d[0], h - d, 1)
        errs.append(l.sample_device_s + np.polyval(coef, l.sample_device_s - d[0]) - l.sample_true_s)
    assert alignment(links, errs) > 5e-3


def test_notify_instant_pairing_with_mixed_mtus():
    """A board at MTU 23 (full one-sample packets) next to boards at 247
    (11-sample packets sent 50 ms after their first sample): pairing arrivals
    with the last sample would put them ~2 ms apart."""
    links = scenario(duration_s=DURATION_S, ci_s=0.015, mtu=(247, 23, 247), ppm=PPM, seed=3)
    notify = [batch_errors(l)[0] for l in links]
    last = [fit_clock(*l.observations(pings=False, pairing="last")).to_host(l.sample_device_s) - l.sample_true_s for l in links]
    assert alignment(links, notify) < 1e-3
    assert alignment(links, last) > 1.5e-3


@pytest.mark.parametrize("case", [(0.015, 247), (0.05, 247)], ids=case_id)
def test_drift_within_a_few_ppm(case):
    links, live, batch = fitted(*case)
    for l, (_, cs), (_, m) in zip(links, live, batch):
        true_drift = 1e6 * (1.0 / (1.0 + 1e-6 * l.clock.ppm) - 1.0)
        assert cs.ready
        assert abs(cs.drift_ppm - true_drift) < 5.0
        assert np.all(np.abs(m.knot_drift_ppm - true_drift) < 5.0)


def test_drift_follows_a_temperature_ramp():
    """Rates ramping by +-5 ppm over the first 10 minutes of 20: the 120 s
    window follows (its drift changes as the truth does between the first and
    the last minutes); one line over the whole session cannot, and misaligns
    the sensors by more than 1 ms."""
    links = scenario(duration_s=1200.0, ci_s=0.03, ppm=(-100.0, 100.0), ramp_ppm=(5.0, -5.0), ramp_s=600.0, seed=4)
    errs = []
    for l in links:
        e, m = batch_errors(l)
        errs.append(e)
        t = l.clock.true_s(m.knot_device_s)
        true_drift = 1e6 * (1.0 / (1.0 + 1e-6 * l.clock.rate_ppm(t)) - 1.0)
        assert np.max(np.abs(m.knot_drift_ppm - true_drift)[(t > 120.0) & (t < 1080.0)]) < 5.0
        early, late = (t > 100.0) & (t < 300.0), (t > 800.0) & (t < 1100.0)
        change, true_change = (np.mean(x[late]) - np.mean(x[early]) for x in (m.knot_drift_ppm, true_drift))
        assert abs(true_change) > 3.0 and abs(change - true_change) < 1.0
    assert alignment(links, errs) < 1e-3
    whole = [batch_errors(l, window_s=1e4)[0] for l in links]
    assert alignment(links, whole) > 1e-3


def test_online_and_batch_agree_in_the_steady_state():
    links, live, batch = fitted(0.015)
    for l, (el, _), (eb, _) in zip(links, live, batch):
        late = l.sample_true_s > l.sample_true_s[0] + 60.0
        assert np.max(np.abs(el - eb)[late]) < 0.5e-3


# ---------------------------------------------------------------------------
# Guards: a bogus observation below the envelope, host clock steps, resets
# ---------------------------------------------------------------------------


def feed(cs: ClockSync, d: np.ndarray, h: np.ndarray, inject: dict[int, float] | None = None) -> None:
    for i in range(d.size):
        cs.add(float(d[i]), float(h[i]))
        if inject and i in inject:
            cs.add(float(d[i]) + 1e-4, float(h[i]) - inject[i])


def test_online_rejects_an_observation_below_the_envelope():
    l = session(0.015)[0]
    d, h = l.observations(pings=False)
    k = int(np.searchsorted(d, d[0] + 60.0))
    clean, guarded, unguarded = ClockSync(), ClockSync(), ClockSync(reject_below_s=math.inf)
    feed(clean, d[:k + 200], h[:k + 200])
    feed(guarded, d[:k + 200], h[:k + 200], {k: 0.02})  # 20 ms too early: a host clock glitch
    feed(unguarded, d[:k + 200], h[:k + 200], {k: 0.02})
    q = d[k + 199]
    assert clean.rejected == 0 and guarded.rejected == 1 and guarded.relocks == 0
    assert guarded.to_host(q) == clean.to_host(q)
    assert unguarded.to_host(q) < clean.to_host(q) - 5e-3  # what the guard prevents


def test_legitimate_low_observations_are_kept():
    """An observation just below the fit (a packet that found the link free) is not a glitch."""
    l = session(0.015)[0]
    d, h = l.observations(pings=False)
    cs = ClockSync()
    feed(cs, d[:2000], h[:2000])
    x = float(d[1999]) + 0.01
    assert cs.add(x, cs.to_host(x) - 0.5e-3) == 1 and cs.rejected == 0


def test_batch_rejects_an_observation_below_the_envelope():
    l = session(0.015)[0]
    d, h = l.observations(pings=False)
    k = d.size // 2
    clean = fit_clock(d, h)
    bad = fit_clock(np.insert(d, k, d[k] + 1e-4), np.insert(h, k, h[k] - 0.02))
    assert clean.rejected == 0 and bad.rejected == 1
    assert np.array_equal(bad.knot_host_s, clean.knot_host_s)
    unguarded = fit_clock(np.insert(d, k, d[k] + 1e-4), np.insert(h, k, h[k] - 0.02), reject_below_s=math.inf)
    assert np.max(np.abs(unguarded.knot_host_s - clean.knot_host_s)) > 5e-3


def test_relock_after_a_host_clock_step():
    """The host clock steps back 50 ms for good: after relock_after rejections
    in a row the estimator restarts on the new clock."""
    l = session(0.015)[0]
    d, h = l.observations(pings=False)
    k = int(np.searchsorted(d, d[0] + 60.0))
    h2 = h.copy()
    h2[k:] -= 0.05
    cs = ClockSync()
    feed(cs, d, h2)
    assert cs.relocks == 1 and cs.rejected >= cs.relock_after
    new_truth = fit_clock(d[k:], h2[k:])
    q = d[-1]
    assert abs(cs.to_host(q) - new_truth.to_host(q)) < 1e-3


def test_reset_after_a_device_clock_reset():
    l = session(0.015)[0]
    d, h = l.observations(pings=False)
    k = d.size // 2
    cs = ClockSync()
    feed(cs, d[:k], h[:k])
    d2 = d[k:] - d[k] + 5.0  # the device restarted its clock at 5 s
    cs.reset()
    feed(cs, d2, h[k:])
    ref = ClockSync()
    feed(ref, d2, h[k:])
    assert cs.to_host(d2[-1]) == ref.to_host(d2[-1]) and cs.n == ref.n


# ---------------------------------------------------------------------------
# ClockSync basics
# ---------------------------------------------------------------------------


def test_clocksync_before_and_during_warm_up():
    cs = ClockSync()
    assert not cs.ready and cs.n == 0 and math.isnan(cs.offset_s) and math.isnan(cs.drift_ppm)
    with pytest.raises(ValueError):
        cs.to_host(1.0)
    cs.add(100.0, 5000.0)  # one point: offset only, slope 1
    assert cs.to_host(101.0) == pytest.approx(5001.0, abs=1e-9) and cs.offset_s == pytest.approx(4900.0)
    assert not cs.ready and math.isnan(cs.drift_ppm)
    cs.add(np.array([100.5, 101.0]), np.array([5000.5, 5000.9]))  # arrays; the lowest sets the offset
    assert cs.n == 3 and cs.to_host(101.0) == pytest.approx(5000.9, abs=1e-9)
    with pytest.raises(ValueError):
        cs.add(np.array([1.0, 2.0]), np.array([1.0]))
    with pytest.raises(ValueError):
        cs.add(math.nan, 1.0)


def test_clocksync_window_and_stale_observations():
    rng = np.random.default_rng(1)
    d = np.arange(0.0, 300.0, 0.05)
    h = 7.0 + d * (1 + 50e-6) + rng.uniform(0, 0.02, d.size)
    cs = ClockSync(window_s=60.0)
    cs.add(d, h)
    assert cs.ready and cs.span_s <= 60.0 and cs.n == pytest.approx(60.0 / 0.05, abs=6)
    assert cs.drift_ppm == pytest.approx(50.0, abs=5.0)
    assert cs.offset_s == pytest.approx(7.0 + 300.0 * 50e-6, abs=1e-3)
    assert 0.0 < cs.jitter_s < 0.02  # median height above the envelope: ~10 ms here
    assert cs.add(100.0, 107.0) == 0 and cs.stale == 1  # older than the window
    assert cs.add(299.0, 7.0 + 299.0 * (1 + 50e-6) + 0.01) == 1  # out of order but in the window: fine
    a = cs.to_host(np.array([290.0, 295.0]))
    assert a.shape == (2,) and isinstance(cs.to_host(290.0), float)


# ---------------------------------------------------------------------------
# ClockMap: monotonic, JSON round trip
# ---------------------------------------------------------------------------


def test_clock_map_is_strictly_increasing():
    links, _, batch = fitted(0.05)
    for l, (_, m) in zip(links, batch):
        q = np.linspace(l.sample_device_s[0] - 1.0, l.sample_device_s[-1] + 1.0, 200_001)  # beyond both ends too
        hq = m.to_host(q)
        slope = np.diff(hq) / np.diff(q)
        assert np.all(np.diff(hq) > 0) and np.all(np.abs(slope - 1.0) < 200e-6)
    # whatever the observations: garbage in, still a strictly increasing map
    rng = np.random.default_rng(2)
    d = np.sort(rng.uniform(0, 100, 500))
    m = fit_clock(d, d + rng.normal(0, 1.0, d.size))
    assert np.all(np.diff(m.knot_host_s) / np.diff(m.knot_device_s) >= 1 - MAX_RATE_ERROR - 1e-12)
    assert np.all(np.diff(m.to_host(np.linspace(-10, 110, 10_001))) > 0)


def test_clock_map_round_trip():
    links, _, batch = fitted(0.015)
    m = batch[1][1]
    back = ClockMap.from_dict(json.loads(json.dumps(m.to_dict())))
    q = links[1].sample_device_s
    assert np.array_equal(back.to_host(q), m.to_host(q))
    assert back.to_dict() == m.to_dict()
    d = m.to_dict()
    with pytest.raises(ValueError):
        ClockMap.from_dict({**d, "knot_host_s": d["knot_host_s"][::-1]})
    with pytest.raises(ValueError):
        ClockMap.from_dict({**d, "knot_drift_ppm": d["knot_drift_ppm"][:-1]})


def test_short_recording_is_offset_only():
    m = fit_clock([10.0, 10.5, 11.0], [20.002, 20.501, 21.003])
    assert m.knot_device_s.size == 1 and m.knot_drift_ppm[0] == 0.0
    assert m.to_host(12.0) == pytest.approx(22.001)
    with pytest.raises(ValueError):
        fit_clock([], [])


# ---------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------


def test_envelope_line_is_the_best_line_below_all_points():
    rng = np.random.default_rng(5)
    for _ in range(30):
        n = int(rng.integers(2, 40))
        x = np.sort(rng.choice(1000, n, replace=False)).astype(float) / 10
        y = 1e-4 * x + rng.exponential(1.0, n)
        xs = float(rng.uniform(x[0], x[-1]))
        v, m = envelope_line(x, y, xs)
        line = v + m * (x - xs)
        assert np.all(line <= y + 1e-9)
        # brute force: the lowest chord over xs is the hull there
        best = min(y[i] + (y[j] - y[i]) * (xs - x[i]) / (x[j] - x[i]) for i in range(n) for j in range(n) if x[i] <= xs <= x[j] and i != j)
        assert v == pytest.approx(best, abs=1e-9)
        h = lower_hull(x, y)
        assert h[0] == 0 and h[-1] == n - 1


def test_packet_notify_instant():
    full = packet_notify_device_s([0.0, 1.0], [0.048, 1.048], [True, False], 1 / 208)
    assert full[0] == 0.048 and full[1] == pytest.approx(1.0 + MAX_PACKET_DELAY_S)
    after_drop = packet_notify_device_s(0.0, 0.02, False, 1 / 208)  # ended by a drop: the next sample's time
    assert after_drop == pytest.approx(0.02 + 1 / 208)


def test_batching_matches_the_virtual_board():
    """packet_bounds and the simulated send instants follow block_packets."""
    for mtu in (247, 23):
        links = scenario(duration_s=3.0, ci_s=0.015, mtu=mtu, ppm=(0.0,), seed=6)
        l = links[0]
        n = l.sample_true_s.size
        block = SampleBlock("pelvis", l.sample_true_s, np.zeros((n, 3)), np.zeros((n, 3)))
        pk = V.block_packets(block, V.board_config(mtu=mtu), device_clock_offset_s=l.clock.offset_s, device_clock_ppm=0.0)
        assert [p.first for p in pk] == l.packet_first.tolist()
        assert [p.count for p in pk] == l.packet_count.tolist()
        assert np.allclose([p.send_time_s for p in pk], l.packet_send_s, atol=2e-6)
        assert np.all(l.packet_full == (l.packet_count == samples_per_packet(mtu, False)))


def test_delivery_is_late_in_order_and_on_connection_events():
    rng = np.random.default_rng(7)
    send = np.sort(rng.uniform(0, 10, 2000))
    air = airtime_s(20, ll_max_payload=27)
    arr = deliver(send, ci_s=0.015, phase_s=0.004, airtime_s=air, latency_s=0.002, retx_prob=0.05, seed=1)
    assert np.all(np.diff(arr) >= 0) and np.all(arr >= send + air + 0.002)
    exact = deliver(send, ci_s=0.015, phase_s=0.004, airtime_s=air, latency_s=0.0, jitter_s=0.0, spike_prob=0.0, seed=1)
    pos = ((exact - 0.004) % 0.015) / air  # events at 4 ms + k 15 ms, then one packet per air time
    assert np.all(np.abs(pos - np.round(pos)) < 1e-6) and np.all(np.round(pos) >= 1)
    assert np.max(exact - send) < 0.015 + 20 * air  # no retransmissions: within one interval plus the queue


def test_device_clock_inverse():
    c = DeviceClock(ppm=-100.0, offset_s=4000.0, ramp_ppm=5.0, ramp_s=600.0, ramp_start_s=100.0)
    t = np.linspace(0, 1500, 1001)
    assert np.allclose(c.true_s(c.device_s(t)), t, atol=1e-9)
    assert np.allclose(np.diff(c.device_s(t)) / np.diff(t), 1 + 1e-6 * c.rate_ppm(t[:-1] + 0.75), atol=2e-8)


@pytest.mark.parametrize("ci_s", [0.0075, 0.015, 0.03, 0.05])
@pytest.mark.parametrize("jitter_s", [0.0001, 0.0006])
def test_connection_interval_from_arrivals(ci_s, jitter_s):
    from hipimu.core.clocksync import connection_interval_s

    rng = np.random.default_rng(int(ci_s * 1e4))
    send = rng.uniform(0, 1) + np.arange(300) * 11 / 208.0  # 208 Hz, 11 samples per packet
    arrival = np.ceil(send / ci_s) * ci_s + 0.001 + rng.exponential(jitter_s, send.size)
    # at CI 7.5 ms nearly every gap is 7 CIs (52.5 ms): that must not pass for the CI
    assert connection_interval_s(arrival) == pytest.approx(ci_s)


def test_connection_interval_unknown_without_a_grid():
    from hipimu.core.clocksync import connection_interval_s

    rng = np.random.default_rng(1)
    assert connection_interval_s(np.cumsum(rng.uniform(0.02, 0.08, 300))) is None  # no grid at all
    assert connection_interval_s(np.arange(10) * 0.015) is None  # too few arrivals


@pytest.mark.parametrize("ci_s", [0.0075, 0.015, 0.05])
def test_connection_interval_survives_a_host_stall(ci_s):
    """A stalled event loop stamps a run of arrivals late (here a quarter of them,
    by up to 30 ms): the interval is still found, not a divisor or a multiple."""
    from hipimu.core.clocksync import connection_interval_s

    rng = np.random.default_rng(7)
    send = rng.uniform(0, 1) + np.arange(160) * 11 / 208.0
    arrival = np.ceil(send / ci_s) * ci_s + 0.001 + rng.exponential(0.0002, send.size)
    arrival[20:60] += rng.uniform(0.002, 0.030, 40)
    assert connection_interval_s(arrival) == pytest.approx(ci_s)
