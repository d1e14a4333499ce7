"""The typed config model: every reference key accepted, unknown keys kept, clear errors."""

from __future__ import annotations

import json

import pytest

from flageemonitor import contracts
from flageemonitor.core.config_model import (
    BotConfig,
    CronActionSpec,
    parse_config_text,
    render_config_schema,
    validate_config,
)
from flageemonitor.core.errors import ConfigInvalid

# Every key of the reference's Appendix A, with a value of the type the original reads.
APPENDIX_A = {
    "PARAM_REDE": "MLAR",
    "PARAM_TOKEN": "zbx-token",
    "PARAM_ZABBIX_SERVER": "monitor.example",
    "PARAM_PROVIDER": "zanthus",
    "PARAM_ROLLOUT_ZANTHUS": 20,
    "PARAM_PROVIDER_ROLLOUT": {"zanthus": 20},
    "PARAM_PROVIDER_ACTION_OVERRIDES": {"zanthus": {"install_endpoint_agent": "pdv_install"}},
    "PARAM_COMPATIBILITY_MODE": "enforce",
    "PARAM_CRON_ACTIONS": {"pdv_shutdown": True, "status_caixa": "false"},
    "PARAM_REPO_URL": "https://repo.example",
    "PARAM_LOCAL_ASSET_DIR": "/ariusmonitor/host-linux",
    "PARAM_LOCAL_REPO_DIR": "/ariusmonitor/repositorio",
    "PARAM_PROXY_IP": "10.1.1.1",
    "PARAM_ZABBIX_PORT": 10050,
    "PARAM_ZABBIX_PROXYID": "10601",
    "PARAM_TEMPLATES": ["10543", "10552"],
    "PARAM_ZABBIX_SENDER_SERVER": "10.1.1.1",
    "PARAM_ZABBIX_SENDER_PORT": "10051",
    "PARAM_IP_CONCENTRADORES": ["10.1.1.10"],
    "CONCENTRADORES": [{"ip": "10.1.1.10", "loja": 1}],
    "PARAM_BI_SERVER": "bi.example",
    "PARAM_TOKEN_BI": "bi-token",
    "PARAM_BI_CERTI_PATH": "/flageemonitor/certi_api.pem",
    "PARAM_BASE_DIR": "/ariusmonitor",
    "PARAM_PATH_GERAL_LOCAL": "/ariusmonitor/host-linux/geral.conf",
    "PARAM_PATH_GERAL_REMOTE": "/ariusmonitor/conf/zabbix_agentd.conf.d/geral.conf",
    "PARAM_CLISITEF_DIR": "/ariusmonitor/host-linux/clisitef",
    "PARAM_AGENTD_LOG": "/ariusmonitor/logs/agentd.log",
    "PARAM_AGENTD_PID": "/ariusmonitor/logs/agentd.pid",
    "PARAM_AGENTD_CONF_DIR": "/ariusmonitor/conf",
    "PARAM_EMPRESA_ID": 7,
    "PARAM_PORT": "10051",
    "PARAM_ZABBIX_GROUPID": "22",
    "DB_USER": "u",
    "DB_PASS": "p",
    "DB_NAME": "controle",
    "DB_PG_USER": "pg",
    "DB_PG_PASS": "pgp",
    "DB_PG_DB": "neo",
    "DB_PG_PORT": 5432,
    "DB_HOST_BI": "bi-db",
    "DB_USER_BI": "bi",
    "DB_PASS_BI": "bip",
    "DB_NAME_BI": "bi",
    "EXCLUDE_TEMPLATE_IDS": ["10001", 10002],
    "max_threads": 50,
    "ssh": {"timeout": 30},
    "logfiles": {"general": "/ariusmonitor/logs/general.log"},
    "log_rotation": {"max_bytes": 10485760, "backup_count": 5},
    "shutdown_window": {"start": 22, "end": 6},
    "shutdown_exception_ips": ["10.1.1.50"],
    "TIMEZONE": "America/Sao_Paulo",
    "TIMEZONE_LOCALTIME_TARGET": "/usr/share/zoneinfo/America/Sao_Paulo",
    "NTP_ENABLE": "yes",
    "NTP_SERVER": "a.ntp.br",
    "PDV_TIMEZONE_SETTINGS": {"default": {"timezone": "America/Sao_Paulo", "enable_ntp": "on"}},
    "PDV_PARSING_RULE": {"regex": "L(?P<loja_num>\\d+)P(?P<pdv_num>\\d+)", "source_field": "descricao"},
    "provider": "arius",
}


