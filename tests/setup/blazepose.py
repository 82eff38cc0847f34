#!/usr/bin/env python3
"""Converts MediaPipe's BlazePose person detector (Apache-2.0) to an ONNX model for ONNX Runtime.

Source: the PyPI wheel mediapipe==0.10.14 ships
    mediapipe/modules/pose_detection/pose_detection.tflite
We download that wheel (no deps, never installed) into $VIGIL_FIXTURES/.wheels, extract the .tflite,
and convert it with tflite2onnx 0.4.1 inside a dedicated virtualenv ($VIGIL_FIXTURES/.convert-venv).
tflite2onnx cannot convert this model as-is; this script patches it at run time (see BLAZEPOSE.md):
  1. DENSIFY (38 ops): the 1x1 conv weights are stored sparse (CSR over the input-channel axis).
     We densify them here in numpy, following TFLite's FormatConverter::SparseToDense.
  2. DEQUANTIZE (144 ops): every weight and bias is fp16 followed by DEQUANTIZE. We fold each into
     a constant fp32 initializer (the DENSIFY/DEQUANTIZE ops disappear from the graph).
  3. DEPTH_TO_SPACE (3 ops): tflite2onnx has no converter; we register one (ONNX DepthToSpace,
     mode DCR, which is TensorFlow's channel ordering).

Outputs (in $VIGIL_FIXTURES, default <repo>/.fixtures):
  blazepose-person.onnx     fp32, opset 11, input  "input_1"  float32[1,3,224,224] (NCHW, RGB, [-1,1])
                                            outputs "Identity" float32[1,2254,12] (regressors),
                                                    "Identity_1" float32[1,2254,1] (logits)
  blazepose-anchors.json    the 2254 SSD anchors (x_center, y_center) in model order, plus the
                            decoding parameters.

Idempotent: does nothing when both outputs exist (use --force to rebuild).
Usage: python3 tests/setup/blazepose.py [--force]
"""
import hashlib
import json
import math
import os
import subprocess
import sys
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.abspath(os.environ.get("VIGIL_FIXTURES", os.path.join(ROOT, ".fixtures")))
WHEELS = os.path.join(FIX, ".wheels")
VENV = os.path.join(FIX, ".convert-venv")
VENV_PY = os.path.join(VENV, "bin", "python")

MEDIAPIPE = "mediapipe==0.10.14"
# The .tflite is identical in every platform wheel; pin one so the download is deterministic.
WHEEL_NAME = "mediapipe-0.10.14-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
WHEEL_PIN = ["--platform", "manylinux2014_x86_64", "--python-version", "3.11",
             "--implementation", "cp", "--abi", "cp311"]
TFLITE_MEMBER = "mediapipe/modules/pose_detection/pose_detection.tflite"
TFLITE_SHA256 = "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c"
TFLITE_CACHE = os.path.join(WHEELS, "mediapipe-0.10.14-pose_detection.tflite")

VENV_PACKAGES = ["tflite2onnx==0.4.1", "tflite==2.18.0", "onnx==1.23.2", "numpy==1.26.4",
                 "onnxruntime==1.23.2", "opencv-python-headless==4.10.0.84",
                 # reference only: blazepose_check.py compares ONNX outputs against the original .tflite
                 "tflite-runtime==2.14.0"]
VENV_STAMP = os.path.join(VENV, "vigil-packages.txt")

ONNX_OUT = os.path.join(FIX, "blazepose-person.onnx")
ANCHORS_OUT = os.path.join(FIX, "blazepose-anchors.json")

# MediaPipe mediapipe/modules/pose_detection/pose_detection_cpu.pbtxt (SsdAnchorsCalculator options).
ANCHOR_OPTIONS = {
    "num_layers": 5,
    "min_scale": 0.1484375,
    "max_scale": 0.75,
    "input_size_height": 224,
    "input_size_width": 224,
    "anchor_offset_x": 0.5,
    "anchor_offset_y": 0.5,
    "strides": [8, 16, 32, 32, 32],
    "aspect_ratios": [1.0],
    "interpolated_scale_aspect_ratio": 1.0,
    "reduce_boxes_in_lowest_layer": False,
    "fixed_anchor_size": True,
}
# TensorsToDetectionsCalculator + NonMaxSuppression options of the same graph.
DECODE_OPTIONS = {
    "num_boxes": 2254,
    "num_coords": 12,
    "box_coord_offset": 0,
    "box_layout": "x_center,y_center,w,h (reverse_output_order: true)",
    "keypoint_coord_offset": 4,
    "num_keypoints": 4,
    "num_values_per_keypoint": 2,
    "x_scale": 224.0, "y_scale": 224.0, "w_scale": 224.0, "h_scale": 224.0,
    "sigmoid_score": True,
    "score_clipping_thresh": 100.0,
    "min_score_thresh": 0.5,
    "nms_min_suppression_threshold": 0.3,
    "nms_overlap_type": "INTERSECTION_OVER_UNION",
    "nms_algorithm": "WEIGHTED",
}


