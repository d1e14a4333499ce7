#!/bin/sh
# Compatibility shim: validated, atomic config refresh = `flageemonitor update-config`.
set -eu
exec flageemonitor update-config "$@"
