"""``hipimu summary`` and ``hipimu report``: one session or a folder of them."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path

from hipimu.core.norms import COMPENSATION_DEG, MDC_DEG
from hipimu.errors import HipimuError, InputError

TEST_CHOICES = ("seated_rotation", "prone_rotation", "squat")


def add_parsers(add: Callable[..., argparse.ArgumentParser]) -> None:
    """Register summary and report with the main parser's ``add``."""
    common = (
        "SESSION is a recording or a folder of recordings (*.hipimu, searched recursively). Each is processed as "
        "'hipimu angles' does (it needs the calibration routine), then its trials are analysed: rotation tests "
        "(seated, prone) per trial and side -- max IR, max ER, arc, seconds near end range, pelvic compensation, "
        "apparent (thigh vs room) IR/ER -- and squats per rep and side -- depth, IR and adduction at the bottom, "
        "pelvic tilt top/bottom, butt wink, knee flare. Trials come from the recording's trial events; without "
        "them, say which test it holds (--test): everything after the calibration routine is that task and the "
        "trials (which leg moves, each excursion) or reps are found in the angles. See docs/analysis.md; norms "
        "and their sources: docs/norms.md."
    )
    sp = add("summary", cmd_summary, "summary CSV of the trials and reps of sessions",
             "Write one CSV row per trial or rep and side, then per test and side the mean and SD, the "
             "right-vs-left symmetry index, and the IR reserve (table IR minus the IR used at the bottom of the "
             "squat; across a subject's sessions in a folder). " + common)
    _common(sp, "CSV", "summary CSV to write")

    sp = add("report", cmd_report, "PDF report of sessions",
             "Write a multi-page PDF per session: summary table with norm bands and flags, per-test plots, "
             "squat per-rep table and IR-vs-flexion plot, left/right bars, data quality (loss, drift, calibration "
             "grade). Readable printed in black and white. With a folder, OUTPUT is a folder: one PDF per "
             "session. " + common)
    _common(sp, "PDF", "PDF to write (a folder for a folder of sessions)")


def _common(sp: argparse.ArgumentParser, output: str, output_help: str) -> None:
    sp.add_argument("session", type=Path, metavar="SESSION", help="recording file, or a folder of them")
    sp.add_argument("-o", "--output", required=True, type=Path, metavar=output, help=output_help)
    sp.add_argument("--test", choices=TEST_CHOICES, help="the task of recordings without trial events")
    sp.add_argument("--bands", type=Path, metavar="JSON", help="norm bands to compare with (default: docs/norms.md's)")
    sp.add_argument("--calibration-dir", type=Path, default=Path("calibration"), metavar="DIR",
                    help="where per-device sensor calibration files are looked up")
    sp.add_argument("--compensation-deg", type=_positive_deg, default=COMPENSATION_DEG, metavar="DEG",
                    help=f"flag pelvic compensation when a pelvis angle changes more than this during a rotation "
                         f"trial (default {COMPENSATION_DEG:g})")
    sp.add_argument("--mdc-deg", type=_positive_deg, default=MDC_DEG, metavar="DEG",
                    help=f"minimal detectable change between a subject's sessions (default {MDC_DEG:g})")
    sp.add_argument("-f", "--force", action="store_true", help="replace existing output files")


