"""Replay a recording file as a live source.

::

    async with ReplaySource("session.hipimu", speed=1.0) as src:
        async for block in src.blocks():
            ...

``speed`` 1.0 plays at real time, 4.0 four times as fast, ``None`` as fast as
possible; ``start_s`` starts part-way (session time base; default: from the
first sample, whatever its time).
"""

from __future__ import annotations

import asyncio
import os

from hipimu.sources.base import SessionSource
from hipimu.storage.recording import load_session

__all__ = ["ReplaySource"]


class ReplaySource(SessionSource):
    """Streams the samples of a recording in time order, paced by ``speed``."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        speed: float | None = 1.0,
        block_s: float = 0.05,
        start_s: float | None = None,
    ) -> None:
        super().__init__(speed=speed, block_s=block_s, start_s=start_s)
        self.path = path

    async def start(self) -> None:
        session = await asyncio.to_thread(load_session, self.path)
        self.info = session.info
        self.devices = dict(session.devices)
        self.events = list(session.events)
        self._set_session(session.samples)
