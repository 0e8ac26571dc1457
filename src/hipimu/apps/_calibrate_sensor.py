"""``hipimu calibrate-sensor``: per-device sensor calibration files from recordings.

:func:`add_parser` registers the subcommand on the main parser's subparsers.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from hipimu.core.conventions import GRAVITY_M_S2, ROLES
from hipimu.errors import InputError

__all__ = ["add_parser", "cmd_calibrate_sensor"]

DESCRIPTION = """\
Estimate each sensor board's gyro bias and accelerometer offset and gain
(and, with --mag, magnetometer hard and soft iron) and write one file per
board: FOLDER/<device-id>.json. hipimu finds the file by the board's device
id, whatever role the board has in a later session.

RECORDING: the boards lying still in six orientations, each sensor axis up
and then down (~5 s still per pose, turned by hand in between; several boards
may lie side by side). The poses are found automatically; their order does
not matter.
--mag RECORDING2: the boards turned slowly through all directions for about
a minute, away from metal (boards are matched by device id).

Nothing is written unless every selected board calibrates. The file format
is described in calibration/README.md.

examples:
  hipimu simulate --scenario sensor_six_pose --seed 3 -o six.hipimu
  hipimu calibrate-sensor six.hipimu
  hipimu simulate --scenario sensor_mag_turns --seed 3 --mag -o turns.hipimu
  hipimu calibrate-sensor six.hipimu --mag turns.hipimu --role pelvis --force"""

DEG = 180.0 / math.pi
MG = GRAVITY_M_S2 / 1000.0


def add_parser(subparsers: argparse._SubParsersAction, formatter_class: type[argparse.HelpFormatter]) -> argparse.ArgumentParser:
    """Register ``calibrate-sensor`` on ``subparsers``; returns its parser."""
    from hipimu.storage.sensor_calibration_files import DEFAULT_FOLDER

    sp = subparsers.add_parser(
        "calibrate-sensor",
        help="per-device sensor calibration from a six-pose recording",
        description=DESCRIPTION,
        formatter_class=formatter_class,
    )
    sp.add_argument("recording", type=Path, metavar="RECORDING", help="recording (.hipimu) of the boards lying still in six orientations")
    who = sp.add_mutually_exclusive_group()
    who.add_argument("--device", metavar="ID", help="calibrate only the board with this device id")
    who.add_argument("--role", choices=list(ROLES), metavar="ROLE", help=f"calibrate only the board in this role ({', '.join(ROLES)})")
    sp.add_argument("--mag", type=Path, metavar="RECORDING2", help="recording of the boards turned slowly through all directions: also calibrate the magnetometer")
    sp.add_argument("-o", "--output", type=Path, default=DEFAULT_FOLDER, metavar="FOLDER", help="folder for the <device-id>.json files (created if missing)")
    sp.add_argument("--gravity", type=float, default=GRAVITY_M_S2, metavar="M_S2", help="local gravity, m/s^2 (sets the absolute accelerometer scale only)")
    sp.add_argument("-f", "--force", action="store_true", help="replace existing calibration files")
    sp.set_defaults(func=cmd_calibrate_sensor)
    return sp


def _select(session, recording: Path, device: str | None, role: str | None) -> list[tuple[str, str]]:
    """(role, device id) of the boards to calibrate."""
    boards = []
    for r in session.roles:
        dev = session.devices.get(r)
        if dev is None or not dev.device_id:
            if role in (None, r) and device is None:
                raise InputError(f"{recording}: sensor {r} has no device id, so its calibration could not be found later")
            continue
        boards.append((r, dev.device_id))
    listing = ", ".join(f"{d} ({r})" for r, d in boards) or "none"
    if role is not None:
        boards = [(r, d) for r, d in boards if r == role]
        if not boards:
            raise InputError(f"{recording}: no sensor in role {role} (boards: {listing})")
    elif device is not None:
        boards = [(r, d) for r, d in boards if d == device]
        if not boards:
            raise InputError(f"{recording}: no board with device id {device!r} (boards: {listing})")
    if not boards:
        raise InputError(f"{recording}: no sensor samples")
    ids = [d for _, d in boards]
    dup = sorted({d for d in ids if ids.count(d) > 1})
    if dup:
        raise InputError(f"{recording}: device id {dup[0]!r} appears in more than one role")
    return boards


def _row(label: str, v: np.ndarray, unit: str, fmt: str = "{:+9.3f}") -> str:
    return f"  {label:<16}" + "".join(fmt.format(x) for x in v) + f"   {unit}"


def _table(role: str, cal, path: Path) -> str:
    q = cal.quality
    lines = [
        f"{cal.device_id} ({role}): {q['poses']} poses, {q['still_segments']} still segments, "
        f"{q['still_s']:.1f} s still -> {path}",
        f"  {'':<16}{'x':>9}{'y':>9}{'z':>9}",
        _row("gyro bias", cal.gyr_bias_rad_s * DEG, "deg/s"),
        _row("acc offset", cal.acc_offset_m_s2 / MG, "mg", "{:+9.2f}"),
        _row("acc scale error", cal.acc_scale_error() * 100.0, "%"),
    ]
    off = cal.acc_gain - np.diag(np.diag(cal.acc_gain))
    if q.get("acc_model") == "symmetric":
        lines.append(f"  acc cross-axis   up to {100 * np.max(np.abs(off)):.3f} % (symmetric gain)")
    dof = q["acc_fit_dof"]
    fit_note = "exact fit: as many parameters as still segments" if dof <= 0 else f"{dof} spare segments"
    lines.append(
        f"  residual |acc|-g {q['acc_residual_rms_m_s2'] / MG:.2f} mg RMS ({q['acc_model']} gain; {fit_note}); "
        f"gyro bias spread {q['gyr_bias_std_rad_s'] * DEG:.3f} deg/s"
    )
    lines.append(f"  noise            gyro {q['gyr_noise_rad_s'] * DEG:.3f} deg/s, acc {q['acc_noise_m_s2'] / MG:.2f} mg (per axis, RMS)")
    if cal.has_mag:
        lines.append(_row("mag hard iron", cal.mag_hard_iron_ut, "uT", "{:+9.2f}"))
        lines.append(_row("mag soft iron", np.diag(cal.mag_soft_iron), "(diagonal)", "{:9.4f}"))
        lines.append(
            f"  mag field        {cal.mag_field_strength_ut:.1f} uT, residual {q['mag_residual_rms_ut']:.2f} uT RMS, "
            f"{100 * q['mag_coverage']:.0f} % of directions covered"
        )
    return "\n".join(lines)


def cmd_calibrate_sensor(args: argparse.Namespace) -> int:
    from hipimu.core.sensor_calibration import estimate_from_still_poses, estimate_mag
    from hipimu.storage.recording import load_session
    from hipimu.storage.sensor_calibration_files import calibration_path, save_sensor_calibration

    if not (math.isfinite(args.gravity) and 9.7 < args.gravity < 9.9):
        raise InputError(f"--gravity {args.gravity} m/s^2 is not Earth's gravity (expected 9.7-9.9)")
    out: Path = args.output
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: is not a folder")
    session = load_session(args.recording)
    boards = _select(session, args.recording, args.device, args.role)

    mag_blocks = {}
    if args.mag is not None:
        mag_session = load_session(args.mag)
        by_id = {d.device_id: r for r, d in mag_session.devices.items() if r in mag_session.samples}
        for r, dev_id in boards:
            mr = by_id.get(dev_id)
            if mr is None:
                raise InputError(f"{args.mag}: has no samples of board {dev_id!r} ({r} in {args.recording})")
            if mag_session.samples[mr].mag_ut is None:
                raise InputError(f"{args.mag}: board {dev_id!r} ({mr}) has no magnetometer samples")
            mag_blocks[dev_id] = mag_session.samples[mr]

    for _, dev_id in boards:  # fail before any work
        p = calibration_path(dev_id, out)
        if p.exists() and not args.force:
            raise InputError(f"{p}: already exists (use --force to replace it)")

    cals = []
    for r, dev_id in boards:
        source = {"recording": args.recording.name, "role": r, "recording_created_utc": session.info.created_utc}
        try:
            cal = estimate_from_still_poses(session.samples[r], g=args.gravity, device_id=dev_id, source=source)
            if dev_id in mag_blocks:
                cal = cal.with_mag(estimate_mag(mag_blocks[dev_id]))
                cal.source["mag_recording"] = args.mag.name
        except InputError as exc:
            raise InputError(f"{dev_id} ({r}): {exc}") from exc
        if session.info.simulated:
            cal.source["simulated"] = True
        cals.append((r, cal))

    for i, (r, cal) in enumerate(cals):
        path = save_sensor_calibration(cal, out, overwrite=args.force)
        if i:
            print()
        print(_table(r, cal, path))
    print(f"\nwrote {len(cals)} calibration file{'s' if len(cals) != 1 else ''} to {out}/")
    return 0
