"""The measuring instrument: orientation, anatomical calibration, angles, quality,
and `hipimu angles`, checked against the virtual subject's ground truth."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hipimu.apps.cli import main
from hipimu.core.calibration import CalibrationError, calibrate, find_windows
from hipimu.core.conventions import ANGLE_COLUMNS, hip_column
from hipimu.core.model import SampleBlock, Session
from hipimu.core.orientation import OrientationTracker, estimate_orientation
from hipimu.core.pipeline import PipelineOptions, angle_table_deg, process_session
from hipimu.sources.base import interleave
from hipimu.sources.simulate import simulate_session
from hipimu.sources.simulate._scenarios import simulate
from hipimu.storage.angles_csv import read_angles_csv
from hipimu.storage.recording import load_session

REC = Path(__file__).parent.parent / "recordings"


@pytest.fixture(scope="module")
def squat():
    return simulate_session("squat", seed=5)


def orientations_of(session, **kw):
    return {r: estimate_orientation(b, session.devices[r].rate_hz, **kw) for r, b in session.samples.items()}


def rmse(a, b):
    d = (a - b + 180) % 360 - 180
    return float(np.sqrt(np.mean(d**2)))


# --- orientation -------------------------------------------------------------


def test_incremental_equals_batch_even_across_gaps():
    s, _ = simulate_session("static", seed=2, duration_s=5, loss=0.05)
    blk = s.samples["thigh_left"]
    batch = estimate_orientation(blk, 200.0)
    tr = OrientationTracker("thigh_left", 200.0)
    parts = [tr.update(b) for b in interleave({"thigh_left": blk}, 0.04)]
    assert batch.filled.sum() > 0  # there were gaps to fill
    np.testing.assert_array_equal(np.vstack([p.quat_wxyz for p in parts]), batch.quat_wxyz)
    np.testing.assert_array_equal(np.concatenate([p.time_s for p in parts]), batch.time_s)


def test_inclination_of_ideal_sensors():
    sim = simulate("seated_rotation", seed=3, ideal=True)
    for role, s in sim["sensors"].items():
        o = estimate_orientation(SampleBlock(role, s["time_s"], s["acc_m_s2"], s["gyr_rad_s"]), 200.0)
        up_est = o.rotation().inv().apply([0, 1, 0])
        up_true = Rotation.from_quat(s["orientation_wxyz"], scalar_first=True).inv().apply([0, 1, 0])
        err = np.degrees(np.arccos(np.clip(np.sum(up_est * up_true, axis=1), -1, 1)))
        assert err[400:].mean() < 0.5, (role, err.mean())


def test_output_is_in_the_y_up_world():
    s, _ = simulate_session("static", seed=1, duration_s=3, ideal=True)
    o = estimate_orientation(s.samples["pelvis"], 200.0)
    acc_world = o.rotation()[-1].apply(s.samples["pelvis"].acc_m_s2[-1])
    np.testing.assert_allclose(acc_world, [0, 9.80665, 0], atol=0.05)


# --- anatomical calibration ----------------------------------------------------


def test_calibration_recovers_the_true_mounting():
    sim = simulate("squat", seed=7, ideal=True)
    session, _ = simulate_session("squat", seed=7, ideal=True)
    ori = orientations_of(session)
    cal = calibrate(ori, find_windows(ori, session.events))
    assert cal.grade == "A"
    for role, seg in cal.segments.items():
        true_seg_in_sensor = Rotation.from_quat(sim["sensors"][role]["mounting_wxyz"], scalar_first=True).inv()
        err = np.degrees((seg.segment_in_sensor.inv() * true_seg_in_sensor).magnitude())
        assert err < 2.0, (role, err)


def test_detected_windows_agree_with_the_events(squat):
    session, _ = squat
    ori = orientations_of(session)
    by_events = find_windows(ori, session.events)
    detected = find_windows(ori, [])
    assert detected.found == "detected" and by_events.found == "events"
    # still from the first sample (the subject already stands before the event) to the end of standing
    assert detected.static[1] - detected.static[0] >= 2.0
    assert by_events.static[0] + 2.0 <= detected.static[1] <= by_events.functional["pelvis"][0] + 0.5
    for r, (a, b) in by_events.functional.items():
        da, db = detected.functional[r]
        assert abs(da - a) < 1.5 and abs(db - b) < 1.5, (r, (a, b), (da, db))


def _swap(session, r1, r2):
    samples = dict(session.samples)
    samples[r1], samples[r2] = (SampleBlock(r1, *_arrays(samples[r2])), SampleBlock(r2, *_arrays(samples[r1])))
    return Session(session.info, session.devices, samples, session.events)


def _arrays(b):
    return b.time_s, b.acc_m_s2, b.gyr_rad_s, b.mag_ut, b.seq


@pytest.mark.parametrize(
    "r1,r2,message",
    [
        ("thigh_left", "thigh_right", "leg moved"),
        ("pelvis", "thigh_right", "swapped"),
    ],
)
def test_gates_catch_swapped_sensors(squat, r1, r2, message):
    with pytest.raises(CalibrationError, match=message):
        process_session(_swap(squat[0], r1, r2))


def test_gate_too_little_motion():
    s, _ = simulate_session("static", seed=1, duration_s=20)
    with pytest.raises(CalibrationError, match="too little motion"):
        process_session(s, PipelineOptions(static=(0.5, 4.0), functional=(40.0, 50.0)))


def test_gate_not_still():
    s, _ = simulate_session("squat", seed=1)
    # "standing" during the knee lifts
    with pytest.raises(CalibrationError, match="not still"):
        process_session(s, PipelineOptions(static=(13.0, 16.0), functional=(5.0, 33.0)))


def test_no_pelvis_sensor(squat):
    s = squat[0]
    s2 = Session(s.info, s.devices, {r: b for r, b in s.samples.items() if r != "pelvis"}, s.events)
    with pytest.raises(CalibrationError, match="no pelvis sensor"):
        process_session(s2)


# --- angles and quality ----------------------------------------------------------


def test_squat_accuracy(squat):
    """Bounds for CI on one short scenario; bench/accuracy.py measures all.

    Without a per-device sensor calibration the simulated accelerometer offsets
    (~20 mg) alone tilt a segment by ~1-2 deg, hence the flexion bound here;
    the issue's target (<= 1 deg) needs the sensor calibration."""
    session, truth = squat
    res = process_session(session)
    table = angle_table_deg(res.angles)
    ti = np.round(table["time_s"] * 100).astype(int)
    after = table["time_s"] > 37.0
    for side in ("left", "right"):
        assert rmse(table[hip_column("flexion", side)][after], truth[hip_column("flexion", side)][ti][after]) < 3.0
        assert rmse(table[hip_column("rotation", side)][after], truth[hip_column("rotation", side)][ti][after]) < 4.0
    assert rmse(table["pelvis_tilt_deg"][after], truth["pelvis_tilt_deg"][ti][after]) < 1.0


