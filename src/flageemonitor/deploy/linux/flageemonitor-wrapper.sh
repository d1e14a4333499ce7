#!/usr/bin/env bash
# FlageeMonitor host wrapper. One file, installed by the installer under five names; the name
# it is called by selects the command:
#   flageemonitor-update-config [args]   validated, atomic config refresh (inside the container)
#   flageemonitor-update-image           pull; swap the runtime only once the new one is healthy
#                                        (else roll back); make sure Watchtower is present and right
#   flageemonitor-run <action> [args]    run an action in the container (exit code passed through)
#   flageemonitor-logs [docker logs options]             default: --tail 100 -f
#   flageemonitor-watchtower-logs [docker logs options]  default: --tail 100 -f
# The env file is read as data (KEY=VALUE lines, never sourced). Logic lives in the Python CLI
# inside the container; this file only drives docker.
set -euo pipefail

# the installer writes FLAGEEMONITOR_DEFAULT_ENV_FILE as the second line of the installed copy
ENV_FILE=${FLAGEEMONITOR_ENV_FILE:-${FLAGEEMONITOR_DEFAULT_ENV_FILE:-/etc/flageemonitor/flageemonitor.env}}
PROG=${0##*/}
declare -A CFG=()
DOCKER_CONFIG_ARGS=()

say() { printf '%s: %s\n' "$PROG" "$*" >&2; }
err() {
    say "error: $*"
    exit 1
}

load_env_file() {
    local line key
    [ -r "$ENV_FILE" ] || err "cannot read $ENV_FILE: is FlageeMonitor installed? (run the installer, as root)"
    while IFS= read -r line || [ -n "$line" ]; do
        line=${line%$'\r'}
        case "$line" in '' | '#'*) continue ;; esac
        key=${line%%=*}
        [[ $key =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
        CFG[$key]=${line#*=}
    done <"$ENV_FILE"
}

# cfg NAME [DEFAULT]: a value from the env file
cfg() {
    local value=${CFG[$1]:-}
    printf '%s' "${value:-${2:-}}"
}

runtime_name() {
    local name=${FLAGEEMONITOR_RUNTIME_NAME:-$(cfg FLAGEEMONITOR_RUNTIME_NAME flageemonitor)}
    [[ $name =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || err "invalid FLAGEEMONITOR_RUNTIME_NAME in $ENV_FILE: '$name'"
    printf '%s' "$name"
}

dk() { docker "${DOCKER_CONFIG_ARGS[@]}" "$@"; }

setup_docker() {
    command -v docker >/dev/null 2>&1 || err "docker not found: install Docker Engine (https://docs.docker.com/engine/install/)"
    local regdir
    regdir=$(cfg FLAGEEMONITOR_REGISTRY_CONFIG_DIR)
    if [ -n "$regdir" ] && [ -f "$regdir/config.json" ]; then
        DOCKER_CONFIG_ARGS=(--config "$regdir")
    fi
    dk info >/dev/null 2>&1 </dev/null ||
        err "cannot reach the Docker daemon: start it (e.g. 'systemctl start docker') and run this as root"
}

container_exists() { dk container inspect "$1" >/dev/null 2>&1 </dev/null; }

container_running() {
    [ "$(dk container inspect -f '{{.State.Running}}' "$1" 2>/dev/null </dev/null)" = true ]
}
ensure_started() {  # ensure_started NAME WHY: start an existing, stopped container
    container_running "$1" && return 0
    say "starting $1${2:+ ($2)}"
    dk start "$1" >/dev/null </dev/null
}

# The seed's failure table: a wrapper pointing at the wrong runtime.
require_runtime() {
    local name=$1 others
    container_exists "$name" && return 0
    others=$(dk ps -a --filter label=io.flageemonitor.role=runtime --format '{{.Names}}' 2>/dev/null </dev/null |
        tr '\n' ' ')
    say "error: no container named '$name'."
    say "The wrappers select the runtime by FLAGEEMONITOR_RUNTIME_NAME in $ENV_FILE."
    if [ -n "${others// /}" ]; then
        say "FlageeMonitor runtimes on this host: ${others% }. Correct FLAGEEMONITOR_RUNTIME_NAME there."
    else
        say "No FlageeMonitor runtime exists on this host: run flageemonitor-update-image (or re-run the installer)."
    fi
    exit 1
}

# ---- the runtime container -------------------------------------------------------------------

# runtime_args NAME RUNTIME: `docker run` options for the proxy container (without the image)
runtime_args() {
    local name=$1 runtime=$2 state_dir host_state network
    state_dir=$(cfg FLAGEEMONITOR_STATE_DIR "$(cfg FLAGEEMONITOR_CONTAINER_ROOT /flageemonitor)/state")
    host_state=$(cfg FLAGEEMONITOR_HOST_STATE_DIR /var/lib/flageemonitor)
    network=$(cfg FLAGEEMONITOR_DOCKER_NETWORK)
    RUN_ARGS=(--detach --name "$name" --restart unless-stopped
        --env-file "$ENV_FILE"
        -e "FLAGEEMONITOR_RUNTIME_NAME=$runtime"
        -e "FLAGEEMONITOR_STATE_DIR=$state_dir"
        -v "$host_state:$state_dir"
        --label io.flageemonitor.role=runtime
        --label "io.flageemonitor.runtime=$runtime"
        --label com.centurylinklabs.watchtower.enable=true
        --label "com.centurylinklabs.watchtower.scope=$runtime"
        --stop-timeout 30)
    if [ -n "$network" ]; then RUN_ARGS+=(--network "$network"); fi
    return 0
}

# spec_of WORDS...: a short hash of a run specification, kept as a label to detect drift
spec_of() { printf '%s\n' "$@" | sha256sum | cut -c1-16; }

env_file_hash() { sha256sum <"$ENV_FILE" | cut -c1-16; }

# wait_healthy CONTAINER TIMEOUT: the engine's health status when it reports one, else the
# image's HEALTHCHECK command run through `docker exec` (engines without health timers).
wait_healthy() {
    local c=$1 timeout=$2 deadline state health kind test_lines=() cmd=()
    mapfile -t test_lines < <(dk inspect -f \
        '{{if .Config.Healthcheck}}{{range .Config.Healthcheck.Test}}{{println .}}{{end}}{{end}}' "$c" 2>/dev/null </dev/null)
    # `docker inspect -f` ends with a newline of its own: drop the empty last entry
    while [ "${#test_lines[@]}" -gt 0 ] && [ -z "${test_lines[-1]}" ]; do unset 'test_lines[-1]'; done
    kind=${test_lines[0]:-NONE}
    cmd=("${test_lines[@]:1}")
    deadline=$((SECONDS + timeout))
    while [ "$SECONDS" -lt "$deadline" ]; do
        state=$(dk inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$c" 2>/dev/null </dev/null || true)
        health=${state#* }
        state=${state%% *}
        case "$state" in
            running) ;;
            created | restarting) sleep 1; continue ;;
            *) say "container $c is $state"; return 1 ;;
        esac
        case "$health" in
            healthy) return 0 ;;
            unhealthy) say "container $c reports unhealthy"; return 1 ;;
        esac
        case "$kind" in
            CMD) dk exec "$c" "${cmd[@]}" >/dev/null 2>&1 </dev/null && return 0 ;;
            CMD-SHELL) dk exec "$c" sh -c "${cmd[0]}" >/dev/null 2>&1 </dev/null && return 0 ;;
            *) sleep 2; container_running "$c" && return 0 ;;
        esac
        sleep 2
    done
    say "container $c did not become healthy within ${timeout}s"
    if [ "$kind" = CMD ]; then dk exec "$c" "${cmd[@]}" </dev/null >&2 2>&1 || true; fi
    return 1
}

