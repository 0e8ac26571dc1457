"""Heading drift of VQF 6D on the virtual subject, against the true orientation.

With perfect (ideal) sensors any drift is the filter's own doing: VQF's rest
gyro-bias estimator learns spurious bias from postural sway. With realistic
sensors, switching bias estimation off lets the real bias drift instead.
Prints how far each sensor's estimated world has turned away from the true
world (deg; mostly heading, since gravity keeps the inclination) at a few
instants, relative to 2 s. Run: .venv/bin/python bench/heading_drift.py
"""

from __future__ import annotations

import sys

import numpy as np
from scipy.spatial.transform import Rotation

from hipimu.core.model import SampleBlock
from hipimu.core.orientation import estimate_orientation
from hipimu.sources.simulate._scenarios import simulate

INSTANTS_S = (36.0, 90.0, 130.0)
VARIANTS = {
    "VQF defaults": None,
    "bias estimation off": {"restBiasEstEnabled": False, "motionBiasEstEnabled": False},
}


def main() -> int:
    print("seated_rotation, seed 1, 200 Hz; world-frame error (deg, mostly heading) relative to t = 2 s, at " + ", ".join(f"{t:g} s" for t in INSTANTS_S))
    print(f"{'sensors':<10}{'filter':<22}" + "".join(f"{r:>24}" for r in ("pelvis", "thigh_left", "thigh_right")))
    for ideal in (True, False):
        sim = simulate("seated_rotation", seed=1, ideal=ideal)
        for name, params in VARIANTS.items():
            cells = []
            for role, s in sim["sensors"].items():
                o = estimate_orientation(SampleBlock(role, s["time_s"], s["acc_m_s2"], s["gyr_rad_s"]), 200.0, params=params)
                d = o.rotation() * Rotation.from_quat(s["orientation_wxyz"], scalar_first=True).inv()  # est world <- true world
                k = np.searchsorted(s["time_s"], (2.0,) + INSTANTS_S)
                cells.append(" ".join(f"{np.degrees((d[k[0]].inv() * d[i]).magnitude()):6.2f}" for i in k[1:]))
            print(f"{'ideal' if ideal else 'realistic':<10}{name:<22}" + "".join(f"{c:>24}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
