"""Raw-sample CSV: read and write the long format (one row per sample per sensor).

The format
----------
::

    time_s,sensor,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z[,mag_x,mag_y,mag_z]
    0.0,pelvis,0.12,9.79,0.03,0.001,-0.002,0.0005[,12.5,-3.1,40.2]
    0.004,thigh_left,...

Units s, m/s^2, rad/s, uT (:data:`~hipimu.core.conventions.RAW_CSV_COLUMNS`,
:data:`~hipimu.core.conventions.RAW_CSV_MAG_COLUMNS`). ``sensor`` is a role name
from :data:`~hipimu.core.conventions.ROLES`. Every sensor has its own sampling
instants; rows of different sensors interleave, and only the times of one sensor
must strictly increase. With mag columns a sensor has mag values on all of its
rows or empty mag fields on all of them (then its ``mag_ut`` is ``None``).

The reader tolerates a UTF-8 byte order mark, CRLF (or CR) line ends, spaces
around fields, blank lines and a missing final newline, and accepts the columns
in any order. Everything else that is wrong raises
:class:`~hipimu.errors.CsvFormatError` naming the file, the 1-based line (as an
editor numbers it, blank lines included) and the problem -- the first problem in
file order. No other exception escapes for any file content.

How it is fast
--------------
The file is read in chunks of about 4 MB. Each chunk goes first through the
*fast path*: numpy's C ``np.loadtxt`` with a structured dtype (one float64 field
per number column, a 16-character string field for ``sensor``), which also checks
that every row has exactly as many fields as the header; then vectorized checks
(known sensor names, finite values, strictly increasing time per sensor, mag
present or absent consistently per sensor). The fast path only ever *accepts*
a chunk. If anything about the chunk is not plainly valid, the chunk goes to the
*reference path* (:func:`_scan_chunk`), a line-by-line Python parser that
implements every rule and raises the first error with its exact line, or
returns the values when the chunk was valid after all (spaces around a sensor
name, whitespace-only lines, spaces inside empty mag fields...). Both paths use
the same number grammar (``_NUMBER``, the grammar ``np.loadtxt`` accepts; the
tests check the two agree), so a file reads the same whichever path a chunk
takes.

Writing
-------
:func:`write_raw_csv` writes every float with Python's shortest round-trip
``repr`` (``0.1``, ``1e-05``, ``-2.5e+300``), so the file reads back bit-exactly,
stays as short as possible and is diff-friendly. The file appears atomically:
it is written to a temporary file next to ``path`` and moved over it with
:func:`os.replace`.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from itertools import repeat
from typing import Iterator

import numpy as np

from hipimu.core.conventions import RAW_CSV_COLUMNS, RAW_CSV_MAG_COLUMNS, ROLES
from hipimu.core.model import SampleBlock
from hipimu.errors import CsvFormatError, InputError
from hipimu.storage._atomic import atomic_output

__all__ = ["read_raw_csv", "write_raw_csv"]

_ROLE_NAMES: tuple[str, ...] = tuple(ROLES)
_ROLE_INDEX: dict[str, int] = {name: k for k, name in enumerate(_ROLE_NAMES)}
_KNOWN_ROLES = ", ".join(_ROLE_NAMES)

_BASE_COLUMNS: tuple[str, ...] = tuple(RAW_CSV_COLUMNS)
_MAG_COLUMNS: tuple[str, ...] = tuple(RAW_CSV_MAG_COLUMNS)
#: The number columns in the order of the value matrix: time, acc xyz, gyr xyz, mag xyz.
_VALUE_COLUMNS: tuple[str, ...] = tuple(c for c in _BASE_COLUMNS if c != "sensor") + _MAG_COLUMNS

#: Characters read per chunk (the last partial line is carried to the next chunk).
_CHUNK_CHARS = 1 << 22
#: Rows formatted per write call.
_WRITE_ROWS = 1 << 16
#: Width of the sensor field in the fast path; a name this long may be truncated.
_SENSOR_WIDTH = 16

#: A number as np.loadtxt reads it (after stripping whitespace): decimal with an
#: optional exponent, or inf / infinity / nan in any case, optionally signed.
_NUMBER = re.compile(
    r"[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)",
    re.IGNORECASE | re.ASCII,
)


# ----------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------


class _Problem(Exception):
    """A problem on one line, raised inside the reference parser."""

    def __init__(self, line: int | None, problem: str):
        super().__init__(problem)
        self.line = line
        self.problem = problem


def _show(text: str, limit: int = 40) -> str:
    """``repr`` of a field for an error message, shortened if long."""
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


@dataclass(frozen=True)
class _Layout:
    """What the header says: column names in file order and where each one is."""

    columns: tuple[str, ...]
    has_mag: bool
    index: dict[str, int]  # column name -> field position
    value_pos: tuple[int, ...]  # field positions of _VALUE_COLUMNS (mag only if has_mag)
    sensor_pos: int
    mag_last: bool  # mag columns are the last three (fast path for empty mag fields)
    dtype_full: np.dtype  # structured dtype, all fields filled
    dtype_nomag: np.dtype  # structured dtype for rows with empty mag fields

    @property
    def ncols(self) -> int:
        return len(self.columns)

    @property
    def nvalues(self) -> int:
        return len(self.value_pos)


def _parse_header(line: str, lineno: int) -> _Layout:
    names = [f.strip() for f in line.split(",")]
    allowed = set(_BASE_COLUMNS) | set(_MAG_COLUMNS)
    if names and _NUMBER.fullmatch(names[0]) and len(names) > 1:
        raise _Problem(lineno, "no header line (expected " + ",".join(_BASE_COLUMNS) + ")")
    for j, name in enumerate(names):
        if not name:
            raise _Problem(lineno, f"column {j + 1} has no name")
        if name not in allowed:
            raise _Problem(lineno, f"unknown column {_show(name)}")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise _Problem(lineno, f"duplicate column {name!r}")
        seen.add(name)
    for name in _BASE_COLUMNS:
        if name not in seen:
            raise _Problem(lineno, f"missing column {name!r}")
    has_mag = any(name in seen for name in _MAG_COLUMNS)
    if has_mag:
        for name in _MAG_COLUMNS:
            if name not in seen:
                raise _Problem(lineno, f"missing column {name!r}")
    index = {name: j for j, name in enumerate(names)}
    value_cols = _VALUE_COLUMNS if has_mag else _VALUE_COLUMNS[:7]
    value_pos = tuple(index[c] for c in value_cols)
    mag_last = has_mag and set(names[-3:]) == set(_MAG_COLUMNS)

    def dtype(mag_type: str) -> np.dtype:
        fields = []
        for name in names:
            if name == "sensor":
                fields.append((name, f"U{_SENSOR_WIDTH}"))
            elif name in _MAG_COLUMNS:
                fields.append((name, mag_type))
            else:
                fields.append((name, "f8"))
        return np.dtype(fields)

    return _Layout(
        columns=tuple(names),
        has_mag=has_mag,
        index=index,
        value_pos=value_pos,
        sensor_pos=index["sensor"],
        mag_last=mag_last,
        dtype_full=dtype("f8"),
        dtype_nomag=dtype("U1"),
    )


@dataclass
class _State:
    """What the reader knows about each sensor from the lines read so far."""

    last_t: list[float] = field(default_factory=lambda: [-math.inf] * len(_ROLE_NAMES))
    has_mag: list[bool | None] = field(default_factory=lambda: [None] * len(_ROLE_NAMES))
    mag_line: list[int] = field(default_factory=lambda: [0] * len(_ROLE_NAMES))  # first line of the sensor
    rows: int = 0


@dataclass
class _Chunk:
    """Parsed rows of one chunk, in file order."""

    lineno: np.ndarray  # (n,) int64, file line of each row
    codes: np.ndarray  # (n,) int8, index into _ROLE_NAMES
    values: np.ndarray  # (n, 7 or 10) float64: time, acc, gyr[, mag] (NaN where no mag)
    mag: np.ndarray  # (n,) bool: the row has mag values


def _number(text: str, column: str, line: int) -> float:
    """One number field by the rules of the format (reference parser)."""
    s = text.strip()
    if not s:
        raise _Problem(line, f"column {column}: empty field")
    if not _NUMBER.fullmatch(s):
        raise _Problem(line, f"column {column}: {_show(s)} is not a number")
    v = float(s)
    if math.isnan(v):
        raise _Problem(line, f"column {column}: NaN")
    if math.isinf(v):
        raise _Problem(line, f"column {column}: infinite value {_show(s)}")
    return v


def _fmt_time_pair(t: float, prev: float) -> tuple[str, str]:
    a, b = f"{t:.6f}", f"{prev:.6f}"
    if a == b:
        a, b = repr(t), repr(prev)
    return a, b


def _check_time(k: int, t: float, state: _State, line: int) -> None:
    prev = state.last_t[k]
    if t > prev:
        return
    name = _ROLE_NAMES[k]
    if t == prev:
        raise _Problem(line, f"time does not increase for sensor {name} ({t:.6f} s twice)")
    a, b = _fmt_time_pair(t, prev)
    raise _Problem(line, f"time goes backwards for sensor {name} ({a} s after {b} s)")


def _check_mag(k: int, has: bool, state: _State, line: int) -> None:
    known = state.has_mag[k]
    if known is None:
        state.has_mag[k] = has
        state.mag_line[k] = line
        return
    if known != has:
        name = _ROLE_NAMES[k]
        first = state.mag_line[k]
        if has:
            raise _Problem(
                line, f"sensor {name} has mag values here but empty mag fields on line {first}"
            )
        raise _Problem(line, f"sensor {name} has empty mag fields here but mag values on line {first}")


def _scan_chunk(lines: list[str], first: int, layout: _Layout, state: _State) -> _Chunk:
    """Reference parser: every rule, line by line; raises the first problem.

    ``first`` is the file line number of ``lines[0]``. Updates ``state`` only
    when the whole chunk is valid.
    """
    work = _State(list(state.last_t), list(state.has_mag), list(state.mag_line), state.rows)
    ncols = layout.ncols
    sensor_pos = layout.sensor_pos
    base_pos = [(layout.columns[j], j) for j in layout.value_pos[:7]]
    mag_pos = [(layout.columns[j], j) for j in layout.value_pos[7:]]
    linenos: list[int] = []
    codes: list[int] = []
    rows: list[list[float]] = []
    mags: list[bool] = []
    nan3 = [math.nan] * 3
    mag_names = {c for c, _ in mag_pos}
    for i, line in enumerate(lines):
        lineno = first + i
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) != ncols:
            raise _Problem(lineno, f"expected {ncols} fields, found {len(fields)}")
        name = fields[sensor_pos].strip()
        k = _ROLE_INDEX.get(name)
        if k is None:
            if not name:
                raise _Problem(lineno, f"empty sensor name (known: {_KNOWN_ROLES})")
            raise _Problem(lineno, f"unknown sensor {_show(name)} (known: {_KNOWN_ROLES})")
        # Number fields in file order; blank mag fields are allowed (all or none).
        vals: dict[str, float] = {}
        blank_mag: list[str] = []
        for j, column in enumerate(layout.columns):
            if j == sensor_pos:
                continue
            if column in mag_names and not fields[j].strip():
                blank_mag.append(column)
                continue
            vals[column] = _number(fields[j], column, lineno)
        if blank_mag and len(blank_mag) != len(mag_pos):
            filled = [c for c, _ in mag_pos if c not in blank_mag]
            raise _Problem(
                lineno,
                f"mag fields must be all empty or all filled ({', '.join(blank_mag)} empty, "
                f"{', '.join(filled)} not)",
            )
        t = vals["time_s"]
        _check_time(k, t, work, lineno)
        has_mag = bool(mag_pos) and not blank_mag
        if mag_pos:
            _check_mag(k, has_mag, work, lineno)
        work.last_t[k] = t
        row = [vals[c] for c, _ in base_pos]
        if mag_pos:
            row += [vals[c] for c, _ in mag_pos] if has_mag else nan3
        linenos.append(lineno)
        codes.append(k)
        rows.append(row)
        mags.append(has_mag)
    state.last_t, state.has_mag, state.mag_line = work.last_t, work.has_mag, work.mag_line
    n = len(rows)
    state.rows += n
    return _Chunk(
        np.asarray(linenos, dtype=np.int64),
        np.asarray(codes, dtype=np.int8),
        np.asarray(rows, dtype=np.float64).reshape(n, layout.nvalues),
        np.asarray(mags, dtype=bool),
    )


def _loadtxt(lines: list[str], dtype: np.dtype) -> np.ndarray:
    return np.loadtxt(lines, dtype=dtype, delimiter=",", comments=None, quotechar=None, ndmin=1)


def _sensor_codes(names: np.ndarray) -> np.ndarray | None:
    """Role index per row, or None if any name is not plainly a known role."""
    codes = np.full(names.shape[0], -1, dtype=np.int8)
    for k, role_name in enumerate(_ROLE_NAMES):
        codes[names == role_name] = k
    bad = codes < 0
    if bad.any():
        # Spaces or tabs around the name: strip, unless the name may have been
        # cut to the field width (then the reference parser decides).
        odd = names[bad]
        if (np.strings.str_len(odd) >= _SENSOR_WIDTH).any():
            return None
        stripped = np.strings.strip(odd, " \t")
        sub = np.full(odd.shape[0], -1, dtype=np.int8)
        for k, role_name in enumerate(_ROLE_NAMES):
            sub[stripped == role_name] = k
        if (sub < 0).any():
            return None
        codes[bad] = sub
    return codes


def _fast_chunk(
    lines: list[str], first: int, layout: _Layout, state: _State, maybe_empty_mag: bool
) -> _Chunk | None:
    """Vectorized parse and check of a chunk; None unless the chunk is plainly valid.

    ``maybe_empty_mag``: some lines may end in three empty mag fields (``,,,``).
    """
    lineno = np.arange(first, first + len(lines), dtype=np.int64)
    if "" in lines:  # blank lines (whitespace-only lines go to the reference parser)
        keep = np.fromiter(map(bool, lines), dtype=bool, count=len(lines))
        lines = [line for line in lines if line]
        lineno = lineno[keep]
    n = len(lines)
    if n == 0:
        return _Chunk(lineno, np.zeros(0, np.int8), np.zeros((0, layout.nvalues)), np.zeros(0, bool))
    value_names = [layout.columns[j] for j in layout.value_pos]
    values = np.empty((n, layout.nvalues), dtype=np.float64)
    mag = np.ones(n, dtype=bool) if layout.has_mag else np.zeros(n, dtype=bool)
    try:
        if maybe_empty_mag:
            empty = np.fromiter(map(str.endswith, lines, repeat(",,,")), dtype=bool, count=n)
        else:
            empty = None
        if empty is None or not empty.any():
            rec = _loadtxt(lines, layout.dtype_full)
            names = rec["sensor"]
            for c, col in enumerate(value_names):
                values[:, c] = rec[col]
        else:
            mag = ~empty
            full_idx = np.flatnonzero(mag)
            none_idx = np.flatnonzero(empty)
            names = np.empty(n, dtype=f"U{_SENSOR_WIDTH}")
            values[none_idx, 7:] = np.nan
            if full_idx.size:
                rec = _loadtxt([lines[i] for i in full_idx.tolist()], layout.dtype_full)
                names[full_idx] = rec["sensor"]
                for c, col in enumerate(value_names):
                    values[full_idx, c] = rec[col]
            rec = _loadtxt([lines[i] for i in none_idx.tolist()], layout.dtype_nomag)
            names[none_idx] = rec["sensor"]
            for c, col in enumerate(value_names[:7]):
                values[none_idx, c] = rec[col]
    except Exception:  # any parse problem: the reference parser finds and names it
        return None
    codes = _sensor_codes(names)
    if codes is None:
        return None
    if not np.isfinite(values[:, :7]).all() or not np.isfinite(values[mag, 7:]).all():
        return None
    t = values[:, 0]
    new_last = list(state.last_t)
    new_mag = list(state.has_mag)
    new_line = list(state.mag_line)
    for k in range(len(_ROLE_NAMES)):
        sel = np.flatnonzero(codes == k)
        if sel.size == 0:
            continue
        tk = t[sel]
        if not (tk[0] > new_last[k] and (np.diff(tk) > 0).all()):
            return None
        new_last[k] = float(tk[-1])
        if layout.has_mag:
            mk = mag[sel]
            has = bool(mk[0])
            if (mk != has).any() or (new_mag[k] is not None and new_mag[k] != has):
                return None
            if new_mag[k] is None:
                new_mag[k] = has
                new_line[k] = int(lineno[sel[0]])
    state.last_t, state.has_mag, state.mag_line = new_last, new_mag, new_line
    state.rows += n
    return _Chunk(lineno, codes, values, mag)


def _parse_chunk(body: str, first: int, layout: _Layout, state: _State) -> _Chunk:
    """Parse the lines in ``body`` (``first`` is the line number of its first line).

    The fast path if it accepts the chunk, else the reference parser. Chunks
    with NUL characters, which a numpy string field would silently drop from a
    sensor name, go straight to the reference parser.
    """
    lines = body.split("\n")
    chunk = None
    if "\x00" not in body:
        maybe_empty_mag = layout.mag_last and (",,,\n" in body or body.endswith(",,,"))
        chunk = _fast_chunk(lines, first, layout, state, maybe_empty_mag)
    if chunk is None:
        chunk = _scan_chunk(lines, first, layout, state)
    return chunk


def _text_chunks(f, first_line: int) -> Iterator[tuple[str, int]]:
    """A text file in chunks of whole lines.

    Yields (text without its final newline, line number of its first line).
    """
    carry = ""
    line = first_line
    while True:
        block = f.read(_CHUNK_CHARS)
        if not block:
            break
        text = carry + block if carry else block
        cut = text.rfind("\n")
        if cut < 0:
            carry = text
            continue
        carry = text[cut + 1 :]
        body = text[:cut]
        yield body, line
        line += body.count("\n") + 1
    if carry:
        yield carry, line


def _undecodable(path: str) -> str:
    """Describe where a file stops being UTF-8 (called after a decode error)."""
    try:
        with open(path, "rb") as fb:
            raw = fb.read()
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        s = exc.start
        line = raw.count(b"\n", 0, s) + raw.count(b"\r", 0, s) - raw.count(b"\r\n", 0, s) + 1
        return f"not UTF-8 text (byte 0x{raw[s]:02x} on line {line})"
    except OSError:
        pass
    return "not UTF-8 text"


def _split_by_sensor(chunk: _Chunk, pieces: list[list[np.ndarray]]) -> None:
    """Append each sensor's rows of ``chunk`` (a (n_k, 7 or 10) array) to ``pieces[k]``."""
    codes = chunk.codes
    if codes.size == 0:
        return
    if (codes == codes[0]).all():
        pieces[int(codes[0])].append(chunk.values)
        return
    for k in range(len(_ROLE_NAMES)):
        sel = codes == k
        if sel.any():
            pieces[k].append(chunk.values[sel])


