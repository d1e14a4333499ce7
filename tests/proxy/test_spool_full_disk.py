"""The outbox on a state volume that is full: every operation fails as SpoolError (the error its
callers handle), nothing half-written stays, and the queue works again once there is room."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from flageemonitor.proxy.spool import Spool, SpoolError, spool_path
from tests.daemon.conftest import fill, tmpfs

pytestmark = pytest.mark.slow  # mounts a small tmpfs


def test_every_spool_write_on_a_full_disk_raises_spool_error_and_changes_nothing(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "state", "1m") as state, Spool(spool_path(state)) as spool:
        spool.put("q", [(b"first", 1), (b"second", 1)])
        first, second = spool.peek("q")
        filler = fill(state)
        big = [(b"x" * 200_000, 1)]  # more than what a page left over by the filler can hold

        def often(write: Callable[[int], None]) -> Callable[[], None]:
            def run() -> None:  # small commits repeated: each appends to the WAL until it cannot grow
                for i in range(500):
                    write(i)
            return run

        attempts: dict[str, Callable[[], object]] = {
            "put": lambda: spool.put("q", big),
            "replace": lambda: spool.replace("q", big),
            "note_error": often(lambda i: spool.note_error("q", "e" * 400)),
            "delivered": often(lambda i: spool.delivered(f"q{i}", 1)),
        }
        for name, attempt in attempts.items():
            with pytest.raises(SpoolError, match="database or disk is full"):
                attempt()
            assert [i.body for i in spool.peek("q")] == [b"first", b"second"], name
            assert not spool.connection.in_transaction, name
        filler.unlink()
        spool.ack(first)
        spool.put("q", [(b"third", 1)])
        assert [i.body for i in spool.peek("q")] == [b"second", b"third"]
        assert second.id < spool.peek("q")[1].id
