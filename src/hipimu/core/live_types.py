"""What the live processor (:mod:`hipimu.core.live`) hands out: plain data.

Kept apart from the processor so that the dashboard's model (which only
stores and shows these) imports no fusion or calibration code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["AngleBlock", "GuideStep", "GuideState"]


@dataclass
class AngleBlock:
    """Angles on the common grid, radians, time on axis 0.

    ``hip[side]`` (N, 3): flexion, adduction, internal rotation; ``pelvis``
    (N, 3): tilt, obliquity, rotation; ``quality`` (N,) 0..1
    (:func:`hipimu.core.kinematics.quality`). ``revises``: the block replaces
    what was handed out from ``time_s[0]`` on (a zero event re-aligns the
    heading from its own start, one hold later).
    """

    time_s: np.ndarray
    hip: dict[str, np.ndarray]
    pelvis: np.ndarray
    quality: np.ndarray
    revises: bool = False

    def __len__(self) -> int:
        return int(self.time_s.shape[0])


@dataclass
class GuideStep:
    """One step of the calibration routine as the guide shows it.

    ``phase``: one of the method's phases (:data:`~hipimu.core.conventions.CALIBRATION_PHASES_OF_METHOD`);
    ``status``: ``waiting``, ``active``, ``done`` or ``failed``; ``count`` /
    ``target``: movements detected / asked for (hinges, knee lifts; 0 for
    standing); ``message``: what was found or what to redo.
    """

    phase: str
    instruction: str
    status: str = "waiting"
    count: int = 0
    target: int = 0
    message: str = ""


@dataclass
class GuideState:
    """The guided calibration: its steps, the active one, a countdown while
    standing still (``countdown_s``, None when none runs) and the outcome
    (``result``: ``running``, ``passed`` or ``failed``, with ``message``);
    ``method``: the calibration method guided (``routine``, ``seated``, ``walk``)."""

    steps: list[GuideStep] = field(default_factory=list)
    active: int = 0
    countdown_s: float | None = None
    result: str = "running"
    message: str = ""
    method: str = "routine"

    @property
    def started(self) -> bool:
        """Some step is done (or the outcome is known): the method can no longer be switched."""
        return self.result != "running" or any(st.status in ("done", "failed") for st in self.steps)