def step(msg):
    print("blazepose: " + msg, flush=True)


def die(msg):
    print("blazepose: ERROR: " + msg, file=sys.stderr, flush=True)
    sys.exit(1)


def run(cmd, what):
    step("$ " + " ".join(cmd))
    r = subprocess.run(cmd)
    if r.returncode != 0:
        die("%s failed (exit %d): %s" % (what, r.returncode, " ".join(cmd)))


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# Anchors (pure python: this is the reference the Rust implementation is checked against)
# --------------------------------------------------------------------------------------------
def _scale(min_scale, max_scale, idx, n):
    return (min_scale + max_scale) * 0.5 if n == 1 else min_scale + (max_scale - min_scale) * idx / (n - 1.0)


def generate_anchors(o=ANCHOR_OPTIONS):
    """MediaPipe SsdAnchorsCalculator, as configured for pose detection.

    Returns a list of (x_center, y_center, w, h) in model output order:
    for each group of consecutive layers with the same stride: for y, for x, for each anchor of the cell.
    """
    anchors = []
    strides = o["strides"]
    layer_id = 0
    while layer_id < o["num_layers"]:
        heights, widths, ratios, scales = [], [], [], []
        last = layer_id
        while last < len(strides) and strides[last] == strides[layer_id]:
            scale = _scale(o["min_scale"], o["max_scale"], last, len(strides))
            if last == 0 and o["reduce_boxes_in_lowest_layer"]:
                ratios += [1.0, 2.0, 0.5]
                scales += [0.1, scale, scale]
            else:
                for ar in o["aspect_ratios"]:
                    ratios.append(ar)
                    scales.append(scale)
                if o["interpolated_scale_aspect_ratio"] > 0.0:
                    nxt = 1.0 if last == len(strides) - 1 else _scale(o["min_scale"], o["max_scale"], last + 1, len(strides))
                    scales.append(math.sqrt(scale * nxt))
                    ratios.append(o["interpolated_scale_aspect_ratio"])
            last += 1
        for ar, sc in zip(ratios, scales):
            heights.append(sc / math.sqrt(ar))
            widths.append(sc * math.sqrt(ar))
        stride = strides[layer_id]
        fh = int(math.ceil(o["input_size_height"] / stride))
        fw = int(math.ceil(o["input_size_width"] / stride))
        for y in range(fh):
            for x in range(fw):
                for a in range(len(heights)):
                    xc = (x + o["anchor_offset_x"]) / fw
                    yc = (y + o["anchor_offset_y"]) / fh
                    if o["fixed_anchor_size"]:
                        anchors.append((xc, yc, 1.0, 1.0))
                    else:
                        anchors.append((xc, yc, widths[a], heights[a]))
        layer_id = last
    return anchors


def write_anchors():
    anchors = generate_anchors()
    if len(anchors) != DECODE_OPTIONS["num_boxes"]:
        die("anchor generation produced %d anchors, expected %d" % (len(anchors), DECODE_OPTIONS["num_boxes"]))
    doc = {
        "source": "MediaPipe pose_detection (mediapipe==0.10.14), SsdAnchorsCalculator options below",
        "anchor_options": ANCHOR_OPTIONS,
        "decode_options": DECODE_OPTIONS,
        "layout": "anchors[i] = [x_center, y_center] in [0,1] of the 224x224 input; w = h = 1.0 (fixed size)",
        "groups": [
            {"stride": 8, "grid": 28, "anchors_per_cell": 2, "first": 0, "count": 1568},
            {"stride": 16, "grid": 14, "anchors_per_cell": 2, "first": 1568, "count": 392},
            {"stride": 32, "grid": 7, "anchors_per_cell": 6, "first": 1960, "count": 294},
        ],
        "count": len(anchors),
        "anchors": [[round(a[0], 9), round(a[1], 9)] for a in anchors],
    }
    tmp = ANCHORS_OUT + ".part"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=None, separators=(",", ":"))
        f.write("\n")
    os.replace(tmp, ANCHORS_OUT)
    step("anchors: %d -> %s" % (len(anchors), ANCHORS_OUT))


