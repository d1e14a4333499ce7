"""The real server behind a real nginx: one noisy client never locks out the others.

Clients reach nginx from their own loopback addresses (127.0.0.2, 127.0.0.3...), so nginx sees
different clients while the server sees every request come from nginx's 127.0.0.1, exactly as
behind a production reverse proxy.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.nginx import reverse_proxy
from tests.fixtures.server import ControlPlane, ControlPlaneFactory

pytestmark = pytest.mark.slow

LIMIT = 5
CONFIG = "/api/ingest/bot/config"


def client_from(address: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=10)


@pytest.fixture
def proxied(control_plane_factory: ControlPlaneFactory, tmp_path: Path) -> Iterator[tuple[ControlPlane, str]]:
    cp = control_plane_factory(env={"FLAGEEMONITOR_AUTH_FAILURE_LIMIT": str(LIMIT),
                                    "FLAGEEMONITOR_TRUSTED_PROXIES": "127.0.0.1",
                                    "FLAGEEMONITOR_AUTH_TARPIT": "0.2"})
    with reverse_proxy(tmp_path / "nginx", cp.port) as url:
        yield cp, url


def test_a_noisy_client_behind_the_proxy_never_locks_out_valid_tokens(proxied: tuple[ControlPlane, str]) -> None:
    cp, url = proxied
    bad = {"X-Bot-Token": "fmt_" + "N" * 43}
    with client_from("127.0.0.2") as noisy, client_from("127.0.0.3") as quiet, client_from("127.0.0.4") as liar:
        for _ in range(LIMIT):
            assert noisy.get(url + CONFIG, headers=bad).status_code == 401
        limited = noisy.get(url + CONFIG, headers=bad)
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        # another client behind the same proxy: its own counter, its valid token served
        assert quiet.get(url + CONFIG, headers=cp.headers()).status_code == 200
        assert quiet.get(url + CONFIG, headers=bad).status_code == 401  # its first failure, not 429
        # the noisy client's own valid token is served too: failures never block a valid token
        assert noisy.get(url + CONFIG, headers=cp.headers()).status_code == 200
        # a forged X-Forwarded-For does not escape the limit: nginx appends the real address
        forged = noisy.get(url + CONFIG, headers={**bad, "X-Forwarded-For": "203.0.113.50"})
        assert forged.status_code == 429
        # nor does it borrow someone else's counter: 127.0.0.4 claiming to be the noisy client
        for _ in range(LIMIT - 1):
            assert liar.get(url + CONFIG, headers={**bad, "X-Forwarded-For": "127.0.0.2"}).status_code == 401
    # straight to the server from an address that is not a trusted proxy: the forwarded header is
    # ignored (believed, it would put this request on the noisy client's exhausted counter)
    with client_from("127.0.0.5") as direct:
        assert direct.get(cp.url + CONFIG, headers={**bad, "X-Forwarded-For": "127.0.0.2"}).status_code == 401
