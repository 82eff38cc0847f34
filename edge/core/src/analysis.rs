//! Per-camera analysis: motion gating in front of the detector, object filters, tracking and scene
//! analytics behind it, and the events that come out — one object lifecycle instead of one event
//! per frame.
//!
//! ```text
//! frame ──plan()──▶ Skip | Regions(rects) | Full      (motion, live tracks, periodic full check)
//!            │
//!            └──▶ motion.detected (at the start of a motion episode)
//! detector output ──observe()──▶ filters ──▶ Scene (tracker, lines, zones) ──▶ events
//! ```
//!
//! The caller runs the detector on what [`Plan`] says and feeds its output to
//! [`CameraAnalyzer::observe`]. Nothing here does IO or reads a clock.

use std::collections::HashMap;
use std::sync::Arc;

use uuid::Uuid;
use vigil_proto::{
    BoundingBox, CrossingDirection, DetectedObject, Detection, Event, EventKind, LineCrossing, Motion as MotionPayload,
    Payload, Source, SourceKind, Timestamp, TrackedObject, ZonePresence,
};

use crate::detections::{ClassRule, Detected};
use crate::frame::Frame;
use crate::geometry::{Point, Polygon, Rect};
use crate::motion::{MotionConfig, MotionDetector};
use crate::scene::{Direction, LineConfig, Scene, SceneEvent, ZoneConfig};
use crate::track::{Looked, Track, TrackerConfig};

/// Which events detections become.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventMode {
    /// Object lifecycle: `detection.*` when a tracked object appears, `object.updated` every
    /// [`AnalyzerConfig::update_every_us`], `object.ended`, plus line and zone events.
    #[default]
    Tracks,
    /// One `detection.*` event per analysed frame with objects (the skeleton's behaviour; useful to
    /// load-test the spool and uplink). Line and zone events are still produced.
    Frames,
}

/// Shape filters applied to detections before tracking (per camera).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectFilter {
    /// Minimum and maximum box area as a fraction of the frame (0 = no limit for max).
    pub min_area: f32,
    pub max_area: f32,
    /// Width / height bounds (0 = no limit).
    pub min_ratio: f32,
    pub max_ratio: f32,
    /// Objects whose foot point (bottom centre) is inside one of these are dropped (a poster, a
    /// mannequin, the street beyond the fence).
    pub masks: Vec<Polygon>,
}

impl ObjectFilter {
    pub fn keeps(&self, d: &Detected) -> bool {
        let area = d.w * d.h;
        let ratio = if d.h > 0.0 { d.w / d.h } else { f32::INFINITY };
        let foot = Point { x: d.x + d.w / 2.0, y: d.y + d.h };
        area >= self.min_area
            && (self.max_area <= 0.0 || area <= self.max_area)
            && ratio >= self.min_ratio
            && (self.max_ratio <= 0.0 || ratio <= self.max_ratio)
            && !self.masks.iter().any(|m| m.contains(foot))
    }
}

/// Everything one camera's analysis needs.
#[derive(Debug, Clone)]
pub struct AnalyzerConfig {
    pub tenant: Uuid,
    pub site: Uuid,
    pub camera: Arc<str>,
    pub zone: Option<String>,
    /// Model name written into detection events.
    pub model: String,
    /// Class → label, kind and minimum score; classes without a rule are ignored.
    pub classes: Vec<ClassRule>,
    pub filter: ObjectFilter,
    /// `None`: no motion gating, every frame is analysed in full.
    pub motion: Option<MotionConfig>,
    /// Run the detector on the whole frame at least this often even without motion, so still
    /// objects are (re)found (Frigate does the same). Microseconds.
    pub full_frame_every_us: i64,
    /// The periodic whole-frame look in this many parts (1 = the whole frame at once). With `n > 1`
    /// one part of an `n`-cell grid joins a frame's regions every `full_frame_every_us / n`, so the
    /// whole frame is still covered every `full_frame_every_us` without one frame costing a whole
    /// frame's worth (a tiling detector's whole frame is many tiles: one such frame would hold the
    /// camera up for longer than a frame period).
    pub full_frame_parts: u32,
    /// A stationary object (see [`TrackerConfig::stationary_after_us`]) is looked for only this often
    /// unless motion brings the detector there anyway, as Frigate does: a parked car or a false positive
    /// on the background must not keep its region analysed on every frame. Microseconds.
    pub stationary_check_us: i64,
    /// A motion episode ends after this long without motion. Microseconds.
    pub motion_quiet_us: i64,
    /// Minimum motion score (fraction of the picture) for a frame to count as moving.
    pub motion_min_score: f32,
    pub tracker: TrackerConfig,
    pub lines: Vec<LineConfig>,
    pub zones: Vec<ZoneConfig>,
    pub mode: EventMode,
    /// Cadence of `object.updated` per live object (0 = never). Microseconds.
    pub update_every_us: i64,
}

