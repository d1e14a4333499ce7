"""Collect from each store database to the BI: cursor → stream → spool → send.

Per concentrator (at most `PARALLEL_STORES` at once; one down never stops the others):

1. Take the queue's lock (`<collector>@<address>`): a second run of the same collector on the same
   store database reports "in progress" and touches nothing.
2. A sender thread starts draining the queue (backlog of earlier runs first, in order).
3. The reader streams the rows after the cursor (minus the look-back) with a server-side cursor
   (the database builds each row's JSON and hands over ten minutes of rows as one string, see
   `row_pages`), skips rows already spooled (fingerprints) and packs batches.
   Every `CHUNK_BATCHES` batches go to the spool in one transaction together with the advanced
   cursor. The reader never waits for the BI, so a slow or hanging BI cannot make the database
   connection time out, and memory stays flat whatever the table size.
4. The sender (`sender.py`) POSTs the spooled batches, a few in flight at once, and removes each
   only after its 2xx. A refused batch (4xx) is moved to `<queue>.rejected` and logged; an
   unavailable BI is retried with backoff and, after a few rounds in a row, left for the next run.
   After the reader finishes the sender has `PARAM_COLLECTOR_DRAIN_S` seconds.

`--dtini/--dtfim` read exactly that range (bound parameters), send every row in it again and leave
the cursor alone. `--loja N` reads one store and keeps its own cursor (`<address>/loja=N`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from flageemonitor.core.config_model import BotConfig
from flageemonitor.core.errors import ActionFailed, FlageeError
from flageemonitor.proxy.actions.base import ActionOutcome
from flageemonitor.proxy.collectors import traps
from flageemonitor.proxy.collectors.bi import BiClient
from flageemonitor.proxy.collectors.cursor import Cursor, CursorStore, fingerprint
from flageemonitor.proxy.collectors.dates import parse_range, shift
from flageemonitor.proxy.collectors.payload import Field, columns, python_json, sql_json, supports_json
from flageemonitor.proxy.collectors.sender import Delivery, Sender
from flageemonitor.proxy.collectors.stores import (
    Concentrator,
    concentrators,
    mysql_connect,
    mysql_error,
    mysql_stream,
    nothing_configured,
    parse_loja,
)
from flageemonitor.proxy.spool import Spool, SpoolError, consumer_lock, spool_path

log = logging.getLogger("flageemonitor.collectors")

CHUNK_BATCHES = 25
# reading (see `row_pages`): rows handed to the reader at a time; the seconds of positions the
# database groups into one result row; the longest group text (longer: the group is read row by row)
PAGE_ROWS = 2000
GROUP_S = 600
GROUP_CONCAT_MAX_LEN = 8 * 1024 * 1024
SEP = "\x1f"  # after each position and each row of a group: JSON text escapes every control character
PARALLEL_STORES = 4
# the daemon's background drain sends a queue's backlog between runs under this lock role, for at
# most BACKLOG_BUDGET_S per queue, and stops after its first failure; a run waits for it to let go
BACKLOG_ROLE = "backlog"
BACKLOG_BUDGET_S = 10.0
# stores whose network only reports these lojas (the original's special case for PARAM_REDE ESTRELA)
NETWORK_LOJAS: dict[str, tuple[int, ...]] = {"ESTRELA": tuple(range(100, 107))}



@dataclass(frozen=True)
class BiCollector:
    """What one collector reads and how a row becomes the BI's payload."""

    name: str  # canonical action; also the cursor's source and the queue's prefix
    label: str  # shown in traps and logs, e.g. "NFCE"
    database: str
    table: str
    fields: tuple[Field, ...]  # the payload of one row
    position: str | None  # the time column the cursor follows; None: a small table sent as a snapshot
    path: str  # BI endpoint
    batch_size: int = 200
    start_days: float = 1.0
    condition: str = ""  # a fixed SQL predicate (never user input)
    trap: str | None = None

    def queue(self, origin: str) -> str:
        return f"{self.name}@{origin}"


@dataclass(frozen=True)
class Options:
    rede: str
    loja: int | None = None
    window: tuple[datetime, datetime | None] | None = None
    lookback_s: float = 600
    start_days: float | None = None
    batch_size: int | None = None
    drain_s: float = 120
    db_timeout: float = 30
    max_bytes: int = 256 * 1024 * 1024
    dry_run: bool = False


