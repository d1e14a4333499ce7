"""Log lines: one per event, optional JSON, no colours off a TTY, no secrets."""

from __future__ import annotations

import io
import json
import logging

import pytest

from flageemonitor.proxy import logs


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    monkeypatch.setenv("FLAGEEMONITOR_TOKEN", '"tok-SECRET-123456"')
    stream = io.StringIO()
    logs.setup(stream=stream, fmt="text")
    return stream


def test_token_from_env_never_reaches_a_log_line_even_in_a_traceback(captured: io.StringIO) -> None:
    log = logging.getLogger("flageemonitor.test")
    log.info("fetching with token tok-SECRET-123456")
    try:
        raise RuntimeError("header X-Bot-Token: tok-SECRET-123456 rejected")
    except RuntimeError:
        log.exception("failed")
    text = captured.getvalue()
    assert "tok-SECRET-123456" not in text
    assert text.count("***") >= 2
    assert len(text.strip().splitlines()) == 2  # a traceback stays on its event's line


def test_config_passwords_and_url_secrets_are_redacted(captured: io.StringIO) -> None:
    logs.add_config_secrets({"PARAM_SSH_PASSWORD": "pdv-pass-9876", "DB_PASS": "db-secret-1"})
    log = logging.getLogger("flageemonitor.test")
    log.warning("ssh pdv-pass-9876 db db-secret-1 url http://x/?token=abcdef&password=zz9zz")
    text = captured.getvalue()
    for secret in ("pdv-pass-9876", "db-secret-1", "abcdef", "zz9zz"):
        assert secret not in text


def test_no_ansi_colours_when_not_a_tty(captured: io.StringIO) -> None:
    logging.getLogger("flageemonitor.test").error("boom")
    assert "\x1b[" not in captured.getvalue()


def test_json_format_is_one_object_per_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAGEEMONITOR_LOG_FORMAT", "json")
    monkeypatch.setenv("FLAGEEMONITOR_TOKEN", "tok-JSON-abcdef")
    stream = io.StringIO()
    logs.setup(stream=stream)
    logging.getLogger("flageemonitor.daemon").info("run %s ok", "diagnose_env",
                                                   extra={"fields": {"action": "diagnose_env"}})
    logging.getLogger("flageemonitor.daemon").info("token tok-JSON-abcdef")
    lines = stream.getvalue().strip().splitlines()
    first, second = (json.loads(line) for line in lines)
    assert first["msg"] == "run diagnose_env ok" and first["action"] == "diagnose_env"
    assert first["level"] == "info" and first["logger"] == "flageemonitor.daemon"
    assert "tok-JSON-abcdef" not in second["msg"]
