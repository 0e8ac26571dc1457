"""The one place that talks to bleak: scanning, connecting, error translation.

Everything above this module sees hipimu's own types and errors. ``backend``
is a :class:`Backend` naming bleak backend classes (None: bleak's platform
default, i.e. BlueZ on Linux); the simulated backend of demo mode plugs in
here and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hipimu.core.protocol import DEVICE_NAME_PREFIX, SERVICE_UUID
from hipimu.errors import BluetoothError, BluetoothUnavailableError

__all__ = ["Backend", "Advert", "bluetooth_errors", "scan", "connect"]


@dataclass(frozen=True)
class Backend:
    """bleak backend classes; None fields use bleak's default for the platform."""

    scanner: type | None = None
    client: type | None = None

    def scanner_kwargs(self) -> dict[str, Any]:
        return {} if self.scanner is None else {"backend": self.scanner}

    def client_kwargs(self) -> dict[str, Any]:
        return {} if self.client is None else {"backend": self.client}


@dataclass
class Advert:
    """A hipimu board seen advertising."""

    address: str
    name: str
    rssi_dbm: float
    device: Any  #: bleak's BLEDevice, for connecting
    seen_s: float  #: host monotonic time of the last advertisement


def _unavailable(exc: BaseException) -> BluetoothUnavailableError | None:
    """The user-facing reason when ``exc`` means there is no usable Bluetooth."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, FileNotFoundError) or "No such file or directory" in text:
        # dbus-fast raises a bare FileNotFoundError when the system bus socket is missing
        return BluetoothUnavailableError(
            "no Bluetooth stack: the system D-Bus is not running (on Linux install and start BlueZ: "
            "'systemctl start bluetooth'), or try 'hipimu record --simulate'"
        )
    if "ServiceUnknown" in text or "org.bluez was not provided" in text:
        return BluetoothUnavailableError("no Bluetooth stack: BlueZ (bluetoothd) is not running ('systemctl start bluetooth')")
    if "No Bluetooth adapters found" in text or "adapter" in text.lower() and "not found" in text.lower():
        return BluetoothUnavailableError("no Bluetooth adapter found (plug in or enable one; 'bluetoothctl list')")
    if "NotReady" in text or "not powered" in text.lower() or "Resource Not Ready" in text:
        return BluetoothUnavailableError("the Bluetooth adapter is off ('bluetoothctl power on')")
    if "NotAuthorized" in text or "AccessDenied" in text or "PermissionError" in text:
        return BluetoothUnavailableError("not allowed to use Bluetooth (add your user to the 'bluetooth' group)")
    return None


@contextlib.contextmanager
def bluetooth_errors(what: str):
    """Translate bleak/D-Bus/OS errors raised inside into one-line hipimu errors."""
    try:
        yield
    except BluetoothError:
        raise
    except (OSError, EOFError) as exc:
        raise (_unavailable(exc) or BluetoothError(f"{what}: {exc}")) from exc
    except Exception as exc:  # bleak's errors (BleakError, BleakDBusError, ...) have no common base we may import lazily
        if type(exc).__module__.startswith(("bleak", "dbus_fast")):
            raise (_unavailable(exc) or BluetoothError(f"{what}: {exc}")) from exc
        raise


async def scan(
    backend: Backend,
    *,
    timeout_s: float,
    until: Callable[[dict[str, Advert]], bool] | None = None,
    on_advert: Callable[[Advert], None] | None = None,
) -> dict[str, Advert]:
    """Scan for hipimu boards (service-UUID filter) for up to ``timeout_s``;
    stop early when ``until(found)`` is true. Returns address -> Advert."""
    found: dict[str, Advert] = {}
    done = asyncio.Event()
    async with _scan_lock():
        await _scan(backend, found, done, timeout_s, until, on_advert)
    return found


_SCAN_LOCKS: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]" = weakref.WeakKeyDictionary()


def _scan_lock() -> asyncio.Lock:
    """One scan at a time per event loop: BlueZ refuses a second discovery from
    the same D-Bus connection (org.bluez.Error.InProgress), and bleak shares one."""
    loop = asyncio.get_running_loop()
    lock = _SCAN_LOCKS.get(loop)
    if lock is None:
        lock = _SCAN_LOCKS[loop] = asyncio.Lock()
    return lock


async def _scan(backend: Backend, found: dict[str, Advert], done: asyncio.Event, timeout_s: float,
                until: Callable[[dict[str, Advert]], bool] | None, on_advert: Callable[[Advert], None] | None) -> None:
    from bleak import BleakScanner

    def detected(device: Any, adv: Any) -> None:
        name = adv.local_name or device.name or ""
        if SERVICE_UUID not in [u.lower() for u in (adv.service_uuids or [])] and not name.startswith(DEVICE_NAME_PREFIX):
            return  # BlueZ may report devices outside the filter (cached)
        a = Advert(device.address, name, float(adv.rssi) if adv.rssi is not None else float("nan"), device, time.monotonic())
        old = found.get(a.address)
        if old is not None and not a.name:
            a.name = old.name  # a scan response without the name must not erase it
        found[a.address] = a
        if on_advert is not None:
            on_advert(a)
        if until is not None and until(found):
            done.set()

    with bluetooth_errors("scanning"):
        scanner = BleakScanner(detected, service_uuids=[SERVICE_UUID], **backend.scanner_kwargs())
        await scanner.start()
        try:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(done.wait(), timeout_s)
        finally:
            await scanner.stop()


async def connect(backend: Backend, advert: Advert, disconnected: Callable[[Any], None], *, attempts: int = 3) -> Any:
    """A connected BleakClient for ``advert`` (bleak-retry-connector: retries
    transient failures with its own backoff)."""
    from bleak import BleakClient
    from bleak_retry_connector import establish_connection

    with bluetooth_errors(f"connecting to {advert.name or advert.address}"):
        return await establish_connection(
            BleakClient,
            advert.device,
            advert.name or advert.address,
            disconnected_callback=disconnected,
            max_attempts=attempts,
            **backend.client_kwargs(),
        )