pull_image() {
    local image=$1
    say "pulling $image"
    if ! dk pull -q "$image" >/dev/null </dev/null; then
        dk image inspect "$image" >/dev/null 2>&1 </dev/null ||
            err "cannot pull $image and no local copy exists (registry credentials? see --registry-user)"
        say "warning: pull of $image failed; using the local copy"
    fi
}

image_id() { dk image inspect -f '{{.Id}}' "$1" </dev/null; }

update_runtime() {
    local runtime=$1 image=$2 timeout next new_id cur_id="" cur_spec="" spec
    timeout=${FLAGEEMONITOR_HEALTH_TIMEOUT:-$(cfg FLAGEEMONITOR_HEALTH_TIMEOUT 120)}
    next="$runtime-next"
    pull_image "$image"
    new_id=$(image_id "$image")
    runtime_args "$runtime" "$runtime"
    spec=$(spec_of "${RUN_ARGS[@]:2}" "$image" "$(env_file_hash)")
    if container_exists "$next"; then
        say "removing $next left over from an interrupted update"
        dk rm -f "$next" >/dev/null </dev/null
    fi
    if container_exists "$runtime"; then
        cur_id=$(dk inspect -f '{{.Image}}' "$runtime" </dev/null)
        cur_spec=$(dk inspect -f '{{index .Config.Labels "io.flageemonitor.spec"}}' "$runtime" </dev/null)
    else
        say "starting $runtime (${new_id#sha256:} )"
        dk run "${RUN_ARGS[@]}" --label "io.flageemonitor.spec=$spec" "$image" >/dev/null </dev/null
        if ! wait_healthy "$runtime" "$timeout"; then
            say "last lines of $runtime:"
            dk logs --tail 20 "$runtime" </dev/null >&2 2>&1 || true
            say "error: $runtime is not healthy; see: flageemonitor-logs --tail 100"
            UPDATE_RC=1
            return 0
        fi
        say "$runtime is running and healthy"
        return 0
    fi
    if [ "$cur_id" = "$new_id" ] && [ "$cur_spec" = "$spec" ]; then
        ensure_started "$runtime" "image unchanged"
        say "runtime unchanged (image ${new_id#sha256:})"
        return 0
    fi
    if [ "$cur_id" = "$new_id" ]; then
        say "runtime settings changed: replacing $runtime"
    else
        say "new image ${new_id#sha256:} (running ${cur_id#sha256:}): starting it as $next"
    fi
    runtime_args "$next" "$runtime"
    dk run "${RUN_ARGS[@]}" --label "io.flageemonitor.spec=$spec" "$image" >/dev/null </dev/null
    if wait_healthy "$next" "$timeout"; then
        dk stop -t 30 "$runtime" >/dev/null </dev/null || true
        dk rm -f "$runtime" >/dev/null </dev/null
        dk rename "$next" "$runtime" </dev/null
        say "$runtime now runs image ${new_id#sha256:}"
        return 0
    fi
    say "last lines of the new container:"
    dk logs --tail 20 "$next" </dev/null >&2 2>&1 || true
    dk rm -f "$next" >/dev/null </dev/null
    if [ "$cur_id" != "$new_id" ]; then
        # keep the tag on the image that runs, so the host stays consistent
        dk tag "$cur_id" "$image" </dev/null || true
    fi
    container_running "$runtime" || dk start "$runtime" >/dev/null </dev/null || true
    ROLLED_BACK=1
    UPDATE_RC=2
    say "ROLLED BACK: the new image never became healthy; $runtime keeps running image ${cur_id#sha256:}"
    return 0
}

