"""The recording file: round trip, forward compatibility, bad files, crash safety."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hipimu.core.model import DeviceInfo, Event, SampleBlock, Session, SessionInfo
from hipimu.errors import RecordingError
from hipimu.errors import HipimuError
from hipimu.storage._atomic import atomic_output
from hipimu.storage.recording import FORMAT_VERSION, RecordingWriter, load_session, save_session

HERE = Path(__file__).parent


def make_session(n=1000, mag=True) -> Session:
    rng = np.random.default_rng(0)
    samples = {}
    devices = {}
    for i, r in enumerate(["pelvis", "thigh_left", "thigh_right"]):
        t = 0.001 * i + np.arange(n) / 200.0
        samples[r] = SampleBlock(
            r, t, rng.normal(size=(n, 3)), rng.normal(size=(n, 3)),
            rng.normal(size=(n, 3)) if mag and r != "pelvis" else None, np.arange(n) + 7,
        )
        devices[r] = DeviceInfo(f"dev{i}", r, 200.0, firmware="1.2.3", acc_range_m_s2=78.4, has_mag=mag)
    events = [Event(2.0, "phase_start", "stand"), Event(1.0, "marker", "note", {"text": "x"}), Event(3.0, "trial_start", "squat", {"side": "both", "index": 1})]
    info = SessionInfo(subject_id="P017", sides=("left", "right"), test="squat", notes="ümlaut ok")
    return Session(info, devices, samples, events, {"dev0": {"gyr_bias_rad_s": [0.1, 0, 0]}}, {"anatomical_calibration": {"grade": "A"}})


def test_round_trip_is_exact(tmp_path):
    s = make_session()
    p = tmp_path / "s.hipimu"
    save_session(s, p)
    assert sorted(os.listdir(tmp_path)) == ["s.hipimu"]  # one self-contained file
    back = load_session(p)
    assert back.roles == s.roles
    for r in s.roles:
        assert back.samples[r].equals(s.samples[r]), r
    assert back.samples["pelvis"].mag_ut is None and back.samples["thigh_left"].mag_ut is not None
    assert [(e.time_s, e.kind, e.label, e.data) for e in back.events] == [(e.time_s, e.kind, e.label, e.data) for e in s.events]
    assert back.devices == s.devices
    assert back.info.subject_id == "P017" and back.info.sides == ("left", "right") and back.info.notes == "ümlaut ok"
    assert back.info.software_version.startswith("hipimu ")
    assert back.sensor_calibration == s.sensor_calibration
    assert back.results == s.results


def test_load_selected_roles(tmp_path):
    p = tmp_path / "s.hipimu"
    save_session(make_session(), p)
    assert list(load_session(p, roles=["thigh_right"]).samples) == ["thigh_right"]


def test_writer_refuses_to_overwrite(tmp_path):
    p = tmp_path / "s.hipimu"
    save_session(make_session(10), p)
    with pytest.raises(HipimuError, match="already exists"):
        save_session(make_session(10), p)
    with pytest.raises(RecordingError, match="already exists"):
        RecordingWriter(p, SessionInfo())
    save_session(make_session(20), p, overwrite=True)
    assert len(load_session(p).samples["pelvis"]) == 20


def test_failed_save_leaves_nothing(tmp_path):
    p = tmp_path / "s.hipimu"
    s = make_session(10)
    s.results["bad"] = {1, 2}  # not JSON-able: fails half-way through writing
    with pytest.raises(TypeError):
        save_session(s, p)
    assert os.listdir(tmp_path) == []


def test_atomic_output_keeps_old_file_on_error(tmp_path):
    p = tmp_path / "s.hipimu"
    save_session(make_session(10), p)
    with pytest.raises(RuntimeError):
        with atomic_output(p, overwrite=True) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert len(load_session(p).samples["pelvis"]) == 10
    assert os.listdir(tmp_path) == ["s.hipimu"]


def test_writer_rejects_time_going_backwards(tmp_path):
    with RecordingWriter(tmp_path / "s.hipimu", SessionInfo()) as rec:
        rec.append(SampleBlock("pelvis", [0.0, 0.1], np.zeros((2, 3)), np.zeros((2, 3))))
        with pytest.raises(ValueError, match="not after"):
            rec.append(SampleBlock("pelvis", [0.1, 0.2], np.zeros((2, 3)), np.zeros((2, 3))))
        with pytest.raises(ValueError, match="mag"):
            rec.append(SampleBlock("pelvis", [0.3], np.zeros((1, 3)), np.zeros((1, 3)), np.zeros((1, 3))))
    assert len(load_session(tmp_path / "s.hipimu").samples["pelvis"]) == 2


@pytest.mark.parametrize("content", [b"", b"hello, not sqlite at all" * 100])
def test_not_a_recording(tmp_path, content):
    p = tmp_path / "x.hipimu"
    p.write_bytes(content)
    with pytest.raises(RecordingError, match="not a hipimu recording"):
        load_session(p)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(RecordingError, match="no such file"):
        load_session(tmp_path / "nope.hipimu")
    with pytest.raises(RecordingError, match="directory"):
        load_session(tmp_path)


def test_forward_compatible_additions_are_ignored(tmp_path):
    """A newer writer may add tables, columns, meta keys and device fields."""
    p = tmp_path / "s.hipimu"
    save_session(make_session(50), p)
    db = sqlite3.connect(p)
    db.execute("CREATE TABLE annotations (x TEXT)")
    db.execute("ALTER TABLE chunks ADD COLUMN temp_c BLOB")
    db.execute("INSERT INTO meta VALUES ('new_key', '42')")
    info = json.loads(db.execute("SELECT info FROM devices WHERE role='pelvis'").fetchone()[0])
    info["battery_mv"] = 3900
    db.execute("UPDATE devices SET info=? WHERE role='pelvis'", (json.dumps(info),))
    db.commit()
    db.close()
    back = load_session(p)
    assert len(back.samples["pelvis"]) == 50
    assert back.devices["pelvis"].extra["battery_mv"] == 3900


def test_newer_major_format_is_refused_with_a_clear_message(tmp_path):
    p = tmp_path / "s.hipimu"
    save_session(make_session(5), p)
    db = sqlite3.connect(p)
    db.execute("UPDATE meta SET value=? WHERE key='min_reader_version'", (str(FORMAT_VERSION + 1),))
    db.commit()
    db.close()
    with pytest.raises(RecordingError, match="newer hipimu"):
        load_session(p)


def _start_writer(path, rate_hz, pace):
    env = dict(os.environ, PYTHONPATH=str(HERE.parent / "src"))
    return subprocess.Popen(
        [sys.executable, str(HERE / "crash_writer.py"), str(path), str(rate_hz), pace],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def test_sigkill_while_recording_loses_at_most_one_second(tmp_path):
    """A writer streaming 3 x 200 Hz in real time is killed with SIGKILL; the
    file opens and holds every sample up to at most 1 s before the kill."""
    p = tmp_path / "crash.hipimu"
    proc = _start_writer(p, 200.0, "realtime")
    last = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        last = float(line)
        if last >= 3.0:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert last is not None and last >= 3.0, proc.stderr.read()
    s = load_session(p)
    assert set(s.samples) == {"pelvis", "thigh_left", "thigh_right"}
    assert [e.label for e in s.events] == ["start"]
    for r, blk in s.samples.items():
        assert blk.time_s[-1] >= last - 1.0, (r, blk.time_s[-1], last)
        # contiguous, nothing torn: seq runs 0..n-1 and times match it
        np.testing.assert_array_equal(blk.seq, np.arange(len(blk)))
        np.testing.assert_allclose(blk.time_s, blk.seq / 200.0)


def test_sigkill_at_random_moments_never_corrupts(tmp_path):
    """Writers appending as fast as they can, killed at random instants."""
    rng = np.random.default_rng(3)
    for i in range(4):
        p = tmp_path / f"fast{i}.hipimu"
        proc = _start_writer(p, 1000.0, "fast")
        proc.stdout.readline()  # it is running
        time.sleep(float(rng.uniform(1.5, 3.0)))  # well past the first 0.5 s flush, even on a busy machine
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        db = sqlite3.connect(p)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()
        s = load_session(p)
        lens = {len(b) for b in s.samples.values()}
        assert len(s.samples) == 3 and min(lens) > 0
        for blk in s.samples.values():
            np.testing.assert_array_equal(blk.seq, np.arange(len(blk)))
        assert max(lens) - min(lens) <= 10  # one block of difference at most between sensors


def test_stalled_writer_still_commits_within_the_flush_interval(tmp_path):
    """Samples appended just before the source stalls reach the file anyway,
    and a second process can read the file while it is being written."""
    p = tmp_path / "live.hipimu"
    with RecordingWriter(p, SessionInfo(), flush_interval_s=0.3) as rec:
        time.sleep(0.25)  # a quiet start: the first samples come just before a flush would be due
        rec.append(SampleBlock("pelvis", np.arange(20) / 200.0, np.zeros((20, 3)), np.zeros((20, 3))))
        time.sleep(0.45)  # the caller does nothing now; at most 0.3 s + one commit later they are on disk
        live = load_session(p)  # concurrent reader while the writer is open
        assert len(live.samples["pelvis"]) == 20


def test_codec_is_read_from_the_file(tmp_path):
    """Uncompressed chunks (codec none) read as well; an unknown codec is refused clearly."""
    import zlib

    p = tmp_path / "s.hipimu"
    s = make_session(30)
    save_session(s, p)
    db = sqlite3.connect(p)
    for cid, *blobs in db.execute("SELECT id, time_s, acc_m_s2, gyr_rad_s FROM chunks").fetchall():
        db.execute("UPDATE chunks SET time_s=?, acc_m_s2=?, gyr_rad_s=? WHERE id=?", (*[zlib.decompress(b) for b in blobs], cid))
    ch = json.loads(db.execute("SELECT value FROM meta WHERE key='channels'").fetchone()[0])
    for c in ("time_s", "acc_m_s2", "gyr_rad_s"):
        ch[c]["codec"] = "none"
    db.execute("UPDATE meta SET value=? WHERE key='channels'", (json.dumps(ch),))
    db.commit()
    back = load_session(p)
    assert all(back.samples[r].equals(s.samples[r]) for r in s.roles)
    ch["seq"]["codec"] = "zstd-9"
    db.execute("UPDATE meta SET value=? WHERE key='channels'", (json.dumps(ch),))
    db.commit()
    db.close()
    with pytest.raises(RecordingError, match="zstd-9"):
        load_session(p)


def test_close_racing_append_is_clean(tmp_path):
    """Another thread appending while the writer closes gets 'recording is
    closed', never a dead connection; everything appended before is kept."""
    import threading

    p = tmp_path / "race.hipimu"
    rec = RecordingWriter(p, SessionInfo(), flush_interval_s=0.05)
    appended, errors = [], []

    def feed():
        k = 0
        while True:
            blk = SampleBlock("pelvis", (k + np.arange(5)) / 200.0, np.zeros((5, 3)), np.zeros((5, 3)), seq=k + np.arange(5))
            try:
                rec.append(blk)
            except ValueError as exc:
                errors.append(str(exc))
                return
            appended.append(k + 5)
            k += 5

    th = threading.Thread(target=feed)
    th.start()
    time.sleep(0.3)
    rec.close()
    th.join(5)
    assert errors == ["recording is closed"]
    s = load_session(p)
    assert len(s.samples["pelvis"]) == appended[-1]


