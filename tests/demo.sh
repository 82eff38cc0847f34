#!/usr/bin/env bash
# The README's demo command: a whole site on this machine.
#   PostgreSQL (local cluster in .demo/pg) → vigil-cloud (http://127.0.0.1:8080)
#   vigil-rtsp-camera playing real CCTV footage (rtsp://127.0.0.1:8554/cam)
#   vigil-edge analysing it with the bundled person detector (BlazePose, Apache-2.0) behind motion
#   gating, counting people across a line, recording clips and snapshots, running the seed's two
#   automation rules, and uploading events; its embedded MQTT
#   broker (127.0.0.1:1883) serves simulated door devices (vigil-devsim): a lock, a badge reader that
#   swipes alice's badge every 20 s (the door opens) and bob's revoked badge every 10 s (refused),
#   temperature sensors (one at 31.5 °C once a minute: the "Temperature Alert" rule fires) and an AC.
# Ctrl-C stops everything. Ports can be changed with the variables below.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CLOUD_PORT=${CLOUD_PORT:-8080}
CAMERA_PORT=${CAMERA_PORT:-8554}
STATUS_PORT=${STATUS_PORT:-8091}
MQTT_PORT=${MQTT_PORT:-1883}
PG_PORT=${PG_PORT:-55432}
DEMO=$ROOT/.demo
FIX=${VIGIL_FIXTURES:-$ROOT/.fixtures}

bash tests/setup/deps.sh
bash tests/setup/fixtures.sh
cargo build --workspace --bins --locked
BIN=$ROOT/target/debug

mkdir -p "$DEMO"
PGBIN=/usr/lib/postgresql/15/bin
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ ! -f "$DEMO/pg/PG_VERSION" ]; then
  mkdir -p "$DEMO/pg"
  [ "$(id -u)" -eq 0 ] && chown postgres "$DEMO/pg"
  chmod 700 "$DEMO/pg"
  as_pg "$PGBIN/initdb" -D "$DEMO/pg" -U postgres --auth=trust >/dev/null
fi
[ "$(id -u)" -eq 0 ] && chown -R postgres "$DEMO/pg"
as_pg "$PGBIN/pg_ctl" -D "$DEMO/pg" -l "$DEMO/pg/server.log" -w \
  -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$DEMO/pg" start >/dev/null
