"""The config-server faults both suites inject (update-config and the daemon)."""

from __future__ import annotations

from collections.abc import Callable

from tests.daemon.faultproxy import FaultProxy
from tests.fixtures.server import ControlPlane

Fault = Callable[[ControlPlane, FaultProxy], None]


def _server_stopped(server: ControlPlane, proxy: FaultProxy) -> None:
    # the real server process is stopped; the proxy stops listening too, so the client sees
    # what it would see without a proxy: connection refused
    server.stop()
    proxy.pause()


def restore(server: ControlPlane, proxy: FaultProxy) -> None:
    """Undo any fault: the server running (on a new port after a stop) behind a passing proxy."""
    if server.pid is None:
        server.start()
        proxy.upstream = server.url
    proxy.resume()
    proxy.set("pass")


def _mode(mode: str) -> Fault:
    def apply(server: ControlPlane, proxy: FaultProxy) -> None:
        proxy.set(mode)
    return apply


def _unknown_token(server: ControlPlane, proxy: FaultProxy) -> None:
    proxy.set("swap_token", "fm_this-token-was-never-issued")


def _revoked_token(server: ControlPlane, proxy: FaultProxy) -> None:
    token, token_id = server.issue_token_with_id()
    server.revoke_token(token_id)
    proxy.set("swap_token", token)


FAULTS: dict[str, tuple[Fault, int, str]] = {
    "server_stopped": (_server_stopped, 3, "cannot fetch config"),
    "http_500": (_mode("500"), 5, "500"),
    "http_401_unknown_token": (_unknown_token, 4, "401"),
    "http_403_revoked_token": (_revoked_token, 4, "403"),
    "body_cut_mid_way": (_mode("cut"), 3, "cannot fetch config"),
    "valid_json_failing_schema": (_mode("schema"), 6, "TIMEZONE"),
    "not_json": (_mode("not_json"), 6, "not valid JSON"),
    "config_of_another_network": (_mode("wrong_network"), 6, "SOMEONE_ELSE"),
    "config_of_the_network_in_another_case": (_mode("rede_case"), 6, "'testnet', expected 'TESTNET'"),
    "json_nested_200000_deep": (_mode("nested"), 6, "nested too deeply"),
    "json_5000_digit_integer": (_mode("huge_int"), 6, "too many digits"),
}