# ---- Watchtower ------------------------------------------------------------------------------

ensure_watchtower() {
    local runtime=$1 wt image interval socket regdir tz spec wt_id cur_spec cur_id
    wt="$runtime-watchtower"
    image=$(cfg FLAGEEMONITOR_WATCHTOWER_IMAGE nickfedor/watchtower:1.20.2)
    interval=$(cfg FLAGEEMONITOR_WATCHTOWER_INTERVAL 300)
    [[ $interval =~ ^[0-9]+$ ]] || err "FLAGEEMONITOR_WATCHTOWER_INTERVAL must be a number of seconds, not '$interval'"
    socket=$(cfg FLAGEEMONITOR_DOCKER_SOCKET /var/run/docker.sock)
    regdir=$(cfg FLAGEEMONITOR_REGISTRY_CONFIG_DIR)
    tz=$(cfg TZ)
    pull_image "$image"
    wt_id=$(image_id "$image")
    WT_ARGS=(--detach --name "$wt" --restart unless-stopped
        -v "$socket:/var/run/docker.sock"
        --label io.flageemonitor.role=watchtower
        --label "io.flageemonitor.runtime=$runtime"
        --label "com.centurylinklabs.watchtower.scope=$runtime"
        --label com.centurylinklabs.watchtower.enable=false)
    if [ -n "$tz" ]; then WT_ARGS+=(-e "TZ=$tz"); fi
    if [ -n "$regdir" ] && [ -f "$regdir/config.json" ]; then
        # a directory mount: a refreshed config.json is seen without recreating the container
        WT_ARGS+=(-v "$regdir:/flageemonitor-registry:ro" -e DOCKER_CONFIG=/flageemonitor-registry)
    fi
    WT_ARGS+=("$image" --cleanup --label-enable --scope "$runtime" --interval "$interval")
    spec=$(spec_of "${WT_ARGS[@]}" "$wt_id")
    if container_exists "$wt"; then
        cur_spec=$(dk inspect -f '{{index .Config.Labels "io.flageemonitor.spec"}}' "$wt" </dev/null)
        cur_id=$(dk inspect -f '{{.Image}}' "$wt" </dev/null)
        if [ "$cur_spec" = "$spec" ] && [ "$cur_id" = "$wt_id" ]; then
            ensure_started "$wt"
            say "$wt present and up to date"
            return 0
        fi
        say "replacing $wt (image or settings changed)"
        dk rm -f "$wt" >/dev/null </dev/null
    else
        say "starting $wt"
    fi
    dk run --label "io.flageemonitor.spec=$spec" "${WT_ARGS[@]}" >/dev/null </dev/null
}

