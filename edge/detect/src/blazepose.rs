//! The bundled person detector: MediaPipe's BlazePose detector (Apache-2.0), converted to ONNX by
//! `tests/setup/blazepose.py`, run over overlapping tiles so that small CCTV people are found.
//!
//! The decoding reproduces `tests/setup/blazepose_check.py` (see `tests/setup/BLAZEPOSE.md`):
//! SSD anchors (strides 8/16/32, 2/2/6 per cell), score = sigmoid(logit) ≥ threshold, box and keypoints
//! relative to the anchor, person box from the hip centre and the body radius, weighted NMS on the
//! detector box per tile and then across tiles.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use edge_core::Detected;
use edge_core::geometry::Rect;
use ort::session::{Session, builder::GraphOptimizationLevel};
use ort::value::TensorRef;

use crate::detector::overlaps_any;
use crate::{DetectError, Detector, OnnxRuntime, StepTimes, YoloDetector};

/// Side of the model's square input.
pub const BLAZE_INPUT: u32 = 224;
/// Number of anchors (model outputs per image).
pub const BLAZE_ANCHORS: usize = 2254;
/// Regressor values per anchor: box (4) + 4 keypoints (8).
const COORDS: usize = 12;
/// The one class this detector reports, as class id 0.
pub const PERSON_LABEL: &str = "person";
/// With a whole-frame pass, tile detections whose person box is taller than this many tile sides are
/// dropped as fragments of a person too large for the tile.
const LARGE_IN_TILE: f32 = 1.5;
/// Most tiles per ONNX Runtime run when the model has a dynamic batch dimension.
const MAX_BATCH: usize = 16;

/// Which box weighted NMS compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NmsBox {
    /// The detector's own (head and shoulders) box, as MediaPipe does. This is what the measured recall used.
    #[default]
    Detector,
    /// The derived person box.
    Person,
}

/// Settings for [`BlazePersonDetector`]. [`BlazeConfig::new`] gives the measured defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct BlazeConfig {
    /// `blazepose-person.onnx` as produced by `tests/setup/blazepose.py`.
    pub model: PathBuf,
    /// Tile side in frame pixels (each tile is resized to 224×224). Default 192.
    pub tile: u32,
    /// Overlap between neighbouring tiles in frame pixels; must be below `tile`. Default 64.
    pub overlap: u32,
    /// Also run the whole frame (letterboxed) once, for people too large for a tile; tile detections with a
    /// person box taller than 1.5 tiles are then dropped as fragments. Default false (CCTV-sized people).
    pub full_frame: bool,
    /// Minimum sigmoid score. Default 0.5 (MediaPipe's).
    pub score_threshold: f32,
    /// Weighted-NMS IoU threshold. Default 0.3 (MediaPipe's).
    pub iou_threshold: f32,
    /// Box compared by NMS. Default [`NmsBox::Detector`].
    pub nms_box: NmsBox,
    /// Largest angle, in degrees, between a body's axis (mid-hip to mid-shoulder) and straight up; a
    /// detection leaning further is not a person. Default 60. On the labelled vtest frames every matched
    /// person stands within 20° of upright and every stray detection leans 80° or more (sideways or upside
    /// down, often a face-like patch at the frame's edge). 180 keeps every pose: ceiling and fisheye
    /// cameras, or people lying down (about 90°).
    pub max_tilt_deg: f32,
    /// ONNX Runtime intra-op threads (0 = ONNX Runtime's default). Default 1.
    pub threads: usize,
}

impl BlazeConfig {
    /// The defaults measured on vtest (192 px tiles, 64 px overlap, score 0.5, NMS IoU 0.3, 60° tilt,
    /// 1 thread): recall 27/35, precision 27/27 on the labelled frames (any tilt: 28/35, 28/33), with 24
    /// tiles per 768×576 frame.
    pub fn new(model: impl Into<PathBuf>) -> BlazeConfig {
        BlazeConfig {
            model: model.into(),
            tile: 192,
            overlap: 64,
            full_frame: false,
            score_threshold: 0.5,
            iou_threshold: 0.3,
            nms_box: NmsBox::Detector,
            max_tilt_deg: 60.0,
            threads: 1,
        }
    }
}

/// A square crop fed to the model: frame pixels `[x, x+side) × [y, y+side)`. It lies inside the frame
/// unless the frame is smaller than the tile, when it is centred and the outside is black.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    pub x: i32,
    pub y: i32,
    pub side: u32,
}

/// One person in frame pixels (boxes `[x0, y0, x1, y1]`, not clipped to the frame).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PersonDetection {
    pub score: f32,
    /// `[hx − 0.4·r, hy − r, hx + 0.4·r, hy + r]` around the hip centre, r = body radius.
    pub person: [f32; 4],
    /// The detector's own box (head and shoulders on CCTV).
    pub detector_box: [f32; 4],
    /// Mid-hip, full-body circle point, mid-shoulder, upper-body circle point.
    pub keypoints: [[f32; 2]; 4],
}

impl PersonDetection {
    /// Angle in degrees (0..=180) between the body's axis, mid-hip to mid-shoulder, and straight up
    /// in the image: 0 standing, 90 lying, 180 upside down.
    pub fn tilt_deg(&self) -> f32 {
        let [[hx, hy], _, [sx, sy], _] = self.keypoints;
        (sx - hx).atan2(hy - sy).abs().to_degrees()
    }
}

