"""The one redactor of the proxy and the server: no secret reaches a log line, a report or a page.

What it removes from a text:
- every registered secret value (the bot token, config passwords, inventory passwords), as `***`;
- our client and admin tokens (`fmt_…`, `fma_…`) wherever they appear, as `fmt_[redacted]`
  (recognisable, useless);
- header and query forms a secret takes even when its value was never registered
  (`X-Bot-Token: …`, `Authorization: Bearer …`, `token=…`, `password=…`, `senha=…`), as `***`.

`REDACTOR` is the process-wide instance the log handlers use; `Redactor(values)` makes a local
one for a single message (a driver error that may echo a password).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "***"
TOKEN_REDACTED = "fmt_[redacted]"  # noqa: S105
# anything that looks like one of our client tokens (server.core.security makes them)
TOKEN_ANYWHERE_RE = re.compile(r"fm[ta]_(?!\[redacted\])[A-Za-z0-9_-]{8,}")
_DONE = r"(?!\*\*\*|fmt_\[redacted\])"
_PATTERNS = [
    re.compile(r"(?i)(x-bot-token[\"']?\s*[:=]\s*[\"']?)" + _DONE + r"([^\s\"',;&]+)"),
    re.compile(r"(?i)((?:token|password|passwd|senha)=)" + _DONE + r"([^\s&\"',;]+)"),
    re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?(?:bearer\s+)?)" + _DONE + r"([^\s\"',;&]+)"),
]
MIN_SECRET_LEN = 4  # shorter values would redact ordinary words

# config_bot.json keys whose values are secrets (logs, `config show`, encryption at rest)
SECRET_CONFIG_KEYS = (
    "PARAM_TOKEN",
    "PARAM_TOKEN_BI",
    "PARAM_SSH_PASSWORD",
    "PARAM_ZABBIX_PASSWORD",
    "DB_PASS",
    "DB_PG_PASS",
    "DB_PASS_BI",
)


class Redactor:
    def __init__(self, secrets: Iterable[object] = ()) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        for value in secrets:
            self.add(value)

    def add(self, value: object) -> None:
        """Register a value that must never appear in output (short values are ignored)."""
        if isinstance(value, str) and len(value.strip()) >= MIN_SECRET_LEN:
            with self._lock:
                self._secrets.add(value.strip())

    def add_config(self, raw: Mapping[str, Any]) -> None:
        for key in SECRET_CONFIG_KEYS:
            self.add(raw.get(key))

    def redact(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        text = TOKEN_ANYWHERE_RE.sub(TOKEN_REDACTED, text)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        return text


REDACTOR = Redactor()


def redact(text: str) -> str:
    return REDACTOR.redact(text)


def _clean(value: Any) -> Any:
    return REDACTOR.redact(value) if isinstance(value, str) else value


class RedactFilter(logging.Filter):
    """Redact a record's message and each argument in place, keeping the argument shape that
    formatters such as uvicorn's access formatter unpack."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _clean(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_clean(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _clean(v) for k, v in record.args.items()}
        return True


def install_filter(logger_names: Iterable[str]) -> None:
    """Attach the filter to these loggers and their current handlers (idempotent)."""
    for name in logger_names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactFilter) for f in logger.filters):
            logger.addFilter(RedactFilter())
        for handler in logger.handlers:
            if not any(isinstance(f, RedactFilter) for f in handler.filters):
                handler.addFilter(RedactFilter())
