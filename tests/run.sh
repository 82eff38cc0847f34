#!/usr/bin/env bash
# The README's test command: installs what is missing, fetches the fixtures, builds, and runs every
# test (unit, integration against real PostgreSQL, and end-to-end across real processes).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/setup/deps.sh
bash tests/setup/fixtures.sh

# The end-to-end tests start these binaries as processes.
cargo build --workspace --bins --locked
cargo nextest run --workspace --locked --no-fail-fast "$@"
