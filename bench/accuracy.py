"""Accuracy of hipimu's angles against the virtual subject's ground truth: a randomized suite.

For every scenario x calibration method x fusion (6D, 9D) x seed (default 10):
simulate (realism "real" by default, 208 Hz), run the whole pipeline (per-device
sensor calibration, orientation, anatomical calibration with the method,
angles), and compare with the truth the simulator returns (in real mode it is
relative to the standing pose: the definition hipimu reports) after the
calibration part of the recording (``result.calibration.windows.end_s``; for
the walk method, whose walking is both its calibration and what is measured,
after its standing window).

Prints:

* per scenario x method x fusion: RMSE (deg) of every angle, mean over seeds
  and worst seed, the worst peak IR/ER error per rotation trial, and the
  targets (PASS/FAIL, judged on the mean over seeds; the worst seed's verdict
  in brackets when it differs);
* the quality table over all runs: per quality bin the samples (instant x
  side) and the median / p95 of |hip rotation error|, the p95 among samples
  with quality >= RELIABLE (target <= 3 deg), and whether the p95 grows as the
  quality falls;
* every failed run (a CalibrationError is a failed run, never skipped).

Scenarios or calibration methods the installed simulator / pipeline does not
have yet are skipped with a line saying so. Runs in parallel over the
machine's cores (one simulate + process per task), progress on stderr.

Run: .venv/bin/python bench/accuracy.py [--seeds 10] [--scenarios ...] [--methods ...]
     [--no-mag] [--realism clean] [--rate 100] [--no-zero] [--no-stance] [--no-sensor-cal]
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import multiprocessing
import os
import sys
import time
import traceback

import numpy as np

from hipimu.core.calibration import CalibrationError
from hipimu.core.conventions import HIP_QUANTITIES, PELVIS_QUANTITIES, hip_column, pelvis_column
from hipimu.core.pipeline import PipelineOptions, angle_table_deg, process_session
from hipimu.sources.simulate import SCENARIOS as SIM_SCENARIOS
from hipimu.sources.simulate import simulate_session

try:
    from hipimu.core.quality import RELIABLE
except ImportError:  # before core/quality.py existed
    RELIABLE = 0.5

#: Bench name -> (simulator scenario, simulate kwargs).
SCENARIOS = {
    "squat": ("squat", {}),
    "seated_rotation": ("seated_rotation", {}),
    "prone_rotation": ("prone_rotation", {}),
    "long_mixed": ("long_mixed", {"duration_s": 180.0}),
    "walk": ("walk", {}),
    "sitting_rotation": ("sitting_rotation", {}),
}
#: Scenarios that run the standing routine / start standing (-> static method too).
ROUTINE_SCENARIOS = ("squat", "seated_rotation", "prone_rotation", "long_mixed")
STARTS_STANDING = ("squat", "seated_rotation", "prone_rotation", "long_mixed", "walk")
METHODS = ("routine", "static", "walk", "seated")


def methods_of(scenario: str) -> list[str]:
    out = []
    if scenario in ROUTINE_SCENARIOS:
        out.append("routine")
    if scenario in STARTS_STANDING:
        out.append("static")
    if scenario == "walk":
        out.append("walk")
    if scenario == "sitting_rotation":
        out.append("seated")
    return out


COLUMNS = [hip_column(q, s) for s in ("left", "right") for q in HIP_QUANTITIES] + [pelvis_column(q) for q in PELVIS_QUANTITIES]
SHORT = {**{hip_column(q, s): f"{s[0].upper()}.{q[:4] if q == 'flexion' else q[:3]}" for s in ("left", "right") for q in HIP_QUANTITIES},
         **{pelvis_column(q): f"P.{q[:4] if q == 'tilt' else q[:3]}" for q in PELVIS_QUANTITIES}}
HIP = {q: [hip_column(q, s) for s in ("left", "right")] for q in HIP_QUANTITIES}

#: (scenario, method) -> targets: (label, columns (each must meet it), fusion or None for both, bound deg).
_ROUTINE_TARGETS = [("rot", HIP["rotation"], None, 1.5), ("flex", HIP["flexion"], None, 1.0), ("tilt", ["pelvis_tilt_deg"], None, 0.5)]
TARGETS = {
    ("squat", "routine"): _ROUTINE_TARGETS,
    ("seated_rotation", "routine"): _ROUTINE_TARGETS + [("add", HIP["adduction"], None, 3.0)],
    ("prone_rotation", "routine"): _ROUTINE_TARGETS + [("add", HIP["adduction"], None, 3.0)],
    ("long_mixed", "routine"): [("rot", HIP["rotation"], "6D", 3.0), ("rot", HIP["rotation"], "9D", 1.5)],
    ("walk", "walk"): [("flex", HIP["flexion"], None, 1.5), ("rot", HIP["rotation"], None, 2.5),
                       ("add", HIP["adduction"], None, 2.5), ("tilt", ["pelvis_tilt_deg"], None, 1.0)],
}
QUALITY_BINS = [(0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0 + 1e-9)]


def wrap(d: np.ndarray) -> np.ndarray:
    return (d + 180.0) % 360.0 - 180.0


def has_calibration_option() -> bool:
    return "calibration" in {f.name for f in dataclasses.fields(PipelineOptions)}


def has_realism() -> bool:
    return "realism" in inspect.signature(simulate_session).parameters


def sensor_calibrations(seed: int, mag: bool, rate_hz: float) -> dict:
    """What a clinic does once per board: six still poses (and turns for 9D) -> calibration."""
    from hipimu.core.sensor_calibration import estimate_from_still_poses, estimate_mag

    six, _ = simulate_session("sensor_six_pose", seed=seed, mag=mag, rate_hz=rate_hz)
    turns = simulate_session("sensor_mag_turns", seed=seed, mag=True, rate_hz=rate_hz)[0] if mag else None
    out = {}
    for role, blk in six.samples.items():
        dev = six.devices[role].device_id
        cal = estimate_from_still_poses(blk, device_id=dev)
        if turns is not None:
            cal = cal.with_mag(estimate_mag(turns.samples[role]))
        out[dev] = cal
    return out


@dataclasses.dataclass
class Task:
    scenario: str
    method: str  # "auto" when the pipeline has no calibration option yet
    mag: bool
    seed: int
    rate_hz: float
    realism: str | None
    sensor_cal: bool
    use_zero: bool
    use_stance: bool
    vqf: dict | None


def run(task: Task) -> dict:
    """One simulate + process; never raises (a failure is reported in the result)."""
    t_start = time.perf_counter()
    out: dict = {"task": task, "ok": False}
    try:
        sim_name, kwargs = SCENARIOS[task.scenario]
        kw = dict(kwargs)
        if task.realism is not None:
            kw["realism"] = task.realism
        session, truth = simulate_session(sim_name, seed=task.seed, mag=task.mag, rate_hz=task.rate_hz, **kw)
        opt = {"use_mag": task.mag, "use_zero_events": task.use_zero, "use_stance": task.use_stance, "filter_params": task.vqf}
        if task.method != "auto":
            opt["calibration"] = task.method
        cals = sensor_calibrations(task.seed, task.mag, task.rate_hz) if task.sensor_cal else None
        res = process_session(session, PipelineOptions(**opt), cals)
    except CalibrationError as exc:
        out["error"] = f"CalibrationError: {exc}"
        out["s"] = time.perf_counter() - t_start
        return out
    except Exception as exc:  # noqa: BLE001 -- reported, never skipped
        out["error"] = f"{type(exc).__name__}: {exc} ({traceback.format_exc(limit=-1).strip().splitlines()[-2].strip()})"
        out["s"] = time.perf_counter() - t_start
        return out
    cal = res.calibration
    table = angle_table_deg(res.angles)
    t = table["time_s"]
    tt = truth["time_s"]
    dt = float(np.median(np.diff(tt)))
    ti = np.clip(np.round((t - tt[0]) / dt).astype(int), 0, len(tt) - 1)
    # after the calibration part; the walk method's walking is both its calibration and the
    # task measured: from the end of its standing window
    after = t > (cal.windows.static[1] if cal.method == "walk" else cal.windows.end_s)
    err = {c: wrap(table[c] - truth[c][ti]) for c in COLUMNS}
    out["rmse"] = {c: float(np.sqrt(np.mean(err[c][after] ** 2))) for c in COLUMNS}
    peaks = []
    for t0, t1, ev in session.intervals("trial"):
        if ev.label not in ("seated_rotation", "prone_rotation", "sitting_rotation"):
            continue
        c = hip_column("rotation", ev.data["side"])
        m = (t >= t0) & (t <= t1)
        if m.any():
            est, tru = table[c][m], truth[c][ti[m]]
            peaks += [abs(est.max() - tru.max()), abs(est.min() - tru.min())]
    out["peak"] = max(peaks) if peaks else float("nan")
    q = np.asarray(res.angles.quality)[after]
    out["q"] = np.concatenate([q, q]).astype(np.float32)
    out["err_rot"] = np.abs(np.concatenate([err[c][after] for c in HIP["rotation"]])).astype(np.float32)
    out["cal_method"] = str(getattr(cal, "method", "routine"))
    out["grade"] = str(cal.grade)
    out["ok"] = True
    out["s"] = time.perf_counter() - t_start
    return out


def verdicts(scenario: str, method: str, fusion: str, row: dict[str, float]) -> list[tuple[str, bool]]:
    out = []
    for label, cols, fus, bound in TARGETS.get((scenario, method), []):
        if fus is not None and fus != fusion:
            continue
        out.append((f"{label}<={bound:g}", max(row[c] for c in cols) <= bound))
    return out


def _num(x: float, w: int) -> str:
    return f"{x:>{w}.2f}" if x == x else f"{'-':>{w}}"


def print_rmse(results: list[dict], scen_order: list[str]) -> None:
    print(f"\nRMSE (deg) after the calibration part (windows.end_s; walk method: after its standing), over seeds: 'mean' and the worst seed "
          f"(per column); peak: worst |error| of peak IR/ER per rotation trial; targets on the mean [worst seed]")
    head = f"{'scenario':<17}{'method':<14}{'fus':<4}{'':<6}{'ok':>6}" + "".join(f"{SHORT[c]:>8}" for c in COLUMNS) + f"{'peak':>7}  targets"
    print(head)
    print("-" * len(head))
    keys = []
    for r in results:
        k = (r["task"].scenario, r["task"].method, "9D" if r["task"].mag else "6D")
        if k not in keys:
            keys.append(k)
    keys.sort(key=lambda k: (scen_order.index(k[0]), METHODS.index(k[1]) if k[1] in METHODS else -1, k[2]))
    for scen, method, fus in keys:
        runs = [r for r in results if (r["task"].scenario, r["task"].method, "9D" if r["task"].mag else "6D") == (scen, method, fus)]
        ok = [r for r in runs if r["ok"]]
        shown = method
        if method == "auto" and ok:
            chosen = sorted({r["cal_method"] for r in ok})
            shown = "auto:" + "/".join(chosen)
        n = f"{len(ok)}/{len(runs)}"
        if not ok:
            print(f"{scen:<17}{shown:<14}{fus:<4}{'':<6}{n:>6}  all runs failed")
            continue
        mean = {c: float(np.mean([r["rmse"][c] for r in ok])) for c in COLUMNS}
        worst = {c: float(np.max([r["rmse"][c] for r in ok])) for c in COLUMNS}
        peak_m = float(np.nanmean([r["peak"] for r in ok])) if any(r["peak"] == r["peak"] for r in ok) else float("nan")
        peak_w = float(np.nanmax([r["peak"] for r in ok])) if peak_m == peak_m else float("nan")
        eff = method if method != "auto" else (ok[0]["cal_method"] if len({r["cal_method"] for r in ok}) == 1 else "?")
        vm, vw = verdicts(scen, eff, fus, mean), verdicts(scen, eff, fus, worst)
        tgt = " ".join(f"{lab} {'PASS' if p else 'FAIL'}" + ("" if p == pw else f"[{'PASS' if pw else 'FAIL'}]")
                       for (lab, p), (_, pw) in zip(vm, vw)) or "-"
        if len(ok) < len(runs):
            tgt += f"  ({len(runs) - len(ok)} failed runs: FAIL)"
        grades = "".join(sorted(r["grade"] for r in ok))
        print(f"{scen:<17}{shown:<14}{fus:<4}{'mean':<6}{n:>6}" + "".join(f"{mean[c]:>8.2f}" for c in COLUMNS) + f"{_num(peak_m, 7)}  {tgt}")
        print(f"{'':<17}{'':<14}{'':<4}{'worst':<6}{'':>6}" + "".join(f"{worst[c]:>8.2f}" for c in COLUMNS) + f"{_num(peak_w, 7)}  grades {grades}")


def print_quality(results: list[dict]) -> None:
    ok = [r for r in results if r["ok"]]
    if not ok:
        return
    print(f"\nQuality vs |hip rotation error| (deg), samples = instants x sides after the calibration part, all runs")
    for label, sel in (("all", ok), ("6D", [r for r in ok if not r["task"].mag]), ("9D", [r for r in ok if r["task"].mag])):
        if not sel:
            continue
        q = np.concatenate([r["q"] for r in sel])
        e = np.concatenate([r["err_rot"] for r in sel])
        print(f"  {label}: {'bin':<12}{'samples':>10}{'median':>9}{'p95':>9}")
        p95s = []
        for lo, hi in QUALITY_BINS:
            m = (q >= lo) & (q < hi)
            if m.any():
                p95 = float(np.percentile(e[m], 95))
                p95s.append(p95)
                print(f"      [{lo:.2f},{min(hi, 1.0):.2f}{']' if hi > 1 else ')'}{'':<1}{m.sum():>10}{np.median(e[m]):>9.2f}{p95:>9.2f}")
            else:
                print(f"      [{lo:.2f},{min(hi, 1.0):.2f}{']' if hi > 1 else ')'}{'':<1}{0:>10}{'-':>9}{'-':>9}")
        rel = q >= RELIABLE
        p95_rel = float(np.percentile(e[rel], 95)) if rel.any() else float("nan")
        mono = all(a >= b for a, b in zip(p95s, p95s[1:]))  # bins low -> high quality: p95 must not grow
        print(f"      p95 at quality >= {RELIABLE:g}: {p95_rel:.2f} deg (target <= 3: {'PASS' if p95_rel <= 3.0 else 'FAIL'}); "
              f"{100 * rel.mean():.0f} % of samples; p95 grows monotonically as quality falls: {'yes' if mono else 'NO'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=10, help="seeds per scenario x method x fusion (1..N)")
    ap.add_argument("--scenarios", nargs="*", default=list(SCENARIOS), choices=list(SCENARIOS))
    ap.add_argument("--methods", nargs="*", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--no-mag", action="store_true", help="6D only (default: 6D and 9D)")
    ap.add_argument("--realism", default="real", choices=["real", "clean"])
    ap.add_argument("--rate", type=float, default=208.0, help="sensor rate (Hz) of the simulation (default 208)")
    ap.add_argument("--no-zero", action="store_true", help="do not use zero events")
    ap.add_argument("--no-stance", action="store_true", help="no heading re-alignment at still standing in free movement")
    ap.add_argument("--no-sensor-cal", action="store_true", help="skip the per-device sensor calibration")
    ap.add_argument("--vqf", nargs="*", default=[], metavar="NAME=VALUE", help="VQF parameters, e.g. restBiasEstEnabled=0")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    vqf = {k: float(v) for k, v in (a.split("=") for a in args.vqf)} or None

    realism: str | None = args.realism
    if not has_realism():
        print(f"note: the installed simulator has no realism= yet: running its default (clean) instead of {args.realism!r}")
        realism = None
    with_method = has_calibration_option()
    if not with_method:
        print("note: PipelineOptions has no calibration= yet: only the automatic calibration (method 'auto') per scenario")
    scen_order = []
    for s in args.scenarios:
        if SCENARIOS[s][0] not in SIM_SCENARIOS:
            print(f"note: the installed simulator has no scenario {SCENARIOS[s][0]!r} yet: skipped")
            continue
        scen_order.append(s)
    tasks = []
    for scen in scen_order:
        methods = [m for m in methods_of(scen) if m in args.methods] if with_method else ["auto"]
        for method in methods:
            for mag in ([False] if args.no_mag else [False, True]):
                for seed in range(1, args.seeds + 1):
                    tasks.append(Task(scen, method, mag, seed, args.rate, realism, not args.no_sensor_cal,
                                      not args.no_zero, not args.no_stance, vqf))
    print(f"suite: {len(tasks)} runs ({args.seeds} seeds), realism {realism or 'simulator default'}, sensors at {args.rate:g} Hz, "
          f"angles at 100 Hz, sensor calibration {'off' if args.no_sensor_cal else 'per device (simulated six-pose [+ mag turns])'}, "
          f"zero events {'off' if args.no_zero else 'on'}, still-stance re-alignment {'off' if args.no_stance else 'on'}, "
          f"{args.jobs} processes")
    t0 = time.perf_counter()
    results = []
    with multiprocessing.Pool(args.jobs) as pool:
        for k, r in enumerate(pool.imap_unordered(run, tasks), 1):
            results.append(r)
            t = r["task"]
            status = "ok" if r["ok"] else "FAILED"
            print(f"[{k}/{len(tasks)}] {t.scenario} {t.method} {'9D' if t.mag else '6D'} seed {t.seed}: {status} "
                  f"({r['s']:.1f} s; {time.perf_counter() - t0:.0f} s elapsed)", file=sys.stderr, flush=True)
    wall = time.perf_counter() - t0
    print_rmse(results, scen_order)
    print_quality(results)
    failed = [r for r in results if not r["ok"]]
    print(f"\nfailed runs: {len(failed)} of {len(results)}")
    for r in sorted(failed, key=lambda r: (r["task"].scenario, r["task"].method, r["task"].mag, r["task"].seed)):
        t = r["task"]
        print(f"  FAILED {t.scenario} {t.method} {'9D' if t.mag else '6D'} seed {t.seed}: {r['error']}")
    print(f"wall time {wall:.0f} s ({sum(r['s'] for r in results):.0f} s of runs on {args.jobs} processes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
