"""The dashboard's Qt views (offscreen): what is shown comes from the model, every button calls the controller.

A FakeController records the calls and the test puts synthetic updates on its
queue (a sine of known peaks, sensors, guide, trial, result, replay state);
``window.tick()`` drains them as the frame timer would.
"""

import math
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("DBUS_SESSION_BUS_ADDRESS", "disabled:")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402




from PySide6.QtCore import QPoint, Qt  # noqa: E402

from conftest import png_is_not_blank  # noqa: E402
from hipimu.apps.dashboard.controller import Controller  # noqa: E402
from hipimu.apps.dashboard.model import DashboardModel, SensorStatus, TrialResult, Update  # noqa: E402
from hipimu.apps.dashboard.window import SCREENS, SCROLL_AHEAD_S, ExportDialog, MainWindow, RecomputeDialog  # noqa: E402
from hipimu.core.live_types import AngleBlock, GuideState, GuideStep  # noqa: E402
from hipimu.core.model import Event, SessionInfo  # noqa: E402

MAX_IR, MAX_ER = 31.2, 28.0  # deg: the synthetic rotation's peaks
RATE = 100.0

ACTIONS = ("scan", "assign", "identify", "start_session", "set_calibration_method", "restart_calibration", "redo_step",
           "start_trial", "stop_trial", "zero", "marker", "end_session", "play", "pause", "set_speed", "seek", "recompute",
           "export_csv")


class FakeController(Controller):
    """Records every action as (name, args, kwargs); the test feeds ``updates``."""

    def __init__(self, mode: str = "live") -> None:
        super().__init__()
        self.mode = mode
        self.calls: list[tuple[str, tuple, dict]] = []

    def called(self, name: str) -> list[tuple[tuple, dict]]:
        return [(a, k) for n, a, k in self.calls if n == name]


def _recorder(name):
    def method(self, *args, **kwargs):
        self.calls.append((name, args, kwargs))
    method.__name__ = name
    return method


for _name in ACTIONS:
    setattr(FakeController, _name, _recorder(_name))


def rotation_deg(t: np.ndarray) -> np.ndarray:
    """Hip rotation: IR peaks MAX_IR, ER peaks MAX_ER (at t = 1, 5, 9 / 3, 7 s, on the samples)."""
    s = np.sin(2 * np.pi * 0.25 * t)
    return np.where(s >= 0, MAX_IR * s, MAX_ER * s)


def angle_block(t0: float, t1: float, quality: float, sides=("left", "right"), tilt_deg: float = 4.0) -> AngleBlock:
    t = np.arange(round(t0 * RATE), round(t1 * RATE)) / RATE
    rot = rotation_deg(t)
    hip = {s: np.radians(np.column_stack([np.full_like(t, 20.0), np.full_like(t, -3.0), rot])) for s in sides}
    pelvis = np.radians(np.column_stack([np.full_like(t, tilt_deg), np.full_like(t, 1.0), np.full_like(t, -2.0)]))
    return AngleBlock(t, hip, pelvis, np.full_like(t, quality))


def make(qtbot, mode: str = "live"):
    model = DashboardModel(rate_hz=RATE, bands=None, mode=mode)
    ctrl = FakeController(mode)
    # plots end at the latest data (no wall clock), numbers redrawn on every frame
    window = MainWindow(model, ctrl, fps=30.0, scroll=False, numbers_hz=None)
    window.timer.stop()  # the test drives the frames
    qtbot.addWidget(window)
    window.show()
    return window, model, ctrl


def feed(window, ctrl, *updates):
    for kind, payload in updates:
        ctrl.updates.put(Update(kind, payload))
    window.tick()


non_blank = png_is_not_blank


