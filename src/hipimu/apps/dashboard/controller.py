"""What the window may ask for: the controller interface (no Qt).

The window calls these methods from the GUI thread; they return at once (the
work happens in the engine's thread) and every outcome comes back as
:class:`~hipimu.apps.dashboard.model.Update` objects on :attr:`Controller.updates`,
which the window drains on its frame timer. Live sessions
(:class:`~hipimu.apps.dashboard.engine.LiveEngine`) and replays
(:class:`~hipimu.apps.dashboard.replay.ReplayEngine`) implement the methods
that make sense for them and say so in :attr:`Controller.mode`.
"""

from __future__ import annotations

import queue
from pathlib import Path

from hipimu.apps.dashboard.model import Update
from hipimu.core.model import SessionInfo

__all__ = ["Controller"]


class Controller:
    """Base: every action is a no-op that reports it is not available."""

    mode = "live"  #: "live" or "replay"

    def __init__(self) -> None:
        self.updates: queue.Queue[Update] = queue.Queue()

    def post(self, kind: str, payload: object = None) -> None:
        self.updates.put(Update(kind, payload))

    def _unavailable(self, what: str) -> None:
        self.post("status", f"{what} is not available in {self.mode} mode")

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        """Start the engine's thread (called once by the app)."""

    def close(self) -> None:
        """Stop everything; a recording in progress is finished and closed. Blocks until done."""

    # -- live: sensors, session, calibration, tests ---------------------------------
    def scan(self) -> None:
        """Look for sensors; answers with a ``scan`` update (rows: name, address, rssi, device_id, role)."""
        self._unavailable("scanning")

    def assign(self, role: str, device_id: str) -> None:
        """Remember ``device_id`` for ``role`` (the user's sensors.json); answers with ``scan``."""
        self._unavailable("assigning")

    def identify(self, role: str) -> None:
        """Identify by shaking: the sensor shaken in the next seconds gets ``role``."""
        self._unavailable("identify by shaking")

    def start_session(self, info: SessionInfo, path: Path | None = None) -> None:
        """Connect the assigned sensors, start streaming and recording to ``path`` (default: a new
        file in the recordings folder), then run the guided calibration."""
        self._unavailable("a new session")

    def set_calibration_method(self, method: str) -> None:
        """Guide ``method`` (``routine``, ``seated``, ``walk``): before the session, or while
        no step of the guide is done; answers with ``calibration_method`` (and ``guide``)."""
        self._unavailable("choosing the calibration method")

    def restart_calibration(self) -> None:
        """Start the guided calibration again from its first step."""
        self._unavailable("calibration")

    def redo_step(self) -> None:
        """Repeat the active (or the failed) calibration step."""
        self._unavailable("calibration")

    def start_trial(self, test: str, side: str) -> None:
        """Begin a trial of ``test`` (seated_rotation, prone_rotation, squat, free); ``side``: left,
        right or both. Records ``trial_start``; the peak hold starts afresh."""
        self._unavailable("trials")

    def stop_trial(self) -> None:
        """End the running trial; records ``trial_end``, answers with a ``result`` update."""
        self._unavailable("trials")

    def zero(self, side: str | None = None) -> None:
        """Zero in neutral: the subject holds the neutral test posture for the next second."""
        self._unavailable("zero")

    def marker(self, text: str) -> None:
        """Record a marker event now."""
        self._unavailable("markers")

    def end_session(self) -> None:
        """Stop streaming; finish the recording (clock re-fit, results)."""
        self._unavailable("ending a session")

    # -- replay -------------------------------------------------------------------------
    def play(self) -> None:
        self._unavailable("play")

    def pause(self) -> None:
        self._unavailable("pause")

    def set_speed(self, speed: float) -> None:
        """0.25 to 4 (x real time)."""
        self._unavailable("speed")

    def seek(self, time_s: float) -> None:
        """Move the playhead (session seconds); the series are redrawn up to it."""
        self._unavailable("seeking")

    def recompute(self, *, static: tuple[float, float] | None = None,
                  functional: tuple[float, float] | None = None, method: str | None = None) -> None:
        """Compute the angles again with other calibration windows (both or neither) or filter."""
        self._unavailable("recomputing")

    def export_csv(self, path: Path, start_s: float | None = None, end_s: float | None = None) -> None:
        """Write the angle CSV of the session, or of [start_s, end_s]; answers with ``status``."""
        self._unavailable("export")
