use vigil_proto::Timestamp;

/// One decoded picture from a camera, tightly packed RGB8 (`width * height * 3` bytes).
#[derive(Clone)]
pub struct Frame {
    /// Camera id as configured.
    pub camera: std::sync::Arc<str>,
    /// Per-camera sequence number of frames handed to analysis (gaps = frames dropped downstream).
    pub seq: u64,
    pub captured_at: Timestamp,
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("camera", &self.camera)
            .field("seq", &self.seq)
            .field("captured_at", &self.captured_at)
            .field("size", &(self.width, self.height))
            .finish_non_exhaustive()
    }
}
