"""Per-worker lookup cache, valid only while the database's change generation is unchanged.

Every request reads the generation (with its rate-limit counter, in one round trip); any admin
change that affects authorization or payloads bumps it in the same transaction. A revoked token
is therefore refused by every worker on its very next request, while unchanged tokens and
configs cost no further queries. Unknown tokens are never cached.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime

from flageemonitor.server.models import Network, Token

MAX_ENTRIES = 20_000
TOUCH_EVERY_SECONDS = 60.0


@dataclass(frozen=True)
class NetworkInfo:
    id: int
    client_id: int
    code: str
    provider: str | None
    timezone: str | None
    image: str | None
    runtime_name: str | None
    container_root: str | None
    image_channel: str = "stable"

    @classmethod
    def of(cls, net: Network) -> NetworkInfo:
        return cls(net.id, net.client_id, net.code, net.provider, net.timezone, net.image, net.runtime_name,
                   net.container_root, net.image_channel)


@dataclass(frozen=True)
class TokenInfo:
    id: int
    client_id: int
    scopes: frozenset[str]
    revoked: bool
    expires_at: datetime | None
    networks: tuple[NetworkInfo, ...]

    @classmethod
    def of(cls, token: Token) -> TokenInfo:
        return cls(
            token.id, token.client_id, frozenset(token.scope_list), token.revoked_at is not None, token.expires_at,
            tuple(NetworkInfo.of(n) for n in token.networks),
        )


@dataclass(frozen=True)
class ConfigView:
    network: str
    version: int
    body: bytes
    etag: str


class LookupCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = -1
        self._entries: dict[tuple[str, object], object] = {}
        self._touched: dict[int, float] = {}

    def sync(self, generation: int) -> None:
        with self._lock:
            if generation != self._generation:
                self._entries.clear()
                self._generation = generation

    def get(self, kind: str, key: object) -> object | None:
        return self._entries.get((kind, key))

    def put(self, generation: int, kind: str, key: object, value: object) -> None:
        with self._lock:
            if generation != self._generation:
                return  # the world moved on while this value was read
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[(kind, key)] = value

    def touch_pending(self, token_id: int) -> bool:
        """True when `due_for_touch` would be: the next request of this token must record its use."""
        last = self._touched.get(token_id)
        return last is None or time.monotonic() - last >= TOUCH_EVERY_SECONDS

    def due_for_touch(self, token_id: int) -> bool:
        """True at most once a minute per token and worker: last-used time without a write per read."""
        now = time.monotonic()
        with self._lock:
            last = self._touched.get(token_id)
            if last is not None and now - last < TOUCH_EVERY_SECONDS:
                return False
            if len(self._touched) >= MAX_ENTRIES:
                self._touched.clear()
            self._touched[token_id] = now
            return True
