"""Per-device sensor calibration: estimation against the virtual subject's known
sensor errors, the calibration/<device-id>.json files, and ``hipimu calibrate-sensor``."""

from __future__ import annotations

import argparse
import functools
import json
import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hipimu.apps._calibrate_sensor import add_parser
from hipimu.core.model import SampleBlock
from hipimu.core.sensor_calibration import (
    SensorCalibration,
    estimate_from_still_poses,
    estimate_mag,
    find_still_segments,
)
from hipimu.errors import HipimuError, InputError
from hipimu.sources.simulate import simulate_session
from hipimu.sources.simulate._scenarios import SCENARIOS, TRUTH_COLUMNS, simulate
from hipimu.storage.recording import save_session
from hipimu.storage.sensor_calibration_files import (
    calibration_file_name,
    calibration_path,
    load_sensor_calibration,
    save_sensor_calibration,
)

G = 9.80665
MG = G / 1000.0
ROLES = ("pelvis", "thigh_left", "thigh_right")
HOLD, PERIOD = 5.0, 7.0  # sensor_six_pose: pose k held from k * 7 s to k * 7 + 5 s


@functools.lru_cache(maxsize=None)
def sim_session(scenario: str, seed: int, mag: bool = False, ideal: bool = False):
    return simulate_session(scenario, seed=seed, mag=mag, ideal=ideal)[0]


@functools.lru_cache(maxsize=None)
def sim_raw(scenario: str, seed: int, mag: bool = False) -> dict:
    return simulate(scenario, seed=seed, mag=mag)


def errors_of(session, role: str) -> dict:
    return session.info.simulation["sensors"][role]["errors"]


def hold_mask(t: np.ndarray, margin_s: float = 0.5) -> np.ndarray:
    """Inner part of the six scripted holds (independent of the estimator's detection)."""
    m = np.zeros(t.shape, dtype=bool)
    for k in range(6):
        m |= (t > k * PERIOD + margin_s) & (t < k * PERIOD + HOLD - margin_s)
    return m


# ----------------------------------------------------------------------------
# Simulator: the table scenarios
# ----------------------------------------------------------------------------

#: Constant sensor errors and clock: what a board carries from session to session.
BOARD_KEYS = (
    "ideal", "gyr_bias_rad_s", "gyr_scale_error", "gyr_bias_random_walk_rad_s_sqrt_s",
    "gyr_noise_density_rad_s_sqrt_hz", "gyr_noise_sigma_rad_s", "gyr_lsb_rad_s", "acc_bias_m_s2",
    "acc_scale_error", "acc_noise_density_m_s2_sqrt_hz", "acc_noise_sigma_m_s2", "acc_lsb_m_s2",
    "mag_hard_iron_ut", "mag_noise_sigma_ut", "mag_lsb_ut", "clock_ppm", "clock_phase_s", "effective_rate_hz",
)


@pytest.mark.parametrize("table", ["sensor_six_pose", "sensor_mag_turns"])
def test_table_scenarios_have_the_body_scenarios_sensor_errors(table):
    body = sim_raw("seated_rotation", 5, True)
    out = sim_raw(table, 5, True)
    for role in ROLES:
        b, t = body["sensors"][role], out["sensors"][role]
        assert t["device"] == b["device"]  # same device id: sim-<role>-5
        for key in BOARD_KEYS:
            assert t["errors"][key] == b["errors"][key], (role, key)
        assert t["errors"]["mounting"] is None and t["segment"] == "table"
        assert set(t["errors"]) == set(b["errors"])
    assert out["parameters"]["mag_field"] == body["parameters"]["mag_field"]
    # ... and the errors do depend on the seed (the comparison is not vacuous).
    other = sim_raw(table, 6, True)
    assert other["sensors"]["pelvis"]["errors"]["acc_bias_m_s2"] != out["sensors"]["pelvis"]["errors"]["acc_bias_m_s2"]


