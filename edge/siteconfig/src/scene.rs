//! Per-camera analytics (the edge's TOML file, and the `cameras` part of the cloud's document): motion gating, object filters and masks, counting lines and
//! zones. Coordinates are fractions of the picture (0..=1, x to the right, y down), so they survive a
//! change of stream resolution.
//!
//! ```toml
//! [[cameras]]
//! id = "lobby-1"
//! url = "rtsp://…"
//! [cameras.motion]
//! threshold = 25            # luma change (0-255) that counts as motion
//! min_cells = 4             # smallest moving blob, in cells of a 96-wide grid
//! full_frame_secs = 5       # full-frame detector check at least this often, motion or not
//! masks = [[[0.0, 0.0], [1.0, 0.0], [1.0, 0.08], [0.0, 0.08]]]   # e.g. the timestamp overlay
//! [cameras.filters]
//! min_area = 0.002          # of the frame
//! max_area = 0.6
//! masks = [[[0.8, 0.0], [1.0, 0.0], [1.0, 1.0], [0.8, 1.0]]]    # objects standing here are ignored
//! [[cameras.lines]]
//! id = "entrance"
//! a = [0.5, 0.0]            # crossing from the right of a→b to its left counts as "in"
//! b = [0.5, 1.0]
//! [[cameras.zones]]
//! id = "till"
//! polygon = [[0.1, 0.5], [0.4, 0.5], [0.4, 0.9], [0.1, 0.9]]
//! loiter_secs = 30
//! ```

use std::collections::HashSet;

use edge_core::ObjectFilter;
use edge_core::geometry::{Point, Polygon};
use edge_core::motion::MotionConfig;
use edge_core::scene::{LineConfig, ZoneConfig};
use serde::Deserialize;
use serde_json::Value;

type RawPolygon = Vec<[f32; 2]>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMotion {
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default = "default_threshold")]
    threshold: u8,
    #[serde(default = "default_min_cells")]
    min_cells: usize,
    #[serde(default = "default_grid")]
    grid_width: u32,
    #[serde(default = "default_full_frame_secs")]
    full_frame_secs: f64,
    #[serde(default)]
    masks: Vec<RawPolygon>,
}

