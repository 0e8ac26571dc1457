"""A recording process for the crash test: streams 3 simulated sensors at real
time into a recording and prints, after every append, the last time appended.
The test kills it with SIGKILL and checks what the file holds."""

import sys
import time

import numpy as np

from hipimu.core.model import DeviceInfo, Event, SampleBlock, SessionInfo
from hipimu.storage.recording import RecordingWriter

path, rate_hz, pace = sys.argv[1], float(sys.argv[2]), sys.argv[3] == "realtime"
roles = ["pelvis", "thigh_left", "thigh_right"]
block = 10
rng = np.random.default_rng(1)
with RecordingWriter(path, SessionInfo(subject_id="crash-test"), flush_interval_s=0.5) as rec:
    for r in roles:
        rec.add_device(DeviceInfo(f"dev-{r}", r, rate_hz))
    rec.add_event(Event(0.0, "marker", "start"))
    k = 0
    t_start = time.monotonic()
    while True:
        t = (k + np.arange(block)) / rate_hz
        for r in roles:
            rec.append(SampleBlock(r, t, rng.normal(size=(block, 3)), rng.normal(size=(block, 3)), seq=k + np.arange(block)))
        k += block
        if pace or k % 1000 == block:  # fast mode: keep the pipe from filling up
            print(f"{t[-1]:.6f}", flush=True)
        if pace:
            delay = t_start + k / rate_hz - time.monotonic()
            if delay > 0:
                time.sleep(delay)
