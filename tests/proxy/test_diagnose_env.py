"""diagnose_env's proxy checks (a real local HTTP server stands for the control plane)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from flageemonitor.core.config_model import validate_config
from flageemonitor.proxy.actions.diagnose_env import (
    check_control_plane,
    check_state_dir,
    check_timezone,
    parse_endpoint,
)
from flageemonitor.proxy.pipeline import RunRequest, execute

TOKEN = "fmt_diag_token_123"


class ControlPlane(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str, str | None]]] = []

    def do_HEAD(self) -> None:
        self.seen.append(("HEAD", self.path, self.headers.get("X-Bot-Token")))
        self.send_response(200 if self.headers.get("X-Bot-Token") == TOKEN else 401)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def control_plane() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), ControlPlane)
    ControlPlane.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/ingest"
    finally:
        server.shutdown()
        server.server_close()


def test_control_plane_check_sends_the_token_in_a_header_only(control_plane: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLAGEEMONITOR_CONFIG_URL", raising=False)
    monkeypatch.setenv("FLAGEEMONITOR_API_BASE", control_plane)
    monkeypatch.setenv("FLAGEEMONITOR_TOKEN", TOKEN)
    check = check_control_plane()
    assert check.ok and "HTTP 200" in check.detail
    assert ControlPlane.seen == [("HEAD", "/api/ingest/bot/config", TOKEN)]
    assert TOKEN not in check.detail


def test_control_plane_check_reports_a_refused_token(control_plane: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAGEEMONITOR_CONFIG_URL", control_plane + "/bot/config")
    monkeypatch.setenv("FLAGEEMONITOR_TOKEN", "fmt_wrong_token")
    check = check_control_plane()
    assert not check.ok and "token was refused" in check.detail


def test_control_plane_down_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("FLAGEEMONITOR_CONFIG_URL", f"http://127.0.0.1:{port}/bot/config")
    check = check_control_plane(timeout=1)
    assert not check.ok and "ConnectError" in check.detail


def test_state_dir_and_timezone_checks(tmp_path: Path) -> None:
    assert check_state_dir(tmp_path / "state").ok
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert not check_state_dir(blocker / "state").ok
    assert check_timezone(validate_config({"PARAM_REDE": "R1", "TIMEZONE": "America/Sao_Paulo"})).ok


def test_endpoint_output_parsing() -> None:
    out = "@@diag:path\n/usr/bin:/bin\n@@diag:sudo\n/usr/bin/sudo\n@@diag:shutdown\n@@diag:end\n"
    assert parse_endpoint(out) == {"path": "/usr/bin:/bin", "sudo": "/usr/bin/sudo", "shutdown": ""}


def test_diagnose_runs_without_hosts_and_reports_inventory_trouble(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLAGEEMONITOR_CONFIG_URL", raising=False)
    monkeypatch.delenv("FLAGEEMONITOR_API_BASE", raising=False)
    config = validate_config({"PARAM_REDE": "R1"})
    request = RunRequest("pdv_diagnose_env", inventory_file=tmp_path / "absent.yaml",
                         args={"inventory_file": str(tmp_path / "absent.yaml")})
    report = asyncio.run(execute(request, config, state_dir=tmp_path / "state"))
    assert report.canonical == "diagnose_env" and report.hosts == []
    assert report.local is not None
    checks = {c["name"]: c for c in report.local["checks"]}
    assert checks["config"]["ok"] and checks["state_dir"]["ok"] and checks["control_plane"]["skipped"]
    assert not checks["inventory"]["ok"] and "does not exist" in checks["inventory"]["detail"]
    assert report.failed