def _assemble(pieces: list[list[np.ndarray]], state: _State) -> dict[str, SampleBlock]:
    """One SampleBlock per sensor from its row pieces (emptied as it goes, to save memory)."""
    out: dict[str, SampleBlock] = {}
    for k, role_name in enumerate(_ROLE_NAMES):
        parts = pieces[k]
        if not parts:
            continue

        def column(a: int, b: int) -> np.ndarray:
            return np.concatenate([p[:, a:b] for p in parts]) if len(parts) > 1 else parts[0][:, a:b].copy()

        t = column(0, 1)[:, 0]
        acc, gyr = column(1, 4), column(4, 7)
        mag = column(7, 10) if state.has_mag[k] else None
        parts.clear()
        out[role_name] = SampleBlock(role_name, t, acc, gyr, mag, None)
    return out


def read_raw_csv(path: str | os.PathLike) -> dict[str, SampleBlock]:
    """Read a raw-sample CSV file (see the module docstring for the format).

    Returns one :class:`SampleBlock` per sensor in the file, keys in the
    canonical order of ``ROLES``, ``seq`` None, values exactly as written.

    Raises
    ------
    CsvFormatError
        For anything wrong with the file, with the 1-based line of the first
        problem (``line`` None for whole-file problems: missing, unreadable,
        not UTF-8, empty, no samples).
    """
    spath = os.fsdecode(path)
    state = _State()
    pieces: list[list[np.ndarray]] = [[] for _ in _ROLE_NAMES]
    try:
        # utf-8-sig drops a leading BOM; newline=None maps CRLF and CR to LF.
        with open(spath, encoding="utf-8-sig", newline=None) as f:
            lineno = 0
            header = ""
            while True:
                raw_line = f.readline()
                if not raw_line:
                    raise CsvFormatError(spath, None, "empty file")
                lineno += 1
                header = raw_line.rstrip("\n")
                if header.strip():
                    break
            layout = _parse_header(header, lineno)
            for body, first in _text_chunks(f, lineno + 1):
                chunk = _parse_chunk(body, first, layout, state)
                _split_by_sensor(chunk, pieces)
    except _Problem as p:
        raise CsvFormatError(spath, p.line, p.problem) from None
    except FileNotFoundError:
        raise CsvFormatError(spath, None, "file not found") from None
    except IsADirectoryError:
        raise CsvFormatError(spath, None, "is a directory, not a file") from None
    except PermissionError:
        raise CsvFormatError(spath, None, "permission denied") from None
    except UnicodeDecodeError:
        raise CsvFormatError(spath, None, _undecodable(spath)) from None
    except OSError as exc:
        raise CsvFormatError(spath, None, f"cannot read ({exc.strerror or exc})") from None
    if state.rows == 0:
        raise CsvFormatError(spath, None, "no samples (header only)")
    return _assemble(pieces, state)


