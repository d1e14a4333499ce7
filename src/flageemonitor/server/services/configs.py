"""Versioned `config_bot.json` per network: validated before storing, never rewritten."""

from __future__ import annotations

import difflib
import hashlib
import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flageemonitor.core.config_model import validate_config
from flageemonitor.core.errors import ConfigInvalid
from flageemonitor.core.fleet_contract import DEFAULT_HEARTBEAT_INTERVAL_S, HEARTBEAT_KEY
from flageemonitor.server.errors import NotFound
from flageemonitor.server.models import ConfigVersion, utcnow
from flageemonitor.server.services import audit, generation, networks


def render_body(code: str, version: int, data: dict[str, Any]) -> str:
    content = dict(data)
    content["PARAM_REDE"] = code
    content["CONFIG_VERSION"] = version
    validate_config(content)  # raises ConfigInvalid naming the field
    return json.dumps(content, ensure_ascii=False, indent=2) + "\n"


def etag_for(body: str) -> str:
    return '"' + hashlib.sha256(body.encode("utf-8")).hexdigest()[:40] + '"'


def store(s: Session, code: str, data: Any, actor: str, comment: str | None = None) -> ConfigVersion:
    net = networks.get(s, code)
    if not isinstance(data, dict):
        raise ConfigInvalid(f"config must be a JSON object, got {type(data).__name__}")
    current = s.scalar(select(func.max(ConfigVersion.version)).where(ConfigVersion.network_id == net.id)) or 0
    version = current + 1
    body = render_body(code, version, data)
    row = ConfigVersion(
        network_id=net.id,
        version=version,
        body=body,
        etag=etag_for(body),
        created_at=utcnow(),
        created_by=actor,
        comment=comment,
    )
    s.add(row)
    s.flush()
    audit.record(s, actor, "config.set", f"network:{code}",
                 f"version={version}" + (f" comment={comment}" if comment else ""))
    generation.bump(s)
    return row


def latest(s: Session, network_id: int) -> ConfigVersion | None:
    return s.scalar(
        select(ConfigVersion)
        .where(ConfigVersion.network_id == network_id)
        .order_by(ConfigVersion.version.desc())
        .limit(1)
    )


def latest_of_all(s: Session) -> dict[int, ConfigVersion]:
    """The latest version of every network's config, by network id."""
    newest = (
        select(ConfigVersion.network_id, func.max(ConfigVersion.version).label("version"))
        .group_by(ConfigVersion.network_id)
        .subquery()
    )
    rows = s.scalars(
        select(ConfigVersion).join(
            newest,
            (ConfigVersion.network_id == newest.c.network_id) & (ConfigVersion.version == newest.c.version),
        )
    )
    return {row.network_id: row for row in rows}


def heartbeat_interval(row: ConfigVersion | None) -> int:
    """Seconds between a proxy's check-ins: the config's PARAM_HEARTBEAT_INTERVAL, else 60."""
    if row is None:
        return DEFAULT_HEARTBEAT_INTERVAL_S
    value = json.loads(row.body).get(HEARTBEAT_KEY)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 1:
        return DEFAULT_HEARTBEAT_INTERVAL_S
    return int(value)


def get(s: Session, code: str, version: int | None = None) -> ConfigVersion:
    net = networks.get(s, code)
    if version is None:
        row = latest(s, net.id)
        if row is None:
            raise NotFound(
                f"network {code!r} has no config yet (flageemonitor-server config set --network {code} FILE)"
            )
        return row
    row = s.scalar(
        select(ConfigVersion).where(ConfigVersion.network_id == net.id, ConfigVersion.version == version)
    )
    if row is None:
        raise NotFound(f"network {code!r} has no config version {version} (see: config history --network {code})")
    return row


def history(s: Session, code: str) -> list[ConfigVersion]:
    net = networks.get(s, code)
    q = select(ConfigVersion).where(ConfigVersion.network_id == net.id).order_by(ConfigVersion.version)
    return list(s.scalars(q))


def diff(s: Session, code: str, old: int | None = None, new: int | None = None) -> str:
    """Unified diff between two versions (default: the previous one and the latest)."""
    newer = get(s, code, new)
    old_version = old if old is not None else newer.version - 1
    if old_version < 1:
        older_body, old_label = "", "(none)"
    else:
        older = get(s, code, old_version)
        older_body, old_label = older.body, f"{code} v{older.version}"
    lines = difflib.unified_diff(
        _comparable(older_body).splitlines(keepends=True),
        _comparable(newer.body).splitlines(keepends=True),
        fromfile=old_label,
        tofile=f"{code} v{newer.version}",
    )
    return "".join(lines)


def _comparable(body: str) -> str:
    """Sorted keys, CONFIG_VERSION left out: the diff shows what changed, not the counter."""
    if not body:
        return ""
    data = json.loads(body)
    data.pop("CONFIG_VERSION", None)
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def rollback(s: Session, code: str, to: int, actor: str) -> ConfigVersion:
    """A new version whose content is version `to`'s: history is never rewritten."""
    target = get(s, code, to)
    data = json.loads(target.body)
    row = store(s, code, data, actor, comment=f"rollback to v{to}")
    audit.record(s, actor, "config.rollback", f"network:{code}", f"to={to} new_version={row.version}")
    return row


def version_summary(row: ConfigVersion) -> dict[str, Any]:
    return {"version": row.version, "created_at": row.created_at.isoformat(), "created_by": row.created_by,
            "comment": row.comment, "etag": row.etag}
