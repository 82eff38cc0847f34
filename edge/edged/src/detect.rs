//! The analysis stage: a bounded pool of inference workers shared by every camera.
//!
//! ```text
//! camera threads ──mpsc──▶ relay (per camera) ──▶ FrameSlots: one pending frame per camera
//!                                                   │  (a newer frame replaces an unanalysed one: drop-oldest, counted)
//!                          worker 1..N (OS threads, each its own ONNX session) ◀─┘ oldest frame first
//!                              plan (motion gating) → detector on crop / full frame / nothing
//!                              → observe (filters, tracker, lines, zones) → events → spool
//! ```
//!
//! A camera's frames are analysed in order, by one worker at a time (its analyzer is checked out
//! with the frame), so tracking state never races. A slow detector never backs up into the cameras:
//! each camera keeps only its newest frame.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use edge_core::analysis::crops_for;
use edge_core::{CameraAnalyzer, Detected, Frame, Plan};
use edge_detect::{BlazePersonDetector, Detector, YoloDetector};
use edge_spool::Spool;
use tokio::sync::{Notify, mpsc};
use uuid::Uuid;
use vigil_proto::{Event, Timestamp};

use crate::media::CameraMedia;
use crate::stats::{AnalysisSnapshot, DetectStats};
use crate::tiles::TileWork;

/// UUIDv7 whose time part is when the event happened.
pub fn event_id(at: Timestamp) -> Uuid {
    let (secs, nanos) = at.to_unix_parts();
    Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, secs, nanos))
}

/// What a worker checks out to analyse one camera's frame.
#[derive(Debug)]
pub struct CameraJob {
    pub analyzer: CameraAnalyzer,
    pub media: CameraMedia,
}

struct Slot {
    camera: Arc<str>,
    /// Analysis stopped by an operator (`stream_stop`): frames are dropped at the door.
    paused: bool,
    pending: Option<Frame>,
    /// `None` while a worker has it checked out.
    job: Option<CameraJob>,
    /// New analytics settings waiting for the job to come back.
    scene: Option<edge_core::SceneUpdate>,
    stats: Arc<Mutex<AnalysisSnapshot>>,
}

struct SlotsState {
    slots: Vec<Slot>,
    /// Where the next pick starts among frames captured at the same instant.
    next: usize,
    /// Relays still running; at 0 no frame will ever come again.
    open: usize,
    /// Frames whose tiles their worker offers to share ([`crate::tiles`]).
    help: std::collections::VecDeque<Arc<TileWork>>,
}

/// What a worker takes next.
#[allow(clippy::large_enum_variant)] // one per frame, moved once: boxing would only add an allocation
pub(crate) enum Work {
    /// Another worker's frame: help run its tiles.
    Help(Arc<TileWork>),
    /// A camera's frame (its slot index) and the camera's analysis state, checked out.
    Frame(usize, Frame, CameraJob),
}

/// One pending frame per camera, shared between relays and workers.
pub struct FrameSlots {
    state: Mutex<SlotsState>,
    ready: Condvar,
}

