"""Logging for the proxy: stdout, one line per event, secrets redacted.

`FLAGEEMONITOR_LOG_FORMAT=json` switches to one JSON object per line (for log shippers).
Colours only when stdout is a terminal. Every line passes through the one redactor
(`core.redact`), which replaces the bot token and any registered secret (config passwords, API
tokens) with `***`, also inside exception tracebacks.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from flageemonitor.core import env
from flageemonitor.core.redact import REDACTED, REDACTOR, SECRET_CONFIG_KEYS, redact

# the one redactor (core.redact), under the names the proxy's modules use
add_secret = REDACTOR.add
add_config_secrets = REDACTOR.add_config
__all__ = ["REDACTED", "SECRET_CONFIG_KEYS", "JsonFormatter", "TextFormatter", "add_config_secrets", "add_secret",
           "redact", "setup"]


_LEVEL_COLOURS = {"WARNING": "\x1b[33m", "ERROR": "\x1b[31m", "CRITICAL": "\x1b[1;31m"}


class TextFormatter(logging.Formatter):
    """`2026-01-01T12:00:00Z INFO daemon: message` on one line."""

    def __init__(self, colour: bool = False) -> None:
        super().__init__()
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        name = record.name.removeprefix("flageemonitor.")
        level = record.levelname
        if self.colour and level in _LEVEL_COLOURS:
            level = f"{_LEVEL_COLOURS[level]}{level}\x1b[0m"
        msg = record.getMessage()
        if record.exc_info:
            msg += " | " + self.formatException(record.exc_info).replace("\n", " | ")
        return redact(f"{ts} {level} {name}: {msg}".replace("\n", " | "))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, plus any `extra={"fields": {...}}`."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update({k: v for k, v in fields.items() if k not in out})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(out, default=str, ensure_ascii=False))


class _StandardStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stdout`/`sys.stderr` is when a record is emitted.

    A plain StreamHandler keeps the stream object it was given; when the process swaps its
    standard streams (an embedding program, a test runner), that object may be closed by the
    next log line, and the record is lost with a logging error.
    """

    def __init__(self, name: str) -> None:
        logging.Handler.__init__(self)
        self._name = name

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        stream: TextIO = getattr(sys, self._name)
        return stream

    @stream.setter
    def stream(self, value: TextIO) -> None:  # StreamHandler API; the live stream is always used
        return


def setup(level: str | None = None, stream: TextIO | None = None, fmt: str | None = None) -> None:
    """Configure the root logger once: stdout, one line per event, redacted."""
    stream = stream or sys.stdout
    fmt = (fmt or env.get("LOG_FORMAT") or "text").lower()
    add_secret(env.get("TOKEN"))
    handler: logging.Handler
    if stream is sys.stdout or stream is sys.stderr:
        handler = _StandardStreamHandler("stdout" if stream is sys.stdout else "stderr")
    else:
        handler = logging.StreamHandler(stream)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        is_tty = bool(getattr(stream, "isatty", lambda: False)())
        handler.setFormatter(TextFormatter(colour=is_tty and not env.get_plain("NO_COLOR")))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel((level or env.get("LOG_LEVEL") or "INFO").upper())
    # httpx logs each request URL at INFO; keep it quiet
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
