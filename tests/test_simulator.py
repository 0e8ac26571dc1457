"""Tests of the virtual subject's physics (hipimu.sources.simulate._body/_scenarios).

The simulator is hipimu's independent ground truth, so these tests check it
against physics and geometry (gyro integration, gravity, lever arms, where
the knee and the foot go) and, once, against ``hipimu.core.conventions``.
"""

from __future__ import annotations

import ast
import functools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from hipimu.core import conventions
from hipimu.sources.simulate import _body, _scenarios
from hipimu.sources.simulate._scenarios import SCENARIOS, TRUTH_COLUMNS, build_motion, simulate, task_truth

G = 9.80665
ROLES = ("pelvis", "thigh_left", "thigh_right")
SIDE_SIGN = {"left": -1.0, "right": 1.0}
SIM_DIR = Path(_scenarios.__file__).parent


@functools.lru_cache(maxsize=None)
def _sim_cached(scenario: str, seed: int, rate_hz: float, mag: bool, duration_s, loss: float, ideal: bool,
                realism: str = "clean", first_leg=None) -> dict:
    return simulate(scenario, seed=seed, rate_hz=rate_hz, mag=mag, duration_s=duration_s, loss=loss, ideal=ideal,
                    realism=realism, first_leg=first_leg)


def sim(scenario: str, *, seed: int = 0, rate_hz: float = 200.0, mag: bool = False, duration_s=None,
        loss: float = 0.0, ideal: bool = False, realism: str = "clean", first_leg=None) -> dict:
    """simulate(), cached across tests (callers must not modify the result)."""
    return _sim_cached(scenario, seed, float(rate_hz), mag, duration_s, float(loss), ideal, realism, first_leg)


def rot(q) -> Rotation:
    return Rotation.from_quat(np.asarray(q), scalar_first=True)


def segs(out: dict) -> tuple[Rotation, dict[str, Rotation]]:
    s = out["segments"]
    return rot(s["pelvis_wxyz"]), {side: rot(s[f"femur_{side}_wxyz"]) for side in ("left", "right")}


def window(out: dict, kind_start: str, kind_end: str, label: str, **data) -> list[tuple[float, float]]:
    """(start, end) times of intervals whose start event matches label and data."""
    ev = out["events"]
    spans = []
    for i, (t, kind, lab, d) in enumerate(ev):
        if kind == kind_start and lab == label and all(d.get(k) == v for k, v in data.items()):
            end = next(e for e in ev[i + 1:] if e[1] == kind_end and e[2] == label and e[3] == d)
            spans.append((t, end[0]))
    return spans


def phase(out: dict, label: str) -> tuple[float, float]:
    (span,) = window(out, "phase_start", "phase_end", label)
    return span


def in_spans(t: np.ndarray, spans) -> np.ndarray:
    m = np.zeros(t.shape, dtype=bool)
    for a, b in spans:
        m |= (t >= a) & (t <= b)
    return m


# ----------------------------------------------------------------------------
# Independence
# ----------------------------------------------------------------------------


def test_simulator_imports_nothing_from_hipimu():
    for path in SIM_DIR.glob("_*.py"):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: only sibling private modules
                    assert node.module and node.module.startswith("_"), (path.name, node.module)
                    continue
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in {"numpy", "scipy", "math", "dataclasses", "__future__", "typing"}, (path.name, name)


# ----------------------------------------------------------------------------
# 1. Gyroscope integrates to the true orientation
# ----------------------------------------------------------------------------


@pytest.mark.slow
def test_ideal_gyro_integrates_to_true_orientation():
    out = sim("seated_rotation", seed=0, ideal=True)
    for role in ROLES:
        worst, final = _integrate_gyro(out["sensors"][role], every=500)
        assert worst < 0.05, (role, worst)  # brief: < 0.5 deg; actual ~1e-3
        assert final < 0.05, (role, final)


def _integrate_gyro(s: dict, every: int) -> tuple[float, float]:
    """Integrate a sensor's gyroscope from its true initial orientation (trapezoidal
    rate plus the second-order coning correction): the worst deviation from the
    true orientation (checked every ``every`` samples and at the end) and the final one (deg)."""
    t, w = s["time_s"], s["gyr_rad_s"]
    truth = rot(s["orientation_wxyz"])
    dt = np.diff(t)[:, None]
    inc = 0.5 * (w[:-1] + w[1:]) * dt + np.cross(w[:-1], w[1:]) * dt**2 / 12.0
    steps = Rotation.from_rotvec(inc)
    r = truth[0]
    worst = 0.0
    for k in range(len(steps)):
        r = r * steps[k]
        if k % every == 0 or k == len(steps) - 1:
            worst = max(worst, math.degrees((truth[k + 1].inv() * r).magnitude()))
    return worst, math.degrees((truth[-1].inv() * r).magnitude())


def test_gyro_is_body_rate_of_true_orientation():
    """Finite differences of the returned orientation give the gyroscope."""
    out = sim("squat", seed=0, ideal=True)
    for role in ROLES:
        s = out["sensors"][role]
        r = rot(s["orientation_wxyz"])
        dt = np.diff(s["time_s"])[:, None]
        w_fd = (r[:-1].inv() * r[1:]).as_rotvec() / dt  # body frame, midpoint
        w_mid = 0.5 * (s["gyr_rad_s"][:-1] + s["gyr_rad_s"][1:])
        assert np.max(np.abs(w_fd - w_mid)) < math.radians(0.5), role
        assert np.max(np.abs(s["gyr_rad_s"])) > math.radians(50)  # the check is not vacuous


def test_splines_match_exact_kinematics_while_marching():
    """Orientation, gyro and accelerometer (from splines on a 400 Hz knot grid)
    against finite differences of the exact scripted kinematics."""
    out = sim("long_mixed", seed=2, ideal=True, duration_s=90.0)
    motion = build_motion("long_mixed", 2, 90.0)
    seg_of = {"pelvis": None, "thigh_left": "left", "thigh_right": "right"}
    for role in ROLES:
        s = {k: v[::3] for k, v in out["sensors"][role].items() if isinstance(v, np.ndarray)}
        t = s["time_s"]
        mount = rot(out["sensors"][role]["mounting_wxyz"])

        def pose(tt):
            k = motion.kinematics(tt)
            r = k.r_pelvis if seg_of[role] is None else k.r_femur[seg_of[role]]
            return r * mount, k.sensor_position_m(motion.body, role)

        r0, p0 = pose(t)
        rm, _ = pose(t - 1e-4)
        rp, _ = pose(t + 1e-4)
        _, pm = pose(t - 2e-3)
        _, pp = pose(t + 2e-3)
        w = (rm.inv() * rp).as_rotvec() / 2e-4
        f = r0.inv().apply((pp - 2 * p0 + pm) / 2e-3**2 - np.array([0.0, -G, 0.0]))
        assert np.degrees((rot(s["orientation_wxyz"]).inv() * r0).magnitude()).max() < 1e-3
        assert np.degrees(np.abs(s["gyr_rad_s"] - w)).max() < 0.05
        assert np.abs(s["acc_m_s2"] - f).max() < 0.05
        assert np.degrees(np.abs(w)).max() > (200 if role != "pelvis" else 50)  # marching and turns


# ----------------------------------------------------------------------------
# 2. Accelerometer: gravity at rest, lever arms in motion
# ----------------------------------------------------------------------------


def test_ideal_accelerometer_reads_gravity_when_standing():
    out = sim("squat", seed=0, ideal=True)
    a, b = phase(out, "stand")
    for role in ROLES:
        s = out["sensors"][role]
        m = (s["time_s"] >= a) & (s["time_s"] <= b)
        acc = s["acc_m_s2"][m]
        assert m.sum() > 700
        assert np.max(np.abs(np.linalg.norm(acc, axis=1) - G)) < 0.05, role
        up = rot(s["orientation_wxyz"][m]).inv().apply([0.0, 1.0, 0.0])
        cos = np.sum(acc * up, axis=1) / np.linalg.norm(acc, axis=1)
        assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 0.5, role