# --------------------------------------------------------------------------------------------
# Bootstrap (system python): venv, wheel download, extraction
# --------------------------------------------------------------------------------------------
def ensure_venv():
    want = "\n".join(VENV_PACKAGES) + "\n"
    if os.path.exists(VENV_STAMP) and open(VENV_STAMP).read() == want:
        step("venv ok: " + VENV)
        return
    if not os.path.exists(VENV_PY):
        step("creating virtualenv " + VENV)
        run([sys.executable, "-m", "venv", VENV], "python3 -m venv (Debian: apt-get install python3-venv)")
    step("installing conversion tools into the venv (PyPI): " + " ".join(VENV_PACKAGES))
    run([VENV_PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"] + VENV_PACKAGES,
        "pip install of the conversion tools")
    with open(VENV_STAMP, "w") as f:
        f.write(want)


def ensure_tflite():
    if os.path.exists(TFLITE_CACHE) and sha256(TFLITE_CACHE) == TFLITE_SHA256:
        step("tflite ok: " + TFLITE_CACHE)
        return
    os.makedirs(WHEELS, exist_ok=True)
    whl = os.path.join(WHEELS, WHEEL_NAME)
    if not os.path.exists(whl):
        step("downloading %s (wheel only, no deps, not installed) into %s" % (MEDIAPIPE, WHEELS))
        run([VENV_PY, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
             "--only-binary=:all:"] + WHEEL_PIN + ["-d", WHEELS, MEDIAPIPE], "pip download " + MEDIAPIPE)
    if not os.path.exists(whl):
        die("pip download did not produce " + whl)
    step("extracting %s from %s" % (TFLITE_MEMBER, os.path.basename(whl)))
    try:
        with zipfile.ZipFile(whl) as z:
            data = z.read(TFLITE_MEMBER)
    except (KeyError, zipfile.BadZipFile) as e:
        die("cannot read %s from %s: %s" % (TFLITE_MEMBER, whl, e))
    got = hashlib.sha256(data).hexdigest()
    if got != TFLITE_SHA256:
        die("pose_detection.tflite sha256 %s != pinned %s" % (got, TFLITE_SHA256))
    with open(TFLITE_CACHE + ".part", "wb") as f:
        f.write(data)
    os.replace(TFLITE_CACHE + ".part", TFLITE_CACHE)
    step("tflite: %d bytes, sha256 ok -> %s" % (len(data), TFLITE_CACHE))


# --------------------------------------------------------------------------------------------
# Conversion (venv python)
# --------------------------------------------------------------------------------------------
def _sparse_vector(dm_union, union_type, tflite):
    """Reads a SparseIndexVector union (Int32Vector / Uint16Vector / Uint8Vector) as a numpy array."""
    cls = {tflite.SparseIndexVector.Int32Vector: tflite.Int32Vector,
           tflite.SparseIndexVector.Uint16Vector: tflite.Uint16Vector,
           tflite.SparseIndexVector.Uint8Vector: tflite.Uint8Vector}.get(union_type)
    if cls is None:
        raise ValueError("unsupported SparseIndexVector type %d" % union_type)
    v = cls()
    v.Init(dm_union.Bytes, dm_union.Pos)
    return v.ValuesAsNumpy()


def densify(tensor, values, tflite, np):
    """TFLite FormatConverter::SparseToDense (sparsity_format_converter.cc), in numpy.

    values: the stored (non-zero) values in traversal order. Returns a dense array of tensor's shape.
    """
    sp = tensor.Sparsity()
    shape = [int(d) for d in tensor.ShapeAsNumpy()]
    rank = len(shape)
    trav = [int(t) for t in sp.TraversalOrderAsNumpy()]
    block_map = [int(b) for b in sp.BlockMapAsNumpy()] if sp.BlockMapLength() else []
    levels = len(trav)
    # Per level: ("dense", size) or ("sparse", segments, indices)
    meta = []
    for lv in range(sp.DimMetadataLength()):
        dm = sp.DimMetadata(lv)
        if dm.Format() == tflite.DimensionType.DENSE:
            meta.append(("dense", int(dm.DenseSize())))
        else:
            seg = _sparse_vector(dm.ArraySegments(), dm.ArraySegmentsType(), tflite).astype(np.int64)
            idx = _sparse_vector(dm.ArrayIndices(), dm.ArrayIndicesType(), tflite).astype(np.int64)
            meta.append(("sparse", seg, idx))
    if len(meta) != levels:
        raise ValueError("dim_metadata has %d levels, traversal_order %d" % (len(meta), levels))
    block_size = []
    for b, orig in enumerate(block_map):
        m = meta[rank + b] if rank + b < levels else None
        block_size.append(m[1] if m and m[0] == "dense" else 1)

    # Breadth-first expansion of all index tuples, vectorised per level.
    idx_cols = []          # per level: array of index values, one row per partial path
    prev = np.zeros(1, dtype=np.int64)
    for lv in range(levels):
        m = meta[lv]
        if m[0] == "dense":
            n = m[1]
            rep = np.repeat(np.arange(prev.size), n)
            cur = np.tile(np.arange(n, dtype=np.int64), prev.size)
            new_prev = prev[rep] * n + cur
        else:
            seg, idx = m[1], m[2]
            starts, ends = seg[prev], seg[prev + 1]
            counts = ends - starts
            rep = np.repeat(np.arange(prev.size), counts)
            pos = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)]) if prev.size else np.zeros(0, np.int64)
            cur = idx[pos]
            new_prev = pos
        idx_cols = [c[rep] for c in idx_cols] + [cur]
        prev = new_prev
    if prev.size != values.size:
        raise ValueError("sparse tensor %s: %d indices but %d stored values"
                         % (tensor.Name().decode(), prev.size, values.size))
    orig = [None] * rank
    for i in range(rank):
        orig[trav[i]] = idx_cols[i]
    for i in range(rank, levels):
        b = trav[i] - rank
        d = block_map[b]
        orig[d] = orig[d] * block_size[b] + idx_cols[i]
    dense = np.zeros(shape, dtype=values.dtype)
    dense[tuple(orig)] = values
    return dense


