"""Identify by shaking: the board that moves gets the role the clinician is asked about.

All advertising hipimu boards are connected and streamed at once; for each
role the clinician is asked to shake that sensor for a few seconds; the board
whose gyroscope RMS over that window is clearly the largest (above
``min_rms_rad_s`` and ``ratio`` times the runner-up) gets the role. An
ambiguous window (nobody shook, two boards shaken) asks again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import numpy as np

from hipimu.errors import BluetoothError
from hipimu.sources.ble._bleak import Advert, Backend
from hipimu.sources.ble.roles import SensorRef
from hipimu.sources.ble.source import DeviceLink

__all__ = ["pick_shaken", "identify_by_shaking"]

#: A hand shaking a sensor turns it at several rad/s; a subject standing still, < 0.2.
MIN_SHAKE_RMS_RAD_S = 1.5
SHAKE_RATIO = 3.0


def pick_shaken(rms_rad_s: dict[str, float], *, min_rms_rad_s: float = MIN_SHAKE_RMS_RAD_S,
                ratio: float = SHAKE_RATIO) -> str | None:
    """The key whose gyro RMS is clearly the largest, or None when no board or
    more than one was shaken."""
    if not rms_rad_s:
        return None
    ranked = sorted(rms_rad_s.items(), key=lambda kv: kv[1], reverse=True)
    best, value = ranked[0]
    if not value >= min_rms_rad_s:
        return None
    if len(ranked) > 1 and not value >= ratio * ranked[1][1]:
        return None
    return best


async def identify_by_shaking(
    adverts: dict[str, Advert],
    roles: list[str],
    ask: Callable[[str, int], Awaitable[bool]],
    *,
    backend: Backend | None = None,
    window_s: float = 4.0,
    attempts: int = 3,
) -> dict[str, str]:
    """role -> device id, asking for each role in turn.

    ``ask(role, attempt)`` tells the clinician to shake the sensor for
    ``role`` now (attempt 0, 1, ...) and returns False to give up; the window
    of ``window_s`` seconds starts when it returns. Boards already given a
    role are not candidates for the next.
    """
    backend = backend or Backend()
    queues: dict[str, asyncio.Queue] = {}
    links: dict[str, DeviceLink] = {}
    try:
        for addr, adv in adverts.items():
            q: asyncio.Queue = asyncio.Queue()
            link = DeviceLink("pelvis", SensorRef("address", addr.upper()), adv, backend, rate_hz=208, mag=False,
                              ping_interval_s=60.0, battery_interval_s=600.0, reconnect_backoff_s=(0.5, 2.0),
                              output=q, events=[], clock_window_s=30.0)
            await link.connect_and_configure()
            queues[addr], links[addr] = q, link
        t0 = time.monotonic()
        for link in links.values():
            link.t0_host_s = t0
            await link.start_streaming()
        assigned: dict[str, str] = {}
        for role_name in roles:
            for attempt in range(attempts):
                if not await ask(role_name, attempt):
                    return assigned
                for q in queues.values():  # forget what came before the prompt
                    while not q.empty():
                        q.get_nowait()
                await asyncio.sleep(window_s)
                rms: dict[str, float] = {}
                for addr, q in queues.items():
                    if links[addr].stats.device_id in assigned.values():
                        continue
                    gyr = [b.gyr_rad_s for b in _drain(q)]
                    if gyr:
                        g = np.concatenate(gyr)
                        rms[addr] = float(np.sqrt(np.mean(np.sum(g * g, axis=1))))
                chosen = pick_shaken(rms)
                if chosen is not None:
                    assigned[role_name] = links[chosen].stats.device_id
                    break
            else:
                raise BluetoothError(f"{role_name}: no single sensor was shaken in {attempts} tries")
        return assigned
    finally:
        for link in links.values():
            await link.close()


def _drain(q: asyncio.Queue) -> list:
    return [q.get_nowait() for _ in range(q.qsize())]
