"""The action pipeline: from `run ACTION [filters]` to a per-host report.

Steps, each a small function tested on its own:

1. `resolve_action` - provider (request > config > arius), provider translation, alias -> the
   catalog's canonical name, and its implementation. Unknown names fail here, before any host.
2. `select_hosts` - the inventory source with the request's filters.
3. `rollout_for` - per host, with the host's own provider when the inventory gives one;
   `override_for` - the action that provider runs instead, if it overrides this one.
4. `guard` - compatibility: facts from the cache, else one probe over the host's connection
   (cached for `PARAM_FACTS_TTL`), matched against the matrix and the action's minimum level.
5. `prepare` - the action's per-run preparation (a bundle download and its checksum check),
   once, before any host is contacted; a failure ends the run (PrepareFailed, ActionRefused).
6. `process_host` under a semaphore (`concurrency`, default `max_threads`): open the session
   once, probe, run the action on the same connection; errors become statuses (`status_for`),
   the action's outcome becomes `ok` / `changed` / `skipped` / `failed` (`outcome_status`).
   A staged run (`run_staged`, core/staging.py) does this batch after batch and stops between
   batches when the failed share exceeds `--max-fail-percent`; later hosts are never contacted.
7. The RunReport. `dry_run` stops after step 4 with `planned`, `skipped_rollout` or
   `blocked_compat`; the only remote command it may send is the facts probe. An action of the
   change model (`previews`) also runs its read-only probe and reports its planned changes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from flageemonitor.core import compat, rollout, staging
from flageemonitor.core.catalog import ActionKind, ActionSpec, Resolution, load_catalog, normalize_provider
from flageemonitor.core.config_model import BotConfig
from flageemonitor.core.errors import (
    ActionFailed,
    AuthRejected,
    CommandTimeout,
    CompatBlocked,
    FlageeError,
    HostKeyMismatch,
    HostUnreachable,
    InventoryError,
)
from flageemonitor.core.facts import PROBE_COMMAND, EndpointFacts, parse_probe
from flageemonitor.core.hosts import Host, HostFilter
from flageemonitor.core.results import HostResult, RunReport, Status
from flageemonitor.proxy.actions import get_action
from flageemonitor.proxy.actions.base import (
    Action,
    ActionContext,
    ActionOutcome,
    LocalAction,
    RemoteAction,
    RemoteSession,
)
from flageemonitor.proxy.facts_cache import FactsCache
from flageemonitor.proxy.inventory import open_inventory

log = logging.getLogger("flageemonitor.pipeline")


class ActionNotImplemented(FlageeError):
    """The catalog knows the action but this version has no implementation of it."""

    def __init__(self, canonical: str) -> None:
        self.canonical = canonical
        super().__init__(
            f"action {canonical!r} is in the catalog but not implemented in this version; no host was contacted"
        )


@dataclass
class RunRequest:
    action: str
    filters: HostFilter = field(default_factory=HostFilter)
    provider: str | None = None
    compat_mode: str | None = None
    dry_run: bool = False
    concurrency: int | None = None  # default config.max_threads
    timeout: float | None = None  # per-command seconds; default config.ssh.command_timeout
    args: dict[str, Any] = field(default_factory=dict)  # action-specific options
    inventory_file: Path | None = None
    batch: str | None = None  # staged run: N, P%, all or a comma list (core/staging.py)
    max_fail_percent: float | None = None  # 0-100; stop between batches above this failed share


class SessionOpener(Protocol):
    async def open(self, host: Host) -> Any: ...


class ProxyChecks(Protocol):
    """Optional hook of an action that also checks the proxy itself (diagnose_env)."""

    async def proxy_checks(self, ctx: ActionContext, inventory_error: str | None) -> ActionOutcome: ...


# ---------------------------------------------------------------- step 1: resolve
@dataclass(frozen=True)
class ResolvedAction:
    resolution: Resolution
    impl: type[Action]

    @property
    def spec(self) -> ActionSpec:
        return self.resolution.spec


def run_provider(request: RunRequest, config: BotConfig) -> str:
    """`--provider` > config `PARAM_PROVIDER` (or legacy `provider`) > arius."""
    return normalize_provider(request.provider or config.effective_provider)


def resolve_action(request: RunRequest, config: BotConfig) -> ResolvedAction:
    """Raises UnknownProvider, UnknownAction (with close names) or ActionNotImplemented."""
    resolution = load_catalog().resolve(request.action, run_provider(request, config))
    impl = get_action(resolution.canonical)
    if impl is None:
        raise ActionNotImplemented(resolution.canonical)
    return ResolvedAction(resolution, impl)


# ---------------------------------------------------------------- step 2: select
def select_hosts(request: RunRequest, config: BotConfig, spec: ActionSpec) -> list[Host]:
    """Hosts for the run (scoped to the configured network without filters). Raises
    InventoryError; `execute` tolerates it for `hosts_optional` actions (diagnose_env), which
    report the proxy's own checks with or without endpoints."""
    return open_inventory(config, request.inventory_file).select(request.filters)


