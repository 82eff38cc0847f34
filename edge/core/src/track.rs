//! Multi-object tracking: IoU association with constant-velocity prediction (SORT-style, without
//! the Kalman filter), stable ids, and lifecycle outputs instead of one event per frame.

use vigil_proto::Timestamp;

use crate::Detected;
use crate::geometry::{Point, Rect};

#[derive(Debug, Clone, Copy)]
pub struct TrackerConfig {
    /// Minimum IoU between a prediction and a detection to associate them.
    pub iou_match: f32,
    /// Detections needed before a track is confirmed (and reported).
    pub min_hits: u32,
    /// A track not seen for this long (microseconds) while the detector looked where it was ends.
    pub max_age_us: i64,
    /// A confirmed track whose box stays where it settled (IoU ≥ [`SETTLED_IOU`]) this long is
    /// stationary (microseconds): the analysis may look at it less often.
    pub stationary_after_us: i64,
    /// How long a stationary track may go unseen by looks that held it (microseconds): a still object
    /// is only checked now and then, and a missed check or two must not end it.
    pub stationary_max_age_us: i64,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            iou_match: 0.2,
            min_hits: 2,
            max_age_us: 2_000_000,
            stationary_after_us: 3_000_000,
            stationary_max_age_us: 10_000_000,
        }
    }
}

/// A box that overlaps where its track settled at least this much has not moved.
pub const SETTLED_IOU: f32 = 0.6;

/// Where the detector looked in one analysed frame.
#[derive(Debug, Clone, Copy)]
pub enum Looked<'a> {
    /// The whole frame.
    Everywhere,
    /// Only these regions (normalised): tracks elsewhere were not looked for, so they do not age.
    Regions(&'a [Rect]),
}

impl Looked<'_> {
    fn holds(&self, r: &Rect) -> bool {
        match self {
            Looked::Everywhere => true,
            Looked::Regions(regions) => regions.iter().any(|g| g.contains(r.center())),
        }
    }
}

/// What is known of one tracked object.
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    pub id: u64,
    pub class_id: u32,
    pub rect: Rect,
    pub best_score: f32,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub hits: u32,
    /// The last analysed frame whose looked-at area held this track (seen there or not).
    pub last_looked: Timestamp,
    /// Velocity of the box origin, normalised units per second.
    velocity: (f32, f32),
    /// Where the box settled, and since when: reset whenever it moves away from there.
    settled: (Rect, Timestamp),
}

impl Track {
    fn predict(&self, now: Timestamp) -> Rect {
        let dt = (now.0 - self.last_seen.0) as f32 / 1e6;
        Rect { x: self.rect.x + self.velocity.0 * dt, y: self.rect.y + self.velocity.1 * dt, ..self.rect }
    }

    pub fn confirmed(&self, cfg: &TrackerConfig) -> bool {
        self.hits >= cfg.min_hits
    }

    /// A confirmed object that has stayed put for `stationary_after_us` (a parked car, a person at
    /// a desk, a detector's false positive on the background).
    pub fn stationary(&self, now: Timestamp, cfg: &TrackerConfig) -> bool {
        self.confirmed(cfg) && now.0 - self.settled.1.0 >= cfg.stationary_after_us
    }

    fn max_age(&self, cfg: &TrackerConfig) -> i64 {
        if self.stationary(self.last_seen, cfg) {
            cfg.max_age_us.max(cfg.stationary_max_age_us)
        } else {
            cfg.max_age_us
        }
    }
}

/// Lifecycle output of one update.
#[derive(Debug, Clone, PartialEq)]
pub enum TrackUpdate {
    /// A track was confirmed: a new object is in view.
    Started(Track),
    /// A confirmed track moved; `from`/`to` are its foot points (bottom centre).
    Moved { track: Track, from: Point, to: Point },
    /// A confirmed track was not seen for its max age where the detector looked: the object left.
    Ended(Track),
}

#[derive(Debug, Clone)]
pub struct Tracker {
    cfg: TrackerConfig,
    tracks: Vec<Track>,
    next_id: u64,
}

fn rect_of(d: &Detected) -> Rect {
    Rect { x: d.x, y: d.y, w: d.w, h: d.h }
}

impl Tracker {
    pub fn new(cfg: TrackerConfig) -> Tracker {
        Tracker { cfg, tracks: Vec::new(), next_id: 1 }
    }

