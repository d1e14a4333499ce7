"""Fast tests of the collector pieces that need no database: the spool, the cursor store, dates,
payload rendering, queries, and the BI client against the stand-in."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path

import pytest
from devtools.bi_standin import BiStandIn

from flageemonitor.core.config_model import validate_config
from flageemonitor.proxy.collectors.bi import BiClient, BiNotConfigured, BiRejected, BiUnavailable
from flageemonitor.proxy.collectors.coupons import COUPONS
from flageemonitor.proxy.collectors.cursor import Cursor, CursorStore, fingerprint
from flageemonitor.proxy.collectors.dates import BadDate, parse_date, parse_range, shift
from flageemonitor.proxy.collectors.engine import Options, build_query
from flageemonitor.proxy.collectors.payload import Field, columns, python_json, sql_json, supports_json
from flageemonitor.proxy.spool import Spool, SpoolError, consumer_lock, spool_path
from tests.fixtures.bi import BI_TOKEN


# ------------------------------------------------------------------ spool
def test_spool_keeps_order_and_removes_only_acknowledged_items(tmp_path: Path) -> None:
    with Spool(spool_path(tmp_path)) as spool:
        spool.put("a", [(b"1", 1), (b"2", 2)])
        spool.put("b", [(b"x", 5)])
        spool.put("a", [(b"3", 3)])
        items = spool.peek("a")
        assert [i.body for i in items] == [b"1", b"2", b"3"]
        spool.ack(items[1])
        spool.delivered("a", 1)
    with Spool(spool_path(tmp_path)) as reopened:  # another process, after a restart
        assert [i.body for i in reopened.peek("a")] == [b"1", b"3"]
        stats = {q.queue: q for q in reopened.stats()}
        assert (stats["a"].items, stats["a"].records, stats["a"].delivered_items) == (2, 4, 1)
        assert (stats["b"].items, stats["b"].records) == (1, 5)


def test_spool_full_drops_the_oldest_loudly_and_counts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with Spool(spool_path(tmp_path), max_bytes=250) as spool, caplog.at_level(logging.ERROR):
        spool.put("q", [(b"a" * 100, 10), (b"b" * 100, 20)])
        spool.put("q", [(b"c" * 100, 30)])
        assert [i.body[:1] for i in spool.peek("q")] == [b"b", b"c"]
        (stats,) = spool.stats(["q"])
        assert (stats.dropped_items, stats.dropped_records, stats.bytes) == (1, 10, 200)
    assert any("SPOOL FULL" in r.message and "q" in r.message and "10 records" in r.message for r in caplog.records)


def test_spool_rolls_back_with_the_caller(tmp_path: Path) -> None:
    with Spool(spool_path(tmp_path)) as spool:
        with pytest.raises(RuntimeError), spool.transaction() as db:
            spool.put("q", [(b"x", 1)], db=db)
            raise RuntimeError("the cursor could not be saved")
        assert spool.peek("q") == []
        with pytest.raises(ValueError, match="invalid queue name"):
            spool.put("bad name; drop", [(b"x", 1)])


def test_spool_on_an_unwritable_path_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(SpoolError, match="spool"):
        Spool(blocker / "spool.sqlite3")


def test_one_consumer_per_queue(tmp_path: Path) -> None:
    with consumer_lock(tmp_path, "collect_coupons@127.0.0.1") as first:
        with consumer_lock(tmp_path, "collect_coupons@127.0.0.1") as second:
            assert first and not second
        with consumer_lock(tmp_path, "collect_coupons@127.0.0.2") as other:
            assert other


# ------------------------------------------------------------------ cursor
def test_cursor_remembers_recent_rows_and_forgets_old_ones(tmp_path: Path) -> None:
    with Spool(spool_path(tmp_path)) as spool:
        store = CursorStore(spool.connection)
        assert store.load("s", "o", 600) == Cursor(None, set())
        a, b, c = fingerprint('{"a":1}'), fingerprint('{"b":1}'), fingerprint('{"c":1}')
        with spool.transaction() as db:
            store.save(db, "s", "o", "2026-01-01 10:00:00",
                       [(a, "2026-01-01 09:40:00"), (b, "2026-01-01 09:55:00"), (c, "2026-01-01 10:00:00")], 600)
        loaded = store.load("s", "o", 600)
        assert loaded.position == "2026-01-01 10:00:00" and loaded.seen == {b, c}
        assert store.all()[0]["remembered_rows"] == 2
        assert store.load("s", "other", 600).position is None


# ------------------------------------------------------------------ dates and queries
@pytest.mark.parametrize("text", ["2026-01-01' OR '1'='1", "now()", "2026-13-01", "01/02/2026", "", "2026-01-01;--"])
def test_a_date_with_anything_else_in_it_is_refused(text: str) -> None:
    with pytest.raises(BadDate, match=r"--dtini .* is not a date"):
        parse_date(text, "--dtini")


def test_dates_and_ranges() -> None:
    assert parse_date("2026-03-04T05:06") == datetime(2026, 3, 4, 5, 6)
    assert parse_range("2026-03-04", "2026-03-05") == (datetime(2026, 3, 4), datetime(2026, 3, 5, 23, 59, 59))
    assert parse_range(None, None) is None
    with pytest.raises(BadDate, match="needs --dtini"):
        parse_range(None, "2026-03-05")
    assert shift("2026-01-01 00:05:00", -600) == "2025-12-31 23:55:00"
    assert shift("0000-00-00 00:00:00", -600) == "0000-00-00 00:00:00"


def test_queries_bind_every_value() -> None:
    opts = Options(rede="X'Y", loja=7, window=(datetime(2026, 1, 1), datetime(2026, 1, 2)))
    sql, params = build_query(COUPONS, opts, Cursor(None), in_database=True)
    assert "2026" not in sql and "X'Y" not in sql and "7" not in sql.replace("%%", "")
    assert params[0] == "X'Y" and params[-3:] == (datetime(2026, 1, 1), datetime(2026, 1, 2), 7)
    sql, params = build_query(COUPONS, Options(rede="R"), Cursor("2026-01-01 10:00:00"), in_database=False)
    assert "dthr_emit_nfe >= %s" in sql and params == ("2026-01-01 09:50:00",) and "ORDER BY dthr_emit_nfe" in sql
    sql, params = build_query(COUPONS, Options(rede="ESTRELA"), Cursor(None), in_database=False)
    assert "NOW() - INTERVAL %s SECOND" in sql and params == (86400, 100, 101, 102, 103, 104, 105, 106)


def test_python_rendering_of_a_coupon() -> None:
    render = python_json(COUPONS.fields, "MLAR")
    assert columns(COUPONS.fields)[:5] == ["nroloja", "dthr_emit_nfe", "Pdv", "chave_nfe", "NroCupom"]
    row = (3, "2026-01-02 03:04:05", 201, "35261112345678000190652010000000551000000055", 55,
           1.5, None, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, None, 1, None)
    out = json.loads(render(row))
    assert out["DataProc"] == out["dEmi"] == "2026-01-02T03:04:05" and out["modelo"] == 65
    assert out["vICMS"] == 1.5 and out["vICMS_ST"] is None and out["LV"] is None and out["Status"] == ""
    assert out["emServidor"] == 1 and out["rede"] == "MLAR" and out["Chave"].startswith("3526")
    assert json.loads(render((3, None, None, "short", None, *[None] * 8, None, None, "ok")))["modelo"] == 0


def test_sql_rendering_binds_the_network_and_escapes_percent() -> None:
    expr, params = sql_json([Field("rede", "rede"), Field("d", "iso", "x"), Field("one", "one")], "R%")
    assert expr.startswith("CONCAT('{\"rede\":', JSON_QUOTE(%s)") and "%%Y" in expr and params == ["R%"]
    assert "R%" not in expr
    with pytest.raises(ValueError):
        Field("x", "nope", "c")
    for name, column in (("a'b", "c"), ("ok", "c); DROP TABLE nfce; --"), ('a"', "c")):
        with pytest.raises(ValueError, match="letters, digits and _ only"):
            Field(name, "text", column)


@pytest.mark.parametrize(("info", "has"), [("5.5.5-10.11.19-MariaDB-0+deb12u1", True), ("10.1.48-MariaDB", False),
                                           ("5.7.8-log", True), ("5.5.62", False), ("8.0.36", True)])
def test_json_rendering_in_the_database_only_where_supported(info: str, has: bool) -> None:
    assert supports_json(info) is has


# ------------------------------------------------------------------ BI client
def _bi_config(bi: BiStandIn, **extra: object) -> object:
    return validate_config({"PARAM_REDE": "R", "PARAM_BI_SERVER": bi.server, "PARAM_TOKEN_BI": BI_TOKEN,
                            "PARAM_BI_CERTI_PATH": str(bi.ca.ca_file), "PARAM_BI_TIMEOUT": 1, **extra})


@pytest.fixture
def bi_small(tmp_path: Path) -> BiStandIn:
    return BiStandIn(tmp_path / "ca", BI_TOKEN).start()


def test_bi_client_answers(bi_small: BiStandIn) -> None:
    bi = bi_small
    try:
        with BiClient(_bi_config(bi)) as client:  # type: ignore[arg-type]
            client.post("/cupons/batch", b'[{"Chave":"1"}]')
            assert bi.rows() == [{"Chave": "1"}]
            for mode, status, kind in (("fail", 500, BiUnavailable), ("fail", 429, BiUnavailable),
                                       ("fail", 403, BiUnavailable), ("fail", 400, BiRejected),
                                       ("hang", 0, BiUnavailable), ("cut", 0, BiUnavailable)):
                bi.behave(mode, status)
                with pytest.raises(kind) as err:
                    client.post("/cupons/batch", b"[]")
                assert BI_TOKEN not in str(err.value)
                bi.behave("ok")
        wrong = _bi_config(bi, PARAM_TOKEN_BI="wrong-token")
        with BiClient(wrong) as client, pytest.raises(BiUnavailable, match="401"):  # type: ignore[arg-type]
            client.post("/x", b"[]")
        other_ca = _bi_config(bi, PARAM_BI_CERTI_PATH=None)
        with BiClient(other_ca) as client, pytest.raises(BiUnavailable, match=r"(?i)certificate"):  # type: ignore[arg-type]
            client.post("/x", b"[]")
    finally:
        bi.stop()


def test_bi_client_goes_through_the_https_proxy_unless_no_proxy(bi_small: BiStandIn,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from devtools.mariadb import free_port

    dead = free_port("127.0.0.1")  # nothing listens there: a request through it cannot arrive
    for name in ("https_proxy", "HTTPS_PROXY"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{dead}")
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    try:
        with BiClient(_bi_config(bi_small)) as client, pytest.raises(BiUnavailable, match="refused"):  # type: ignore[arg-type]
            client.post("/cupons/batch", b"[]")
        assert bi_small.batches() == []
        monkeypatch.setenv("no_proxy", "127.0.0.1")
        with BiClient(_bi_config(bi_small)) as client:  # type: ignore[arg-type]
            client.post("/cupons/batch", b'[{"Chave":"2"}]')
        assert bi_small.rows() == [{"Chave": "2"}]
    finally:
        bi_small.stop()


@pytest.mark.parametrize(("extra", "message"), [
    ({"PARAM_BI_SERVER": None}, "PARAM_BI_SERVER is not set"),
    ({"PARAM_BI_SERVER": "http://bi.example"}, "must use https"),
    ({"PARAM_TOKEN_BI": None}, "PARAM_TOKEN_BI is not set"),
    ({"PARAM_BI_CERTI_PATH": "/nonexistent/ca.pem"}, "PARAM_BI_CERTI_PATH"),
])
def test_bi_settings_missing_are_one_clear_line(extra: dict[str, object], message: str) -> None:
    data = {"PARAM_REDE": "R", "PARAM_BI_SERVER": "bi.example", "PARAM_TOKEN_BI": "t", **extra}
    with pytest.raises(BiNotConfigured, match=message):
        BiClient(validate_config(data))


# ------------------------------------------------------------------ actions
STORE_ACTIONS = ["collect_coupons", "collect_coupon_details", "collect_coupon_lv", "collect_sat_config",
                 "collect_checkout_status", "refresh_endpoint_printer"]


def test_the_daemon_runs_the_store_database_actions() -> None:
    from flageemonitor.proxy.daemon.runner import action_available

    assert [action_available(name)[0] for name in STORE_ACTIONS] == [True] * len(STORE_ACTIONS)


@pytest.mark.parametrize("action", ["cupons", "cupons_detalhes", "cupons_lv", "sat_config", "status_caixa",
                                    "pdv_atualiza_impressora"])
def test_without_store_databases_there_is_nothing_to_do(action: str, tmp_path: Path) -> None:
    import asyncio

    from flageemonitor.proxy.pipeline import RunRequest, execute

    report = asyncio.run(execute(RunRequest(action=action), validate_config({"PARAM_REDE": "R"}), state_dir=tmp_path))
    assert not report.failed and report.local is not None and "nothing to do" in report.local["detail"]
    assert not spool_path(tmp_path).exists()


def test_bad_options_fail_the_run_with_one_line(tmp_path: Path) -> None:
    import asyncio

    from flageemonitor.proxy.pipeline import RunRequest, execute

    cfg = validate_config({"PARAM_REDE": "R", "PARAM_IP_CONCENTRADORES": ["127.0.0.1"], "PARAM_BI_SERVER": "b",
                           "PARAM_TOKEN_BI": "t"})
    for args, message in (({"loja": "LOJA1; rm"}, "--loja"), ({"dtini": "yesterday"}, "is not a date")):
        report = asyncio.run(execute(RunRequest(action="cupons", args=args), cfg, state_dir=tmp_path))
        assert report.failed and report.local is not None and message in report.local["detail"]
    assert not spool_path(tmp_path).exists()
