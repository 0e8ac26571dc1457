"""A simulated BlueZ on a private D-Bus, for tests that run bleak's real BlueZ backend.

:class:`SimulatedBlueZ` starts a private ``dbus-daemon`` (a system-bus-like
config that allows everything), runs the python-dbusmock template
``template.py`` on it under Debian's ``/usr/bin/python3`` (the template's
docstring is the reference of the simulation and of its test controls), and
makes sensor scripts from the simulated subject
(:func:`~hipimu.sources.simulate.simulate_session`): the IMU's sample
instants and its samples quantized to int16 counts with the board's scales
(:func:`~hipimu.sources.simulate.packets.config_for_device`,
:func:`~hipimu.sources.simulate.packets.quantize`). Each sensor's board logic is
the real firmware core (``firmware/build/libhipimu_core.so``).

Example::

    with SimulatedBlueZ() as sim, sim.activate():      # DBUS_SYSTEM_BUS_ADDRESS -> the private bus
        address = sim.add_sensor("pelvis", ci_s=0.015, clock_ppm=30)
        asyncio.run(my_bleak_code(address))            # bleak's BlueZ backend talks to the mock
        start = sim.truth(address)["starts"][-1]       # when the first streamed sample was taken
        expected = sim.expected_samples(address)       # script index, host time, device time, counts

Other processes: pass ``sim.env()`` (or ``DBUS_SYSTEM_BUS_ADDRESS=sim.bus_address``);
host times are ``time.monotonic()``, which is system-wide.

Sample rate: a script is made at ``rate_hz`` (208 by default). The board
decimates it for SET_RATE 104 and 52 (1:2 and 1:4, as the IMU's output data
rates are); a rate that is not an integer fraction of the script's streams the
script's samples at its own rate (``stats()["rate_mismatch"]``).
SET_RANGES away from the script's ranges rescales the counts (approximate).

Processes: both children get SIGTERM when the process that started them dies
(PR_SET_PDEATHSIG: start it from a thread that lives as long as it is used,
e.g. the main thread), :meth:`SimulatedBlueZ.close` (also ``__exit__`` and an
``atexit`` hook) kills them, and the mock exits by itself when its bus goes away.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import dataclasses
import functools
import json
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from hipimu.core.protocol import DeviceConfig, advertised_name
from hipimu.sources.simulate import packets as V
from hipimu.sources.simulate import simulate_session

__all__ = ["SimulatedBlueZ", "SimError", "SensorScript", "DEBIAN_PYTHON", "CONTROL_INTERFACE"]

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "template.py"
DEBIAN_PYTHON = "/usr/bin/python3"
CONTROL_INTERFACE = "org.hipimu.SimControl"
SCRIPT_MAGIC = b"HIPSCRP1"

_DAEMON_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
    <allow eavesdrop="true"/>
  </policy>
  <limit name="max_replies_per_connection">100000</limit>
</busconfig>
"""


class SimError(RuntimeError):
    """The simulated BlueZ could not start, or a control call failed."""


@dataclass(frozen=True)
class SensorScript:
    """What a simulated sensor's IMU measures.

    ``time_s``: sample instants in the simulated subject's time (script sample
    ``g`` is taken at host time ``epoch + (g // n) * lap_s + time_s[g % n]``);
    ``counts``: (n, 6 or 9) int16 at the ranges and scales of ``config`` (the
    board's config for this device at its MTU, as
    :func:`~hipimu.sources.simulate.packets.config_for_device` makes it).
    """

    role: str
    device_id: str
    config: DeviceConfig
    time_s: np.ndarray
    counts: np.ndarray
    rate_hz: float
    lap_s: float
    scenario: str
    seed: int
    mag: bool = False
    duration_s: float | None = None

    @property
    def n(self) -> int:
        return len(self.time_s)


