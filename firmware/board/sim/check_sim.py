"""Check a board-layer simulation log (run_sim.sh) with hipimu's own decoder.

Usage: check_sim.py 6d|9d LOG. Exits non-zero, with one line per failed
check, if the firmware's behaviour on fake hardware differs from PROTOCOL.md.
"""

from __future__ import annotations

import sys

import numpy as np

from hipimu.core import protocol as p

FAKE_ODR_HZ = 208 * 1.005  # the fake IMU runs 0.5 % fast
MAG = (1000, -2000, 3000)  # what the fake LIS3MDL reads


def main() -> int:
    mode, path = sys.argv[1], sys.argv[2]
    nine = mode == "9d"
    lines = [ln.split() for ln in open(path, encoding="ascii") if ln.strip()]
    failures: list[str] = []

    def check(ok: bool, what: str) -> None:
        if not ok:
            failures.append(what)

    writes = {int(b[2:4], 16): int(t) for tag, t, b in (ln for ln in lines if ln[0] == "W")}  # token -> us
    responses = {}
    for ln in lines:
        if ln[0] == "C":
            r = p.decode_response(bytes.fromhex(ln[2]))
            responses[r.token] = (int(ln[1]), r)
    data = [(int(ln[1]), bytes.fromhex(ln[2])) for ln in lines if ln[0] == "D"]
    configs = [p.decode_config(bytes.fromhex(ln[1] if len(ln) == 2 else ln[2])) for ln in lines if ln[0] == "G"]
    names = [ln[1] for ln in lines if ln[0] == "NAME"]
    off = [int(ln[1]) for ln in lines if ln[0] == "OFF"]

    # identity and advertising name
    check(names == ["hipimu-cdef"], f"advertised name {names}")
    check(all(c.device_id == "0123456789abcdef" for c in configs), "device id in config")

    # every request answered, with the right status
    expected = {1: p.Status.OK, 3: p.Status.OK, 4: p.Status.OK, 5: p.Status.ERR_UNKNOWN_OPCODE, 6: p.Status.ERR_BAD_LENGTH}
    if nine:
        expected[2] = p.Status.OK
    check(set(responses) == set(expected), f"responses for tokens {sorted(responses)}, expected {sorted(expected)}")
    for token, want in expected.items():
        if token in responses:
            check(responses[token][1].status == want, f"token {token}: {responses[token][1].status!r}, expected {want!r}")
    if 1 in responses:
        t_resp, r = responses[1]
        check(r.host_nonce == 0x12345678, "TIME_SYNC nonce echoed")
        check(r.device_time_us is not None and abs(r.device_time_us - writes[1]) < 2000,
              f"TIME_SYNC device time {r.device_time_us} vs request at {writes[1]} us (device clock = sim clock)")

    # data packets through the real host decoder
    stream_cfg = next((c for c in configs if c.streaming), None)
    check(stream_cfg is not None, "a config with streaming=1 was published")
    if stream_cfg is None or not data:
        check(bool(data), "data packets were sent")
        return report(mode, failures)
    check(stream_cfg.mtu == 247, f"config mtu {stream_cfg.mtu}")
    check(stream_cfg.mag_enabled == nine, f"config mag_enabled {stream_cfg.mag_enabled}")
    check(configs[-1].mtu == 23 and not configs[-1].streaming, "after disconnect: mtu 23, idle")

    packets = [p.decode_packet(b) for _, b in data]
    check(all(pk.with_mag == nine for pk in packets), "9D flag")
    check([pk.seq for pk in packets] == [i % 256 for i in range(len(packets))], "seq 0, 1, 2, ... without a gap")
    check(all(pk.dropped == 0 for pk in packets), "no drops")
    per_packet = p.samples_per_packet(247, nine)
    counts = np.array([pk.count for pk in packets])
    check(counts.max() <= per_packet, f"at most {per_packet} samples per packet (max {counts.max()})")

    values = np.concatenate([pk.counts for pk in packets]).astype(np.int32)
    k = values[:, 3]  # the fake writes its sample counter into gx
    check(bool(np.all(np.diff(k) % 32768 == 1)), "every IMU sample exactly once, in order")
    check(bool(np.all((values[:, 0] & 0xFFFF) == ((k ^ 0x5555) & 0xFFFF))), "ax/gx order: the FIFO's Gx..Az reordered to ax..gz")
    check(bool(np.all(values[:, 1] == 200) and np.all(values[:, 4] == 100)), "ay and gy in place")
    if nine:
        check(bool(np.all(values[:, 6:9] == MAG)), "magnetometer triplet")

    t_start, t_stop = writes[3], writes[4]  # START, STOP
    period_true = 1e6 / FAKE_ODR_HZ
    first_t = packets[0].t0_us
    last_t = packets[-1].t0_us + (packets[-1].count - 1) * 1e6 / 208
    check(100_000 <= first_t - t_start <= 100_000 + 2 * period_true,
          f"first sample {(first_t - t_start) / 1e3:.1f} ms after START (100 ms settle)")
    check(t_stop - last_t <= 50_000 + 2_000 + period_true,
          f"last sample sent {(t_stop - last_t) / 1e3:.1f} ms before STOP (STOP drops what is younger than ~50 ms)")

    # timestamps: t0 of each packet against its first sample's index
    t0 = np.array([pk.t0_us for pk in packets], dtype=float)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slope, icpt = np.polyfit(first, t0, 1)
    resid = t0 - (slope * first + icpt)
    check(abs(slope - period_true) < 0.01 * period_true, f"t0 spacing {slope:.1f} us/sample, IMU period {period_true:.1f}")
    check(np.abs(resid).max() < 1.2 * period_true, f"t0 jitter {np.abs(resid).max():.0f} us, over 1.2 periods")

    # latency: the notification leaves after its last sample, at most 50 ms after its first
    sent = np.array([t for t, _ in data], dtype=float)
    last_sample = t0 + (counts - 1) * 1e6 / 208
    check(bool(np.all(sent >= last_sample - period_true)), "no packet before its samples were taken")
    lat = sent - t0
    check(lat.max() <= 50_000 + 2_000, f"latency first sample -> notification up to {lat.max() / 1e3:.1f} ms (PROTOCOL: 50)")

    # the host's stream decoder sees one clean stream
    stream = p.PacketStream(stream_cfg, "pelvis")
    events = []
    for (t, b) in data:
        events += stream.feed(b, t * 1e-6)
    events += stream.close()
    bad = [e for e in events if not isinstance(e, p.Samples)]
    check(not bad, f"PacketStream events other than Samples: {bad[:3]}")
    check(sum(len(e.block.time_s) for e in events if isinstance(e, p.Samples)) == len(values), "PacketStream sample count")

    # switched itself off 10 min after the link went away
    t_disc = max(t for t, _ in responses.values())
    check(len(off) == 1 and 600e6 <= off[0] - t_disc <= 602e6, f"System OFF at {off} (disconnect ~{t_disc})")

    print(f"{mode}: {len(packets)} packets, {len(values)} samples, {counts.mean():.1f} samples/packet "
          f"({counts.min()}-{counts.max()}), {len(packets) / ((t_stop - t_start) * 1e-6):.1f} packets/s, "
          f"latency {lat.mean() / 1e3:.1f} ms mean / {lat.max() / 1e3:.1f} ms max, "
          f"t0 jitter {np.abs(resid).max():.0f} us max")
    return report(mode, failures)


def report(mode: str, failures: list[str]) -> int:
    for f in failures:
        print(f"{mode}: FAIL {f}")
    print(f"{mode}: {'OK' if not failures else f'{len(failures)} check(s) failed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
