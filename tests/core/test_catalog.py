"""Every name an operator can type resolves to the catalog's canonical name."""

from __future__ import annotations

import pytest

from flageemonitor.core.catalog import ActionKind, Level, load_catalog
from flageemonitor.core.errors import UnknownAction, UnknownProvider

LEGACY = {
    "pdv_install": "install_endpoint_agent",
    "pdv_uninstall": "uninstall_endpoint_agent",
    "pdv_update_config": "update_endpoint_config",
    "pdv_update_timezone": "update_endpoint_timezone",
    "pdv_shutdown": "shutdown_endpoint",
    "pdv_test_connection": "test_endpoint_connection",
    "pdv_test_sudo": "test_endpoint_privilege",
    "pdv_atualiza_impressora": "refresh_endpoint_printer",
    "pdv_auto_register": "register_endpoints",
    "cupons": "collect_coupons",
    "cupons_detalhes": "collect_coupon_details",
    "cupons_lv": "collect_coupon_lv",
    "sat_config": "collect_sat_config",
    "status_caixa": "collect_checkout_status",
    "pdv_update_geral_conf": "update_endpoint_agent_include",
}
GENERIC = {
    "install_host_agent": "install_endpoint_agent",
    "install_client_agent": "install_endpoint_agent",
    "uninstall_host_agent": "uninstall_endpoint_agent",
    "uninstall_client_agent": "uninstall_endpoint_agent",
    "update_host_config": "update_endpoint_config",
    "update_client_config": "update_endpoint_config",
    "update_host_timezone": "update_endpoint_timezone",
    "shutdown_host": "shutdown_endpoint",
    "test_host_connection": "test_endpoint_connection",
    "test_host_privilege": "test_endpoint_privilege",
    "refresh_host_printer": "refresh_endpoint_printer",
    "register_hosts": "register_endpoints",
    "update_host_agent_include": "update_endpoint_agent_include",
}
ZANTHUS = {
    "install_terminal_agent": "install_endpoint_agent",
    "remove_terminal_agent": "uninstall_endpoint_agent",
    "sync_terminal_config": "update_endpoint_config",
    "sync_terminal_timezone": "update_endpoint_timezone",
    "terminal_shutdown": "shutdown_endpoint",
    "terminal_ping": "test_endpoint_connection",
    "terminal_privilege_check": "test_endpoint_privilege",
    "terminal_printer_refresh": "refresh_endpoint_printer",
    "terminals_register": "register_endpoints",
}


def test_catalog_has_the_originals_fifteen_actions_plus_diagnose_env() -> None:
    catalog = load_catalog()
    assert len(catalog.actions) == 16
    assert "diagnose_env" in catalog.actions
    assert set(LEGACY.values()) | {"diagnose_env"} == set(catalog.actions)


@pytest.mark.parametrize(("alias", "canonical"), sorted({**LEGACY, **GENERIC}.items()))
def test_legacy_and_generic_aliases_resolve_to_the_canonical_name(alias: str, canonical: str) -> None:
    resolution = load_catalog().resolve(alias)
    assert resolution.canonical == canonical
    assert resolution.used_alias is True
    assert resolution.provider == "arius"


@pytest.mark.parametrize(("external", "canonical"), sorted(ZANTHUS.items()))
def test_zanthus_names_translate_to_the_canonical_name(external: str, canonical: str) -> None:
    resolution = load_catalog().resolve(external, "zanthus")
    assert resolution.canonical == canonical
    assert resolution.provider == "zanthus"


@pytest.mark.parametrize("canonical", sorted(set(LEGACY.values()) | {"diagnose_env"}))
def test_canonical_names_resolve_to_themselves_for_every_provider(canonical: str) -> None:
    for provider in ("arius", "zanthus"):
        resolution = load_catalog().resolve(canonical, provider)
        assert resolution.canonical == canonical
        assert resolution.used_alias is False


def test_resolution_ignores_case_and_surrounding_spaces() -> None:
    assert load_catalog().resolve("  PDV_Install ").canonical == "install_endpoint_agent"
    assert load_catalog().resolve("terminal_ping", " Zanthus ").canonical == "test_endpoint_connection"


def test_unknown_action_is_rejected_with_close_names() -> None:
    with pytest.raises(UnknownAction) as info:
        load_catalog().resolve("pdv_instal")
    assert "pdv_install" in info.value.suggestions
    assert "pdv_instal" in str(info.value)


def test_zanthus_names_are_not_arius_names_and_the_error_says_which_provider() -> None:
    with pytest.raises(UnknownAction, match="--provider zanthus"):
        load_catalog().resolve("terminal_ping", "arius")


def test_unknown_provider_lists_known_ones() -> None:
    with pytest.raises(UnknownProvider) as info:
        load_catalog().resolve("pdv_install", "zantus")
    assert info.value.known == ["arius", "zanthus"]


def test_catalog_kinds_and_levels_follow_the_reference() -> None:
    catalog = load_catalog()
    assert catalog.spec("diagnose_env").min_level is Level.L3
    assert catalog.spec("collect_coupons").kind is ActionKind.LOCAL
    assert catalog.spec("install_endpoint_agent").min_level is Level.L2
    assert catalog.spec("shutdown_endpoint").changes_endpoint is True
    assert catalog.spec("test_endpoint_connection").changes_endpoint is False
    assert catalog.provider(None).default_rollout == 100
    assert catalog.provider("zanthus").default_rollout == 0
