# shellcheck shell=bash
# Helpers shared by start-zabbix-6.0.sh and start-zabbix-7.0.sh (sourced, never run).
# The caller sets TIMINGS (the file `phase` appends to) before calling `phase`.

ts()  { date +%s.%N; }
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*"; }
die() { log "ERROR: $*"; exit 1; }
phase() {  # phase NAME START_TS  -> records and prints elapsed
  local d; d=$(awk -v a="$2" -v b="$(ts)" 'BEGIN{printf "%.1f", b-a}')
  log "PHASE $1: ${d}s"; echo "$1=$d" >> "$TIMINGS"
}
free_port() {  # random free TCP port on 127.0.0.1, in 20000-32767: below the kernel's ephemeral
  local p      # range, and zabbix_server's ListenPort only accepts 1024-32767
  for _ in $(seq 200); do
    p=$(( 20000 + RANDOM % 12768 ))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  die "no free port"
}
wait_port() {  # wait_port PORT SECONDS
  for _ in $(seq $(( $2 * 10 ))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
show_logs() { local f; for f in "$@"; do [ -s "$f" ] && { echo "--- $f"; tail -30 "$f"; }; done; true; }
alive() {  # running and not a zombie (orphans are reaped late by PID 1 here)
  [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 1
  [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" != Z ]
}
stop_pid() {  # stop_pid NAME PID SIGNAL TIMEOUT_S  (only the PID we recorded)
  local name=$1 pid=$2 sig=$3 t=$4
  alive "$pid" || { log "$name (pid ${pid:-?}) not running"; return 0; }
  log "stopping $name pid $pid (SIG$sig)"
  kill -s "$sig" "$pid" 2>/dev/null || true
  for _ in $(seq $(( t * 10 ))); do alive "$pid" || { log "$name stopped"; return 0; }; sleep 0.1; done
  log "$name did not stop in ${t}s, SIGKILL"; kill -KILL "$pid" 2>/dev/null || true
}
api_version() {  # api_version URL PHP_LOG -> prints the API version once the frontend answers, or dies
  local api=$1 ver=""
  for _ in $(seq 50); do
    ver=$(curl -s -m 10 -H 'Content-Type: application/json-rpc' -d \
      '{"jsonrpc":"2.0","method":"apiinfo.version","params":{},"id":1}' "$api" \
      | sed -n 's/.*"result":"\([^"]*\)".*/\1/p') || true
    [ -n "$ver" ] && { echo "$ver"; return 0; }
    sleep 0.2
  done
  curl -s "$api" -H 'Content-Type: application/json-rpc' -d '{}' | head -c 2000 || true
  show_logs "$2"
  die "API not answering"
}
server_conf() {  # server_conf DIR PGPORT TRAPPORT [LINE...] -> zabbix_server.conf on stdout
  # DIR is the instance directory as zabbix_server sees it; LINEs are version-specific settings
  local dir=$1 pgport=$2 trapport=$3; shift 3
  cat <<CONF
DBHost=127.0.0.1
DBPort=$pgport
DBName=zabbix
DBUser=zabbix
DBPassword=zabbix
ListenIP=127.0.0.1
ListenPort=$trapport
LogType=file
LogFile=$dir/zabbix_server.log
LogFileSize=0
PidFile=$dir/zabbix_server.self.pid
SocketDir=$dir
TmpDir=$dir
AlertScriptsPath=$dir/alertscripts
ExternalScripts=$dir/externalscripts
AllowRoot=1
CacheUpdateFrequency=1
HousekeepingFrequency=0
StartPollers=1
StartPollersUnreachable=1
StartTrappers=2
StartPingers=0
StartDiscoverers=0
StartHTTPPollers=0
StartTimers=1
StartEscalators=1
StartAlerters=1
StartPreprocessors=1
StartHistoryPollers=1
StartLLDProcessors=1
StartDBSyncers=1
StartReportWriters=0
StartODBCPollers=0
StartJavaPollers=0
StartVMwareCollectors=0
StartProxyPollers=0
StartIPMIPollers=0
StartSNMPTrapper=0
Timeout=4
UnreachablePeriod=1
UnreachableDelay=1
UnavailableDelay=1
CONF
  printf '%s\n' "$@"
}
