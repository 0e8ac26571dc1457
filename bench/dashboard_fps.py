"""Dashboard speed: frames per second and CPU, offscreen and under a real X server (Xvfb).

Each row runs the real window (1600 x 1000, the Test screen, both sides and
the pelvis drawn, 60 fps frame timer) in a child process of its own:

* ``live 3x208 Hz``: ``hipimu live --simulate``'s engine: three boards at
  208 Hz through the simulated bleak backend (which runs in the same
  process: the simulated radio and boards are counted in the process CPU),
  the BLE source, the recording, the live processor with the simulated
  clinician. Measured once the guided calibration has passed and angles flow
  (~36 s of warm-up);
* ``replay 1x``: a bundled recording played at 1x (the same drawing load:
  100 Hz angles per side; the pipeline ran before the window).

Columns: frames drawn per second (frames whose plots were redrawn), process
CPU in % of one core (all threads: radio, recording, angles, GUI) and the GUI
thread's share (``time.thread_time`` of the main thread: draining, drawing,
painting), peak RSS. The target (issue 6): 3 sensors x 208 Hz drawn at 60 fps
using < 0.5 core. Asserts nothing.

Run: .venv/bin/python bench/dashboard_fps.py [--duration S] [--only offscreen|xvfb]
(default 15 s per row after warm-up; about 2.5 minutes in all).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(source: str, duration_s: float) -> None:
    os.environ.setdefault("DBUS_SESSION_BUS_ADDRESS", "disabled:")
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from hipimu.apps.dashboard.model import DashboardModel
    from hipimu.apps.dashboard.window import MainWindow

    app = QApplication([])
    tmp = Path(tempfile.mkdtemp())
    if source == "live":
        from hipimu.apps.dashboard.engine import LiveEngine, LiveOptions

        controller = LiveEngine(LiveOptions(simulate=True, scenario="seated_rotation", autopilot=True, out_dir=tmp))
        model = DashboardModel()
    else:
        from hipimu.apps.dashboard.replay import ReplayEngine

        rec = tmp / "seated.hipimu"
        shutil.copy(ROOT / "recordings" / "sim_seated_rotation.hipimu", rec)
        controller = ReplayEngine(rec, start_s=40.0, playing=True)
        model = DashboardModel(mode="replay")
    window = MainWindow(model, controller, fps=60.0)
    window.resize(1600, 1000)
    window.show_screen("test")
    controller.start()
    window.show()
    state: dict = {}

    def start_measuring() -> None:
        state.update(t=time.perf_counter(), cpu=time.process_time(), gui=time.thread_time(),
                     frames=window.frames_drawn, now=model.now_s)
        QTimer.singleShot(int(duration_s * 1000), stop_measuring)

    def stop_measuring() -> None:
        wall = time.perf_counter() - state["t"]
        out = {"seconds": wall,
               "fps": (window.frames_drawn - state["frames"]) / wall,
               "cpu": 100 * (time.process_time() - state["cpu"]) / wall,
               "gui": 100 * (time.thread_time() - state["gui"]) / wall,
               "data_s": model.now_s - state["now"],
               "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        print("RESULT " + json.dumps(out), flush=True)
        window.close()
        app.quit()

    def wait_for_angles() -> None:  # warm-up: until angles flow (live: after the guided calibration)
        if model.now_s == model.now_s and len(model.pelvis) > 100:
            QTimer.singleShot(2000, start_measuring)
        else:
            QTimer.singleShot(200, wait_for_angles)

    wait_for_angles()
    app.exec()
    controller.close()


def start_xvfb() -> tuple[subprocess.Popen, str]:
    read, write = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                            pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as f:
        return proc, ":" + f.readline().strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=15.0)
    ap.add_argument("--only", choices=("offscreen", "xvfb"))
    ap.add_argument("--child", nargs=2, metavar=("SOURCE", "S"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], float(args.child[1]))
        return
    print(f"dashboard, 1600x1000, Test screen, 60 fps timer; {args.duration:g} s per row after warm-up "
          f"({os.cpu_count()} cores)")
    print(f"{'platform':<10} {'source':<14} {'frames/s':>8} {'process CPU %':>13} {'GUI thread %':>12} "
          f"{'data s/s':>8} {'RSS MB':>7}")
    for platform in ("offscreen", "xvfb"):
        if args.only and platform != args.only:
            continue
        xvfb, env = None, {**os.environ, "DBUS_SESSION_BUS_ADDRESS": "disabled:"}
        if platform == "xvfb":
            xvfb, display = start_xvfb()
            env.update(DISPLAY=display, QT_QPA_PLATFORM="xcb")
        else:
            env["QT_QPA_PLATFORM"] = "offscreen"
            env.pop("DISPLAY", None)
        try:
            for source, label in (("live", "live 3x208 Hz"), ("replay", "replay 1x")):
                p = subprocess.run([sys.executable, __file__, "--child", source, str(args.duration)], env=env,
                                   capture_output=True, text=True, timeout=300)
                lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
                if not lines:
                    print(f"{platform:<10} {label:<14} failed: {p.stderr.strip().splitlines()[-1:] }")
                    continue
                r = json.loads(lines[-1][7:])
                print(f"{platform:<10} {label:<14} {r['fps']:>8.1f} {r['cpu']:>13.0f} {r['gui']:>12.0f} "
                      f"{r['data_s'] / r['seconds']:>8.2f} {r['rss_mb']:>7.0f}", flush=True)
        finally:
            if xvfb is not None:
                xvfb.terminate()
                xvfb.wait(10)


if __name__ == "__main__":
    main()
