"""The bundled example sessions: they open, say they are simulated, and are
still what the simulator makes from their seeds (golden files: regenerate them
on purpose, with the commands in recordings/README.md)."""

import re
from pathlib import Path

import numpy as np
import pytest

from hipimu.core.conventions import ANGLE_COLUMNS, CALIBRATION_PHASES
from hipimu.sources.simulate import simulate_session
from hipimu.storage.angles_csv import read_angles_csv
from hipimu.storage.recording import load_session

REC = Path(__file__).parent.parent / "recordings"
README = (REC / "README.md").read_text()
BUNDLED = sorted(REC.glob("*.hipimu"))


def test_every_file_is_documented():
    assert BUNDLED, "no bundled recordings"
    for f in REC.iterdir():
        if f.name != "README.md":
            assert f"`{f.name}`" in README, f.name


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_bundled_session_matches_its_seed(path):
    s = load_session(path)
    assert s.info.simulated and s.info.source == "simulate" and "Not a real person" in s.info.notes
    assert [e.label for e in s.events if e.kind == "phase_start"] == list(CALIBRATION_PHASES)
    scenario, seed, rate = s.info.simulation["scenario"], s.info.simulation["seed"], s.info.simulation["rate_hz"]
    cmd = re.search(rf"--scenario {scenario}\s+--seed (\d+) --rate (\d+) -o recordings/{path.name}", README)
    assert cmd and int(cmd.group(1)) == seed and float(cmd.group(2)) == rate
    fresh, truth = simulate_session(scenario, seed=seed, rate_hz=rate)
    for r in fresh.roles:
        a, b = s.samples[r], fresh.samples[r]
        np.testing.assert_allclose(a.time_s, b.time_s, rtol=0, atol=1e-9)
        # quantised values may flip one ADC step where a different numpy rounds differently
        assert np.mean(np.abs(a.gyr_rad_s - b.gyr_rad_s) < 1e-9) > 0.999
        assert np.mean(np.abs(a.acc_m_s2 - b.acc_m_s2) < 1e-9) > 0.999
    stored = read_angles_csv(REC / path.name.replace(".hipimu", "_truth.csv.gz"))
    assert tuple(stored) == ANGLE_COLUMNS
    for c in ANGLE_COLUMNS:
        # the CSV keeps 6 decimals of time and 4 of angle: half a last digit is the rounding
        np.testing.assert_allclose(stored[c], truth[c], rtol=0, atol=5.01e-7 if c == "time_s" else 5.01e-5)
