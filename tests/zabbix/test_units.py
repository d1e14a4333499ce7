"""Pure parts of the Zabbix integration: credentials in notes, the API URL, version differences.
No server needed (fast suite)."""

from __future__ import annotations

import pytest

from flageemonitor.core.config_model import validate_config
from flageemonitor.core.errors import InventoryError
from flageemonitor.proxy.inventory.zabbix import endpoint_type_of
from flageemonitor.proxy.zabbix.client import api_url, settings_from
from flageemonitor.proxy.zabbix.compat import ApiVersion, Compat
from flageemonitor.proxy.zabbix.credentials import NotesCredentials, parse_notes


@pytest.mark.parametrize(
    ("notes", "expected"),
    [
        (None, NotesCredentials()),
        ("", NotesCredentials()),
        ("root", NotesCredentials("root", None, None)),
        ("root,secret", NotesCredentials("root", "secret", None)),
        (" root , secret , 2222 ", NotesCredentials("root", "secret", 2222)),
        ("root,se,cret", NotesCredentials("root", "se,cret", None)),
        ("root,se,cret,2222", NotesCredentials("root", "se,cret", 2222)),
        ("root,secret,123,22", NotesCredentials("root", "secret,123", 22)),
        ("root,secret,99999", NotesCredentials("root", "secret,99999", None)),  # not a port
        ("root,,2222", NotesCredentials("root", None, 2222)),
        (",secret", NotesCredentials(None, "secret", None)),
        ("\n  root,pw,22\nsecond line is free text", NotesCredentials("root", "pw", 22)),
    ],
)
def test_notes_credentials_rule_keeps_commas_in_passwords(notes: str | None, expected: NotesCredentials) -> None:
    assert parse_notes(notes) == expected


def test_notes_credentials_repr_hides_the_password() -> None:
    assert "secret" not in repr(parse_notes("root,secret"))


@pytest.mark.parametrize(
    ("keys", "url"),
    [
        ({"PARAM_ZABBIX_SERVER": "zbx.example.com"}, "https://zbx.example.com/api_jsonrpc.php"),
        ({"PARAM_ZABBIX_SERVER": "zbx.example.com/zabbix/"}, "https://zbx.example.com/zabbix/api_jsonrpc.php"),
        ({"PARAM_ZABBIX_SERVER": "zbx", "PARAM_ZABBIX_URL": "http://10.0.0.5:8080/zabbix"},
         "http://10.0.0.5:8080/zabbix/api_jsonrpc.php"),
        ({"PARAM_ZABBIX_URL": "https://z/api_jsonrpc.php"}, "https://z/api_jsonrpc.php"),
    ],
)
def test_api_url_prefers_the_full_url_and_implies_https_for_a_server(keys: dict[str, str], url: str) -> None:
    assert api_url(validate_config({"PARAM_REDE": "R", **keys})) == url


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({}, "not configured"),
        ({"PARAM_ZABBIX_URL": "zbx.example.com"}, "must start with http"),
        ({"PARAM_ZABBIX_URL": "https://admin:pw@zbx/"}, "must not carry credentials"),
    ],
)
def test_api_url_rejects_unusable_settings(keys: dict[str, str], message: str) -> None:
    with pytest.raises(InventoryError, match=message):
        api_url(validate_config({"PARAM_REDE": "R", **keys}))


def test_settings_repr_never_shows_secrets() -> None:
    cfg = validate_config({"PARAM_REDE": "R", "PARAM_ZABBIX_SERVER": "z", "PARAM_TOKEN": "tok-123456",
                           "PARAM_ZABBIX_PASSWORD": "pw-987"})
    text = repr(settings_from(cfg))
    assert "tok-123456" not in text and "pw-987" not in text and "token" in text


def test_proxy_assignment_uses_the_form_each_version_wants() -> None:
    v6, v7 = Compat(ApiVersion.parse("6.0.14")), Compat(ApiVersion.parse("7.0.22"))
    assert v6.host_proxy_params("10") == {"proxy_hostid": "10"}
    assert v6.host_proxy_params(None) == {"proxy_hostid": "0"}
    assert v7.host_proxy_params(10) == {"monitored_by": 1, "proxyid": "10"}
    assert v7.host_proxy_params(None) == {"monitored_by": 0}
    assert v6.proxy_of({"proxy_hostid": "10"}) == "10" and v6.proxy_of({"proxy_hostid": "0"}) is None
    assert v7.proxy_of({"monitored_by": "1", "proxyid": "10"}) == "10"
    assert v7.proxy_of({"monitored_by": "0", "proxyid": "0"}) is None
    assert v6.proxy_create_params("p") == {"host": "p", "status": 5}
    assert v7.proxy_create_params("p") == {"name": "p", "operating_mode": 0}
    assert v6.template_group_api() == "hostgroup" and v7.template_group_api() == "templategroup"


def test_agent_status_is_taken_from_the_main_agent_interface_only() -> None:
    compat = Compat(ApiVersion(7, 0))
    interfaces = [
        {"type": "2", "main": "1", "available": "1", "ip": "10.0.0.1"},
        {"type": "1", "main": "0", "available": "1", "ip": "10.0.0.2"},
        {"type": "1", "main": "1", "available": "2", "ip": "10.0.0.3"},
    ]
    assert compat.main_agent_interface(interfaces) == interfaces[2]
    assert compat.agent_status(interfaces) == 2
    assert compat.agent_status(interfaces[:2]) is None


@pytest.mark.parametrize(
    ("name", "tags", "expected"),
    [
        ("R-LOJA001-PDV201", {}, "PDV"),
        ("R-LOJA001-X", {"PDV_TIPO": "PDV_PADRAO"}, "PDV"),
        ("R-LOJA001-PDV201", {"tipo": "self"}, "SELF"),
        ("R-LOJA001-PDV201", {"tipo": "BALANCA"}, None),
        ("R-PROXY", {}, None),
    ],
)
def test_endpoint_type_from_tag_then_name(name: str, tags: dict[str, str], expected: str | None) -> None:
    from flageemonitor.core.hosts import parse_host_name

    assert endpoint_type_of(name, tags, parse_host_name(name).endpoint_type) == expected