impl AnalyzerConfig {
    /// Defaults for everything but identity and classes.
    pub fn new(tenant: Uuid, site: Uuid, camera: Arc<str>, model: String, classes: Vec<ClassRule>) -> AnalyzerConfig {
        AnalyzerConfig {
            tenant,
            site,
            camera,
            zone: None,
            model,
            classes,
            filter: ObjectFilter::default(),
            motion: Some(MotionConfig::default()),
            full_frame_every_us: 5_000_000,
            full_frame_parts: 1,
            stationary_check_us: 1_000_000,
            motion_quiet_us: 10_000_000,
            motion_min_score: 0.0,
            tracker: TrackerConfig::default(),
            lines: Vec::new(),
            zones: Vec::new(),
            mode: EventMode::Tracks,
            update_every_us: 0,
        }
    }
}

/// The part of [`AnalyzerConfig`] a configuration push may change on a running camera.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SceneUpdate {
    pub motion: Option<MotionConfig>,
    pub full_frame_every_us: i64,
    pub filter: ObjectFilter,
    pub lines: Vec<LineConfig>,
    pub zones: Vec<ZoneConfig>,
}

/// Where to run the detector on this frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Nothing moves and no object is being followed: skip the detector.
    Skip,
    /// Only here (normalised rects: motion regions and live objects, padded).
    Regions(Vec<Rect>),
    /// The whole frame.
    Full,
}

/// Counters one analyzer keeps (the daemon sums them into its status).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnalyzerCounts {
    pub frames: u64,
    pub skipped: u64,
    pub regions: u64,
    pub full: u64,
    pub motion_episodes: u64,
}

/// What the analyzer remembers of an object between frames.
#[derive(Debug, Clone, Copy)]
struct Live {
    last_update: Timestamp,
}

/// One camera's analysis state.
#[derive(Debug)]
pub struct CameraAnalyzer {
    cfg: AnalyzerConfig,
    motion: Option<MotionDetector>,
    scene: Scene,
    last_full: Option<Timestamp>,
    /// The next part of a sweep in parts, and when the last one was looked at.
    sweep: (u32, Option<Timestamp>),
    /// Last instant motion was seen, while an episode is open.
    moving_since: Option<(Timestamp, Timestamp)>,
    live: HashMap<u64, Live>,
    counts: AnalyzerCounts,
}

/// Part `k` of the frame split into `parts` cells (a grid of ⌈√parts⌉ columns, row by row; the last
/// row's cells widen to fill it), normalised.
pub fn sweep_part(k: u32, parts: u32) -> Rect {
    let parts = parts.max(1);
    let k = k % parts;
    let cols = (1..=parts).find(|c| c * c >= parts).unwrap_or(1);
    let rows = parts.div_ceil(cols);
    let (row, col) = (k / cols, k % cols);
    let in_row = if row + 1 == rows { parts - row * cols } else { cols };
    Rect { x: col as f32 / in_row as f32, y: row as f32 / rows as f32, w: 1.0 / in_row as f32, h: 1.0 / rows as f32 }
}

/// Pads a normalised rect by `pad` on every side, clamped to the frame.
fn pad(r: Rect, pad: f32) -> Rect {
    let x0 = (r.x - pad).max(0.0);
    let y0 = (r.y - pad).max(0.0);
    let x1 = (r.x + r.w + pad).min(1.0);
    let y1 = (r.y + r.h + pad).min(1.0);
    Rect { x: x0, y: y0, w: (x1 - x0).max(0.0), h: (y1 - y0).max(0.0) }
}