PIDS=()
cleanup() {
  trap - EXIT INT TERM
  echo; echo "demo: stopping"
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  as_pg "$PGBIN/pg_ctl" -D "$DEMO/pg" -m fast stop >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM
psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='vigil'" | grep -q 1 \
  || psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE vigil"
export VIGIL_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/vigil"

"$BIN/vigil-cloud" migrate
IDS=$("$BIN/vigil-cloud" provision --tenant "Demo Org" --site "Demo HQ" --edge "demo-edge")
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$IDS" "$1"; }
TENANT=$(field tenant_id); SITE=$(field site_id); API_KEY=$(field api_key)
field edge_token > "$DEMO/edge.token"; chmod 600 "$DEMO/edge.token"

"$BIN/vigil-cloud" serve --listen "127.0.0.1:$CLOUD_PORT" --media-dir "$DEMO/cloud-media" > "$DEMO/cloud.log" 2>&1 & PIDS+=($!)
"$BIN/vigil-rtsp-camera" --file "$FIX/vtest.mp4" --port "$CAMERA_PORT" --mount /cam > "$DEMO/camera.log" 2>&1 & PIDS+=($!)

# Door devices: each logs in with its own password; the registry holds SHA-256 hashes only.
pw_hash() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
cat > "$DEMO/devices.json" <<JSON
{"site": "hq", "devices": [
  {"id": "reader-1", "zone": "lobby", "kind": "reader", "password_sha256": "$(pw_hash reader-1-demo)"},
  {"id": "lock-1", "zone": "lobby", "kind": "lock", "password_sha256": "$(pw_hash lock-1-demo)"},
  {"id": "temp-1", "zone": "lobby", "kind": "temperature", "password_sha256": "$(pw_hash temp-1-demo)"},
  {"id": "temp-2", "zone": "lobby", "kind": "temperature", "password_sha256": "$(pw_hash temp-2-demo)"},
  {"id": "ac", "zone": "lobby", "kind": "actuator", "password_sha256": "$(pw_hash ac-demo)"}
]}
JSON
cat > "$DEMO/site.toml" <<SITE
schema = 1
revision = 1
issued_at = "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
timezone = "Europe/Paris"
[[schedules]]
id = "always"
windows = [{ start = "00:00", end = "24:00" }]
[[groups]]
id = "staff"
doors = ["front"]
schedule = "always"
[[people]]
id = "alice"
groups = ["staff"]
[[people]]
id = "bob"
groups = ["staff"]
[[credentials]]
id = "c-alice"
person = "alice"
badge = "A1"
[[credentials]]
id = "c-bob"
person = "bob"
badge = "B1"
revoked = true
[[doors]]
id = "front"
zone = "lobby"
reader = "reader-1"
lock = "lock-1"
SITE

cat > "$DEMO/edged.toml" <<TOML
[site]
tenant = "$TENANT"
site = "$SITE"

[cloud]
url = "http://127.0.0.1:$CLOUD_PORT"
token_file = "$DEMO/edge.token"

[spool]
path = "$DEMO/spool"

[status]
listen = "127.0.0.1:$STATUS_PORT"

[detector]
onnxruntime = "$FIX/libonnxruntime.so"
# The bundled person detector (BlazePose's, Apache-2.0), converted at setup by tests/setup/blazepose.py
# and quantized to int8 by tests/setup/blazepose_int8.py (same recall, about twice the speed).
kind = "blazepose"
model = "$FIX/blazepose-person-int8.onnx"
threads = 1
events = "tracks"

[[cameras]]
id = "lobby-cam"
url = "rtsp://127.0.0.1:$CAMERA_PORT/cam"
zone = "lobby"
analyze_fps = 2.0
[[cameras.lines]]
id = "middle"
a = [0.5, 0.0]
b = [0.5, 1.0]
[cameras.record]
enabled = true
preroll_secs = 5

[media]
dir = "$DEMO/media"
clip_pre_secs = 3
clip_post_secs = 5
max_mb = 512

[rules]
file = "$ROOT/edge/rules/rules/seed.toml"

[mqtt]
listen = "127.0.0.1:$MQTT_PORT"
devices = "$DEMO/devices.json"

[access]
site_document = "$DEMO/site.toml"
TOML
"$BIN/vigil-edge" --config "$DEMO/edged.toml" check-config
"$BIN/vigil-edge" --config "$DEMO/edged.toml" > "$DEMO/edge.log" 2>&1 & PIDS+=($!)
for _ in $(seq 60); do curl -sf "http://127.0.0.1:$STATUS_PORT/health" >/dev/null && break; sleep 0.5; done

sim() { # device-id subcommand...
  local id=$1; shift
  RUST_LOG=info VIGIL_DEVICE_PASSWORD="$id-demo" "$BIN/vigil-devsim" --broker "127.0.0.1:$MQTT_PORT" --site hq \
    --zone lobby --id "$id" "$@"
}
sim lock-1 lock > "$DEMO/lock.log" 2>&1 & PIDS+=($!)
sleep 1
sim temp-1 temperature --value 21.5 --every 15 > "$DEMO/temperature.log" 2>&1 & PIDS+=($!)
sim ac lock > "$DEMO/ac.log" 2>&1 & PIDS+=($!)     # the AC obeys commands like a lock does

for _ in $(seq 60); do curl -sf "http://127.0.0.1:$CLOUD_PORT/health" >/dev/null && break; sleep 0.5; done
cat <<MSG

Vigil demo site is running (logs in $DEMO/*.log). Ctrl-C stops it.

  RTSP camera (real CCTV footage):  rtsp://127.0.0.1:$CAMERA_PORT/cam
  Edge status:                      curl -s http://127.0.0.1:$STATUS_PORT/status
  Cloud health:                     curl -s http://127.0.0.1:$CLOUD_PORT/health
  Person detections (cloud API):    curl -s -H 'Authorization: Bearer $API_KEY' 'http://127.0.0.1:$CLOUD_PORT/api/events?kind=detection.person&limit=5'
  Door decisions (cloud API):       curl -s -H 'Authorization: Bearer $API_KEY' 'http://127.0.0.1:$CLOUD_PORT/api/events?kind=access.granted&limit=5'
  The lock carrying out unlocks:    tail -f $DEMO/lock.log
  People counted across the line:   curl -s http://127.0.0.1:$STATUS_PORT/metrics | grep line_crossings
  Rule history (Temperature Alert): curl -s http://127.0.0.1:$STATUS_PORT/rules/history
  Clips and snapshots:              ls $DEMO/media/clips/lobby-cam $DEMO/media/snapshots/lobby-cam

MSG
count() {
  curl -s -H "Authorization: Bearer $API_KEY" "http://127.0.0.1:$CLOUD_PORT/api/events?kind=$1&limit=1000" \
    | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["items"]))' 2>/dev/null || echo "?"
}
tick=0
while sleep 10; do
  tick=$((tick + 1))
  # One reader, one connection at a time: alice every 20 s (the door opens), bob's revoked badge every 10 s.
  if [ $((tick % 2)) -eq 1 ]; then sim reader-1 reader --badge A1 >> "$DEMO/reader.log" 2>&1 || true; fi
  sim reader-1 reader --badge B1 >> "$DEMO/reader.log" 2>&1 || true
  # A second sensor over 30 °C once a minute: "Temperature Alert" alerts facilities and turns the AC on.
  if [ $((tick % 6)) -eq 0 ]; then sim temp-2 temperature --value 31.5 >> "$DEMO/temperature.log" 2>&1 || true; fi
  unlocks=$(grep -c "Command carried out" "$DEMO/lock.log" || true)
  acs=$(grep -c "Command carried out" "$DEMO/ac.log" || true)
  echo "demo: cloud has $(count detection.person) people, $(count line.crossed) line crossings," \
    "$(count access.granted) granted and $(count access.denied) denied door decisions, $(count alert.triggered) alerts;" \
    "the lock carried out $unlocks unlocks, the AC $acs commands"
done
