"""The admin CLI: stable command forms, clear errors, history/diff/rollback, audit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flageemonitor.server.cli import app

runner = CliRunner()


class Cli:
    def __init__(self, db_url: str, tmp_path: Path) -> None:
        self.db_url = db_url
        self.tmp_path = tmp_path

    def __call__(self, *args: str, ok: bool = True) -> tuple[int, str, str]:
        result = runner.invoke(app, ["--database-url", self.db_url, *args])
        if ok:
            assert result.exit_code == 0, (args, result.stdout, result.stderr)
        return result.exit_code, result.stdout, result.stderr

    def config_file(self, data: object, name: str = "config.json") -> str:
        path = self.tmp_path / name
        path.write_text(json.dumps(data) if not isinstance(data, str) else data)
        return str(path)


@pytest.fixture
def cli(db_url: str, tmp_path: Path) -> Cli:
    c = Cli(db_url, tmp_path)
    c("client", "add", "acme")
    c("network", "add", "--client", "acme", "ACME01", "--provider", "arius")
    return c


def test_duplicate_names_and_unknown_references_are_clear_errors(cli: Cli) -> None:
    code, _, err = cli("client", "add", "acme", ok=False)
    assert code == 1 and "client 'acme' already exists" in err
    code, _, err = cli("network", "add", "--client", "acme", "ACME01", ok=False)
    assert code == 1 and "network 'ACME01' already exists" in err
    code, _, err = cli("network", "add", "--client", "nobody", "X1", ok=False)
    assert code == 1 and "unknown client 'nobody'" in err
    code, _, err = cli("network", "add", "--client", "acme", "bad code;rm", ok=False)
    assert code == 1 and "network code" in err
    code, _, err = cli("network", "add", "--client", "acme", "TZ1", "--timezone", "Mars/Base", ok=False)
    assert code == 1 and "Mars/Base" in err
    code, _, err = cli("config", "set", "--network", "NOPE", cli.config_file({}), ok=False)
    assert code == 1 and "unknown network 'NOPE'" in err
    code, _, err = cli("token", "issue", "--client", "acme", "--scope", "root", ok=False)
    assert code == 1 and "unknown scope 'root'" in err
    code, _, err = cli("token", "revoke", "999", ok=False)
    assert code == 1 and "unknown token id 999" in err


def test_invalid_config_is_refused_with_the_exact_field_and_nothing_is_stored(cli: Cli) -> None:
    code, _, err = cli("config", "set", "--network", "ACME01", cli.config_file({"max_threads": 0}), ok=False)
    assert code == 1
    assert "max_threads: Input should be greater than or equal to 1" in err
    code, _, err = cli("config", "set", "--network", "ACME01", cli.config_file({"TIMEZONE": "Nowhere/City"}), ok=False)
    assert "TIMEZONE: Value error, unknown time zone 'Nowhere/City'" in err
    code, _, err = cli("config", "set", "--network", "ACME01", cli.config_file("{not json"), ok=False)
    assert code == 1 and "not valid JSON" in err
    code, _, err = cli("config", "set", "--network", "ACME01", cli.config_file([1, 2]), ok=False)
    assert code == 1 and "config must be a JSON object" in err
    code, _, err = cli("config", "show", "--network", "ACME01", ok=False)
    assert code == 1 and "has no config yet" in err


def test_token_issue_json_and_list_json_shapes(cli: Cli) -> None:
    _, out, _ = cli("token", "issue", "--client", "acme", "--network", "ACME01", "--json")
    issued = json.loads(out)
    assert set(issued) == {"token", "id"}
    assert issued["token"].startswith("fmt_") and len(issued["token"]) == 47
    _, out, _ = cli("token", "issue", "--client", "acme", "--scope", "config:read", "--scope", "admin",
                    "--expires-in-days", "30", "--json")
    second = json.loads(out)
    _, out, _ = cli("token", "list", "--client", "acme", "--json")
    listed = json.loads(out)
    assert [t["id"] for t in listed] == [issued["id"], second["id"]]
    for row in listed:
        assert {"id", "networks", "scopes", "created_at", "expires_at", "revoked", "last_used_at"} <= set(row)
        assert issued["token"] not in json.dumps(row)
    assert listed[0]["networks"] == ["ACME01"]
    assert listed[0]["scopes"] == ["config:read", "bootstrap:read", "report:write"]
    assert listed[0]["expires_at"] is None
    assert listed[1]["networks"] == []
    assert listed[1]["scopes"] == ["config:read", "admin"]
    assert listed[1]["expires_at"] is not None
    cli("token", "revoke", str(issued["id"]))
    _, out, _ = cli("token", "list", "--client", "acme", "--json")
    assert [t["revoked"] for t in json.loads(out)] == [True, False]


def test_config_history_diff_and_rollback(cli: Cli) -> None:
    cli("config", "set", "--network", "ACME01", cli.config_file({"max_threads": 10, "TIMEZONE": "UTC"}, "v1.json"))
    _, out, _ = cli("config", "set", "--network", "ACME01", "--comment", "more threads",
                    cli.config_file({"max_threads": 40, "TIMEZONE": "UTC"}, "v2.json"))
    assert "version 2" in out
    _, diff, _ = cli("config", "diff", "--network", "ACME01")
    assert '-  "max_threads": 10' in diff and '+  "max_threads": 40' in diff
    assert "ACME01 v1" in diff and "ACME01 v2" in diff
    assert "CONFIG_VERSION" not in diff
    _, out, _ = cli("config", "rollback", "--network", "ACME01", "--to", "1")
    assert "version 3" in out
    _, shown, _ = cli("config", "show", "--network", "ACME01")
    served = json.loads(shown)
    assert served["max_threads"] == 10 and served["CONFIG_VERSION"] == 3 and served["PARAM_REDE"] == "ACME01"
    _, same, _ = cli("config", "diff", "--network", "ACME01", "--from", "1", "--to", "3")
    assert same.strip() == "(no differences)"
    _, out, _ = cli("config", "history", "--network", "ACME01", "--json")
    history = json.loads(out)
    assert [h["version"] for h in history] == [1, 2, 3]
    assert history[1]["comment"] == "more threads"
    assert history[2]["comment"] == "rollback to v1"
    code, _, err = cli("config", "rollback", "--network", "ACME01", "--to", "9", ok=False)
    assert code == 1 and "no config version 9" in err


def test_audit_log_records_who_changed_what(cli: Cli) -> None:
    cli("config", "set", "--network", "ACME01", cli.config_file({"max_threads": 10}))
    _, out, _ = cli("token", "issue", "--client", "acme", "--json")
    token = json.loads(out)
    cli("token", "revoke", str(token["id"]))
    cli("config", "rollback", "--network", "ACME01", "--to", "1")
    _, out, _ = cli("audit", "list", "--json")
    entries = json.loads(out)
    actions = [e["action"] for e in reversed(entries)]
    assert actions == ["client.add", "network.add", "config.set", "token.issue", "token.revoke", "config.set",
                       "config.rollback"]
    assert all(e["actor"].startswith("cli:") for e in entries)
    assert token["token"] not in out
    _, out, _ = cli("audit", "list", "--target", "network:ACME01", "--json")
    assert {e["target"] for e in json.loads(out)} == {"network:ACME01"}


def test_demo_is_idempotent_and_prints_the_one_liner(cli: Cli) -> None:
    _, first, _ = cli("demo", "--port", "8123")
    _, second, _ = cli("demo", "--port", "8123")
    assert "curl -fsSL -H 'X-Bot-Token: fmt_" in first
    assert "http://127.0.0.1:8123/api/bootstrap/install.sh | sudo bash -s -- fmt_" in first
    assert "http://127.0.0.1:8123/api/ingest/bot/config" in first
    _, out, _ = cli("client", "list", "--json")
    assert [c["name"] for c in json.loads(out)] == ["acme", "demo"]
    _, out, _ = cli("config", "history", "--network", "DEMO", "--json")
    assert len(json.loads(out)) == 1
    _, out, _ = cli("token", "list", "--client", "demo", "--json")
    assert len(json.loads(out)) == 2
    assert first != second  # each run issues its own token


def test_db_upgrade_reaches_the_shipped_head(cli: Cli) -> None:
    _, out, _ = cli("db", "upgrade")
    assert "latest schema" in out
    _, out, _ = cli("db", "current")
    from flageemonitor.server import migrate

    head = migrate.head_revision()
    assert out.strip() == f"current: {head}  head: {head}"


def test_serve_refuses_to_start_on_an_unreachable_database_with_one_clear_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no-such-dir' / 'x.db'}"
    result = runner.invoke(app, ["serve", "--database-url", url, "--port", "1"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot migrate sqlite:///")
    assert "unable to open database file" in result.stderr


def test_network_codes_are_unique_whatever_their_case(cli: Cli) -> None:
    code, _, err = cli("network", "add", "--client", "acme", "acme01", ok=False)
    assert code == 1 and "clashes with the existing network 'ACME01'" in err
    _, out, _ = cli("network", "list", "--json")
    assert [n["code"] for n in json.loads(out)] == ["ACME01"]


def test_a_comment_cannot_forge_an_audit_or_history_line(cli: Cli) -> None:
    forged = "ok\n2026-01-01T00:00:00+00:00  cli:boss  token.revoke  token:1\x1b[2K\u202e"
    cli("config", "set", "--network", "ACME01", "--comment", forged, cli.config_file({"max_threads": 3}))
    _, text_out, _ = cli("audit", "list")
    lines = text_out.splitlines()
    assert len(lines) == 3  # client.add, network.add, config.set: one line each
    assert not any(line.startswith("2026-01-01T00:00:00+00:00") for line in lines)
    assert "\x1b" not in text_out and "\u202e" not in text_out
    assert "comment=ok\\n2026-01-01T00:00:00+00:00  cli:boss" in lines[0]
    _, json_out, _ = cli("audit", "list", "--json")
    entry = json.loads(json_out)[0]
    assert entry["action"] == "config.set" and entry["detail"].endswith("\\x1b[2K\\u202e")
    _, history, _ = cli("config", "history", "--network", "ACME01")
    assert len(history.splitlines()) == 1 and "cli:boss" in history


def test_config_set_refuses_names_the_proxy_would_not_understand_with_a_did_you_mean(cli: Cli) -> None:
    code, _, err = cli("config", "set", "--network", "ACME01",
                       cli.config_file({"PARAM_CRON_ACTIONS": {"diagnose_enw": "*/5 * * * *"}}), ok=False)
    assert code == 1 and "unknown action 'diagnose_enw'" in err and "Did you mean: diagnose_env" in err
    code, _, err = cli("config", "set", "--network", "ACME01", cli.config_file({"PARAM_PROVIDER": "zanthos"}), ok=False)
    assert code == 1 and "unknown provider 'zanthos'. Did you mean: zanthus?" in err
    code, _, err = cli("config", "set", "--network", "ACME01", cli.config_file({"PARAM_REDE": "ACME02"}), ok=False)
    assert code == 1 and "PARAM_REDE: 'ACME02' differs from the network 'ACME01'" in err
    code, _, err = cli("network", "add", "--client", "acme", "ACME03", "--provider", "zanthos", ok=False)
    assert code == 1 and "Did you mean: zanthus?" in err
    code, _, err = cli("config", "show", "--network", "ACME01", ok=False)
    assert "has no config yet" in err  # nothing refused was stored
    # legacy, generic, canonical and provider names, and config_refresh, are all understood
    cli("config", "set", "--network", "ACME01", cli.config_file({"PARAM_CRON_ACTIONS": {
        "pdv_install": True, "shutdown_host": False, "diagnose_env": "0 3 * * *", "config_refresh": "0 * * * *"}}))


def test_config_set_warns_about_likely_typos_and_fills_the_network_time_zone(cli: Cli) -> None:
    cli("network", "add", "--client", "acme", "ACME09", "--timezone", "America/Manaus")
    _, out, err = cli("config", "set", "--network", "ACME09",
                         cli.config_file({"max_thread": 10, "ssh": {"timout": 5}, "NOTE": "free text"}))
    assert "version 1 stored" in out
    assert "warning: max_thread: unknown key, ignored by the proxy; did you mean max_threads?" in err
    assert "warning: ssh.timout: unknown key, ignored by the proxy; did you mean ssh.timeout?" in err
    assert "NOTE" not in err
    _, shown, _ = cli("config", "show", "--network", "ACME09")
    assert json.loads(shown)["TIMEZONE"] == "America/Manaus"


def test_config_set_refuses_staging_the_proxy_could_not_apply(cli: Cli) -> None:
    for entry, says in (
        ({"cupons": {"batch": 10}}, "PARAM_CRON_ACTIONS.cupons: collect_coupons runs once in the proxy (a local "
                                    "action): --batch does not apply"),
        ({"pdv_test_connection": {"cron": "0 5 * * *", "max_fail_percent": 5}},
         "PARAM_CRON_ACTIONS.pdv_test_connection: --max-fail-percent needs --batch"),
        ({"pdv_install": {"batch": "0%"}}, "PARAM_CRON_ACTIONS.pdv_install.long form.batch: Value error, '0%': "
                                           "a batch percentage must be above 0"),
    ):
        code, _, err = cli("config", "set", "--network", "ACME01", cli.config_file({"PARAM_CRON_ACTIONS": entry}),
                           ok=False)
        assert code == 1 and says in err, (entry, err)
    code, _, err = cli("config", "show", "--network", "ACME01", ok=False)
    assert "has no config yet" in err  # nothing refused was stored
    cli("config", "set", "--network", "ACME01", cli.config_file({"PARAM_CRON_ACTIONS": {
        "pdv_install": {"batch": "1,10%", "max_fail_percent": 10},
        "pdv_test_connection": {"cron": "0 5 * * *", "batch": 20, "max_fail_percent": 50}}}))
    _, shown, _ = cli("config", "show", "--network", "ACME01")
    assert json.loads(shown)["PARAM_CRON_ACTIONS"]["pdv_install"]["batch"] == "1,10%"
