use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use edge_core::Detected;
use ort::session::{Session, builder::GraphOptimizationLevel};
use ort::value::TensorRef;

use crate::letterbox::letterbox_into;
use crate::{DetectError, Letterbox, OnnxRuntime};

/// Settings for a YOLO v8/v11 detection export (`yolo export format=onnx`).
#[derive(Debug, Clone)]
pub struct YoloConfig {
    pub model: PathBuf,
    /// Square input side. Must match a fixed-size model; free for a dynamic-size export.
    pub input_size: Option<u32>,
    /// Minimum class score for a box to survive decoding.
    pub score_threshold: f32,
    /// Boxes of the same class overlapping more than this are suppressed.
    pub iou_threshold: f32,
    /// ONNX Runtime intra-op threads (0 = ONNX Runtime's default).
    pub threads: usize,
}

/// One loaded YOLO model. Not `Sync`: use it from one worker thread.
#[derive(Debug)]
pub struct YoloDetector {
    session: Session,
    input_name: String,
    size: u32,
    /// The model takes any input height and width (multiples of 32): inputs are "rect" letterboxes.
    rect: bool,
    classes: usize,
    score_threshold: f32,
    iou_threshold: f32,
    input: Vec<f32>,
    name: String,
    class_names: Vec<String>,
}

impl YoloDetector {
    /// Loads the model and checks it has one image input and one `[1, 4+C, N]` output.
    pub fn build(rt: &OnnxRuntime, cfg: &YoloConfig) -> Result<YoloDetector, DetectError> {
        let path = &cfg.model;
        let model_err = |message: String| DetectError::Model { path: path.clone(), message };
        let shape_err = |message: String| DetectError::Shape { path: path.clone(), message };
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
        if dims.len() != 4 || (dims[1] != 3 && dims[1] != -1) {
            return Err(shape_err(format!("input must be [N,3,H,W], found {dims:?}")));
        }
        let fixed = (dims[2] > 0 && dims[3] > 0).then_some((dims[2], dims[3]));
        let size = match (fixed, cfg.input_size) {
            (Some((h, w)), _) if h != w => return Err(shape_err(format!("non-square input {w}x{h}"))),
            (Some((h, _)), Some(want)) if h != i64::from(want) => {
                return Err(shape_err(format!("model input is {h}, config says input_size = {want}")));
            }
            (Some((h, _)), _) => h as u32,
            (None, Some(want)) => want,
            (None, None) => 640,
        };
        if size == 0 || size % 32 != 0 {
            return Err(shape_err(format!("input size {size} is not a positive multiple of 32")));
        }
        let [output] = session.outputs() else {
            return Err(shape_err(format!("expected 1 output, found {}", session.outputs().len())));
        };
        let out_dims: Vec<i64> = output.dtype().tensor_shape().map(|s| s.to_vec()).unwrap_or_default();
        let classes = match out_dims.as_slice() {
            [_, c, _] if *c > 4 => (*c - 4) as usize,
            other => return Err(shape_err(format!("output must be [1, 4+classes, boxes], found {other:?}"))),
        };
        let class_names = session
            .metadata()
            .ok()
            .and_then(|m| m.custom("names"))
            .and_then(|text| crate::detector::parse_ultralytics_names(&text, classes))
            .unwrap_or_else(|| (0..classes).map(|i| format!("class{i}")).collect());
        Ok(YoloDetector {
            name: YoloDetector::model_name(path),
            class_names,
            input_name: input.name().to_owned(),
            session,
            size,
            rect: fixed.is_none(),
            classes,
            score_threshold: cfg.score_threshold,
            iou_threshold: cfg.iou_threshold,
            input: Vec::new(),
        })
    }

    /// Input side the model runs at (the longer side, for a dynamic-size model).
    pub fn input_size(&self) -> u32 {
        self.size
    }

    /// How a `width`×`height` frame goes into the model (its input tensor's size and letterbox).
    pub fn input_for(&self, width: u32, height: u32) -> Letterbox {
        self.fit(width, height, None)
    }

    /// Square inputs even for a dynamic-size model (the exact tensors the seed's stack feeds it:
    /// for side-by-side benchmarks). A fixed-size model always takes squares.
    pub fn use_square_inputs(&mut self) {
        self.rect = false;
    }

    /// How a `width`×`height` picture goes into the model; `max_scale` caps the scale (a crop seen at
    /// its frame's scale) on dynamic-size models.
    fn fit(&self, width: u32, height: u32, max_scale: Option<f32>) -> Letterbox {
        if self.rect {
            Letterbox::rect(width, height, self.size, max_scale)
        } else {
            Letterbox::new(width, height, self.size)
        }
    }

