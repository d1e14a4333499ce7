"""Host-side files shipped with the package: the bootstrap installers and the wrappers.

The server renders `linux/install.sh.in` and `windows/install.ps1.in` for a network by
replacing the single line `# @@FLAGEEMONITOR_DEFAULTS@@` with literal assignments (shell:
single-quoted, `'` written as `'\''`; PowerShell: single-quoted, `'` doubled):

    DEFAULT_SERVER_URL  DEFAULT_API_BASE  DEFAULT_REDE  DEFAULT_IMAGE  DEFAULT_RUNTIME_NAME
    DEFAULT_CONTAINER_ROOT  DEFAULT_TIMEZONE  DEFAULT_WATCHTOWER_IMAGE
    DEFAULT_WATCHTOWER_INTERVAL  DEFAULT_CONFIG_KEYS  INSTALLER_VERSION

(`DEFAULT_CONFIG_KEYS` is the server's valid config signing keys, `keyid:base64,...`: the
installer writes it as `FLAGEEMONITOR_CONFIG_KEYS` into the proxy's env file.)

(PowerShell names: `$DefaultServerUrl`, `$DefaultApiBase`, ... in PascalCase.)
The token is never embedded: the operator passes it on the command line.
"""

from __future__ import annotations

from importlib import resources

PLACEHOLDER = "# @@FLAGEEMONITOR_DEFAULTS@@"
DEFAULT_NAMES = (
    "DEFAULT_SERVER_URL",
    "DEFAULT_API_BASE",
    "DEFAULT_REDE",
    "DEFAULT_IMAGE",
    "DEFAULT_RUNTIME_NAME",
    "DEFAULT_CONTAINER_ROOT",
    "DEFAULT_TIMEZONE",
    "DEFAULT_WATCHTOWER_IMAGE",
    "DEFAULT_WATCHTOWER_INTERVAL",
    "DEFAULT_CONFIG_KEYS",
    "INSTALLER_VERSION",
)


def read(relative: str) -> str:
    """Text of a packaged deploy file, e.g. `linux/install.sh.in`."""
    return (resources.files(__name__) / relative).read_text(encoding="utf-8")
