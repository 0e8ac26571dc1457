"""Every row of the sign table, built from physically described movements.

Each case places segments by where their axes point (``Rotation.align_vectors``),
never through the Euler formulas under test, then checks the angle's sign and
size, on both sides, under any heading of the whole body.
"""

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from hipimu.core import conventions as cv
from hipimu.errors import UnknownRoleError

A = np.array([1.0, 0, 0])  # anterior (X)
S = np.array([0, 1.0, 0])  # superior (Y)
R = np.array([0, 0, 1.0])  # right (Z)
DOCS = Path(__file__).parent.parent / "docs" / "conventions.md"


def tilted(base, toward, deg):
    a = np.radians(deg)
    return np.cos(a) * base + np.sin(a) * toward


def frame(primary_axis, primary_dir, secondary_axis, secondary_dir):
    """Rotation taking segment axis vectors to the given directions (pelvis frame)."""
    rot, _ = Rotation.align_vectors([primary_dir, secondary_dir], [primary_axis, secondary_axis], weights=[np.inf, 1])
    return rot


PRONE = frame(A, -S, S, A)  # pelvis anterior faces the floor, head forward


def femur_case(key, side):
    """(pelvis in world, femur in pelvis frame, expected |angle| deg)."""
    lat = R if side == "right" else -R
    med = -lat
    I = Rotation.identity()
    cases = {
        "knee_forward": (I, frame(-S, tilted(-S, A, 30), R, R), 30),
        "thigh_backward": (I, frame(-S, tilted(-S, -A, 20), R, R), 20),
        "knee_to_midline": (I, frame(-S, tilted(-S, med, 15), A, A), 15),
        "leg_out_to_side": (I, frame(-S, tilted(-S, lat, 25), A, A), 25),
        # sitting: femur forward, shank (femur -X with the knee at 90 deg) hangs down
        "seated_foot_out": (I, frame(-S, A, -A, tilted(-S, lat, 20)), 20),
        "seated_foot_in": (I, frame(-S, A, -A, tilted(-S, med, 20)), 20),
        # prone: hip neutral, knee at 90 deg: the shank points to the ceiling (-A of the pelvis)
        "prone_foot_out": (PRONE, frame(-S, -S, -A, tilted(-A, lat, 30)), 30),
        "prone_foot_in": (PRONE, frame(-S, -S, -A, tilted(-A, med, 30)), 30),
        "standing_toes_in": (I, frame(-S, -S, A, tilted(A, med, 20)), 20),
    }
    if key == "hip_hinge":  # the pelvis tips forward 45 deg, the femur stays vertical in the world
        pelvis = frame(S, tilted(S, A, 45), R, R)
        return pelvis, pelvis.inv(), 45
    return cases[key]


def pelvis_case(key):
    cases = {
        "pelvis_forward": (frame(S, tilted(S, A, 12), R, R), 12),
        "pelvis_backward": (frame(S, tilted(S, -A, 12), R, R), 12),
        "right_crest_up": (frame(R, tilted(R, S, 8), A, A), 8),
        "left_crest_up": (frame(R, tilted(R, -S, 8), A, A), 8),
        "right_side_forward": (frame(R, tilted(R, A, 15), S, S), 15),
        "left_side_forward": (frame(R, tilted(R, -A, 15), S, S), 15),
    }
    return cases[key]


HIP_ROWS = [(row, side) for row in cv.SIGN_TABLE if row.angle.startswith("hip_") for side in row.sides]
PELVIS_ROWS = [row for row in cv.SIGN_TABLE if row.angle.startswith("pelvis_")]


@pytest.mark.parametrize("heading_deg", [0.0, 137.0])
@pytest.mark.parametrize("row,side", HIP_ROWS, ids=[f"{r.key}-{s}" for r, s in HIP_ROWS])
def test_hip_sign_table(row, side, heading_deg):
    pelvis_in_world_local, femur_in_pelvis, size = femur_case(row.key, side)
    heading = Rotation.from_rotvec(np.radians(heading_deg) * S)  # whole body turned about the vertical
    r_wp = heading * pelvis_in_world_local
    r_wf = r_wp * femur_in_pelvis
    ang = np.degrees(cv.hip_angles_rad(r_wp, r_wf, side))[0]
    names = [f"hip_{q}" for q in cv.HIP_QUANTITIES]
    i = names.index(row.angle)
    assert np.sign(ang[i]) == row.sign, (row.movement, side, ang)
    assert ang[i] == pytest.approx(row.sign * size, abs=1e-6)
    if row.key.startswith("seated"):
        assert ang[0] == pytest.approx(90, abs=1e-6) and abs(ang[1]) < 1e-6
    elif row.key == "hip_hinge":
        assert abs(ang[1]) < 1e-6 and abs(ang[2]) < 1e-6
    else:
        others = [j for j in range(3) if j != i]
        assert np.all(np.abs(ang[others]) < 1e-6), ang


