"""Networks (`rede`): a client's customer network and the installer defaults rendered for it."""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from flageemonitor.core.catalog import load_catalog
from flageemonitor.core.image_channel import ChannelInvalid, ImageChannel, from_stored, parse_channel
from flageemonitor.server.errors import Conflict, Invalid, NotFound
from flageemonitor.server.models import Network, utcnow
from flageemonitor.server.services import audit, clients, generation

NETWORK_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
RUNTIME_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def _no_nul(field: str, value: str | None) -> None:
    if value is not None and "\x00" in value:
        raise Invalid(f"{field}: must not contain a NUL character")


def add(
    s: Session,
    client_name: str,
    code: str,
    actor: str,
    *,
    provider: str | None = None,
    timezone: str | None = None,
    image: str | None = None,
    runtime_name: str | None = None,
    container_root: str | None = None,
) -> Network:
    client = clients.get(s, client_name)
    if not NETWORK_CODE_RE.match(code):
        raise Invalid(f"network code {code!r}: use 1..64 letters, digits, '_', '.', '-' (starting alphanumeric)")
    taken = s.scalar(select(Network.code).where(func.lower(Network.code) == code.lower()))
    if taken is not None:
        # codes name host groups and host-name prefixes: NET1 and net1 would be the same network
        raise Conflict(f"network {code!r} already exists" if taken == code else
                       f"network {code!r} clashes with the existing network {taken!r} (codes ignore case)")
    if timezone is not None:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise Invalid(f"time zone {timezone!r}: unknown (expected an IANA name like America/Sao_Paulo)") from None
    if runtime_name is not None and not RUNTIME_NAME_RE.match(runtime_name):
        raise Invalid(f"runtime name {runtime_name!r}: use letters, digits, '_', '.', '-'")
    for field, value in (("image", image), ("container root", container_root), ("provider", provider)):
        _no_nul(field, value)
    if provider is not None:
        load_catalog().provider(provider)  # UnknownProvider, with the did-you-mean
    net = Network(
        client_id=client.id,
        code=code,
        provider=provider.strip().lower() if provider else None,
        timezone=timezone,
        image=image,
        runtime_name=runtime_name,
        container_root=container_root,
        created_at=utcnow(),
    )
    s.add(net)
    s.flush()
    audit.record(s, actor, "network.add", f"network:{code}", f"client={client.name}")
    generation.bump(s)
    return net


def get(s: Session, code: str) -> Network:
    net = s.scalar(select(Network).where(Network.code == code))
    if net is None:
        raise NotFound(
            f"unknown network {code!r} (create it with: flageemonitor-server network add --client NAME {code})"
        )
    return net


def of_client(s: Session, client_id: int) -> list[Network]:
    return list(s.scalars(select(Network).where(Network.client_id == client_id).order_by(Network.code)))


def all_networks(s: Session, client_name: str | None = None) -> list[Network]:
    q = select(Network).options(joinedload(Network.client)).order_by(Network.code)
    if client_name:
        q = q.where(Network.client_id == clients.get(s, client_name).id)
    return list(s.scalars(q))


def summary(net: Network) -> dict[str, Any]:
    return {"code": net.code, "client": net.client.name, "provider": net.provider, "timezone": net.timezone,
            "image": net.image, "runtime_name": net.runtime_name, "container_root": net.container_root,
            "image_channel": channel(net).describe()}


def channel(net: Network) -> ImageChannel:
    """The network's image channel (`stable` when never set)."""
    return from_stored(net.image_channel)


def set_channel(s: Session, code: str, value: str, actor: str) -> tuple[ImageChannel, ImageChannel]:
    """Moves a network to `stable`, `canary` or a pinned version tag / digest; returns (before,
    after). Audited; the served config (and its ETag) changes at once on every worker."""
    net = get(s, code)
    try:
        wanted = parse_channel(value)
    except ChannelInvalid as exc:
        raise Invalid(f"channel {exc}") from None
    before = channel(net)
    if wanted != before:
        net.image_channel = wanted.tag
        s.flush()
        audit.record(s, actor, "network.channel", f"network:{code}", f"{before.describe()} -> {wanted.describe()}")
        generation.bump(s)
    return before, wanted