    /// Detects objects in each pixel crop `(x, y, w, h)` of a packed RGB8 frame (see
    /// [`YoloDetector::detect_crop`]); boxes come back normalised to the whole frame, with duplicates
    /// across overlapping crops suppressed. `buf` holds each crop's pixels in turn.
    pub fn detect_crops(
        &mut self,
        rgb: &[u8],
        (width, height): (u32, u32),
        crops: &[(u32, u32, u32, u32)],
        buf: &mut Vec<u8>,
    ) -> Result<Vec<Detected>, DetectError> {
        let mut all = Vec::new();
        for &c in crops {
            edge_core::analysis::crop_rgb(rgb, width, c, buf);
            let mut found = self.detect_crop(buf, (c.2, c.3), (width, height))?;
            edge_core::analysis::uncrop(&mut found, c, width, height);
            all.extend(found);
        }
        Ok(if crops.len() > 1 { nms(all, self.iou_threshold) } else { all })
    }

    /// Detects objects in a `width`×`height` crop of a `frame_width`×`frame_height` frame. A
    /// dynamic-size model sees the crop at the scale the whole frame would have, so a small crop is
    /// a small (cheap) input with the recall of a whole-frame pass; a fixed-size model sees it
    /// letterboxed to its input. Boxes come back normalised to the crop.
    pub fn detect_crop(
        &mut self,
        rgb: &[u8],
        (width, height): (u32, u32),
        (frame_width, frame_height): (u32, u32),
    ) -> Result<Vec<Detected>, DetectError> {
        let frame_scale = Letterbox::rect(frame_width, frame_height, self.size, None).scale;
        let lb = self.fit(width, height, Some(frame_scale));
        self.run(rgb, width, height, lb).map(|(found, _)| found)
    }

    /// Number of classes the model predicts.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Class names from the export's `names` metadata (Ultralytics), `class{i}` where it has none.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    pub(crate) fn name_str(&self) -> &str {
        &self.name
    }

    /// Model path for labels in events and logs.
    pub fn model_name(path: &Path) -> String {
        path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into())
    }

    /// Detects objects in a packed RGB8 frame; boxes come back normalised to the frame.
    pub fn detect(&mut self, rgb: &[u8], width: u32, height: u32) -> Result<Vec<Detected>, DetectError> {
        self.detect_timed(rgb, width, height).map(|(found, _)| found)
    }

    /// [`YoloDetector::detect`] plus how long each step took (for benchmarks and the status page).
    pub fn detect_timed(
        &mut self,
        rgb: &[u8],
        width: u32,
        height: u32,
    ) -> Result<(Vec<Detected>, StepTimes), DetectError> {
        let lb = self.fit(width, height, None);
        self.run(rgb, width, height, lb)
    }

    fn run(
        &mut self,
        rgb: &[u8],
        width: u32,
        height: u32,
        lb: Letterbox,
    ) -> Result<(Vec<Detected>, StepTimes), DetectError> {
        let t0 = Instant::now();
        letterbox_into(rgb, width, height, &lb, &mut self.input);
        let (w, h) = (lb.width as usize, lb.height as usize);
        let tensor = TensorRef::from_array_view(([1usize, 3, h, w], self.input.as_slice()))
            .map_err(|e| DetectError::Inference(e.to_string()))?;
        let t1 = Instant::now();
        let outputs = self
            .session
            .run(ort::inputs![self.input_name.as_str() => tensor])
            .map_err(|e| DetectError::Inference(e.to_string()))?;
        let t2 = Instant::now();
        let (shape, data) =
            outputs[0].try_extract_tensor::<f32>().map_err(|e| DetectError::Inference(e.to_string()))?;
        let dims: Vec<i64> = shape.to_vec();
        let [_, channels, boxes] = dims.as_slice() else {
            return Err(DetectError::Inference(format!("unexpected output shape {dims:?}")));
        };
        let raw = decode_yolo(data, *channels as usize, *boxes as usize, self.score_threshold, &lb, width, height);
        let found = nms(raw, self.iou_threshold);
        let times = StepTimes { preprocess: t1 - t0, inference: t2 - t1, postprocess: t2.elapsed() };
        Ok((found, times))
    }
}

/// Time spent in each step of one detection.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepTimes {
    pub preprocess: Duration,
    pub inference: Duration,
    pub postprocess: Duration,
}

