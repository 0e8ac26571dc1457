"""Per-device sensor calibration files: ``<folder>/<device-id>.json``.

One JSON file per sensor board, found by the board's device id (the format is
described in ``calibration/README.md``; the content is
:meth:`SensorCalibration.to_dict <hipimu.core.sensor_calibration.SensorCalibration.to_dict>`).
Files are written atomically: a crash leaves the old file or none, never half
a file.

Device ids may hold characters a file name cannot (a BLE address has colons):
every character outside ``A-Z a-z 0-9 . _ -`` becomes ``_`` in the file name
(``AA:BB:CC:DD:EE:FF`` -> ``AA_BB_CC_DD_EE_FF.json``). The file keeps the exact
id, and :func:`load_sensor_calibration` refuses a file whose id is not the one
asked for, so two ids that map to the same name can never be confused.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

from hipimu.core.sensor_calibration import SensorCalibration
from hipimu.errors import InputError
from hipimu.storage._atomic import atomic_output

__all__ = [
    "DEFAULT_FOLDER",
    "calibration_file_name",
    "calibration_path",
    "read_sensor_calibration_file",
    "load_sensor_calibration",
    "load_sensor_calibrations",
    "save_sensor_calibration",
]

#: Where ``hipimu calibrate-sensor`` writes by default (relative to the working directory).
DEFAULT_FOLDER = Path("calibration")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
#: Innermost JSON lists of numbers, as json.dumps(indent=2) spreads them over lines.
_NUMBER_LIST = re.compile(r"\[\s+([-+0-9.eE,\s]+?)\s+\]")


def calibration_file_name(device_id: str) -> str:
    """File name of the calibration of ``device_id`` (``<id>.json``, unsafe characters as ``_``)."""
    if not isinstance(device_id, str) or not device_id.strip():
        raise InputError(f"device id must be a non-empty text, got {device_id!r}")
    name = _UNSAFE.sub("_", device_id)
    if name.startswith("."):
        name = "_" + name[1:]  # never a hidden file, never '..'
    return f"{name}.json"


def calibration_path(device_id: str, folder: str | os.PathLike[str] = DEFAULT_FOLDER) -> Path:
    return Path(folder) / calibration_file_name(device_id)


def read_sensor_calibration_file(path: str | os.PathLike[str]) -> SensorCalibration:
    """Read one calibration file; :class:`~hipimu.errors.InputError` if it is unreadable or invalid."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from exc
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from exc
    try:
        return SensorCalibration.from_dict(d)
    except ValueError as exc:
        raise InputError(f"{path}: not a usable sensor calibration: {exc}") from exc


def load_sensor_calibration(
    device_id: str, folder: str | os.PathLike[str] = DEFAULT_FOLDER
) -> SensorCalibration | None:
    """The calibration of ``device_id`` in ``folder``, or None if there is no file for it.

    Raises :class:`~hipimu.errors.InputError` if the file exists but is
    invalid, or holds the calibration of another device.
    """
    path = calibration_path(device_id, folder)
    if not path.exists():
        return None
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a calibration file")
    cal = read_sensor_calibration_file(path)
    if cal.device_id != device_id:
        raise InputError(f"{path}: holds the calibration of device {cal.device_id!r}, not {device_id!r}")
    return cal


def load_sensor_calibrations(
    device_ids: Iterable[str], folder: str | os.PathLike[str] = DEFAULT_FOLDER
) -> dict[str, SensorCalibration]:
    """device id -> calibration for the ids that have a file in ``folder``."""
    out = {}
    for d in device_ids:
        cal = load_sensor_calibration(d, folder)
        if cal is not None:
            out[d] = cal
    return out


def _to_json(cal: SensorCalibration) -> str:
    text = json.dumps(cal.to_dict(), indent=2, ensure_ascii=False, allow_nan=False)
    return _NUMBER_LIST.sub(lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text) + "\n"


def save_sensor_calibration(
    cal: SensorCalibration, folder: str | os.PathLike[str] = DEFAULT_FOLDER, overwrite: bool = False
) -> Path:
    """Write ``<folder>/<device-id>.json`` atomically and return its path.

    ``folder`` is created if missing. Raises :class:`~hipimu.errors.InputError`
    if the file exists and ``overwrite`` is false, or it cannot be written.
    """
    path = calibration_path(cal.device_id, folder)
    try:
        text = _to_json(cal)
    except ValueError as exc:  # NaN or infinity in quality numbers
        raise InputError(f"{path}: calibration of {cal.device_id!r} holds values JSON cannot store ({exc})") from exc
    folder = Path(folder)
    if not folder.is_dir():
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"{folder}: cannot create folder ({exc.strerror or exc})") from exc
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
