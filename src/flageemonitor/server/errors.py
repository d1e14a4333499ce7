"""Errors of the admin operations; each message says what to do next."""

from __future__ import annotations

from flageemonitor.core.errors import FlageeError


class NotFound(FlageeError):
    """A named client, network, token or config version does not exist."""


class Conflict(FlageeError):
    """The name is already taken."""


class Invalid(FlageeError):
    """An argument is malformed (network code, scope, time zone...)."""


class MigrationRefused(FlageeError):
    """The database holds data the next schema cannot take; the message says what to change."""
