#!/usr/bin/env bash
# Load test of the cloud API with wrk (Debian package `wrk`): a throwaway PostgreSQL 15, a release
# vigil-cloud, seeded data, then requests/s and latency percentiles for camera list, event query,
# token-validated reads and login. Prints wrk's reports; changes nothing outside a temp directory.
#
#   cargo build --release -p cloud-api --bin vigil-cloud && bash cloud/bench/api_load.sh
#
# Env: DURATION (default 10s), CONNECTIONS (default 32), THREADS (default 2), EVENTS (default 100000).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${VIGIL_CLOUD_BIN:-$ROOT/target/release/vigil-cloud}
PG_BIN=${VIGIL_PG_BIN:-/usr/lib/postgresql/15/bin}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
EVENTS=${EVENTS:-100000}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
[ -x "$BIN" ] || { echo "$BIN is missing: cargo build --release -p cloud-api --bin vigil-cloud" >&2; exit 1; }

DIR=$(mktemp -d /tmp/vigil-bench-XXXXXX)
PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
APIPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
AS_PG=()
if [ "$(id -u)" = 0 ]; then chown postgres "$DIR"; AS_PG=(runuser -u postgres --); fi
SERVER_PID=
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$DIR/data" stop -m immediate >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT

"${AS_PG[@]}" "$PG_BIN/initdb" -D "$DIR/data" --auth=trust -U postgres >/dev/null
"${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$DIR/data" -l "$DIR/pg.log" -w \
  -o "-p $PGPORT -k $DIR -c listen_addresses=127.0.0.1 -c max_connections=100" start >/dev/null
export VIGIL_DATABASE_URL="postgres://postgres@127.0.0.1:$PGPORT/postgres"

PROVISIONED=$("$BIN" provision --tenant Bench --site HQ --edge e1 2>/dev/null)
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])$2)" "$1"; }
API_KEY=$(field "$PROVISIONED" "['api_key']")
TENANT=$(field "$PROVISIONED" "['tenant_id']")
SITE=$(field "$PROVISIONED" "['site_id']")
EDGE=$(field "$PROVISIONED" "['edge_id']")
VIGIL_USER_PASSWORD='bench password 123' "$BIN" create-user --tenant Bench --email admin@bench.test >/dev/null 2>&1

# Events over the last 24 h, inserted directly (ingest has its own benchmark on the edge side).
psql() { "$PG_BIN/psql" -q -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres "$@"; }
psql -c "INSERT INTO events (id, tenant_id, site_id, edge_id, zone, source_kind, source_id, kind, occurred_at, payload)
  SELECT gen_random_uuid(), '$TENANT', '$SITE', '$EDGE', 'lobby', 'camera', 'cam-' || (i % 8),
         CASE WHEN i % 10 = 0 THEN 'access.denied' ELSE 'detection.person' END,
         now() - (i || ' seconds')::interval * (86400.0 / $EVENTS),
         '{\"type\":\"detection\",\"model\":\"yolov8n\",\"objects\":[]}'::jsonb
  FROM generate_series(1, $EVENTS) AS i; ANALYZE events;"

"$BIN" serve --listen "127.0.0.1:$APIPORT" --auth-rate-per-minute 100000000 >"$DIR/cloud.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$APIPORT/health" >/dev/null && break; sleep 0.1; done
URL="http://127.0.0.1:$APIPORT"
login() { curl -fs -H 'Content-Type: application/json' -d '{"email":"admin@bench.test","password":"bench password 123"}' "$URL/api/auth/login"; }
TOKEN=$(field "$(login)" "['data']['access_token']")
for i in $(seq 1 50); do
  curl -fs -o /dev/null -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d "{\"site_id\":\"$SITE\",\"name\":\"cam-$i\",\"stream_url\":\"rtsp://10.0.0.$i/s1\"}" "$URL/api/cameras"
done

run() {
  local name=$1; shift
  echo "== $name"
  wrk -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" --latency "$@" | grep -E 'Requests/sec|Non-2xx|50%|90%|99%|requests in'
}
run "GET /api/cameras (50 cameras, JWT)" -H "Authorization: Bearer $TOKEN" "$URL/api/cameras"
run "GET /api/events?limit=100 (JWT)" -H "Authorization: Bearer $TOKEN" "$URL/api/events?limit=100"
run "GET /api/events?kind=access.denied&limit=50 (API key)" -H "Authorization: Bearer $API_KEY" "$URL/api/events?kind=access.denied&limit=50"
run "GET /api/auth/me (token-validated read)" -H "Authorization: Bearer $TOKEN" "$URL/api/auth/me"
cat >"$DIR/login.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"admin@bench.test","password":"bench password 123"}'
LUA
run "POST /api/auth/login (Argon2id m=19MiB t=2)" -s "$DIR/login.lua" "$URL/api/auth/login"
