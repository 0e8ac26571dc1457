"""``hipimu scan``, ``hipimu assign`` and ``hipimu record``: the sensor boards over BLE.

:func:`add_parsers` registers the subcommands; :func:`record_session` is the
recording loop (any :class:`~hipimu.sources.base.Source`; BLE sources add
live link statistics, link events and a final clock re-fit).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from hipimu.core.conventions import ROLES, TESTS
from hipimu.core.model import Event, SessionInfo
from hipimu.errors import InputError

__all__ = ["add_parsers", "record_session", "RecordResult"]

ROLE_OPTIONS = {"pelvis": "--pelvis", "thigh_right": "--thigh-right", "thigh_left": "--thigh-left"}


# ----------------------------------------------------------------------------
# argparse
# ----------------------------------------------------------------------------


def _add_sim_options(sp: argparse.ArgumentParser) -> None:
    from hipimu.sources.simulate import SCENARIOS

    body = [s for s in SCENARIOS if not s.startswith("sensor_")]
    sp.add_argument("--simulate", action="store_true", help="no hardware: a simulated bleak backend with three virtual boards on the virtual subject")
    sp.add_argument("--scenario", default="squat", choices=body, metavar="NAME", help="with --simulate: what the virtual subject does")
    sp.add_argument("--seed", type=int, default=0, metavar="N", help="with --simulate: random seed of the virtual subject and boards")


def _add_role_options(sp: argparse.ArgumentParser) -> None:
    for r, opt in ROLE_OPTIONS.items():
        sp.add_argument(opt, dest=r, metavar="ID", help=f"the sensor worn as {r}: device id, the 4 hex digits of its name, or its address")


def add_parsers(add: Callable[..., argparse.ArgumentParser]) -> None:
    """Register scan, assign and record with the main parser's ``add``."""
    sp = add("scan", cmd_scan, "list nearby hipimu sensors",
             "Scan for hipimu sensor boards (by their service UUID) and list name, address, signal strength (RSSI), "
             "battery, firmware version and device id (read by a short connection to each), with the role each is "
             "remembered for.")
    sp.add_argument("--timeout", type=float, default=5.0, metavar="S", help="how long to scan")
    sp.add_argument("--no-connect", action="store_true", help="only what the advertisements say (no battery, firmware or device id)")
    _add_sim_options(sp)

    sp = add("assign", cmd_assign, "remember which sensor is worn where",
             "Remember the sensor for each role (pelvis, thigh_right, thigh_left) in your config file "
             "(see 'hipimu assign --show'), so that 'hipimu record' needs no IDs. Either name them with "
             "--pelvis/--thigh-right/--thigh-left, or use --shake: every sensor in range streams, you are asked "
             "for each role in turn to shake that sensor, and the one that moves gets the role.")
    _add_role_options(sp)
    sp.add_argument("--shake", action="store_true", help="identify each sensor by shaking it")
    sp.add_argument("--roles", nargs="+", choices=list(ROLES), default=list(ROLES), metavar="ROLE", help="with --shake: the roles to ask for")
    sp.add_argument("--show", action="store_true", help="print the remembered mapping and where it is stored")
    sp.add_argument("--timeout", type=float, default=5.0, metavar="S", help="with --shake: how long to scan")
    _add_sim_options(sp)

    sp = add("record", cmd_record, "record a session from the sensors",
             "Connect the sensors (the remembered ones, see 'hipimu assign', or --pelvis/--thigh-right/--thigh-left), "
             "stream them, and append their raw samples to a new recording as they arrive (committed to disk at least "
             "twice a second, so a crash loses at most about one second). Live per-sensor statistics are printed: "
             "effective rate, loss, device drops, reconnects, RSSI, battery, clock offset and drift, latency. "
             "A link that drops is reconnected; the hole stays a gap in the recording. Ctrl-C stops cleanly.\n\n"
             "On a terminal, type a line and Enter to set a marker; the line 'zero' records a zero event "
             "(neutral posture).")
    sp.add_argument("-o", "--output", required=True, type=Path, metavar="SESSION", help="recording file to write (.hipimu)")
    _add_role_options(sp)
    sp.add_argument("--duration", type=float, metavar="S", help="stop after this many seconds (default: until Ctrl-C)")
    sp.add_argument("--rate", type=int, default=208, choices=(52, 104, 208), metavar="HZ", help="sampling rate: 52, 104 or 208")
    sp.add_argument("--mag", action="store_true", help="stream the magnetometers too (9D)")
    sp.add_argument("--subject", default="", help="pseudonymous subject id (a code, never a name)")
    sp.add_argument("--test", choices=TESTS, default="", help="which clinical test the session holds")
    sp.add_argument("--notes", default="", help="free-text operator notes")
    sp.add_argument("--scan-timeout", type=float, default=10.0, metavar="S", help="how long to look for the sensors")
    sp.add_argument("--stats-every", type=float, metavar="S", help="print the statistics table this often (default: live on a terminal, else every 10 s)")
    sp.add_argument("-f", "--force", action="store_true", help="replace an existing output file")
    _add_sim_options(sp)


