"""How far the knee lifts' flexion axis is from the femur's true Z axis.

From the virtual subject's true segment orientations (no sensor errors), the
principal angular-velocity axis during each leg's knee lifts, taken from the
femur's turn in the world (what the thigh sensor alone sees) and from its
turn relative to the pelvis (what hipimu's calibration uses since the
pelvis's small tilt and obliquity during a lift were found to tip it). Prints
the axis's angle from Z about the femur's long axis (deg): what remains is
the adduction and rotation the subject adds to each lift, as real people do.
Run: .venv/bin/python bench/knee_lift_axis.py [--seeds N]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from scipy.spatial.transform import Rotation

from hipimu.sources.simulate._scenarios import simulate


def axis_error_deg(r: Rotation) -> float:
    """Angle (deg) about Y between the principal turn axis of ``r`` (body frame) and Z."""
    _, _, vt = np.linalg.svd((r[:-1].inv() * r[1:]).as_rotvec(), full_matrices=False)
    ax = vt[0] * np.sign(vt[0][2])
    return float(np.degrees(np.arctan2(ax[0], ax[2])))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    print(f"{'seed':>4} {'side':>6} {'in the world':>13} {'rel. to pelvis':>15}")
    world, rel = [], []
    for seed in range(1, args.seeds + 1):
        sim = simulate("squat", seed=seed)
        seg, t = sim["segments"], sim["segments"]["time_s"]
        ev = {(e[1], e[2]): e[0] for e in sim["events"]}
        pelvis = Rotation.from_quat(seg["pelvis_wxyz"], scalar_first=True)
        for side in ("right", "left"):
            m = (t >= ev[("phase_start", f"knee_lift_{side}")]) & (t <= ev[("phase_end", f"knee_lift_{side}")])
            femur = Rotation.from_quat(seg[f"femur_{side}_wxyz"], scalar_first=True)
            world.append(axis_error_deg(femur[m]))
            rel.append(axis_error_deg((pelvis.inv() * femur)[m]))
            print(f"{seed:>4} {side:>6} {world[-1]:>13.2f} {rel[-1]:>15.2f}")
    print(f"{'max |error|':>11} {max(map(abs, world)):>13.2f} {max(map(abs, rel)):>15.2f}")
    print(f"{'RMS':>11} {np.sqrt(np.mean(np.square(world))):>13.2f} {np.sqrt(np.mean(np.square(rel))):>15.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