impl FrameSlots {
    pub fn new(jobs: Vec<(CameraJob, Arc<Mutex<AnalysisSnapshot>>)>) -> Arc<FrameSlots> {
        let slots: Vec<Slot> = jobs
            .into_iter()
            .map(|(job, stats)| Slot {
                camera: job.analyzer.config().camera.clone(),
                paused: false,
                pending: None,
                job: Some(job),
                scene: None,
                stats,
            })
            .collect();
        let open = slots.len();
        let state = SlotsState { slots, next: 0, open, help: Default::default() };
        Arc::new(FrameSlots { state: Mutex::new(state), ready: Condvar::new() })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlotsState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Offers a camera's newest frame; an older frame still waiting is dropped and counted.
    pub fn offer(&self, frame: Frame) {
        let mut st = self.lock();
        let Some(slot) = st.slots.iter_mut().find(|s| s.camera == frame.camera) else { return };
        if slot.paused {
            return;
        }
        if slot.pending.replace(frame).is_some() {
            slot.stats.lock().unwrap_or_else(|p| p.into_inner()).dropped_oldest += 1;
        }
        drop(st);
        self.ready.notify_one();
    }

    /// Starts or stops analysing one camera (its stream keeps running); `false` for an unknown camera.
    /// Stopping returns once a frame being analysed for the camera is finished (at most ~2 s), so
    /// nothing is analysed after it returns. Blocks: call it off the async runtime.
    pub fn set_analysis(&self, camera: &str, on: bool) -> bool {
        let mut st = self.lock();
        let Some(slot) = st.slots.iter_mut().find(|s| &*s.camera == camera) else { return false };
        slot.paused = !on;
        if !on {
            slot.pending = None;
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while !on && std::time::Instant::now() < deadline {
            if st.slots.iter().find(|s| &*s.camera == camera).is_none_or(|s| s.job.is_some()) {
                break;
            }
            drop(st);
            std::thread::sleep(Duration::from_millis(5));
            st = self.lock();
        }
        // Shown as paused only once nothing of the camera is being analysed any more.
        if let Some(slot) = st.slots.iter().find(|s| &*s.camera == camera) {
            slot.stats.lock().unwrap_or_else(|p| p.into_inner()).paused = !on;
        }
        true
    }

    /// Cameras analysed here, in configuration order.
    pub fn cameras(&self) -> Vec<Arc<str>> {
        self.lock().slots.iter().map(|s| s.camera.clone()).collect()
    }

    /// New analytics settings for one camera, in force from its next frame (a frame being analysed
    /// finishes with the old ones); `false` for an unknown camera.
    pub fn reconfigure(&self, camera: &str, scene: edge_core::SceneUpdate) -> bool {
        let mut st = self.lock();
        let Some(slot) = st.slots.iter_mut().find(|s| &*s.camera == camera) else { return false };
        match &mut slot.job {
            Some(job) => job.analyzer.reconfigure(scene),
            None => slot.scene = Some(scene),
        }
        true
    }

    /// A relay ended (its camera stopped for good).
    pub fn close_one(&self) {
        let mut st = self.lock();
        st.open = st.open.saturating_sub(1);
        drop(st);
        self.ready.notify_all();
    }

    /// Offers a frame's tiles to the next worker that comes for work.
    pub(crate) fn ask_help(&self, work: Arc<TileWork>) {
        self.lock().help.push_back(work);
        self.ready.notify_one();
    }

    /// Takes back an offer nobody took up.
    pub(crate) fn withdraw(&self, work: &Arc<TileWork>) {
        self.lock().help.retain(|w| !Arc::ptr_eq(w, work));
    }

    /// Blocks for the next work: another worker's frame to help with first (it is already being
    /// analysed, so it is the oldest), else the next frame of a camera no other worker holds, the
    /// one waiting longest first (captured earliest; ties round-robin), so no camera's frame waits
    /// behind newer ones; `None` once every relay closed and nothing is pending.
    pub(crate) fn take(&self) -> Option<Work> {
        let mut st = self.lock();
        loop {
            if let Some(work) = st.help.pop_front() {
                return Some(Work::Help(work));
            }
            let n = st.slots.len();
            let oldest = (0..n)
                .map(|k| (st.next + k) % n)
                .filter(|&i| st.slots[i].job.is_some())
                .filter_map(|i| st.slots[i].pending.as_ref().map(|f| (f.captured_at, i)))
                .min_by_key(|&(at, _)| at);
            if let Some((_, i)) = oldest {
                let slot = &mut st.slots[i];
                if let (Some(frame), Some(job)) = (slot.pending.take(), slot.job.take()) {
                    st.next = (i + 1) % n;
                    return Some(Work::Frame(i, frame, job));
                }
            }
            if st.open == 0 && st.slots.iter().all(|s| s.pending.is_none()) {
                return None;
            }
            st = self.ready.wait_timeout(st, Duration::from_millis(500)).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    fn give_back(&self, i: usize, job: CameraJob) {
        let mut st = self.lock();
        if let Some(slot) = st.slots.get_mut(i) {
            let analyzer = &job.analyzer;
            let mut snap = slot.stats.lock().unwrap_or_else(|p| p.into_inner());
            let c = analyzer.counts();
            snap.frames = c.frames;
            snap.skipped = c.skipped;
            snap.regions = c.regions;
            snap.full = c.full;
            snap.motion_episodes = c.motion_episodes;
            snap.live_objects = analyzer.live_objects() as u64;
            snap.lines = analyzer.line_counts();
            drop(snap);
            let mut job = job;
            if let Some(scene) = slot.scene.take() {
                job.analyzer.reconfigure(scene);
            }
            slot.job = Some(job);
        }
        drop(st);
        // A frame of this camera may have arrived while it was checked out.
        self.ready.notify_one();
    }

    /// Takes every analyzer out (after the workers stopped).
    fn drain(&self) -> Vec<CameraJob> {
        self.lock().slots.iter_mut().filter_map(|s| s.job.take()).collect()
    }
}

impl std::fmt::Debug for FrameSlots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.lock();
        f.debug_struct("FrameSlots").field("cameras", &st.slots.len()).field("open", &st.open).finish()
    }
}

impl std::fmt::Debug for AnyDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AnyDetector::Yolo(_) => "AnyDetector::Yolo",
            AnyDetector::Blaze(_) => "AnyDetector::Blaze",
        })
    }
}

