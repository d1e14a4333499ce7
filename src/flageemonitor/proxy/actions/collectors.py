"""The store-database actions: the BI collectors, the checkout status and the printer macros.

Each is a thin LocalAction over `proxy.collectors`. Options (CLI flags or `--arg KEY=VALUE`):
`loja` (LOJA001 or 1), `dtini`/`dtfim` (re-send a range; BI collectors only). Blocking work runs
in a worker thread; `--dry-run` reads nothing from the databases of the BI collectors and sends
nothing anywhere.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from flageemonitor.core.config_model import BotConfig
from flageemonitor.core.hosts import Host
from flageemonitor.proxy.actions import register
from flageemonitor.proxy.actions.base import ActionContext, ActionOutcome, LocalAction
from flageemonitor.proxy.collectors.checkout_status import collect_checkout_status
from flageemonitor.proxy.collectors.coupon_details import COUPON_DETAILS
from flageemonitor.proxy.collectors.coupon_lv import COUPON_LV
from flageemonitor.proxy.collectors.coupons import COUPONS
from flageemonitor.proxy.collectors.engine import BiCollector, collect, options_for
from flageemonitor.proxy.collectors.printer import refresh_printers
from flageemonitor.proxy.collectors.sat_config import SAT_CONFIG
from flageemonitor.proxy.collectors.stores import parse_loja


class _BiAction(LocalAction):
    collector: ClassVar[BiCollector]
    legacy: ClassVar[str]

    async def run_local(self, ctx: ActionContext, hosts: list[Host] | None) -> ActionOutcome:
        opts = options_for((self.name, self.legacy), ctx.config, ctx.args, ctx.dry_run)
        return await asyncio.to_thread(collect, self.collector, ctx.config, ctx.state_dir, opts)


@register
class CollectCoupons(_BiAction):
    name = "collect_coupons"
    version = "2.0.0"
    legacy = "cupons"
    collector = COUPONS


@register
class CollectCouponDetails(_BiAction):
    name = "collect_coupon_details"
    version = "2.0.0"
    legacy = "cupons_detalhes"
    collector = COUPON_DETAILS


@register
class CollectCouponLv(_BiAction):
    name = "collect_coupon_lv"
    version = "2.0.0"
    legacy = "cupons_lv"
    collector = COUPON_LV


@register
class CollectSatConfig(_BiAction):
    name = "collect_sat_config"
    version = "2.0.0"
    legacy = "sat_config"
    collector = SAT_CONFIG


class _StoreAction(LocalAction):
    """A store-database action that takes `loja` and honours dry-run, run in a worker thread."""

    @staticmethod
    def work(config: BotConfig, loja: int | None, dry_run: bool) -> ActionOutcome:
        raise NotImplementedError

    async def run_local(self, ctx: ActionContext, hosts: list[Host] | None) -> ActionOutcome:
        return await asyncio.to_thread(self.work, ctx.config, parse_loja(ctx.args.get("loja")), ctx.dry_run)


@register
class CollectCheckoutStatus(_StoreAction):
    name = "collect_checkout_status"
    version = "2.0.0"
    work = staticmethod(collect_checkout_status)


@register
class RefreshEndpointPrinter(_StoreAction):
    name = "refresh_endpoint_printer"
    version = "2.0.0"
    work = staticmethod(refresh_printers)