# ----------------------------------------------------------------------------
# backends
# ----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _backend(args: argparse.Namespace):
    """bleak's default backend, or the simulated world of --simulate (running while inside)."""
    from hipimu.sources.ble._bleak import Backend

    if not getattr(args, "simulate", False):
        yield Backend(), None
        return
    from hipimu.sources.ble.simbackend import SimulatedWorld

    world = SimulatedWorld.default(scenario=args.scenario, seed=args.seed, mag=getattr(args, "mag", False))
    await world.ready()
    scanner, client = world.backends()
    yield Backend(scanner, client), world


def _sim_roles(world: Any) -> dict[str, str]:
    """role -> device id of the simulated world's boards."""
    return {b.role: b.device_id for b in world.boards.values()}


# ----------------------------------------------------------------------------
# scan
# ----------------------------------------------------------------------------


def cmd_scan(args: argparse.Namespace) -> int:
    from hipimu.sources.ble._bleak import scan
    from hipimu.sources.ble.roles import load_roles
    from hipimu.sources.ble.source import describe_sensor

    remembered = {dev: r for r, dev in load_roles().items()}

    async def run() -> list[dict[str, Any]]:
        async with _backend(args) as (backend, _world):
            found = await scan(backend, timeout_s=args.timeout)
            rows = []
            for adv in sorted(found.values(), key=lambda a: -a.rssi_dbm if math.isfinite(a.rssi_dbm) else 999):
                row: dict[str, Any] = {"name": adv.name, "address": adv.address, "rssi": adv.rssi_dbm}
                if not args.no_connect:
                    try:
                        row.update(await describe_sensor(backend, adv))
                    except Exception as exc:  # one unreachable board must not hide the others
                        row["error"] = str(exc).splitlines()[0]
                rows.append(row)
            return rows

    rows = asyncio.run(run())
    if not rows:
        print(f"no hipimu sensors found in {args.timeout:g} s (charged? awake: move it; near?)")
        return 1
    print(f"{'name':<12} {'address':<18} {'RSSI':>5} {'batt %':>6} {'firmware':<9} {'device id':<17} role")
    for row in rows:
        dev = row.get("device_id", "")
        rssi = f"{row['rssi']:.0f}" if math.isfinite(row["rssi"]) else "-"
        batt = "-" if row.get("battery_percent") is None else f"{row['battery_percent']:.0f}"
        line = f"{row['name']:<12} {row['address']:<18} {rssi:>5} {batt:>6} {row.get('firmware', '-'):<9} {dev or '-':<17} {remembered.get(dev, '')}"
        if "error" in row:
            line += f"  ({row['error']})"
        print(line.rstrip())
    return 0


# ----------------------------------------------------------------------------
# assign
# ----------------------------------------------------------------------------


def cmd_assign(args: argparse.Namespace) -> int:
    from hipimu.sources.ble.roles import SensorRef, config_path, load_roles, save_roles

    explicit = {r: getattr(args, r) for r in ROLE_OPTIONS}
    if args.show:
        roles = load_roles()
        print(f"{config_path()}:")
        for r in ROLES:
            print(f"  {r:<12} {roles.get(r, '-')}")
        return 0
    if args.shake:
        roles = asyncio.run(_assign_by_shaking(args))
    elif any(explicit.values()):
        refs = {r: SensorRef.parse(v) for r, v in explicit.items() if v}
        short = [f"{r} ({ref.value})" for r, ref in refs.items() if ref.kind != "id"]
        if short:
            raise InputError(f"give full device ids (16 hex digits, see 'hipimu scan') to remember: {', '.join(short)}")
        named = {r: ref.value for r, ref in refs.items()}
        # a board named for a new role leaves its old one
        roles = {**{r: d for r, d in load_roles().items() if d not in named.values()}, **named}
    else:
        raise InputError("say which sensor is worn where: --pelvis/--thigh-right/--thigh-left ID, or --shake")
    path = save_roles(roles)
    for r in ROLES:
        if r in roles:
            print(f"  {r:<12} {roles[r]}")
    print(f"remembered in {path}")
    return 0