/// Decodes a YOLO v8/v11 head: `data` is `[4 + classes, boxes]` row-major, each column
/// `cx, cy, w, h` in input pixels followed by per-class scores. Keeps the best class of each box
/// when it reaches `threshold`, maps it back through the letterbox and clips it to the frame.
pub fn decode_yolo(
    data: &[f32],
    channels: usize,
    boxes: usize,
    threshold: f32,
    lb: &Letterbox,
    width: u32,
    height: u32,
) -> Vec<Detected> {
    let mut found = Vec::new();
    if channels <= 4 || data.len() < channels * boxes || width == 0 || height == 0 {
        return found;
    }
    let (fw, fh) = (width as f32, height as f32);
    for i in 0..boxes {
        let (mut best, mut best_score) = (0usize, f32::NEG_INFINITY);
        for c in 4..channels {
            let s = data[c * boxes + i];
            if s > best_score {
                best_score = s;
                best = c - 4;
            }
        }
        if best_score.is_nan() || best_score < threshold {
            continue;
        }
        let (cx, cy, w, h) = (data[i], data[boxes + i], data[2 * boxes + i], data[3 * boxes + i]);
        let (x0, y0) = lb.to_frame(cx - w / 2.0, cy - h / 2.0);
        let (x1, y1) = lb.to_frame(cx + w / 2.0, cy + h / 2.0);
        let (x0, y0, x1, y1) = (x0.clamp(0.0, fw), y0.clamp(0.0, fh), x1.clamp(0.0, fw), y1.clamp(0.0, fh));
        if x1 - x0 < 1.0 || y1 - y0 < 1.0 {
            continue;
        }
        found.push(Detected {
            class_id: best as u32,
            score: best_score,
            x: x0 / fw,
            y: y0 / fh,
            w: (x1 - x0) / fw,
            h: (y1 - y0) / fh,
        });
    }
    found
}

fn iou(a: &Detected, b: &Detected) -> f32 {
    let ix = (a.x + a.w).min(b.x + b.w) - a.x.max(b.x);
    let iy = (a.y + a.h).min(b.y + b.h) - a.y.max(b.y);
    if ix <= 0.0 || iy <= 0.0 {
        return 0.0;
    }
    let inter = ix * iy;
    inter / (a.w * a.h + b.w * b.h - inter)
}

/// Per-class greedy non-maximum suppression; returns the kept boxes best first.
pub fn nms(mut boxes: Vec<Detected>, iou_threshold: f32) -> Vec<Detected> {
    boxes.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detected> = Vec::with_capacity(boxes.len().min(64));
    for b in boxes {
        if kept.iter().all(|k| k.class_id != b.class_id || iou(k, &b) <= iou_threshold) {
            kept.push(b);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(class_id: u32, score: f32, x: f32, y: f32, w: f32, h: f32) -> Detected {
        Detected { class_id, score, x, y, w, h }
    }

    #[test]
    fn nms_suppresses_overlaps_within_a_class_only() {
        let kept = nms(
            vec![
                d(0, 0.6, 0.10, 0.10, 0.2, 0.2),
                d(0, 0.9, 0.11, 0.11, 0.2, 0.2),
                d(1, 0.7, 0.11, 0.11, 0.2, 0.2),
                d(0, 0.5, 0.60, 0.60, 0.2, 0.2),
            ],
            0.45,
        );
        let got: Vec<(u32, f32)> = kept.iter().map(|k| (k.class_id, k.score)).collect();
        assert_eq!(got, vec![(0, 0.9), (1, 0.7), (0, 0.5)]);
    }

    #[test]
    fn decode_maps_through_the_letterbox_and_thresholds() {
        // 2 classes, 3 boxes, model input 640 for a 768×576 frame (pad_y = 80).
        let lb = Letterbox::new(768, 576, 640);
        #[rustfmt::skip]
        let data = [
            320.0, 100.0, 600.0,  // cx
            320.0, 100.0, 300.0,  // cy
            100.0,  10.0, 100.0,  // w
            200.0,  10.0, 100.0,  // h
            0.9,   0.1,   0.2,    // class 0
            0.1,   0.05,  0.8,    // class 1
        ];
        let got = decode_yolo(&data, 6, 3, 0.25, &lb, 768, 576);
        assert_eq!(got.len(), 2);
        let a = got[0];
        assert_eq!((a.class_id, a.score), (0, 0.9));
        // x: (270/s, 370/s) → 324..444 px; y: (220-80)/s .. (420-80)/s → 168..408 px.
        let px = |v: f32, full: f32| (v * full).round();
        assert_eq!((px(a.x, 768.0), px(a.y, 576.0), px(a.w, 768.0), px(a.h, 576.0)), (324.0, 168.0, 120.0, 240.0));
        assert_eq!(got[1].class_id, 1);
        // The right edge (600+50 = 650 > 640 input) is clipped to the frame.
        assert!((got[1].x + got[1].w - 1.0).abs() < 1e-6);
    }

    #[test]
    fn decode_tolerates_nan_and_short_buffers() {
        let lb = Letterbox::new(100, 100, 32);
        assert!(decode_yolo(&[f32::NAN; 6], 6, 1, 0.1, &lb, 100, 100).is_empty());
        assert!(decode_yolo(&[1.0; 5], 6, 1, 0.1, &lb, 100, 100).is_empty());
        assert!(decode_yolo(&[1.0; 6], 4, 1, 0.1, &lb, 100, 100).is_empty());
    }
}