# ---------------------------------------------------------------- step 3: rollout
def rollout_for(host: Host, provider: str, config_raw: Mapping[str, Any]) -> rollout.RolloutDecision:
    """The host's rollout decision; the host's own provider (inventory) beats the run's."""
    name = normalize_provider(host.provider or provider)
    known = load_catalog().providers.get(name)
    return rollout.decide(name, host.name, config_raw, known.default_rollout if known else 0)


def rollout_detail(decision: rollout.RolloutDecision) -> dict[str, Any]:
    return {"provider": decision.provider, "bucket": decision.bucket, "percentage": decision.percentage,
            "included": decision.included}


def override_for(provider: str, canonical: str, config: BotConfig) -> ResolvedAction | None:
    """The action a provider runs instead of `canonical`, if it overrides it.

    Config `PARAM_PROVIDER_ACTION_OVERRIDES = {provider: {canonical: action}}` wins over the
    provider's contract file. Keys are canonical names (so an override applies whatever alias
    was typed); the target may be any name the provider knows and is resolved like a request.
    Raises UnknownAction / ActionNotImplemented for a target that cannot run."""
    name = normalize_provider(provider)
    configured = {normalize_provider(k): v for k, v in config.PARAM_PROVIDER_ACTION_OVERRIDES.items()}
    target = configured.get(name, {}).get(canonical)
    if target is None:
        known = load_catalog().providers.get(name)
        target = known.action_overrides.get(canonical) if known else None
    if not target:
        return None
    resolution = load_catalog().resolve(target, name)
    if resolution.canonical == canonical:
        return None
    impl = get_action(resolution.canonical)
    if impl is None:
        raise ActionNotImplemented(resolution.canonical)
    return ResolvedAction(resolution, impl)


# ---------------------------------------------------------------- step 4: compatibility guard
async def detect_facts(session: RemoteSession, timeout: float | None = None) -> EndpointFacts:
    """One remote round trip: `uname -m` and the release files, parsed."""
    result = await session.run(PROBE_COMMAND, timeout=timeout)
    return parse_probe(result.stdout)


@dataclass
class GuardResult:
    facts: EndpointFacts | None
    decision: compat.CompatDecision | None
    cached: bool = False

    def facts_dict(self) -> dict[str, Any] | None:
        if self.facts is None:
            return None
        out = self.facts.to_dict()
        out["level"] = self.decision.level.value if self.decision and self.decision.level else None
        out["cached"] = self.cached
        return out


async def guard(host: Host, spec: ActionSpec, mode: compat.CompatMode, cache: FactsCache,
                session: Callable[[], Awaitable[RemoteSession]], timeout: float | None = None) -> GuardResult:
    """Facts (cache first; on a miss, probe over the host's session and cache them) and the
    compatibility decision. `off` contacts nothing."""
    if mode is compat.CompatMode.OFF:
        return GuardResult(None, None)
    facts = cache.get(host)
    cached = facts is not None
    if facts is None:
        facts = await detect_facts(await session(), timeout)
        cache.put(host, facts)
    return GuardResult(facts, compat.decide(facts, spec.min_level, mode), cached)


