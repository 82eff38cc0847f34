use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use edge_core::{Backoff, Frame};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{CameraState, CameraStats};

/// How RTP travels from the camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtspTransport {
    Tcp,
    Udp,
}

/// One camera, validated.
#[derive(Debug, Clone)]
pub struct CameraConfig {
    pub id: Arc<str>,
    /// `rtsp://` or `rtsps://` URL (credentials inside it are never logged).
    pub url: String,
    pub transport: RtspTransport,
    /// Frames per second handed to analysis (the stream is decoded at its own rate).
    pub analyze_fps: f64,
    /// Optional output size for analysis frames; `None` keeps the stream's size.
    pub size: Option<(u32, u32)>,
    /// No decoded frame for this long while connected means the stream is dead: reconnect.
    pub stall_timeout: Duration,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
}

/// Why one connection to a camera ended.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    /// GStreamer itself could not start (missing library or plugins).
    #[error("cannot initialise gstreamer: {0}")]
    Init(String),
    /// The pipeline could not be built (a plugin is missing).
    #[error("cannot build pipeline: {0}")]
    Build(String),
    /// An element reported an error (camera unreachable, auth failure, corrupt stream, ...).
    #[error("{element}: {message}")]
    Pipeline { element: String, message: String, debug: Option<String> },
    /// The camera sent nothing decodable for too long.
    #[error("no frame for {0:?}")]
    Stalled(Duration),
    /// The camera closed the stream.
    #[error("end of stream")]
    EndOfStream,
}

/// Initialises GStreamer once per process and checks the plugins the edge needs are present.
pub fn init() -> Result<(), VideoError> {
    gst::init().map_err(|e| VideoError::Init(e.to_string()))?;
    for name in ["rtspsrc", "decodebin", "videoconvert", "videoscale", "appsink"] {
        if gst::ElementFactory::find(name).is_none() {
            return Err(VideoError::Init(format!(
                "gstreamer element {name} is missing (install the gstreamer plugins)"
            )));
        }
    }
    Ok(())
}

/// The URL with any `user:password@` removed, for logs.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***@{}", &url[..s + 3], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// Starts a thread that keeps the camera connected until `cancel`, sending sampled frames to `tx`.
pub fn spawn_camera(
    cfg: CameraConfig,
    tx: mpsc::Sender<Frame>,
    stats: Arc<CameraStats>,
    cancel: CancellationToken,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(format!("camera-{}", cfg.id)).spawn(move || run(cfg, tx, stats, cancel))
}

fn run(cfg: CameraConfig, tx: mpsc::Sender<Frame>, stats: Arc<CameraStats>, cancel: CancellationToken) {
    let span = tracing::info_span!("stage", stage = "rtsp", camera = %cfg.id);
    let _enter = span.enter();
    let mut backoff = Backoff::new(cfg.reconnect_min, cfg.reconnect_max);
    let seq = Arc::new(AtomicU64::new(0));
    let mut first = true;
    while !cancel.is_cancelled() {
        if !first {
            stats.reconnects.fetch_add(1, Relaxed);
        }
        first = false;
        stats.set_state(CameraState::Connecting);
        tracing::info!(url = %redact(&cfg.url), "Connecting to camera.");
        let started = Instant::now();
        match connect_once(&cfg, &tx, &stats, &seq, &cancel) {
            Ok(()) => break,
            Err(error) => {
                tracing::warn!(%error, "Camera stream ended; will reconnect.");
                stats.set_error(error.to_string());
            }
        }
        if tx.is_closed() {
            break;
        }
        if started.elapsed() > cfg.reconnect_max.max(Duration::from_secs(10)) {
            backoff.reset();
        }
        stats.set_state(CameraState::Backoff);
        let jitter =
            f64::from(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().subsec_nanos())
                / 1e9;
        let delay = backoff.next_delay(jitter);
        let until = Instant::now() + delay;
        while Instant::now() < until && !cancel.is_cancelled() {
            std::thread::sleep(Duration::from_millis(50).min(until.saturating_duration_since(Instant::now())));
        }
    }
    stats.set_state(CameraState::Stopped);
    tracing::info!("Camera stopped.");
}

