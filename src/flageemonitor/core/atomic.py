"""The one way this project replaces a file: a reader sees the old bytes or the new, never a mix.

The data goes to a temporary file beside the target (`.<name>.tmp-<pid>-<random>`, same
directory so the rename stays on one file system), is flushed, renamed over the target with
`os.replace`, and — when `durable` — the file and its directory are fsynced so the rename
survives a power cut. A failure removes the temporary file and leaves the target untouched.
The file is created with `mode` (0600 by default: state files may hold secrets).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path

TEMP_GLOB = ".*.tmp-*"  # what a crashed writer may leave behind (see `remove_stale_temps`)


def temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


def atomic_write(
    path: Path,
    data: bytes | str,
    *,
    mode: int = 0o600,
    durable: bool = True,
    before_rename: Callable[[Path], None] | None = None,
) -> None:
    """Replace `path` with `data` atomically; raises OSError with the target unchanged."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    tmp = temp_name(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            view = memoryview(payload)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        if before_rename is not None:
            before_rename(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if durable:
        fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def remove_stale_temps(directory: Path) -> None:
    """Delete temporary files left by writers that died; call only while no writer is live."""
    for stale in directory.glob(TEMP_GLOB):
        with contextlib.suppress(OSError):
            stale.unlink()
