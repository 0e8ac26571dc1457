"""The live guided calibration with the other methods (hipimu.core.live): the
seated routine and the walk, followed as they happen on the virtual subject,
recorded as phase events, and giving the live angles the batch pipeline
computes afterwards from the recorded session -- bit for bit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hipimu.core.calibration import CalibrationError
from hipimu.core.conventions import (
    CALIBRATION_PHASES,
    CALIBRATION_PHASES_OF_METHOD,
    SEATED_CALIBRATION_PHASES,
    WALK_CALIBRATION_PHASES,
)
from hipimu.core.live import CalibrationGuide, LiveProcessor
from hipimu.core.pipeline import PipelineOptions, process_session
from hipimu.sources.base import interleave
from hipimu.sources.simulate import simulate_session

ROLES3 = ["pelvis", "thigh_right", "thigh_left"]


def crop(session, t1: float):
    """The session's first ``t1`` s (samples and events)."""
    return dataclasses.replace(session, samples={r: b.between(0.0, t1) for r, b in session.samples.items()},
                               events=[e for e in session.events if e.time_s < t1])


def run_live(session, method: str, *, on_advance=None):
    """Feed the session block by block (50 ms, as a live source), advance after
    every block; returns processor, events, angle blocks, guide states."""
    lp = LiveProcessor({r: d.rate_hz for r, d in session.devices.items()}, calibration_method=method)
    events, blocks, guides = [], [], []
    for blk in interleave(session.samples, 0.05):
        lp.feed(blk)
        if on_advance is not None:
            on_advance(lp)
        out = lp.advance()
        events += out.events
        blocks += out.angles
        if out.guide is not None:
            guides.append(out.guide)
    out = lp.advance(flush=True)
    events += out.events
    blocks += out.angles
    return lp, events, blocks, guides


def recorded(session, live_events):
    """The session as the dashboard records it: the simulator's own phase and zero events
    replaced by the live ones (zero is never pressed here)."""
    kept = [e for e in session.events if not e.kind.startswith("phase_") and e.kind != "zero"]
    return dataclasses.replace(session, events=sorted(kept + live_events, key=lambda e: e.time_s))


def assert_live_equals_batch(session, events, blocks, method: str) -> None:
    res = process_session(recorded(session, events), PipelineOptions(use_stance=False, calibration=method))
    batch = res.angles
    live = {}
    for b in blocks:
        for i, t in enumerate(np.round(b.time_s * 100).astype(int)):
            live[t] = (b.hip["right"][i], b.hip["left"][i], b.pelvis[i], b.quality[i])
    keys = np.round(batch.time_s * 100).astype(int)
    assert set(keys) <= set(live)
    for j, name in enumerate(("right", "left")):
        assert np.array_equal(np.array([live[k][j] for k in keys]), batch.hip[name]), name
    assert np.array_equal(np.array([live[k][2] for k in keys]), batch.pelvis)
    assert np.allclose(np.array([live[k][3] for k in keys]), batch.quality, atol=1e-9)
    # and with the method left to the pipeline: the recorded phase events choose it
    auto = process_session(recorded(session, events), PipelineOptions(use_stance=False))
    assert auto.calibration.method == method
    assert np.array_equal(auto.angles.hip["right"], batch.hip["right"])


def phase_spans(events):
    starts = {e.label: e.time_s for e in events if e.kind == "phase_start"}
    return {e.label: (starts[e.label], e.time_s) for e in events if e.kind == "phase_end"}


# ---------------------------------------------------------------------------
# seated
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seated():
    session, _ = simulate_session("sitting_rotation", seed=2, realism="real")
    session = crop(session, 40.0)
    return session, run_live(session, "seated")


def test_phases_of_each_method_are_declared():
    assert CALIBRATION_PHASES_OF_METHOD == {"routine": CALIBRATION_PHASES, "seated": SEATED_CALIBRATION_PHASES,
                                            "walk": WALK_CALIBRATION_PHASES}
    assert SEATED_CALIBRATION_PHASES == ("sit", "seated_lift_right", "seated_lift_left", "sit_final")
    assert WALK_CALIBRATION_PHASES == ("stand", "walk")
    # the routine's guide is what it was
    assert [s.phase for s in CalibrationGuide(ROLES3).state.steps] == list(CALIBRATION_PHASES)
    guide = CalibrationGuide(ROLES3, "seated")
    assert [s.phase for s in guide.state.steps] == list(SEATED_CALIBRATION_PHASES)
    assert [s.target for s in guide.state.steps] == [0, 3, 3, 0] and guide.state.method == "seated"
    assert [s.phase for s in CalibrationGuide(["pelvis", "thigh_left"], "seated").state.steps] == ["sit", "seated_lift_left", "sit_final"]
    walk = CalibrationGuide(ROLES3, "walk")
    assert [(s.phase, s.target) for s in walk.state.steps] == [("stand", 0), ("walk", 5)]
    with pytest.raises(CalibrationError, match="unknown guided calibration method"):
        CalibrationGuide(ROLES3, "static")
    with pytest.raises(CalibrationError, match="unknown guided calibration method"):
        LiveProcessor({"pelvis": 100.0, "thigh_right": 100.0}, calibration_method="hop")