/// Runs one connection; `Ok` only when cancelled.
fn connect_once(
    cfg: &CameraConfig,
    tx: &mpsc::Sender<Frame>,
    stats: &Arc<CameraStats>,
    seq: &Arc<AtomicU64>,
    cancel: &CancellationToken,
) -> Result<(), VideoError> {
    let built = build_pipeline(cfg, tx, stats, seq)?;
    let result = watch(&built, cfg, stats, cancel);
    let _ = built.0.set_state(gst::State::Null);
    result
}

/// Milliseconds since `epoch` of the last decoded frame, shared with the appsink callback.
struct LastFrame {
    epoch: Instant,
    ms: AtomicU64,
}

fn watch(
    (pipeline, last): &(gst::Pipeline, Arc<LastFrame>),
    cfg: &CameraConfig,
    stats: &CameraStats,
    cancel: &CancellationToken,
) -> Result<(), VideoError> {
    pipeline.set_state(gst::State::Playing).map_err(|e| VideoError::Build(format!("cannot start pipeline: {e}")))?;
    let bus = pipeline.bus().ok_or_else(|| VideoError::Build("pipeline has no bus".into()))?;
    loop {
        if cancel.is_cancelled() {
            return Ok(());
        }
        let msg = bus
            .timed_pop_filtered(gst::ClockTime::from_mseconds(100), &[gst::MessageType::Error, gst::MessageType::Eos]);
        match msg.as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Error(err)) => {
                return Err(VideoError::Pipeline {
                    element: err.src().map(|s| s.name().to_string()).unwrap_or_else(|| "pipeline".into()),
                    message: err.error().to_string(),
                    debug: err.debug().map(|d| d.to_string()),
                });
            }
            Some(gst::MessageView::Eos(_)) => return Err(VideoError::EndOfStream),
            _ => {}
        }
        let since_last = last.epoch.elapsed().saturating_sub(Duration::from_millis(last.ms.load(Relaxed)));
        if since_last > cfg.stall_timeout {
            return Err(VideoError::Stalled(cfg.stall_timeout));
        }
        if stats.state() == CameraState::Connecting && last.ms.load(Relaxed) > 0 {
            stats.set_state(CameraState::Streaming);
        }
    }
}

