"""Log redaction: no token ever reaches a log line, whatever logger emits it."""

from __future__ import annotations

import logging

from flageemonitor.server.core.security import redact


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not drop the record
            message = str(record.msg)
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


def install_redaction() -> None:
    """Attach the filter to every handler of the root and uvicorn loggers (idempotent)."""
    names = ["", "uvicorn", "uvicorn.access", "uvicorn.error", "flageemonitor"]
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
        for handler in logger.handlers:
            if not any(isinstance(f, RedactTokens) for f in handler.filters):
                handler.addFilter(RedactTokens())
