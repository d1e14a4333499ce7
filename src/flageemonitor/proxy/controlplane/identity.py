"""Who this proxy is: a stable id on the state volume, the image it runs, the host it runs on.

- The proxy id is a uuid4 created once, in `<state dir>/proxy-id`, and read from there ever
  after: it survives container replacement (the state directory is a volume) and is the same for
  the daemon and for manual runs. Creation is race-free (a temp file hard-linked into place, so
  two processes starting at once agree on one id). An unreadable or malformed file is replaced,
  with a warning: a proxy that cannot report is worse than one that shows up as new.
- The image version is `FLAGEEMONITOR_IMAGE_VERSION` (set by the image), else the package version.
- The image digest is `FLAGEEMONITOR_IMAGE_DIGEST` when the host passes one (`sha256:<64 hex>`),
  else None: a container cannot read its own image's digest, and the installer does not pass it
  (Watchtower recreates the container with the old environment, so a digest given at creation
  would go stale after the first update).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import uuid
from pathlib import Path

from flageemonitor import __version__
from flageemonitor.core import env
from flageemonitor.core.atomic import temp_name

log = logging.getLogger("flageemonitor.controlplane")

PROXY_ID_NAME = "proxy-id"
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def read_proxy_id(state_dir: Path) -> str | None:
    """The id if one was created (never creates one)."""
    return _read_id(state_dir / PROXY_ID_NAME)


def _read_id(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="ascii").strip()
        return str(uuid.UUID(text)) if text else None
    except (FileNotFoundError, UnicodeDecodeError, ValueError):
        return None


def proxy_id(state_dir: Path) -> str:
    """The installation's id, created on first use; raises OSError when the state dir is unusable."""
    path = state_dir / PROXY_ID_NAME
    found = _read_id(path)
    if found is not None:
        return found
    state_dir.mkdir(parents=True, exist_ok=True)
    new = str(uuid.uuid4())
    tmp = temp_name(path)
    tmp.write_text(new + "\n", encoding="ascii")
    try:
        if path.exists():  # present but malformed: replace it (rename wins over a concurrent writer)
            log.warning("%s is not a proxy id; replacing it with a new one", path)
            os.replace(tmp, path)
        else:
            with contextlib.suppress(FileExistsError):  # another process created it first: use theirs
                os.link(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return _read_id(path) or new


def image_version() -> str:
    return env.get("IMAGE_VERSION") or __version__


def image_digest() -> str | None:
    value = (env.get("IMAGE_DIGEST") or "").lower()
    return value if _DIGEST.match(value) else None


def hostname() -> str:
    return socket.gethostname()[:255]
