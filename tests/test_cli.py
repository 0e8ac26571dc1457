"""The command line as a user meets it: help, output, one-line errors, exit codes."""

import json
import subprocess
import sys

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
