"""hipimu's exception tree.

Every error that a user can cause or meet is one of these; the command line
prints ``str(exc)`` on one line and exits with status 2. Third-party errors
(sqlite3, numpy parsing, bleak) are translated once, at the boundary where they
occur, with ``raise HipimuError(...) from exc``.

    HipimuError                 base of everything below
    ├── InputError              the user handed us something unusable
    │   ├── CsvFormatError      a CSV file is malformed (carries line number)
    │   └── UnknownRoleError    a sensor role name that hipimu does not know
    ├── RecordingError          a recording file is missing, corrupt or too new
    ├── DecodeError             a sensor sent bytes that are not protocol v1
    │   └── CommandError        (hipimu.core.protocol) a control request the device must refuse
    ├── SimulationError         a scenario or simulation parameter is invalid
    └── BluetoothError          a sensor link cannot be set up or kept
        ├── BluetoothUnavailableError  no Bluetooth stack or adapter on this computer
        └── SensorNotFoundError        a sensor asked for was not seen or not reachable

Programming errors (calling an API wrongly) stay ordinary ``TypeError`` /
``ValueError``: they are bugs, not user input.
"""

from __future__ import annotations


class HipimuError(Exception):
    """Base class of all errors hipimu reports to a user."""


class InputError(HipimuError):
    """Input supplied by the user (a file, an option value) is unusable."""


class CsvFormatError(InputError):
    """A CSV file is malformed. ``line`` is 1-based, as an editor shows it."""

    def __init__(self, path: str, line: int | None, problem: str):
        self.path = path
        self.line = line
        self.problem = problem
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")


class UnknownRoleError(InputError):
    """A sensor role name hipimu does not know."""


class RecordingError(HipimuError):
    """A recording file cannot be read or written."""


class DecodeError(HipimuError):
    """A sensor sent bytes that are not protocol v1 (the message says how, on one line)."""


class SimulationError(HipimuError):
    """A simulation request cannot be fulfilled (unknown scenario, bad option)."""


class BluetoothError(HipimuError):
    """A BLE sensor link cannot be set up or kept (the message names the sensor)."""


class BluetoothUnavailableError(BluetoothError):
    """No Bluetooth stack (BlueZ, system D-Bus) or no powered adapter."""


class SensorNotFoundError(BluetoothError):
    """A sensor that was asked for did not show up in a scan or did not answer."""
