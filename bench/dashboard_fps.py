"""The dashboard's frame rate and CPU: offscreen and on a real X server (Xvfb).

For each platform (Qt ``offscreen``; ``xcb`` on an Xvfb 1600x1000x24 that this
script starts) and each source, a child process (fresh Qt state) opens the real
:class:`~hipimu.apps.dashboard.window.MainWindow` (60 fps frame timer, 1600x1000,
the "test" screen: three time-series plots and the big numbers) the way
``hipimu live`` / ``hipimu replay`` do, then measures ``--duration`` s:

* ``live BLE``: ``LiveEngine(LiveOptions(simulate=True, autopilot=True))``:
  three virtual boards x 208 Hz in real time through the simulated bleak
  backend (its own threads), the simulated clinician at the controls. The
  warm-up lasts until angles flow (``model.now_s`` finite: the scan, the
  connection and the ~35 s guided calibration); the warm-up is reported too
  (``live BLE (calibrating)``, from 1 s after the window opened), then the
  measured window starts 2 s after the first angles;
* ``replay 1x``: ``ReplayEngine`` playing a copy of
  ``recordings/sim_seated_rotation.hipimu`` at 1x (2 s after the first frame);
* ``live sim 1x`` (only with ``--sources live-direct``): the simulator
  streamed directly, no radio (``LiveOptions(simulate=True, speed=1.0)``).

Columns: frames/s: frames in which the plots were redrawn
(``window.frames_drawn``); ticks/s: frame-timer calls of ``window.tick``
(the timer's 17 ms interval caps it at ~59/s); process CPU %: of one core,
all threads (``time.process_time`` / wall); GUI thread %: the main thread's
CPU, ``tick`` and Qt's painting (``time.thread_time`` in the main thread);
tick %: CPU inside ``tick`` only (``time.thread_time`` around each call,
summed); angles %, BLE %: the live engine's processing thread (orientation
filters, calibration, angles) and its Bluetooth thread (bleak, decoding, the
recording, and here the simulated boards and radio), from /proc (- in
replay); ms/frame: tick CPU per drawn frame (- when under one frame a
second); RSS MB: the child's peak RSS.

The issue's target: 3 sensors x 208 Hz drawn at 60 fps using < 0.5 core.
Prints a table and asserts nothing (timing depends on the machine).
``--profile`` prints the child's GUI-thread cProfile (top functions by
cumulative time) over each measured window.

Run: .venv/bin/python bench/dashboard_fps.py [--duration S] [--platforms offscreen,xvfb]
     [--sources live,replay,live-direct] [--profile]
(default 20 s per row, ~3 minutes in all; Xvfb from Debian's xvfb, see Makefile).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORDING = ROOT / "recordings" / "sim_seated_rotation.hipimu"
SIZE = (1600, 1000)
LABELS = {"live": "live BLE", "live-direct": "live sim 1x", "replay": "replay 1x"}


# -- the child: one window, one source ------------------------------------------------------------

#: the engines' threads whose CPU the table shows (threading names -> column)
THREADS = {"hipimu-angles": "angles", "hipimu-ble": "ble"}


def thread_cpu() -> dict[str, float]:
    """CPU seconds so far of the engines' threads (Linux: /proc/self/task/TID/stat utime + stime)."""
    import threading

    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for th in threading.enumerate():
        name = THREADS.get(th.name)
        if name is None or th.native_id is None:
            continue
        try:
            fields = Path(f"/proc/self/task/{th.native_id}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out

def child(platform: str, source: str, duration: float, warmup_max: float, profile: bool) -> int:
    os.environ["QT_QPA_PLATFORM"] = "offscreen" if platform == "offscreen" else "xcb"
    os.environ["DBUS_SESSION_BUS_ADDRESS"] = "disabled:"
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from hipimu.apps.dashboard.model import DashboardModel, load_bands
    from hipimu.apps.dashboard.window import MainWindow

    tmp = Path(tempfile.mkdtemp(prefix="hipimu-fps-"))
    if source == "replay":
        from hipimu.apps.dashboard.replay import ReplayEngine

        rec = tmp / RECORDING.name
        shutil.copy2(RECORDING, rec)
        controller = ReplayEngine(rec, speed=1.0, playing=True)
        model = DashboardModel(bands=load_bands(None), mode="replay")
    else:
        from hipimu.apps.dashboard.engine import LiveEngine, LiveOptions

        controller = LiveEngine(LiveOptions(simulate=True, scenario="seated_rotation", autopilot=True,
                                            out_dir=tmp / "sessions", speed=1.0 if source == "live-direct" else None))
        model = DashboardModel(bands=load_bands(None), mode="live")

    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow(model, controller, fps=60.0)
    counts = {"ticks": 0, "tick_cpu": 0.0}
    tick = window.tick

    def timed_tick() -> None:
        t = time.thread_time()
        tick()
        counts["tick_cpu"] += time.thread_time() - t
        counts["ticks"] += 1

    window.timer.timeout.disconnect()
    window.timer.timeout.connect(timed_tick)
    window.tick = timed_tick  # type: ignore[method-assign]
    window.show_screen("test")
    window.resize(*SIZE)
    controller.start()
    window.show()

    def snap() -> dict:
        return {"wall": time.monotonic(), "cpu": time.process_time(), "gui": time.thread_time(),
                "frames": window.frames_drawn, **counts, **{f"thr:{k}": v for k, v in thread_cpu().items()}}

    def row(a: dict, b: dict, label: str) -> dict:
        s = b["wall"] - a["wall"]
        frames = b["frames"] - a["frames"]
        return {"platform": platform, "source": label, "seconds": s, "fps": frames / s,
                "ticks": (b["ticks"] - a["ticks"]) / s, "cpu": 100 * (b["cpu"] - a["cpu"]) / s,
                "gui": 100 * (b["gui"] - a["gui"]) / s, "tick": 100 * (b["tick_cpu"] - a["tick_cpu"]) / s,
                "ms_frame": 1000 * (b["tick_cpu"] - a["tick_cpu"]) / frames if frames > s else math.nan,
                **{k[4:]: 100 * (b.get(k, 0.0) - a.get(k, 0.0)) / s for k in ("thr:angles", "thr:ble")}}

    rows: list[dict] = []
    state: dict = {"phase": "open", "t0": time.monotonic()}
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()

    def flowing() -> bool:
        return math.isfinite(model.now_s) if source != "replay" else window.frames_drawn > 0

    def poll() -> None:  # every 100 ms, on the GUI thread
        nonlocal profiler
        now = time.monotonic()
        phase = state["phase"]
        if phase == "open" and now - state["t0"] >= 1.0:
            state.update(phase="warm", warm=snap())
        elif phase == "warm" and flowing():
            if source != "replay":
                rows.append(row(state["warm"], snap(), LABELS[source] + " (calibrating)"))
            state.update(phase="settle", t_flow=now)
        elif phase == "warm" and now - state["t0"] > warmup_max:
            rows.append({"platform": platform, "source": LABELS[source], "error": f"no angles in {warmup_max:.0f} s"})
            state["phase"] = "done"
        elif phase == "settle" and now - state["t_flow"] >= 2.0:
            state.update(phase="measure", start=snap())
            if profiler is not None:
                profiler.enable()
        elif phase == "measure" and now - state["start"]["wall"] >= duration:
            if profiler is not None:
                profiler.disable()
            rows.append(row(state["start"], snap(), LABELS[source]))
            state["phase"] = "done"
        if state["phase"] == "done":
            poller.stop()
            window.close()
            app.quit()

    poller = QTimer()
    poller.setInterval(100)
    poller.timeout.connect(poll)
    poller.start()
    try:
        app.exec()
    finally:
        controller.close()
        shutil.rmtree(tmp, ignore_errors=True)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for r in rows:
        r["rss"] = rss
        print("RESULT " + json.dumps(r), flush=True)
    if profiler is not None:
        import io
        import pstats

        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
        print(f"-- cProfile, GUI thread, {platform} {LABELS[source]}, {duration:.0f} s --")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:8000])
    return 0


