"""Key files kept outside the database (config secrets, config signing): one key per line,
created with mode 0600 on first use by whichever process needs it first."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from flageemonitor.core.errors import FlageeError


def key_lines(path: Path, generate: Callable[[], bytes], what: str, error: type[FlageeError]) -> list[bytes]:
    """The file's non-empty lines, the file created with one `generate()` key if missing.
    Raises `error` naming `what` and the path when it cannot be read or is empty."""
    try:
        lines = path.read_bytes().split()
    except FileNotFoundError:
        _create(path, generate, what, error)
        lines = path.read_bytes().split()
    except OSError as exc:
        raise error(f"cannot read the {what} {path}: {exc.strerror}") from None
    if not lines:
        raise error(f"the {what} file {path} is empty")
    return lines


def _create(path: Path, generate: Callable[[], bytes], what: str, error: type[FlageeError]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process created it first
    except OSError as exc:
        raise error(f"cannot create the {what} {path}: {exc.strerror}") from None
    try:
        os.write(fd, generate() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
