"""Speed and memory of `hipimu summary` and `hipimu report`, per session and over a folder.

A folder of simulated sessions (one per scenario and seed, 200 Hz, three
sensors) is written first. Then, per session, the stages of
``analyse_session`` (load the recording, compute the angles with the
pipeline, analyse) and of the outputs (CSV rows, PDF report) are timed in this
process; the per-stage table gives the median over the seeds. Last, the two
commands are run on the whole folder as a user runs them (a subprocess each:
start-up, imports and all) and their wall time, CPU time and peak memory
(max RSS) printed.

Run: .venv/bin/python bench/analysis_batch.py [--seeds 0,1] [--keep DIR]
(~2 minutes with two seeds). Prints tables and asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCENARIOS = ("seated_rotation", "prone_rotation", "squat", "seated_rotation_squat")


def _write_sessions(folder: Path, seeds: list[int]) -> list[tuple[str, Path]]:
    from hipimu.sources.simulate import simulate_session
    from hipimu.storage.recording import save_session

    out = []
    for scenario in SCENARIOS:
        for seed in seeds:
            session, _ = simulate_session(scenario, seed=seed)
            path = folder / f"{scenario}_{seed}.hipimu"
            save_session(session, path)
            out.append((scenario, path))
    return out


def _stages(path: Path, out_dir: Path) -> dict[str, float]:
    from hipimu.apps.report import write_report
    from hipimu.apps.summary import Analysed, session_quality, summary_rows
    from hipimu.core.analysis import analyze
    from hipimu.core.pipeline import process_session
    from hipimu.storage.recording import load_session

    t = {}
    t0 = time.perf_counter()
    session = load_session(path)
    t["load_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = process_session(session)
    t["angles_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    cal_end = result.calibration.windows.end_s
    an = analyze(result.angles, session.events, calibration_end_s=cal_end)
    a = Analysed(path, session, result, an, session_quality(session, result))
    t["analysis_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    rows = summary_rows(a)
    t["csv_rows_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    pages = write_report(a, out_dir / f"{path.stem}.pdf", overwrite=True)
    t["report_s"] = time.perf_counter() - t0
    t["duration_s"] = float(result.angles.time_s[-1] - result.angles.time_s[0])
    t["file_mb"] = path.stat().st_size / 1e6
    t["rows"] = len(rows)
    t["pages"] = pages
    return t


def _run(cmd: list[str]) -> tuple[float, float, float, int]:
    """Wall time, CPU time (s), peak RSS (MB) and exit code of one command (its own rusage)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024.0, proc.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1", help="comma list of seeds (one session per scenario and seed)")
    ap.add_argument("--keep", type=Path, help="write the sessions and outputs here (default: a temporary folder)")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s]
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        sessions = root / "sessions"
        sessions.mkdir(parents=True, exist_ok=True)
        out = root / "out"
        out.mkdir(exist_ok=True)
        t0 = time.perf_counter()
        written = _write_sessions(sessions, seeds)
        print(f"{len(written)} simulated sessions written in {time.perf_counter() - t0:.0f} s "
              f"({os.cpu_count()} cores, Python {sys.version.split()[0]})")

        per: dict[str, list[dict[str, float]]] = {}
        for scenario, path in written:
            per.setdefault(scenario, []).append(_stages(path, out))
        cols = ("duration_s", "file_mb", "load_s", "angles_s", "analysis_s", "csv_rows_s", "report_s", "rows", "pages")
        head = f"{'scenario':<24}" + "".join(f"{c:>12}" for c in cols) + f"{'total_s':>10}{'x real':>8}"
        print("\nper session, in one process (median over the seeds; x real = recording time / processing time)")
        print(head)
        print("-" * len(head))
        for scenario, runs in per.items():
            med = {c: statistics.median(r[c] for r in runs) for c in cols}
            total = med["load_s"] + med["angles_s"] + med["analysis_s"] + med["csv_rows_s"] + med["report_s"]
            cells = "".join(f"{med[c]:>12.0f}" if c in ("rows", "pages") else
                            f"{med[c]:>12.1f}" if c == "duration_s" else f"{med[c]:>12.2f}" for c in cols)
            print(f"{scenario:<24}{cells}{total:>10.2f}{med['duration_s'] / total:>8.0f}")

        hipimu = [sys.executable, "-m", "hipimu"]
        print("\nthe commands over the folder (subprocesses)")
        head = f"{'command':<40}{'sessions':>9}{'wall_s':>9}{'cpu_s':>9}{'s/session':>11}{'max_rss_mb':>12}{'exit':>6}"
        print(head)
        print("-" * len(head))
        # the folder four times over (hard links): memory must not grow with the number of sessions
        big = root / "sessions_x4"
        for k in range(4):
            (big / str(k)).mkdir(parents=True, exist_ok=True)
            for _, path in written:
                if not (big / str(k) / path.name).exists():
                    os.link(path, big / str(k) / path.name)
        for name, n, cmd in (
                ("hipimu summary FOLDER -o cohort.csv", len(written),
                 [*hipimu, "summary", str(sessions), "-o", str(out / "cohort.csv"), "--force"]),
                ("hipimu summary FOLDERx4 -o cohort.csv", 4 * len(written),
                 [*hipimu, "summary", str(big), "-o", str(out / "cohort4.csv"), "--force"]),
                ("hipimu report FOLDER -o reports/", len(written),
                 [*hipimu, "report", str(sessions), "-o", str(out / "reports"), "--force"])):
            wall, cpu, rss, code = _run(cmd)
            print(f"{name:<40}{n:>9}{wall:>9.1f}{cpu:>9.1f}{wall / n:>11.2f}{rss:>12.0f}{code:>6}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
