"""Endpoint facts cached per host in `<state_dir>/facts/`, valid for `PARAM_FACTS_TTL` seconds.

One small JSON file per host, named after the host's technical name. An entry is used only when
it is younger than the TTL and was detected at the same address and port (a host moved to a new
machine is probed again). Writes are atomic (`core.atomic`), so a reader never sees half a file
and a crash never leaves a corrupt entry behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path

from flageemonitor.core.atomic import atomic_write
from flageemonitor.core.facts import EndpointFacts
from flageemonitor.core.hosts import Host

log = logging.getLogger("flageemonitor.facts")

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def entry_name(host: Host) -> str:
    """A file name that is safe whatever the host name holds, and unique per host name."""
    digest = hashlib.sha256(host.name.encode("utf-8")).hexdigest()[:10]
    return f"{_SAFE.sub('_', host.name)[:80]}-{digest}.json"


class FactsCache:
    def __init__(self, directory: Path, ttl: float, clock: Callable[[], float] = time.time, *,
                 create: bool = True) -> None:
        """`create=False` (a dry run): write only if the directory already exists."""
        self.directory = directory
        self.ttl = ttl
        self.clock = clock
        self.create = create
        self._dir_ready = False

    def path(self, host: Host) -> Path:
        return self.directory / entry_name(host)

    def get(self, host: Host) -> EndpointFacts | None:
        """Cached facts for `host`, or None when absent, expired, moved or unreadable."""
        if self.ttl <= 0:
            return None
        try:
            doc = json.loads(self.path(host).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("facts cache entry for %s unreadable, probing again: %s", host.name, exc)
            return None
        if not isinstance(doc, dict) or not isinstance(doc.get("facts"), dict):
            return None
        if doc.get("ip") != host.ip or doc.get("port") != host.port:
            return None
        age = self.clock() - float(doc.get("detected_at", 0))
        if age < 0 or age >= self.ttl:
            return None
        return EndpointFacts.from_dict(doc["facts"])

    def put(self, host: Host, facts: EndpointFacts) -> None:
        if self.ttl <= 0:
            return
        doc = {"host": host.name, "ip": host.ip, "port": host.port, "detected_at": self.clock(),
               "facts": facts.to_dict()}
        try:
            if not self._dir_ready:
                if not self.create and not self.directory.is_dir():
                    return
                self.directory.mkdir(parents=True, exist_ok=True)
                self._dir_ready = True
            atomic_write(self.path(host), json.dumps(doc), durable=False)
        except OSError as exc:
            log.warning("could not cache the facts of %s: %s", host.name, exc)

    def forget(self, host: Host) -> None:
        self.path(host).unlink(missing_ok=True)
