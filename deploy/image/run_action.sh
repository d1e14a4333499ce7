#!/bin/sh
# Compatibility shim: `run_action.sh <action> [args]` = `flageemonitor run <action> [args]`.
set -eu
if [ "$#" -eq 0 ]; then
    echo "usage: run_action.sh <action> [options]   (see: flageemonitor actions)" >&2
    exit 1
fi
exec flageemonitor run "$@"
