use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};

/// Connection state of one camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CameraState {
    Connecting,
    Streaming,
    /// Waiting before the next connection attempt after a failure or the end of the stream.
    Backoff,
    Stopped,
}

impl CameraState {
    pub fn as_str(self) -> &'static str {
        match self {
            CameraState::Connecting => "connecting",
            CameraState::Streaming => "streaming",
            CameraState::Backoff => "backoff",
            CameraState::Stopped => "stopped",
        }
    }

    fn from_u8(v: u8) -> CameraState {
        match v {
            1 => CameraState::Streaming,
            2 => CameraState::Backoff,
            3 => CameraState::Stopped,
            _ => CameraState::Connecting,
        }
    }
}

/// Live counters of one camera, shared between its thread and the status endpoint.
#[derive(Debug, Default)]
pub struct CameraStats {
    state: AtomicU8,
    /// Frames that came out of the decoder.
    pub frames_decoded: AtomicU64,
    /// Frames handed to analysis.
    pub frames_sent: AtomicU64,
    /// Frames sampled for analysis but dropped because analysis was busy.
    pub frames_dropped: AtomicU64,
    /// Connection attempts after the first.
    pub reconnects: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// A consistent-enough copy of [`CameraStats`] for reporting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraSnapshot {
    pub state: CameraState,
    pub frames_decoded: u64,
    pub frames_sent: u64,
    pub frames_dropped: u64,
    pub reconnects: u64,
    pub last_error: Option<String>,
}

impl CameraStats {
    pub fn set_state(&self, s: CameraState) {
        self.state.store(s as u8, Relaxed);
    }

    pub fn state(&self) -> CameraState {
        CameraState::from_u8(self.state.load(Relaxed))
    }

    pub fn set_error(&self, e: String) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    }

    pub fn snapshot(&self) -> CameraSnapshot {
        CameraSnapshot {
            state: self.state(),
            frames_decoded: self.frames_decoded.load(Relaxed),
            frames_sent: self.frames_sent.load(Relaxed),
            frames_dropped: self.frames_dropped.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            last_error: self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }
}

/// Live counters of one camera's record pipeline (pre-roll buffer, clips, continuous segments).
#[derive(Debug, Default)]
pub struct RecordStats {
    state: AtomicU8,
    /// Continuous recording is paused because the disk is below its reserve even after retention.
    disk_paused: std::sync::atomic::AtomicBool,
    /// Encoded access units received from the camera.
    pub samples_received: AtomicU64,
    /// Samples a clip or segment writer could not take in time (dropped, never stalling the camera).
    pub samples_dropped: AtomicU64,
    /// Bytes of finished clips and segments.
    pub bytes_written: AtomicU64,
    pub clips_written: AtomicU64,
    pub clips_failed: AtomicU64,
    pub segments_written: AtomicU64,
    /// Segments deleted by retention or the disk-full policy.
    pub segments_deleted: AtomicU64,
    /// Connection attempts after the first.
    pub reconnects: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// A copy of [`RecordStats`] for reporting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSnapshot {
    pub state: CameraState,
    pub disk_paused: bool,
    pub samples_received: u64,
    pub samples_dropped: u64,
    pub bytes_written: u64,
    pub clips_written: u64,
    pub clips_failed: u64,
    pub segments_written: u64,
    pub segments_deleted: u64,
    pub reconnects: u64,
    pub last_error: Option<String>,
}

impl RecordStats {
    pub fn set_state(&self, s: CameraState) {
        self.state.store(s as u8, Relaxed);
    }

    pub fn state(&self) -> CameraState {
        CameraState::from_u8(self.state.load(Relaxed))
    }

    pub fn set_disk_paused(&self, paused: bool) {
        self.disk_paused.store(paused, Relaxed);
    }

    pub fn disk_paused(&self) -> bool {
        self.disk_paused.load(Relaxed)
    }

    pub fn set_error(&self, e: String) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    }

    pub fn snapshot(&self) -> RecordSnapshot {
        RecordSnapshot {
            state: self.state(),
            disk_paused: self.disk_paused(),
            samples_received: self.samples_received.load(Relaxed),
            samples_dropped: self.samples_dropped.load(Relaxed),
            bytes_written: self.bytes_written.load(Relaxed),
            clips_written: self.clips_written.load(Relaxed),
            clips_failed: self.clips_failed.load(Relaxed),
            segments_written: self.segments_written.load(Relaxed),
            segments_deleted: self.segments_deleted.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            last_error: self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }
}
