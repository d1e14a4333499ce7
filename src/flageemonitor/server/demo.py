"""Demo data for a first run: one client, network DEMO, a valid config and a token."""

from __future__ import annotations

import shlex
from typing import Any

from sqlalchemy.orm import Session

from flageemonitor.server.core.secretbox import SecretBox
from flageemonitor.server.errors import NotFound
from flageemonitor.server.services import clients, configs, networks, tokens

CLIENT = "demo"
NETWORK = "DEMO"

DEMO_CONFIG: dict[str, Any] = {
    "PARAM_PROVIDER": "arius",
    "TIMEZONE": "America/Sao_Paulo",
    "PARAM_INVENTORY": "file",
    "PARAM_INVENTORY_FILE": "/flageemonitor/inventory.yaml",
    "PARAM_CRON_ACTIONS": {"diagnose_env": "*/30 * * * *"},
    "max_threads": 20,
}


def seed(s: Session, actor: str, box: SecretBox) -> str:
    """Create what is missing (idempotent) and issue a fresh token; returns it."""
    try:
        clients.get(s, CLIENT)
    except NotFound:
        clients.add(s, CLIENT, actor)
    try:
        networks.get(s, NETWORK)
    except NotFound:
        networks.add(s, CLIENT, NETWORK, actor, provider="arius", timezone="America/Sao_Paulo")
    if not configs.history(s, NETWORK):
        configs.store(s, NETWORK, DEMO_CONFIG, actor, comment="demo", box=box)
    token, _ = tokens.issue(s, CLIENT, actor, networks=[NETWORK])
    return token


def instructions(base: str, token: str) -> str:
    header = shlex.quote(f"X-Bot-Token: {token}")
    return "\n".join(
        [
            f"demo client {CLIENT!r}, network {NETWORK!r}, token (shown once):",
            f"  {token}",
            "",
            "config:",
            f"  curl -H {header} {base}/api/ingest/bot/config",
            "installer:",
            f"  curl -H {header} {base}/api/bootstrap/install.sh",
            "install one-liner (on the customer host):",
            f"  curl -fsSL -H {header} {base}/api/bootstrap/install.sh | sudo bash -s -- {shlex.quote(token)}",
            "a bad token gets 401:",
            f"  curl -i -H 'X-Bot-Token: fmt_wrong' {base}/api/ingest/bot/config",
        ]
    )