impl Default for RawMotion {
    fn default() -> Self {
        RawMotion {
            enabled: true,
            threshold: default_threshold(),
            min_cells: default_min_cells(),
            grid_width: default_grid(),
            full_frame_secs: default_full_frame_secs(),
            masks: Vec::new(),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_threshold() -> u8 {
    25
}
fn default_min_cells() -> usize {
    4
}
fn default_grid() -> u32 {
    96
}
fn default_full_frame_secs() -> f64 {
    5.0
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFilters {
    #[serde(default)]
    min_area: f32,
    #[serde(default)]
    max_area: f32,
    #[serde(default)]
    min_ratio: f32,
    #[serde(default)]
    max_ratio: f32,
    #[serde(default)]
    masks: Vec<RawPolygon>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLine {
    id: String,
    a: [f32; 2],
    b: [f32; 2],
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawZone {
    id: String,
    polygon: RawPolygon,
    loiter_secs: Option<f64>,
}

/// Validated analytics of one camera (what a running analyzer takes: [`edge_core::SceneUpdate`]).
pub type SceneSettings = edge_core::SceneUpdate;

fn in_unit(v: f32) -> bool {
    (0.0..=1.0).contains(&v)
}

fn point(at: &str, v: [f32; 2], p: &mut Vec<String>) -> Point {
    if !v.iter().all(|c| in_unit(*c)) {
        p.push(format!("{at}: [{}, {}] must be fractions of the picture (0..=1)", v[0], v[1]));
    }
    Point { x: v[0], y: v[1] }
}

fn polygon(at: &str, raw: &RawPolygon, p: &mut Vec<String>) -> Polygon {
    if raw.len() < 3 || raw.len() > 64 {
        p.push(format!("{at}: a polygon needs 3 to 64 points"));
    }
    Polygon(raw.iter().enumerate().map(|(i, v)| point(&format!("{at}[{i}]"), *v, p)).collect())
}

fn valid_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Checks one camera's analytics, pushing every problem (prefixed with `at`).
pub fn validate(
    at: &str,
    motion: &RawMotion,
    filters: &RawFilters,
    lines: &[RawLine],
    zones: &[RawZone],
    p: &mut Vec<String>,
) -> SceneSettings {
    if !(motion.full_frame_secs > 0.0 && motion.full_frame_secs <= 3600.0) {
        p.push(format!("{at}.motion.full_frame_secs: {} must be within (0, 3600]", motion.full_frame_secs));
    }
    if !(8..=640).contains(&motion.grid_width) {
        p.push(format!("{at}.motion.grid_width: {} must be 8..=640", motion.grid_width));
    }
    if motion.threshold == 0 {
        p.push(format!("{at}.motion.threshold: must be 1..=255"));
    }
    let motion_masks: Vec<Polygon> =
        motion.masks.iter().enumerate().map(|(i, m)| polygon(&format!("{at}.motion.masks[{i}]"), m, p)).collect();
    let motion_cfg = motion.enabled.then(|| MotionConfig {
        grid_width: motion.grid_width,
        threshold: motion.threshold,
        min_cells: motion.min_cells.max(1),
        masks: motion_masks,
        ..MotionConfig::default()
    });

    for (name, v) in [("min_area", filters.min_area), ("max_area", filters.max_area)] {
        if !in_unit(v) {
            p.push(format!("{at}.filters.{name}: {v} must be a fraction of the frame (0..=1)"));
        }
    }
    if filters.max_area > 0.0 && filters.max_area < filters.min_area {
        p.push(format!("{at}.filters: max_area is below min_area"));
    }
    for (name, v) in [("min_ratio", filters.min_ratio), ("max_ratio", filters.max_ratio)] {
        if !(v.is_finite() && (0.0..=100.0).contains(&v)) {
            p.push(format!("{at}.filters.{name}: {v} must be within 0..=100"));
        }
    }
    let filter = ObjectFilter {
        min_area: filters.min_area,
        max_area: filters.max_area,
        min_ratio: filters.min_ratio,
        max_ratio: filters.max_ratio,
        masks: filters
            .masks
            .iter()
            .enumerate()
            .map(|(i, m)| polygon(&format!("{at}.filters.masks[{i}]"), m, p))
            .collect(),
    };

    let mut ids = HashSet::new();
    let mut check_id = |what: &str, i: usize, id: &str, p: &mut Vec<String>| {
        if !valid_id(id) {
            p.push(format!("{at}.{what}[{i}].id: {id:?} must be 1-64 characters of A-Z a-z 0-9 - _"));
        }
        if !ids.insert(id.to_owned()) {
            p.push(format!("{at}.{what}[{i}].id: {id:?} is used twice on this camera"));
        }
    };
    let lines = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            check_id("lines", i, &l.id, p);
            let a = point(&format!("{at}.lines[{i}].a"), l.a, p);
            let b = point(&format!("{at}.lines[{i}].b"), l.b, p);
            if (a.x - b.x).abs() + (a.y - b.y).abs() < 0.01 {
                p.push(format!("{at}.lines[{i}]: a and b are the same point"));
            }
            LineConfig { id: l.id.clone(), a, b }
        })
        .collect();
    let zones = zones
        .iter()
        .enumerate()
        .map(|(i, z)| {
            check_id("zones", i, &z.id, p);
            let loiter_us = z.loiter_secs.map(|s| {
                if !(s > 0.0 && s <= 86_400.0) {
                    p.push(format!("{at}.zones[{i}].loiter_secs: {s} must be within (0, 86400]"));
                }
                (s * 1e6) as i64
            });
            ZoneConfig {
                id: z.id.clone(),
                polygon: polygon(&format!("{at}.zones[{i}].polygon"), &z.polygon, p),
                loiter_us,
            }
        })
        .collect();
    SceneSettings {
        motion: motion_cfg,
        full_frame_every_us: (motion.full_frame_secs * 1e6) as i64,
        filter,
        lines,
        zones,
    }
}

/// One camera's analytics in the cloud's document: the same keys as `[[cameras]]` in the edge's
/// file, less the connection (URL, transport, recording), which stays on the site.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraScene {
    pub id: String,
    #[serde(default)]
    pub motion: RawMotion,
    #[serde(default)]
    pub filters: RawFilters,
    #[serde(default)]
    pub lines: Vec<RawLine>,
    #[serde(default)]
    pub zones: Vec<RawZone>,
}

/// Checks the `cameras` part: `[{id, motion, filters, lines, zones}]`, each id once.
pub fn check_cameras(part: &Value, p: &mut Vec<String>) -> Vec<(String, SceneSettings)> {
    let cameras: Vec<CameraScene> = match serde_json::from_value(part.clone()) {
        Ok(c) => c,
        Err(e) => {
            p.push(e.to_string());
            return Vec::new();
        }
    };
    let mut seen = HashSet::new();
    cameras
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let at = format!("cameras[{i}]");
            if !seen.insert(c.id.clone()) {
                p.push(format!("{at}.id: camera {:?} is listed twice", c.id));
            }
            (c.id.clone(), validate(&at, &c.motion, &c.filters, &c.lines, &c.zones, p))
        })
        .collect()
}
