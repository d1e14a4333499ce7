"""`flageemonitor run` / `plan`: exit codes and the --json shape (no endpoint needed)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from flageemonitor.proxy.cli.app import app


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FLAGEEMONITOR_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("FLAGEEMONITOR_CONFIG_PATH", raising=False)
    (tmp_path / "config.json").write_text(json.dumps({"PARAM_REDE": "R1", "ssh": {"timeout": 2}}))
    return tmp_path


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def inventory(path: Path, **host: object) -> Path:
    entry = {"name": "R1-LOJA001-PDV201", "ip": "127.0.0.1", "port": closed_port(), "password": "pw-secret"}
    entry.update(host)
    path.write_text(yaml.safe_dump({"hosts": [entry]}))
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_unknown_action_exits_2_with_suggestions(env: Path) -> None:
    code, _, err = invoke("run", "pdv_test_conection", "--config", str(env / "config.json"),
                          "--inventory", str(inventory(env / "inv.yaml")))
    assert code == 2 and "pdv_test_connection" in err


def test_unimplemented_and_unknown_provider_exit_2(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import flageemonitor.proxy.pipeline as pipeline_module

    inv = str(inventory(env / "inv.yaml"))
    cfg = str(env / "config.json")
    with monkeypatch.context() as patched:
        patched.setattr(pipeline_module, "get_action", lambda canonical: None)  # a catalog newer than the code
        code, _, err = invoke("run", "cupons", "--config", cfg, "--inventory", inv)
    assert code == 2 and "not implemented" in err
    assert invoke("run", "test_endpoint_connection", "--provider", "acme", "--config", cfg, "--inventory", inv)[0] == 2
    assert invoke("run", "test_endpoint_connection", "--compat-mode", "loud", "--config", cfg)[0] == 2


def test_missing_or_invalid_config_exits_3_naming_the_problem(env: Path) -> None:
    code, _, err = invoke("run", "test_endpoint_connection", "--config", str(env / "absent.json"))
    assert code == 3 and "config missing" in err
    (env / "bad.json").write_text(json.dumps({"PARAM_REDE": "R1", "max_threads": 0}))
    code, _, err = invoke("run", "test_endpoint_connection", "--config", str(env / "bad.json"))
    assert code == 3 and "config invalid" in err and "max_threads" in err


def test_inventory_error_exits_3(env: Path) -> None:
    (env / "inv.yaml").write_text("hosts: [{name: R1-LOJA001-PDV201}]\n")
    code, _, err = invoke("run", "test_endpoint_connection", "--config", str(env / "config.json"),
                          "--inventory", str(env / "inv.yaml"))
    assert code == 3 and "inventory error" in err and "'ip' is required" in err


def test_failed_host_exits_1_and_json_has_the_report_shape(env: Path) -> None:
    code, out, err = invoke("run", "pdv_test_connection", "--json", "--config", str(env / "config.json"),
                            "--inventory", str(inventory(env / "inv.yaml")))
    assert code == 1
    report = json.loads(out)
    assert report["action"] == {"requested": "pdv_test_connection", "canonical": "test_endpoint_connection",
                                "provider": "arius", "version": "1.0.0"}
    assert report["summary"]["unreachable"] == 1 and report["summary"]["failures"] == 1
    (host,) = report["hosts"]
    assert set(host) >= {"host", "ip", "status", "facts", "duration_s", "detail"}
    assert host["status"] == "unreachable"
    assert "pw-secret" not in out + err


def test_plan_of_a_zanthus_host_at_zero_percent_exits_0(env: Path) -> None:
    code, out, _ = invoke("plan", "terminal_ping", "--provider", "zanthus", "--json", "--config",
                          str(env / "config.json"), "--inventory", str(inventory(env / "inv.yaml")))
    assert code == 0
    report = json.loads(out)
    assert report["dry_run"] is True and report["hosts"][0]["status"] == "skipped_rollout"


def test_filters_select_by_ip_list_and_tag(env: Path) -> None:
    port = closed_port()
    hosts = [
        {"name": f"R1-LOJA001-PDV20{i}", "ip": f"127.0.0.{i}", "port": port, "tags": {"tipo": t}}
        for i, t in ((1, "PDV"), (2, "SELF"), (3, "PDV"))
    ]
    (env / "inv.yaml").write_text(yaml.safe_dump({"hosts": hosts}))
    code, out, _ = invoke("plan", "test_endpoint_connection", "--json", "--compat-mode", "off",
                          "--pdv-ip", "127.0.0.1,127.0.0.2", "--pdv-ip", "127.0.0.3", "--tag", "tipo=PDV",
                          "--config", str(env / "config.json"), "--inventory", str(env / "inv.yaml"))
    assert code == 0
    assert [h["ip"] for h in json.loads(out)["hosts"]] == ["127.0.0.1", "127.0.0.3"]


def test_table_output_without_json(env: Path) -> None:
    code, out, _ = invoke("run", "test_endpoint_connection", "--config", str(env / "config.json"),
                          "--inventory", str(inventory(env / "inv.yaml")))
    assert code == 1
    assert "unreachable" in out and "summary:" in out


def test_diagnose_env_reports_proxy_checks_even_without_a_config(env: Path) -> None:
    code, out, err = invoke("run", "diagnose_env", "--json", "--config", str(env / "absent.json"))
    assert code == 3 and "config missing" in err
    checks = {c["name"]: c for c in json.loads(out)["local"]["checks"]}
    assert checks["config"]["ok"] is False and "absent.json" in checks["config"]["detail"]
    assert checks["state_dir"]["ok"] is True


def test_agent_run_preparation_failure_exits_4_in_one_line_and_refusals_exit_2_or_3(env: Path) -> None:
    inv = str(inventory(env / "inv.yaml"))
    cfg = env / "config.json"
    cfg.write_text(json.dumps({"PARAM_REDE": "R1", "PARAM_LOCAL_REPO_DIR": str(env / "no-repo")}))
    code, out, err = invoke("run", "pdv_install", "--config", str(cfg), "--inventory", inv)
    assert code == 4 and out == ""
    assert err.strip().splitlines()[-1] == (
        f"flageemonitor: PARAM_LOCAL_REPO_DIR {env / 'no-repo'}: not a directory; no host was contacted")
    code, _, err = invoke("run", "pdv_uninstall", "--config", str(cfg), "--inventory", inv)
    assert code == 2 and "--all" in err
    cfg.write_text(json.dumps({"PARAM_REDE": "R1", "PARAM_PROXY_IP": "$(reboot)"}))
    code, _, err = invoke("plan", "pdv_update_config", "--config", str(cfg), "--inventory", inv)
    assert code == 3 and "PARAM_PROXY_IP" in err and "no host was contacted" in err


def test_staging_options_that_cannot_apply_exit_2_before_any_host_is_read(env: Path) -> None:
    cfg = str(env / "config.json")
    missing = str(env / "no-inventory.yaml")  # never read: the refusal comes first
    for args, says in (
        (("run", "pdv_test_connection", "--batch", "0"), "a batch holds at least one host"),
        (("run", "pdv_test_connection", "--batch", "150%"), "at most 100"),
        (("run", "pdv_test_connection", "--batch", "5,"), "comma list"),
        (("run", "pdv_test_connection", "--max-fail-percent", "101"), "--max-fail-percent"),
        (("plan", "pdv_test_connection", "--max-fail-percent", "10"), "--max-fail-percent needs --batch"),
        (("run", "cupons", "--batch", "2"), "collect_coupons runs once in the proxy (a local action)"),
        (("run", "pdv_install", "--batch", "all", "--max-fail-percent", "5"), "nothing to stop with --batch all"),
    ):
        code, _, err = invoke(*args, "--config", cfg, "--inventory", missing)
        assert code == 2 and says in err, (args, code, err)
