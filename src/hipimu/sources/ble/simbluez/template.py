"""hipimu's simulated BlueZ: a python-dbusmock template whose sensors run the REAL firmware core.

Run by Debian's ``/usr/bin/python3`` (dbus-python, PyGObject, python3-dbusmock;
no numpy, no hipimu) on a private bus::

    DBUS_SYSTEM_BUS_ADDRESS=... /usr/bin/python3 -m dbusmock --system -t template.py -p '{"core_lib": "..."}'

``hipimu.sources.ble.simbluez.harness.SimulatedBlueZ`` does all of that; this
docstring is the reference of what the mock does.

BlueZ as bleak (BlueZ backend) sees it
--------------------------------------
* ``/org/bluez/hci0``: ``org.bluez.Adapter1`` (Powered, Roles with "central",
  Discovering); StartDiscovery / StopDiscovery / SetDiscoveryFilter per D-Bus
  client like bluetoothd (one discovery per client: a second StartDiscovery is
  ``InProgress``; StopDiscovery without one is ``Failed``; a client leaving the
  bus ends its discovery); filters UUIDs, RSSI and Pattern are applied;
  RemoveDevice; GetDiscoveryFilters.
* A sensor is exported as ``/org/bluez/hci0/dev_XX_..`` (``org.bluez.Device1``:
  Address (random static, from the device id), AddressType, Name = Alias =
  ``hipimu-xxxx``, UUIDs with the hipimu service, RSSI, AdvertisingFlags,
  Connected, ServicesResolved, Paired/Bonded/Trusted false) the first time a
  running discovery sees it advertise. While a discovery runs, every advertising
  sensor's RSSI (``rssi`` +- 2 dB) is refreshed each ``adv_interval_s``
  (PropertiesChanged, which is what bleak's scanner reports). When the last
  discovery stops, RSSI is invalidated (as bluetoothd does). A device not
  connected and not seen for ``temporary_timeout_s`` is removed
  (InterfacesRemoved), like bluetoothd's temporary devices.
* Device1.Connect: after ``connect_delay_s`` Connected=true; after another
  ``discovery_delay_s`` the GATT objects are exported (InterfacesAdded), UUIDs
  gets every service, ServicesResolved=true, and only then does Connect reply
  (as bluetoothd does for LE). A sensor that is unreachable (``DropLink``
  down time) or not advertising keeps the Connect pending -- bluetoothd keeps
  trying -- until it is reachable again (then it connects), until Disconnect
  cancels it (``org.bluez.Error.Failed: Operation canceled``) or until
  ``connect_timeout_s`` (``org.bluez.Error.Failed: le-connection-timeout``).
  None of these is ``le-connection-abort-by-local`` (bleak loops on that one
  waiting for a Connected change). A second Connect while one is pending:
  ``org.bluez.Error.InProgress``; Connect while connected: success.
  Disconnect: the link ends at the next connection event (ServicesResolved
  and Connected false, GATT objects removed), then Disconnect replies.
* GATT (PROTOCOL.md): Device Information ``service000a`` (manufacturer
  ``char000b``, model ``char000d``, serial = device id ``char000f``, firmware
  revision ``char0011``), Battery ``service0013`` (level ``char0014`` read +
  notify, CCCD ``desc0016``), hipimu ``service0017`` (data ``char0018`` notify,
  CCCD ``desc001a``; control ``char001b`` write + notify, CCCD ``desc001d``;
  config ``char001e`` read). Characteristics carry ``MTU`` (BlueZ >= 5.62: the
  negotiated ATT MTU; bleak's ``max_write_without_response_size`` is MTU - 3)
  and notify ones ``Notifying`` and ``NotifyAcquired``.
  ReadValue / WriteValue / StartNotify / AcquireNotify (CCCD writes) are ATT
  requests: sent at the next connection event, answered one connection event
  later, one at a time (ATT allows one outstanding request). A ReadValue also
  updates the cached ``Value`` with a PropertiesChanged (as bluetoothd does: a
  read of a subscribed characteristic, e.g. the battery level, reaches a
  StartNotify callback too). WriteValue with ``type=command`` on the control
  characteristic (no write-without-response): NotSupported. StartNotify twice
  from one client: InProgress; StopNotify without a session: Failed; a client
  leaving the bus loses its notify sessions (the CCCD is written off when
  none is left). AcquireNotify returns a SOCK_SEQPACKET socket and the MTU
  (bleak's ``use_start_notify=False`` path and ``BleakClient._backend._acquire_mtu()``);
  closing it releases the acquisition. AcquireWrite: NotSupported (no
  write-without-response characteristic), so bleak's ``_acquire_mtu`` uses
  AcquireNotify on a notify characteristic.

The board
---------
Each sensor is one ``hip_device`` of the real firmware core
(``firmware/build/libhipimu_core.so`` through ``firmware_core.py``), driven
like ``firmware/board/hipimu_sensor/hipimu_sensor.ino`` drives it:

* identity: device id, fw version, LSM6DS3TR-C found (``imu_ok``; false when
  the sensor has no script), LIS3MDL found iff the script has magnetometer
  values, battery; ``att_mtu`` = the sensor's ``mtu`` while connected, 23 otherwise;
* control writes -> ``hip_handle_command`` at the device time of the
  connection event that carried the write; the response is notified on the
  control characteristic at the next connection event (if subscribed), after
  the write's own response; writes are cut to 33 bytes (HIP_BLE_REQUEST_MAX);
* config reads -> ``hip_encode_config`` when the read is handled;
* START: the IMU starts; samples taken during the first ``settle_s`` (0.1 s,
  HIP_IMU_SETTLE_US) are skipped like the board does; each later sample is
  ``hip_fifo_push``-ed with the device time of its true instant; at every
  connection event the samples whose instants have passed are pushed and, if
  the data CCCD is on, ``hip_next_packet`` is called until it returns nothing
  or the event's budget (``packets_per_event``, 6) is used up; every packet is
  one notification (PropertiesChanged on Value, or a write on the acquired
  socket). Without a data subscription the FIFO fills and the core counts drops;
* the link ends (Disconnect, DropLink) -> STOP, like the board;
* battery: ``SetBattery`` changes it (the board notifies the level when it changes).

Clocks. Host time is ``time.monotonic()`` (system-wide: other processes can
compare). The device clock is an RTC: ``device_s = clock_offset_s + (T - boot)
* (1 + clock_ppm * 1e-6)`` for host instant ``T`` (``boot``: when the sensor
was added), in whole ticks of ``rtc_hz`` (32768, like the nRF52 RTC; 0: exact
microseconds), read in microseconds as the firmware does (ticks * 15625 / 512,
rounded down). TIME_SYNC answers the device time of the connection event that
delivered it.

The script (the IMU's samples). A file written by the harness: sample
instants ``time_s`` (the simulated subject's time, carrying the IMU's own
phase and rate error) and int16 counts (6 or 9 per sample) at the script's
ranges. Script sample ``g`` (counting across repetitions: lap ``g // n``,
index ``g % n``) is taken at host time ``epoch + (g // n) * lap_s +
time_s[g % n]``; ``epoch`` is shared by all sensors (the mock's start unless
given), so sensors made from one simulated session stay aligned, and the
motion simply goes on while a sensor is not streaming. A START streams
script samples ``g0, g0 + stride, ...``: ``g0`` the first sample after the
settle time, ``stride`` = script rate / device rate (a 208 Hz script serves
SET_RATE 208, 104 and 52 by decimation, as the IMU's ODRs are 1:2:4; other
ratios stream at the script's rate and count ``rate_mismatch``). With
``script_from_start`` a sensor's epoch moves to each START instead, so that
it streams from script sample 0. After SET_RANGES
to other ranges than the script's, counts are rescaled to the new ranges
(``range_mismatch`` counts it; values then differ from a direct
quantization by up to one count). ``Truth`` reports every START.

Link model. A connection has a connection interval ``ci_s`` (15 ms, the
board's) and a random phase; everything the sensor sends (packets, responses,
ATT responses) leaves at connection events only, on the host clock.
``DropLink(address, down_s, supervision_s)``: the radio link is lost now:
nothing more is delivered, after ``supervision_s`` (0: at once) Connected
goes false (an unexpected disconnect: bleak calls ``disconnected_callback``);
the sensor STOPs like the board does, stops advertising and cannot be
connected for ``down_s`` seconds from now.

Test controls: ``org.hipimu.SimControl`` on ``/``
-------------------------------------------------
All take and return JSON strings where structured.

* ``Ping() -> s``: ``{"monotonic": ..., "epoch_s": ..., "version": 1}``.
* ``AddSensor(s params) -> s address``. ``params``: ``device_id`` (16 hex
  digits, required), ``script`` (path; none: no IMU found), ``name``,
  ``address``, ``ci_s`` (0.015; 0.0075 .. 4), ``clock_ppm`` (0),
  ``clock_offset_s`` (0), ``rtc_hz`` (32768), ``mtu`` (247; 23 .. 517),
  ``battery`` (100), ``rssi`` (-60), ``advertise`` (true), ``seed`` (0; link
  phase and RSSI noise), ``connect_delay_s`` (0.02), ``discovery_delay_s``
  (0.03), ``connect_timeout_s`` (20), ``packets_per_event`` (6),
  ``settle_s`` (0.1), ``epoch_s`` (the mock's), ``script_from_start``
  (false; true: every START begins at script sample 0, the sensor's own
  ``epoch`` moving to that START), ``fw_version`` ([0, 1, 0]),
  ``model`` ("XIAO nRF52840 Sense"), ``fw_revision`` ("0.1.0").
* ``RemoveSensor(s address)``.
* ``DropLink(s address, d down_s, d supervision_s)``.
* ``Inject(s address, ay data, s characteristic)``: ``data`` is notified as is
  on ``data`` / ``control`` / ``battery`` at the next connection event
  (if that characteristic is subscribed; else counted in ``inject_dropped``).
* ``SetAdvertising(s address, b on)``, ``SetBattery(s address, y percent)``.
* ``Truth(s address) -> s``: ``{boot_host_s, epoch_host_s, lap_s,
  script_rate_hz, script_n, clock_offset_s, clock_ppm, rtc_hz, now_host_s,
  now_device_us, starts: [{host_s, device_us, epoch_host_s, first_sample, first_index,
  first_lap, first_host_s, first_device_us, stride, rate_hz, mag,
  samples_pushed, stop_host_s}], connections: [{host_s, ci_s,
  first_event_host_s, end_host_s, end_reason}], link_drops: [...],
  time_syncs: [{host_s, device_us}], data_packets: [[event_host_s,
  emitted_host_s, t0_us], ...] (the last 4096 packets)}``.
* ``Stats(s address) -> s``: counters (``packets_sent``, ``samples_pushed``,
  ``device_drops``, ``notifications``, ``injected``, ``connects``,
  ``link_drops``, ``events``, ``max_event_lag_s``, ...); ``""``: all sensors.
"""