async def _assign_by_shaking(args: argparse.Namespace) -> dict[str, str]:
    from hipimu.errors import SensorNotFoundError
    from hipimu.sources.ble._bleak import scan
    from hipimu.sources.ble.assign import identify_by_shaking

    async with _backend(args) as (backend, world):
        found = await scan(backend, timeout_s=args.timeout)
        if not found:
            raise SensorNotFoundError(f"no hipimu sensors found in {args.timeout:g} s (charged? awake: move it; near?)")
        print(f"{len(found)} sensors found: {', '.join(sorted(a.name for a in found.values()))}")

        async def ask(role: str, attempt: int) -> bool:
            again = "again: exactly one sensor, harder, " if attempt else ""
            print(f"Shake the sensor for {role.upper()} {again}for 4 s, starting now ...", flush=True)
            if world is not None:  # the demo shakes the right virtual board itself
                world.shake(_sim_roles(world)[role], 3.5)
            return True

        return await identify_by_shaking(found, list(args.roles), ask, backend=backend)


# ----------------------------------------------------------------------------
# record
# ----------------------------------------------------------------------------


@dataclass
class RecordResult:
    samples: dict[str, int] = field(default_factory=dict)
    events: int = 0
    duration_s: float = 0.0
    retimed_max_change_s: dict[str, float] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)


async def record_session(
    source: Any,
    path: Path,
    info: SessionInfo,
    *,
    duration_s: float | None = None,
    stop: asyncio.Event | None = None,
    overwrite: bool = False,
    on_tick: Callable[[Any, float], None] | None = None,
    tick_s: float = 1.0,
    markers: asyncio.Queue | None = None,
    on_block: Callable[[Any], None] | None = None,
    on_open: Callable[[Any], None] | None = None,
) -> RecordResult:
    """Stream ``source`` into a new recording at ``path`` until ``duration_s``
    (session seconds) or ``stop`` is set; flushed at least twice a second.

    Live sources may have ``stats()``, ``pop_events()``, ``clock_maps()`` and
    ``clock_summary()`` (:class:`~hipimu.sources.ble.BleSource` has them):
    link events are recorded as they happen, and at the end the sample times
    are re-mapped with the whole session's clock fit. ``markers``: a queue of
    (kind, label, host monotonic s) to record (typed by the operator), or
    :class:`~hipimu.core.model.Event` objects already in session time.
    ``on_block(block)``: every block, once appended (the dashboard's angles);
    ``on_open(source)``: once the sensors stream and the file exists.
    """
    from hipimu.storage.recording import RecordingWriter

    stop = stop or asyncio.Event()
    result = RecordResult()
    writer: RecordingWriter | None = None
    try:
        async with source:
            # The file is created once the sensors stream (a sensor that is not found leaves
            # no empty recording behind); what arrived meanwhile waits in the source's queue.
            # (in a thread: creating the file syncs it to disk, and the event loop must keep
            # stamping the notifications' arrival times meanwhile)
            writer = await asyncio.to_thread(
                RecordingWriter, path, SessionInfo.from_dict({**info.to_dict(), "sides": _sides(source.devices)}),
                overwrite=overwrite, flush_interval_s=0.5)
            for dev in source.devices.values():
                writer.add_device(dev)
            t_start = time.monotonic()
            if on_open is not None:
                on_open(source)

            async def consume() -> None:
                async for block in source.blocks():
                    writer.append(block)
                    result.samples[block.role] = result.samples.get(block.role, 0) + len(block)
                    if on_block is not None:
                        on_block(block)

            consumer = asyncio.create_task(consume())
            try:
                while not stop.is_set() and not consumer.done():
                    elapsed = time.monotonic() - t_start
                    if duration_s is not None and elapsed >= duration_s:
                        break
                    wait = tick_s if duration_s is None else min(tick_s, duration_s - elapsed)
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(stop.wait(), max(wait, 0.01))
                    events = _pop_events(source, markers, t_start)
                    if events:
                        writer.add_events(events)
                        result.events += len(events)
                    if on_tick is not None:
                        on_tick(source, time.monotonic() - t_start)
            finally:
                await source.stop()  # ends blocks(); what is queued still arrives
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(consumer, 10.0)
            if consumer.done() and not consumer.cancelled() and consumer.exception() is not None:
                raise consumer.exception()  # type: ignore[misc]
            events = _pop_events(source, markers, t_start)
            if events:
                writer.add_events(events)
                result.events += len(events)
            result.duration_s = time.monotonic() - t_start
            if hasattr(source, "stats"):
                result.stats = {r: s.to_dict() for r, s in source.stats().items()}
                writer.set_result("link_stats", result.stats)
            if hasattr(source, "clock_maps"):
                maps = source.clock_maps()
                if maps:
                    result.retimed_max_change_s = writer.retime(maps)
                    writer.set_result("clock_sync", {**source.clock_summary(),
                                                     "retimed_max_change_s": result.retimed_max_change_s})
    finally:
        if writer is not None:
            writer.close()
    return result