def test_only_the_thighs_present_get_columns(squat):
    s = squat[0]
    s2 = Session(s.info, s.devices, {r: b for r, b in s.samples.items() if r != "thigh_left"}, s.events)
    table = angle_table_deg(process_session(s2).angles)
    assert "hip_rotation_right_deg" in table and "hip_rotation_left_deg" not in table


def test_quality_drops_in_gaps_and_with_time_since_alignment():
    s, _ = simulate_session("static", seed=4, duration_s=400, loss=0.01, rate_hz=50)
    res = process_session(s, PipelineOptions(use_stance=False))  # nothing re-aligns the heading
    q, t = res.angles.quality, res.angles.time_s
    first = (t > 40) & (t < 200)
    assert 0.0 < np.mean(q[first] == 0) < 0.15  # lost packets
    good = q > 0
    early = good & (t > 40) & (t < 60)
    late = t > 380
    assert q[early].min() > 0.7 and q[late].max() < 0.1  # 6D heading: unreliable after minutes without alignment


def six_pose_calibrations(seed):
    from hipimu.core.sensor_calibration import estimate_from_still_poses

    six, _ = simulate_session("sensor_six_pose", seed=seed)
    return {six.devices[r].device_id: estimate_from_still_poses(b, device_id=six.devices[r].device_id) for r, b in six.samples.items()}