def test_close_while_a_reader_holds_the_file(tmp_path):
    p = tmp_path / "shared.hipimu"
    rec = RecordingWriter(p, SessionInfo(subject_id="X"))
    rec.append(SampleBlock("pelvis", [0.0, 0.005], np.zeros((2, 3)), np.zeros((2, 3))))
    rec.flush()
    reader = sqlite3.connect(p)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM chunks").fetchone()  # holds a read snapshot
    rec.close()  # must not fail: the data is committed
    reader.rollback()
    reader.close()
    s = load_session(p)
    assert len(s.samples["pelvis"]) == 2 and s.info.subject_id == "X"


def test_update_info_keeps_provenance(tmp_path):
    p = tmp_path / "u.hipimu"
    with RecordingWriter(p, SessionInfo(subject_id="A")) as rec:
        rec.update_info(SessionInfo(subject_id="A", notes="patient reported pain at end range"))
    info = load_session(p).info
    assert info.notes.startswith("patient") and info.created_utc and info.software_version.startswith("hipimu")


def test_roles_and_event_kinds_from_a_newer_hipimu_are_skipped_with_a_warning(tmp_path):
    p = tmp_path / "newer.hipimu"
    save_session(make_session(20), p)
    db = sqlite3.connect(p)
    row = db.execute("SELECT n, t_first_s, t_last_s, time_s, acc_m_s2, gyr_rad_s, mag_ut, seq FROM chunks LIMIT 1").fetchone()
    db.execute("INSERT INTO chunks (role, n, t_first_s, t_last_s, time_s, acc_m_s2, gyr_rad_s, mag_ut, seq) VALUES ('shank_left', ?, ?, ?, ?, ?, ?, ?, ?)", row)
    db.execute("INSERT INTO devices VALUES ('shank_left', 'devS', '{}')")
    db.execute("INSERT INTO events (time_s, kind, label, data) VALUES (1.5, 'knee_bend', '', '{}')")
    db.commit()
    db.close()
    s = load_session(p)
    assert s.roles == ["pelvis", "thigh_left", "thigh_right"] and "shank_left" not in s.devices
    assert any("shank_left" in w for w in s.warnings) and any("knee_bend" in w for w in s.warnings)
    assert len(s.events) == 3 and s.format_version == FORMAT_VERSION