import array
import bisect
import ctypes
import importlib.util
import json
import math
import os
import random
import socket
import struct
import time
from collections import deque

import dbus
import dbus.lowlevel
import dbus.service
from dbusmock import mockobject
from gi.repository import GLib

BUS_NAME = "org.bluez"
MAIN_OBJ = "/"
SYSTEM_BUS = True
IS_OBJECT_MANAGER = True

CONTROL_IFACE = "org.hipimu.SimControl"
ADAPTER_IFACE = "org.bluez.Adapter1"
DEVICE_IFACE = "org.bluez.Device1"
SERVICE_IFACE = "org.bluez.GattService1"
CHAR_IFACE = "org.bluez.GattCharacteristic1"
DESC_IFACE = "org.bluez.GattDescriptor1"
PROPS_IFACE = "org.freedesktop.DBus.Properties"
OM_IFACE = "org.freedesktop.DBus.ObjectManager"
ADAPTER_PATH = "/org/bluez/hci0"


def _sig(short):
    return "0000%04x-0000-1000-8000-00805f9b34fb" % short


SERVICE_UUID = "7e1a0001-5c6b-4e8f-9a2d-3b4c5d6e7f80"
DATA_UUID = "7e1a0002-5c6b-4e8f-9a2d-3b4c5d6e7f80"
CONTROL_UUID = "7e1a0003-5c6b-4e8f-9a2d-3b4c5d6e7f80"
CONFIG_UUID = "7e1a0004-5c6b-4e8f-9a2d-3b4c5d6e7f80"
CCCD_UUID = _sig(0x2902)

SCRIPT_MAGIC = b"HIPSCRP1"
SCRIPT_HEADER = struct.Struct("<8sIBBHdd")  # magic, n, axes, acc_range_g, gyr_range_dps, rate_hz, lap_s
REQUEST_MAX = 33  # HIP_BLE_REQUEST_MAX
ATT_MTU_DEFAULT = 23


def _error(name, message):
    return dbus.exceptions.DBusException(message, name=name)


def _failed(message):
    return _error("org.bluez.Error.Failed", message)


