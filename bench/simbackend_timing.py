"""Simulated bleak backend: how late its notifications reach the host callbacks.

The demo backend (:mod:`hipimu.sources.ble.simbackend`) schedules each data
notification at a connection event of its link and wakes the event loop for it
with a Linux timerfd. The host clock fit assumes a delivery delay common to all
boards, so what matters is how late, on this machine's clock, the callback runs
after the event it belongs to. tests/test_simbackend.py checks the schedule
(every notification on its link's grid, never before its event); this prints
the lateness, which depends on the machine and its load and so is not a test.

For each set of connection intervals, three 208 Hz boards stream for
``--duration`` s (default 10) in one asyncio loop (MTU 247: 11-sample packets);
per board: packets, and the lateness median, 99th percentile and max (ms).
``--load N`` adds N busy processes (a loaded CI machine). Asserts nothing.

Run: .venv/bin/python bench/simbackend_timing.py [--duration S] [--load N]
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp

import numpy as np
from bleak import BleakClient

from hipimu.core import protocol as P
from hipimu.sources.ble.simbackend import SimulatedWorld

SETS = [
    {"pelvis": 7.5, "thigh_right": 7.5, "thigh_left": 7.5},
    {"pelvis": 15.0, "thigh_right": 15.0, "thigh_left": 15.0},
    {"pelvis": 7.5, "thigh_right": 50.0, "thigh_left": 30.0},
    {"pelvis": 50.0, "thigh_right": 50.0, "thigh_left": 50.0},
]


def _spin() -> None:  # pragma: no cover - a load generator
    while True:
        pass


async def _stream(world: SimulatedWorld, duration_s: float) -> None:
    _, client_cls = world.backends()
    clients = []
    for board in world.boards.values():
        client = BleakClient(board.address, backend=client_cls)
        await client.connect()
        await client.start_notify(P.DATA_CHAR_UUID, lambda _c, _d: None)
        answered = asyncio.get_running_loop().create_future()
        await client.start_notify(P.CONTROL_CHAR_UUID,
                                  lambda _c, d, f=answered: f.done() or f.set_result(P.decode_response(d)))
        await client.write_gatt_char(P.CONTROL_CHAR_UUID, P.encode_command(P.Opcode.START, 1), response=True)
        if not (await asyncio.wait_for(answered, 5.0)).ok:
            raise SystemExit(f"{board.name}: START refused")
        clients.append(client)
    await asyncio.sleep(duration_s)
    for client in clients:
        await client.disconnect()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--load", type=int, default=0, help="busy processes running alongside")
    args = ap.parse_args()
    spinners = [mp.Process(target=_spin, daemon=True) for _ in range(args.load)]
    for p in spinners:
        p.start()
    try:
        print(f"lateness of data callbacks after their connection event, {args.duration:.0f} s, "
              f"{args.load} busy process(es)")
        print(f"{'CIs ms (p/r/l)':<16} {'board':<12} {'CI ms':>6} {'packets':>8} "
              f"{'median ms':>10} {'p99 ms':>8} {'max ms':>8}")
        for cis in SETS:
            world = SimulatedWorld.default(scenario="static", duration_s=1.0, ci_ms=cis)
            world.prepare()
            for board in world.boards.values():
                board.delivery_log = []
            asyncio.run(_stream(world, args.duration))
            label = "/".join(f"{cis[r]:g}" for r in ("pelvis", "thigh_right", "thigh_left"))
            for role, ci in cis.items():
                log = np.asarray(world.board(role).delivery_log)
                late = (log[:, 1] - log[:, 0]) * 1e3
                print(f"{label:<16} {role:<12} {ci:>6g} {len(late):>8d} {np.median(late):>10.3f} "
                      f"{np.percentile(late, 99):>8.3f} {late.max():>8.3f}")
    finally:
        for p in spinners:
            p.terminate()


if __name__ == "__main__":
    main()