def test_six_pose_scenario_geometry_and_events():
    ideal = sim_session("sensor_six_pose", 2, ideal=True)
    assert "sensor_six_pose" in SCENARIOS and "sensor_mag_turns" in SCENARIOS
    markers = [e for e in ideal.events if e.kind == "marker"]
    assert [e.data["up_axis"] for e in markers] == ["+z", "-z", "+x", "-x", "+y", "-y"]
    assert [e.time_s for e in markers] == [k * PERIOD for k in range(6)]
    for role, blk in ideal.samples.items():
        t = blk.time_s
        for k, e in enumerate(markers):
            m = (t > k * PERIOD + 0.1) & (t < k * PERIOD + HOLD - 0.1)
            a = blk.acc_m_s2[m]
            axis = "xyz".index(e.data["up_axis"][1])
            sign = 1.0 if e.data["up_axis"][0] == "+" else -1.0
            assert np.allclose(np.linalg.norm(a, axis=1), G, atol=1e-6)
            assert sign * a[:, axis].mean() > G * math.cos(math.radians(2.5))  # up within the 2 deg tilt
            assert np.abs(blk.gyr_rad_s[m]).max() < 1e-6  # truly still
        assert np.degrees(np.abs(blk.gyr_rad_s)).max() > 90  # and turned in between
    _, truth = simulate_session("sensor_six_pose", seed=2, ideal=True)
    assert tuple(truth) == TRUTH_COLUMNS
    assert all(np.all(truth[c] == 0.0) for c in TRUTH_COLUMNS[1:])
    assert truth["time_s"][-1] == pytest.approx(40.0)


# ----------------------------------------------------------------------------
# Estimation against the simulator's true errors
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_six_pose_recovers_the_true_sensor_errors(seed):
    ses = sim_session("sensor_six_pose", seed)
    ideal = sim_session("sensor_six_pose", seed, ideal=True)
    for role in ROLES:
        blk, e = ses.samples[role], errors_of(ses, role)
        cal = estimate_from_still_poses(blk, device_id=ses.devices[role].device_id)
        assert cal.device_id == f"sim-{role}-{seed}"
        assert cal.quality["poses"] == 6 and cal.quality["acc_model"] == "diagonal"
        # The true bias during the holds: raw minus scaled ideal gyro (bias, its random walk and noise).
        hold = hold_mask(blk.time_s)
        d = blk.gyr_rad_s - ideal.samples[role].gyr_rad_s * (1.0 + np.asarray(e["gyr_scale_error"]))
        true_bias = d[hold].mean(axis=0)
        assert np.degrees(np.abs(cal.gyr_bias_rad_s - true_bias)).max() < 0.05, role
        assert np.degrees(np.abs(cal.gyr_bias_rad_s - e["gyr_bias_rad_s"])).max() < 0.2, role  # before the walk
        assert np.abs(cal.acc_offset_m_s2 - e["acc_bias_m_s2"]).max() < 2 * MG, role
        assert np.abs(cal.acc_scale_error() - e["acc_scale_error"]).max() < 0.002, role
        # Corrected: |acc| = g in every pose (scripted holds, not the detector's segments).
        corr = cal.apply(blk)
        for k in range(6):
            m = (blk.time_s > k * PERIOD + 0.5) & (blk.time_s < k * PERIOD + HOLD - 0.5)
            assert abs(np.linalg.norm(corr.acc_m_s2[m].mean(axis=0)) - G) < 0.01, (role, k)
            assert np.degrees(np.abs(corr.gyr_rad_s[m].mean(axis=0))).max() < 0.1
        raw_err = max(abs(np.linalg.norm(blk.acc_m_s2[hold_mask(blk.time_s)][::50], axis=1) - G))
        assert raw_err > 0.02  # the uncorrected sensor is visibly off: the check above is not vacuous


def test_still_segments_match_the_script():
    blk = sim_session("sensor_six_pose", 0).samples["thigh_right"]
    segs = find_still_segments(blk)
    assert len(segs) == 6
    for k, s in enumerate(segs):
        assert k * PERIOD <= s.t0_s < s.t1_s <= k * PERIOD + HOLD
        assert s.duration_s > 3.0


