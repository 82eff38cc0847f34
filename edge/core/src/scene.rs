//! Scene analytics on top of tracking: object lifecycle, line crossings with direction and
//! per-line counters (people counting), zone enter/exit and loitering.

use std::collections::HashMap;

use vigil_proto::Timestamp;

use crate::Detected;
use crate::geometry::{Point, Polygon, crossing, side};
use crate::track::{Looked, Track, TrackUpdate, Tracker, TrackerConfig};

/// A counting line `a → b`. Crossing from its right-hand side to its left-hand side (as seen
/// walking from `a` to `b`, y down) counts as `In`; the other way as `Out`.
#[derive(Debug, Clone, PartialEq)]
pub struct LineConfig {
    pub id: String,
    pub a: Point,
    pub b: Point,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ZoneConfig {
    pub id: String,
    pub polygon: Polygon,
    /// Report loitering when an object stays this long (microseconds).
    pub loiter_us: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    In,
    Out,
}

/// What happened in the scene during one update.
#[derive(Debug, Clone, PartialEq)]
pub enum SceneEvent {
    ObjectStarted(Track),
    ObjectEnded { track: Track, duration_us: i64 },
    LineCrossed { line: String, track: u64, class_id: u32, direction: Direction, count_in: u64, count_out: u64 },
    ZoneEntered { zone: String, track: u64, class_id: u32 },
    ZoneExited { zone: String, track: u64, class_id: u32, dwell_us: i64 },
    Loitering { zone: String, track: u64, class_id: u32, dwell_us: i64 },
}

/// Half-width of the band around a counting line, in normalised units: an object's position only
/// counts once it is this far from the line, so a person dawdling on the line (or a box jittering
/// across it) is counted once, not at every frame.
pub const LINE_HYSTERESIS: f32 = 0.02;

#[derive(Debug)]
struct LineState {
    cfg: LineConfig,
    count_in: u64,
    count_out: u64,
    /// Per track: the last foot point clearly outside the band (where it is "from").
    anchors: HashMap<u64, Point>,
}

impl LineState {
    /// Signed distance of `p` from the line, normalised units.
    fn distance(&self, p: Point) -> f32 {
        let (a, b) = (self.cfg.a, self.cfg.b);
        let len = ((b.x - a.x).powi(2) + (b.y - a.y).powi(2)).sqrt().max(1e-6);
        side(a, b, p) / len
    }

    /// Feeds a track's new foot point; returns the direction when it completed a crossing.
    fn step(&mut self, track: u64, to: Point) -> Option<Direction> {
        if self.distance(to).abs() < LINE_HYSTERESIS {
            return None;
        }
        let from = self.anchors.insert(track, to)?;
        let positive = crossing(self.cfg.a, self.cfg.b, from, to)?;
        let direction = if positive { Direction::Out } else { Direction::In };
        match direction {
            Direction::In => self.count_in += 1,
            Direction::Out => self.count_out += 1,
        }
        Some(direction)
    }
}

#[derive(Debug)]
struct ZoneState {
    cfg: ZoneConfig,
    /// Track id → (entered at, loitering reported).
    inside: HashMap<u64, (Timestamp, bool)>,
}

#[derive(Debug)]
pub struct Scene {
    tracker: Tracker,
    lines: Vec<LineState>,
    zones: Vec<ZoneState>,
}

impl Scene {
    pub fn new(tracker: TrackerConfig, lines: Vec<LineConfig>, zones: Vec<ZoneConfig>) -> Scene {
        Scene {
            tracker: Tracker::new(tracker),
            lines: lines
                .into_iter()
                .map(|cfg| LineState { cfg, count_in: 0, count_out: 0, anchors: HashMap::new() })
                .collect(),
            zones: zones.into_iter().map(|cfg| ZoneState { cfg, inside: HashMap::new() }).collect(),
        }
    }

    /// Objects being tracked (confirmed or not).
    pub fn tracks(&self) -> &[Track] {
        self.tracker.tracks()
    }

    /// `(line id, in, out)` counters since start.
    /// New lines and zones (a configuration push). Tracks continue; a line or zone whose id and
    /// geometry are unchanged keeps its counters and who is inside it; the others start fresh
    /// (objects already inside a new zone are reported as entering it when they next move).
    pub fn reconfigure(&mut self, lines: Vec<LineConfig>, zones: Vec<ZoneConfig>) {
        let mut old_lines = std::mem::take(&mut self.lines);
        self.lines = lines
            .into_iter()
            .map(|cfg| match old_lines.iter().position(|l| l.cfg == cfg) {
                Some(i) => old_lines.swap_remove(i),
                None => LineState { cfg, count_in: 0, count_out: 0, anchors: HashMap::new() },
            })
            .collect();
        let mut old_zones = std::mem::take(&mut self.zones);
        self.zones = zones
            .into_iter()
            .map(|cfg| match old_zones.iter().position(|z| z.cfg == cfg) {
                Some(i) => old_zones.swap_remove(i),
                None => ZoneState { cfg, inside: HashMap::new() },
            })
            .collect();
    }

