"""The image's entrypoint keeps in step with the CLI; the Dockerfile keeps its contract."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from flageemonitor.proxy.cli.app import app

ROOT = Path(__file__).resolve().parents[2]


def cli_commands() -> set[str]:
    group = typer.main.get_command(app)
    return set(group.commands)  # type: ignore[attr-defined]


def test_entrypoint_knows_every_top_level_cli_command() -> None:
    text = (ROOT / "deploy/image/entrypoint.sh").read_text()
    listed = set(re.search(r'^CLI_COMMANDS="([^"]*)"', text, re.M).group(1).split())  # type: ignore[union-attr]
    assert cli_commands() <= listed


def test_dockerfile_contract() -> None:
    text = (ROOT / "deploy/Dockerfile").read_text()
    assert "ARG BASE_IMAGE=python:3.12-slim-bookworm" in text
    assert re.search(r'^HEALTHCHECK .*CMD \["python", "-m", "flageemonitor.proxy.daemon.health"\]$', text, re.M)
    assert 'ENTRYPOINT ["/usr/bin/tini", "--", "/flageemonitor/entrypoint.sh"]' in text
    assert 'VOLUME ["/flageemonitor/state"]' in text
    for label in ("version", "revision", "source"):
        assert f"org.opencontainers.image.{label}=" in text
    assert "ln -sfn /flageemonitor /ariusmonitor" in text
    for folder in ("scripts", "utilities", "host-linux", "postgresql"):
        assert (ROOT / "deploy/image" / folder).is_dir()
