"""From a session's raw samples to hip and pelvis angles: one function for the
command line, the benchmarks and the tests.

raw samples -> (per-device sensor calibration) -> orientation per sensor ->
anatomical calibration -> angles on a common grid (+ quality).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from hipimu.core.calibration import METHODS, AnatomicalCalibration, CalibrationError
from hipimu.core.calibration_select import anatomical_calibration
from hipimu.core.conventions import ROLES, hip_column, pelvis_column, HIP_QUANTITIES, PELVIS_QUANTITIES
from hipimu.core.kinematics import Angles, compute_angles
from hipimu.core.model import SampleBlock, Session, intervals
from hipimu.core.orientation import FILTERS, Orientation, estimate_orientation
from hipimu.core.segment_axes import HIPIMU_BOARD_MOUNT, Mount

__all__ = ["PipelineOptions", "PipelineResult", "process_session", "angle_table_deg", "stance_windows", "session_mounts"]

#: Shares of process_session's time for the progress callback, measured with
#: bench/throughput.py (1 h, 3 sensors, 6D VQF): fusing ~30 %, the anatomical
#: calibration ~1 %, the angles the rest.
_PROGRESS_FUSE = 0.3
_PROGRESS_CALIBRATION = 0.01


class _SensorCalibration(Protocol):  # hipimu.core.sensor_calibration.SensorCalibration
    def apply(self, block: SampleBlock) -> SampleBlock: ...


@dataclass
class PipelineOptions:
    """How to process a session.

    ``use_mag``: 9D fusion (needs magnetometers); ``method``: orientation filter;
    ``rate_hz``: output grid; ``calibration``: the anatomical calibration
    method (:data:`~hipimu.core.calibration.METHODS`; None: the best the
    recording holds, see :mod:`hipimu.core.calibration_select`);
    ``static``/``functional``: calibration windows in seconds (default: from
    events, else detected); ``windows``: role -> that sensor's functional
    window; ``mounts``: role -> declared sensor mounting (hipimu boards'
    is known: :func:`session_mounts`);
    ``use_zero_events``: re-align headings at ``zero`` events;
    ``use_stance``: re-align headings at still upright standing during free
    movement (see :func:`stance_windows`);
    ``filter_params``: passed to the filter (None: its defaults -- for VQF the
    defaults measured best with bench/accuracy.py, see the README).
    """

    use_mag: bool = False
    method: str = "vqf"
    rate_hz: float = 100.0
    calibration: str | None = None
    static: tuple[float, float] | None = None
    functional: tuple[float, float] | None = None
    windows: dict[str, tuple[float, float]] | None = None
    mounts: dict[str, Mount] | None = None
    use_zero_events: bool = True
    use_stance: bool = True
    filter_params: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.method not in FILTERS:
            raise ValueError(f"unknown filter {self.method!r} (known: {', '.join(FILTERS)})")
        if not self.rate_hz > 0:
            raise ValueError("rate_hz must be positive")
        if self.calibration is not None and self.calibration not in METHODS:
            raise ValueError(f"unknown calibration method {self.calibration!r} (known: {', '.join(METHODS)})")


@dataclass
class PipelineResult:
    orientations: dict[str, Orientation]
    calibration: AnatomicalCalibration
    angles: Angles
    sensor_calibration_applied: list[str] = field(default_factory=list)


def process_session(
    session: Session,
    options: PipelineOptions | None = None,
    sensor_calibrations: dict[str, _SensorCalibration] | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> PipelineResult:
    """Angles of a whole session. Raises :class:`CalibrationError` when the
    anatomical calibration fails a quality gate. ``progress(fraction, stage)``
    is called as the work goes on (fraction 0..1 of this function's work)."""
    opt = options or PipelineOptions()
    report = progress or (lambda fraction, stage: None)
    roles = [r for r in ROLES if r in session.samples and len(session.samples[r]) > 1]
    if "pelvis" not in roles:
        raise CalibrationError("the session has no pelvis sensor: hip and pelvis angles need one on the sacrum")
    if not any(ROLES[r].segment == "thigh" for r in roles):
        raise CalibrationError("the session has no thigh sensor: hip angles need at least one")
    applied = []
    orientations = {}
    for i, r in enumerate(roles):
        report(_PROGRESS_FUSE * i / len(roles), f"fusing {r}")
        blk = session.samples[r]
        dev = session.devices.get(r)
        if sensor_calibrations and dev is not None and dev.device_id in sensor_calibrations:
            blk = sensor_calibrations[dev.device_id].apply(blk)
            applied.append(dev.device_id)
        if opt.use_mag and blk.mag_ut is None:
            raise CalibrationError(f"9D fusion asked for, but the {r} sensor has no magnetometer")
        rate = dev.rate_hz if dev is not None else 1.0 / float(np.median(np.diff(blk.time_s)))
        orientations[r] = estimate_orientation(blk, rate, use_mag=opt.use_mag, method=opt.method, params=opt.filter_params)
    report(_PROGRESS_FUSE, "anatomical calibration")
    cal = anatomical_calibration(orientations, session.events, method=opt.calibration, static=opt.static, functional=opt.functional,
                                 role_windows=opt.windows, mounts=session_mounts(session, opt.mounts), use_mag=opt.use_mag)
    report(_PROGRESS_FUSE + _PROGRESS_CALIBRATION, "angles")
    angles = compute_angles(
        orientations,
        cal,
        rate_hz=opt.rate_hz,
        events=session.events,
        use_zero_events=opt.use_zero_events,
        use_mag=opt.use_mag,
        stance_windows=stance_windows(session, cal) if opt.use_stance else None,
    )
    report(1.0, "angles")
    return PipelineResult(orientations, cal, angles, applied)


def session_mounts(session: Session, declared: dict[str, Mount] | None = None) -> dict[str, Mount]:
    """Each sensor's mounting where known: declared (``--mount``) first, else
    a hipimu board's (its firmware says so: +z out of the skin)."""
    out = {r: HIPIMU_BOARD_MOUNT for r, d in session.devices.items() if "hipimu" in d.firmware.lower()}
    out.update(declared or {})
    return out


def stance_windows(session: Session, calibration: AnatomicalCalibration) -> list[tuple[float, float]]:
    """Where still upright standing may re-align headings: ``free`` trials, or,
    in a recording without trials whose test is free (or not given),
    everything after the calibration routine. Never inside a test trial."""
    trials = intervals(session.events, "trial")
    if trials:
        return [(a, b) for a, b, ev in trials if ev.label == "free"]
    if session.info.test not in (None, "", "free"):
        return []
    return [(calibration.windows.end_s, np.inf)]


def angle_table_deg(angles: Angles) -> dict[str, np.ndarray]:
    """The angle CSV's columns (degrees), thigh columns only for thighs present."""
    table: dict[str, np.ndarray] = {"time_s": angles.time_s}
    for side in ("left", "right"):
        if side in angles.hip:
            for i, q in enumerate(HIP_QUANTITIES):
                table[hip_column(q, side)] = np.degrees(angles.hip[side][:, i])
    for i, q in enumerate(PELVIS_QUANTITIES):
        table[pelvis_column(q)] = np.degrees(angles.pelvis[:, i])
    return table