    pub fn counts(&self) -> Vec<(String, u64, u64)> {
        self.lines.iter().map(|l| (l.cfg.id.clone(), l.count_in, l.count_out)).collect()
    }

    pub fn update(&mut self, now: Timestamp, detections: &[Detected], looked: Looked) -> Vec<SceneEvent> {
        let updates = self.tracker.update(now, detections, looked);
        self.apply(now, updates)
    }

    /// Ends every object (camera gone, shutdown).
    pub fn finish(&mut self, now: Timestamp) -> Vec<SceneEvent> {
        let updates = self.tracker.finish();
        self.apply(now, updates)
    }

    fn apply(&mut self, now: Timestamp, updates: Vec<TrackUpdate>) -> Vec<SceneEvent> {
        let mut out = Vec::new();
        for update in updates {
            match update {
                TrackUpdate::Started(track) => {
                    for line in &mut self.lines {
                        line.step(track.id, track.rect.foot());
                    }
                    out.push(SceneEvent::ObjectStarted(track.clone()));
                    self.zones_at(now, &track, track.rect.foot(), &mut out);
                }
                TrackUpdate::Moved { track, from: _, to } => {
                    for line in &mut self.lines {
                        if let Some(direction) = line.step(track.id, to) {
                            out.push(SceneEvent::LineCrossed {
                                line: line.cfg.id.clone(),
                                track: track.id,
                                class_id: track.class_id,
                                direction,
                                count_in: line.count_in,
                                count_out: line.count_out,
                            });
                        }
                    }
                    self.zones_at(now, &track, to, &mut out);
                }
                TrackUpdate::Ended(track) => {
                    for line in &mut self.lines {
                        line.anchors.remove(&track.id);
                    }
                    for zone in &mut self.zones {
                        if let Some((since, _)) = zone.inside.remove(&track.id) {
                            out.push(SceneEvent::ZoneExited {
                                zone: zone.cfg.id.clone(),
                                track: track.id,
                                class_id: track.class_id,
                                dwell_us: now.0 - since.0,
                            });
                        }
                    }
                    let duration_us = track.last_seen.0 - track.first_seen.0;
                    out.push(SceneEvent::ObjectEnded { track, duration_us });
                }
            }
        }
        out
    }

