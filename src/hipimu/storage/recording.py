"""The hipimu recording file: one SQLite database per session.

Layout, version rules and the reasons for SQLite are in
``docs/recording-format.md``; this module is the only code that touches the
file. In short:

* ``meta``                key -> JSON value: format name and version, the session
                          metadata, the channel table (dtype and width of every
                          sample column).
* ``devices``             role -> device id and :class:`DeviceInfo` as JSON.
* ``sensor_calibration``  device id -> the per-device calibration in force.
* ``chunks``              raw samples: one row = consecutive samples of one
                          sensor, each channel a little-endian BLOB.
* ``events``              timestamped point events.
* ``results``             name -> JSON of a result derived from the session.

While recording the database is in WAL mode and every :meth:`flush` is one
transaction: a process killed at any instant leaves a file that opens with
everything up to the last flush (at most ``flush_interval_s`` old, default
0.5 s). :meth:`RecordingWriter.close` checkpoints and returns the file to a
single self-contained file (rollback-journal mode).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from hipimu import __version__
from hipimu.core.conventions import EVENT_KINDS, ROLES
from hipimu.core.model import DeviceInfo, Event, SampleBlock, Session, SessionInfo, concat_blocks
from hipimu.errors import RecordingError
from hipimu.storage._atomic import atomic_output, remove_with_sidecars

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "RecordingWriter",
    "load_session",
    "save_session",
    "store_result",
]

FORMAT_NAME = "hipimu-recording"
#: Bumped when the layout changes. A reader refuses files whose
#: ``min_reader_version`` is above the version it implements.
FORMAT_VERSION = 2

#: Sample channels: column name -> (dtype, values per sample). Stored in
#: ``meta.channels`` too, so that a reader decodes by the file's own table.
CHANNELS: dict[str, tuple[str, int]] = {
    "time_s": ("<f8", 1),
    "acc_m_s2": ("<f8", 3),
    "gyr_rad_s": ("<f8", 3),
    "mag_ut": ("<f8", 3),
    "seq": ("<i8", 1),
    "device_time_s": ("<f8", 1),
}
#: Every BLOB is zlib-compressed (level 1: ~3x smaller for IMU data, ~70 MB/s
#: to compress, far more than a live session needs). ``"none"`` is also read.
CODEC = "zlib"
_ZLIB_LEVEL = 1

#: How long a writer waits for a reader that holds the file, ms.
_BUSY_TIMEOUT_MS = 2000


def _channel_table() -> dict[str, dict[str, Any]]:
    """The ``meta.channels`` entry this version writes."""
    return {k: {"dtype": d, "width": w, "codec": CODEC} for k, (d, w) in CHANNELS.items()}


#: Largest chunk written in one row (samples). Live flushes are far smaller.
MAX_CHUNK_SAMPLES = 8192

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS devices (role TEXT PRIMARY KEY, device_id TEXT NOT NULL, info TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sensor_calibration (device_id TEXT PRIMARY KEY, calibration TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    role TEXT NOT NULL,
    n INTEGER NOT NULL,
    t_first_s REAL NOT NULL,
    t_last_s REAL NOT NULL,
    time_s BLOB NOT NULL,
    acc_m_s2 BLOB NOT NULL,
    gyr_rad_s BLOB NOT NULL,
    mag_ut BLOB,
    seq BLOB,
    device_time_s BLOB
);
CREATE INDEX IF NOT EXISTS chunks_by_role ON chunks (role, id);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    time_s REAL NOT NULL,
    kind TEXT NOT NULL,
    label TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS results (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _blob(a: np.ndarray, channel: str) -> bytes:
    dtype, _ = CHANNELS[channel]
    return zlib.compress(np.ascontiguousarray(a, dtype=dtype).tobytes(), _ZLIB_LEVEL)


class RecordingWriter:
    """Appends a session to a recording file, crash-safely.

    Use as a context manager::

        with RecordingWriter(path, info) as rec:
            rec.add_device(dev)
            rec.append(block)          # buffered; committed at least every flush_interval_s
            rec.add_event(Event(...))  # committed at once, with everything buffered

    Parameters
    ----------
    path:
        The file to create. It must not exist unless ``overwrite`` is true.
    info:
        Session metadata; ``software_version`` and ``created_utc`` are filled in
        when empty.
    flush_interval_s:
        Longest time, in wall-clock seconds, that appended samples stay in
        memory before they are committed. A background thread commits on this
        interval whatever the caller is doing (a stalled source, a blocked UI),
        so a crash loses at most about this much. ``inf`` disables the thread
        (bulk writes that commit at close).

    Every commit is synced to disk (``synchronous=FULL``), so the guarantee
    holds for a power cut or an OS crash too, not only for a killed process.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        info: SessionInfo,
        *,
        overwrite: bool = False,
        flush_interval_s: float = 0.5,
    ) -> None:
        self.path = Path(path)
        self.flush_interval_s = flush_interval_s
        info = SessionInfo.from_dict(info.to_dict())  # our own copy: filled in below
        if self.path.exists():
            if not overwrite:
                raise RecordingError(f"{self.path}: already exists (choose another name or overwrite)")
            remove_with_sidecars(self.path)
        if not self.path.parent.is_dir():
            raise RecordingError(f"{self.path.parent}: no such directory")
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise RecordingError(f"{self.path}: cannot create recording: {exc}") from exc
        try:
            # Readers (a replay of this session, 'hipimu info') may hold the file briefly.
            self._db.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: each commit is fsynced to the WAL, so a power cut or an OS
            # crash also loses at most one flush interval (NORMAL would only
            # protect against a killed process). Two fsyncs a second are cheap.
            self._db.execute("PRAGMA synchronous=FULL")
            with self._transaction():
                for stmt in _SCHEMA.strip().split(";"):
                    if stmt.strip():
                        self._db.execute(stmt)
                if not info.software_version:
                    info.software_version = f"hipimu {__version__}"
                if not info.created_utc:
                    info.created_utc = _utc_now()
                self._put_meta("format", FORMAT_NAME)
                self._put_meta("format_version", FORMAT_VERSION)
                self._put_meta("min_reader_version", 1)
                self._put_meta("channels", _channel_table())
                self._put_meta("session", info.to_dict())
        except sqlite3.Error as exc:
            self._db.close()
            remove_with_sidecars(self.path)  # no stub left to block a retry
            raise RecordingError(f"{self.path}: cannot create recording: {exc}") from exc
        self._info = info
        self._buffers: dict[str, list[SampleBlock]] = {}
        self._last_time: dict[str, float] = {}
        self._has_mag: dict[str, bool] = {}
        self._last_flush = time.monotonic()
        self._closed = False
        self.samples_written: dict[str, int] = {}
        self._stop_flusher = threading.Event()
        self._flusher: threading.Thread | None = None
        if np.isfinite(flush_interval_s):
            self._flusher = threading.Thread(target=self._flush_loop, name="hipimu-recording-flush", daemon=True)
            self._flusher.start()

    def _flush_loop(self) -> None:
        """Commit whenever the oldest uncommitted sample may be flush_interval_s old."""
        timeout = self.flush_interval_s
        while not self._stop_flusher.wait(timeout):
            with self._lock:
                if self._closed:
                    return
                due = self._last_flush + self.flush_interval_s - time.monotonic()
                if due <= 0:
                    if self._buffers:
                        try:
                            self._flush()
                        except RecordingError:
                            pass  # samples stay buffered; the caller's next call reports it
                    else:
                        self._last_flush = time.monotonic()
                    due = self.flush_interval_s
                timeout = max(due, 0.005)

    # -- context manager -------------------------------------------------

    def __enter__(self) -> "RecordingWriter":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN ... COMMIT; on any error roll back (if SQLite has not already)
        and re-raise the original error, so the next transaction can start."""
        self._db.execute("BEGIN")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            raise

    def _put_meta(self, key: str, value: Any) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("recording is closed")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            self._check_open()
            yield

    def update_info(self, info: SessionInfo) -> None:
        """Replace the session metadata (e.g. notes typed during the session).

        ``created_utc`` and ``software_version`` keep their recorded values
        when ``info`` leaves them empty.
        """
        info = SessionInfo.from_dict(info.to_dict())
        info.created_utc = info.created_utc or self._info.created_utc
        info.software_version = info.software_version or self._info.software_version
        with self._locked(), self._transaction():
            self._put_meta("session", info.to_dict())
            self._info = info

    def add_device(self, device: DeviceInfo) -> None:
        """Record (or replace) the device worn in ``device.role``."""
        with self._locked(), self._transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO devices (role, device_id, info) VALUES (?, ?, ?)",
                (device.role, device.device_id, json.dumps(device.to_dict())),
            )

    def set_sensor_calibration(self, device_id: str, calibration: dict[str, Any]) -> None:
        """Record the per-device sensor calibration in force for ``device_id``."""
        with self._locked(), self._transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO sensor_calibration (device_id, calibration) VALUES (?, ?)",
                (device_id, json.dumps(calibration)),
            )

    def set_result(self, name: str, value: Any) -> None:
        """Store a derived result (JSON-able) under ``name``, replacing any earlier one."""
        with self._locked(), self._transaction():
            self._db.execute("INSERT OR REPLACE INTO results (name, value) VALUES (?, ?)", (name, json.dumps(value)))

    def append(self, block: SampleBlock) -> None:
        """Buffer a block of raw samples; commit if the flush interval has passed.

        Within a sensor, time must increase strictly from block to block and
        the mag channel must be present in all blocks or none.
        """
        with self._locked():
            self._append(block)

    def _append(self, block: SampleBlock) -> None:
        if len(block) == 0:
            return
        t = block.time_s
        if np.any(np.diff(t) <= 0):
            raise ValueError(f"{block.role}: time_s must increase strictly within a block")
        last = self._last_time.get(block.role)
        if last is not None and t[0] <= last:
            raise ValueError(f"{block.role}: block starts at {t[0]:.6f} s, not after {last:.6f} s")
        if self._has_mag.setdefault(block.role, block.has_mag) != block.has_mag:
            raise ValueError(f"{block.role}: mag channel present in some blocks only")
        self._last_time[block.role] = float(t[-1])
        self._buffers.setdefault(block.role, []).append(block)
        if time.monotonic() - self._last_flush >= self.flush_interval_s:
            self._flush()

    def add_event(self, event: Event) -> None:
        """Record an event; commits at once, together with all buffered samples."""
        with self._locked():
            self._flush(extra_events=[event])

    def add_events(self, events: list[Event]) -> None:
        """Record several events in one commit, with all buffered samples."""
        with self._locked():
            self._flush(extra_events=events)

    def flush(self) -> None:
        """Commit all buffered samples in one transaction."""
        with self._locked():
            self._flush()

    def _flush(self, extra_events: list[Event] | None = None) -> None:
        buffers, self._buffers = self._buffers, {}
        rows = []
        for role_name, blocks in buffers.items():
            blk = concat_blocks(blocks)
            for i in range(0, len(blk), MAX_CHUNK_SAMPLES):
                part = blk.slice(i, i + MAX_CHUNK_SAMPLES)
                rows.append(
                    (
                        role_name,
                        len(part),
                        float(part.time_s[0]),
                        float(part.time_s[-1]),
                        _blob(part.time_s, "time_s"),
                        _blob(part.acc_m_s2, "acc_m_s2"),
                        _blob(part.gyr_rad_s, "gyr_rad_s"),
                        None if part.mag_ut is None else _blob(part.mag_ut, "mag_ut"),
                        None if part.seq is None else _blob(part.seq, "seq"),
                        None if part.device_time_s is None else _blob(part.device_time_s, "device_time_s"),
                    )
                )
        try:
            with self._transaction():
                self._db.executemany(
                    "INSERT INTO chunks (role, n, t_first_s, t_last_s, time_s, acc_m_s2, gyr_rad_s, mag_ut, seq,"
                    " device_time_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                for ev in extra_events or ():
                    self._db.execute(
                        "INSERT INTO events (time_s, kind, label, data) VALUES (?, ?, ?, ?)",
                        (float(ev.time_s), ev.kind, ev.label, json.dumps(ev.data)),
                    )
        except sqlite3.Error as exc:
            # Keep the samples so that a later flush (e.g. after freeing disk) can retry.
            for role_name, blocks in buffers.items():
                self._buffers.setdefault(role_name, [])[:0] = blocks
            raise RecordingError(f"{self.path}: cannot write: {exc}") from exc
        for row in rows:
            self.samples_written[row[0]] = self.samples_written.get(row[0], 0) + row[1]
        self._last_flush = time.monotonic()

    def retime(self, maps: dict[str, Any]) -> dict[str, float]:
        """Re-map the sample times of sensors recorded with device times.

        ``maps``: role -> callable taking ``device_time_s`` (array) and
        returning the new ``time_s`` (session time base, strictly increasing
        for increasing input). Used at the end of a live recording, when the
        whole session's clock fit is better than the live one each sample
        was first stored with. Commits what is buffered first, then rewrites
        every chunk of those roles in one transaction: a crash in between
        leaves the live times. Returns role -> largest change, s.
        """
        with self._locked():
            self._flush()
            changes: dict[str, float] = {}
            rows: list[tuple[float, float, bytes, int]] = []
            for role_name, fn in maps.items():
                last = -np.inf
                biggest = 0.0
                for cid, n, t_blob, d_blob in self._db.execute(
                    "SELECT id, n, time_s, device_time_s FROM chunks WHERE role = ? ORDER BY id", (role_name,)
                ).fetchall():
                    if d_blob is None:
                        raise RecordingError(f"{self.path}: {role_name} has samples without device times; cannot re-time")
                    old = np.frombuffer(zlib.decompress(t_blob), dtype="<f8")
                    dev = np.frombuffer(zlib.decompress(d_blob), dtype="<f8")
                    new = np.asarray(fn(dev), dtype=np.float64)
                    if new.shape != (n,) or not np.isfinite(new).all() or np.any(np.diff(new) <= 0) or new[0] <= last:
                        raise RecordingError(f"{self.path}: re-timing {role_name} gives times that do not increase strictly")
                    last = float(new[-1])
                    biggest = max(biggest, float(np.max(np.abs(new - old))))
                    rows.append((float(new[0]), float(new[-1]), _blob(new, "time_s"), cid))
                changes[role_name] = biggest
                self._last_time[role_name] = last
            try:
                with self._transaction():
                    self._db.executemany("UPDATE chunks SET t_first_s = ?, t_last_s = ?, time_s = ? WHERE id = ?", rows)
            except sqlite3.Error as exc:
                raise RecordingError(f"{self.path}: cannot write: {exc}") from exc
            return changes

    def close(self) -> None:
        """Commit what is buffered and leave one self-contained file.

        If another process is reading the file at that moment, the file stays
        in WAL mode (all data committed); the last connection to close it
        folds the log in.
        """
        self._stop_flusher.set()
        if self._flusher is not None and self._flusher is not threading.current_thread():
            self._flusher.join()
        with self._lock:  # an append racing with close gets "recording is closed", never a dead connection
            if self._closed:
                return
            try:
                self._flush()
            finally:
                self._closed = True
                try:
                    # Best effort: fold the log into the file and drop WAL mode. Both
                    # fail harmlessly (data already committed) while a reader is open.
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                        self._db.execute("PRAGMA journal_mode=DELETE")
                finally:
                    self._db.close()


def save_session(session: Session, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
    """Write a whole in-memory session atomically (temporary file + rename)."""
    with atomic_output(path, overwrite=overwrite) as tmp:
        with RecordingWriter(tmp, session.info, overwrite=True, flush_interval_s=float("inf")) as rec:
            for dev in session.devices.values():
                rec.add_device(dev)
            for device_id, cal in session.sensor_calibration.items():
                rec.set_sensor_calibration(device_id, cal)
            for name, value in session.results.items():
                rec.set_result(name, value)
            for r in session.roles:
                rec.append(session.samples[r])
            rec.add_events(list(session.events))


def store_result(path: str | os.PathLike[str], name: str, value: Any) -> None:
    """Store (or replace) a derived result in an existing recording, in one
    transaction: the recording is never left half-updated."""
    path = Path(path)
    db = _open_for_reading(path)
    try:
        _read_meta(db, path)
        db.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        with db:
            db.execute("INSERT OR REPLACE INTO results (name, value) VALUES (?, ?)", (name, json.dumps(value)))
    except sqlite3.Error as exc:
        raise RecordingError(f"{path}: cannot store {name}: {exc}") from exc
    finally:
        db.close()


# ----------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------


def _open_for_reading(path: Path) -> sqlite3.Connection:
    if not path.exists():
        raise RecordingError(f"{path}: no such file")
    if path.is_dir():
        raise RecordingError(f"{path}: is a directory, not a recording")
    try:
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        raise RecordingError(f"{path}: not a hipimu recording ({exc})") from exc
    return db


def _read_meta(db: sqlite3.Connection, path: Path) -> dict[str, Any]:
    try:
        rows = db.execute("SELECT key, value FROM meta").fetchall()
    except sqlite3.DatabaseError as exc:
        raise RecordingError(f"{path}: not a hipimu recording (no meta table)") from exc
    meta = {k: json.loads(v) for k, v in rows}
    if meta.get("format") != FORMAT_NAME:
        raise RecordingError(f"{path}: not a hipimu recording")
    need = int(meta.get("min_reader_version", meta.get("format_version", 1)))
    if need > FORMAT_VERSION:
        raise RecordingError(
            f"{path}: written in recording format {meta.get('format_version')}, which needs a newer hipimu"
            f" (this one reads format {FORMAT_VERSION}); please upgrade"
        )
    return meta


def load_session(path: str | os.PathLike[str], *, roles: list[str] | None = None) -> Session:
    """Load a recording (complete, or left behind by a crashed writer).

    ``roles`` limits which sensors' samples are read (all by default).
    """
    path = Path(path)
    db = _open_for_reading(path)
    try:
        meta = _read_meta(db, path)
        channels = meta.get("channels") or _channel_table()
        info = SessionInfo.from_dict(meta.get("session") or {})
        warnings: list[str] = []
        devices: dict[str, DeviceInfo] = {}
        for role_name, info_json in db.execute("SELECT role, info FROM devices"):
            if role_name not in ROLES:
                continue  # reported with its samples below
            devices[role_name] = DeviceInfo.from_dict(json.loads(info_json))
        sensor_cal = {d: json.loads(c) for d, c in db.execute("SELECT device_id, calibration FROM sensor_calibration")}
        results = {n: json.loads(v) for n, v in db.execute("SELECT name, value FROM results")}
        events = []
        unknown_kinds: set[str] = set()
        for t, kind, label, data in db.execute("SELECT time_s, kind, label, data FROM events ORDER BY time_s, id"):
            if kind in EVENT_KINDS:
                events.append(Event(t, kind, label, json.loads(data)))
            else:
                unknown_kinds.add(kind)
        if unknown_kinds:
            warnings.append(f"events of kinds unknown to this hipimu skipped: {', '.join(sorted(unknown_kinds))}")
        stored_roles = [r for (r,) in db.execute("SELECT DISTINCT role FROM chunks")]
        unknown_roles = sorted(set(stored_roles) - set(ROLES) | set(r for (r,) in db.execute("SELECT role FROM devices")) - set(ROLES))
        if unknown_roles:
            warnings.append(f"sensors in roles unknown to this hipimu skipped: {', '.join(unknown_roles)}")
        samples: dict[str, SampleBlock] = {}
        for role_name in stored_roles:
            if role_name not in ROLES or (roles is not None and role_name not in roles):
                continue
            samples[role_name] = _read_samples(db, role_name, channels)
    except sqlite3.DatabaseError as exc:
        raise RecordingError(f"{path}: damaged recording ({exc})") from exc
    except (KeyError, ValueError, TypeError, AttributeError, zlib.error) as exc:
        raise RecordingError(f"{path}: inconsistent recording ({exc})") from exc
    finally:
        db.close()
    return Session(
        info=info,
        devices=devices,
        samples=samples,
        events=events,
        sensor_calibration=sensor_cal,
        results=results,
        format_version=int(meta.get("format_version", FORMAT_VERSION)),
        warnings=warnings,
    )


_OPTIONAL_CHANNELS = ("mag_ut", "seq", "device_time_s")


def _chunk_columns(db: sqlite3.Connection) -> set[str]:
    return {row[1] for row in db.execute("PRAGMA table_info(chunks)")}


def _read_samples(db: sqlite3.Connection, role_name: str, channels: dict[str, Any]) -> SampleBlock:
    present = _chunk_columns(db)  # format 1 files have no device_time_s column
    cols = [c for c in ("time_s", "acc_m_s2", "gyr_rad_s", "mag_ut", "seq", "device_time_s") if c in present]
    parts: dict[str, list[bytes]] = {c: [] for c in cols}
    missing: dict[str, bool] = {c: c not in present for c in _OPTIONAL_CHANNELS}
    n_total = 0
    for row in db.execute(f"SELECT n, {', '.join(cols)} FROM chunks WHERE role = ? ORDER BY id", (role_name,)):
        n_total += row[0]
        for c, v in zip(cols, row[1:]):
            if v is None:
                missing[c] = True
            else:
                parts[c].append(v)

    def decode(c: str) -> np.ndarray | None:
        if c in missing and (missing[c] or not parts[c]):
            return None
        spec = channels[c]
        codec = spec.get("codec", "none")
        if codec == "zlib":
            data = b"".join(zlib.decompress(b) for b in parts[c])
        elif codec == "none":
            data = b"".join(parts[c])
        else:
            raise ValueError(f"channel {c} uses codec {codec!r}, unknown to this hipimu")
        arr = np.frombuffer(data, dtype=spec["dtype"])
        width = int(spec["width"])
        if arr.size != n_total * width:
            raise ValueError(f"{role_name}.{c}: {arr.size} values for {n_total} samples")
        arr = arr.astype(np.float64 if c != "seq" else np.int64)
        return arr if width == 1 else arr.reshape(n_total, width)

    return SampleBlock(role_name, decode("time_s"), decode("acc_m_s2"), decode("gyr_rad_s"), decode("mag_ut"),
                       decode("seq"), decode("device_time_s"))
