"""`python -m flageemonitor.proxy.daemon [--config FILE] [--inventory-file FILE]`.

`flageemonitor daemon` execs this entry point so the long-running process does not carry the
CLI framework (Typer, Rich) in memory; see benchmarks/soak for the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import types
from pathlib import Path


def _skip_httpx_cli() -> None:
    """httpx imports its own command-line client (click, rich, pygments: ~10 MB resident) when
    those packages are installed, as they are with Typer; the daemon never uses it. A stub
    without `main` makes httpx fall back to its no-CLI path."""
    sys.modules.setdefault("httpx._main", types.ModuleType("httpx._main"))


def _num(name: str, default: float) -> float:
    from flageemonitor.core import env

    raw = env.get(name)
    try:
        return float(raw) if raw else default
    except ValueError:
        return default


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="flageemonitor daemon")
    ap.add_argument("--config", "-c", type=Path, default=None)
    ap.add_argument("--inventory-file", type=Path, default=None)
    args = ap.parse_args(argv)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the daemon's own handler is installed
    _skip_httpx_cli()
    from flageemonitor.proxy import logs, settings
    from flageemonitor.proxy.configstore import ConfigStore, source_from_env
    from flageemonitor.proxy.daemon.clock import clock_from_env
    from flageemonitor.proxy.daemon.runner import Daemon, DaemonOptions

    logs.setup()
    store = ConfigStore(settings.config_path(args.config))
    from flageemonitor.core import env

    # with an explicit --config, or FLAGEEMONITOR_CONFIG_REFRESH=false (the original's switch for
    # a read-only mounted config), the daemon runs on the local file alone
    refresh = env.get("CONFIG_REFRESH")
    no_fetch = args.config is not None or (refresh is not None and not env.truthy(refresh))
    source = None if no_fetch else source_from_env()
    options = DaemonOptions(
        state_dir=settings.state_dir(),
        inventory_file=args.inventory_file,
        max_concurrent_runs=int(_num("MAX_CONCURRENT_RUNS", 4)),
        stop_grace_s=_num("STOP_GRACE", 8.0),
        heartbeat_interval_s=_num("HEARTBEAT_INTERVAL", 5.0),
        initial_backoff_s=_num("CONFIG_RETRY", 5.0),
        backlog_interval_s=_num("BACKLOG_INTERVAL", 60.0),
    )
    from flageemonitor.proxy.controlplane.sender import target_from_env

    return asyncio.run(Daemon(options, store, source, clock=clock_from_env(), target=target_from_env()).run())


if __name__ == "__main__":
    sys.exit(main())
