"""'hipimu record', 'scan' and 'assign' in demo mode: the BLE source on the
simulated bleak backend (hipimu.sources.ble.simbackend), in process and as a
command; clock alignment with +-100 ppm clocks and 7.5-50 ms connection
intervals; Ctrl-C; identify by shaking."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from hipimu.apps._ble import record_session
from hipimu.core.model import SessionInfo
from hipimu.core.timing import timing_stats
from hipimu.sources.ble._bleak import Backend
from hipimu.sources.ble.roles import SensorRef
from hipimu.sources.ble.simbackend import SimulatedWorld
from hipimu.sources.ble.source import BleSource
from hipimu.storage.recording import load_session

from conftest import inter_sensor_alignment_s

ROLES = ("pelvis", "thigh_right", "thigh_left")


def hipimu(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "hipimu", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def config_dir(tmp_path, monkeypatch):
    d = tmp_path / "config"
    monkeypatch.setenv("HIPIMU_CONFIG_DIR", str(d))
    return d


@pytest.mark.parametrize("ci_ms,ppm", [
    ({"pelvis": 7.5, "thigh_right": 50.0, "thigh_left": 30.0}, {"pelvis": 100.0, "thigh_right": -100.0, "thigh_left": 0.0}),
    ({"pelvis": 50.0, "thigh_right": 7.5, "thigh_left": 15.0}, {"pelvis": -100.0, "thigh_right": 100.0, "thigh_left": 55.0}),
])
def test_sensors_align_within_a_millisecond(tmp_path, ci_ms, ppm):
    world = SimulatedWorld.default(seed=3, ci_ms=ci_ms, clock_ppm=ppm)
    boards = {b.role: b for b in world.boards.values()}
    refs = {r: SensorRef.parse(boards[r].device_id) for r in ROLES}
    source = BleSource(refs, backend=Backend(*world.backends()))
    path = tmp_path / "s.hipimu"

    async def main():
        await world.ready()
        return await record_session(source, path, SessionInfo(), duration_s=8.0)

    result = asyncio.run(asyncio.wait_for(main(), 90))
    s = load_session(path)
    t0 = s.results["clock_sync"]["pelvis"]["t0_host_s"]
    for r, blk in s.samples.items():
        assert timing_stats(blk.device_time_s).gaps == 0, r
        assert result.stats[r]["loss_percent"] == 0.0
    worst = inter_sensor_alignment_s(
        s, lambda r, dev: np.array([boards[r]._host_time_of(d * 1e6) for d in dev]) - t0)
    assert worst < 1e-3, f"inter-sensor alignment {worst * 1e3:.2f} ms"


def test_record_simulate_command(tmp_path, config_dir):
    out = tmp_path / "s.hipimu"
    p = hipimu("record", "--simulate", "--duration", "3", "--stats-every", "1", "--subject", "P01", "-o", str(out))
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("recording ") >= 2  # live statistics
    assert "pelvis" in p.stdout and "streaming" in p.stdout
    s = load_session(out)
    assert sorted(s.samples) == sorted(ROLES)
    assert s.info.subject_id == "P01" and s.info.source == "ble-simulated" and s.info.sides == ("left", "right")
    for r, blk in s.samples.items():
        assert len(blk) > 2.5 * 208, r
        assert blk.device_time_s is not None and np.all(np.diff(blk.time_s) > 0)
        assert s.devices[r].rate_hz == 208.0
    assert set(s.results) >= {"clock_sync", "link_stats"}
    assert s.results["link_stats"]["pelvis"]["samples"] == len(s.samples["pelvis"])
    # refuses to overwrite
    p = hipimu("record", "--simulate", "--duration", "1", "-o", str(out))
    assert p.returncode == 2 and "already exists" in p.stderr


def test_ctrl_c_stops_cleanly_with_everything_flushed(tmp_path, config_dir):
    out = tmp_path / "s.hipimu"
    proc = subprocess.Popen([sys.executable, "-m", "hipimu", "record", "--simulate", "--stats-every", "0.5", "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "recording     2" not in (proc.stdout.readline() or "recording     2"):
            pass
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert "recorded" in stdout
    s = load_session(out)
    assert "clock_sync" in s.results  # the clean end ran: re-timed and closed
    n = {r: len(b) for r, b in s.samples.items()}
    assert min(n.values()) > 1.5 * 208 and max(n.values()) - min(n.values()) < 40, n
    assert sorted(os.listdir(tmp_path)) == ["config", "s.hipimu"] or sorted(os.listdir(tmp_path)) == ["s.hipimu"]


def test_no_sensors_assigned_is_one_line(tmp_path, config_dir):
    p = hipimu("record", "-o", str(tmp_path / "s.hipimu"))
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1
    assert "no sensors assigned" in p.stderr and "hipimu assign" in p.stderr


def test_assign_by_shaking_remembers_each_board_in_its_role(tmp_path, config_dir):
    p = hipimu("assign", "--shake", "--simulate", "--seed", "4")
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("Shake the sensor") == 3
    world = SimulatedWorld(seed=4, prepare=False)  # the same boards, without simulating the subject
    truth = {b.role: b.device_id for b in world.boards.values()}
    doc = json.loads((config_dir / "sensors.json").read_text())
    assert doc["roles"] == truth
    p = hipimu("assign", "--show")
    assert all(dev in p.stdout for dev in truth.values())


def test_assign_explicit_ids_and_scan_shows_roles(tmp_path, config_dir):
    world = SimulatedWorld.default(seed=0)
    ids = {b.role: b.device_id for b in world.boards.values()}
    p = hipimu("assign", "--pelvis", ids["thigh_left"], "--thigh-left", ids["pelvis"])
    assert p.returncode == 0, p.stderr
    p = hipimu("scan", "--simulate", "--timeout", "2")
    assert p.returncode == 0, p.stderr
    rows = {line.split()[0]: line for line in p.stdout.splitlines()[1:]}
    assert len(rows) == 3
    assert rows[f"hipimu-{ids['thigh_left'][-4:]}"].rstrip().endswith("pelvis")
    assert rows[f"hipimu-{ids['pelvis'][-4:]}"].rstrip().endswith("thigh_left")
    p = hipimu("assign", "--pelvis", "b677")
    assert p.returncode == 2 and "full device ids" in p.stderr


def test_assign_moves_a_board_to_its_new_role(tmp_path, config_dir):
    world = SimulatedWorld(seed=0, prepare=False)
    ids = {b.role: b.device_id for b in world.boards.values()}
    assert hipimu("assign", "--pelvis", ids["pelvis"], "--thigh-left", ids["thigh_left"]).returncode == 0
    p = hipimu("assign", "--thigh-left", ids["pelvis"])  # the pelvis board is now worn on the left thigh
    assert p.returncode == 0, p.stderr
    assert json.loads((config_dir / "sensors.json").read_text())["roles"] == {"thigh_left": ids["pelvis"]}

