"""The ``hipimu`` command line: one program, one subcommand per job.

Every user-facing failure is a :class:`~hipimu.errors.HipimuError`; ``main``
prints it on one line (``hipimu: error: ...``) and returns 2. Outputs are
written atomically, so a failed command never leaves a half-written file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from hipimu import __version__
from hipimu.core.conventions import ROLES, TESTS
from hipimu.errors import HipimuError, InputError

__all__ = ["main", "build_parser"]

EPILOG = """\
examples:
  hipimu simulate --scenario seated_rotation -o s.hipimu --truth truth.csv
  hipimu info s.hipimu
  hipimu export s.hipimu -o raw.csv
  hipimu import raw.csv -o again.hipimu --subject P017
  hipimu scan
  hipimu assign --pelvis 3f2a9c01d4e5b677 --thigh-right 9c01... --thigh-left ...
  hipimu record -o s.hipimu --duration 60          (hipimu record --simulate: no hardware)
  hipimu demo

Run 'hipimu COMMAND --help' for the options of a command.
Conventions (frames, signs, units, columns): docs/conventions.md
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps our line breaks; shows a default only where it tells something."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        d = action.default
        meaningful = not (d is None or d is False or d == "" or d == argparse.SUPPRESS)
        if meaningful and "%(default)" not in text and action.option_strings:
            text += " (default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    """Reports usage errors on one line, like every other hipimu error."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"hipimu: error: {message} (see '{self.prog} --help')\n")


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return v


