"""Named errors. Each maps to one per-host result status or one CLI exit code."""

from __future__ import annotations


class FlageeError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigInvalid(FlageeError):
    """A config file or value failed validation; the message names the field and the reason."""


class ConfigMissing(FlageeError):
    """No config could be found where it was looked for."""


class UnknownAction(FlageeError):
    """The action name resolves to nothing in the catalog."""

    def __init__(self, name: str, suggestions: list[str], hint: str = "") -> None:
        self.name = name
        self.suggestions = suggestions
        text = f" Did you mean: {', '.join(suggestions)}?" if suggestions else ""
        if hint:
            text = f" {hint}{text}"
        super().__init__(
            f"unknown action {name!r}.{text} Run 'flageemonitor actions' for the full list."
        )


class UnknownProvider(FlageeError):
    def __init__(self, name: str, known: list[str]) -> None:
        import difflib

        self.name = name
        self.known = known
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f" Did you mean: {close[0]}?" if close else ""
        super().__init__(f"unknown provider {name!r}.{hint} Known providers: {', '.join(known)}")


class InventoryError(FlageeError):
    """The inventory source could not be read (file, Zabbix API); never an empty host list."""


class HostUnreachable(FlageeError):
    """Nothing answered at the endpoint's address, or the connection was cut."""


class AuthRejected(FlageeError):
    """The endpoint refused the credentials."""


class HostKeyMismatch(FlageeError):
    """The endpoint's host key differs from the one pinned on first use."""


class CommandTimeout(FlageeError):
    """A connect or a remote command exceeded its time budget."""


class CompatBlocked(FlageeError):
    """The compatibility guard refused to run the action on this endpoint."""


class ActionFailed(FlageeError):
    """The action ran and reported a failure."""


class ActionRefused(FlageeError):
    """The action refused the request before contacting any host (e.g. a destructive action
    without a host filter); the message says what to add."""


class PrepareFailed(FlageeError):
    """The action's per-run preparation failed (a download, a checksum); no host was contacted.
    The message names the URL or file and the reason."""
