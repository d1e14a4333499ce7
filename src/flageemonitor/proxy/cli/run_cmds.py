"""`flageemonitor run | plan | actions | version`."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from flageemonitor import __version__
from flageemonitor.core.catalog import load_catalog
from flageemonitor.proxy.actions import implemented


def register(app: typer.Typer) -> None:
    app.command("version", help="Print the proxy version.")(version)
    app.command("actions", help="List the canonical actions and their aliases.")(actions)


def version() -> None:
    typer.echo(__version__)


def actions(json_out: Annotated[bool, typer.Option("--json", help="machine-readable list")] = False) -> None:
    catalog = load_catalog()
    impl = set(implemented())
    rows: list[dict[str, Any]] = []
    for spec in catalog.actions.values():
        provider_names = {
            p.name: sorted(k for k, v in p.external_to_canonical.items() if v == spec.name)
            for p in catalog.providers.values()
        }
        rows.append({
            "name": spec.name,
            "kind": spec.kind.value,
            "min_level": spec.min_level.value,
            "changes_endpoint": spec.changes_endpoint,
            "legacy_aliases": list(spec.legacy_aliases),
            "generic_aliases": list(spec.generic_aliases),
            "provider_names": {k: v for k, v in provider_names.items() if v},
            "implemented": spec.name in impl,
            "summary": spec.summary,
        })
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="FlageeMonitor actions")
    for col in ("canonical", "kind", "level", "aliases", "provider names", "available"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["name"]), str(r["kind"]), str(r["min_level"]),
            ", ".join(r["legacy_aliases"] + r["generic_aliases"]),
            "; ".join(f"{p}: {', '.join(n)}" for p, n in r["provider_names"].items()),
            "yes" if r["implemented"] else "not in this version",
        )
    Console().print(table)
