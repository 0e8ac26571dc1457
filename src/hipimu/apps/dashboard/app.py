"""The dashboard application: ``hipimu live`` and ``hipimu replay``.

Creates the QApplication (offscreen when there is no display and only a
screenshot is wanted), the model, the window and the controller; with
``--screenshot PATH --quit-after S`` it saves a PNG of the window after S
seconds and exits 0 (tests, README images).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Callable

from hipimu.errors import InputError

__all__ = ["add_parsers", "run", "has_display", "NO_DISPLAY_HELP"]

NO_DISPLAY_HELP = ("no display to open the dashboard on (DISPLAY is not set): run it under a virtual X server, "
                   "e.g. 'xvfb-run -a hipimu live --simulate', or save a picture with "
                   "'--screenshot out.png --quit-after 20'")

SCREENS = ("sensors", "session", "calibration", "test", "results")

#: ``--simulate --scenario NAME``: the calibration the virtual subject does (the others: the routine).
SIMULATED_CALIBRATION = {"sitting_rotation": "seated", "walk": "walk"}


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or \
        os.environ.get("QT_QPA_PLATFORM", "") in ("offscreen", "minimal")


def _common(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--screen", choices=SCREENS, help="the screen to open on")
    sp.add_argument("--bands", type=Path, metavar="FILE", help="target bands (JSON, see docs/dashboard.md)")
    sp.add_argument("--screenshot", type=Path, metavar="PNG", help="save a picture of the window and exit (see --quit-after)")
    sp.add_argument("--quit-after", type=float, metavar="S", help="close after S seconds (with --screenshot: take it then; default 5)")
    sp.add_argument("--fps", type=float, default=60.0, help="frames per second drawn")


def add_parsers(add: Callable[..., argparse.ArgumentParser]) -> None:
    from hipimu.apps._ble import _add_role_options
    from hipimu.apps.cli import _window
    from hipimu.core.orientation import FILTERS
    from hipimu.sources.simulate import SCENARIOS

    body = [s for s in SCENARIOS if not s.startswith("sensor_")]
    sp = add("live", cmd_live, "the live dashboard: sensors, calibration, tests",
             "Open the dashboard for a live session: find and assign the sensors, enter the session, follow the "
             "guided calibration, run seated/prone rotation tests, squats or free recording with live hip rotation, "
             "pelvic tilt, peak hold and a quality light. Every session is recorded (see --out-dir).\n\n"
             "--simulate: no hardware: three virtual boards on the virtual subject over a simulated radio; a "
             "simulated clinician starts the session, zeroes and runs the trials at the subject's pace "
             "(--manual: you do).")
    sp.add_argument("--simulate", action="store_true", help="virtual boards on the virtual subject (no hardware)")
    sp.add_argument("--scenario", default="seated_rotation", choices=body, metavar="NAME", help="with --simulate: what the subject does")
    sp.add_argument("--seed", type=int, default=0, metavar="N", help="with --simulate: random seed")
    sp.add_argument("--speed", type=float, metavar="X", help="with --simulate: stream the simulator directly, X times real time (no radio)")
    sp.add_argument("--manual", action="store_true", help="with --simulate: no simulated clinician")
    sp.add_argument("--calibration", choices=("routine", "seated", "walk"), metavar="METHOD",
                    help="the guided calibration: routine (standing, default), seated (cannot stand) or walk; "
                         "switchable on the calibration screen (with --simulate the default follows --scenario: "
                         "sitting_rotation is seated, walk is walk)")
    _add_role_options(sp)
    sp.add_argument("--rate", type=int, default=208, choices=(52, 104, 208), metavar="HZ", help="sampling rate")
    sp.add_argument("--mag", action="store_true", help="stream the magnetometers too (9D)")
    sp.add_argument("--out-dir", type=Path, default=Path("sessions"), metavar="DIR", help="where sessions are recorded")
    _common(sp)

    sp = add("replay", cmd_replay, "replay a recorded session in the dashboard",
             "Open a recording in the dashboard: play/pause, 0.25x-4x, scrub along the timeline with its events, "
             "the same views as live, recompute with other calibration windows or another filter, export the angles "
             "(or a selection) as CSV.")
    sp.add_argument("session", type=Path, help="recording (.hipimu)")
    sp.add_argument("--speed", type=float, default=1.0, choices=(0.25, 0.5, 1.0, 2.0, 4.0), metavar="X", help="playback speed")
    sp.add_argument("--at", type=float, metavar="S", help="start at this session time")
    sp.add_argument("--paused", action="store_true", help="start paused")
    sp.add_argument("--filter", default="vqf", choices=list(FILTERS), help="orientation filter")
    sp.add_argument("--static", type=_window, metavar="A:B", help="standing window (s), with --functional")
    sp.add_argument("--functional", type=_window, metavar="C:D", help="movement window (s), with --static")
    sp.add_argument("--calibration-dir", type=Path, default=Path("calibration"), metavar="DIR", help="where per-device sensor calibration files are looked up")
    _common(sp)


def cmd_live(args: argparse.Namespace) -> int:
    from hipimu.apps.dashboard.engine import LiveEngine, LiveOptions
    from hipimu.apps.dashboard.model import DashboardModel, load_bands

    if args.speed is not None and not (args.simulate and 0 < args.speed <= 50):
        raise InputError("--speed needs --simulate and a value in (0, 50]")
    refs = {r: getattr(args, r) for r in ("pelvis", "thigh_right", "thigh_left") if getattr(args, r, None)}
    method = args.calibration or (SIMULATED_CALIBRATION.get(args.scenario, "routine") if args.simulate else "routine")
    options = LiveOptions(simulate=args.simulate, scenario=args.scenario, seed=args.seed, refs=refs or None,
                          rate_hz=args.rate, mag=args.mag, out_dir=args.out_dir,
                          autopilot=args.simulate and not args.manual, speed=args.speed, calibration_method=method)
    model = DashboardModel(bands=load_bands(args.bands), mode="live")
    return run(model, LiveEngine(options), args, screen=args.screen or ("calibration" if options.autopilot else "sensors"))


def cmd_replay(args: argparse.Namespace) -> int:
    from hipimu.apps.dashboard.model import DashboardModel, load_bands
    from hipimu.apps.dashboard.replay import ReplayEngine
    from hipimu.core.pipeline import PipelineOptions

    if not args.session.is_file():
        raise InputError(f"{args.session}: no such recording")
    if (args.static is None) != (args.functional is None):
        raise InputError("give both --static A:B and --functional C:D, or neither")
    from hipimu.storage.recording import load_session

    session = load_session(args.session)  # a file that is not a recording: one line, exit 2, no window
    options = PipelineOptions(method=args.filter, static=args.static, functional=args.functional)
    engine = ReplayEngine(args.session, session=session, options=options, calibration_dir=args.calibration_dir, speed=args.speed,
                          start_s=args.at, playing=not args.paused)
    model = DashboardModel(bands=load_bands(args.bands), mode="replay")
    return run(model, engine, args, screen=args.screen or "test")


def run(model: Any, controller: Any, args: argparse.Namespace, *, screen: str) -> int:
    """Open the window on ``controller`` until it is closed (or ``--quit-after``)."""
    shot = args.screenshot
    quit_after = args.quit_after if args.quit_after is not None else (5.0 if shot else None)
    if quit_after is not None and not quit_after > 0:
        raise InputError("--quit-after must be positive")
    if shot is not None and not shot.parent.is_dir():
        raise InputError(f"{shot.parent}: no such directory")
    if not has_display():
        if shot is None:
            raise InputError(NO_DISPLAY_HELP)
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    os.environ.setdefault("DBUS_SESSION_BUS_ADDRESS", "disabled:")
    from PySide6.QtCore import QTimer, qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    def qt_message(_mode: object, _context: object, message: str) -> None:
        if "propagateSizeHints" not in message:  # the offscreen platform's note on window hints: noise
            print(f"qt: {message}", file=sys.stderr)

    qInstallMessageHandler(qt_message)

    from hipimu.apps.dashboard.window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow(model, controller, fps=args.fps)
    window.show_screen(screen)
    window.resize(1600, 1000)
    controller.start()
    window.show()
    failed: list[str] = []

    def finish() -> None:
        window.tick()
        if shot is not None:
            window.grab_png(shot)
        if getattr(controller, "failed", None):
            failed.append(controller.failed)
        window.close()
        app.quit()

    if quit_after is not None:
        QTimer.singleShot(int(quit_after * 1000), finish)
    try:
        app.exec()
    finally:
        controller.close()
    if failed:
        print(f"hipimu: error: {failed[0]}", file=sys.stderr)
        return 2
    if shot is not None:
        print(f"screenshot: {shot}")
    return 0
