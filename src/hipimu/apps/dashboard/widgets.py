"""Reusable Qt pieces of the dashboard window: display only, no angle computation.

Every widget here draws values it is given (degrees, strings, states) and
reports what the user did through Qt signals; none of them reads the model or
calls the controller (the window wires them). Colours come from the Okabe-Ito
palette (distinguishable with the common colour-vision deficiencies) and every
colour-coded state is also spelt out in text or a symbol.

* :class:`BigNumber` -- a caption and a large value, readable across a room;
* :class:`QualityLight` -- the round green/amber/red angle-quality light;
* :class:`SensorChip` -- one sensor in the top strip (role, connection,
  battery, link quality);
* :class:`SeriesPlot` -- a pyqtgraph plot of the last 30 s against relative
  time with preallocated curves, shaded bands, horizontal lines and event lines;
* :class:`Timeline` -- the replay timeline with event ticks; click or drag seeks;
* :class:`GuidePanel` -- the guided calibration (steps, instruction, count,
  countdown, outcome, redo / restart);
* :class:`SidePanel` -- one hip's numbers in the live view;
* :class:`ExportDialog`, :class:`RecomputeDialog` -- the replay's dialogs
  (non-blocking: the window opens them and acts on ``accepted``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QLineF, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QFrame, QGraphicsItem, QGraphicsLineItem, QGraphicsRectItem,
                               QGraphicsSimpleTextItem, QGraphicsView, QHBoxLayout, QLabel, QLineEdit, QListWidget,
                               QListWidgetItem, QPushButton, QSizePolicy, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from hipimu.core._arrays import runs
from hipimu.apps.dashboard.model import CALIBRATION_METHOD_LABELS
from hipimu.core.live_types import GuideState

__all__ = ["COLORS", "LEVEL_COLORS", "LINK_COLORS", "EVENT_COLORS", "BigNumber", "QualityLight", "SensorChip",
           "SeriesPlot", "Timeline", "GuidePanel", "SidePanel", "ExportDialog", "RecomputeDialog", "fmt_deg",
           "fmt_time", "rotation_text", "tilt_text"]

#: Okabe-Ito colour-blind-safe palette.
COLORS = {
    "black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7", "grey": "#777777",
}
#: Quality light colours (``quality_level`` names).
LEVEL_COLORS = {"green": COLORS["green"], "amber": COLORS["orange"], "red": COLORS["vermillion"]}
#: Words shown with the light, so that the colour is never the only cue.
LEVEL_WORDS = {"green": "good", "amber": "check", "red": "BAD", "none": "not yet"}
#: Link quality colours (``link_quality`` names).
LINK_COLORS = {"good": COLORS["green"], "fair": COLORS["orange"], "poor": COLORS["vermillion"], "lost": COLORS["grey"]}
#: Event line / tick colours by event kind.
EVENT_COLORS = {
    "zero": COLORS["green"], "marker": COLORS["purple"], "trial_start": COLORS["black"], "trial_end": COLORS["black"],
    "phase_start": COLORS["sky"], "phase_end": COLORS["sky"], "rep_start": COLORS["grey"], "rep_end": COLORS["grey"],
    "link": COLORS["vermillion"],
}


def fmt_deg(v: float | None, digits: int = 1, signed: bool = False) -> str:
    """``12.3°`` (``+12.3°`` when ``signed``), or an en dash for a missing value."""
    if v is None or not math.isfinite(v):
        return "–"
    return f"{v:+.{digits}f}°" if signed else f"{v:.{digits}f}°"


def fmt_time(s: float) -> str:
    """``mm:ss`` of a non-negative number of seconds (``--:--`` when not finite)."""
    if not math.isfinite(s):
        return "--:--"
    s = max(0, int(s))
    return f"{s // 60:02d}:{s % 60:02d}"


def _font(px: int, bold: bool = False) -> QFont:
    f = QFont()
    f.setPixelSize(px)
    f.setBold(bold)
    return f


class BigNumber(QWidget):
    """A caption over a large value (e.g. ``hip rotation`` / ``IR 23.4°``).

    :meth:`set_value` changes the text only when it changed (no relayout per frame);
    :meth:`text` returns what is shown."""

    def __init__(self, caption: str, *, size_px: int = 56, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 2)
        lay.setSpacing(0)
        self.caption = QLabel(caption)
        self.caption.setFont(_font(max(14, size_px // 3)))
        self.value = QLabel("–")
        self.value.setFont(_font(size_px, bold=True))
        lay.addWidget(self.caption)
        lay.addWidget(self.value)

    def set_value(self, text: str, color: str | None = None) -> None:
        if text != self.value.text():
            self.value.setText(text)
        style = f"color: {color};" if color else ""
        if style != self.value.styleSheet():
            self.value.setStyleSheet(style)

    def text(self) -> str:
        return self.value.text()


class QualityLight(QWidget):
    """The big round angle-quality light with its word (``good`` / ``check`` / ``BAD``) and value."""

    def __init__(self, diameter: int = 44, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.diameter = diameter
        self.level = "red"
        self.quality = math.nan
        self.setMinimumSize(self.sizeHint())
        self.setSizePolicy(QSizePolicy.Fixed, QSizePolicy.Fixed)
        self.setToolTip("Angle quality: green good, amber check, red heading unreliable")

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt)
        return QSize(self.diameter + 120, self.diameter + 8)

    def set_level(self, level: str, quality: float) -> None:
        old = self.text()
        self.level, self.quality = level, quality
        if self.text() != old:  # repainted only when what it shows changes (two decimals)
            self.update()

    def text(self) -> str:
        q = f"{self.quality:.2f}" if math.isfinite(self.quality) else "–"
        return f"{LEVEL_WORDS.get(self.level, self.level)} {q}"

    def paintEvent(self, _event) -> None:  # noqa: N802 (Qt)
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        d = self.diameter
        p.setPen(QPen(QColor("black"), 2))
        p.setBrush(QBrush(QColor(LEVEL_COLORS.get(self.level, COLORS["grey"]))))
        p.drawEllipse(QRectF(4, 4, d, d))
        p.setPen(QColor("black"))
        p.setFont(_font(17, bold=True))
        p.drawText(QRectF(d + 12, 0, self.width() - d - 12, d + 8), Qt.AlignVCenter | Qt.AlignLeft,
                   f"quality\n{self.text()}")
        p.end()


class SensorChip(QLabel):
    """One sensor in the top strip: ``role ✓ 87% good`` on its link-quality colour."""

    def __init__(self, role: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.role = role
        self.setObjectName(f"chip_{role}")
        self.setFont(_font(14, bold=True))
        self.setMargin(4)
        self.setSizePolicy(QSizePolicy.Fixed, QSizePolicy.Preferred)
        self.set_status(None)

    def set_status(self, status) -> None:
        """``status``: a :class:`~hipimu.apps.dashboard.model.SensorStatus` or None (not assigned / seen)."""
        if status is None:
            text, color = f"{self.role} – off", COLORS["grey"]
        else:
            batt = f"{status.battery_percent:.0f}%" if math.isfinite(status.battery_percent) else "–%"
            mark = "✓" if status.connected else "✗"
            text, color = f"{self.role} {mark} {batt} {status.link}", LINK_COLORS.get(status.link, COLORS["grey"])
        if text != self.text():
            self.setText(text)
            self.setStyleSheet(f"background: {color}; color: white; border-radius: 4px;")


class _Traces(pg.GraphicsObject):
    """All of a plot's lines in one item: the curves and the event lines.

    One Python ``paint`` per frame for the whole plot (a pyqtgraph item per curve
    costs a Python paint, bounds and data bookkeeping each, every frame). Each
    line is a QPolygonF filled through numpy, one per finite run of samples
    (NaN breaks a line); event lines are vertical segments. The bounds are the
    window, not the data: the plot sets its ranges itself and the view box clips
    its children. Pens are 1 px (cosmetic), not antialiased."""

    BOUNDS = QRectF(-1.0e4, -1.0e4, 2.0e4, 2.0e4)

    def __init__(self, colors: Sequence[str], line_colors: Sequence[str]) -> None:
        super().__init__()
        self.pens = [_pen(c) for c in colors]
        self.line_pens = [_pen(c) for c in line_colors]
        self.polys: list[list[QPolygonF]] = [[] for _ in colors]
        self.lines: list[list[QLineF]] = [[] for _ in line_colors]
        self.data: list[tuple[np.ndarray, np.ndarray]] = [(np.empty(0), np.empty(0)) for _ in colors]

    def set_curves(self, x: np.ndarray, ys: Sequence[np.ndarray]) -> None:
        for i, y in enumerate(ys):
            self.data[i] = (x, y)
            self.polys[i] = _polylines(x, y)
        self.update()

    def set_lines(self, i: int, xs: Sequence[float], lo: float, hi: float) -> None:
        self.lines[i] = [QLineF(x, lo, x, hi) for x in xs]
        self.update()

    def boundingRect(self):  # noqa: N802 (Qt)
        return self.BOUNDS

    def paint(self, p, *_args) -> None:
        p.setRenderHint(QPainter.Antialiasing, False)
        for pen, lines in zip(self.line_pens, self.lines):
            if lines:
                p.setPen(pen)
                p.drawLines(lines)
        for pen, polys in zip(self.pens, self.polys):
            p.setPen(pen)
            for poly in polys:
                p.drawPolyline(poly)


def _pen(color: str | QColor, style: Qt.PenStyle = Qt.SolidLine) -> QPen:
    """A 1-px pen whatever the plot's scale."""
    pen = QPen(QColor(color), 1, style)
    pen.setCosmetic(True)
    return pen


