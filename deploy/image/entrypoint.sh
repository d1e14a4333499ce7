#!/bin/sh
# Container entrypoint. No arguments: the daemon (config refresh + schedule, in-process).
# Arguments: a manual run, in any of these forms:
#   <flageemonitor subcommand> [...]   e.g. `run diagnose_env`, `update-config`, `health`
#   <action> [...]                     legacy form, same as `run <action> [...]`
#   <program> [...]                    any program in the image, e.g. `sh`
set -eu

# Top-level commands of the `flageemonitor` CLI (a test keeps this list in step with it).
CLI_COMMANDS="run plan actions version daemon update-config status health zabbix host"

if [ "$#" -eq 0 ]; then
    if [ "${RUN_MODE:-daemon}" = manual ]; then
        exec flageemonitor --help
    fi
    exec flageemonitor daemon
fi

case "$1" in
    -*) exec flageemonitor "$@" ;;
esac
for command in $CLI_COMMANDS; do
    [ "$1" = "$command" ] && exec flageemonitor "$@"
done
if command -v "$1" >/dev/null 2>&1; then
    exec "$@"
fi
exec flageemonitor run "$@"
