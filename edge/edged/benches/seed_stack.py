#!/usr/bin/env python3
"""The seed's own analysis stack for the side-by-side "identical work" benchmark (issue #3).

Python + OpenCV + onnxruntime, as the seed's detection service does it: every frame of vtest.avi
(decoded by OpenCV into memory first, like the Rust bench decodes first), letterboxed to the model
input, one ONNX Runtime inference, YOLOv8 head decoded with NumPy, per-class NMS with OpenCV.
Prints the same columns as `cargo bench -p edged --bench analysis`.

Run through `edge/edged/benches/identical_work.sh`, which installs its venv and alternates runs.
"""

import os
import sys
import time

import cv2
import numpy as np
import onnxruntime as ort


def letterbox(img, size):
    h, w = img.shape[:2]
    r = min(size / w, size / h)
    nw, nh = int(round(w * r)), int(round(h * r))
    resized = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    top, left = (size - nh) // 2, (size - nw) // 2
    out = cv2.copyMakeBorder(resized, top, size - nh - top, left, size - nw - left, cv2.BORDER_CONSTANT,
                             value=(114, 114, 114))
    return out, r, left, top


def main():
    fixtures = os.environ.get("VIGIL_FIXTURES", ".fixtures")
    video = sys.argv[1]
    limit = int(os.environ.get("VIGIL_BENCH_FRAMES", "300"))
    sizes = [int(s) for s in os.environ.get("VIGIL_BENCH_SIZES", "320").split(",")]
    threads_list = [int(s) for s in os.environ.get("VIGIL_BENCH_THREADS", "1,2").split(",")]
    cap = cv2.VideoCapture(video)
    frames = []
    t = time.perf_counter()
    while len(frames) < limit:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(bgr)
    decode = len(frames) / (time.perf_counter() - t)
    print(f"seed stack (Python {sys.version.split()[0]}, OpenCV {cv2.__version__}, onnxruntime {ort.__version__}): "
          f"{len(frames)} frames of {os.path.basename(video)}, OpenCV decode {decode:.0f} frames/s")
    print("| input | threads | analysed fps | inference-only fps | overhead ratio | pre ms | infer ms | post ms | detections |")
    print("|------:|--------:|-------------:|-------------------:|---------------:|-------:|---------:|--------:|-----------:|")
    model = os.path.join(fixtures, "yolov8n-320-nudenet.onnx")
    for size in sizes:
        for threads in threads_list:
            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
            name = sess.get_inputs()[0].name
            pre = infer = post = 0.0
            found = 0

            def analyse(bgr):
                nonlocal pre, infer, post, found
                t0 = time.perf_counter()
                img, r, left, top = letterbox(bgr, size)
                blob = cv2.dnn.blobFromImage(img, 1.0 / 255.0, swapRB=True)
                t1 = time.perf_counter()
                out = sess.run(None, {name: blob})[0][0]  # [4 + C, N]
                t2 = time.perf_counter()
                scores = out[4:]
                cls = scores.argmax(axis=0)
                conf = scores[cls, np.arange(scores.shape[1])]
                keep = conf >= 0.25
                boxes = out[:4, keep].T
                conf, cls = conf[keep], cls[keep]
                xywh = np.stack([(boxes[:, 0] - boxes[:, 2] / 2 - left) / r, (boxes[:, 1] - boxes[:, 3] / 2 - top) / r,
                                 boxes[:, 2] / r, boxes[:, 3] / r], axis=1)
                for c in np.unique(cls):
                    m = cls == c
                    idx = cv2.dnn.NMSBoxes(xywh[m].tolist(), conf[m].tolist(), 0.25, 0.45)
                    found += len(idx)
                t3 = time.perf_counter()
                pre += t1 - t0
                infer += t2 - t1
                post += t3 - t2

            for bgr in frames[:5]:
                analyse(bgr)
            pre = infer = post = 0.0
            found = 0
            start = time.perf_counter()
            for bgr in frames:
                analyse(bgr)
            total = time.perf_counter() - start
            n = len(frames)
            analysed, inference_only = n / total, n / infer
            print(f"| {size} | {threads} | {analysed:.1f} | {inference_only:.1f} | {analysed / inference_only:.3f} | "
                  f"{pre * 1e3 / n:.2f} | {infer * 1e3 / n:.2f} | {post * 1e3 / n:.2f} | {found} |")


if __name__ == "__main__":
    main()