def _window(text: str) -> tuple[float, float]:
    try:
        a, b = (float(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not A:B (two numbers of seconds)") from None
    if not b > a:
        raise argparse.ArgumentTypeError(f"{text!r}: the end must be after the start")
    return a, b


def _role_value(text: str) -> tuple[str, str]:
    from hipimu.core.conventions import ROLES

    role, sep, value = text.partition("=")
    if not sep or role not in ROLES:
        raise argparse.ArgumentTypeError(f"{text!r} is not ROLE=... with ROLE one of {', '.join(ROLES)}")
    return role, value


def _role_window(text: str) -> tuple[str, tuple[float, float]]:
    role, value = _role_value(text)
    return role, _window(value)


def _role_mount(text: str) -> tuple[str, object]:
    from hipimu.core.segment_axes import parse_mount

    role, value = _role_value(text)
    try:
        return role, parse_mount(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="hipimu",
        description="hipimu: hip rotation and pelvic tilt from wearable IMUs. "
        "Record, replay, simulate, import and export sessions.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"hipimu {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, func: Callable[[argparse.Namespace], int], help_: str, description: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=description, formatter_class=_Formatter)
        sp.set_defaults(func=func)
        return sp

    # info ---------------------------------------------------------------
    sp = add(
        "info",
        cmd_info,
        "show what a recording holds",
        "Print a recording's sensors (sample counts, duration, effective rates, gaps), "
        "its events and its metadata.",
    )
    sp.add_argument("session", type=Path, help="recording file (.hipimu)")
    sp.add_argument("--json", action="store_true", help="print machine-readable JSON instead of text")

    # simulate -----------------------------------------------------------
    from hipimu.sources.simulate import SCENARIOS

    scen = "\n".join(f"  {k:<16} {v}" for k, v in SCENARIOS.items())
    sp = add(
        "simulate",
        cmd_simulate,
        "record a session of the virtual subject",
        "Simulate a subject wearing sensors on the sacrum and both lateral thighs, "
        "with random mounting, realistic sensor errors and clocks, and (--realism real, the "
        "default) the imperfections of a real person and strap: sway during the calibration "
        "movements, a habitual non-neutral standing posture, straps tilted up to 20 deg, thigh soft "
        "tissue (docs/simulator.md). Body scenarios start with the anatomical calibration routine "
        "(stand, hip hinges, knee lifts, stand), except walk (a gait-lab trial) and sitting_rotation "
        "(the seated routine); the sensor_* scenarios are the bare boards on a table, for 'hipimu calibrate-sensor' "
        "(same devices and sensor errors as the body scenarios of the same seed).\n\n"
        f"scenarios:\n{scen}",
    )
    sp.add_argument("--scenario", required=True, choices=list(SCENARIOS), metavar="NAME", help="what the subject does (see above)")
    sp.add_argument("-o", "--output", required=True, type=Path, metavar="SESSION", help="recording file to write (.hipimu)")
    sp.add_argument("--truth", type=Path, metavar="CSV", help="also write ground-truth angles here (100 Hz, degrees; gzip if it ends in .gz)")
    sp.add_argument("--seed", type=int, default=0, metavar="N", help="random seed (mounting, noise, clocks)")
    sp.add_argument("--mag", action="store_true", help="sensors include a magnetometer (9D)")
    sp.add_argument("--rate", type=_positive_float, default=200.0, metavar="HZ", help="sampling rate of every sensor")
    sp.add_argument("--duration", type=_positive_float, metavar="S", help="task length after the calibration (static, long_mixed)")
    sp.add_argument("--loss", type=float, default=0.0, metavar="P", help="probability of losing a BLE packet (8 samples)")
    sp.add_argument("--ideal", action="store_true", help="perfect sensors: no bias, noise or quantisation")
    sp.add_argument("--realism", choices=["real", "clean"], default="real",
                    help="real: a person's and a strap's imperfections (default); clean: ideal movements and posture")
    sp.add_argument("--first-leg", choices=["right", "left"], help="walk: the leading leg (default: from the seed)")
    sp.add_argument("-f", "--force", action="store_true", help="replace existing output files")

    # import -------------------------------------------------------------
    sp = add(
        "import",
        cmd_import,
        "turn a raw-sample CSV into a recording",
        "Read raw samples in the long CSV format and write a recording.\n\n"
        "header: time_s,sensor,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z[,mag_x,mag_y,mag_z]\n"
        "units:  s, m/s^2, rad/s, uT; one row per sample per sensor\n"
        f"sensor: {', '.join(ROLES)}\n"
        "Each sensor may have its own sampling instants and rate; time must increase within a sensor.",
    )
    sp.add_argument("csv", type=Path, help="CSV file to read")
    sp.add_argument("-o", "--output", required=True, type=Path, metavar="SESSION", help="recording file to write (.hipimu)")
    sp.add_argument("--subject", default="", help="pseudonymous subject id (a code, never a name)")
    sp.add_argument("--test", choices=TESTS, default="", help="which clinical test the session holds")
    sp.add_argument("--notes", default="", help="free-text operator notes")
    sp.add_argument("-f", "--force", action="store_true", help="replace an existing output file")

    # export -------------------------------------------------------------
    sp = add(
        "export",
        cmd_export,
        "write a recording's raw samples as CSV",
        "Write the raw samples in the long CSV format that 'hipimu import' reads "
        "(values exactly as recorded).",
    )
    sp.add_argument("session", type=Path, help="recording file (.hipimu)")
    sp.add_argument("-o", "--output", required=True, type=Path, metavar="CSV", help="CSV file to write")
    sp.add_argument("--sensors", nargs="+", choices=list(ROLES), metavar="ROLE", help="only these sensors")
    sp.add_argument("--from", dest="t_from", type=float, metavar="S", help="first second to export (session time)")
    sp.add_argument("--to", dest="t_to", type=float, metavar="S", help="export up to this second (session time)")
    sp.add_argument("-f", "--force", action="store_true", help="replace an existing output file")

    # angles -------------------------------------------------------------
    from hipimu.core.orientation import FILTERS

    sp = add(
        "angles",
        cmd_angles,
        "compute hip and pelvis angles of a recording",
        "Fuse each sensor's samples into orientations, calibrate the sensors to the body with the "
        "best method the recording holds (routine: stand, hip hinges, knee lifts, stand; walk: stand, "
        "then walk; seated: sit, seated hip lifts; static: standing still and the sensors' mounting; "
        "a method that fails falls back to the next, said on one line; docs/calibration.md), "
        "and write hip angles per instrumented thigh and pelvis angles, in degrees, on a common time "
        "grid (see docs/conventions.md for frames and signs). The calibration result is stored in "
        "the recording.\n\n"
        "columns: time_s, hip_{flexion,adduction,rotation}_{left,right}_deg (thighs present), "
        "pelvis_{tilt,obliquity,rotation}_deg, quality (0..1: 1 reliable, 0 unreliable)",
    )
    sp.add_argument("session", type=Path, help="recording file (.hipimu)")
    sp.add_argument("-o", "--output", required=True, type=Path, metavar="CSV", help="angle table to write")
    sp.add_argument("--calibration", choices=["routine", "walk", "seated", "static"], metavar="METHOD",
                    help="anatomical calibration method: routine, walk, seated or static (default: the best the recording holds)")
    sp.add_argument("--static", type=_window, metavar="A:B", help="standing (seated: sitting) still window, seconds")
    sp.add_argument("--functional", type=_window, metavar="C:D", help="window holding the hinges and knee lifts, seconds (the routine)")
    sp.add_argument("--window", type=_role_window, action="append", default=[], metavar="ROLE=A:B",
                    help="the window of one sensor's calibration movement, seconds (repeatable), e.g. thigh_left=12:18")
    sp.add_argument("--mount", type=_role_mount, action="append", default=[], metavar="ROLE=AXES",
                    help="how a sensor sits: the axis out of the skin[,the axis up], e.g. pelvis=-x or thigh_left=+z,+y "
                         "(hipimu boards: +z out of the skin, known)")
    sp.add_argument("--mag", action="store_true", help="9D fusion with the magnetometers")
    sp.add_argument("--filter", choices=list(FILTERS), default="vqf", help="orientation filter")
    sp.add_argument("--rate", type=_positive_float, default=100.0, metavar="HZ", help="rate of the output grid")
    sp.add_argument("--orientations", type=Path, metavar="CSV", help="also write each sensor's orientation quaternions (w,x,y,z) here")
    sp.add_argument("--calibration-dir", type=Path, default=Path("calibration"), metavar="DIR", help="where per-device sensor calibration files are looked up")
    sp.add_argument("--no-zero", action="store_true", help="ignore zero events (no heading re-alignment)")
    sp.add_argument("--no-stance", action="store_true", help="no heading re-alignment at still upright standing in free recordings")
    sp.add_argument("-f", "--force", action="store_true", help="replace existing output files")

    # scan, assign, record (BLE) -------------------------------------------
    from hipimu.apps._ble import add_parsers as add_ble

    add_ble(add)

    # summary, report (clinical analysis) ---------------------------------
    from hipimu.apps._analyse_cli import add_parsers as add_analysis

    add_analysis(add)

    # live, replay (the dashboard) ----------------------------------------
    from hipimu.apps.dashboard.app import add_parsers as add_dashboard

    add_dashboard(add)

    # calibrate-sensor ---------------------------------------------------
    from hipimu.apps._calibrate_sensor import add_parser as add_calibrate_sensor

    add_calibrate_sensor(sub, _Formatter)

    # demo ---------------------------------------------------------------
    sp = add(
        "demo",
        cmd_demo,
        "simulate a session and summarise it",
        "Simulate a session of the virtual subject, stream it through the replay source, "
        "print what hipimu knows about it, analyse it (summary CSV and PDF report), then open the live dashboard on the virtual subject "
        "(without a display: save a picture of the dashboard replaying the session).",
    )
    sp.add_argument("--scenario", default="seated_rotation_squat", choices=list(SCENARIOS), metavar="NAME",
                    help="scenario to simulate (default: seated rotation test, then squats)")
    sp.add_argument("--out", type=Path, default=Path("out/demo"), metavar="DIR", help="folder for the demo's files (replaced on every run)")
    sp.add_argument("--seed", type=int, default=1, metavar="N", help="random seed")
    sp.add_argument("--no-window", action="store_true", help="do not open the dashboard; save a picture of it instead")
    return p


# ----------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------


def cmd_info(args: argparse.Namespace) -> int:
    from hipimu.apps._text import session_overview, session_summary_text
    from hipimu.storage.recording import load_session

    session = load_session(args.session)
    if args.json:
        print(json.dumps(session_overview(session, args.session), indent=2))
    else:
        print(session_summary_text(session, args.session))
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from hipimu.sources.simulate import simulate_session
    from hipimu.storage.angles_csv import write_angles_csv
    from hipimu.storage.recording import save_session

    _refuse_existing([args.output] + ([args.truth] if args.truth else []), args.force)
    if args.output.suffix != ".hipimu":
        print(f"note: recordings are usually named *.hipimu ({args.output})", file=sys.stderr)
    t0 = time.perf_counter()
    session, truth = simulate_session(
        args.scenario, seed=args.seed, rate_hz=args.rate, mag=args.mag, duration_s=args.duration, loss=args.loss, ideal=args.ideal,
        realism=args.realism, first_leg=args.first_leg,
    )
    save_session(session, args.output, overwrite=args.force)
    if args.truth:
        write_angles_csv(truth, args.truth, overwrite=args.force)
    n = sum(len(b) for b in session.samples.values())
    dur = max(float(b.time_s[-1]) for b in session.samples.values())
    print(
        f"simulated {args.scenario!r}: {len(session.samples)} sensors, {n} samples, {dur:.1f} s, "
        f"{len(session.events)} events -> {args.output}" + (f" (+ truth {args.truth})" if args.truth else "")
        + f" in {time.perf_counter() - t0:.1f} s"
    )
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    import numpy as np

    from hipimu.core.model import DeviceInfo, Session, SessionInfo
    from hipimu.core.timing import timing_stats
    from hipimu.storage.csv_io import read_raw_csv
    from hipimu.storage.recording import save_session

    _refuse_existing([args.output], args.force, inputs=[args.csv])
    samples = read_raw_csv(args.csv)
    devices = {}
    for r, blk in samples.items():
        if len(blk) < 2:
            raise InputError(f"{args.csv}: sensor {r} has only {len(blk)} sample; at least 2 are needed")
        rate_hz = float(f"{1.0 / timing_stats(blk.time_s).period_s:.6g}")
        if not (np.isfinite(rate_hz) and rate_hz > 0):
            raise InputError(f"{args.csv}: sensor {r}: cannot tell its sampling rate")
        devices[r] = DeviceInfo(
            device_id=f"csv:{r}",
            role=r,
            rate_hz=rate_hz,
            has_mag=blk.has_mag,
            extra={"imported_from": args.csv.name},
        )
    info = SessionInfo(
        subject_id=args.subject,
        sides=tuple(ROLES[r].side for r in samples if ROLES[r].side),
        test=args.test,
        notes=args.notes,
        source="import",
        extra={"imported_from": str(args.csv)},
    )
    save_session(Session(info, devices, samples), args.output, overwrite=args.force)
    n = sum(len(b) for b in samples.values())
    print(f"imported {n} samples of {len(samples)} sensors ({', '.join(samples)}) -> {args.output}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import numpy as np

    from hipimu.storage.csv_io import write_raw_csv
    from hipimu.storage.recording import load_session

    _refuse_existing([args.output], args.force, inputs=[args.session])
    if args.t_from is not None and args.t_to is not None and args.t_from >= args.t_to:
        raise InputError(f"--from {args.t_from} must be before --to {args.t_to}")
    session = load_session(args.session, roles=args.sensors)
    if not session.samples:
        raise InputError(f"{args.session}: no samples" + (f" of {', '.join(args.sensors)}" if args.sensors else ""))
    t0 = -np.inf if args.t_from is None else args.t_from
    t1 = np.inf if args.t_to is None else args.t_to
    samples = {r: b.between(t0, t1) for r, b in session.samples.items()}
    samples = {r: b for r, b in samples.items() if len(b)}
    if not samples:
        raise InputError(f"{args.session}: no samples between {t0} s and {t1} s")
    rows = write_raw_csv(samples, args.output, overwrite=args.force)
    print(f"exported {rows} rows ({', '.join(samples)}) -> {args.output}")
    return 0


def cmd_angles(args: argparse.Namespace) -> int:
    import numpy as np

    from hipimu.core.pipeline import PipelineOptions, angle_table_deg, process_session
    from hipimu.storage.angles_csv import write_angles_csv
    from hipimu.storage.recording import load_session, store_result
    from hipimu.storage.sensor_calibration_files import load_sensor_calibrations

    outputs = [args.output] + ([args.orientations] if args.orientations else [])
    _refuse_existing(outputs, args.force, inputs=[args.session])
    if args.functional is not None and args.static is None:
        raise InputError("--functional needs --static A:B (the standing window) too")
    progress = _Progress(enabled=sys.stderr.isatty())
    progress(0.0, "loading")
    session = load_session(args.session)
    cals = load_sensor_calibrations([d.device_id for d in session.devices.values()], args.calibration_dir)
    options = PipelineOptions(
        use_mag=args.mag, method=args.filter, rate_hz=args.rate, calibration=args.calibration, static=args.static,
        functional=args.functional, windows=dict(args.window) or None, mounts=dict(args.mount) or None,
        use_zero_events=not args.no_zero, use_stance=not args.no_stance,
    )
    result = process_session(session, options, cals, progress=lambda f, stage: progress(0.1 + 0.8 * f, stage))
    progress(0.9, "writing")
    table = angle_table_deg(result.angles)
    table["quality"] = result.angles.quality
    write_angles_csv(table, args.output, overwrite=args.force)
    if args.orientations:
        otab: dict[str, np.ndarray] = {"time_s": result.angles.time_s}
        for r, rot in result.angles.sensor_world.items():
            q = rot.as_quat(canonical=True, scalar_first=True)
            for i, c in enumerate("wxyz"):
                otab[f"{r}_q{c}"] = q[:, i]
        write_angles_csv(otab, args.orientations, overwrite=args.force, decimals=7)
    store_result(args.session, "anatomical_calibration", {**result.calibration.to_dict(), "sensor_calibration_applied": result.sensor_calibration_applied})
    progress(1.0, "done")
    progress.done()
    cal = result.calibration
    q = result.angles.quality
    from hipimu.core.quality import RELIABLE

    still = "sitting" if cal.method == "seated" else "standing"
    print(
        f"calibration: {cal.method}, grade {cal.grade} ({cal.windows.found} windows: {still} {cal.windows.static[0]:.1f}-{cal.windows.static[1]:.1f} s); "
        f"{len(q)} rows at {args.rate:g} Hz -> {args.output}; quality >= {RELIABLE:g} (reliable) for {100 * np.mean(q >= RELIABLE):.0f} % of the time"
        + (f"; sensor calibration applied: {', '.join(result.sensor_calibration_applied)}" if result.sensor_calibration_applied else "")
    )
    kinds = Counter(a.source for a in result.angles.anchors if a.source != "standing calibration")
    if kinds:
        print("heading re-aligned at: " + ", ".join(f"{n} x {k}" for k, n in sorted(kinds.items())))
    for note in cal.notes:
        print(f"note: {note}")
    return 0


class _Progress:
    """A progress bar on a terminal (stderr), nothing otherwise."""

    WIDTH = 24

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.t0 = time.perf_counter()

    def __call__(self, fraction: float, stage: str) -> None:
        if self.enabled:
            n = int(round(self.WIDTH * min(max(fraction, 0.0), 1.0)))
            bar = "#" * n + "-" * (self.WIDTH - n)
            line = f"\r[{bar}] {100 * fraction:3.0f} % {time.perf_counter() - self.t0:5.1f} s  {stage}"
            print(line.ljust(72), end="", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.enabled:
            print("\r".ljust(72) + "\r", end="", file=sys.stderr, flush=True)


def cmd_demo(args: argparse.Namespace) -> int:
    from hipimu.apps._text import session_summary_text, truth_summary_text
    from hipimu.sources.replay import ReplaySource
    from hipimu.sources.simulate import simulate_session
    from hipimu.storage.angles_csv import write_angles_csv
    from hipimu.storage.recording import save_session

    args.out.mkdir(parents=True, exist_ok=True)
    rec = args.out / f"{args.scenario}.hipimu"
    truth_csv = args.out / f"{args.scenario}_truth.csv"
    print(f"1. Simulating the virtual subject: scenario {args.scenario!r}, seed {args.seed} ...")
    t0 = time.perf_counter()
    session, truth = simulate_session(args.scenario, seed=args.seed)
    save_session(session, rec, overwrite=True)
    write_angles_csv(truth, truth_csv, overwrite=True)
    print(f"   wrote {rec} and {truth_csv} in {time.perf_counter() - t0:.1f} s\n")
    print("2. The recording, as 'hipimu info' shows it:\n")
    print(session_summary_text(session, rec))
    print("\n3. Replaying it through the async source interface (as fast as possible) ...")

    async def stream() -> tuple[int, dict[str, int]]:
        counts: dict[str, int] = {}
        blocks = 0
        async with ReplaySource(rec, speed=None) as src:
            async for blk in src.blocks():
                blocks += 1
                counts[blk.role] = counts.get(blk.role, 0) + len(blk)
        return blocks, counts

    t0 = time.perf_counter()
    blocks, counts = asyncio.run(stream())
    per = ", ".join(f"{r} {n}" for r, n in counts.items())
    print(f"   {blocks} blocks in {time.perf_counter() - t0:.2f} s; samples per sensor: {per}\n")
    print("4. " + truth_summary_text(session, truth))
    me = _program_name()
    _demo_analysis(args, rec)
    rc = _demo_dashboard(args, session, rec, me)
    print(f"\nNext: '{me} replay {rec}', '{me} summary {rec} -o s.csv', '{me} info {rec}', '{me} --help'.")
    return rc


def _demo_analysis(args: argparse.Namespace, rec: Path) -> None:
    """Step 5: the clinical analysis -- summary CSV and PDF report -- with the headline numbers."""
    from hipimu.apps.report import write_report
    from hipimu.apps.summary import analyse_session, summary_rows, write_csv

    csv_path, pdf_path = args.out / "summary.csv", args.out / "report.pdf"
    print("\n5. The clinical analysis ('hipimu summary' and 'hipimu report') ...")
    t0 = time.perf_counter()
    a = analyse_session(rec)
    rows = summary_rows(a)
    write_csv(rows, csv_path, overwrite=True)
    pages = write_report(a, pdf_path, overwrite=True)
    for r in rows:
        if r["kind"] != "mean":
            continue
        if r["test"] == "squat":
            print(f"   squat, {r['side']}: {r['n']} reps, depth {r['depth_deg']:.0f} deg, IR at the bottom "
                  f"{r['ir_at_bottom_deg']:.1f} deg, butt wink {r['butt_wink_deg']:.1f} deg")
        else:
            print(f"   {r['test']}, {r['side']}: {r['n']} trials, max IR {r['max_ir_deg']:.1f} (SD {r['max_ir_sd_deg']:.1f}), "
                  f"max ER {r['max_er_deg']:.1f}, arc {r['arc_deg']:.0f} deg ({r['arc_goal']} the 75-100 goal)")
    for r in rows:
        if r["kind"] == "reserve":
            print(f"   IR reserve, {r['side']}: {r['ir_reserve_deg']:.1f} deg ({r['test']} max IR {r['table_ir_deg']:.1f} "
                  f"minus {r['squat_ir_deg']:.1f} used at the bottom of the squat)")
    print(f"   {len(rows)} rows -> {csv_path}; {pages} pages -> {pdf_path} ({time.perf_counter() - t0:.1f} s)")


def _demo_dashboard(args: argparse.Namespace, session, rec: Path, me: str) -> int:
    """Step 6: the live dashboard on the virtual subject, or without a display a picture of it."""
    import os

    from hipimu.apps.dashboard.app import has_display

    live = ["live", "--simulate", "--scenario", "seated_rotation" if args.scenario.startswith("sensor_") else args.scenario,
            "--seed", str(args.seed), "--out-dir", str(args.out / "sessions")]
    if has_display() and os.environ.get("QT_QPA_PLATFORM", "") not in ("offscreen", "minimal") and not args.no_window:
        print("\n6. The live dashboard on the virtual subject (a simulated clinician at the controls; close the window to end) ...")
        return main(live)
    trials = [e for e in session.events if e.kind == "trial_end"]
    at = trials[0].time_s - 1.5 if trials else float(session.samples["pelvis"].time_s[-1])
    shot = args.out / "dashboard.png"
    print(f"\n6. The dashboard: no display here, so a picture of it replaying {rec.name} at {at:.0f} s -> {shot}")
    print(f"   (to open it: '{me} replay {rec}', or with no display 'xvfb-run -a {me} {' '.join(live)}')")
    # in a process of its own: Qt is not left behind in this one
    import subprocess

    cmd = [sys.executable, "-m", "hipimu", "replay", str(rec), "--at", f"{at:.2f}", "--paused", "--screenshot", str(shot),
           "--quit-after", "4"]
    return subprocess.run(cmd, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"}).returncode


def _program_name() -> str:
    """How the user can call hipimu again: 'hipimu' if that is on PATH, else the path used now."""
    import os
    import shutil

    argv0 = sys.argv[0]
    on_path = shutil.which("hipimu")
    if os.path.basename(argv0) == "hipimu" and (on_path is None or os.path.realpath(on_path) != os.path.realpath(argv0)):
        return os.path.relpath(argv0)
    return "hipimu"


def _refuse_existing(outputs: Sequence[Path], force: bool, inputs: Sequence[Path] = ()) -> None:
    """Fail fast, before any work, on outputs that cannot or must not be written."""
    for i, p in enumerate(outputs):
        if p.is_dir():
            raise InputError(f"{p}: is a directory")
        for q in list(inputs) + list(outputs[:i]):
            if p.exists() and q.exists() and p.samefile(q) or p.resolve() == q.resolve():
                raise InputError(f"{p}: is also {'an input' if q in inputs else 'another output'} of this command")
        if p.exists() and not force:
            raise InputError(f"{p}: already exists (use --force to replace it)")
        if not p.parent.is_dir():
            raise InputError(f"{p.parent}: no such directory")


# ----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except HipimuError as exc:
        print(f"hipimu: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hipimu: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
