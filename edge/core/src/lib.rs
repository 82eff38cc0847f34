//! Sans-IO edge logic.
//!
//! Architecture invariant: nothing here does IO, spawns, sleeps or reads the clock. Callers pass
//! `now` and ids in and get values back, so every decision is table-testable.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod analysis;
pub mod backoff;
pub mod bandwidth;
pub mod detections;
pub mod frame;
pub mod geometry;
pub mod motion;
pub mod scene;
pub mod track;

pub use analysis::{AnalyzerConfig, CameraAnalyzer, EventMode, ObjectFilter, Plan, SceneUpdate};
pub use backoff::Backoff;
pub use bandwidth::TokenBucket;
pub use detections::{ClassRule, Detected, EventContext, detections_to_events};
pub use frame::Frame;