def test_magnetometer_hard_iron():
    ses = sim_session("sensor_mag_turns", 0, mag=True)
    for role in ROLES:
        blk, e = ses.samples[role], errors_of(ses, role)
        fit = estimate_mag(blk)
        assert np.abs(fit.hard_iron_ut - e["mag_hard_iron_ut"]).max() < 0.5, role
        assert np.linalg.norm(e["mag_hard_iron_ut"]) > 1.0  # not vacuous
        assert fit.field_strength_ut == pytest.approx(49.0, abs=0.5)
        assert np.abs(fit.soft_iron - np.eye(3)).max() < 0.01  # the simulator has no soft iron
        assert np.allclose(fit.soft_iron, fit.soft_iron.T) and np.linalg.det(fit.soft_iron) == pytest.approx(1.0)
        assert fit.quality["mag_coverage"] > 0.8 and fit.quality["mag_residual_rms_ut"] < 0.5
        cal = SensorCalibration.identity("x").with_mag(fit)
        corrected = cal.apply(blk).mag_ut
        assert np.abs(np.linalg.norm(corrected, axis=1) - 49.0).max() < 2.0
        assert np.abs(np.linalg.norm(blk.mag_ut, axis=1) - 49.0).max() > 2.0


def _synthetic_block(dirs, acc_of, rate=200.0, hold_s=3.0, seed=0, mag_of=None) -> SampleBlock:
    """Still holds in the given gravity directions with 1 s of shaking between them."""
    rng = np.random.default_rng(seed)
    t, acc, gyr, mag = [], [], [], []
    t0 = 0.0
    for d in dirs:
        for n, still in ((int(hold_s * rate), True), (int(rate), False)):
            tt = t0 + np.arange(n) / rate
            t0 = tt[-1] + 1.0 / rate
            base = acc_of(G * np.asarray(d))
            acc.append(base + rng.normal(0, 0.009 if still else 2.0, (n, 3)))
            gyr.append(0.01 + rng.normal(0, 0.001 if still else 1.0, (n, 3)))
            t.append(tt)
    return SampleBlock("pelvis", np.concatenate(t), np.vstack(acc), np.vstack(gyr))


def test_many_varied_poses_give_a_symmetric_gain():
    m_true = np.array([[1.01, 0.004, -0.003], [0.004, 0.99, 0.002], [-0.003, 0.002, 1.005]])
    off = np.array([0.2, -0.1, 0.15])
    rng = np.random.default_rng(1)
    dirs = list(np.vstack([np.eye(3), -np.eye(3)])) + [v / np.linalg.norm(v) for v in rng.normal(size=(10, 3))]
    blk = _synthetic_block(dirs, lambda a: np.linalg.solve(m_true, a) + off)
    cal = estimate_from_still_poses(blk)
    assert cal.quality["acc_model"] == "symmetric" and cal.quality["acc_fit_dof"] == 16 - 9
    assert np.abs(cal.acc_gain - m_true).max() < 5e-4
    assert np.abs(cal.acc_offset_m_s2 - off).max() < 2e-3
    assert np.allclose(cal.gyr_bias_rad_s, 0.01, atol=1e-4)
    # Only the six axis poses: the cross-axis terms are invisible, so the gain stays diagonal.
    six = _synthetic_block(dirs[:6], lambda a: np.linalg.solve(np.diag(np.diag(m_true)), a) + off)
    cal6 = estimate_from_still_poses(six)
    assert cal6.quality["acc_model"] == "diagonal"
    assert np.abs(cal6.acc_gain - np.diag(np.diag(m_true))).max() < 5e-4


def test_ellipsoid_fit_recovers_soft_iron():
    rng = np.random.default_rng(3)
    soft_true = np.array([[1.05, 0.03, -0.02], [0.03, 0.97, 0.01], [-0.02, 0.01, 0.99]])
    soft_true /= np.linalg.det(soft_true) ** (1 / 3)
    hard = np.array([12.0, -7.0, 20.0])
    u = rng.normal(size=(5000, 3))
    u /= np.linalg.norm(u, axis=1)[:, None]
    raw = np.linalg.solve(soft_true, 45.0 * u.T).T + hard + rng.normal(0, 0.3, (5000, 3))
    blk = SampleBlock("pelvis", np.arange(5000) / 100.0, np.tile([0, 0, G], (5000, 1)), np.zeros((5000, 3)), raw)
    fit = estimate_mag(blk)
    assert np.abs(fit.hard_iron_ut - hard).max() < 0.1
    assert np.abs(fit.soft_iron - soft_true).max() < 2e-3
    assert fit.field_strength_ut == pytest.approx(45.0, abs=0.1)


# ----------------------------------------------------------------------------
# Refusals: one line, clear
# ----------------------------------------------------------------------------