def test_every_appendix_a_key_is_accepted_and_kept() -> None:
    config = validate_config(APPENDIX_A)
    raw = config.raw()
    for key in APPENDIX_A:
        assert key in raw, key
    assert config.NTP_ENABLE is True
    assert config.PARAM_CRON_ACTIONS == {"pdv_shutdown": True, "status_caixa": False}


def test_unknown_keys_are_kept() -> None:
    config = validate_config({"PARAM_REDE": "R", "SOMETHING_NEW": {"a": 1}})
    assert config.raw()["SOMETHING_NEW"] == {"a": 1}


def test_provider_comes_from_param_provider_then_legacy_provider() -> None:
    both = {"PARAM_REDE": "R", "PARAM_PROVIDER": " Zanthus ", "provider": "arius"}
    assert validate_config(both).effective_provider == "zanthus"
    assert validate_config({"PARAM_REDE": "R", "provider": "zanthus"}).effective_provider == "zanthus"
    assert validate_config({"PARAM_REDE": "R"}).effective_provider is None


def test_missing_rede_names_the_field() -> None:
    with pytest.raises(ConfigInvalid, match="PARAM_REDE"):
        validate_config({"TIMEZONE": "UTC"})


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"TIMEZONE": '"America/Sao_Paulo"'}, "TIMEZONE"),
        ({"max_threads": 0}, "max_threads"),
        ({"PARAM_COMPATIBILITY_MODE": "strict"}, "PARAM_COMPATIBILITY_MODE"),
        ({"PARAM_CRON_ACTIONS": {"cupons": "every five minutes"}}, "PARAM_CRON_ACTIONS"),
        ({"PARAM_CRON_ACTIONS": {"cupons": {"cron": "61 * * * *"}}}, "PARAM_CRON_ACTIONS.cupons"),
        ({"PARAM_ROLLOUT_ZANTHUS": 140}, "PARAM_ROLLOUT_ZANTHUS"),
        ({"shutdown_window": {"start": 25}}, "shutdown_window.start"),
    ],
)
def test_invalid_values_name_the_field_and_reason(patch: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigInvalid) as info:
        validate_config({"PARAM_REDE": "R", **patch})
    assert field in str(info.value)


def test_cron_actions_accept_bool_expression_and_long_form() -> None:
    config = validate_config({
        "PARAM_REDE": "R",
        "PARAM_CRON_ACTIONS": {
            "pdv_shutdown": "true",
            "cupons": "*/5 * * * *",
            "status_caixa": {"cron": "*/3 * * * *", "args": ["--debug"], "enabled": "yes"},
        },
    })
    entries = config.PARAM_CRON_ACTIONS
    assert entries["pdv_shutdown"] is True
    assert entries["cupons"] == "*/5 * * * *"
    long_form = entries["status_caixa"]
    assert isinstance(long_form, CronActionSpec) and long_form.args == ["--debug"] and long_form.enabled


def test_parse_tolerates_a_bom_and_reports_bad_json_position() -> None:
    assert parse_config_text(b'\xef\xbb\xbf{"PARAM_REDE": "R"}').PARAM_REDE == "R"
    with pytest.raises(ConfigInvalid, match="not valid JSON"):
        parse_config_text('{"PARAM_REDE": "R"')
    with pytest.raises(ConfigInvalid, match="JSON object"):
        parse_config_text("[1, 2]")


def test_shipped_schema_is_generated_from_the_model() -> None:
    assert contracts.read_text(contracts.CONFIG_SCHEMA_FILE) == render_config_schema()


def test_schema_requires_rede_and_allows_unknown_keys() -> None:
    schema = json.loads(render_config_schema())
    assert schema["required"] == ["PARAM_REDE"]
    assert schema.get("additionalProperties", True) is not False
    assert "PARAM_PROVIDER" in schema["properties"] and "provider" in schema["properties"]


def test_inventory_kind_defaults_to_zabbix_only_when_configured() -> None:
    assert BotConfig(PARAM_REDE="R").inventory_kind == "file"
    assert BotConfig(PARAM_REDE="R", PARAM_ZABBIX_SERVER="z").inventory_kind == "zabbix"
    assert BotConfig(PARAM_REDE="R", PARAM_ZABBIX_SERVER="z", PARAM_INVENTORY="file").inventory_kind == "file"
