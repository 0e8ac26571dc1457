"""BLE throughput: how many sensors x rate the host pipeline sustains, and its CPU per sensor.

Streams N simulated boards through the real host stack -- bleak's BlueZ
backend on a private D-Bus against the simulated BlueZ
(:class:`hipimu.sources.ble.simbluez.harness.SimulatedBlueZ`, whose boards run
the real firmware core) -- into recordings with
:func:`hipimu.apps._ble.record_session`, exactly as ``hipimu record`` does.
A :class:`~hipimu.sources.ble.source.BleSource` takes at most 3 boards (one
per role), so N boards are ceil(N / 3) sources recording concurrently to
their own files in ONE asyncio loop: the load under test is one host process
decoding N boards and writing them (bleak's D-Bus client included).

Each configuration (sensors N, rate, ATT MTU, connection interval) runs in a
child process of its own (a fresh simulated BlueZ, scripts made at the rate
under test, device clocks at 0 ppm); once every board streams and after a
``--warmup`` s (default 1), a window of ``--duration`` s (default 15) is
measured:

* rx / exp: samples the host decoded during the window (LinkStats.samples),
  summed over the boards, against the samples the boards took in it (the
  device clock's elapsed time, from the simulation's clock model, x rate);
* lost / dropped: LinkStats.lost_samples (packets never received) and
  device_dropped (the board's FIFO overflowed), whole session up to the end of
  the window, summed over the boards;
* host CPU: time.process_time() of the child over the window (all of its
  threads: bleak's D-Bus client, the decoding, the clock fits, the recording
  writers), in % of one core, and that divided by N;
* mock / daemon CPU: the python-dbusmock BlueZ and the dbus-daemon over the
  window (/proc), % of one core: the simulated radio and bus, not the host
  pipeline (on a real system bluetoothd and the system bus do this work);
* lat p99: 99th percentile over the window of every packet's latency as
  LinkStats.latency_ms defines it (arrival minus the mapped instant of the
  packet's last sample; the live view shows the median of the last 64);
* mock late: connection events the simulated radio handled more than 5 ms
  late during the window (a saturated mock, not the host);
* rec gaps: samples missing from the finished recordings by their device
  times (hipimu.core.timing.timing_stats), after a graceful stop; "-" when the
  host was behind (the child then exits without stopping: a backlog can take
  minutes to drain); "*": BleSource.stop() hung -- a link's run() task lost
  its cancellation while a TIME_SYNC completed and pinged on -- and the bench
  set the links' ``_closing`` after 5 s so that the recordings get finished.

"sustained": zero lost and zero dropped samples on every board AND every
board's rx within one packet + one connection interval + 100 ms of its exp
(keeping up). The simulated stack loses nothing when the host falls behind: the
notifications queue up (D-Bus daemon, socket, the host's queues) and the
latency grows without bound, so "keeping up" is what fails first. For each (MTU, CI, rate) the
sensor counts are tried in increasing order and the larger ones are skipped
once one is not sustained ("skipped" rows). The summary gives the largest N x
rate sustained at each MTU and the host CPU per sensor at 208 Hz.

Each configuration runs once (no repeats), on whatever else this machine is
doing (2 cores here; the 1-minute load average is printed at the start and
at the end): expect run-to-run scatter in the CPU figures. The window covers
the first ~20 s of a session; a cost that only sets in later (after so many
packets, a fuller clock window) is not in it: --warmup 25 moves the window
past the first 400 packets of a 208 Hz MTU-247 board. Asserts nothing;
leaves no process behind (each child's dbus-daemon and mock are checked and
killed by pid).

Run: .venv/bin/python bench/ble_throughput.py [--duration S] [--warmup S] [--quick]
(default: 15 s windows, up to 16 configurations (fewer once one is not
sustained), 4.5-5 minutes; --quick: 5 s windows, up to 6 configurations,
about 1 minute; --warmup S: stream longer before the window).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import deque
from pathlib import Path

import numpy as np

ROLES = ("pelvis", "thigh_right", "thigh_left")
SETUP_TIMEOUT_S = 60.0  # child start-up, scripts, scanning and connecting
STOP_NUDGE_S = 5.0  # graceful stop of the recordings (when keeping up), then help it end
STOP_TIMEOUT_S = 10.0
LATENCY_SLACK_S = 0.1  # "keeping up": rx may trail exp by a packet, a CI and this much latency

#: (MTU, CI s, rate Hz, sensor counts tried in increasing order)
FULL = [
    (247, 0.015, 208, (1, 3, 6, 9)),
    (247, 0.015, 104, (3, 9)),
    (247, 0.015, 52, (3, 9)),
    (23, 0.015, 208, (1, 3, 6, 9)),
    (247, 0.0075, 208, (3, 9)),
    (23, 0.0075, 208, (3, 9)),
]
QUICK = [
    (247, 0.015, 208, (1, 3, 9)),
    (23, 0.015, 208, (1, 3)),
    (247, 0.0075, 208, (9,)),
]


# ---------------------------------------------------------------------------
# child: one configuration
# ---------------------------------------------------------------------------


class _RecordingDeque(deque):
    """DeviceLink._latency's replacement: a deque that also copies every value
    appended while ``sink`` is a list (the packets of the window)."""

    sink: list | None = None

    def append(self, x) -> None:  # type: ignore[override]
        super().append(x)
        if self.sink is not None:
            self.sink.append(x)


def _emit(tag: str, obj: dict) -> None:
    sys.stdout.write(f"{tag} {json.dumps(obj)}\n")
    sys.stdout.flush()


def child(cfg: dict) -> None:
    import asyncio

    os.environ["HIPIMU_CONFIG_DIR"] = str(Path(cfg["dir"]) / "config")
    from hipimu.apps._ble import record_session
    from hipimu.core.model import SessionInfo
    from hipimu.core.timing import timing_stats
    from hipimu.sources.ble.roles import SensorRef
    from hipimu.sources.ble.simbluez.harness import SimulatedBlueZ
    from hipimu.sources.ble.source import BleSource
    from hipimu.storage.recording import load_session

    n, rate, mtu, ci, duration, warmup = (cfg[k] for k in ("n", "rate", "mtu", "ci", "duration", "warmup"))
    sim = SimulatedBlueZ().start()
    _emit("PIDS", sim.pids)
    with sim.activate():
        boards = []  # (address, device id, role)
        for i in range(n):
            role = ROLES[i % 3]
            addr = sim.add_sensor(f"b0a7{i:012x}", role=role, rate_hz=rate, mtu=mtu, ci_s=ci, link_seed=i)
            boards.append((addr, sim.script(addr).device_id, role))
        groups = [boards[g:g + 3] for g in range(0, n, 3)]
        paths = [Path(cfg["dir"]) / f"n{n}-r{rate}-m{mtu}-c{ci}-{j}.hipimu" for j in range(len(groups))]

        async def main() -> None:
            stop = asyncio.Event()
            sources = [BleSource({role: SensorRef.parse(dev) for _a, dev, role in grp}, rate_hz=rate,
                                 scan_timeout_s=20.0) for grp in groups]
            tasks = [asyncio.create_task(record_session(src, p, SessionInfo(subject_id="bench"), stop=stop,
                                                        overwrite=True))
                     for src, p in zip(sources, paths)]

            def links():
                return [link for src in sources for link in src.links.values()]

            deadline = time.monotonic() + SETUP_TIMEOUT_S
            while not (all(s.t0_host_s is not None for s in sources) and len(links()) == n
                       and all(link.stats.samples > 0 for link in links())):
                for t in tasks:
                    if t.done():
                        t.result()  # raises what went wrong
                        raise RuntimeError("a recording ended before streaming")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"not all {n} boards streaming after {SETUP_TIMEOUT_S:g} s")
                await asyncio.sleep(0.05)
            lat: list[float] = []
            for link in links():
                link._latency = _RecordingDeque(link._latency, maxlen=link._latency.maxlen)
            await asyncio.sleep(warmup)

            # -- the window ---------------------------------------------------------
            mock0 = sim.stats("")
            s0 = {link.stats.device_id: link.stats.samples for link in links()}
            for link in links():
                link._latency.sink = lat
            sim0, c0, w0 = sim.cpu_seconds(), time.process_time(), time.monotonic()
            await asyncio.sleep(duration)
            sim1, c1, w1 = sim.cpu_seconds(), time.process_time(), time.monotonic()
            for link in links():
                link._latency.sink = None
            stats = {link.stats.device_id: (link.stats.samples, link.stats.lost_samples, link.stats.device_dropped,
                                            link.config.samples_per_packet) for link in links()}
            mock1 = sim.stats("")
            wall = w1 - w0

            per_board = []
            for addr, dev, _role in boards:
                truth = sim.truth(addr)
                d0, d1 = SimulatedBlueZ.device_us(truth, np.array([w0, w1]))
                expected = (d1 - d0) * 1e-6 * rate
                samples, lost, dropped, spp = stats[dev]
                rx = samples - s0[dev]
                tol = spp + math.ceil(rate * (ci + LATENCY_SLACK_S)) + 1
                per_board.append(dict(rx=rx, exp=expected, lost=lost, dropped=dropped,
                                      behind=bool(rx < expected - tol),
                                      mock_drops=mock1[addr]["device_drops"],
                                      late=mock1[addr]["late_events"] - mock0[addr]["late_events"]))
            behind = any(b["behind"] for b in per_board)
            result = dict(
                wall_s=wall, host_cpu=(c1 - c0) / wall,
                mock_cpu=(sim1["mock"] - sim0["mock"]) / wall, daemon_cpu=(sim1["daemon"] - sim0["daemon"]) / wall,
                rx=sum(b["rx"] for b in per_board), exp=sum(b["exp"] for b in per_board),
                lost=sum(b["lost"] for b in per_board), dropped=sum(b["dropped"] for b in per_board),
                mock_drops=sum(b["mock_drops"] for b in per_board), late=sum(b["late"] for b in per_board),
                behind=behind, lat_p99=float(np.percentile(lat, 99)) * 1e3 if lat else math.nan,
                lat_p50=float(np.percentile(lat, 50)) * 1e3 if lat else math.nan, packets=len(lat),
                loadavg=os.getloadavg()[0],
            )
            _emit("RESULT", result)
            if behind:
                _exit_now(sim)  # a backlog can take minutes to drain: no graceful stop
            stop.set()
            done, pending = await asyncio.wait(tasks, timeout=STOP_NUDGE_S)
            stop_hung = bool(pending)
            if pending:
                # BleSource.stop() cancels each link's run() task and awaits it; a
                # cancellation that arrives while a TIME_SYNC completes can be lost
                # (the ping returns, run() pings on and stop() waits forever).
                # Let the loop end on its own so that the recordings get finished.
                for link in links():
                    link._closing = True
                done, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT_S)
            if pending:
                _emit("RECORDING", dict(gaps=None, stop_hung=True))
                _exit_now(sim)
            for t in done:
                t.result()
            gaps = 0
            for p in paths:
                s = load_session(p)
                gaps += sum(timing_stats(b.device_time_s).missing for b in s.samples.values())
            _emit("RECORDING", dict(gaps=gaps, stop_hung=stop_hung))

        try:
            asyncio.run(main())
        except BaseException:
            traceback.print_exc()
        _exit_now(sim)


def _exit_now(sim) -> None:
    """Stop the simulated BlueZ and leave at once: no waiting for a saturated
    loop's backlog, bleak's teardown or threads."""
    sim.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


# ---------------------------------------------------------------------------
# parent: the configurations, the table
# ---------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def run_config(n: int, rate: int, mtu: int, ci: float, duration: float, warmup: float, workdir: str) -> dict:
    cfg = dict(n=n, rate=rate, mtu=mtu, ci=ci, duration=duration, warmup=warmup, dir=workdir)
    proc = subprocess.Popen([sys.executable, __file__, "--child", json.dumps(cfg)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    timeout = SETUP_TIMEOUT_S + warmup + duration + STOP_NUDGE_S + STOP_TIMEOUT_S + 15.0
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    found: dict[str, dict] = {}
    for line in out.splitlines():
        tag, _, body = line.partition(" ")
        if tag in ("PIDS", "RESULT", "RECORDING"):
            found[tag] = json.loads(body)
    # The child's dbus-daemon and mock get SIGTERM when it dies (PR_SET_PDEATHSIG) and
    # SimulatedBlueZ.close() kills them; make sure, by pid.
    for pid in found.get("PIDS", {}).values():
        t_end = time.monotonic() + 3.0
        while _alive(pid) and time.monotonic() < t_end:
            time.sleep(0.05)
        if _alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    if "RESULT" not in found:
        tail = "\n".join(err.strip().splitlines()[-6:])
        return dict(error=tail or f"child exited {proc.returncode} without a result")
    res = found["RESULT"]
    res["gaps"] = found.get("RECORDING", {}).get("gaps")
    res["stop_hung"] = found.get("RECORDING", {}).get("stop_hung", False)
    res["sustained"] = res["lost"] == 0 and res["dropped"] == 0 and not res["behind"]
    return res


def fmt(v: float, spec: str) -> str:
    return format(v, spec) if v is not None and math.isfinite(v) else "-"


HEADER = (f"{'N':>2} {'rate':>4} {'MTU':>3} {'CI ms':>5} {'rx / exp (window)':>19} {'lost':>4} {'drop':>4} "
          f"{'host %':>6} {'host %/sens':>11} {'mock %':>6} {'daemon %':>8} {'lat p99 ms':>10} {'mock late':>9} "
          f"{'rec gaps':>8}  sustained")


def row(n: int, rate: int, mtu: int, ci: float, r: dict | None) -> str:
    head = f"{n:>2} {rate:>4} {mtu:>3} {ci * 1e3:>5.1f} "
    if r is None:
        return head + f"{'':>19} {'':>4} {'':>4} {'':>6} {'':>11} {'':>6} {'':>8} {'':>10} {'':>9} {'':>8}  skipped"
    if "error" in r:
        return head + "failed: " + r["error"].replace("\n", " | ")
    rx = f"{r['rx']}/{r['exp']:.0f}"
    gaps = ("-" if r["gaps"] is None else str(r["gaps"])) + ("*" if r["stop_hung"] else "")
    return (head + f"{rx:>19} {r['lost']:>4} {r['dropped']:>4} {100 * r['host_cpu']:>6.1f} "
            f"{100 * r['host_cpu'] / n:>11.1f} {100 * r['mock_cpu']:>6.1f} {100 * r['daemon_cpu']:>8.1f} "
            f"{fmt(r['lat_p99'], '10.1f'):>10} {r['late']:>9} {gaps:>8}  "
            + ("yes" if r["sustained"] else "NO" + (" (behind)" if r["behind"] else "")))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=None, metavar="S",
                    help="measured window per configuration (default 15, --quick 5)")
    ap.add_argument("--quick", action="store_true", help="5 s windows and fewer configurations")
    ap.add_argument("--warmup", type=float, default=1.0, metavar="S",
                    help="streaming time before the window (default 1)")
    ap.add_argument("--child", metavar="JSON", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(json.loads(args.child))
        return 0
    duration = args.duration if args.duration is not None else (5.0 if args.quick else 15.0)
    plan = QUICK if args.quick else FULL

    t_start = time.monotonic()
    print(f"simulated BlueZ (bleak BlueZ backend, private dbus-daemon, python-dbusmock boards running the firmware core); "
          f"{duration:g} s windows after a {args.warmup:g} s warm-up; each configuration once")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    print()
    print(HEADER)
    results: list[tuple[int, int, int, float, dict | None]] = []
    with tempfile.TemporaryDirectory(prefix="hipimu-ble-bench-") as workdir:
        for mtu, ci, rate, counts in plan:
            failed = False
            for n in counts:
                r = None if failed else run_config(n, rate, mtu, ci, duration, args.warmup, workdir)
                if r is not None and not r.get("sustained", False):
                    failed = True
                results.append((n, rate, mtu, ci, r))
                print(row(n, rate, mtu, ci, r), flush=True)
                for f in Path(workdir).glob("*.hipimu"):
                    f.unlink()

    print()
    ok = [(n, rate, mtu, ci, r) for n, rate, mtu, ci, r in results if r is not None and r.get("sustained")]
    for mtu in sorted({m for _n, _r, m, _c, _x in results}, reverse=True):
        parts = []
        for ci in sorted({c for _n, _r, m, c, _x in results if m == mtu}, reverse=True):
            best = max(((n * rate, n, rate) for n, rate, m, c, _r in ok if m == mtu and c == ci), default=None)
            first_fail = next(((n, rate) for n, rate, m, c, r in results
                               if m == mtu and c == ci and r is not None and not r.get("sustained")), None)
            text = f"CI {ci * 1e3:g} ms: " + (f"{best[1]} x {best[2]} Hz" if best else "none")
            if first_fail:
                text += f" (not: {first_fail[0]} x {first_fail[1]} Hz)"
            parts.append(text)
        print(f"largest sustained at MTU {mtu}: " + "; ".join(parts))
    per = []
    for mtu in sorted({m for _n, _r, m, _c, _x in ok}, reverse=True):
        for ci in sorted({c for _n, _r, m, c, _x in ok if m == mtu}, reverse=True):
            vals = [(n, 100 * r["host_cpu"] / n) for n, rate, m, c, r in ok if m == mtu and c == ci and rate == 208]
            if vals:
                per.append(f"MTU {mtu} CI {ci * 1e3:g} ms: " + ", ".join(f"{v:.1f} % (N={n})" for n, v in vals))
    print("host CPU per sensor at 208 Hz (% of one core, sustained rows): " + ("; ".join(per) if per else "-"))
    if any(r is not None and r.get("stop_hung") for *_x, r in results):
        print("* BleSource.stop() hung (a link's run() task lost its cancellation during a TIME_SYNC and "
              f"kept pinging); the bench set the links' _closing after {STOP_NUDGE_S:g} s to finish the recordings")
    print(f"load average {os.getloadavg()[0]:.2f} at the end; bench took {time.monotonic() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
