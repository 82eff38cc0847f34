#!/usr/bin/env python3
"""Quantizes the bundled person detector to int8: $VIGIL_FIXTURES/blazepose-person-int8.onnx.

Input: blazepose-person.onnx (made by blazepose.py) and vtest.mp4 (made by fixtures.sh). Run with the
converter's virtualenv ($VIGIL_FIXTURES/.convert-venv: onnx, onnxruntime, OpenCV, numpy, all from PyPI).

- ONNX Runtime static quantization, QDQ format: int8 weights per output channel and uint8 activations.
  The activation ranges come from MinMax calibration.
- Calibration data: 192 px tiles (stride 128, resized to 224, [-1, 1]) of every 20th vtest frame from
  frame 10 (800 tiles). None of the hand-labelled recall frames (100, 200, 300, 400, 500, 700) is used.
- The six output heads, and everything from them to the outputs, stay float. Quantizing the logits'
  reshape and concat squeezes the scores, so most anchors pass the 0.5 threshold.
- The model is first raised from opset 11 to 13, since per-channel DequantizeLinear needs `axis`.
- Weights use 7 bits (`reduce_range`). x86 CPUs without VNNI (AVX2, or AVX-512 without VNNI) multiply
  uint8 activations by int8 weights in pairs summed into int16, which saturates with full-range weights.
  Measured with full 8-bit weights, on this machine's AVX2 path (`qemu-x86_64 -cpu EPYC-Milan`), recall on
  the labelled frames fell from 28/35 to 21/35, and region tiles from 23/35 to 17/35. With 7 bits:
  28/35 and 23/35 on both paths, at the same speed (5.65 ms per tile, 1 thread, VNNI).

Measured here (see tests/setup/BLAZEPOSE.md): about 2× faster per tile than fp32 with one thread, with
the same recall on the labelled frames. Idempotent: rebuilt only when the fp32 model or this script
changes. `--force` always rebuilds.
"""
import hashlib
import os
import sys

import cv2
import numpy as np
import onnx
from onnx import version_converter
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

FIX = os.path.abspath(os.environ.get("VIGIL_FIXTURES", os.path.join(os.path.dirname(__file__), "..", "..", ".fixtures")))
SRC = os.path.join(FIX, "blazepose-person.onnx")
VIDEO = os.path.join(FIX, "vtest.mp4")
OUT = os.path.join(FIX, "blazepose-person-int8.onnx")
STAMP = OUT + ".stamp"
LABELLED = {100, 200, 300, 400, 500, 700}


def step(msg):
    print("blazepose_int8: " + msg, flush=True)


def digest(*paths):
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def calibration_tiles():
    cap = cv2.VideoCapture(VIDEO)
    tiles, i = [], 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if i % 20 == 10 and i not in LABELLED:
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            h, w = rgb.shape[:2]
            for y in range(0, h - 192 + 1, 128):
                for x in range(0, w - 192 + 1, 128):
                    t = cv2.resize(rgb[y:y + 192, x:x + 192], (224, 224), interpolation=cv2.INTER_LINEAR)
                    tiles.append((t.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None])
        i += 1
    if not tiles:
        sys.exit("blazepose_int8: ERROR: no frames decoded from %s" % VIDEO)
    return tiles


class Tiles(CalibrationDataReader):
    def __init__(self, tiles):
        self.it = iter(tiles)

    def get_next(self):
        t = next(self.it, None)
        return None if t is None else {"input_1": t}


def float_nodes(graph):
    """The output heads (convs feeding a reshape) and every node downstream of them."""
    consumers = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    todo = [n for n in graph.node
            if n.op_type == "Conv" and any(c.op_type in ("Reshape", "Transpose") for c in consumers.get(n.output[0], []))]
    keep = {n.name for n in todo}
    while todo:
        n = todo.pop()
        for o in n.output:
            for c in consumers.get(o, []):
                if c.name not in keep:
                    keep.add(c.name)
                    todo.append(c)
    return sorted(keep)


def main():
    for p in (SRC, VIDEO):
        if not os.path.exists(p):
            sys.exit("blazepose_int8: ERROR: missing %s (run tests/setup/fixtures.sh)" % p)
    want = digest(SRC, __file__)
    if "--force" not in sys.argv and os.path.exists(OUT) and os.path.exists(STAMP) and open(STAMP).read() == want:
        step("up to date: " + OUT)
        return
    tiles = calibration_tiles()
    step("calibrating on %d tiles of vtest (labelled frames excluded)" % len(tiles))
    work = OUT + ".work"
    os.makedirs(work, exist_ok=True)
    op13, pre = os.path.join(work, "opset13.onnx"), os.path.join(work, "pre.onnx")
    onnx.save(version_converter.convert_version(onnx.load(SRC), 13), op13)
    quant_pre_process(op13, pre)
    keep = float_nodes(onnx.load(pre).graph)
    step("%d nodes (output heads and after) stay float" % len(keep))
    tmp = OUT + ".part"
    quantize_static(pre, tmp, Tiles(tiles), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, reduce_range=True,
                    nodes_to_exclude=keep, calibrate_method=CalibrationMethod.MinMax)
    os.replace(tmp, OUT)
    with open(STAMP, "w") as f:
        f.write(want)
    for p in (op13, pre):
        os.remove(p)
    os.rmdir(work)
    step("wrote %s (%d bytes)" % (OUT, os.path.getsize(OUT)))


if __name__ == "__main__":
    main()