def test_ideal_accelerometer_matches_sensor_trajectory():
    """World specific force + gravity equals the second derivative of the sensor
    position built from the segment poses and the sensor sites (lever arms)."""
    out = sim("squat", seed=0, ideal=True)
    seg = out["segments"]
    t_grid = seg["time_s"]
    r_p, r_f = segs(out)
    pos = seg["pelvis_position_m"]
    h = 1.0 / 100.0
    for role in ROLES:
        s = out["sensors"][role]
        site = np.asarray(s["site_m"])
        if role == "pelvis":
            p = pos + r_p.apply(site)
        else:
            side = role.split("_")[1]
            hip = pos + r_p.apply([0.0, 0.0, SIDE_SIGN[side] * 0.09])
            p = hip + r_f[side].apply(site)
        a_fd = (p[2:] - 2 * p[1:-1] + p[:-2]) / h**2
        f_w = rot(s["orientation_wxyz"]).apply(s["acc_m_s2"]) + np.array([0.0, -G, 0.0])
        a_meas = np.column_stack([np.interp(t_grid[1:-1], s["time_s"], f_w[:, k]) for k in range(3)])
        inside = (t_grid[1:-1] > s["time_s"][0]) & (t_grid[1:-1] < s["time_s"][-1])
        err = np.abs(a_meas - a_fd)[inside]
        assert err.max() < 0.05, (role, err.max())
        assert np.abs(a_fd).max() > 1.0  # the squat does accelerate the sensors


# ----------------------------------------------------------------------------
# 3. Signs, checked physically from the segment orientations
# ----------------------------------------------------------------------------


def test_squat_knee_goes_forward_and_out():
    out = sim("squat", seed=0, ideal=True)
    tr = out["truth"]
    r_p, r_f = segs(out)
    for side in ("left", "right"):
        knee = r_p.inv().apply(r_f[side].apply([0.0, -0.43, 0.0]))  # knee - hip centre, pelvis frame
        flex = tr[f"hip_flexion_{side}_deg"]
        deep = flex > 30
        assert deep.sum() > 500
        assert np.all(knee[deep, 0] > 0), side  # anterior
        assert np.all(knee[flex < -2, 0] < 0), side
        abd = tr[f"hip_adduction_{side}_deg"] < -5
        assert abd.sum() > 100
        assert np.all(SIDE_SIGN[side] * knee[abd, 2] > 0), side  # lateral: abduction
        # Squat shape: deep flexion, butt wink, IR at depth, pelvis lower.
        assert 100 <= flex.max() <= 118
        bottom = flex > flex.max() - 3
        assert np.all(tr[f"hip_rotation_{side}_deg"][bottom] > 3)
    tilt = tr["pelvis_tilt_deg"]
    task = tr["time_s"] > window(out, "trial_start", "trial_end", "squat")[0][0]
    assert 14 < tilt[task].max() < 21
    assert np.all(out["segments"]["pelvis_position_m"][:, 1] > 0.45)


def test_hinge_tips_pelvis_forward_with_vertical_thighs():
    out = sim("squat", seed=0, ideal=True)
    tr = out["truth"]
    r_p, r_f = segs(out)
    a, b = phase(out, "hip_hinge")
    m = in_spans(tr["time_s"], [(a, b)])
    tilt = tr["pelvis_tilt_deg"]
    sup = r_p.apply([0.0, 1.0, 0.0])
    fwd = m & (tilt > 5)
    assert fwd.sum() > 200 and 40 <= tilt[m].max() <= 51
    assert np.all(sup[fwd, 0] > 0)  # the top of the pelvis moves toward +X (forward)
    for side in ("left", "right"):
        femur_up = r_f[side].apply([0.0, 1.0, 0.0])[m]
        assert np.degrees(np.arccos(np.clip(femur_up[:, 1], -1, 1))).max() < 2.0
        assert np.max(np.abs(tr[f"hip_flexion_{side}_deg"][m] - tilt[m])) < 2.0


def test_knee_lifts_move_the_right_knee_forward():
    out = sim("squat", seed=0, ideal=True)
    tr = out["truth"]
    r_p, r_f = segs(out)
    for side in ("right", "left"):
        other = "left" if side == "right" else "right"
        m = in_spans(tr["time_s"], [phase(out, f"knee_lift_{side}")])
        flex = tr[f"hip_flexion_{side}_deg"]
        knee_w = r_f[side].apply([0.0, -1.0, 0.0])
        up = m & (flex > 30)
        assert 54 < flex[m].max() < 67
        assert np.all(knee_w[up, 0] > 0.4)  # knee forward in the world
        # Three lifts: count upward crossings of 30 deg.
        assert np.sum(np.diff((flex[m] > 30).astype(int)) == 1) == 3
        # The stance femur stays (nearly) vertical; the pelvis tilts backward.
        stance_up = r_f[other].apply([0.0, 1.0, 0.0])[m]
        assert np.degrees(np.arccos(np.clip(stance_up[:, 1], -1, 1))).max() < 1.5
        assert tr["pelvis_tilt_deg"][up].min() < -1.5


@pytest.mark.parametrize("scenario", ["seated_rotation", "prone_rotation"])
def test_internal_rotation_swings_the_foot_outward(scenario):
    out = sim(scenario, seed=0, ideal=True)
    tr = out["truth"]
    r_p, r_f = segs(out)
    for side in ("left", "right"):
        shank = r_f[side].apply([-1.0, 0.0, 0.0])  # knee at 90 deg: shank along -X of the femur
        shank_p = r_p.inv().apply(shank)
        rot_deg = tr[f"hip_rotation_{side}_deg"]
        trials = window(out, "trial_start", "trial_end", scenario, side=side)
        assert len(trials) == 3
        in_trials = in_spans(tr["time_s"], trials)
        ir, er = in_trials & (rot_deg > 20), in_trials & (rot_deg < -20)
        assert ir.sum() > 600 and er.sum() > 600
        lateral = SIDE_SIGN[side]
        assert np.all(lateral * shank_p[ir, 2] > 0.3)  # foot out (pelvis frame)
        assert np.all(lateral * shank_p[er, 2] < -0.3)  # foot in
        assert np.all(lateral * shank[ir, 2] > 0.3)  # and in the world (heading ~0)
        assert np.all(lateral * shank[er, 2] < -0.3)
        # Peak IR / ER in the scripted ranges (a little sway and compensation allowed).
        lo_ir, hi_ir, lo_er, hi_er = (29, 39.5, 34, 43.5) if scenario == "seated_rotation" else (31, 39.5, 36, 44.5)
        for a, b in trials:
            w = (tr["time_s"] >= a) & (tr["time_s"] <= b)
            assert lo_ir < rot_deg[w].max() < hi_ir
            assert lo_er < -rot_deg[w].min() < hi_er
    # Posture: zero events in the test position.
    zero_t = [e[0] for e in out["events"] if e[1] == "zero"]
    i = np.searchsorted(tr["time_s"], zero_t)
    for side in ("left", "right"):
        shank_w = r_f[side].apply([-1.0, 0.0, 0.0])[i]
        thigh_w = r_f[side].apply([0.0, -1.0, 0.0])[i]  # hip -> knee
        if scenario == "seated_rotation":
            assert np.all(shank_w[:, 1] < -0.97)  # shank hangs down
            assert np.all(thigh_w[:, 0] > 0.97)  # thigh horizontal, forward
            assert np.all(np.abs(tr["pelvis_tilt_deg"][i] + 5) < 3)
        else:
            assert np.all(shank_w[:, 1] > 0.97)  # shank points up
            assert np.all(thigh_w[:, 0] < -0.97)  # thigh horizontal, feet toward -X
            assert np.all(np.abs(tr["pelvis_tilt_deg"][i] - 90) < 1.5)
            assert np.all(r_p[i].apply([1.0, 0.0, 0.0])[:, 1] < -0.99)  # belly down


