"""Raw-sample CSV reader and writer (hipimu.storage.csv_io)."""

from __future__ import annotations

import math
import os
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hipimu.core.conventions import RAW_CSV_COLUMNS, RAW_CSV_MAG_COLUMNS, ROLES
from hipimu.core.model import SampleBlock
from hipimu.errors import CsvFormatError, InputError
from hipimu.storage import csv_io
from hipimu.storage.csv_io import read_raw_csv, write_raw_csv

HEADER = ",".join(RAW_CSV_COLUMNS)
HEADER_MAG = ",".join(RAW_CSV_COLUMNS + RAW_CSV_MAG_COLUMNS)
ROLE_NAMES = list(ROLES)

# Hypothesis examples write files into one shared directory (function-scoped
# fixtures do not mix with @given).
HSETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def put(tmp_path: Path, text: str | bytes, name: str = "data.csv") -> Path:
    p = tmp_path / name
    if isinstance(text, str):
        text = text.encode("utf-8")
    p.write_bytes(text)
    return p


def row(t: float, sensor: str = "pelvis", *vals: str) -> str:
    v = list(vals) or ["0.1", "9.8", "0.2", "0.01", "0.02", "0.03"]
    return ",".join([repr(t) if isinstance(t, float) else str(t), sensor, *v])


