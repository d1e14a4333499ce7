"""What `flageemonitor status` shows of the spool: depth and counters per queue, and every
collector cursor. Read-only: a proxy that never collected has no spool, and gets none created."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

from flageemonitor.proxy.collectors.cursor import CursorStore
from flageemonitor.proxy.spool import Spool, SpoolError, spool_path

log = logging.getLogger("flageemonitor.collectors.status")


def spool_status(state_dir: Path) -> dict[str, Any] | None:
    path = spool_path(state_dir)
    if not path.exists():
        return None
    try:
        with Spool(path) as spool:
            return {"path": str(path), "queues": [q.to_dict() for q in spool.stats()],
                    "cursors": CursorStore(spool.connection).all()}
    except (SpoolError, sqlite3.Error) as exc:
        log.warning("cannot read the spool %s: %s", path, exc)
        return {"path": str(path), "error": str(exc), "queues": [], "cursors": []}
