"""The sample model refuses what no sensor can produce."""

import numpy as np
import pytest

from hipimu.core.model import DeviceInfo, Event, SampleBlock, Session, SessionInfo, concat_blocks
from hipimu.errors import UnknownRoleError


@pytest.mark.parametrize("field", ["time_s", "acc_m_s2", "gyr_rad_s", "mag_ut"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_refused(field, bad):
    kw = dict(time_s=np.arange(3.0), acc_m_s2=np.zeros((3, 3)), gyr_rad_s=np.zeros((3, 3)), mag_ut=np.zeros((3, 3)))
    arr = kw[field].copy()
    arr.flat[1] = bad
    kw[field] = arr
    with pytest.raises(ValueError, match=f"{field} holds NaN or infinite"):
        SampleBlock("pelvis", **kw)


def test_shapes_and_roles_are_checked():
    with pytest.raises(ValueError, match=r"acc_m_s2 must have shape \(2, 3\)"):
        SampleBlock("pelvis", [0.0, 1.0], np.zeros((3, 3)), np.zeros((2, 3)))
    with pytest.raises(UnknownRoleError, match="unknown sensor 'shank_left'"):
        SampleBlock("shank_left", [0.0], np.zeros((1, 3)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="rate_hz"):
        DeviceInfo("d", "pelvis", 0.0)
    with pytest.raises(ValueError, match="unknown event kind"):
        Event(1.0, "party")


def test_concat_and_between():
    a = SampleBlock("pelvis", [0.0, 0.1], np.ones((2, 3)), np.zeros((2, 3)), seq=[0, 1])
    b = SampleBlock("pelvis", [0.2, 0.3], np.ones((2, 3)), np.zeros((2, 3)), seq=[2, 3])
    c = concat_blocks([a, b])
    assert len(c) == 4 and list(c.between(0.1, 0.3).time_s) == [0.1, 0.2]
    with pytest.raises(ValueError, match="mag/seq"):
        concat_blocks([a, SampleBlock("pelvis", [0.4], np.ones((1, 3)), np.zeros((1, 3)))])


def test_intervals_pair_starts_with_ends():
    ev = [
        Event(1, "trial_start", "seated_rotation", {"side": "right", "index": 1}),
        Event(2, "trial_start", "seated_rotation", {"side": "left", "index": 1}),
        Event(3, "trial_end", "seated_rotation", {"side": "right", "index": 1}),
        Event(4, "trial_end", "seated_rotation", {"side": "left", "index": 1}),
        Event(5, "trial_start", "seated_rotation", {"side": "right", "index": 2}),  # never ended
    ]
    s = Session(SessionInfo(), {}, {}, ev)
    got = [(a, b, e.data["side"]) for a, b, e in s.intervals("trial")]
    assert got == [(1, 3, "right"), (2, 4, "left")]
