"""The dashboard's main window: draws the :class:`DashboardModel`, calls the :class:`Controller`.

The window computes no angle and never blocks. A frame timer (``fps``) calls
:meth:`MainWindow.tick`, which drains ``controller.updates`` into the model
and redraws what changed: labels and tables when ``model.version`` moved,
the time-series plots only when new angle data (or events) arrived and the
live view is shown (``frames_drawn`` counts those frames). Buttons call the
controller, whose outcomes come back as updates.

Layout: an always-visible top strip (recording, sensor chips, quality light,
status), a red "heading unreliable" banner when the quality is red, in replay
a transport bar, then a numbered navigation list of the screens and the
screens themselves (:data:`SCREENS`, workflow order).
"""

from __future__ import annotations

import logging
import math
import queue
import time
from pathlib import Path

from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtWidgets import (QApplication, QCheckBox, QFormLayout, QFrame, QGridLayout, QHBoxLayout, QLabel,
                               QLineEdit, QListWidget, QMainWindow, QPlainTextEdit, QStackedWidget, QVBoxLayout,
                               QWidget)

from hipimu.apps.dashboard.controller import Controller
from hipimu.apps.dashboard.model import DashboardModel
from hipimu.apps.dashboard.widgets import (COLORS, LINK_COLORS, BigNumber, ExportDialog, GuidePanel, QualityLight,
                                           RecomputeDialog, SensorChip, SeriesPlot, SidePanel, Timeline, _button,
                                           _combo, _fill, _font, _num, _table, fmt_deg, fmt_time, rotation_text,
                                           tilt_text)
from hipimu.core.conventions import ROLES, SIDES, TESTS
from hipimu.core.model import SessionInfo

__all__ = ["MainWindow", "SCREENS", "SPEEDS", "ExportDialog", "RecomputeDialog", "headline"]

log = logging.getLogger(__name__)

#: Screens in workflow order.
SCREENS = ("sensors", "session", "calibration", "test", "results")
TITLES = {"sensors": "Sensors", "session": "Session", "calibration": "Calibration", "test": "Test (live)",
          "results": "Results"}
LIVE_ONLY = ("sensors", "session", "calibration")
#: Replay speeds (x real time).
SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0)
#: Update kinds that change the time-series plots.
PLOT_KINDS = {"angles", "reset", "event", "trial", "session", "peaks"}
#: Updates that come every frame (live angles; replay angles and playhead): the numbers and
#: tables they change are redrawn at NUMBERS_HZ, anything else at once.
FRAME_KINDS = {"angles", "replay"}
#: Short labels of the event lines (markers show their text).
EVENT_LABELS = {"trial_start": "trial", "trial_end": "end", "zero": "zero"}
BANNER_TEXT = "⚠ Heading unreliable - zero in neutral (rotation tests) or stand still (free)"


#: How often the numbers and tables are redrawn while angles flow (Hz).
NUMBERS_HZ = 10.0

#: Live scrolling: the plots keep scrolling this long after the last angles arrived (s), and
#: run at most this far ahead of the data (s): more than the interval between angle blocks
#: (hipimu.core.live.ANGLES_EVERY_S, 0.1 s, plus the BLE packets' jitter), so the plots
#: scroll evenly between blocks; 0.15 s of 30 s is ~3 pixels.
SCROLL_LAG_WINDOW_S = 2.0
SCROLL_AHEAD_S = 0.15

#: At most this many points per curve are drawn (a 30 s trace is ~1200 pixels wide: 100 Hz
#: data is drawn at 50 Hz, every other sample counted back from the newest).
MAX_POINTS = 1600


def _pretty(key: str) -> str:
    return " ".join(w.upper() if w in ("ir", "er") else w for w in key.replace("_deg", "").split("_"))


def headline(result) -> str:
    """``Right seated rotation #2: max IR 34°, max ER 40°, arc 74°, pelvis 3°`` for a TrialResult."""
    values = ", ".join(f"{_pretty(k)} {v:.0f}°" for k, v in result.values_deg.items() if math.isfinite(v))
    text = f"{result.side.capitalize()} {result.test.replace('_', ' ')} #{result.index}: {values}"
    return text + (f"  [{', '.join(result.flags)}]" if result.flags else "")