def test_a_failed_commit_keeps_the_samples_and_the_writer_usable(tmp_path):
    """E.g. a full disk: the error names the cause, nothing appended is lost,
    and once the cause is gone the next flush commits everything."""
    p = tmp_path / "f.hipimu"
    rec = RecordingWriter(p, SessionInfo(), flush_interval_s=float("inf"))
    real = rec._db

    class DiskFull:
        def __getattr__(self, name):
            return getattr(real, name)

        def executemany(self, *a):
            raise sqlite3.OperationalError("database or disk is full")

    rec.append(SampleBlock("pelvis", [0.0, 0.005], np.zeros((2, 3)), np.zeros((2, 3))))
    rec._db = DiskFull()
    with pytest.raises(RecordingError, match="disk is full"):
        rec.flush()
    rec._db = real
    rec.append(SampleBlock("pelvis", [0.01], np.zeros((1, 3)), np.zeros((1, 3))))
    rec.close()
    assert list(load_session(p).samples["pelvis"].time_s) == [0.0, 0.005, 0.01]


def _ble_block(role, t, dev, seq0=0):
    n = len(t)
    rng = np.random.default_rng(len(t))
    return SampleBlock(role, t, rng.normal(size=(n, 3)), rng.normal(size=(n, 3)), None, seq0 + np.arange(n), dev)


