//! Object detection with ONNX Runtime.
//!
//! Two detectors implement [`Detector`] (object-safe, so the daemon can hold `Box<dyn Detector + Send>`):
//! [`YoloDetector`] (any YOLO v8/v11 export) and [`BlazePersonDetector`] (the bundled, Apache-2.0 BlazePose
//! person detector, tiled so that small people are found).
//!
//! Architecture invariant: this is the only crate that links `ort`. Pre- and post-processing
//! ([`letterbox`], [`decode_yolo`], [`nms`]) are pure functions tested without a model; [`YoloDetector`]
//! wraps one ONNX Runtime session and is used from a dedicated (non-async) worker thread.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod blazepose;
mod detector;
mod letterbox;
mod runtime;
mod yolo;

pub use blazepose::{
    BLAZE_ANCHORS, BLAZE_INPUT, BlazeConfig, BlazePersonDetector, BlazeTimes, NmsBox, PERSON_LABEL, PersonDetection,
    Tile, blazepose_anchors, decode_blazepose, plan_region_tiles, plan_tiles, tile_origins, weighted_nms,
};
pub use detector::Detector;
pub use letterbox::{Letterbox, letterbox};
pub use runtime::{DetectError, OnnxRuntime};
pub use yolo::{StepTimes, YoloConfig, YoloDetector, decode_yolo, nms};
