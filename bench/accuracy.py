"""Accuracy of hipimu's angles against the virtual subject's ground truth.

For every scenario, several seeds, 6D (and 9D with --mag): simulate, run the
whole pipeline (orientation, anatomical calibration, angles), and print the
RMSE (deg) of every angle after the calibration routine, plus the error of the
peak IR / ER per rotation trial. Run: .venv/bin/python bench/accuracy.py
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from hipimu.core.conventions import HIP_QUANTITIES, PELVIS_QUANTITIES, hip_column, pelvis_column
from hipimu.core.pipeline import PipelineOptions, angle_table_deg, process_session
from hipimu.sources.simulate import simulate_session

SCENARIOS = {  # name -> simulate kwargs
    "squat": {},
    "seated_rotation": {},
    "prone_rotation": {},
    "long_mixed (3 min)": {"duration_s": 180.0},
}
COLUMNS = [hip_column(q, s) for s in ("left", "right") for q in HIP_QUANTITIES] + [pelvis_column(q) for q in PELVIS_QUANTITIES]
SHORT = {c: c.replace("hip_", "").replace("_deg", "").replace("flexion", "flex").replace("adduction", "add").replace("rotation", "rot").replace("pelvis_", "p.").replace("obliquity", "obl") for c in COLUMNS}


def wrap(d: np.ndarray) -> np.ndarray:
    return (d + 180.0) % 360.0 - 180.0


def sensor_calibrations(seed: int, mag: bool) -> dict:
    """What a clinic does once per board: six still poses (and turns for 9D) -> calibration."""
    from hipimu.core.sensor_calibration import estimate_from_still_poses, estimate_mag

    six, _ = simulate_session("sensor_six_pose", seed=seed, mag=mag)
    turns = simulate_session("sensor_mag_turns", seed=seed, mag=True)[0] if mag else None
    out = {}
    for role, blk in six.samples.items():
        dev = six.devices[role].device_id
        cal = estimate_from_still_poses(blk, device_id=dev)
        if turns is not None:
            cal = cal.with_mag(estimate_mag(turns.samples[role]))
        out[dev] = cal
    return out


def run(scenario: str, kwargs: dict, seed: int, mag: bool, options: PipelineOptions, sensor_cal: bool) -> dict[str, float]:
    name = scenario.split(" ")[0]
    session, truth = simulate_session(name, seed=seed, mag=mag, **kwargs)
    res = process_session(session, options, sensor_calibrations(seed, mag) if sensor_cal else None)
    table = angle_table_deg(res.angles)
    t = table["time_s"]
    ti = np.clip(np.round((t - truth["time_s"][0]) * 100).astype(int), 0, len(truth["time_s"]) - 1)
    after = t > res.calibration.windows.functional.get("thigh_left", res.calibration.windows.static)[1] + 2.0
    out = {c: float(np.sqrt(np.mean(wrap(table[c][after] - truth[c][ti][after]) ** 2))) for c in COLUMNS}
    # peak IR / ER per rotation trial
    peaks = []
    for t0, t1, ev in session.intervals("trial"):
        if ev.label not in ("seated_rotation", "prone_rotation"):
            continue
        side = ev.data["side"]
        c = hip_column("rotation", side)
        m = (t >= t0) & (t <= t1)
        est, tru = table[c][m], truth[c][ti[m]]
        peaks += [abs(est.max() - tru.max()), abs(est.min() - tru.min())]
    out["peak"] = max(peaks) if peaks else float("nan")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--mag", action="store_true", help="also run 9D")
    ap.add_argument("--no-zero", action="store_true", help="do not use zero events")
    ap.add_argument("--no-stance", action="store_true", help="no heading re-alignment at still standing in free movement")
    ap.add_argument("--no-sensor-cal", action="store_true", help="skip the per-device sensor calibration")
    ap.add_argument("--scenarios", nargs="*", default=list(SCENARIOS))
    ap.add_argument("--vqf", nargs="*", default=[], metavar="NAME=VALUE", help="VQF parameters, e.g. restBiasEstEnabled=0")
    args = ap.parse_args()
    vqf_params = {k: float(v) for k, v in (a.split("=") for a in args.vqf)} or None
    modes = [False, True] if args.mag else [False]
    print("RMSE (deg) after the calibration routine, mean over seeds; 'peak': worst |error| of peak IR/ER per rotation trial")
    print("sensor calibration:", "none" if args.no_sensor_cal else "per device, from a simulated six-pose recording of the same boards")
    print(f"{'scenario':<20}{'fusion':>7}" + "".join(f"{SHORT[c]:>9}" for c in COLUMNS) + f"{'peak':>8}{'s/run':>7}")
    for scen in args.scenarios:
        kwargs = SCENARIOS[scen]
        for mag in modes:
            opts = PipelineOptions(use_mag=mag, use_zero_events=not args.no_zero, use_stance=not args.no_stance, filter_params=vqf_params)
            t0 = time.perf_counter()
            rows = [run(scen, kwargs, seed, mag, opts, not args.no_sensor_cal) for seed in range(1, args.seeds + 1)]
            dt = (time.perf_counter() - t0) / len(rows)
            mean = {k: np.mean([r[k] for r in rows]) for k in rows[0]}
            print(f"{scen:<20}{'9D' if mag else '6D':>7}" + "".join(f"{mean[c]:>9.2f}" for c in COLUMNS) + f"{mean['peak']:>8.2f}{dt:>7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