fn build_pipeline(
    cfg: &CameraConfig,
    tx: &mpsc::Sender<Frame>,
    stats: &Arc<CameraStats>,
    seq: &Arc<AtomicU64>,
) -> Result<(gst::Pipeline, Arc<LastFrame>), VideoError> {
    let build = |e: glib_error::Any| VideoError::Build(e.to_string());
    let pipeline = gst::Pipeline::new();
    let protocols = match cfg.transport {
        RtspTransport::Tcp => "tcp",
        RtspTransport::Udp => "udp",
    };
    // Elements are created programmatically, so a URL can never inject pipeline syntax.
    let src = gst::ElementFactory::make("rtspsrc")
        .property("location", &cfg.url)
        .property("latency", 200u32)
        .property_from_str("protocols", protocols)
        .build()
        .map_err(|e| build(e.into()))?;
    let decode = gst::ElementFactory::make("decodebin").build().map_err(|e| build(e.into()))?;
    let caps = match cfg.size {
        Some((w, h)) => format!("video/x-raw,format=RGB,width={w},height={h}"),
        None => "video/x-raw,format=RGB".to_owned(),
    };
    let tail = gst::parse::bin_from_description(
        &format!("videoconvert ! videoscale ! {caps} ! appsink name=sink sync=false max-buffers=1 drop=true"),
        true,
    )
    .map_err(|e| build(e.into()))?;
    let sink = tail
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| VideoError::Build("appsink missing".into()))?;
    pipeline.add_many([&src, &decode, tail.upcast_ref()]).map_err(|e| build(e.into()))?;

    // rtspsrc exposes one pad per RTP stream: video goes to the decoder, anything else to a fakesink.
    let decode_weak = decode.downgrade();
    let pipeline_weak = pipeline.downgrade();
    src.connect_pad_added(move |_, pad| {
        let (Some(decode), Some(pipeline)) = (decode_weak.upgrade(), pipeline_weak.upgrade()) else { return };
        let is_video = pad
            .current_caps()
            .and_then(|c| c.structure(0).and_then(|s| s.get::<String>("media").ok()))
            .is_some_and(|m| m == "video");
        let sinkpad = decode.static_pad("sink");
        match sinkpad {
            Some(sinkpad) if is_video && !sinkpad.is_linked() => {
                if let Err(error) = pad.link(&sinkpad) {
                    tracing::warn!(?error, "Cannot link camera video stream.");
                }
            }
            _ => {
                if let Ok(fake) = gst::ElementFactory::make("fakesink").property("sync", false).build() {
                    let _ = pipeline.add(&fake);
                    let _ = fake.sync_state_with_parent();
                    if let Some(p) = fake.static_pad("sink") {
                        let _ = pad.link(&p);
                    }
                }
            }
        }
    });
    let tail_weak = tail.downgrade();
    decode.connect_pad_added(move |_, pad| {
        let Some(tail) = tail_weak.upgrade() else { return };
        let is_video =
            pad.current_caps().and_then(|c| c.structure(0).map(|s| s.name().starts_with("video/"))).unwrap_or(false);
        if let Some(sinkpad) = tail.static_pad("sink")
            && is_video
            && !sinkpad.is_linked()
            && let Err(error) = pad.link(&sinkpad)
        {
            tracing::warn!(?error, "Cannot link decoded video.");
        }
    });

    let last = Arc::new(LastFrame { epoch: Instant::now(), ms: AtomicU64::new(0) });
    let sampler = Sampler {
        camera: cfg.id.clone(),
        period: Duration::from_secs_f64(1.0 / cfg.analyze_fps),
        next_due: None,
        tx: tx.clone(),
        stats: stats.clone(),
        seq: seq.clone(),
        last: last.clone(),
    };
    let sampler = std::sync::Mutex::new(sampler);
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                sampler.lock().map_err(|_| gst::FlowError::Error)?.on_sample(&sample)
            })
            .build(),
    );
    Ok((pipeline, last))
}

/// Picks frames at the analysis rate and hands them over without ever blocking the stream.
struct Sampler {
    camera: Arc<str>,
    period: Duration,
    next_due: Option<Instant>,
    tx: mpsc::Sender<Frame>,
    stats: Arc<CameraStats>,
    seq: Arc<AtomicU64>,
    last: Arc<LastFrame>,
}