# ----------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------


def _check_samples(samples: dict[str, SampleBlock]) -> list[SampleBlock]:
    if not isinstance(samples, dict):
        raise TypeError(f"samples must be a dict of role -> SampleBlock, not {type(samples).__name__}")
    for key, blk in samples.items():
        if not isinstance(blk, SampleBlock):
            raise TypeError(f"samples[{key!r}] is a {type(blk).__name__}, not a SampleBlock")
        if key != blk.role:
            raise ValueError(f"samples[{key!r}] holds a block of {blk.role!r}")
        if key not in ROLES:
            raise ValueError(f"unknown sensor {key!r} (known: {_KNOWN_ROLES})")
    blocks = [samples[r] for r in _ROLE_NAMES if r in samples and len(samples[r])]
    if not blocks:
        raise ValueError("no samples to write (a header-only file is not a valid raw CSV)")
    for b in blocks:  # (SampleBlock itself refuses NaN and infinity)
        if len(b) > 1 and not (np.diff(b.time_s) > 0).all():
            raise ValueError(f"sensor {b.role}: time_s must strictly increase")
    return blocks


def _write_rows(f, blocks: list[SampleBlock], with_mag: bool) -> int:
    """Write the data rows of ``blocks`` merged in time order; returns the row count."""
    t = np.concatenate([b.time_s for b in blocks])
    # Stable sort of the role-ordered concatenation: ties keep canonical role order.
    order = np.argsort(t, kind="stable")
    codes = np.concatenate([np.full(len(b), k, dtype=np.intp) for k, b in enumerate(blocks)])
    names = np.array([b.role for b in blocks], dtype=object)
    v = np.concatenate([np.hstack([b.time_s[:, None], b.acc_m_s2, b.gyr_rad_s]) for b in blocks])
    if with_mag:
        m = np.concatenate([b.mag_ut if b.mag_ut is not None else np.zeros((len(b), 3)) for b in blocks])
        has = np.concatenate([np.full(len(b), b.mag_ut is not None) for b in blocks])
    row_fmt = "%r,%s,%r,%r,%r,%r,%r,%r" + (",%s" if with_mag else "")
    n = t.shape[0]
    for start in range(0, n, _WRITE_ROWS):
        idx = order[start : start + _WRITE_ROWS]
        vc = v[idx].T.tolist()
        cols = [vc[0], names[codes[idx]].tolist(), *vc[1:]]
        if with_mag:
            mc = m[idx].T.tolist()
            mag_text = np.array(list(map("%r,%r,%r".__mod__, zip(*mc))), dtype=object)
            mag_text[~has[idx]] = ",,"
            cols.append(mag_text.tolist())
        f.write("\n".join(map(row_fmt.__mod__, zip(*cols))))
        f.write("\n")
    return n


