"""Write a file so that it is either complete or absent: never half-written.

Every whole-file output of hipimu (recordings made by ``simulate`` and
``import``, CSV exports, angle tables) goes through :func:`atomic_output`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from hipimu.errors import InputError

__all__ = ["atomic_output", "remove_with_sidecars"]

#: Files SQLite may keep beside a database.
_SIDECARS = ("-wal", "-shm", "-journal")


def remove_with_sidecars(path: Path) -> None:
    """Remove ``path`` and any SQLite side files next to it; missing is fine."""
    for suffix in ("",) + _SIDECARS:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a fresh, empty temporary file beside ``path``; when the block
    succeeds, flush it to disk and rename it to ``path`` in one step.

    Whatever goes wrong inside the block, ``path`` keeps its old content (or
    stays absent) and the temporary file is removed. The new file gets the
    permissions any new file gets (``0o666 & ~umask``).

    Raises :class:`~hipimu.errors.InputError` if ``path`` exists and
    ``overwrite`` is false, is a directory, its directory is missing, or the
    file system refuses the write.
    """
    final = Path(path)
    if final.is_dir():
        raise InputError(f"{final}: is a directory")
    if final.exists() and not overwrite:
        raise InputError(f"{final}: already exists (use --force to replace it)")
    if not final.parent.is_dir():
        raise InputError(f"{final.parent}: no such directory")
    tmp: Path | None = None
    try:
        for _ in range(100):
            candidate = final.with_name(f".{final.name}.{os.getpid()}.{secrets.token_hex(4)}.partial")
            try:
                os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # never clobber
            except FileExistsError:
                continue
            tmp = candidate
            break
        else:  # pragma: no cover - 100 random collisions
            raise FileExistsError(f"cannot create a temporary file in {final.parent}")
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        tmp = None
        _fsync_dir(final.parent)
    except OSError as exc:
        raise InputError(f"{final}: cannot write ({exc.strerror or exc})") from exc
    finally:
        if tmp is not None:
            remove_with_sidecars(tmp)
