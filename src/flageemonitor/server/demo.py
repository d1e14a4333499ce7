"""Demo data for a first run: one client, network DEMO, a valid config and a token."""

from __future__ import annotations

import shlex
from typing import Any

from sqlalchemy.orm import Session

from flageemonitor.server import crud
from flageemonitor.server.errors import NotFound

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


def seed(s: Session, actor: str) -> str:
    """Create what is missing (idempotent) and issue a fresh token; returns it."""
    try:
        crud.get_client(s, CLIENT)
    except NotFound:
        crud.add_client(s, CLIENT, actor)
    try:
        crud.get_network(s, NETWORK)
    except NotFound:
        crud.add_network(s, CLIENT, NETWORK, actor, provider="arius", timezone="America/Sao_Paulo")
    if not crud.config_history(s, NETWORK):
        crud.set_config(s, NETWORK, DEMO_CONFIG, actor, comment="demo")
    token, _ = crud.issue_token(s, CLIENT, actor, networks=[NETWORK])
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
