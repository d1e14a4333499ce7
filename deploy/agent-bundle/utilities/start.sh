#!/bin/sh
# (Re)start the AriusMonitor agent: stop the running one, start zabbix_agentd with
# /ariusmonitor/conf/zabbix_agentd.conf, and check it is alive 2 s later (else print the log tail).
#   --if-stopped  start only when it does not run (the cron check)
#   --status      exit 0 when it runs, 3 when it does not (init scripts' status)
set -u
# shellcheck source=agent-common.sh source-path=SCRIPTDIR
. /ariusmonitor/utilities/agent-common.sh

fail() {
    printf 'start.sh: %s\n' "$*" >&2
    exit 1
}

log_tail() {
    log=$(conf_value LogFile "$DEFAULT_LOG_FILE")
    [ -f "$log" ] && tail -n 10 "$log" >&2
    [ -s "$BASE/logs/start.err" ] && tail -n 10 "$BASE/logs/start.err" >&2
    return 0
}

main() {
    case "${1:-}" in
        --status)
            if pid=$(agent_pid); then echo "running ($pid)"; exit 0; fi
            echo "not running"
            exit 3
            ;;
        --if-stopped)
            agent_pid >/dev/null && exit 0
            ;;
        "") ;;
        *) fail "unknown option $1" ;;
    esac
    [ -f "$CONF" ] || fail "no agent config at $CONF"
    [ -x "$AGENT" ] || fail "$AGENT is missing: extract the bundle again"
    "$BASE/utilities/stop.sh" || fail "the running agent did not stop"
    if ! "$AGENT" -c "$CONF" </dev/null >/dev/null 2>"$BASE/logs/start.err"; then
        log_tail
        fail "zabbix_agentd did not start"
    fi
    i=0
    while [ "$i" -lt 20 ]; do
        sleep 0.1 2>/dev/null || sleep 1
        i=$((i + 1))
    done
    if ! agent_pid >/dev/null; then
        log_tail
        fail "zabbix_agentd is not running 2 s after start"
    fi
    rm -f "$BASE/logs/start.err"
}

main "$@"
