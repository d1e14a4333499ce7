#!/usr/bin/env bash
# start-zabbix-6.0.sh - a throwaway REAL Zabbix 6.0 (Debian bookworm packages) without systemd:
#   apt packages -> private PostgreSQL cluster -> Zabbix schema -> frontend API via `php -S`
#   -> zabbix_server in foreground (trapper on 127.0.0.1). Used by tests/fixtures/zabbix.py.
#
# Usage:  start-zabbix-6.0.sh [up|down]
#   up    start everything, write $ZBX_BASE/run/env (KEY=VALUE lines); leaves it running
#   down  stop what "up" started, by the PIDs it recorded
# Cache: the freshly loaded database is kept (stopped) under $ZBX_CACHE (default
#   /var/cache/flageemonitor-test/zabbix60) and copied back on the next start, which skips
#   the ~40 s schema load. ZBX_DB_CACHE=0 disables it.
# Env knobs: ZBX_BASE (instance dir, default $TMPDIR/zabbix60-test), ZBX_NO_SERVER=1 (API only),
#   ZBX_KEEP_ON_FAIL=1 (do not tear down when "up" fails).
set -euo pipefail

BASE=${ZBX_BASE:-${TMPDIR:-/tmp}/zabbix60-test}
CACHE=${ZBX_CACHE:-/var/cache/flageemonitor-test/zabbix60}
RUN=$BASE/run
LOG=$BASE/start-zabbix.log
CMD=${1:-up}
mkdir -p "$BASE"
exec > >(tee -a "$LOG") 2>&1

# shellcheck source=common.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
TIMINGS=$BASE/run/timings  # read by `phase` (common.sh)