def _sides(devices: dict[str, Any]) -> list[str]:
    return [side for side in ("left", "right") if f"thigh_{side}" in devices]


def _pop_events(source: Any, markers: asyncio.Queue | None, t_start: float) -> list[Event]:
    events = list(source.pop_events()) if hasattr(source, "pop_events") else []
    t0 = getattr(source, "t0_host_s", None) or t_start
    while markers is not None and not markers.empty():
        item = markers.get_nowait()
        if isinstance(item, Event):
            events.append(item)
        else:
            kind, label, host_s = item
            events.append(Event(host_s - t0, kind, label))
    return sorted(events, key=lambda e: e.time_s)


class _StatsPrinter:
    """The live statistics table: redrawn in place on a terminal, else every ``every_s``."""

    def __init__(self, out: TextIO, every_s: float | None) -> None:
        self.out = out
        self.live = every_s is None and out.isatty()
        self.every_s = every_s if every_s is not None else 10.0
        self._last = -math.inf
        self._lines = 0

    def __call__(self, source: Any, elapsed_s: float) -> None:
        from hipimu.sources.ble.stats import STATS_HEADER, format_stats_line

        if not hasattr(source, "stats"):
            return
        if not self.live and elapsed_s - self._last < self.every_s:
            return
        self._last = elapsed_s
        lines = [f"recording {elapsed_s:7.1f} s", STATS_HEADER] + [format_stats_line(s) for s in source.stats().values()]
        if self.live and self._lines:
            self.out.write(f"\x1b[{self._lines}F")
        self.out.write("".join(line + "\x1b[K\n" if self.live else line + "\n" for line in lines))
        self.out.flush()
        self._lines = len(lines)


def cmd_record(args: argparse.Namespace) -> int:
    from hipimu.apps.cli import _refuse_existing
    from hipimu.sources.ble.roles import resolve_roles
    from hipimu.sources.ble.source import BleSource

    _refuse_existing([args.output], args.force)
    if args.duration is not None and not args.duration > 0:
        raise InputError("--duration must be positive")
    explicit = {r: getattr(args, r) for r in ROLE_OPTIONS}

    async def run() -> RecordResult:
        async with _backend(args) as (backend, world):
            if world is not None and not any(explicit.values()):
                refs = resolve_roles(_sim_roles(world), remembered={})
            else:
                refs = resolve_roles(explicit)
            source = BleSource(refs, rate_hz=args.rate, mag=args.mag, backend=backend, scan_timeout_s=args.scan_timeout)
            info = SessionInfo(subject_id=args.subject, test=args.test, notes=args.notes,
                               source="ble-simulated" if world is not None else "ble", simulated=world is not None,
                               simulation={} if world is None else {
                                   "scenario": args.scenario, "seed": args.seed,
                                   "via": "simulated bleak backend (hipimu.sources.ble.simbackend)"})
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, stop.set)
            markers: asyncio.Queue = asyncio.Queue()
            reading = _read_markers(loop, markers)
            print(f"connecting {', '.join(f'{r} ({ref})' for r, ref in refs.items())} ...", flush=True)
            try:
                return await record_session(source, args.output, info, duration_s=args.duration, stop=stop,
                                            overwrite=args.force, on_tick=_StatsPrinter(sys.stdout, args.stats_every),
                                            markers=markers)
            finally:
                if reading:
                    loop.remove_reader(sys.stdin.fileno())
                for sig in (signal.SIGINT, signal.SIGTERM):
                    with contextlib.suppress(NotImplementedError, RuntimeError):
                        loop.remove_signal_handler(sig)

    result = asyncio.run(run())
    from hipimu.sources.ble.stats import STATS_HEADER

    print(f"\nrecorded {result.duration_s:.1f} s to {args.output}")
    if result.stats:
        print(STATS_HEADER)
        from hipimu.sources.ble.stats import LinkStats, format_stats_line

        for d in result.stats.values():
            s = LinkStats(**{k: (math.nan if v is None else v) for k, v in d.items() if k != "loss_percent"})
            print(format_stats_line(s))
    for role, n in result.samples.items():
        print(f"  {role:<12} {n} samples")
    return 0


def _read_markers(loop: asyncio.AbstractEventLoop, markers: asyncio.Queue) -> bool:
    """On a terminal: each line typed becomes a marker ('zero': a zero event)."""
    if not sys.stdin.isatty():
        return False

    def on_line() -> None:
        line = sys.stdin.readline().strip()
        if line:
            kind = "zero" if line.lower() == "zero" else "marker"
            markers.put_nowait((kind, "" if kind == "zero" else line, time.monotonic()))
            print(f"  {kind} recorded{': ' + line if kind == 'marker' else ''}", flush=True)

    loop.add_reader(sys.stdin.fileno(), on_line)
    return True