# ---------------------------------------------------------------- step 5: execute
_STATUS: tuple[tuple[type[BaseException], Status], ...] = (
    (HostUnreachable, Status.UNREACHABLE),
    (AuthRejected, Status.AUTH_FAILED),
    (CommandTimeout, Status.TIMEOUT),
    (CompatBlocked, Status.BLOCKED_COMPAT),
    (HostKeyMismatch, Status.FAILED),
    (ActionFailed, Status.FAILED),
)


def status_for(exc: BaseException) -> Status:
    """The per-host status an error ends in (anything unexpected is `failed`)."""
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return Status.FAILED


def outcome_status(outcome: ActionOutcome) -> Status:
    """failed > planned (dry run) > skipped > changed > ok (succeeded without change)."""
    if not outcome.ok:
        return Status.FAILED
    if outcome.planned:
        return Status.PLANNED
    if outcome.skipped:
        return Status.SKIPPED
    return Status.CHANGED if outcome.changed else Status.OK


@dataclass
class RunContext:
    """What every host of one run shares."""

    resolved: ResolvedAction
    provider: str
    mode: compat.CompatMode
    dry_run: bool
    config_raw: Mapping[str, Any]
    cache: FactsCache
    opener: SessionOpener
    ctx: ActionContext
    command_timeout: float


class _LazySession:
    """Opens the host's connection on first use, so detection and the action share it."""

    def __init__(self, opener: SessionOpener, host: Host) -> None:
        self.opener, self.host = opener, host
        self.session: Any = None

    async def get(self) -> RemoteSession:
        if self.session is None:
            self.session = await self.opener.open(self.host)
        return self.session  # type: ignore[no-any-return]

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()


async def process_host(host: Host, run: RunContext) -> HostResult:
    """Steps 3-5 for one host; never raises (errors become the host's status)."""
    started = time.monotonic()
    result = HostResult(host=host.name, ip=host.ip, status=Status.FAILED)
    decision = rollout_for(host, run.provider, run.config_raw)
    result.data["rollout"] = rollout_detail(decision)
    if not decision.included:
        result.status = Status.SKIPPED_ROLLOUT
        result.detail = (f"outside the {decision.provider} rollout: bucket {decision.bucket} "
                         f"is not below {decision.percentage}%")
        if decision.provider not in load_catalog().providers:
            result.detail += f" (provider {decision.provider!r} has no contract file; it defaults to 0%)"
        return result
    lazy = _LazySession(run.opener, host)
    resolved = run.resolved
    override: ResolvedAction | None = None
    try:
        override = override_for(decision.provider, resolved.spec.name, run.ctx.config)
        if override is not None:
            resolved = override
            result.data["override"] = {"provider": decision.provider, "action": override.spec.name,
                                       "version": override.impl.version}
        spec = resolved.spec
        checked = await guard(host, spec, run.mode, run.cache, lazy.get, run.command_timeout)
        result.facts = checked.facts_dict()
        if checked.decision is not None:
            d = checked.decision
            result.data["compat"] = {"mode": d.mode.value, "level": d.level.value if d.level else None,
                                     "required": d.required.value, "allowed": d.allowed, "reason": d.reason}
            if not d.allowed:
                result.status = Status.BLOCKED_COMPAT
                result.detail = f"blocked ({d.mode.value}): {d.reason}"
                return result
        warning = checked.decision.reason if checked.decision and checked.decision.reason.startswith("warning") else ""
        impl = resolved.impl
        previews = issubclass(impl, RemoteAction) and impl.previews
        if run.dry_run and not previews:
            result.status = Status.PLANNED
            what = f"would run {spec.name}" + (f" (override for {decision.provider})" if override else "")
            result.detail = "; ".join(filter(None, [what, warning]))
            return result
        if not issubclass(impl, RemoteAction):
            raise ActionFailed(f"override {spec.name!r} is a local action and cannot run per host")
        outcome = await impl().run(await lazy.get(), host, run.ctx)
        result.status = outcome_status(outcome)
        result.changed, result.changes = outcome.changed, outcome.changes
        result.detail = "; ".join(filter(None, [outcome.detail, warning]))
        result.data.update(outcome.data)
    except Exception as exc:  # every error ends as this host's status; the run goes on
        result.status = status_for(exc)
        result.detail = str(exc) if isinstance(exc, FlageeError) else f"{type(exc).__name__}: {exc}"
    finally:
        try:
            await lazy.close()
        except Exception as exc:  # closing a broken connection must not change the outcome
            log.debug("closing %s: %s", host.name, exc)
        result.duration_s = time.monotonic() - started
    return result


