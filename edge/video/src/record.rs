//! Recording: the camera's *record* stream kept encoded (no decode, no re-encode).
//!
//! One thread per camera keeps `rtspsrc ! rtph264depay ! h264parse ! appsink` connected (same
//! reconnect, backoff and stall rules as the detect pipeline). Each access unit goes, on the GStreamer
//! streaming thread and without any I/O, into
//!
//! - the **pre-roll** ring ([`PreRoll`]), bounded by seconds and bytes and always starting at a
//!   keyframe;
//! - every **active clip**, through a bounded channel to that clip's writer thread;
//! - the **continuous recorder** (optional), through a bounded channel to its segment thread.
//!
//! A full channel drops the sample, counts it and skips to the next keyframe: a slow disk never backs
//! up into the camera. Writers mux with `appsrc ! h264parse ! mp4mux faststart=true ! filesink` into
//! `<path>.part` and rename when done, so a reader never sees half a file. Completion, segment and
//! disk reports go out as [`RecordEvent`]s.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use edge_core::Backoff;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use crate::camera::{RtspTransport, VideoError, glib_error, redact};
use crate::{CameraState, RecordStats};

/// One encoded H.264 access unit (byte-stream, SPS/PPS repeated before every keyframe).
#[derive(Debug, Clone)]
pub struct EncodedSample {
    /// Presentation time in the connection's running time (restarts with every connection).
    pub pts: Duration,
    pub dts: Option<Duration>,
    pub duration: Option<Duration>,
    pub keyframe: bool,
    /// Reference-counted: cloning a sample never copies the picture.
    pub buffer: gst::Buffer,
    pub caps: gst::Caps,
}

impl EncodedSample {
    pub fn size(&self) -> usize {
        self.buffer.size()
    }
}

/// Pre-roll ring of encoded samples: at least `max_age` of video when the stream allows, never
/// much more than `max_bytes`, and always starting at a keyframe.
#[derive(Debug)]
pub struct PreRoll {
    samples: VecDeque<EncodedSample>,
    bytes: usize,
    max_age: Duration,
    max_bytes: usize,
}

impl PreRoll {
    pub fn new(max_age: Duration, max_bytes: usize) -> PreRoll {
        PreRoll { samples: VecDeque::new(), bytes: 0, max_age, max_bytes }
    }

    /// Appends a sample and trims whole GOPs from the front. Samples before the first keyframe are
    /// not kept (they could not be decoded).
    pub fn push(&mut self, s: EncodedSample) {
        if self.samples.is_empty() && !s.keyframe {
            return;
        }
        self.bytes += s.size();
        self.samples.push_back(s);
        self.trim();
    }

    fn trim(&mut self) {
        loop {
            let Some(newest) = self.samples.back().map(|s| s.pts) else { return };
            // Start of the second GOP: the first one can only go as a whole.
            let Some(next) = self.samples.iter().skip(1).position(|s| s.keyframe).map(|i| i + 1) else {
                // One GOP bigger than twice the byte cap: give it up rather than grow without bound.
                if self.bytes > self.max_bytes.saturating_mul(2) {
                    self.clear();
                }
                return;
            };
            let still_covers_age = newest.saturating_sub(self.samples[next].pts) >= self.max_age;
            if !(still_covers_age || self.bytes > self.max_bytes) {
                return;
            }
            for s in self.samples.drain(..next) {
                self.bytes -= s.size();
            }
        }
    }

    /// The samples from the last keyframe at or before `t` (or the oldest keyframe) to the newest.
    pub fn since_keyframe_before(&self, t: Duration) -> Vec<EncodedSample> {
        let idx = self.samples.iter().rposition(|s| s.keyframe && s.pts <= t).unwrap_or(0);
        self.samples.range(idx..).cloned().collect()
    }

    pub fn clear(&mut self) {
        self.samples.clear();
        self.bytes = 0;
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Time from the oldest to the newest sample.
    pub fn span(&self) -> Duration {
        match (self.samples.front(), self.samples.back()) {
            (Some(a), Some(b)) => b.pts.saturating_sub(a.pts),
            _ => Duration::ZERO,
        }
    }
}

/// Where free space is read from; injectable so the disk-full policy can be tested.
pub type FreeSpaceFn = Arc<dyn Fn(&Path) -> std::io::Result<u64> + Send + Sync>;

/// Free bytes for unprivileged users on the filesystem holding `path` (statvfs).
pub fn statvfs_free_space(path: &Path) -> std::io::Result<u64> {
    fs2::available_space(path)
}

/// Retention of continuous segments and the disk reserve that is never used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub max_age: Option<Duration>,
    pub max_total_bytes: Option<u64>,
    /// Free space below this deletes the oldest segments; if that is not enough, recording pauses.
    pub reserve_bytes: u64,
}

/// Continuous recording of one camera in segments.
#[derive(Clone)]
pub struct ContinuousConfig {
    /// Directory for this camera's segments (created if missing).
    pub dir: PathBuf,
    /// Target segment length; segments are cut at the first keyframe after it.
    pub segment: Duration,
    pub retention: Retention,
    pub free_space: FreeSpaceFn,
}

impl std::fmt::Debug for ContinuousConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContinuousConfig")
            .field("dir", &self.dir)
            .field("segment", &self.segment)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

/// The record stream of one camera.
#[derive(Debug, Clone)]
pub struct RecordConfig {
    pub id: Arc<str>,
    /// The camera's record (usually main, full-resolution) `rtsp://` URL; must carry H.264.
    pub url: String,
    pub transport: RtspTransport,
    /// Pre-roll kept in memory (the longest `pre` a clip can ask for).
    pub preroll: Duration,
    pub preroll_max_bytes: usize,
    /// Samples queued per writer before they are dropped (a writer that is this far behind is stuck).
    pub writer_queue: usize,
    pub stall_timeout: Duration,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    pub continuous: Option<ContinuousConfig>,
}

