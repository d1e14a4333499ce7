"""Versioned `config_bot.json` per network: validated before storing, never rewritten.

A version is stored as the exact JSON served, with its secret values sealed by the SecretBox
(`server.core.secretbox`); `served_body` opens them. The ETag is the hash of the served body.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from flageemonitor.core.catalog import load_catalog
from flageemonitor.core.config_checks import check_config
from flageemonitor.core.config_model import validate_config
from flageemonitor.core.errors import ConfigInvalid
from flageemonitor.core.fleet_contract import DEFAULT_HEARTBEAT_INTERVAL_S, HEARTBEAT_KEY
from flageemonitor.core.image_channel import RESERVED_KEYS, ImageChannel
from flageemonitor.core.redact import SECRET_CONFIG_KEYS
from flageemonitor.server.core.secretbox import SecretBox, redacted
from flageemonitor.server.errors import NotFound
from flageemonitor.server.models import ConfigVersion, Network, utcnow
from flageemonitor.server.services import audit, generation, networks


def render_body(code: str, version: int, data: dict[str, Any], timezone: str | None = None) -> str:
    """The served JSON: the network's code and the version set, the network's time zone when the
    config has none; refused (ConfigInvalid naming the field) if invalid or if it names an action or
    provider the proxy does not know."""
    given = data.get("PARAM_REDE")
    if given is not None and given != code:
        raise ConfigInvalid(f"PARAM_REDE: {given!r} differs from the network {code!r}; "
                            f"remove the key or store the config with --network {given}")
    content = dict(data)
    content["PARAM_REDE"] = code
    content["CONFIG_VERSION"] = version
    if timezone and not content.get("TIMEZONE"):
        content["TIMEZONE"] = timezone
    config = validate_config(content)  # raises ConfigInvalid naming the field
    problems = check_config(config, load_catalog()).errors
    if problems:
        raise ConfigInvalid("; ".join(problems))
    return json.dumps(content, ensure_ascii=False, indent=2) + "\n"


def warnings_for(data: Any) -> list[str]:
    """Keys that look like typos of known ones (stored anyway; the operator should look)."""
    if not isinstance(data, dict):
        return []
    try:
        config = validate_config({**data, "PARAM_REDE": data.get("PARAM_REDE") or "X"})
    except ConfigInvalid:
        return []  # `store` reports the errors
    return check_config(config, load_catalog()).warnings


def etag_for(body: str) -> str:
    return '"' + hashlib.sha256(body.encode("utf-8")).hexdigest()[:40] + '"'


def _allocate_version(s: Session, network_id: int) -> int:
    """The next version of the network's config, taken with one UPDATE of the network row.

    The UPDATE is the transaction's first write: PostgreSQL locks the row and SQLite takes its
    write lock (waiting `busy_timeout`), so concurrent writers get distinct, contiguous versions;
    a writer whose transaction fails gives its number back by rolling back.
    """
    s.execute(update(Network).where(Network.id == network_id).values(config_seq=Network.config_seq + 1))
    return int(s.scalar(select(Network.config_seq).where(Network.id == network_id)) or 0)


def store(
    s: Session, code: str, data: Any, actor: str, comment: str | None = None, *, box: SecretBox
) -> ConfigVersion:
    net = networks.get(s, code)
    if not isinstance(data, dict):
        raise ConfigInvalid(f"config must be a JSON object, got {type(data).__name__}")
    reserved = [key for key in RESERVED_KEYS if key in data]
    if reserved:
        raise ConfigInvalid(f"{', '.join(reserved)}: set by the server from the network's image channel; remove "
                            f"the key and use 'flageemonitor-server network channel {code} CHANNEL'")
    version = _allocate_version(s, net.id)
    body = render_body(code, version, data, net.timezone)
    row = ConfigVersion(
        network_id=net.id,
        version=version,
        body=box.seal_body(body),
        etag=etag_for(body),
        created_at=utcnow(),
        created_by=actor,
        comment=audit.escape(comment) if comment is not None else None,  # printed one per line
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


def served_body(row: ConfigVersion, box: SecretBox) -> str:
    """The config exactly as the proxy receives it (secrets opened)."""
    return box.open_body(row.body)


def delivered_body(row: ConfigVersion, channel: ImageChannel, box: SecretBox) -> tuple[str, str]:
    """The exact bytes the proxy receives and their ETag: the stored version with the network's
    image channel added as `PARAM_IMAGE_CHANNEL`/`PARAM_IMAGE_TAG` (a channel change is a new
    body and a new ETag without a new config version)."""
    content = json.loads(served_body(row, box))
    content.update(channel.as_config())
    body = json.dumps(content, ensure_ascii=False, indent=2) + "\n"
    return body, etag_for(body)


def shown_body(row: ConfigVersion, box: SecretBox, *, secrets: bool = False) -> str:
    """What an operator sees: the served body, secret values as `***` unless `secrets`."""
    body = served_body(row, box)
    return body if secrets else json.dumps(redacted(json.loads(body)), ensure_ascii=False, indent=2) + "\n"


def diff(s: Session, code: str, old: int | None = None, new: int | None = None, *, box: SecretBox,
         secrets: bool = False) -> str:
    """Unified diff between two versions (default: the previous one and the latest).

    Secret values show as `***`, and as `*** (changed)` where they differ, unless `secrets`.
    """
    newer = get(s, code, new)
    old_version = old if old is not None else newer.version - 1
    new_doc = json.loads(served_body(newer, box))
    if old_version < 1:
        old_doc: dict[str, Any] | None = None
        old_label = "(none)"
    else:
        older = get(s, code, old_version)
        old_doc, old_label = json.loads(served_body(older, box)), f"{code} v{older.version}"
    if not secrets:
        changed = {k for k in SECRET_CONFIG_KEYS if old_doc is not None and old_doc.get(k) != new_doc.get(k)}
        new_doc = redacted(new_doc)
        for key in changed & set(new_doc):
            if new_doc[key] == "***":
                new_doc[key] = "*** (changed)"
        old_doc = redacted(old_doc) if old_doc is not None else None
    lines = difflib.unified_diff(
        _comparable(old_doc).splitlines(keepends=True),
        _comparable(new_doc).splitlines(keepends=True),
        fromfile=old_label,
        tofile=f"{code} v{newer.version}",
    )
    return "".join(lines)


def _comparable(doc: dict[str, Any] | None) -> str:
    """Sorted keys, CONFIG_VERSION left out: the diff shows what changed, not the counter."""
    if doc is None:
        return ""
    data = dict(doc)
    data.pop("CONFIG_VERSION", None)
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def _rewrite_bodies(s: Session, rewrite: Callable[[str], str]) -> int:
    """Apply `rewrite` to every stored body; returns how many rows changed. The bodies served and
    the ETags stay the same: only how the secrets are sealed changes."""
    changed = 0
    for row in s.scalars(select(ConfigVersion).order_by(ConfigVersion.id)):
        body = rewrite(row.body)
        if body != row.body:
            row.body = body
            changed += 1
    s.flush()
    return changed


def seal_all(s: Session, box: SecretBox) -> int:
    """Seal secrets stored in clear (versions written before encryption at rest)."""
    return _rewrite_bodies(s, box.seal_body)


def reseal_all(s: Session, box: SecretBox) -> int:
    """Every stored version re-encrypted with the box's current key (plaintext secrets sealed)."""
    return _rewrite_bodies(s, box.reseal_body)


def rollback(s: Session, code: str, to: int, actor: str, *, box: SecretBox) -> ConfigVersion:
    """A new version whose content is version `to`'s: history is never rewritten."""
    target = get(s, code, to)
    data = json.loads(served_body(target, box))
    row = store(s, code, data, actor, comment=f"rollback to v{to}", box=box)
    audit.record(s, actor, "config.rollback", f"network:{code}", f"to={to} new_version={row.version}")
    return row


def version_summary(row: ConfigVersion) -> dict[str, Any]:
    return {"version": row.version, "created_at": row.created_at.isoformat(), "created_by": row.created_by,
            "comment": row.comment, "etag": row.etag}