def test_a_body_recording_is_refused():
    ses = sim_session("seated_rotation", 0)
    for role in ROLES:
        with pytest.raises(InputError) as exc:
            estimate_from_still_poses(ses.samples[role])
        msg = str(exc.value)
        assert "\n" not in msg
        assert "distinct still pose" in msg and "each axis up and with each axis down" in msg


def test_three_poses_are_refused():
    blk = sim_session("sensor_six_pose", 0).samples["pelvis"].between(0.0, 2 * PERIOD + HOLD)
    with pytest.raises(InputError) as exc:
        estimate_from_still_poses(blk)
    msg = str(exc.value)
    assert "found 3 distinct still poses" in msg and "no pose with -x, +y, -y up" in msg and "\n" not in msg


def test_too_little_still_time_is_refused():
    blk = sim_session("sensor_mag_turns", 0, mag=True).samples["pelvis"]
    with pytest.raises(InputError, match=r"s of still data"):
        estimate_from_still_poses(blk)


def test_a_moving_pose_is_refused():
    """A board nudged during one pose gives poses that disagree about g."""
    def acc_of(a):
        return a * 1.0
    dirs = list(np.vstack([np.eye(3), -np.eye(3)])) + [np.eye(3)[0]]
    blk = _synthetic_block(dirs, acc_of)
    acc = blk.acc_m_s2.copy()
    acc[-900:-200] *= 1.02  # a 2 % bigger g during the last (seventh) hold
    bad = SampleBlock("pelvis", blk.time_s, acc, blk.gyr_rad_s)
    with pytest.raises(InputError, match=r"accelerometer fit leaves .* mg RMS"):
        estimate_from_still_poses(bad)


def test_magnetometer_refusals():
    planar = sim_session("seated_rotation", 1, mag=True).samples["thigh_left"]
    with pytest.raises(InputError, match=r"turn the board slowly through all directions"):
        estimate_mag(planar)
    with pytest.raises(InputError, match=r"has no magnetometer"):
        estimate_mag(sim_session("sensor_six_pose", 0).samples["pelvis"])
    # One great circle (a turn about one axis) does not constrain an ellipsoid.
    ang = np.linspace(0, 4 * np.pi, 3000)
    circle = Rotation.from_rotvec(ang[:, None] * [0.0, 0.0, 1.0]).inv().apply([40.0, 0.0, -20.0]) + [5.0, 1.0, 2.0]
    blk = SampleBlock("pelvis", np.arange(3000) / 100.0, np.tile([0, 0, G], (3000, 1)), np.zeros((3000, 3)), circle)
    with pytest.raises(InputError) as exc:
        estimate_mag(blk)
    assert "\n" not in str(exc.value)


# ----------------------------------------------------------------------------
# The model and its JSON file
# ----------------------------------------------------------------------------


def _a_calibration() -> SensorCalibration:
    ses = sim_session("sensor_six_pose", 0)
    cal = estimate_from_still_poses(ses.samples["pelvis"], device_id="AA:BB:CC:DD:EE:FF", source={"recording": "x.hipimu"})
    return cal.with_mag(estimate_mag(sim_session("sensor_mag_turns", 0, mag=True).samples["pelvis"]))


def test_apply_returns_a_new_block_and_leaves_the_input_alone():
    cal = _a_calibration()
    blk = sim_session("sensor_mag_turns", 0, mag=True).samples["thigh_left"]
    before = [a.copy() for a in (blk.time_s, blk.acc_m_s2, blk.gyr_rad_s, blk.mag_ut, blk.seq)]
    out = cal.apply(blk)
    for a, b in zip(before, (blk.time_s, blk.acc_m_s2, blk.gyr_rad_s, blk.mag_ut, blk.seq)):
        assert np.array_equal(a, b)
    assert out is not blk and out.role == blk.role and np.array_equal(out.time_s, blk.time_s)
    assert np.array_equal(out.seq, blk.seq) and not np.shares_memory(out.time_s, blk.time_s)
    assert np.allclose(out.gyr_rad_s, blk.gyr_rad_s - cal.gyr_bias_rad_s)
    assert np.allclose(out.acc_m_s2, (cal.acc_gain @ (blk.acc_m_s2 - cal.acc_offset_m_s2).T).T)
    assert np.allclose(out.mag_ut, (cal.mag_soft_iron @ (blk.mag_ut - cal.mag_hard_iron_ut).T).T)
    no_mag = SensorCalibration.identity("y")
    assert np.array_equal(no_mag.apply(blk).mag_ut, blk.mag_ut)
    assert no_mag.apply(SampleBlock.empty("pelvis")).acc_m_s2.shape == (0, 3)


