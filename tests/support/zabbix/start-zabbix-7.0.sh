#!/usr/bin/env bash
# shellcheck disable=SC2016  # dpkg-query formats and chroot scripts are single-quoted on purpose
# start-zabbix-7.0.sh - a throwaway REAL Zabbix 7.0 LTS (Debian 13 trixie packages) on a Debian 12
# host, without systemd, inside a debootstrapped trixie chroot (trixie binaries need glibc 2.38+):
#   debootstrap trixie root -> apt packages in the chroot -> private PostgreSQL 17 cluster ->
#   Zabbix 7.0 schema -> frontend API via `php -S` -> zabbix_server -f (trapper on 127.0.0.1).
#   The chroot shares the host's network, so the API and the trapper are reached from the host.
#   Used by tests/fixtures/zabbix.py.
#
# Usage:  start-zabbix-7.0.sh [up|down]
#   up    build/reuse the root, start everything, write $ZBX_BASE/run/env (KEY=VALUE lines)
#   down  stop what "up" started, by the PIDs it recorded; unmount the root's /proc and /dev/shm
#         when no other instance still runs in it
# Cache ($ZBX_CACHE, default /var/cache/flageemonitor-test/zabbix70): the root is built once
#   (debootstrap + apt, ~65 s, ~0.8 GB) and reused while it holds the marker file and all
#   packages; the freshly loaded DB is cached too (root:/var/cache/zbx7/pgdata, ~0.2 GB).
#   ZBX_REBUILD=1 forces a fresh root; ZBX_DB_CACHE=0 disables the DB cache.
#   Several instances may share one root: each runs under its own directory /srv/zbx/<id> and
#   its own copy of the frontend.
# Env knobs: ZBX_BASE (instance dir, default $TMPDIR/zabbix70-test), ZBX_MIRROR (default
#   http://deb.debian.org/debian), ZBX_NO_SERVER=1 (API only), ZBX_KEEP_ON_FAIL=1.
set -euo pipefail

BASE=${ZBX_BASE:-${TMPDIR:-/tmp}/zabbix70-test}
CACHE=${ZBX_CACHE:-/var/cache/flageemonitor-test/zabbix70}
ROOT=$CACHE/root                # trixie chroot (the cache)
INST=$(printf '%s' "$BASE" | md5sum | cut -c1-12)
RIN=/srv/zbx/$INST              # this instance's dir as seen inside the chroot
RUN=$ROOT$RIN                   # ... and from the host
LOG=$BASE/start-zabbix-7.0.log
MIRROR=${ZBX_MIRROR:-http://deb.debian.org/debian}
PKGS=(zabbix-server-pgsql zabbix-frontend-php php8.4-cgi php-cli php-pgsql postgresql)
MARKER=$ROOT/.zbx7-root-ready
CMD=${1:-up}
mkdir -p "$BASE" "$CACHE"
exec > >(tee -a "$LOG") 2>&1

# shellcheck source=common.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
TIMINGS=$BASE/timings  # read by `phase` (common.sh)

# run a command inside the chroot with a clean environment (chroot and env exec: same PID)
CENV=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root)
inroot()  { chroot "$ROOT" "${CENV[@]}" "$@"; }
aspg()    { chroot --userspec=postgres:postgres "$ROOT" "${CENV[@]}" HOME=/var/lib/postgresql "$@"; }

