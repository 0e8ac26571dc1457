"""Small array helpers shared by the core's modules (private)."""

from __future__ import annotations

import numpy as np


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index runs where ``mask`` is true."""
    d = np.diff(np.concatenate([[0], np.asarray(mask).astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def moving_average(x: np.ndarray, n: int) -> np.ndarray:
    """Centred moving average over ``n`` samples (same length; ``x`` for n <= 1)."""
    if n <= 1:
        return x
    return np.convolve(x, np.ones(n) / n, mode="same")


def wrap_rad(a: np.ndarray | float) -> np.ndarray | float:
    """Angle(s) wrapped into [-pi, pi]."""
    return np.angle(np.exp(1j * np.asarray(a, dtype=np.float64)))