@pytest.mark.parametrize("heading_deg", [0.0, -70.0])
@pytest.mark.parametrize("row", PELVIS_ROWS, ids=[r.key for r in PELVIS_ROWS])
def test_pelvis_sign_table(row, heading_deg):
    local, size = pelvis_case(row.key)
    reference = Rotation.from_rotvec(np.radians(heading_deg) * S)  # standing calibration, any heading
    ang = np.degrees(cv.pelvis_angles_rad(reference * local, reference))[0]
    names = [f"pelvis_{q}" for q in cv.PELVIS_QUANTITIES]
    i = names.index(row.angle)
    assert np.sign(ang[i]) == row.sign, (row.movement, ang)
    assert ang[i] == pytest.approx(row.sign * size, abs=1e-6)
    assert np.all(np.abs(np.delete(ang, i)) < 1e-6)


def test_every_sign_row_is_tested():
    assert {r.key for r, _ in HIP_ROWS} | {r.key for r in PELVIS_ROWS} == {r.key for r in cv.SIGN_TABLE}
    assert all(r.sides == ("left", "right") for r in cv.SIGN_TABLE if r.angle.startswith("hip_"))


angles = st.tuples(
    st.floats(-170, 170), st.floats(-85, 85), st.floats(-170, 170)
).map(lambda a: np.radians(np.array(a)))


@settings(max_examples=200, deadline=None)
@given(angles, st.sampled_from(cv.SIDES), angles)
def test_hip_angles_round_trip(a, side, pelvis_euler):
    r_wp = Rotation.from_euler("XYZ", pelvis_euler)
    r_wf = r_wp * cv.hip_rotation_from_angles(a, side)
    np.testing.assert_allclose(cv.hip_angles_rad(r_wp, r_wf, side)[0], a, atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(st.tuples(st.floats(-170, 170), st.floats(-85, 85), st.floats(-170, 170)).map(np.radians), angles)
def test_pelvis_angles_round_trip(a, ref_euler):
    ref = Rotation.from_euler("XYZ", ref_euler)
    np.testing.assert_allclose(cv.pelvis_angles_rad(ref * cv.pelvis_rotation_from_angles(np.array(a)), ref)[0], a, atol=1e-9)


def test_left_is_the_mirror_of_right():
    """Mirroring a right-leg posture through the sagittal plane gives the same
    numbers on the left: that is what the sign flip is for."""
    a = np.radians([40.0, 10.0, 25.0])
    m = np.diag([1.0, 1.0, -1.0])  # sagittal mirror
    right = cv.hip_rotation_from_angles(a, "right").as_matrix()[0]
    left = Rotation.from_matrix(m @ right @ m)
    np.testing.assert_allclose(cv.hip_angles_rad(Rotation.identity(), left, "left")[0], a, atol=1e-12)


def test_vectorised_over_time():
    a = np.radians(np.random.default_rng(0).uniform(-60, 60, size=(500, 3)))
    r = cv.hip_rotation_from_angles(a, "left")
    out = cv.hip_angles_rad(Rotation.identity(), r, "left")
    assert out.shape == (500, 3)
    np.testing.assert_allclose(out, a, atol=1e-9)


def test_quaternions_are_scalar_first():
    r = Rotation.from_rotvec([0, 0, np.pi / 2])
    q = cv.quat_wxyz(r)
    np.testing.assert_allclose(q, [np.cos(np.pi / 4), 0, 0, np.sin(np.pi / 4)])
    assert cv.rotation_from_quat_wxyz(q).approx_equal(r)


def test_roles_and_columns():
    assert list(cv.ROLES) == ["pelvis", "thigh_left", "thigh_right"]
    assert cv.thigh_role("left") == "thigh_left"
    with pytest.raises(UnknownRoleError, match="unknown sensor 'thigh_middle'"):
        cv.role("thigh_middle")
    assert cv.ANGLE_COLUMNS == (
        "time_s",
        "hip_flexion_left_deg", "hip_adduction_left_deg", "hip_rotation_left_deg",
        "hip_flexion_right_deg", "hip_adduction_right_deg", "hip_rotation_right_deg",
        "pelvis_tilt_deg", "pelvis_obliquity_deg", "pelvis_rotation_deg",
    )


def _docs_sign_rows():
    text = DOCS.read_text()
    block = text.split("<!-- sign-table:start -->")[1].split("<!-- sign-table:end -->")[0]
    rows = []
    for line in block.strip().splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows.append(tuple(cells))
    return rows


def test_docs_sign_table_matches_code():
    """docs/conventions.md shows exactly SIGN_TABLE (movement, angle column, sign)."""
    expected = []
    for r in cv.SIGN_TABLE:
        if r.angle.startswith("hip_"):
            q = r.angle[len("hip_"):]
            col = f"`{cv.hip_column(q, 'right')}`, `{cv.hip_column(q, 'left')}`"
        else:
            col = f"`{cv.pelvis_column(r.angle[len('pelvis_'):])}`"
        expected.append((r.movement, col, "+" if r.sign > 0 else "-"))
    assert _docs_sign_rows() == expected


def test_docs_name_every_column_and_role():
    text = DOCS.read_text()
    for c in cv.ANGLE_COLUMNS + cv.RAW_CSV_COLUMNS + cv.RAW_CSV_MAG_COLUMNS:
        assert re.search(rf"`{c}`", text), c
    for r in cv.ROLES:
        assert f"`{r}`" in text, r
    for p in cv.CALIBRATION_PHASES:
        assert f"`{p}`" in text, p
    for k in cv.EVENT_KINDS:
        assert f"`{k}`" in text, k