def rotation_errors(session, truth, res):
    """Per side: RMSE of hip rotation in the side's own trials, worst peak IR/ER error."""
    table = angle_table_deg(res.angles)
    t = table["time_s"]
    ti = np.round(t * 100).astype(int)
    out = {}
    for side in ("left", "right"):
        c = hip_column("rotation", side)
        m = np.zeros(t.shape, bool)
        peaks = []
        for a, b, ev in session.intervals("trial"):
            if ev.data["side"] == side:
                mm = (t >= a) & (t <= b)
                m |= mm
                est, tru = table[c][mm], truth[c][ti[mm]]
                peaks += [abs(est.max() - tru.max()), abs(est.min() - tru.min())]
        out[side] = (rmse(table[c][m], truth[c][ti][m]), max(peaks))
    return out


def test_zero_event_tares_heading_and_axial_offset():
    """Seated IR/ER: the zero event sets both the heading (adduction) and the
    femur's axial offset (rotation); without it the knee lifts' imperfect
    axis (the virtual subject adds 1-3 deg of adduction and rotation to each
    lift) shows as a rotation offset."""
    s, truth = simulate_session("seated_rotation", seed=1)
    cals = six_pose_calibrations(1)
    res = process_session(s, None, cals)
    zeros = [a for a in res.angles.anchors if a.source == "zero event"]
    assert len(zeros) == 2 and max(abs(a.axial_rad) for a in zeros) > np.radians(0.5)
    with_zero = rotation_errors(s, truth, res)
    without = rotation_errors(s, truth, process_session(s, PipelineOptions(use_zero_events=False), cals))
    for side in ("left", "right"):
        assert with_zero[side][0] < 1.5 and with_zero[side][1] < 2.0  # the targets
    assert max(w[1] for w in without.values()) > max(w[1] for w in with_zero.values()) + 0.5


@pytest.fixture(scope="module")
def long_mixed():
    s, truth = simulate_session("long_mixed", seed=1, duration_s=120.0)
    return s, truth, six_pose_calibrations(1)


def _rotation_error_and_quality(long_mixed, **options):
    s, truth, cals = long_mixed
    res = process_session(s, PipelineOptions(**options), cals)
    table = angle_table_deg(res.angles)
    ti = np.round(table["time_s"] * 100).astype(int)
    after = table["time_s"] > 38.0
    err = np.max([np.abs(table[hip_column("rotation", side)] - truth[hip_column("rotation", side)][ti]) for side in ("left", "right")], axis=0)
    return res, err[after], res.angles.quality[after]


def test_still_standing_realigns_heading_in_free_movement(long_mixed):
    """Marching and whole-body turns without a magnetometer: the relative
    heading wanders by degrees; still stances between movements re-align it."""
    res, err, _ = _rotation_error_and_quality(long_mixed)
    assert sum(a.source == "still standing" for a in res.angles.anchors) >= 10
    _, err_off, _ = _rotation_error_and_quality(long_mixed, use_stance=False)
    rms, rms_off = np.sqrt(np.mean(err**2)), np.sqrt(np.mean(err_off**2))
    assert rms < 2.0 and rms < 0.6 * rms_off


def test_quality_turns_bad_where_rotation_is_wrong(long_mixed):
    """Without re-alignment the heading errors grow with time and turns; the
    quality must say so where the rotation is off by more than 3 deg."""
    _, err, q = _rotation_error_and_quality(long_mixed, use_stance=False)
    assert (err > 3).mean() > 0.1  # there is something to flag
    assert q[err > 3].mean() < 0.3
    assert q[err < 1].mean() > 0.5


def test_no_still_standing_alignment_inside_tests(squat):
    """A squat stance (toes out) is part of the measurement, never re-aligned."""
    res = process_session(squat[0])
    assert not any(a.source == "still standing" for a in res.angles.anchors)


# --- the command -------------------------------------------------------------------


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_angles_command(capsys, tmp_path):
    rec = tmp_path / "s.hipimu"
    shutil.copy(REC / "sim_squat.hipimu", rec)
    out = tmp_path / "angles.csv"
    ori = tmp_path / "q.csv"
    rc, stdout, err = run(capsys, "angles", rec, "-o", out, "--orientations", ori)
    assert rc == 0, err
    table = read_angles_csv(out)
    assert tuple(table) == ANGLE_COLUMNS + ("quality",)
    assert np.allclose(np.diff(table["time_s"]), 0.01)
    assert "calibration: routine, grade" in stdout
    q = read_angles_csv(ori)
    assert list(q)[1:5] == ["pelvis_qw", "pelvis_qx", "pelvis_qy", "pelvis_qz"]
    stored = load_session(rec).results["anatomical_calibration"]
    assert stored["grade"] in "ABC" and set(stored["segments"]) == {"pelvis", "thigh_left", "thigh_right"}