/// The 2254 anchor centres `[x, y]` (0..1 of the 224 input) in model output order: MediaPipe's
/// `SsdAnchorsCalculator` with the pose-detection options (strides 8,16,32,32,32; one aspect ratio plus
/// one interpolated anchor per layer; fixed anchor size, so only centres matter).
pub fn blazepose_anchors() -> Vec<[f32; 2]> {
    const STRIDES: [u32; 5] = [8, 16, 32, 32, 32];
    let mut anchors = Vec::with_capacity(BLAZE_ANCHORS);
    let mut layer = 0;
    while layer < STRIDES.len() {
        // Consecutive layers with the same stride share one grid; each adds 2 anchors per cell.
        let mut last = layer;
        while last < STRIDES.len() && STRIDES[last] == STRIDES[layer] {
            last += 1;
        }
        let per_cell = 2 * (last - layer);
        let grid = BLAZE_INPUT.div_ceil(STRIDES[layer]);
        for y in 0..grid {
            for x in 0..grid {
                let c =
                    [((f64::from(x) + 0.5) / f64::from(grid)) as f32, ((f64::from(y) + 0.5) / f64::from(grid)) as f32];
                anchors.extend(std::iter::repeat_n(c, per_cell));
            }
        }
        layer = last;
    }
    anchors
}

/// Tile origins along one axis of `total` pixels: steps of `tile − overlap` from 0, plus a last tile
/// flush with the end. When `total ≤ tile` there is one tile, centred (origin ≤ 0).
pub fn tile_origins(total: u32, tile: u32, overlap: u32) -> Vec<i32> {
    let tile = tile.max(1);
    if total <= tile {
        return vec![-(((tile - total) / 2) as i32)];
    }
    let step = tile.saturating_sub(overlap).max(1) as usize;
    let mut origins: Vec<i32> = (0..=total - tile).step_by(step).map(|o| o as i32).collect();
    if origins.last().is_some_and(|&o| o as u32 + tile < total) {
        origins.push((total - tile) as i32);
    }
    origins
}

/// The tiles covering a `width`×`height` frame, row by row.
pub fn plan_tiles(width: u32, height: u32, tile: u32, overlap: u32) -> Vec<Tile> {
    let xs = tile_origins(width, tile, overlap);
    tile_origins(height, tile, overlap)
        .into_iter()
        .flat_map(|y| xs.iter().map(move |&x| Tile { x, y, side: tile.max(1) }))
        .collect()
}

/// Origins covering `[lo, hi)` of an axis of `total` pixels with tiles kept inside `[0, total)`.
fn span_origins(lo: u32, hi: u32, total: u32, tile: u32, overlap: u32) -> Vec<i32> {
    if total <= tile {
        return tile_origins(total, tile, overlap);
    }
    let span = hi.saturating_sub(lo);
    // A span up to a sixth longer than a tile gets one tile, centred: what is cut off is the
    // padding around a moving or followed object, not the object.
    if span <= tile + tile / 6 {
        let centred = i64::from(lo) + i64::from(span / 2) - i64::from(tile / 2);
        return vec![centred.clamp(0, i64::from(total - tile)) as i32];
    }
    tile_origins(span, tile, overlap).into_iter().map(|o| o + lo as i32).collect()
}

/// The tiles covering only `regions` (normalised frame rectangles, e.g. motion regions) of a
/// `width`×`height` frame. Regions that touch or overlap are merged first; each merged region gets
/// the fewest tiles that cover it (a region up to a sixth larger than a tile gets one tile centred on
/// it). Falls back to [`plan_tiles`] when that would not be fewer tiles. No regions, no tiles.
pub fn plan_region_tiles(width: u32, height: u32, tile: u32, overlap: u32, regions: &[Rect]) -> Vec<Tile> {
    let (fw, fh) = (width as f32, height as f32);
    let mut boxes: Vec<[u32; 4]> = regions
        .iter()
        .filter(|r| r.x.is_finite() && r.y.is_finite() && r.w.is_finite() && r.h.is_finite())
        .map(|r| {
            let x0 = (r.x * fw).floor().clamp(0.0, fw) as u32;
            let y0 = (r.y * fh).floor().clamp(0.0, fh) as u32;
            let x1 = ((r.x + r.w) * fw).ceil().clamp(0.0, fw) as u32;
            let y1 = ((r.y + r.h) * fh).ceil().clamp(0.0, fh) as u32;
            [x0, y0, x1, y1]
        })
        .filter(|b| b[2] > b[0] && b[3] > b[1])
        .collect();
    // Merge regions that touch or overlap, until none do. Regions apart keep a tile each, centred on
    // them: on the labelled vtest frames that finds more people with fewer tiles than merging
    // regions within `overlap` of each other into one box tiled as a grid (BLAZEPOSE.md).
    let mut merged = true;
    while merged {
        merged = false;
        'outer: for i in 0..boxes.len() {
            for j in i + 1..boxes.len() {
                let (a, b) = (boxes[i], boxes[j]);
                if a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3] {
                    boxes[i] = [a[0].min(b[0]), a[1].min(b[1]), a[2].max(b[2]), a[3].max(b[3])];
                    boxes.swap_remove(j);
                    merged = true;
                    break 'outer;
                }
            }
        }
    }
    let mut tiles: Vec<Tile> = Vec::new();
    for b in &boxes {
        let xs = span_origins(b[0], b[2], width, tile, overlap);
        for y in span_origins(b[1], b[3], height, tile, overlap) {
            for &x in &xs {
                let t = Tile { x, y, side: tile.max(1) };
                if !tiles.contains(&t) {
                    tiles.push(t);
                }
            }
        }
    }
    let full = tile_origins(width, tile, overlap).len() * tile_origins(height, tile, overlap).len();
    if tiles.len() >= full { plan_tiles(width, height, tile, overlap) } else { tiles }
}