@dataclass
class OriginReport:
    """One concentrator's part of a run."""

    concentrator: str
    read: int = 0
    spooled_now: int = 0
    duplicates: int = 0
    sent: int = 0
    rejected: int = 0
    pending: int = 0
    cursor: str | None = None
    error: str = ""
    plan: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"concentrator": self.concentrator, "read": self.read, "new": self.spooled_now,
                "skipped_already_sent": self.duplicates, "sent": self.sent, "rejected": self.rejected,
                "spooled": self.pending, "cursor": self.cursor, "error": self.error or None,
                **({"plan": self.plan} if self.plan else {})}

    def line(self) -> str:
        if self.plan:
            return f"{self.concentrator}: {self.plan}"
        text = (f"{self.concentrator}: read {self.read}, new {self.spooled_now}, sent {self.sent}, "
                f"spooled {self.pending}")
        if self.rejected:
            text += f", rejected {self.rejected}"
        return text + (f"; ERROR {self.error}" if self.error else "")


# ---------------------------------------------------------------- options
def _per_collector(value: dict[str, int] | int | None, names: Sequence[str]) -> int | None:
    if isinstance(value, dict):
        for name in names:
            if name in value:
                return int(value[name])
        return None
    return int(value) if value is not None else None


def options_for(collector_names: Sequence[str], config: BotConfig, args: dict[str, Any], dry_run: bool) -> Options:
    """Options from the config and the run's arguments (`loja`, `dtini`, `dtfim`)."""
    size = _per_collector(config.PARAM_BI_BATCH_SIZE, collector_names)
    if size is not None and size < 1:
        raise ActionFailed(f"PARAM_BI_BATCH_SIZE for {collector_names[0]} must be at least 1")
    dtini, dtfim = args.get("dtini"), args.get("dtfim")
    return Options(
        rede=config.PARAM_REDE, loja=parse_loja(args.get("loja")),
        window=parse_range(str(dtini) if dtini else None, str(dtfim) if dtfim else None),
        lookback_s=config.PARAM_COLLECTOR_LOOKBACK_S, start_days=config.PARAM_COLLECTOR_START_DAYS,
        batch_size=size, drain_s=config.PARAM_COLLECTOR_DRAIN_S, db_timeout=config.DB_TIMEOUT,
        max_bytes=config.PARAM_SPOOL_MAX_MB * 1024 * 1024, dry_run=dry_run,
    )


def origin_of(conc: Concentrator, opts: Options) -> str:
    return conc.address if opts.loja is None else f"{conc.address}/loja={opts.loja}"


# ---------------------------------------------------------------- the query
def _where(c: BiCollector, opts: Options, cursor: Cursor) -> tuple[list[str], list[Any]]:
    """The read's predicates and their bound values: the range, the cursor minus the look-back, or
    the first-run window; the store filter."""
    where: list[str] = [c.condition] if c.condition else []
    params: list[Any] = []
    if c.position is not None:
        if opts.window is not None:
            where.append(f"{c.position} >= %s")
            params.append(opts.window[0])
            if opts.window[1] is not None:
                where.append(f"{c.position} <= %s")
                params.append(opts.window[1])
        elif cursor.position is not None:
            where.append(f"{c.position} >= %s")
            params.append(shift(cursor.position, -opts.lookback_s))
        else:
            days = c.start_days if opts.start_days is None else opts.start_days
            if days > 0:
                where.append(f"{c.position} >= NOW() - INTERVAL %s SECOND")
                params.append(int(days * 86400))
            else:
                where.append(f"{c.position} IS NOT NULL")
    lojas = NETWORK_LOJAS.get(opts.rede.upper(), ())
    if opts.loja is not None:
        where.append("nroloja = %s")
        params.append(opts.loja)
    elif lojas:
        where.append(f"nroloja IN ({', '.join(['%s'] * len(lojas))})")
        params.extend(lojas)
    return where, params


def _where_sql(where: Sequence[str]) -> str:
    return " WHERE " + " AND ".join(f"({w})" for w in where) if where else ""


def build_query(c: BiCollector, opts: Options, cursor: Cursor, *, in_database: bool) -> tuple[str, tuple[Any, ...]]:
    """SELECT position, then the row's JSON (`in_database`) or its raw columns, every row in one
    statement, with every value bound."""
    where, params = _where(c, opts, cursor)
    if in_database:
        expr, select_params = sql_json(c.fields, opts.rede)
        select = [expr]
    else:
        select, select_params = columns(c.fields), []
    sql = f"SELECT {c.position or 'NULL'}, {', '.join(select)} FROM {c.table}{_where_sql(where)}"  # noqa: S608 - constants; values bound
    if c.position is not None:
        sql += f" ORDER BY {c.position}"
    return sql, tuple(select_params + params)