def fold_constants(model, tflite, np):
    """Evaluates every DENSIFY and DEQUANTIZE op (all of them act on constants in this model).

    Returns ({tensor index: fp32 ndarray} for the DEQUANTIZE outputs, set of folded op indices).
    """
    g = model.Subgraphs(0)
    const = {}  # tensor index -> ndarray (original dtype or computed)
    folded_ops = set()
    n_dens = n_deq = 0

    def buffer_data(ti):
        t = g.Tensors(ti)
        raw = model.Buffers(t.Buffer()).DataAsNumpy()
        if isinstance(raw, int):
            return None
        dtype = {tflite.TensorType.FLOAT16: np.float16, tflite.TensorType.FLOAT32: np.float32,
                 tflite.TensorType.INT32: np.int32}.get(t.Type())
        if dtype is None:
            raise ValueError("unexpected constant dtype %d for %s" % (t.Type(), t.Name().decode()))
        return np.frombuffer(raw.tobytes(), dtype=dtype)

    for i in range(g.OperatorsLength()):
        op = g.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        bc = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if bc not in (tflite.BuiltinOperator.DENSIFY, tflite.BuiltinOperator.DEQUANTIZE):
            continue
        ti, to = int(op.Inputs(0)), int(op.Outputs(0))
        src_t = g.Tensors(ti)
        data = const.get(ti)
        if data is None:
            data = buffer_data(ti)
        if data is None:
            raise ValueError("op %d (%s) has a non-constant input %s: cannot fold"
                             % (i, tflite.opcode2name(bc), src_t.Name().decode()))
        if bc == tflite.BuiltinOperator.DENSIFY:
            if src_t.Sparsity() is None:
                raise ValueError("DENSIFY input %s has no sparsity parameters" % src_t.Name().decode())
            const[to] = densify(src_t, data, tflite, np)
            n_dens += 1
        else:
            if src_t.Quantization() is not None and src_t.Quantization().ScaleLength() > 0:
                raise ValueError("DEQUANTIZE of an integer-quantized tensor %s is not handled"
                                 % src_t.Name().decode())
            shape = [int(d) for d in g.Tensors(to).ShapeAsNumpy()]
            const[to] = np.asarray(data, dtype=np.float32).reshape(shape)
            n_deq += 1
        folded_ops.add(i)
    fp32 = {k: v for k, v in const.items() if v.dtype == np.float32}
    # Every DENSIFY output must be consumed only by a DEQUANTIZE we folded.
    for i in range(g.OperatorsLength()):
        if i in folded_ops:
            continue
        op = g.Operators(i)
        for k in op.InputsAsNumpy():
            if int(k) in const and int(k) not in fp32:
                raise ValueError("op %d consumes a densified fp16 tensor directly" % i)
    return fp32, folded_ops, n_dens, n_deq