class MainWindow(QMainWindow):
    """The dashboard. Draws ``model``; every action goes to ``controller``.

    Public: :meth:`tick`, :meth:`show_screen`, :meth:`screen_names`, :meth:`current_screen`,
    :attr:`frames_drawn`, :meth:`grab_png`, and readers of what is shown (for tests):
    :meth:`rotation_label`, :meth:`peak_label`, :meth:`band_label`, :meth:`tilt_label`,
    :meth:`banner_visible`, :meth:`recording_text`, :meth:`headline_text`."""

    def __init__(self, model: DashboardModel, controller: Controller, *, fps: float = 60.0,
                 scroll: bool = True, numbers_hz: float | None = NUMBERS_HZ) -> None:
        super().__init__()
        self.model, self.controller = model, controller
        self.replay = controller.mode == "replay"
        self.scroll = scroll and not self.replay  # live: the plots scroll at the frame rate
        self.frames_drawn = 0
        self._drawn_version = -1
        self._dirty: set[str] = {"sensors", "scan", "guide", "result", "replay", "event"}
        self._plots_stale = True
        # live scrolling: the plots' "now" runs with the wall clock, behind the data by the
        # largest lag seen at recent arrivals (so the trace never runs out); see _display_now
        self._arrivals: list[tuple[float, float]] = []  # (wall s, data s) when angles arrived
        self._refreshed_at = -1e9
        self._shown_now = -math.inf
        self._numbers_every_s = 0.0 if not numbers_hz else 1.0 / numbers_hz
        self.setWindowTitle("hipimu dashboard" + (" - replay" if self.replay else ""))
        self.resize(1280, 800)

        central = QWidget()
        self.setCentralWidget(central)
        outer = QVBoxLayout(central)
        outer.setContentsMargins(6, 6, 6, 6)
        outer.addWidget(self._build_strip())
        self.banner = QLabel(BANNER_TEXT)
        self.banner.setObjectName("heading_banner")
        self.banner.setFont(_font(26, bold=True))
        self.banner.setAlignment(Qt.AlignCenter)
        self.banner.setStyleSheet(f"background: {COLORS['vermillion']}; color: white; padding: 8px;")
        self.banner.hide()
        outer.addWidget(self.banner)
        if self.replay:
            outer.addWidget(self._build_transport())
        body = QHBoxLayout()
        outer.addLayout(body, 1)
        self.nav = QListWidget()
        self.nav.setObjectName("nav")
        self.nav.setFont(_font(18))
        self.nav.setFixedWidth(170)
        self.nav.addItems([f"{i + 1}  {TITLES[n]}" for i, n in enumerate(SCREENS)])
        body.addWidget(self.nav)
        self.stack = QStackedWidget()
        body.addWidget(self.stack, 1)
        builders = {"sensors": self._build_sensors, "session": self._build_session,
                    "calibration": self._build_calibration, "test": self._build_test,
                    "results": self._build_results}
        self._hidden_pages: list[QWidget] = []
        for name in SCREENS:
            if self.replay and name in LIVE_ONLY:
                self.stack.addWidget(self._placeholder())
                self._hidden_pages.append(builders[name]())  # the widgets exist (uniform code), not shown
            else:
                self.stack.addWidget(builders[name]())
        self.nav.currentRowChanged.connect(self._on_nav)
        self.show_screen("test" if self.replay else "sensors")
        self._refresh()

        self.timer = QTimer(self)
        self.timer.setInterval(max(1, int(round(1000.0 / fps))))
        self.timer.timeout.connect(self.tick)
        self.timer.start()

    # -- public ------------------------------------------------------------------------

    def screen_names(self) -> tuple[str, ...]:
        return SCREENS

    def current_screen(self) -> str:
        return SCREENS[self.stack.currentIndex()]

    def show_screen(self, name: str) -> None:
        """Show screen ``name`` (one of :data:`SCREENS`)."""
        self.nav.setCurrentRow(SCREENS.index(name))  # -> _on_nav

    def tick(self) -> None:
        """One frame: drain the controller's updates into the model, redraw what changed."""
        while True:
            try:
                update = self.controller.updates.get_nowait()
            except queue.Empty:
                break
            try:
                self.model.apply(update)
            except Exception:  # an unknown or malformed update must not stop the window
                log.exception("update %r not applied", getattr(update, "kind", update))
                continue
            self._dirty.add(update.kind)
        scrolling = False
        if self.scroll:
            wall = time.monotonic()
            if "angles" in self._dirty and math.isfinite(self.model.now_s):
                self._arrivals.append((wall, self.model.now_s))
            self._arrivals = [a for a in self._arrivals if a[0] > wall - SCROLL_LAG_WINDOW_S]
            scrolling = bool(self._arrivals)  # angles are flowing: draw every frame, scrolling
        # numbers and tables: at most NUMBERS_HZ (a number changing 60 times a second cannot be
        # read, and text is the costliest thing to paint); anything but new angles at once
        now_wall = time.monotonic()
        if self.model.version != self._drawn_version and (
                self._dirty - FRAME_KINDS or now_wall - self._refreshed_at >= self._numbers_every_s):
            self._refreshed_at = now_wall
            self._refresh()
        elif self.replay and "replay" in self._dirty:  # the playhead moves every frame, the numbers at 10 Hz
            self._draw_transport()
            self._dirty.discard("replay")
        if self.current_screen() == "test" and (self._plots_stale or scrolling or self._dirty & PLOT_KINDS):
            self._draw_plots()
            self._dirty -= PLOT_KINDS
            self._plots_stale = False

    def grab_png(self, path) -> Path:
        """Save the window as it looks now to a PNG; returns the path."""
        path = Path(path)
        QApplication.sendPostedEvents(None, QEvent.LayoutRequest)  # lay out text changed since the last loop
        self.grab().save(str(path), "PNG")
        return path

    def rotation_label(self, side: str) -> str:
        return self.sides[side].rotation.text()

    def peak_label(self, side: str) -> str:
        return self.sides[side].peak.text()

    def band_label(self, side: str) -> str:
        return self.sides[side].band.text()

    def tilt_label(self) -> str:
        return self.tilt.text()

    def banner_visible(self) -> bool:
        return not self.banner.isHidden()

    def recording_text(self) -> str:
        return self.rec_label.text()

    def headline_text(self) -> str:
        return self.headline.text()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt)
        self.timer.stop()
        super().closeEvent(event)

    # -- building ------------------------------------------------------------------------

    def _build_strip(self) -> QWidget:
        strip = QFrame()
        strip.setObjectName("strip")
        strip.setFrameShape(QFrame.StyledPanel)
        lay = QHBoxLayout(strip)
        lay.setContentsMargins(6, 2, 6, 2)
        self.rec_label = QLabel()
        self.rec_label.setObjectName("recording")
        self.rec_label.setFont(_font(18, bold=True))
        self.rec_label.setMinimumWidth(150)
        lay.addWidget(self.rec_label)
        self.chips = {role: SensorChip(role) for role in ROLES}
        for chip in self.chips.values():
            lay.addWidget(chip)
        self.light = QualityLight()
        self.light.setObjectName("quality_light")
        lay.addWidget(self.light)
        self.status_label = QLabel()
        self.status_label.setObjectName("status")
        self.status_label.setFont(_font(15))
        self.status_label.setWordWrap(True)
        lay.addWidget(self.status_label, 1)
        return strip

    def _build_transport(self) -> QWidget:
        bar = QFrame()
        bar.setObjectName("transport")
        lay = QHBoxLayout(bar)
        lay.setContentsMargins(6, 0, 6, 0)
        self.play_button = _button("▶ Play", "play")
        self.play_button.clicked.connect(self._on_play)
        self.speed_combo = _combo([f"{s:g}x" for s in SPEEDS], "speed")
        self.speed_combo.setCurrentIndex(SPEEDS.index(1.0))
        self.speed_combo.currentIndexChanged.connect(lambda i: self.controller.set_speed(SPEEDS[i]))
        self.timeline = Timeline()
        self.timeline.seek_requested.connect(self.controller.seek)
        self.time_label = QLabel("--:-- / --:--")
        self.time_label.setFont(_font(16, bold=True))
        self.recompute_button = _button("Recompute...", "recompute")
        self.recompute_button.clicked.connect(self.open_recompute_dialog)
        self.export_button = _button("Export CSV...", "export")
        self.export_button.clicked.connect(self.open_export_dialog)
        for w in (self.play_button, self.speed_combo):
            lay.addWidget(w)
        lay.addWidget(self.timeline, 1)
        for w in (self.time_label, self.recompute_button, self.export_button):
            lay.addWidget(w)
        return bar

    def _placeholder(self) -> QWidget:
        label = QLabel("replay: not available")
        label.setAlignment(Qt.AlignCenter)
        label.setFont(_font(28))
        label.setStyleSheet("color: #555555;")
        return label

    def _build_sensors(self) -> QWidget:
        page = QWidget()
        lay = QVBoxLayout(page)
        title = QLabel("Sensors: scan, assign to a role, check the links")
        title.setFont(_font(22, bold=True))
        lay.addWidget(title)
        self.scan_table = _table(("Name", "Address", "RSSI", "Device id", "Role"), "scan_table")
        lay.addWidget(self.scan_table, 1)
        row = QHBoxLayout()
        self.scan_button = _button("Scan", "scan")
        self.scan_button.clicked.connect(self.controller.scan)
        self.assign_role_combo = _combo(ROLES, "assign_role")
        self.assign_button = _button("Assign to role", "assign")
        self.assign_button.clicked.connect(self._on_assign)
        self.identify_role_combo = _combo(ROLES, "identify_role")
        self.identify_button = _button("Identify by shaking", "identify")
        self.identify_button.clicked.connect(lambda: self.controller.identify(self.identify_role_combo.currentText()))
        for w in (self.scan_button, QLabel("role:"), self.assign_role_combo, self.assign_button,
                  QLabel("   role:"), self.identify_role_combo, self.identify_button):
            row.addWidget(w)
        row.addStretch(1)
        lay.addLayout(row)
        self.sensors_message = QLabel("")
        self.sensors_message.setStyleSheet(f"color: {COLORS['vermillion']};")
        self.sensors_message.setFont(_font(16))
        lay.addWidget(self.sensors_message)
        self.status_table = _table(("Role", "Name", "State", "Battery %", "Rate Hz", "Loss %", "RSSI dBm",
                                    "Latency ms", "Reconnects", "Link"), "status_table")
        lay.addWidget(self.status_table, 1)
        return page

    def _build_session(self) -> QWidget:
        page = QWidget()
        page.setFont(_font(17))
        outer = QVBoxLayout(page)
        title = QLabel("New session")
        title.setFont(_font(22, bold=True))
        outer.addWidget(title)
        form = QFormLayout()
        outer.addLayout(form)
        self.subject_edit = QLineEdit()
        self.subject_edit.setObjectName("subject")
        self.subject_edit.setPlaceholderText("code, never a name")
        self.subject_edit.setFont(_font(18))
        form.addRow("Subject id", self.subject_edit)
        sides = QHBoxLayout()
        self.side_checks = {s: QCheckBox(s) for s in SIDES}
        for check in self.side_checks.values():
            check.setChecked(True)
            check.setFont(_font(16))
            sides.addWidget(check)
        sides.addStretch(1)
        form.addRow("Sides", sides)
        self.session_test_combo = _combo(TESTS, "session_test")
        form.addRow("Test", self.session_test_combo)
        self.notes_edit = QPlainTextEdit()
        self.notes_edit.setObjectName("notes")
        self.notes_edit.setMaximumHeight(120)
        form.addRow("Notes", self.notes_edit)
        self.output_edit = QLineEdit()
        self.output_edit.setObjectName("output")
        self.output_edit.setPlaceholderText("optional: default is a new file in the recordings folder")
        form.addRow("Output file", self.output_edit)
        self.start_session_button = _button("Connect sensors and start session", "start_session")
        self.start_session_button.setMinimumHeight(48)
        self.start_session_button.clicked.connect(self._on_start_session)
        outer.addWidget(self.start_session_button)
        self.session_message = QLabel("")
        self.session_message.setObjectName("session_message")
        self.session_message.setFont(_font(18, bold=True))
        self.session_message.setStyleSheet(f"color: {COLORS['vermillion']};")
        outer.addWidget(self.session_message)
        outer.addStretch(1)
        return page

    def _build_calibration(self) -> QWidget:
        self.guide_panel = GuidePanel()
        self.guide_panel.redo_button.clicked.connect(self.controller.redo_step)
        self.guide_panel.restart_button.clicked.connect(self.controller.restart_calibration)
        self.guide_panel.method_chosen.connect(self.controller.set_calibration_method)
        return self.guide_panel

    def _build_test(self) -> QWidget:
        page = QWidget()
        lay = QVBoxLayout(page)
        controls = QHBoxLayout()
        self.test_combo = _combo(TESTS, "test")
        self.side_combo = _combo(("right", "left", "both"), "side")
        self.trial_button = _button("Start trial", "trial")
        self.trial_button.clicked.connect(self._on_trial)
        self.zero_button = _button("Zero in neutral", "zero")
        self.zero_button.clicked.connect(lambda: self.controller.zero(None))
        self.marker_edit = QLineEdit()
        self.marker_edit.setObjectName("marker_text")
        self.marker_edit.setPlaceholderText("marker text")
        self.marker_button = _button("Marker", "marker")
        self.marker_button.clicked.connect(self._on_marker)
        self.reset_peaks_button = _button("Reset peaks", "reset_peaks")
        self.reset_peaks_button.clicked.connect(self._on_reset_peaks)
        self.end_button = _button("End session", "end_session")
        self.end_button.clicked.connect(self.controller.end_session)
        live_only = (self.test_combo, self.side_combo, self.trial_button, self.zero_button, self.marker_edit,
                     self.marker_button, self.end_button)
        for w in (*live_only[:-1], self.reset_peaks_button):
            controls.addWidget(w)
        controls.addStretch(1)
        controls.addWidget(self.end_button)
        if self.replay:  # a recording's trials and events are what they were
            for w in live_only:
                w.setVisible(False)
        lay.addLayout(controls)

        numbers = QHBoxLayout()
        self.sides = {s: SidePanel(s) for s in SIDES}
        for panel in self.sides.values():
            numbers.addWidget(panel, 1)
        pelvis = QFrame()
        pelvis.setFrameShape(QFrame.StyledPanel)
        pl = QVBoxLayout(pelvis)
        title = QLabel("Pelvis")
        title.setFont(_font(20, bold=True))
        self.tilt = BigNumber("tilt", size_px=56)
        self.tilt.setObjectName("tilt")
        self.pelvis_small = QLabel("obliquity –   rotation –")
        self.pelvis_small.setFont(_font(19))
        self.pelvis_change = QLabel("")
        self.pelvis_change.setObjectName("pelvis_change")
        self.pelvis_change.setFont(_font(17))
        self.pelvis_change.setWordWrap(True)
        self.compensation = QLabel("⚠ PELVIS COMPENSATING")
        self.compensation.setObjectName("compensation")
        self.compensation.setFont(_font(22, bold=True))
        self.compensation.setStyleSheet(f"background: {COLORS['vermillion']}; color: white; padding: 4px;")
        self.compensation.hide()
        for w in (title, self.tilt, self.pelvis_small, self.pelvis_change, self.compensation):
            pl.addWidget(w)
        numbers.addWidget(pelvis, 1)
        lay.addLayout(numbers)

        plots = QGridLayout()
        self.hip_plots = {}
        for j, side in enumerate(SIDES):
            plot = SeriesPlot(f"{side.capitalize()} hip (IR +)",
                              [("rotation", COLORS["blue"]), ("flexion", COLORS["orange"]),
                               ("adduction", COLORS["purple"])], n_bands=3, n_hlines=2)
            plot.setObjectName(f"plot_{side}")
            plots.addWidget(plot, 0, j)
            self.hip_plots[side] = plot
        self.pelvis_plot = SeriesPlot("Pelvis", [("tilt (ant +)", COLORS["blue"]), ("obliquity", COLORS["orange"]),
                                                 ("rotation", COLORS["green"])])
        self.pelvis_plot.setObjectName("plot_pelvis")
        plots.addWidget(self.pelvis_plot, 1, 0, 1, len(SIDES))
        plots.setRowStretch(0, 3)
        plots.setRowStretch(1, 2)
        lay.addLayout(plots, 1)
        return page

    def _build_results(self) -> QWidget:
        page = QWidget()
        lay = QVBoxLayout(page)
        self.headline = QLabel("No trial yet.")
        self.headline.setObjectName("headline")
        self.headline.setFont(_font(28, bold=True))
        self.headline.setWordWrap(True)
        lay.addWidget(self.headline)
        self.results_table = _table(("Test", "Side", "#", "Start s", "End s", "Flags"), "results_table")
        lay.addWidget(self.results_table, 1)
        return page

    # -- actions ---------------------------------------------------------------------------

    def _on_nav(self, row: int) -> None:
        if row >= 0:
            self.stack.setCurrentIndex(row)
            self._plots_stale = True

    def _on_assign(self) -> None:
        rows = self.scan_table.selectionModel().selectedRows() if self.scan_table.selectionModel() else []
        row = rows[0].row() if rows else self.scan_table.currentRow()
        if not (0 <= row < len(self.model.scan_rows)):
            self.sensors_message.setText("Pick a sensor in the scan table first.")
            return
        self.sensors_message.setText("")
        device_id = str(self.model.scan_rows[row].get("device_id", ""))
        self.controller.assign(self.assign_role_combo.currentText(), device_id)

    def _on_start_session(self) -> None:
        subject = self.subject_edit.text().strip()
        sides = tuple(s for s in SIDES if self.side_checks[s].isChecked())
        if not subject:
            self.session_message.setText("Enter a subject id (a code, never a name).")
            return
        if not sides:
            self.session_message.setText("Tick at least one side.")
            return
        self.session_message.setText("")
        info = SessionInfo(subject_id=subject, sides=sides, test=self.session_test_combo.currentText(),
                           notes=self.notes_edit.toPlainText())
        out = self.output_edit.text().strip()
        self.controller.start_session(info, Path(out) if out else None)
        self.test_combo.setCurrentText(info.test)
        self.side_combo.setCurrentText(sides[0] if len(sides) == 1 else "both")

    def _on_trial(self) -> None:
        if self.model.trial.get("active"):
            self.controller.stop_trial()
        else:
            self.controller.start_trial(self.test_combo.currentText(), self.side_combo.currentText())

    def _on_marker(self) -> None:
        text = self.marker_edit.text().strip() or "marker"
        self.controller.marker(text)
        self.marker_edit.clear()

    def _on_reset_peaks(self) -> None:
        self.model.reset_peaks()
        self._dirty.add("peaks")
        self.tick()

    def _on_play(self) -> None:
        if self.model.replay.get("playing"):
            self.controller.pause()
        else:
            self.controller.play()

    def open_export_dialog(self) -> ExportDialog:
        """Open (not modal-blocking) the export dialog; on OK it calls ``controller.export_csv``."""
        duration = float(self.model.replay.get("duration_s", 0.0) or 0.0)
        rec = self.model.recording.get("path") or ""
        default = str(Path(rec).with_name(Path(rec).stem + "_angles.csv")) if rec else "angles.csv"
        dialog = ExportDialog(self, duration, default)
        dialog.accepted.connect(lambda: self.controller.export_csv(*dialog.selection()))
        dialog.open()
        return dialog

    def open_recompute_dialog(self) -> RecomputeDialog:
        """Open the recompute dialog; on OK it calls ``controller.recompute``."""
        dialog = RecomputeDialog(self, float(self.model.replay.get("duration_s", 0.0) or 0.0))
        dialog.accepted.connect(lambda: self.controller.recompute(**dialog.arguments()))
        dialog.open()
        return dialog

    # -- drawing ----------------------------------------------------------------------------

    def _refresh(self) -> None:
        """Labels and tables from the model (the plots: :meth:`_draw_plots`)."""
        m, dirty = self.model, self._dirty
        cur = m.current()
        self._draw_strip(cur)
        self.banner.setVisible(m.heading_unreliable())
        if dirty & {"sensors"}:
            self._draw_sensor_table()
        if dirty & {"scan"}:
            _fill(self.scan_table, [[str(r.get("name", "")), str(r.get("address", "")), _num(r.get("rssi")),
                                     str(r.get("device_id", "")), str(r.get("role", "") or "")]
                                    for r in m.scan_rows])
        if dirty & {"guide", "calibration_method"}:
            self.guide_panel.set_state(m.guide, None if m.guide is not None else m.calibration_method, m.calibration_phases())
        if dirty & {"result"}:
            self._draw_results()
        if self.replay and dirty & {"replay", "event", "reset", "angles"}:
            self._draw_transport()
        self._draw_numbers(cur)
        self._dirty &= PLOT_KINDS
        self._drawn_version = m.version

    def _draw_strip(self, cur: dict) -> None:
        m = self.model
        rec = m.recording
        if rec.get("active"):
            name = Path(rec.get("path") or "").name
            text = f"● REC {fmt_time(float(rec.get('elapsed_s', 0.0)))}  {name}"
            style = f"color: {COLORS['vermillion']};"
        else:
            text, style = "○ not recording", "color: #666666;"
        if text != self.rec_label.text():
            self.rec_label.setText(text)
            self.rec_label.setStyleSheet(style)
        for role, chip in self.chips.items():
            chip.set_status(m.sensors.get(role))
        self.light.set_level(cur["level"], cur["quality"])
        if m.status != self.status_label.text():
            self.status_label.setText(m.status)
            is_error = bool(m.errors) and m.status == m.errors[-1]
            self.status_label.setStyleSheet(f"color: {COLORS['vermillion']};" if is_error else "")

    def _draw_sensor_table(self) -> None:
        rows, colors = [], {}
        for i, s in enumerate(self.model.sensors.values()):
            rows.append([s.role, s.name, ("✓ " if s.connected else "✗ ") + s.state, _num(s.battery_percent),
                         _num(s.rate_hz, "{:.1f}"), _num(s.loss_percent, "{:.1f}"), _num(s.rssi_dbm),
                         _num(s.latency_ms), str(s.reconnects), s.link])
            colors[(i, 9)] = LINK_COLORS.get(s.link, COLORS["grey"])
        _fill(self.status_table, rows, colors)

    def _draw_results(self) -> None:
        results = self.model.results
        keys: list[str] = []
        for r in results:
            keys += [k for k in r.values_deg if k not in keys]
        columns = ["Test", "Side", "#", "Start s", "End s", *[_pretty(k) + " °" for k in keys], "Flags"]
        self.results_table.setColumnCount(len(columns))
        self.results_table.setHorizontalHeaderLabels(columns)
        _fill(self.results_table, [[r.test, r.side, str(r.index), f"{r.start_s:.1f}", f"{r.end_s:.1f}",
                                    *[_num(r.values_deg.get(k, math.nan), "{:.1f}") for k in keys],
                                    ", ".join(r.flags)] for r in results])
        self.headline.setText(headline(results[-1]) if results else "No trial yet.")

    def _draw_transport(self) -> None:
        r = self.model.replay
        duration, position = float(r.get("duration_s", 0.0) or 0.0), float(r.get("position_s", 0.0) or 0.0)
        self.timeline.set_state(duration, position, [(e.time_s, e.kind) for e in self.model.events])
        self.time_label.setText(f"{fmt_time(position)} / {fmt_time(duration)}")
        self.play_button.setText("❚❚ Pause" if r.get("playing") else "▶ Play")
        speed = r.get("speed")
        if speed in SPEEDS and SPEEDS.index(speed) != self.speed_combo.currentIndex():
            self.speed_combo.blockSignals(True)
            self.speed_combo.setCurrentIndex(SPEEDS.index(speed))
            self.speed_combo.blockSignals(False)

    def _band_test(self) -> str | None:
        return None if self.model.trial.get("active") else self.test_combo.currentText()

    def _draw_numbers(self, cur: dict) -> None:
        m = self.model
        active = bool(m.trial.get("active"))
        self.trial_button.setText("■ Stop trial" if active else "● Start trial")
        self.test_combo.setEnabled(not active)
        self.side_combo.setEnabled(not active)
        test = self._band_test()
        for side, panel in self.sides.items():
            shown = side in m.sides or not m.sides
            panel.setVisible(shown)
            self.hip_plots[side].setVisible(shown)
            hip = cur["hip"].get(side)
            if hip is None:
                panel.rotation.set_value("–")
                panel.small.setText("flexion –   adduction –")
            else:
                panel.rotation.set_value(rotation_text(float(hip[2])),
                                         COLORS["blue"] if hip[2] >= 0 else COLORS["vermillion"])
                panel.small.setText(f"flexion {fmt_deg(float(hip[0]))}  adduction {fmt_deg(float(hip[1]))}")
            peaks = m.peaks.get(side, {})
            ir, er = peaks.get("ir", (math.nan, 0.0))[0], peaks.get("er", (math.nan, 0.0))[0]
            panel.peak.setText(f"max IR {fmt_deg(ir)} / max ER {fmt_deg(er)}")
            panel.band.setText(self._band_text(ir, er, test))
        pel = cur.get("pelvis")
        if pel is None:
            self.tilt.set_value("–")
            self.pelvis_small.setText("obliquity –   rotation –")
        else:
            self.tilt.set_value(tilt_text(float(pel[0])))
            self.pelvis_small.setText(f"obliquity {fmt_deg(float(pel[1]), signed=True)}   "
                                      f"rotation {fmt_deg(float(pel[2]), signed=True)}")
        change = cur.get("pelvis_change")
        if active and change is not None:
            self.pelvis_change.setText(
                f"since trial start: tilt {fmt_deg(float(change[0]), signed=True)}, "
                f"obliquity {fmt_deg(float(change[1]), signed=True)}, "
                f"rotation {fmt_deg(float(change[2]), signed=True)}; "
                f"largest change {fmt_deg(float(max(m.pelvis_change_max_deg)))}")
        else:
            self.pelvis_change.setText("pelvis change: during a trial" if not active else "")
        self.compensation.setVisible(m.compensation_flagged())

    def _band_text(self, ir: float, er: float, test: str | None) -> str:
        parts = []
        for name, value in (("IR", ir), ("ER", er)):
            band = self.model.band(name.lower(), test)
            if band is None:
                continue
            lo, hi = band
            target = f"{lo:.0f}–{hi:.0f}°"
            if not math.isfinite(value):
                parts.append(f"{name} target {target}")
            elif value < lo:
                parts.append(f"{name} ↓ below {target}")
            elif value > hi:
                parts.append(f"{name} ↑ above {target}")
            else:
                parts.append(f"{name} ✓ in {target}")
        return "   ".join(parts) if parts else "no target band for this test"

    def _display_now(self) -> float:
        """The plots' right edge: live, the latest data's time advanced by the wall clock since
        it arrived (the angles come in bursts of BLE packets; between bursts the plots scroll at
        the frame rate), at most SCROLL_AHEAD_S beyond the data and never backwards; replay,
        the playhead."""
        if not self.scroll or not self._arrivals:
            return self.model.now_s
        w_last, d_last = self._arrivals[-1]
        cap = self.model.now_s + SCROLL_AHEAD_S
        t = min(d_last + (time.monotonic() - w_last), cap)
        if self._shown_now <= cap:  # (a revision can move the data back: then follow it)
            t = max(t, self._shown_now)
        self._shown_now = t
        return t

    def _draw_plots(self) -> None:
        """The time series against relative time (now = 0), bands, peak lines, events."""
        m = self.model
        now = self._display_now()
        if not math.isfinite(now):
            now = float(m.replay.get("position_s", 0.0) or 0.0)
        test = self._band_test()
        events = [(e.time_s - now, e.kind, EVENT_LABELS.get(e.kind) or e.label or e.kind) for e in m.events
                  if e.kind in ("zero", "marker", "trial_start", "trial_end", "link")]
        bands = []
        ir, er, flex = m.band("ir", test), m.band("er", test), m.band("flexion", test)
        bands.append((ir[0], ir[1], COLORS["green"]) if ir else None)
        bands.append((-er[1], -er[0], COLORS["sky"]) if er else None)
        bands.append((flex[0], flex[1], COLORS["orange"]) if flex else None)
        for side, plot in self.hip_plots.items():
            t, v = _thinned(*m.hip[side].data())
            x = t - now
            plot.set_data(x, (v[:, 2], v[:, 0], v[:, 1]))
            plot.set_bands(bands)
            peaks = m.peaks.get(side, {})
            plot.set_hlines([peaks["ir"][0] if "ir" in peaks else None,
                             -peaks["er"][0] if "er" in peaks else None])
            plot.set_events(events)
        t, v = _thinned(*m.pelvis.data())
        self.pelvis_plot.set_data(t - now, (v[:, 0], v[:, 1], v[:, 2]))
        self.pelvis_plot.set_events(events)
        self.frames_drawn += 1


def _thinned(t, v):
    step = -(-len(t) // MAX_POINTS)
    if step <= 1:
        return t, v
    return t[::-step][::-1], v[::-step][::-1]