def good_lines(n: int = 6) -> list[str]:
    """Header plus n valid rows, sensors interleaved (line k+2 is row k)."""
    out = [HEADER]
    for k in range(n):
        out.append(row(0.01 * (k // 3) + 0.001 * (k % 3), ROLE_NAMES[k % 3]))
    return out


def csv_error(path: Path) -> CsvFormatError:
    with pytest.raises(CsvFormatError) as info:
        read_raw_csv(path)
    return info.value


def assert_error(path: Path, line: int | None, *words: str) -> CsvFormatError:
    err = csv_error(path)
    assert err.line == line, str(err)
    assert err.path == str(path)
    msg = str(err)
    prefix = f"{path}:{line}: " if line is not None else f"{path}: "
    assert msg.startswith(prefix), msg
    for w in words:
        assert w in msg, msg
    return err


@contextmanager
def reference_only():
    """Force every chunk through the line-by-line reference parser."""
    with mock.patch.object(csv_io, "_fast_chunk", lambda *a, **k: None):
        yield


@contextmanager
def chunk_chars(n: int):
    with mock.patch.object(csv_io, "_CHUNK_CHARS", n):
        yield


# ----------------------------------------------------------------------------
# Valid files
# ----------------------------------------------------------------------------


def test_reads_interleaved_sensors_exactly(tmp_path):
    text = "\n".join(
        [
            HEADER,
            "0.0,pelvis,1,2,3,4,5,6",
            "0.004,thigh_right,0.1,0.2,0.3,0.4,0.5,0.6",
            "0.005,pelvis,-1e-300,2.5e300,3,4,5,6",
            "0.0041,thigh_right,7,8,9,10,11,12",
            "0.002,thigh_left,1,1,1,1,1,1",  # earlier than the line before: other sensor, fine
        ]
    )
    out = read_raw_csv(put(tmp_path, text))
    assert list(out) == ["pelvis", "thigh_left", "thigh_right"]
    assert out["pelvis"].time_s.tolist() == [0.0, 0.005]
    assert out["pelvis"].acc_m_s2[1].tolist() == [-1e-300, 2.5e300, 3.0]
    assert out["thigh_right"].gyr_rad_s.tolist() == [[0.4, 0.5, 0.6], [10.0, 11.0, 12.0]]
    assert len(out["thigh_left"]) == 1
    for blk in out.values():
        assert blk.mag_ut is None and blk.seq is None
        assert blk.time_s.dtype == np.float64 and blk.acc_m_s2.dtype == np.float64


def test_bom_crlf_spaces_blank_lines_and_later_error_line(tmp_path):
    lines = [
        HEADER,
        "",
        " 0.0 , pelvis , 1 , 2 , 3 , 4 , 5 , 6 ",
        "   ",
        "0.01,\tthigh_left\t,1,2,3,4,5,6",
        "",
        "0.02,pelvis,1,2,3,4,5,6",
    ]
    body = "\ufeff" + "\r\n".join(lines)  # no final newline
    out = read_raw_csv(put(tmp_path, body))
    assert out["pelvis"].time_s.tolist() == [0.0, 0.02]
    assert out["thigh_left"].acc_m_s2.tolist() == [[1.0, 2.0, 3.0]]
    # The same file with a bad value further down: the line is the editor's line.
    bad = "\ufeff" + "\r\n".join(lines + ["", "0.03,pelvis,1,abc,3,4,5,6", ""]) + "\r\n"
    assert_error(put(tmp_path, bad, "bad.csv"), 9, "column acc_y", "'abc'", "not a number")


def test_mag_columns_per_sensor(tmp_path):
    text = "\n".join(
        [
            HEADER_MAG,
            "0.0,pelvis,1,2,3,4,5,6,10,20,30",
            "0.0,thigh_left,1,2,3,4,5,6,,,",
            "0.01,pelvis,1,2,3,4,5,6,11,21,31",
            "0.01,thigh_left,1,2,3,4,5,6, , ,",
        ]
    )
    out = read_raw_csv(put(tmp_path, text))
    assert out["pelvis"].mag_ut.tolist() == [[10.0, 20.0, 30.0], [11.0, 21.0, 31.0]]
    assert out["thigh_left"].mag_ut is None


def test_columns_in_any_order(tmp_path):
    cols = "sensor,gyr_z,gyr_y,gyr_x,mag_x,acc_z,acc_y,acc_x,mag_z,time_s,mag_y".split(",")
    text = ",".join(cols) + "\n" + "pelvis,6,5,4,7,3,2,1,9,0.5,8\n"
    blk = read_raw_csv(put(tmp_path, text))["pelvis"]
    assert blk.time_s.tolist() == [0.5]
    assert blk.acc_m_s2.tolist() == [[1.0, 2.0, 3.0]]
    assert blk.gyr_rad_s.tolist() == [[4.0, 5.0, 6.0]]
    assert blk.mag_ut.tolist() == [[7.0, 8.0, 9.0]]


def test_accepts_a_pathlike_and_a_str(tmp_path):
    p = put(tmp_path, "\n".join(good_lines()))
    assert read_raw_csv(str(p)).keys() == read_raw_csv(p).keys()


# ----------------------------------------------------------------------------
# One test per kind of bad input
# ----------------------------------------------------------------------------


def test_missing_column(tmp_path):
    p = put(tmp_path, HEADER.replace(",gyr_z", "") + "\n0,pelvis,1,2,3,4,5\n")
    assert_error(p, 1, "missing column 'gyr_z'")


def test_missing_mag_column(tmp_path):
    p = put(tmp_path, HEADER + ",mag_x,mag_y\n")
    assert_error(p, 1, "missing column 'mag_z'")


def test_unknown_column(tmp_path):
    p = put(tmp_path, HEADER + ",temp\n0,pelvis,1,2,3,4,5,6,20\n")
    assert_error(p, 1, "unknown column 'temp'")


def test_duplicate_and_empty_column_names(tmp_path):
    assert_error(put(tmp_path, HEADER + ",acc_x\n"), 1, "duplicate column 'acc_x'")
    assert_error(put(tmp_path, HEADER + ",\n", "b.csv"), 1, "column 9 has no name")


def test_header_after_blank_lines_has_its_real_line(tmp_path):
    assert_error(put(tmp_path, "\n\n" + HEADER + ",temp\n"), 3, "unknown column 'temp'")


def test_no_header_line(tmp_path):
    p = put(tmp_path, "0.0,pelvis,1,2,3,4,5,6\n")
    assert_error(p, 1, "no header", "time_s,sensor")


def test_unknown_sensor(tmp_path):
    lines = good_lines(60)
    lines[56] = row(9.0, "thigh_middle")  # line 57
    err = assert_error(put(tmp_path, "\n".join(lines)), 57, "unknown sensor 'thigh_middle'")
    assert err.problem == "unknown sensor 'thigh_middle' (known: pelvis, thigh_left, thigh_right)"


def test_not_a_number(tmp_path):
    lines = good_lines(20)
    lines[11] = lines[11].split(",", 3)
    lines[11][3] = "abc," + lines[11][3].split(",", 1)[1]  # acc_y
    lines[11] = ",".join(lines[11])
    err = assert_error(put(tmp_path, "\n".join(lines)), 12, "column acc_y", "'abc' is not a number")
    assert err.problem == "column acc_y: 'abc' is not a number"


@pytest.mark.parametrize("text", ["1_0", "0x10", "1.2.3", "1e", "--1", "١", "1 2"])
def test_number_lookalikes_are_not_numbers(tmp_path, text):
    lines = good_lines(4)
    lines[3] = row(0.002, "thigh_right", "1", "2", "3", text, "5", "6")
    assert_error(put(tmp_path, "\n".join(lines)), 4, "column gyr_x", "not a number")


def test_empty_field(tmp_path):
    lines = good_lines(4)
    lines[2] = row(0.001, "thigh_left", "1", "2", " ", "4", "5", "6")
    assert_error(put(tmp_path, "\n".join(lines)), 3, "column acc_z", "empty")


@pytest.mark.parametrize(
    "text,word",
    [("nan", "NaN"), ("NaN", "NaN"), ("inf", "infinite"), ("-Infinity", "infinite"), ("1e999", "infinite")],
)
def test_nan_and_inf(tmp_path, text, word):
    lines = good_lines(20)
    lines[11] = row(0.031, "thigh_left", "1", "2", "3", text, "5", "6")
    err = assert_error(put(tmp_path, "\n".join(lines)), 12, "column gyr_x", word)
    if word == "NaN":
        assert err.problem == "column gyr_x: NaN"


def test_nan_time(tmp_path):
    lines = good_lines(4) + [row("nan", "pelvis")]
    assert_error(put(tmp_path, "\n".join(lines)), 6, "column time_s: NaN")


def test_time_goes_backwards(tmp_path):
    lines = [HEADER] + [row(round(1.0 + 0.01 * k, 2)) for k in range(25)]  # lines 2..26: pelvis 1.00 .. 1.24
    lines += [row(round(0.01 * k, 2), "thigh_left") for k in range(63)]  # lines 27..89: other sensor, earlier
    lines += [row(1.23)]  # line 90
    err = assert_error(put(tmp_path, "\n".join(lines)), 90, "time goes backwards", "sensor pelvis")
    assert err.problem == "time goes backwards for sensor pelvis (1.230000 s after 1.240000 s)"


def test_time_does_not_increase(tmp_path):
    lines = good_lines(6) + [row(0.011, "thigh_left")]  # line 8 repeats line 6's time
    err = assert_error(put(tmp_path, "\n".join(lines)), 8, "time does not increase", "thigh_left")
    assert "0.011000 s" in err.problem


def test_tiny_backward_step_shows_full_precision(tmp_path):
    lines = [HEADER, row(1.0), row(1.0000000000000002), row(1.0)]
    err = assert_error(put(tmp_path, "\n".join(lines)), 4, "time goes backwards")
    assert "1.0 s after 1.0000000000000002 s" in err.problem


@pytest.mark.parametrize("found", [7, 9])
def test_wrong_field_count(tmp_path, found):
    lines = good_lines(45)
    fields = lines[39].split(",")
    fields = fields[:found] if found < 8 else fields + ["1"] * (found - 8)
    lines[39] = ",".join(fields)  # line 40
    err = assert_error(put(tmp_path, "\n".join(lines)), 40, f"expected 8 fields, found {found}")
    assert err.problem == f"expected 8 fields, found {found}"


def test_wrong_field_count_with_mag(tmp_path):
    p = put(tmp_path, HEADER_MAG + "\n0,pelvis,1,2,3,4,5,6,7,8,9\n0.1,pelvis,1,2,3,4,5,6,,\n")
    assert_error(p, 3, "expected 11 fields, found 10")


def test_mag_mixed_within_a_sensor(tmp_path):
    text = "\n".join(
        [
            HEADER_MAG,
            "0.0,pelvis,1,2,3,4,5,6,7,8,9",  # line 2
            "0.0,thigh_left,1,2,3,4,5,6,,,",
            "0.01,thigh_left,1,2,3,4,5,6,,,",
            "0.01,pelvis,1,2,3,4,5,6,,,",  # line 5
        ]
    )
    assert_error(put(tmp_path, text), 5, "sensor pelvis", "empty mag fields", "line 2")
    text2 = text.replace("0.01,pelvis,1,2,3,4,5,6,,,", "0.01,pelvis,1,2,3,4,5,6,1,2,3").replace(
        "0.01,thigh_left,1,2,3,4,5,6,,,", "0.01,thigh_left,1,2,3,4,5,6,1,2,3"
    )
    assert_error(put(tmp_path, text2, "b.csv"), 4, "sensor thigh_left", "mag values", "line 3")


def test_mag_partly_empty_on_one_line(tmp_path):
    p = put(tmp_path, HEADER_MAG + "\n0,pelvis,1,2,3,4,5,6,7,,9\n")
    assert_error(p, 2, "all empty or all filled", "mag_y")


def test_empty_file(tmp_path):
    assert_error(put(tmp_path, ""), None, "empty file")
    assert_error(put(tmp_path, "\ufeff\r\n  \n", "b.csv"), None, "empty file")


def test_header_only(tmp_path):
    assert_error(put(tmp_path, HEADER + "\n"), None, "no samples (header only)")
    assert_error(put(tmp_path, HEADER_MAG + "\r\n\r\n   \r\n", "b.csv"), None, "no samples (header only)")


def test_file_not_found(tmp_path):
    assert_error(tmp_path / "nope.csv", None, "not found")


def test_directory(tmp_path):
    err = csv_error(tmp_path)
    assert err.line is None and "directory" in str(err)


def test_not_utf8(tmp_path):
    data = ("\n".join(good_lines(4)) + "\n").encode() + b"0.5,pelvis,1,2,\xff,4,5,6\n"
    err = assert_error(put(tmp_path, data), None, "not UTF-8", "line 6")
    assert err.line is None


def test_nul_character_is_not_hidden(tmp_path):
    # A NUL after the name would vanish in a numpy string field; it must not.
    lines = good_lines(4)
    lines[4] = row(0.01, "pelvis\x00")
    assert_error(put(tmp_path, "\n".join(lines)), 5, "unknown sensor")


def test_long_sensor_name_is_not_truncated_to_a_role(tmp_path):
    lines = good_lines(4)
    lines[4] = row(0.01, "pelvis" + " " * 12 + "x")
    assert_error(put(tmp_path, "\n".join(lines)), 5, "unknown sensor")


def test_first_error_in_file_order_wins(tmp_path):
    lines = good_lines(12)
    lines[5] = row(-1.0, ROLE_NAMES[4 % 3])  # line 6: time backwards for thigh_left
    lines[9] = row(0.5, "pelvis", "x", "2", "3", "4", "5", "6")  # line 10: not a number
    assert_error(put(tmp_path, "\n".join(lines)), 6, "time goes backwards")


@pytest.mark.parametrize("chunk", [1, 7, 64, 200])
def test_small_chunks_give_the_same_result_and_lines(tmp_path, chunk):
    lines = good_lines(40)
    lines.insert(10, "")
    lines.insert(20, "   ")
    text = "\n".join(lines)
    expected = read_raw_csv(put(tmp_path, text))
    with chunk_chars(chunk):
        out = read_raw_csv(put(tmp_path, text))
    assert all(out[r].equals(expected[r]) for r in expected) and out.keys() == expected.keys()
    bad = lines + [row(0.0, "thigh_right")]  # last line: time goes backwards
    with chunk_chars(chunk):
        assert_error(put(tmp_path, "\n".join(bad), "b.csv"), len(bad), "time goes backwards")


# ----------------------------------------------------------------------------
# The writer
# ----------------------------------------------------------------------------


def block(role, t, mag=False, seed=0):
    rng = np.random.default_rng(seed)
    n = len(t)
    return SampleBlock(
        role,
        np.asarray(t, dtype=float),
        rng.normal(size=(n, 3)),
        rng.normal(size=(n, 3)),
        rng.normal(size=(n, 3)) * 40 if mag else None,
    )


def test_writer_merges_in_time_order_ties_in_role_order(tmp_path):
    samples = {
        "thigh_right": block("thigh_right", [0.0, 0.02]),
        "pelvis": block("pelvis", [0.0, 0.01, 0.02]),
        "thigh_left": block("thigh_left", [0.005]),
    }
    p = tmp_path / "out.csv"
    assert write_raw_csv(samples, p) == 6
    lines = p.read_text().splitlines()
    assert lines[0] == HEADER
    order = [(line.split(",")[0], line.split(",")[1]) for line in lines[1:]]
    assert order == [
        ("0.0", "pelvis"),
        ("0.0", "thigh_right"),
        ("0.005", "thigh_left"),
        ("0.01", "pelvis"),
        ("0.02", "pelvis"),
        ("0.02", "thigh_right"),
    ]
    assert p.read_bytes().endswith(b"\n") and b"\r" not in p.read_bytes()


def test_writer_many_ties_keep_role_order(tmp_path):
    t = np.arange(300) * 0.01
    samples = {r: block(r, t, seed=k) for k, r in enumerate(reversed(ROLE_NAMES))}
    p = tmp_path / "out.csv"
    assert write_raw_csv(samples, p) == 900
    sensors = [line.split(",")[1] for line in p.read_text().splitlines()[1:]]
    assert sensors == ROLE_NAMES * 300


def test_writer_mag_header_and_empty_fields(tmp_path):
    samples = {"pelvis": block("pelvis", [0.0], mag=True), "thigh_left": block("thigh_left", [0.0])}
    p = tmp_path / "out.csv"
    write_raw_csv(samples, p)
    lines = p.read_text().splitlines()
    assert lines[0] == HEADER_MAG
    assert lines[1].count(",") == 10 and not lines[1].endswith(",")
    assert lines[2].endswith(",,,") and lines[2].count(",") == 10
    back = read_raw_csv(p)
    assert back["pelvis"].equals(samples["pelvis"]) and back["thigh_left"].equals(samples["thigh_left"])


def test_writer_uses_shortest_repr(tmp_path):
    b = SampleBlock("pelvis", [0.1], [[1e-05, -0.0, 1e16]], [[5e-324, 1.7976931348623157e308, 2.5]])
    p = tmp_path / "out.csv"
    write_raw_csv({"pelvis": b}, p)
    assert p.read_text().splitlines()[1] == "0.1,pelvis,1e-05,-0.0,1e+16,5e-324,1.7976931348623157e+308,2.5"
    back = read_raw_csv(p)["pelvis"]
    assert back.equals(b) and math.copysign(1.0, back.acc_m_s2[0, 1]) == -1.0


def test_writer_drops_seq_and_skips_empty_blocks(tmp_path):
    b = SampleBlock("pelvis", [0.0, 1.0], np.zeros((2, 3)), np.zeros((2, 3)), None, [7, 8])
    p = tmp_path / "out.csv"
    assert write_raw_csv({"pelvis": b, "thigh_left": SampleBlock.empty("thigh_left")}, p) == 2
    back = read_raw_csv(p)
    assert list(back) == ["pelvis"] and back["pelvis"].seq is None


@pytest.mark.parametrize(
    "samples,exc,word",
    [
        ({}, ValueError, "no samples"),
        ({"pelvis": SampleBlock.empty("pelvis")}, ValueError, "no samples"),
        ({"thigh_left": block("pelvis", [0.0])}, ValueError, "holds a block"),
        ({"pelvis": block("pelvis", [0.0, 0.0])}, ValueError, "strictly increase"),
        ({"pelvis": "nope"}, TypeError, "SampleBlock"),
    ],
)
def test_writer_rejects_what_the_reader_would_reject(tmp_path, samples, exc, word):
    p = tmp_path / "out.csv"
    with pytest.raises(exc, match=word):
        write_raw_csv(samples, p)
    assert not p.exists() and list(tmp_path.iterdir()) == []


def test_writer_is_atomic(tmp_path):
    p = tmp_path / "out.csv"
    p.write_text("precious\n")

    def half_then_fail(f, blocks, with_mag):
        f.write("0.0,pelvis,1,2")
        f.flush()
        raise RuntimeError("disk on fire")

    samples = {"pelvis": block("pelvis", np.arange(10) * 0.01)}
    with mock.patch.object(csv_io, "_write_rows", half_then_fail):
        with pytest.raises(RuntimeError, match="disk on fire"):
            write_raw_csv(samples, p, overwrite=True)
    assert p.read_text() == "precious\n"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["out.csv"]
    # Without overwrite an existing file is refused, untouched ...
    with pytest.raises(InputError, match="already exists"):
        write_raw_csv(samples, p)
    assert p.read_text() == "precious\n"
    # ... and a successful write with it replaces it.
    assert write_raw_csv(samples, p, overwrite=True) == 10
    assert read_raw_csv(p)["pelvis"].equals(samples["pelvis"])
    assert sorted(x.name for x in tmp_path.iterdir()) == ["out.csv"]


def test_writer_unwritable_path(tmp_path):
    samples = {"pelvis": block("pelvis", [0.0])}
    with pytest.raises(InputError, match="no_such_dir: no such directory"):
        write_raw_csv(samples, tmp_path / "no_such_dir" / "out.csv")
    target = tmp_path / "a_dir"
    target.mkdir()
    with pytest.raises(InputError, match="a_dir: is a directory"):
        write_raw_csv(samples, target)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a_dir"] and list(target.iterdir()) == []


def test_writer_file_gets_normal_permissions(tmp_path):
    p = tmp_path / "out.csv"
    write_raw_csv({"pelvis": block("pelvis", [0.0])}, p)
    umask = os.umask(0)
    os.umask(umask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~umask


# ----------------------------------------------------------------------------
# Property tests
# ----------------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
nice = st.one_of(
    finite,
    st.floats(-1e-300, 1e-300, allow_nan=False),
    st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 1.7976931348623157e308, 0.1, 1 / 3]),
)


@st.composite
def sample_dicts(draw):
    roles = draw(st.lists(st.sampled_from(ROLE_NAMES), min_size=1, max_size=3, unique=True))
    out = {}
    for r in roles:
        t = draw(
            st.lists(
                st.floats(-1e9, 1e9, allow_nan=False, allow_subnormal=True),
                min_size=1,
                max_size=50,
                unique=True,
            )
        )
        t = sorted(set(t))  # 0.0 and -0.0 are one time
        n = len(t)
        arr = hnp.arrays(np.float64, (n, 3), elements=nice)
        mag = draw(arr) if draw(st.booleans()) else None
        out[r] = SampleBlock(r, np.array(t), draw(arr), draw(arr), mag)
    return out


@HSETTINGS
@given(samples=sample_dicts(), chunk=st.sampled_from([1 << 22, 97, 5]))
def test_round_trip_is_exact(tmp_path, samples, chunk):
    p = tmp_path / "rt.csv"
    n = write_raw_csv(samples, p, overwrite=True)
    assert n == sum(len(b) for b in samples.values())
    with chunk_chars(chunk):
        back = read_raw_csv(p)
    assert list(back) == [r for r in ROLE_NAMES if r in samples]
    for r, b in samples.items():
        assert back[r].equals(b), r
    with reference_only():  # the line-by-line parser reads the same
        ref = read_raw_csv(p)
    assert all(ref[r].equals(back[r]) for r in back)


CORRUPTIONS = ["text", "nan", "missing", "extra", "sensor", "backwards"]


@HSETTINGS
@given(
    samples=sample_dicts(),
    kind=st.sampled_from(CORRUPTIONS),
    data=st.data(),
)
def test_one_corruption_is_named_at_its_line(tmp_path, samples, kind, data):
    p = tmp_path / "c.csv"
    write_raw_csv(samples, p, overwrite=True)
    lines = p.read_text().split("\n")[:-1]
    ncols = len(lines[0].split(","))
    rows = [line.split(",") for line in lines[1:]]
    if kind == "backwards":
        # rows that have an earlier row of the same sensor
        seen: dict[str, int] = {}
        cands = []
        for i, f in enumerate(rows):
            if f[1] in seen:
                cands.append((i, seen[f[1]]))
            seen.setdefault(f[1], i)
        if not cands:
            kind = "sensor"
    i = data.draw(st.integers(0, len(rows) - 1), label="row")
    f = rows[i]
    number_cols = [j for j in range(ncols) if j != 1 and f[j] != ""]
    if kind == "text":
        j = data.draw(st.sampled_from(number_cols))
        f[j] = data.draw(st.sampled_from(["abc", "1.2.3", "", "--1", "1e", "0x1A", "1_000", "e5", "pelvis"]))
        if f[j] == "" and ncols == 11 and j >= 8 and all(f[k] == "" for k in (8, 9, 10)):
            f[j] = "abc"  # three empty mag fields would be valid
    elif kind == "nan":
        j = data.draw(st.sampled_from(number_cols))
        f[j] = data.draw(st.sampled_from(["nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e400"]))
    elif kind == "missing":
        del f[data.draw(st.integers(0, ncols - 1))]
    elif kind == "extra":
        f.insert(data.draw(st.integers(0, ncols)), "1.0")
    elif kind == "sensor":
        f[1] = data.draw(st.sampled_from(["thigh_middle", "", "Pelvis", "shank_left", "pelvis_"]))
    elif kind == "backwards":
        i, earlier = data.draw(st.sampled_from(cands))
        f = rows[i]
        f[0] = rows[earlier][0]  # the first time of this sensor: equal to or before the previous one
    rows[i] = f
    out = [lines[0]] + [",".join(r) for r in rows]
    target = i + 2
    # blank lines, CRLF and a BOM must not shift the line numbers
    nblank = data.draw(st.integers(0, 3), label="blank lines")
    for _ in range(nblank):
        at = data.draw(st.integers(1, len(out)))
        out.insert(at, data.draw(st.sampled_from(["", "  ", "\t"])))
        if at <= target - 1:
            target += 1
    eol = data.draw(st.sampled_from(["\n", "\r\n"]))
    bom = data.draw(st.sampled_from(["", "\ufeff"]))
    p.write_bytes((bom + eol.join(out) + eol).encode())
    with chunk_chars(data.draw(st.sampled_from([1 << 22, 50]), label="chunk")):
        err = csv_error(p)
    assert err.line == target, (kind, str(err))
    assert str(err).startswith(f"{p}:{target}: ")


@HSETTINGS
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes_never_escape(tmp_path, raw):
    check_any_content(tmp_path, raw)


CSVISH = st.lists(
    st.sampled_from(
        list("0123456789.,-+eE \t\r\n\x00\x0b\x1c\xa0\ufeff")
        + ["nan", "inf", "pelvis", "thigh_left", ",,,", "\n0.5,pelvis,", ",1,2,3,4,5,6\n"]
    ),
    max_size=120,
).map("".join)


@HSETTINGS
@given(
    header=st.sampled_from([HEADER, HEADER_MAG, "time_s,sensor", ""]),
    body=CSVISH,
    text=st.text(max_size=80),
)
def test_arbitrary_text_never_escapes(tmp_path, header, body, text):
    check_any_content(tmp_path, (header + "\n" + body + text).encode("utf-8", "surrogatepass"))


def check_any_content(tmp_path: Path, raw: bytes) -> None:
    p = tmp_path / "any.csv"
    p.write_bytes(raw)
    try:
        out = read_raw_csv(p)
    except CsvFormatError as err:
        assert err.path == str(p)
        assert err.line is None or 1 <= err.line <= raw.count(b"\n") + raw.count(b"\r") + 1
        with reference_only():  # both paths report the same first problem
            with pytest.raises(CsvFormatError) as info:
                read_raw_csv(p)
        assert str(info.value) == str(err)
        return
    assert isinstance(out, dict) and out
    assert list(out) == [r for r in ROLE_NAMES if r in out]
    for r, b in out.items():
        assert isinstance(b, SampleBlock) and b.role == r and len(b) > 0
        assert np.isfinite(b.time_s).all() and (np.diff(b.time_s) > 0).all()
        assert np.isfinite(b.acc_m_s2).all() and np.isfinite(b.gyr_rad_s).all()
    with reference_only():
        ref = read_raw_csv(p)
    assert ref.keys() == out.keys() and all(ref[r].equals(out[r]) for r in out)


NUMBERISH = st.text(
    alphabet=st.sampled_from(
        list("0123456789.+-eE_xabfinINFtyAN ")
        + ["\t", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\xa0", "\u2028", "\u3000", "١", "１"]
    ),
    max_size=12,
)


@settings(max_examples=400, deadline=None)
@given(text=NUMBERISH)
def test_number_grammar_matches_numpy_loadtxt(text):
    """The reference parser accepts exactly what the fast path (np.loadtxt) accepts."""
    try:
        rec = csv_io._loadtxt([f"0,{text}"], np.dtype([("a", "f8"), ("b", "f8")]))  # as the fast path
        fast = float(rec["b"][0])
    except ValueError:
        fast = None
    try:
        ref = csv_io._number(text, "acc_x", 1)
    except csv_io._Problem as p:
        ref = p.problem
    if fast is None:
        assert isinstance(ref, str) and ("not a number" in ref or "empty" in ref), (text, ref)
    elif math.isnan(fast):
        assert ref == "column acc_x: NaN", text
    elif math.isinf(fast):
        assert isinstance(ref, str) and "infinite" in ref, text
    else:
        assert ref == fast and math.copysign(1, ref) == math.copysign(1, fast), text
