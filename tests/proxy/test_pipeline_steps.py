"""Each pipeline step on its own (fast: no endpoint is contacted)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path

import pytest
import yaml

from flageemonitor.core import compat
from flageemonitor.core.catalog import load_catalog
from flageemonitor.core.config_model import BotConfig, validate_config
from flageemonitor.core.errors import (
    ActionFailed,
    ActionRefused,
    AuthRejected,
    CommandTimeout,
    HostKeyMismatch,
    HostUnreachable,
    InventoryError,
    UnknownAction,
    UnknownProvider,
)
from flageemonitor.core.facts import EndpointFacts
from flageemonitor.core.hosts import Host, HostFilter
from flageemonitor.core.results import Status
from flageemonitor.proxy import ssh as _ssh  # noqa: F401 - imported up front so timings exclude it
from flageemonitor.proxy.actions.base import ActionContext, ActionOutcome, RemoteAction, RemoteSession
from flageemonitor.proxy.facts_cache import FactsCache
from flageemonitor.proxy.pipeline import (
    ActionNotImplemented,
    RunRequest,
    execute,
    guard,
    outcome_status,
    override_for,
    resolve_action,
    rollout_for,
    run_provider,
    select_hosts,
    status_for,
)


def config(**extra: object) -> BotConfig:
    return validate_config({"PARAM_REDE": "R1", **extra})


def write_inventory(path: Path, hosts: list[dict[str, object]]) -> Path:
    path.write_text(yaml.safe_dump({"hosts": hosts}))
    return path


class Unopenable:
    """Stands for the SSH transport in runs that must not open any connection: the test fails
    loudly if the pipeline tries to."""

    opened: list[str]

    def __init__(self) -> None:
        self.opened = []

    async def open(self, host: Host) -> RemoteSession:
        self.opened.append(host.name)
        raise AssertionError(f"{host.name} was contacted")


# ---- step 1
def test_provider_comes_from_cli_then_config_then_arius() -> None:
    assert run_provider(RunRequest("x", provider="Zanthus"), config(PARAM_PROVIDER="arius")) == "zanthus"
    assert run_provider(RunRequest("x"), config(provider="zanthus")) == "zanthus"
    assert run_provider(RunRequest("x"), config()) == "arius"


def test_resolve_maps_legacy_and_provider_names_to_the_canonical_action() -> None:
    assert resolve_action(RunRequest("pdv_test_sudo"), config()).spec.name == "test_endpoint_privilege"
    resolved = resolve_action(RunRequest("terminal_ping", provider="zanthus"), config())
    assert resolved.spec.name == "test_endpoint_connection"
    assert resolved.impl.version == "1.0.0"


def test_resolve_rejects_unknown_action_with_close_names() -> None:
    with pytest.raises(UnknownAction) as err:
        resolve_action(RunRequest("test_endpoint_conection"), config())
    assert "test_endpoint_connection" in err.value.suggestions


def test_resolve_rejects_unknown_provider() -> None:
    with pytest.raises(UnknownProvider):
        resolve_action(RunRequest("test_endpoint_connection", provider="acme"), config())


def test_catalogued_action_without_implementation_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A catalog newer than the code: the name resolves, no implementation is registered."""
    import flageemonitor.proxy.pipeline as pipeline_module

    monkeypatch.setattr(pipeline_module, "get_action", lambda canonical: None)
    with pytest.raises(ActionNotImplemented, match="not implemented"):
        resolve_action(RunRequest("cupons"), config())


def test_unknown_action_fails_before_the_inventory_is_read(tmp_path: Path) -> None:
    opener = Unopenable()
    with pytest.raises(UnknownAction):
        asyncio.run(execute(RunRequest("nope", inventory_file=tmp_path / "missing.yaml"), config(),
                            state_dir=tmp_path, opener=opener))
    assert opener.opened == []


# ---- step 2
def test_select_applies_filters_and_scopes_to_the_network(tmp_path: Path) -> None:
    inv = write_inventory(tmp_path / "inv.yaml", [
        {"name": "R1-LOJA001-PDV201", "ip": "127.0.0.2"},
        {"name": "R1-LOJA002-PDV201", "ip": "127.0.0.3"},
        {"name": "R2-LOJA001-PDV201", "ip": "127.0.0.4"},
    ])
    spec = load_catalog().spec("test_endpoint_connection")
    all_r1 = select_hosts(RunRequest("x", inventory_file=inv), config(), spec)
    assert [h.name for h in all_r1] == ["R1-LOJA001-PDV201", "R1-LOJA002-PDV201"]
    one = select_hosts(RunRequest("x", filters=HostFilter(loja="LOJA002"), inventory_file=inv), config(), spec)
    assert [h.ip for h in one] == ["127.0.0.3"]