def grouped_query(c: BiCollector, opts: Options, cursor: Cursor) -> tuple[str, tuple[Any, ...]]:
    """The rows as groups, one result row per `GROUP_S` seconds of positions, in position order:
    (rows, first position, last position, `position SEP json SEP position SEP json SEP ...`). One
    statement streamed like a plain read; the driver fetches one value per group instead of one
    per row (its per-row decoding was most of the proxy's work)."""
    assert c.position is not None
    where, params = _where(c, opts, cursor)
    expr, select_params = sql_json(c.fields, opts.rede)
    pos = c.position
    group = f"TO_SECONDS({pos}) DIV {GROUP_S}"
    sql = (f"SELECT COUNT(*), CAST(MIN({pos}) AS CHAR), CAST(MAX({pos}) AS CHAR), "  # noqa: S608 - constants; values bound
           f"GROUP_CONCAT(CAST({pos} AS CHAR), '{SEP}', {expr}, '{SEP}' SEPARATOR '') "
           f"FROM {c.table}{_where_sql(where)} GROUP BY {group} ORDER BY {group}")
    return sql, (*select_params, *params)


def fast_conversions() -> dict[Any, Any]:
    """PyMySQL converters giving the payload's types directly: DECIMAL as float, dates and times as
    their text (a position compares as text; the payload wants ISO text anyway)."""
    from pymysql.constants import FIELD_TYPE
    from pymysql.converters import conversions

    conv = dict(conversions)
    for t in (FIELD_TYPE.DECIMAL, FIELD_TYPE.NEWDECIMAL):
        conv[t] = float
    for t in (FIELD_TYPE.DATETIME, FIELD_TYPE.TIMESTAMP, FIELD_TYPE.DATE, FIELD_TYPE.TIME):
        conv[t] = str
    return conv


def encode(batch: list[str]) -> bytes:
    """A batch body from rows' JSON texts."""
    return ("[" + ",".join(batch) + "]").encode("utf-8")


Page = tuple[list[str], list[str]]  # positions ("" for a snapshot), row JSON texts; in position order


def _chunks(rows: Iterator[tuple[str, str]], size: int = PAGE_ROWS) -> Iterator[Page]:
    positions: list[str] = []
    texts: list[str] = []
    for pos, text in rows:
        positions.append(pos)
        texts.append(text)
        if len(texts) >= size:
            yield positions, texts
            positions, texts = [], []
    if texts:
        yield positions, texts


def row_pages(c: BiCollector, connect: Callable[[], Any], opts: Options, cursor: Cursor,
              in_database: bool | None = None) -> Iterator[Page]:
    """The rows to consider, in position order, about `PAGE_ROWS` at a time, from connections
    `connect()` opens (and this closes). `in_database` defaults to what the server supports.

    With JSON in the database and a position column, the database groups the rows (see
    `grouped_query`): rows sharing a position are always in one group and a page holds whole
    groups. A group whose text was cut at the session's `group_concat_max_len` (fewer separators
    than its rows need) is read again row by row on a second connection."""
    with contextlib.ExitStack() as stack:
        conn = connect()
        stack.callback(conn.close)
        if in_database is None:
            in_database = supports_json(conn.get_server_info())
        if not in_database or c.position is None:
            yield from _chunks(_single_read(c, conn, opts, cursor, in_database))
            return
        with conn.cursor() as cur:
            cur.execute(f"SET SESSION group_concat_max_len = {GROUP_CONCAT_MAX_LEN}")
        spare: list[Any] = []  # the second connection, once a group needs it
        positions: list[str] = []
        texts: list[str] = []
        for count, first, last, text in mysql_stream(conn, *grouped_query(c, opts, cursor), chunk=1):
            parts = text.split(SEP) if text is not None else []
            if len(parts) != 2 * count + 1:  # cut by group_concat_max_len
                if texts:
                    yield positions, texts
                    positions, texts = [], []
                if not spare:
                    spare.append(connect())
                    stack.callback(spare[0].close)
                yield from _chunks(_range_rows(c, spare[0], opts, cursor, first, last))
                continue
            group_positions, group_texts = parts[0:-1:2], parts[1:-1:2]
            if group_positions != sorted(group_positions):  # GROUP_CONCAT keeps the order rows were read in
                pairs = sorted(zip(group_positions, group_texts, strict=True), key=lambda pair: pair[0])
                group_positions, group_texts = [p for p, _ in pairs], [t for _, t in pairs]
            positions += group_positions
            texts += group_texts
            if len(texts) >= PAGE_ROWS:
                yield positions, texts
                positions, texts = [], []
        if texts:
            yield positions, texts


