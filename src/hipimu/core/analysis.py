"""Clinical summaries of angle series: arrays in, numbers out (radians).

One trial at a time for now (the dashboard's "results at a glance"); the
session-level analysis (trial and rep detection, norms, reports) builds on
these.
"""

from __future__ import annotations

import numpy as np

__all__ = ["rotation_trial", "squat_trial", "summarize_trial"]


def rotation_trial(hip_rad: np.ndarray, pelvis_rad: np.ndarray) -> dict[str, float]:
    """A seated or prone rotation trial of one side.

    ``hip_rad`` (N, 3) flexion, adduction, IR; ``pelvis_rad`` (N, 3) tilt,
    obliquity, rotation. Returns ``max_ir_rad`` and ``max_er_rad`` (both
    positive when reached: ER is negative IR), ``arc_rad`` (their sum),
    ``pelvic_compensation_rad`` (the largest change of any pelvis angle from
    the trial's start) and its parts ``pelvis_tilt_change_rad``,
    ``pelvis_obliquity_change_rad``, ``pelvis_rotation_change_rad``.
    """
    rot = hip_rad[:, 2]
    max_ir, max_er = float(max(rot.max(), 0.0)), float(max(-rot.min(), 0.0))
    change = np.abs(pelvis_rad - pelvis_rad[0]).max(axis=0)
    return {
        "max_ir_rad": max_ir,
        "max_er_rad": max_er,
        "arc_rad": max_ir + max_er,
        "pelvic_compensation_rad": float(change.max()),
        "pelvis_tilt_change_rad": float(change[0]),
        "pelvis_obliquity_change_rad": float(change[1]),
        "pelvis_rotation_change_rad": float(change[2]),
    }


def squat_trial(hip_rad: np.ndarray, pelvis_rad: np.ndarray) -> dict[str, float]:
    """A squat trial of one side, at its deepest instant (peak hip flexion):
    ``depth_rad``, ``ir_at_bottom_rad``, ``adduction_at_bottom_rad``,
    ``tilt_top_rad`` (pelvic tilt at the trial's start), ``tilt_bottom_rad``,
    ``max_ir_rad`` over the trial."""
    i = int(np.argmax(hip_rad[:, 0]))
    return {
        "depth_rad": float(hip_rad[i, 0]),
        "ir_at_bottom_rad": float(hip_rad[i, 2]),
        "adduction_at_bottom_rad": float(hip_rad[i, 1]),
        "tilt_top_rad": float(pelvis_rad[0, 0]),
        "tilt_bottom_rad": float(pelvis_rad[i, 0]),
        "max_ir_rad": float(hip_rad[:, 2].max()),
    }


def summarize_trial(test: str, hip: dict[str, np.ndarray], pelvis_rad: np.ndarray) -> dict[str, dict[str, float]]:
    """side -> summary of one trial (``test``: seated_rotation, prone_rotation,
    squat or free; free trials get the rotation summary plus the squat's depth)."""
    if not len(pelvis_rad):
        raise ValueError("the trial holds no angles")
    out = {}
    for side, a in hip.items():
        if test == "squat":
            out[side] = squat_trial(a, pelvis_rad)
        else:
            out[side] = rotation_trial(a, pelvis_rad)
            if test == "free":
                out[side]["max_flexion_rad"] = float(a[:, 0].max())
    return out
