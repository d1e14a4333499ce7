"""The baseline: a bare asyncssh gather, one connect + one command per host, nothing else.

    python bare_asyncssh.py INVENTORY.yaml CONNECT_TIMEOUT CONCURRENCY
Prints one JSON line: {"ok": n, "failed": n, "slowest_failed_s": s}.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import asyncssh
import yaml


async def one(host: dict[str, object], key: asyncssh.SSHKey, timeout: float, sem: asyncio.Semaphore,
              failed_after: list[float]) -> bool:
    async with sem:
        started = time.monotonic()
        try:
            async with asyncssh.connect(str(host["ip"]), int(str(host["port"])), username="root", client_keys=[key],
                                        known_hosts=None, connect_timeout=timeout, agent_path=None,
                                        config=None) as conn:
                result = await asyncio.wait_for(conn.run("echo ok", check=False), timeout=30)
                return result.exit_status == 0
        except (TimeoutError, OSError, asyncssh.Error):
            failed_after.append(time.monotonic() - started)
            return False


async def main(path: str, timeout: float, concurrency: int) -> None:
    with open(path) as fh:
        hosts = yaml.safe_load(fh)["hosts"]
    key = asyncssh.read_private_key(hosts[0]["key_file"])
    sem = asyncio.Semaphore(concurrency)
    failed_after: list[float] = []
    results = await asyncio.gather(*(one(h, key, timeout, sem, failed_after) for h in hosts))
    print(json.dumps({"ok": sum(results), "failed": len(results) - sum(results),
                      "slowest_failed_s": max(failed_after, default=0.0)}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3])))
