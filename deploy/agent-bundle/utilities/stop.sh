#!/bin/sh
# Stop the AriusMonitor agent: TERM the PidFile's process (only when it is the bundled agent),
# KILL it and its children after 10 s, remove the PidFile. Exit 0 when nothing runs.
set -u
# shellcheck source=agent-common.sh source-path=SCRIPTDIR
. /ariusmonitor/utilities/agent-common.sh

fail() {
    printf 'stop.sh: %s\n' "$*" >&2
    exit 1
}

# children PID: the direct children of PID (from /proc/*/stat: "pid (comm) state ppid ...")
children() {
    for stat in /proc/[0-9]*/stat; do
        ppid=$(sed 's/.*) //' "$stat" 2>/dev/null | cut -d ' ' -f 2)
        [ "$ppid" = "$1" ] && basename "$(dirname "$stat")"
    done
    return 0
}

# wait_gone PID TENTHS: wait until PID no longer runs the agent; status 1 on timeout
wait_gone() {
    i=0
    while is_agent "$1"; do
        [ "$i" -ge "$2" ] && return 1
        sleep 0.1 2>/dev/null || sleep 1
        i=$((i + 1))
    done
    return 0
}

main() {
    file=$(pid_file)
    if pid=$(agent_pid); then
        kill -TERM "$pid" 2>/dev/null
        if ! wait_gone "$pid" 100; then
            kids=$(children "$pid")  # still its children while it lives
            # shellcheck disable=SC2086 # a list of PIDs
            kill -KILL "$pid" $kids 2>/dev/null
            wait_gone "$pid" 20 || fail "agent $pid did not stop"
        fi
    fi
    rm -f "$file" || fail "cannot remove $file"
}

main "$@"
