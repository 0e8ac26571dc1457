"""The live processor (hipimu.core.live): the guided calibration follows the
routine as it happens, and the live angles are the batch pipeline's."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hipimu.core.calibration import CalibrationError
from hipimu.core.live import ANGLES_EVERY_S, CalibrationGuide, LiveProcessor
from hipimu.core.pipeline import PipelineOptions, process_session
from hipimu.sources.base import interleave
from hipimu.sources.simulate import simulate_session


def run_live(session, *, zero_at=()):
    """Feed the session block by block (50 ms, as a live source), zero at the given
    events' times, advance after every block; returns processor, events, blocks, guide states."""
    lp = LiveProcessor({r: d.rate_hz for r, d in session.devices.items()})
    zeros = list(zero_at)
    events, blocks, guides = [], [], []
    for blk in interleave(session.samples, 0.05):
        lp.feed(blk)
        while zeros and lp.now_s >= zeros[0].time_s:
            ev = zeros.pop(0)
            events.append(lp.zero(ev.time_s, ev.data.get("side")))
        out = lp.advance()
        events += out.events
        blocks += out.angles
        if out.guide is not None:
            guides.append(out.guide)
    out = lp.advance(flush=True)
    events += out.events
    blocks += out.angles
    return lp, events, blocks, guides


@pytest.fixture(scope="module")
def seated():
    session, truth = simulate_session("seated_rotation", seed=3)
    zeros = [e for e in session.events if e.kind == "zero"]
    return session, run_live(session, zero_at=zeros)


def test_guide_detects_each_phase_of_the_routine(seated):
    session, (lp, events, _, guides) = seated
    script = {(e.kind, e.label): e.time_s for e in session.events if e.kind.startswith("phase_")}
    found = {(e.kind, e.label): e.time_s for e in events if e.kind.startswith("phase_")}
    # standing: 3 s of stillness inside the scripted standing phase (still from the start)
    assert found[("phase_end", "stand")] - found[("phase_start", "stand")] == pytest.approx(3.0, abs=0.05)
    assert found[("phase_end", "stand")] <= script[("phase_end", "stand")]
    # each movement phase: opens 0.5 s before the first movement, closes once the segment settles
    for phase in ("hip_hinge", "knee_lift_right", "knee_lift_left"):
        assert script[("phase_start", phase)] - 0.6 <= found[("phase_start", phase)] <= script[("phase_start", phase)] + 1.0
        assert script[("phase_end", phase)] - 1.0 <= found[("phase_end", phase)] <= script[("phase_end", phase)] + 1.0
    final = guides[-1]
    assert final.result == "passed" and "grade" in final.message
    counts = {s.phase: (s.count, s.target, s.status) for s in final.steps}
    assert counts["hip_hinge"] == (2, 2, "done")
    assert counts["knee_lift_right"] == (3, 3, "done") and counts["knee_lift_left"] == (3, 3, "done")
    # a countdown ran while standing, and steps were shown counting up
    assert any(g.countdown_s is not None and 1.0 < g.countdown_s < 3.0 for g in guides)
    assert any(s.phase == "knee_lift_right" and s.count == 1 and s.status == "active" for g in guides for s in g.steps)
    assert lp.calibration is not None and lp.calibration.windows.found == "events"


def test_live_angles_equal_the_pipeline_on_the_recorded_session(seated):
    session, (lp, events, blocks, _) = seated
    recorded = dataclasses.replace(session, events=sorted(
        [e for e in session.events if not e.kind.startswith("phase_") and e.kind != "zero"] + events,
        key=lambda e: e.time_s))
    batch = process_session(recorded, PipelineOptions(use_stance=False)).angles
    live = {}
    for b in blocks:  # later blocks (revisions after a zero) replace earlier values
        for i, t in enumerate(np.round(b.time_s * 100).astype(int)):
            live[t] = (b.hip["right"][i], b.hip["left"][i], b.pelvis[i], b.quality[i])
    keys = np.round(batch.time_s * 100).astype(int)
    assert set(keys) <= set(live)
    right = np.array([live[k][0] for k in keys])
    left = np.array([live[k][1] for k in keys])
    pelvis = np.array([live[k][2] for k in keys])
    quality = np.array([live[k][3] for k in keys])
    assert np.array_equal(right, batch.hip["right"]) and np.array_equal(left, batch.hip["left"])
    assert np.array_equal(pelvis, batch.pelvis)
    assert np.allclose(quality, batch.quality, atol=1e-9)
    assert [a.source for a in lp.anchors].count("zero event") == 2


def test_zero_revises_the_hold_and_realigns_the_heading(seated):
    session, (_, events, blocks, _) = seated
    zero_times = [e.time_s for e in events if e.kind == "zero"]
    revised = [b for b in blocks if b.revises]
    assert len(revised) == 2
    for b, t0 in zip(revised, zero_times):
        assert b.time_s[0] == pytest.approx(t0, abs=0.011)
        # what was handed out of the hold (new angles come every ANGLES_EVERY_S; the rest follows)
        assert b.time_s[-1] >= t0 + 1.0 - ANGLES_EVERY_S - 0.05
        # during the hold the zeroed side's adduction and rotation are ~0
        side = "right" if b is revised[0] else "left"
        hold = b.time_s >= t0
        assert np.degrees(np.abs(b.hip[side][hold][:, 1:]).mean()) < 1.0


def test_guide_waits_for_movement_and_restarts():
    full, _ = simulate_session("static", seed=1, duration_s=10.0)
    # the subject stands still for the first 4.4 s of the routine and does nothing else
    session = dataclasses.replace(full, samples={r: b.between(0.0, 4.4) for r, b in full.samples.items()}, events=[])
    lp, events, blocks, guides = run_live(session)
    last = guides[-1]
    # still all along: standing passes, then the guide waits for the hinges
    assert [s.status for s in last.steps][:2] == ["done", "active"]
    assert last.result == "running" and not blocks
    assert [e.label for e in events] == ["stand", "stand"]
    lp.restart_calibration()
    out = lp.advance()
    assert out.guide is not None and out.guide.steps[0].status == "active" and out.guide.steps[1].status == "waiting"


def test_a_failed_calibration_sends_the_clinician_back_to_the_step():
    guide = CalibrationGuide(["pelvis", "thigh_right", "thigh_left"])
    for _ in guide.state.steps:
        guide.state.steps[guide.state.active].status = "done"
        guide.state.active += 1
    guide.fail("too little motion in the left knee lifts: thigh_left turned 12 deg, needs >= 20; repeat them slower and larger")
    s = guide.state
    assert s.result == "failed" and s.steps[s.active].phase == "knee_lift_left"
    assert s.steps[s.active].status == "failed" and "left knee" in s.message.lower()
    assert [st.status for st in s.steps if st.phase != "knee_lift_left"] == ["done"] * 4
    guide.redo()
    assert s.result == "running" and s.steps[s.active].status == "active" and s.steps[s.active].phase == "knee_lift_left"


def test_live_needs_a_pelvis_and_a_thigh():
    with pytest.raises(CalibrationError, match="pelvis"):
        LiveProcessor({"thigh_right": 208.0})