def test_seated_guide_follows_the_seated_routine_and_passes(seated):
    session, (lp, events, _, guides) = seated
    script = phase_spans([e for e in session.events if e.kind.startswith("phase_")])
    found = phase_spans(events)
    assert [e.label for e in events if e.kind == "phase_start"] == list(SEATED_CALIBRATION_PHASES)
    # sitting: 3 s of stillness from the start (the subject sits still from the first sample)
    assert found["sit"][1] - found["sit"][0] == pytest.approx(3.0, abs=0.05)
    assert found["sit"][1] <= script["sit"][1]
    for phase in ("seated_lift_right", "seated_lift_left"):  # opens before the first lift, closes once the thigh settles
        assert script[phase][0] - 0.6 <= found[phase][0] <= script[phase][0] + 1.5
        assert script[phase][1] - 1.0 <= found[phase][1] <= script[phase][1] + 1.5
    assert found["sit_final"][1] - found["sit_final"][0] == pytest.approx(2.0, abs=0.05)
    final = guides[-1]
    assert final.result == "passed" and final.method == "seated"
    assert final.message.startswith("calibration passed: seated, grade C")
    assert {s.phase: (s.count, s.status) for s in final.steps} == {
        "sit": (0, "done"), "seated_lift_right": (3, "done"), "seated_lift_left": (3, "done"), "sit_final": (0, "done")}
    assert any(g.countdown_s is not None and 1.0 < g.countdown_s < 3.0 for g in guides)
    assert any(s.phase == "seated_lift_right" and s.count == 1 and s.status == "active" for g in guides for s in g.steps)
    cal = lp.calibration
    assert cal is not None and cal.method == "seated" and cal.windows.found == "events"
    assert cal.windows.static == found["sit"]
    assert cal.windows.functional == {"thigh_right": found["seated_lift_right"], "thigh_left": found["seated_lift_left"]}


def test_seated_live_angles_equal_the_pipeline_on_the_recorded_session(seated):
    session, (_, events, blocks, _) = seated
    assert sum(len(b) for b in blocks) > 1000  # ~13 s of angles after the routine
    assert_live_equals_batch(session, events, blocks, "seated")


def test_a_failed_seated_lift_sends_the_guide_back_to_it_by_the_errors_phase():
    session, _ = simulate_session("sitting_rotation", seed=2, realism="real")
    session = crop(session, 30.0)
    cut = []

    def cut_right_lifts(lp):
        # once the right lifts are done, their window is replaced by a still stretch of the
        # sitting (the lifts cut out): the calibration's motion gate must fail on them
        g = lp.guide
        if not cut and "seated_lift_right" in g.spans and not g.complete():
            g.spans["seated_lift_right"] = g.spans["sit"]
            cut.append(True)

    lp, events, blocks, guides = run_live(session, "seated", on_advance=cut_right_lifts)
    assert cut and not blocks and lp.calibration is None
    final = guides[-1]
    active = final.steps[final.active]
    assert final.result == "failed" and active.phase == "seated_lift_right" and active.status == "failed"
    assert "right hip lifts" in final.message and "Redo: three small hip lifts with the right leg" in final.message
    assert [s.status for s in final.steps if s.phase != "seated_lift_right"] == ["done"] * 3
    lp.redo_step()
    assert lp.guide.step.phase == "seated_lift_right" and lp.guide.state.result == "running"