def _polylines(x: np.ndarray, y: np.ndarray) -> list[QPolygonF]:
    """``(x, y)`` as polylines, one per run of finite values."""
    finite = np.isfinite(y)
    spans = [(0, len(y))] if finite.all() else runs(finite)
    return [pg.functions.arrayToQPolygonF(x[a:b], y[a:b]) for a, b in spans if b - a > 1]


class _HLine(QGraphicsLineItem):
    """A dashed horizontal line across the window at ``value()`` (data units), 1 px wide."""

    def __init__(self, span: tuple[float, float], color: QColor) -> None:
        super().__init__()
        self.setPen(_pen(color, Qt.DashLine))
        self._span = span
        self._value = math.nan
        self.hide()

    def set_value(self, v: float) -> None:
        if v != self._value:
            self._value = v
            self.setLine(self._span[0], v, self._span[0] + self._span[1], v)

    def value(self) -> float:
        return self._value


class _Label(QGraphicsRectItem):
    """Text on a translucent white box, its bottom-left corner at ``pos()`` (data units);
    its size in pixels whatever the plot's scale."""

    def __init__(self) -> None:
        super().__init__()
        self.setFlag(QGraphicsItem.ItemIgnoresTransformations)
        self.setPen(QPen(Qt.NoPen))
        self.setBrush(QBrush(QColor(255, 255, 255, 200)))
        self.text = QGraphicsSimpleTextItem(self)
        self.text.setFont(_font(12))
        self.hide()

    def set_text(self, text: str) -> None:
        if text != self.text.text():
            self.text.setText(text)
            r = self.text.boundingRect()
            self.text.setPos(3.0, -r.height())
            self.setRect(QRectF(0.0, -r.height(), r.width() + 6.0, r.height()))

    def toPlainText(self) -> str:  # noqa: N802 (as pyqtgraph's TextItem)
        return self.text.text()