/// Separable resampling taps from a `side`-pixel square axis to `out` pixels: area averaging when
/// shrinking (OpenCV `INTER_AREA`), bilinear with half-pixel centres when enlarging (`INTER_LINEAR`).
fn fill_taps(side: u32, out: u32, taps: &mut Vec<(u32, f32)>, offsets: &mut Vec<usize>) {
    taps.clear();
    offsets.clear();
    offsets.push(0);
    let scale = f64::from(side) / f64::from(out);
    for o in 0..out {
        if side > out {
            let (a, b) = (f64::from(o) * scale, f64::from(o + 1) * scale);
            let mut i = a.floor() as u32;
            while f64::from(i) < b && i < side {
                let w = (b.min(f64::from(i) + 1.0) - a.max(f64::from(i))) / scale;
                if w > 1e-9 {
                    taps.push((i, w as f32));
                }
                i += 1;
            }
        } else {
            let s = ((f64::from(o) + 0.5) * scale - 0.5).clamp(0.0, f64::from(side - 1));
            let i0 = s.floor() as u32;
            let i1 = (i0 + 1).min(side - 1);
            let f = (s - f64::from(i0)) as f32;
            taps.push((i0, 1.0 - f));
            if f > 0.0 {
                taps.push((i1, f));
            }
        }
        offsets.push(taps.len());
    }
}

/// Reused preprocessing buffers.
#[derive(Debug, Default)]
struct Resampler {
    side: u32,
    taps: Vec<(u32, f32)>,
    offsets: Vec<usize>,
    /// Horizontally resampled rows of the square: `side` × 224 × 3.
    rows: Vec<f32>,
}

impl Resampler {
    /// Writes the tile of packed RGB8 `rgb` as a `[3, 224, 224]` tensor in `[-1, 1]` into `dst`.
    /// Pixels outside the frame are black (−1).
    fn tile_tensor(&mut self, rgb: &[u8], width: u32, height: u32, tile: Tile, dst: &mut [f32]) {
        let n = BLAZE_INPUT as usize;
        let side = tile.side.max(1);
        if self.side != side || self.offsets.len() != n + 1 {
            fill_taps(side, BLAZE_INPUT, &mut self.taps, &mut self.offsets);
            self.side = side;
        }
        let (w, h) = (width as i64, height as i64);
        let complete = rgb.len() >= (w * h * 3) as usize;
        self.rows.clear();
        self.rows.resize(side as usize * n * 3, 0.0);
        for sy in 0..side as usize {
            let fy = i64::from(tile.y) + sy as i64;
            if !complete || fy < 0 || fy >= h {
                continue;
            }
            let src = &rgb[(fy * w * 3) as usize..((fy + 1) * w * 3) as usize];
            let row = &mut self.rows[sy * n * 3..(sy + 1) * n * 3];
            for ox in 0..n {
                let mut acc = [0.0f32; 3];
                for &(sx, wt) in &self.taps[self.offsets[ox]..self.offsets[ox + 1]] {
                    let fx = i64::from(tile.x) + i64::from(sx);
                    if fx >= 0 && fx < w {
                        let p = &src[fx as usize * 3..fx as usize * 3 + 3];
                        acc[0] += wt * f32::from(p[0]);
                        acc[1] += wt * f32::from(p[1]);
                        acc[2] += wt * f32::from(p[2]);
                    }
                }
                row[ox * 3..ox * 3 + 3].copy_from_slice(&acc);
            }
        }
        let plane = n * n;
        for oy in 0..n {
            let taps = &self.taps[self.offsets[oy]..self.offsets[oy + 1]];
            for ox in 0..n {
                let mut acc = [0.0f32; 3];
                for &(sy, wt) in taps {
                    let p = &self.rows[(sy as usize * n + ox) * 3..(sy as usize * n + ox) * 3 + 3];
                    acc[0] += wt * p[0];
                    acc[1] += wt * p[1];
                    acc[2] += wt * p[2];
                }
                for (c, v) in acc.iter().enumerate() {
                    dst[c * plane + oy * n + ox] = v / 127.5 - 1.0;
                }
            }
        }
    }
}

/// Decodes one image's outputs (`regressors` = `[2254, 12]`, `logits` = `[2254]`) for `tile`, appending the
/// detections scoring at least `threshold` in frame pixels.
pub fn decode_blazepose(
    regressors: &[f32],
    logits: &[f32],
    anchors: &[[f32; 2]],
    threshold: f32,
    tile: Tile,
    out: &mut Vec<PersonDetection>,
) {
    let n = anchors.len().min(logits.len()).min(regressors.len() / COORDS);
    let inv = 1.0 / BLAZE_INPUT as f32;
    let side = tile.side as f32;
    let (ox, oy) = (tile.x as f32, tile.y as f32);
    let px = |x: f32, y: f32| [ox + x * side, oy + y * side];
    for i in 0..n {
        let logit = logits[i];
        if logit.is_nan() {
            continue;
        }
        let score = 1.0 / (1.0 + (-logit.clamp(-100.0, 100.0)).exp());
        if score < threshold {
            continue;
        }
        let r = &regressors[i * COORDS..(i + 1) * COORDS];
        if r.iter().any(|v| !v.is_finite()) {
            continue;
        }
        let [ax, ay] = anchors[i];
        let (xc, yc, bw, bh) = (r[0] * inv + ax, r[1] * inv + ay, r[2] * inv, r[3] * inv);
        let kp = |k: usize| [r[4 + 2 * k] * inv + ax, r[5 + 2 * k] * inv + ay];
        let kps = [kp(0), kp(1), kp(2), kp(3)];
        let [hx, hy] = kps[0];
        let rad = (kps[1][0] - hx).hypot(kps[1][1] - hy);
        let a = px(xc - bw / 2.0, yc - bh / 2.0);
        let b = px(xc + bw / 2.0, yc + bh / 2.0);
        let p0 = px(hx - 0.4 * rad, hy - rad);
        let p1 = px(hx + 0.4 * rad, hy + rad);
        out.push(PersonDetection {
            score,
            person: [p0[0], p0[1], p1[0], p1[1]],
            detector_box: [a[0], a[1], b[0], b[1]],
            keypoints: kps.map(|[x, y]| px(x, y)),
        });
    }
}

