//! Camera ingest: RTSP → decoded RGB frames, with GStreamer.
//!
//! Architecture invariant: this is the only edge crate that links GStreamer (the test camera in
//! `tests/rtsp-camera` is the other user). Each camera runs on its own named OS thread; frames are
//! handed to async code with `try_send` into a bounded channel, and a full channel drops the frame
//! and counts it, so a slow detector never backs up into the camera.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod camera;
mod stats;

pub use camera::{CameraConfig, RtspTransport, VideoError, decode_file, init, spawn_camera};
pub use stats::{CameraSnapshot, CameraState, CameraStats};
