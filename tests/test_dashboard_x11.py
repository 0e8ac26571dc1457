"""The dashboard under a real X server (Xvfb), through Qt's xcb platform.

`hipimu replay ... --screenshot` runs against a private Xvfb; the window's
own picture and a capture of the X server's root window (xwd) must both show
something. `make test` installs xvfb, x11-apps (xwd) and the xcb libraries.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import png_is_not_blank

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def xvfb():
    exe = shutil.which("Xvfb")
    assert exe and shutil.which("xwd"), "Xvfb and xwd are missing: 'make test' installs them (xvfb, x11-apps)"
    read, write = os.pipe()
    proc = subprocess.Popen([exe, "-displayfd", str(write), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                            pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    try:
        with os.fdopen(read) as f:
            display = f":{f.readline().strip()}"
        assert display != ":", "Xvfb did not start"
        yield display
    finally:
        proc.terminate()
        proc.wait(10)


def xwd_pixels(path: Path) -> np.ndarray:
    """The pixel bytes of an XWD file (header: 25 big-endian uint32, then the window
    name, the colormap, the pixels)."""
    data = path.read_bytes()
    header = struct.unpack(">25I", data[:100])
    header_size, ncolors = header[0], header[19]
    return np.frombuffer(data[header_size + 12 * ncolors:], dtype=np.uint8)


def test_replay_draws_on_a_real_x_server(xvfb, tmp_path):
    rec = tmp_path / "seated.hipimu"
    shutil.copy(ROOT / "recordings" / "sim_seated_rotation.hipimu", rec)
    shot = tmp_path / "window.png"
    env = {**os.environ, "DISPLAY": xvfb, "QT_QPA_PLATFORM": "xcb", "DBUS_SESSION_BUS_ADDRESS": "disabled:"}
    proc = subprocess.Popen([sys.executable, "-m", "hipimu", "replay", str(rec), "--at", "60", "--paused",
                             "--screenshot", str(shot), "--quit-after", "6"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    root = tmp_path / "root.xwd"
    captured = None
    t_end = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < t_end:  # capture the screen while the window is up
        time.sleep(0.5)
        subprocess.run(["xwd", "-root", "-display", xvfb, "-silent", "-out", str(root)], check=True, timeout=20)
        pixels = xwd_pixels(root)
        if pixels.std() > 10:
            captured = pixels
            break
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert png_is_not_blank(shot, 800, 600)
    assert captured is not None, "the X server's screen stayed blank"
    assert len(np.unique(captured)) > 16
