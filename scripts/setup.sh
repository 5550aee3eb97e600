#!/usr/bin/env bash
# Sets up everything sonar needs on a fresh machine; idempotent, and a no-op (seconds) when already done.
#
#   bash scripts/setup.sh          # .venv with the package, training and Space extras, plus Debian's ffmpeg
#   bash scripts/setup.sh --dev    # the same plus the test tools and Debian's chromium for browser tests
#
# torch is pinned to 2.14.1 with torchaudio 2.11 and torchcodec 0.17: the combination that works together
# here (torch 2.13 does not load torchaudio 2.11). torchcodec decodes through FFmpeg's shared libraries,
# which is why ffmpeg comes from Debian.
set -euo pipefail
cd "$(dirname "$0")/.."

DEV=0
[[ "${1:-}" == "--dev" ]] && DEV=1

apt_packages=()
command -v ffmpeg >/dev/null || apt_packages+=(ffmpeg)
[[ $DEV == 1 ]] && ! command -v chromium >/dev/null && apt_packages+=(chromium)
if (( ${#apt_packages[@]} )); then
    if [[ $(id -u) == 0 ]]; then
        echo "setup: installing Debian packages: ${apt_packages[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_packages[@]}" >/dev/null
    else
        echo "setup: please install these Debian packages (needs root): ${apt_packages[*]}" >&2
        exit 1
    fi
fi

PYTHON=${PYTHON:-python3}
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv

extras="train,space"
[[ $DEV == 1 ]] && extras="dev"
stamp=".venv/.sonar-setup-$extras"
want=$(cat setup.cfg pyproject.toml | sha256sum | cut -c1-16)
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    echo "setup: installing python packages into .venv (extras: $extras)"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q "torch==2.14.1" "torchaudio==2.11.*" "torchcodec==0.17.*"
    .venv/bin/python -m pip install -q -e ".[$extras]"
    echo "$want" > "$stamp"
fi
