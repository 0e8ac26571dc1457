"""The async source interface: replay streams a recording in time order,
paced against the wall clock, and loses nothing."""

import asyncio
import time

import numpy as np
import pytest

from hipimu.core.model import concat_blocks
from hipimu.sources.base import interleave
from hipimu.sources.replay import ReplaySource
from hipimu.storage.recording import save_session


def collect(src, limit=None):
    async def run():
        out = []
        async with src:
            async for blk in src.blocks():
                out.append(blk)
                if limit and len(out) >= limit:
                    break
        return src, out

    return asyncio.run(run())


def test_replay_fast_yields_every_sample_in_time_order(tmp_path, small_session):
    p = tmp_path / "s.hipimu"
    save_session(small_session, p)
    src, blocks = collect(ReplaySource(p, speed=None, block_s=0.1))
    assert src.devices == small_session.devices
    assert [e.label for e in src.events] == ["stand", "stand", "look here"]
    starts = [b.time_s[0] for b in blocks]
    assert starts == sorted(starts)
    for r, full in small_session.samples.items():
        got = concat_blocks([b for b in blocks if b.role == r])
        assert got.equals(full), r
    assert all(b.time_s[-1] - b.time_s[0] <= 0.1 + 1e-9 for b in blocks)


def test_replay_real_time_is_paced(tmp_path, small_session):
    """2 s of data at speed 4 takes about 0.5 s (checked loosely: > 0.4 s; no upper
    bound, this is not a speed test)."""
    p = tmp_path / "s.hipimu"
    save_session(small_session, p)
    t0 = time.monotonic()
    collect(ReplaySource(p, speed=4.0))
    assert time.monotonic() - t0 > 0.4


def test_replay_from_the_middle(tmp_path, small_session):
    p = tmp_path / "s.hipimu"
    save_session(small_session, p)
    _, blocks = collect(ReplaySource(p, speed=None, start_s=1.0))
    assert min(b.time_s[0] for b in blocks) >= 1.0
    n = sum(len(b) for b in blocks if b.role == "pelvis")
    assert n == np.sum(small_session.samples["pelvis"].time_s >= 1.0)


def test_consumer_can_stop_early(tmp_path, small_session):
    p = tmp_path / "s.hipimu"
    save_session(small_session, p)
    _, blocks = collect(ReplaySource(p, speed=None), limit=3)
    assert len(blocks) == 3


def test_interleave_keeps_gaps_and_never_resamples(small_session):
    blocks = interleave(small_session.samples, 0.05)
    right = concat_blocks([b for b in blocks if b.role == "thigh_right"])
    assert right.equals(small_session.samples["thigh_right"])
    assert np.max(np.diff(right.seq)) == 9  # the lost packet is still a gap


def test_bad_speed():
    with pytest.raises(ValueError):
        ReplaySource("x.hipimu", speed=0)


def test_replay_keeps_samples_before_time_zero(tmp_path):
    """Imported data may start at negative times; replay must not drop them."""
    from hipimu.core.model import SampleBlock, Session, SessionInfo

    blk = SampleBlock("pelvis", [-0.5, -0.1, 0.3], np.zeros((3, 3)), np.zeros((3, 3)))
    p = tmp_path / "neg.hipimu"
    save_session(Session(SessionInfo(), {}, {"pelvis": blk}), p)
    _, blocks = collect(ReplaySource(p, speed=None))
    assert concat_blocks(blocks).equals(blk)


def test_interleave_memory_follows_samples_not_time_span():
    """One sample 3 years after the others: two blocks, not 2e9 empty ones."""
    from hipimu.core.model import SampleBlock

    blk = SampleBlock("pelvis", [0.0, 0.01, 1e8], np.zeros((3, 3)), np.zeros((3, 3)))
    out = interleave({"pelvis": blk}, 0.05)
    assert [len(b) for b in out] == [2, 1]