@pytest.mark.parametrize("scenario", ["seated_rotation", "prone_rotation", "squat"])
def test_pelvis_obliquity_and_rotation_signs(scenario):
    out = sim(scenario, seed=0, ideal=True)
    tr = out["truth"]
    r_p, _ = segs(out)
    right_w = r_p.apply([0.0, 0.0, 1.0])
    obl, prot = tr["pelvis_obliquity_deg"], tr["pelvis_rotation_deg"]
    up, down = obl > 0.5, obl < -0.5
    assert up.sum() > 50 and down.sum() > 50
    assert np.all(right_w[up, 1] > 0) and np.all(right_w[down, 1] < 0)  # right crest up / down
    fwd, back = prot > 0.5, prot < -0.5
    if scenario != "squat":
        assert fwd.sum() > 50 and back.sum() > 50
    assert np.all(right_w[fwd, 0] > 0) and np.all(right_w[back, 0] < 0)  # right side forward / back


def test_the_compensating_subject_hitches_the_pelvis_beyond_the_threshold():
    """Same seed, same hip targets as seated_rotation; the pelvis tilts 6-10 deg sideways at end range."""
    plain, comp = task_truth("seated_rotation", 1), task_truth("seated_rotation_compensating", 1)
    assert [(t["ir_deg"], t["er_deg"]) for t in plain] == [(t["ir_deg"], t["er_deg"]) for t in comp]
    out = sim("seated_rotation_compensating", seed=1, ideal=True)
    tr = out["truth"]
    for t in comp:
        assert 6.0 <= t["ir_obliquity_deg"] <= 10.0 and 6.0 <= t["er_obliquity_deg"] <= 10.0
        assert t["ir_thigh_deg"] == pytest.approx(t["ir_deg"] + t["ir_obliquity_deg"])
        w = (tr["time_s"] >= t["start_s"]) & (tr["time_s"] <= t["end_s"])
        obl = tr["pelvis_obliquity_deg"][w]
        assert np.ptp(obl) == pytest.approx(t["ir_obliquity_deg"] + t["er_obliquity_deg"], abs=1.0)
        rot_deg = tr[f"hip_rotation_{t['side']}_deg"][w]
        assert rot_deg.max() == pytest.approx(t["ir_deg"], abs=1.0)  # the hip itself: as scripted


def test_seated_rotation_then_squat_in_one_session():
    out = sim("seated_rotation_squat", seed=0, ideal=True)
    tr = out["truth"]
    _, r_f = segs(out)
    labels = [e[2] for e in kinds(out, "trial_start")]
    assert labels == ["seated_rotation"] * 6 + ["squat"]
    assert len(kinds(out, "rep_start")) == 5
    (squat,) = window(out, "trial_start", "trial_end", "squat")
    seated_end = window(out, "trial_start", "trial_end", "seated_rotation", side="left", index=3)[0][1]
    # stood up between the tests: upright and still at the squat's start, thighs vertical
    i = np.searchsorted(tr["time_s"], squat[0])
    assert abs(tr["pelvis_tilt_deg"][i]) < 2.0
    for side in ("left", "right"):
        assert abs(tr[f"hip_flexion_{side}_deg"][i]) < 2.0
        assert r_f[side].apply([0.0, -1.0, 0.0])[i][1] < -0.99
    standing_up = (tr["time_s"] > seated_end) & (tr["time_s"] < squat[0])
    assert tr["hip_flexion_right_deg"][standing_up].max() < 120.0  # no impossible flexion on the way
    assert [t["kind"] for t in task_truth("seated_rotation_squat", 0)] == ["trial"] * 6 + ["rep"] * 5


def test_turns_change_heading_in_long_mixed():
    out = sim("long_mixed", seed=2, ideal=True, duration_s=90.0)
    tr = out["truth"]
    r_p, _ = segs(out)
    fwd = r_p.apply([1.0, 0.0, 0.0])
    heading = np.degrees(np.arctan2(-fwd[:, 2], fwd[:, 0]))  # Ry(p) turns +X toward -Z
    d = (heading - tr["pelvis_rotation_deg"] + 180) % 360 - 180
    assert np.max(np.abs(d)) < 1.0
    assert np.ptp(np.unwrap(np.radians(tr["pelvis_rotation_deg"]))) > math.radians(85)
    # Marching: alternating hip flexion 40-60 deg.
    for side in ("left", "right"):
        task = tr["time_s"] > window(out, "trial_start", "trial_end", "free")[0][0]
        assert 38 < tr[f"hip_flexion_{side}_deg"][task].max() < 62


# ----------------------------------------------------------------------------
# 4. Agreement with hipimu's conventions
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scenario,kw",
    [
        ("squat", {}),
        ("seated_rotation", {}),
        ("prone_rotation", {}),
        ("long_mixed", {"duration_s": 90.0, "seed": 2}),
        ("static", {"duration_s": 5.0}),
    ],
)
def test_truth_agrees_with_hipimu_conventions(scenario, kw):
    out = sim(scenario, ideal=True, **kw)
    tr = out["truth"]
    assert tuple(tr) == TRUTH_COLUMNS == conventions.ANGLE_COLUMNS
    r_p, r_f = segs(out)
    r_ref = rot(out["segments"]["reference_pelvis_wxyz"])
    for side in ("left", "right"):
        got = np.degrees(conventions.hip_angles_rad(r_p, r_f[side], side))
        for k, q in enumerate(conventions.HIP_QUANTITIES):
            d = (tr[f"hip_{q}_{side}_deg"] - got[:, k] + 180) % 360 - 180
            assert np.max(np.abs(d)) < 1e-6, (side, q)
    got = np.degrees(conventions.pelvis_angles_rad(r_p, r_ref))
    for k, q in enumerate(conventions.PELVIS_QUANTITIES):
        d = (tr[f"pelvis_{q}_deg"] - got[:, k] + 180) % 360 - 180
        assert np.max(np.abs(d)) < 1e-6, q


def test_own_angle_functions_invert_and_match_definitions():
    """The simulator's own angle <-> rotation code against the written words."""
    rng = np.random.default_rng(5)
    a = rng.uniform([-30, -20, -40], [120, 20, 40], (200, 3))
    for side in ("left", "right"):
        r_pf = _body.hip_rotation(a[:, 0], a[:, 1], a[:, 2], side)
        back = _body.hip_angles_deg(Rotation.identity(200), r_pf, side)
        assert np.allclose(back, a, atol=1e-9)
        knee = r_pf.apply([0.0, -1.0, 0.0])
        pure = _body.hip_rotation(40.0, 0.0, 0.0, side).apply([0.0, -1.0, 0.0])
        assert pure[0, 0] > 0.6  # +flexion: knee forward
        add = _body.hip_rotation(0.0, 20.0, 0.0, side).apply([0.0, -1.0, 0.0])
        assert SIDE_SIGN[side] * add[0, 2] < -0.3  # +adduction: knee to the midline
        assert knee.shape == (200, 3)
    tilt = _body.pelvis_rotation(20.0, 0.0, 0.0).apply([0.0, 1.0, 0.0])
    assert tilt[0, 0] > 0.3  # anterior tilt: top of the pelvis forward


# ----------------------------------------------------------------------------
# 5. Events, determinism, clocks, magnetometer, loss, errors, validation
# ----------------------------------------------------------------------------


def kinds(out, kind):
    return [e for e in out["events"] if e[1] == kind]