fn box_iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let ix = a[2].min(b[2]) - a[0].max(b[0]);
    let iy = a[3].min(b[3]) - a[1].max(b[1]);
    if ix <= 0.0 || iy <= 0.0 {
        return 0.0;
    }
    let inter = ix * iy;
    let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

/// MediaPipe's weighted NMS: best first; every remaining detection overlapping the best by more than
/// `iou_threshold` (on the `key` box) joins its cluster; the cluster's boxes and keypoints are averaged
/// weighted by score and keep the best score. Drains `dets`, appends to `out`.
pub fn weighted_nms(dets: &mut Vec<PersonDetection>, iou_threshold: f32, key: NmsBox, out: &mut Vec<PersonDetection>) {
    let pick = |d: &PersonDetection| match key {
        NmsBox::Detector => d.detector_box,
        NmsBox::Person => d.person,
    };
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut taken = vec![false; dets.len()];
    for i in 0..dets.len() {
        if taken[i] {
            continue;
        }
        let top = dets[i];
        let top_key = pick(&top);
        let (mut wsum, mut person, mut det_box, mut kps) = (0.0f32, [0.0f32; 4], [0.0f32; 4], [[0.0f32; 2]; 4]);
        for j in i..dets.len() {
            if taken[j] || (j != i && box_iou(&top_key, &pick(&dets[j])) <= iou_threshold) {
                continue;
            }
            taken[j] = true;
            let d = &dets[j];
            let w = d.score;
            wsum += w;
            for k in 0..4 {
                person[k] += w * d.person[k];
                det_box[k] += w * d.detector_box[k];
                kps[k][0] += w * d.keypoints[k][0];
                kps[k][1] += w * d.keypoints[k][1];
            }
        }
        if wsum > 0.0 {
            let div = |v: [f32; 4]| v.map(|x| x / wsum);
            out.push(PersonDetection {
                score: top.score,
                person: div(person),
                detector_box: div(det_box),
                keypoints: kps.map(|[x, y]| [x / wsum, y / wsum]),
            });
        } else {
            out.push(top);
        }
    }
    dets.clear();
}

/// What one detection run cost.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BlazeTimes {
    /// Model runs (tiles plus the optional whole-frame pass).
    pub tiles: usize,
    /// ONNX Runtime calls (tiles / batch size, rounded up).
    pub runs: usize,
    pub steps: StepTimes,
}

/// The BlazePose person detector over tiles. Not `Sync`: use it from one worker thread.
#[derive(Debug)]
pub struct BlazePersonDetector {
    session: Session,
    input_name: String,
    regressors_output: usize,
    scores_output: usize,
    batch: usize,
    cfg: BlazeConfig,
    name: String,
    labels: Vec<String>,
    anchors: Vec<[f32; 2]>,
    // Reused per-frame buffers.
    input: Vec<f32>,
    resampler: Resampler,
    tiles: Vec<Tile>,
    tile_dets: Vec<PersonDetection>,
    merged: Vec<PersonDetection>,
    found: Vec<PersonDetection>,
}

impl BlazePersonDetector {
    /// Loads the model and checks its signature: input `[1|N, 3, 224, 224]`, outputs `[_, 2254, 12]`
    /// (regressors) and `[_, 2254, 1]` (logits). A fixed batch of 1 (the converted model) runs tiles one
    /// at a time; a dynamic batch runs up to 16 tiles per call.
    pub fn build(rt: &OnnxRuntime, cfg: &BlazeConfig) -> Result<BlazePersonDetector, DetectError> {
        let path = &cfg.model;
        let model_err = |message: String| DetectError::Model { path: path.clone(), message };
        let shape_err = |message: String| DetectError::Shape { path: path.clone(), message };
        if cfg.tile < 16 || cfg.overlap >= cfg.tile {
            return Err(DetectError::Config(format!(
                "tile {} px with overlap {} px: the tile must be at least 16 px and the overlap smaller than it",
                cfg.tile, cfg.overlap
            )));
        }
        if !(0.0..=1.0).contains(&cfg.score_threshold) || !(0.0..=1.0).contains(&cfg.iou_threshold) {
            return Err(DetectError::Config("score and iou thresholds must lie in 0..=1".into()));
        }
        if !(0.0..=180.0).contains(&cfg.max_tilt_deg) {
            return Err(DetectError::Config(format!("max tilt {}° must lie in 0..=180", cfg.max_tilt_deg)));
        }
        if !path.is_file() {
            return Err(model_err("no such file".into()));
        }
        let mut builder = Session::builder(&rt.env).map_err(|e| model_err(e.to_string()))?;
        builder = builder.with_optimization_level(GraphOptimizationLevel::All).map_err(|e| model_err(e.to_string()))?;
        if cfg.threads > 0 {
            builder = builder.with_intra_threads(cfg.threads).map_err(|e| model_err(e.to_string()))?;
        }
        let session = builder.commit_from_file(path).map_err(|e| model_err(e.to_string()))?;

        let [input] = session.inputs() else {
            return Err(shape_err(format!("expected 1 input, found {}", session.inputs().len())));
        };
        let dims: Vec<i64> = input.dtype().tensor_shape().map(|s| s.to_vec()).unwrap_or_default();
        let size = i64::from(BLAZE_INPUT);
        let batch = match dims.as_slice() {
            [1, 3, h, w] if *h == size && *w == size => 1,
            [b, 3, h, w] if *b < 0 && *h == size && *w == size => MAX_BATCH,
            other => return Err(shape_err(format!("input must be [1, 3, 224, 224], found {other:?}"))),
        };
        let outputs: Vec<Vec<i64>> = session
            .outputs()
            .iter()
            .map(|o| o.dtype().tensor_shape().map(|s| s.to_vec()).unwrap_or_default())
            .collect();
        let find =
            |last: i64| outputs.iter().position(|d| d.len() == 3 && d[1] == BLAZE_ANCHORS as i64 && d[2] == last);
        let (Some(regressors_output), Some(scores_output)) = (find(COORDS as i64), find(1)) else {
            return Err(shape_err(format!("outputs must be [1, 2254, 12] and [1, 2254, 1], found {outputs:?}")));
        };
        let per = 3 * (BLAZE_INPUT * BLAZE_INPUT) as usize;
        Ok(BlazePersonDetector {
            input_name: input.name().to_owned(),
            session,
            regressors_output,
            scores_output,
            batch,
            name: YoloDetector::model_name(path),
            labels: vec![PERSON_LABEL.to_owned()],
            anchors: blazepose_anchors(),
            input: vec![0.0; per * batch],
            resampler: Resampler::default(),
            tiles: Vec::new(),
            tile_dets: Vec::new(),
            merged: Vec::new(),
            found: Vec::new(),
            cfg: cfg.clone(),
        })
    }

