"""Reference ranges the results are compared with (degrees: they are read and
written by people). Sources and caveats: docs/norms.md.

``DEFAULT_BANDS_DEG[test][quantity] = (low, high)``: ``test`` is one of the
clinical tests (:data:`hipimu.core.conventions.TESTS`) or ``goals`` (the
practitioners' mobility goals, whatever the test); ``quantity`` is ``ir``,
``er`` (both as positive magnitudes), ``arc``, ``flexion``. Every value is a
default: a JSON file of the same shape overrides any of them
(:func:`hipimu.apps.config.load_bands`).
"""

from __future__ import annotations

__all__ = ["DEFAULT_BANDS_DEG", "MDC_DEG", "COMPENSATION_DEG", "band_status"]

DEFAULT_BANDS_DEG: dict[str, dict[str, tuple[float, float]]] = {
    # active range in sitting (hip and knee at 90 deg), healthy adults
    "seated_rotation": {"ir": (28.0, 38.0), "er": (35.0, 42.0)},
    # prone, knee at 90 deg
    "prone_rotation": {"ir": (30.0, 40.0), "er": (35.0, 45.0)},
    # IR used at the bottom of a bodyweight squat; squat depth (peak hip flexion)
    "squat": {"ir": (0.0, 15.0), "flexion": (90.0, 125.0)},
    # the practitioners' mobility goals (any rotation test)
    "free": {"ir": (25.0, 45.0), "er": (50.0, 90.0), "arc": (75.0, 100.0)},
    "goals": {"ir": (25.0, 45.0), "er": (50.0, 90.0), "arc": (75.0, 100.0)},
}

#: Minimal detectable change of hip rotation between sessions (deg): a change
#: smaller than this is within the measurement's own variability.
MDC_DEG = 5.0

#: A pelvis angle changing more than this during a rotation trial (deg) is
#: flagged as pelvic compensation.
COMPENSATION_DEG = 5.0


def band_status(value: float | None, band: tuple[float, float] | None) -> str:
    """``below``, ``within`` or ``above`` the band; ``""`` without a band or value."""
    if band is None or value is None or value != value:
        return ""
    lo, hi = band
    return "below" if value < lo else "above" if value > hi else "within"