    /// Live tracks (confirmed or not).
    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    /// Feeds the detections of one analysed frame taken at `now`, found where `looked` says. A track
    /// outside the looked-at area is neither seen nor missed: it does not age.
    pub fn update(&mut self, now: Timestamp, detections: &[Detected], looked: Looked) -> Vec<TrackUpdate> {
        let mut out = Vec::new();
        // Greedy association between predictions and detections of the same class: by IoU first
        // (affinity 1 + IoU), then, for pairs that do not overlap enough (low analysis rates, fast
        // walkers), by centre distance within 0.75 of the object's height at a similar size
        // (affinity below 1).
        let predictions: Vec<Rect> = self.tracks.iter().map(|t| t.predict(now)).collect();
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (ti, t) in self.tracks.iter().enumerate() {
            for (di, d) in detections.iter().enumerate() {
                if d.class_id != t.class_id {
                    continue;
                }
                let (p, r) = (predictions[ti], rect_of(d));
                let iou = p.iou(&r);
                if iou >= self.cfg.iou_match {
                    pairs.push((1.0 + iou, ti, di));
                    continue;
                }
                let (pc, rc) = (p.center(), r.center());
                let dist = ((pc.x - rc.x).powi(2) + (pc.y - rc.y).powi(2)).sqrt();
                let limit = 0.75 * p.h.max(r.h);
                let similar = r.h > 0.0 && (0.6..=1.0 / 0.6).contains(&(p.h / r.h));
                if similar && limit > 0.0 && dist < limit {
                    pairs.push((1.0 - dist / limit, ti, di));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut track_used = vec![false; self.tracks.len()];
        let mut det_used = vec![false; detections.len()];
        for (_, ti, di) in pairs {
            if track_used[ti] || det_used[di] {
                continue;
            }
            track_used[ti] = true;
            det_used[di] = true;
            let d = &detections[di];
            let t = &mut self.tracks[ti];
            let was_confirmed = t.hits >= self.cfg.min_hits;
            let new = rect_of(d);
            let dt = (now.0 - t.last_seen.0) as f32 / 1e6;
            if dt > 0.0 {
                let v = ((new.x - t.rect.x) / dt, (new.y - t.rect.y) / dt);
                // The first measured step sets the velocity; later ones smooth it.
                t.velocity =
                    if t.hits == 1 { v } else { (0.3 * t.velocity.0 + 0.7 * v.0, 0.3 * t.velocity.1 + 0.7 * v.1) };
            }
            let from = t.rect.foot();
            if new.iou(&t.settled.0) < SETTLED_IOU {
                t.settled = (new, now);
            }
            t.rect = new;
            t.last_seen = now;
            t.last_looked = now;
            t.hits += 1;
            t.best_score = t.best_score.max(d.score);
            if !was_confirmed && t.hits >= self.cfg.min_hits {
                out.push(TrackUpdate::Started(t.clone()));
            } else if was_confirmed {
                out.push(TrackUpdate::Moved { track: t.clone(), from, to: new.foot() });
            }
        }
        // Tracks the detector looked for and has not seen for too long end.
        let cfg = self.cfg;
        let mut i = 0;
        self.tracks.retain_mut(|t| {
            let unmatched = !track_used[i];
            i += 1;
            if !unmatched || !looked.holds(&t.rect) {
                return true;
            }
            t.last_looked = now;
            let alive = now.0 - t.last_seen.0 <= t.max_age(&cfg);
            if !alive && t.confirmed(&cfg) {
                out.push(TrackUpdate::Ended(t.clone()));
            }
            alive
        });
        // Unmatched detections start tentative tracks.
        for (di, d) in detections.iter().enumerate() {
            if det_used[di] {
                continue;
            }
            let track = Track {
                id: self.next_id,
                class_id: d.class_id,
                rect: rect_of(d),
                best_score: d.score,
                first_seen: now,
                last_seen: now,
                hits: 1,
                last_looked: now,
                velocity: (0.0, 0.0),
                settled: (rect_of(d), now),
            };
            self.next_id += 1;
            if self.cfg.min_hits <= 1 {
                out.push(TrackUpdate::Started(track.clone()));
            }
            self.tracks.push(track);
        }
        out
    }

    /// Ends every track (camera stopped or shutdown).
    pub fn finish(&mut self) -> Vec<TrackUpdate> {
        let min_hits = self.cfg.min_hits;
        self.tracks.drain(..).filter(|t| t.hits >= min_hits).map(TrackUpdate::Ended).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(class_id: u32, x: f32, y: f32) -> Detected {
        Detected { class_id, score: 0.8, x, y, w: 0.1, h: 0.3 }
    }

    /// Summarises updates as `S<id>`, `M<id>`, `E<id>`.
    fn summary(updates: &[TrackUpdate]) -> Vec<String> {
        updates
            .iter()
            .map(|u| match u {
                TrackUpdate::Started(t) => format!("S{}", t.id),
                TrackUpdate::Moved { track, .. } => format!("M{}", track.id),
                TrackUpdate::Ended(t) => format!("E{}", t.id),
            })
            .collect()
    }

    #[track_caller]
    fn check(frames: &[(i64, Vec<Detected>)], expect: &[&[&str]]) {
        let mut tracker = Tracker::new(TrackerConfig::default());
        let got: Vec<Vec<String>> = frames
            .iter()
            .map(|(ms, d)| summary(&tracker.update(Timestamp(ms * 1000), d, Looked::Everywhere)))
            .collect();
        let expect: Vec<Vec<String>> = expect.iter().map(|f| f.iter().map(|s| s.to_string()).collect()).collect();
        assert_eq!(got, expect);
    }

    #[test]
    fn a_walking_person_keeps_one_id() {
        check(
            &[
                (0, vec![det(0, 0.10, 0.3)]),
                (500, vec![det(0, 0.13, 0.3)]),
                (1000, vec![det(0, 0.16, 0.3)]),
                (1500, vec![det(0, 0.19, 0.3)]),
            ],
            &[&[], &["S1"], &["M1"], &["M1"]],
        );
    }

    #[test]
    fn a_single_false_positive_is_never_reported() {
        check(&[(0, vec![det(0, 0.5, 0.5)]), (500, vec![]), (3000, vec![])], &[&[], &[], &[]]);
    }

    #[test]
    fn a_missed_frame_does_not_split_the_track_but_a_long_absence_ends_it() {
        check(
            &[
                (0, vec![det(0, 0.10, 0.3)]),
                (500, vec![det(0, 0.12, 0.3)]),
                (1000, vec![]),
                (1500, vec![det(0, 0.16, 0.3)]),
                (4000, vec![]),
            ],
            &[&[], &["S1"], &[], &["M1"], &["E1"]],
        );
    }

    #[test]
    fn two_people_crossing_paths_keep_their_ids_thanks_to_prediction() {
        // Person 1 walks right, person 2 walks left; they overlap in the middle frame.
        let frames = vec![
            (0, vec![det(0, 0.30, 0.3), det(0, 0.60, 0.3)]),
            (500, vec![det(0, 0.36, 0.3), det(0, 0.54, 0.3)]),
            (1000, vec![det(0, 0.42, 0.3), det(0, 0.48, 0.3)]),
            (1500, vec![det(0, 0.48, 0.3), det(0, 0.42, 0.3)]),
            (2000, vec![det(0, 0.54, 0.3), det(0, 0.36, 0.3)]),
        ];
        let mut tracker = Tracker::new(TrackerConfig::default());
        for (ms, d) in &frames {
            tracker.update(Timestamp(ms * 1000), d, Looked::Everywhere);
        }
        let mut t: Vec<(u64, f32)> = tracker.tracks().iter().map(|t| (t.id, t.rect.x)).collect();
        t.sort_by_key(|(id, _)| *id);
        assert_eq!(t.len(), 2);
        assert!((t[0].1 - 0.54).abs() < 1e-6, "track 1 continued to the right: {t:?}");
        assert!((t[1].1 - 0.36).abs() < 1e-6, "track 2 continued to the left: {t:?}");
    }

    #[test]
    fn classes_never_share_a_track() {
        check(
            &[(0, vec![det(0, 0.1, 0.3)]), (500, vec![det(2, 0.1, 0.3)]), (1000, vec![det(2, 0.1, 0.3)])],
            &[&[], &[], &["S2"]],
        );
    }

    #[test]
    fn a_track_the_detector_did_not_look_for_does_not_age() {
        let mut t = Tracker::new(TrackerConfig::default());
        t.update(Timestamp(0), &[det(0, 0.10, 0.3)], Looked::Everywhere);
        t.update(Timestamp(500_000), &[det(0, 0.10, 0.3)], Looked::Everywhere);
        // 5 s of looks at the right half only: the person on the left is neither seen nor missed.
        let right = [Rect { x: 0.5, y: 0.0, w: 0.5, h: 1.0 }];
        for i in 2..12 {
            assert_eq!(summary(&t.update(Timestamp(i * 500_000), &[], Looked::Regions(&right))), Vec::<String>::new());
        }
        assert_eq!(t.tracks().len(), 1);
        assert_eq!(t.tracks()[0].last_looked, Timestamp(500_000));
        // The first look that holds it and misses it, over the max age after it was last seen: it left.
        let left = [Rect { x: 0.0, y: 0.0, w: 0.5, h: 1.0 }];
        assert_eq!(summary(&t.update(Timestamp(6_000_000), &[], Looked::Regions(&left))), ["E1"]);
    }

    #[test]
    fn a_still_object_becomes_stationary_and_outlives_missed_checks() {
        let cfg = TrackerConfig::default();
        let mut t = Tracker::new(cfg);
        // A person standing, the box jittering by a pixel or two, and a walker.
        for i in 0..8 {
            let jitter = if i % 2 == 0 { 0.0 } else { 0.004 };
            let walker = det(0, 0.10 + 0.03 * i as f32, 0.5);
            t.update(Timestamp(i * 500_000), &[det(0, 0.70 + jitter, 0.1), walker], Looked::Everywhere);
            let still = t.tracks().iter().find(|t| t.id == 1).unwrap();
            let walking = t.tracks().iter().find(|t| t.id == 2).unwrap();
            assert_eq!(still.stationary(Timestamp(i * 500_000), &cfg), i >= 6, "the standing one at {i}");
            assert!(!walking.stationary(Timestamp(i * 500_000), &cfg), "the walker at {i}");
        }
        // The walker leaves: gone 2 s after it was last seen. The standing person, checked once a
        // second and missed every time, lasts 10 s.
        let mut ended = Vec::new();
        for s in 4..=14 {
            for u in t.update(Timestamp(s * 1_000_000), &[], Looked::Everywhere) {
                if let TrackUpdate::Ended(track) = u {
                    ended.push((track.id, s));
                }
            }
        }
        assert_eq!(ended, [(2, 6), (1, 14)]);
        // Moving away from where it settled makes an object moving again.
        let mut t = Tracker::new(cfg);
        for i in 0..8 {
            t.update(Timestamp(i * 500_000), &[det(0, 0.70, 0.1)], Looked::Everywhere);
        }
        assert!(t.tracks()[0].stationary(Timestamp(3_500_000), &cfg));
        t.update(Timestamp(4_000_000), &[det(0, 0.76, 0.1)], Looked::Everywhere);
        assert!(!t.tracks()[0].stationary(Timestamp(4_000_000), &cfg));
    }

    #[test]
    fn a_fast_walker_at_a_low_frame_rate_keeps_one_track() {
        // 0.5 s between frames, the box moves more than its own width each time: no overlap at all.
        let mut t = Tracker::new(TrackerConfig::default());
        let mut started = 0;
        for i in 0..6 {
            let d = Detected { class_id: 0, score: 0.9, x: 0.1 + 0.08 * i as f32, y: 0.3, w: 0.06, h: 0.25 };
            for u in t.update(Timestamp(i * 500_000), &[d], Looked::Everywhere) {
                if matches!(u, TrackUpdate::Started(_)) {
                    started += 1;
                }
            }
        }
        assert_eq!(started, 1);
        assert_eq!(t.tracks().len(), 1);
        assert_eq!(t.tracks()[0].hits, 6);
        // Two people side by side, far apart, stay two.
        let mut t = Tracker::new(TrackerConfig::default());
        for i in 0..3 {
            let a = Detected { class_id: 0, score: 0.9, x: 0.1, y: 0.3, w: 0.06, h: 0.25 };
            let b = Detected { class_id: 0, score: 0.9, x: 0.7, y: 0.3, w: 0.06, h: 0.25 };
            t.update(Timestamp(i * 500_000), &[a, b], Looked::Everywhere);
        }
        assert_eq!(t.tracks().len(), 2);
    }
}