/// What a finished (or failed) clip looks like.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipReport {
    pub id: String,
    pub camera: Arc<str>,
    pub path: PathBuf,
    /// `None` when the clip was written; otherwise why not (no file is left behind then).
    pub error: Option<String>,
    pub bytes: u64,
    /// From the first sample's PTS to the end of the last one.
    pub duration: Duration,
    pub first_pts: Duration,
    pub last_pts: Duration,
    /// Stream time when the clip was requested (the event's "now").
    pub trigger_pts: Duration,
    pub frames: u64,
    /// Samples the writer could not take in time.
    pub dropped: u64,
    /// The camera dropped before the post-roll was complete: the clip ends early.
    pub truncated: bool,
    /// From the last sample handed to the writer to the renamed file.
    pub finalize_latency: Duration,
}

/// A finished continuous segment.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentReport {
    pub camera: Arc<str>,
    pub path: PathBuf,
    pub started_at: SystemTime,
    pub duration: Duration,
    pub bytes: u64,
}

/// Reports from a camera's recorder, for the daemon (events, alerts, status).
#[derive(Debug, Clone, PartialEq)]
pub enum RecordEvent {
    Clip(ClipReport),
    Segment(SegmentReport),
    /// Retention or the disk-full policy deleted these segments.
    SegmentsDeleted {
        camera: Arc<str>,
        paths: Vec<PathBuf>,
    },
    /// Free space stayed below the reserve after deleting every segment: continuous recording is
    /// paused (raise an alert). Clips still go on.
    DiskFull {
        camera: Arc<str>,
        free_bytes: u64,
        reserve_bytes: u64,
    },
    /// Continuous recording resumed after [`RecordEvent::DiskFull`].
    DiskOk {
        camera: Arc<str>,
        free_bytes: u64,
    },
    /// A segment could not be written.
    SegmentFailed {
        camera: Arc<str>,
        path: PathBuf,
        error: String,
    },
}

/// Why a clip request was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClipError {
    #[error("camera {0} has no recorded video yet (record stream not connected)")]
    NotStreaming(Arc<str>),
    #[error("cannot start clip writer: {0}")]
    Spawn(String),
}

/// What a clip request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipAccepted {
    /// A new clip writer started.
    Started,
    /// A clip with the same id was still collecting post-roll: its end moved later.
    Extended,
}

struct ActiveClip {
    id: String,
    end: Duration,
    tx: SyncSender<EncodedSample>,
    need_keyframe: bool,
    shared: Arc<ClipShared>,
}

#[derive(Default)]
struct ClipShared {
    truncated: AtomicBool,
    dropped: AtomicU64,
    /// When the hub stopped feeding the clip; for the finalize latency.
    closed_at: Mutex<Option<Instant>>,
}

/// State shared by the streaming thread (samples in) and request callers (clips out).
struct Hub {
    preroll: PreRoll,
    clips: Vec<ActiveClip>,
    segments: Option<SyncSender<EncodedSample>>,
    segments_need_keyframe: bool,
    last_pts: Option<Duration>,
    last_sample_at: Option<Instant>,
}

impl Hub {
    fn on_sample(&mut self, s: EncodedSample, stats: &RecordStats) {
        stats.samples_received.fetch_add(1, Relaxed);
        self.last_pts = Some(s.pts);
        self.last_sample_at = Some(Instant::now());
        self.clips.retain_mut(|clip| {
            if s.pts >= clip.end {
                close_clip(clip);
                return false;
            }
            if clip.need_keyframe && !s.keyframe {
                clip.shared.dropped.fetch_add(1, Relaxed);
                stats.samples_dropped.fetch_add(1, Relaxed);
                return true;
            }
            match clip.tx.try_send(s.clone()) {
                Ok(()) => clip.need_keyframe = false,
                Err(TrySendError::Full(_)) => {
                    clip.need_keyframe = true;
                    clip.shared.dropped.fetch_add(1, Relaxed);
                    stats.samples_dropped.fetch_add(1, Relaxed);
                }
                Err(TrySendError::Disconnected(_)) => return false,
            }
            true
        });
        if let Some(tx) = &self.segments {
            if self.segments_need_keyframe && !s.keyframe {
                stats.samples_dropped.fetch_add(1, Relaxed);
            } else {
                match tx.try_send(s.clone()) {
                    Ok(()) => self.segments_need_keyframe = false,
                    Err(TrySendError::Full(_)) => {
                        self.segments_need_keyframe = true;
                        stats.samples_dropped.fetch_add(1, Relaxed);
                    }
                    Err(TrySendError::Disconnected(_)) => self.segments = None,
                }
            }
        }
        self.preroll.push(s);
    }

    /// The connection ended: active clips finish with what they have; the next connection's
    /// timestamps start afresh, so the pre-roll is dropped.
    fn disconnected(&mut self) {
        for clip in self.clips.drain(..) {
            clip.shared.truncated.store(true, Relaxed);
            close_clip(&clip);
        }
        self.preroll.clear();
        self.last_pts = None;
        self.segments_need_keyframe = true;
    }
}

fn close_clip(clip: &ActiveClip) {
    *clip.shared.closed_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
}

/// Handle to one camera's recorder: ask for clips, read its state. Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    camera: Arc<str>,
    hub: Arc<Mutex<Hub>>,
    stats: Arc<RecordStats>,
    events: UnboundedSender<RecordEvent>,
    writer_queue: usize,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").field("camera", &self.camera).finish_non_exhaustive()
    }
}

fn lock(hub: &Mutex<Hub>) -> MutexGuard<'_, Hub> {
    hub.lock().unwrap_or_else(|p| p.into_inner())
}

impl Recorder {
    pub fn camera(&self) -> &Arc<str> {
        &self.camera
    }

    pub fn stats(&self) -> &Arc<RecordStats> {
        &self.stats
    }

    /// Seconds of pre-roll buffered now (0 while disconnected).
    pub fn buffered(&self) -> Duration {
        lock(&self.hub).preroll.span()
    }