def test_hosts_optional_action_runs_when_the_inventory_is_unavailable(tmp_path: Path) -> None:
    report = asyncio.run(execute(RunRequest("diagnose_env", inventory_file=tmp_path / "absent.yaml"), config(),
                                 state_dir=tmp_path, opener=Unopenable()))
    assert report.hosts == [] and report.local is not None
    assert "does not exist" in report.local["detail"] + str(report.local["checks"])


def test_inventory_error_surfaces_before_any_host(tmp_path: Path) -> None:
    with pytest.raises(InventoryError):
        asyncio.run(execute(RunRequest("test_endpoint_connection", inventory_file=tmp_path / "absent.yaml"),
                            config(), state_dir=tmp_path, opener=Unopenable()))


# ---- step 3
def test_host_provider_overrides_the_run_provider_for_rollout() -> None:
    host = Host.build("R1-LOJA001-PDV201", "127.0.0.2", provider="zanthus")
    decision = rollout_for(host, "arius", {})
    assert decision.provider == "zanthus" and decision.percentage == 0 and not decision.included
    raised = rollout_for(host, "arius", {"PARAM_ROLLOUT_ZANTHUS": 100})
    assert raised.included
    plain = rollout_for(Host.build("R1-LOJA001-PDV201", "127.0.0.2"), "arius", {})
    assert plain.provider == "arius" and plain.included


def test_rollout_skip_contacts_nobody_and_says_bucket_and_percentage(tmp_path: Path) -> None:
    inv = write_inventory(tmp_path / "inv.yaml", [
        {"name": "R1-LOJA001-PDV201", "ip": "127.0.0.2", "provider": "zanthus"},
    ])
    opener = Unopenable()
    report = asyncio.run(execute(RunRequest("test_endpoint_connection", inventory_file=inv), config(),
                                 state_dir=tmp_path, opener=opener))
    (host,) = report.hosts
    assert host.status is Status.SKIPPED_ROLLOUT
    assert f"bucket {host.data['rollout']['bucket']}" in host.detail and "0%" in host.detail
    assert opener.opened == [] and not report.failed


# ---- step 4
SLACK = EndpointFacts("slackware", "13.37", "i686", "i686", "slackware-version")


def test_guard_cache_hit_skips_the_probe(tmp_path: Path) -> None:
    host = Host.build("R1-LOJA001-PDV201", "127.0.0.2")
    cache = FactsCache(tmp_path, ttl=3600)
    cache.put(host, SLACK)

    async def no_session() -> RemoteSession:
        raise AssertionError("the probe ran despite cached facts")

    spec = load_catalog().spec("install_endpoint_agent")
    result = asyncio.run(guard(host, spec, compat.CompatMode.ENFORCE, cache, no_session))
    assert result.cached and result.facts == SLACK
    assert result.decision is not None and result.decision.allowed and result.decision.level is not None
    assert result.facts_dict() == {**SLACK.to_dict(), "level": "L2", "cached": True}


def test_guard_off_contacts_nothing(tmp_path: Path) -> None:
    async def no_session() -> RemoteSession:
        raise AssertionError("compat off must not probe")

    spec = load_catalog().spec("test_endpoint_connection")
    result = asyncio.run(guard(Host.build("R1-LOJA001-PDV201", "127.0.0.2"), spec, compat.CompatMode.OFF,
                               FactsCache(tmp_path, 3600), no_session))
    assert result.facts is None and result.decision is None


def test_dry_run_with_compat_off_plans_without_contact(tmp_path: Path) -> None:
    inv = write_inventory(tmp_path / "inv.yaml", [{"name": "R1-LOJA001-PDV201", "ip": "127.0.0.2"}])
    opener = Unopenable()
    report = asyncio.run(execute(RunRequest("test_endpoint_connection", dry_run=True, compat_mode="off",
                                            inventory_file=inv), config(), state_dir=tmp_path, opener=opener))
    assert [h.status for h in report.hosts] == [Status.PLANNED]
    assert report.dry_run and opener.opened == []