def write_raw_csv(samples: dict[str, SampleBlock], path: str | os.PathLike, *, overwrite: bool = False) -> int:
    """Write ``samples`` as a raw-sample CSV; returns the number of data rows.

    The header has the mag columns iff any sensor has mag (sensors without get
    empty mag fields). Rows of all sensors are merged in time order, ties in the
    canonical role order. Floats are written as Python's shortest round-trip
    ``repr``, so :func:`read_raw_csv` gives back exactly the same arrays
    (``seq`` is not part of the format and is not written). Empty blocks are
    skipped.

    The file is written to a temporary file in the same directory and moved to
    ``path`` with :func:`os.replace`; if anything fails, ``path`` is untouched
    and the temporary file is removed.

    Raises
    ------
    TypeError, ValueError
        ``samples`` is not a role -> SampleBlock dict, holds no samples, or holds
        values the format cannot represent (NaN, infinity, times that do not
        strictly increase).
    InputError
        The file cannot be written (missing directory, permission, disk full).
    """
    blocks = _check_samples(samples)
    with_mag = any(b.mag_ut is not None for b in blocks)
    with atomic_output(path, overwrite=overwrite) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            header = _BASE_COLUMNS + (_MAG_COLUMNS if with_mag else ())
            f.write(",".join(header) + "\n")
            return _write_rows(f, blocks, with_mag)
