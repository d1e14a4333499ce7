"""Environment names, legacy twins and quotes left by `docker --env-file`."""

from __future__ import annotations

from flageemonitor.core import env


def test_flageemonitor_name_wins_over_legacy_twin() -> None:
    environ = {"FLAGEEMONITOR_TOKEN": "new", "ARIUSMONITOR_TOKEN": "old"}
    assert env.get("TOKEN", environ=environ) == "new"


def test_legacy_twin_is_read_when_the_new_name_is_absent_or_empty() -> None:
    assert env.get("REDE", environ={"ARIUSMONITOR_REDE": "MLAR"}) == "MLAR"
    assert env.get("REDE", environ={"FLAGEEMONITOR_REDE": "", "ARIUSMONITOR_REDE": "MLAR"}) == "MLAR"


def test_api_base_accepts_the_legacy_api_url_name() -> None:
    assert env.get("API_BASE", environ={"ARIUSMONITOR_API_URL": "https://x/api/ingest"}) == "https://x/api/ingest"


def test_surrounding_quotes_from_env_files_are_stripped() -> None:
    environ = {"FLAGEEMONITOR_STATE_DIR": '"/var/lib/x"', "TZ": "'America/Sao_Paulo'"}
    assert str(env.state_dir(environ)) == "/var/lib/x"
    assert env.get_plain("TZ", environ=environ) == "America/Sao_Paulo"
    assert env.strip_quotes('"a"b"') == 'a"b'
    assert env.strip_quotes('"unbalanced') == '"unbalanced'


def test_state_dir_default() -> None:
    assert str(env.state_dir({})) == "/flageemonitor/state"
