"""`scripts/demo`, the README's main command: it comes up, what it prints works (the proxy shows
up on /fleet within one heartbeat, its scheduled diagnose_env arrives there with the failing
personas), Ctrl-C leaves nothing running. The container variant is the e2e suite's own path
(installer + wrappers); here the proxy runs as a process to keep the suite lean."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from devtools.demo import HEARTBEAT_S

from tests.support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_demo_starts_the_system_and_leaves_nothing_running_on_ctrl_c() -> None:
    proc = subprocess.Popen([str(ROOT / "scripts/demo"), "--process"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    fleet: FleetPage | None = None
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                break
        ready = time.monotonic()
        out = "".join(lines)
        assert "FlageeMonitor demo is running" in out, out
        fleet_url, person, password = re.search(  # type: ignore[union-attr]
            r"The fleet page: (\S+)/fleet  \(sign in as (\S+) / (\S+)\)", out).groups()
        fleet = FleetPage(fleet_url, person, password)
        run_line = next(line.strip() for line in lines if "flageemonitor run diagnose_env" in line)
        workdir = re.search(r"FLAGEEMONITOR_STATE_DIR=(\S+)/state", run_line).group(1)  # type: ignore[union-attr]
        # the proxy is on /fleet, online, within one heartbeat of the demo being up
        proxy_id = (Path(workdir) / "state" / "proxy-id").read_text().strip()
        first = wait_until(lambda: fleet.row(proxy_id), max(1.0, HEARTBEAT_S - (time.monotonic() - ready)),
                           "the demo proxy on /fleet")
        assert "online" in first and "latest" in first, first
        # what the demo says to try works: diagnose_env reaches the demo network's endpoints
        tried = subprocess.run(["bash", "-c", run_line.replace("--loja 1", "--loja 1 --json")], cwd=ROOT,
                               capture_output=True, text=True, timeout=180, check=False)
        report = json.loads(tried.stdout)
        assert "hosts" in report, tried.stdout[-2000:] + tried.stderr[-2000:]
        names = {h["host"] for h in report["hosts"]}
        assert names and all(n.startswith("DEMO-LOJA001-") for n in names), tried.stdout[-2000:]
        assert any(h.get("facts", {}).get("distro") == "ubuntu" for h in report["hosts"])
        # its scheduled diagnose_env (every minute) arrives there with the failing personas
        link = wait_until(lambda: fleet.scheduled_run(proxy_id, "diagnose_env"), 150,
                          "the scheduled diagnose_env on /fleet")
        assert link is not None
        run_page = fleet.web.get(link).text
        for host, status in (("DEMO-LOJA001-PDV207", "auth_failed"), ("DEMO-LOJA001-PDV208", "unreachable"),
                             ("DEMO-LOJA001-PDV201", "ok")):
            row = r"<tr[^>]*>\s*<td[^>]*><b>" + host + r"</b>(?:(?!</tr>).)*>" + status + "<"
            assert re.search(row, run_page, re.S), f"{host} is not {status} on the run page"
    finally:
        if fleet is not None:
            fleet.web.close()
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, rest
    assert "nothing left running" in rest
    assert not Path(workdir).exists()
    leftovers = subprocess.run(["pgrep", "-f", workdir], capture_output=True, text=True, check=False).stdout
    assert leftovers == "", leftovers
    assert os.path.exists(ROOT / "scripts/demo")



class FleetPage:
    """The demo's /fleet, signed in as the person the demo prints."""

    def __init__(self, url: str, person: str, password: str) -> None:
        from tests.server.web_login import sign_in

        self.web = httpx.Client(base_url=url, timeout=30)
        assert sign_in(self.web, person, password).status_code == 303

    def row(self, proxy_id: str) -> str:
        page = self.web.get("/fleet").text
        match = re.search(r"<tr class=\"sev\d\">(?:(?!</tr>).)*" + proxy_id + r".*?</tr>", page, re.S)
        return match.group(0) if match else ""

    def scheduled_run(self, proxy_id: str, action: str) -> str | None:
        match = re.search(r'href="(/fleet/DEMO/runs/[^"]+)"><b>' + action + "</b>", self.row(proxy_id))
        return match.group(1) if match else None