/// Forwards one camera's frames into its slot until the camera thread ends.
pub async fn relay(mut frames: mpsc::Receiver<Frame>, slots: Arc<FrameSlots>) {
    while let Some(frame) = frames.recv().await {
        slots.offer(frame);
    }
    slots.close_one();
}

/// Everything a worker shares with the others.
#[derive(Clone, Debug)]
pub struct Shared {
    pub slots: Arc<FrameSlots>,
    pub spool: Spool,
    pub spooled: Arc<Notify>,
    pub stats: Arc<DetectStats>,
    pub eviction: crate::eviction::EvictionAlerts,
    /// Smallest crop side in pixels.
    pub min_crop: u32,
    /// Copies of every event for the rules stage.
    pub tap: crate::rules::EventTap,
}

/// The configured detector. YOLO sees a motion region as a pixel crop (at the whole frame's scale for
/// a dynamic-size model, letterboxed to its input for a fixed-size one);
/// BlazePose tiles only the regions.
pub enum AnyDetector {
    Yolo(YoloDetector),
    Blaze(Box<BlazePersonDetector>),
}

impl AnyDetector {
    pub fn name(&self) -> String {
        match self {
            AnyDetector::Yolo(d) => d.name().to_owned(),
            AnyDetector::Blaze(d) => d.name().to_owned(),
        }
    }
}

#[derive(Debug)]
pub struct DetectStage {
    /// One detector per worker.
    pub detectors: Vec<AnyDetector>,
    pub shared: Shared,
}

impl DetectStage {
    /// Runs the workers until every camera stopped, then ends every followed object.
    pub fn run(self) {
        let span = tracing::info_span!("stage", stage = "detect");
        let _enter = span.enter();
        let shared = self.shared;
        let mut detectors = self.detectors.into_iter();
        let first = detectors.next();
        let others: Vec<_> = detectors
            .enumerate()
            .filter_map(|(i, detector)| {
                let shared = shared.clone();
                std::thread::Builder::new()
                    .name(format!("vigil-detect-{}", i + 1))
                    .spawn(move || worker(detector, &shared))
                    .map_err(|error| tracing::error!(%error, "Cannot start an inference worker; running with fewer."))
                    .ok()
            })
            .collect();
        if let Some(detector) = first {
            worker(detector, &shared);
        }
        for handle in others {
            let _ = handle.join();
        }
        let now = Timestamp::from(chrono::Utc::now());
        let mut events = Vec::new();
        for mut job in shared.slots.drain() {
            events.extend(job.analyzer.finish(now, event_id));
        }
        if !events.is_empty() {
            append(&shared, &events);
        }
        tracing::info!(ended_objects = events.len(), "Detector stopped.");
    }
}

