"""The command line as a user meets it: help, output, one-line errors, exit codes."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from hipimu.apps.cli import main
from hipimu.storage.recording import save_session

COMMANDS = ["info", "simulate", "import", "export", "demo"]


def run(capsys, *argv):
    try:
        rc = main(list(argv))
    except SystemExit as exc:  # argparse: --help, usage errors
        rc = exc.code
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_help_lists_every_command(capsys):
    rc, out, _ = run(capsys, "--help")
    assert rc == 0
    for c in COMMANDS:
        assert c in out


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help(capsys, command):
    rc, out, _ = run(capsys, command, "--help")
    assert rc == 0
    assert f"usage: hipimu {command}" in out
    assert len(out.splitlines()) > 5


def test_usage_error_is_one_line(capsys):
    rc, out, err = run(capsys, "simulate", "--scenario", "moonwalk", "-o", "x.hipimu")
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("hipimu: error:") and "moonwalk" in err


def test_info_text(capsys, tmp_path, small_session):
    p = tmp_path / "s.hipimu"
    save_session(small_session, p)
    rc, out, err = run(capsys, "info", str(p))
    assert rc == 0, err
    assert "subject  T01" in out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("  thigh") or line.startswith("  pelvis")}
    # role device samples start dur rate nominal gaps missing longest mag
    assert lines["thigh_right"][2] == "392" and lines["thigh_right"][7] == "1" and lines["thigh_right"][8] == "8"
    assert lines["pelvis"][7] == "0"
    assert "look here" in out and "phase_start" in out


def test_info_json(capsys, tmp_path, small_session):
    p = tmp_path / "s.hipimu"
    save_session(small_session, p)
    rc, out, _ = run(capsys, "info", "--json", str(p))
    assert rc == 0
    d = json.loads(out)
    by_role = {s["role"]: s for s in d["sensors"]}
    assert by_role["thigh_right"]["seq_missing"] == 8
    assert by_role["pelvis"]["effective_rate_hz"] == pytest.approx(200.0 * (1 - 40e-6), rel=1e-9)
    assert d["session"]["subject_id"] == "T01" and len(d["events"]) == 3


@pytest.mark.parametrize("content", [None, b"garbage" * 50])
def test_info_bad_file(capsys, tmp_path, content):
    p = tmp_path / "x.hipimu"
    if content is not None:
        p.write_bytes(content)
    rc, out, err = run(capsys, "info", str(p))
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("hipimu: error:")


def test_console_script_exit_code(tmp_path):
    """The installed entry point, as a shell runs it."""
    r = subprocess.run([sys.executable, "-m", "hipimu", "info", str(tmp_path / "none.hipimu")], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip() == f"hipimu: error: {tmp_path / 'none.hipimu'}: no such file"


def test_export_import_round_trip_is_exact(capsys, tmp_path, small_session):
    p = tmp_path / "s.hipimu"
    save_session(small_session, p)
    csv = tmp_path / "raw.csv"
    rc, out, err = run(capsys, "export", str(p), "-o", str(csv))
    assert rc == 0, err
    assert csv.read_text().splitlines()[0] == "time_s,sensor,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z"
    back = tmp_path / "back.hipimu"
    rc, out, err = run(capsys, "import", str(csv), "-o", str(back), "--subject", "P9", "--test", "free")
    assert rc == 0, err
    from hipimu.storage.recording import load_session

    s2 = load_session(back)
    for r, blk in small_session.samples.items():
        got = s2.samples[r]
        assert np.array_equal(got.time_s, blk.time_s) and np.array_equal(got.acc_m_s2, blk.acc_m_s2)
        assert np.array_equal(got.gyr_rad_s, blk.gyr_rad_s)
    assert s2.info.subject_id == "P9" and s2.info.sides == ("left", "right") and s2.info.source == "import"
    assert s2.devices["pelvis"].rate_hz == pytest.approx(200.0, rel=1e-3)


def test_export_a_time_window_of_some_sensors(capsys, tmp_path, small_session):
    p = tmp_path / "s.hipimu"
    save_session(small_session, p)
    csv = tmp_path / "w.csv"
    rc, _, err = run(capsys, "export", str(p), "-o", str(csv), "--sensors", "pelvis", "--from", "0.5", "--to", "1.0")
    assert rc == 0, err
    rows = csv.read_text().splitlines()[1:]
    t = np.array([float(r.split(",")[0]) for r in rows])
    assert {r.split(",")[1] for r in rows} == {"pelvis"}
    assert t.min() >= 0.5 and t.max() < 1.0 and len(rows) == 100


BAD_CSV = {
    "missing column": ("time_s,sensor,acc_x,acc_y,acc_z,gyr_x,gyr_y\n0,pelvis,0,0,9.8,0,0\n", ":1:", "gyr_z"),
    "unknown sensor": ("time_s,sensor,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z\n0,pelvis,0,0,9.8,0,0,0\n0,knee,0,0,9.8,0,0,0\n", ":3:", "knee"),
    "text in a number": ("time_s,sensor,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z\n0,pelvis,0,zero,9.8,0,0,0\n", ":2:", "zero"),
    "nan": ("time_s,sensor,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z\n0,pelvis,0,0,9.8,0,0,0\n0.01,pelvis,0,0,nan,0,0,0\n", ":3:", "NaN"),
    "time backwards": ("time_s,sensor,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z\n0.02,pelvis,0,0,9.8,0,0,0\n0.01,pelvis,0,0,9.8,0,0,0\n", ":3:", "backwards"),
    "empty": ("", "", "empty"),
}


@pytest.mark.parametrize("case", list(BAD_CSV))
def test_import_bad_csv(capsys, tmp_path, case):
    text, where, word = BAD_CSV[case]
    src = tmp_path / "in.csv"
    src.write_text(text)
    out_file = tmp_path / "out.hipimu"
    rc, out, err = run(capsys, "import", str(src), "-o", str(out_file))
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("hipimu: error:"), err
    assert where in err and word in err, err
    assert sorted(x.name for x in tmp_path.iterdir()) == ["in.csv"]  # nothing written, nothing half-written


def test_import_refuses_to_overwrite(capsys, tmp_path, small_session):
    p = tmp_path / "s.hipimu"
    save_session(small_session, p)
    csv = tmp_path / "raw.csv"
    run(capsys, "export", str(p), "-o", str(csv))
    before = p.read_bytes()
    rc, _, err = run(capsys, "import", str(csv), "-o", str(p))
    assert rc == 2 and "already exists" in err
    assert p.read_bytes() == before
    rc, _, err = run(capsys, "import", str(csv), "-o", str(p), "--force")
    assert rc == 0, err


def test_simulate_writes_session_and_truth(capsys, tmp_path):
    from hipimu.core.conventions import ANGLE_COLUMNS, CALIBRATION_PHASES
    from hipimu.storage.angles_csv import read_angles_csv
    from hipimu.storage.recording import load_session

    out_file, truth = tmp_path / "sq.hipimu", tmp_path / "truth.csv"
    rc, out, err = run(capsys, "simulate", "--scenario", "squat", "-o", str(out_file), "--truth", str(truth), "--seed", "4", "--mag", "--rate", "100")
    assert rc == 0, err
    s = load_session(out_file)
    assert s.info.simulated and s.info.simulation["scenario"] == "squat" and s.info.simulation["seed"] == 4
    assert set(s.samples) == {"pelvis", "thigh_left", "thigh_right"} and all(b.has_mag for b in s.samples.values())
    assert all(d.rate_hz == 100 for d in s.devices.values())
    phases = [e.label for e in s.events if e.kind == "phase_start"]
    assert phases == list(CALIBRATION_PHASES)
    assert len(s.intervals("rep")) == 5
    table = read_angles_csv(truth)
    assert tuple(table) == ANGLE_COLUMNS
    assert np.allclose(np.diff(table["time_s"]), 0.01)
    assert table["hip_flexion_right_deg"].max() > 90  # a deep squat


def test_simulate_bad_option_leaves_nothing(capsys, tmp_path):
    rc, _, err = run(capsys, "simulate", "--scenario", "static", "-o", str(tmp_path / "x.hipimu"), "--loss", "0.9")
    assert rc == 2 and err.count("\n") == 1 and "loss" in err, err
    assert list(tmp_path.iterdir()) == []


def test_demo_runs_and_summarises(capsys, tmp_path):
    rc, out, err = run(capsys, "demo", "--out", str(tmp_path))
    assert rc == 0, err
    assert "Ground truth of the virtual subject" in out and "seated_rotation right" in out
    name = "seated_rotation_squat"  # the default: the seated rotation test, then squats
    assert (tmp_path / f"{name}.hipimu").exists() and (tmp_path / f"{name}_truth.csv").exists()
    # the analysis: 3 trials per side, 5 reps, the IR reserve per side, a summary CSV and a report
    assert "seated_rotation, right: 3 trials, max IR" in out and "seated_rotation, left: 3 trials" in out
    assert "squat, right: 5 reps" in out and "squat, left: 5 reps" in out
    reserve = re.findall(r"IR reserve, (left|right): (-?\d+\.\d) deg", out)
    assert sorted(side for side, _ in reserve) == ["left", "right"] and all(5 < float(v) < 40 for _, v in reserve)
    assert (tmp_path / "summary.csv").stat().st_size > 0 and (tmp_path / "report.pdf").read_bytes()[:5] == b"%PDF-"


def test_simulated_source_streams_like_replay():
    import asyncio

    from hipimu.core.model import concat_blocks
    from hipimu.sources.simulate import SimulatedSource, simulate_session

    async def go():
        async with SimulatedSource("static", speed=None, seed=2, duration_s=5, rate_hz=50) as src:
            return src, [b async for b in src.blocks()]

    src, blocks = asyncio.run(go())
    ref, _ = simulate_session("static", seed=2, duration_s=5, rate_hz=50)
    assert set(src.devices) == set(ref.devices) and len(src.events) == len(ref.events)
    for r in ref.roles:
        assert concat_blocks([b for b in blocks if b.role == r]).equals(ref.samples[r])


@pytest.mark.parametrize(
    "argv,word",
    [
        (["export", "{s}", "-o", "{s}", "-f"], "is also an input"),
        (["export", "{s}", "-o", "{dir}"], "is a directory"),
        (["export", "{s}", "-o", "{dir}/x.csv", "--from", "2", "--to", "1"], "must be before"),
        (["simulate", "--scenario", "static", "-o", "{dir}/a.hipimu", "--truth", "{dir}/a.hipimu"], "another output"),
        (["simulate", "--scenario", "static", "-o", "{dir}/b.hipimu", "--duration", "1e9"], "longer than"),
    ],
)
def test_outputs_that_would_destroy_data_are_refused(capsys, tmp_path, small_session, argv, word):
    p = tmp_path / "s.hipimu"
    save_session(small_session, p)
    before = sorted(x.name for x in tmp_path.iterdir())
    (tmp_path / "d").mkdir()
    argv = [a.format(s=p, dir=tmp_path / "d") for a in argv]
    rc, _, err = run(capsys, *argv)
    assert rc == 2 and err.count("\n") == 1 and word in err, err
    assert sorted(x.name for x in tmp_path.iterdir()) == sorted(before + ["d"]) and not any((tmp_path / "d").iterdir())
    assert len(load_session_(p).samples) == 3


def load_session_(p):
    from hipimu.storage.recording import load_session

    return load_session(p)


def test_import_a_very_slow_sensor(capsys, tmp_path):
    src = tmp_path / "slow.csv"
    src.write_text("time_s,sensor,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z\n0,pelvis,0,9.8,0,0,0,0\n3000,pelvis,0,9.8,0,0,0,0\n")
    rc, _, err = run(capsys, "import", str(src), "-o", str(tmp_path / "slow.hipimu"))
    assert rc == 0, err
    assert load_session_(tmp_path / "slow.hipimu").devices["pelvis"].rate_hz == pytest.approx(1 / 3000)
