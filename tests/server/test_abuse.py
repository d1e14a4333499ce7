"""Abuse test (benchmark-style: prints its figures) of the real server, 2 workers, on loopback.

Attackers connect from 127.0.0.2..; the probe asks `/health` from 127.0.0.9 throughout. Each
attack must be refused by the HTTP guard, the server's memory must stay bounded and `/health`
must keep answering within 1 s:

1. one 100 MB header;
2. 8 concurrent unfinished 60 MB headers;
3. 50 slow-header connections (one byte a second), which must be closed at the header deadline;
4. 150 idle connections from one address, beyond the per-address cap.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from devtools.processes import group_processes

from tests.fixtures.server import ControlPlane, ControlPlaneFactory

pytestmark = pytest.mark.slow

HEADER_TIMEOUT = 3.0
MAX_CONN = 64
MAX_RSS_GROWTH_MB = 60


def group_rss_mb(leader: int) -> float:
    total = 0
    for entry, _ in group_processes(leader):
        try:
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1024


class Probe:
    """`/health` from its own address every 100 ms; keeps the worst latency and any failure."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.worst = 0.0
        self.failures: list[str] = []
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.9"), timeout=5) as client:
            while not self._stop.is_set():
                t0 = time.monotonic()
                try:
                    ok = client.get(self.url + "/health").status_code == 200
                except httpx.HTTPError as exc:
                    ok = False
                    self.failures.append(type(exc).__name__)
                took = time.monotonic() - t0
                self.worst = max(self.worst, took)
                self.samples += 1
                if not ok and not self.failures:
                    self.failures.append("status")
                self._stop.wait(0.1)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the /health probe stopped answering"
        time.sleep(0.05)


def connect(port: int, source: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    return s


def answer(s: socket.socket, timeout: float = 10.0) -> bytes:
    """What the server wrote before closing (b"" if it only reset)."""
    s.settimeout(timeout)
    data = b""
    with contextlib.suppress(OSError):
        while chunk := s.recv(4096):
            data += chunk
    return data


def huge_header(port: int, source: str, size: int) -> bytes:
    """Send a request head with one `size`-byte header, as fast as the server reads it."""
    s = connect(port, source)
    try:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: cp.test\r\nX-Big: ")
        block = b"a" * (1 << 20)
        with contextlib.suppress(OSError):  # the server closes long before the end
            for _ in range(size // len(block)):
                s.sendall(block)
        return answer(s)
    finally:
        s.close()


@pytest.fixture
def server(control_plane_factory: ControlPlaneFactory) -> ControlPlane:
    return control_plane_factory(workers=2, env={"FLAGEEMONITOR_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
                                                 "FLAGEEMONITOR_MAX_CONNECTIONS_PER_ADDRESS": str(MAX_CONN)})


@contextlib.contextmanager
def measured(name: str, cp: ControlPlane, figures: list[str]) -> Iterator[Callable[[], float]]:
    assert cp.pid is not None
    before = group_rss_mb(cp.pid)
    peak = [before]

    def sample() -> float:
        peak[0] = max(peak[0], group_rss_mb(cp.pid or 0))
        return peak[0]

    t0 = time.monotonic()
    with Probe(cp.url) as probe:
        wait_for(lambda: probe.samples >= 1)
        yield sample
        seen = probe.samples
        wait_for(lambda: probe.samples >= seen + 2)  # /health right after the attack, too
    sample()
    figures.append(f"{name:<40} {time.monotonic() - t0:7.1f} s  RSS {before:6.1f} -> peak {peak[0]:6.1f} MB  "
                   f"/health worst {probe.worst * 1000:6.0f} ms over {probe.samples} probes")
    assert not probe.failures, f"{name}: /health failed: {probe.failures}"
    assert probe.worst < 1.0, f"{name}: /health took {probe.worst:.2f} s"
    assert peak[0] - before < MAX_RSS_GROWTH_MB, f"{name}: RSS grew {peak[0] - before:.0f} MB"


def test_header_abuse_is_refused_with_bounded_memory_and_health_answering(server: ControlPlane) -> None:
    cp = server
    figures: list[str] = []

    with measured("one 100 MB header", cp, figures) as sample:
        reply = huge_header(cp.port, "127.0.0.2", 100 << 20)
        sample()
        assert reply.startswith(b"HTTP/1.1 431 "), reply[:200]

    with measured("8 concurrent unfinished 60 MB headers", cp, figures) as sample:
        replies: list[bytes] = []
        threads = [threading.Thread(target=lambda i=i: replies.append(huge_header(cp.port, f"127.0.1.{i}", 60 << 20)))
                   for i in range(1, 9)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            sample()
            time.sleep(0.2)
        assert len(replies) == 8 and all(r.startswith(b"HTTP/1.1 431 ") for r in replies), [r[:40] for r in replies]

    with measured("50 slow-header connections", cp, figures) as sample:
        slow = [connect(cp.port, f"127.0.2.{i}") for i in range(1, 51)]
        for s in slow:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: cp.test\r\nX-Slow: ")
            s.setblocking(False)
        open_ = set(range(len(slow)))
        closed_after: list[float] = []
        t0 = time.monotonic()
        while open_ and time.monotonic() - t0 < HEADER_TIMEOUT + 20:
            for i in list(open_):
                try:
                    data = slow[i].recv(4096)
                    if data or data == b"":
                        closed_after.append(time.monotonic() - t0)
                        open_.discard(i)
                        continue
                except BlockingIOError:
                    pass
                except OSError:
                    closed_after.append(time.monotonic() - t0)
                    open_.discard(i)
                    continue
                with contextlib.suppress(OSError):
                    slow[i].send(b"a")
            sample()
            time.sleep(1.0)
        for s in slow:
            s.close()
        assert not open_, f"{len(open_)} slow-header connections still open after {HEADER_TIMEOUT + 20:.0f} s"
        assert max(closed_after) < HEADER_TIMEOUT + 10
    figures.append(f"   slow-header connections closed after {min(closed_after):.1f}-{max(closed_after):.1f} s "
                   f"(deadline {HEADER_TIMEOUT:g} s)")

    with measured("150 idle connections from one address", cp, figures) as sample:
        idle = [connect(cp.port, "127.0.3.1") for _ in range(150)]
        refused = 0
        for s in idle:
            s.settimeout(0.5)
            try:
                data = s.recv(4096)
            except (TimeoutError, BlockingIOError):
                continue
            except OSError:
                data = b""
            refused += data.startswith(b"HTTP/1.1 503 ")
        sample()
        for s in idle:
            s.close()
        # two workers, each capping the address at MAX_CONN; the rest answered 503 at once
        assert refused >= 150 - 2 * MAX_CONN, refused

    print("\nHTTP guard abuse test (real server, 2 workers, loopback; load average "
          f"{os.getloadavg()[0]:.1f}):\n" + "\n".join(figures))