def test_the_errors_phase_wins_over_the_message():
    for method, phase, message in (("seated", "seated_lift_left", "the pelvis sensor moved"),
                                   ("walk", "walk", "the subject was not still"),
                                   ("routine", "knee_lift_right", "thigh_left: something")):
        guide = CalibrationGuide(ROLES3, method)
        for _ in guide.state.steps:
            guide.state.steps[guide.state.active].status = "done"
            guide.state.active += 1
        guide.fail(message, phase)
        assert guide.state.steps[guide.state.active].phase == phase, method
    # a phase that is not a step of the method (or none): the message says which
    guide = CalibrationGuide(ROLES3, "seated")
    guide.fail("seated: the subject was not still during the sitting phase", "hip_hinge")
    assert guide.state.steps[guide.state.active].phase == "sit"
    guide = CalibrationGuide(ROLES3, "walk")
    guide.fail("walk: found no straight walking", None)
    assert guide.state.steps[guide.state.active].phase == "walk"


# ---------------------------------------------------------------------------
# walk
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def walk():
    session, _ = simulate_session("walk", seed=1, realism="real")
    return session, run_live(session, "walk")


def test_walk_guide_counts_strides_and_passes(walk):
    session, (lp, events, _, guides) = walk
    found = phase_spans(events)
    assert [(e.kind, e.label) for e in events] == [("phase_start", "stand"), ("phase_end", "stand"),
                                                   ("phase_start", "walk"), ("phase_end", "walk")]
    assert found["stand"][1] - found["stand"][0] == pytest.approx(3.0, abs=0.05) and found["stand"][1] < 5.0
    # the walk opens just before the gait starts (5 s) and closes on the first straight stretch
    # (full speed 6.5-13 s), before the turn (from 14.5 s; docs/simulator.md)
    assert 4.4 <= found["walk"][0] <= 6.0
    assert found["walk"][1] <= 14.5
    final = guides[-1]
    assert final.result == "passed" and final.method == "walk"
    assert final.message.startswith("calibration passed: walk, grade")
    step = final.steps[1]
    assert step.phase == "walk" and step.status == "done" and 5 <= step.count <= 8
    assert any(s.phase == "walk" and s.count == 2 and s.status == "active" for g in guides for s in g.steps)
    cal = lp.calibration
    assert cal is not None and cal.method == "walk" and cal.windows.static == found["stand"]
    # the straight stretch used lies inside the walk phase
    a, b = cal.windows.functional["thigh_right"]
    assert found["walk"][0] < a < b < found["walk"][1] and b - a >= 4.0


def test_walk_live_angles_equal_the_pipeline_on_the_recorded_session(walk):
    session, (_, events, blocks, _) = walk
    # the batch path finds the same straight stretch inside the recorded walk phase (it reads
    # nothing after the phase, though the recording goes on: the turn and the walk back)
    assert_live_equals_batch(session, events, blocks, "walk")


def test_walk_is_done_when_the_subject_stops_after_five_strides():
    guide = CalibrationGuide(["pelvis", "thigh_right"], "walk")
    dt = 0.02
    t = np.arange(0.0, 3.2, dt)
    still = {r: np.zeros(len(t)) for r in guide.roles}
    guide.update(t, still, {r: np.full(len(t), np.nan) for r in guide.roles})
    assert guide.state.steps[0].status == "done"
    # 5 strides of 1 s (the thigh's inclination 0 -> 25 -> 0 deg), then standing still
    t = 3.2 + np.arange(0.0, 8.0, dt)
    walking = t < 3.5 + 5.0
    tilt = np.where(walking, 12.5 - 12.5 * np.cos(2 * np.pi * (t - 3.5)), 0.0)
    tilt[t < 3.5] = 0.0
    speed = np.where((t >= 3.5) & walking, 80.0, 0.0)
    guide.update(t, {r: speed for r in guide.roles}, {r: tilt for r in guide.roles})
    step = guide.state.steps[1]
    assert step.status == "done" and step.count == 5
    start, end = guide.spans["walk"]
    assert start == pytest.approx(3.0, abs=0.03) and end == pytest.approx(3.5 + 5.0 + 1.0, abs=0.1)


def test_switching_the_method_while_nothing_is_done():
    lp = LiveProcessor({"pelvis": 100.0, "thigh_right": 100.0, "thigh_left": 100.0})
    assert lp.guide.method == "routine"
    assert lp.set_calibration_method("walk") and lp.guide.method == "walk"
    assert [s.phase for s in lp.advance().guide.steps] == ["stand", "walk"]
    lp.guide.state.steps[0].status = "done"  # standing done: no switching now
    assert not lp.set_calibration_method("seated") and lp.guide.method == "walk"
    assert lp.set_calibration_method("walk")
    lp.restart_calibration()
    assert lp.set_calibration_method("seated") and [s.phase for s in lp.guide.state.steps] == list(SEATED_CALIBRATION_PHASES)
