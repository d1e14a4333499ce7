"""Action modules, registered by canonical name.

A module registers itself with `@register`; `get_action` imports the known modules lazily so
that a missing optional dependency of one action never hides the others.
"""

from __future__ import annotations

import importlib

from flageemonitor.proxy.actions.base import Action

_REGISTRY: dict[str, type[Action]] = {}

# canonical name -> module under flageemonitor.proxy.actions
MODULES: dict[str, str] = {
    "test_endpoint_connection": "test_connection",
    "test_endpoint_privilege": "test_privilege",
    "diagnose_env": "diagnose_env",
    "register_endpoints": "register_endpoints",
    "collect_coupons": "collectors",
    "collect_coupon_details": "collectors",
    "collect_coupon_lv": "collectors",
    "collect_sat_config": "collectors",
    "collect_checkout_status": "collectors",
    "refresh_endpoint_printer": "collectors",
    "install_endpoint_agent": "install_agent",
    "update_endpoint_config": "update_agent_config",
    "update_endpoint_agent_include": "update_agent_include",
    "uninstall_endpoint_agent": "uninstall_agent",
}


def register(cls: type[Action]) -> type[Action]:
    _REGISTRY[cls.name] = cls
    return cls


def get_action(canonical: str) -> type[Action] | None:
    """The implementation of `canonical`, or None when this version does not implement it."""
    if canonical not in _REGISTRY and canonical in MODULES:
        importlib.import_module(f"{__name__}.{MODULES[canonical]}")
    return _REGISTRY.get(canonical)


def implemented() -> list[str]:
    return sorted(MODULES)