fn worker(mut detector: AnyDetector, shared: &Shared) {
    let mut crop_buf = Vec::new();
    while let Some(work) = shared.slots.take() {
        let (slot, frame, mut job) = match work {
            Work::Frame(slot, frame, job) => (slot, frame, job),
            Work::Help(tiles) => {
                if let AnyDetector::Blaze(d) = &mut detector {
                    tiles.help(d);
                }
                continue;
            }
        };
        let analyzer = &mut job.analyzer;
        let (plan, mut events) = analyzer.plan(&frame, event_id);
        let frame = Arc::new(frame);
        let found = match &plan {
            Plan::Skip => None,
            Plan::Full => Some(run(&mut detector, shared, &frame, None, &mut crop_buf)),
            Plan::Regions(regions) => Some(run(&mut detector, shared, &frame, Some(regions), &mut crop_buf)),
        };
        let analysed = matches!(found, Some(Ok(_)));
        if let Some(Ok(found)) = found {
            events.extend(analyzer.observe(&frame, &plan, &found, event_id));
            job.media.process(&frame, job.analyzer.tracks(), &mut events);
        }
        shared.slots.give_back(slot, job);
        if !events.is_empty() {
            tracing::trace!(camera = %frame.camera, events = events.len(), "Analysis events.");
            append(shared, &events);
        }
        let since_capture = Timestamp::from(chrono::Utc::now()).as_micros() - frame.captured_at.as_micros();
        let since_capture = Duration::from_micros(u64::try_from(since_capture).unwrap_or(0));
        if analysed {
            shared.stats.analysis_latency.record(since_capture);
        }
        if !events.is_empty() {
            shared.stats.event_latency.record(since_capture);
        }
    }
}

/// Runs the detector on the whole frame, or only where `regions` are: YOLO as pixel crops of them
/// (the whole frame when the crops would cover most of it), BlazePose by tiling them, its tiles
/// shared with an idle worker. Detections come back in whole-frame normalised coordinates.
fn run(
    detector: &mut AnyDetector,
    shared: &Shared,
    frame: &Arc<Frame>,
    regions: Option<&[edge_core::geometry::Rect]>,
    buf: &mut Vec<u8>,
) -> Result<Vec<Detected>, ()> {
    let started = Instant::now();
    let (rgb, width, height) = (&frame.rgb, frame.width, frame.height);
    let result = match (detector, regions) {
        (AnyDetector::Yolo(d), Some(regions)) => match crops_for(regions, width, height, shared.min_crop) {
            Some(crops) => d.detect_crops(rgb, (width, height), &crops, buf),
            None => d.detect(rgb, width, height),
        },
        (AnyDetector::Yolo(d), None) => d.detect(rgb, width, height),
        (AnyDetector::Blaze(d), regions) => run_shared(d, shared, frame, regions),
    };
    match result {
        Ok(found) => {
            shared.stats.inference_micros_total.fetch_add(started.elapsed().as_micros() as u64, Relaxed);
            shared.stats.frames_analyzed.fetch_add(1, Relaxed);
            Ok(found)
        }
        Err(error) => {
            shared.stats.errors.fetch_add(1, Relaxed);
            tracing::warn!(camera = %frame.camera, %error, "Inference failed for a frame.");
            Err(())
        }
    }
}

/// BlazePose on `frame`'s tiles for `regions` (or the whole frame), offered to an idle worker when
/// there are two or more.
fn run_shared(
    d: &mut BlazePersonDetector,
    shared: &Shared,
    frame: &Arc<Frame>,
    regions: Option<&[edge_core::geometry::Rect]>,
) -> Result<Vec<Detected>, edge_detect::DetectError> {
    let (width, height) = (frame.width, frame.height);
    let (tiles, whole) = d.plan(width, height, regions);
    let mut found = Vec::new();
    if tiles.len() < 2 {
        d.run_some_tiles(&frame.rgb, width, height, &tiles, whole, &mut found)?;
        return Ok(d.finish(&mut found, width, height, regions));
    }
    let work = TileWork::new(frame.clone(), tiles, whole, d.batch());
    shared.slots.ask_help(work.clone());
    let ran = work.run(d, &mut found);
    shared.slots.withdraw(&work);
    ran?;
    let helped = work.join(&mut found)?;
    shared.stats.tiles_shared.fetch_add(helped as u64, Relaxed);
    Ok(d.finish(&mut found, width, height, regions))
}