def _load_core_module():
    """firmware_core.py next to this file, loaded by path (importing the hipimu
    package would pull numpy, which Debian's python3 does not have)."""
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location("hipimu_simbluez_firmware_core", os.path.join(here, "firmware_core.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _norm_uuid(u):
    u = str(u).lower()
    if len(u) == 4:
        return _sig(int(u, 16))
    if len(u) == 8:
        return u + "-0000-1000-8000-00805f9b34fb"
    return u


# ---------------------------------------------------------------------------
# Test controls (methods of the main mock object "/")
# ---------------------------------------------------------------------------


def load(mock, parameters):
    mock.sim = Sim(mock, parameters or {})


@dbus.service.method(CONTROL_IFACE, in_signature="", out_signature="s")
def Ping(self):
    return json.dumps({"monotonic": time.monotonic(), "epoch_s": self.sim.epoch, "version": 1})


@dbus.service.method(CONTROL_IFACE, in_signature="s", out_signature="s")
def AddSensor(self, params):
    return self.sim.add_sensor(json.loads(str(params)))


@dbus.service.method(CONTROL_IFACE, in_signature="s", out_signature="")
def RemoveSensor(self, address):
    self.sim.sensor(address).remove()


@dbus.service.method(CONTROL_IFACE, in_signature="sdd", out_signature="")
def DropLink(self, address, down_s, supervision_s):
    self.sim.sensor(address).drop_link(float(down_s), float(supervision_s))


@dbus.service.method(CONTROL_IFACE, in_signature="says", out_signature="")
def Inject(self, address, data, characteristic):
    self.sim.sensor(address).inject(bytes(data), str(characteristic) or "data")


@dbus.service.method(CONTROL_IFACE, in_signature="sb", out_signature="")
def SetAdvertising(self, address, on):
    self.sim.sensor(address).set_advertising(bool(on))


@dbus.service.method(CONTROL_IFACE, in_signature="sy", out_signature="")
def SetBattery(self, address, percent):
    self.sim.sensor(address).set_battery(int(percent))


@dbus.service.method(CONTROL_IFACE, in_signature="s", out_signature="s")
def Truth(self, address):
    return json.dumps(self.sim.sensor(address).truth())


@dbus.service.method(CONTROL_IFACE, in_signature="s", out_signature="s")
def Stats(self, address):
    if not address:
        return json.dumps({a: s.stats_dict() for a, s in self.sim.sensors.items()})
    return json.dumps(self.sim.sensor(address).stats_dict())


# ---------------------------------------------------------------------------
# The simulation
# ---------------------------------------------------------------------------


class Sim:
    def __init__(self, mock, params):
        self.mock = mock
        self.bus_name = mock.bus_name
        self.bus = mock.bus_name.get_bus()
        self.core = _load_core_module()
        self.lib = self.core.load(params.get("core_lib") or None)
        self.epoch = float(params.get("epoch_s") or time.monotonic())
        self.adv_interval = float(params.get("adv_interval_s", 0.1))
        self.temporary_timeout = float(params.get("temporary_timeout_s", 30.0))
        self.sensors = {}  # address -> Sensor
        self.discovery = {}  # D-Bus sender -> its discovery filter (only senders that started one)
        self.filters = {}  # D-Bus sender -> filter set with SetDiscoveryFilter
        self.adapter = Adapter(self)
        self.bus.add_signal_receiver(self._name_owner_changed, signal_name="NameOwnerChanged",
                                     dbus_interface="org.freedesktop.DBus", bus_name="org.freedesktop.DBus",
                                     path="/org/freedesktop/DBus")
        GLib.timeout_add(max(1, int(self.adv_interval * 1000)), self._adv_tick)
        GLib.timeout_add(1000, self._housekeeping)
        for p in params.get("sensors", []):
            self.add_sensor(p)

    def log(self, msg):
        self.mock.log(msg)

    # -- signals -------------------------------------------------------------

    def emit(self, path, iface, member, signature, *args):
        msg = dbus.lowlevel.SignalMessage(path, iface, member)
        msg.append(*args, signature=signature)
        self.bus.send_message(msg)

    def props_changed(self, path, iface, changed, invalidated=()):
        self.emit(path, PROPS_IFACE, "PropertiesChanged", "sa{sv}as", iface,
                  dbus.Dictionary(changed, signature="sv"), dbus.Array(invalidated, signature="s"))

    def export(self, obj):
        self.emit("/", OM_IFACE, "InterfacesAdded", "oa{sa{sv}}", dbus.ObjectPath(obj.path),
                  dbus.Dictionary(obj.props, signature="sa{sv}"))

    def unexport(self, obj):
        self.emit("/", OM_IFACE, "InterfacesRemoved", "oas", dbus.ObjectPath(obj.path),
                  dbus.Array(list(obj.props), signature="s"))
        obj.drop()

    # -- sensors ---------------------------------------------------------------

    def add_sensor(self, params):
        sensor = Sensor(self, params)
        if sensor.address in self.sensors:
            raise _error("org.hipimu.SimControl.Error.Exists", "sensor %s exists" % sensor.address)
        self.sensors[sensor.address] = sensor
        self.log("sensor %s added (%s)" % (sensor.address, sensor.name))
        return sensor.address

    def sensor(self, address):
        try:
            return self.sensors[str(address).upper()]
        except KeyError:
            raise _error("org.hipimu.SimControl.Error.NoSuchSensor", "no sensor %s" % address) from None

    def sensor_by_path(self, path):
        for s in self.sensors.values():
            if s.path == path:
                return s
        return None

    # -- discovery ---------------------------------------------------------------

    def start_discovery(self, sender):
        if sender in self.discovery:
            raise _error("org.bluez.Error.InProgress", "Operation already in progress")
        first = not self.discovery
        self.discovery[sender] = self.filters.get(sender, {})
        for s in self.sensors.values():
            s.needs_report = True
        if first:
            self.adapter.set("Discovering", dbus.Boolean(True))
        GLib.idle_add(self._adv_tick_once)  # the first advertisements arrive at once

    def stop_discovery(self, sender):
        if sender not in self.discovery:
            raise _failed("No discovery started")
        self._end_discovery(sender)

    def _end_discovery(self, sender):
        self.discovery.pop(sender, None)
        if not self.discovery:
            self.adapter.set("Discovering", dbus.Boolean(False))
            for s in self.sensors.values():  # bluetoothd drops the RSSI of devices it no longer hears
                if s.device is not None and not s.connected and "RSSI" in s.device.props[DEVICE_IFACE]:
                    del s.device.props[DEVICE_IFACE]["RSSI"]
                    self.props_changed(s.path, DEVICE_IFACE, {}, ["RSSI"])

    def set_filter(self, sender, flt):
        parsed = {}
        for k, v in flt.items():
            if k == "UUIDs":
                parsed["UUIDs"] = {_norm_uuid(u) for u in v}
            elif k in ("RSSI", "Pathloss"):
                parsed[k] = int(v)
            elif k in ("Transport", "Pattern"):
                parsed[k] = str(v)
            elif k in ("DuplicateData", "Discoverable"):
                parsed[k] = bool(v)
            else:
                raise _error("org.bluez.Error.InvalidArguments", "Invalid arguments in method call")
        if parsed:
            self.filters[sender] = parsed
        else:
            self.filters.pop(sender, None)
        if sender in self.discovery:
            self.discovery[sender] = parsed

    @staticmethod
    def _matches(flt, sensor, rssi):
        uuids = flt.get("UUIDs")
        if uuids and SERVICE_UUID not in uuids:
            return False
        if "RSSI" in flt and rssi < flt["RSSI"]:
            return False
        pattern = flt.get("Pattern")
        if pattern and not (sensor.address.startswith(pattern.upper()) or sensor.name.startswith(pattern)):
            return False
        return True

    def _adv_tick_once(self):
        self._adv_tick()
        return False

    def _adv_tick(self):
        if not self.discovery:
            return True
        now = time.monotonic()
        for s in list(self.sensors.values()):
            if not s.advertising(now):
                continue
            rssi = s.rssi_base + s.rng.randint(-2, 2)
            if not any(self._matches(f, s, rssi) for f in self.discovery.values()):
                continue
            s.last_seen = now
            s.stats["advertisements"] += 1
            if s.device is None:
                s.export_device(rssi)
            elif s.needs_report or s.device.props[DEVICE_IFACE].get("RSSI") != rssi:
                s.device.set("RSSI", dbus.Int16(rssi))
            s.needs_report = False
        return True

    def _housekeeping(self):
        now = time.monotonic()
        for s in list(self.sensors.values()):
            if (s.device is not None and not s.connected and not s.pending_connect
                    and now - s.last_seen > self.temporary_timeout):
                self.log("device %s not seen for %.0f s: removed" % (s.address, now - s.last_seen))
                s.unexport_device()
        return True

    def _name_owner_changed(self, name, old, new):
        name = str(name)
        if new or not name.startswith(":"):
            return
        self.filters.pop(name, None)
        if name in self.discovery:
            self._end_discovery(name)
        for s in self.sensors.values():
            s.client_gone(name)


# ---------------------------------------------------------------------------
# D-Bus objects
# ---------------------------------------------------------------------------


class _Obj(dbus.service.Object):
    """An exported object: ``props`` (interface -> name -> dbus-typed value) is
    what dbusmock's GetManagedObjects returns for it."""

    methods = {}  # dbusmock's patched method lookup looks here first

    def __init__(self, sim, path, iface, props):
        self.sim = sim
        self.path = path
        self.interface = iface
        self.props = {iface: props}
        dbus.service.Object.__init__(self, sim.bus_name, path)
        mockobject.objects[path] = self

    def drop(self):
        mockobject.objects.pop(self.path, None)
        try:
            self.remove_from_connection()
        except Exception:  # already removed
            pass

    def set(self, name, value, iface=None):
        iface = iface or self.interface
        self.props[iface][name] = value
        self.sim.props_changed(self.path, iface, {name: value})

    @dbus.service.method(PROPS_IFACE, in_signature="ss", out_signature="v")
    def Get(self, interface, name):
        try:
            return self.props[str(interface)][str(name)]
        except KeyError:
            raise _error("org.freedesktop.DBus.Error.InvalidArgs", "No such property '%s'" % name) from None

    @dbus.service.method(PROPS_IFACE, in_signature="s", out_signature="a{sv}")
    def GetAll(self, interface):
        return dbus.Dictionary(self.props.get(str(interface), {}), signature="sv")

    @dbus.service.method(PROPS_IFACE, in_signature="ssv", out_signature="")
    def Set(self, interface, name, value):
        interface, name = str(interface), str(name)
        if interface == DEVICE_IFACE and name in ("Trusted", "Blocked"):
            self.set(name, dbus.Boolean(bool(value)), interface)
        elif interface == DEVICE_IFACE and name == "Alias":
            self.set(name, dbus.String(value), interface)
        elif interface == ADAPTER_IFACE and name in ("Powered", "Discoverable", "Pairable"):
            self.set(name, dbus.Boolean(bool(value)), interface)
        else:
            raise _error("org.freedesktop.DBus.Error.PropertyReadOnly", "Property '%s' is not settable" % name)


class Adapter(_Obj):
    def __init__(self, sim):
        props = {
            "Address": dbus.String("00:1A:7D:DA:71:13"),
            "AddressType": dbus.String("public"),
            "Name": dbus.String("hipimu-sim"),
            "Alias": dbus.String("hipimu-sim"),
            "Class": dbus.UInt32(0),
            "Powered": dbus.Boolean(True),
            "Discoverable": dbus.Boolean(False),
            "DiscoverableTimeout": dbus.UInt32(180),
            "Pairable": dbus.Boolean(True),
            "PairableTimeout": dbus.UInt32(0),
            "Discovering": dbus.Boolean(False),
            "UUIDs": dbus.Array([], signature="s"),
            "Modalias": dbus.String("usb:v1D6Bp0246d0542"),
            "Roles": dbus.Array(["central", "peripheral"], signature="s"),
        }
        _Obj.__init__(self, sim, ADAPTER_PATH, ADAPTER_IFACE, props)
        sim.export(self)

    @dbus.service.method(ADAPTER_IFACE, in_signature="", out_signature="", sender_keyword="sender")
    def StartDiscovery(self, sender=None):
        self.sim.start_discovery(str(sender))

    @dbus.service.method(ADAPTER_IFACE, in_signature="", out_signature="", sender_keyword="sender")
    def StopDiscovery(self, sender=None):
        self.sim.stop_discovery(str(sender))

    @dbus.service.method(ADAPTER_IFACE, in_signature="a{sv}", out_signature="", sender_keyword="sender")
    def SetDiscoveryFilter(self, flt, sender=None):
        self.sim.set_filter(str(sender), flt)

    @dbus.service.method(ADAPTER_IFACE, in_signature="", out_signature="as")
    def GetDiscoveryFilters(self):
        return dbus.Array(["UUIDs", "RSSI", "Pathloss", "Transport", "DuplicateData", "Discoverable", "Pattern"],
                          signature="s")

    @dbus.service.method(ADAPTER_IFACE, in_signature="o", out_signature="")
    def RemoveDevice(self, path):
        s = self.sim.sensor_by_path(str(path))
        if s is None or s.device is None:
            raise _error("org.bluez.Error.DoesNotExist", "Does Not Exist")
        s.remove_device()


class Device(_Obj):
    def __init__(self, sensor, rssi):
        props = {
            "Address": dbus.String(sensor.address),
            "AddressType": dbus.String("random"),
            "Name": dbus.String(sensor.name),
            "Alias": dbus.String(sensor.name),
            "Paired": dbus.Boolean(False),
            "Bonded": dbus.Boolean(False),
            "Trusted": dbus.Boolean(False),
            "Blocked": dbus.Boolean(False),
            "LegacyPairing": dbus.Boolean(False),
            "Connected": dbus.Boolean(False),
            "ServicesResolved": dbus.Boolean(False),
            "UUIDs": dbus.Array([SERVICE_UUID], signature="s"),
            "Adapter": dbus.ObjectPath(ADAPTER_PATH),
            "AdvertisingFlags": dbus.ByteArray(b"\x06"),
            "RSSI": dbus.Int16(rssi),
        }
        self.sensor = sensor
        _Obj.__init__(self, sensor.sim, sensor.path, DEVICE_IFACE, props)

    @dbus.service.method(DEVICE_IFACE, in_signature="", out_signature="", async_callbacks=("ok", "err"))
    def Connect(self, ok=None, err=None):
        self.sensor.connect_request(ok, err)

    @dbus.service.method(DEVICE_IFACE, in_signature="", out_signature="", async_callbacks=("ok", "err"))
    def Disconnect(self, ok=None, err=None):
        self.sensor.disconnect_request(ok, err)

    @dbus.service.method(DEVICE_IFACE, in_signature="", out_signature="")
    def Pair(self):
        raise _error("org.bluez.Error.NotSupported", "Pairing is not supported by the simulated sensor")

    @dbus.service.method(DEVICE_IFACE, in_signature="", out_signature="")
    def CancelPairing(self):
        raise _error("org.bluez.Error.DoesNotExist", "Does Not Exist")

    @dbus.service.method(DEVICE_IFACE, in_signature="s", out_signature="")
    def ConnectProfile(self, uuid):
        raise _error("org.bluez.Error.NotSupported", "Not Supported")

    @dbus.service.method(DEVICE_IFACE, in_signature="s", out_signature="")
    def DisconnectProfile(self, uuid):
        raise _error("org.bluez.Error.NotSupported", "Not Supported")


class Service(_Obj):
    def __init__(self, sensor, handle, uuid):
        self.handle = handle
        path = "%s/service%04x" % (sensor.path, handle)
        _Obj.__init__(self, sensor.sim, path, SERVICE_IFACE, {
            "UUID": dbus.String(uuid),
            "Device": dbus.ObjectPath(sensor.path),
            "Primary": dbus.Boolean(True),
            "Includes": dbus.Array([], signature="o"),
        })


class Characteristic(_Obj):
    """A remote characteristic. ``key``: the sensor's name for it ("data",
    "control", "config", "battery", "dis-...")."""

    def __init__(self, sensor, service, handle, uuid, flags, key):
        self.sensor = sensor
        self.key = key
        self.flags = flags
        self.sessions = set()  # D-Bus senders with a StartNotify session
        self.sock = None  # our end of an AcquireNotify socket
        self.watch = None
        path = "%s/char%04x" % (service.path, handle)
        props = {
            "UUID": dbus.String(uuid),
            "Service": dbus.ObjectPath(service.path),
            "Value": dbus.ByteArray(b""),
            "Flags": dbus.Array(flags, signature="s"),
            "MTU": dbus.UInt16(sensor.mtu),
        }
        if "notify" in flags:
            props["Notifying"] = dbus.Boolean(False)
            props["NotifyAcquired"] = dbus.Boolean(False)
        _Obj.__init__(self, sensor.sim, path, CHAR_IFACE, props)

    def _link(self):
        """The connection; while it is lost but not yet timed out (DropLink with a
        supervision time) requests wait and fail when it ends, as over the air."""
        link = self.sensor.link
        if link is None:
            raise _failed("Not connected")
        return link

    @dbus.service.method(CHAR_IFACE, in_signature="a{sv}", out_signature="ay", async_callbacks=("ok", "err"))
    def ReadValue(self, options, ok=None, err=None):
        if "read" not in self.flags:
            raise _error("org.bluez.Error.NotPermitted", "Read not permitted")
        offset = int(options.get("offset", 0))
        self._link().request(Op("read", self, ok, err, offset=offset))

    @dbus.service.method(CHAR_IFACE, in_signature="aya{sv}", out_signature="", async_callbacks=("ok", "err"))
    def WriteValue(self, value, options, ok=None, err=None):
        kind = str(options.get("type", "request"))
        if kind == "command" and "write-without-response" not in self.flags:
            raise _error("org.bluez.Error.NotSupported", "Operation is not supported")
        if "write" not in self.flags:
            raise _error("org.bluez.Error.NotPermitted", "Write not permitted")
        self._link().request(Op("write", self, ok, err, data=bytes(value)))

    @dbus.service.method(CHAR_IFACE, in_signature="", out_signature="", sender_keyword="sender",
                         async_callbacks=("ok", "err"))
    def StartNotify(self, sender=None, ok=None, err=None):
        if "notify" not in self.flags:
            raise _error("org.bluez.Error.NotSupported", "Notify is not supported")
        if self.sock is not None:
            raise _error("org.bluez.Error.NotPermitted", "Notify acquired")
        if sender in self.sessions:
            raise _error("org.bluez.Error.InProgress", "In Progress")
        link = self._link()
        self.sessions.add(str(sender))
        if link.cccd.get(self.key):
            ok()
        else:
            link.request(Op("cccd", self, ok, err, enable=True))

    @dbus.service.method(CHAR_IFACE, in_signature="", out_signature="", sender_keyword="sender")
    def StopNotify(self, sender=None):
        if str(sender) not in self.sessions:
            raise _failed("No notify session started")
        self.sessions.discard(str(sender))
        self._maybe_cccd_off()

    @dbus.service.method(CHAR_IFACE, in_signature="a{sv}", out_signature="hq", async_callbacks=("ok", "err"))
    def AcquireNotify(self, options, ok=None, err=None):
        if "notify" not in self.flags:
            raise _error("org.bluez.Error.NotSupported", "Operation is not supported")
        if self.sock is not None:
            raise _error("org.bluez.Error.NotPermitted", "Notify acquired")
        link = self._link()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setblocking(False)
        self.sock = ours
        self.props[CHAR_IFACE]["NotifyAcquired"] = dbus.Boolean(True)

        def reply():
            ok(dbus.types.UnixFd(theirs.fileno()), dbus.UInt16(self.sensor.mtu))
            theirs.close()  # dbus-python sent a duplicate
            self.sim.props_changed(self.path, CHAR_IFACE, {"NotifyAcquired": dbus.Boolean(True)})
            self.watch = GLib.io_add_watch(ours.fileno(), GLib.PRIORITY_DEFAULT,
                                           GLib.IO_HUP | GLib.IO_ERR | GLib.IO_IN, self._sock_event)

        def fail(e):
            theirs.close()
            self.release_socket(notify_host=False)
            err(e)

        link.request(Op("cccd", self, reply, fail, enable=True))

    @dbus.service.method(CHAR_IFACE, in_signature="a{sv}", out_signature="hq")
    def AcquireWrite(self, options):
        raise _error("org.bluez.Error.NotSupported", "Operation is not supported")

    def _sock_event(self, fd, condition):
        if condition & GLib.IO_IN and not condition & (GLib.IO_HUP | GLib.IO_ERR):
            try:
                self.sock.recv(4096)  # nothing is expected from the client
                return True
            except OSError:
                pass
        self.watch = None
        self.release_socket(notify_host=True)
        return False

    def release_socket(self, notify_host):
        if self.watch is not None:
            GLib.source_remove(self.watch)
            self.watch = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None
            self.props[CHAR_IFACE]["NotifyAcquired"] = dbus.Boolean(False)
            if notify_host:
                self.sim.props_changed(self.path, CHAR_IFACE, {"NotifyAcquired": dbus.Boolean(False)})
                self._maybe_cccd_off()

    def _maybe_cccd_off(self):
        link = self.sensor.link
        if self.sessions or self.sock is not None:
            return
        if self.props[CHAR_IFACE].get("Notifying"):
            self.set("Notifying", dbus.Boolean(False))
        if link is not None and not link.lost and link.cccd.get(self.key):
            link.request(Op("cccd", self, None, None, enable=False))

    def deliver(self, data):
        """A notification from the sensor reaches BlueZ."""
        if self.sock is not None:
            try:
                self.sock.send(data)
                self.sensor.stats["acquired_sent"] += 1
            except BlockingIOError:
                self.sensor.stats["acquired_send_drops"] += 1
            except OSError:
                self.release_socket(notify_host=True)
        if self.sessions:
            value = dbus.ByteArray(data)
            self.props[CHAR_IFACE]["Value"] = value
            self.sim.props_changed(self.path, CHAR_IFACE, {"Value": value})


class Descriptor(_Obj):
    def __init__(self, sensor, char, handle, uuid):
        self.char = char
        path = "%s/desc%04x" % (char.path, handle)
        _Obj.__init__(self, sensor.sim, path, DESC_IFACE, {
            "UUID": dbus.String(uuid),
            "Characteristic": dbus.ObjectPath(char.path),
            "Value": dbus.ByteArray(b""),
        })

    @dbus.service.method(DESC_IFACE, in_signature="a{sv}", out_signature="ay", async_callbacks=("ok", "err"))
    def ReadValue(self, options, ok=None, err=None):
        self.char._link().request(Op("read_cccd", self.char, ok, err, desc=self))

    @dbus.service.method(DESC_IFACE, in_signature="aya{sv}", out_signature="")
    def WriteValue(self, value, options):
        raise _error("org.bluez.Error.NotPermitted", "Write not permitted")


# ---------------------------------------------------------------------------
# The sensor: board (firmware core) + link
# ---------------------------------------------------------------------------


class Op:
    """One ATT request: sent at a connection event, answered at the next one."""

    __slots__ = ("kind", "char", "ok", "err", "data", "offset", "enable", "desc", "result")

    def __init__(self, kind, char, ok, err, data=b"", offset=0, enable=False, desc=None):
        self.kind, self.char, self.ok, self.err = kind, char, ok, err
        self.data, self.offset, self.enable, self.desc = data, offset, enable, desc
        self.result = None

    def fail(self, exc):
        if self.err is not None:
            self.err(exc)


class Link:
    """One connection: its events at ``t0 + k * ci``."""

    def __init__(self, sensor, now):
        self.sensor = sensor
        self.ci = sensor.ci
        self.t0 = now + sensor.rng.random() * self.ci
        self.k = 0
        self.timer = None
        self.lost = False  # radio gone (DropLink), waiting for the supervision timeout
        self.down_at = None
        self.attq = deque()  # ATT requests waiting
        self.inflight = None  # the request answered at the next event
        self.txq = deque()  # notifications queued by the board: (char key, bytes)
        self.cccd = {}  # char key -> notifications enabled (the sensor's view)
        self.disconnect_ok = []  # Disconnect calls waiting for the link to end
        self.record = {"host_s": now, "ci_s": self.ci, "first_event_host_s": self.t0, "end_host_s": None,
                       "end_reason": None}

    def request(self, op):
        self.attq.append(op)

    def disconnect_pending(self):
        return bool(self.disconnect_ok)


class Sensor:
    def __init__(self, sim, p):
        self.sim = sim
        self.params = p
        dev_id = str(p["device_id"]).lower()
        if len(dev_id) != 16 or any(c not in "0123456789abcdef" for c in dev_id):
            raise _error("org.hipimu.SimControl.Error.BadValue", "device_id must be 16 hex digits: %r" % dev_id)
        self.device_id = dev_id
        self.name = str(p.get("name") or "hipimu-" + dev_id[-4:])
        default_addr = ":".join("%02X" % b for b in bytes([0xC0 | bytes.fromhex(dev_id[4:6])[0]]) +
                                bytes.fromhex(dev_id[6:16]))
        self.address = str(p.get("address") or default_addr).upper()
        self.path = "%s/dev_%s" % (ADAPTER_PATH, self.address.replace(":", "_"))
        self.ci = float(p.get("ci_s", 0.015))
        if not 0.0075 <= self.ci <= 4.0:
            raise _error("org.hipimu.SimControl.Error.BadValue", "ci_s must be 0.0075 .. 4 s")
        self.mtu = int(p.get("mtu", 247))
        if not 23 <= self.mtu <= 517:
            raise _error("org.hipimu.SimControl.Error.BadValue", "mtu must be 23 .. 517")
        self.clock_ppm = float(p.get("clock_ppm", 0.0))
        self.clock_offset_s = float(p.get("clock_offset_s", 0.0))
        self.rate_factor = 1.0 + self.clock_ppm * 1e-6
        self.rtc_hz = int(p.get("rtc_hz", 32768))
        self.rssi_base = int(p.get("rssi", -60))
        self.advertise = bool(p.get("advertise", True))
        self.rng = random.Random(int(p.get("seed", 0)) * 1000003 + int(dev_id, 16) % 1000003)
        self.connect_delay = float(p.get("connect_delay_s", 0.02))
        self.discovery_delay = float(p.get("discovery_delay_s", 0.03))
        self.connect_timeout = float(p.get("connect_timeout_s", 20.0))
        self.packets_per_event = int(p.get("packets_per_event", 6))
        self.settle_s = float(p.get("settle_s", 0.1))
        self.epoch = float(p.get("epoch_s") or sim.epoch)
        self.script_from_start = bool(p.get("script_from_start", False))
        self.model = str(p.get("model", "XIAO nRF52840 Sense"))
        self.fw_revision = str(p.get("fw_revision", "0.1.0"))
        self._load_script(p.get("script"))
        self.core = sim.core.CoreDevice(
            sim.lib, bytes.fromhex(dev_id), imu_ok=bool(p.get("imu_ok", self.n > 0)), mag_ok=self.axes == 9,
            battery_percent=int(p.get("battery", 100)), fw_version=tuple(p.get("fw_version", (0, 1, 0))),
            acc_range_g=self.acc_range_g, gyr_range_dps=self.gyr_range_dps)
        self.dev = self.core.dev
        self.boot = time.monotonic()
        self.unreachable_until = 0.0
        self.device = None  # the exported Device1 object
        self.gatt = []  # exported GATT objects, in export order
        self.chars = {}  # key -> Characteristic
        self.link = None
        self.pending_connect = []  # [(ok, err)] while connecting
        self.connecting = False
        self.connect_deadline_timer = None
        self.last_seen = 0.0
        self.needs_report = True
        self.next_g = None  # next script sample to push while streaming
        self.stride = 1
        self.settle_until_us = 0
        self.starts = []
        self._scale = None  # count rescaling (acc, gyr) after SET_RANGES away from the script's ranges
        self.connections = []
        self.link_drops = []
        self.time_syncs = []
        self._vals = (ctypes.c_int16 * 9)()
        self.stats = {k: 0 for k in (
            "packets_sent", "samples_pushed", "device_drops", "injected", "inject_dropped", "connects",
            "disconnects", "link_drops", "commands", "reads", "events", "advertisements",
            "acquired_sent", "acquired_send_drops", "rate_mismatch", "range_mismatch", "connect_timeouts")}
        self.stats["notifications"] = {}
        self.stats["max_event_lag_s"] = 0.0
        self.stats["late_events"] = 0  # processed more than 5 ms after their instant
        self.late_log = deque(maxlen=50)
        self.sent_log = deque(maxlen=4096)  # data packets: (event host time, host time handed to D-Bus, t0_us)

    # -- script ----------------------------------------------------------------

    def _load_script(self, path):
        self.n, self.axes = 0, 6
        self.acc_range_g = int(self.params.get("acc_range_g", 8))
        self.gyr_range_dps = int(self.params.get("gyr_range_dps", 1000))
        self.script_rate, self.lap_s = 208.0, 1.0
        if not path:
            return
        with open(path, "rb") as f:
            blob = f.read()
        magic, n, axes, acc_g, gyr_dps, rate, lap = SCRIPT_HEADER.unpack_from(blob)
        if magic != SCRIPT_MAGIC or axes not in (6, 9) or n == 0:
            raise _error("org.hipimu.SimControl.Error.BadScript", "%s is not a hipimu script" % path)
        off = SCRIPT_HEADER.size
        self.times = array.array("d")
        self.times.frombytes(blob[off:off + 8 * n])
        off += 8 * n
        self.counts = (ctypes.c_int16 * (n * axes)).from_buffer_copy(blob[off:off + 2 * n * axes])
        self.counts_base = ctypes.addressof(self.counts)
        self.n, self.axes = n, axes
        self.acc_range_g, self.gyr_range_dps = acc_g, gyr_dps
        self.script_rate, self.lap_s = rate, lap

    def sample_host_s(self, g):
        lap, i = divmod(g, self.n)
        return self.epoch + lap * self.lap_s + self.times[i]

    def first_sample_at(self, t):
        """The first script sample g taken at host time >= t."""
        lap = math.floor((t - self.epoch - self.times[0]) / self.lap_s) if self.lap_s > 0 else 0
        lap = max(lap, 0)
        i = bisect.bisect_left(self.times, t - self.epoch - lap * self.lap_s)
        g = lap * self.n + i
        while self.sample_host_s(g) < t:
            g += 1
        while g > 0 and self.sample_host_s(g - 1) >= t:
            g -= 1
        return g

    # -- clocks ------------------------------------------------------------------

    def device_us(self, t):
        s = self.clock_offset_s + (t - self.boot) * self.rate_factor
        if self.rtc_hz:
            return math.floor(s * self.rtc_hz) * 1000000 // self.rtc_hz
        return math.floor(s * 1e6)

    # -- state -------------------------------------------------------------------

    @property
    def connected(self):
        return self.link is not None

    def reachable(self, now):
        return self.advertise and now >= self.unreachable_until

    def advertising(self, now):
        return self.link is None and self.reachable(now)

    def export_device(self, rssi):
        self.device = Device(self, rssi)
        self.sim.export(self.device)

    def unexport_device(self):
        if self.device is not None:
            self.sim.unexport(self.device)
            self.device = None

    def remove_device(self):
        """Adapter.RemoveDevice: disconnect, forget the device."""
        self._cancel_connect(_error("org.bluez.Error.Failed", "Device removed"))
        if self.link is not None:
            self._link_down("removed")
        self.unexport_device()

    def remove(self):
        self.remove_device()
        self.sim.sensors.pop(self.address, None)

    def set_advertising(self, on):
        self.advertise = on
        if on:
            self._reachable_again()

    def set_battery(self, percent):
        percent = max(0, min(100, percent))
        if percent == self.dev.battery_percent:
            return
        self.dev.battery_percent = percent
        link = self.link
        if link is not None and not link.lost and link.cccd.get("battery"):
            link.txq.append(("battery", bytes([percent])))

    def inject(self, data, key):
        if key not in ("data", "control", "battery"):
            raise _error("org.hipimu.SimControl.Error.BadValue", "characteristic must be data, control or battery")
        link = self.link
        if link is None or link.lost:
            self.stats["inject_dropped"] += 1
            return
        link.txq.append(("inject:" + key, data))

    # -- connecting ------------------------------------------------------------

    def connect_request(self, ok, err):
        if self.link is not None and not self.link.lost:
            ok()
            return
        if self.pending_connect:
            err(_error("org.bluez.Error.InProgress", "In Progress"))
            return
        self.pending_connect.append((ok, err))
        self.connect_deadline_timer = GLib.timeout_add(int(self.connect_timeout * 1000), self._connect_timeout)
        if self.link is None and self.reachable(time.monotonic()):
            self._start_connecting()

    def _start_connecting(self):
        if self.connecting:
            return
        self.connecting = True
        GLib.timeout_add(max(0, int(round(self.connect_delay * 1000))), self._established)

    def _reachable_again(self):
        if self.pending_connect and self.link is None and self.reachable(time.monotonic()):
            self._start_connecting()
        return False

    def _connect_timeout(self):
        self.connect_deadline_timer = None
        if self.connecting:  # the link is coming up right now: look again in a moment
            self.connect_deadline_timer = GLib.timeout_add(50, self._connect_timeout)
            return False
        if self.pending_connect:
            self.stats["connect_timeouts"] += 1
            self._cancel_connect(_failed("le-connection-timeout"))
        return False

    def _cancel_connect(self, exc):
        pending, self.pending_connect = self.pending_connect, []
        if self.connect_deadline_timer is not None:
            GLib.source_remove(self.connect_deadline_timer)
            self.connect_deadline_timer = None
        for _ok, err in pending:
            err(exc)

    def _established(self):
        self.connecting = False
        now = time.monotonic()
        if self.link is not None or not self.pending_connect or not self.reachable(now) or self.device is None:
            return False
        self.link = Link(self, now)
        self.connections.append(self.link.record)
        self.stats["connects"] += 1
        self.last_seen = now
        self.dev.att_mtu = min(self.mtu, 65535)  # the board: ble_mtu() after the MTU exchange
        self.device.set("Connected", dbus.Boolean(True))
        self._schedule()
        GLib.timeout_add(max(0, int(round(self.discovery_delay * 1000))), self._services_resolved, self.link)
        return False

    def _services_resolved(self, link):
        if self.link is not link or link.lost or self.device is None:
            return False
        self._export_gatt()
        uuids = [_sig(0x1800), _sig(0x1801), _sig(0x180A), _sig(0x180F), SERVICE_UUID]
        self.device.set("UUIDs", dbus.Array(uuids, signature="s"))
        self.device.set("ServicesResolved", dbus.Boolean(True))
        pending, self.pending_connect = self.pending_connect, []
        if self.connect_deadline_timer is not None:
            GLib.source_remove(self.connect_deadline_timer)
            self.connect_deadline_timer = None
        for ok, _err in pending:
            ok()
        return False

    def _export_gatt(self):
        objs = []
        dis = Service(self, 0x000A, _sig(0x180A))
        objs.append(dis)
        for handle, short, key in ((0x000B, 0x2A29, "dis-manufacturer"), (0x000D, 0x2A24, "dis-model"),
                                   (0x000F, 0x2A25, "dis-serial"), (0x0011, 0x2A26, "dis-firmware")):
            objs.append(Characteristic(self, dis, handle, _sig(short), ["read"], key))
        bas = Service(self, 0x0013, _sig(0x180F))
        level = Characteristic(self, bas, 0x0014, _sig(0x2A19), ["read", "notify"], "battery")
        objs += [bas, level, Descriptor(self, level, 0x0016, CCCD_UUID)]
        hip = Service(self, 0x0017, SERVICE_UUID)
        data = Characteristic(self, hip, 0x0018, DATA_UUID, ["notify"], "data")
        control = Characteristic(self, hip, 0x001B, CONTROL_UUID, ["write", "notify"], "control")
        config = Characteristic(self, hip, 0x001E, CONFIG_UUID, ["read"], "config")
        objs += [hip, data, Descriptor(self, data, 0x001A, CCCD_UUID), control,
                 Descriptor(self, control, 0x001D, CCCD_UUID), config]
        self.gatt = objs
        self.chars = {o.key: o for o in objs if isinstance(o, Characteristic)}
        for o in objs:
            self.sim.export(o)

    def _unexport_gatt(self):
        for o in reversed(self.gatt):
            if isinstance(o, Characteristic):
                o.release_socket(notify_host=False)
                o.sessions.clear()
            self.sim.unexport(o)
        self.gatt = []
        self.chars = {}

    def disconnect_request(self, ok, err):
        if self.pending_connect and self.link is None:
            self._cancel_connect(_failed("Operation canceled"))
            ok()
            return
        link = self.link
        if link is None:
            ok()
            return
        if link.lost:  # the supervision timeout is running; the host gives up at once
            self._link_down("local")
            ok()
            return
        link.disconnect_ok.append(ok)

    def drop_link(self, down_s, supervision_s):
        now = time.monotonic()
        self.unreachable_until = max(self.unreachable_until, now + down_s)
        GLib.timeout_add(max(0, int(math.ceil(down_s * 1000))) + 1, self._reachable_again)
        self.link_drops.append({"host_s": now, "down_s": down_s, "supervision_s": supervision_s,
                                "connected": self.link is not None})
        self.stats["link_drops"] += 1
        link = self.link
        if link is None:
            if self.connecting:
                self.connecting = False  # the link never came up; Connect stays pending
            return
        if link.lost:
            return
        link.lost = True
        # the board notices the loss too: STOP (run_command(STOP) in service_link)
        self._board_link_lost(now)
        if supervision_s <= 0:
            self._link_down("lost")
        else:
            link.down_at = now + supervision_s
            GLib.timeout_add(int(math.ceil(supervision_s * 1000)), self._supervision_timeout, link)

    def _supervision_timeout(self, link):
        if self.link is link:
            self._link_down("lost")
        return False

    def _board_link_lost(self, now):
        if self.dev.streaming:
            self._run_command(bytes([0x02, 0x00]), now, reply=False)
        self.dev.att_mtu = ATT_MTU_DEFAULT

    def _link_down(self, reason):
        link = self.link
        if link is None:
            return
        now = time.monotonic()
        if not link.lost:
            self._board_link_lost(now)
        if link.timer is not None:
            GLib.source_remove(link.timer)
            link.timer = None
        link.record["end_host_s"] = now
        link.record["end_reason"] = reason
        self.link = None
        self.stats["disconnects"] += 1
        self.last_seen = now
        exc = _failed("Not connected")
        ops = list(link.attq) + ([link.inflight] if link.inflight is not None else [])
        link.attq.clear()
        link.inflight = None
        for op in ops:
            op.fail(exc)
        if self.device is not None:
            if self.device.props[DEVICE_IFACE]["ServicesResolved"]:
                self.device.set("ServicesResolved", dbus.Boolean(False))
            self.device.set("Connected", dbus.Boolean(False))
        self._unexport_gatt()
        for ok in link.disconnect_ok:
            ok()
        self.needs_report = True
        if self.pending_connect:
            self._reachable_again()

    def client_gone(self, sender):
        for ch in self.chars.values():
            if sender in ch.sessions:
                ch.sessions.discard(sender)
                ch._maybe_cccd_off()

    # -- connection events -----------------------------------------------------

    def _schedule(self):
        # GLib timers have 1 ms resolution and fire late by a fraction of a millisecond
        # that is the same at every event when the CI is a whole number of ms: a
        # per-link constant delay that a real controller does not have (and that
        # would bias the host's clock fit per board). So wake up to ~1.5 ms early
        # and sleep the rest (_on_timer): events leave within ~0.1 ms of their instant.
        link = self.link
        t_next = link.t0 + link.k * link.ci
        delay_ms = max(0, int(math.floor((t_next - time.monotonic()) * 1000 - 0.5)))
        link.timer = GLib.timeout_add(delay_ms, self._on_timer, link)

    def _on_timer(self, link):
        if self.link is not link:
            return False
        link.timer = None
        wait = link.t0 + link.k * link.ci - time.monotonic()
        if 0 < wait < 0.004:
            time.sleep(wait)
        now = time.monotonic()
        while self.link is link:
            te = link.t0 + link.k * link.ci
            if te > now:
                break
            link.k += 1
            lag = now - te
            if lag > self.stats["max_event_lag_s"]:
                self.stats["max_event_lag_s"] = lag
            if lag > 0.005:
                self.stats["late_events"] += 1
                self.late_log.append((te, lag))
            self._event(link, te)
        if self.link is link:
            self._schedule()
        return False

    def _event(self, link, te):
        self.stats["events"] += 1
        if link.lost:
            return
        # the ATT response to the request of the previous event
        op = link.inflight
        if op is not None:
            link.inflight = None
            self._complete(op)
            if self.link is not link:
                return
        # notifications the board queued since the last event, then new packets
        budget = self.packets_per_event
        while link.txq and budget > 0:
            key, data = link.txq.popleft()
            budget -= 1
            if key.startswith("inject:"):
                key = key[7:]
                if not link.cccd.get(key):
                    self.stats["inject_dropped"] += 1
                    continue
                self.stats["injected"] += 1
            self._notify(key, data)
        if link.disconnect_pending():
            self._link_down("local")
            return
        # the ATT request sent at this event (handled by the board right after it)
        if link.attq:
            op = link.attq.popleft()
            self._handle(link, op, te)
            link.inflight = op
        if self.dev.streaming:
            self._push_samples(te)
            if link.cccd.get("data"):
                now_us = self.device_us(te)
                while budget > 0:
                    packet = self.core.next_packet(now_us)
                    if not packet:
                        break
                    budget -= 1
                    self.stats["packets_sent"] += 1
                    self.sent_log.append((te, time.monotonic(), int.from_bytes(packet[4:8], "little")))
                    self._notify("data", packet)

    def _notify(self, key, data):
        ch = self.chars.get(key)
        if ch is None:
            return
        counts = self.stats["notifications"]
        counts[key] = counts.get(key, 0) + 1
        ch.deliver(data)

    # -- the board's side of ATT requests ----------------------------------------

    def _handle(self, link, op, te):
        ch = op.char
        if op.kind == "read":
            self.stats["reads"] += 1
            op.result = self._read_value(ch.key)[op.offset:]
        elif op.kind == "read_cccd":
            op.result = bytes([1 if link.cccd.get(ch.key) else 0, 0])
        elif op.kind == "write":
            if ch.key == "control":
                resp = self._run_command(op.data[:REQUEST_MAX], te, reply=True)
                if resp and link.cccd.get("control"):
                    link.txq.append(("control", resp))
        elif op.kind == "cccd":
            link.cccd[ch.key] = op.enable

    def _complete(self, op):
        ch = op.char
        if op.kind in ("read", "read_cccd"):
            value = dbus.ByteArray(op.result)
            target = op.desc if op.kind == "read_cccd" else ch
            target.props[target.interface]["Value"] = value
            self.sim.props_changed(target.path, target.interface, {"Value": value})
            if op.ok is not None:
                op.ok(value)
        elif op.kind == "write":
            if op.ok is not None:
                op.ok()
        elif op.kind == "cccd" and op.enable:
            if (ch.sessions or ch.sock is not None) and not ch.props[CHAR_IFACE]["Notifying"]:
                ch.set("Notifying", dbus.Boolean(True))
            if op.ok is not None:
                op.ok()

    def _read_value(self, key):
        if key == "config":
            return self.core.config()
        if key == "battery":
            return bytes([self.dev.battery_percent])
        if key == "dis-manufacturer":
            return b"hipimu"
        if key == "dis-model":
            return self.model.encode()
        if key == "dis-serial":
            return self.device_id.encode()
        if key == "dis-firmware":
            return self.fw_revision.encode()
        return b""

    def _run_command(self, request, t, reply):
        """run_command() of the board: the core decides, the board follows."""
        was_streaming = bool(self.dev.streaming)
        now_us = self.device_us(t)
        resp = self.core.command(request, now_us)
        self.stats["commands"] += 1
        if len(resp) >= 3 and resp[0] == 0x86 and resp[2] == 0:
            self.time_syncs.append({"host_s": t, "device_us": now_us})
        if not was_streaming and self.dev.streaming:
            self._start_streaming(t, now_us)
        elif was_streaming and not self.dev.streaming:
            self._stop_streaming(t)
        return resp if reply else b""

    def _start_streaming(self, t, now_us):
        rate = int(self.dev.rate_hz)
        ratio = self.script_rate / rate if rate else 1.0
        stride = int(round(ratio))
        if stride < 1 or abs(ratio - stride) > 1e-6:
            stride = 1
            self.stats["rate_mismatch"] += 1
        self.stride = stride
        self.settle_until_us = now_us + int(round(self.settle_s * 1e6))
        start = {"host_s": t, "device_us": now_us, "stride": stride, "rate_hz": rate,
                 "mag": bool(self.dev.mag_enabled), "samples_pushed": 0, "stop_host_s": None,
                 "acc_range_g": int(self.dev.acc_range_g), "gyr_range_dps": int(self.dev.gyr_range_dps)}
        if self.n and self.script_from_start:  # this START's first sample is script sample 0
            self.epoch = t + self.settle_s / self.rate_factor + 0.001 - self.times[0]
        start["epoch_host_s"] = self.epoch
        if self.n:
            g = self.first_sample_at(t + self.settle_s / self.rate_factor - 0.002)
            while self.device_us(self.sample_host_s(g)) < self.settle_until_us:
                g += 1
            self.next_g = g
            start.update(first_sample=g, first_index=g % self.n, first_lap=g // self.n,
                         first_host_s=self.sample_host_s(g), first_device_us=self.device_us(self.sample_host_s(g)))
            self._scale = None
            if (self.dev.acc_range_g, self.dev.gyr_range_dps) != (self.acc_range_g, self.gyr_range_dps):
                self.stats["range_mismatch"] += 1
                lib = self.sim.lib
                self._scale = (lib.hip_acc_scale_m_s2(self.acc_range_g) / lib.hip_acc_scale_m_s2(self.dev.acc_range_g),
                               lib.hip_gyr_scale_rad_s(self.gyr_range_dps) / lib.hip_gyr_scale_rad_s(self.dev.gyr_range_dps))
        self.starts.append(start)

    def _stop_streaming(self, t):
        self.next_g = None
        if self.starts and self.starts[-1]["stop_host_s"] is None:
            self.starts[-1]["stop_host_s"] = t

    def _push_samples(self, te):
        if self.next_g is None:
            return
        n, axes, stride = self.n, self.axes, self.stride
        n_axes = 9 if self.dev.mag_enabled else 6
        start = self.starts[-1]
        lib_push, fifo = self.sim.lib.hip_fifo_push, self.core.fifo
        g = self.next_g
        while True:
            lap, i = divmod(g, n)
            t = self.epoch + lap * self.lap_s + self.times[i]
            if t > te:
                break
            if self._scale is None:
                addr = self.counts_base + 2 * axes * i
            else:
                base = axes * i
                fa, fg = self._scale
                for k in range(axes):
                    f = fa if k < 3 else (fg if k < 6 else 1.0)
                    self._vals[k] = max(-32768, min(32767, round(self.counts[base + k] * f)))
                addr = ctypes.addressof(self._vals)
            if lib_push(fifo, self.device_us(t), addr, n_axes):
                self.stats["samples_pushed"] += 1
                start["samples_pushed"] += 1
            else:
                self.stats["device_drops"] += 1
            g += stride
        self.next_g = g

    # -- reports -------------------------------------------------------------------

    def truth(self):
        now = time.monotonic()
        return {
            "address": self.address, "device_id": self.device_id, "name": self.name,
            "boot_host_s": self.boot, "epoch_host_s": self.epoch, "lap_s": self.lap_s,
            "script_rate_hz": self.script_rate, "script_n": self.n, "script_axes": self.axes,
            "clock_offset_s": self.clock_offset_s, "clock_ppm": self.clock_ppm, "rtc_hz": self.rtc_hz,
            "ci_s": self.ci, "mtu": self.mtu, "settle_s": self.settle_s,
            "now_host_s": now, "now_device_us": self.device_us(now),
            "starts": self.starts, "connections": self.connections, "link_drops": self.link_drops,
            "time_syncs": self.time_syncs, "data_packets": list(self.sent_log),
        }

    def stats_dict(self):
        out = dict(self.stats)
        out["notifications"] = dict(self.stats["notifications"])
        out["connected"] = self.link is not None and not self.link.lost
        out["streaming"] = bool(self.dev.streaming)
        out["fifo_count"] = self.core.fifo_count
        out["fifo_dropped_total"] = int(self.dev.fifo.dropped_total)
        out["exported"] = self.device is not None
        out["late_log"] = list(self.late_log)
        out["subscribed"] = sorted(k for k, v in (self.link.cccd.items() if self.link else ()) if v)
        return out

