"""Log redaction: no token ever reaches a log line, whatever logger emits it."""

from __future__ import annotations

import logging
from typing import Any

from flageemonitor.server.core.security import redact


def _clean(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


class RedactTokens(logging.Filter):
    """Redact the message and each argument in place, keeping the argument shape that
    formatters such as uvicorn's access formatter unpack."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _clean(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_clean(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _clean(v) for k, v in record.args.items()}
        return True


def install_redaction() -> None:
    """Attach the filter to the root, uvicorn and project loggers and their handlers (idempotent)."""
    names = ["", "uvicorn", "uvicorn.access", "uvicorn.error", "flageemonitor"]
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
        for handler in logger.handlers:
            if not any(isinstance(f, RedactTokens) for f in handler.filters):
                handler.addFilter(RedactTokens())
