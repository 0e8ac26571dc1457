"""Smooth scripted trajectories for the virtual subject (no hipimu imports).

A scenario is written as a :class:`Script`: a time cursor plus a set of named
scalar :class:`Channel` s (joint angles in degrees, positions in metres, anchor
weights). Every change of a channel is a smooth transition from its current
value to a target over a given interval, shaped by :func:`smoothstep`, a
7th-order polynomial with zero velocity, acceleration and jerk at both ends
(C3, one order smoother than a minimum-jerk quintic, so that accelerations are
C1 and the spline fits in ``_body`` reproduce them closely). Between
transitions a channel holds its value; transitions of one channel must not
overlap in time (checked).

:class:`Sway` adds tiny, smooth postural sway (a few low-frequency sinusoids
per channel, amplitude < 0.5 deg / a few mm, rate < 0.5 deg/s).
:class:`Wander` is the larger, faster wander of the segments that should stay
still during a calibration movement (``realism="real"``), ramped in and out
with the movement. A script may also carry additive *signals* (any smooth
function of time added to a channel, e.g. a gait pattern), *impacts* (foot
landings, for the soft-tissue model) and its *standing window*.

Only the standard library and numpy are used here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["smoothstep", "envelope", "Channel", "Script", "Sway", "Wander"]


def smoothstep(u: np.ndarray) -> np.ndarray:
    """Septic smooth step: 0 for u <= 0, 1 for u >= 1, C3 everywhere.

    ``35 u^4 - 84 u^5 + 70 u^6 - 20 u^7``; velocity, acceleration and jerk are
    zero at both ends; peak velocity 35/16 = 2.19 (per unit of u).
    """
    u = np.clip(np.asarray(u, dtype=np.float64), 0.0, 1.0)
    return u**4 * (35.0 + u * (-84.0 + u * (70.0 - 20.0 * u)))


def envelope(t_s: np.ndarray, a_s: float, b_s: float, ramp_s: float) -> np.ndarray:
    """1 inside [a + ramp, b - ramp], 0 outside [a, b], smooth C3 ramps between."""
    t = np.asarray(t_s, dtype=np.float64)
    ramp = min(ramp_s, 0.5 * (b_s - a_s))
    return smoothstep((t - a_s) / ramp) - smoothstep((t - (b_s - ramp)) / ramp)


@dataclass
class Channel:
    """One scalar trajectory: ``base`` plus a sum of smooth steps.

    Each step ``(t0_s, t1_s, delta)`` adds ``delta * smoothstep((t - t0) / (t1 - t0))``.
    Units are those of the channel (deg, m, or a dimensionless weight).
    """

    name: str
    base: float = 0.0
    steps: list[tuple[float, float, float]] = field(default_factory=list)
    _last_end_s: float = -math.inf

    @property
    def final(self) -> float:
        """Value after every step so far has completed."""
        return self.base + sum(d for _, _, d in self.steps)

    def step(self, t0_s: float, duration_s: float, delta: float) -> None:
        """Add ``delta`` over ``[t0_s, t0_s + duration_s]`` (smoothly)."""
        if not duration_s > 0:
            raise ValueError(f"channel {self.name}: transition duration must be > 0, got {duration_s}")
        if t0_s < self._last_end_s - 1e-9:
            raise ValueError(
                f"channel {self.name}: transition at {t0_s:.3f} s overlaps the previous one "
                f"(ends {self._last_end_s:.3f} s)"
            )
        self._last_end_s = t0_s + duration_s
        if delta != 0.0:
            self.steps.append((float(t0_s), float(t0_s + duration_s), float(delta)))

    def to(self, t0_s: float, duration_s: float, target: float) -> None:
        """Move to ``target`` over ``[t0_s, t0_s + duration_s]``."""
        self.step(t0_s, duration_s, float(target) - self.final)

    def evaluate(self, t_s: np.ndarray) -> np.ndarray:
        """Values at the sorted instants ``t_s`` (s)."""
        t = np.asarray(t_s, dtype=np.float64)
        out = np.full(t.shape, self.base)
        after = np.zeros(t.shape[0] + 1)
        for t0, t1, d in self.steps:
            i0, i1 = np.searchsorted(t, [t0, t1], side="left")
            if i1 > i0:
                out[i0:i1] += d * smoothstep((t[i0:i1] - t0) / (t1 - t0))
            after[i1] += d
        out += np.cumsum(after)[: t.shape[0]]
        return out


class Script:
    """A time cursor (``t``, s), named channels and the events written so far.

    ``move`` and ``shift`` change channels; ``at`` gives an absolute start time
    (default: the cursor) and ``advance`` whether the cursor moves to the end
    of the transition (default: only when ``at`` is not given).
    """

    def __init__(self, defaults: dict[str, float]) -> None:
        self.t = 0.0
        self.channels = {name: Channel(name, float(v)) for name, v in defaults.items()}
        self.events: list[tuple[float, str, str, dict]] = []
        #: what the script asked of the subject, per trial or rep (see _scenarios.task_truth)
        self.tasks: list[dict] = []
        #: additive signals (channel name, f(t_s) -> values), summed into :meth:`evaluate`
        self.signals: list[tuple[str, object]] = []
        #: impacts (time_s, side "left"/"right"/"both", scale): foot landings, squat bottoms
        self.impacts: list[tuple[float, str, float]] = []
        #: (start_s, end_s) of the standing pose that is the zero of the angles, or None
        self.standing_window: tuple[float, float] | None = None
        #: free-form facts about the script for the caller (e.g. straight walking stretches)
        self.info: dict = {}

    def __getitem__(self, name: str) -> Channel:
        return self.channels[name]

    def value(self, name: str) -> float:
        """Value of a channel once its scripted transitions have completed."""
        return self.channels[name].final

    def hold(self, duration_s: float) -> None:
        """Keep everything as it is for ``duration_s`` (advances the cursor)."""
        if duration_s < 0:
            raise ValueError("hold duration must be >= 0")
        self.t += float(duration_s)

    def move(self, duration_s: float, *, at: float | None = None, advance: bool | None = None,
             **targets: float) -> None:
        """Move each named channel to its target over ``duration_s`` seconds."""
        t0 = self.t if at is None else float(at)
        for name, target in targets.items():
            self.channels[name].to(t0, duration_s, target)
        if advance if advance is not None else at is None:
            self.t = max(self.t, t0 + duration_s)

    def shift(self, duration_s: float, *, at: float | None = None, advance: bool | None = None,
              **deltas: float) -> None:
        """Change each named channel by its delta over ``duration_s`` seconds."""
        t0 = self.t if at is None else float(at)
        for name, delta in deltas.items():
            self.channels[name].step(t0, duration_s, delta)
        if advance if advance is not None else at is None:
            self.t = max(self.t, t0 + duration_s)

    def event(self, kind: str, label: str = "", data: dict | None = None, *, at: float | None = None) -> None:
        """Record an event ``(time_s, kind, label, data)`` at ``at`` or the cursor."""
        self.events.append((float(self.t if at is None else at), kind, label, dict(data or {})))

    def add_signal(self, name: str, fn) -> None:
        """Add ``fn(t_s)`` (a smooth function of time, channel units) to channel ``name``."""
        if name not in self.channels:
            raise KeyError(name)
        self.signals.append((name, fn))

    def impact(self, side: str, *, at: float | None = None, scale: float = 1.0) -> None:
        """Record an impact on ``side`` ("left", "right", "both") at ``at`` or the cursor."""
        self.impacts.append((float(self.t if at is None else at), side, float(scale)))

    def note(self, **values) -> None:
        """Record what the subject was scripted to do in a trial or rep (its known values)."""
        self.tasks.append(dict(values))

    def sorted_events(self) -> list[tuple[float, str, str, dict]]:
        """Events sorted by time (stable: ties keep the order they were written in)."""
        return sorted(self.events, key=lambda e: e[0])

    def evaluate(self, t_s: np.ndarray) -> dict[str, np.ndarray]:
        """Every channel at the sorted instants ``t_s`` (additive signals included)."""
        out = {name: ch.evaluate(t_s) for name, ch in self.channels.items()}
        for name, fn in self.signals:
            out[name] = out[name] + fn(np.asarray(t_s, dtype=np.float64))
        return out


@dataclass
class Sway:
    """Smooth postural sway: per channel, a sum of 3 sinusoids.

    ``amplitude`` bounds the summed amplitude and ``max_rate`` the summed
    peak rate (channel units and channel units per second); frequencies are
    drawn in [0.04, 0.35] Hz and phases uniformly.
    """

    freqs_hz: dict[str, np.ndarray]
    amps: dict[str, np.ndarray]
    phases: dict[str, np.ndarray]

    @classmethod
    def draw(cls, rng: np.random.Generator, spec: dict[str, tuple[float, float]]) -> "Sway":
        """``spec``: channel -> (amplitude, max_rate)."""
        freqs, amps, phases = {}, {}, {}
        for name, (amplitude, max_rate) in spec.items():
            f = rng.uniform(0.04, 0.35, 3)
            a = rng.uniform(0.3, 1.0, 3)
            a *= amplitude / a.sum()
            rate = float(np.sum(2 * np.pi * f * a))
            if rate > max_rate:
                a *= max_rate / rate
            freqs[name], amps[name], phases[name] = f, a, rng.uniform(0, 2 * np.pi, 3)
        return cls(freqs, amps, phases)

    def evaluate(self, name: str, t_s: np.ndarray) -> np.ndarray:
        """Sway of channel ``name`` at ``t_s`` (zero for channels without sway)."""
        t = np.asarray(t_s, dtype=np.float64)
        if name not in self.freqs_hz:
            return np.zeros(t.shape)
        f, a, p = self.freqs_hz[name], self.amps[name], self.phases[name]
        # Sine minus its value at t = 0 would make sway start at 0; not needed.
        return np.sum(a[None, :] * np.sin(2 * np.pi * f[None, :] * t[:, None] + p[None, :]), axis=1)


@dataclass
class Wander:
    """A smooth random low-frequency signal, ramped in and out over a window.

    Sum of 3 sinusoids (frequencies in ``freq_range_hz``, random phases) whose
    amplitudes sum to ``bound * U(0.7, 1)``, times :func:`envelope` over
    ``[a_s, b_s]`` (``ramp_s`` ramps): never beyond ``bound``, zero outside the
    window.
    """

    freqs_hz: np.ndarray
    amps: np.ndarray
    phases: np.ndarray
    a_s: float
    b_s: float
    ramp_s: float

    @classmethod
    def draw(cls, rng: np.random.Generator, bound: float, a_s: float, b_s: float, *, ramp_s: float = 0.5,
             freq_range_hz: tuple[float, float] = (0.2, 1.0)) -> "Wander":
        f = rng.uniform(*freq_range_hz, 3)
        a = rng.uniform(0.3, 1.0, 3)
        a *= bound * rng.uniform(0.7, 1.0) / a.sum()
        return cls(f, a, rng.uniform(0.0, 2 * np.pi, 3), float(a_s), float(b_s), float(ramp_s))

    def __call__(self, t_s: np.ndarray) -> np.ndarray:
        t = np.asarray(t_s, dtype=np.float64)
        out = np.zeros(t.shape)
        i0, i1 = np.searchsorted(t, [self.a_s, self.b_s])
        if i1 > i0:
            tt = t[i0:i1]
            s = np.sum(self.amps[None, :] * np.sin(2 * np.pi * self.freqs_hz[None, :] * tt[:, None]
                                                   + self.phases[None, :]), axis=1)
            out[i0:i1] = s * envelope(tt, self.a_s, self.b_s, self.ramp_s)
        return out
