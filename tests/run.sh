#!/usr/bin/env bash
# The README's test command: installs what is missing, fetches the fixtures, builds, and runs every
# test (unit, integration against real PostgreSQL, and end-to-end across real processes).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/setup/deps.sh
bash tests/setup/fixtures.sh

# The end-to-end tests start these binaries as processes.
cargo build --workspace --bins --locked

# No Docker engine here: validate the compose file against the binaries it runs.
PY=python3; [ -x /usr/bin/python3 ] && PY=/usr/bin/python3
"$PY" tests/setup/check-compose.py

cargo nextest run --workspace --locked --no-fail-fast "$@"