def test_cached_unknown_environment_is_blocked_under_enforce_without_contact(tmp_path: Path) -> None:
    inv = write_inventory(tmp_path / "inv.yaml", [{"name": "R1-LOJA001-PDV201", "ip": "127.0.0.2"}])
    host = Host.build("R1-LOJA001-PDV201", "127.0.0.2")
    FactsCache(tmp_path / "facts", 3600).put(host, EndpointFacts("plan9", "4", "x86_64"))
    report = asyncio.run(execute(RunRequest("test_endpoint_connection", compat_mode="enforce", inventory_file=inv),
                                 config(), state_dir=tmp_path, opener=Unopenable()))
    (result,) = report.hosts
    assert result.status is Status.BLOCKED_COMPAT
    assert result.facts is not None and result.facts["distro"] == "plan9" and result.facts["level"] is None
    assert result.data["compat"]["mode"] == "enforce"
    assert not report.failed


# ---- step 5
@pytest.mark.parametrize(("error", "status"), [
    (HostUnreachable("x"), Status.UNREACHABLE),
    (AuthRejected("x"), Status.AUTH_FAILED),
    (CommandTimeout("x"), Status.TIMEOUT),
    (HostKeyMismatch("x"), Status.FAILED),
    (ActionFailed("x"), Status.FAILED),
    (RuntimeError("x"), Status.FAILED),
])
def test_errors_map_to_host_statuses(error: BaseException, status: Status) -> None:
    assert status_for(error) is status


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_refused_connection_becomes_the_host_status_and_the_run_goes_on(tmp_path: Path) -> None:
    inv = write_inventory(tmp_path / "inv.yaml", [
        {"name": "R1-LOJA001-PDV201", "ip": "127.0.0.1", "port": closed_port(), "password": "pw"},
        {"name": "R1-LOJA001-PDV202", "ip": "127.0.0.1", "port": closed_port(), "password": "pw"},
    ])
    report = asyncio.run(execute(RunRequest("test_endpoint_connection", inventory_file=inv), config(),
                                 state_dir=tmp_path))
    assert [h.status for h in report.hosts] == [Status.UNREACHABLE, Status.UNREACHABLE]
    assert all("connection refused" in h.detail for h in report.hosts)
    assert report.failed and report.summary()["unreachable"] == 2


