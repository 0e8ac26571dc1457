"""Offline throughput: ``hipimu angles`` end to end against raw VQF.

Simulates a 1-hour, 3-sensor, 200 Hz ``long_mixed`` session (the ~37 s
calibration routine, then pauses, marching in place and turns), saves it as a
recording, and times, on that file:

* end to end: ``hipimu angles SESSION -o OUT.csv`` in a subprocess (interpreter
  start-up, imports, load, fuse, calibrate, angles, CSV write, storing the
  calibration result), with the child's own peak RSS (``os.wait4``);
* the same stages in this process: load (+ sensor-calibration lookup), then
  ``process_session`` with the CLI's default options, its steps timed by
  wrapping the functions it calls (orientation per sensor, calibration windows
  + calibration, stance windows + angles), then the angle table and CSV write.
  The in-process CSV is compared byte for byte with the CLI's;
* raw VQF on the same (loaded) data: ``vqf.VQF(Ts).updateBatch(gyr, acc)`` per
  sensor, 6D, default parameters, contiguous float64 arrays made outside the
  timing -- exactly the call hipimu/core/orientation.py makes (it converts
  frames only on the filter's output).

samples/s counts the raw samples of all sensors (3 x 200 Hz x duration). The
issue's target: end-to-end samples/s >= 0.5 x raw VQF samples/s. Prints a
table, asserts nothing. The simulation runs in a child process so that this
process stays small while the CLI runs.

Run: .venv/bin/python bench/throughput.py [--minutes N] [--repeat K] [--keep DIR]
(default 60 minutes, best of 1; --keep DIR keeps the recording and the CSVs).
"""

from __future__ import annotations

import argparse
import filecmp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import hipimu.core.pipeline as pipeline
from hipimu.core.pipeline import PipelineOptions, angle_table_deg, process_session
from hipimu.storage.angles_csv import write_angles_csv
from hipimu.storage.recording import load_session
from hipimu.storage.sensor_calibration_files import load_sensor_calibrations

TARGET_RATIO = 0.5
ROUTINE_S = 37.0  # long_mixed: calibration routine, trial starts at 36.9 s (and 0.5 s after it ends)
VENV_BIN = Path(sys.executable).parent
IMPORTS = (
    "import hipimu.apps.cli, hipimu.core.pipeline, hipimu.storage.recording, hipimu.storage.angles_csv, "
    "hipimu.storage.sensor_calibration_files, hipimu.core.sensor_calibration, vqf, scipy.optimize"
)
SIMULATE = """
import sys, time
from hipimu.sources.simulate import simulate_session
from hipimu.storage.recording import save_session
t0 = time.perf_counter()
s, _ = simulate_session("long_mixed", seed=1, duration_s=float(sys.argv[2]), rate_hz=200.0)
t1 = time.perf_counter()
save_session(s, sys.argv[1], overwrite=True)
print(t1 - t0, time.perf_counter() - t1)
"""
#: process_session's steps: the module-level names it calls -> the stage they count for.
STAGE_OF = {
    "estimate_orientation": "orientation",
    "find_windows": "calibration",
    "calibrate": "calibration",
    "stance_windows": "angles",
    "compute_angles": "angles",
}


def run_cli(session: Path, out_csv: Path, cal_dir: Path) -> tuple[float, float, str]:
    """Wall time, the child's own peak RSS (MB) and its first output line."""
    cmd = [str(VENV_BIN / "hipimu"), "angles", str(session), "-o", str(out_csv), "-f", "--calibration-dir", str(cal_dir)]
    with tempfile.TemporaryFile("w+") as out:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        _, status, ru = os.wait4(p.pid, 0)
        dt = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if p.returncode != 0:
        raise SystemExit(f"hipimu angles failed ({p.returncode}):\n{text}")
    return dt, ru.ru_maxrss / 1024, text.strip().splitlines()[0] if text.strip() else ""


def startup_s() -> float:
    """A fresh interpreter importing what ``hipimu angles`` imports (best of 3)."""
    best = np.inf
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", IMPORTS], check=True)
        best = min(best, time.perf_counter() - t0)
    return best


def in_process(session_path: Path, out_csv: Path, cal_dir: Path) -> tuple[dict[str, float], int]:
    """The stages of ``hipimu angles`` (default options), timed one by one."""
    t: dict[str, float] = {"load": 0.0, "orientation": 0.0}
    t0 = time.perf_counter()
    session = load_session(session_path)
    cals = load_sensor_calibrations([d.device_id for d in session.devices.values()], cal_dir)
    t["load"] = time.perf_counter() - t0

    originals = {name: getattr(pipeline, name) for name in STAGE_OF if hasattr(pipeline, name)}

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            s = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                dt = time.perf_counter() - s
                t[STAGE_OF[name]] = t.get(STAGE_OF[name], 0.0) + dt
                if name == "estimate_orientation":
                    t[f"  {args[0].role}"] = dt  # indented: part of "orientation"
        return wrapper

    try:
        for name, fn in originals.items():
            setattr(pipeline, name, timed(name, fn))
        t0 = time.perf_counter()
        result = process_session(session, PipelineOptions(), cals)
        total = time.perf_counter() - t0
    finally:
        for name, fn in originals.items():
            setattr(pipeline, name, fn)
    t["rest of process_session"] = total - sum(v for k, v in t.items() if k != "load" and not k.startswith("  "))
    t0 = time.perf_counter()
    table = angle_table_deg(result.angles)
    table["quality"] = result.angles.quality
    write_angles_csv(table, out_csv, overwrite=True)
    t["CSV write"] = time.perf_counter() - t0
    return t, len(result.angles.time_s)


