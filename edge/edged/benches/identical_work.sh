#!/usr/bin/env bash
# "Identical work" side by side (issue #3): the seed's stack (Python + OpenCV + onnxruntime 1.23)
# and Vigil's analysis step (Rust, `cargo bench -p edged --bench analysis`) on every frame of the
# same footage, same model, same input size and threads, alternating runs (2-thread speed drifts
# on shared machines, so only adjacent runs are compared). Printed, not asserted.
#
#   bash edge/edged/benches/identical_work.sh [rounds]     (needs tests/setup/fixtures.sh first)
#
# Env as the Rust bench: VIGIL_BENCH_FRAMES (300), VIGIL_BENCH_SIZES (320), VIGIL_BENCH_THREADS (1,2).
set -euo pipefail
cd "$(dirname "$0")/../../.."
rounds="${1:-3}"
export VIGIL_FIXTURES="${VIGIL_FIXTURES:-$PWD/.fixtures}"
export VIGIL_BENCH_SIZES="${VIGIL_BENCH_SIZES:-320}" VIGIL_BENCH_THREADS="${VIGIL_BENCH_THREADS:-1,2}"
venv="$VIGIL_FIXTURES/seed-venv"
if [ ! -x "$venv/bin/python" ]; then
  PY=python3; [ -x /usr/bin/python3 ] && PY=/usr/bin/python3
  "$PY" -m venv "$venv" 2>/dev/null || { apt-get install -y -qq python3-venv >/dev/null; "$PY" -m venv "$venv"; }
  "$venv/bin/pip" install -q "onnxruntime==1.23.2" "opencv-python-headless==4.10.0.84" "numpy<2.3"
fi
video=/usr/share/doc/opencv-doc/examples/data/vtest.avi
[ -f "$video" ] || video="$VIGIL_FIXTURES/vtest.mp4"
cargo bench -p edged --bench analysis --no-run -q 2>/dev/null
for r in $(seq 1 "$rounds"); do
  echo "## round $r: seed stack"
  "$venv/bin/python" edge/edged/benches/seed_stack.py "$video"
  echo "## round $r: Vigil"
  cargo bench -p edged --bench analysis -q 2>/dev/null | grep -v '^$'
done