# ---------------------------------------------------------------------------
# scripts from the simulated subject (cached per process)
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _session(scenario: str, seed: int, rate_hz: float, mag: bool, duration_s: float | None):
    session, truth = simulate_session(scenario, seed=seed, rate_hz=rate_hz, mag=mag, duration_s=duration_s)
    lap_s = max(float(b.time_s[-1]) for b in session.samples.values()) + 1.0 / rate_hz
    return session, truth, lap_s


@functools.lru_cache(maxsize=32)
def _role_script(scenario: str, seed: int, rate_hz: float, mag: bool, duration_s: float | None, role: str):
    session, _truth, lap_s = _session(scenario, seed, rate_hz, mag, duration_s)
    if role not in session.samples:
        raise SimError(f"scenario {scenario!r} has no sensor {role!r} (it has {', '.join(session.roles)})")
    block, info = session.samples[role], session.devices[role]
    config = V.config_for_device(info)
    parts = [V.quantize(block.acc_m_s2, config.acc_scale_m_s2), V.quantize(block.gyr_rad_s, config.gyr_scale_rad_s)]
    if mag:
        parts.append(V.quantize(block.mag_ut, config.mag_scale_ut))
    counts = np.ascontiguousarray(np.hstack(parts), dtype="<i2")
    counts.setflags(write=False)
    time_s = np.ascontiguousarray(block.time_s, dtype="<f8")
    time_s.setflags(write=False)
    return info, config, time_s, counts, lap_s


def _script_bytes(time_s: np.ndarray, counts: np.ndarray, config: DeviceConfig, rate_hz: float, lap_s: float) -> bytes:
    header = SCRIPT_MAGIC + np.array([len(time_s)], "<u4").tobytes() + bytes([counts.shape[1], config.acc_range_g]) \
        + np.array([config.gyr_range_dps], "<u2").tobytes() + np.array([rate_hz, lap_s], "<f8").tobytes()
    return header + time_s.tobytes() + counts.tobytes()


# ---------------------------------------------------------------------------
# process helpers
# ---------------------------------------------------------------------------

_prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, not in the forked child
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong]
_prctl.restype = ctypes.c_int