def test_device_times_round_trip_and_retime(tmp_path):
    p = tmp_path / "s.hipimu"
    dev = 1000.0 + np.arange(600) / 208.0
    live = (dev - 1000.0) * (1 + 50e-6) + 0.003  # the live clock map, a little off
    with RecordingWriter(p, SessionInfo(source="ble")) as rec:
        rec.append(_ble_block("pelvis", live[:300], dev[:300]))
        rec.flush()
        rec.append(_ble_block("pelvis", live[300:], dev[300:], 300))
        changes = rec.retime({"pelvis": lambda d: (d - 1000.0) * (1 + 100e-6)})
    back = load_session(p).samples["pelvis"]
    assert np.array_equal(back.device_time_s, dev)
    assert np.allclose(back.time_s, (dev - 1000.0) * (1 + 100e-6), rtol=0, atol=1e-12)
    assert changes["pelvis"] == pytest.approx(np.max(np.abs(live - (dev - 1000.0) * (1 + 100e-6))))
    db = sqlite3.connect(p)
    (t_first,), = db.execute("SELECT min(t_first_s) FROM chunks").fetchall()
    db.close()
    assert t_first == 0.0


def test_retime_refuses_a_map_that_goes_back(tmp_path):
    p = tmp_path / "s.hipimu"
    dev = np.arange(100) / 208.0
    with RecordingWriter(p, SessionInfo()) as rec:
        rec.append(_ble_block("pelvis", dev, dev))
        with pytest.raises(RecordingError, match="increase strictly"):
            rec.retime({"pelvis": lambda d: -d})
    assert np.array_equal(load_session(p).samples["pelvis"].time_s, dev)  # untouched


def test_format_1_files_without_device_times_still_load(tmp_path):
    p = tmp_path / "old.hipimu"
    save_session(make_session(n=50), p)
    db = sqlite3.connect(p)
    db.executescript("ALTER TABLE chunks DROP COLUMN device_time_s; UPDATE meta SET value='1' WHERE key='format_version';")
    db.close()
    back = load_session(p)
    assert back.samples["pelvis"].device_time_s is None and len(back.samples["pelvis"]) == 50