def test_numbers_peaks_and_banner(qtbot):
    window, model, ctrl = make(qtbot)
    window.show_screen("test")
    block = angle_block(0.0, 7.5, quality=0.9)
    feed(window, ctrl, ("angles", block))
    last = rotation_deg(block.time_s)[-1]
    assert last < 0
    assert window.rotation_label("right") == f"ER {-last:.1f}°"
    assert window.rotation_label("left") == f"ER {-last:.1f}°"
    assert window.peak_label("right") == f"max IR {MAX_IR:.1f}° / max ER {MAX_ER:.1f}°"
    assert window.tilt_label() == "ant 4.0°"
    assert not window.banner_visible()
    assert window.frames_drawn == 1

    # a block ending in internal rotation, poor quality: IR label, banner
    block = angle_block(7.5, 8.6, quality=0.1, tilt_deg=-2.5)
    feed(window, ctrl, ("angles", block))
    last = rotation_deg(block.time_s)[-1]
    assert last > 0
    assert window.rotation_label("right") == f"IR {last:.1f}°"
    assert window.tilt_label() == "post 2.5°"
    assert window.banner_visible()
    assert "Heading unreliable" in window.banner.text()
    assert window.frames_drawn == 2
    # no update: no redraw
    window.tick()
    assert window.frames_drawn == 2
    # the band text of the default test (seated_rotation: IR 28-38 -> 31.2 inside; ER 35-42 -> 28 below)
    assert "IR ✓" in window.band_label("right") and "ER ↓ below" in window.band_label("right")

    feed(window, ctrl, ("angles", angle_block(8.6, 9.0, quality=0.9)))
    assert not window.banner_visible()

    # plots: x is relative time, fixed range -30..0; the peak lines sit at the peaks
    plot = window.hip_plots["right"]
    x, y = plot.curve_data(0)
    assert x[-1] == pytest.approx(0.0) and y[-1] == pytest.approx(rotation_deg(np.array([8.99]))[0])
    assert [ln.value() for ln in plot.hlines] == pytest.approx([MAX_IR, -MAX_ER])
    assert plot.plot.getPlotItem().viewRange()[0] == pytest.approx([-30.0, 0.0])

    # reset peaks: the hold starts again from now (only the latest sample counts)
    window.reset_peaks_button.click()
    now_value = rotation_deg(np.array([8.99]))[0]
    assert window.peak_label("right") == f"max IR {now_value:.1f}° / max ER –"
    feed(window, ctrl, ("angles", angle_block(9.0, 11.0, quality=0.9)))  # 9..11 s: down to ER -22.1
    max_er = -rotation_deg(np.array([10.99]))[0]
    assert window.peak_label("right") == f"max IR {now_value:.1f}° / max ER {max_er:.1f}°"


def test_one_side_only_and_trial(qtbot):
    window, model, ctrl = make(qtbot)
    window.show_screen("test")
    feed(window, ctrl, ("angles", angle_block(0.0, 2.0, 0.9, sides=("right",))))
    assert window.sides["right"].isVisible() and not window.sides["left"].isVisible()

    window.test_combo.setCurrentText("prone_rotation")
    window.side_combo.setCurrentText("left")
    qtbot.mouseClick(window.trial_button, Qt.LeftButton)
    assert ctrl.called("start_trial") == [(("prone_rotation", "left"), {})]
    feed(window, ctrl, ("trial", {"active": True, "test": "prone_rotation", "side": "right", "index": 1,
                                  "start_s": 2.0}),
         ("event", Event(2.0, "trial_start", "prone_rotation", {"side": "right", "index": 1})),
         ("angles", angle_block(2.0, 3.0, 0.9, sides=("right",), tilt_deg=4.0)))
    assert "Stop" in window.trial_button.text()
    assert not window.test_combo.isEnabled()
    assert not window.compensation.isVisible()
    # the pelvis tilts by 6 deg during the trial -> compensation flag
    feed(window, ctrl, ("angles", angle_block(3.0, 4.0, 0.9, sides=("right",), tilt_deg=10.0)))
    assert window.compensation.isVisible()
    assert "since trial start" in window.pelvis_change.text()
    assert window.hip_plots["right"].visible_events() == pytest.approx([-1.99])
    qtbot.mouseClick(window.trial_button, Qt.LeftButton)
    assert len(ctrl.called("stop_trial")) == 1

    qtbot.mouseClick(window.zero_button, Qt.LeftButton)
    assert ctrl.called("zero") == [((None,), {})]
    window.marker_edit.setText("pain at end range")
    qtbot.mouseClick(window.marker_button, Qt.LeftButton)
    assert ctrl.called("marker") == [(("pain at end range",), {})]