# ---- commands --------------------------------------------------------------------------------

cmd_update_image() {
    local runtime image
    runtime=$(runtime_name)
    image=$(cfg FLAGEEMONITOR_IMAGE)
    [ -n "$image" ] || err "FLAGEEMONITOR_IMAGE is not set in $ENV_FILE"
    ROLLED_BACK=0
    UPDATE_RC=0
    update_runtime "$runtime" "$image"
    ensure_watchtower "$runtime"
    if [ "$ROLLED_BACK" = 1 ]; then
        # Watchtower would deploy the same broken image at its next poll without a health gate.
        dk stop "$runtime-watchtower" >/dev/null </dev/null || true
        say "Watchtower ($runtime-watchtower) is stopped so it does not deploy that image;"
        say "publish a fixed image, then run flageemonitor-update-image again."
    fi
    return "$UPDATE_RC"
}

cmd_update_config() {
    local runtime image state_dir host_state network args=()
    runtime=$(runtime_name)
    if container_running "$runtime"; then
        local rc=0
        dk exec "$runtime" flageemonitor update-config "$@" </dev/null || rc=$?
        # the daemon re-reads its config file on SIGHUP (tini forwards it)
        if [ "$rc" = 0 ]; then dk kill --signal HUP "$runtime" >/dev/null </dev/null || true; fi
        return "$rc"
    fi
    # not running (or not created yet): a one-shot container on the same state directory
    if container_exists "$runtime"; then
        image=$(dk inspect -f '{{.Config.Image}}' "$runtime" </dev/null)
    else
        image=$(cfg FLAGEEMONITOR_IMAGE)
        [ -n "$image" ] || err "FLAGEEMONITOR_IMAGE is not set in $ENV_FILE"
        dk image inspect "$image" >/dev/null 2>&1 </dev/null || pull_image "$image"
    fi
    state_dir=$(cfg FLAGEEMONITOR_STATE_DIR "$(cfg FLAGEEMONITOR_CONTAINER_ROOT /flageemonitor)/state")
    host_state=$(cfg FLAGEEMONITOR_HOST_STATE_DIR /var/lib/flageemonitor)
    network=$(cfg FLAGEEMONITOR_DOCKER_NETWORK)
    args=(run --rm --env-file "$ENV_FILE" -e "FLAGEEMONITOR_RUNTIME_NAME=$runtime"
        -e "FLAGEEMONITOR_STATE_DIR=$state_dir" -v "$host_state:$state_dir")
    if [ -n "$network" ]; then args+=(--network "$network"); fi
    say "$runtime is not running: refreshing the config with a one-shot container"
    exec docker "${DOCKER_CONFIG_ARGS[@]}" "${args[@]}" "$image" update-config "$@"
}

cmd_run() {
    local runtime tty=()
    if [ "$#" -eq 0 ]; then
        say "usage: flageemonitor-run <action> [options]    e.g. flageemonitor-run diagnose_env --loja 1"
        exit 1
    fi
    runtime=$(runtime_name)
    require_runtime "$runtime"
    container_running "$runtime" || err "$runtime is not running: start it with flageemonitor-update-image"
    if [ -t 0 ] && [ -t 1 ]; then tty=(-it); fi
    exec docker "${DOCKER_CONFIG_ARGS[@]}" exec "${tty[@]}" "$runtime" flageemonitor run "$@"
}

cmd_logs() {
    local target=$1
    shift
    [ "$#" -gt 0 ] || set -- --tail 100 -f
    exec docker "${DOCKER_CONFIG_ARGS[@]}" logs "$@" "$target"
}

main() {
    case "$PROG" in
        flageemonitor-update-image | flageemonitor-update-config | flageemonitor-run | flageemonitor-logs | \
            flageemonitor-watchtower-logs) ;;
        *) err "unknown command name '$PROG' (install this file as flageemonitor-update-config, -update-image, -run, -logs or -watchtower-logs)" ;;
    esac
    load_env_file
    setup_docker
    case "$PROG" in
        flageemonitor-update-image) cmd_update_image ;;
        flageemonitor-update-config) cmd_update_config "$@" ;;
        flageemonitor-run) cmd_run "$@" ;;
        flageemonitor-logs)
            local runtime
            runtime=$(runtime_name)
            require_runtime "$runtime"
            cmd_logs "$runtime" "$@"
            ;;
        flageemonitor-watchtower-logs)
            local runtime
            runtime=$(runtime_name)
            container_exists "$runtime-watchtower" ||
                err "Watchtower ($runtime-watchtower) is missing: run flageemonitor-update-image (or re-run the installer)"
            cmd_logs "$runtime-watchtower" "$@"
            ;;
    esac
}

main "$@"