def _single_read(c: BiCollector, conn: Any, opts: Options, cursor: Cursor,
                 in_database: bool) -> Iterator[tuple[str, str]]:
    """Every row in one streamed statement (snapshots, and servers without JSON_QUOTE)."""
    sql, params = build_query(c, opts, cursor, in_database=in_database)
    if in_database:
        for pos, text in mysql_stream(conn, sql, params):
            yield ("" if pos is None else str(pos)), text
        return
    render = python_json(c.fields, opts.rede)
    for row in mysql_stream(conn, sql, params):
        yield ("" if row[0] is None else str(row[0])), render(row[1:])


def _range_rows(c: BiCollector, conn: Any, opts: Options, cursor: Cursor, first: str,
               last: str) -> Iterator[tuple[str, str]]:
    """The rows from position `first` to `last`, streamed one by one in position order."""
    assert c.position is not None
    where, params = _where(c, opts, cursor)
    where += [f"{c.position} >= %s", f"{c.position} <= %s"]
    expr, select_params = sql_json(c.fields, opts.rede)
    sql = (f"SELECT CAST({c.position} AS CHAR), {expr} FROM {c.table}{_where_sql(where)} "  # noqa: S608
           f"ORDER BY {c.position}")
    for pos, text in mysql_stream(conn, sql, (*select_params, *params, first, last)):
        yield str(pos), text


# ---------------------------------------------------------------- reader
class _SamePosition:
    """Exact duplicate rows in one read (same position, same values) count once. Only rows
    sharing a position are fingerprinted, so ordinary rows cost nothing."""

    def __init__(self) -> None:
        self.pos: str | None = None
        self.rows: list[str] = []
        self.fps: set[bytes] | None = None

    def repeated(self, pos: str | None, row: str) -> bool:
        if pos != self.pos:
            self.pos, self.rows, self.fps = pos, [row], None
            return False
        if self.fps is None:
            self.fps = {fingerprint(r) for r in self.rows}
            self.rows = []
        fp = fingerprint(row)
        if fp in self.fps:
            return True
        self.fps.add(fp)
        return False

    def after(self, positions: list[str], texts: list[str]) -> None:
        """These rows, none of them a repeat, were taken without asking (the page's fast path)."""
        last = positions[-1]
        first = bisect_left(positions, last)
        self.pos, self.rows, self.fps = last, texts[first:], None