    fn zones_at(&mut self, now: Timestamp, track: &Track, foot: Point, out: &mut Vec<SceneEvent>) {
        for zone in &mut self.zones {
            let inside = zone.cfg.polygon.contains(foot);
            match (inside, zone.inside.get_mut(&track.id)) {
                (true, None) => {
                    zone.inside.insert(track.id, (now, false));
                    out.push(SceneEvent::ZoneEntered {
                        zone: zone.cfg.id.clone(),
                        track: track.id,
                        class_id: track.class_id,
                    });
                }
                (true, Some((since, reported))) => {
                    if let Some(limit) = zone.cfg.loiter_us
                        && !*reported
                        && now.0 - since.0 >= limit
                    {
                        *reported = true;
                        out.push(SceneEvent::Loitering {
                            zone: zone.cfg.id.clone(),
                            track: track.id,
                            class_id: track.class_id,
                            dwell_us: now.0 - since.0,
                        });
                    }
                }
                (false, Some(&mut (since, _))) => {
                    zone.inside.remove(&track.id);
                    out.push(SceneEvent::ZoneExited {
                        zone: zone.cfg.id.clone(),
                        track: track.id,
                        class_id: track.class_id,
                        dwell_us: now.0 - since.0,
                    });
                }
                (false, None) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(x: f32, y: f32) -> Point {
        Point { x, y }
    }

    /// A person whose feet are at (x, 0.6).
    fn person(x: f32) -> Detected {
        Detected { class_id: 0, score: 0.9, x: x - 0.05, y: 0.3, w: 0.1, h: 0.3 }
    }

    fn scene(loiter_us: Option<i64>) -> Scene {
        Scene::new(
            TrackerConfig::default(),
            vec![LineConfig { id: "door".into(), a: pt(0.5, 0.0), b: pt(0.5, 1.0) }],
            vec![ZoneConfig {
                id: "right".into(),
                polygon: Polygon(vec![pt(0.6, 0.0), pt(1.0, 0.0), pt(1.0, 1.0), pt(0.6, 1.0)]),
                loiter_us,
            }],
        )
    }

    fn short(e: &SceneEvent) -> String {
        match e {
            SceneEvent::ObjectStarted(t) => format!("start {}", t.id),
            SceneEvent::ObjectEnded { track, .. } => format!("end {}", track.id),
            SceneEvent::LineCrossed { line, track, direction, count_in, count_out, .. } => {
                format!("{line} {direction:?} {track} ({count_in}/{count_out})")
            }
            SceneEvent::ZoneEntered { zone, track, .. } => format!("enter {zone} {track}"),
            SceneEvent::ZoneExited { zone, track, .. } => format!("exit {zone} {track}"),
            SceneEvent::Loitering { zone, track, .. } => format!("loiter {zone} {track}"),
        }
    }

    #[track_caller]
    fn check(scene: &mut Scene, frames: &[(i64, Vec<Detected>)], expect: &[&str]) {
        let got: Vec<String> = frames
            .iter()
            .flat_map(|(ms, d)| scene.update(Timestamp(ms * 1000), d, Looked::Everywhere))
            .map(|e| short(&e))
            .collect();
        assert_eq!(got, expect);
    }

    #[test]
    fn crossing_left_to_right_and_back_counts_both_directions() {
        let mut s = scene(None);
        let walk = |from: f32, step: f32, t0: i64| -> Vec<(i64, Vec<Detected>)> {
            (0..12).map(|i| (t0 + i * 500, vec![person(from + step * i as f32)])).collect()
        };
        check(&mut s, &walk(0.30, 0.04, 0), &["start 1", "door In 1 (1/0)", "enter right 1"]);
        check(&mut s, &walk(0.74, -0.04, 6000), &["exit right 1", "door Out 1 (1/1)"]);
        assert_eq!(s.counts(), vec![("door".to_owned(), 1, 1)]);
    }

    #[test]
    fn a_reconfiguration_keeps_unchanged_lines_and_zones_and_resets_changed_ones() {
        let mut s = scene(None);
        let walk = |from: f32, step: f32, t0: i64| -> Vec<(i64, Vec<Detected>)> {
            (0..12).map(|i| (t0 + i * 500, vec![person(from + step * i as f32)])).collect()
        };
        check(&mut s, &walk(0.30, 0.04, 0), &["start 1", "door In 1 (1/0)", "enter right 1"]);
        // Same door line and zone, plus a new line further right: counts and presence stay.
        let door = LineConfig { id: "door".into(), a: pt(0.5, 0.0), b: pt(0.5, 1.0) };
        let far = LineConfig { id: "far".into(), a: pt(0.2, 0.0), b: pt(0.2, 1.0) };
        let right = s.zones[0].cfg.clone();
        s.reconfigure(vec![far.clone(), door.clone()], vec![right.clone()]);
        assert_eq!(s.counts(), vec![("far".to_owned(), 0, 0), ("door".to_owned(), 1, 0)]);
        check(&mut s, &walk(0.74, -0.04, 6000), &["exit right 1", "door Out 1 (1/1)"]);
        // The door line moved: a new line, counted from zero; the track keeps its id.
        let moved = LineConfig { id: "door".into(), a: pt(0.4, 0.0), b: pt(0.4, 1.0) };
        s.reconfigure(vec![moved], vec![]);
        assert_eq!(s.counts(), vec![("door".to_owned(), 0, 0)]);
        check(&mut s, &walk(0.30, 0.04, 12_000), &["door In 1 (1/0)"]);
    }

    #[test]
    fn jitter_on_the_line_counts_once() {
        let mut s = scene(None);
        // Walks up to the line, dithers across it for a while, then goes on to the right.
        let xs = [0.40, 0.44, 0.47, 0.51, 0.49, 0.515, 0.485, 0.51, 0.49, 0.53, 0.56];
        let frames: Vec<(i64, Vec<Detected>)> =
            xs.iter().enumerate().map(|(i, x)| (i as i64 * 500, vec![person(*x)])).collect();
        check(&mut s, &frames, &["start 1", "door In 1 (1/0)"]);
        assert_eq!(s.counts(), vec![("door".to_owned(), 1, 0)]);
    }

    #[test]
    fn loitering_is_reported_once_and_exit_on_end() {
        let mut s = scene(Some(2_000_000));
        let frames: Vec<(i64, Vec<Detected>)> = (0..8).map(|i| (i * 500, vec![person(0.8)])).collect();
        check(&mut s, &frames, &["start 1", "enter right 1", "loiter right 1"]);
        // It stood still (stationary): it ends only after the stationary max age, 10 s unseen.
        check(&mut s, &[(13_000, vec![])], &[]);
        check(&mut s, &[(14_000, vec![])], &["exit right 1", "end 1"]);
    }
}