class SilentServer:
    """A real TCP listener that never speaks SSH; records how many clients it holds at once."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.current = self.peak = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.current += 1
                self.peak = max(self.peak, self.current)
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        with conn:
            while conn.recv(4096):
                pass
        with self.lock:
            self.current -= 1


@pytest.mark.parametrize(("request_concurrency", "max_threads"), [(2, 50), (None, 2)])
def test_concurrency_bounds_hosts_in_flight_and_silent_hosts_cost_one_connect_timeout(
        tmp_path: Path, request_concurrency: int | None, max_threads: int) -> None:
    server = SilentServer()
    inv = write_inventory(tmp_path / "inv.yaml", [
        {"name": f"R1-LOJA001-PDV{200 + i}", "ip": "127.0.0.1", "port": server.port, "password": "pw"}
        for i in range(4)
    ])
    cfg = config(ssh={"timeout": 0.4}, max_threads=max_threads)
    started = time.monotonic()
    report = asyncio.run(execute(RunRequest("test_endpoint_connection", concurrency=request_concurrency,
                                            inventory_file=inv), cfg, state_dir=tmp_path))
    elapsed = time.monotonic() - started
    assert [h.status for h in report.hosts] == [Status.UNREACHABLE] * 4
    assert all("no SSH answer within 0.4s" in h.detail for h in report.hosts)
    # lower bounds are the behaviour (each host waited its connect timeout; two waves of two);
    # upper bounds only guard against a hang, loose enough for a loaded machine
    assert all(0.35 < h.duration_s < 10 for h in report.hosts)
    assert server.peak <= 2
    assert 0.75 < elapsed < 20


# ---- provider overrides
def test_override_is_keyed_on_the_canonical_name_and_resolved_like_a_request() -> None:
    cfg = config(PARAM_PROVIDER_ACTION_OVERRIDES={"Zanthus": {"test_endpoint_connection": "terminal_privilege_check"}})
    override = override_for("zanthus", "test_endpoint_connection", cfg)
    assert override is not None and override.spec.name == "test_endpoint_privilege"
    assert override_for("arius", "test_endpoint_connection", cfg) is None
    assert override_for("zanthus", "test_endpoint_privilege", cfg) is None


def test_override_to_an_unknown_or_unimplemented_action_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import flageemonitor.proxy.pipeline as pipeline_module

    with pytest.raises(UnknownAction):
        override_for("arius", "test_endpoint_connection",
                     config(PARAM_PROVIDER_ACTION_OVERRIDES={"arius": {"test_endpoint_connection": "nope"}}))
    monkeypatch.setattr(pipeline_module, "get_action", lambda canonical: None)  # a catalog newer than the code
    with pytest.raises(ActionNotImplemented):
        override_for("arius", "test_endpoint_connection",
                     config(PARAM_PROVIDER_ACTION_OVERRIDES={"arius": {"test_endpoint_connection": "cupons"}}))


def test_bad_override_of_the_run_provider_fails_before_any_host(tmp_path: Path) -> None:
    inv = write_inventory(tmp_path / "inv.yaml", [{"name": "R1-LOJA001-PDV201", "ip": "127.0.0.2"}])
    cfg = config(PARAM_PROVIDER_ACTION_OVERRIDES={"arius": {"test_endpoint_connection": "nope"}})
    with pytest.raises(UnknownAction):
        asyncio.run(execute(RunRequest("pdv_test_connection", inventory_file=inv), cfg, state_dir=tmp_path,
                            opener=Unopenable()))


def test_host_provider_override_shows_in_the_plan(tmp_path: Path) -> None:
    inv = write_inventory(tmp_path / "inv.yaml", [
        {"name": "R1-LOJA001-PDV201", "ip": "127.0.0.2", "provider": "zanthus"},
        {"name": "R1-LOJA001-PDV202", "ip": "127.0.0.3"},
    ])
    cfg = config(PARAM_ROLLOUT_ZANTHUS=100,
                 PARAM_PROVIDER_ACTION_OVERRIDES={"zanthus": {"test_endpoint_connection": "pdv_test_sudo"}})
    report = asyncio.run(execute(RunRequest("test_endpoint_connection", dry_run=True, compat_mode="off",
                                            inventory_file=inv), cfg, state_dir=tmp_path, opener=Unopenable()))
    zanthus, arius = report.hosts
    assert zanthus.detail == "would run test_endpoint_privilege (override for zanthus)"
    assert zanthus.data["override"]["action"] == "test_endpoint_privilege"
    assert arius.detail == "would run test_endpoint_connection" and "override" not in arius.data


def test_host_with_an_unknown_provider_is_skipped_and_says_why(tmp_path: Path) -> None:
    inv = write_inventory(tmp_path / "inv.yaml", [{"name": "R1-LOJA001-PDV201", "ip": "127.0.0.2", "provider": "acme"}])
    report = asyncio.run(execute(RunRequest("test_endpoint_connection", inventory_file=inv), config(),
                                 state_dir=tmp_path, opener=Unopenable()))
    (host,) = report.hosts
    assert host.status is Status.SKIPPED_ROLLOUT and "'acme' has no contract file" in host.detail


# ---- outcomes, prepare, previews
@pytest.mark.parametrize(("outcome", "status"), [
    (ActionOutcome(True), Status.OK),
    (ActionOutcome(True, changed=True), Status.CHANGED),
    (ActionOutcome(True, skipped=True), Status.SKIPPED),
    (ActionOutcome(True, changed=True, planned=True), Status.PLANNED),
    (ActionOutcome(False, changed=True), Status.FAILED),
])
def test_outcome_becomes_ok_changed_skipped_planned_or_failed(outcome: ActionOutcome, status: Status) -> None:
    assert outcome_status(outcome) is status
    assert status.is_failure is (status is Status.FAILED)


class Previewing(RemoteAction):
    """A change-model action for the pipeline's sake: records what it was asked, changes nothing."""

    name = "test_endpoint_connection"
    previews = True
    prepared_for: list[str] = []  # noqa: RUF012 - shared evidence across instances
    refuse = False

    async def prepare(self, ctx: ActionContext, hosts: list[Host]) -> None:
        if self.refuse:
            raise ActionRefused("refused before any host")
        Previewing.prepared_for = [h.name for h in hosts]
        ctx.prepared["bundle"] = {"summary": "bundle X (verified)"}

    async def run(self, session: RemoteSession, host: Host, ctx: ActionContext) -> ActionOutcome:
        change = {"kind": "put_file", "summary": "upload /x"}
        return ActionOutcome(True, "would change", changed=True, changes=[change], planned=ctx.dry_run)


class Session:
    user = "root"
    is_root = True

    async def close(self) -> None:
        return None


class Opener:
    def __init__(self) -> None:
        self.opened: list[str] = []

    async def open(self, host: Host) -> Session:
        self.opened.append(host.name)
        return Session()


