"""Tests of the ahrs comparison filters (hipimu.core._ahrs_filters).

Data: the virtual subject's right thigh, ideal sensors, 200 Hz, seated_rotation
seed 1 from 33.5 s (standing still) to 60 s: the sit-down (36.9-39.9 s) and the
first rotation trials. Measured on this slice (errors from 1 s after its
start; ahrs 0.4.0, default options):

=========  ===============================  ==============================
filter     inclination error 6D / 9D, deg   9D heading vs VQF 9D, deg
           mean, max                        mean, max
=========  ===============================  ==============================
madgwick   0.24, 4.24 / 0.23, 3.44          0.32, 2.83
mahony     0.12, 1.26 / 0.12, 1.21          0.08, 0.27
ekf        0.08, 0.79 / 0.07, 0.72          0.13, 0.43
=========  ===============================  ==============================
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from vqf import VQF

from hipimu.core._ahrs_filters import AHRS_METHODS, AhrsBackend
from hipimu.core.model import SampleBlock
from hipimu.core.orientation import R_WORLD_FROM_ZUP, estimate_orientation
from hipimu.sources.simulate._scenarios import simulate

TS = 1.0 / 200.0
METHODS = ("madgwick", "mahony", "ekf")
T0, T1 = 33.5, 60.0  # slice of seated_rotation (s)
SKIP = 200  # samples (1 s) left out of the error statistics


@functools.lru_cache(maxsize=1)
def _data() -> dict:
    """thigh_right slice: gyr, acc, mag, time, true sensor-to-earth (z up), VQF 9D of the whole recording."""
    s = simulate("seated_rotation", seed=1, ideal=True, mag=True)["sensors"]["thigh_right"]
    t = s["time_s"]
    gyr, acc, mag = (np.ascontiguousarray(s[k]) for k in ("gyr_rad_s", "acc_m_s2", "mag_ut"))
    vqf9 = VQF(TS).updateBatch(gyr, acc, mag)["quat9D"]  # whole recording: VQF's heading has converged
    sl = slice(int(np.searchsorted(t, T0)), int(np.searchsorted(t, T1)))
    truth_zup = R_WORLD_FROM_ZUP.inv() * Rotation.from_quat(s["orientation_wxyz"][sl], scalar_first=True)
    return {
        "t": t[sl], "gyr": gyr[sl], "acc": acc[sl], "mag": mag[sl],
        "truth_zup": truth_zup, "vqf9": Rotation.from_quat(vqf9[sl], scalar_first=True),
        "orientation_wxyz": s["orientation_wxyz"][sl],
    }


@functools.lru_cache(maxsize=None)
def _run(method: str, use_mag: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    d = _data()
    return AhrsBackend(method, TS, use_mag, None).update(d["gyr"], d["acc"], d["mag"] if use_mag else None)


def _angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.degrees(np.arccos(np.clip(np.sum(a * b, axis=1), -1.0, 1.0)))


def _inclination_error_deg(q_zup: np.ndarray, truth_zup: Rotation) -> np.ndarray:
    """Angle between the estimated and the true up direction in the sensor frame (R^T up)."""
    up_est = Rotation.from_quat(q_zup, scalar_first=True).inv().apply([0.0, 0.0, 1.0])
    return _angle_deg(up_est, truth_zup.inv().apply([0.0, 0.0, 1.0]))


def _heading_diff_deg(q_zup: np.ndarray, ref: Rotation) -> np.ndarray:
    """|yaw| of the earth-frame rotation from the reference to the estimate."""
    d = Rotation.from_quat(q_zup, scalar_first=True) * ref.inv()
    return np.abs(d.as_euler("ZYX", degrees=True)[:, 0])


# ---------------------------------------------------------------------------
# accuracy
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("use_mag", [False, True], ids=["6D", "9D"])
@pytest.mark.parametrize("method", METHODS)
def test_inclination_matches_truth(method: str, use_mag: bool) -> None:
    q, rest, bias = _run(method, use_mag)
    d = _data()
    n = len(d["t"])
    assert q.shape == (n, 4) and q.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-9)
    assert np.all(q[:, 0] >= 0.0)
    assert rest.shape == (n,) and rest.dtype == bool and not rest.any()
    assert bias is None or bias.shape == (n, 3)
    err = _inclination_error_deg(q, d["truth_zup"])[SKIP:]
    assert err.mean() < 0.5, f"{method}: mean inclination error {err.mean():.2f} deg"
    assert err.max() < 5.0, f"{method}: max inclination error {err.max():.2f} deg"


@pytest.mark.parametrize("method", METHODS)
def test_9d_heading_matches_vqf(method: str) -> None:
    q, _, _ = _run(method, True)
    err = _heading_diff_deg(q, _data()["vqf9"])[SKIP:]
    assert err.mean() < 1.0, f"{method}: mean heading difference to VQF 9D {err.mean():.2f} deg"
    assert err.max() < 4.0, f"{method}: max heading difference to VQF 9D {err.max():.2f} deg"


def test_9d_starts_at_magnetic_heading() -> None:
    """The first sample already has VQF's (converged) 9D heading: x east, y north."""
    d = _data()
    for method in METHODS:
        q, _, _ = AhrsBackend(method, TS, True, None).update(d["gyr"][:1], d["acc"][:1], d["mag"][:1])
        assert _heading_diff_deg(q, d["vqf9"][:1])[0] < 2.0, method