    /// Starts a clip: the buffered pre-roll from the last keyframe at or before `now - pre`, then the
    /// live stream until `now + post`. A request with the id of a clip still collecting post-roll
    /// extends that clip instead. The clip is written to `path` (via `path.part`) and reported as
    /// [`RecordEvent::Clip`]. Never blocks on I/O.
    pub fn request_clip(
        &self,
        id: impl Into<String>,
        pre: Duration,
        post: Duration,
        path: impl Into<PathBuf>,
    ) -> Result<ClipAccepted, ClipError> {
        let id = id.into();
        let mut hub = lock(&self.hub);
        let Some(now) = hub.last_pts else { return Err(ClipError::NotStreaming(self.camera.clone())) };
        if let Some(clip) = hub.clips.iter_mut().find(|c| c.id == id) {
            clip.end = clip.end.max(now + post);
            return Ok(ClipAccepted::Extended);
        }
        let pre_samples = hub.preroll.since_keyframe_before(now.saturating_sub(pre));
        if pre_samples.is_empty() {
            return Err(ClipError::NotStreaming(self.camera.clone()));
        }
        let (tx, rx) = sync_channel(self.writer_queue.max(1));
        let shared = Arc::new(ClipShared::default());
        let job = ClipJob {
            id: id.clone(),
            camera: self.camera.clone(),
            path: path.into(),
            trigger_pts: now,
            pre: pre_samples,
            rx,
            shared: shared.clone(),
            stats: self.stats.clone(),
            events: self.events.clone(),
        };
        std::thread::Builder::new()
            .name(format!("clip-{}", self.camera))
            .spawn(move || job.run())
            .map_err(|e| ClipError::Spawn(e.to_string()))?;
        hub.clips.push(ActiveClip { id, end: now + post, tx, need_keyframe: false, shared });
        Ok(ClipAccepted::Started)
    }
}

/// Checks the elements recording needs.
pub fn init_record() -> Result<(), VideoError> {
    crate::camera::init()?;
    for name in ["rtph264depay", "h264parse", "appsrc", "mp4mux", "filesink"] {
        if gst::ElementFactory::find(name).is_none() {
            return Err(VideoError::Init(format!(
                "gstreamer element {name} is missing (install the gstreamer plugins)"
            )));
        }
    }
    Ok(())
}

/// Starts the record thread of one camera (and its segment thread when continuous recording is on).
/// The thread stops, finishing open clips and segments, when `cancel` fires.
pub fn spawn_recorder(
    cfg: RecordConfig,
    events: UnboundedSender<RecordEvent>,
    stats: Arc<RecordStats>,
    cancel: CancellationToken,
) -> Result<(Recorder, JoinHandle<()>), VideoError> {
    init_record()?;
    let hub = Arc::new(Mutex::new(Hub {
        preroll: PreRoll::new(cfg.preroll, cfg.preroll_max_bytes),
        clips: Vec::new(),
        segments: None,
        segments_need_keyframe: true,
        last_pts: None,
        last_sample_at: None,
    }));
    let mut segment_thread = None;
    if let Some(cont) = cfg.continuous.clone() {
        let (tx, rx) = sync_channel(cfg.writer_queue.max(1));
        lock(&hub).segments = Some(tx);
        let (camera, stats, events) = (cfg.id.clone(), stats.clone(), events.clone());
        let stall = cfg.stall_timeout;
        segment_thread = Some(
            std::thread::Builder::new()
                .name(format!("segments-{}", cfg.id))
                .spawn(move || segment_loop(cont, camera, rx, stats, events, stall))
                .map_err(|e| VideoError::Build(format!("cannot start segment thread: {e}")))?,
        );
    }
    let recorder = Recorder {
        camera: cfg.id.clone(),
        hub: hub.clone(),
        stats: stats.clone(),
        events,
        writer_queue: cfg.writer_queue,
    };
    let handle = std::thread::Builder::new()
        .name(format!("record-{}", cfg.id))
        .spawn(move || {
            run(&cfg, &hub, &stats, &cancel);
            {
                let mut hub = lock(&hub);
                hub.disconnected();
                hub.segments = None; // the segment thread drains, closes its segment and exits
            }
            if let Some(t) = segment_thread {
                let _ = t.join();
            }
            stats.set_state(CameraState::Stopped);
        })
        .map_err(|e| VideoError::Build(format!("cannot start record thread: {e}")))?;
    Ok((recorder, handle))
}

fn run(cfg: &RecordConfig, hub: &Arc<Mutex<Hub>>, stats: &Arc<RecordStats>, cancel: &CancellationToken) {
    let span = tracing::info_span!("stage", stage = "record", camera = %cfg.id);
    let _enter = span.enter();
    let mut backoff = Backoff::new(cfg.reconnect_min, cfg.reconnect_max);
    let mut first = true;
    while !cancel.is_cancelled() {
        if !first {
            stats.reconnects.fetch_add(1, Relaxed);
        }
        first = false;
        stats.set_state(CameraState::Connecting);
        tracing::info!(url = %redact(&cfg.url), "Connecting to record stream.");
        let started = Instant::now();
        let result = connect_once(cfg, hub, stats, cancel);
        lock(hub).disconnected();
        match result {
            Ok(()) => break,
            Err(error) => {
                tracing::warn!(%error, "Record stream ended; will reconnect.");
                stats.set_error(error.to_string());
            }
        }
        if started.elapsed() > cfg.reconnect_max.max(Duration::from_secs(10)) {
            backoff.reset();
        }
        stats.set_state(CameraState::Backoff);
        let jitter =
            f64::from(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().subsec_nanos())
                / 1e9;
        let until = Instant::now() + backoff.next_delay(jitter);
        while Instant::now() < until && !cancel.is_cancelled() {
            std::thread::sleep(Duration::from_millis(50).min(until.saturating_duration_since(Instant::now())));
        }
    }
    tracing::info!("Recorder stopped.");
}

/// One connection; `Ok` only when cancelled.
fn connect_once(
    cfg: &RecordConfig,
    hub: &Arc<Mutex<Hub>>,
    stats: &Arc<RecordStats>,
    cancel: &CancellationToken,
) -> Result<(), VideoError> {
    let pipeline = build_pipeline(cfg, hub, stats)?;
    let result = watch(&pipeline, cfg, hub, stats, cancel);
    let _ = pipeline.set_state(gst::State::Null);
    result
}