def test_json_round_trip_keeps_everything(tmp_path):
    cal = _a_calibration()
    d = cal.to_dict()
    text = json.dumps(d)
    again = SensorCalibration.from_dict(json.loads(text))
    assert again.to_dict() == d
    # Through the file, exactly (floats round-trip).
    path = save_sensor_calibration(cal, tmp_path / "cal")
    assert path == tmp_path / "cal" / "AA_BB_CC_DD_EE_FF.json"
    loaded = load_sensor_calibration("AA:BB:CC:DD:EE:FF", tmp_path / "cal")
    assert loaded is not None and loaded.to_dict() == d
    assert np.array_equal(loaded.acc_gain, cal.acc_gain) and np.array_equal(loaded.mag_soft_iron, cal.mag_soft_iron)
    on_disk = json.loads(path.read_text())
    for key in ("gyr_bias_rad_s", "acc_offset_m_s2", "acc_gain", "mag_hard_iron_ut", "mag_soft_iron", "mag_field_strength_ut"):
        assert key in on_disk
    assert on_disk["format"] == "hipimu-sensor-calibration" and on_disk["device_id"] == "AA:BB:CC:DD:EE:FF"
    # Unknown keys of a newer hipimu survive a read and a write.
    d2 = dict(d, gyr_temperature_coefficient_rad_s_k=[1e-5, 0, 0], format_version=2)
    cal2 = SensorCalibration.from_dict(d2)
    assert cal2.extra == {"gyr_temperature_coefficient_rad_s_k": [1e-5, 0, 0]}
    assert SensorCalibration.from_dict(cal2.to_dict()).extra == cal2.extra
    # Without a magnetometer part.
    plain = SensorCalibration.from_dict({k: v for k, v in d.items() if not k.startswith("mag_")})
    assert not plain.has_mag and plain.to_dict()["mag_soft_iron"] is None


def test_file_refusals(tmp_path):
    cal = _a_calibration()
    assert load_sensor_calibration("never-seen", tmp_path) is None
    save_sensor_calibration(cal, tmp_path)
    with pytest.raises(InputError, match="already exists"):
        save_sensor_calibration(cal, tmp_path)
    save_sensor_calibration(cal, tmp_path, overwrite=True)
    # The same file name, another id: never applied to the wrong board.
    with pytest.raises(InputError, match="holds the calibration of device 'AA:BB:CC:DD:EE:FF'"):
        load_sensor_calibration("AA_BB_CC_DD_EE_FF", tmp_path)
    bad = tmp_path / calibration_file_name("broken")
    bad.write_text('{"device_id": "broken", ')
    with pytest.raises(InputError, match=r"broken\.json:1: not valid JSON"):
        load_sensor_calibration("broken", tmp_path)
    bad.write_text(json.dumps(dict(cal.to_dict(), device_id="broken", min_reader_version=2)))
    with pytest.raises(InputError, match="newer hipimu"):
        load_sensor_calibration("broken", tmp_path)
    bad.write_text(json.dumps(dict(cal.to_dict(), device_id="broken", acc_gain=[[1, 0], [0, 1]])))
    with pytest.raises(InputError, match="acc_gain must be a 3x3 matrix"):
        load_sensor_calibration("broken", tmp_path)
    assert calibration_file_name("..") == "_..json" and calibration_file_name("a/b\\c") == "a_b_c.json"
    with pytest.raises(InputError):
        calibration_file_name("")
    assert not list(tmp_path.glob(".*partial"))


# ----------------------------------------------------------------------------
# The command
# ----------------------------------------------------------------------------


