"""Log redaction: no token ever reaches a log line, whatever logger emits it (`core.redact`)."""

from __future__ import annotations

from flageemonitor.core.redact import install_filter

LOGGERS = ("", "uvicorn", "uvicorn.access", "uvicorn.error", "flageemonitor")


def install_redaction() -> None:
    """Attach the redaction filter to the root, uvicorn and project loggers and their handlers."""
    install_filter(LOGGERS)