def test_session_screen(qtbot, tmp_path):
    window, model, ctrl = make(qtbot)
    window.show_screen("session")
    qtbot.mouseClick(window.start_session_button, Qt.LeftButton)
    assert ctrl.called("start_session") == []
    assert "subject id" in window.session_message.text()
    assert window.subject_edit.placeholderText() == "code, never a name"

    window.subject_edit.setText("S017")
    window.side_checks["left"].setChecked(False)
    window.session_test_combo.setCurrentText("squat")
    window.notes_edit.setPlainText("after warm-up")
    window.output_edit.setText(str(tmp_path / "s017.h5"))
    qtbot.mouseClick(window.start_session_button, Qt.LeftButton)
    (args, kwargs), = ctrl.called("start_session")
    assert args == (SessionInfo(subject_id="S017", sides=("right",), test="squat", notes="after warm-up"),
                    tmp_path / "s017.h5")
    assert window.session_message.text() == ""

    window.output_edit.setText("")
    qtbot.mouseClick(window.start_session_button, Qt.LeftButton)
    assert ctrl.called("start_session")[-1][0][1] is None


def test_sensors_screen(qtbot):
    window, model, ctrl = make(qtbot)
    window.show_screen("sensors")
    qtbot.mouseClick(window.scan_button, Qt.LeftButton)
    assert len(ctrl.called("scan")) == 1
    rows = [{"name": "IMU-A", "address": "AA:01", "rssi": -55, "device_id": "dev-a", "role": ""},
            {"name": "IMU-B", "address": "AA:02", "rssi": -70, "device_id": "dev-b", "role": "pelvis"}]
    sensors = [SensorStatus("pelvis", "IMU-B", "dev-b", "streaming", 87.0, 100.0, 0.2, -60.0, 12.0, 0),
               SensorStatus("thigh_right", "IMU-C", "dev-c", "reconnecting", 40.0, 0.0, 9.0, -92.0, 80.0, 2)]
    feed(window, ctrl, ("scan", rows), ("sensors", sensors),
         ("recording", {"active": True, "path": "/data/S017.h5", "elapsed_s": 83.0}), ("status", "streaming"))
    assert window.scan_table.rowCount() == 2 and window.scan_table.item(1, 3).text() == "dev-b"
    assert window.status_table.rowCount() == 2 and window.status_table.item(0, 9).text() == "good"
    assert window.status_table.item(1, 9).text() == "lost"
    assert window.chips["pelvis"].text() == "pelvis ✓ 87% good"
    assert "✗" in window.chips["thigh_right"].text()
    assert window.recording_text() == "● REC 01:23  S017.h5"

    qtbot.mouseClick(window.assign_button, Qt.LeftButton)  # no row picked
    assert ctrl.called("assign") == [] and "Pick" in window.sensors_message.text()
    window.scan_table.selectRow(0)
    window.assign_role_combo.setCurrentText("thigh_left")
    qtbot.mouseClick(window.assign_button, Qt.LeftButton)
    assert ctrl.called("assign") == [(("thigh_left", "dev-a"), {})]
    window.identify_role_combo.setCurrentText("thigh_right")
    qtbot.mouseClick(window.identify_button, Qt.LeftButton)
    assert ctrl.called("identify") == [(("thigh_right",), {})]


def test_calibration_screen(qtbot):
    window, model, ctrl = make(qtbot)
    window.show_screen("calibration")
    panel = window.guide_panel
    assert panel.hint.isVisible() and "start a session first" in panel.hint.text().lower()
    guide = GuideState([GuideStep("stand", "Stand still", "done", message="ok"),
                        GuideStep("hip_hinge", "Two slow hip hinges", "active", 2, 3),
                        GuideStep("knee_lift_right", "Three knee lifts, right", "waiting", 0, 3)],
                       active=1, countdown_s=2.3)
    feed(window, ctrl, ("guide", guide))
    assert not panel.hint.isVisible()
    assert panel.instruction.text() == "Two slow hip hinges"
    assert panel.count.text() == "2 of 3"
    assert panel.countdown.text() == "3"
    assert panel.steps.item(0).text().startswith("✓") and panel.steps.item(1).text().startswith("▶")
    guide = GuideState([GuideStep("stand", "Stand still", "failed", message="you moved")], active=0,
                       result="failed", message="Too much movement.")
    feed(window, ctrl, ("guide", guide))
    assert "failed" in panel.outcome.text() and "Redo: stand" in panel.outcome.text()
    assert panel.countdown.text() == ""
    qtbot.mouseClick(panel.redo_button, Qt.LeftButton)
    qtbot.mouseClick(panel.restart_button, Qt.LeftButton)
    assert len(ctrl.called("redo_step")) == 1 and len(ctrl.called("restart_calibration")) == 1