class SeriesPlot(QWidget):
    """A time-series plot against relative time (fixed x range ``-window_s..0`` s).

    Curves, band regions, horizontal lines and event lines are created once and
    updated in place (pen width 1, no antialiasing, cached axes: fast enough at
    60 fps). ``curves``: (name, colour) pairs, drawn in that order."""

    def __init__(self, title: str, curves: Sequence[tuple[str, str]], *, window_s: float = 30.0,
                 n_bands: int = 0, n_hlines: int = 0, n_events: int = 24, y_label: str = "deg",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.plot = pg.PlotWidget(background="w")
        # the whole viewport is redrawn each frame anyway (the curves span it): skip the
        # per-item dirty-region bookkeeping, and let Qt skip painting what lies beneath
        self.plot.setViewportUpdateMode(QGraphicsView.FullViewportUpdate)
        self.plot.viewport().setAttribute(Qt.WA_OpaquePaintEvent)
        self.plot.setOptimizationFlag(QGraphicsView.DontSavePainterState, True)
        lay.addWidget(self.plot)
        item = self.plot.getPlotItem()
        names = " ".join(f"<span style='color:{color}'>&#9644; {name}</span>" for name, color in curves)
        item.setTitle(f"<b>{title}</b> &nbsp; {names}", color="k", size="13pt")
        item.setMouseEnabled(x=False, y=False)
        item.hideButtons()
        item.setMenuEnabled(False)
        item.setXRange(-window_s, 0.0, padding=0.0)
        # the y range is set here (in 10-unit steps, from the data and the bands), not by
        # pyqtgraph's auto-range, which recomputes every curve's bounds on every frame
        item.disableAutoRange()
        self._yrange: tuple[float, float] | None = None
        self._frames = 0
        self._band_limits: list[float] = []
        self._bands_shown: list | None = None
        self._events_shown: list | None = None
        self._events_yrange: tuple[float, float] | None = None
        item.setLabel("bottom", "s")
        item.setLabel("left", y_label)
        for name in ("left", "bottom"):
            axis = item.getAxis(name)
            axis.setPen(pg.mkPen("k"))
            axis.setTextPen(pg.mkPen("k"))
            axis.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self.window_s = window_s
        self.curve_names = [name for name, _ in curves]
        self.traces = _Traces([color for _, color in curves], list(EVENT_COLORS.values()))
        item.addItem(self.traces, ignoreBounds=True)
        # Bands, peak lines and event labels are plain Qt items (painted in C++; pyqtgraph's
        # LinearRegionItem, InfiniteLine and TextItem run Python on every frame): ~1/3 of a frame.
        vb = item.getViewBox()
        span = (-window_s - 1.0, 2.0 + window_s)  # x from, width: the whole window
        self.bands = []
        for _ in range(n_bands):
            rect = QGraphicsRectItem(QRectF(span[0], 0.0, span[1], 1.0))
            rect.setPen(QPen(Qt.NoPen))
            rect.setZValue(-10)
            rect.hide()
            vb.addItem(rect, ignoreBounds=True)  # the y range takes the bands in (_fit_y)
            self.bands.append(rect)
        self.hlines = []
        for _ in range(n_hlines):
            line = _HLine(span, QColor(COLORS["vermillion"]))
            vb.addItem(line, ignoreBounds=True)
            self.hlines.append(line)
        # events: vertical lines (drawn by the traces item, a colour per kind) and a pool of labels
        # moved as the plot scrolls
        self._event_kinds = list(EVENT_COLORS)
        self.event_labels = []
        for _ in range(n_events):
            label = _Label()
            vb.addItem(label, ignoreBounds=True)
            self.event_labels.append(label)
        self._event_x: list[float] = []

    def set_data(self, x: np.ndarray, ys: Sequence[np.ndarray]) -> None:
        """``x``: relative time (s, <= 0); ``ys``: one array per curve."""
        self.traces.set_curves(x, ys)
        self._frames += 1
        if self._yrange is None or self._frames % 15 == 0:  # a few times a second is enough
            self._fit_y(ys)

    def _fit_y(self, ys: Sequence[np.ndarray]) -> None:
        """Show all of the data and the bands, rounded out to 10 (deg): the range (and the
        cached axis) changes only when the data leaves it or shrinks by a whole step."""
        lims = list(self._band_limits)
        for y in ys:
            if len(y):
                lo, hi = float(np.nanmin(y)), float(np.nanmax(y))
                if math.isfinite(lo):
                    lims += [lo, hi]
        if not lims:
            return
        want = (math.floor(min(lims) / 10.0) * 10.0 - 5.0, math.ceil(max(lims) / 10.0) * 10.0 + 5.0)
        if want != self._yrange:
            self._yrange = want
            self.plot.getPlotItem().setYRange(*want, padding=0.0)

    def curve_data(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``i``-th curve's ``(x, y)`` as drawn (for tests)."""
        return self.traces.data[i]

    def y_range(self) -> tuple[float, float] | None:
        return self._yrange

    def set_bands(self, bands: Sequence[tuple[float, float, str] | None]) -> None:
        """Shade ``(lo, hi, colour)`` regions behind the curves (None: hide that one)."""
        bands = list(bands)
        if bands == self._bands_shown:
            return
        self._bands_shown = bands
        self._band_limits = [v for b in bands if b is not None for v in b[:2]]
        self._yrange = None  # fit again at the next data
        for region, band in zip(self.bands, list(bands) + [None] * len(self.bands)):
            if band is None:
                region.hide()
                continue
            lo, hi, color = band
            c = QColor(color)
            c.setAlpha(60)
            region.setBrush(QBrush(c))
            r = region.rect()
            region.setRect(QRectF(r.x(), lo, r.width(), hi - lo))
            region.show()

    def set_hlines(self, values: Sequence[float | None]) -> None:
        """Horizontal lines at ``values`` (peak hold); None or NaN hides one."""
        for line, v in zip(self.hlines, list(values) + [None] * len(self.hlines)):
            if v is None or not math.isfinite(v):
                line.hide()
            else:
                line.set_value(v)
                line.show()

    def set_events(self, events: Sequence[tuple[float, str, str]]) -> None:
        """Vertical lines: ``(relative time s, kind, label)``, those within the window only."""
        shown = [e for e in events if -self.window_s <= e[0] <= 0.0][-len(self.event_labels):]
        if shown == self._events_shown and self._yrange == self._events_yrange:
            return
        self._events_shown, self._events_yrange = shown, self._yrange
        lo, hi = self._yrange or (-1.0, 1.0)
        for i, kind in enumerate(self._event_kinds):
            self.traces.set_lines(i, [x for x, k, _ in shown if k == kind], lo, hi)
        y = lo + 0.06 * (hi - lo)
        for text, ev in zip(self.event_labels, shown + [None] * len(self.event_labels)):
            if ev is None:
                text.hide()
                continue
            x, _kind, label = ev
            text.set_text(label)
            text.setPos(x, y)
            text.show()
        self._event_x = [x for x, _, _ in shown]

    def visible_events(self) -> list[float]:
        """Positions (relative s) of the event lines shown (for tests)."""
        return list(self._event_x)


class Timeline(QWidget):
    """The replay timeline: the session's length, the playhead and event ticks
    (colours by kind). A click or a drag emits :attr:`seek_requested` (session seconds)."""

    seek_requested = Signal(float)

    MARGIN = 10

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("timeline")
        self.duration_s = 0.0
        self.position_s = 0.0
        self.ticks: list[tuple[float, str]] = []
        self.setMinimumHeight(40)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.setCursor(Qt.PointingHandCursor)
        self._dragging = False

    def set_state(self, duration_s: float, position_s: float, ticks: Sequence[tuple[float, str]]) -> None:
        """Length and playhead (s), and ``(time_s, kind)`` event ticks."""
        ticks = list(ticks)
        if (duration_s, position_s, ticks) != (self.duration_s, self.position_s, self.ticks):
            self.duration_s, self.position_s, self.ticks = float(duration_s), float(position_s), ticks
            self.update()

    def x_at(self, t: float) -> float:
        """Widget x of session time ``t``."""
        w = self.width() - 2 * self.MARGIN
        return self.MARGIN + (w * t / self.duration_s if self.duration_s > 0 else 0.0)

    def time_at(self, x: float) -> float:
        """Session time at widget x, clamped to the session."""
        w = max(1, self.width() - 2 * self.MARGIN)
        return min(max((x - self.MARGIN) / w, 0.0), 1.0) * self.duration_s

    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt)
        if event.button() == Qt.LeftButton and self.duration_s > 0:
            self._dragging = True
            self.seek_requested.emit(self.time_at(event.position().x()))

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 (Qt)
        if self._dragging:
            self.seek_requested.emit(self.time_at(event.position().x()))

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 (Qt)
        self._dragging = False

    def paintEvent(self, _event) -> None:  # noqa: N802 (Qt)
        p = QPainter(self)
        h, m = self.height(), self.MARGIN
        bar = QRectF(m, h / 2 - 5, self.width() - 2 * m, 10)
        p.fillRect(bar, QColor("#dddddd"))
        if self.duration_s > 0:
            done = QRectF(bar.left(), bar.top(), self.x_at(self.position_s) - m, bar.height())
            p.fillRect(done, QColor(COLORS["sky"]))
            for t, kind in self.ticks:
                x = self.x_at(t)
                p.setPen(QPen(QColor(EVENT_COLORS.get(kind, COLORS["grey"])), 2))
                p.drawLine(QPointF(x, 4), QPointF(x, h - 4))
            x = self.x_at(self.position_s)
            p.setPen(QPen(QColor("black"), 1))
            p.setBrush(QColor("black"))
            p.drawPolygon(QPolygonF([QPointF(x - 6, 0), QPointF(x + 6, 0), QPointF(x, 10)]))
            p.drawLine(QPointF(x, 0), QPointF(x, h))
        p.end()


#: Symbols and colours of the calibration step states.
STEP_LOOK = {"waiting": ("○", COLORS["grey"]), "active": ("▶", COLORS["blue"]),
             "done": ("✓", COLORS["green"]), "failed": ("✗", COLORS["vermillion"])}


class GuidePanel(QWidget):
    """The guided calibration: the method choice (:attr:`method_combo`: standing
    routine, seated, walk; enabled while no step is done), step list with status
    symbols and colours, the active step's instruction in large type, ``2 of 3``
    for movement steps, a big countdown, the outcome, and the buttons
    :attr:`redo_button` / :attr:`restart_button` (the window connects them and
    :attr:`method_chosen`, emitted with the method's name)."""

    method_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        left = QVBoxLayout()
        lay.addLayout(left)
        method_label = QLabel("Method")
        method_label.setFont(_font(16))
        left.addWidget(method_label)
        self.method_combo = QComboBox()
        self.method_combo.setObjectName("calibration_method")
        self.method_combo.setFont(_font(18))
        self.method_combo.setMinimumHeight(40)
        for method, label in CALIBRATION_METHOD_LABELS.items():
            self.method_combo.addItem(label, method)
        self.method_combo.activated.connect(lambda i: self.method_chosen.emit(self.method_combo.itemData(i)))
        left.addWidget(self.method_combo)
        self.steps = QListWidget()
        self.steps.setObjectName("guide_steps")
        self.steps.setFont(_font(20))
        self.steps.setMinimumWidth(400)
        self.steps.setMaximumWidth(460)
        left.addWidget(self.steps, 1)
        right = QVBoxLayout()
        lay.addLayout(right, 1)
        self.hint = QLabel("Start a session first (screen 2): the calibration guide appears here.")
        self.hint.setFont(_font(22))
        self.hint.setWordWrap(True)
        self.instruction = QLabel("")
        self.instruction.setObjectName("guide_instruction")
        self.instruction.setFont(_font(34, bold=True))
        self.instruction.setWordWrap(True)
        self.count = QLabel("")
        self.count.setObjectName("guide_count")
        self.count.setFont(_font(40, bold=True))
        self.countdown = QLabel("")
        self.countdown.setObjectName("guide_countdown")
        self.countdown.setFont(_font(110, bold=True))
        self.countdown.setAlignment(Qt.AlignCenter)
        self.outcome = QLabel("")
        self.outcome.setObjectName("guide_outcome")
        self.outcome.setFont(_font(22, bold=True))
        self.outcome.setWordWrap(True)
        for w in (self.hint, self.instruction, self.count, self.countdown, self.outcome):
            right.addWidget(w)
        right.addStretch(1)
        buttons = QHBoxLayout()
        self.redo_button = QPushButton("Redo step")
        self.restart_button = QPushButton("Restart calibration")
        for b in (self.redo_button, self.restart_button):
            b.setFont(_font(18))
            b.setMinimumHeight(44)
            buttons.addWidget(b)
        buttons.addStretch(1)
        right.addLayout(buttons)
        self.set_state(None)

    def set_state(self, guide: GuideState | None, method: str | None = None, phases: Sequence[str] = ()) -> None:
        """Show ``guide`` (None: no session yet: the hint, and the steps ``phases`` of
        the chosen ``method`` waiting); the method choice is enabled while no step is done."""
        method = guide.method if guide is not None and method is None else method or "routine"
        i = self.method_combo.findData(method)
        if i >= 0:
            self.method_combo.setCurrentIndex(i)
        self.method_combo.setEnabled(guide is None or not guide.started)
        self.hint.setVisible(guide is None)
        for w in (self.instruction, self.count, self.countdown, self.outcome, self.redo_button, self.restart_button):
            w.setVisible(guide is not None)
        self.steps.clear()
        if guide is None:
            for k, phase in enumerate(phases):
                item = QListWidgetItem(f"{STEP_LOOK['waiting'][0]} {k + 1}. {phase.replace('_', ' ')}")
                item.setForeground(QBrush(QColor(STEP_LOOK["waiting"][1])))
                self.steps.addItem(item)
            return
        for i, step in enumerate(guide.steps):
            symbol, color = STEP_LOOK.get(step.status, ("?", COLORS["grey"]))
            count = f"  {step.count}/{step.target}" if step.target else ""
            item = QListWidgetItem(f"{symbol} {i + 1}. {step.phase.replace('_', ' ')}{count}")
            item.setForeground(QBrush(QColor(color)))
            if i == guide.active:
                f = _font(20, bold=True)
                item.setFont(f)
            self.steps.addItem(item)
        step = guide.steps[guide.active] if 0 <= guide.active < len(guide.steps) else None
        self.instruction.setText(step.instruction if step else "")
        self.count.setText(f"{step.count} of {step.target}" if step and step.target else "")
        self.countdown.setText(f"{math.ceil(guide.countdown_s)}" if guide.countdown_s is not None else "")
        self.countdown.setVisible(guide.countdown_s is not None)
        lines = []
        if step and step.message:
            lines.append(step.message)
        failed = [s for s in guide.steps if s.status == "failed"]
        if guide.result == "passed":
            text, color = "✓ Calibration passed. " + guide.message, COLORS["green"]
        elif guide.result == "failed" or failed:
            redo = ", ".join(s.phase.replace("_", " ") for s in failed)
            text = "✗ Calibration failed. " + guide.message + (f" Redo: {redo}." if redo else "")
            color = COLORS["vermillion"]
        else:
            text, color = guide.message, "black"
        lines.append(text.strip())
        self.outcome.setText("\n".join(x for x in lines if x))
        self.outcome.setStyleSheet(f"color: {color};")


def rotation_text(v: float | None) -> str:
    """``IR 23.4°`` for internal (>= 0), ``ER 12.0°`` for external rotation."""
    if v is None or not math.isfinite(v):
        return "–"
    return f"IR {v:.1f}°" if v >= 0 else f"ER {-v:.1f}°"


def tilt_text(v: float | None) -> str:
    """``ant 5.0°`` for anterior (>= 0), ``post 3.0°`` for posterior pelvic tilt."""
    if v is None or not math.isfinite(v):
        return "–"
    return f"ant {v:.1f}°" if v >= 0 else f"post {-v:.1f}°"


def _button(text: str, name: str) -> QPushButton:
    b = QPushButton(text)
    b.setObjectName(name)
    b.setFont(_font(16))
    b.setMinimumHeight(36)
    return b


def _combo(items, name: str) -> QComboBox:
    c = QComboBox()
    c.setObjectName(name)
    c.setFont(_font(16))
    c.addItems(list(items))
    return c


def _table(columns, name: str) -> QTableWidget:
    t = QTableWidget(0, len(columns))
    t.setObjectName(name)
    t.setHorizontalHeaderLabels(list(columns))
    t.setEditTriggers(QTableWidget.NoEditTriggers)
    t.setSelectionBehavior(QTableWidget.SelectRows)
    t.setSelectionMode(QTableWidget.SingleSelection)
    t.setFont(_font(15))
    t.horizontalHeader().setStretchLastSection(True)
    return t


def _fill(table: QTableWidget, rows: list[list[str]], colors: dict[tuple[int, int], str] | None = None) -> None:
    table.setRowCount(len(rows))
    for i, row in enumerate(rows):
        for j, text in enumerate(row):
            item = QTableWidgetItem(text)
            if colors and (i, j) in colors:
                item.setBackground(QBrush(QColor(colors[(i, j)])))
                item.setForeground(QBrush(QColor("white")))
            table.setItem(i, j, item)
    table.resizeColumnsToContents()


def _num(v, fmt: str = "{:.0f}") -> str:
    try:
        return fmt.format(v) if math.isfinite(float(v)) else "–"
    except (TypeError, ValueError):
        return str(v) if v not in (None, "") else "–"


class SidePanel(QFrame):
    """One hip's numbers: rotation (large), flexion / adduction, peak hold, target band."""

    def __init__(self, side: str) -> None:
        super().__init__()
        self.setObjectName(f"side_{side}")
        self.setFrameShape(QFrame.StyledPanel)
        lay = QVBoxLayout(self)
        title = QLabel(f"{side.capitalize()} hip")
        title.setFont(_font(20, bold=True))
        self.rotation = BigNumber("rotation", size_px=64)
        self.rotation.setObjectName(f"rotation_{side}")
        self.small = QLabel("flexion –   adduction –")
        self.small.setFont(_font(19))
        self.peak = QLabel("max IR – / max ER –")
        self.peak.setObjectName(f"peak_{side}")
        self.peak.setFont(_font(21, bold=True))
        self.band = QLabel("")
        self.band.setObjectName(f"band_{side}")
        self.band.setFont(_font(17))
        for w in (title, self.rotation, self.small, self.peak, self.band):
            lay.addWidget(w)


class ExportDialog(QDialog):
    """Path (with Browse...) and the time range: the whole session (default) or a selection."""

    def __init__(self, parent: QWidget, duration_s: float, default_path: str) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export angle CSV")
        self.duration_s = duration_s
        form = QFormLayout(self)
        self.path_edit = QLineEdit(default_path)
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(browse)
        form.addRow("File", row)
        self.start_spin, self.end_spin = QDoubleSpinBox(), QDoubleSpinBox()
        for spin, value in ((self.start_spin, 0.0), (self.end_spin, duration_s)):
            spin.setRange(0.0, max(duration_s, 0.0))
            spin.setDecimals(2)
            spin.setSuffix(" s")
            spin.setValue(value)
        form.addRow("From", self.start_spin)
        form.addRow("To", self.end_spin)
        form.addRow(QLabel("The whole session unless you narrow the range."))
        self.buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export angle CSV", self.path_edit.text(), "CSV (*.csv)")
        if path:
            self.path_edit.setText(path)

    def selection(self) -> tuple[Path, float | None, float | None]:
        """(path, start_s, end_s); start and end are None for the whole session."""
        a, b = self.start_spin.value(), self.end_spin.value()
        if a <= 0.0 and b >= self.duration_s:
            return Path(self.path_edit.text()), None, None
        return Path(self.path_edit.text()), a, b


class RecomputeDialog(QDialog):
    """Other calibration windows (static a:b and functional c:d, both or neither) and/or another filter."""

    def __init__(self, parent: QWidget, duration_s: float) -> None:
        from hipimu.core.orientation import FILTERS  # a constant; no computation

        super().__init__(parent)
        self.setWindowTitle("Recompute angles")
        form = QFormLayout(self)
        self.windows_check = QCheckBox("Use these calibration windows")
        form.addRow(self.windows_check)
        self.spins = []
        for label in ("Static from", "Static to", "Functional from", "Functional to"):
            spin = QDoubleSpinBox()
            spin.setRange(0.0, max(duration_s, 0.0))
            spin.setDecimals(2)
            spin.setSuffix(" s")
            form.addRow(label, spin)
            self.spins.append(spin)
        self.filter_combo = QComboBox()
        self.filter_combo.addItems(["(unchanged)", *FILTERS])
        form.addRow("Orientation filter", self.filter_combo)
        self.message = QLabel("")
        self.message.setStyleSheet(f"color: {COLORS['vermillion']};")
        form.addRow(self.message)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self._check)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _check(self) -> None:
        a, b, c, d = (s.value() for s in self.spins)
        if self.windows_check.isChecked() and not (b > a and d > c):
            self.message.setText("Each window must end after it starts.")
            return
        self.accept()

    def arguments(self) -> dict:
        """Keyword arguments of :meth:`Controller.recompute`."""
        a, b, c, d = (s.value() for s in self.spins)
        method = self.filter_combo.currentText()
        return {"static": (a, b) if self.windows_check.isChecked() else None,
                "functional": (c, d) if self.windows_check.isChecked() else None,
                "method": None if method.startswith("(") else method}