fn watch(
    pipeline: &gst::Pipeline,
    cfg: &RecordConfig,
    hub: &Mutex<Hub>,
    stats: &RecordStats,
    cancel: &CancellationToken,
) -> Result<(), VideoError> {
    let connected = Instant::now();
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
        let last = lock(hub).last_sample_at;
        let since_last = last.map_or(connected.elapsed(), |t| t.elapsed());
        if since_last > cfg.stall_timeout {
            return Err(VideoError::Stalled(cfg.stall_timeout));
        }
        if last.is_some() && stats.state() == CameraState::Connecting {
            stats.set_state(CameraState::Streaming);
        }
    }
}

fn ns(d: Duration) -> gst::ClockTime {
    gst::ClockTime::from_nseconds(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn dur(t: gst::ClockTime) -> Duration {
    Duration::from_nanos(t.nseconds())
}

fn build_pipeline(
    cfg: &RecordConfig,
    hub: &Arc<Mutex<Hub>>,
    stats: &Arc<RecordStats>,
) -> Result<gst::Pipeline, VideoError> {
    let build = |e: glib_error::Any| VideoError::Build(e.to_string());
    let pipeline = gst::Pipeline::new();
    let protocols = match cfg.transport {
        RtspTransport::Tcp => "tcp",
        RtspTransport::Udp => "udp",
    };
    let src = gst::ElementFactory::make("rtspsrc")
        .property("location", &cfg.url)
        .property("latency", 200u32)
        .property_from_str("protocols", protocols)
        .build()
        .map_err(|e| build(e.into()))?;
    // SPS/PPS before every keyframe: a clip or segment may start at any keyframe and still decode.
    let tail = gst::parse::bin_from_description(
        "rtph264depay ! h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au ! \
         appsink name=sink sync=false",
        true,
    )
    .map_err(|e| build(e.into()))?;
    let sink = tail
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| VideoError::Build("appsink missing".into()))?;
    pipeline.add_many([&src, tail.upcast_ref()]).map_err(|e| build(e.into()))?;

    let tail_weak = tail.downgrade();
    let pipeline_weak = pipeline.downgrade();
    src.connect_pad_added(move |_, pad| {
        let (Some(tail), Some(pipeline)) = (tail_weak.upgrade(), pipeline_weak.upgrade()) else { return };
        let is_video = pad
            .current_caps()
            .and_then(|c| c.structure(0).and_then(|s| s.get::<String>("media").ok()))
            .is_some_and(|m| m == "video");
        match tail.static_pad("sink") {
            Some(sinkpad) if is_video && !sinkpad.is_linked() => {
                if let Err(error) = pad.link(&sinkpad) {
                    tracing::warn!(?error, "Cannot link record stream (is it H.264?).");
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

    let hub = hub.clone();
    let stats = stats.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let (Some(buffer), Some(caps)) = (sample.buffer_owned(), sample.caps_owned()) else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let Some(pts) = buffer.pts().or(buffer.dts()) else { return Ok(gst::FlowSuccess::Ok) };
                let s = EncodedSample {
                    pts: dur(pts),
                    dts: buffer.dts().map(dur),
                    duration: buffer.duration().map(dur),
                    keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
                    buffer,
                    caps,
                };
                lock(&hub).on_sample(s, &stats);
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    Ok(pipeline)
}

/// Muxes encoded samples into an MP4 file without re-encoding.
struct Mp4Writer {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    path: PathBuf,
    offset: Option<Duration>,
    first_pts: Option<Duration>,
    last_pts: Duration,
    end: Duration,
    frames: u64,
}

/// What a finished MP4 holds.
struct Mp4Done {
    bytes: u64,
    first_pts: Duration,
    last_pts: Duration,
    duration: Duration,
    frames: u64,
}

impl Mp4Writer {
    fn create(path: &Path) -> Result<Mp4Writer, VideoError> {
        let build = |e: glib_error::Any| VideoError::Build(e.to_string());
        let pipeline = gst::Pipeline::new();
        let src =
            gst_app::AppSrc::builder().format(gst::Format::Time).is_live(false).block(true).max_bytes(16 << 20).build();
        let parse = gst::ElementFactory::make("h264parse").build().map_err(|e| build(e.into()))?;
        let mux =
            gst::ElementFactory::make("mp4mux").property("faststart", true).build().map_err(|e| build(e.into()))?;
        let sink = gst::ElementFactory::make("filesink")
            .property("location", path)
            .property("sync", false)
            .build()
            .map_err(|e| build(e.into()))?;
        pipeline.add_many([src.upcast_ref(), &parse, &mux, &sink]).map_err(|e| build(e.into()))?;
        gst::Element::link_many([src.upcast_ref(), &parse, &mux, &sink]).map_err(|e| build(e.into()))?;
        pipeline.set_state(gst::State::Playing).map_err(|e| VideoError::Build(format!("cannot start muxer: {e}")))?;
        Ok(Mp4Writer {
            pipeline,
            src,
            path: path.to_owned(),
            offset: None,
            first_pts: None,
            last_pts: Duration::ZERO,
            end: Duration::ZERO,
            frames: 0,
        })
    }

    fn push(&mut self, s: &EncodedSample) -> Result<(), VideoError> {
        // Timestamps start at zero in the file. Without a DTS from the depayloader, DTS = PTS
        // (IP cameras send no B-frames on their live profiles).
        let offset = *self.offset.get_or_insert(s.dts.unwrap_or(s.pts).min(s.pts));
        let mut buffer = s.buffer.copy();
        {
            let b = buffer.make_mut();
            b.set_pts(ns(s.pts.saturating_sub(offset)));
            b.set_dts(ns(s.dts.unwrap_or(s.pts).saturating_sub(offset)));
            b.set_duration(s.duration.map(ns));
        }
        let sample = gst::Sample::builder().buffer(&buffer).caps(&s.caps).build();
        self.src.push_sample(&sample).map_err(|e| self.error_or(format!("muxer refused a sample: {e:?}")))?;
        self.first_pts.get_or_insert(s.pts);
        self.last_pts = self.last_pts.max(s.pts);
        self.end = self.end.max(s.pts + s.duration.unwrap_or(Duration::ZERO));
        self.frames += 1;
        Ok(())
    }

    /// The pipeline's own error when there is one, else `fallback`.
    fn error_or(&self, fallback: String) -> VideoError {
        let msg = self.pipeline.bus().and_then(|b| b.pop_filtered(&[gst::MessageType::Error]));
        if let Some(msg) = msg
            && let gst::MessageView::Error(err) = msg.view()
        {
            return VideoError::Pipeline {
                element: err.src().map(|s| s.name().to_string()).unwrap_or_default(),
                message: err.error().to_string(),
                debug: err.debug().map(|d| d.to_string()),
            };
        }
        VideoError::Build(fallback)
    }

    /// Ends the stream, waits for the muxer to write its index, and closes the file.
    fn finish(self) -> Result<Mp4Done, VideoError> {
        let result = self.finish_inner();
        let _ = self.pipeline.set_state(gst::State::Null);
        result
    }

    fn finish_inner(&self) -> Result<Mp4Done, VideoError> {
        let Some(first_pts) = self.first_pts else { return Err(VideoError::Build("no samples to write".into())) };
        let _ = self.src.end_of_stream();
        let bus = self.pipeline.bus().ok_or_else(|| VideoError::Build("muxer has no bus".into()))?;
        let msg =
            bus.timed_pop_filtered(gst::ClockTime::from_seconds(30), &[gst::MessageType::Eos, gst::MessageType::Error]);
        match msg.as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Eos(_)) => {}
            Some(gst::MessageView::Error(err)) => {
                return Err(VideoError::Pipeline {
                    element: err.src().map(|s| s.name().to_string()).unwrap_or_default(),
                    message: err.error().to_string(),
                    debug: err.debug().map(|d| d.to_string()),
                });
            }
            _ => return Err(VideoError::Build("muxer did not finish within 30 s".into())),
        }
        let _ = self.pipeline.set_state(gst::State::Null);
        let bytes = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        // Without per-sample durations the last frame lasts as long as the average frame.
        let mean = if self.frames > 1 {
            self.last_pts.saturating_sub(first_pts) / u32::try_from(self.frames - 1).unwrap_or(u32::MAX)
        } else {
            Duration::ZERO
        };
        let end = self.end.max(self.last_pts + mean);
        Ok(Mp4Done {
            bytes,
            first_pts,
            last_pts: self.last_pts,
            duration: end.saturating_sub(first_pts),
            frames: self.frames,
        })
    }
}

/// `<path>.part`: where a file is written before it is renamed into place.
fn part_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

/// Everything a clip writer thread needs.
struct ClipJob {
    id: String,
    camera: Arc<str>,
    path: PathBuf,
    trigger_pts: Duration,
    pre: Vec<EncodedSample>,
    rx: Receiver<EncodedSample>,
    shared: Arc<ClipShared>,
    stats: Arc<RecordStats>,
    events: UnboundedSender<RecordEvent>,
}

impl ClipJob {
    fn run(self) {
        let part = part_path(&self.path);
        let result = (|| {
            if let Some(dir) = self.path.parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(|e| VideoError::Build(format!("{}: {e}", dir.display())))?;
            }
            let mut w = Mp4Writer::create(&part)?;
            for s in &self.pre {
                w.push(s)?;
            }
            // Ends when the hub drops the sender: post-roll complete or camera gone.
            while let Ok(s) = self.rx.recv() {
                w.push(&s)?;
            }
            let done = w.finish()?;
            std::fs::rename(&part, &self.path)
                .map_err(|e| VideoError::Build(format!("cannot rename {}: {e}", part.display())))?;
            Ok::<_, VideoError>(done)
        })();
        let closed = self.shared.closed_at.lock().unwrap_or_else(|p| p.into_inner()).unwrap_or_else(Instant::now);
        let mut report = ClipReport {
            id: self.id,
            camera: self.camera,
            path: self.path,
            error: None,
            bytes: 0,
            duration: Duration::ZERO,
            first_pts: Duration::ZERO,
            last_pts: Duration::ZERO,
            trigger_pts: self.trigger_pts,
            frames: 0,
            dropped: self.shared.dropped.load(Relaxed),
            truncated: self.shared.truncated.load(Relaxed),
            finalize_latency: closed.elapsed(),
        };
        match result {
            Ok(done) => {
                self.stats.clips_written.fetch_add(1, Relaxed);
                self.stats.bytes_written.fetch_add(done.bytes, Relaxed);
                report.bytes = done.bytes;
                report.duration = done.duration;
                report.first_pts = done.first_pts;
                report.last_pts = done.last_pts;
                report.frames = done.frames;
                tracing::info!(clip = %report.id, path = %report.path.display(), bytes = done.bytes,
                    truncated = report.truncated, "Clip written.");
            }
            Err(e) => {
                let _ = std::fs::remove_file(&part);
                self.stats.clips_failed.fetch_add(1, Relaxed);
                self.stats.set_error(format!("clip {}: {e}", report.id));
                tracing::warn!(clip = %report.id, error = %e, "Clip failed.");
                report.error = Some(e.to_string());
            }
        }
        let _ = self.events.send(RecordEvent::Clip(report));
    }
}

/// A finished segment on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFile {
    pub path: PathBuf,
    pub started_at: SystemTime,
    pub bytes: u64,
}

/// What retention decided before a new segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPlan {
    /// Oldest first.
    pub delete: Vec<PathBuf>,
    /// Free space after the deletions.
    pub free_after: u64,
    /// Still below the reserve after deleting everything allowed: do not record.
    pub pause: bool,
}

/// Pure retention policy. `segments` sorted oldest first. Deletes from the oldest while a segment is
/// older than `max_age`, the total is above `max_total_bytes`, or free space is below the reserve.
pub fn plan_retention(segments: &[SegmentFile], now: SystemTime, free: u64, r: &Retention) -> RetentionPlan {
    let mut total: u64 = segments.iter().map(|s| s.bytes).sum();
    let mut free_after = free;
    let mut delete = Vec::new();
    for seg in segments {
        let too_old = r.max_age.is_some_and(|a| now.duration_since(seg.started_at).unwrap_or_default() > a);
        let too_big = r.max_total_bytes.is_some_and(|m| total > m);
        let disk_low = free_after < r.reserve_bytes;
        if !(too_old || too_big || disk_low) {
            break;
        }
        delete.push(seg.path.clone());
        total -= seg.bytes;
        free_after = free_after.saturating_add(seg.bytes);
    }
    RetentionPlan { delete, free_after, pause: free_after < r.reserve_bytes }
}

const SEGMENT_TIME_FORMAT: &str = "%Y%m%dT%H%M%S%.3fZ";

/// A camera id made safe for a file name.
fn file_stem(camera: &str) -> String {
    camera.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

/// `<camera>-<UTC start time>.mp4`.
pub fn segment_name(camera: &str, started_at: SystemTime) -> String {
    let t: chrono::DateTime<chrono::Utc> = started_at.into();
    format!("{}-{}.mp4", file_stem(camera), t.format(SEGMENT_TIME_FORMAT))
}

/// The segments of `camera` in `dir`, oldest first (files that are not finished segments are ignored).
pub fn list_segments(dir: &Path, camera: &str) -> std::io::Result<Vec<SegmentFile>> {
    let prefix = format!("{}-", file_stem(camera));
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(stamp) = name.strip_prefix(&prefix).and_then(|n| n.strip_suffix(".mp4")) else { continue };
        let Ok(t) = chrono::NaiveDateTime::parse_from_str(stamp, SEGMENT_TIME_FORMAT) else { continue };
        let bytes = entry.metadata().map(|m| m.len()).unwrap_or(0);
        out.push(SegmentFile { path: entry.path(), started_at: t.and_utc().into(), bytes });
    }
    out.sort_by_key(|s| s.started_at);
    Ok(out)
}

/// Applies retention and the disk-full policy to one camera's segment directory.
#[derive(Debug)]
pub struct SegmentStore {
    camera: Arc<str>,
    cfg: ContinuousConfig,
    paused: bool,
}

/// What the store decided before a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreDecision {
    Record,
    /// Below the reserve with nothing left to delete.
    Pause {
        free_bytes: u64,
    },
}

