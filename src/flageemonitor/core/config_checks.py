"""Checks of a valid config against the catalog, run where a config is stored (the server).

Errors refuse the config: names the proxy would not understand at run time, found now rather
than at 23:50 when the schedule fires — an unknown provider, an unknown action in
`PARAM_CRON_ACTIONS` (each with the catalog's did-you-mean), a `batch` / `max_fail_percent` that
cannot apply to the entry's action (core/staging.py). Warnings let the config through:
unknown keys that look like typos of known ones (`max_thread`, `ssh.timout`); unknown keys far
from every known one are kept silently (a newer proxy may understand them).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from flageemonitor.core import staging
from flageemonitor.core.catalog import ActionKind, Catalog, normalize_provider
from flageemonitor.core.config_model import BotConfig, CronActionSpec
from flageemonitor.core.errors import UnknownAction, UnknownProvider
from flageemonitor.core.staging import StagingRefused

CONFIG_REFRESH = "config_refresh"  # the schedule's own entry, not a catalog action
_TYPO_CUTOFF = 0.8


@dataclass
class ConfigCheck:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check_config(config: BotConfig, catalog: Catalog) -> ConfigCheck:
    out = ConfigCheck()
    provider: str | None = None
    for key in ("PARAM_PROVIDER", "provider"):
        value = getattr(config, key)
        if value and value.strip():
            try:
                provider = catalog.provider(value).name
            except UnknownProvider as exc:
                out.errors.append(f"{key}: {exc}")
            break
    for name, entry in config.PARAM_CRON_ACTIONS.items():
        if name.strip().lower() == CONFIG_REFRESH:
            continue
        try:
            spec = catalog.resolve(name, provider).spec
        except UnknownAction as exc:
            out.errors.append(f"PARAM_CRON_ACTIONS: {exc}")
            continue
        if isinstance(entry, CronActionSpec):
            try:
                staging.choose(entry.batch, entry.max_fail_percent, action=spec.name,
                               local=spec.kind is ActionKind.LOCAL, changes_endpoint=spec.changes_endpoint)
            except StagingRefused as exc:
                out.errors.append(f"PARAM_CRON_ACTIONS.{name}: {exc}")
    for name in _rollout_providers(config):
        if normalize_provider(name) not in catalog.providers:
            out.errors.append(f"PARAM_ROLLOUT_{name.upper()}: {UnknownProvider(name, sorted(catalog.providers))}")
    out.warnings.extend(_typos(config, ""))
    return out


def _rollout_providers(config: BotConfig) -> list[str]:
    prefix = "PARAM_ROLLOUT_"
    return [key[len(prefix):].lower() for key in (config.model_extra or {}) if key.startswith(prefix)]


def _typos(model: BaseModel, prefix: str) -> list[str]:
    known = list(type(model).model_fields)
    found = []
    for key in model.model_extra or {}:
        if key.startswith("PARAM_ROLLOUT_"):
            continue
        close = difflib.get_close_matches(key, known, n=1, cutoff=_TYPO_CUTOFF)
        if close:
            found.append(f"{prefix}{key}: unknown key, ignored by the proxy; did you mean {prefix}{close[0]}?")
    for name in known:
        value: Any = getattr(model, name)
        if isinstance(value, BaseModel) and value.model_config.get("extra") == "allow":
            found.extend(_typos(value, f"{prefix}{name}."))
    return found
