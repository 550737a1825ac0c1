#!/usr/bin/env bash
# Linux and macOS: sets up the course, as `python3 scripts/setup.py` does (Windows: `py scripts\setup.py`).
# Python packages only, into .venv: no root, no system package. `--tests` also looks for a browser for the
# browser tests (installing Debian's chromium only as root on a machine with apt-get, as on CI).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "setup: '$PYTHON' not found: install Python 3.10 or newer, or set PYTHON=/path/to/python3" >&2
  exit 1
fi
exec "$PYTHON" scripts/setup.py "$@"