def _die_with_parent() -> None:  # runs in the child between fork and exec
    _prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, s (from /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _kill(proc: subprocess.Popen | None, timeout: float = 2.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


_LIVE: "weakref.WeakSet[SimulatedBlueZ]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for sim in list(_LIVE):
        sim.close()


# ---------------------------------------------------------------------------
# the harness
# ---------------------------------------------------------------------------


class _ControlClient:
    """A dbus-fast connection to the mock on its own thread and event loop, so
    that the harness's calls work from plain and from async code alike."""

    def __init__(self, address: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="simbluez-control", daemon=True)
        self.thread.start()
        self.bus = self._run(self._connect(address), 10.0)

    @staticmethod
    async def _connect(address: str):
        from dbus_fast.aio import MessageBus

        return await MessageBus(bus_address=address).connect()

    def _run(self, coro, timeout: float):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, member: str, signature: str = "", body: list | None = None, *, timeout: float = 10.0,
             destination: str = "org.bluez", path: str = "/", interface: str = CONTROL_INTERFACE):
        from dbus_fast import Message, MessageType

        msg = Message(destination=destination, path=path, interface=interface, member=member,
                      signature=signature, body=body or [])
        reply = self._run(self.bus.call(msg), timeout)
        if reply.message_type == MessageType.ERROR:
            raise SimError(f"{member}: {reply.error_name}: {reply.body[0] if reply.body else ''}")
        return reply.body

    def close(self) -> None:
        try:
            self.bus.disconnect()
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(2.0)
        if not self.thread.is_alive():
            self.loop.close()


class SimulatedBlueZ:
    """A private system bus with the simulated BlueZ (see the module docstring).

    Parameters
    ----------
    core_lib: the firmware core's shared library (default: ``make -C firmware
        lib`` in this source tree, then ``firmware/build/libhipimu_core.so``).
    adv_interval_s: how often advertising sensors refresh their RSSI while a
        discovery runs.
    temporary_timeout_s: an unconnected device not seen for this long is
        removed from BlueZ (bluetoothd's TemporaryTimeout, 30 s).
    epoch_s: host time (``time.monotonic()``) of script time 0 for all
        sensors; default: when the mock starts.
    start_timeout_s: how long start-up may take.
    """

    def __init__(self, *, core_lib: str | os.PathLike | None = None, adv_interval_s: float = 0.1,
                 temporary_timeout_s: float = 30.0, epoch_s: float | None = None,
                 start_timeout_s: float = 15.0) -> None:
        self.core_lib = Path(core_lib) if core_lib is not None else None
        self.adv_interval_s = adv_interval_s
        self.temporary_timeout_s = temporary_timeout_s
        self.epoch_s = epoch_s
        self.start_timeout_s = start_timeout_s
        self.bus_address = ""
        self.tmpdir: Path | None = None
        self.daemon: subprocess.Popen | None = None
        self.mock: subprocess.Popen | None = None
        self._client: _ControlClient | None = None
        self._scripts: dict[str, SensorScript] = {}
        self._device_ids: set[str] = set()
        self.startup_s = float("nan")

    # -- life cycle --------------------------------------------------------------

    def __enter__(self) -> "SimulatedBlueZ":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def start(self) -> "SimulatedBlueZ":
        """Start the bus and the mock; returns when the mock answers."""
        if self.mock is not None:
            return self
        t_start = time.monotonic()
        _LIVE.add(self)
        try:
            core_lib = self.core_lib or _ensure_core_lib()
            self.tmpdir = Path(tempfile.mkdtemp(prefix="hipimu-simbluez-"))
            self._start_daemon()
            params = {"core_lib": str(core_lib), "adv_interval_s": self.adv_interval_s,
                      "temporary_timeout_s": self.temporary_timeout_s}
            if self.epoch_s is not None:
                params["epoch_s"] = self.epoch_s
            env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and k != "VIRTUAL_ENV"}
            env.update(DBUS_SYSTEM_BUS_ADDRESS=self.bus_address, DBUS_SESSION_BUS_ADDRESS="disabled:")
            self.log_path = self.tmpdir / "mock.log"
            with open(self.tmpdir / "mock.err", "wb") as err:
                self.mock = subprocess.Popen(
                    [DEBIAN_PYTHON, "-m", "dbusmock", "--system", "-l", str(self.log_path), "-t", str(TEMPLATE),
                     "-p", json.dumps(params)],
                    env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                    preexec_fn=_die_with_parent, cwd=str(self.tmpdir))
            self._client = _ControlClient(self.bus_address)
            self._wait_ready(t_start + self.start_timeout_s)
        except BaseException:
            self.close()
            raise
        self.startup_s = time.monotonic() - t_start
        return self

    def _start_daemon(self) -> None:
        assert self.tmpdir is not None
        conf = self.tmpdir / "bus.conf"
        conf.write_text(_DAEMON_CONFIG.format(socket=self.tmpdir / "system_bus_socket"))
        dbus_daemon = shutil.which("dbus-daemon") or "/usr/bin/dbus-daemon"
        self.daemon = subprocess.Popen([dbus_daemon, "--nofork", "--nopidfile", f"--config-file={conf}",
                                        "--print-address=1"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, preexec_fn=_die_with_parent)
        assert self.daemon.stdout is not None
        ready, _, _ = select.select([self.daemon.stdout], [], [], self.start_timeout_s)
        line = self.daemon.stdout.readline().decode().strip() if ready else ""
        if not line.startswith("unix:"):
            err = self.daemon.stderr.read1(4096).decode(errors="replace") if self.daemon.poll() is not None else ""
            raise SimError(f"dbus-daemon did not start: {line!r} {err}")
        self.bus_address = line

    def _wait_ready(self, deadline: float) -> None:
        assert self._client is not None and self.mock is not None
        while True:
            if self.mock.poll() is not None:
                raise SimError(f"the simulated BlueZ exited ({self.mock.returncode}):\n{self.log_text()}")
            try:
                (pong,) = self._client.call("Ping", timeout=max(0.1, deadline - time.monotonic()))
                self.epoch_s = json.loads(pong)["epoch_s"]
                return
            except SimError as exc:
                if "ServiceUnknown" not in str(exc) and "NameHasNoOwner" not in str(exc):
                    raise
            if time.monotonic() > deadline:
                raise SimError(f"the simulated BlueZ did not answer in {self.start_timeout_s} s:\n{self.log_text()}")
            time.sleep(0.005)

    def close(self) -> None:
        """Stop the mock and the bus (idempotent); leaves no process behind."""
        if self._client is not None:
            self._client.close()
            self._client = None
        _kill(self.mock)
        _kill(self.daemon)
        for proc in (self.mock, self.daemon):
            if proc is not None:
                for stream in (proc.stdout, proc.stderr):
                    if stream is not None:
                        stream.close()
        self.mock = self.daemon = None
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None
        _LIVE.discard(self)

    def log_text(self, tail: int = 100) -> str:
        """The last lines of the mock's log and stderr (for failure messages)."""
        out = []
        for name in ("mock.log", "mock.err"):
            try:
                lines = (self.tmpdir / name).read_text(errors="replace").splitlines()  # type: ignore[operator]
            except (OSError, TypeError):
                continue
            out.append(f"--- {name}\n" + "\n".join(lines[-tail:]))
        return "\n".join(out)

    # -- environment -------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """Environment variables that point bleak (dbus-fast) at the private bus."""
        return {"DBUS_SYSTEM_BUS_ADDRESS": self.bus_address, "DBUS_SESSION_BUS_ADDRESS": "disabled:"}

    @contextlib.contextmanager
    def activate(self) -> Iterator["SimulatedBlueZ"]:
        """Set :meth:`env` in ``os.environ`` for the block (bleak reads it when it
        connects to the bus), restore the old values afterwards."""
        old = {k: os.environ.get(k) for k in self.env()}
        os.environ.update(self.env())
        try:
            yield self
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    @property
    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in (("mock", self.mock), ("daemon", self.daemon)) if p is not None}

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time used so far by the mock and by the bus daemon, s."""
        return {name: _cpu_seconds(pid) for name, pid in self.pids.items()}

    # -- control calls -----------------------------------------------------------

    def call(self, member: str, signature: str = "", *body: Any, timeout: float = 10.0) -> list:
        """A raw ``org.hipimu.SimControl`` call (see the template's docstring)."""
        if self._client is None:
            raise SimError("the simulated BlueZ is not running")
        return self._client.call(member, signature, list(body), timeout=timeout)

    async def run(self, fn, *args: Any, **kwargs: Any) -> Any:
        """``await sim.run(sim.drop_link, address, 2.0)``: any of the methods from a
        coroutine without blocking its event loop."""
        return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args, **kwargs))

    def add_sensor(self, who: str = "pelvis", *, scenario: str = "squat", seed: int = 0, rate_hz: float = 208.0,
                   mag: bool = False, duration_s: float | None = None, ci_s: float = 0.015, clock_ppm: float = 0.0,
                   clock_offset_s: float = 0.0, mtu: int = 247, battery: int = 100, rssi: int = -60,
                   advertise: bool = True, device_id: str | None = None, role: str | None = None,
                   name: str | None = None, imu: bool = True, link_seed: int | None = None,
                   script_from_start: bool = False, **link: Any) -> str:
        """Add a sensor and return its Bluetooth address.

        ``who``: a role of the scenario (``pelvis``, ``thigh_left``,
        ``thigh_right``), or a device id (16 hex digits; its script is then
        ``role``'s, default pelvis). The device id defaults to the simulated
        device's (hashed to 16 hex digits; made unique when a role is added
        twice). The script: ``simulate_session(scenario, seed=seed,
        rate_hz=rate_hz, mag=mag, duration_s=duration_s)`` (cached per
        process), the role's samples quantized at the board's scales.
        ``imu=False``: no IMU found (START answers ERR_NO_SENSOR).
        Script clock: by default all sensors share one subject clock (script
        time 0 at :attr:`epoch_s`; sensors of one session stay aligned and the
        motion goes on while a sensor is not streaming: a START streams from
        wherever the subject is); ``script_from_start=True``: every START of
        this sensor begins at script sample 0.
        Link and clock: ``ci_s``, ``clock_ppm``, ``clock_offset_s``, ``mtu``,
        ``battery``, ``rssi``, ``advertise``, ``name``, ``link_seed`` (the
        link's random phase and RSSI noise); ``**link``: more template
        parameters (``connect_delay_s``, ``discovery_delay_s``,
        ``connect_timeout_s``, ``packets_per_event``, ``settle_s``, ``rtc_hz``,
        ``address``, ``model``, ``fw_revision``, ``fw_version``).
        """
        if re.fullmatch(r"[0-9a-fA-F]{16}", who):
            device_id, role = who.lower(), role or "pelvis"
        else:
            role = who
        info, config, time_s, counts, lap_s = _role_script(scenario, int(seed), float(rate_hz), bool(mag),
                                                           None if duration_s is None else float(duration_s), role)
        if device_id is None:
            device_id = V.device_id_hex(info.device_id)
            k = 0
            while device_id in self._device_ids:
                k += 1
                device_id = V.device_id_hex(f"{info.device_id}#{k}")
        device_id = device_id.lower()
        if device_id in self._device_ids:
            raise SimError(f"device id {device_id} is in use")
        params: dict[str, Any] = {
            "device_id": device_id, "ci_s": ci_s, "clock_ppm": clock_ppm, "clock_offset_s": clock_offset_s,
            "mtu": mtu, "battery": battery, "rssi": rssi, "advertise": advertise,
            "seed": int(seed if link_seed is None else link_seed), "script_from_start": bool(script_from_start),
        }
        if name is not None:
            params["name"] = name
        params.update(link)
        script = None
        if imu:
            assert self.tmpdir is not None
            path = self.tmpdir / f"script-{device_id}.bin"
            path.write_bytes(_script_bytes(time_s, counts, config, float(rate_hz), lap_s))
            params["script"] = str(path)
        else:
            params["imu_ok"] = False
        (address,) = self.call("AddSensor", "s", json.dumps(params))
        self._device_ids.add(device_id)
        cfg = dataclasses.replace(config, device_id=device_id, mtu=mtu, streaming=False, battery_percent=battery,
                                  mag_enabled=False)
        if imu:
            script = SensorScript(role, device_id, cfg, time_s, counts, float(rate_hz), lap_s, scenario, int(seed),
                                  bool(mag), None if duration_s is None else float(duration_s))
            self._scripts[str(address)] = script
        return str(address)

    def remove_sensor(self, address: str) -> None:
        self.call("RemoveSensor", "s", address)
        self._scripts.pop(address, None)

    def drop_link(self, address: str, down_s: float, supervision_s: float = 0.0) -> None:
        """Lose the radio link now (an unexpected disconnect after
        ``supervision_s``); the sensor is unreachable for ``down_s`` s."""
        self.call("DropLink", "sdd", address, float(down_s), float(supervision_s))

    def inject(self, address: str, data: bytes, characteristic: str = "data") -> None:
        """Notify ``data`` as is on ``data``/``control``/``battery`` at the next connection event."""
        self.call("Inject", "says", address, bytes(data), characteristic)

    def set_advertising(self, address: str, on: bool) -> None:
        self.call("SetAdvertising", "sb", address, bool(on))

    def set_battery(self, address: str, percent: int) -> None:
        self.call("SetBattery", "sy", address, int(percent))

    def truth(self, address: str) -> dict:
        """The template's ``Truth``: clock parameters, every START (host time of
        its first sample, script index, stride), connections, link drops,
        TIME_SYNCs handled (host time, device time)."""
        (text,) = self.call("Truth", "s", address)
        return json.loads(text)

    def stats(self, address: str = "") -> dict:
        """The template's counters for one sensor (all sensors: ``address=""``)."""
        (text,) = self.call("Stats", "s", address)
        return json.loads(text)

    def ping(self) -> dict:
        (text,) = self.call("Ping")
        return json.loads(text)

    # -- truth helpers -------------------------------------------------------------

    def script(self, address: str) -> SensorScript:
        return self._scripts[address]

    def subject(self, address: str):
        """``(session, truth)`` of :func:`~hipimu.sources.simulate.simulate_session`
        that made this sensor's script (cached): the simulated samples and the
        ground-truth angles, in script time ``t`` = host time ``epoch_s + t``
        (+ ``k * lap_s`` on the k-th repetition; per START with
        ``script_from_start``: ``truth(address)["starts"][i]["epoch_host_s"]``)."""
        s = self._scripts[address]
        session, truth, _lap = _session(s.scenario, s.seed, s.rate_hz, s.mag, s.duration_s)
        return session, truth

    def name(self, address: str) -> str:
        return advertised_name(self._scripts[address].device_id)

    @staticmethod
    def device_us(truth: dict, host_s: np.ndarray | float) -> np.ndarray:
        """The sensor's device clock (us, 64-bit) at host times ``host_s``:
        the template's RTC model, same arithmetic."""
        t = np.asarray(host_s, dtype=np.float64)
        s = truth["clock_offset_s"] + (t - truth["boot_host_s"]) * (1.0 + truth["clock_ppm"] * 1e-6)
        rtc = int(truth["rtc_hz"])
        if rtc:
            return np.floor(s * rtc).astype(np.int64) * 1_000_000 // rtc
        return np.floor(s * 1e6).astype(np.int64)

    def expected_samples(self, address: str, start: int = -1, count: int | None = None,
                         truth: dict | None = None) -> dict[str, np.ndarray]:
        """The samples a START streamed (``start``: index into ``truth["starts"]``),
        in order: ``g`` (script sample number), ``index`` (into the script),
        ``host_s`` (true instant, host clock), ``device_us`` (the device time the
        board stamped), ``counts`` ((count, 6 or 9) int16 as the script has them).
        ``count`` defaults to the samples the board pushed so far."""
        truth = self.truth(address) if truth is None else truth
        st = truth["starts"][start]
        script = self._scripts[address]
        if count is None:
            count = st["samples_pushed"]
        g = st["first_sample"] + st["stride"] * np.arange(count, dtype=np.int64)
        lap, index = np.divmod(g, script.n)
        host_s = st.get("epoch_host_s", truth["epoch_host_s"]) + lap * truth["lap_s"] + script.time_s[index]
        counts = script.counts[index][:, : (9 if st["mag"] else 6)]
        return {"g": g, "index": index, "host_s": host_s, "device_us": self.device_us(truth, host_s),
                "counts": counts}


def _ensure_core_lib() -> Path:
    """``make -C firmware lib`` (quick when up to date) in this source tree."""
    root = HERE.parents[4]
    lib = root / "firmware" / "build" / "libhipimu_core.so"
    if os.environ.get("HIPIMU_CORE_LIB"):
        return Path(os.environ["HIPIMU_CORE_LIB"])
    if (root / "firmware" / "Makefile").exists():
        try:
            run = subprocess.run(["make", "-s", "-C", str(root / "firmware"), "lib"], capture_output=True, text=True,
                                 timeout=300)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SimError(f"make -C firmware lib could not run: {exc}") from exc
        if run.returncode != 0:
            raise SimError(f"make -C firmware lib failed:\n{run.stdout}\n{run.stderr}")
    if not lib.exists():
        raise SimError(f"the firmware core library {lib} is missing (make -C firmware lib)")
    return lib