def convert():
    import numpy as np
    import onnx
    import tflite
    import tflite2onnx  # noqa: F401  (registers the built-in op converters)
    from onnx import TensorProto
    from tflite2onnx import graph as t2o_graph
    from tflite2onnx import tensor as t2o_tensor
    from tflite2onnx.layout import Layout
    from tflite2onnx.model import Model
    from tflite2onnx.op.common import OpFactory, Operator

    step("converting with tflite2onnx %s, tflite %s, onnx %s, numpy %s"
         % (tflite2onnx.__version__, getattr(tflite, "__version__", "?"), onnx.__version__, np.__version__))
    buf = open(TFLITE_CACHE, "rb").read()
    model = tflite.Model.GetRootAsModel(buf, 0)
    if model.SubgraphsLength() != 1:
        die("expected one subgraph, found %d" % model.SubgraphsLength())

    # Patch 1+2: fold DENSIFY / DEQUANTIZE into fp32 constants.
    folded, folded_ops, n_dens, n_deq = fold_constants(model, tflite, np)
    step("folded %d DENSIFY + %d DEQUANTIZE ops into %d fp32 initializers" % (n_dens, n_deq, len(folded)))

    orig_get_data = t2o_tensor.TensorFactory.getData

    def get_data(mdl, graph, index, dtype):
        if index in folded:
            return folded[index].copy()
        return orig_get_data(mdl, graph, index, dtype)
    t2o_tensor.TensorFactory.getData = staticmethod(get_data)

    def graph_parse(self):
        for i in range(self.graph.OperatorsLength()):
            if i in folded_ops:
                continue
            op = self.OPCFactory.create(i)
            op.parse()
            self.ops.append(op)
        for i in range(self.graph.InputsLength()):
            self.inputs.append(self.TFactory.get(self.graph.Inputs(i)))
        for i in range(self.graph.OutputsLength()):
            self.outputs.append(self.TFactory.get(self.graph.Outputs(i)))
        self._collectOpAndTensor()
        self.setParsed()
    t2o_graph.Graph.parse = graph_parse

    # Patch 3: DEPTH_TO_SPACE converter (TF DepthToSpace == ONNX DepthToSpace mode DCR).
    class DepthToSpace(Operator):
        TypeMapping = {tflite.BuiltinOperator.DEPTH_TO_SPACE: 'DepthToSpace'}

        def __init__(self, TFactory, index):
            super().__init__(TFactory, index)
            self.attrs['blocksize'] = 0
            self.attrs['mode'] = 'DCR'
            self.setInited()

        @property
        def type(self):
            return 'DepthToSpace'

        def parse(self):
            op = self.tflite
            assert op.InputsLength() == 1 and op.OutputsLength() == 1
            self.parseInput(0, Layout('NHWC', 'NCHW'))
            self.parseOutput(0, Layout('NHWC', 'NCHW'))
            opt = tflite.DepthToSpaceOptions()
            b = op.BuiltinOptions()
            opt.Init(b.Bytes, b.Pos)
            self.attrs['blocksize'] = int(opt.BlockSize())
            self.setParsed()

        def propagatableTensors(self):
            return list()

        def transform(self):
            pass

    # Patch 4: the 8 PAD ops share paddings constants; tflite2onnx rewrites a paddings tensor in place
    # (TF [n,2] -> ONNX [2n], permuted to NCHW) once per *op*, so the second PAD using the same tensor
    # crashes. Transform each paddings tensor once (all users must agree on the layout).
    from tflite2onnx.op.padding import Padding
    orig_pad_transform = Padding.transform

    def pad_transform(self):
        pt = self.inputs[1]
        layout = self.inputs[0].layout
        key = None if layout is None else (layout.source, layout.target)
        if hasattr(pt, "_vigil_pad_layout"):
            if pt._vigil_pad_layout != key:
                raise ValueError("paddings tensor %s shared by PADs with different layouts" % pt.name)
            return
        orig_pad_transform(self)
        pt._vigil_pad_layout = key
    Padding.transform = pad_transform

    if tflite.BuiltinOperator.DEPTH_TO_SPACE not in OpFactory.registry:
        OpFactory.register(DepthToSpace)

    t2o = Model(model)
    try:
        t2o.convert(dict())
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        die("tflite2onnx conversion failed: %r" % (e,))
    m = t2o.onnx
    # Sanity: no fp16 and no leftover quantization ops.
    for init in m.graph.initializer:
        if init.data_type != TensorProto.FLOAT and init.data_type != TensorProto.INT64 and init.data_type != TensorProto.INT32:
            die("initializer %s has dtype %d (expected fp32/int)" % (init.name, init.data_type))
    kinds = sorted({n.op_type for n in m.graph.node})
    for bad in ("DequantizeLinear", "QuantizeLinear"):
        if bad in kinds:
            die("converted graph still contains %s" % bad)
    # tflite2onnx collects initializers/value_info in Python sets (hash order): sort them so the
    # output file is byte-for-byte reproducible.
    for field in (m.graph.initializer, m.graph.value_info):
        items = sorted(field, key=lambda x: x.name)
        del field[:]
        field.extend(items)
    m.producer_name = "vigil tests/setup/blazepose.py (tflite2onnx 0.4.1, patched)"
    m.doc_string = ("MediaPipe BlazePose person detector (pose_detection.tflite from mediapipe==0.10.14, "
                    "Apache-2.0). Input NCHW RGB [-1,1] 224x224; outputs regressors [1,2254,12], "
                    "logits [1,2254,1]. Anchors: blazepose-anchors.json.")
    onnx.checker.check_model(m, full_check=True)
    tmp = ONNX_OUT + ".part"
    onnx.save(m, tmp)
    step("ONNX graph: %d nodes (%s), %d initializers, opset %d, ir %d"
         % (len(m.graph.node), ", ".join(kinds), len(m.graph.initializer), m.opset_import[0].version, m.ir_version))

    # Verify with ONNX Runtime before publishing the file.
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(tmp, so, providers=["CPUExecutionProvider"])
    ins = [(i.name, i.shape, i.type) for i in sess.get_inputs()]
    outs = [(o.name, o.shape, o.type) for o in sess.get_outputs()]
    step("onnxruntime %s loads it: inputs %s outputs %s" % (ort.__version__, ins, outs))
    if ins != [("input_1", [1, 3, 224, 224], "tensor(float)")]:
        die("unexpected input signature %s" % ins)
    if [(o[0], o[1]) for o in outs] != [("Identity", [1, 2254, 12]), ("Identity_1", [1, 2254, 1])]:
        die("unexpected output signature %s" % outs)
    x = np.zeros((1, 3, 224, 224), np.float32)
    r, c = sess.run(None, {"input_1": x})
    if not (np.isfinite(r).all() and np.isfinite(c).all()):
        die("non-finite outputs on a zero input")
    os.replace(tmp, ONNX_OUT)
    step("wrote %s (%d bytes, sha256 %s)" % (ONNX_OUT, os.path.getsize(ONNX_OUT), sha256(ONNX_OUT)))


def main():
    force = "--force" in sys.argv[1:]
    os.makedirs(FIX, exist_ok=True)
    if "--in-venv" in sys.argv[1:]:
        convert()
        return
    if not force and os.path.exists(ONNX_OUT) and os.path.exists(ANCHORS_OUT):
        step("up to date: %s, %s (use --force to rebuild)" % (ONNX_OUT, ANCHORS_OUT))
        return
    ensure_venv()
    ensure_tflite()
    write_anchors()
    run([VENV_PY, os.path.abspath(__file__), "--in-venv"], "conversion")
    step("done")


if __name__ == "__main__":
    main()
