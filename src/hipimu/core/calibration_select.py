"""Which anatomical calibration a recording gets: the method named, or the
best one the recording holds, falling back method by method.

Order (best first): ``routine`` (stand, hinges, knee lifts), ``walk``
(stand, then straight walking; with the guided walk calibration's ``stand``
and ``walk`` phase events, the straight stretch is looked for inside the
``walk`` phase, and ``walk`` is tried first), ``seated`` (sit, seated hip lifts),
``static`` (standing still and the sensors' mounting). Each method has its
grade ceiling (routine A, walk B, seated C, static D), so a fallback always
lands lower; the reasons the better methods failed go into the notes, and
when none works the error names what each one lacked. A failure that says the sensors are swapped or upside
down stops the search: another method would only hide it.
"""

from __future__ import annotations

from hipimu.core.calibration import (
    METHODS,
    AnatomicalCalibration,
    CalibrationError,
    CalibrationWindows,
    calibrate,
    find_windows,
    phase_spans,
)
from hipimu.core.calibration_seated import SEATED_PHASES, calibrate_seated, calibrate_static, find_seated_windows, find_static_window
from hipimu.core.calibration_walk import calibrate_walk, find_walk_windows
from hipimu.core.conventions import ROLES
from hipimu.core.model import Event
from hipimu.core.orientation import Orientation
from hipimu.core.segment_axes import Mount

__all__ = ["anatomical_calibration", "FATAL_GATES"]

#: Failures that no other method can mend: the sensors are on the wrong
#: segments or upside down, and any angles would be silently wrong.
FATAL_GATES = frozenset({"swapped", "wrong_leg", "mounting_contradiction"})


def _windows(method: str, orientations: dict[str, Orientation], events: list[Event] | None, static: tuple[float, float] | None,
             functional: tuple[float, float] | None, role_windows: dict[str, tuple[float, float]]) -> CalibrationWindows:
    roles = [r for r in ROLES if r in orientations]
    for name, w in [("standing", static), ("functional", functional), *role_windows.items()]:
        if w is not None and not w[1] > w[0]:
            raise CalibrationError(f"{name} window {w[0]:g}:{w[1]:g}: the end must be after the start", gate="input")
    given = {r: functional for r in roles} if functional is not None else {}
    given.update({r: w for r, w in role_windows.items() if r in roles})
    if method == "static":
        return CalibrationWindows(static, {}, "given") if static is not None else find_static_window(orientations, events)
    if static is not None and all(r in given for r in roles if method == "routine" or r != "pelvis"):
        return CalibrationWindows(static, given, "given")
    if method == "routine":
        if given or static is not None:
            raise CalibrationError("the routine needs the standing window (--static) and a functional window for every sensor "
                                   "(--functional, or --window ROLE=A:B each)", gate="input")
        return find_windows(orientations, events)
    if method == "walk":
        spans = phase_spans(events)
        if static is None and "stand" in spans and "walk" in spans:  # the dashboard's guided walk calibration
            found = find_walk_windows(orientations, spans["stand"], within=spans["walk"])
            found = CalibrationWindows(found.static, found.functional, "events")
        else:
            found = find_walk_windows(orientations, static)
    else:
        found = find_seated_windows(orientations, events, static)
    return CalibrationWindows(found.static, {**found.functional, **given}, "given" if given else found.found, None if given else found.final)


def _run(method: str, orientations: dict[str, Orientation], windows: CalibrationWindows, mounts: dict[str, Mount], use_mag: bool) -> AnatomicalCalibration:
    if method == "routine":
        return calibrate(orientations, windows, mounts)
    if method == "walk":
        return calibrate_walk(orientations, windows, mounts, use_mag=use_mag)
    if method == "seated":
        return calibrate_seated(orientations, windows, mounts, use_mag=use_mag)
    return calibrate_static(orientations, windows, mounts)


def anatomical_calibration(
    orientations: dict[str, Orientation],
    events: list[Event] | None = None,
    *,
    method: str | None = None,
    static: tuple[float, float] | None = None,
    functional: tuple[float, float] | None = None,
    role_windows: dict[str, tuple[float, float]] | None = None,
    mounts: dict[str, Mount] | None = None,
    use_mag: bool = False,
) -> AnatomicalCalibration:
    """The anatomical calibration of a recording.

    ``method``: one of :data:`~hipimu.core.calibration.METHODS`, or None to
    take the best that passes its gates (the failures of the better ones are
    noted in the result). ``static``/``functional``: windows (s) as the
    routine's ``--static``/``--functional``; ``role_windows``: role -> the
    window of that sensor's movement (overrides ``functional``); ``mounts``:
    role -> the sensor's mounting where known. Raises
    :class:`CalibrationError`: for a named method, its own failure; else one
    naming why every method failed."""
    if method is not None and method not in METHODS:
        raise CalibrationError(f"unknown calibration method {method!r} (known: {', '.join(METHODS)})", gate="input")
    if "pelvis" not in orientations:
        raise CalibrationError("no pelvis sensor: hip and pelvis angles need one on the sacrum", gate="input")
    if not any(r != "pelvis" for r in orientations):
        raise CalibrationError("no thigh sensor: hip angles need at least one", gate="input")
    mounts = mounts or {}
    role_windows = role_windows or {}
    if method is None and functional is not None:
        method = "routine"  # --functional is the routine's window
    if method is not None:
        return _run(method, orientations, _windows(method, orientations, events, static, functional, role_windows), mounts, use_mag)
    order = list(METHODS)
    if any(e.kind == "phase_start" and e.label in SEATED_PHASES for e in events or []):
        order.remove("seated")
        order.insert(0, "seated")  # the clinician chose the seated routine
    elif any(e.kind == "phase_start" and e.label == "walk" for e in events or []):
        order.remove("walk")
        order.insert(0, "walk")  # the clinician chose the walk calibration (the dashboard's guide)
    failed: list[tuple[str, CalibrationError]] = []
    for m in order:
        try:
            cal = _run(m, orientations, _windows(m, orientations, events, static, functional, role_windows), mounts, use_mag)
        except CalibrationError as exc:
            if exc.gate in FATAL_GATES:
                raise
            failed.append((m, exc))
            continue
        cal.notes[:0] = [f"{f} calibration not possible: {exc}" for f, exc in failed]
        return cal
    raise CalibrationError("no calibration method works on this recording: " + "; ".join(f"{m}: {exc}" for m, exc in failed), gate="not_found")