def raw_vqf(session_path: Path) -> tuple[float, dict[str, int], float]:
    """Sum over sensors of the time of one ``VQF(Ts).updateBatch`` call; samples per sensor; recording span (s)."""
    from vqf import VQF

    session = load_session(session_path)
    total = 0.0
    for r, blk in session.samples.items():
        gyr = np.ascontiguousarray(blk.gyr_rad_s, dtype=np.float64)
        acc = np.ascontiguousarray(blk.acc_m_s2, dtype=np.float64)
        f = VQF(1.0 / session.devices[r].rate_hz)
        t0 = time.perf_counter()
        f.updateBatch(gyr, acc)
        total += time.perf_counter() - t0
    blocks = session.samples.values()
    span = max(b.time_s[-1] for b in blocks) - min(b.time_s[0] for b in blocks)
    return total, {r: len(b) for r, b in session.samples.items()}, float(span)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60.0, help="session length, calibration routine included (default 60)")
    ap.add_argument("--repeat", type=int, default=1, help="best of K for every timing (default 1)")
    ap.add_argument("--keep", type=Path, metavar="DIR", help="keep the recording and CSVs in DIR (default: a temporary folder)")
    args = ap.parse_args()
    if args.minutes * 60 <= ROUTINE_S + 10:
        ap.error("--minutes must leave time after the ~37 s calibration routine")
    k = max(1, args.repeat)

    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        cal_dir = Path(tmp) / "no-sensor-calibration"  # empty: no per-device calibration (none exists for simulated boards)
        cal_dir.mkdir()
        session_path = work / "throughput.hipimu"
        sim = subprocess.run(
            [sys.executable, "-c", SIMULATE, str(session_path), repr(args.minutes * 60 - ROUTINE_S)],
            check=True, capture_output=True, text=True,
        )
        t_sim, t_save = (float(x) for x in sim.stdout.split())

        e2e = [run_cli(session_path, work / "angles_cli.csv", cal_dir) for _ in range(k)]
        t_e2e, rss_mb, cli_out = min(e2e[i][0] for i in range(k)), max(e[1] for e in e2e), e2e[0][2]
        runs = [in_process(session_path, work / "angles_inprocess.csv", cal_dir) for _ in range(k)]
        stages = {name: min(r[0][name] for r in runs) for name in runs[0][0]}
        rows = runs[0][1]
        vqf_runs = [raw_vqf(session_path) for _ in range(k)]
        t_vqf, n_per, span = min(v[0] for v in vqf_runs), vqf_runs[0][1], vqf_runs[0][2]
        t_start = startup_s()
        same = filecmp.cmp(work / "angles_cli.csv", work / "angles_inprocess.csv", shallow=False)
        size_mb = session_path.stat().st_size / 1e6

    n = sum(n_per.values())
    print(f"session: long_mixed seed 1, {span:.1f} s = {span / 60:.2f} min, {len(n_per)} sensors at 200 Hz ("
          + ", ".join(f"{r} {m}" for r, m in n_per.items()) + f" samples), {n} samples in all")
    print(f"recording {size_mb:.1f} MB (simulated in {t_sim:.1f} s, saved in {t_save:.1f} s); angles: {rows} rows at 100 Hz")
    print(f"hipimu angles: {cli_out}")
    print(f"timings: best of {k}; machine: {os.cpu_count()} CPUs")
    print()
    print(f"{'stage':<46}{'s':>9}{'k samples/s':>14}")

    def line(name: str, s: float) -> None:
        print(f"{name:<46}{s:>9.2f}" + (f"{n / s / 1e3:>14.0f}" if s > 0 else f"{'-':>14}"))

    line("end to end: hipimu angles (subprocess)", t_e2e)
    in_sum = sum(v for name, v in stages.items() if not name.startswith("  "))
    for name, v in stages.items():
        line(name if name.startswith("  ") else f"in process: {name}", v)
    line("in process: sum of the stages", in_sum)
    line("interpreter start + imports (best of 3)", t_start)
    rest = t_e2e - in_sum - t_start
    line("rest of the CLI (e2e - stages - start-up)" + (" *" if rest < 0 else ""), rest)
    line("raw VQF updateBatch, all sensors", t_vqf)
    ratio = t_vqf / t_e2e
    print()
    print(f"end-to-end / raw VQF throughput: {ratio:.3f}  (target >= {TARGET_RATIO}: {'PASS' if ratio >= TARGET_RATIO else 'MISS'}); "
          f"in-process stages / raw VQF: {t_vqf / in_sum:.3f}")
    print(f"peak RSS of hipimu angles: {rss_mb:.0f} MB; {span / t_e2e:.0f}x real time")
    if rest < 0:
        print("* negative: run-to-run noise between the subprocess and the in-process timings")
    print(f"in-process CSV identical to the CLI's: {'yes' if same else 'NO (the in-process stages no longer match hipimu angles)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
