#!/usr/bin/env bash
# Sets up the course on a fresh machine: a virtual environment with the pinned requirements, the course
# package, Jupyter allowed to run as root (as on CI machines), and Debian's chromium for the browser tests.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements.txt
.venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
# Jupyter refuses to start as root unless told (tooling notes §5.1); this config lives inside the venv only.
mkdir -p .venv/etc/jupyter
echo '{"ServerApp": {"allow_root": true}}' > .venv/etc/jupyter/jupyter_server_config.json
if [ -f scripts/install_chromium.sh ]; then
  bash scripts/install_chromium.sh
fi
echo "setup done: $(.venv/bin/python -c 'import torch, transformers; print("torch", torch.__version__, "| transformers", transformers.__version__, "| CUDA", torch.cuda.is_available())')"