def test_ekf_magnetic_dip_from_data_and_wrong_dip_tilts() -> None:
    """ahrs's EKF fuses the field's direction: its reference dip must match the
    field (the simulator's is 65 deg down); a dip of the wrong sign tilts the
    estimate by ~20 deg."""
    d = _data()
    sl = slice(0, 600)
    truth = d["truth_zup"][sl]
    b = AhrsBackend("ekf", TS, True, None)
    q, _, _ = b.update(d["gyr"][sl], d["acc"][sl], d["mag"][sl])
    assert b.options["magnetic_dip_deg"] == pytest.approx(65.0, abs=0.5)
    assert _inclination_error_deg(q, truth).max() < 1.0
    q_bad, _, _ = AhrsBackend("ekf", TS, True, {"magnetic_dip_deg": -65.0}).update(
        d["gyr"][sl], d["acc"][sl], d["mag"][sl]
    )
    assert _inclination_error_deg(q_bad, truth)[SKIP:].mean() > 10.0


def test_params_change_the_result() -> None:
    d = _data()
    sl = slice(0, 1200)
    q_def, _, _ = AhrsBackend("madgwick", TS, False, None).update(d["gyr"][sl], d["acc"][sl], None)
    q_005, _, _ = AhrsBackend("madgwick", TS, False, {"gain": 0.05}).update(d["gyr"][sl], d["acc"][sl], None)
    q_0033, _, _ = AhrsBackend("madgwick", TS, False, {"gain": 0.033}).update(d["gyr"][sl], d["acc"][sl], None)
    np.testing.assert_array_equal(q_def, q_0033)  # 0.033 is the default
    assert np.abs(q_def - q_005).max() > 1e-6


def test_end_to_end_estimate_orientation() -> None:
    """Through hipimu.core.orientation: hipimu world (Y up) vs the simulator's truth."""
    d = _data()
    sl = slice(0, 1200)
    block = SampleBlock("thigh_right", d["t"][sl], d["acc"][sl], d["gyr"][sl], d["mag"][sl])
    o = estimate_orientation(block, 200.0, use_mag=True, method="mahony")
    up_est = o.rotation().inv().apply([0.0, 1.0, 0.0])
    up_true = Rotation.from_quat(d["orientation_wxyz"][sl], scalar_first=True).inv().apply([0.0, 1.0, 0.0])
    assert _angle_deg(up_est, up_true)[SKIP:].max() < 2.0
    assert o.gyr_bias_rad_s is not None and o.gyr_bias_rad_s.shape == (len(block.time_s), 3)