impl SegmentStore {
    pub fn new(camera: Arc<str>, cfg: ContinuousConfig) -> SegmentStore {
        SegmentStore { camera, cfg, paused: false }
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Free space is below the reserve now (checked at every keyframe while recording).
    pub fn below_reserve(&self) -> bool {
        (self.cfg.free_space)(&self.cfg.dir).is_ok_and(|free| free < self.cfg.retention.reserve_bytes)
    }

    /// Runs retention before a new segment: deletes what the policy says, then says whether to record.
    /// Reports deletions and pause/resume transitions as events.
    pub fn prepare(
        &mut self,
        now: SystemTime,
        stats: &RecordStats,
        events: &UnboundedSender<RecordEvent>,
    ) -> std::io::Result<StoreDecision> {
        std::fs::create_dir_all(&self.cfg.dir)?;
        let segments = list_segments(&self.cfg.dir, &self.camera)?;
        let free = (self.cfg.free_space)(&self.cfg.dir)?;
        let plan = plan_retention(&segments, now, free, &self.cfg.retention);
        let mut deleted = Vec::new();
        for path in plan.delete {
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    stats.segments_deleted.fetch_add(1, Relaxed);
                    deleted.push(path);
                }
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "Cannot delete old segment."),
            }
        }
        if !deleted.is_empty() {
            let _ = events.send(RecordEvent::SegmentsDeleted { camera: self.camera.clone(), paths: deleted });
        }
        // Measure again: the deletions are what count, not the plan's estimate.
        let free = (self.cfg.free_space)(&self.cfg.dir)?;
        let reserve = self.cfg.retention.reserve_bytes;
        if free < reserve {
            if !self.paused {
                self.paused = true;
                stats.set_disk_paused(true);
                stats
                    .set_error(format!("disk full: {free} bytes free, reserve {reserve}; continuous recording paused"));
                tracing::error!(free, reserve, "Disk below reserve; continuous recording paused.");
                let _ = events.send(RecordEvent::DiskFull {
                    camera: self.camera.clone(),
                    free_bytes: free,
                    reserve_bytes: reserve,
                });
            }
            return Ok(StoreDecision::Pause { free_bytes: free });
        }
        if self.paused {
            self.paused = false;
            stats.set_disk_paused(false);
            tracing::info!(free, "Disk above reserve again; continuous recording resumed.");
            let _ = events.send(RecordEvent::DiskOk { camera: self.camera.clone(), free_bytes: free });
        }
        Ok(StoreDecision::Record)
    }
}

