"""`update-config` messages that need no server: the plain-http warning, the URL named."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from flageemonitor.proxy.cli.app import app
from flageemonitor.proxy.config_fetch import PLAIN_HTTP_WARNING, Source

runner = CliRunner()


@pytest.mark.parametrize(("url", "plain"), [
    ("http://config.example.com/api/ingest/bot/config", True),
    ("http://10.1.2.3:8000/api/ingest/bot/config", True),
    ("HTTP://monitor-api.example/api", True),
    ("https://config.example.com/api/ingest/bot/config", False),
    ("http://127.0.0.1:8000/api/ingest/bot/config", False),
    ("http://localhost:8000/x", False),
    ("http://[::1]:8000/x", False),
])
def test_plain_http_means_unencrypted_off_this_machine(url: str, plain: bool) -> None:
    assert Source(url, "fmt_x", None).plain_http is plain


def _update(tmp_path: Path, url: str) -> tuple[int, str]:
    env = {"FLAGEEMONITOR_STATE_DIR": str(tmp_path), "FLAGEEMONITOR_CONFIG_URL": url,
           "FLAGEEMONITOR_TOKEN": "fmt_secret-token-value", "FLAGEEMONITOR_CONFIG_TIMEOUT": "5"}
    result = runner.invoke(app, ["update-config"], env=env)
    return result.exit_code, result.stdout + result.stderr


def test_update_config_warns_about_plain_http_and_names_the_url(tmp_path: Path) -> None:
    code, out = _update(tmp_path, "http://user:pw@config-server.invalid/api/ingest/bot/config?x=1")
    assert code == 3
    assert len(out.strip().splitlines()) == 1
    assert "cannot fetch config from http://config-server.invalid/api/ingest/bot/config" in out
    assert PLAIN_HTTP_WARNING in out
    assert "pw@" not in out and "fmt_secret-token-value" not in out
    code, out = _update(tmp_path, "https://config-server.invalid/api/ingest/bot/config")
    assert code == 3 and PLAIN_HTTP_WARNING not in out