def test_calibration_screen_offers_three_methods_and_the_steps_follow_the_choice(qtbot):
    from hipimu.core.conventions import CALIBRATION_PHASES, SEATED_CALIBRATION_PHASES, WALK_CALIBRATION_PHASES

    window, model, ctrl = make(qtbot)
    window.show_screen("calibration")
    panel = window.guide_panel
    combo = panel.method_combo
    assert [combo.itemText(i) for i in range(combo.count())] == ["Standing routine", "Seated (cannot stand)", "Walk"]
    # before the guide starts: the choice, and the chosen method's steps waiting
    assert combo.isVisible() and combo.isEnabled() and panel.hint.isVisible()
    assert model.calibration_phases() == CALIBRATION_PHASES and panel.steps.count() == 5
    combo.activated.emit(1)
    assert ctrl.called("set_calibration_method") == [(("seated",), {})]
    feed(window, ctrl, ("calibration_method", "seated"))
    assert model.calibration_phases() == SEATED_CALIBRATION_PHASES
    assert [panel.steps.item(i).text() for i in range(panel.steps.count())] == [
        "○ 1. sit", "○ 2. seated lift right", "○ 3. seated lift left", "○ 4. sit final"]
    assert combo.currentText() == "Seated (cannot stand)"
    feed(window, ctrl, ("calibration_method", "walk"))
    assert model.calibration_phases() == WALK_CALIBRATION_PHASES and panel.steps.count() == 2
    # the guide runs: its method; switchable while nothing is done
    guide = GuideState([GuideStep("stand", "Stand still", "active"), GuideStep("walk", "Walk straight ahead", "waiting", 0, 5)],
                       countdown_s=2.0, method="walk")
    feed(window, ctrl, ("guide", guide))
    assert combo.currentText() == "Walk" and combo.isEnabled() and model.calibration_method_switchable()
    guide = GuideState([GuideStep("stand", "Stand still", "done"), GuideStep("walk", "Walk straight ahead", "done", 6, 5)],
                       active=2, result="passed", message="calibration passed: walk, grade B", method="walk")
    feed(window, ctrl, ("guide", guide))
    assert not combo.isEnabled() and not model.calibration_method_switchable()
    assert "calibration passed: walk, grade B" in panel.outcome.text()
    assert panel.steps.item(1).text() == "✓ 2. walk  6/5"
    # a switch the engine refused: the combo shows the guide's method again
    combo.setCurrentIndex(0)
    feed(window, ctrl, ("guide", guide))
    assert combo.currentText() == "Walk"


def test_results_screen(qtbot):
    window, model, ctrl = make(qtbot)
    window.show_screen("results")
    feed(window, ctrl, ("result", TrialResult("seated_rotation", "right", 1, 10.0, 20.0, {"max_ir": 30.0})),
         ("result", TrialResult("seated_rotation", "right", 2, 30.0, 45.0,
                                {"max_ir": 34.2, "max_er": 40.1, "arc": 74.3, "pelvis": 3.1})))
    assert window.results_table.rowCount() == 2
    headers = [window.results_table.horizontalHeaderItem(i).text() for i in range(window.results_table.columnCount())]
    assert "max IR °" in headers and "arc °" in headers
    assert window.headline_text() == "Right seated rotation #2: max IR 34°, max ER 40°, arc 74°, pelvis 3°"