def test_failed_calibration_writes_no_csv(capsys, tmp_path):
    out = tmp_path / "angles.csv"
    rc, _, err = run(capsys, "angles", REC / "sim_squat.hipimu", "-o", out, "--static", "13:16", "--functional", "5:33")
    assert rc == 2 and err.count("\n") == 1 and "not still" in err
    assert not out.exists()
    rc, _, err = run(capsys, "angles", REC / "sim_squat.hipimu", "-o", out, "--functional", "5:33")
    assert rc == 2 and "--static" in err and not out.exists()


def test_squat_accuracy_with_sensor_calibration(squat):
    """With each board calibrated once (six still poses), flexion and pelvic
    tilt meet the issue's targets (<= 1 deg, <= 0.5 deg)."""
    from hipimu.core.sensor_calibration import estimate_from_still_poses

    six, _ = simulate_session("sensor_six_pose", seed=5)
    cals = {six.devices[r].device_id: estimate_from_still_poses(b, device_id=six.devices[r].device_id) for r, b in six.samples.items()}
    session, truth = squat
    res = process_session(session, None, cals)
    assert sorted(res.sensor_calibration_applied) == sorted(cals)
    table = angle_table_deg(res.angles)
    ti = np.round(table["time_s"] * 100).astype(int)
    after = table["time_s"] > 37.0
    for side in ("left", "right"):
        assert rmse(table[hip_column("flexion", side)][after], truth[hip_column("flexion", side)][ti][after]) < 1.0
        assert rmse(table[hip_column("adduction", side)][after], truth[hip_column("adduction", side)][ti][after]) < 3.0
    assert rmse(table["pelvis_tilt_deg"][after], truth["pelvis_tilt_deg"][ti][after]) < 0.5


def test_angles_command_applies_calibration_files(capsys, tmp_path):
    six = tmp_path / "six.hipimu"
    rc, _, err = run(capsys, "simulate", "--scenario", "sensor_six_pose", "--seed", "11", "--rate", "100", "-o", six)
    assert rc == 0, err
    rc, _, err = run(capsys, "calibrate-sensor", six, "-o", tmp_path / "cal")
    assert rc == 0, err
    rec = tmp_path / "s.hipimu"
    shutil.copy(REC / "sim_squat.hipimu", rec)  # seed 11: the same boards
    rc, out, err = run(capsys, "angles", rec, "-o", tmp_path / "a.csv", "--calibration-dir", tmp_path / "cal")
    assert rc == 0, err
    assert "sensor calibration applied: sim-pelvis-11" in out
    assert len(load_session(rec).results["anatomical_calibration"]["sensor_calibration_applied"]) == 3


def test_progress_bar_only_on_a_terminal(tmp_path):
    import os
    import pty
    import subprocess
    import sys

    rec = tmp_path / "s.hipimu"
    shutil.copy(REC / "sim_squat.hipimu", rec)
    cmd = [sys.executable, "-c", "import sys; from hipimu.apps.cli import main; sys.exit(main(sys.argv[1:]))", "angles", str(rec)]
    master, slave = pty.openpty()
    proc = subprocess.run([*cmd, "-o", str(tmp_path / "a.csv")], stderr=slave, stdout=subprocess.PIPE)
    os.close(slave)
    chunks = []
    while True:
        try:
            b = os.read(master, 65536)
        except OSError:  # EIO: the child side is closed
            break
        if not b:
            break
        chunks.append(b)
    os.close(master)
    tty_err = b"".join(chunks).decode()
    assert proc.returncode == 0
    assert "[####" in tty_err and "100 %" in tty_err and "fusing thigh_left" in tty_err
    plain = subprocess.run([*cmd, "-o", str(tmp_path / "b.csv")], capture_output=True, text=True)
    assert plain.returncode == 0 and plain.stderr == ""  # not a terminal: no bar