@pytest.mark.parametrize("scenario", ["squat", "seated_rotation", "prone_rotation", "static"])
def test_events(scenario):
    kw = {"duration_s": 5.0} if scenario == "static" else {}
    out = sim(scenario, ideal=True, **kw)
    ev = out["events"]
    times = [e[0] for e in ev]
    assert times == sorted(times)
    assert all(isinstance(e[3], dict) for e in ev)
    json.dumps([list(e) for e in ev])
    labels = [e[2] for e in kinds(out, "phase_start")]
    assert labels == list(conventions.CALIBRATION_PHASES)
    assert [e[2] for e in kinds(out, "phase_end")] == labels
    for lab in labels:
        a, b = phase(out, lab)
        assert b > a
    assert 3.9 <= np.subtract(*phase(out, "stand")[::-1]) <= 4.1
    end = out["truth"]["time_s"][-1]
    assert 0 <= times[0] and times[-1] <= end
    assert all(e[1] in conventions.EVENT_KINDS for e in ev)
    if scenario == "squat":
        assert len(kinds(out, "rep_start")) == len(kinds(out, "rep_end")) == 5
        assert [e[3]["index"] for e in kinds(out, "rep_start")] == [1, 2, 3, 4, 5]
        assert [e[3] for e in kinds(out, "trial_start")] == [{"side": "both", "index": 1}]
        reps = window(out, "rep_start", "rep_end", "squat")
        assert all(3.0 < b - a < 4.0 for a, b in reps)
        (trial,) = window(out, "trial_start", "trial_end", "squat")
        assert trial[0] < reps[0][0] and reps[-1][1] < trial[1]
    elif scenario in ("seated_rotation", "prone_rotation"):
        assert [e[3] for e in kinds(out, "zero")] == [{"side": "right"}, {"side": "left"}]
        starts = kinds(out, "trial_start")
        assert [(e[2], e[3]["side"], e[3]["index"]) for e in starts] == [
            (scenario, s, i) for s in ("right", "left") for i in (1, 2, 3)
        ]
        assert len(kinds(out, "trial_end")) == 6
        zl = kinds(out, "zero")[1][0]
        assert starts[2][0] < zl < starts[3][0]
    else:
        (trial,) = window(out, "trial_start", "trial_end", "free")
        assert trial[1] - trial[0] == pytest.approx(5.0)
        assert out["parameters"]["duration_s"] == 5.0


def test_long_mixed_duration():
    out = sim("long_mixed", seed=2, ideal=True, duration_s=90.0)
    (trial,) = window(out, "trial_start", "trial_end", "free")
    assert trial[1] - trial[0] == pytest.approx(90.0)
    assert trial[0] > phase(out, "stand_final")[1]
    json.dumps(out["parameters"])


def test_determinism_and_seed_dependence():
    a = simulate("static", seed=7, duration_s=2.0, mag=True, loss=0.1)
    b = simulate("static", seed=7, duration_s=2.0, mag=True, loss=0.1)
    c = simulate("static", seed=8, duration_s=2.0, mag=True, loss=0.1)
    for role in ROLES:
        for key in ("time_s", "acc_m_s2", "gyr_rad_s", "mag_ut", "seq", "orientation_wxyz"):
            assert np.array_equal(a["sensors"][role][key], b["sensors"][role][key]), (role, key)
        assert a["sensors"][role]["errors"] == b["sensors"][role]["errors"]
        ma, mc = rot(a["sensors"][role]["mounting_wxyz"]), rot(c["sensors"][role]["mounting_wxyz"])
        assert math.degrees((ma.inv() * mc).magnitude()) > 1.0
        assert a["sensors"][role]["device"]["device_id"] == f"sim-{role}-7"
    for col in TRUTH_COLUMNS:
        assert np.array_equal(a["truth"][col], b["truth"][col])
    assert a["events"] == b["events"]
    assert a["parameters"] == b["parameters"]
    # Roles get different draws.
    mounts = [rot(a["sensors"][r]["mounting_wxyz"]) for r in ROLES]
    turns = {a["sensors"][r]["errors"]["mounting"]["turn_deg"] for r in ROLES}
    assert len(turns) == 3 and len(mounts) == 3
    assert len({a["sensors"][r]["errors"]["clock_ppm"] for r in ROLES}) == 3


def test_ideal_flag_keeps_kinematics_and_clocks():
    real = sim("static", seed=0, duration_s=5.0)
    ideal = sim("static", seed=0, duration_s=5.0, ideal=True)
    a, b = phase(real, "stand")
    for role in ROLES:
        r, i = real["sensors"][role], ideal["sensors"][role]
        assert np.array_equal(r["time_s"], i["time_s"])
        assert np.array_equal(r["orientation_wxyz"], i["orientation_wxyz"])
        assert r["mounting_wxyz"] == i["mounting_wxyz"]
        # The recorded errors explain the difference (stand phase, drift small).
        e = r["errors"]
        m = (r["time_s"] >= a) & (r["time_s"] <= b)
        d_gyr = (r["gyr_rad_s"] - i["gyr_rad_s"] * (1 + np.asarray(e["gyr_scale_error"])))[m]
        assert np.allclose(d_gyr.mean(axis=0), e["gyr_bias_rad_s"], atol=math.radians(0.05))
        assert np.std(d_gyr - d_gyr.mean(axis=0), axis=0).max() < 3 * e["gyr_noise_sigma_rad_s"]
        d_acc = (r["acc_m_s2"] - i["acc_m_s2"] * (1 + np.asarray(e["acc_scale_error"])))[m]
        assert np.allclose(d_acc.mean(axis=0), e["acc_bias_m_s2"], atol=0.003)
        assert 0.5 < np.std(d_acc, axis=0).mean() / e["acc_noise_sigma_m_s2"] < 1.5
        assert max(abs(x) for x in e["gyr_bias_rad_s"]) > 0
        assert i["errors"]["gyr_bias_rad_s"] == [0.0, 0.0, 0.0]
        # Quantized to the 16-bit step in the real sensor.
        lsb = e["acc_lsb_m_s2"]
        assert np.allclose(r["acc_m_s2"] / lsb, np.round(r["acc_m_s2"] / lsb), atol=1e-6)
        json.dumps(e)
        json.dumps(r["device"])


@pytest.mark.parametrize("rate_hz", [50.0, 200.0, 400.0])
def test_clocks(rate_hz):
    out = sim("static", seed=3, duration_s=20.0, rate_hz=rate_hz, ideal=True)
    stamps = []
    for role in ROLES:
        s = out["sensors"][role]
        t, k = s["time_s"], s["seq"]
        assert t.dtype == np.float64 and k.dtype == np.int64
        assert np.all(np.diff(t) > 0) and np.all(np.diff(k) == 1)
        slope = np.polyfit(k.astype(float), t, 1)[0]
        ppm = (1.0 / (slope * rate_hz) - 1.0) * 1e6
        assert ppm == pytest.approx(s["errors"]["clock_ppm"], abs=1e-3)
        assert -50 <= ppm <= 50
        assert 0 <= t[0] < 1.0 / rate_hz + 1e-12
        assert t[-1] <= out["truth"]["time_s"][-1]
        assert s["device"]["rate_hz"] == rate_hz
        stamps.append(t)
    for i in range(3):
        for j in range(i + 1, 3):
            d = np.abs(stamps[i][:, None][:2000] - stamps[j][None, :2000])
            assert d.min() > 1e-9
    assert len({round(e, 6) for e in (out["sensors"][r]["errors"]["clock_ppm"] for r in ROLES)}) == 3


def test_magnetometer():
    out = sim("static", seed=4, duration_s=2.0, mag=True, ideal=True)
    a, b = phase(out, "stand")
    for role in ROLES:
        s = out["sensors"][role]
        m = s["mag_ut"]
        assert m.shape == s["acc_m_s2"].shape
        assert np.allclose(np.linalg.norm(m, axis=1), 49.0, atol=1e-6)
        w = (s["time_s"] >= a) & (s["time_s"] <= b)
        cos = np.sum(m[w] * s["acc_m_s2"][w], axis=1) / (49.0 * np.linalg.norm(s["acc_m_s2"][w], axis=1))
        assert np.allclose(np.degrees(np.arccos(cos)), 90 + 65, atol=0.5)  # 65 deg below horizontal
        world = rot(s["orientation_wxyz"]).apply(m)
        assert np.allclose(world, world[0], atol=1e-6)  # a fixed field in the world
        assert s["device"]["has_mag"] and s["device"]["mag_range_ut"] == 400.0
    real = sim("static", seed=4, duration_s=2.0, mag=True)
    hi = real["sensors"]["pelvis"]["errors"]["mag_hard_iron_ut"]
    assert np.linalg.norm(hi) > 0
    d = real["sensors"]["pelvis"]["mag_ut"] - out["sensors"]["pelvis"]["mag_ut"]
    assert np.allclose(d.mean(axis=0), hi, atol=0.05)
    no_mag = sim("static", seed=4, duration_s=2.0)
    assert no_mag["sensors"]["pelvis"]["mag_ut"] is None
    assert not no_mag["sensors"]["pelvis"]["device"]["has_mag"]