struct OpenSegment {
    writer: Mp4Writer,
    path: PathBuf,
    part: PathBuf,
    started_at: SystemTime,
    start_pts: Duration,
}

fn segment_loop(
    cfg: ContinuousConfig,
    camera: Arc<str>,
    rx: Receiver<EncodedSample>,
    stats: Arc<RecordStats>,
    events: UnboundedSender<RecordEvent>,
    stall: Duration,
) {
    let segment_len = cfg.segment;
    let dir = cfg.dir.clone();
    let mut store = SegmentStore::new(camera.clone(), cfg);
    let mut open: Option<OpenSegment> = None;
    let mut last_pts: Option<Duration> = None;
    let mut last_at = Instant::now();
    let mut retry_after: Option<Instant> = None;
    loop {
        let s = match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(s) => s,
            Err(RecvTimeoutError::Timeout) => {
                if open.is_some() && last_at.elapsed() > stall {
                    close_segment(open.take(), &camera, &stats, &events);
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        last_at = Instant::now();
        let discontinuity = last_pts.is_some_and(|p| s.pts < p);
        last_pts = Some(s.pts);
        if s.keyframe || discontinuity {
            // RTP timestamps jitter a little: a keyframe at 1.999 s still ends a 2 s segment.
            let full = open.as_ref().is_some_and(|o| s.pts.saturating_sub(o.start_pts) >= segment_len * 9 / 10);
            if discontinuity || full || (open.is_some() && store.below_reserve()) {
                close_segment(open.take(), &camera, &stats, &events);
            }
        }
        if open.is_none() && s.keyframe && retry_after.is_none_or(|t| Instant::now() >= t) {
            let now = SystemTime::now();
            match store.prepare(now, &stats, &events) {
                Ok(StoreDecision::Record) => {
                    retry_after = None;
                    let path = dir.join(segment_name(&camera, now));
                    let part = part_path(&path);
                    match Mp4Writer::create(&part) {
                        Ok(writer) => {
                            open = Some(OpenSegment { writer, path, part, started_at: now, start_pts: s.pts })
                        }
                        Err(e) => segment_failed(&camera, &path, &e.to_string(), &stats, &events),
                    }
                }
                Ok(StoreDecision::Pause { .. }) => retry_after = Some(Instant::now() + Duration::from_secs(1)),
                Err(e) => {
                    retry_after = Some(Instant::now() + Duration::from_secs(1));
                    segment_failed(&camera, &dir, &e.to_string(), &stats, &events);
                }
            }
        }
        if let Some(o) = open.as_mut()
            && let Err(e) = o.writer.push(&s)
        {
            let o = open.take().expect("invariant: just matched");
            let _ = o.writer.pipeline.set_state(gst::State::Null);
            let _ = std::fs::remove_file(&o.part);
            segment_failed(&camera, &o.path, &e.to_string(), &stats, &events);
        }
    }
    close_segment(open.take(), &camera, &stats, &events);
}

fn segment_failed(
    camera: &Arc<str>,
    path: &Path,
    error: &str,
    stats: &RecordStats,
    events: &UnboundedSender<RecordEvent>,
) {
    tracing::warn!(path = %path.display(), error, "Segment failed.");
    stats.set_error(format!("segment {}: {error}", path.display()));
    let _ = events.send(RecordEvent::SegmentFailed {
        camera: camera.clone(),
        path: path.to_owned(),
        error: error.to_owned(),
    });
}

fn close_segment(
    open: Option<OpenSegment>,
    camera: &Arc<str>,
    stats: &RecordStats,
    events: &UnboundedSender<RecordEvent>,
) {
    let Some(o) = open else { return };
    let result = o.writer.finish().and_then(|done| {
        std::fs::rename(&o.part, &o.path)
            .map(|()| done)
            .map_err(|e| VideoError::Build(format!("cannot rename {}: {e}", o.part.display())))
    });
    match result {
        Ok(done) => {
            stats.segments_written.fetch_add(1, Relaxed);
            stats.bytes_written.fetch_add(done.bytes, Relaxed);
            let _ = events.send(RecordEvent::Segment(SegmentReport {
                camera: camera.clone(),
                path: o.path,
                started_at: o.started_at,
                duration: done.duration,
                bytes: done.bytes,
            }));
        }
        Err(e) => {
            let _ = std::fs::remove_file(&o.part);
            segment_failed(camera, &o.path, &e.to_string(), stats, events);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    /// A 10 fps stream with a keyframe every `gop` frames; frame `i` holds `size` bytes.
    fn sample(i: u64, gop: u64, size: usize) -> EncodedSample {
        gst::init().unwrap();
        EncodedSample {
            pts: Duration::from_millis(100 * i),
            dts: None,
            duration: Some(Duration::from_millis(100)),
            keyframe: i.is_multiple_of(gop),
            buffer: gst::Buffer::from_mut_slice(vec![0u8; size]),
            caps: gst::Caps::builder("video/x-h264").build(),
        }
    }

    #[test]
    fn preroll_keeps_the_window_and_starts_at_a_keyframe() {
        let mut p = PreRoll::new(Duration::from_secs(3), usize::MAX);
        // Starts mid-GOP: nothing is kept until the first keyframe.
        for i in 5..200 {
            p.push(sample(i, 20, 100));
            if i < 20 {
                assert!(p.is_empty());
            }
        }
        let all = p.since_keyframe_before(Duration::ZERO);
        assert!(all[0].keyframe);
        // At least 3 s, less than 3 s + one GOP (2 s).
        assert!(p.span() >= Duration::from_secs(3) && p.span() < Duration::from_secs(5), "{:?}", p.span());
        assert_eq!(p.bytes(), p.len() * 100);
        // Newest is 19.9 s; last keyframe at or before 16.9 s is 16.0 s.
        let clip = p.since_keyframe_before(Duration::from_millis(16_900));
        assert_eq!(clip[0].pts, Duration::from_secs(16));
        assert!(clip[0].keyframe);
        assert_eq!(clip.last().unwrap().pts, Duration::from_millis(19_900));
    }

    #[test]
    fn preroll_is_bounded_by_bytes_in_whole_gops() {
        let mut p = PreRoll::new(Duration::from_secs(60), 10_000);
        for i in 0..300 {
            p.push(sample(i, 10, 500));
            // One GOP is 5 000 bytes: the cap plus at most one GOP.
            assert!(p.bytes() <= 15_000, "{}", p.bytes());
            assert!(p.since_keyframe_before(Duration::ZERO)[0].keyframe);
        }
        assert!(p.bytes() >= 5_000);
    }

    #[test]
    fn a_stuck_writer_drops_and_counts_without_blocking_and_resumes_at_a_keyframe() {
        let stats = RecordStats::default();
        let mut hub = Hub {
            preroll: PreRoll::new(Duration::from_secs(5), usize::MAX),
            clips: Vec::new(),
            segments: None,
            segments_need_keyframe: true,
            last_pts: None,
            last_sample_at: None,
        };
        let (tx, rx) = sync_channel(4);
        let shared = Arc::new(ClipShared::default());
        hub.clips.push(ActiveClip {
            id: "c".into(),
            end: Duration::from_secs(100),
            tx,
            need_keyframe: false,
            shared: shared.clone(),
        });
        let started = Instant::now();
        // Nobody reads: 4 samples fit, the rest of the GOP is dropped.
        for i in 0..10 {
            hub.on_sample(sample(i, 10, 10), &stats);
        }
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(shared.dropped.load(Relaxed), 6);
        assert_eq!(stats.snapshot().samples_dropped, 6);
        // The writer catches up; the next delta frame is still skipped, the keyframe goes through.
        let got: Vec<_> = rx.try_iter().map(|s| s.pts).collect();
        assert_eq!(got.len(), 4);
        hub.on_sample(sample(10, 10, 10), &stats);
        assert!(rx.try_recv().unwrap().keyframe);
        hub.on_sample(sample(11, 10, 10), &stats);
        assert_eq!(rx.try_recv().unwrap().pts, Duration::from_millis(1_100));
        assert_eq!(stats.snapshot().samples_received, 12);
        // Past its end the clip is closed: the writer sees the channel end.
        hub.clips[0].end = Duration::from_millis(1_150);
        hub.on_sample(sample(12, 10, 10), &stats);
        assert!(hub.clips.is_empty());
        assert!(rx.recv().is_err());
    }

    fn seg(name: &str, age_s: u64, bytes: u64, now: SystemTime) -> SegmentFile {
        SegmentFile { path: PathBuf::from(name), started_at: now - Duration::from_secs(age_s), bytes }
    }

    #[test]
    fn retention_policy_deletes_oldest_first_by_age_bytes_and_reserve() {
        let now = SystemTime::now();
        let segs = [seg("a", 400, 100, now), seg("b", 300, 100, now), seg("c", 200, 100, now), seg("d", 100, 100, now)];
        let r = Retention { max_age: Some(Duration::from_secs(250)), max_total_bytes: None, reserve_bytes: 0 };
        let plan = plan_retention(&segs, now, 1_000, &r);
        assert_eq!(plan.delete, [PathBuf::from("a"), PathBuf::from("b")]);
        assert!(!plan.pause);

        let r = Retention { max_age: None, max_total_bytes: Some(150), reserve_bytes: 0 };
        let plan = plan_retention(&segs, now, 1_000, &r);
        assert_eq!(plan.delete.len(), 3, "{plan:?}");

        // Disk low: delete until free >= reserve.
        let r = Retention { max_age: None, max_total_bytes: None, reserve_bytes: 250 };
        let plan = plan_retention(&segs, now, 90, &r);
        assert_eq!(plan.delete.len(), 2);
        assert_eq!(plan.free_after, 290);
        assert!(!plan.pause);

        // Even deleting everything is not enough: pause.
        let plan = plan_retention(&segs, now, 0, &Retention { reserve_bytes: 1_000, ..r });
        assert_eq!(plan.delete.len(), 4);
        assert!(plan.pause);

        // Nothing to do.
        let plan = plan_retention(&segs, now, 1_000, &r);
        assert!(plan.delete.is_empty() && !plan.pause);
        assert!(plan_retention(&[], now, 0, &r).pause);
    }

    #[test]
    fn segment_names_round_trip_and_sort() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_000_000_123);
        for (i, extra) in [(0u64, ""), (2, ""), (1, ".part")] {
            let name = segment_name("front door", t0 + Duration::from_secs(i)) + extra;
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        std::fs::write(dir.path().join("other-20250101T000000.000Z.mp4"), b"x").unwrap();
        let segs = list_segments(dir.path(), "front door").unwrap();
        assert_eq!(segs.len(), 2, "{segs:?}");
        assert_eq!(segs[0].started_at, t0);
        assert!(segs[0].path.file_name().unwrap().to_str().unwrap().starts_with("front_door-20251124T"));
        assert_eq!(segs[1].started_at, t0 + Duration::from_secs(2));
    }

    /// A fake disk: `capacity` minus the bytes of the files in the directory.
    fn fake_disk(capacity: Arc<AtomicU64>) -> FreeSpaceFn {
        Arc::new(move |dir: &Path| {
            let used: u64 = std::fs::read_dir(dir)?.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum();
            Ok(capacity.load(Relaxed).saturating_sub(used))
        })
    }

    #[test]
    fn disk_full_policy_deletes_oldest_then_pauses_then_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let mut paths = Vec::new();
        for i in 0..5u64 {
            let p = dir.path().join(segment_name("cam", now - Duration::from_secs(100 - i)));
            std::fs::write(&p, vec![0u8; 1_000]).unwrap();
            paths.push(p);
        }
        let capacity = Arc::new(AtomicU64::new(6_000)); // 5 000 used, 1 000 free
        let cfg = ContinuousConfig {
            dir: dir.path().to_owned(),
            segment: Duration::from_secs(2),
            retention: Retention { max_age: None, max_total_bytes: None, reserve_bytes: 2_500 },
            free_space: fake_disk(capacity.clone()),
        };
        let stats = RecordStats::default();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut store = SegmentStore::new(Arc::from("cam"), cfg);

        // 1 000 free, reserve 2 500: the two oldest go.
        assert_eq!(store.prepare(now, &stats, &tx).unwrap(), StoreDecision::Record);
        assert!(!paths[0].exists() && !paths[1].exists() && paths[2].exists());
        assert_eq!(
            rx.try_recv().unwrap(),
            RecordEvent::SegmentsDeleted { camera: Arc::from("cam"), paths: paths[..2].to_vec() }
        );
        assert_eq!(stats.snapshot().segments_deleted, 2);

        // The disk shrinks (someone else filled it): everything goes and it is still not enough.
        capacity.store(2_000, Relaxed);
        assert_eq!(store.prepare(now, &stats, &tx).unwrap(), StoreDecision::Pause { free_bytes: 2_000 });
        assert!(paths.iter().all(|p| !p.exists()));
        assert!(matches!(rx.try_recv().unwrap(), RecordEvent::SegmentsDeleted { .. }));
        assert_eq!(
            rx.try_recv().unwrap(),
            RecordEvent::DiskFull { camera: Arc::from("cam"), free_bytes: 2_000, reserve_bytes: 2_500 }
        );
        assert!(store.is_paused() && stats.snapshot().disk_paused);
        // Still paused: no repeated alert.
        assert!(matches!(store.prepare(now, &stats, &tx).unwrap(), StoreDecision::Pause { .. }));
        assert!(rx.try_recv().is_err());

        // Space comes back: recording resumes, once.
        capacity.store(10_000, Relaxed);
        assert_eq!(store.prepare(now, &stats, &tx).unwrap(), StoreDecision::Record);
        assert_eq!(rx.try_recv().unwrap(), RecordEvent::DiskOk { camera: Arc::from("cam"), free_bytes: 10_000 });
        assert!(!stats.snapshot().disk_paused);
        assert!(!store.below_reserve());
    }
}
