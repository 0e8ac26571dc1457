"""The virtual subject: simulated sessions with known ground truth.

The physics (``_body``, ``_scenarios``) imports nothing from hipimu -- only
numpy and scipy -- so that it is an independent check of hipimu's estimation
code. This module wraps its plain arrays into hipimu's sample model.

* :func:`simulate_session` -> (:class:`~hipimu.core.model.Session`, truth table)
* :class:`SimulatedSource` -- the same, streamed through the async source interface.
* :func:`task_truth` -- what the script asked in each trial and rep (known peaks, compensation, butt wink).
"""

from __future__ import annotations

import asyncio

import numpy as np

from hipimu import __version__
from hipimu.core.conventions import ANGLE_COLUMNS
from hipimu.core.model import DeviceInfo, Event, SampleBlock, Session, SessionInfo
from hipimu.errors import SimulationError
from hipimu.sources.base import SessionSource
from hipimu.sources.simulate._scenarios import SCENARIOS, simulate, task_truth

__all__ = ["SCENARIOS", "simulate_session", "SimulatedSource", "task_truth"]

#: Longest task a simulation may have (memory grows with it: ~4 h is ~1 GB).
MAX_DURATION_S = 4 * 3600.0

_TEST_OF_SCENARIO = {"squat": "squat", "seated_rotation": "seated_rotation", "prone_rotation": "prone_rotation",
                     "seated_rotation_compensating": "seated_rotation", "sitting_rotation": "seated_rotation"}


def simulate_session(
    scenario: str,
    *,
    seed: int = 0,
    rate_hz: float = 200.0,
    mag: bool = False,
    duration_s: float | None = None,
    loss: float = 0.0,
    ideal: bool = False,
    realism: str = "clean",
    first_leg: str | None = None,
) -> tuple[Session, dict[str, np.ndarray]]:
    """Simulate ``scenario`` and return the session and its ground-truth table.

    The truth table maps each of :data:`~hipimu.core.conventions.ANGLE_COLUMNS`
    to a 100 Hz array (degrees; ``time_s`` in seconds). ``realism``: "clean"
    (default, the idealised subject) or "real" (wander during the calibration
    movements, a non-neutral standing posture, 20 deg strap tilt, thigh soft
    tissue; the truth is then relative to the standing pose, like hipimu's
    angles): see ``docs/simulator.md``. ``first_leg``: the leading leg of
    ``walk`` ("right", "left", None: from the seed).
    """
    if duration_s is not None and duration_s > MAX_DURATION_S:
        raise SimulationError(f"duration {duration_s:g} s is longer than the {MAX_DURATION_S / 3600:g} h a simulation may last")
    try:
        sim = simulate(scenario, seed=seed, rate_hz=rate_hz, mag=mag, duration_s=duration_s, loss=loss, ideal=ideal,
                       realism=realism, first_leg=first_leg)
    except ValueError as exc:
        raise SimulationError(str(exc)) from exc
    samples: dict[str, SampleBlock] = {}
    devices: dict[str, DeviceInfo] = {}
    sensor_params = {}
    for role_name, s in sim["sensors"].items():
        samples[role_name] = SampleBlock(role_name, s["time_s"], s["acc_m_s2"], s["gyr_rad_s"], s["mag_ut"], s["seq"])
        dev = dict(s["device"])
        devices[role_name] = DeviceInfo(
            device_id=dev.pop("device_id"),
            role=role_name,
            rate_hz=float(dev.pop("rate_hz")),
            firmware=f"simulated (hipimu {__version__})",
            imu=dev.pop("imu", ""),
            acc_range_m_s2=dev.pop("acc_range_m_s2", None),
            gyr_range_rad_s=dev.pop("gyr_range_rad_s", None),
            mag_range_ut=dev.pop("mag_range_ut", None),
            has_mag=bool(dev.pop("has_mag", False)),
            extra=dev,
        )
        sensor_params[role_name] = {"errors": s["errors"], "mounting_wxyz": [float(x) for x in s["mounting_wxyz"]]}
    events = [Event(float(t), kind, label, dict(data)) for t, kind, label, data in sim["events"]]
    info = SessionInfo(
        subject_id=f"SIM-{scenario}-{seed}",
        sides=("left", "right"),
        test=_TEST_OF_SCENARIO.get(scenario, "free"),
        notes=f"Simulated session (virtual subject, scenario {scenario!r}, seed {seed}). Not a real person.",
        source="simulate",
        simulated=True,
        simulation={**sim["parameters"], "sensors": sensor_params},
    )
    truth = {c: np.asarray(sim["truth"][c], dtype=np.float64) for c in ANGLE_COLUMNS}
    return Session(info, devices, samples, events), truth


class SimulatedSource(SessionSource):
    """A simulated session streamed like a live one (``speed`` 1.0 = real time)."""

    def __init__(self, scenario: str = "seated_rotation", *, speed: float | None = 1.0, block_s: float = 0.05, **sim_kwargs) -> None:
        super().__init__(speed=speed, block_s=block_s)
        self.scenario = scenario
        self.sim_kwargs = sim_kwargs
        self.truth: dict[str, np.ndarray] = {}

    async def start(self) -> None:
        session, self.truth = await asyncio.to_thread(simulate_session, self.scenario, **self.sim_kwargs)
        self.info = session.info
        self.devices = dict(session.devices)
        self.events = list(session.events)
        self._set_session(session.samples)