    /// The settings it runs with.
    pub fn config(&self) -> &BlazeConfig {
        &self.cfg
    }

    /// Tiles per ONNX Runtime call: 1 for a fixed-batch model (the converted BlazePose model is one).
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The tiles the last detection ran (including the whole-frame pass, if any).
    pub fn last_tiles(&self) -> &[Tile] {
        &self.tiles
    }

    /// People in the whole frame, in frame pixels, best first.
    pub fn detect_persons(&mut self, rgb: &[u8], width: u32, height: u32) -> Result<&[PersonDetection], DetectError> {
        self.run_plan(rgb, width, height, None).map(|_| self.found.as_slice())
    }

    /// People within `regions` (normalised), in frame pixels, best first. Tiles cover only the regions
    /// ([`plan_region_tiles`]); detections not overlapping a region are dropped. No whole-frame pass.
    pub fn detect_persons_in(
        &mut self,
        rgb: &[u8],
        width: u32,
        height: u32,
        regions: &[Rect],
    ) -> Result<&[PersonDetection], DetectError> {
        self.run_plan(rgb, width, height, Some(regions))?;
        Ok(&self.found)
    }

    /// [`Detector::detect`] plus the tile count and step timings (for benchmarks and the status page).
    pub fn detect_timed(
        &mut self,
        rgb: &[u8],
        width: u32,
        height: u32,
    ) -> Result<(Vec<Detected>, BlazeTimes), DetectError> {
        let times = self.run_plan(rgb, width, height, None)?;
        Ok((self.detected(width, height), times))
    }

    fn detected(&self, width: u32, height: u32) -> Vec<Detected> {
        let (fw, fh) = (width.max(1) as f32, height.max(1) as f32);
        self.found.iter().filter_map(|p| to_detected(p, fw, fh)).collect()
    }

    /// The tiles a look at `regions` takes ([`plan_region_tiles`]), or at the whole frame
    /// ([`plan_tiles`], plus the whole-frame pass when configured, returned second), for running in
    /// parts with [`BlazePersonDetector::run_some_tiles`].
    pub fn plan(&self, width: u32, height: u32, regions: Option<&[Rect]>) -> (Vec<Tile>, Option<Tile>) {
        let (tile, overlap) = (self.cfg.tile, self.cfg.overlap);
        match regions {
            Some(regions) => (plan_region_tiles(width, height, tile, overlap, regions), None),
            None => {
                let mut tiles = plan_tiles(width, height, tile, overlap);
                let whole = self.whole_tile(width, height, &tiles);
                tiles.extend(whole);
                (tiles, whole)
            }
        }
    }

    /// The whole-frame pass, when configured and not already one of `tiles`.
    fn whole_tile(&self, width: u32, height: u32, tiles: &[Tile]) -> Option<Tile> {
        if !self.cfg.full_frame || width == 0 || height == 0 {
            return None;
        }
        let side = width.max(height);
        let tile = Tile { x: -(((side - width) / 2) as i32), y: -(((side - height) / 2) as i32), side };
        (!tiles.contains(&tile)).then_some(tile)
    }

