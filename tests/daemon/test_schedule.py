"""The schedule built from PARAM_CRON_ACTIONS, and cron evaluated in the config's TIMEZONE."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from flageemonitor.core.catalog import load_catalog
from flageemonitor.core.config_model import validate_config
from flageemonitor.proxy.daemon.schedule import build_schedule, next_fire, request_fields


def _sched(**cfg: Any) -> dict[str, Any]:
    config = validate_config({"PARAM_REDE": "REDE1", **cfg})
    s = build_schedule(config, load_catalog())
    return {"sched": s, "jobs": {n: (j.cron, j.enabled, j.args) for n, j in s.jobs.items()}}


def test_defaults_reproduce_the_original_schedule_with_the_printer_fixed() -> None:
    jobs = _sched()["jobs"]
    assert jobs == {
        "config_refresh": ("0 * * * *", True, ()),
        "install_endpoint_agent": ("*/30 * * * *", True, ("--agent-status", "2")),
        "collect_coupons": ("*/5 * * * *", True, ()),
        "collect_coupon_details": ("0 * * * *", True, ()),
        "collect_coupon_lv": ("*/10 7-23 * * *", True, ()),
        "refresh_endpoint_printer": ("0 1 * * *", True, ()),  # the original's `* 1 * * *` ran 60 times
        "collect_checkout_status": ("*/3 * * * *", False, ()),
        "shutdown_endpoint": ("50 23 * * *", True, ()),
    }


@pytest.mark.parametrize("status_key", ["status_caixa", "collect_checkout_status"])
@pytest.mark.parametrize("shutdown_key", ["pdv_shutdown", "shutdown_endpoint", "shutdown_host"])
def test_bool_entries_toggle_the_default_schedule_under_legacy_or_canonical_names(
    status_key: str, shutdown_key: str
) -> None:
    jobs = _sched(PARAM_CRON_ACTIONS={status_key: True, shutdown_key: "false"})["jobs"]
    assert jobs["collect_checkout_status"] == ("*/3 * * * *", True, ())
    assert jobs["shutdown_endpoint"] == ("50 23 * * *", False, ())


def test_cron_string_and_long_form_entries_override_and_add_jobs() -> None:
    out = _sched(PARAM_CRON_ACTIONS={
        "pdv_install": {"cron": "15 * * * *", "args": ["--agent-status", "0"]},
        "cupons": {"enabled": False},
        "pdv_diagnose_env": "*/7 * * * *",
        "config_refresh": "*/10 * * * *",
    })
    jobs = out["jobs"]
    assert jobs["install_endpoint_agent"] == ("15 * * * *", True, ("--agent-status", "0"))
    assert jobs["collect_coupons"] == ("*/5 * * * *", False, ())
    assert jobs["diagnose_env"] == ("*/7 * * * *", True, ())
    assert jobs["config_refresh"] == ("*/10 * * * *", True, ())
    assert out["sched"].warnings == []


def test_unknown_action_and_bool_without_default_are_warnings_not_errors() -> None:
    out = _sched(PARAM_CRON_ACTIONS={"no_such_action": True, "diagnose_env": True})
    warnings = " | ".join(out["sched"].warnings)
    assert "no_such_action" in warnings
    assert "diagnose_env: has no default schedule" in warnings
    assert "diagnose_env" not in out["jobs"]


def test_shutdown_fires_at_2350_sao_paulo_not_2350_utc_whatever_the_container_tz(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        s = _sched(TIMEZONE="America/Sao_Paulo")["sched"]
        assert s.tz_name == "America/Sao_Paulo"
        after = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
        fire = next_fire("50 23 * * *", after, s.tz)
        # 23:50 in São Paulo (UTC-3) is 02:50 UTC the next day; the original fired at 23:50 UTC
        assert fire.astimezone(UTC) == datetime(2026, 3, 11, 2, 50, tzinfo=UTC)
        assert fire.astimezone(ZoneInfo("America/Sao_Paulo")).hour == 23
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_quoted_container_tz_is_used_when_the_config_has_no_timezone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", '"America/Sao_Paulo"')  # as `docker run --env-file` leaves it
    assert _sched()["sched"].tz_name == "America/Sao_Paulo"
    monkeypatch.setenv("TZ", '"Not/AZone"')
    assert _sched()["sched"].tz_name == "UTC"


def test_cupons_lv_window_is_local_hours() -> None:
    tz = ZoneInfo("America/Sao_Paulo")
    after = datetime(2026, 5, 1, 2, 0, tzinfo=UTC)  # 23:00 local the day before
    fire = next_fire("*/10 7-23 * * *", after, tz)
    assert fire.astimezone(tz).hour == 23 and fire.astimezone(tz).minute == 10
    fire = next_fire("*/10 7-23 * * *", datetime(2026, 5, 1, 3, 0, tzinfo=UTC), tz)  # 00:00 local
    assert (fire.astimezone(tz).hour, fire.astimezone(tz).minute) == (7, 0)


def test_scheduled_args_split_into_request_filters_and_action_options() -> None:
    req, filt, extra = request_fields(["--agent-status", "2", "--dry-run", "--loja=12", "--pdv-ip", "1.2.3.4,5.6.7.8",
                                       "--provider", "arius", "--mode", "fast", "--force"])
    assert req == {"dry_run": True, "provider": "arius"}
    assert filt == {"agent_status": 2, "loja": "12", "pdv_ip": ("1.2.3.4", "5.6.7.8")}
    assert extra == {"mode": "fast", "force": True}
    with pytest.raises(ValueError, match="--agent-status"):
        request_fields(["--agent-status", "two"])
    with pytest.raises(ValueError, match="unexpected argument"):
        request_fields(["positional"])


def _staging(**cfg: Any) -> dict[str, tuple[str | None, float | None]]:
    jobs = _sched(**cfg)["sched"].jobs
    return {n: (j.batch, j.max_fail_percent) for n, j in jobs.items()}


def test_long_form_entries_stage_the_scheduled_run() -> None:
    staged = _staging(PARAM_CRON_ACTIONS={
        "pdv_uninstall": {"cron": "0 3 * * *", "args": ["--loja", "1"], "batch": "1,25%", "max_fail_percent": 10},
        "pdv_update_config": {"cron": "0 4 * * *", "max_fail_percent": "12.5%"},
        "pdv_test_connection": {"cron": "0 5 * * *", "batch": 20},
    })
    assert staged["uninstall_endpoint_agent"] == ("1,25%", 10.0)
    assert staged["update_endpoint_config"] == (None, 12.5)  # with the action's default batches
    assert staged["test_endpoint_connection"] == ("20", None)


def test_routine_default_jobs_run_in_one_batch_unless_the_entry_stages_them() -> None:
    """Scheduled install (agents that do not answer) and shutdown (stores closing) mostly meet
    switched-off endpoints: with a canary they would stop at every tick."""
    assert _staging()["install_endpoint_agent"] == ("all", None)
    assert _staging()["shutdown_endpoint"] == ("all", None)
    assert _staging()["collect_coupons"] == (None, None)
    kept = _staging(PARAM_CRON_ACTIONS={"pdv_install": "15 * * * *", "pdv_shutdown": True})
    assert kept["install_endpoint_agent"] == ("all", None) and kept["shutdown_endpoint"] == ("all", None)
    staged = _staging(PARAM_CRON_ACTIONS={"pdv_install": {"max_fail_percent": 20},
                                          "pdv_shutdown": {"args": ["--batch", "10%"]}})
    assert staged["install_endpoint_agent"] == (None, 20.0)  # the action's canary with the operator's limit
    assert staged["shutdown_endpoint"] == (None, None)  # --batch in args is the operator's choice


def test_scheduled_args_carry_batch_and_max_fail_percent() -> None:
    req, _, extra = request_fields(["--batch", "1,10%", "--max-fail-percent", "5"])
    assert req == {"batch": "1,10%", "max_fail_percent": 5.0} and extra == {}
    with pytest.raises(ValueError, match="--max-fail-percent"):
        request_fields(["--max-fail-percent", "some"])


@pytest.mark.parametrize(("entry", "says"), [
    ({"batch": 0}, "PARAM_CRON_ACTIONS.pdv_install.long form.batch: Value error, '0': a batch holds at least one host"),
    ({"batch": "ten"}, "long form.batch: Value error, 'ten': expected a number of hosts"),
    ({"max_fail_percent": 120}, "long form.max_fail_percent: Value error, 120: expected a percentage from 0 to 100"),
    ({"batch": "all", "max_fail_percent": 5}, "max_fail_percent has nothing to stop with batch 'all'"),
])
def test_bad_staging_in_a_schedule_entry_is_a_config_error_naming_the_field(entry: dict[str, Any], says: str) -> None:
    from flageemonitor.core.errors import ConfigInvalid

    with pytest.raises(ConfigInvalid) as err:
        validate_config({"PARAM_REDE": "R", "PARAM_CRON_ACTIONS": {"pdv_install": entry}})
    assert says in str(err.value)
    assert "\n" not in str(err.value) and "Input should be a valid boolean" not in str(err.value)
