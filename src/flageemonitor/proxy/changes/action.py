"""The base class of endpoint-changing actions (DESIGN.md, "the change model").

    desired -> probe -> changes -> (dry run: stop, report planned) -> apply -> verify
            -> commit, or roll back and report `failed` with "rolled back" -> report

A subclass implements:
- `desired(host, ctx)`: the wanted state from the config and the CLI, validated before any
  command is built (raise ActionFailed for a bad value: nothing is sent to the endpoint), or a
  `Skip` (the action decided not to act; the reason is reported);
- `probe(session, host, ctx, desired)`: read-only, one round trip (`changes.probe.Probe`);
- `changes(desired, state)`: the list of `Change`s (empty: `ok`, "unchanged", nothing sent);
- optionally `verify` (None when fine, else the reason), `after_apply` (warnings, e.g. a
  notification that may fail) and `after_rollback`.
Probe and changes run elevated (sudo) when the SSH user is not root.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from flageemonitor.core.errors import CommandTimeout, FlageeError, HostUnreachable
from flageemonitor.core.hosts import Host
from flageemonitor.proxy.actions.base import ActionContext, ActionOutcome, RemoteAction, RemoteSession
from flageemonitor.proxy.changes.model import ApplyContext, Change, commit, rollback

D = TypeVar("D")
S = TypeVar("S")


@dataclass(frozen=True)
class Skip:
    """The action decided not to act on this host; `reason` is reported."""

    reason: str


@dataclass
class Plan:
    """The changes for one host, and evidence for the report (`data`)."""

    changes: list[Change]
    data: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # shown in the detail (e.g. "bundle unverified")


class ChangeAction(RemoteAction, Generic[D, S]):
    previews: ClassVar[bool] = True

    @abstractmethod
    def desired(self, host: Host, ctx: ActionContext) -> D | Skip: ...

    @abstractmethod
    async def probe(self, session: RemoteSession, host: Host, ctx: ActionContext, desired: D) -> S: ...

    @abstractmethod
    def changes(self, desired: D, state: S, ctx: ActionContext) -> Plan | Skip: ...

    async def verify(self, apply: ApplyContext, desired: D, state: S, plan: Plan) -> str | None:
        """After apply: None when the action's purpose is met, else why not (then roll back)."""
        return None

    async def after_apply(self, apply: ApplyContext, desired: D, state: S, plan: Plan) -> list[str]:
        """After a verified apply: best-effort follow-ups; returns warnings for the detail."""
        return []

    async def after_rollback(self, apply: ApplyContext, desired: D, state: S, plan: Plan) -> list[str]:
        """After a rollback: extra restoring steps; returns errors."""
        return []

    async def run(self, session: RemoteSession, host: Host, ctx: ActionContext) -> ActionOutcome:
        wanted = self.desired(host, ctx)
        if isinstance(wanted, Skip):  # skipped in a dry run too: nothing would be done
            return ActionOutcome(True, wanted.reason, skipped=True)
        apply = ApplyContext(session, sudo=not session.is_root, timeout=ctx.command_timeout)
        state = await self.probe(session, host, ctx, wanted)
        plan = self.changes(wanted, state, ctx)
        if isinstance(plan, Skip):
            return ActionOutcome(True, plan.reason, skipped=True)
        planned = [c.to_dict() for c in plan.changes]
        notes = "; ".join(plan.notes)
        if not plan.changes:
            return ActionOutcome(True, "; ".join(filter(None, ["unchanged", notes])), plan.data, planned=ctx.dry_run)
        if ctx.dry_run:
            detail = f"would apply {len(planned)} change(s): " + "; ".join(c["summary"] for c in planned[:3])
            if len(planned) > 3:
                detail += "; ..."
            return ActionOutcome(True, "; ".join(filter(None, [detail, notes])), plan.data, changed=True,
                                 changes=planned, planned=True)
        return await self._apply(apply, wanted, state, plan, notes)

    async def _apply(self, apply: ApplyContext, wanted: D, state: S, plan: Plan, notes: str) -> ActionOutcome:
        applied: list[Change] = []
        problem: str | None = None
        try:
            for change in plan.changes:
                applied.append(change)  # a half-applied change is undone too
                await change.apply(apply)
            problem = await self.verify(apply, wanted, state, plan)
        except (CommandTimeout, HostUnreachable) as exc:
            done = "; ".join(c.summary() for c in applied)
            raise type(exc)(f"{exc}; connection lost while applying, not rolled back (applied: {done})") from None
        except FlageeError as exc:
            problem = str(exc)
        applied_dicts = [c.to_dict() for c in applied]
        if problem is not None:
            errors = await rollback(applied, apply)
            errors += await self.after_rollback(apply, wanted, state, plan)
            if errors:
                return ActionOutcome(False, f"{problem}; ROLLBACK INCOMPLETE: {'; '.join(errors)[:500]}", plan.data,
                                     changed=True, changes=applied_dicts)
            return ActionOutcome(False, f"{problem}; rolled back", plan.data, changes=applied_dicts)
        await commit(applied, apply)
        warnings = await self.after_apply(apply, wanted, state, plan)
        detail = f"applied {len(applied)} change(s)"
        return ActionOutcome(True, "; ".join(filter(None, [detail, notes, *warnings])), plan.data, changed=True,
                             changes=applied_dicts)
