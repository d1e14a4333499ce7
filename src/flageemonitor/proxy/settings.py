"""Where the proxy finds its config and keeps its state."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from flageemonitor.core import env
from flageemonitor.core.config_model import BotConfig, load_config_file

CONFIG_NAME = "config_bot.json"


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """`$FLAGEEMONITOR_STATE_DIR` (or the ARIUSMONITOR_ twin), default /flageemonitor/state."""
    return env.state_dir(environ)


def config_path(cli_path: Path | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """`--config FILE`, else `$FLAGEEMONITOR_CONFIG_PATH`, else `<state dir>/config_bot.json`."""
    if cli_path is not None:
        return cli_path
    explicit = env.get("CONFIG_PATH", environ=environ)
    if explicit:
        return Path(explicit)
    return state_dir(environ) / CONFIG_NAME


def load_config(cli_path: Path | None = None, environ: Mapping[str, str] | None = None) -> BotConfig:
    """Load and validate the config; raises ConfigMissing or ConfigInvalid with the path."""
    return load_config_file(config_path(cli_path, environ))