def calibrate(capsys, *argv: str) -> tuple[int, str, str]:
    """Run 'calibrate-sensor' as hipimu's main() would: one line and 2 on HipimuError."""
    parser = argparse.ArgumentParser(prog="hipimu")
    add_parser(parser.add_subparsers(dest="command", required=True), argparse.RawDescriptionHelpFormatter)
    args = parser.parse_args(["calibrate-sensor", *argv])
    try:
        rc = args.func(args)
    except HipimuError as exc:
        print(f"hipimu: error: {exc}", file=__import__("sys").stderr)
        rc = 2
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_end_to_end(capsys, tmp_path):
    six, turns = tmp_path / "six.hipimu", tmp_path / "turns.hipimu"
    save_session(sim_session("sensor_six_pose", 4), six)
    save_session(sim_session("sensor_mag_turns", 4, mag=True), turns)
    folder = tmp_path / "calibration"
    rc, out, err = calibrate(capsys, str(six), "--role", "thigh_left", "-o", str(folder))
    assert rc == 0, err
    assert [p.name for p in folder.iterdir()] == ["sim-thigh_left-4.json"]
    assert "6 poses" in out and "deg/s" in out and "mg" in out and "%" in out

    rc, out, err = calibrate(capsys, str(six), "--mag", str(turns), "-o", str(folder), "--force")
    assert rc == 0, err
    ses = sim_session("sensor_six_pose", 4)
    for role in ROLES:
        dev_id = f"sim-{role}-4"
        assert calibration_path(dev_id, folder).is_file() and dev_id in out
        cal = load_sensor_calibration(dev_id, folder)
        direct = estimate_from_still_poses(ses.samples[role])
        assert np.array_equal(cal.gyr_bias_rad_s, direct.gyr_bias_rad_s)
        assert np.array_equal(cal.acc_offset_m_s2, direct.acc_offset_m_s2)
        assert np.array_equal(cal.acc_gain, direct.acc_gain)
        e = errors_of(ses, role)
        assert np.abs(cal.acc_offset_m_s2 - e["acc_bias_m_s2"]).max() < 2 * MG
        assert np.abs(cal.mag_hard_iron_ut - errors_of(sim_session("sensor_mag_turns", 4, mag=True), role)["mag_hard_iron_ut"]).max() < 0.5
        assert cal.source["recording"] == "six.hipimu" and cal.source["mag_recording"] == "turns.hipimu"
        assert cal.source["role"] == role and cal.quality["poses"] == 6
    assert "uT" in out

    # Existing files are kept without --force (and nothing is half-done).
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    rc, out, err = calibrate(capsys, str(six), "-o", str(folder))
    assert rc == 2 and "already exists (use --force" in err and len(err.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


@pytest.mark.parametrize(
    "case, word",
    [
        ("body", "distinct still pose"),
        ("three", "found 3 distinct still poses"),
        ("device", "no board with device id 'nope'"),
        ("mag_missing", "has no magnetometer samples"),
    ],
)
def test_cli_bad_input_is_one_line_and_writes_nothing(capsys, tmp_path, case, word):
    six = tmp_path / "six.hipimu"
    save_session(sim_session("sensor_six_pose", 4), six)
    argv = [str(six)]
    if case == "body":
        body = tmp_path / "body.hipimu"
        save_session(sim_session("seated_rotation", 0), body)
        argv = [str(body)]
    elif case == "three":
        ses = sim_session("sensor_six_pose", 4)
        cut = type(ses)(ses.info, ses.devices, {r: b.between(0, 2 * PERIOD + HOLD) for r, b in ses.samples.items()})
        three = tmp_path / "three.hipimu"
        save_session(cut, three)
        argv = [str(three)]
    elif case == "device":
        argv += ["--device", "nope"]
    elif case == "mag_missing":
        argv += ["--mag", str(six)]
    folder = tmp_path / "out"
    rc, out, err = calibrate(capsys, *argv, "-o", str(folder))
    assert rc == 2
    assert err.startswith("hipimu: error: ") and len(err.strip().splitlines()) == 1
    assert word in err
    assert not folder.exists() or not any(folder.iterdir())


def test_hipimu_main_runs_calibrate_sensor(capsys, tmp_path):
    """The subcommand is wired into 'hipimu' (cli.build_parser calls add_parser)."""
    from hipimu.apps.cli import main

    six = tmp_path / "six.hipimu"
    save_session(sim_session("sensor_six_pose", 4), six)
    rc = main(["calibrate-sensor", str(six), "--role", "pelvis", "-o", str(tmp_path / "cal")])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert (tmp_path / "cal" / "sim-pelvis-4.json").is_file() and "6 poses" in out.out
    rc = main(["calibrate-sensor", str(six), "--role", "pelvis", "-o", str(tmp_path / "cal")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("hipimu: error: ") and len(err.strip().splitlines()) == 1
