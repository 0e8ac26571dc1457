"""Accuracy of the clinical analysis against the virtual subject's truth.

For each scenario (seated and prone rotation, squat, seated rotation with
pelvic compensation beyond the threshold, seated rotation then squats) and seed, the session is
simulated (realistic sensors), its angles computed by the pipeline
(``process_session``: 6D VQF, calibration from the routine, zero events) and
analysed (``hipimu.core.analysis.analyze``) -- once with the recording's trial
events and once without them (the task declared, trials and reps found in the
angles). Each measure is compared with the same definition applied to the
simulator's true angles over the same span (its error: estimate - truth,
degrees), and the counts with the script (:func:`task_truth`).

Columns: n (trials or rep-sides), mean error, mean |error|, max |error| (deg);
counts: found / scripted over all seeds; compensation flags from the estimate
and from the true angles; the IR reserve (table IR minus squat IR) of the
session with both tests.

Run: .venv/bin/python bench/analysis_accuracy.py [--seeds 0,1,2,3,4]
(~2 minutes). Prints tables and asserts nothing.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from hipimu.core.analysis import analyze, angles_from_table, ir_reserve, rotation_trial, squat_rep
from hipimu.core.pipeline import process_session
from hipimu.sources.simulate import simulate_session, task_truth

ROTATION = ("max_ir_rad", "max_er_rad", "arc_rad", "pelvic_compensation_rad", "apparent_max_ir_rad", "apparent_max_er_rad")
SQUAT = ("depth_rad", "ir_at_bottom_rad", "adduction_at_bottom_rad", "tilt_top_rad", "tilt_bottom_rad",
         "butt_wink_rad", "knee_flare_abduction_rad", "knee_flare_er_rad")



SCENARIOS = ("seated_rotation", "prone_rotation", "squat", "seated_rotation_compensating", "seated_rotation_squat")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2,3,4", help="comma list of seeds")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma list of scenarios")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s]
    errors: dict[tuple[str, str, str], list[float]] = {}
    counts: dict[tuple[str, str, str], list[int]] = {}
    flags: dict[str, list[int]] = {}
    t0 = time.perf_counter()
    for scenario in args.scenarios.split(","):
        for seed in seeds:
            session, truth = simulate_session(scenario, seed=seed)
            result = process_session(session)
            T = angles_from_table(truth)
            scripted = task_truth(scenario, seed)
            runs = [("events", analyze(result.angles, session.events))]
            if session.info.test != "free":  # one task: also found without the trial events
                bare = [e for e in session.events if not e.kind.startswith(("trial", "rep"))]
                runs.append(("found", analyze(result.angles, bare, test=session.info.test)))
            for how, an in runs:
                for kind, found, items, spans, keys in (
                        ("rep", len({r.index for r in an.squat}), an.squat, squat_rep, SQUAT),
                        ("trial", len(an.rotation), an.rotation, rotation_trial, ROTATION)):
                    want = sum(t["kind"] == kind for t in scripted)
                    if not want:
                        continue
                    c = counts.setdefault((scenario, how, kind), [0, 0])
                    c[0] += found
                    c[1] += want
                    for r in items:
                        tr = spans(T, r.side, r.start_s, r.end_s)
                        for k in keys:
                            errors.setdefault((scenario, how, k), []).append(math.degrees(getattr(r, k) - getattr(tr, k)))
                if how == "events" and an.rotation:
                    true = analyze(T, session.events)
                    f = flags.setdefault(scenario, [0, 0, 0])
                    f[0] += sum(r.compensating for r in an.rotation)
                    f[1] += sum(r.compensating for r in true.rotation)
                    f[2] += len(an.rotation)
                    if an.squat:
                        est = {r["side"]: r["reserve_rad"] for r in ir_reserve(an.rotation, an.squat)}
                        ref = {r["side"]: r["reserve_rad"] for r in ir_reserve(true.rotation, true.squat)}
                        for side, v in est.items():
                            errors.setdefault((scenario, how, "ir_reserve_rad"), []).append(math.degrees(v - ref[side]))
    print(f"clinical analysis vs the simulator's true angles: seeds {seeds}, {time.perf_counter() - t0:.0f} s")
    print("\ncounts (rotation trials, or squat reps): found / scripted")
    for (scenario, how, kind), (found, want) in counts.items():
        print(f"  {scenario:<30} {kind + 's':<7} {'trial events' if how == 'events' else 'found in the angles':<20} "
              f"{found} / {want}")
    print("\npelvic compensation flagged (beyond 5 deg): trials flagged from the estimate / from the true angles / trials")
    for scenario, (est, ref, n) in flags.items():
        print(f"  {scenario:<30} {est} / {ref} / {n}")
    head = f"{'scenario':<30}{'trials':<8}{'measure':<28}{'n':>4}{'mean err':>10}{'mean |err|':>11}{'max |err|':>10}"
    print("\nerrors, degrees (estimate - truth, same span, same definition)")
    print(head)
    print("-" * len(head))
    for (scenario, how, k), v in errors.items():
        a = np.asarray(v)
        print(f"{scenario:<30}{how:<8}{k.removesuffix('_rad') + '_deg':<28}{len(a):>4}{a.mean():>10.2f}"
              f"{np.abs(a).mean():>11.2f}{np.abs(a).max():>10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
