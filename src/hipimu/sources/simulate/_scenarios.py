"""Scenario scripts of the virtual subject and the :func:`simulate` entry point.

Independent ground truth: imports only the standard library, numpy, scipy
and the sibling ``_body`` / ``_motion`` modules (never ``hipimu``).

Every body scenario except ``walk`` and ``sitting_rotation`` (below) starts with
the same anatomical calibration routine; times are exact (only amplitudes vary
with the seed):

====================  ============  ==========================================
phase                 time, s       what the subject does
====================  ============  ==========================================
``stand``             0.5 - 4.5     upright, still
``hip_hinge``         5.25 - 11.75  2 hinges (1.3 s down, 0.4 s hold, 1.3 s
                                    up, 0.5 s between), pelvis tilt +40..50
                                    deg, thighs still and vertical (hip
                                    flexion = tilt), pelvis 6-8 cm back
``knee_lift_right``   12.5 - 22.2   weight shift 3 cm left, 3 knee lifts to
                                    55..65 deg hip flexion (1 s up, 0.5 s
                                    hold, 1 s down, 0.5 s between), 2..5 deg
                                    posterior pelvic tilt, 0.5..2 deg right
                                    crest up; left femur still in the world
``knee_lift_left``    22.95 - 32.65 the same on the left (left crest up)
``stand_final``       33.4 - 36.4   still
====================  ============  ==========================================

The task starts at 36.9 s. Task scripts (total lengths for seed 0):

* ``squat`` (~66 s): 1 s to turn the toes out (hip ER 3..7 deg), 1 s still,
  ``trial_start``, 0.5 s, 5 reps (descent 1.4-1.6 s, bottom 0.4-0.6 s,
  ascent 1.4-1.6 s; 1.3-1.7 s standing between), 0.5 s, ``trial_end``.
* ``seated_rotation`` (~134 s): 3 s to sit down (hip flexion 83..87 deg,
  femurs ~horizontal, pelvis tilt -3..-7 deg, pelvis 0.40 m lower, 0.15 m
  back), then per side (right first): 1 s, ``zero``, 2 s, 3 trials; each
  trial is 0.5 s neutral, IR (1.3-1.7 s move, 2.8-3.2 s hold, 1.3-1.7 s
  back), 0.5 s, ER (same), 0.5 s; 1 s between trials.
* ``prone_rotation`` (~136 s): 4 s to lie prone (pelvis tilt +90 deg, pelvis
  at 0.80 m), then as seated (IR 32..38, ER 37..43 deg).
* ``long_mixed`` and ``static``: ``trial_start`` at 36.9 s, ``trial_end``
  exactly ``duration_s`` later, recording ends 0.5 s after that.

Two body scenarios have no calibration routine (their scripts start at 0 s):

* ``walk`` (29 s + T, T = the turn, 2.2-2.8 s): a gait-lab trial, no phase
  events. 0-5 s standing still (the standing pose of the truth is its
  0.5-4.5 s); at 5.0 s ``trial_start`` (``free``, side ``both``, index 1) and
  the gait starts: amplitude and speed ramp up over 1.5 s, the leading leg
  (``first_leg``, drawn from the seed) swings first; 6.5-13.0 s full speed
  (cadence 0.95-1.05 stride/s, stride 1.25-1.35 m: hip flexion +27..33 /
  -8..-12 deg peaking at heel strike, with a 2nd harmonic; adduction +-5..7,
  rotation +-4..6; pelvis tilt +-1.5..2.5 twice per stride, obliquity
  +-3..5 (the stance side's crest up), rotation +-4..6 (the leading side
  forward at heel strike); 2-3 cm vertical bounce, 1.5-2.5 cm side shift);
  13.0-14.5 s slowing to a stop (gait amplitude down to 35 %); 14.5-14.5+T s
  a 180 deg turn (left or right, from the seed) along a half circle of 0.25 m
  radius while stepping at 35 % amplitude; 14.5+T-16+T s speeding up;
  16+T-22.5+T s full speed back along -X; 22.5+T-24+T s stopping;
  ``trial_end`` at 24+T s; 5 s standing still. The two full-speed stretches
  are ``script["straight_walks_s"]``; each heel strike is an impact.
* ``sitting_rotation`` (~121 s): a patient who cannot stand, seated on the
  plinth from the first sample (hip flexion 83..87 deg, pelvis tilt -3..-7,
  pelvis 0.55 m high, 0.15 m back):

  =======================  ============  =====================================
  phase                    time, s       what the subject does
  =======================  ============  =====================================
  ``sit``                  0.5 - 4.5     seated, still
  ``seated_lift_right``    5.25 - 13.95  3 lifts of the right knee off the
                                         seat (hip flexion +10..20 deg; 1 s
                                         up, 0.5 s hold, 1 s down, 0.5 s
                                         between), 1..3 deg posterior tilt
  ``seated_lift_left``     14.7 - 23.4   the same on the left
  ``sit_final``            24.15 - 26.15 still
  =======================  ============  =====================================

  then, from 26.65 s, exactly the rotation test of ``seated_rotation`` (per
  side: 1 s, ``zero``, 2 s, 3 IR/ER trials).

``realism="real"`` (see :func:`simulate`) changes none of these times or
events and none of the script's draws; it draws the habitual standing posture
(stream 40), the wander of the still segments during ``hip_hinge``,
``knee_lift_*`` and ``seated_lift_*`` (stream 41, from 0.1 s after a phase's
start to 0.1 s before its end, 0.5 s ramps) and the thighs' soft tissue
(stream 42) from streams of their own. The habitual posture is weighted by the
``posture`` channel: 1 standing, 0 seated or prone (the sit-down, lie-down and
stand-up transitions ramp it) and at each squat's bottom (the squat's targets
stay anatomical).

Event conventions:

* ``phase_start`` / ``phase_end``: label the phase, data ``{}``.
* ``zero`` (label ``""``, data ``{"side": s}``): the subject is still in the
  neutral test posture from 1 s before to 2 s after the event.
* ``trial_start`` / ``trial_end``: label the test (``squat``,
  ``seated_rotation``, ``prone_rotation``, ``free``), data ``{"side", "index"}``
  (side ``both`` for squat and free; index from 1).
* ``rep_start`` / ``rep_end`` (label ``"squat"``, data ``{"index"}``): start of
  the descent, end of the ascent.

Pelvic compensation in seated/prone trials: a few degrees of obliquity and
rotation while the thighs rest still on the plinth, so the true hip rotation
is ~1-3 deg less than the thigh's turn in the world (the thigh turns
target + k, the truth reaches ~target).

Table scenarios (``sensor_six_pose``, ``sensor_mag_turns``) have no body
and no calibration routine: the three bare boards lie side by side on a table
(0.75 m high, 0.15 m apart) and are turned by hand, for the per-device sensor
calibration (``hipimu calibrate-sensor``). Each board is the same device
(``sim-<role>-<seed>``) with exactly the same sensor errors and clock as in
the body scenarios of the same seed (the draws use the same streams), and the
same magnetic field.

* ``sensor_six_pose`` (40 s): six poses, each sensor axis up then down
  (+z, -z, +x, -x, +y, -y up), held ``SIX_POSE_HOLD_S`` = 5 s each, with
  ``SIX_POSE_TURN_S`` = 2 s smooth turns between them (the board is lifted
  3 cm and put down again while it turns). Each board rests at its own random
  heading in each pose, tilted by up to 2 deg (not quite flat). Pose ``k``
  (1..6) is held from ``(k - 1) * 7`` s to ``(k - 1) * 7 + 5`` s; a
  ``marker`` event at the start of each hold names it (label ``"pose k: +z
  up"``, data ``{"index": k, "up_axis": "+z", "hold_s": 5.0}``).
* ``sensor_mag_turns`` (60 s, meaningful with ``mag=True``): still for 2 s,
  then turned slowly (up to ~40 deg/s) about three body axes at once (about
  5 turns about x, 1.5 about y, half a turn about z) so that the field sweeps
  all directions in the sensor frame, still for the last 2 s; ``marker``
  events ``"turning"`` and ``"still"`` at 2 s and 58 s.

Their truth table has the usual columns, all zero (there are no hip or
pelvis angles), and ``segments`` holds identity orientations; each sensor's
true orientation is its ``orientation_wxyz``. ``mounting_wxyz`` is the
identity, ``segment`` is ``"table"``, ``site_m`` the board's position in the
world and the ``mounting`` entry of ``errors`` is None.

Randomness: everything is drawn from ``numpy.random.default_rng`` streams
seeded with ``[seed, stream]`` or ``[seed, stream, role index]``, so the
kinematics do not depend on ``rate_hz``, ``mag``, ``loss`` or ``ideal``, and
each sensor has its own draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation, RotationSpline

from ._body import (
    ACC_RANGE_M_S2,
    GYR_RANGE_RAD_S,
    MAG_RANGE_UT,
    MOUNT_TILT_MAX_DEG,
    MOUNT_TILT_MAX_REAL_DEG,
    ROLE_SEGMENT,
    ROLES,
    SIDE_SIGN,
    Body,
    MagField,
    SegmentKinematics,
    SoftTissue,
    draw_clock,
    draw_errors,
    draw_mounting,
    hip_angles_deg,
    hip_rotation,
    noise_model,
    pelvis_angles_deg,
    pelvis_rotation,
    segment_kinematics,
    skin_normal,
    standing_rebase,
    synthesize_sensor,
)
from ._motion import Channel, Script, Sway, Wander, smoothstep

__all__ = ["SCENARIOS", "TRUTH_COLUMNS", "REALISMS", "simulate", "task_truth"]

#: Scenario name -> one-line description.
SCENARIOS: dict[str, str] = {
    "squat": "calibration, then one set of 5 bodyweight squats (~100-115 deg hip flexion, butt wink)",
    "seated_rotation": "calibration, then seated hip IR/ER: 3 trials right, 3 trials left",
    "prone_rotation": "calibration, then prone hip IR/ER (knee at 90 deg): 3 trials right, 3 trials left",
    "seated_rotation_compensating": "as seated_rotation, but the pelvis hitches sideways 6-10 deg at end range "
                                    "(pelvic compensation beyond the 5 deg threshold)",
    "seated_rotation_squat": "calibration, seated hip IR/ER (3 trials per side), stand up, then 5 squats "
                             "(the IR reserve in one session)",
    "long_mixed": "calibration, then duration_s (default 240 s) of pauses, marching in place and turns",
    "static": "calibration, then standing still for duration_s (default 30 s)",
    "walk": "gait-lab trial, no calibration: stand 5 s, walk >= 8 strides, turn 180 deg, walk back, stand 5 s",
    "sitting_rotation": "a patient who cannot stand: seated from the start (sit, seated knee lifts), "
                        "then seated hip IR/ER: 3 trials right, 3 trials left",
    "sensor_six_pose": "no body: the bare boards on a table, each axis up then down, 5 s still per pose (40 s)",
    "sensor_mag_turns": "no body: the bare boards turned slowly through all directions for 60 s (use with mag)",
}

#: Default task duration (s) of the scenarios that take ``duration_s``.
DEFAULT_DURATION_S = {"static": 30.0, "long_mixed": 240.0}

#: Truth column names, in order.
TRUTH_COLUMNS = (
    "time_s",
    "hip_flexion_left_deg",
    "hip_adduction_left_deg",
    "hip_rotation_left_deg",
    "hip_flexion_right_deg",
    "hip_adduction_right_deg",
    "hip_rotation_right_deg",
    "pelvis_tilt_deg",
    "pelvis_obliquity_deg",
    "pelvis_rotation_deg",
)

TRUTH_RATE_HZ = 100.0
KNOT_RATE_HZ = 400.0  # an integer multiple of TRUTH_RATE_HZ
KNOT_MARGIN_S = 0.1  # knots extend beyond [0, end] by this much

_SIDE_NAMES = ("left", "right")

# Random-number streams: [seed, stream] or [seed, stream, role index].
_STREAM_SCENARIO, _STREAM_MOUNT_CLOCK, _STREAM_ERRORS, _STREAM_NOISE, _STREAM_LOSS, _STREAM_ENV = range(6)
# realism="real" draws only from these (never from the streams above, so that
# "clean" stays bit for bit what it was and "real" keeps the same script draws).
_STREAM_REAL_POSTURE, _STREAM_REAL_WANDER, _STREAM_REAL_SOFT_TISSUE = 40, 41, 42

#: Values of ``realism``: "clean" (the idealised subject) and "real" (see :func:`simulate`).
REALISMS = ("clean", "real")

# realism="real": bounds of the habitual standing posture (deg) ...
POSTURE_TILT_RANGE_DEG = (0.0, 8.0)  # anterior pelvic tilt of the pelvis frame over the femurs
POSTURE_ROTATION_RANGE_DEG = (-5.0, 5.0)  # hip rotation, per side
POSTURE_ABDUCTION_RANGE_DEG = (0.0, 4.0)  # hip abduction, per side
# ... of the wander during the calibration movements (deg, bound of |signal|) ...
WANDER_STILL_THIGH_DEG = {"rotation": 3.0, "adduction": 2.0}
WANDER_LIFTING_THIGH_DEG = {"rotation": 1.5, "adduction": 1.0}
WANDER_PELVIS_DEG = {"comp_tilt": 2.0, "comp_obliquity": 1.5, "comp_rotation": 1.5}
WANDER_RAMP_S = 0.5
WANDER_MARGIN_S = 0.1  # the wander starts/ends this long after/before the phase's events
# ... and of the thigh soft tissue
SOFT_AXIAL_K_RANGE = (0.03, 0.08)
SOFT_FLEXION_COUPLING_RANGE = (0.004, 0.007)  # deg of axial skin turn per deg of hip flexion (random sign)
SOFT_IMPACT_AMP_DEG = (1.0, 2.0)
SOFT_IMPACT_FREQ_HZ = (8.0, 15.0)
SOFT_IMPACT_DECAY_S = (0.08, 0.12)


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(list(key))


# ----------------------------------------------------------------------------
# Script building blocks
# ----------------------------------------------------------------------------


def _new_script(body: Body) -> Script:
    defaults = {
        "pelvis_tilt": 0.0,
        "pelvis_obliquity": 0.0,
        "pelvis_rotation": 0.0,
        "comp_tilt": 0.0,
        "comp_obliquity": 0.0,
        "comp_rotation": 0.0,
        "pos_x": 0.0,
        "pos_y": body.pelvis_height_standing_m,
        "pos_z": 0.0,
        # weight of the habitual standing posture (realism="real"): 1 standing, 0 seated/prone
        "posture": 1.0,
    }
    for side in _SIDE_NAMES:
        defaults.update({f"hip_flexion_{side}": 0.0, f"hip_adduction_{side}": 0.0,
                         f"hip_rotation_{side}": 0.0, f"anchor_{side}": 1.0})
    return Script(defaults)


def _phase(s: Script, label: str, action) -> None:
    s.event("phase_start", label)
    action()
    s.event("phase_end", label)


def _calibration(s: Script, rng: np.random.Generator, body: Body) -> None:
    """The anatomical calibration routine (stand, hinge, knee lifts, stand)."""
    h0 = body.pelvis_height_standing_m
    s.hold(0.5)
    s.standing_window = (s.t, s.t + 4.0)
    _phase(s, "stand", lambda: s.hold(4.0))
    s.hold(0.75)

    def hinge() -> None:
        # Both femurs anchored (default): they stay vertical while the pelvis
        # tilts forward, so hip flexion equals the anterior tilt.
        for i in range(2):
            amp = rng.uniform(40.0, 50.0)
            s.move(1.3, comp_tilt=amp, pos_x=-0.07 * amp / 45.0, pos_y=h0 - 0.015)
            s.hold(0.4)
            s.move(1.3, comp_tilt=0.0, pos_x=0.0, pos_y=h0)
            if i == 0:
                s.hold(0.5)

    _phase(s, "hip_hinge", hinge)
    s.hold(0.75)

    for side in ("right", "left"):
        sign = SIDE_SIGN[side]

        def lifts(side: str = side, sign: float = sign) -> None:
            s.move(0.1, **{f"anchor_{side}": 0.0})  # comp is zero here: no effect on the pose
            s.move(0.5, pos_z=-sign * 0.03)  # weight onto the other leg
            for i in range(3):
                s.move(1.0, **{
                    f"hip_flexion_{side}": rng.uniform(55.0, 65.0),
                    f"hip_adduction_{side}": rng.uniform(-3.0, 1.0),
                    f"hip_rotation_{side}": rng.uniform(-3.0, 3.0),
                    "comp_tilt": -rng.uniform(2.0, 5.0),
                    "comp_obliquity": sign * rng.uniform(0.5, 2.0),
                })
                s.hold(0.5)
                s.move(1.0, **{f"hip_flexion_{side}": 0.0, f"hip_adduction_{side}": 0.0,
                               f"hip_rotation_{side}": 0.0, "comp_tilt": 0.0, "comp_obliquity": 0.0})
                s.impact(side)  # the foot lands
                if i < 2:
                    s.hold(0.5)
            s.move(0.5, pos_z=0.0)
            s.move(0.1, **{f"anchor_{side}": 1.0})

        _phase(s, f"knee_lift_{side}", lifts)
        s.hold(0.75)

    _phase(s, "stand_final", lambda: s.hold(3.0))
    s.hold(0.5)


def _squat(s: Script, rng: np.random.Generator, body: Body, duration_s: float | None) -> None:
    h0 = body.pelvis_height_standing_m
    # Take the squat stance: toes slightly out (hip ER ~5 deg), then settle.
    er = {side: -rng.uniform(3.0, 7.0) for side in _SIDE_NAMES}
    s.move(1.0, **{f"hip_rotation_{side}": er[side] for side in _SIDE_NAMES})
    s.hold(1.0)
    s.event("trial_start", "squat", {"side": "both", "index": 1})
    s.hold(0.5)
    asym_sign = rng.choice([-1.0, 1.0])  # which leg tends to flex more
    for i in range(1, 6):
        peak = rng.uniform(100.0, 115.0)
        asym = asym_sign * rng.uniform(1.0, 4.0)
        tilt_peak = rng.uniform(15.0, 20.0)
        wink = rng.uniform(8.0, 12.0)
        abd = rng.uniform(10.0, 20.0)
        ir = rng.uniform(5.0, 15.0)
        drop = rng.uniform(0.38, 0.45)
        back = rng.uniform(0.12, 0.18)
        t_down, t_bottom, t_up = rng.uniform(1.4, 1.6), rng.uniform(0.4, 0.6), rng.uniform(1.4, 1.6)
        t0 = s.t
        t1 = t0 + t_down + t_bottom  # ascent starts
        s.event("rep_start", "squat", {"index": i})
        scripted: dict[str, float] = {}
        for side in _SIDE_NAMES:
            k = 0.5 * SIDE_SIGN[side]
            scripted[f"depth_{side}_deg"] = peak + k * asym
            scripted[f"adduction_{side}_deg"] = -abd - k * asym * rng.uniform(0.5, 1.0)
            scripted[f"ir_{side}_deg"] = ir + k * asym * rng.uniform(0.5, 1.5)
            scripted[f"er_top_{side}_deg"] = -er[side]
            s.move(t_down, at=t0, **{f"hip_flexion_{side}": scripted[f"depth_{side}_deg"]})
            s.move(0.9 * t_down, at=t0 + 0.1 * t_down, **{f"hip_adduction_{side}": scripted[f"adduction_{side}_deg"]})
            # More IR once flexion passes ~90 deg: IR starts late in the descent.
            s.move(0.55 * t_down, at=t0 + 0.45 * t_down, **{f"hip_rotation_{side}": scripted[f"ir_{side}_deg"]})
            s.move(t_up, at=t1, **{f"hip_flexion_{side}": 0.0})
            s.move(0.9 * t_up, at=t1, **{f"hip_adduction_{side}": 0.0})
            s.move(0.6 * t_up, at=t1, **{f"hip_rotation_{side}": er[side]})
        # Pelvis: anterior tilt during the descent, posterior "butt wink" at depth.
        s.move(0.7 * t_down, at=t0, pelvis_tilt=tilt_peak)
        s.move(0.3 * t_down + 0.5 * t_bottom, at=t0 + 0.7 * t_down, pelvis_tilt=tilt_peak - wink)
        s.move(0.35 * t_up, at=t1, pelvis_tilt=tilt_peak - 2.0)
        s.move(0.65 * t_up, at=t1 + 0.35 * t_up, pelvis_tilt=0.0)
        s.move(t_down, at=t0, pos_y=h0 - drop, pos_x=-back)
        s.move(t_up, at=t1, pos_y=h0, pos_x=0.0)
        # The bottom targets are anatomical: the habitual standing posture
        # (realism="real") fades out on the way down and back on the way up.
        s.move(t_down, at=t0, posture=0.0)
        s.move(t_up, at=t1, posture=1.0)
        s.impact("both", at=t0 + t_down)
        s.t = t1 + t_up
        s.event("rep_end", "squat", {"index": i})
        s.note(kind="rep", test="squat", index=i, start_s=t0, bottom_s=t0 + t_down, end_s=s.t,
               tilt_top_deg=0.0, tilt_peak_deg=tilt_peak, butt_wink_deg=wink, **scripted)
        s.hold(rng.uniform(1.3, 1.7) if i < 5 else 0.5)
    s.event("trial_end", "squat", {"side": "both", "index": 1})
    s.move(1.0, **{f"hip_rotation_{side}": 0.0 for side in _SIDE_NAMES})
    s.hold(1.0)


def _rotation_trials(s: Script, rng: np.random.Generator, test: str, ir_range, er_range, comp_sign: float,
                     obliquity_range: tuple[float, float] = (1.0, 3.0)) -> None:
    """Zero and 3 IR/ER trials per leg, right then left (femurs anchored:
    the thighs rest on the plinth while the pelvis compensates).

    ``comp_sign``: sign of the obliquity compensation, per unit of side sign,
    during IR (chosen per posture so that the pelvic compensation lowers the
    true hip rotation slightly below the thigh's own turn);
    ``obliquity_range``: how far (deg) the pelvis tilts sideways at end range."""
    for side in ("right", "left"):
        sign = SIDE_SIGN[side]
        s.hold(1.0)
        s.event("zero", "", {"side": side})
        s.hold(2.0)
        for i in range(1, 4):
            s.event("trial_start", test, {"side": side, "index": i})
            t_start = s.t
            scripted: dict[str, float] = {}
            s.hold(0.5)
            for direction, rng_deg in ((1.0, ir_range), (-1.0, er_range)):
                target = direction * rng.uniform(*rng_deg)
                k_obl = rng.uniform(*obliquity_range)
                k_rot = rng.uniform(0.5, 2.0)
                which = "ir" if direction > 0 else "er"
                scripted[f"{which}_deg"] = abs(target)
                scripted[f"{which}_thigh_deg"] = abs(target) + k_obl
                scripted[f"{which}_obliquity_deg"] = k_obl
                scripted[f"{which}_pelvis_rotation_deg"] = k_rot
                # The thigh turns by target + k_obl in the world; the pelvic
                # compensation takes ~k_obl of it back, so the true hip angle
                # is close to the target.
                s.move(rng.uniform(1.3, 1.7), **{
                    f"hip_rotation_{side}": target + direction * k_obl,
                    "comp_obliquity": direction * comp_sign * sign * k_obl,
                    "comp_rotation": -direction * sign * k_rot,
                })
                s.hold(rng.uniform(2.8, 3.2))
                s.move(rng.uniform(1.3, 1.7), **{f"hip_rotation_{side}": 0.0,
                                                 "comp_obliquity": 0.0, "comp_rotation": 0.0})
                s.hold(0.5)
            s.event("trial_end", test, {"side": side, "index": i})
            s.note(kind="trial", test=test, side=side, index=i, start_s=t_start, end_s=s.t, **scripted)
            s.hold(1.0)
    s.hold(0.5)


def _seated_rotation(s: Script, rng: np.random.Generator, body: Body, duration_s: float | None,
                     obliquity_range: tuple[float, float] = (1.0, 3.0)) -> None:
    t0 = s.t
    flex = rng.uniform(83.0, 87.0)  # femurs ~horizontal with ~5 deg posterior tilt
    post = rng.uniform(3.0, 7.0)
    s.move(3.0, at=t0, hip_flexion_left=flex, hip_flexion_right=flex)
    s.move(1.3, at=t0, pelvis_tilt=rng.uniform(15.0, 25.0))  # lean forward while sitting down
    s.move(1.7, at=t0 + 1.3, pelvis_tilt=-post)
    s.move(2.5, at=t0 + 0.5, pos_y=0.55)
    s.move(3.0, at=t0, pos_x=-0.15)
    s.move(3.0, at=t0, posture=0.0)  # seated targets are anatomical
    s.impact("both", at=t0 + 3.0, scale=0.7)  # onto the plinth
    s.t = t0 + 3.0
    _rotation_trials(s, rng, "seated_rotation", (30.0, 38.0), (35.0, 42.0), comp_sign=1.0,
                     obliquity_range=obliquity_range)


def _seated_rotation_compensating(s: Script, rng: np.random.Generator, body: Body, duration_s: float | None) -> None:
    # The subject hitches the pelvis sideways to turn the thigh further: the
    # thigh's turn in the room is the hip's plus 6-10 deg of obliquity.
    _seated_rotation(s, rng, body, duration_s, obliquity_range=(6.0, 10.0))


def _stand_up(s: Script, rng: np.random.Generator, body: Body) -> None:
    """From sitting on the plinth (as left by ``_seated_rotation``) to standing:
    lean forward, push up, stand still for 2 s."""
    t0 = s.t
    lean = rng.uniform(20.0, 30.0)
    # leaning forward with the feet on the floor flexes the hips further
    s.move(1.0, at=t0, pelvis_tilt=lean, **{f"hip_flexion_{side}": s.value(f"hip_flexion_{side}") + 0.5 * lean
                                            for side in _SIDE_NAMES})
    s.move(1.8, at=t0 + 1.0, pelvis_tilt=0.0, hip_flexion_left=0.0, hip_flexion_right=0.0)
    s.move(2.0, at=t0 + 0.8, pos_y=body.pelvis_height_standing_m, pos_x=0.0)
    s.move(2.8, at=t0, posture=1.0)
    s.t = t0 + 2.8
    s.hold(2.0)


def _seated_rotation_squat(s: Script, rng: np.random.Generator, body: Body, duration_s: float | None) -> None:
    _seated_rotation(s, rng, body, duration_s)
    _stand_up(s, rng, body)
    _squat(s, rng, body, duration_s)


def _prone_rotation(s: Script, rng: np.random.Generator, body: Body, duration_s: float | None) -> None:
    t0 = s.t
    # Bend over the plinth and lie down: pelvis turned forward by 90 deg.
    s.move(1.8, at=t0, hip_flexion_left=35.0, hip_flexion_right=35.0)
    s.move(2.2, at=t0 + 1.8, hip_flexion_left=rng.uniform(-2.0, 2.0), hip_flexion_right=rng.uniform(-2.0, 2.0))
    s.move(4.0, at=t0, pelvis_tilt=90.0)
    s.move(4.0, at=t0, pos_y=0.80, pos_x=0.25)
    s.move(4.0, at=t0, posture=0.0)
    s.t = t0 + 4.0
    _rotation_trials(s, rng, "prone_rotation", (32.0, 38.0), (37.0, 43.0), comp_sign=-1.0)


def _march(s: Script, rng: np.random.Generator, body: Body, n_cycles: int, period: float,
           amp_range: tuple[float, float], bob_m: float) -> None:
    """Marching in place: each leg lifts once per ``period`` s (right first,
    the left half a period later); a lift rises over 0.45 period and lowers
    over 0.45 period; the pelvis bobs by ``bob_m`` at each lift."""
    h0 = body.pelvis_height_standing_m
    q = 0.45 * period
    t_start = s.t
    for c in range(n_cycles):
        for k, side in enumerate(("right", "left")):
            t0 = t_start + (c + 0.5 * k) * period
            s.move(q, at=t0, **{f"hip_flexion_{side}": rng.uniform(*amp_range)})
            s.move(q, at=t0 + q, **{f"hip_flexion_{side}": 0.0})
            s.impact(side, at=t0 + 2 * q)
            s.move(0.25 * period, at=t0, pos_y=h0 + bob_m)
            s.move(0.25 * period, at=t0 + 0.25 * period, pos_y=h0)
    s.t = t_start + (n_cycles + 0.4) * period


def _long_mixed(s: Script, rng: np.random.Generator, body: Body, duration_s: float | None) -> None:
    duration = DEFAULT_DURATION_S["long_mixed"] if duration_s is None else duration_s
    start = s.t
    end = start + duration
    s.event("trial_start", "free", {"side": "both", "index": 1})
    s.hold(min(1.5, duration))
    heading = 0.0
    while end - s.t > 1e-9:
        remaining = end - s.t
        kind = rng.choice(["pause", "march", "turn"], p=[0.3, 0.4, 0.3])
        if kind == "march":
            period = rng.uniform(0.9, 1.1)
            n = int(rng.integers(4, 11))
            if (n + 0.4) * period + 0.5 <= remaining:
                _march(s, rng, body, n, period, (40.0, 60.0), rng.uniform(-0.015, 0.01))
                s.hold(0.5)
                continue
        elif kind == "turn":
            angle = float(rng.choice([90.0, -90.0, 180.0, -180.0], p=[0.35, 0.35, 0.15, 0.15]))
            dur = rng.uniform(1.6, 2.2) if abs(angle) == 90.0 else rng.uniform(2.6, 3.2)
            n_steps = max(2, int(round(dur / 0.5)))
            step_t = dur / n_steps
            if n_steps * step_t + 0.5 <= remaining:
                heading += angle
                t0 = s.t
                s.move(dur, at=t0, pelvis_rotation=heading)
                for j in range(n_steps):  # small steps while turning
                    side = _SIDE_NAMES[j % 2]
                    s.move(step_t / 2, at=t0 + j * step_t, **{f"hip_flexion_{side}": rng.uniform(10.0, 20.0)})
                    s.move(step_t / 2, at=t0 + (j + 0.5) * step_t, **{f"hip_flexion_{side}": 0.0})
                    s.impact(side, at=t0 + (j + 1) * step_t, scale=0.5)
                s.t = t0 + n_steps * step_t
                s.hold(0.5)
                continue
        s.hold(min(rng.uniform(2.0, 6.0), remaining))
    s.t = end
    s.event("trial_end", "free", {"side": "both", "index": 1})
    s.hold(0.5)


def _static(s: Script, rng: np.random.Generator, body: Body, duration_s: float | None) -> None:
    duration = DEFAULT_DURATION_S["static"] if duration_s is None else duration_s
    s.event("trial_start", "free", {"side": "both", "index": 1})
    s.hold(duration)
    s.event("trial_end", "free", {"side": "both", "index": 1})
    s.hold(0.5)


# --- walk: a gait-lab trial (no calibration routine) -------------------------

WALK_STAND_S = 5.0  # still standing before and after the walk
WALK_RAMP_S = 1.5  # the gait starts, slows for the turn, restarts and stops over this
WALK_STRAIGHT_S = 6.5  # full-speed stretch of each way
WALK_TURN_S = (2.2, 2.8)  # the 180 deg turn
WALK_TURN_RADIUS_M = 0.25  # the pelvis follows a half circle while turning
WALK_TURN_AMPLITUDE = 0.35  # gait amplitude (fraction) while turning
WALK_START_PHASE = 0.5  # gait phase of the leading leg when walking starts (its swing comes first)


def _cos_series(u: np.ndarray, terms) -> np.ndarray:
    return sum(a * np.cos(2 * np.pi * k * (u - c)) for k, a, c in terms)


_U_FINE = np.linspace(0.0, 1.0, 2001)
# Gait shapes of one leg over its cycle (u = 0 at its heel strike), unit peak-to-peak before scaling.
_FLEX_TERMS = ((1, 1.0, 0.93), (2, 0.18, 0.02))  # max near heel strike, min ~ -10 deg at ~55 % (toe-off)
_FLEX_MIN, _FLEX_MAX = (lambda g: (float(g.min()), float(g.max())))(_cos_series(_U_FINE, _FLEX_TERMS))


def _ramp_integral_steps(t: np.ndarray, steps) -> np.ndarray:
    """Integral from -inf of a :class:`Channel`'s smooth steps (base 0)."""
    out = np.zeros(np.shape(t))
    for t0, t1, d in steps:
        out += d * (t1 - t0) * _ramp_integral((t - t0) / (t1 - t0))
    return out


def _walk(s: Script, rng: np.random.Generator, body: Body, duration_s: float | None,
          first_leg: str | None = None) -> None:
    """Stand, walk, turn 180 deg, walk back, stand (see the module docstring)."""
    drawn_leg = str(rng.choice(["right", "left"]))  # always drawn, so that first_leg changes nothing else
    lead = drawn_leg if first_leg is None else first_leg
    cadence = rng.uniform(0.95, 1.05)  # strides/s
    stride = rng.uniform(1.25, 1.35)  # m
    speed = cadence * stride
    t_turn = rng.uniform(*WALK_TURN_S)
    turn_sign = float(rng.choice([-1.0, 1.0]))  # + turns to the left
    flex_peak, flex_ext = rng.uniform(27.0, 33.0), rng.uniform(-12.0, -8.0)
    add_amp, rot_amp = rng.uniform(5.0, 7.0), rng.uniform(4.0, 6.0)
    tilt_amp, obl_amp, prot_amp = rng.uniform(1.5, 2.5), rng.uniform(3.0, 5.0), rng.uniform(4.0, 6.0)
    bounce, lateral = rng.uniform(0.02, 0.03), rng.uniform(0.015, 0.025)

    t_go = WALK_STAND_S
    t_slow = t_go + WALK_RAMP_S + WALK_STRAIGHT_S
    t_turn0 = t_slow + WALK_RAMP_S
    t_back = t_turn0 + t_turn
    t_slow2 = t_back + WALK_RAMP_S + WALK_STRAIGHT_S
    t_stop = t_slow2 + WALK_RAMP_S

    amp = Channel("gait_amplitude")
    amp.step(t_go, WALK_RAMP_S, 1.0)
    amp.step(t_slow, WALK_RAMP_S, WALK_TURN_AMPLITUDE - 1.0)
    amp.step(t_back, WALK_RAMP_S, 1.0 - WALK_TURN_AMPLITUDE)
    amp.step(t_slow2, WALK_RAMP_S, -1.0)
    out_v, back_v = Channel("speed_out"), Channel("speed_back")
    out_v.step(t_go, WALK_RAMP_S, 1.0)
    out_v.step(t_slow, WALK_RAMP_S, -1.0)
    back_v.step(t_back, WALK_RAMP_S, 1.0)
    back_v.step(t_slow2, WALK_RAMP_S, -1.0)

    phase0 = {lead: WALK_START_PHASE, ("left" if lead == "right" else "right"): WALK_START_PHASE - 0.5}

    def u_of(side: str, t: np.ndarray) -> np.ndarray:
        return cadence * (t - t_go) + phase0[side]

    def heading(t: np.ndarray) -> np.ndarray:
        return turn_sign * 180.0 * smoothstep((t - t_turn0) / t_turn)

    def flex(side):
        mid, half = 0.5 * (flex_peak + flex_ext), 0.5 * (flex_peak - flex_ext)
        g = lambda t: (2 * (_cos_series(u_of(side, t), _FLEX_TERMS) - _FLEX_MIN) / (_FLEX_MAX - _FLEX_MIN) - 1)
        return lambda t: amp.evaluate(t) * (mid + half * g(t))

    for side in _SIDE_NAMES:
        s.add_signal(f"hip_flexion_{side}", flex(side))
        # adduction peaks in loading response (~15 %), abduction in swing
        s.add_signal(f"hip_adduction_{side}", lambda t, side=side: amp.evaluate(t) * add_amp * _cos_series(
            u_of(side, t), ((1, 1.0, 0.15), (2, 0.0, 0.0))))
        # internal rotation in stance, external in swing
        s.add_signal(f"hip_rotation_{side}", lambda t, side=side: amp.evaluate(t) * rot_amp * np.cos(
            2 * np.pi * (u_of(side, t) - 0.35)))
    u_r = lambda t: u_of("right", t)
    # anterior tilt twice per stride; right crest up in right stance; right side forward at right heel strike
    s.add_signal("pelvis_tilt", lambda t: amp.evaluate(t) * tilt_amp * np.cos(4 * np.pi * (u_r(t) - 0.1)))
    s.add_signal("pelvis_obliquity", lambda t: amp.evaluate(t) * obl_amp * np.sin(2 * np.pi * u_r(t)))
    s.add_signal("pelvis_rotation", lambda t: heading(t) + amp.evaluate(t) * prot_amp * np.cos(2 * np.pi * u_r(t)))

    def position(t: np.ndarray) -> np.ndarray:
        """(N, 3) pelvis displacement from its standing place: out along +X, a half
        circle while turning (tangent to the heading), back along -X."""
        a = amp.evaluate(t)
        s_out = speed * _ramp_integral_steps(t, out_v.steps)
        s_back = speed * _ramp_integral_steps(t, back_v.steps)
        h = np.radians(heading(t))
        u = np.abs(h)
        arc = WALK_TURN_RADIUS_M * np.column_stack([np.sin(u), np.zeros_like(u), -turn_sign * (1 - np.cos(u))])
        side_shift = a * lateral * np.sin(2 * np.pi * u_r(t))  # toward the stance leg (+ right)
        right = np.column_stack([np.sin(h), np.zeros_like(h), np.cos(h)])
        p = arc + right * side_shift[:, None]
        p[:, 0] += s_out - s_back
        p[:, 1] = a * (-0.01 - 0.5 * bounce * np.cos(4 * np.pi * u_r(t)))  # low in double support
        return p

    s.add_signal("pos_x", lambda t: position(t)[:, 0])
    s.add_signal("pos_y", lambda t: position(t)[:, 1])
    s.add_signal("pos_z", lambda t: position(t)[:, 2])

    # heel strikes: each leg's phase crosses an integer
    for side in _SIDE_NAMES:
        k = np.arange(math.ceil(phase0[side]), math.floor(u_of(side, np.array([t_stop]))[0]) + 1)
        for tk in t_go + (k - phase0[side]) / cadence:
            a = float(amp.evaluate(np.array([tk]))[0])
            if a > 0.1:
                s.impact(side, at=float(tk), scale=a)

    s.standing_window = (0.5, t_go - 0.5)
    s.hold(t_go)
    s.event("trial_start", "free", {"side": "both", "index": 1})
    s.t = t_stop
    s.event("trial_end", "free", {"side": "both", "index": 1})
    s.hold(WALK_STAND_S)
    s.info.update({
        "first_leg": lead,
        "straight_walks_s": [(t_go + WALK_RAMP_S, t_slow), (t_back + WALK_RAMP_S, t_slow2)],
        "turn_s": (t_turn0, t_back),
        "turn_direction": "left" if turn_sign > 0 else "right",
        "cadence_strides_per_s": cadence,
        "stride_length_m": stride,
        "walk_s": (t_go, t_stop),
    })


# --- sitting_rotation: seated from the start (a patient who cannot stand) -----

def _sitting_rotation(s: Script, rng: np.random.Generator, body: Body, duration_s: float | None) -> None:
    """Seated on the plinth from t = 0: sit, seated knee lifts, sit, seated rotation test."""
    flex = rng.uniform(83.0, 87.0)
    post = rng.uniform(3.0, 7.0)
    for name, value in {"hip_flexion_left": flex, "hip_flexion_right": flex, "pelvis_tilt": -post,
                        "pos_y": 0.55, "pos_x": -0.15, "posture": 0.0}.items():
        s[name].base = value
    s.hold(0.5)
    _phase(s, "sit", lambda: s.hold(4.0))
    s.hold(0.75)
    for side in ("right", "left"):
        def lifts(side: str = side) -> None:
            s.move(0.1, **{f"anchor_{side}": 0.0})  # comp is zero here: no effect on the pose
            for i in range(3):
                s.move(1.0, **{f"hip_flexion_{side}": flex + rng.uniform(10.0, 20.0),
                               f"hip_rotation_{side}": rng.uniform(-2.0, 2.0),
                               "comp_tilt": -rng.uniform(1.0, 3.0)})
                s.hold(0.5)
                s.move(1.0, **{f"hip_flexion_{side}": flex, f"hip_rotation_{side}": 0.0, "comp_tilt": 0.0})
                s.impact(side, scale=0.5)  # the thigh back on the plinth
                if i < 2:
                    s.hold(0.5)
            s.move(0.1, **{f"anchor_{side}": 1.0})

        _phase(s, f"seated_lift_{side}", lifts)
        s.hold(0.75)
    _phase(s, "sit_final", lambda: s.hold(2.0))
    s.hold(0.5)
    _rotation_trials(s, rng, "seated_rotation", (30.0, 38.0), (35.0, 42.0), comp_sign=1.0)


_TASKS = {
    "squat": _squat,
    "seated_rotation": _seated_rotation,
    "prone_rotation": _prone_rotation,
    "seated_rotation_compensating": _seated_rotation_compensating,
    "seated_rotation_squat": _seated_rotation_squat,
    "long_mixed": _long_mixed,
    "static": _static,
    "walk": _walk,
    "sitting_rotation": _sitting_rotation,
}

#: Body scenarios without the calibration routine (their scripts start at t = 0).
NO_CALIBRATION = ("walk", "sitting_rotation")
#: Calibration-like movements during which the still segments wander (realism="real"):
#: phase label -> the lifting side (None: both thighs still).
_WANDER_PHASES = {"hip_hinge": None, "knee_lift_right": "right", "knee_lift_left": "left",
                  "seated_lift_right": "right", "seated_lift_left": "left"}

# Sway: channel -> (summed amplitude, summed peak rate), channel units (deg, m).
_SWAY_SPEC = {
    "pelvis_tilt": (0.3, 0.4),
    "pelvis_obliquity": (0.2, 0.3),
    "pelvis_rotation": (0.3, 0.4),
    "pos_x": (0.003, 0.004),
    "pos_y": (0.001, 0.002),
    "pos_z": (0.002, 0.003),
    **{f"hip_{q}_{side}": (0.2, 0.3) for q in ("flexion", "adduction", "rotation") for side in _SIDE_NAMES},
}


# ----------------------------------------------------------------------------
# Entry point
# ----------------------------------------------------------------------------


@dataclass
class Motion:
    """The scripted motion of one scenario run: channels plus sway.

    ``end_s``: end of the recording (a multiple of 0.01 s); the channels and
    the kinematics can be evaluated at any instants (s), inside or outside
    [0, end_s].
    """

    script: Script
    sway: Sway
    body: Body
    end_s: float
    realism: str = "clean"
    #: realism="real": the habitual standing posture (deg): ``pelvis_tilt_deg``,
    #: ``hip_rotation_{side}_deg``, ``hip_abduction_{side}_deg``; None when clean
    posture: dict | None = None

    def channels(self, t_s: np.ndarray) -> dict[str, np.ndarray]:
        """Every channel (deg, m, weight) at the sorted instants ``t_s``, sway included."""
        t = np.asarray(t_s, dtype=np.float64)
        ch = self.script.evaluate(t)
        out = {name: v + self.sway.evaluate(name, t) for name, v in ch.items()}
        if self.posture is not None:
            # The habitual standing posture, weighted by the "posture" channel: the
            # pelvis tilted forward over femurs that stay vertical (hip flexion =
            # the tilt), each hip rotated and abducted a little.
            w = ch["posture"]
            tau = self.posture["pelvis_tilt_deg"]
            out["pelvis_tilt"] = out["pelvis_tilt"] + w * tau
            for side in _SIDE_NAMES:
                out[f"hip_flexion_{side}"] = out[f"hip_flexion_{side}"] + w * tau
                out[f"hip_adduction_{side}"] = out[f"hip_adduction_{side}"] - w * self.posture[f"hip_abduction_{side}_deg"]
                out[f"hip_rotation_{side}"] = out[f"hip_rotation_{side}"] + w * self.posture[f"hip_rotation_{side}_deg"]
        return out

    def standing_pose(self) -> dict[str, Rotation] | None:
        """realism="real" without a standing phase: the habitual standing posture
        evaluated virtually (no sway) with the pelvis heading of t = 0."""
        if self.posture is None:
            return None
        tau = self.posture["pelvis_tilt_deg"]
        heading = float(self.script["pelvis_rotation"].evaluate(np.array([0.0]))[0])
        r_p = pelvis_rotation(tau, 0.0, heading)[0]
        out = {"pelvis": r_p}
        for side in _SIDE_NAMES:
            out[f"femur_{side}"] = r_p * hip_rotation(tau, -self.posture[f"hip_abduction_{side}_deg"],
                                                      self.posture[f"hip_rotation_{side}_deg"], side)[0]
        return out

    def kinematics(self, t_s: np.ndarray) -> SegmentKinematics:
        """Exact segment poses at the sorted instants ``t_s`` (no splines)."""
        return segment_kinematics(np.asarray(t_s, dtype=np.float64), self.channels(t_s))


def build_motion(scenario: str, seed: int, duration_s: float | None, realism: str = "clean",
                 first_leg: str | None = None) -> Motion:
    """Write the script of ``scenario`` (calibration + task) for ``seed``.

    ``realism="real"`` adds the habitual standing posture and the wander of the
    still segments during the calibration movements (from their own streams:
    the script is otherwise the clean one). ``first_leg`` ("right", "left" or
    None: drawn from the seed) is the leading leg of ``walk``.
    """
    if scenario in TABLE_SCENARIOS:
        raise ValueError(f"scenario {scenario!r} has no body motion (the boards lie on a table)")
    body = Body()
    rng = _rng(seed, _STREAM_SCENARIO)
    s = _new_script(body)
    if scenario not in NO_CALIBRATION:
        _calibration(s, rng, body)
    if scenario == "walk":
        _walk(s, rng, body, duration_s, first_leg=first_leg)
    else:
        _TASKS[scenario](s, rng, body, duration_s)
    sway = Sway.draw(rng, _SWAY_SPEC)
    end_s = math.ceil(s.t * TRUTH_RATE_HZ - 1e-6) / TRUTH_RATE_HZ
    posture = None
    if realism == "real":
        posture = _draw_posture(_rng(seed, _STREAM_REAL_POSTURE))
        _add_wander(s, _rng(seed, _STREAM_REAL_WANDER))
    return Motion(s, sway, body, end_s, realism, posture)


def _draw_posture(rng: np.random.Generator) -> dict:
    """The subject's habitual standing posture (realism="real"), degrees."""
    out = {"pelvis_tilt_deg": float(rng.uniform(*POSTURE_TILT_RANGE_DEG))}
    for side in _SIDE_NAMES:
        out[f"hip_rotation_{side}_deg"] = float(rng.uniform(*POSTURE_ROTATION_RANGE_DEG))
        out[f"hip_abduction_{side}_deg"] = float(rng.uniform(*POSTURE_ABDUCTION_RANGE_DEG))
    return out


def _add_wander(s: Script, rng: np.random.Generator) -> None:
    """realism="real": during each hinge and knee lift phase the still thigh(s)
    wander in rotation and adduction, the pelvis in tilt, obliquity and rotation
    (on the compensation channels: the anchored thighs do not follow it), and a
    lifting thigh a little in rotation and adduction."""
    for t, kind, label, _ in s.sorted_events():
        if kind != "phase_start" or label not in _WANDER_PHASES:
            continue
        end = next(e[0] for e in s.sorted_events() if e[1] == "phase_end" and e[2] == label and e[0] >= t)
        a, b = t + WANDER_MARGIN_S, end - WANDER_MARGIN_S
        lifting = _WANDER_PHASES[label]
        for side in _SIDE_NAMES:
            bounds = WANDER_LIFTING_THIGH_DEG if side == lifting else WANDER_STILL_THIGH_DEG
            for q in ("rotation", "adduction"):
                s.add_signal(f"hip_{q}_{side}", Wander.draw(rng, bounds[q], a, b, ramp_s=WANDER_RAMP_S))
        for name, bound in WANDER_PELVIS_DEG.items():
            s.add_signal(name, Wander.draw(rng, bound, a, b, ramp_s=WANDER_RAMP_S))


def _draw_soft_tissue(rng: np.random.Generator, side: str, impacts) -> SoftTissue:
    """The thigh's soft tissue (realism="real") with one oscillation per impact on its side."""
    k = rng.uniform(*SOFT_AXIAL_K_RANGE)
    coupling = rng.choice([-1.0, 1.0]) * rng.uniform(*SOFT_FLEXION_COUPLING_RANGE)
    mine = [(t, sc) for t, sd, sc in sorted(impacts) if sd in (side, "both")]
    n = len(mine)
    amp = rng.uniform(*SOFT_IMPACT_AMP_DEG, n) * np.array([sc for _, sc in mine])
    freq = rng.uniform(*SOFT_IMPACT_FREQ_HZ, n)
    decay = rng.uniform(*SOFT_IMPACT_DECAY_S, n)
    axis = rng.standard_normal((n, 3)) * np.array([1.0, 0.3, 1.0])  # mostly across the thigh
    axis /= np.linalg.norm(axis, axis=1, keepdims=True) if n else 1.0
    return SoftTissue(float(k), float(coupling), np.array([t for t, _ in mine], dtype=np.float64), amp, freq,
                      decay, axis)


def task_truth(scenario: str, seed: int = 0, duration_s: float | None = None) -> list[dict]:
    """What the script asked of the subject in each trial and rep (the known values the
    analysis is tested against), in time order. Rotation trials (``kind`` "trial"):
    ``test, side, index, start_s, end_s`` (the trial events), ``ir_deg``/``er_deg``
    (the hip's scripted IR and ER, before sway), ``ir_thigh_deg``/``er_thigh_deg``
    (the thigh's turn in the room: the hip's plus the pelvis' share), and the pelvic
    compensation during each: ``ir_obliquity_deg``, ``ir_pelvis_rotation_deg``,
    ``er_obliquity_deg``, ``er_pelvis_rotation_deg``. Squat reps (``kind`` "rep"):
    ``index, start_s, bottom_s, end_s``, per side ``depth_{side}_deg``,
    ``ir_{side}_deg``, ``adduction_{side}_deg`` (the scripted bottom),
    ``er_top_{side}_deg`` (the stance's toe-out), and ``tilt_peak_deg`` (anterior
    tilt during the descent), ``butt_wink_deg`` (its scripted loss at depth).
    Table scenarios and free tasks have none."""
    if scenario in TABLE_SCENARIOS:
        return []
    _validate(scenario, seed, 200.0, 0.0, duration_s)
    return sorted(build_motion(scenario, seed, duration_s).script.tasks, key=lambda d: d["start_s"])


def _validate(scenario, seed, rate_hz, loss, duration_s, realism: str = "clean", first_leg=None) -> None:
    if not isinstance(scenario, str) or scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r} (known: {', '.join(SCENARIOS)})")
    if realism not in REALISMS:
        raise ValueError(f"realism must be one of {', '.join(REALISMS)}, got {realism!r}")
    if first_leg not in (None, "right", "left"):
        raise ValueError(f"first_leg must be None, 'right' or 'left', got {first_leg!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not (isinstance(rate_hz, (int, float, np.number)) and 25.0 <= float(rate_hz) <= 1000.0):
        raise ValueError(f"rate_hz must be between 25 and 1000 Hz, got {rate_hz!r}")
    if not (isinstance(loss, (int, float, np.number)) and 0.0 <= float(loss) < 0.5):
        raise ValueError(f"loss must be in [0, 0.5), got {loss!r}")
    if duration_s is not None and not (
        isinstance(duration_s, (int, float, np.number)) and math.isfinite(duration_s) and duration_s >= 0
    ):
        raise ValueError(f"duration_s must be a non-negative number of seconds, got {duration_s!r}")


def simulate(
    scenario: str,
    *,
    seed: int = 0,
    rate_hz: float = 200.0,
    mag: bool = False,
    duration_s: float | None = None,
    loss: float = 0.0,
    ideal: bool = False,
    realism: str = "clean",
    first_leg: str | None = None,
) -> dict:
    """Simulate a session of the virtual subject wearing three IMUs.

    Parameters
    ----------
    scenario:
        One of :data:`SCENARIOS`: ``squat`` (~66 s), ``seated_rotation``
        (~134 s), ``prone_rotation`` (~136 s), ``long_mixed`` and ``static``
        (36.9 s of calibration + ``duration_s`` + 0.5 s), ``walk`` (~31.5 s,
        no calibration), ``sitting_rotation`` (~121 s, seated throughout); the table scenarios
        ``sensor_six_pose`` (40 s) and ``sensor_mag_turns`` (60 s) have no
        body (zero truth angles). See the module docstring for the scripts
        and event conventions.
    seed:
        Non-negative integer; the same seed gives identical output.
    rate_hz:
        Nominal sample rate of every sensor, Hz, in [25, 1000]. Each sensor's
        clock runs ``ppm`` (uniform +-50) fast or slow with a random phase.
    mag:
        Also simulate a magnetometer (``mag_ut``), uT, sensor frame.
    duration_s:
        Length of the task after the calibration routine, s, for ``static``
        (default 30) and ``long_mixed`` (default 240); ignored by the other
        scenarios, whose length is fixed by their script.
    loss:
        Probability in [0, 0.5) that a BLE packet (8 consecutive samples of one
        sensor) is missing: a gap in ``time_s`` and ``seq``. Ignored if ``ideal``.
    ideal:
        Perfect sensors (no bias, noise, bias drift, scale error, quantization,
        saturation, hard iron, packet loss) with the same kinematics, mounting
        and clocks.
    realism:
        ``"clean"`` (default): the idealised subject, bit for bit the output of
        earlier versions. ``"real"`` (body scenarios; same script draws, extra
        draws from their own streams): the still segments wander during the
        hip hinges and knee lifts (thigh rotation +-3, adduction +-2, pelvic
        tilt +-2, obliquity and rotation +-1.5 deg; a lifting thigh +-1.5 / +-1),
        a habitual non-neutral standing posture (pelvis frame tilted 0..8 deg
        forward over the femurs, each hip rotated -5..5 and abducted 0..4 deg)
        in every standing phase, strap tilt up to 20 deg, and thigh soft
        tissue: the thigh sensor turns about the femur by ``-k`` (0.03..0.08)
        times the hip rotation plus ~0.5 deg per 90 deg of flexion, and rings
        (1-2 deg, 8-15 Hz, ~0.1 s decay) after each foot landing and squat
        bottom. The truth is then relative to the standing pose (see
        ``truth``), the anatomical truth is ``truth_anatomical``.
    first_leg:
        ``walk`` only: the leading leg, "right" or "left" (None: drawn from
        the seed; the other draws do not depend on it).

    Returns
    -------
    dict with
        ``sensors``: role -> {``time_s`` (N,) s true sample instants,
        ``acc_m_s2`` (N, 3) specific force in the sensor frame,
        ``gyr_rad_s`` (N, 3) angular rate in the sensor frame,
        ``mag_ut`` (N, 3) or None, ``seq`` (N,) int64 sample counter,
        ``orientation_wxyz`` (N, 4) true sensor-to-world, ``device`` (dict),
        ``errors`` (JSON-able), ``mounting_wxyz`` sensor-to-segment,
        ``segment`` ("pelvis", "femur_left", "femur_right"),
        ``site_m`` sensor position in the segment frame, m,
        ``skin_normal`` outward skin normal at the site, segment frame};
        ``truth``: ``time_s`` (100 Hz grid from 0 to the end) and the 9 angle
        columns in degrees (:data:`TRUTH_COLUMNS`); with ``realism="real"``
        relative to the standing pose (:func:`_body.standing_rebase` applied
        to the segments averaged over the standing window, or to the virtual
        habitual standing posture if the scenario never stands: every angle
        ~0 while standing), with ``"clean"`` the anatomical truth;
        ``truth_anatomical``: the same columns, femur vs pelvis and pelvis vs
        the identity (equal to ``truth`` when clean);
        ``rebase``: None (clean) or the corrections ``c_{segment}_wxyz``
        (right-multiplied), ``psi_deg`` (segment -> world yaw, deg) and
        ``standing_window_s`` ((start, end) or None: virtual standing);
        ``script``: ``standing_window_s``, ``impacts`` (list of (time_s,
        side, scale)), and for ``walk`` ``first_leg``, ``straight_walks_s``
        (the two full-speed stretches, [(start, end), ...]), ``turn_s``,
        ``walk_s``, ``turn_direction``, ``cadence_strides_per_s``,
        ``stride_length_m``;
        ``segments``: ``time_s`` (same grid), ``pelvis_wxyz``,
        ``femur_left_wxyz``, ``femur_right_wxyz`` (segment-to-world),
        ``reference_pelvis_wxyz`` (identity), ``pelvis_position_m`` (M, 3)
        pelvis origin in the world, m;
        ``events``: sorted list of ``(time_s, kind, label, data)``;
        ``parameters``: JSON-able description of the run.

    Raises
    ------
    ValueError
        Unknown scenario, bad seed, rate_hz outside [25, 1000], loss outside
        [0, 0.5), or a negative duration_s.
    """
    _validate(scenario, seed, rate_hz, loss, duration_s, realism, first_leg)
    seed, rate_hz, loss = int(seed), float(rate_hz), float(loss)
    ideal, mag = bool(ideal), bool(mag)
    if scenario in TABLE_SCENARIOS:
        out = _simulate_table(scenario, seed, rate_hz, mag, loss, ideal)
        out["parameters"]["realism"] = realism  # no body: nothing to make real
        return out

    real = realism == "real"
    motion = build_motion(scenario, seed, None if duration_s is None else float(duration_s), realism, first_leg)
    s, body, end_s = motion.script, motion.body, motion.end_s

    # --- kinematics on the knot grid (contains the 100 Hz truth grid) ----------
    per = int(round(KNOT_RATE_HZ / TRUTH_RATE_HZ))
    margin = int(round(KNOT_MARGIN_S * KNOT_RATE_HZ))
    n_truth = int(round(end_s * TRUTH_RATE_HZ)) + 1
    j = np.arange(-margin, (n_truth - 1) * per + margin + 1)
    knots = j / KNOT_RATE_HZ
    kin = motion.kinematics(knots)

    truth_idx = margin + per * np.arange(n_truth)
    t_truth = np.arange(n_truth) / TRUTH_RATE_HZ
    truth = {"time_s": t_truth}
    for side in ("left", "right"):
        for k, q in enumerate(("flexion", "adduction", "rotation")):
            truth[f"hip_{q}_{side}_deg"] = kin.hip_deg[side][truth_idx, k].copy()
    for k, q in enumerate(("tilt", "obliquity", "rotation")):
        truth[f"pelvis_{q}_deg"] = kin.pelvis_deg[truth_idx, k].copy()
    truth = {c: truth[c] for c in TRUTH_COLUMNS}
    truth_anatomical = {c: v.copy() for c, v in truth.items()}

    seg_rot = {"pelvis": kin.r_pelvis, "femur_left": kin.r_femur["left"], "femur_right": kin.r_femur["right"]}
    rebase = None
    if real:
        truth, rebase = _rebased_truth(motion, seg_rot, truth_idx, t_truth)
    segments = {"time_s": t_truth.copy()}
    for name, r in seg_rot.items():
        segments[f"{name}_wxyz"] = r[truth_idx].as_quat(canonical=True, scalar_first=True)
    segments["reference_pelvis_wxyz"] = [1.0, 0.0, 0.0, 0.0]
    segments["pelvis_position_m"] = kin.pelvis_pos_m[truth_idx].copy()

    # --- sensors ---------------------------------------------------------------
    env = _rng(seed, _STREAM_ENV)
    field = MagField(north_azimuth_deg=float(env.uniform(0.0, 360.0)))
    splines = {name: RotationSpline(knots, r) for name, r in seg_rot.items()}
    sensors = {}
    soft = {}
    for idx, role in enumerate(ROLES):
        geo = _rng(seed, _STREAM_MOUNT_CLOCK, idx)
        mounting, mount_info = draw_mounting(geo, role, MOUNT_TILT_MAX_REAL_DEG if real else MOUNT_TILT_MAX_DEG)
        phase_s, ppm = draw_clock(geo, rate_hz)
        sensor_spline = None
        if real and role != "pelvis":
            side = role.split("_")[1]
            soft[role] = _draw_soft_tissue(_rng(seed, _STREAM_REAL_SOFT_TISSUE, idx), side, s.impacts)
            wobble = soft[role].rotation(knots, kin.hip_deg[side])
            sensor_spline = RotationSpline(knots, kin.r_femur[side] * wobble * mounting)
        sensors[role] = _board(
            seed=seed, idx=idx, role=role, rate_hz=rate_hz, ideal=ideal, mag=mag, loss=loss, field=field,
            knots=knots, end_s=end_s, segment_spline=splines[ROLE_SEGMENT[role]],
            position_knots_m=kin.sensor_position_m(body, role), mounting=mounting, mount_info=mount_info,
            phase_s=phase_s, ppm=ppm, segment=ROLE_SEGMENT[role], site_m=body.sensor_site_m(role).tolist(),
            normal=skin_normal(role).tolist(), sensor_spline=sensor_spline,
        )
        if role in soft:
            sensors[role]["soft_tissue"] = soft[role].to_dict()

    task_duration = None
    if scenario in DEFAULT_DURATION_S:
        task_duration = DEFAULT_DURATION_S[scenario] if duration_s is None else float(duration_s)
    parameters = {
        "scenario": scenario,
        "seed": seed,
        "rate_hz": rate_hz,
        "mag": mag,
        "loss": loss,
        "ideal": ideal,
        "duration_s": task_duration,
        "total_duration_s": end_s,
        "description": SCENARIOS[scenario],
        "body": body.to_dict(),
        **_model_parameters(field, mag),
        "realism": realism,
    }
    if real:
        parameters["noise_model"]["mount_tilt_max_deg"] = MOUNT_TILT_MAX_REAL_DEG
        parameters["real"] = {
            "standing_posture_deg": dict(motion.posture),
            "wander_bounds_deg": {"still_thigh": WANDER_STILL_THIGH_DEG, "lifting_thigh": WANDER_LIFTING_THIGH_DEG,
                                  "pelvis": WANDER_PELVIS_DEG},
            "soft_tissue": {role: st.to_dict() for role, st in soft.items()},
            "truth": "relative to the standing pose (see rebase)",
        }
    if scenario == "walk":
        parameters["first_leg"] = s.info["first_leg"]
    script_info = {
        "standing_window_s": s.standing_window,
        "impacts": [(round(t, 6), side, scale) for t, side, scale in sorted(s.impacts)],
        **s.info,
    }
    return {
        "sensors": sensors,
        "truth": truth,
        "truth_anatomical": truth_anatomical,
        "rebase": rebase,
        "script": script_info,
        "segments": segments,
        # Event times rounded to the microsecond (the script's sums of float
        # durations carry ~1e-14 s of noise); data dicts are copies.
        "events": [(round(t, 6), kind, label, dict(data)) for t, kind, label, data in s.sorted_events()],
        "parameters": parameters,
    }


def _rebased_truth(motion: Motion, seg_rot: dict[str, Rotation], truth_idx: np.ndarray,
                   t_truth: np.ndarray) -> tuple[dict[str, np.ndarray], dict]:
    """Truth relative to the standing pose (realism="real"; docs/simulator.md).

    Standing orientations ``F_k,s``: the mean over the standing window of the
    truth grid, or the virtual habitual standing posture. Rebased frames
    ``F'_k = Yaw(psi_k) F_k C_k`` (:func:`standing_rebase`); hip angles of
    (P', F'_left, F'_right), pelvis angles of P' relative to ``P_s C_pelvis``.
    """
    win = motion.script.standing_window
    if win is not None:
        m = (t_truth >= win[0] - 1e-9) & (t_truth <= win[1] + 1e-9)
        r_s = {name: r[truth_idx[m]].mean() for name, r in seg_rot.items()}
    else:
        r_s = motion.standing_pose()
    corr, psi = standing_rebase(r_s)
    rebased = {}
    for name, r in seg_rot.items():
        yaw = Rotation.from_euler("y", psi[name], degrees=True)
        rebased[name] = yaw * r[truth_idx] * corr[name]
    truth = {"time_s": t_truth}
    for side in _SIDE_NAMES:
        femur = _zeroed_femur(rebased["pelvis"], rebased[f"femur_{side}"], side, t_truth, motion.script.events)
        hip = hip_angles_deg(rebased["pelvis"], femur, side)
        for k, q in enumerate(("flexion", "adduction", "rotation")):
            truth[f"hip_{q}_{side}_deg"] = hip[:, k].copy()
    pel = pelvis_angles_deg(r_s["pelvis"] * corr["pelvis"], rebased["pelvis"])
    for k, q in enumerate(("tilt", "obliquity", "rotation")):
        truth[f"pelvis_{q}_deg"] = pel[:, k].copy()
    info = {f"c_{name}_wxyz": corr[name].as_quat(canonical=True, scalar_first=True).tolist() for name in corr}
    info["psi_deg"] = dict(psi)
    info["standing_window_s"] = win
    info["standing_wxyz"] = {name: r.as_quat(canonical=True, scalar_first=True).tolist() for name, r in r_s.items()}
    return {c: truth[c] for c in TRUTH_COLUMNS}, info


#: A ``zero`` event's hold: the neutral test posture is averaged over this long from the event (s).
ZERO_HOLD_S = 1.0


def _zeroed_femur(pelvis: Rotation, femur: Rotation, side: str, t: np.ndarray, events: list) -> Rotation:
    """The femur frame as a ``zero`` event defines it (docs/conventions.md: it
    re-zeroes hip adduction and rotation to the neutral test posture, like a
    goniometer): from each zero event of this side on, the frame turned about
    the world vertical and about its own long axis so that adduction and
    rotation are zero on average over the hold -- solved here on the true
    orientations, independently of hipimu."""
    from scipy.optimize import least_squares

    zeros = sorted(e[0] for e in events if e[1] == "zero" and e[3].get("side") in (side, "both", None))
    out = femur
    for k, tz in enumerate(zeros):
        hold = (t >= tz) & (t <= tz + ZERO_HOLD_S)
        until = zeros[k + 1] if k + 1 < len(zeros) else np.inf
        span = (t >= tz) & (t < until)
        p, f = pelvis[hold], femur[hold]

        def residual(x: np.ndarray) -> np.ndarray:
            a = hip_angles_deg(p, Rotation.from_euler("y", x[0]) * f * Rotation.from_euler("y", x[1]), side)
            return np.concatenate([a[:, 1], a[:, 2]])

        x = least_squares(residual, np.zeros(2), xtol=1e-12, ftol=1e-12).x
        fixed = Rotation.from_euler("y", x[0]) * femur[span] * Rotation.from_euler("y", x[1])
        q = out.as_quat()
        q[span] = fixed.as_quat()
        out = Rotation.from_quat(q)
    return out


# ----------------------------------------------------------------------------
# Table scenarios: the bare boards, no body (per-device sensor calibration)
# ----------------------------------------------------------------------------

#: Scenarios without a body: the three boards lie on a table and are turned by hand.
TABLE_SCENARIOS = ("sensor_six_pose", "sensor_mag_turns")

#: The sensor axis pointing up in each pose of ``sensor_six_pose``, in order.
SIX_POSES = ("+z", "-z", "+x", "-x", "+y", "-y")
SIX_POSE_HOLD_S = 5.0
SIX_POSE_TURN_S = 2.0
SIX_POSE_LIFT_M = 0.03
SIX_POSE_TILT_MAX_DEG = 2.0
MAG_TURNS_S = 60.0
MAG_TURNS_STILL_S = 2.0
MAG_TURNS_RAMP_S = 2.0
TABLE_HEIGHT_M = 0.75
TABLE_SPACING_M = 0.15

#: Elementary rotation (axis, degrees) that turns the named sensor axis to world +Y.
_UP_ALIGN = {
    "+x": ("z", 90.0),
    "-x": ("z", -90.0),
    "+y": ("x", 0.0),
    "-y": ("x", 180.0),
    "+z": ("x", -90.0),
    "-z": ("x", 90.0),
}


def _board_position(idx: int) -> np.ndarray:
    return np.array([0.0, TABLE_HEIGHT_M, (idx - 1) * TABLE_SPACING_M])


def _six_pose_track(rng: np.random.Generator, knots_s: np.ndarray, idx: int) -> tuple[Rotation, np.ndarray]:
    """Sensor-to-world rotations and world positions (m) of one board on ``knots_s``."""
    quats = []
    for axis in SIX_POSES:
        yaw = rng.uniform(0.0, 360.0)
        tilt = math.radians(rng.uniform(0.0, SIX_POSE_TILT_MAX_DEG))
        az = rng.uniform(0.0, 2 * np.pi)
        align = Rotation.from_euler(*_UP_ALIGN[axis], degrees=True)
        tilt_r = Rotation.from_rotvec(tilt * np.array([math.cos(az), 0.0, math.sin(az)]))
        quats.append((Rotation.from_euler("y", yaw, degrees=True) * tilt_r * align).as_quat())
    poses = Rotation.from_quat(np.array(quats))
    steps = np.vstack([(poses[:-1].inv() * poses[1:]).as_rotvec(), np.zeros((1, 3))])
    period = SIX_POSE_HOLD_S + SIX_POSE_TURN_S
    t = np.asarray(knots_s, dtype=np.float64)
    k = np.clip(np.floor(t / period).astype(np.int64), 0, len(SIX_POSES) - 1)
    u = np.clip((t - k * period - SIX_POSE_HOLD_S) / SIX_POSE_TURN_S, 0.0, 1.0)
    u[k == len(SIX_POSES) - 1] = 0.0
    r = poses[k] * Rotation.from_rotvec(smoothstep(u)[:, None] * steps[k])
    pos = np.tile(_board_position(idx), (t.shape[0], 1))
    pos[:, 1] += SIX_POSE_LIFT_M * (smoothstep(2.0 * u) - smoothstep(2.0 * u - 1.0))
    return r, pos


def _ramp_integral(u: np.ndarray) -> np.ndarray:
    """Integral of :func:`smoothstep` from 0 to ``u`` (0 before, linear after 1)."""
    u = np.asarray(u, dtype=np.float64)
    v = np.clip(u, 0.0, 1.0)
    inside = v**5 * (7.0 + v * (-14.0 + v * (10.0 - 2.5 * v)))
    return inside + np.maximum(u - 1.0, 0.0)


def _mag_turns_track(rng: np.random.Generator, knots_s: np.ndarray, idx: int) -> tuple[Rotation, np.ndarray]:
    """Slow turns about three body axes at once (~5 turns about x, ~1.5
    about y, ~0.5 about z), so that a fixed field sweeps all directions in
    the sensor frame (a 30 deg cap around any direction holds a sample for
    >90 % of directions)."""
    q0 = rng.standard_normal(4)
    r0 = Rotation.from_quat(q0 / np.linalg.norm(q0))  # uniform random start
    turns = rng.uniform([4.6, 1.3, 0.45], [5.4, 1.7, 0.65]) * rng.choice([-1.0, 1.0], 3)
    t = np.asarray(knots_s, dtype=np.float64)
    t_a, t_b, ramp = MAG_TURNS_STILL_S, MAG_TURNS_S - MAG_TURNS_STILL_S, MAG_TURNS_RAMP_S
    dist = ramp * (_ramp_integral((t - t_a) / ramp) - _ramp_integral((t - t_b + ramp) / ramp))
    progress = dist / ((t_b - t_a) - ramp)  # 0 before t_a, 1 after t_b, C3
    ang = np.radians(360.0 * progress[:, None] * turns[None, :])
    r = r0 * Rotation.from_euler("ZYX", ang[:, ::-1])  # R0 Rz(c) Ry(b) Rx(a)
    pos = np.tile(_board_position(idx), (t.shape[0], 1))
    return r, pos


def _table_script(scenario: str) -> tuple[float, list[tuple[float, str, str, dict]]]:
    """(end_s, events) of a table scenario."""
    if scenario == "sensor_six_pose":
        period = SIX_POSE_HOLD_S + SIX_POSE_TURN_S
        events = [
            (k * period, "marker", f"pose {k + 1}: {axis} up", {"index": k + 1, "up_axis": axis, "hold_s": SIX_POSE_HOLD_S})
            for k, axis in enumerate(SIX_POSES)
        ]
        return len(SIX_POSES) * period - SIX_POSE_TURN_S, events
    events = [(MAG_TURNS_STILL_S, "marker", "turning", {}), (MAG_TURNS_S - MAG_TURNS_STILL_S, "marker", "still", {})]
    return MAG_TURNS_S, events


def _simulate_table(scenario: str, seed: int, rate_hz: float, mag: bool, loss: float, ideal: bool) -> dict:
    """:func:`simulate` for the table scenarios (same return layout)."""
    track = _six_pose_track if scenario == "sensor_six_pose" else _mag_turns_track
    end_s, events = _table_script(scenario)
    per = int(round(KNOT_RATE_HZ / TRUTH_RATE_HZ))
    margin = int(round(KNOT_MARGIN_S * KNOT_RATE_HZ))
    n_truth = int(round(end_s * TRUTH_RATE_HZ)) + 1
    knots = np.arange(-margin, (n_truth - 1) * per + margin + 1) / KNOT_RATE_HZ
    t_truth = np.arange(n_truth) / TRUTH_RATE_HZ
    truth = {c: (t_truth if c == "time_s" else np.zeros(n_truth)) for c in TRUTH_COLUMNS}
    identity = np.tile([1.0, 0.0, 0.0, 0.0], (n_truth, 1))
    segments = {"time_s": t_truth.copy(), "pelvis_wxyz": identity, "femur_left_wxyz": identity.copy(),
                "femur_right_wxyz": identity.copy(), "reference_pelvis_wxyz": [1.0, 0.0, 0.0, 0.0],
                "pelvis_position_m": np.zeros((n_truth, 3))}

    # The same streams, in the same order, as the body scenarios: same errors, clocks and field.
    env = _rng(seed, _STREAM_ENV)
    field = MagField(north_azimuth_deg=float(env.uniform(0.0, 360.0)))
    sensors = {}
    for idx, role in enumerate(ROLES):
        geo = _rng(seed, _STREAM_MOUNT_CLOCK, idx)
        draw_mounting(geo, role)  # not worn; drawn so that the clock draw below is the body scenarios' one
        phase_s, ppm = draw_clock(geo, rate_hz)
        r_knots, pos_knots = track(_rng(seed, _STREAM_SCENARIO, idx), knots, idx)
        sensors[role] = _board(
            seed=seed, idx=idx, role=role, rate_hz=rate_hz, ideal=ideal, mag=mag, loss=loss, field=field,
            knots=knots, end_s=end_s, segment_spline=RotationSpline(knots, r_knots), position_knots_m=pos_knots,
            mounting=Rotation.identity(), mount_info=None, phase_s=phase_s, ppm=ppm, segment="table",
            site_m=_board_position(idx).tolist(), normal=None,
        )
    parameters = {
        "scenario": scenario,
        "seed": seed,
        "rate_hz": rate_hz,
        "mag": mag,
        "loss": loss,
        "ideal": ideal,
        "duration_s": None,
        "total_duration_s": end_s,
        "description": SCENARIOS[scenario],
        "body": None,
        "table": {
            "height_m": TABLE_HEIGHT_M,
            "board_positions_m": {r: _board_position(i).tolist() for i, r in enumerate(ROLES)},
            "six_poses_up_axis": list(SIX_POSES) if scenario == "sensor_six_pose" else None,
            "hold_s": SIX_POSE_HOLD_S if scenario == "sensor_six_pose" else None,
            "turn_s": SIX_POSE_TURN_S if scenario == "sensor_six_pose" else None,
            "truth": "no body: the angle columns are all zero",
        },
        **_model_parameters(field, mag),
    }
    return {
        "sensors": sensors,
        "truth": truth,
        "segments": segments,
        "events": [(round(t, 6), kind, label, dict(data)) for t, kind, label, data in sorted(events, key=lambda e: e[0])],
        "parameters": parameters,
    }


def _board(
    *, seed, idx, role, rate_hz, ideal, mag, loss, field, knots, end_s, segment_spline, position_knots_m,
    mounting, mount_info, phase_s, ppm, segment, site_m, normal, sensor_spline=None,
) -> dict:
    """One sensor board: draw its errors, synthesize its samples, describe it."""
    errors = draw_errors(_rng(seed, _STREAM_ERRORS, idx), rate_hz, ideal, mag)
    out = synthesize_sensor(
        role=role,
        knots_s=knots,
        segment_spline=segment_spline,
        position_knots_m=position_knots_m,
        mounting=mounting,
        rate_hz=rate_hz,
        phase_s=phase_s,
        ppm=ppm,
        end_s=end_s,
        errors=errors,
        mag_field=field if mag else None,
        noise_rng=_rng(seed, _STREAM_NOISE, idx),
        loss=0.0 if ideal else loss,
        loss_rng=_rng(seed, _STREAM_LOSS, idx),
        sensor_spline=sensor_spline,
    )
    errors.update({
        "gyr_bias_final_rad_s": out.pop("gyr_bias_final_rad_s"),
        "clock_ppm": ppm,
        "clock_phase_s": phase_s,
        "effective_rate_hz": rate_hz * (1.0 + ppm * 1e-6),
        "mounting": mount_info,
    })
    return {
        **out,
        "device": {
            "device_id": f"sim-{role}-{seed}",
            "rate_hz": rate_hz,
            "imu": "simulated LSM6DS3TR-C",
            "acc_range_m_s2": ACC_RANGE_M_S2,
            "gyr_range_rad_s": GYR_RANGE_RAD_S,
            "mag_range_ut": MAG_RANGE_UT if mag else None,
            "has_mag": mag,
        },
        "errors": errors,
        "mounting_wxyz": mounting.as_quat(canonical=True, scalar_first=True).tolist(),
        "segment": segment,
        "site_m": site_m,
        "skin_normal": normal,
    }


def _model_parameters(field: MagField, mag: bool) -> dict:
    """The parts of ``parameters`` every scenario shares: the sensor and signal model."""
    return {
        "noise_model": noise_model(),
        "mag_field": field.to_dict() if mag else None,
        "truth_rate_hz": TRUTH_RATE_HZ,
        "knot_rate_hz": KNOT_RATE_HZ,
        "transition_profile": "septic smoothstep (C3)",
    }
