#!/usr/bin/env bash
# Installs what is missing, then starts the kiosk on the default exhibit (arguments go to `kiosk`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
venv="${DOCENT_VENV:-.venv}"
"$venv/bin/kiosk" prepare
exec "$venv/bin/kiosk" "$@"
