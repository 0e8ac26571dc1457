"""The dashboard's engines without a window: a live session of the virtual
subject run by the simulated clinician (recorded, calibrated by the guide,
trials summarised) and its replay (seek, export, recompute)."""

from __future__ import annotations

import csv
import queue
import time
from pathlib import Path

import numpy as np
import pytest

from hipimu.apps.dashboard.engine import LiveEngine, LiveOptions
from hipimu.apps.dashboard.model import DashboardModel
from hipimu.apps.dashboard.replay import ReplayEngine
from hipimu.sources.simulate import simulate_session
from hipimu.storage.recording import load_session


def drain(engine, model: DashboardModel, seen: list | None = None) -> None:
    while True:
        try:
            u = engine.updates.get_nowait()
        except queue.Empty:
            return
        model.apply(u)
        if seen is not None:
            seen.append(u)


def run_until(engine, model, done, timeout_s: float, seen=None) -> None:
    t_end = time.monotonic() + timeout_s
    while time.monotonic() < t_end:
        drain(engine, model, seen)
        if done():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


@pytest.fixture(scope="module")
def live_session(tmp_path_factory):
    """seated_rotation (seed 0) at 10x real time through the live engine, simulated clinician at the controls."""
    out = tmp_path_factory.mktemp("sessions")
    engine = LiveEngine(LiveOptions(simulate=True, scenario="seated_rotation", seed=0, autopilot=True,
                                    out_dir=out, speed=10.0))
    model = DashboardModel()
    seen: list = []
    engine.start()
    try:
        run_until(engine, model, lambda: engine.last_recording is not None, 120.0, seen)
        drain(engine, model, seen)
    finally:
        engine.close()
    drain(engine, model, seen)
    return engine.last_recording, model, seen


def test_live_session_is_recorded_with_the_guides_phases_zeros_and_trials(live_session):
    path, model, seen = live_session
    session = load_session(path)
    kinds = [(e.kind, e.label) for e in session.events]
    for phase in ("stand", "hip_hinge", "knee_lift_right", "knee_lift_left", "stand_final"):
        assert kinds.count(("phase_start", phase)) == 1 and kinds.count(("phase_end", phase)) == 1
    assert kinds.count(("zero", "")) == 2
    assert kinds.count(("trial_start", "seated_rotation")) == 6 == kinds.count(("trial_end", "seated_rotation"))
    assert session.info.simulated and session.info.subject_id == "SIM-0"
    assert model.guide is not None and model.guide.result == "passed"
    assert not model.recording["active"] and "session saved" in model.status
    assert not model.errors


def test_trial_results_match_the_truth_and_the_replay(live_session):
    path, model, _ = live_session
    assert [(r.side, r.index) for r in model.results] == [("right", 1), ("right", 2), ("right", 3),
                                                          ("left", 4), ("left", 5), ("left", 6)]
    _, truth = simulate_session("seated_rotation", seed=0)
    t = truth["time_s"]
    for r in model.results:
        m = (t >= r.start_s) & (t <= r.end_s)
        rot = truth[f"hip_rotation_{r.side}_deg"][m]
        assert r.values_deg["max_ir_deg"] == pytest.approx(rot.max(), abs=2.0)
        assert r.values_deg["max_er_deg"] == pytest.approx(-rot.min(), abs=2.0)
        assert r.values_deg["arc_deg"] == pytest.approx(r.values_deg["max_ir_deg"] + r.values_deg["max_er_deg"])
        assert 0.5 < r.values_deg["pelvic_compensation_deg"] < 5.0  # the script's few degrees
    # the replay processes the recording with the pipeline: the same numbers
    replay = ReplayEngine(path, playing=False)
    rmodel = DashboardModel(mode="replay")
    replay.start()
    try:
        assert replay.wait_loaded()
        run_until(replay, rmodel, lambda: len(rmodel.results) == 6, 30.0)
    finally:
        replay.close()
    for a, b in zip(model.results, rmodel.results):
        assert (a.side, a.index, a.start_s) == (b.side, b.index, b.start_s)
        for k, v in a.values_deg.items():
            assert b.values_deg[k] == pytest.approx(v, abs=1e-6), k


@pytest.fixture(scope="module")
def recording(live_session):
    return live_session[0]


def test_replay_seek_play_and_peak_hold(recording):
    replay = ReplayEngine(recording, playing=False)
    model = DashboardModel(mode="replay")
    replay.start()
    try:
        assert replay.wait_loaded()
        trial = next(r for r in replay.session.events if r.kind == "trial_start" and r.data["index"] == 2)
        end = next(r for r in replay.session.events if r.kind == "trial_end" and r.data["index"] == 2)
        replay.seek(end.time_s - 0.05)
        run_until(replay, model, lambda: model.replay.get("position_s") == pytest.approx(end.time_s - 0.05), 10.0)
        # the peak hold covers the trial from its start: the pipeline's trial maximum
        a = replay.result.angles
        m = (a.time_s >= trial.time_s) & (a.time_s <= end.time_s - 0.05)
        rot = np.degrees(a.hip["right"][m][:, 2])
        assert model.trial["active"] and model.trial["index"] == 2
        assert model.peaks["right"]["ir"][0] == pytest.approx(rot.max(), abs=1e-9)
        assert model.peaks["right"]["er"][0] == pytest.approx(-rot.min(), abs=1e-9)
        # the value shown is the pipeline's at the playhead
        i = int(np.searchsorted(a.time_s, end.time_s - 0.05, side="right")) - 1
        assert np.allclose(model.current()["hip"]["right"], np.degrees(a.hip["right"][i]))
        # play at 4x: the playhead moves ~4 s per second
        replay.set_speed(4.0)
        replay.play()
        t0, p0 = time.monotonic(), model.replay["position_s"]
        run_until(replay, model, lambda: time.monotonic() - t0 > 1.0, 5.0)
        moved = model.replay["position_s"] - p0
        assert 2.0 < moved < 6.0, moved
        replay.set_speed(8.0)  # outside 0.25-4x: refused, said
        run_until(replay, model, lambda: any("speed" in e for e in model.errors), 5.0)
        assert model.replay["speed"] == 4.0
    finally:
        replay.close()


def test_replay_export_selection_and_recompute(recording, tmp_path):
    replay = ReplayEngine(recording, playing=False)
    model = DashboardModel(mode="replay")
    replay.start()
    try:
        assert replay.wait_loaded()
        out = tmp_path / "sel.csv"
        replay.export_csv(out, 50.0, 60.0)
        run_until(replay, model, lambda: model.exported, 10.0)
        with out.open() as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == 1001 and float(rows[0]["time_s"]) == 50.0 and float(rows[-1]["time_s"]) == 60.0
        i = int(np.searchsorted(replay.result.angles.time_s, 55.0))
        row = next(r for r in rows if float(r["time_s"]) == 55.0)
        assert float(row["hip_rotation_right_deg"]) == pytest.approx(np.degrees(replay.result.angles.hip["right"][i, 2]), abs=1e-4)
        before = replay.result.calibration
        replay.recompute(static=(0.5, 3.0), functional=(5.0, 32.0))
        run_until(replay, model, lambda: replay.result.calibration is not before and "given windows" in model.status, 60.0)
        assert replay.result.calibration.windows.static == (0.5, 3.0)
        replay.recompute(static=(0.5, 3.0))  # one window alone: refused, the old result kept
        run_until(replay, model, lambda: any("both calibration windows" in e for e in model.errors), 10.0)
        assert replay.result.calibration.windows.static == (0.5, 3.0)
    finally:
        replay.close()
