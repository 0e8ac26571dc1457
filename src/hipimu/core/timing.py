"""Sample timing: effective rates and gaps of one sensor's time stamps.

Pure functions on ``time_s`` arrays (seconds, strictly increasing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TimingStats", "timing_stats"]


@dataclass(frozen=True)
class TimingStats:
    """Timing of one sensor's samples.

    ``rate_hz`` is the effective rate over the whole span (samples - 1 over
    duration); ``period_s`` the median sample interval; a gap is an interval
    longer than ``gap_factor`` median intervals, and ``missing`` estimates the
    samples it lost.
    """

    n: int
    start_s: float
    end_s: float
    duration_s: float
    rate_hz: float
    period_s: float
    gaps: int
    missing: int
    gap_s: float
    longest_gap_s: float

    @property
    def loss_fraction(self) -> float:
        return self.missing / (self.n + self.missing) if self.n + self.missing else 0.0


def timing_stats(time_s: np.ndarray, *, gap_factor: float = 1.5) -> TimingStats:
    t = np.asarray(time_s, dtype=np.float64)
    n = int(t.size)
    if n == 0:
        return TimingStats(0, np.nan, np.nan, 0.0, np.nan, np.nan, 0, 0, 0.0, 0.0)
    if n == 1:
        return TimingStats(1, float(t[0]), float(t[0]), 0.0, np.nan, np.nan, 0, 0, 0.0, 0.0)
    dt = np.diff(t)
    period = float(np.median(dt))
    is_gap = dt > gap_factor * period
    gap_dt = dt[is_gap]
    missing = int(np.sum(np.rint(gap_dt / period) - 1)) if gap_dt.size else 0
    duration = float(t[-1] - t[0])
    return TimingStats(
        n=n,
        start_s=float(t[0]),
        end_s=float(t[-1]),
        duration_s=duration,
        rate_hz=(n - 1) / duration if duration > 0 else np.nan,
        period_s=period,
        gaps=int(is_gap.sum()),
        missing=missing,
        gap_s=float(np.sum(gap_dt - period)) if gap_dt.size else 0.0,
        longest_gap_s=float(gap_dt.max()) if gap_dt.size else 0.0,
    )
