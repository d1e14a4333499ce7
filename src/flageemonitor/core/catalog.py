"""Action catalog and providers: turn whatever name an operator types into a canonical action.

Resolution order: the provider's external names are translated first (`terminal_ping` for
zanthus), then legacy and generic aliases resolve to the catalog's canonical name. Every alias
resolves to the canonical name itself, never to another alias.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from typing import Any

from flageemonitor import contracts
from flageemonitor.core.errors import UnknownAction, UnknownProvider

DEFAULT_PROVIDER = "arius"


class ActionKind(StrEnum):
    REMOTE = "remote"
    LOCAL = "local"


class Level(StrEnum):
    L1 = "L1"
    L2 = "L2"
    L3 = "L3"

    @property
    def rank(self) -> int:
        """Higher is better supported: L1=3, L2=2, L3=1."""
        return {"L1": 3, "L2": 2, "L3": 1}[self.value]


@dataclass(frozen=True)
class ActionSpec:
    name: str
    kind: ActionKind
    min_level: Level
    changes_endpoint: bool
    legacy_aliases: tuple[str, ...]
    generic_aliases: tuple[str, ...]
    summary: str
    hosts_optional: bool = False

    @property
    def aliases(self) -> tuple[str, ...]:
        return self.legacy_aliases + self.generic_aliases


@dataclass(frozen=True)
class Provider:
    name: str
    default_rollout: int
    external_to_canonical: dict[str, str] = field(default_factory=dict)
    action_overrides: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Resolution:
    requested: str
    provider: str
    translated: str  # after the provider's external-name translation
    canonical: str
    spec: ActionSpec
    used_alias: bool


@dataclass(frozen=True)
class Catalog:
    actions: dict[str, ActionSpec]
    aliases: dict[str, str]  # alias -> canonical
    providers: dict[str, Provider]

    def spec(self, canonical: str) -> ActionSpec:
        return self.actions[canonical]

    def provider(self, name: str | None) -> Provider:
        key = normalize_provider(name)
        try:
            return self.providers[key]
        except KeyError:
            raise UnknownProvider(key, sorted(self.providers)) from None

    def known_names(self, provider: Provider | None = None) -> list[str]:
        names = set(self.actions) | set(self.aliases)
        for p in self.providers.values() if provider is None else [provider]:
            names |= set(p.external_to_canonical)
        return sorted(names)

    def resolve(self, name: str, provider: str | None = None) -> Resolution:
        """Resolve `name` for `provider`; raises UnknownAction with close names."""
        prov = self.provider(provider)
        requested = name.strip()
        key = requested.lower()
        translated = prov.external_to_canonical.get(key, key)
        if translated in self.actions:
            canonical = translated
        elif translated in self.aliases:
            canonical = self.aliases[translated]
        else:
            owners = sorted(p.name for p in self.providers.values() if key in p.external_to_canonical)
            hint = f"It is a {'/'.join(owners)} action name: run with --provider {owners[0]}." if owners else ""
            close = difflib.get_close_matches(key, self.known_names(), n=5, cutoff=0.6)
            raise UnknownAction(requested, [] if owners else close, hint)
        return Resolution(
            requested=requested,
            provider=prov.name,
            translated=translated,
            canonical=canonical,
            spec=self.actions[canonical],
            used_alias=canonical != key,
        )


def normalize_provider(name: str | None) -> str:
    value = (name or "").strip().lower()
    return value or DEFAULT_PROVIDER


def _build(catalog_doc: dict[str, Any], provider_docs: tuple[dict[str, Any], ...]) -> Catalog:
    actions: dict[str, ActionSpec] = {}
    aliases: dict[str, str] = {}
    for item in catalog_doc["actions"]:
        spec = ActionSpec(
            name=item["name"],
            kind=ActionKind(item["kind"]),
            min_level=Level(item["min_level"]),
            changes_endpoint=bool(item["changes_endpoint"]),
            legacy_aliases=tuple(item.get("legacy_aliases") or ()),
            generic_aliases=tuple(item.get("generic_aliases") or ()),
            summary=str(item.get("summary", "")),
            hosts_optional=bool(item.get("hosts_optional", False)),
        )
        if spec.name in actions or spec.name in aliases:
            raise ValueError(f"catalog: duplicate action name {spec.name!r}")
        actions[spec.name] = spec
        for alias in spec.aliases:
            if alias in aliases or alias in actions:
                raise ValueError(f"catalog: alias {alias!r} is declared twice")
            aliases[alias] = spec.name
    providers: dict[str, Provider] = {}
    for doc in provider_docs:
        name = normalize_provider(doc["provider"])
        table = {str(k).lower(): str(v) for k, v in (doc.get("external_to_canonical") or {}).items()}
        for external, target in table.items():
            if target not in actions:
                raise ValueError(f"provider {name}: {external!r} maps to unknown action {target!r}")
        providers[name] = Provider(
            name=name,
            default_rollout=int(doc.get("default_rollout", 0)),
            external_to_canonical=table,
            action_overrides={str(k): str(v) for k, v in (doc.get("action_overrides") or {}).items()},
        )
    if DEFAULT_PROVIDER not in providers:
        raise ValueError(f"contracts: the default provider {DEFAULT_PROVIDER!r} has no data file")
    return Catalog(actions=actions, aliases=aliases, providers=providers)


@cache
def load_catalog() -> Catalog:
    """The catalog built from the packaged contract files (parsed once per process)."""
    return _build(contracts.load_yaml(contracts.CATALOG_FILE), contracts.load_provider_files())
