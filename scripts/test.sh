#!/usr/bin/env bash
# Installs what is missing (test tools, Xvfb, Prometheus included), then runs the linter and the tests.
# DOCENT_PYTHON / DOCENT_VENV choose the interpreter and the environment, as for scripts/install.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --test
venv="${DOCENT_VENV:-.venv}"
export QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export DOCENT_TEST_CACHE="${DOCENT_TEST_CACHE:-$PWD/$venv/test-cache}"
"$venv/bin/ruff" check .
exec "$venv/bin/python" -m pytest -p no:cacheprovider "$@"