fn bbox(r: &Rect) -> BoundingBox {
    BoundingBox { x: r.x, y: r.y, w: r.w, h: r.h }
}

fn direction(d: Direction) -> CrossingDirection {
    match d {
        Direction::In => CrossingDirection::In,
        Direction::Out => CrossingDirection::Out,
    }
}

fn micros_to_ms(us: i64) -> u64 {
    u64::try_from(us / 1000).unwrap_or(0)
}

impl CameraAnalyzer {
    pub fn new(cfg: AnalyzerConfig) -> CameraAnalyzer {
        let scene = Scene::new(cfg.tracker, cfg.lines.clone(), cfg.zones.clone());
        CameraAnalyzer {
            motion: cfg.motion.clone().map(MotionDetector::new),
            scene,
            cfg,
            last_full: None,
            sweep: (0, None),
            moving_since: None,
            live: HashMap::new(),
            counts: AnalyzerCounts::default(),
        }
    }

    /// New analytics settings for this camera (a configuration push): object filter, motion
    /// gating, full-frame cadence, lines and zones. Tracks and their ids continue, unchanged lines
    /// keep their counters and unchanged zones who is inside; a changed motion configuration starts
    /// a new background model.
    pub fn reconfigure(&mut self, s: SceneUpdate) {
        if s.motion != self.cfg.motion {
            self.motion = s.motion.clone().map(MotionDetector::new);
            self.moving_since = None;
        }
        self.scene.reconfigure(s.lines.clone(), s.zones.clone());
        self.cfg.motion = s.motion;
        self.cfg.full_frame_every_us = s.full_frame_every_us;
        self.cfg.filter = s.filter;
        self.cfg.lines = s.lines;
        self.cfg.zones = s.zones;
    }

    pub fn config(&self) -> &AnalyzerConfig {
        &self.cfg
    }

    pub fn counts(&self) -> AnalyzerCounts {
        self.counts
    }

    /// `(line id, in, out)` since start.
    pub fn line_counts(&self) -> Vec<(String, u64, u64)> {
        self.scene.counts()
    }

    /// Tracks (confirmed or not) after the last update.
    pub fn tracks(&self) -> &[Track] {
        self.scene.tracks()
    }

    /// Objects being followed right now.
    pub fn live_objects(&self) -> usize {
        self.live.len()
    }

    fn event(
        &self,
        kind: EventKind,
        at: Timestamp,
        payload: Payload,
        new_id: &mut impl FnMut(Timestamp) -> Uuid,
    ) -> Event {
        Event {
            id: new_id(at),
            tenant: self.cfg.tenant,
            site: self.cfg.site,
            zone: self.cfg.zone.clone(),
            source: Source { kind: SourceKind::Camera, id: self.cfg.camera.to_string() },
            kind,
            occurred_at: at,
            payload,
        }
    }

