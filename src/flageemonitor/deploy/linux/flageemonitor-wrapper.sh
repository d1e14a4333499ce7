#!/usr/bin/env bash
# FlageeMonitor host wrapper, installed under five names (the name selects the command). It passes
# arguments and shows errors only: the update engine (`flageemonitor host`) decides, in a one-shot
# container of the proxy image with the engine socket and the env file mounted.
set -euo pipefail
ENV_FILE=${FLAGEEMONITOR_ENV_FILE:-${FLAGEEMONITOR_DEFAULT_ENV_FILE:-/etc/flageemonitor/flageemonitor.env}}
PROG=${0##*/}
err() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
# cfg KEY: its value in the env file, read as data (never sourced)
cfg() { local l; while IFS= read -r l || [ -n "$l" ]; do case $l in "$1="*) printf '%s' "${l#*=}" && return ;; esac; done <"$ENV_FILE"; }
case $PROG in flageemonitor-update-image | flageemonitor-update-config | flageemonitor-run | flageemonitor-logs | flageemonitor-watchtower-logs) ;;
    *) err "unknown command name '$PROG' (install this file as flageemonitor-update-config, -update-image, -run, -logs or -watchtower-logs)" ;; esac
[ -r "$ENV_FILE" ] || err "cannot read $ENV_FILE: is FlageeMonitor installed? (run the installer, as root)"
command -v docker >/dev/null 2>&1 || err "docker not found: install Docker Engine (https://docs.docker.com/engine/install/)"
runtime=${FLAGEEMONITOR_RUNTIME_NAME:-$(cfg FLAGEEMONITOR_RUNTIME_NAME)} regdir=$(cfg FLAGEEMONITOR_REGISTRY_CONFIG_DIR)
dk=(docker) mounts=(-v "$(cfg FLAGEEMONITOR_DOCKER_SOCKET):/var/run/docker.sock" -v "$ENV_FILE:/run/flageemonitor/host.env:ro"
    -v "$(cfg FLAGEEMONITOR_HOST_STATE_DIR):/run/flageemonitor/state")
if [ -n "$regdir" ] && [ -f "$regdir/config.json" ]; then
    dk+=(--config "$regdir") mounts+=(-v "$regdir:/run/flageemonitor/registry:ro" -e DOCKER_CONFIG=/run/flageemonitor/registry)
fi
"${dk[@]}" info >/dev/null 2>&1 </dev/null || err "cannot reach the Docker daemon: start it (e.g. 'systemctl start docker') and run this as root"
host() { # no --rm: podman's Docker API then reports exit code 0 whatever the engine returned
    local rc=0 && "${dk[@]}" run --name "flageemonitor-host-$$" --user 0:0 --network none --label io.flageemonitor.role=engine "${mounts[@]}" \
        -e "FLAGEEMONITOR_HOST_ENV_FILE=$ENV_FILE" -e FLAGEEMONITOR_RUNTIME_NAME -e FLAGEEMONITOR_HEALTH_TIMEOUT -e FLAGEEMONITOR_HOLD_INTERVAL -e FLAGEEMONITOR_CHANNEL_INTERVAL \
        "$(cfg FLAGEEMONITOR_IMAGE)" host "$@" </dev/null || rc=$?
    "${dk[@]}" rm -f "flageemonitor-host-$$" >/dev/null 2>&1 </dev/null && return "$rc"; }
exists() { "${dk[@]}" container inspect "$1" >/dev/null 2>&1 </dev/null; }
case $PROG in
    flageemonitor-update-image) host update-image ;;
    flageemonitor-update-config) host update-config "$@" ;;
    flageemonitor-run)
        [ "$#" -gt 0 ] || err "usage: flageemonitor-run <action> [options]    e.g. flageemonitor-run diagnose_env --loja 1"
        exists "$runtime" || { host explain-missing "$runtime"; exit 1; }
        tty=() && if [ -t 0 ] && [ -t 1 ]; then tty=(-it); fi
        exec "${dk[@]}" exec "${tty[@]}" "$runtime" flageemonitor run "$@" ;;
    *) name=$runtime${PROG#flageemonitor} && name=${name%-logs} # the runtime's or Watchtower's logs
        exists "$name" || { host explain-missing "$name"; exit 1; }
        [ "$#" -gt 0 ] || set -- --tail 100 -f
        exec "${dk[@]}" logs "$@" "$name" ;;
esac