class _Reader:
    def __init__(self, c: BiCollector, config: BotConfig, spool: Spool, opts: Options, origin: str,
                 report: OriginReport, wake: threading.Event) -> None:
        self.c, self.config, self.spool, self.opts = c, config, spool, opts
        self.origin, self.queue, self.report, self.wake = origin, c.queue(origin), report, wake
        self.cursors = CursorStore(spool.connection)
        self.size = opts.batch_size or c.batch_size
        self.bodies: list[tuple[bytes, int]] = []
        # the rows taken and not yet in `bodies` (fewer than a batch), then those in `bodies`
        self.open_pos: list[str] = []
        self.open_txt: list[str] = []
        self.packed_pos: list[str] = []
        self.packed_txt: list[str] = []
        self.snapshot: list[bytes] = []
        self.snapshot_set: set[bytes] = set()

    def run(self, address: str) -> None:
        import pymysql

        ranged = self.opts.window is not None
        cursor = Cursor(None) if ranged else self.cursors.load(self.c.name, self.origin, self.opts.lookback_s)
        self.report.cursor = cursor.position
        def connect() -> Any:
            return mysql_connect(address, self.config, self.c.database, timeout=self.opts.db_timeout,
                                 conv=fast_conversions())

        seen, last = cursor.seen, cursor.position
        snapshot = self.c.position is None
        same = _SamePosition()
        try:
            for positions, texts in row_pages(self.c, connect, self.opts, cursor):
                self.report.read += len(texts)
                if snapshot:
                    self._take_snapshot(texts, ranged, seen)
                elif ((not seen or last is None or positions[0] > last) and positions[0] != same.pos
                      and len(set(texts)) == len(texts)):
                    # nothing here was spooled before and no two rows are the same: take the page
                    same.after(positions, texts)
                    self._take(positions, texts)
                else:
                    keep_pos: list[str] = []
                    keep_txt: list[str] = []
                    for pos, text in zip(positions, texts, strict=True):
                        if same.repeated(pos, text) or (seen and last is not None and pos <= last
                                                        and fingerprint(text) in seen):
                            self.report.duplicates += 1
                            continue
                        keep_pos.append(pos)
                        keep_txt.append(text)
                    self._take(keep_pos, keep_txt)
        except pymysql.MySQLError as exc:
            raise mysql_error(address, self.config, self.c.database, exc) from None
        if self.open_txt:
            self.bodies.append((encode(self.open_txt), len(self.open_txt)))
            self.packed_pos += self.open_pos
            self.packed_txt += self.open_txt
        self.commit(final=True)

    def _take_snapshot(self, texts: list[str], ranged: bool, seen: set[bytes]) -> None:
        keep: list[str] = []
        for text in texts:
            fp = fingerprint(text)
            if fp in self.snapshot_set:
                self.report.duplicates += 1
                continue
            self.snapshot.append(fp)
            self.snapshot_set.add(fp)
            if fp in seen and not ranged:
                self.report.duplicates += 1
                continue
            keep.append(text)
        self._take([""] * len(keep), keep)

    def _take(self, positions: list[str], texts: list[str]) -> None:
        """Pack these rows into batches; spool every `CHUNK_BATCHES` batches (one transaction)."""
        self.open_pos += positions
        self.open_txt += texts
        size = self.size
        while len(self.open_txt) >= size:
            batch = self.open_txt[:size]
            self.bodies.append((encode(batch), size))
            self.packed_txt += batch
            self.packed_pos += self.open_pos[:size]
            del self.open_txt[:size], self.open_pos[:size]
            if len(self.bodies) >= CHUNK_BATCHES and self.c.position is not None:
                self.commit()

    def commit(self, final: bool = False) -> None:
        """Spool the packed batches and advance the cursor, in one transaction."""
        ranged = self.opts.window is not None
        snapshot = self.c.position is None
        if not self.bodies and (ranged or not (final and snapshot)):
            return
        with self.spool.transaction() as db:
            self.spool.put(self.queue, self.bodies, db=db)
            if not ranged and snapshot:
                self.cursors.save_snapshot(db, self.c.name, self.origin, self.snapshot)
            elif not ranged and self.packed_pos:
                position = self.packed_pos[-1]
                start = bisect_left(self.packed_pos, shift(position, -self.opts.lookback_s))
                fps = [(fingerprint(text), pos)
                       for pos, text in zip(self.packed_pos[start:], self.packed_txt[start:], strict=True)]
                self.cursors.save(db, self.c.name, self.origin, position, fps, self.opts.lookback_s)
                self.report.cursor = position
        self.report.spooled_now += sum(n for _, n in self.bodies)
        self.bodies, self.packed_pos, self.packed_txt = [], [], []
        self.wake.set()


# ---------------------------------------------------------------- one concentrator, the whole run
def _collect_one(c: BiCollector, config: BotConfig, state_dir: Path, opts: Options,
                 conc: Concentrator) -> OriginReport:
    origin = origin_of(conc, opts)
    queue = c.queue(origin)
    report = OriginReport(conc.address)
    path = spool_path(state_dir)
    backlog_wait = BACKLOG_BUDGET_S + float(config.PARAM_BI_TIMEOUT) + 10
    with consumer_lock(state_dir, queue, wait_for=BACKLOG_ROLE, wait_s=backlog_wait) as held:
        if not held:
            report.error = f"another run of {c.name} is collecting from {origin}; nothing done"
            return report
        reader_done, wake = threading.Event(), threading.Event()
        sender = Sender(config, Delivery(path, queue, c.path, opts.max_bytes, opts.drain_s), reader_done, wake)
        thread = threading.Thread(target=sender.run, name=f"send-{queue}", daemon=True)
        thread.start()
        try:
            # NORMAL sync is enough here: the cursor commits with the rows, so a power cut that rolls
            # back a transaction rolls back its cursor too, and the rows are read again
            with Spool(path, max_bytes=opts.max_bytes, durable=False) as spool:
                try:
                    _Reader(c, config, spool, opts, origin, report, wake).run(conc.address)
                except FlageeError as exc:
                    report.error = str(exc)
                except Exception as exc:  # one concentrator's failure is its report, not the run's end
                    log.exception("%s: reading failed", queue)
                    report.error = f"{type(exc).__name__}: {exc}"
                finally:
                    reader_done.set()
                    wake.set()
                    thread.join()
                stats = spool.stats([queue])
                report.pending = stats[0].records if stats else 0
        except SpoolError as exc:  # the state volume is full or unwritable: nothing was read
            report.error = str(exc)
            reader_done.set()
            thread.join()
        finally:
            reader_done.set()
        report.sent, report.rejected = sender.sent, sender.rejected
        if sender.error:
            report.error = "; ".join(filter(None, [report.error, sender.error]))
    log.info("%s %s", c.name, report.line())
    return report