impl Sampler {
    fn on_sample(&mut self, sample: &gst::Sample) -> Result<gst::FlowSuccess, gst::FlowError> {
        let now = Instant::now();
        self.stats.frames_decoded.fetch_add(1, Relaxed);
        self.last.ms.store(now.duration_since(self.last.epoch).as_millis().max(1) as u64, Relaxed);
        let due = self.next_due.unwrap_or(now);
        if now < due {
            return Ok(gst::FlowSuccess::Ok);
        }
        // Keep a steady cadence, but never try to "catch up" after a pause.
        let next = due + self.period;
        self.next_due = Some(if next + self.period < now { now + self.period } else { next });

        let frame = match to_frame(sample, &self.camera, self.seq.load(Relaxed)) {
            Some(f) => f,
            None => return Ok(gst::FlowSuccess::Ok),
        };
        match self.tx.try_send(frame) {
            Ok(()) => {
                self.seq.fetch_add(1, Relaxed);
                self.stats.frames_sent.fetch_add(1, Relaxed);
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.stats.frames_dropped.fetch_add(1, Relaxed);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(gst::FlowError::Flushing),
        }
        Ok(gst::FlowSuccess::Ok)
    }
}

/// Copies a decoded RGB sample into a tightly packed frame (rows may be padded in GStreamer).
fn to_frame(sample: &gst::Sample, camera: &Arc<str>, seq: u64) -> Option<Frame> {
    let info = gst_video::VideoInfo::from_caps(sample.caps()?).ok()?;
    let buffer = sample.buffer()?;
    let map = buffer.map_readable().ok()?;
    let (w, h) = (info.width() as usize, info.height() as usize);
    let stride = usize::try_from(*info.stride().first()?).ok()?;
    let row = w * 3;
    if stride < row || map.len() < stride * (h.saturating_sub(1)) + row {
        return None;
    }
    let mut rgb = Vec::with_capacity(row * h);
    for y in 0..h {
        rgb.extend_from_slice(&map[y * stride..y * stride + row]);
    }
    Some(Frame {
        camera: camera.clone(),
        seq,
        captured_at: SystemTime::now().into(),
        width: info.width(),
        height: info.height(),
        rgb,
    })
}

/// Error conversions for element construction.
pub(crate) mod glib_error {
    pub struct Any(String);
    impl std::fmt::Display for Any {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }
    impl From<gstreamer::glib::BoolError> for Any {
        fn from(e: gstreamer::glib::BoolError) -> Any {
            Any(e.to_string())
        }
    }
    impl From<gstreamer::glib::Error> for Any {
        fn from(e: gstreamer::glib::Error) -> Any {
            Any(e.to_string())
        }
    }
}

/// Decodes up to `limit` frames of a local video file to RGB, as fast as possible (for benchmarks
/// and tests that need real frames without a camera).
pub fn decode_file(path: &std::path::Path, limit: usize) -> Result<Vec<Frame>, VideoError> {
    init()?;
    let build = |e: glib_error::Any| VideoError::Build(e.to_string());
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("filesrc").property("location", path).build().map_err(|e| build(e.into()))?;
    let decode = gst::ElementFactory::make("decodebin").build().map_err(|e| build(e.into()))?;
    let tail = gst::parse::bin_from_description(
        "videoconvert ! video/x-raw,format=RGB ! appsink name=sink sync=false max-buffers=4",
        true,
    )
    .map_err(|e| build(e.into()))?;
    let sink = tail
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| VideoError::Build("appsink missing".into()))?;
    pipeline.add_many([&src, &decode, tail.upcast_ref()]).map_err(|e| build(e.into()))?;
    src.link(&decode).map_err(|e| build(e.into()))?;
    let tail_weak = tail.downgrade();
    decode.connect_pad_added(move |_, pad| {
        if let Some(tail) = tail_weak.upgrade()
            && let Some(sinkpad) = tail.static_pad("sink")
            && !sinkpad.is_linked()
        {
            let _ = pad.link(&sinkpad);
        }
    });
    pipeline.set_state(gst::State::Playing).map_err(|e| VideoError::Build(e.to_string()))?;
    let camera: Arc<str> = Arc::from("file");
    let mut frames = Vec::new();
    while frames.len() < limit {
        match sink.pull_sample() {
            Ok(sample) => {
                if let Some(frame) = to_frame(&sample, &camera, frames.len() as u64) {
                    frames.push(frame);
                }
            }
            Err(_) => break, // end of stream
        }
    }
    let bus_error = pipeline.bus().and_then(|bus| bus.pop_filtered(&[gst::MessageType::Error]));
    let _ = pipeline.set_state(gst::State::Null);
    if frames.is_empty()
        && let Some(msg) = bus_error
        && let gst::MessageView::Error(err) = msg.view()
    {
        return Err(VideoError::Pipeline {
            element: err.src().map(|s| s.name().to_string()).unwrap_or_default(),
            message: err.error().to_string(),
            debug: err.debug().map(|d| d.to_string()),
        });
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn credentials_are_redacted_from_urls() {
        assert_eq!(redact("rtsp://admin:hunter2@10.0.0.5:554/s1"), "rtsp://***@10.0.0.5:554/s1");
        assert_eq!(redact("rtsp://10.0.0.5/s1"), "rtsp://10.0.0.5/s1");
    }
}