async def run_hosts(hosts: list[Host], run: RunContext, concurrency: int,
                    progress: Callable[[HostResult], None] | None = None) -> list[HostResult]:
    """All hosts with at most `concurrency` in flight; results in the hosts' order."""
    semaphore = asyncio.Semaphore(max(1, concurrency))

    async def one(host: Host) -> HostResult:
        async with semaphore:
            res = await process_host(host, run)
        log.info("%s %s: %s%s", res.host, res.ip, res.status.value, f" ({res.detail})" if res.detail else "")
        if progress is not None:
            progress(res)
        return res

    return list(await asyncio.gather(*(one(h) for h in hosts)))


async def run_staged(hosts: list[Host], run: RunContext, concurrency: int, stage: staging.Staging,
                     report: RunReport, progress: Callable[[HostResult], None] | None = None) -> list[HostResult]:
    """`run_hosts` batch after batch (core/staging.py): the hosts inside the rollout in name order,
    each batch with the run's concurrency, the stop rule checked between batches (never in a dry
    run). Hosts outside the rollout are decided first and contact nothing; the hosts of the
    batches after a stop are reported `skipped` and never contacted. Results in the hosts' order."""
    inside = sorted((i for i, h in enumerate(hosts) if rollout_for(h, run.provider, run.config_raw).included),
                    key=lambda i: hosts[i].name)
    outside = sorted(set(range(len(hosts))) - set(inside))
    results = dict(zip(outside, await run_hosts([hosts[i] for i in outside], run, concurrency, progress),
                       strict=True))
    outcome = staging.StagedOutcome.start(stage, [hosts[i].name for i in inside])
    log.info("%s: %s", run.resolved.spec.name, outcome.summary())
    for number, batch in enumerate(stage.spec.split(inside)):
        done = await run_hosts([hosts[i] for i in batch], run, concurrency, progress)
        results.update(zip(batch, done, strict=True))
        if outcome.finish(number, [r.status for r in done], may_stop=not run.dry_run):
            log.warning("%s: %s; %d host(s) not contacted", run.resolved.spec.name, outcome.reason, outcome.not_run)
            break
    for i, host in enumerate(hosts):
        if i not in results:
            results[i] = HostResult(host=host.name, ip=host.ip, status=Status.SKIPPED,
                                    detail=f"not contacted: {outcome.reason}")
            if progress is not None:
                progress(results[i])
    report.staging, report.stopped_after_batch = outcome.to_dict(), outcome.stopped_after
    return [results[i] for i in range(len(hosts))]


# ---------------------------------------------------------------- the whole run
def default_opener(config: BotConfig, state_dir: Path, command_timeout: float, *,
                   create_dirs: bool = True) -> SessionOpener:
    from flageemonitor.proxy.ssh import Connector, ConnectSettings

    settings = ConnectSettings(
        connect_timeout=config.ssh.timeout,
        command_timeout=command_timeout,
        legacy_algorithms=config.ssh.legacy_algorithms,
        host_key_policy=config.ssh.host_key_policy,
    )
    return Connector.for_state_dir(settings, state_dir, create_dirs=create_dirs)


