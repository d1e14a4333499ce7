"""The result model: statuses, `changed`, `changes` and the summary's counts."""

from __future__ import annotations

from flageemonitor.core.results import HostResult, RunReport, Status


def report(dry_run: bool, *hosts: HostResult) -> RunReport:
    return RunReport("pdv_install", "install_endpoint_agent", "arius", "1.0.0", dry_run, list(hosts))


def test_changed_and_skipped_are_not_failures_and_are_counted() -> None:
    run = report(False,
                 HostResult("A", "127.0.0.2", Status.CHANGED, changed=True, changes=[{"summary": "restart"}]),
                 HostResult("B", "127.0.0.3", Status.OK, detail="unchanged"),
                 HostResult("C", "127.0.0.4", Status.SKIPPED, detail="concentrator"),
                 HostResult("D", "127.0.0.5", Status.FAILED, detail="rolled back"))
    summary = run.summary()
    assert (summary["changed"], summary["ok"], summary["skipped"], summary["failed"]) == (1, 1, 1, 1)
    assert summary["failures"] == 1 and run.failed
    assert not Status.CHANGED.is_failure and not Status.SKIPPED.is_failure


def test_dry_run_counts_hosts_that_would_change() -> None:
    run = report(True,
                 HostResult("A", "127.0.0.2", Status.PLANNED, changed=True, changes=[{"summary": "upload"}]),
                 HostResult("B", "127.0.0.3", Status.PLANNED, detail="unchanged"))
    summary = run.summary()
    assert summary["planned"] == 2 and summary["changed"] == 1 and not run.failed


def test_json_shape_carries_changed_and_changes_per_host() -> None:
    host = HostResult("A", "127.0.0.2", Status.CHANGED, changed=True, changes=[{"kind": "restart"}])
    out = report(False, host).to_dict()
    assert out["hosts"][0]["changed"] is True and out["hosts"][0]["changes"] == [{"kind": "restart"}]
    assert "prepared" not in out
    plain = HostResult("B", "127.0.0.3", Status.OK).to_dict()
    assert plain["changed"] is False and plain["changes"] == []
