"""Where the hip rotation error of a test comes from: the calibration's axes or the rest.

For each seed: simulate (realism "real"), run the pipeline, then run the
angles again with the *true* segment axes in each sensor put into the
calibration (the simulator's mounting and its standing-pose correction, the
headings aligned as hipimu aligns them). What remains with the true axes is
the orientation filters' and the soft tissue's share; the difference is the
calibration's. Prints the hip rotation RMSE (deg) after the calibration part,
and the axis error of each thigh (deg, rotation vector in the segment frame:
its Y part turns the flexion axis in the horizontal plane).

Run: .venv/bin/python bench/rotation_error_sources.py [--scenario squat] [--seeds 5] [--mag]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from scipy.spatial.transform import Rotation

from hipimu.core.kinematics import compute_angles
from hipimu.core.pipeline import PipelineOptions, angle_table_deg, process_session, stance_windows
from hipimu.core.segment_axes import between, heading_offsets, rotations
from hipimu.core.sensor_calibration import estimate_from_still_poses
from hipimu.sources.simulate import simulate, simulate_session

SEGMENT = {"pelvis": "pelvis", "thigh_left": "femur_left", "thigh_right": "femur_right"}


def _rmse(angles, truth, after_s: float, column: str) -> float:
    table = angle_table_deg(angles)
    t = table["time_s"]
    ti = np.clip(np.round((t - truth["time_s"][0]) * 100).astype(int), 0, len(truth["time_s"]) - 1)
    m = t > after_s
    d = (table[column][m] - truth[column][ti][m] + 180.0) % 360.0 - 180.0
    return float(np.sqrt(np.mean(d**2)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="squat")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--mag", action="store_true")
    args = ap.parse_args()
    print(f"{args.scenario}, realism real, {'9D' if args.mag else '6D'}: hip rotation RMSE (deg) L / R, estimated axes vs true axes")
    for seed in range(1, args.seeds + 1):
        sim = simulate(args.scenario, seed=seed, realism="real", mag=args.mag)
        session, truth = simulate_session(args.scenario, seed=seed, realism="real", mag=args.mag)
        six, _ = simulate_session("sensor_six_pose", seed=seed, mag=args.mag)
        cals = {six.devices[r].device_id: estimate_from_still_poses(b, device_id=six.devices[r].device_id) for r, b in six.samples.items()}
        res = process_session(session, PipelineOptions(use_mag=args.mag), cals)
        cal = res.calibration
        after = cal.windows.end_s
        est = [_rmse(res.angles, truth, after, f"hip_rotation_{s}_deg") for s in ("left", "right")]
        axis_err, still = {}, {}
        for r, seg in cal.segments.items():
            mount = Rotation.from_quat(sim["sensors"][r]["mounting_wxyz"], scalar_first=True)
            corr = Rotation.from_quat(sim["rebase"][f"c_{SEGMENT[r]}_wxyz"], scalar_first=True)
            true_axes = mount.inv() * corr
            axis_err[r] = (true_axes.inv() * seg.segment_in_sensor).as_rotvec(degrees=True)
            seg.segment_in_sensor = true_axes
            o = res.orientations[r]
            still[r] = (rotations(o, between(o, cal.windows.final or cal.windows.static)) * true_axes).mean()
        for r, off in heading_offsets(still, np.array([1.0, 0.0, 0.0])).items():
            cal.segments[r].heading_offset_rad = off
        cal.reference_pelvis = still["pelvis"]
        oracle = compute_angles(res.orientations, cal, events=session.events, use_mag=args.mag, stance_windows=stance_windows(session, cal))
        true = [_rmse(oracle, truth, after, f"hip_rotation_{s}_deg") for s in ("left", "right")]
        axes = "  ".join(f"{r}: {np.round(axis_err[r], 1)}" for r in ("thigh_left", "thigh_right"))
        print(f"seed {seed}: estimated {est[0]:.2f} / {est[1]:.2f}   true axes {true[0]:.2f} / {true[1]:.2f}   axis error {axes}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
