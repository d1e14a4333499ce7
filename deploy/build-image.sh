#!/usr/bin/env bash
# Build the proxy image from this checkout: stage a small context (the wheel, the locked
# runtime dependencies, deploy/image/) and run the engine's build on it.
#
#   deploy/build-image.sh --tag REF [--base IMAGE] [--version V] [--engine podman|docker]
#                         [--push] [--network MODE] [--ca-bundle FILE] [--context-dir DIR] [--protect]
#
# --protect builds the runtime protected by PyArmor (what deploy/publish.py publishes, after its
# checks); without it the image keeps plain sources, for development.
# The build installs dependencies from PyPI; with podman on a host without a bridge use
# `--network host`. Behind a TLS-inspecting proxy give its CA with --ca-bundle (default:
# $PIP_CERT, else $SSL_CERT_FILE), used for that step only.
set -euo pipefail

# Distributions only the control plane (flageemonitor.server) needs.
SERVER_ONLY="sqlalchemy alembic fastapi uvicorn httptools uvloop prometheus-client"

say() { printf 'build-image: %s\n' "$*" >&2; }
err() { say "error: $*"; exit 1; }

usage() {
    sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

main() {
    local root tag="" base="" version="" engine="" push=0 network="" context="" keep_context=0 protect=0
    local ca_bundle=${PIP_CERT:-${SSL_CERT_FILE:-}}
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    while [ "$#" -gt 0 ]; do
        case "$1" in
            --tag) tag=${2:?--tag needs a value}; shift 2 ;;
            --base) base=${2:?--base needs a value}; shift 2 ;;
            --version) version=${2:?--version needs a value}; shift 2 ;;
            --engine) engine=${2:?--engine needs a value}; shift 2 ;;
            --network) network=${2:?--network needs a value}; shift 2 ;;
            --context-dir) context=${2:?--context-dir needs a value}; keep_context=1; shift 2 ;;
            --ca-bundle) ca_bundle=${2:?--ca-bundle needs a value}; shift 2 ;;
            --push) push=1; shift ;;
            --protect) protect=1; shift ;;
            -h|--help) usage; return 0 ;;
            *) usage >&2; err "unknown option: $1" ;;
        esac
    done
    [ -n "$tag" ] || { usage >&2; err "--tag is required"; }
    if [ -z "$engine" ]; then
        if command -v podman >/dev/null 2>&1; then engine=podman; else engine=docker; fi
    fi
    command -v "$engine" >/dev/null 2>&1 || err "$engine not found"
    command -v uv >/dev/null 2>&1 || err "uv not found (scripts/setup.sh installs it)"

    if [ -z "$version" ]; then
        version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/pyproject.toml" | head -n 1)
    fi
    local revision
    revision=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)

    if [ -z "$context" ]; then
        context=$(mktemp -d "${TMPDIR:-/tmp}/flageemonitor-image.XXXXXX")
    fi
    # shellcheck disable=SC2064  # expand now: the path is fixed
    [ "$keep_context" = 1 ] || trap "rm -rf '$context'" EXIT
    mkdir -p "$context/dist"
    rm -f "$context"/dist/*.whl
    say "staging context in $context"
    (cd "$root" && uv build --quiet --wheel --out-dir "$context/dist" >/dev/null)
    # the proxy image leaves out what only the control plane uses (tests/deploy checks that no
    # module outside flageemonitor.server imports these)
    local prune=() package
    for package in $SERVER_ONLY; do prune+=(--prune "$package"); done
    (cd "$root" && uv export --quiet --frozen --no-dev --no-emit-project --no-header "${prune[@]}" \
        --format requirements-txt > "$context/requirements.lock")
    rm -rf "$context/image"
    cp -a "$root/deploy/image" "$context/image"
    # also keeps old buildah (podman 4.3) from reusing LABEL/ENV layers built with other --build-arg values
    printf 'version=%s\nrevision=%s\n' "$version" "$revision" >"$context/image/BUILD_INFO"
    cp "$root/deploy/Dockerfile" "$context/Dockerfile"
    rm -rf "$context/build-ca"
    mkdir -p "$context/build-ca"
    if [ -n "$ca_bundle" ]; then
        [ -r "$ca_bundle" ] || err "CA bundle not readable: $ca_bundle"
        cp "$ca_bundle" "$context/build-ca/ca.crt"
    fi

    local build=("$engine" build -f "$context/Dockerfile" -t "$tag"
        --build-arg "VERSION=$version" --build-arg "REVISION=$revision" --build-arg "PROTECT=$protect")
    [ -n "$base" ] && build+=(--build-arg "BASE_IMAGE=$base")
    [ -n "$network" ] && build+=(--network "$network")
    # podman writes OCI images by default, which drop HEALTHCHECK
    [ "$engine" = podman ] && build+=(--format docker)
    say "building $tag (version $version, revision ${revision:0:12}) with $engine"
    "${build[@]}" "$context" >&2
    if [ "$push" = 1 ]; then
        say "pushing $tag"
        "$engine" push "$tag" >&2
    fi
    printf '%s\n' "$tag"
}

main "$@"
