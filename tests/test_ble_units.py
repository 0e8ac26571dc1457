"""The BLE layer's pure parts: sensor references, the remembered mapping,
the shake picker, link statistics, error translation."""

import json

import pytest

from hipimu.errors import BluetoothUnavailableError, InputError
from hipimu.sources.ble._bleak import bluetooth_errors
from hipimu.sources.ble.assign import pick_shaken
from hipimu.sources.ble.roles import SensorRef, config_path, load_roles, resolve_roles, save_roles
from hipimu.sources.ble.stats import LinkStats, RateMeter, format_stats_line, STATS_HEADER

ID = "3f2a9c01d4e5b677"


@pytest.mark.parametrize("text,kind,value", [
    (ID, "id", ID), (ID.upper(), "id", ID), ("b677", "suffix", "b677"), ("hipimu-B677", "suffix", "b677"),
    ("c2:11:22:33:44:55", "address", "C2:11:22:33:44:55"),
])
def test_sensor_refs_parse(text, kind, value):
    ref = SensorRef.parse(text)
    assert (ref.kind, ref.value) == (kind, value)


@pytest.mark.parametrize("text", ["", "xyz", "12345", "3f2a9c01d4e5b67", "C2:11:22:33:44"])
def test_bad_sensor_refs_say_what_is_expected(text):
    with pytest.raises(InputError, match="16 hex digits"):
        SensorRef.parse(text)


def test_refs_match_adverts_and_ids():
    full = SensorRef.parse(ID)
    assert full.matches_advert("AA:BB:CC:DD:EE:FF", "hipimu-b677")
    assert not full.matches_advert("AA:BB:CC:DD:EE:FF", "hipimu-b678")
    assert full.matches_id(ID) and not full.matches_id("0" * 16)
    assert SensorRef.parse("b677").matches_id("0" * 16)  # a suffix cannot be checked further
    addr = SensorRef.parse("aa:bb:cc:dd:ee:ff")
    assert addr.matches_advert("AA:BB:CC:DD:EE:FF", None) and not addr.matches_advert("AA:BB:CC:DD:EE:00", "hipimu-b677")


def test_remembered_roles_round_trip_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv("HIPIMU_CONFIG_DIR", str(tmp_path))
    assert load_roles() == {}
    path = save_roles({"pelvis": ID, "thigh_left": "0123456789abcdef"})
    assert path == config_path() == tmp_path / "sensors.json"
    assert load_roles() == {"pelvis": ID, "thigh_left": "0123456789abcdef"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sensors.json"]
    refs = resolve_roles({"pelvis": None, "thigh_right": None, "thigh_left": None})
    assert {r: ref.value for r, ref in refs.items()} == {"pelvis": ID, "thigh_left": "0123456789abcdef"}
    # explicit options win over the file, entirely
    refs = resolve_roles({"pelvis": "aaaa", "thigh_right": None, "thigh_left": None})
    assert list(refs) == ["pelvis"] and refs["pelvis"].value == "aaaa"


def test_roles_config_errors_are_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HIPIMU_CONFIG_DIR", str(tmp_path))
    with pytest.raises(InputError, match="no sensors assigned"):
        resolve_roles({"pelvis": None})
    with pytest.raises(InputError, match="two places"):
        resolve_roles({"pelvis": "aaaa", "thigh_left": "hipimu-aaaa"})
    with pytest.raises(InputError, match="two places"):
        save_roles({"pelvis": ID, "thigh_left": ID})
    with pytest.raises(InputError, match="full device ids"):
        save_roles({"pelvis": "b677"})
    (tmp_path / "sensors.json").write_text("{not json")
    with pytest.raises(InputError, match="unreadable sensor config"):
        load_roles()
    (tmp_path / "sensors.json").write_text(json.dumps({"format": "hipimu-sensors", "roles": {"knee": ID}}))
    with pytest.raises(InputError, match="unknown roles knee"):
        load_roles()


def test_pick_shaken():
    assert pick_shaken({"a": 6.0, "b": 0.2, "c": 0.1}) == "a"
    assert pick_shaken({"a": 6.0}) == "a"
    assert pick_shaken({"a": 0.5, "b": 0.1}) is None  # nobody shook
    assert pick_shaken({"a": 6.0, "b": 4.0}) is None  # two were shaken
    assert pick_shaken({}) is None


def test_link_stats_loss_and_line():
    s = LinkStats("pelvis", samples=990, lost_samples=6, device_dropped=4, rate_hz=208.0)
    assert s.loss_percent == pytest.approx(1.0)
    d = s.to_dict()
    assert d["loss_percent"] == pytest.approx(1.0) and d["latency_ms"] is None  # NaN -> null in JSON
    json.dumps(d)
    line = format_stats_line(s)
    assert line.startswith("pelvis") and "208.0" in line and len(line) == len(STATS_HEADER)


def test_rate_meter_counts_per_device_second():
    m = RateMeter(window_s=5.0)
    for k in range(100):
        m.add(k * 0.1, k * 20)  # 20 samples every 0.1 s of device time
    assert m.rate_hz == pytest.approx(200.0)


@pytest.mark.parametrize("exc,match", [
    (FileNotFoundError(2, "No such file or directory"), "no Bluetooth stack"),
    (type("BleakError", (Exception,), {"__module__": "bleak.exc"})("No Bluetooth adapters found."), "no Bluetooth adapter"),
    (type("BleakDBusError", (Exception,), {"__module__": "bleak.exc"})("org.freedesktop.DBus.Error.ServiceUnknown"), "BlueZ"),
])
def test_no_bluetooth_becomes_one_line(exc, match):
    with pytest.raises(BluetoothUnavailableError, match=match) as info:
        with bluetooth_errors("scanning"):
            raise exc
    assert "\n" not in str(info.value)