def test_previewing_action_is_prepared_once_and_plans_its_changes_in_a_dry_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import flageemonitor.proxy.pipeline as pipeline

    monkeypatch.setattr(pipeline, "get_action", lambda name: Previewing)
    inv = write_inventory(tmp_path / "inv.yaml", [{"name": "R1-LOJA001-PDV201", "ip": "127.0.0.2"},
                                                  {"name": "R1-LOJA001-PDV202", "ip": "127.0.0.3"}])
    opener = Opener()
    report = asyncio.run(execute(RunRequest("test_endpoint_connection", dry_run=True, compat_mode="off",
                                            inventory_file=inv), config(), state_dir=tmp_path, opener=opener))
    assert Previewing.prepared_for == ["R1-LOJA001-PDV201", "R1-LOJA001-PDV202"]
    assert [h.status for h in report.hosts] == [Status.PLANNED, Status.PLANNED]
    assert all(h.changed and h.changes == [{"kind": "put_file", "summary": "upload /x"}] for h in report.hosts)
    summary = report.summary()
    assert summary["changed"] == 2 and summary["planned"] == 2 and summary["failures"] == 0
    data = report.to_dict()
    assert data["prepared"] == {"bundle": {"summary": "bundle X (verified)"}}
    assert data["hosts"][0]["changed"] is True and data["hosts"][0]["changes"][0]["summary"] == "upload /x"

    real = asyncio.run(execute(RunRequest("test_endpoint_connection", compat_mode="off", inventory_file=inv),
                               config(), state_dir=tmp_path, opener=opener))
    assert [h.status for h in real.hosts] == [Status.CHANGED, Status.CHANGED] and not real.failed


def test_refusal_in_prepare_ends_the_run_before_any_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import flageemonitor.proxy.pipeline as pipeline

    monkeypatch.setattr(pipeline, "get_action", lambda name: Previewing)
    monkeypatch.setattr(Previewing, "refuse", True)
    inv = write_inventory(tmp_path / "inv.yaml", [{"name": "R1-LOJA001-PDV201", "ip": "127.0.0.2"}])
    opener = Unopenable()
    with pytest.raises(ActionRefused):
        asyncio.run(execute(RunRequest("test_endpoint_connection", inventory_file=inv), config(),
                            state_dir=tmp_path, opener=opener))
    assert opener.opened == []


# ---- staged runs: which hosts the batches are made of
def test_batches_hold_only_hosts_inside_the_rollout_and_a_stop_contacts_nobody_else(tmp_path: Path) -> None:
    """Hosts outside their provider's rollout are decided without contact and belong to no batch,
    so the canary is one the action really runs on. The transport stand-in fails loudly when used:
    the canary fails, and the run stops before anything else is opened."""
    inv = write_inventory(tmp_path / "inv.yaml", [
        {"name": f"R1-LOJA001-PDV{200 + n}", "ip": f"127.0.0.{n + 1}", "provider": "zanthus" if n <= 2 else "arius"}
        for n in range(1, 8)])
    opener = Unopenable()
    report = asyncio.run(execute(RunRequest("pdv_uninstall", inventory_file=inv, compat_mode="off",
                                            filters=HostFilter(host_glob="R1-*")),
                                 config(), state_dir=tmp_path / "state", opener=opener))
    assert report.staging is not None
    assert [b["hosts"] for b in report.staging["batches"]] == [
        ["R1-LOJA001-PDV203"], [f"R1-LOJA001-PDV{n}" for n in range(204, 208)]]
    assert opener.opened == ["R1-LOJA001-PDV203"]  # the canary only
    got = {r.host: r.status for r in report.hosts}
    assert got["R1-LOJA001-PDV201"] == got["R1-LOJA001-PDV202"] == Status.SKIPPED_ROLLOUT
    assert got["R1-LOJA001-PDV203"] == Status.FAILED
    assert {got[f"R1-LOJA001-PDV{n}"] for n in range(204, 208)} == {Status.SKIPPED}
    assert report.stopped_after_batch == 1 and report.failed
    assert [r.host for r in report.hosts] == [f"R1-LOJA001-PDV{n}" for n in range(201, 208)]  # the hosts' order


def test_a_dry_run_shows_the_batches_and_never_stops(tmp_path: Path) -> None:
    inv = write_inventory(tmp_path / "inv.yaml", [{"name": f"R1-LOJA001-PDV{n}", "ip": "127.0.0.2"}
                                                  for n in range(201, 206)])
    report = asyncio.run(execute(RunRequest("test_endpoint_connection", inventory_file=inv, compat_mode="off",
                                            dry_run=True, batch="2", max_fail_percent=0),
                                 config(), state_dir=tmp_path / "state", opener=Unopenable()))
    assert report.staging is not None and report.staging["source"] == "request"
    assert [len(b["hosts"]) for b in report.staging["batches"]] == [2, 2, 1]
    assert {r.status for r in report.hosts} == {Status.PLANNED} and report.stopped_after_batch is None