def _positive_deg(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not (math.isfinite(v) and 0 < v < 90):
        raise argparse.ArgumentTypeError(f"{text!r} is not an angle in degrees between 0 and 90")
    return v


def _progress(paths: list[Path]):
    from hipimu.apps.cli import _Progress

    bar = _Progress(enabled=sys.stderr.isatty() and len(paths) > 1)
    for i, p in enumerate(paths):
        bar(i / len(paths), f"{i + 1}/{len(paths)} {p.name}")
        yield p
    bar(1.0, "done")
    bar.done()


def _analyse(args: argparse.Namespace, p: Path, batch: bool, failed: list[str]):
    """The analysed session, or None (batch: the reason added to ``failed``; else raised)."""
    from hipimu.apps.summary import analyse_session, session_label
    from hipimu.core.analysis import AnalysisOptions

    try:
        options = AnalysisOptions(compensation_rad=math.radians(args.compensation_deg),
                                  mdc_rad=math.radians(args.mdc_deg))
        return analyse_session(p, test=args.test, calibration_dir=args.calibration_dir, options=options,
                               label=session_label(p, args.session))
    except HipimuError as exc:
        if not batch:
            raise
        failed.append(str(exc).splitlines()[0])
    except Exception as exc:  # a damaged recording: say which, go on with the others
        if not batch:
            raise InputError(f"{p}: {type(exc).__name__}: {exc}") from exc
        failed.append(f"{p}: {type(exc).__name__}: {exc}")
    return None


def _finish(failed: list[str], n: int) -> int:
    for line in failed:
        print(f"hipimu: error: {line}", file=sys.stderr)
    if failed:
        print(f"hipimu: {len(failed)} of {n} sessions could not be analysed (listed above)", file=sys.stderr)
        return 1
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from hipimu.apps.cli import _refuse_existing
    from hipimu.apps.config import load_bands
    from hipimu.apps.summary import change_rows, find_sessions, subject_rows, summary_rows, write_csv

    paths = find_sessions(args.session)
    _refuse_existing([args.output], args.force, inputs=paths if len(paths) < 50 else [])
    bands = load_bands(args.bands)
    failed: list[str] = []
    rows: list[dict] = []
    notes: list[str] = []
    done = 0
    for p in _progress(paths):  # keep each session's rows, not its samples and angles: memory stays flat
        a = _analyse(args, p, args.session.is_dir(), failed)
        if a is not None:
            rows += summary_rows(a, bands)
            notes += [f"note: {a.name}: {note}" for note in a.analysis.notes]
            done += 1
    rows += subject_rows(rows)
    changes = change_rows(rows, args.mdc_deg)
    rows += changes
    if done:
        write_csv(rows, args.output, overwrite=args.force)
    counts = {k: sum(r["kind"] == k for r in rows) for k in ("trial", "rep", "reserve")}
    print(f"{done} session{'s' if done != 1 else ''}: {counts['trial']} trial rows, {counts['rep']} rep rows, "
          f"{counts['reserve']} IR reserve rows, {len(changes)} between-session change rows -> "
          f"{args.output if done else 'nothing written'}")
    for c in changes:
        if c["beyond_mdc"]:
            moved = ", ".join(f"{q.replace('_', ' ')} {c[q + '_deg']:+.1f}" for q in (t[:-1] for t in c["beyond_mdc"].split()))
            print(f"change: {c['subject_id']} {c['test']} {c['side']}: {moved} deg from {c['compared_with']} to "
                  f"{c['session']} (beyond the {args.mdc_deg:g} deg minimal detectable change)")
    for line in notes:
        print(line)
    return _finish(failed, len(paths))


def _recorded_utc(path: Path) -> str:
    """When the recording was made (its metadata only; "" when unreadable: the analysis will say why)."""
    from hipimu.storage.recording import load_session

    try:
        return load_session(path, roles=[]).info.created_utc or ""
    except Exception:
        return ""


def cmd_report(args: argparse.Namespace) -> int:
    from hipimu.apps.cli import _refuse_existing
    from hipimu.apps.config import load_bands
    from hipimu.apps.report import write_report
    from hipimu.apps.summary import change_rows, find_sessions, summary_rows

    paths = find_sessions(args.session)
    folder = args.session.is_dir()
    if folder:
        if args.output.exists() and not args.output.is_dir():
            raise InputError(f"{args.output}: for a folder of sessions the output is a folder (one PDF per session)")
        args.output.mkdir(parents=True, exist_ok=True)
        # one PDF per session, in the same subfolders (equal file names in different subfolders stay apart)
        outputs = [args.output / p.relative_to(args.session).with_suffix(".pdf") for p in paths]
        for out in outputs:
            out.parent.mkdir(parents=True, exist_ok=True)
    else:
        outputs = [args.output]
    _refuse_existing(outputs, args.force, inputs=paths if len(paths) < 50 else [])
    bands = load_bands(args.bands)
    failed: list[str] = []
    written = 0
    # a subject's sessions in recording order, so that each report can show the change since the previous one
    order = sorted(range(len(paths)), key=lambda i: (_recorded_utc(paths[i]), str(paths[i])))
    paths, outputs = [paths[i] for i in order], [outputs[i] for i in order]
    means: list[dict] = []  # the analysed sessions' mean rows (small), for the changes
    for p, out in zip(_progress(paths), outputs):
        a = _analyse(args, p, folder, failed)
        if a is None:
            continue
        mine = [r for r in summary_rows(a, bands) if r["kind"] == "mean"]
        changes = [c for c in change_rows([*(m for m in means if m["subject_id"] == a.subject_id), *mine], args.mdc_deg)
                   if c["session"] == a.name]
        means += mine
        pages = write_report(a, out, bands=bands, overwrite=args.force, changes=changes)
        written += 1
        if not folder:
            print(f"{pages} pages -> {out}")
    if folder:
        print(f"{written} reports -> {args.output}")
    return _finish(failed, len(paths))