    /// Decides where to look in `frame`; may open a motion episode (`motion.detected`).
    pub fn plan(&mut self, frame: &Frame, mut new_id: impl FnMut(Timestamp) -> Uuid) -> (Plan, Vec<Event>) {
        let now = frame.captured_at;
        self.counts.frames += 1;
        let mut events = Vec::new();
        let Some(detector) = self.motion.as_mut() else {
            self.counts.full += 1;
            self.last_full = Some(now);
            return (Plan::Full, events);
        };
        let motion = detector.update(&frame.rgb, frame.width, frame.height);
        let moving = !motion.regions.is_empty() && motion.score >= self.cfg.motion_min_score;
        match (moving, self.moving_since) {
            (true, None) => {
                self.moving_since = Some((now, now));
                self.counts.motion_episodes += 1;
                let payload = Payload::Motion(MotionPayload {
                    score: motion.score,
                    regions: motion.regions.iter().map(bbox).collect(),
                });
                events.push(self.event(EventKind::MotionDetected, now, payload, &mut new_id));
            }
            (true, Some((start, _))) => self.moving_since = Some((start, now)),
            (false, Some((_, last))) if now.0 - last.0 >= self.cfg.motion_quiet_us => self.moving_since = None,
            (false, _) => {}
        }
        let parts = self.cfg.full_frame_parts.max(1);
        let mut regions: Vec<Rect> = Vec::new();
        if parts == 1 {
            let full_due = self.last_full.is_none_or(|t| now.0 - t.0 >= self.cfg.full_frame_every_us);
            if full_due {
                self.counts.full += 1;
                self.last_full = Some(now);
                return (Plan::Full, events);
            }
        } else {
            let every = self.cfg.full_frame_every_us / i64::from(parts);
            let (next, last) = self.sweep;
            if last.is_none_or(|t| now.0 - t.0 >= every) {
                regions.push(pad(sweep_part(next, parts), 0.04));
                self.sweep = ((next + 1) % parts, Some(now));
                if next + 1 == parts {
                    self.counts.full += 1;
                    self.last_full = Some(now);
                }
            }
        }
        if moving {
            regions.extend(motion.regions.iter().map(|r| pad(*r, 0.02)));
        }
        // Keep looking where followed objects are, so a person who stops walking is not lost; where
        // one has stayed put for a while, only every `stationary_check_us`.
        let (tracker, check) = (&self.cfg.tracker, self.cfg.stationary_check_us);
        regions.extend(
            self.scene
                .tracks()
                .iter()
                .filter(|t| !t.stationary(now, tracker) || now.0 - t.last_looked.0 >= check)
                .map(|t| pad(t.rect, 0.05)),
        );
        if regions.is_empty() {
            self.counts.skipped += 1;
            return (Plan::Skip, events);
        }
        self.counts.regions += 1;
        (Plan::Regions(regions), events)
    }

    /// Feeds the detector's output for `frame` (normalised, whole-frame coordinates), found where
    /// `plan` (from [`CameraAnalyzer::plan`] for this frame) said to look.
    pub fn observe(
        &mut self,
        frame: &Frame,
        plan: &Plan,
        detected: &[Detected],
        mut new_id: impl FnMut(Timestamp) -> Uuid,
    ) -> Vec<Event> {
        let now = frame.captured_at;
        let kept: Vec<Detected> = detected
            .iter()
            .filter(|d| {
                self.cfg.classes.iter().any(|r| r.class_id == d.class_id && d.score >= r.min_score)
                    && self.cfg.filter.keeps(d)
            })
            .copied()
            .collect();
        let mut events = Vec::new();
        if self.cfg.mode == EventMode::Frames && !kept.is_empty() {
            let cx = crate::EventContext {
                tenant: self.cfg.tenant,
                site: self.cfg.site,
                zone: self.cfg.zone.as_deref(),
                model: &self.cfg.model,
            };
            events.extend(crate::detections_to_events(&cx, frame, &kept, &self.cfg.classes, &mut new_id));
        }
        let looked = match plan {
            Plan::Full => Looked::Everywhere,
            Plan::Regions(regions) => Looked::Regions(regions),
            Plan::Skip => Looked::Regions(&[]),
        };
        let scene_events = self.scene.update(now, &kept, looked);
        self.emit(now, frame, scene_events, &mut new_id, &mut events);
        if self.cfg.mode == EventMode::Tracks && self.cfg.update_every_us > 0 {
            let due: Vec<Track> = self
                .scene
                .tracks()
                .iter()
                .filter(|t| {
                    t.last_seen == now
                        && self.live.get(&t.id).is_some_and(|l| now.0 - l.last_update.0 >= self.cfg.update_every_us)
                })
                .cloned()
                .collect();
            for t in due {
                if let Some(l) = self.live.get_mut(&t.id) {
                    l.last_update = now;
                }
                let payload = self.tracked(&t, now.0 - t.first_seen.0);
                events.push(self.event(EventKind::ObjectUpdated, now, payload, &mut new_id));
            }
        }
        events
    }

    /// Ends every object (camera gone, shutdown).
    pub fn finish(&mut self, now: Timestamp, mut new_id: impl FnMut(Timestamp) -> Uuid) -> Vec<Event> {
        let scene_events = self.scene.finish(now);
        let mut events = Vec::new();
        let frame =
            Frame { camera: self.cfg.camera.clone(), seq: 0, captured_at: now, width: 0, height: 0, rgb: Vec::new() };
        self.emit(now, &frame, scene_events, &mut new_id, &mut events);
        events
    }