@dataclass(frozen=True)
class BacklogSent:
    """What one background pass did for one queue."""

    queue: str
    sent: int
    error: str


def send_backlog(c: BiCollector, config: BotConfig, state_dir: Path, queue: str,
                 budget_s: float = BACKLOG_BUDGET_S) -> BacklogSent | None:
    """Send `queue`'s spooled batches, in order, for at most `budget_s` (plus one request), stopping
    at the first failure. None when a run holds the queue (the run sends it)."""
    opts = Options(rede=config.PARAM_REDE, drain_s=budget_s, max_bytes=config.PARAM_SPOOL_MAX_MB * 1024 * 1024)
    with consumer_lock(state_dir, queue, role=BACKLOG_ROLE) as held:
        if not held:
            return None
        done = threading.Event()
        done.set()
        sender = Sender(config, Delivery(spool_path(state_dir), queue, c.path, opts.max_bytes, opts.drain_s),
                        done, threading.Event(), max_failures=1)
        sender.run()
    return BacklogSent(queue, sender.sent, sender.error)


def _plan_one(c: BiCollector, state_dir: Path, opts: Options, conc: Concentrator) -> OriginReport:
    origin = origin_of(conc, opts)
    report = OriginReport(conc.address)
    path = spool_path(state_dir)
    cursor = Cursor(None)
    if path.exists():
        with Spool(path, max_bytes=opts.max_bytes) as spool:
            cursor = CursorStore(spool.connection).load(c.name, origin, opts.lookback_s)
            stats = spool.stats([c.queue(origin)])
            report.pending = stats[0].records if stats else 0
    report.cursor = cursor.position
    if c.position is None:
        what = "the whole table (only rows not sent before)"
    elif opts.window is not None:
        what = f"{c.position} from {opts.window[0]} to {opts.window[1] or 'now'} (all rows, cursor unchanged)"
    elif cursor.position is not None:
        what = f"{c.position} from {shift(cursor.position, -opts.lookback_s)} (cursor {cursor.position})"
    else:
        days = c.start_days if opts.start_days is None else opts.start_days
        what = f"{c.position} of the last {days:g} day(s) (first run)" if days > 0 else "the whole table (first run)"
    report.plan = f"would read {c.table} {what}; {report.pending} rows spooled"
    return report


def collect(c: BiCollector, config: BotConfig, state_dir: Path, opts: Options) -> ActionOutcome:
    stores = concentrators(config)
    if not stores:
        return nothing_configured()
    if opts.dry_run:
        reports = [_plan_one(c, state_dir, opts, s) for s in stores]
    else:
        BiClient(config).close()  # a missing BI setting fails the run before any database is read
        with Spool(spool_path(state_dir), max_bytes=opts.max_bytes, durable=False) as spool:
            CursorStore(spool.connection)  # the file and its tables exist before the threads open it
        with ThreadPoolExecutor(max_workers=min(PARALLEL_STORES, len(stores))) as pool:
            reports = list(pool.map(lambda s: _collect_one(c, config, state_dir, opts, s), stores))
        if c.trap:
            traps.send(config, [traps.status_value(config, c.trap, not r.error, f"{c.label} - {r.line()}")
                                for r in reports])
    failed = [r for r in reports if r.error]
    detail = (f"{len(stores)} store database(s): read {sum(r.read for r in reports)}, "
              f"new {sum(r.spooled_now for r in reports)}, sent {sum(r.sent for r in reports)}, "
              f"spooled {sum(r.pending for r in reports)}")
    if opts.dry_run:
        detail = f"{len(stores)} store database(s); nothing read or sent (dry run)"
    if failed:
        detail += f"; {len(failed)} failed: " + "; ".join(f"{r.concentrator}: {r.error}" for r in failed)
    return ActionOutcome(ok=not failed, detail=detail, data={
        "collector": c.name, "dry_run": opts.dry_run, "range": bool(opts.window),
        "concentrators": [r.to_dict() for r in reports], "lines": [r.line() for r in reports]})
