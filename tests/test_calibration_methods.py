"""The calibration methods (routine, walk, seated, static), their automatic
choice and fallback, signs from posture, and bad input through the CLI."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hipimu.apps.cli import main
from hipimu.core.calibration import CalibrationError
from hipimu.core.model import SampleBlock
from hipimu.core.pipeline import PipelineOptions, angle_table_deg, process_session
from hipimu.sources.simulate import simulate_session
from hipimu.storage.recording import save_session


def _rmse_after(result, truth, column, after_s):
    table = angle_table_deg(result.angles)
    t = table["time_s"]
    ti = np.clip(np.round((t - truth["time_s"][0]) * 100).astype(int), 0, len(truth["time_s"]) - 1)
    m = t > after_s
    d = (table[column][m] - truth[column][ti][m] + 180.0) % 360.0 - 180.0
    return float(np.sqrt(np.mean(d**2)))


@pytest.fixture(scope="module")
def squat():
    return simulate_session("squat", seed=5)


def _cut(session, a, b):
    samples = {}
    for r, blk in session.samples.items():
        m = (blk.time_s < a) | (blk.time_s > b)
        samples[r] = SampleBlock(r, blk.time_s[m], blk.acc_m_s2[m], blk.gyr_rad_s[m], None if blk.mag_ut is None else blk.mag_ut[m], blk.seq[m])
    return dataclasses.replace(session, samples=samples, events=[e for e in session.events if not a <= e.time_s <= b])


def test_routine_is_picked_and_named(squat):
    res = process_session(squat[0])
    assert res.calibration.method == "routine" and res.calibration.grade in "ABC"
    assert res.calibration.to_dict()["method"] == "routine"


def test_static_method_follows_the_truth_and_is_flagged(squat):
    session, truth = squat
    res = process_session(session, PipelineOptions(calibration="static"))
    cal = res.calibration
    assert cal.method == "static" and cal.grade == "D" and any("mounting" in n for n in cal.notes)
    # axes from the boards' mounting (tilted up to 15 deg on the skin): flexion stays close, the rest is worse
    assert _rmse_after(res, truth, "hip_flexion_right_deg", 37.0) < 5.0
    assert _rmse_after(res, truth, "pelvis_tilt_deg", 37.0) < 3.0


def test_fallback_to_static_says_why(squat):
    session, truth = squat
    # no hinges, no knee lifts: only the standing and the squats are left
    cut = _cut(session, 5.0, 33.0)
    res = process_session(cut)
    cal = res.calibration
    assert cal.method == "static"
    assert any(n.startswith("routine calibration not possible:") for n in cal.notes)
    assert any(n.startswith("walk calibration not possible:") for n in cal.notes)


def test_nothing_works_names_every_method(squat):
    session, _ = squat
    cut = _cut(session, -1.0, 5.3)  # no standing still at the start
    cut = _cut(cut, 32.5, 40.0)
    with pytest.raises(CalibrationError) as exc:
        process_session(_cut(cut, 40.0, 200.0))
    msg = str(exc.value)
    for m in ("routine:", "walk:", "seated:", "static:"):
        assert m in msg


def test_routine_sign_from_posture_not_window_start(squat):
    """A functional window that starts in the middle of a knee lift gives the same axes."""
    session, _ = squat
    full = process_session(session).calibration
    w = full.windows
    thigh = w.functional["thigh_right"]
    mid = {**w.functional, "thigh_right": (thigh[0] + 1.5, thigh[1])}  # starts with the first lift half done
    opts = PipelineOptions(calibration="routine", static=w.static, windows=mid)
    late = process_session(session, opts).calibration
    a = full.segments["thigh_right"].segment_in_sensor
    b = late.segments["thigh_right"].segment_in_sensor
    assert np.degrees((a.inv() * b).magnitude()) < 2.0


def test_windows_per_sensor_given(squat):
    session, _ = squat
    w = process_session(session).calibration.windows
    res = process_session(session, PipelineOptions(static=w.static, windows=dict(w.functional)))
    assert res.calibration.method == "routine" and res.calibration.windows.found == "given"


def _flip_upside_down(session, role):
    """The board turned over on the skin: 180 deg about its x axis (+z into the skin)."""
    samples = dict(session.samples)
    b = samples[role]
    f = np.array([1.0, -1.0, -1.0])
    samples[role] = SampleBlock(role, b.time_s, b.acc_m_s2 * f, b.gyr_rad_s * f, None if b.mag_ut is None else b.mag_ut * f, b.seq)
    return dataclasses.replace(session, samples=samples)


def test_upside_down_sensor_is_refused(squat):
    with pytest.raises(CalibrationError, match="upside down") as exc:
        process_session(_flip_upside_down(squat[0], "thigh_left"))
    assert exc.value.gate == "mounting_contradiction"


@pytest.mark.parametrize("case", ["no_still", "thigh_only", "upside_down"])
def test_bad_input_one_line_exit_2_no_csv(squat, tmp_path, capsys, case):
    session, _ = squat
    if case == "no_still":
        s = _cut(_cut(session, -1.0, 5.3), 32.5, 200.0)
    elif case == "thigh_only":
        s = dataclasses.replace(session, samples={r: b for r, b in session.samples.items() if r == "thigh_right"},
                                devices={r: d for r, d in session.devices.items() if r == "thigh_right"})
    else:
        s = _flip_upside_down(session, "thigh_right")
    path = tmp_path / "s.hipimu"
    save_session(s, path)
    out = tmp_path / "a.csv"
    assert main(["angles", str(path), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hipimu: error:"), err
    assert not out.exists()


def test_cli_names_the_method_and_the_fallback(squat, tmp_path, capsys):
    session, _ = squat
    path = tmp_path / "s.hipimu"
    save_session(_cut(session, 5.0, 33.0), path)
    assert main(["angles", str(path), "-o", str(tmp_path / "a.csv")]) == 0
    out = capsys.readouterr().out
    assert "calibration: static, grade D" in out
    assert "note: routine calibration not possible:" in out
    assert main(["angles", str(path), "-o", str(tmp_path / "b.csv"), "--calibration", "walk"]) == 2
    assert "walk: found no straight walking" in capsys.readouterr().err


def test_bad_mount_and_window_options(squat, tmp_path, capsys):
    path = tmp_path / "s.hipimu"
    save_session(squat[0], path)
    for bad in (["--mount", "thigh_left=+q"], ["--mount", "knee=+z"], ["--window", "thigh_left=5"], ["--calibration", "lying"]):
        with pytest.raises(SystemExit) as exc:
            main(["angles", str(path), "-o", str(tmp_path / "a.csv"), *bad])
        assert exc.value.code == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1




@pytest.fixture(scope="module", params=[(3, "right"), (3, "left"), (0, "left")])
def walk(request):
    """Seed 0 (left leg first): the longest straight walk is the one after the turn."""
    from hipimu.sources.simulate import simulate

    seed, leg = request.param
    sim = simulate("walk", seed=seed, realism="real", first_leg=leg)
    session, truth = simulate_session("walk", seed=seed, realism="real", first_leg=leg)
    return session, truth, sim["script"]["straight_walks_s"]


def test_walk_method_on_a_gait_trial_either_leading_leg(walk):
    session, truth, _ = walk
    res = process_session(session)  # no routine in a gait trial: the walk method is picked
    assert res.calibration.method == "walk"
    assert any(n.startswith("routine calibration not possible:") for n in res.calibration.notes)
    after = res.calibration.windows.static[1] + 1.0
    for side in ("left", "right"):
        assert _rmse_after(res, truth, f"hip_flexion_{side}_deg", after) < 2.0
        assert _rmse_after(res, truth, f"hip_rotation_{side}_deg", after) < 3.0
        assert _rmse_after(res, truth, f"hip_adduction_{side}_deg", after) < 3.0


def test_any_straight_stretch_gives_the_same_angles(walk):
    """The first and the second straight walk (after the turn; each may start mid-stride) agree within 1 deg."""
    session, _, stretches = walk
    static = process_session(session).calibration.windows.static
    tables = []
    for a, b in stretches[:2]:
        w = (a + 0.7, b - 0.5)  # starts mid-stride
        opts = PipelineOptions(calibration="walk", static=static, windows={"thigh_left": w, "thigh_right": w})
        tables.append(angle_table_deg(process_session(session, opts).angles))
    for c in ("hip_flexion_left_deg", "hip_flexion_right_deg", "hip_adduction_right_deg", "hip_rotation_left_deg", "pelvis_tilt_deg"):
        assert np.sqrt(np.mean((tables[0][c] - tables[1][c]) ** 2)) < 1.0, c


def test_seated_method_on_a_patient_who_never_stands():
    session, truth = simulate_session("sitting_rotation", seed=4, realism="real")
    res = process_session(session)  # the seated routine's phase events choose the method
    cal = res.calibration
    assert cal.method == "seated" and cal.grade == "C" and cal.windows.final is not None
    assert any("relative to upright sitting" in n for n in cal.notes)
    after = cal.windows.end_s
    for side in ("left", "right"):  # rotation as for the routine; flexion carries the sitting pelvic tilt
        assert _rmse_after(res, truth, f"hip_rotation_{side}_deg", after) < 2.5
        assert _rmse_after(res, truth, f"hip_flexion_{side}_deg", after) > 2.0


def test_every_method_zeroes_at_the_standing_pose(squat):
    """One zero for every method: the standing calibration pose reads 0, and the
    methods' angles of the same movement agree to within the static method's error."""
    session, _ = squat
    tables = {}
    for method in ("routine", "static"):
        res = process_session(session, PipelineOptions(calibration=method))
        tables[method] = angle_table_deg(res.angles)
        t = tables[method]["time_s"]
        a, b = res.calibration.windows.static  # the axes' vertical is taken here ...
        first = (t >= a) & (t <= b)
        w = res.calibration.windows.aligned_s  # ... and the headings here (the routine: its closing stand)
        aligned = (t >= w) & (t <= w + 1.0)
        for c, v in tables[method].items():
            if c != "time_s":
                m = aligned if "rotation" in c else first  # headings: hip and pelvis rotation
                assert np.abs(v[m]).mean() < 0.5, (method, c)
    for c in ("hip_flexion_left_deg", "hip_flexion_right_deg", "pelvis_tilt_deg"):
        assert np.sqrt(np.mean((tables["routine"][c] - tables["static"][c]) ** 2)) < 2.0, c


def test_given_windows_must_run_forward(squat):
    """Windows given through the Python API are checked where every method takes them."""
    session, _ = squat
    for opts in (PipelineOptions(static=(4.0, 0.5)), PipelineOptions(static=(0.5, 4.0), windows={"thigh_left": (20.0, 12.0)})):
        with pytest.raises(CalibrationError, match="the end must be after the start"):
            process_session(session, opts)
