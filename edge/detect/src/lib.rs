//! Object detection with ONNX Runtime.
//!
//! Architecture invariant: this is the only crate that links `ort`. Pre- and post-processing
//! ([`letterbox`], [`decode_yolo`], [`nms`]) are pure functions tested without a model; [`YoloDetector`]
//! wraps one ONNX Runtime session and is used from a dedicated (non-async) worker thread.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod letterbox;
mod runtime;
mod yolo;

pub use letterbox::{Letterbox, letterbox};
pub use runtime::{DetectError, OnnxRuntime};
pub use yolo::{StepTimes, YoloConfig, YoloDetector, decode_yolo, nms};
