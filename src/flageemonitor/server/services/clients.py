"""Clients: the customer companies that own networks and tokens."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from flageemonitor.server.errors import Conflict, Invalid, NotFound
from flageemonitor.server.models import Client, utcnow
from flageemonitor.server.services import audit


def add(s: Session, name: str, actor: str) -> Client:
    name = name.strip()
    if not name or len(name) > 200 or any(ord(c) < 32 for c in name):
        raise Invalid("client name: must be 1..200 printable characters")
    if s.scalar(select(Client).where(Client.name == name)) is not None:
        raise Conflict(f"client {name!r} already exists")
    client = Client(name=name, created_at=utcnow())
    s.add(client)
    s.flush()
    audit.record(s, actor, "client.add", f"client:{name}")
    return client


def get(s: Session, name: str) -> Client:
    client = s.scalar(select(Client).where(Client.name == name))
    if client is None:
        raise NotFound(f"unknown client {name!r} (create it with: flageemonitor-server client add NAME)")
    return client


def all_clients(s: Session) -> list[Client]:
    return list(s.scalars(select(Client).options(selectinload(Client.networks)).order_by(Client.name)))


def summary(client: Client) -> dict[str, Any]:
    return {"id": client.id, "name": client.name, "networks": [n.code for n in client.networks]}