latest_initdb() {  # newest /usr/lib/postgresql/<v>/bin/initdb, else initdb from PATH, else ""
  local f best=""
  for f in /usr/lib/postgresql/*/bin/initdb; do [ -x "$f" ] && best=$(printf '%s\n%s\n' "$best" "$f" | sort -V | tail -1); done
  [ -n "$best" ] || best=$(command -v initdb || true)
  echo "$best"
}
on_exit() {  # tear down a half-started instance unless ZBX_KEEP_ON_FAIL=1
  local rc=$?
  if [ "$rc" != 0 ] && [ "${UP_DONE:-0}" != 1 ]; then log "up failed (rc=$rc) - tearing down"; do_down; fi
}

# --------------------------------------------------------------------------- down
do_down() {
  [ -d "$RUN" ] || { log "nothing to stop"; return 0; }
  if [ -f "$RUN/zabbix_server.pid" ]; then
    stop_pid zabbix_server "$(cat "$RUN/zabbix_server.pid")" TERM 30; rm -f "$RUN/zabbix_server.pid"
  fi
  if [ -f "$RUN/php.pid" ]; then
    # With PHP_CLI_SERVER_WORKERS the workers are children of the `php -S` parent and keep
    # serving if only the parent is killed, so stop each recorded worker PID, then the parent.
    local w; while read -r w; do stop_pid php-S-worker "$w" TERM 5; done < <(cat "$RUN/php.workers" 2>/dev/null || true)
    stop_pid php-S "$(cat "$RUN/php.pid")" TERM 10
    rm -f "$RUN/php.pid" "$RUN/php.workers"
  fi
  if [ -f "$RUN/pg/data/postmaster.pid" ]; then
    stop_pid postgres "$(head -1 "$RUN/pg/data/postmaster.pid")" INT 30   # SIGINT = fast shutdown
  fi
}

# --------------------------------------------------------------------------- up
do_up() {
  [ "$(id -u)" = 0 ] || die "run as root (apt-get, and postgres must run as another user)"
  do_down   # a previous instance under $RUN, if any
  rm -rf "$RUN"; mkdir -p "$RUN"; chmod 755 "$BASE" "$RUN"; : > "$RUN/timings"
  if [ "${ZBX_KEEP_ON_FAIL:-0}" != 1 ]; then
    trap on_exit EXIT
  fi
  local T0; T0=$(ts)

  # ---- 1. packages ---------------------------------------------------------
  local t; t=$(ts)
  # php8.2-cgi satisfies "php8.2 -> libapache2-mod-php8.2 | php8.2-fpm | php8.2-cgi" without
  # pulling apache2; php-cli gives `php -S`; php-pgsql is the frontend's DB driver.
  local PKGS="zabbix-server-pgsql zabbix-frontend-php php8.2-cgi php-cli php-pgsql"
  local INITDB; INITDB=$(latest_initdb)
  [ -n "$INITDB" ] || PKGS="$PKGS postgresql-15"
  command -v psql >/dev/null || PKGS="$PKGS postgresql-client-15"
  local missing=()
  for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "apt-get install: ${missing[*]}"
    local made_policy=0
    # keep maintainer scripts from trying to start services (no systemd / init here)
    if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
      chmod +x /usr/sbin/policy-rc.d; made_policy=1; fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || apt-get update -qq
    apt-get install -y -qq --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null
    if [ $made_policy = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
  else
    log "packages already installed"
  fi
  [ -n "$INITDB" ] || INITDB=$(latest_initdb)
  local PGBIN; PGBIN=$(dirname "$(readlink -f "$INITDB")")
  phase apt_install "$t"

  # ---- 2. PostgreSQL + schema (or a copy of the cached, freshly loaded data dir) ---------
  t=$(ts)
  local PGOS=postgres
  getent passwd postgres >/dev/null || { PGOS=pgtest; getent passwd pgtest >/dev/null || useradd -m pgtest; }
  local PGPORT; PGPORT=$(free_port)
  local PGD=$RUN/pg/data
  mkdir -p "$RUN/pg"; chown "$PGOS" "$RUN/pg"; chmod 700 "$RUN/pg"
  local PGOPTS="-c listen_addresses=127.0.0.1 -p $PGPORT -c unix_socket_directories=$RUN/pg -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c wal_level=minimal -c max_wal_senders=0"
  pg_start() { runuser -u "$PGOS" -- "$PGBIN/pg_ctl" -D "$PGD" -l "$RUN/pg/postgres.log" -w -t 60 -o "$PGOPTS" \
                 start >/dev/null || { show_logs "$RUN/pg/postgres.log"; die "postgres did not start"; }; }
  local PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT")
  local DBKEY; DBKEY="$(dpkg-query -W -f='${Version}' zabbix-server-pgsql) $PGBIN $PGOS"
  if [ "${ZBX_DB_CACHE:-1}" = 1 ] && [ -f "$CACHE/pgdata.key" ] && [ "$(cat "$CACHE/pgdata.key")" = "$DBKEY" ] \
     && [ -f "$CACHE/pgdata/PG_VERSION" ]; then
    cp -a "$CACHE/pgdata" "$PGD"
    pg_start
    log "postgres pid $(head -1 "$PGD/postmaster.pid") on 127.0.0.1:$PGPORT (data dir from the cache)"
  else
    runuser -u "$PGOS" -- "$PGBIN/initdb" -D "$PGD" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
      --no-sync >"$RUN/initdb.log" 2>&1 || { show_logs "$RUN/initdb.log"; die "initdb failed"; }
    pg_start
    log "postgres pid $(head -1 "$PGD/postmaster.pid") on 127.0.0.1:$PGPORT ($PGBIN)"
    "${PSQL[@]}" -U postgres -d postgres -c "CREATE ROLE zabbix LOGIN PASSWORD 'zabbix'" \
          -c "CREATE DATABASE zabbix OWNER zabbix ENCODING 'UTF8' TEMPLATE template0"
    local SQL=/usr/share/zabbix-server-pgsql
    # same order as README.Debian: schema, images, data (data.sql is one transaction itself).
    # ~90% of the time is data.sql's 173k single-row INSERTs (server-side CPU).
    zcat "$SQL/schema.sql.gz" "$SQL/images.sql.gz" "$SQL/data.sql.gz" \
      | "${PSQL[@]}" -U zabbix -d zabbix >"$RUN/schema.log" 2>&1 || { show_logs "$RUN/schema.log"; die "schema load failed"; }
    # the stock "Zabbix server" host polls an agent on 127.0.0.1:10050 that is not there and
    # raises problems after a few minutes: disable it (status=1) to keep tests quiet.
    "${PSQL[@]}" -U zabbix -d zabbix -c "UPDATE hosts SET status=1 WHERE host='Zabbix server'"
    if [ "${ZBX_DB_CACHE:-1}" = 1 ]; then   # clean stop, copy, restart (~2 s, once)
      runuser -u "$PGOS" -- "$PGBIN/pg_ctl" -D "$PGD" -m fast -w -t 60 stop >/dev/null
      mkdir -p "$CACHE"; rm -rf "$CACHE/pgdata.tmp" "$CACHE/pgdata.key"
      cp -a "$PGD" "$CACHE/pgdata.tmp" && rm -rf "$CACHE/pgdata" && mv "$CACHE/pgdata.tmp" "$CACHE/pgdata"
      echo "$DBKEY" > "$CACHE/pgdata.key"
      pg_start
      log "DB cache saved to $CACHE/pgdata"
    fi
  fi
  log "schema: dbversion $("${PSQL[@]}" -At -U zabbix -d zabbix -c 'select mandatory from dbversion')"
  phase db_init_schema "$t"

  # ---- 3/4. frontend (PHP built-in server) ---------------------------------
  t=$(ts)
  local WEBPORT; WEBPORT=$(free_port)
  local TRAPPORT; TRAPPORT=$(free_port)
  while [ "$TRAPPORT" = "$WEBPORT" ]; do TRAPPORT=$(free_port); done
  # Debian patches the frontend to read the ABSOLUTE path /etc/zabbix/zabbix.conf.php
  # (CConfigFile::CONFIG_FILE_PATH). To keep everything under $RUN (and allow parallel
  # instances) we run a private copy of /usr/share/zabbix with that constant re-pointed.
  local WWW=$RUN/www
  cp -a /usr/share/zabbix "$WWW"
  local l; while IFS= read -r l; do   # re-point relative symlinks (fonts) broken by the copy
    ln -sfn "$(readlink -f "/usr/share/zabbix/${l#"$WWW"/}")" "$l"
  done < <(find "$WWW" -xtype l)
  sed -i "s#const CONFIG_FILE_PATH = '[^']*';#const CONFIG_FILE_PATH = '$WWW/conf/zabbix.conf.php';#" \
    "$WWW/include/classes/core/CConfigFile.php"
  grep -q "$WWW/conf/zabbix.conf.php" "$WWW/include/classes/core/CConfigFile.php" || die "patch CConfigFile failed"
  cat > "$WWW/conf/zabbix.conf.php" <<EOF
<?php
// written by start-zabbix.sh
\$DB['TYPE']            = 'POSTGRESQL';
\$DB['SERVER']          = '127.0.0.1';
\$DB['PORT']            = '$PGPORT';
\$DB['DATABASE']        = 'zabbix';
\$DB['USER']            = 'zabbix';
\$DB['PASSWORD']        = 'zabbix';
\$DB['SCHEMA']          = '';
\$DB['ENCRYPTION']      = false;
\$DB['KEY_FILE']        = '';
\$DB['CERT_FILE']       = '';
\$DB['CA_FILE']         = '';
\$DB['VERIFY_HOST']     = false;
\$DB['CIPHER_LIST']     = '';
\$DB['VAULT_URL']       = '';
\$DB['VAULT_DB_PATH']   = '';
\$DB['VAULT_TOKEN']     = '';
\$DB['DOUBLE_IEEE754']  = true;
\$ZBX_SERVER            = '127.0.0.1';
\$ZBX_SERVER_PORT       = '$TRAPPORT';
\$ZBX_SERVER_NAME       = 'zbx-test';
\$IMAGE_FORMAT_DEFAULT  = IMAGE_FORMAT_PNG;
EOF
  # own session so nothing of ours is tied to the caller's terminal; workers = children
  PHP_CLI_SERVER_WORKERS=4 setsid php -S "127.0.0.1:$WEBPORT" -t "$WWW" \
    -d memory_limit=512M -d post_max_size=16M -d upload_max_filesize=2M -d max_execution_time=300 \
    -d max_input_time=300 -d date.timezone=UTC -d display_errors=0 -d log_errors=1 \
    >"$RUN/php.log" 2>&1 < /dev/null &
  echo $! > "$RUN/php.pid"
  wait_port "$WEBPORT" 20 || { show_logs "$RUN/php.log"; die "php -S did not listen"; }
  for _ in $(seq 50); do   # record the worker PIDs (children of the php -S parent)
    pgrep -P "$(cat "$RUN/php.pid")" > "$RUN/php.workers" || true
    [ "$(wc -l < "$RUN/php.workers")" -ge 4 ] && break; sleep 0.1
  done
  local API=http://127.0.0.1:$WEBPORT/api_jsonrpc.php ver
  ver=$(api_version "$API" "$RUN/php.log")
  log "frontend API $ver at $API (php pid $(cat "$RUN/php.pid"))"
  phase frontend_up "$t"

  # ---- 5. zabbix_server (foreground, trapper on 127.0.0.1) ------------------
  t=$(ts)
  if [ "${ZBX_NO_SERVER:-0}" != 1 ]; then
    mkdir -p "$RUN/alertscripts" "$RUN/externalscripts"
    server_conf "$RUN" "$PGPORT" "$TRAPPORT" \
      FpingLocation=/usr/bin/fping \
      > "$RUN/zabbix_server.conf"
    setsid /usr/sbin/zabbix_server -f -c "$RUN/zabbix_server.conf" >"$RUN/zabbix_server.out" 2>&1 < /dev/null &
    echo $! > "$RUN/zabbix_server.pid"
    local ok=0
    for _ in $(seq 600); do   # <= ~60s: main process binds the port early; wait for a trapper
      if grep -q 'started \[trapper #1\]' "$RUN/zabbix_server.log" 2>/dev/null && wait_port "$TRAPPORT" 1; then
        ok=1; break; fi
      alive "$(cat "$RUN/zabbix_server.pid")" || break
      sleep 0.1
    done
    [ $ok = 1 ] || { show_logs "$RUN/zabbix_server.out" "$RUN/zabbix_server.log"; die "zabbix_server did not start"; }
    log "zabbix_server pid $(cat "$RUN/zabbix_server.pid"), trapper 127.0.0.1:$TRAPPORT"
    phase server_up "$t"
  fi

  cat > "$RUN/env" <<EOF
ZBX_API_URL=$API
ZBX_API_USER=Admin
ZBX_API_PASSWORD=zabbix
ZBX_TRAPPER_HOST=127.0.0.1
ZBX_TRAPPER_PORT=$TRAPPORT
ZBX_SERVER_RUNNING=$([ "${ZBX_NO_SERVER:-0}" != 1 ] && echo 1 || echo 0)
ZBX_PG_PORT=$PGPORT
ZBX_VERSION=$ver
EOF
  UP_DONE=1
  phase up_total "$T0"
  log "up. environment in $RUN/env:"; sed 's/^/    /' "$RUN/env"
}

case "$CMD" in
  up)   do_up ;;
  down) do_down ;;
  *) echo "usage: $0 [up|down]" >&2; exit 2 ;;
esac
