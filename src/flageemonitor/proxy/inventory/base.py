"""The interface every inventory source implements."""

from __future__ import annotations

from typing import Protocol

from flageemonitor.core.hosts import Host, HostFilter


class InventorySource(Protocol):
    """Selects endpoints. Errors raise InventoryError; an empty list means "none matched"."""

    name: str

    def select(self, filters: HostFilter) -> list[Host]:
        """Hosts matching `filters`, scoped to the configured network by default, ordered by name,
        with `filters.limit` applied last."""
        ...