/// Appends with a few retries; an event that still cannot be stored is counted and logged as an
/// ERROR (never dropped silently).
fn append(shared: &Shared, events: &[Event]) {
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=5 {
        match shared.spool.append(events) {
            Ok(report) => {
                shared.stats.events_created.fetch_add(events.len() as u64, Relaxed);
                shared.tap.offer(events);
                for e in events {
                    tracing::debug!(id = %e.id, kind = %e.kind, source = %e.source.id, "Event spooled.");
                }
                if report.evicted.total() > 0 {
                    shared.eviction.record(report.evicted);
                }
                shared.spooled.notify_one();
                return;
            }
            Err(error) if attempt < 5 => {
                tracing::warn!(%error, attempt, "Spool append failed; retrying.");
                std::thread::sleep(delay);
                delay *= 2;
            }
            Err(error) => {
                shared.stats.events_lost.fetch_add(events.len() as u64, Relaxed);
                let ids: Vec<String> = events.iter().map(|e| e.id.to_string()).collect();
                tracing::error!(%error, ?ids, "Events could not be spooled and are lost.");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edge_core::{AnalyzerConfig, CameraAnalyzer};

    fn slots(cameras: &[&str]) -> Arc<FrameSlots> {
        let jobs = cameras
            .iter()
            .map(|c| {
                let camera: Arc<str> = Arc::from(*c);
                let cfg = AnalyzerConfig::new(Uuid::nil(), Uuid::nil(), camera.clone(), "m".into(), Vec::new());
                let job =
                    CameraJob { analyzer: CameraAnalyzer::new(cfg), media: crate::media::CameraMedia::none(camera) };
                (job, Arc::default())
            })
            .collect();
        FrameSlots::new(jobs)
    }

    fn frame(camera: &str, at_ms: i64) -> Frame {
        Frame {
            camera: Arc::from(camera),
            seq: at_ms as u64,
            captured_at: Timestamp(at_ms * 1000),
            width: 2,
            height: 2,
            rgb: vec![0; 12],
        }
    }

    fn take_frame(s: &FrameSlots) -> (usize, Frame, CameraJob) {
        match s.take() {
            Some(Work::Frame(i, f, j)) => (i, f, j),
            Some(Work::Help(_)) => panic!("help, not a frame"),
            None => panic!("nothing"),
        }
    }

    #[test]
    fn workers_take_the_frame_waiting_longest_and_never_two_of_one_camera() {
        let s = slots(&["a", "b", "c"]);
        // arrival order c (10 ms), a (20 ms), b (30 ms); camera order would be a, b, c
        s.offer(frame("c", 10));
        s.offer(frame("a", 20));
        s.offer(frame("b", 30));
        let (ic, fc, jc) = take_frame(&s);
        assert_eq!(&*fc.camera, "c");
        // c's next frame arrives while c is checked out: the others come first, oldest first
        s.offer(frame("c", 15));
        let (ia, fa, ja) = take_frame(&s);
        assert_eq!(&*fa.camera, "a");
        s.give_back(ic, jc);
        let (_, f, _) = take_frame(&s);
        assert_eq!((&*f.camera, f.seq), ("c", 15), "c is back and its frame is now the oldest");
        let (_, f, _) = take_frame(&s);
        assert_eq!(&*f.camera, "b");
        s.give_back(ia, ja);
        // a newer frame replaces an unanalysed one (drop-oldest), counted
        s.offer(frame("a", 40));
        s.offer(frame("a", 50));
        let (_, f, _) = take_frame(&s);
        assert_eq!(f.seq, 50);
    }

    #[test]
    fn a_frame_being_analysed_is_helped_before_new_frames_are_taken() {
        let s = slots(&["a", "b"]);
        s.offer(frame("b", 10));
        let work = TileWork::new(Arc::new(frame("a", 5)), Vec::new(), None, 1);
        s.ask_help(work.clone());
        assert!(matches!(s.take(), Some(Work::Help(w)) if Arc::ptr_eq(&w, &work)));
        // taken once: the next worker gets the frame
        let (ib, fb, jb) = take_frame(&s);
        assert_eq!(&*fb.camera, "b");
        s.give_back(ib, jb);
        // an offer nobody took up is withdrawn by its owner
        s.ask_help(work.clone());
        s.withdraw(&work);
        s.offer(frame("b", 20));
        assert_eq!(take_frame(&s).1.seq, 20);
    }
}