# ---------------------------------------------------------------------------
# state across blocks
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("use_mag", [False, True], ids=["6D", "9D"])
@pytest.mark.parametrize("method", METHODS)
def test_blocks_equal_one_call(method: str, use_mag: bool) -> None:
    d = _data()
    n = 900  # covers standing still and the start of the sit-down (motion)
    gyr, acc, mag = d["gyr"][600:600 + n], d["acc"][600:600 + n], d["mag"][600:600 + n] if use_mag else None
    whole = AhrsBackend(method, TS, use_mag, None).update(gyr, acc, mag)
    b = AhrsBackend(method, TS, use_mag, None)
    edges = [0, 0, 1, 8, 8, 250, 251, 600, n]  # includes empty and one-sample blocks
    parts = [b.update(gyr[i:j], acc[i:j], None if mag is None else mag[i:j]) for i, j in zip(edges[:-1], edges[1:])]
    np.testing.assert_array_equal(np.vstack([p[0] for p in parts]), whole[0])
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), whole[1])
    if whole[2] is None:
        assert all(p[2] is None for p in parts)
    else:
        np.testing.assert_array_equal(np.vstack([p[2] for p in parts]), whole[2])
    # and the filter really moved: not a constant output
    assert np.abs(whole[0] - whole[0][0]).max() > 0.05


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------


def test_unknown_method() -> None:
    with pytest.raises(ValueError, match=r"unknown ahrs filter 'kalman'.*madgwick, mahony, ekf"):
        AhrsBackend("kalman", TS, False, None)


@pytest.mark.parametrize(
    "method, params, match",
    [
        ("madgwick", {"beta": 0.1}, r"unknown option\(s\) 'beta' \(known: gain\)"),
        ("mahony", {"gain": 0.1}, r"unknown option\(s\) 'gain' \(known: k_P, k_I\)"),
        ("ekf", {"var_acc": 0.1, "noise": 1}, r"unknown option\(s\) 'noise'"),
        ("madgwick", {"gain": -0.1}, r"'gain' must be finite and > 0"),
        ("madgwick", {"gain": float("nan")}, r"'gain' must be finite and > 0"),
        ("madgwick", {"gain": "0.1"}, r"'gain' must be a number"),
        ("mahony", {"k_P": True}, r"'k_P' must be a number"),
        ("mahony", {"k_I": -1.0}, r"'k_I' must be finite and >= 0"),
        ("ekf", {"var_gyr": 0.0}, r"'var_gyr' must be finite and > 0"),
        ("ekf", {"magnetic_dip_deg": 95.0}, r"magnetic_dip_deg must be in \(-90, 90\)"),
        ("ekf", [("var_acc", 1.0)], r"params must be a dict or None"),
    ],
)
def test_bad_params(method: str, params, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        AhrsBackend(method, TS, False, params)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="ts_s must be a positive"):
        AhrsBackend("mahony", 0.0, False, None)
    z = np.zeros((4, 3))
    acc = np.tile([0.0, 0.0, 9.81], (4, 1))
    with pytest.raises(ValueError, match="9D fusion needs magnetometer samples"):
        AhrsBackend("ekf", TS, True, None).update(z, acc, None)
    with pytest.raises(ValueError, match=r"gyr and acc must be \(n, 3\) arrays"):
        AhrsBackend("madgwick", TS, False, None).update(z[:3], acc, None)
    with pytest.raises(ValueError, match="mag must have the shape of gyr"):
        AhrsBackend("madgwick", TS, True, None).update(z, acc, z[:2])
    with pytest.raises(ValueError, match="first accelerometer sample is zero"):
        AhrsBackend("mahony", TS, False, None).update(z, z, None)


def test_methods_table_matches_orientation_filters() -> None:
    from hipimu.core.orientation import FILTERS

    assert set(AHRS_METHODS) == set(FILTERS) - {"vqf"}