async def execute(request: RunRequest, config: BotConfig, *, state_dir: Path,
                  progress: Callable[[HostResult], None] | None = None,
                  opener: SessionOpener | None = None,
                  on_selected: Callable[[int], None] | None = None) -> RunReport:
    """Run `request`. Raises UnknownAction / UnknownProvider / ActionNotImplemented /
    StagingRefused / InventoryError before any host is contacted; host errors become per-host statuses.
    `progress` is called with each host's result as it completes, `on_selected` once with the
    number of hosts selected; `opener` replaces the SSH transport."""
    started = time.monotonic()
    resolved = resolve_action(request, config)
    spec = resolved.spec
    stage = staging.choose(request.batch, request.max_fail_percent, action=spec.name,
                           local=spec.kind is ActionKind.LOCAL, changes_endpoint=spec.changes_endpoint)
    command_timeout = request.timeout or config.ssh.command_timeout
    ctx = ActionContext(config=config, dry_run=request.dry_run, args=dict(request.args), state_dir=state_dir,
                        logger=logging.getLogger(f"flageemonitor.action.{spec.name}"),
                        command_timeout=command_timeout, filters=request.filters)
    report = RunReport(requested=resolved.resolution.requested, canonical=spec.name,
                       provider=resolved.resolution.provider, action_version=resolved.impl.version,
                       dry_run=request.dry_run, started_at=datetime.now(UTC).isoformat(timespec="seconds"))

    if request.inventory_file is not None:
        ctx.args.setdefault("inventory_file", str(request.inventory_file))
    if spec.kind is ActionKind.LOCAL:
        await _run_local(resolved, request, config, ctx, report)
    else:
        override_for(report.provider, spec.name, config)  # a bad override fails the run before any host
        inventory_error: str | None = None
        try:
            hosts = select_hosts(request, config, spec)
        except InventoryError as exc:
            if not spec.hosts_optional:
                raise
            hosts, inventory_error = [], str(exc)
        impl = resolved.impl()
        if hasattr(impl, "proxy_checks"):
            outcome = await impl.proxy_checks(ctx, inventory_error)
            report.local = {"ok": outcome.ok, "detail": outcome.detail, **outcome.data}
            report.local_failed = not outcome.ok
        _register_secrets(hosts)
        log.info("%s (%s): %d host(s) selected", spec.name, report.provider, len(hosts))
        if hosts:
            await impl.prepare(ctx, hosts)  # raises before any host is contacted
            report.prepared = ctx.prepared
        if on_selected is not None:
            on_selected(len(hosts))
        if hosts:
            run = RunContext(
                resolved=resolved, provider=report.provider,
                mode=compat.effective_mode(request.compat_mode, config.PARAM_COMPATIBILITY_MODE),
                dry_run=request.dry_run, config_raw=config.raw(),
                # a dry run writes only into state directories that exist: plan creates nothing
                cache=FactsCache(state_dir / "facts", config.PARAM_FACTS_TTL, create=not request.dry_run),
                opener=opener or default_opener(config, state_dir, command_timeout, create_dirs=not request.dry_run),
                ctx=ctx, command_timeout=command_timeout,
            )
            concurrency = request.concurrency or config.max_threads
            report.hosts = await (run_staged(hosts, run, concurrency, stage, report, progress) if stage
                                  else run_hosts(hosts, run, concurrency, progress))
    report.duration_s = time.monotonic() - started
    return report


def _register_secrets(hosts: list[Host]) -> None:
    """Endpoint passwords from the inventory join the log redaction list (defence in depth: no
    message is built with them)."""
    from flageemonitor.proxy.logs import add_secret

    for host in hosts:
        if host.password:
            add_secret(host.password)


async def _run_local(resolved: ResolvedAction, request: RunRequest, config: BotConfig,
                     ctx: ActionContext, report: RunReport) -> None:
    impl = resolved.impl()
    assert isinstance(impl, LocalAction)
    hosts = select_hosts(request, config, resolved.spec) if impl.wants_hosts else None
    if request.filters.loja:  # store-database actions filter on it too (scheduled runs set it as a filter)
        ctx.args.setdefault("loja", request.filters.loja)
    try:
        outcome = await impl.run_local(ctx, hosts)
    except Exception as exc:  # a local action's error is its result, reported like any other
        outcome = ActionOutcome(False, str(exc) if isinstance(exc, FlageeError) else f"{type(exc).__name__}: {exc}")
    report.local = {"ok": outcome.ok, "detail": outcome.detail, **outcome.data}
    report.local_failed = not outcome.ok
