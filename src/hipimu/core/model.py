"""The sample model: what every source yields and every store holds.

* :class:`SampleBlock` -- consecutive raw samples of one sensor (time on axis 0).
* :class:`DeviceInfo`  -- what a sensor board says about itself.
* :class:`Event`       -- a timestamped point event (phase, trial, zero, marker).
* :class:`SessionInfo` -- who, what and how: pseudonymous subject id, sides, test.
* :class:`Session`     -- a whole session in memory: the above plus one
  concatenated :class:`SampleBlock` per sensor role.

Raw means raw: samples are never resampled or filtered on their way into a
:class:`Session`; ``time_s`` is each sample's own instant in the session time
base (seconds since the session's start), strictly increasing per sensor.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hipimu.core.conventions import ROLES, role

__all__ = ["SampleBlock", "DeviceInfo", "Event", "SessionInfo", "Session", "concat_blocks", "intervals"]


def _vec3(name: str, a: Any, n: int) -> np.ndarray:
    arr = np.ascontiguousarray(a, dtype=np.float64)
    if arr.shape != (n, 3):
        raise ValueError(f"{name} must have shape ({n}, 3), got {arr.shape}")
    return arr


@dataclass(frozen=True, eq=False)
class SampleBlock:
    """Consecutive raw samples of one sensor.

    Attributes
    ----------
    role:       sensor role (``pelvis``, ``thigh_left``, ``thigh_right``)
    time_s:     (N,) float64, sample instants in the session time base, s
    acc_m_s2:   (N, 3) float64, specific force in the sensor frame, m/s^2
    gyr_rad_s:  (N, 3) float64, angular rate in the sensor frame, rad/s
    mag_ut:     (N, 3) float64 or None, magnetic field in the sensor frame, uT
    seq:        (N,) int64 or None, the device's running sample counter
    device_time_s: (N,) float64 or None, the instants on the sensor board's own
                clock (BLE boards: unwrapped device time, s), from which
                ``time_s`` was mapped; None when the source has no device clock
    """

    role: str
    time_s: np.ndarray
    acc_m_s2: np.ndarray
    gyr_rad_s: np.ndarray
    mag_ut: np.ndarray | None = None
    seq: np.ndarray | None = None
    device_time_s: np.ndarray | None = None

    def __post_init__(self) -> None:
        role(self.role)  # raises UnknownRoleError
        t = np.ascontiguousarray(self.time_s, dtype=np.float64)
        if t.ndim != 1:
            raise ValueError(f"time_s must be 1-D, got shape {t.shape}")
        n = t.shape[0]
        object.__setattr__(self, "time_s", t)
        object.__setattr__(self, "acc_m_s2", _vec3("acc_m_s2", self.acc_m_s2, n))
        object.__setattr__(self, "gyr_rad_s", _vec3("gyr_rad_s", self.gyr_rad_s, n))
        if self.mag_ut is not None:
            object.__setattr__(self, "mag_ut", _vec3("mag_ut", self.mag_ut, n))
        for name in ("time_s", "acc_m_s2", "gyr_rad_s", "mag_ut"):
            arr = getattr(self, name)
            if arr is not None and not np.isfinite(arr).all():
                raise ValueError(f"{self.role}: {name} holds NaN or infinite values")
        if self.seq is not None:
            s = np.ascontiguousarray(self.seq, dtype=np.int64)
            if s.shape != (n,):
                raise ValueError(f"seq must have shape ({n},), got {s.shape}")
            object.__setattr__(self, "seq", s)
        if self.device_time_s is not None:
            d = np.ascontiguousarray(self.device_time_s, dtype=np.float64)
            if d.shape != (n,):
                raise ValueError(f"device_time_s must have shape ({n},), got {d.shape}")
            object.__setattr__(self, "device_time_s", d)

    def __len__(self) -> int:
        return int(self.time_s.shape[0])

    @property
    def has_mag(self) -> bool:
        return self.mag_ut is not None

    def slice(self, start: int, stop: int) -> "SampleBlock":
        """Samples ``start:stop`` as a new block (views, no copy)."""
        return SampleBlock(
            self.role,
            self.time_s[start:stop],
            self.acc_m_s2[start:stop],
            self.gyr_rad_s[start:stop],
            None if self.mag_ut is None else self.mag_ut[start:stop],
            None if self.seq is None else self.seq[start:stop],
            None if self.device_time_s is None else self.device_time_s[start:stop],
        )

    def between(self, t0_s: float, t1_s: float) -> "SampleBlock":
        """Samples with ``t0_s <= time_s < t1_s``."""
        i0, i1 = np.searchsorted(self.time_s, [t0_s, t1_s], side="left")
        return self.slice(int(i0), int(i1))

    def equals(self, other: "SampleBlock") -> bool:
        """Exact equality of role and every array (for tests and round trips)."""

        def same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
            if a is None or b is None:
                return a is None and b is None
            return a.shape == b.shape and bool(np.array_equal(a, b))

        return (
            self.role == other.role
            and same(self.time_s, other.time_s)
            and same(self.acc_m_s2, other.acc_m_s2)
            and same(self.gyr_rad_s, other.gyr_rad_s)
            and same(self.mag_ut, other.mag_ut)
            and same(self.seq, other.seq)
            and same(self.device_time_s, other.device_time_s)
        )

    @classmethod
    def empty(cls, role_name: str, *, mag: bool = False, seq: bool = False) -> "SampleBlock":
        z = np.zeros((0, 3))
        return cls(
            role_name,
            np.zeros(0),
            z,
            z,
            z if mag else None,
            np.zeros(0, dtype=np.int64) if seq else None,
        )


def concat_blocks(blocks: list[SampleBlock]) -> SampleBlock:
    """Concatenate blocks of one sensor in the given order.

    All blocks must share the role and agree on having ``mag_ut``, ``seq`` and
    ``device_time_s``.
    """
    if not blocks:
        raise ValueError("concat_blocks needs at least one block")
    first = blocks[0]
    for b in blocks[1:]:
        if b.role != first.role:
            raise ValueError(f"cannot concatenate {b.role!r} onto {first.role!r}")
        if (b.has_mag != first.has_mag or (b.seq is None) != (first.seq is None)
                or (b.device_time_s is None) != (first.device_time_s is None)):
            raise ValueError(f"blocks of {first.role!r} disagree on mag/seq/device_time_s channels")
    if len(blocks) == 1:
        return first
    return SampleBlock(
        first.role,
        np.concatenate([b.time_s for b in blocks]),
        np.concatenate([b.acc_m_s2 for b in blocks]),
        np.concatenate([b.gyr_rad_s for b in blocks]),
        None if first.mag_ut is None else np.concatenate([b.mag_ut for b in blocks]),
        None if first.seq is None else np.concatenate([b.seq for b in blocks]),
        None if first.device_time_s is None else np.concatenate([b.device_time_s for b in blocks]),
    )


def _known_and_extra(cls: type, d: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments of dataclass ``cls`` from ``d``; keys it does not
    know (written by a newer hipimu) are kept in ``extra``, never dropped."""
    known = {f.name for f in dataclasses.fields(cls)}
    extra = dict(d.get("extra") or {})
    extra.update({k: v for k, v in d.items() if k not in known})
    kwargs = {k: v for k, v in d.items() if k in known and k != "extra"}
    return {**kwargs, "extra": extra}


