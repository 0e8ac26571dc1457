"""Angle tables as CSV: ``time_s`` plus the columns of
:data:`hipimu.core.conventions.ANGLE_COLUMNS` (degrees), one row per instant.

Used for the simulator's ground truth now and for measured angles later.
A path ending in ``.gz`` is read and written gzip-compressed.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
from pathlib import Path

import numpy as np

from hipimu.errors import CsvFormatError
from hipimu.storage._atomic import atomic_output

__all__ = ["write_angles_csv", "read_angles_csv"]

#: Rows formatted per string operation when writing.
_BLOCK_ROWS = 2000


def write_angles_csv(table: dict[str, np.ndarray], path: str | os.PathLike[str], *, overwrite: bool = False, decimals: int = 4) -> None:
    """Write columns (all the same length; ``time_s`` first) atomically.

    Times are written with 6 decimals (microseconds), the other columns with
    ``decimals`` (default 4: 0.0001 deg).
    """
    cols = list(table)
    if not cols or cols[0] != "time_s":
        raise ValueError("the first column must be time_s")
    data = np.column_stack([np.asarray(table[c], dtype=np.float64) for c in cols])
    row = ",".join(["%.6f"] + [f"%.{decimals}f"] * (len(cols) - 1)) + "\n"
    with atomic_output(path, overwrite=overwrite) as tmp:
        with _open(Path(path), tmp, "w") as fh:
            fh.write(",".join(cols) + "\n")
            # what np.savetxt(fh, data, fmt, delimiter=",") writes (one % per row),
            # a block of rows per % and write
            for i in range(0, len(data), _BLOCK_ROWS):
                block = data[i : i + _BLOCK_ROWS]
                fh.write((row * len(block)) % tuple(block.ravel().tolist()))


def _open(name: Path, actual: Path, mode: str) -> io.TextIOBase:
    if name.suffix == ".gz":
        return gzip.open(actual, mode + "t", newline="", encoding="utf-8")  # type: ignore[return-value]
    return open(actual, mode, newline="", encoding="utf-8-sig" if mode == "r" else "utf-8")


def read_angles_csv(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read an angle table written by :func:`write_angles_csv` (or a compatible tool)."""
    path = Path(path)
    try:
        with _open(path, path, "r") as fh:
            header = next(csv.reader(fh), None)
            if not header:
                raise CsvFormatError(str(path), None, "empty file")
            data = np.loadtxt(fh, delimiter=",", ndmin=2)
    except OSError as exc:  # includes gzip.BadGzipFile
        raise CsvFormatError(str(path), None, exc.strerror or str(exc)) from exc
    except (ValueError, EOFError) as exc:
        raise CsvFormatError(str(path), None, str(exc)) from exc
    header = [h.strip() for h in header]
    if data.shape[1] != len(header):
        raise CsvFormatError(str(path), 2, f"expected {len(header)} fields, found {data.shape[1]}")
    return {h: data[:, i] for i, h in enumerate(header)}
