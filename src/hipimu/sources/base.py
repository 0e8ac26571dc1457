"""One async interface for every source of samples.

A source is an async context manager; once entered it knows its devices and
yields :class:`~hipimu.core.model.SampleBlock` objects, each holding consecutive
samples of one sensor, in roughly increasing time across sensors::

    async with ReplaySource(path, speed=1.0) as src:
        print(src.devices)                 # role -> DeviceInfo
        async for block in src.blocks():   # SampleBlock, one sensor each
            ...

Implementations: :mod:`hipimu.sources.replay` (a recording file),
:mod:`hipimu.sources.simulate` (the virtual subject) and, later,
``hipimu.sources.ble`` (sensor boards). Consumers never care which.

``speed`` paces the stream against the wall clock: 1.0 is real time, 2.0 twice
as fast, ``None`` as fast as possible.
"""

from __future__ import annotations

import abc
import asyncio
import time
from collections.abc import AsyncIterator, Iterable

import numpy as np

from hipimu.core.model import DeviceInfo, Event, SampleBlock, SessionInfo

__all__ = ["Source", "SessionSource", "interleave"]


class Source(abc.ABC):
    """Base class of all sample sources."""

    #: role -> DeviceInfo; filled in by ``__aenter__``.
    devices: dict[str, DeviceInfo]
    #: Session metadata the source knows (recording, simulation); may be empty.
    info: SessionInfo
    #: Events known to the source (from a recording or a scenario script).
    events: list[Event]

    def __init__(self) -> None:
        self.devices = {}
        self.info = SessionInfo()
        self.events = []

    async def __aenter__(self) -> "Source":
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Open the source (connect, load, ...). Fills ``devices``."""

    async def stop(self) -> None:
        """Release whatever ``start`` acquired. Safe to call twice."""

    @abc.abstractmethod
    def blocks(self) -> AsyncIterator[SampleBlock]:
        """Yield sample blocks until the source is exhausted or stopped."""


def interleave(samples: dict[str, SampleBlock], block_s: float) -> Iterable[SampleBlock]:
    """Cut each sensor's samples into blocks of ``block_s`` seconds and order
    all blocks by their first sample's time (ties: canonical role order)."""
    if block_s <= 0:
        raise ValueError("block_s must be positive")
    pieces: list[tuple[float, int, SampleBlock]] = []
    for order, (r, blk) in enumerate(samples.items()):
        if len(blk) == 0:
            continue
        t = blk.time_s
        # block number of every sample; cut where it changes (memory ~ samples, not time span)
        index = np.floor((t - t[0]) / block_s).astype(np.int64)
        bounds = [0, *(np.flatnonzero(np.diff(index)) + 1).tolist(), len(blk)]
        for start, stop in zip(bounds[:-1], bounds[1:]):
            pieces.append((float(t[start]), order, blk.slice(start, stop)))
    pieces.sort(key=lambda p: (p[0], p[1]))
    return [p[2] for p in pieces]


class SessionSource(Source):
    """Streams an in-memory :class:`~hipimu.core.model.Session` in time order.

    The shared engine of replay and simulate: a block is released when the
    wall clock (scaled by ``speed``) reaches the block's last sample, as a
    sensor would deliver it.
    """

    def __init__(self, *, speed: float | None = 1.0, block_s: float = 0.05, start_s: float | None = None) -> None:
        super().__init__()
        if speed is not None and not speed > 0:
            raise ValueError("speed must be positive or None")
        self.speed = speed
        self.block_s = block_s
        self.start_s = start_s
        self._samples: dict[str, SampleBlock] = {}
        self._stopped = False

    def _set_session(self, samples: dict[str, SampleBlock]) -> None:
        self._samples = samples

    async def stop(self) -> None:
        self._stopped = True

    async def blocks(self) -> AsyncIterator[SampleBlock]:  # type: ignore[override]
        samples = self._samples
        if self.start_s is not None:
            samples = {r: b.between(self.start_s, np.inf) for r, b in samples.items()}
        blocks = interleave(samples, self.block_s)
        if not blocks:
            return
        t0_session = min(float(b.time_s[0]) for b in blocks)
        t0_wall = time.monotonic()
        for blk in blocks:
            if self._stopped:
                return
            if self.speed is not None:
                due = t0_wall + (float(blk.time_s[-1]) - t0_session) / self.speed
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            else:
                await asyncio.sleep(0)  # stay cooperative
            yield blk
