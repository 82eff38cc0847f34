//! Camera ingest: RTSP → decoded RGB frames, with GStreamer; recording of the encoded record stream
//! (event clips from a pre-roll buffer, continuous segments) and JPEG snapshots.
//!
//! Architecture invariant: this is the only edge crate that links GStreamer (the test camera in
//! `tests/rtsp-camera` is the other user). Each camera runs on its own named OS thread; frames are
//! handed to async code with `try_send` into a bounded channel, and a full channel drops the frame
//! and counts it, so a slow detector never backs up into the camera. Recording follows the same
//! rule: the streaming thread only touches memory, and clip and segment writers (one thread each)
//! take samples through bounded channels that drop and count when the disk is slow.

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod camera;
pub mod record;
pub mod snapshot;
mod stats;

pub use camera::{CameraConfig, RtspTransport, VideoError, decode_file, init, spawn_camera};
pub use record::{
    ClipAccepted, ClipError, ClipReport, ContinuousConfig, RecordConfig, RecordEvent, Recorder, Retention,
    SegmentReport, spawn_recorder,
};
pub use snapshot::{BestShot, BestShots, SnapshotError, SnapshotOptions, encode_snapshot};
pub use stats::{CameraSnapshot, CameraState, CameraStats, RecordSnapshot, RecordStats};