    fn label(&self, class_id: u32) -> (String, Option<EventKind>) {
        match self.cfg.classes.iter().find(|r| r.class_id == class_id) {
            Some(r) => (r.label.clone(), Some(r.kind)),
            None => (format!("class-{class_id}"), None),
        }
    }

    fn tracked(&self, t: &Track, duration_us: i64) -> Payload {
        Payload::Object(TrackedObject {
            track: t.id,
            class_id: t.class_id,
            label: self.label(t.class_id).0,
            score: t.best_score,
            bbox: bbox(&t.rect),
            first_seen: t.first_seen,
            duration_ms: micros_to_ms(duration_us),
            snapshot: None,
        })
    }

    fn emit(
        &mut self,
        now: Timestamp,
        frame: &Frame,
        scene_events: Vec<SceneEvent>,
        new_id: &mut impl FnMut(Timestamp) -> Uuid,
        out: &mut Vec<Event>,
    ) {
        for se in scene_events {
            match se {
                SceneEvent::ObjectStarted(t) => {
                    self.live.insert(t.id, Live { last_update: now });
                    if self.cfg.mode != EventMode::Tracks {
                        continue;
                    }
                    let (label, kind) = self.label(t.class_id);
                    let Some(kind) = kind else { continue };
                    let payload = Payload::Detection(Detection {
                        model: self.cfg.model.clone(),
                        frame_seq: frame.seq,
                        frame_width: frame.width,
                        frame_height: frame.height,
                        objects: vec![DetectedObject {
                            class_id: t.class_id,
                            label,
                            score: t.best_score,
                            bbox: bbox(&t.rect),
                            track: Some(t.id),
                        }],
                        clip: None,
                    });
                    out.push(self.event(kind, now, payload, new_id));
                }
                SceneEvent::ObjectEnded { track, duration_us } => {
                    self.live.remove(&track.id);
                    if self.cfg.mode == EventMode::Tracks {
                        let payload = self.tracked(&track, duration_us);
                        out.push(self.event(EventKind::ObjectEnded, track.last_seen, payload, new_id));
                    }
                }
                SceneEvent::LineCrossed { line, track, class_id, direction: d, count_in, count_out } => {
                    let payload = Payload::LineCrossing(LineCrossing {
                        line,
                        track,
                        label: self.label(class_id).0,
                        direction: direction(d),
                        count_in,
                        count_out,
                    });
                    out.push(self.event(EventKind::LineCrossed, now, payload, new_id));
                }
                SceneEvent::ZoneEntered { zone, track, class_id } => {
                    let payload = Payload::ZonePresence(ZonePresence {
                        area: zone,
                        track,
                        label: self.label(class_id).0,
                        dwell_ms: 0,
                    });
                    out.push(self.event(EventKind::ZoneEntered, now, payload, new_id));
                }
                SceneEvent::ZoneExited { zone, track, class_id, dwell_us } => {
                    let payload = Payload::ZonePresence(ZonePresence {
                        area: zone,
                        track,
                        label: self.label(class_id).0,
                        dwell_ms: micros_to_ms(dwell_us),
                    });
                    out.push(self.event(EventKind::ZoneExited, now, payload, new_id));
                }
                SceneEvent::Loitering { zone, track, class_id, dwell_us } => {
                    let payload = Payload::ZonePresence(ZonePresence {
                        area: zone,
                        track,
                        label: self.label(class_id).0,
                        dwell_ms: micros_to_ms(dwell_us),
                    });
                    out.push(self.event(EventKind::ZoneLoitering, now, payload, new_id));
                }
            }
        }
    }
}

/// Frame pixels one extra detector run is worth: two crops are analysed as one when the one crop
/// holding both is at most this much larger than they are together.
pub const MERGE_SLACK_PX: f32 = 128.0 * 128.0;
/// Most separate crops per frame (beyond that, the nearest ones are merged).
pub const MAX_CROPS: usize = 4;