def test_packet_loss_makes_gaps():
    full = sim("static", seed=5, duration_s=20.0)
    lossy = sim("static", seed=5, duration_s=20.0, loss=0.2)
    for role in ROLES:
        f, s = full["sensors"][role], lossy["sensors"][role]
        kept = s["seq"]
        frac = 1 - len(kept) / len(f["seq"])
        assert 0.15 < frac < 0.25
        missing = np.setdiff1d(f["seq"], kept)
        packets = np.unique(missing // 8)
        # Whole packets go missing (except possibly the last, partial one).
        complete = packets[packets < f["seq"][-1] // 8]
        assert np.isin(complete[:, None] * 8 + np.arange(8), missing).all()
        gaps = np.diff(kept) > 1
        assert gaps.sum() > 10
        dt = np.diff(s["time_s"])
        assert np.all(dt[gaps] > 8.5 / 200.0) and np.all(dt[~gaps] < 1.5 / 200.0)
        # The samples that remain are the same samples.
        idx = np.searchsorted(f["seq"], kept)
        assert np.array_equal(f["time_s"][idx], s["time_s"])
        assert np.array_equal(f["acc_m_s2"][idx], s["acc_m_s2"])


def test_mounting_back_on_skin():
    out = sim("static", seed=6, duration_s=2.0, ideal=True)
    for role in ROLES:
        s = out["sensors"][role]
        z = rot(s["mounting_wxyz"]).apply([0.0, 0.0, 1.0])
        normal = {"pelvis": [-1, 0, 0], "thigh_right": [0, 0, 1], "thigh_left": [0, 0, -1]}[role]
        assert np.allclose(s["skin_normal"], normal)
        ang = math.degrees(math.acos(np.clip(np.dot(z, normal), -1, 1)))
        assert ang <= 15.0 + 1e-9
        assert ang == pytest.approx(s["errors"]["mounting"]["tilt_deg"], abs=1e-6)


def test_static_sway_is_tiny():
    out = sim("static", seed=0, duration_s=20.0, ideal=True)
    tr = out["truth"]
    (trial,) = window(out, "trial_start", "trial_end", "free")
    m = in_spans(tr["time_s"], [trial])
    for c in TRUTH_COLUMNS[1:]:
        x = tr[c][m]
        assert np.max(np.abs(x)) < 1.0, c
        assert np.max(np.abs(np.diff(x))) * 100 < 1.0, c  # deg/s
    for role in ROLES:
        s = out["sensors"][role]
        w = in_spans(s["time_s"], [trial])
        assert np.degrees(np.abs(s["gyr_rad_s"][w])).max() < 1.5


@pytest.mark.parametrize(
    "kw",
    [
        {"scenario": "jumping"},
        {"scenario": "static", "rate_hz": 10.0},
        {"scenario": "static", "rate_hz": 2000.0},
        {"scenario": "static", "loss": 0.5},
        {"scenario": "static", "loss": -0.1},
        {"scenario": "static", "duration_s": -1.0},
        {"scenario": "static", "seed": -3},
    ],
)
def test_bad_arguments_raise_value_error(kw):
    with pytest.raises(ValueError) as exc:
        simulate(**kw)
    assert "\n" not in str(exc.value)


def test_output_shapes_and_types():
    out = sim("static", seed=0, duration_s=2.0)
    assert set(SCENARIOS) == {"squat", "seated_rotation", "prone_rotation", "seated_rotation_compensating",
                              "seated_rotation_squat", "long_mixed", "static", "sensor_six_pose", "sensor_mag_turns",
                              "walk", "sitting_rotation"}
    m = len(out["truth"]["time_s"])
    assert np.allclose(np.diff(out["truth"]["time_s"]), 0.01)
    assert out["truth"]["time_s"][0] == 0.0
    for key in ("pelvis_wxyz", "femur_left_wxyz", "femur_right_wxyz"):
        q = out["segments"][key]
        assert q.shape == (m, 4) and np.allclose(np.linalg.norm(q, axis=1), 1)
    assert np.array_equal(out["segments"]["time_s"], out["truth"]["time_s"])
    for role in ROLES:
        s = out["sensors"][role]
        n = len(s["time_s"])
        assert s["acc_m_s2"].shape == s["gyr_rad_s"].shape == (n, 3)
        assert s["orientation_wxyz"].shape == (n, 4)
        assert set(s["device"]) == {"device_id", "rate_hz", "imu", "acc_range_m_s2", "gyr_range_rad_s",
                                    "mag_range_ut", "has_mag"}
        assert len(s["mounting_wxyz"]) == 4
    json.dumps(out["parameters"])
    assert out["parameters"]["scenario"] == "static"


# ----------------------------------------------------------------------------
# 6. Bit-for-bit stability of the clean simulator
# ----------------------------------------------------------------------------

# sha256 (first 16 hex digits) of every sensor array and truth column, recorded
# from the simulator before the `realism` option existed: bundled recordings and
# other tests rely on these exact numbers.
_CLEAN_HASHES = [
    ("squat", {"seed": 0}, "85c6e0ec3b1a301a"),
    ("seated_rotation", {"seed": 1, "mag": True}, "14464578472d7028"),
    ("static", {"seed": 3, "rate_hz": 100.0, "duration_s": 5.0}, "776c59d8217779f4"),
    ("long_mixed", {"seed": 2, "duration_s": 20.0, "loss": 0.1}, "386353865a3c9836"),
    ("prone_rotation", {"seed": 4, "ideal": True, "rate_hz": 208.0}, "5134278ab51707d3"),
]


def _output_hash(out: dict) -> str:
    import hashlib

    m = hashlib.sha256()
    for role in sorted(out["sensors"]):
        s = out["sensors"][role]
        for k in ("time_s", "acc_m_s2", "gyr_rad_s", "mag_ut", "seq", "orientation_wxyz"):
            if s[k] is not None:
                m.update(np.ascontiguousarray(s[k]).tobytes())
    for c in sorted(out["truth"]):
        m.update(np.ascontiguousarray(out["truth"][c]).tobytes())
    return m.hexdigest()[:16]


@pytest.mark.parametrize("scenario,kw,digest", _CLEAN_HASHES, ids=[c[0] for c in _CLEAN_HASHES])
def test_clean_output_is_bit_identical_to_before(scenario, kw, digest):
    assert _output_hash(simulate(scenario, **kw)) == digest


def test_explicit_clean_realism_is_the_default():
    scenario, kw, digest = _CLEAN_HASHES[2]
    assert _output_hash(simulate(scenario, realism="clean", **kw)) == digest
    out = sim("squat", ideal=True)
    assert out["rebase"] is None and out["parameters"]["realism"] == "clean"
    for c in TRUTH_COLUMNS:
        assert np.array_equal(out["truth"][c], out["truth_anatomical"][c])


# ----------------------------------------------------------------------------
# 7. realism="real": wander, habitual posture, truth relative to standing,
#    strap tilt, soft tissue
# ----------------------------------------------------------------------------


def _stand_mean(out: dict, key: str = "truth") -> dict:
    tr = out[key]
    a, b = out["script"]["standing_window_s"]
    m = (tr["time_s"] >= a) & (tr["time_s"] <= b)
    return {c: float(tr[c][m].mean()) for c in TRUTH_COLUMNS[1:]}


@pytest.mark.parametrize("seed", [0, 5])
def test_real_wander_of_the_still_segments_during_the_routine(seed):
    clean, real = sim("squat", seed=seed, ideal=True), sim("squat", seed=seed, ideal=True, realism="real")
    post = real["parameters"]["real"]["standing_posture_deg"]
    t = real["truth"]["time_s"]
    ta, tc = real["truth_anatomical"], clean["truth"]
    r_p, r_f = segs(real)
    a_s, b_s = phase(real, "stand")
    stand = (t >= a_s) & (t <= b_s)
    # Standing: no wander, the anatomical truth is the clean one plus the posture (exactly additive).
    assert np.max(np.abs(ta["pelvis_tilt_deg"][stand] - tc["pelvis_tilt_deg"][stand] - post["pelvis_tilt_deg"])) < 1e-6
    f_stand = {side: r_f[side][stand].mean() for side in ("left", "right")}
    peaks = {"rotation": 0.0, "adduction": 0.0, "tilt": 0.0, "obliquity": 0.0}
    for label, lifting in (("hip_hinge", None), ("knee_lift_right", "right"), ("knee_lift_left", "left")):
        a, b = phase(real, label)
        m = (t >= a) & (t <= b)
        # The pelvis wanders on top of the scripted movement: tilt +-2, obliquity and rotation +-1.5 deg.
        d_tilt = ta["pelvis_tilt_deg"][m] - tc["pelvis_tilt_deg"][m] - post["pelvis_tilt_deg"]
        d_obl = ta["pelvis_obliquity_deg"][m] - tc["pelvis_obliquity_deg"][m]
        d_rot = ta["pelvis_rotation_deg"][m] - tc["pelvis_rotation_deg"][m]
        assert np.abs(d_tilt).max() <= 2.0 + 1e-6 and np.abs(d_obl).max() <= 1.5 + 1e-6
        assert np.abs(d_rot).max() <= 1.5 + 1e-6
        peaks["tilt"] = max(peaks["tilt"], np.abs(d_tilt).max())
        peaks["obliquity"] = max(peaks["obliquity"], np.abs(d_obl).max(), np.abs(d_rot).max())
        # A still thigh wanders in the room (relative to its standing pose): rotation +-3, adduction +-2 deg
        # (the clean sway adds < 0.5 deg).
        for side in ("left", "right"):
            if side == lifting:
                hip = np.asarray(ta[f"hip_rotation_{side}_deg"][m]) - tc[f"hip_rotation_{side}_deg"][m]
                assert np.abs(hip - post[f"hip_rotation_{side}_deg"]).max() < 1.5 + 0.3  # the lift's own wander
                continue
            own = _body.hip_angles_deg(f_stand[side], r_f[side][m], side)
            assert np.abs(own[:, 0]).max() < 0.8, (label, side)  # it does not flex
            assert np.abs(own[:, 2]).max() < 3.0 + 0.6, (label, side)
            assert np.abs(own[:, 1]).max() < 2.0 + 0.6, (label, side)
            peaks["rotation"] = max(peaks["rotation"], np.abs(own[:, 2]).max())
            peaks["adduction"] = max(peaks["adduction"], np.abs(own[:, 1]).max())
    # Not vacuous: the wander is of the stated size.
    assert peaks["rotation"] > 1.5 and peaks["adduction"] > 1.0 and peaks["tilt"] > 1.0 and peaks["obliquity"] > 0.7
    # Clean mode: none of it.
    a, b = phase(clean, "knee_lift_right")
    m = (t >= a) & (t <= b)
    r_pc, r_fc = segs(clean)
    own = _body.hip_angles_deg(r_fc["left"][stand].mean(), r_fc["left"][m], "left")
    assert np.abs(own[:, 1:]).max() < 0.6


def _rebased_truth_from_definition(out: dict) -> dict[str, np.ndarray]:
    """The documented truth relative to standing, rebuilt from the segments and the
    rebase constants with hipimu.core.conventions."""
    rb = out["rebase"]
    r_p, r_f = segs(out)
    yaw = {k: Rotation.from_euler("y", v, degrees=True) for k, v in rb["psi_deg"].items()}
    p = yaw["pelvis"] * r_p * rot(rb["c_pelvis_wxyz"])
    p_ref = rot(rb["standing_wxyz"]["pelvis"]) * rot(rb["c_pelvis_wxyz"])
    got = {}
    t = out["truth"]["time_s"]
    for side in ("left", "right"):
        f = yaw[f"femur_{side}"] * r_f[side] * rot(rb[f"c_femur_{side}_wxyz"])
        # step 5: from each zero event of the side on, the femur turned (world vertical, own long axis)
        # so that adduction and rotation average zero over the 1-s hold
        zeros = sorted(e[0] for e in out["events"] if e[1] == "zero" and e[3].get("side") == side)
        q = f.as_quat()
        for k, tz in enumerate(zeros):
            hold = (t >= tz) & (t <= tz + 1.0)
            span = (t >= tz) & (t < (zeros[k + 1] if k + 1 < len(zeros) else np.inf))

            def res(x, hold=hold):
                a = conventions.hip_angles_rad(p[hold], Rotation.from_euler("y", x[0]) * f[hold] * Rotation.from_euler("y", x[1]), side)
                return np.concatenate([a[:, 1], a[:, 2]])

            x = least_squares(res, np.zeros(2), xtol=1e-12, ftol=1e-12).x
            q[span] = (Rotation.from_euler("y", x[0]) * f[span] * Rotation.from_euler("y", x[1])).as_quat()
        f = Rotation.from_quat(q)
        h = np.degrees(conventions.hip_angles_rad(p, f, side))
        for k, q in enumerate(conventions.HIP_QUANTITIES):
            got[f"hip_{q}_{side}_deg"] = h[:, k]
    pa = np.degrees(conventions.pelvis_angles_rad(p, p_ref))
    for k, q in enumerate(conventions.PELVIS_QUANTITIES):
        got[f"pelvis_{q}_deg"] = pa[:, k]
    return got


@pytest.mark.parametrize("scenario,seed", [("squat", 3), ("walk", 2), ("sitting_rotation", 1)])
def test_real_truth_is_relative_to_the_standing_pose(scenario, seed):
    out = sim(scenario, seed=seed, ideal=True, realism="real")
    post = out["parameters"]["real"]["standing_posture_deg"]
    assert 0 <= post["pelvis_tilt_deg"] <= 8
    for side in ("left", "right"):
        assert -5 <= post[f"hip_rotation_{side}_deg"] <= 5 and 0 <= post[f"hip_abduction_{side}_deg"] <= 4
    rb = out["rebase"]
    # Every rebased standing frame has Y up and the pelvis' heading.
    for name in ("pelvis", "femur_left", "femur_right"):
        f = Rotation.from_euler("y", rb["psi_deg"][name], degrees=True) * rot(rb["standing_wxyz"][name]) \
            * rot(rb[f"c_{name}_wxyz"])
        assert np.allclose(f.apply([0.0, 1.0, 0.0]), [0.0, 1.0, 0.0], atol=1e-9)
        x = f.apply([1.0, 0.0, 0.0])
        x_p = (rot(rb["standing_wxyz"]["pelvis"]) * rot(rb["c_pelvis_wxyz"])).apply([1.0, 0.0, 0.0])
        assert np.allclose(x, x_p, atol=1e-9)
    # The truth is the documented definition.
    got = _rebased_truth_from_definition(out)
    for c, v in got.items():
        d = (out["truth"][c] - v + 180) % 360 - 180
        assert np.max(np.abs(d)) < 1e-6, c
    for tz, kind, _, data in out["events"]:  # a zero event is the goniometer's zero for its side
        if kind == "zero":
            m = (out["truth"]["time_s"] >= tz) & (out["truth"]["time_s"] <= tz + 1.0)
            for q in ("adduction", "rotation"):
                assert abs(out["truth"][f"hip_{q}_{data['side']}_deg"][m].mean()) < 0.05  # least squares over the hold: ~0 within its sway
    if scenario == "sitting_rotation":  # never stands: the virtual habitual posture at heading 0
        assert rb["standing_window_s"] is None and out["script"]["standing_window_s"] is None
        sit = phase(out, "sit")
        m = (out["truth"]["time_s"] >= sit[0]) & (out["truth"]["time_s"] <= sit[1])
        ta, tr = out["truth_anatomical"], out["truth"]
        # seated: anatomical flexion ~85; relative to the (tilted-pelvis) standing pose, less by the tilt
        d = tr["hip_flexion_right_deg"][m].mean() - ta["hip_flexion_right_deg"][m].mean()
        assert d == pytest.approx(-post["pelvis_tilt_deg"], abs=1.0)
        return
    t = out["truth"]["time_s"]
    a, b = out["script"]["standing_window_s"]
    m = (t >= a) & (t <= b)
    for c in TRUTH_COLUMNS[1:]:
        assert np.abs(out["truth"][c][m]).max() < 0.8, c  # zero within the tiny sway
    anat = _stand_mean(out, "truth_anatomical")
    tau = post["pelvis_tilt_deg"]
    assert anat["pelvis_tilt_deg"] == pytest.approx(tau, abs=0.2)
    for side in ("left", "right"):
        assert anat[f"hip_flexion_{side}_deg"] == pytest.approx(tau, abs=0.3)
        assert anat[f"hip_adduction_{side}_deg"] == pytest.approx(-post[f"hip_abduction_{side}_deg"], abs=0.3)
        assert anat[f"hip_rotation_{side}_deg"] == pytest.approx(post[f"hip_rotation_{side}_deg"], abs=0.3)
    # The posture is the one of every standing phase (squat: the pauses between reps).
    if scenario == "squat":
        reps = window(out, "rep_start", "rep_end", "squat")
        gap = (t > reps[1][1] + 0.2) & (t < reps[2][0] - 0.2)
        assert np.abs(out["truth_anatomical"]["pelvis_tilt_deg"][gap] - tau).max() < 0.6
        assert np.abs(out["truth"]["pelvis_tilt_deg"][gap]).max() < 0.8


def test_real_strap_tilt_up_to_20_deg():
    tilts = []
    for seed in range(6):
        out = sim("static", seed=seed, duration_s=1.0, ideal=True, realism="real")
        assert out["parameters"]["noise_model"]["mount_tilt_max_deg"] == 20.0
        for role in ROLES:
            s = out["sensors"][role]
            z = rot(s["mounting_wxyz"]).apply([0.0, 0.0, 1.0])
            ang = math.degrees(math.acos(np.clip(np.dot(z, s["skin_normal"]), -1, 1)))
            assert ang == pytest.approx(s["errors"]["mounting"]["tilt_deg"], abs=1e-6)
            tilts.append(ang)
    assert max(tilts) <= 20.0 + 1e-9 and max(tilts) > 15.0
    clean = sim("static", seed=0, duration_s=1.0, ideal=True)
    assert clean["sensors"]["pelvis"]["errors"]["mounting"]["turn_deg"] == pytest.approx(
        sim("static", seed=0, duration_s=1.0, ideal=True, realism="real")["sensors"]["pelvis"]["errors"]["mounting"]["turn_deg"])


def _skin_rotvec_deg(out: dict, role: str) -> tuple[np.ndarray, np.ndarray]:
    """(time_s, (N, 3) rotation vector in degrees) of the thigh sensor relative to
    femur * mounting, in the femur frame: W = F^-1 R_ws M^-1."""
    from scipy.spatial.transform import RotationSpline

    s = out["sensors"][role]
    seg = out["segments"]
    side = role.split("_")[1]
    f_spline = RotationSpline(seg["time_s"], rot(seg[f"femur_{side}_wxyz"]))
    t = s["time_s"]
    w = f_spline(t).inv() * rot(s["orientation_wxyz"]) * rot(s["mounting_wxyz"]).inv()
    return t, np.degrees(w.as_rotvec())


def test_real_soft_tissue_lags_hip_rotation():
    out = sim("seated_rotation", seed=0, ideal=True, realism="real")
    ta = out["truth_anatomical"]
    trials = window(out, "trial_start", "trial_end", "seated_rotation")
    for role in ("thigh_left", "thigh_right"):
        side = role.split("_")[1]
        info = out["sensors"][role]["soft_tissue"]
        assert 0.03 <= info["axial_k"] <= 0.08
        t, rv = _skin_rotvec_deg(out, role)
        m = in_spans(t, trials)
        rot_deg = np.interp(t[m], ta["time_s"], ta[f"hip_rotation_{side}_deg"])
        flex_deg = np.interp(t[m], ta["time_s"], ta[f"hip_flexion_{side}_deg"])
        expected = -info["axial_k"] * rot_deg + info["flexion_coupling_deg_per_deg"] * flex_deg
        assert np.abs(rv[m, 1] - expected).max() < 0.02, role  # about the femur's long axis
        assert np.abs(rv[m][:, [0, 2]]).max() < 0.02, role  # nothing else while no impact rings
        slope = np.polyfit(rot_deg, rv[m, 1], 1)[0]
        assert slope == pytest.approx(-info["axial_k"], abs=0.003)
        assert np.ptp(rv[m, 1]) > 1.5  # the sensor under-reads IR/ER by a visible amount
    # The pelvis sensor is rigid on the bone, and clean thighs are rigid too.
    p = out["sensors"]["pelvis"]
    assert "soft_tissue" not in p
    clean = sim("seated_rotation", seed=0, ideal=True)
    _, rv = _skin_rotvec_deg(clean, "thigh_right")
    assert np.abs(rv).max() < 0.01


def test_real_soft_tissue_rings_after_impacts():
    out = sim("walk", seed=0, ideal=True, realism="real")
    impacts = out["script"]["impacts"]
    ta = out["truth_anatomical"]
    for role in ("thigh_left", "thigh_right"):
        side = role.split("_")[1]
        info = out["sensors"][role]["soft_tissue"]
        t, rv = _skin_rotvec_deg(out, role)
        rot_deg = np.interp(t, ta["time_s"], ta[f"hip_rotation_{side}_deg"])
        flex_deg = np.interp(t, ta["time_s"], ta[f"hip_flexion_{side}_deg"])
        rv[:, 1] -= -info["axial_k"] * rot_deg + info["flexion_coupling_deg_per_deg"] * flex_deg
        mine = [(ti, sc) for ti, sd, sc in impacts if sd == side]
        assert len(mine) == info["impacts"] >= 16
        for (ti, sc), amp in zip(mine, info["impact_amp_deg"]):
            assert 1.0 * sc - 1e-9 <= amp <= 2.0 * sc + 1e-9
            ring = np.linalg.norm(rv[(t > ti) & (t < ti + 0.15)], axis=1)
            if sc > 0.9:
                assert 0.35 * amp < ring.max() <= amp + 0.05, (role, ti)
            later = np.linalg.norm(rv[(t > ti + 0.6) & (t < ti + 0.9)], axis=1)
            assert later.max() < 0.05 * amp + 0.05 or any(ti + 0.1 < tj < ti + 0.9 for tj, _ in mine)
        before = np.linalg.norm(rv[t < mine[0][0]], axis=1)
        assert before.max() < 0.01  # standing: no ringing


@pytest.mark.parametrize("scenario,rate_hz,bound", [("walk", 400.0, 0.05), ("walk", 100.0, 0.5),
                                                      ("sitting_rotation", 100.0, 0.05)])
def test_ideal_gyro_integrates_to_true_orientation_with_soft_tissue(scenario, rate_hz, bound):
    """The soft-tissue ringing (8-15 Hz) is in the gyroscope too: integrating it
    gives the true (wobbling) sensor orientation; sampled at 100 Hz the
    trapezoidal integration of the ringing costs up to a few tenths of a degree."""
    out = sim(scenario, seed=1, ideal=True, realism="real", rate_hz=rate_hz)
    for role in ROLES:
        worst, _ = _integrate_gyro(out["sensors"][role], every=100)
        assert worst < bound, (role, worst)
    # The accelerometer sees the same rotation: at rest it is gravity in the wobbling sensor frame.
    s = out["sensors"]["thigh_right"]
    a, b = out["script"]["standing_window_s"] or phase(out, "sit")
    m = (s["time_s"] >= a) & (s["time_s"] <= b)
    up = rot(s["orientation_wxyz"][m]).inv().apply([0.0, 1.0, 0.0])
    assert np.abs(s["acc_m_s2"][m] - G * up).max() < 0.05


def test_rates_do_not_change_the_kinematics():
    a = sim("walk", seed=1, ideal=True, realism="real", rate_hz=100.0)
    b = sim("walk", seed=1, ideal=True, realism="real", rate_hz=400.0)
    for c in TRUTH_COLUMNS:
        assert np.array_equal(a["truth"][c], b["truth"][c])
    assert a["events"] == b["events"] and a["script"] == b["script"]
    for role in ROLES:
        sa = a["sensors"][role]
        assert abs(np.median(np.diff(sa["time_s"])) - 0.01) < 1e-5
        assert sa["device"]["rate_hz"] == 100.0
        assert sa["mounting_wxyz"] == b["sensors"][role]["mounting_wxyz"]
    # A 100 Hz real session with noise and loss runs end to end.
    c = sim("sitting_rotation", seed=2, realism="real", rate_hz=100.0, loss=0.05)
    assert c["parameters"]["rate_hz"] == 100.0 and len(c["sensors"]["pelvis"]["time_s"]) > 9000
    json.dumps(c["parameters"])


# ----------------------------------------------------------------------------
# 8. New scenarios: walk, sitting_rotation
# ----------------------------------------------------------------------------


def test_walk_events_strides_and_gait():
    out = sim("walk", seed=0, ideal=True)
    ev = out["events"]
    assert [(e[1], e[2], e[3]) for e in ev] == [("trial_start", "free", {"side": "both", "index": 1}),
                                               ("trial_end", "free", {"side": "both", "index": 1})]
    assert ev[0][0] == pytest.approx(5.0)
    assert out["truth"]["time_s"][-1] - ev[1][0] == pytest.approx(5.0, abs=0.011)
    sc = out["script"]
    tr, t = out["truth"], out["truth"]["time_s"]
    pos = out["segments"]["pelvis_position_m"]
    (a1, b1), (a2, b2) = sc["straight_walks_s"]
    assert ev[0][0] < a1 < b1 < sc["turn_s"][0] < sc["turn_s"][1] < a2 < b2 < ev[1][0]
    strikes = {side: np.array([ti for ti, sd, _ in sc["impacts"] if sd == side]) for side in ("left", "right")}
    first = min(("left", "right"), key=lambda sd: strikes[sd][0])
    assert first == sc["first_leg"] == out["parameters"]["first_leg"]
    for a, b in sc["straight_walks_s"]:
        m = (t >= a) & (t <= b)
        for side in ("left", "right"):
            hs = strikes[side][(strikes[side] >= a) & (strikes[side] <= b)]
            assert len(hs) >= 5
            assert np.diff(hs) == pytest.approx(1.0, abs=0.06)  # ~1 stride/s
            # progression ~1.3 m per stride along the walking direction
            x = np.interp(hs, t, pos[:, 0])
            assert np.abs(np.diff(x)) == pytest.approx(1.3, abs=0.06)
            flex = tr[f"hip_flexion_{side}_deg"][m]
            assert 26 < flex.max() < 34 and -13 < flex.min() < -7
            assert np.interp(hs, t, tr[f"hip_flexion_{side}_deg"]) == pytest.approx(flex.max(), abs=2.0)
            assert 4 < tr[f"hip_adduction_{side}_deg"][m].max() < 8 and -8 < tr[f"hip_adduction_{side}_deg"][m].min() < -4
            assert 3 < tr[f"hip_rotation_{side}_deg"][m].max() < 7
        assert 1 < tr["pelvis_tilt_deg"][m].max() < 3
        assert 2.5 < tr["pelvis_obliquity_deg"][m].max() < 5.5
        rot_ = np.degrees(np.unwrap(np.radians(tr["pelvis_rotation_deg"][m])))
        assert 3 < (rot_ - np.median(rot_)).max() < 7
        assert 0.015 < np.ptp(pos[m, 1]) < 0.035  # vertical bounce
        # Right stance (right heel strike to its midstance): right crest up.
        hs = strikes["right"][(strikes["right"] >= a) & (strikes["right"] <= b)]
        assert np.interp(hs + 0.25, t, tr["pelvis_obliquity_deg"]).min() > 1.5
    # The turn: the heading changes by 180 deg and the walk comes back.
    r_p, _ = segs(out)
    facing = r_p.apply([1.0, 0.0, 0.0])
    assert facing[(t >= a1) & (t <= b1)].mean(axis=0) == pytest.approx([1.0, 0.0, 0.0], abs=0.02)
    assert facing[(t >= a2) & (t <= b2)].mean(axis=0) == pytest.approx([-1.0, 0.0, 0.0], abs=0.02)
    assert pos[-1, 0] == pytest.approx(0.0, abs=0.1) and pos[:, 0].max() > 9.0
    assert len(strikes["right"]) + len(strikes["left"]) >= 36  # >= 8 strides each way
    # Standing still at both ends.
    for span in [(0.0, 5.0), (ev[1][0], t[-1])]:
        m = in_spans(t, [span])
        assert np.abs(tr["hip_flexion_right_deg"][m]).max() < 1.0
    assert task_truth("walk", 0) == []


def test_walk_leading_leg_from_the_seed_or_chosen():
    legs = {build_motion("walk", seed, None).script.info["first_leg"] for seed in range(10)}
    assert legs == {"left", "right"}
    for leg in ("left", "right"):
        out = sim("walk", seed=0, ideal=True, first_leg=leg)
        strikes = [sd for _, sd, _ in out["script"]["impacts"]]
        assert strikes[0] == leg and out["script"]["first_leg"] == leg
    a, b = sim("walk", seed=0, ideal=True, first_leg="left"), sim("walk", seed=0, ideal=True, first_leg="right")
    assert a["script"]["turn_s"] == b["script"]["turn_s"]
    assert a["sensors"]["pelvis"]["mounting_wxyz"] == b["sensors"]["pelvis"]["mounting_wxyz"]
    with pytest.raises(ValueError):
        simulate("walk", first_leg="middle")


def test_sitting_rotation_events_and_task_truth():
    out = sim("sitting_rotation", seed=0, ideal=True)
    phases = [e[2] for e in kinds(out, "phase_start")]
    assert phases == ["sit", "seated_lift_right", "seated_lift_left", "sit_final"]
    assert [e[2] for e in kinds(out, "phase_end")] == phases
    a, b = phase(out, "sit")
    assert (a, b) == (pytest.approx(0.5), pytest.approx(4.5))
    assert phase(out, "sit_final")[1] - phase(out, "sit_final")[0] == pytest.approx(2.0)
    ev = out["events"]
    order = [(e[1], e[2], e[3].get("side"), e[3].get("index")) for e in ev if e[1] in ("zero", "trial_start")]
    assert order == [("zero", "", "right", None)] + [("trial_start", "seated_rotation", "right", i) for i in (1, 2, 3)] \
        + [("zero", "", "left", None)] + [("trial_start", "seated_rotation", "left", i) for i in (1, 2, 3)]
    assert phase(out, "sit_final")[1] < kinds(out, "zero")[0][0]
    assert all(e[1] in conventions.EVENT_KINDS for e in ev)
    tr, t = out["truth"], out["truth"]["time_s"]
    # Seated from the first sample: hips ~85 deg, no standing at all.
    assert tr["hip_flexion_right_deg"].min() > 78 and tr["hip_flexion_left_deg"][0] > 80
    assert out["segments"]["pelvis_position_m"][:, 1].max() < 0.6
    for side in ("right", "left"):
        a, b = phase(out, f"seated_lift_{side}")
        m = (t >= a) & (t <= b)
        lift = tr[f"hip_flexion_{side}_deg"][m] - tr[f"hip_flexion_{side}_deg"][(t >= 0.5) & (t <= 4.5)].mean()
        assert 9 < lift.max() < 21
        other = "left" if side == "right" else "right"
        assert np.ptp(tr[f"hip_flexion_{other}_deg"][m]) < 3.5
    scripted = task_truth("sitting_rotation", 0)
    assert [(d["side"], d["index"]) for d in scripted] == [(s, i) for s in ("right", "left") for i in (1, 2, 3)]
    assert all(30 <= d["ir_deg"] <= 38 and 35 <= d["er_deg"] <= 42 for d in scripted)
    trials = window(out, "trial_start", "trial_end", "seated_rotation")
    assert [(d["start_s"], d["end_s"]) for d in scripted] == [pytest.approx(x, abs=1e-6) for x in trials]
    for d, span in zip(scripted, trials):
        m = in_spans(t, [span])
        ir = tr[f"hip_rotation_{d['side']}_deg"][m].max()
        assert ir == pytest.approx(d["ir_deg"], abs=1.5)
