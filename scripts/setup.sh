#!/usr/bin/env bash
# Install everything the project needs on a Debian machine, idempotently:
# the Debian packages listed in .ci/apt-packages.txt, uv, and the locked Python environment.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

say() { printf 'setup: %s\n' "$*"; }

install_apt_packages() {
    local wanted=() missing=() pkg
    while IFS= read -r pkg; do
        pkg=${pkg%%#*}
        pkg=${pkg//[[:space:]]/}
        [ -n "$pkg" ] && wanted+=("$pkg")
    done < .ci/apt-packages.txt
    for pkg in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && { say "Debian packages present"; return 0; }
    if [ "$(id -u)" -ne 0 ]; then
        say "missing Debian packages: ${missing[*]} (run this script as root to install them)"
        return 1
    fi
    say "installing Debian packages: ${missing[*]}"
    local made_policy=0
    # keep maintainer scripts from starting services (no init system in containers and CI)
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        made_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || apt-get update -qq
    apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null
    [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
    return 0
}

install_uv() {
    command -v uv >/dev/null 2>&1 && return 0
    say "installing uv"
    python3 -m pip install -q --disable-pip-version-check uv
}

install_apt_packages
install_uv
uv sync --frozen --quiet
say "ready ($(uv run --frozen python -c 'import flageemonitor; print("flageemonitor", flageemonitor.__version__)'))"
