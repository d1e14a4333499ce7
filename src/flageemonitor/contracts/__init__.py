"""Versioned contract data files (catalog, providers, endpoint matrix, config schema).

The files are data, not code: adding a provider or an alias is a change to a YAML file here.
This module only locates and parses them.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import yaml

CATALOG_FILE = "catalog.v1.yaml"
MATRIX_FILE = "endpoint-matrix.v1.yaml"
CONFIG_SCHEMA_FILE = "bot-config.schema.v1.json"
PROVIDERS_DIR = "providers"
# libyaml's safe loader when PyYAML has it (same safe subset, parsed in C: the catalog is read at
# every command's start-up); the pure-Python one otherwise.
_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _safe_load(text: str) -> Any:
    return yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 - a safe loader


def _root() -> resources.abc.Traversable:
    return resources.files(__name__)


def read_text(name: str) -> str:
    """Return the text of a contract file shipped with the package."""
    return (_root() / name).read_text(encoding="utf-8")


@cache
def load_yaml(name: str) -> Any:
    return _safe_load(read_text(name))


@cache
def load_config_schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(read_text(CONFIG_SCHEMA_FILE))
    return data


@cache
def load_provider_files() -> tuple[dict[str, Any], ...]:
    """Every `providers/*.yaml` file, sorted by file name."""
    folder = _root() / PROVIDERS_DIR
    docs = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".yaml", ".yml")):
            docs.append(_safe_load(entry.read_text(encoding="utf-8")))
    return tuple(docs)