    /// Runs `tiles` of one frame (part of a [`BlazePersonDetector::plan`]; `whole` is the plan's
    /// whole-frame pass), adding the people found, merged within each tile, in frame pixels, to `out`.
    /// Hand everything every part found to [`BlazePersonDetector::finish`].
    pub fn run_some_tiles(
        &mut self,
        rgb: &[u8],
        width: u32,
        height: u32,
        tiles: &[Tile],
        whole: Option<Tile>,
        out: &mut Vec<PersonDetection>,
    ) -> Result<BlazeTimes, DetectError> {
        self.tile_dets.clear();
        if width == 0 || height == 0 || rgb.len() < width as usize * height as usize * 3 {
            return Ok(BlazeTimes::default());
        }
        let per = 3 * (BLAZE_INPUT * BLAZE_INPUT) as usize;
        let mut times = BlazeTimes { tiles: tiles.len(), ..BlazeTimes::default() };
        let (mut pre, mut infer, mut post) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
        for chunk in tiles.chunks(self.batch) {
            let n = chunk.len();
            let t0 = Instant::now();
            for (k, &tile) in chunk.iter().enumerate() {
                self.resampler.tile_tensor(rgb, width, height, tile, &mut self.input[k * per..(k + 1) * per]);
            }
            let s = BLAZE_INPUT as usize;
            let tensor = TensorRef::from_array_view(([n, 3, s, s], &self.input[..n * per]))
                .map_err(|e| DetectError::Inference(e.to_string()))?;
            let t1 = Instant::now();
            let outputs = self
                .session
                .run(ort::inputs![self.input_name.as_str() => tensor])
                .map_err(|e| DetectError::Inference(e.to_string()))?;
            let t2 = Instant::now();
            let (_, regs) = outputs[self.regressors_output]
                .try_extract_tensor::<f32>()
                .map_err(|e| DetectError::Inference(e.to_string()))?;
            let (_, logits) = outputs[self.scores_output]
                .try_extract_tensor::<f32>()
                .map_err(|e| DetectError::Inference(e.to_string()))?;
            if regs.len() < n * BLAZE_ANCHORS * COORDS || logits.len() < n * BLAZE_ANCHORS {
                return Err(DetectError::Inference(format!(
                    "outputs hold {} and {} values for {n} tiles",
                    regs.len(),
                    logits.len()
                )));
            }
            for (k, &tile) in chunk.iter().enumerate() {
                decode_blazepose(
                    &regs[k * BLAZE_ANCHORS * COORDS..(k + 1) * BLAZE_ANCHORS * COORDS],
                    &logits[k * BLAZE_ANCHORS..(k + 1) * BLAZE_ANCHORS],
                    &self.anchors,
                    self.cfg.score_threshold,
                    tile,
                    &mut self.tile_dets,
                );
                if whole.is_some_and(|w| w != tile) {
                    // A person much taller than the tile is one the tile cut into a fragment; the
                    // whole-frame pass finds such large people whole.
                    let limit = LARGE_IN_TILE * tile.side as f32;
                    self.tile_dets.retain(|d| d.person[3] - d.person[1] <= limit);
                }
                weighted_nms(&mut self.tile_dets, self.cfg.iou_threshold, self.cfg.nms_box, out);
            }
            pre += t1 - t0;
            infer += t2 - t1;
            post += t2.elapsed();
            times.runs += 1;
        }
        times.steps = StepTimes { preprocess: pre, inference: infer, postprocess: post };
        Ok(times)
    }

    /// The people of a frame from everything its tiles found (`candidates`, emptied), normalised; with
    /// `regions`, only those overlapping one.
    pub fn finish(
        &mut self,
        candidates: &mut Vec<PersonDetection>,
        width: u32,
        height: u32,
        regions: Option<&[Rect]>,
    ) -> Vec<Detected> {
        self.merge(candidates, width, height, regions);
        self.detected(width, height)
    }

    /// Leaves in `self.found` the people of a frame from everything its tiles found (`candidates`,
    /// emptied): one NMS across tiles, then only those within `max_tilt_deg` of upright and, with
    /// `regions`, only those overlapping one.
    fn merge(&mut self, candidates: &mut Vec<PersonDetection>, width: u32, height: u32, regions: Option<&[Rect]>) {
        self.found.clear();
        weighted_nms(candidates, self.cfg.iou_threshold, self.cfg.nms_box, &mut self.found);
        candidates.clear();
        let max_tilt = self.cfg.max_tilt_deg;
        self.found.retain(|p| p.tilt_deg() <= max_tilt);
        let (fw, fh) = (width.max(1) as f32, height.max(1) as f32);
        if let Some(regions) = regions {
            self.found.retain(|p| to_detected(p, fw, fh).is_some_and(|d| overlaps_any(&d, regions)));
        }
    }

    /// Runs the whole [`BlazePersonDetector::plan`] for `regions` (or the whole frame) in one go,
    /// leaving its tiles in `self.tiles` and the people in `self.found`.
    fn run_plan(
        &mut self,
        rgb: &[u8],
        width: u32,
        height: u32,
        regions: Option<&[Rect]>,
    ) -> Result<BlazeTimes, DetectError> {
        self.found.clear();
        if width == 0 || height == 0 || rgb.len() < width as usize * height as usize * 3 {
            self.tiles.clear();
            return Ok(BlazeTimes::default());
        }
        let (tiles, whole) = self.plan(width, height, regions);
        let mut merged = std::mem::take(&mut self.merged);
        let result = self.run_some_tiles(rgb, width, height, &tiles, whole, &mut merged);
        self.tiles = tiles;
        let mut times = result?;
        let t3 = Instant::now();
        self.merge(&mut merged, width, height, regions);
        self.merged = merged;
        times.steps.postprocess += t3.elapsed();
        Ok(times)
    }
}

/// The person box clipped to the frame and normalised; `None` when less than a pixel remains.
fn to_detected(p: &PersonDetection, fw: f32, fh: f32) -> Option<Detected> {
    let [x0, y0, x1, y1] = p.person;
    let (x0, y0, x1, y1) = (x0.clamp(0.0, fw), y0.clamp(0.0, fh), x1.clamp(0.0, fw), y1.clamp(0.0, fh));
    if !(x1 - x0 >= 1.0 && y1 - y0 >= 1.0) {
        return None;
    }
    Some(Detected { class_id: 0, score: p.score, x: x0 / fw, y: y0 / fh, w: (x1 - x0) / fw, h: (y1 - y0) / fh })
}

impl Detector for BlazePersonDetector {
    fn name(&self) -> &str {
        &self.name
    }

    fn labels(&self) -> &[String] {
        &self.labels
    }

    fn detect(&mut self, rgb: &[u8], width: u32, height: u32) -> Result<Vec<Detected>, DetectError> {
        self.detect_persons(rgb, width, height)?;
        Ok(self.detected(width, height))
    }