/// The pixel crops `(x, y, w, h)` a detector looks at for `regions` (normalised): each region grown
/// around its centre to at least `min_side` pixels per side and clamped to the frame, then crops
/// merged while merging costs at most [`MERGE_SLACK_PX`] more pixels (or while there are more than
/// [`MAX_CROPS`]), cheapest merge first. `None` (look at the whole frame) when the crops would cover
/// most of it anyway (≥ 70 %). Detector cost grows with the pixels it sees, so people far apart are
/// two small crops, not one crop of the room between them.
pub fn crops_for(regions: &[Rect], width: u32, height: u32, min_side: u32) -> Option<Vec<(u32, u32, u32, u32)>> {
    if width == 0 || height == 0 || regions.is_empty() {
        return None;
    }
    let (fw, fh) = (width as f32, height as f32);
    let grow = |start: f32, len: f32, full: f32| -> (f32, f32) {
        let len_px = (len * full).max((min_side as f32).min(full)).min(full);
        let centre = (start + len / 2.0) * full;
        let s = (centre - len_px / 2.0).clamp(0.0, (full - len_px).max(0.0));
        (s, s + len_px)
    };
    // [x0, y0, x1, y1] in frame pixels
    let mut boxes: Vec<[f32; 4]> = regions
        .iter()
        .map(|r| {
            let (x0, x1) = grow(r.x, r.w, fw);
            let (y0, y1) = grow(r.y, r.h, fh);
            [x0, y0, x1, y1]
        })
        .collect();
    let area = |b: &[f32; 4]| (b[2] - b[0]) * (b[3] - b[1]);
    let hull = |a: &[f32; 4], b: &[f32; 4]| [a[0].min(b[0]), a[1].min(b[1]), a[2].max(b[2]), a[3].max(b[3])];
    let overlap = |a: &[f32; 4], b: &[f32; 4]| {
        let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
        let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
        w * h
    };
    loop {
        let mut best: Option<(usize, usize, f32)> = None;
        for i in 0..boxes.len() {
            for j in i + 1..boxes.len() {
                let (a, b) = (&boxes[i], &boxes[j]);
                let extra = area(&hull(a, b)) - (area(a) + area(b) - overlap(a, b));
                if best.is_none_or(|(_, _, e)| extra < e) {
                    best = Some((i, j, extra));
                }
            }
        }
        match best {
            Some((i, j, extra)) if extra <= MERGE_SLACK_PX || boxes.len() > MAX_CROPS => {
                let merged = hull(&boxes[i], &boxes[j]);
                boxes.swap_remove(j);
                boxes[i] = merged;
            }
            _ => break,
        }
    }
    if boxes.iter().map(area).sum::<f32>() >= 0.7 * fw * fh {
        return None;
    }
    Some(
        boxes
            .iter()
            .map(|b| {
                let (x, y) = (b[0].floor() as u32, b[1].floor() as u32);
                let w = ((b[2] - b[0]).ceil() as u32).min(width - x).max(1);
                let h = ((b[3] - b[1]).ceil() as u32).min(height - y).max(1);
                (x, y, w, h)
            })
            .collect(),
    )
}

/// Copies a pixel crop out of packed RGB8.
pub fn crop_rgb(rgb: &[u8], width: u32, crop: (u32, u32, u32, u32), out: &mut Vec<u8>) {
    let (x, y, w, h) = crop;
    let stride = width as usize * 3;
    out.clear();
    out.reserve(w as usize * h as usize * 3);
    for row in y as usize..(y + h) as usize {
        let start = row * stride + x as usize * 3;
        if let Some(line) = rgb.get(start..start + w as usize * 3) {
            out.extend_from_slice(line);
        }
    }
}

/// Maps detections found in a crop back to whole-frame normalised coordinates.
pub fn uncrop(detected: &mut [Detected], crop: (u32, u32, u32, u32), width: u32, height: u32) {
    let (cx, cy, cw, ch) = crop;
    let (fw, fh) = (width as f32, height as f32);
    for d in detected {
        d.x = (cx as f32 + d.x * cw as f32) / fw;
        d.y = (cy as f32 + d.y * ch as f32) / fh;
        d.w = d.w * cw as f32 / fw;
        d.h = d.h * ch as f32 / fh;
    }
}

#[cfg(test)]
mod tests;
