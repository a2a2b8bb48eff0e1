#!/usr/bin/env bash
# Installs what is missing, then starts the kiosk on the default exhibit (arguments go to `kiosk`).
# `kiosk prepare` reads the same --config, so its last line says how to set the technician PIN when
# none is set (without one the ops panel shows figures only: no exit, reload or self-test).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
venv="${DOCENT_VENV:-.venv}"
config=()
args=("$@")
for i in "${!args[@]}"; do
    case "${args[$i]}" in
        --config) config=(--config "${args[$((i + 1))]:-}") ;;
        --config=*) config=(--config "${args[$i]#--config=}") ;;
    esac
done
"$venv/bin/kiosk" prepare "${config[@]}"
exec "$venv/bin/kiosk" "$@"