# -- the parent: Xvfb, children, table ------------------------------------------------------------

def start_xvfb(log: Path) -> tuple[subprocess.Popen, str]:
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        raise SystemExit("Xvfb not found: 'make apt' installs Debian's xvfb (or pass --platforms offscreen)")
    read_fd, write_fd = os.pipe()
    with open(log, "wb") as f:
        proc = subprocess.Popen([xvfb, "-displayfd", str(write_fd), "-screen", "0", f"{SIZE[0]}x{SIZE[1]}x24",
                                 "-nolisten", "tcp", "-br", "-noreset"],
                                pass_fds=(write_fd,), stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        number = pipe.readline().strip()
    if not number:
        proc.kill()
        proc.wait()
        raise SystemExit(f"Xvfb did not start: {log.read_text(errors='replace')[-2000:]}")
    return proc, f":{int(number)}"


def run_child(platform: str, source: str, args: argparse.Namespace, display: str | None) -> list[dict]:
    env = dict(os.environ)
    env.pop("WAYLAND_DISPLAY", None)
    env["DBUS_SESSION_BUS_ADDRESS"] = "disabled:"
    if display is None:
        env.pop("DISPLAY", None)
    else:
        env["DISPLAY"] = display
    cmd = [sys.executable, __file__, "--child", platform, source, "--duration", str(args.duration),
           "--warmup-max", str(args.warmup_max)] + (["--profile"] if args.profile else [])
    limit = args.warmup_max + args.duration + 60
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        return [{"platform": platform, "source": LABELS[source], "error": f"timed out after {limit:.0f} s"}]
    rows = [json.loads(line[7:]) for line in p.stdout.splitlines() if line.startswith("RESULT ")]
    if args.profile:
        print("\n".join(line for line in p.stdout.splitlines() if not line.startswith("RESULT ")))
    if p.returncode != 0 or not rows:
        rows.append({"platform": platform, "source": LABELS[source],
                     "error": f"exit {p.returncode}: {(p.stderr.strip().splitlines() or [''])[-1][:100]}"})
    return rows


def _pct(value: float | None) -> str:
    return "-" if not value else f"{value:.0f}"


def _ms(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=20.0, help="measured seconds per row (default 20)")
    ap.add_argument("--platforms", default="offscreen,xvfb", help="comma list of offscreen, xvfb")
    ap.add_argument("--sources", default="live,replay", help="comma list of live, replay, live-direct")
    ap.add_argument("--warmup-max", type=float, default=90.0, help="give up on live angles after S s")
    ap.add_argument("--profile", action="store_true", help="print the GUI thread's cProfile per row")
    ap.add_argument("--child", nargs=2, metavar=("PLATFORM", "SOURCE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(*args.child, duration=args.duration, warmup_max=args.warmup_max, profile=args.profile)

    platforms = [p for p in args.platforms.split(",") if p]
    sources = [s for s in args.sources.split(",") if s]
    if set(platforms) - {"offscreen", "xvfb"} or set(sources) - set(LABELS):
        ap.error("unknown platform or source")
    print(f"dashboard window {SIZE[0]}x{SIZE[1]}, 60 fps timer, 'test' screen; {args.duration:g} s per row; "
          f"{os.cpu_count()} CPUs")
    head = (f"{'platform':<10}{'source':<26}{'seconds':>8}{'frames/s':>9}{'ticks/s':>8}{'proc CPU %':>11}"
            f"{'GUI thr %':>10}{'tick %':>8}{'angles %':>9}{'BLE %':>7}{'ms/frame':>9}{'RSS MB':>8}")
    results: list[dict] = []
    for platform in platforms:
        xvfb, display = None, None
        tmp = Path(tempfile.mkdtemp(prefix="hipimu-fps-x-"))
        try:
            if platform == "xvfb":
                xvfb, display = start_xvfb(tmp / "xvfb.log")
            for source in sources:
                results += run_child(platform, source, args, display)
        finally:
            if xvfb is not None:
                xvfb.send_signal(signal.SIGTERM)
                try:
                    xvfb.wait(10)
                except subprocess.TimeoutExpired:
                    xvfb.kill()
                    xvfb.wait()
            shutil.rmtree(tmp, ignore_errors=True)
    print(head)
    print("-" * len(head))
    for r in results:
        if "error" in r:
            print(f"{r['platform']:<10}{r['source']:<26}  error: {r['error']}")
            continue
        print(f"{r['platform']:<10}{r['source']:<26}{r['seconds']:>8.1f}{r['fps']:>9.1f}{r['ticks']:>8.1f}"
              f"{r['cpu']:>11.0f}{r['gui']:>10.0f}{r['tick']:>8.0f}{_pct(r.get('angles')):>9}{_pct(r.get('ble')):>7}"
              f"{_ms(r['ms_frame']):>9}{r['rss']:>8.0f}")
    print("target (issue): 3 sensors x 208 Hz drawn at 60 fps using < 0.5 core (proc CPU % < 50)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