# the chroot needs /proc (apt, postgres, php) and a /dev/shm (postgres' posix dynamic shm);
# a minbase root already has the /dev nodes it needs (null, zero, urandom, ...). The mounts are
# shared by every instance running in the root; changes to them happen under the cache lock.
lock_cache() { exec 9>"$CACHE/lock"; flock -w 900 9 || die "cache lock $CACHE/lock busy"; }
unlock_cache() { flock -u 9; }
mount_root() {
  mkdir -p "$ROOT/proc" "$ROOT/dev/shm"
  mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
  mountpoint -q "$ROOT/dev/shm" || mount -t tmpfs -o mode=1777,size=256m zbx7shm "$ROOT/dev/shm"
}
instance_alive() {  # instance_alive DIR: any recorded process of that instance still running
  local f
  for f in "$1/zabbix_server.pid" "$1/php.pid" "$1/pg/data/postmaster.pid"; do
    [ -f "$f" ] && alive "$(head -1 "$f")" && return 0
  done
  return 1
}
umount_root() {  # only when no instance runs in the root any more; innermost first
  local d
  for d in "$ROOT"/srv/zbx/*/; do
    [ -d "$d" ] && instance_alive "${d%/}" && { log "root still in use by ${d%/}: mounts kept"; return 0; }
  done
  for d in "$ROOT/dev/shm" "$ROOT/proc"; do
    if mountpoint -q "$d"; then
      if umount "$d"; then log "unmounted $d"; else log "WARN: umount $d failed"; fi
    fi
  done
}

# --------------------------------------------------------------------------- down
do_down() {
  if [ -d "$RUN" ]; then
    if [ -f "$RUN/zabbix_server.pid" ]; then
      stop_pid zabbix_server "$(cat "$RUN/zabbix_server.pid")" TERM 30; rm -f "$RUN/zabbix_server.pid"
    fi
    if [ -f "$RUN/php.pid" ]; then
      # PHP_CLI_SERVER_WORKERS workers are children of the `php -S` parent and keep serving if
      # only the parent is killed: stop each recorded worker PID, then the parent.
      local w; while read -r w; do stop_pid php-S-worker "$w" TERM 5; done < <(cat "$RUN/php.workers" 2>/dev/null || true)
      stop_pid php-S "$(cat "$RUN/php.pid")" TERM 10
      rm -f "$RUN/php.pid" "$RUN/php.workers"
    fi
    if [ -f "$RUN/pg/data/postmaster.pid" ]; then
      stop_pid postgres "$(head -1 "$RUN/pg/data/postmaster.pid")" INT 30   # SIGINT = fast shutdown
    fi
    rm -rf "$RUN"
  else
    log "no instance dir"
  fi
  [ -d "$ROOT" ] || return 0
  lock_cache; umount_root; unlock_cache
}

# --------------------------------------------------------------------------- root (cache)
build_root() {
  local t
  if [ "${ZBX_REBUILD:-0}" = 1 ] && [ -d "$ROOT" ]; then
    umount_root; mountpoint -q "$ROOT/proc" && die "$ROOT/proc still mounted"
    log "ZBX_REBUILD=1: removing $ROOT"; rm -rf --one-file-system "$ROOT"
  fi
  if [ -f "$MARKER" ] && [ -x "$ROOT/usr/bin/apt-get" ]; then
    t=$(ts); mount_root
    local ok; ok=$(inroot dpkg-query -W -f='${Status}\n' "${PKGS[@]}" 2>/dev/null | grep -c 'install ok installed' || true)
    if [ "$ok" = "${#PKGS[@]}" ]; then
      log "cached root $ROOT reused ($(inroot dpkg-query -W -f='${Version}' zabbix-server-pgsql))"
      phase root_cached "$t"; return 0
    fi
    log "cached root incomplete - (re)installing packages"; rm -f "$MARKER"
  fi
  if [ ! -x "$ROOT/usr/bin/apt-get" ] || [ ! -f "$ROOT/.zbx7-debootstrap-ok" ]; then
    t=$(ts)
    command -v debootstrap >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
    umount_root
    if [ -e "$ROOT" ]; then
      mountpoint -q "$ROOT/proc" && die "$ROOT/proc mounted by someone else"
      rm -rf --one-file-system "$ROOT"
    fi
    log "debootstrap --variant=minbase trixie $ROOT $MIRROR"
    debootstrap --variant=minbase trixie "$ROOT" "$MIRROR" > "$BASE/debootstrap.log" 2>&1 \
      || { tail -30 "$BASE/debootstrap.log"; die "debootstrap failed"; }
    touch "$ROOT/.zbx7-debootstrap-ok"
    phase debootstrap "$t"
  fi
  t=$(ts)
  mount_root
  # no service starts from maintainer scripts; no "main" cluster (we initdb our own); faster dpkg
  printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"; chmod +x "$ROOT/usr/sbin/policy-rc.d"
  mkdir -p "$ROOT/etc/postgresql-common" "$ROOT/etc/dpkg/dpkg.cfg.d"
  echo "create_main_cluster = false" > "$ROOT/etc/postgresql-common/createcluster.conf"
  echo "force-unsafe-io" > "$ROOT/etc/dpkg/dpkg.cfg.d/zbx7-unsafe-io"
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
  log "apt-get install (in chroot): ${PKGS[*]}"
  inroot apt-get update -qq || inroot apt-get update -qq
  inroot env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${PKGS[@]}" > "$BASE/apt.log" 2>&1 \
    || { tail -40 "$BASE/apt.log"; die "apt-get install in chroot failed"; }
  inroot apt-get clean
  echo "${PKGS[*]}" > "$MARKER"
  phase apt_install "$t"
}

on_exit() {  # tear down a half-started instance unless ZBX_KEEP_ON_FAIL=1
  local rc=$?
  if [ "$rc" != 0 ] && [ "${UP_DONE:-0}" != 1 ]; then log "up failed (rc=$rc) - tearing down"; do_down; fi
}

# --------------------------------------------------------------------------- up
do_up() {
  [ "$(id -u)" = 0 ] || die "run as root (debootstrap, chroot, mount)"
  do_down   # a previous instance, if any
  : > "$TIMINGS"
  if [ "${ZBX_KEEP_ON_FAIL:-0}" != 1 ]; then
    trap on_exit EXIT
  fi
  local T0; T0=$(ts)

  # ---- 1. root with packages (cold: debootstrap + apt; warm: reuse) ----------
  lock_cache; build_root; unlock_cache
  rm -rf "$RUN"; mkdir -p "$RUN"; chmod 755 "$RUN"
  ln -sfn "$RUN" "$BASE/run"     # host-side shortcut: $BASE/run/env, logs
  local PGBIN d
  for d in "$ROOT"/usr/lib/postgresql/*/bin; do PGBIN=${d#"$ROOT"}; done   # glob order: newest last for 1-digit majors
  [ -n "${PGBIN:-}" ] || die "no PostgreSQL in $ROOT" 
  local ZVER; ZVER=$(inroot dpkg-query -W -f='${Version}' zabbix-server-pgsql)

  # ---- 2. PostgreSQL + schema ----------------------------------------------
  # DB cache: the first run keeps a copy of the stopped, freshly loaded data dir in the root;
  # later runs copy it back instead of initdb + schema load (~9 s -> ~1 s). ZBX_DB_CACHE=0: off.
  local t; t=$(ts)
  local PGPORT; PGPORT=$(free_port)
  local DBC=/var/cache/zbx7/pgdata DBKEY
  DBKEY="$ZVER $PGBIN keep_default_host=${ZBX_KEEP_DEFAULT_HOST:-0}"
  local PGOPTS="-c listen_addresses=127.0.0.1 -p $PGPORT -c unix_socket_directories=$RIN/pg -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c wal_level=minimal -c max_wal_senders=0"
  pg_start() { aspg "$PGBIN/pg_ctl" -D "$RIN/pg/data" -l "$RIN/pg/postgres.log" -w -t 60 -o "$PGOPTS" start >/dev/null \
                 || { show_logs "$RUN/pg/postgres.log"; die "postgres did not start"; }; }
  mkdir -p "$RUN/pg"; inroot chown postgres:postgres "$RIN/pg"; chmod 700 "$RUN/pg"
  local PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT")
  if [ "${ZBX_DB_CACHE:-1}" = 1 ] && [ -f "$ROOT$DBC.key" ] && [ "$(cat "$ROOT$DBC.key")" = "$DBKEY" ] \
     && [ -f "$ROOT$DBC/PG_VERSION" ]; then
    cp -a "$ROOT$DBC" "$RUN/pg/data"
    pg_start
    log "postgres pid $(head -1 "$RUN/pg/data/postmaster.pid") on 127.0.0.1:$PGPORT (data dir from DB cache)"
    log "schema (cached): dbversion $(inroot "${PSQL[@]}" -At -U zabbix -d zabbix -c 'select mandatory from dbversion')"
    phase db_from_cache "$t"
  else
    aspg "$PGBIN/initdb" -D "$RIN/pg/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync \
      >"$RUN/initdb.log" 2>&1 || { show_logs "$RUN/initdb.log"; die "initdb failed"; }
    pg_start
    log "postgres pid $(head -1 "$RUN/pg/data/postmaster.pid") on 127.0.0.1:$PGPORT ($PGBIN)"
    inroot "${PSQL[@]}" -U postgres -d postgres -c "CREATE ROLE zabbix LOGIN PASSWORD 'zabbix'" \
          -c "CREATE DATABASE zabbix OWNER zabbix ENCODING 'UTF8' TEMPLATE template0"
    phase db_init "$t"; t=$(ts)
    local SQL=/usr/share/zabbix-server-pgsql   # 7.0: same layout as 6.0 (schema, images, data .sql.gz)
    inroot sh -c "zcat $SQL/schema.sql.gz $SQL/images.sql.gz $SQL/data.sql.gz | psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p $PGPORT -U zabbix -d zabbix" \
      >"$RUN/schema.log" 2>&1 || { show_logs "$RUN/schema.log"; die "schema load failed"; }
    if [ "${ZBX_KEEP_DEFAULT_HOST:-0}" != 1 ]; then
      # the stock "Zabbix server" host polls an agent on 127.0.0.1:10050: disable it
      inroot "${PSQL[@]}" -U zabbix -d zabbix -c "UPDATE hosts SET status=1 WHERE host='Zabbix server'"
    fi
    log "schema loaded: dbversion $(inroot "${PSQL[@]}" -At -U zabbix -d zabbix -c 'select mandatory from dbversion')"
    phase db_schema "$t"
    if [ "${ZBX_DB_CACHE:-1}" = 1 ]; then   # clean stop, copy, restart (~2 s, once)
      t=$(ts)
      aspg "$PGBIN/pg_ctl" -D "$RIN/pg/data" -m fast -w -t 60 stop >/dev/null
      lock_cache
      rm -rf "$ROOT$DBC.tmp" "$ROOT$DBC.key"; mkdir -p "$(dirname "$ROOT$DBC")"
      cp -a "$RUN/pg/data" "$ROOT$DBC.tmp" && rm -rf "$ROOT$DBC" && mv "$ROOT$DBC.tmp" "$ROOT$DBC" \
        && echo "$DBKEY" > "$ROOT$DBC.key"
      unlock_cache
      pg_start
      log "DB cache saved to $ROOT$DBC; postgres restarted, pid $(head -1 "$RUN/pg/data/postmaster.pid")"
      phase db_cache_save "$t"
    fi
  fi

  # ---- 3. frontend (PHP built-in server, inside the chroot) ----------------
  t=$(ts)
  local WEBPORT; WEBPORT=$(free_port)
  local TRAPPORT; TRAPPORT=$(free_port)
  while [ "$TRAPPORT" = "$WEBPORT" ] || [ "$TRAPPORT" = "$PGPORT" ]; do TRAPPORT=$(free_port); done
  # Debian's frontend reads the absolute /etc/zabbix/zabbix.conf.php (CConfigFile::CONFIG_FILE_PATH).
  # Instances share the root, so each runs a private copy of the frontend with that constant
  # re-pointed to its own file (the copy is made inside the chroot so absolute links still work).
  local WWW=$RIN/www
  inroot cp -a /usr/share/zabbix "$WWW"
  # re-point relative symlinks (fonts) broken by the copy
  inroot bash -c 'cd "$1" && find . -xtype l | while IFS= read -r l; do
    ln -sfn "$(readlink -f "/usr/share/zabbix/${l#./}")" "$l"; done' find-links "$WWW"
  sed -i "s#const CONFIG_FILE_PATH = '[^']*';#const CONFIG_FILE_PATH = '$WWW/conf/zabbix.conf.php';#" \
    "$ROOT$WWW/include/classes/core/CConfigFile.php"
  grep -q "$WWW/conf/zabbix.conf.php" "$ROOT$WWW/include/classes/core/CConfigFile.php" || die "patch CConfigFile failed"
  cat > "$ROOT$WWW/conf/zabbix.conf.php" <<EOF
<?php
// written by start-zabbix-7.0.sh
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
\$DB['VAULT']           = '';
\$DB['VAULT_URL']       = '';
\$DB['VAULT_PREFIX']    = '';
\$DB['VAULT_DB_PATH']   = '';
\$DB['VAULT_TOKEN']     = '';
\$DB['VAULT_CERT_FILE'] = '';
\$DB['VAULT_KEY_FILE']  = '';
\$DB['DOUBLE_IEEE754']  = true;
\$ZBX_SERVER            = '127.0.0.1';
\$ZBX_SERVER_PORT       = '$TRAPPORT';
\$ZBX_SERVER_NAME       = 'zbx7-test';
\$IMAGE_FORMAT_DEFAULT  = IMAGE_FORMAT_PNG;
EOF
  # setsid -> chroot -> env -> php all exec: $! is php's PID; workers are its children
  setsid chroot "$ROOT" "${CENV[@]}" PHP_CLI_SERVER_WORKERS=4 php -S "127.0.0.1:$WEBPORT" -t "$WWW" \
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
  log "frontend API $ver at $API (php pid $(cat "$RUN/php.pid"), workers $(tr '\n' ' ' < "$RUN/php.workers"))"
  phase frontend_up "$t"

  # ---- 4. zabbix_server (foreground, inside the chroot, trapper on 127.0.0.1) --
  t=$(ts)
  if [ "${ZBX_NO_SERVER:-0}" != 1 ]; then
    mkdir -p "$RUN/alertscripts" "$RUN/externalscripts"
    server_conf "$RIN" "$PGPORT" "$TRAPPORT" \
      AllowUnsupportedDBVersions=1 \
      ProxyConfigFrequency=10 \
      StartAgentPollers=1 \
      StartHTTPAgentPollers=0 \
      StartSNMPPollers=0 \
      StartBrowserPollers=0 \
      StartConnectors=0 \
      EnableGlobalScripts=0 \
      > "$RUN/zabbix_server.conf"
    setsid chroot "$ROOT" "${CENV[@]}" /usr/sbin/zabbix_server -f -c "$RIN/zabbix_server.conf" \
      >"$RUN/zabbix_server.out" 2>&1 < /dev/null &
    echo $! > "$RUN/zabbix_server.pid"
    local ok=0
    for _ in $(seq 600); do   # <= ~60s: wait for a trapper process and the listening port
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
ZBX_PKG_VERSION=$ZVER
EOF
  UP_DONE=1
  phase up_total "$T0"
  log "up. environment in $BASE/run/env:"; sed 's/^/    /' "$RUN/env"
}

case "$CMD" in
  up)   do_up ;;
  down) do_down ;;
  *) echo "usage: $0 [up|down]" >&2; exit 2 ;;
esac
