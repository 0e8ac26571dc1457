"""The dashboard as a whole, offscreen: the real window on the real engines.

* replay of a recorded session: the numbers shown are the pipeline's at the
  playhead; the peak hold is the trial's maximum; scrubbing the timeline moves
  the playhead; export writes the selection;
* live, the virtual subject (10x real time, no radio) with the simulated
  clinician: the guided calibration runs step by step to "passed", zero
  re-aligns, trials end with results, everything is recorded;
* the command line: ``--screenshot PATH --quit-after S`` writes a picture and
  exits 0; bad input exits 2 with one line.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("DBUS_SESSION_BUS_ADDRESS", "disabled:")

import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PySide6.QtCore import QPoint, Qt  # noqa: E402

from conftest import png_is_not_blank  # noqa: E402
from hipimu.apps.dashboard.engine import LiveEngine, LiveOptions  # noqa: E402
from hipimu.apps.dashboard.model import DashboardModel  # noqa: E402
from hipimu.apps.dashboard.replay import ReplayEngine  # noqa: E402
from hipimu.apps.dashboard.window import MainWindow  # noqa: E402
from hipimu.storage.recording import load_session  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HIPIMU = [sys.executable, "-m", "hipimu"]


non_blank = png_is_not_blank


def open_window(qtbot, model, controller):
    window = MainWindow(model, controller, fps=30.0)
    qtbot.addWidget(window)
    controller.start()
    window.show()
    return window


def tick_until(qtbot, window, done, timeout_s: float) -> None:
    t_end = time.monotonic() + timeout_s
    while time.monotonic() < t_end:
        window.tick()
        if done():
            qtbot.wait(150)  # the numbers are redrawn at 10 Hz
            window.tick()
            return
        qtbot.wait(30)
    raise AssertionError("timed out")


@pytest.fixture
def seated(tmp_path):
    dst = tmp_path / "seated.hipimu"
    shutil.copy(ROOT / "recordings" / "sim_seated_rotation.hipimu", dst)
    return dst


def test_replay_shows_the_pipelines_values_peaks_scrub_and_export(qtbot, seated, tmp_path):
    engine = ReplayEngine(seated, playing=False)
    model = DashboardModel(mode="replay")
    window = open_window(qtbot, model, engine)
    try:
        assert engine.wait_loaded()
        tick_until(qtbot, window, lambda: model.replay.get("duration_s"), 20.0)
        a = engine.result.angles
        trial = next(e for e in engine.session.events if e.kind == "trial_start")
        end = next(e for e in engine.session.events if e.kind == "trial_end" and e.data["index"] == trial.data["index"])
        side = trial.data["side"]
        # scrub: a click on the timeline near the trial's end moves the playhead there
        tl = window.timeline
        target = end.time_s - 1.0
        qtbot.mouseClick(tl, Qt.LeftButton, pos=QPoint(round(tl.x_at(target)), tl.height() // 2))
        tick_until(qtbot, window, lambda: abs(model.replay.get("position_s", -1) - target) < 2 * a.time_s[-1] / tl.width(), 10.0)
        pos = model.replay["position_s"]
        i = int(np.searchsorted(a.time_s, pos, side="right")) - 1
        rot = float(np.degrees(a.hip[side][i, 2]))
        label = window.rotation_label(side)
        assert ("IR" if rot >= 0 else "ER") in label and f"{abs(rot):.1f}" in label, (label, rot)
        # the peak hold: the pipeline's maximum over the trial so far
        m = (a.time_s >= trial.time_s) & (a.time_s <= pos)
        peak_ir = float(np.degrees(a.hip[side][m, 2].max()))
        assert f"{peak_ir:.1f}" in window.peak_label(side)
        tilt = float(np.degrees(a.pelvis[i, 0]))
        assert f"{abs(tilt):.1f}" in window.tilt_label()
        # export the selection
        out = tmp_path / "sel.csv"
        engine.export_csv(out, trial.time_s, end.time_s)
        tick_until(qtbot, window, lambda: model.exported, 10.0)
        rows = out.read_text().splitlines()
        assert rows[0].startswith("time_s,") and len(rows) - 1 == int(np.sum((a.time_s >= trial.time_s) & (a.time_s <= end.time_s)))
        assert window.grab_png(tmp_path / "replay.png") and non_blank(tmp_path / "replay.png")
    finally:
        window.close()
        engine.close()


def test_live_calibration_flow_zero_and_trials_with_the_simulated_subject(qtbot, tmp_path):
    engine = LiveEngine(LiveOptions(simulate=True, scenario="seated_rotation", seed=2, autopilot=True,
                                    out_dir=tmp_path, speed=10.0))
    model = DashboardModel()
    window = open_window(qtbot, model, engine)
    window.show_screen("calibration")
    try:
        seen_active = set()

        def calibrated() -> bool:
            if model.guide is not None:
                seen_active.update(s.phase for s in model.guide.steps if s.status == "active")
            return model.guide is not None and model.guide.result == "passed"

        tick_until(qtbot, window, calibrated, 60.0)
        assert seen_active == {"stand", "hip_hinge", "knee_lift_right", "knee_lift_left", "stand_final"}
        window.grab_png(tmp_path / "calibration.png")
        assert non_blank(tmp_path / "calibration.png")
        window.show_screen("test")
        # the simulated clinician zeroes and runs the trials; the window shows them as they go
        tick_until(qtbot, window, lambda: len(model.results) >= 1, 60.0)
        assert any(e.kind == "zero" for e in model.events)
        assert "max IR" in window.peak_label("right")
        # the clinician's own zero button: a zero event now
        n_zero = sum(e.kind == "zero" for e in model.events)
        qtbot.mouseClick(window.zero_button, Qt.LeftButton)
        tick_until(qtbot, window, lambda: sum(e.kind == "zero" for e in model.events) > n_zero, 10.0)
        qtbot.mouseClick(window.end_button, Qt.LeftButton)
        tick_until(qtbot, window, lambda: engine.last_recording is not None and not model.recording["active"], 60.0)
        window.show_screen("results")
        assert window.results_table.rowCount() == len(model.results) >= 1
        assert "seated rotation" in window.headline_text().lower()
    finally:
        window.close()
        engine.close()
    session = load_session(engine.last_recording)
    kinds = [e.kind for e in session.events]
    assert kinds.count("phase_start") == 5 and kinds.count("zero") >= 2 and "trial_start" in kinds


def run_cli(*args: str, env_extra: dict | None = None, timeout: float = 120.0) -> subprocess.CompletedProcess:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "DBUS_SESSION_BUS_ADDRESS": "disabled:", **(env_extra or {})}
    env.pop("DISPLAY", None)
    return subprocess.run([*HIPIMU, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def test_cli_screenshots_and_bad_input(seated, tmp_path):
    shot = tmp_path / "r.png"
    p = run_cli("replay", str(seated), "--at", "70", "--paused", "--screenshot", str(shot), "--quit-after", "3")
    assert p.returncode == 0, p.stderr
    assert non_blank(shot)
    shot = tmp_path / "l.png"
    p = run_cli("live", "--simulate", "--speed", "8", "--out-dir", str(tmp_path / "s"), "--screen", "calibration",
                "--screenshot", str(shot), "--quit-after", "3")
    assert p.returncode == 0, p.stderr
    assert non_blank(shot) and list((tmp_path / "s").glob("*.hipimu"))  # the session was recorded
    # without a display and without --screenshot: how to run it, exit 2
    p = run_cli("live", "--simulate", env_extra={"QT_QPA_PLATFORM": ""})
    assert p.returncode == 2 and "xvfb-run" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    p = run_cli("replay", str(tmp_path / "missing.hipimu"), "--screenshot", str(tmp_path / "x.png"))
    assert p.returncode == 2 and "no such recording" in p.stderr and not (tmp_path / "x.png").exists()
    bad = tmp_path / "bad.hipimu"
    bad.write_bytes(b"not a recording")
    p = run_cli("replay", str(bad), "--screenshot", str(tmp_path / "y.png"), "--quit-after", "2")
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr


@pytest.mark.parametrize("scenario, method, label", [("sitting_rotation", "seated", "Seated (cannot stand)"),
                                                     ("walk", "walk", "Walk")])
def test_live_seated_and_walk_calibration_chosen_on_the_calibration_screen(qtbot, tmp_path, scenario, method, label):
    from hipimu.core.conventions import CALIBRATION_PHASES, CALIBRATION_PHASES_OF_METHOD
    from hipimu.core.model import SessionInfo

    engine = LiveEngine(LiveOptions(simulate=True, scenario=scenario, seed=1, out_dir=tmp_path, speed=10.0))
    model = DashboardModel()
    window = open_window(qtbot, model, engine)
    window.show_screen("calibration")
    panel = window.guide_panel
    try:
        # before the session: the standing routine, its steps waiting; the three methods offered
        window.tick()
        combo = panel.method_combo
        assert [combo.itemText(i) for i in range(combo.count())] == ["Standing routine", "Seated (cannot stand)", "Walk"]
        assert combo.isEnabled() and combo.currentText() == "Standing routine"
        assert panel.steps.count() == len(CALIBRATION_PHASES)
        combo.activated.emit(combo.findText(label))
        tick_until(qtbot, window, lambda: model.calibration_method == method, 10.0)
        assert model.calibration_phases() == CALIBRATION_PHASES_OF_METHOD[method]
        assert [panel.steps.item(i).text() for i in range(panel.steps.count())] == [
            f"○ {i + 1}. {p.replace('_', ' ')}" for i, p in enumerate(CALIBRATION_PHASES_OF_METHOD[method])]
        engine.start_session(SessionInfo(subject_id="T-" + method, test="free"))
        seen = set()

        def passed() -> bool:
            if model.guide is not None:
                seen.update(s.phase for s in model.guide.steps if s.status == "active")
            return model.guide is not None and model.guide.result == "passed"

        tick_until(qtbot, window, passed, 60.0)
        assert model.guide.method == method and seen == set(CALIBRATION_PHASES_OF_METHOD[method])
        assert f"calibration passed: {method}, grade" in panel.outcome.text()
        assert not combo.isEnabled() and combo.currentText() == label  # done steps: no switching
        engine.end_session()
        tick_until(qtbot, window, lambda: engine.last_recording is not None and not model.recording["active"], 60.0)
    finally:
        window.close()
        engine.close()
    session = load_session(engine.last_recording)
    assert [e.label for e in session.events if e.kind == "phase_start"] == list(CALIBRATION_PHASES_OF_METHOD[method])