def test_replay_transport(qtbot, tmp_path):
    window, model, ctrl = make(qtbot, mode="replay")
    assert window.current_screen() == "test"
    feed(window, ctrl, ("replay", {"duration_s": 120.0, "position_s": 10.0, "playing": False, "speed": 1.0}),
         ("event", Event(30.0, "marker", "here")), ("event", Event(60.0, "zero")))
    assert window.timeline.duration_s == 120.0 and len(window.timeline.ticks) == 2
    qtbot.mouseClick(window.play_button, Qt.LeftButton)
    assert len(ctrl.called("play")) == 1
    feed(window, ctrl, ("replay", {"playing": True}))
    assert "Pause" in window.play_button.text()
    qtbot.mouseClick(window.play_button, Qt.LeftButton)
    assert len(ctrl.called("pause")) == 1

    window.speed_combo.setCurrentText("0.25x")
    assert ctrl.called("set_speed") == [((0.25,), {})]
    feed(window, ctrl, ("replay", {"speed": 0.25}))
    assert len(ctrl.called("set_speed")) == 1  # syncing the combo from the model calls nothing

    tl = window.timeline
    qtbot.mouseClick(tl, Qt.LeftButton, pos=QPoint(round(tl.x_at(30.0)), tl.height() // 2))
    (args, _), = ctrl.called("seek")
    assert args[0] == pytest.approx(30.0, abs=120.0 / tl.width() * 2)

    qtbot.mouseClick(window.export_button, Qt.LeftButton)
    dialog = window.findChildren(ExportDialog)[-1]
    dialog.path_edit.setText(str(tmp_path / "sel.csv"))
    dialog.start_spin.setValue(5.0)
    dialog.end_spin.setValue(12.0)
    dialog.accept()
    assert ctrl.called("export_csv") == [((tmp_path / "sel.csv", 5.0, 12.0), {})]
    dialog = window.open_export_dialog()  # defaults: the whole session
    dialog.path_edit.setText(str(tmp_path / "all.csv"))
    dialog.accept()
    assert ctrl.called("export_csv")[-1] == ((tmp_path / "all.csv", None, None), {})

    qtbot.mouseClick(window.recompute_button, Qt.LeftButton)
    dialog = window.findChildren(RecomputeDialog)[-1]
    dialog.windows_check.setChecked(True)
    for spin, v in zip(dialog.spins, (1.0, 4.0, 5.0, 20.0)):
        spin.setValue(v)
    dialog.filter_combo.setCurrentText("madgwick")
    dialog._check()
    assert ctrl.called("recompute") == [((), {"static": (1.0, 4.0), "functional": (5.0, 20.0), "method": "madgwick"})]

    window.show_screen("sensors")
    assert window.stack.currentWidget().text() == "replay: not available"


def test_every_screen_renders(qtbot, tmp_path):
    window, model, ctrl = make(qtbot)
    feed(window, ctrl, ("angles", angle_block(0.0, 20.0, 0.9)),
         ("sensors", [SensorStatus("pelvis", "IMU-B", "dev-b", "streaming", 87.0, 100.0, 0.2, -60.0, 12.0, 0)]),
         ("guide", GuideState([GuideStep("stand", "Stand still, feet hip-width", "active")], countdown_s=2.0)),
         ("result", TrialResult("seated_rotation", "right", 1, 1.0, 9.0, {"max_ir": 31.2, "max_er": 28.0})),
         ("event", Event(15.0, "marker", "look")))
    assert window.screen_names() == SCREENS
    for name in SCREENS:
        window.show_screen(name)
        window.tick()
        assert window.current_screen() == name
        path = window.grab_png(tmp_path / f"{name}.png")
        assert path.exists() and non_blank(path), name


def test_replay_renders_and_timer_ticks(qtbot, tmp_path):
    model = DashboardModel(rate_hz=RATE, bands=None, mode="replay")
    ctrl = FakeController("replay")
    window = MainWindow(model, ctrl, fps=100.0)
    qtbot.addWidget(window)
    window.show()
    ctrl.updates.put(Update("replay", {"duration_s": 60.0, "position_s": 20.0, "playing": True, "speed": 1.0}))
    ctrl.updates.put(Update("angles", angle_block(0.0, 20.0, 0.9)))
    qtbot.waitUntil(lambda: window.frames_drawn >= 1 and ctrl.updates.empty(), timeout=15000)  # the timer drained
    assert not math.isnan(model.now_s)
    assert non_blank(window.grab_png(tmp_path / "replay.png"))


def test_live_plots_scroll_while_angles_flow(qtbot):
    """Live, the plots are redrawn every frame while angles arrive (the x axis runs with the
    wall clock from the latest data, at most SCROLL_AHEAD_S ahead of it), and not once they stop."""
    model = DashboardModel(rate_hz=RATE, bands=None)
    ctrl = FakeController()
    window = MainWindow(model, ctrl, fps=30.0)
    window.timer.stop()
    qtbot.addWidget(window)
    window.show()
    window.show_screen("test")
    feed(window, ctrl, ("angles", angle_block(0.0, 5.0, 0.9)))
    drawn = window.frames_drawn
    for _ in range(3):
        qtbot.wait(20)
        window.tick()
    assert window.frames_drawn == drawn + 3  # no new data, yet each frame scrolls
    assert window._display_now() <= model.now_s + SCROLL_AHEAD_S + 1e-9
    window._arrivals.clear()  # the flow has stopped (nothing for 2 s)
    window.tick()
    assert window.frames_drawn == drawn + 3
