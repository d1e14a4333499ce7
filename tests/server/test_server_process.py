"""The real server process: the one-command demo, and tokens never reaching its logs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.fixtures.server import ControlPlane, free_port


def test_token_never_appears_in_server_logs(control_plane: ControlPlane) -> None:
    cp = control_plane
    other = cp.issue_token()
    unknown = "fmt_" + "k" * 43
    assert httpx.get(cp.config_url, headers=cp.headers()).status_code == 200
    assert httpx.get(cp.config_url, headers={"Authorization": f"Bearer {other}"}).status_code == 200
    assert httpx.get(cp.url + "/api/bootstrap/install.sh", headers=cp.headers()).status_code == 200
    assert httpx.get(cp.config_url, headers=cp.headers(unknown)).status_code == 401
    # a client that misplaces its token in the URL: the access log line must not keep it
    assert httpx.get(cp.config_url, params={"token": other}).status_code == 401
    assert httpx.get(cp.url + f"/no/such/{cp.token}").status_code == 404
    cp.stop()
    logs = cp.logs()
    assert "GET /api/ingest/bot/config" in logs  # the access log was captured at all
    for secret in (cp.token, other, unknown):
        assert secret not in logs
        assert secret[4:] not in logs
    assert "GET /api/ingest/bot/config?token=fmt_[redacted] HTTP/1.1\" 401" in logs
    assert "Logging error" not in logs  # redaction keeps the records formattable


def test_redaction_filter_keeps_formatter_arguments_intact() -> None:
    import logging

    from flageemonitor.core.redact import RedactFilter as RedactTokens

    token = "fmt_" + "r" * 43
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s - %s %d", ("1.2.3.4", f"/p?t={token}", 401), None)
    assert RedactTokens().filter(record)
    assert record.getMessage() == "1.2.3.4 - /p?t=fmt_[redacted] 401"


def test_demo_serve_gives_a_working_server_from_one_command(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "FLAGEEMONITOR_DATABASE_URL"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "flageemonitor.server.cli", "demo", "--serve", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        token = None
        deadline = time.monotonic() + 30
        while token is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            match = re.fullmatch(r"\s+(fmt_[A-Za-z0-9_-]{43})\s*", line)
            token = match.group(1) if match else None
        assert token, "".join(lines)
        base = f"http://127.0.0.1:{port}"
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        config = httpx.get(base + "/api/ingest/bot/config", headers={"X-Bot-Token": token})
        assert config.status_code == 200 and config.json()["PARAM_REDE"] == "DEMO"
        installer = httpx.get(base + "/api/bootstrap/install.sh", headers={"X-Bot-Token": token})
        assert installer.status_code == 200 and "DEFAULT_REDE='DEMO'" in installer.text
        bad = httpx.get(base + "/api/ingest/bot/config", headers={"X-Bot-Token": "fmt_wrong"})
        assert bad.status_code == 401 and "check the client token" in bad.json()["message"]
        assert (tmp_path / "flageemonitor.db").exists()  # the embedded default: a file in the cwd
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
