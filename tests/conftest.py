import numpy as np
import pytest

from hipimu.core.model import DeviceInfo, Event, SampleBlock, Session, SessionInfo


@pytest.fixture
def small_session() -> Session:
    """3 sensors, 200 Hz-ish, 2 s, with per-sensor clock phase and rate error
    and one lost packet on the right thigh."""
    rng = np.random.default_rng(42)
    samples, devices = {}, {}
    for i, r in enumerate(["pelvis", "thigh_left", "thigh_right"]):
        n = 400
        t = 0.0013 * i + np.arange(n) / (200.0 * (1 + 40e-6 * (i - 1)))
        seq = np.arange(n)
        if r == "thigh_right":
            keep = (seq < 100) | (seq >= 108)
            t, seq = t[keep], seq[keep]
        m = len(t)
        samples[r] = SampleBlock(r, t, rng.normal(size=(m, 3)), rng.normal(size=(m, 3)), None, seq)
        devices[r] = DeviceInfo(f"test-{r}", r, 200.0, firmware="0.0")
    events = [Event(0.2, "phase_start", "stand"), Event(1.5, "phase_end", "stand"), Event(1.7, "marker", "look here")]
    return Session(SessionInfo(subject_id="T01", sides=("left", "right"), test="free"), devices, samples, events)


# Property tests: no per-example deadline (CI machines vary in speed; speed is
# measured in bench/, never asserted).
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("hipimu", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("hipimu")


def inter_sensor_alignment_s(session, true_time_s) -> float:
    """Largest difference between sensors of the error of ``time_s`` against the
    true instants (``true_time_s(role, device_time_s)``, session time base), on
    a common grid from 0.5 s after the last sensor starts to the first end:
    a latency common to all sensors cancels."""
    errors = {r: (b.time_s, b.time_s - true_time_s(r, b.device_time_s)) for r, b in session.samples.items()}
    lo = max(t[0] for t, _ in errors.values()) + 0.5
    hi = min(t[-1] for t, _ in errors.values())
    grid = np.linspace(lo, hi, 2000)
    on_grid = np.array([np.interp(grid, t, e) for t, e in errors.values()])
    return float(np.max(on_grid.max(axis=0) - on_grid.min(axis=0)))


def png_is_not_blank(path, min_width: int = 200, min_height: int = 200) -> bool:
    """A PNG that opens, is at least this big and shows something: lightness
    spread (std > 10) over many levels, on a 7-pixel grid. (Qt's QImage reads it
    without a display.)"""
    from PySide6.QtGui import QImage

    img = QImage(str(path))
    assert not img.isNull() and img.width() >= min_width and img.height() >= min_height, path
    grey = np.array([[img.pixelColor(x, y).lightness() for x in range(0, img.width(), 7)]
                     for y in range(0, img.height(), 7)])
    return grey.std() > 10 and len(np.unique(grey)) > 8