@dataclass
class DeviceInfo:
    """A sensor board as it describes itself (BLE config characteristic, import, simulator).

    ``extra`` keeps anything else the device reports, so nothing is lost when a
    newer firmware reports more.
    """

    device_id: str
    role: str
    rate_hz: float
    firmware: str = ""
    imu: str = ""
    acc_range_m_s2: float | None = None
    gyr_range_rad_s: float | None = None
    mag_range_ut: float | None = None
    has_mag: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        role(self.role)
        if not (self.rate_hz > 0 and np.isfinite(self.rate_hz)):
            raise ValueError(f"rate_hz must be positive, got {self.rate_hz!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DeviceInfo":
        return cls(**_known_and_extra(cls, d))


@dataclass(frozen=True)
class Event:
    """A timestamped point event, ``time_s`` in the session time base.

    ``kind`` is one of :data:`hipimu.core.conventions.EVENT_KINDS`; ``label`` a
    short word (the phase, the test, the marker text); ``data`` free JSON-able
    details (``side``, ``index``, ...).
    """

    time_s: float
    kind: str
    label: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from hipimu.core.conventions import EVENT_KINDS

        if self.kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {self.kind!r}")
        if not np.isfinite(self.time_s):
            raise ValueError("event time must be finite")
        json.dumps(self.data)  # must be JSON-able; raises TypeError otherwise


@dataclass
class SessionInfo:
    """Session metadata.

    ``subject_id`` is pseudonymous (a code, never a name). ``sides`` lists the
    instrumented legs. ``test`` is one of :data:`~hipimu.core.conventions.TESTS`
    or empty. ``simulated`` marks sessions made by the virtual subject, whose
    parameters (seed, scenario, mounting, noise) are in ``simulation``.
    """

    subject_id: str = ""
    sides: tuple[str, ...] = ()
    test: str = ""
    notes: str = ""
    operator: str = ""
    software_version: str = ""
    created_utc: str = ""
    source: str = ""  # "ble", "simulate", "import", ...
    simulated: bool = False
    simulation: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["sides"] = list(self.sides)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SessionInfo":
        kwargs = _known_and_extra(cls, d)
        kwargs["sides"] = tuple(kwargs.get("sides", ()))
        return cls(**kwargs)


@dataclass
class Session:
    """A whole session in memory.

    ``samples`` maps role -> all samples of that sensor; ``devices`` maps role
    -> :class:`DeviceInfo`; ``sensor_calibration`` maps device id -> the
    per-device calibration (``calibration/<device-id>.json`` content) that was
    in force; ``events`` are sorted by time; ``results`` holds derived results
    stored in the session (e.g. the anatomical calibration), keyed by name.
    """

    info: SessionInfo
    devices: dict[str, DeviceInfo]
    samples: dict[str, SampleBlock]
    events: list[Event] = field(default_factory=list)
    sensor_calibration: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    #: Recording format version of the file it was loaded from (None: made in memory).
    format_version: int | None = None
    #: What the loader had to leave out (e.g. sensors of roles a newer hipimu added).
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for r, blk in self.samples.items():
            if blk.role != r:
                raise ValueError(f"samples[{r!r}] holds a block of {blk.role!r}")
        self.events = sorted(self.events, key=lambda e: e.time_s)

    @property
    def roles(self) -> list[str]:
        """Roles with samples, in the canonical order of ``ROLES``."""
        return [r for r in ROLES if r in self.samples]

    def events_of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]

    def intervals(self, what: str) -> list[tuple[float, float, Event]]:
        """:func:`intervals` of this session's events."""
        return intervals(self.events, what)


def intervals(events: list[Event], what: str) -> list[tuple[float, float, Event]]:
    """Pair ``<what>_start`` with ``<what>_end`` events (``what``: phase,
    trial or rep) into ``(start_s, end_s, start_event)``, in time order.

    A start pairs with the next end of the same label and data; a start
    without an end (a recording that stopped early) is left out.
    """
    end_kind = f"{what}_end"
    out = []
    open_: list[Event] = []
    for e in events:
        if e.kind == f"{what}_start":
            open_.append(e)
        elif e.kind == end_kind:
            for i, s in enumerate(open_):
                if s.label == e.label and s.data == e.data:
                    out.append((s.time_s, e.time_s, s))
                    del open_[i]
                    break
    return sorted(out, key=lambda x: x[0])