    fn detect_in(
        &mut self,
        rgb: &[u8],
        width: u32,
        height: u32,
        regions: &[Rect],
    ) -> Result<Vec<Detected>, DetectError> {
        self.detect_persons_in(rgb, width, height, regions)?;
        Ok(self.detected(width, height))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tilt_is_the_body_axis_from_upright_either_way() {
        // Mid-hip at (100, 100); mid-shoulder 50 px away in each direction.
        let body = |sx: f32, sy: f32| PersonDetection {
            score: 0.9,
            person: [0.0; 4],
            detector_box: [0.0; 4],
            keypoints: [[100.0, 100.0], [0.0; 2], [sx, sy], [0.0; 2]],
        };
        let h = 50.0 * std::f32::consts::FRAC_1_SQRT_2;
        for (shoulder, want) in [
            ((100.0, 50.0), 0.0),
            ((100.0 + h, 100.0 - h), 45.0),
            ((100.0 - h, 100.0 - h), 45.0),
            ((150.0, 100.0), 90.0),
            ((50.0, 100.0), 90.0),
            ((100.0 + h, 100.0 + h), 135.0),
            ((100.0, 150.0), 180.0),
        ] {
            let got = body(shoulder.0, shoulder.1).tilt_deg();
            assert!((got - want).abs() < 0.01, "shoulder at {shoulder:?}: {got}° not {want}°");
        }
    }

    #[test]
    #[allow(clippy::excessive_precision)] // the vectors as BLAZEPOSE.md writes them
    fn anchors_match_the_documented_test_vectors() {
        let a = blazepose_anchors();
        assert_eq!(a.len(), BLAZE_ANCHORS);
        let near = |i: usize, x: f32, y: f32| (a[i][0] - x).abs() < 1e-7 && (a[i][1] - y).abs() < 1e-7;
        assert!(near(0, 0.017857143, 0.017857143) && near(1, 0.017857143, 0.017857143));
        assert!(near(2, 0.053571429, 0.017857143));
        assert!(near(56, 0.017857143, 0.053571429));
        assert!(near(1568, 0.035714286, 0.035714286));
        assert!((1960..=1965).all(|i| near(i, 0.071428571, 0.071428571)));
        assert!(near(1966, 0.214285714, 0.071428571));
        assert!(near(2253, 0.928571429, 0.928571429));
    }

    #[test]
    fn tile_origins_match_the_python_reference() {
        assert_eq!(tile_origins(768, 192, 48), [0, 144, 288, 432, 576]);
        assert_eq!(tile_origins(576, 192, 48), [0, 144, 288, 384]);
        assert_eq!(tile_origins(768, 192, 96).len(), 7);
        assert_eq!(tile_origins(576, 192, 96), [0, 96, 192, 288, 384]);
        assert_eq!(plan_tiles(768, 576, 192, 96).len(), 35);
        assert_eq!(plan_tiles(768, 576, 192, 48).len(), 20);
        assert_eq!(tile_origins(192, 192, 96), [0]);
        assert_eq!(tile_origins(100, 192, 96), [-46]);
        assert_eq!(tile_origins(193, 192, 96), [0, 1]);
    }

    #[test]
    fn tiles_cover_every_pixel_and_stay_inside() {
        for (w, h) in [(768, 576), (640, 480), (1920, 1080), (193, 1000), (333, 197)] {
            let tiles = plan_tiles(w, h, 192, 96);
            let mut covered = vec![false; (w * h) as usize];
            for t in &tiles {
                assert!(t.x >= 0 && t.y >= 0 && t.x as u32 + t.side <= w && t.y as u32 + t.side <= h, "{t:?}");
                for y in t.y as u32..t.y as u32 + t.side {
                    for x in t.x as u32..t.x as u32 + t.side {
                        covered[(y * w + x) as usize] = true;
                    }
                }
            }
            assert!(covered.iter().all(|&c| c), "{w}x{h}");
        }
        // Smaller than a tile: one centred tile that contains the frame.
        assert_eq!(plan_tiles(100, 50, 192, 96), [Tile { x: -46, y: -71, side: 192 }]);
    }

    #[test]
    fn region_tiles_cover_the_regions_only() {
        let r = |x: f32, y: f32, w: f32, h: f32| Rect { x, y, w, h };
        assert!(plan_region_tiles(768, 576, 192, 96, &[]).is_empty());
        // A small region: one tile centred on it.
        let t = plan_region_tiles(768, 576, 192, 96, &[r(0.5, 0.5, 0.05, 0.1)]);
        assert_eq!(t, [Tile { x: 307, y: 221, side: 192 }]);
        // Near the corner: clamped inside the frame.
        let t = plan_region_tiles(768, 576, 192, 96, &[r(0.98, 0.98, 0.02, 0.02)]);
        assert_eq!(t, [Tile { x: 576, y: 384, side: 192 }]);
        // Two overlapping regions merge into one tile; regions apart, however near, get a tile each,
        // centred on them.
        let t = plan_region_tiles(
            768,
            576,
            192,
            96,
            &[r(0.1, 0.1, 0.04, 0.02), r(0.12, 0.1, 0.04, 0.02), r(0.9, 0.9, 0.02, 0.02)],
        );
        assert_eq!(t.len(), 2);
        let t = plan_region_tiles(768, 576, 192, 64, &[r(0.1, 0.1, 0.02, 0.02), r(0.15, 0.1, 0.02, 0.02)]);
        assert_eq!(t, [Tile { x: 0, y: 0, side: 192 }, Tile { x: 27, y: 0, side: 192 }]);
        // A wide region is tiled; every region pixel is covered.
        let region = r(0.1, 0.3, 0.6, 0.1);
        let t = plan_region_tiles(768, 576, 192, 96, &[region]);
        assert!(t.len() < 35 && t.len() >= 3, "{t:?}");
        for x in (0.1 * 768.0) as i32..(0.7 * 768.0) as i32 {
            for y in (0.3 * 576.0) as i32..(0.4 * 576.0) as i32 {
                assert!(t.iter().any(|t| x >= t.x && x < t.x + 192 && y >= t.y && y < t.y + 192), "({x},{y})");
            }
        }
        // A region a little taller than a tile (a followed person with padding): one centred tile;
        // a region a third taller: two.
        let t = plan_region_tiles(768, 576, 192, 64, &[r(0.4, 0.3, 0.15, 210.0 / 576.0)]);
        assert_eq!(t, [Tile { x: 269, y: 181, side: 192 }]);
        assert_eq!(plan_region_tiles(768, 576, 192, 64, &[r(0.4, 0.3, 0.15, 256.0 / 576.0)]).len(), 2);
        // The whole frame falls back to the full plan; garbage is ignored.
        assert_eq!(plan_region_tiles(768, 576, 192, 96, &[r(0.0, 0.0, 1.0, 1.0)]).len(), 35);
        assert!(plan_region_tiles(768, 576, 192, 96, &[r(f32::NAN, 0.0, 1.0, 1.0), r(0.5, 0.5, 0.0, 0.0)]).is_empty());
    }

    #[test]
    fn resampling_enlarges_and_shrinks_like_opencv() {
        // Weights of every output sum to one.
        let (mut taps, mut offs) = (Vec::new(), Vec::new());
        for side in [1, 3, 192, 224, 768, 1000] {
            fill_taps(side, 224, &mut taps, &mut offs);
            assert_eq!(offs.len(), 225);
            for o in 0..224 {
                let s: f32 = taps[offs[o]..offs[o + 1]].iter().map(|t| t.1).sum();
                assert!((s - 1.0).abs() < 1e-4, "side {side} out {o}: {s}");
                assert!(taps[offs[o]..offs[o + 1]].iter().all(|t| t.0 < side));
            }
        }
        // A uniform grey tile is uniform after resampling; pixels outside the frame are black (-1).
        let rgb = vec![255u8; 100 * 50 * 3];
        let mut r = Resampler::default();
        let mut dst = vec![0.0; 3 * 224 * 224];
        r.tile_tensor(&rgb, 100, 50, Tile { x: 0, y: 0, side: 50 }, &mut dst);
        assert!(dst.iter().all(|v| (v - 1.0).abs() < 1e-4));
        r.tile_tensor(&rgb, 100, 50, Tile { x: -46, y: -71, side: 192 }, &mut dst);
        assert!((dst[0] + 1.0).abs() < 1e-6, "corner outside the frame is black");
        assert!((dst[112 * 224 + 112] - 1.0).abs() < 1e-4, "centre is the frame");
        // A short buffer gives black, not a panic.
        r.tile_tensor(&rgb[..10], 100, 50, Tile { x: 0, y: 0, side: 50 }, &mut dst);
        assert!(dst.iter().all(|v| (v + 1.0).abs() < 1e-6));
    }

    #[test]
    fn decode_maps_anchor_offsets_to_frame_pixels() {
        let anchors = blazepose_anchors();
        let mut regs = vec![0.0f32; BLAZE_ANCHORS * COORDS];
        let mut logits = vec![-10.0f32; BLAZE_ANCHORS];
        // Anchor 2253 is at (0.9286, 0.9286) of the input. Box 22.4 px wide; hip 11.2 px left of the anchor;
        // the body-circle point 22.4 px below the hip (radius 0.1).
        logits[2253] = 2.0;
        logits[5] = f32::NAN;
        let r = &mut regs[2253 * COORDS..2254 * COORDS];
        r.copy_from_slice(&[0.0, 0.0, 22.4, 22.4, -11.2, 0.0, -11.2, 22.4, 0.0, 0.0, 0.0, 0.0]);
        let mut out = Vec::new();
        let tile = Tile { x: 100, y: 50, side: 192 };
        decode_blazepose(&regs, &logits, &anchors, 0.5, tile, &mut out);
        assert_eq!(out.len(), 1);
        let d = out[0];
        assert!((d.score - 0.880797).abs() < 1e-5);
        let a = 0.928_571_4 * 192.0;
        let close = |got: f32, want: f32| (got - want).abs() < 1e-3;
        assert!(close(d.detector_box[0], 100.0 + a - 9.6) && close(d.detector_box[3], 50.0 + a + 9.6), "{d:?}");
        let (hx, hy) = (100.0 + a - 9.6, 50.0 + a);
        assert!(close(d.keypoints[0][0], hx) && close(d.keypoints[0][1], hy));
        // radius 0.1 of the input = 19.2 px
        assert!(close(d.person[0], hx - 0.4 * 19.2) && close(d.person[1], hy - 19.2), "{d:?}");
        assert!(close(d.person[2], hx + 0.4 * 19.2) && close(d.person[3], hy + 19.2), "{d:?}");
    }

    #[test]
    fn weighted_nms_averages_clusters() {
        let p = |score: f32, x: f32| PersonDetection {
            score,
            person: [x, 0.0, x + 10.0, 20.0],
            detector_box: [x, 0.0, x + 10.0, 10.0],
            keypoints: [[x, 0.0]; 4],
        };
        let mut dets = vec![p(0.6, 2.0), p(0.9, 0.0), p(0.7, 50.0)];
        let mut out = Vec::new();
        weighted_nms(&mut dets, 0.3, NmsBox::Detector, &mut out);
        assert!(dets.is_empty());
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].score, 0.9);
        assert!((out[0].detector_box[0] - 0.6 * 2.0 / 1.5).abs() < 1e-5, "{:?}", out[0]);
        assert_eq!(out[1].person[0], 50.0);
    }
}
