# shellcheck shell=sh disable=SC2034  # the constants are used by the scripts that source this file
# Shared by start.sh and stop.sh (sourced, not run): where the agent's PidFile is, and whether
# the process it names is the bundled agent (never act on a stranger that reused the PID).
# POSIX sh; busybox ash and bash 4.1 run it.

BASE=/ariusmonitor
CONF=$BASE/conf/zabbix_agentd.conf
AGENT=$BASE/zabbix/sbin/zabbix_agentd
DEFAULT_PID_FILE=$BASE/logs/zabbix_agentd.pid
DEFAULT_LOG_FILE=$BASE/logs/zabbix_agentd.log

# conf_value KEY DEFAULT: the last KEY=value of the agent config, else DEFAULT
conf_value() {
    value=
    if [ -f "$CONF" ]; then
        value=$(sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$CONF" | tail -n 1 | sed 's/[[:space:]]*$//')
    fi
    printf '%s\n' "${value:-$2}"
}

pid_file() {
    conf_value PidFile "$DEFAULT_PID_FILE"
}

# is_agent PID: the process runs the bundled agent (its command line names the launcher)
is_agent() {
    [ -r "/proc/$1/cmdline" ] || return 1
    tr '\000' '\n' < "/proc/$1/cmdline" 2>/dev/null | grep -q -F "$AGENT"
}

# agent_pid: the PID of the running bundled agent from the PidFile, or nothing (status 1)
agent_pid() {
    file=$(pid_file)
    [ -f "$file" ] || return 1
    pid=$(head -n 1 "$file" | tr -cd '0-9')
    [ -n "$pid" ] && is_agent "$pid" || return 1
    printf '%s\n' "$pid"
}
