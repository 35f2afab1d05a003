"""Files a run depends on later are written whole or not at all.

The protocol, for every checkpoint and every file a run or a user reads back (summary.json, config.yaml, the W&B id,
the LeNet-5 cache, a rewritten metrics.csv): the bytes go to a temporary file *in the destination's own directory*
(a rename within one filesystem is atomic; a "move" from the system temp directory across filesystems is a copy that
truncates the destination first), which is flushed and fsynced, then `os.replace`d over the destination, and the
directory is fsynced. On any failure the temporary file is removed and the previous file is untouched: a full disk,
a quota, a preemption or a kill -9 can cost the newest write, never the last good one. The file gets the permissions
a plain write would give it (the previous file's, else 0666 less the umask), not the temporary file's private 0600:
a run directory on a shared disk stays readable by the group that shares it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path

TEMP_PREFIX = ".tmp-"  # temporary files start with this (and are never read as results)


class WriteFailed(OSError):
    """A file could not be written (its previous version is intact); str() is one line saying why and what to do."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be opened or synced
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _mode_for(path: Path) -> int:
    """The permissions `open(path, "w")` would leave: an existing file's own, else 0666 less the process's umask."""
    with contextlib.suppress(FileNotFoundError):
        return path.stat().st_mode & 0o7777
    umask = os.umask(0o022)  # reading the umask means setting it; set back at once
    os.umask(umask)
    return 0o666 & ~umask


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def write_failed(path: Path, needed: int, what: str, err: OSError | None = None) -> WriteFailed:
    """The one-line error of a failed write: for a full disk or quota the space needed and free."""
    if err is None or err.errno in (errno.ENOSPC, errno.EDQUOT):
        free = shutil.disk_usage(path.parent).free
        why = f"no space left for {path}: the {what} needs {_megabytes(needed)}, {_megabytes(free)} are free"
        return WriteFailed(errno.ENOSPC, f"{why} (the previous {path.name}, if any, is intact); free some space")
    reason = err.strerror or type(err).__name__
    return WriteFailed(err.errno, f"could not write {path} ({reason}); the previous {path.name}, if any, is intact")


def atomic_write(path: str | os.PathLike, data: bytes | bytearray | memoryview | str, what: str = "file") -> Path:
    """Write `data` (bytes, or text as UTF-8) to `path` by the protocol above; returns the path.

    Raises WriteFailed, one line: for a full disk the path and the space needed and free (before writing anything
    where the free space already says so), else the path and the reason."""
    path = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    size = len(payload)
    if size > shutil.disk_usage(path.parent).free:
        raise write_failed(path, size, what)
    fd, temp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, _mode_for(path))
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        if isinstance(err, OSError) and not isinstance(err, WriteFailed):
            raise write_failed(path, size, what, err) from None
        raise
    _fsync_directory(path.parent)
    return path


def atomic_link(source: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Make `path` the same file as `source` (a complete file written by `atomic_write`) in one step: a hard link
    under a temporary name, renamed over `path`. No bytes are copied; where hard links are not supported the
    contents are written by `atomic_write`."""
    source, path = Path(source), Path(path)
    temp = path.parent / f"{TEMP_PREFIX}{path.name}.link-{os.getpid()}"
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        os.link(source, temp)
        os.replace(temp, path)
    except OSError:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        return atomic_write(path, source.read_bytes(), "checkpoint")
    _fsync_directory(path.parent)
    return path
