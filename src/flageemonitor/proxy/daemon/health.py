"""`flageemonitor health`: is there a valid config, and is the scheduler alive?

Used by the image's HEALTHCHECK, so it imports only the standard library and `core.env`
(no pydantic, no HTTP client): about as fast as the interpreter starts. The config check is a
JSON parse plus the one required key; full validation happened before the file was written
(the config store never installs an invalid document). Also runnable as
`python -m flageemonitor.proxy.daemon.health`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from flageemonitor.core import env
from flageemonitor.proxy.daemon.state import heartbeat_age, read_heartbeat

DEFAULT_MAX_AGE_S = 120.0
CONFIG_NAME = "config_bot.json"  # same as proxy.settings.CONFIG_NAME, kept import-free


def config_path(heartbeat: dict[str, object] | None = None) -> Path:
    """The config the daemon runs on (its heartbeat says, e.g. after `daemon --config FILE`), else
    `$FLAGEEMONITOR_CONFIG_PATH`, else `<state dir>/config_bot.json`."""
    if heartbeat is not None and heartbeat.get("config_path"):
        return Path(str(heartbeat["config_path"]))
    explicit = env.get("CONFIG_PATH")
    return Path(explicit) if explicit else env.state_dir() / CONFIG_NAME


def check(max_age_s: float = DEFAULT_MAX_AGE_S, require_daemon: bool = True,
          config: Path | None = None) -> tuple[bool, str]:
    """(healthy, one-line reason)."""
    path = config or config_path(read_heartbeat(env.state_dir()))
    try:
        doc = json.loads(path.read_bytes().decode("utf-8-sig"))
    except FileNotFoundError:
        return False, f"unhealthy: no config at {path}"
    except (ValueError, OSError, RecursionError) as exc:
        return False, f"unhealthy: config {path} is unreadable: {exc}"
    if not isinstance(doc, dict) or not str(doc.get("PARAM_REDE") or "").strip():
        return False, f"unhealthy: config {path} has no PARAM_REDE"
    if not require_daemon:
        return True, f"healthy: config {path} (version {doc.get('CONFIG_VERSION')})"
    hb = read_heartbeat(env.state_dir())
    if hb is None:
        return False, "unhealthy: the scheduler has not written a heartbeat"
    if hb.get("state") == "stopped":
        return False, f"unhealthy: the daemon (pid {hb.get('pid')}) has stopped"
    age = heartbeat_age(hb)
    if age > max_age_s:
        return False, f"unhealthy: scheduler stuck, last heartbeat {age:.0f}s ago (limit {max_age_s:.0f}s)"
    return True, f"healthy: heartbeat {age:.0f}s ago, config version {hb.get('config_version')}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    max_age = float(args[0]) if args else DEFAULT_MAX_AGE_S
    ok, reason = check(max_age)
    print(reason)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
