//! Motion detection on a downscaled grayscale picture against a running-average background, as
//! NVRs do to decide where (and whether) to run the expensive detector.

use crate::geometry::{Point, Polygon, Rect};

#[derive(Debug, Clone, PartialEq)]
pub struct MotionConfig {
    /// Width of the analysis grid in cells (height follows the aspect ratio).
    pub grid_width: u32,
    /// Luma difference (0–255) from the background that counts as change.
    pub threshold: u8,
    /// Smallest region, in cells, that counts as motion (filters noise).
    pub min_cells: usize,
    /// Background learning rate per frame (0–1).
    pub alpha: f32,
    /// Areas to ignore (trees, screens, timestamps), normalised polygons.
    pub masks: Vec<Polygon>,
}

impl Default for MotionConfig {
    fn default() -> Self {
        MotionConfig { grid_width: 96, threshold: 25, min_cells: 4, alpha: 0.05, masks: Vec::new() }
    }
}

/// Motion found in one frame.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Motion {
    /// Fraction of unmasked cells that changed.
    pub score: f32,
    /// Changed areas, normalised, padded by one cell.
    pub regions: Vec<Rect>,
}

#[derive(Debug, Clone)]
pub struct MotionDetector {
    cfg: MotionConfig,
    size: (usize, usize),
    background: Vec<f32>,
    masked: Vec<bool>,
    gray: Vec<f32>,
}

impl MotionDetector {
    pub fn new(cfg: MotionConfig) -> MotionDetector {
        MotionDetector { cfg, size: (0, 0), background: Vec::new(), masked: Vec::new(), gray: Vec::new() }
    }

    /// Downscales packed RGB8 into the grid (box average of luma).
    fn downscale(&mut self, rgb: &[u8], width: usize, height: usize) {
        let gw = (self.cfg.grid_width as usize).clamp(4, width.max(4));
        let gh = ((gw * height) / width.max(1)).max(1);
        self.gray.clear();
        self.gray.resize(gw * gh, 0.0);
        let mut counts = vec![0u32; gw * gh];
        // Sample about two pixels per cell in each direction (every 4th pixel of a 768-wide frame on a
        // 96-wide grid): plenty for a box average, and the cost no longer grows with the resolution.
        let step = (width / (gw * 2)).max(1);
        for y in (0..height).step_by(step) {
            let gy = y * gh / height;
            let row = &rgb[y * width * 3..(y + 1) * width * 3];
            for x in (0..width).step_by(step) {
                let gx = x * gw / width;
                let p = &row[x * 3..x * 3 + 3];
                let luma = 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]);
                self.gray[gy * gw + gx] += luma;
                counts[gy * gw + gx] += 1;
            }
        }
        for (g, c) in self.gray.iter_mut().zip(&counts) {
            *g /= (*c).max(1) as f32;
        }
        if self.size != (gw, gh) {
            self.size = (gw, gh);
            self.background = self.gray.clone();
            self.masked = (0..gw * gh)
                .map(|i| {
                    let p = Point { x: ((i % gw) as f32 + 0.5) / gw as f32, y: ((i / gw) as f32 + 0.5) / gh as f32 };
                    self.cfg.masks.iter().any(|m| m.contains(p))
                })
                .collect();
        }
    }

    /// Feeds one frame; the first frame (or a size change) only learns the background.
    pub fn update(&mut self, rgb: &[u8], width: u32, height: u32) -> Motion {
        let (w, h) = (width as usize, height as usize);
        if w == 0 || h == 0 || rgb.len() < w * h * 3 {
            return Motion::default();
        }
        let fresh = self.size == (0, 0);
        let before = self.size;
        self.downscale(rgb, w, h);
        if fresh || before != self.size {
            return Motion::default();
        }
        let (gw, gh) = self.size;
        let threshold = f32::from(self.cfg.threshold);
        let changed: Vec<bool> =
            (0..gw * gh).map(|i| !self.masked[i] && (self.gray[i] - self.background[i]).abs() > threshold).collect();
        // Learn the background, slower where something moves so a walker does not burn in.
        let alpha = self.cfg.alpha;
        for ((bg, gray), changed) in self.background.iter_mut().zip(&self.gray).zip(&changed) {
            let a = if *changed { alpha * 0.1 } else { alpha };
            *bg += (gray - *bg) * a;
        }
        let unmasked = self.masked.iter().filter(|m| !**m).count().max(1);
        let score = changed.iter().filter(|c| **c).count() as f32 / unmasked as f32;
        Motion { score, regions: regions(&changed, gw, gh, self.cfg.min_cells) }
    }
}

/// Bounding boxes of 8-connected groups of changed cells with at least `min_cells` cells.
fn regions(changed: &[bool], gw: usize, gh: usize, min_cells: usize) -> Vec<Rect> {
    let mut seen = vec![false; changed.len()];
    let mut out = Vec::new();
    let mut stack = Vec::new();
    for start in 0..changed.len() {
        if !changed[start] || seen[start] {
            continue;
        }
        let (mut x0, mut y0, mut x1, mut y1, mut cells) = (gw, gh, 0, 0, 0usize);
        seen[start] = true;
        stack.push(start);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % gw, i / gw);
            cells += 1;
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                    if nx < 0 || ny < 0 || nx >= gw as i64 || ny >= gh as i64 {
                        continue;
                    }
                    let j = ny as usize * gw + nx as usize;
                    if changed[j] && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        if cells >= min_cells {
            let (x0, y0) = (x0.saturating_sub(1), y0.saturating_sub(1));
            let (x1, y1) = ((x1 + 2).min(gw), (y1 + 2).min(gh));
            out.push(Rect {
                x: x0 as f32 / gw as f32,
                y: y0 as f32 / gh as f32,
                w: (x1 - x0) as f32 / gw as f32,
                h: (y1 - y0) as f32 / gh as f32,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: u32 = 192;
    const H: u32 = 144;

    /// Grey frame with a white square of side `s` at (x, y) pixels.
    fn frame(square: Option<(u32, u32, u32)>) -> Vec<u8> {
        let mut f = vec![90u8; (W * H * 3) as usize];
        if let Some((x, y, s)) = square {
            for yy in y..(y + s).min(H) {
                for xx in x..(x + s).min(W) {
                    let i = ((yy * W + xx) * 3) as usize;
                    f[i..i + 3].copy_from_slice(&[250, 250, 250]);
                }
            }
        }
        f
    }

    #[test]
    fn a_still_scene_has_no_motion() {
        let mut m = MotionDetector::new(MotionConfig::default());
        for _ in 0..5 {
            let got = m.update(&frame(Some((10, 10, 20))), W, H);
            assert_eq!(got, Motion::default());
        }
    }

    #[test]
    fn a_moving_object_is_found_where_it_is() {
        let mut m = MotionDetector::new(MotionConfig::default());
        m.update(&frame(None), W, H);
        let got = m.update(&frame(Some((120, 60, 24))), W, H);
        assert_eq!(got.regions.len(), 1, "{got:?}");
        let r = got.regions[0];
        let (cx, cy) = (r.x + r.w / 2.0, r.y + r.h / 2.0);
        assert!((cx - 132.0 / W as f32).abs() < 0.05 && (cy - 72.0 / H as f32).abs() < 0.05, "{r:?}");
        assert!(got.score > 0.01 && got.score < 0.1, "{}", got.score);
    }

    #[test]
    fn noise_below_the_threshold_and_tiny_blobs_are_ignored() {
        let mut m = MotionDetector::new(MotionConfig::default());
        m.update(&frame(None), W, H);
        let mut dim = frame(None);
        dim.iter_mut().for_each(|p| *p += 10); // lighting flicker
        assert!(m.update(&dim, W, H).regions.is_empty());
        assert!(m.update(&frame(Some((50, 50, 2))), W, H).regions.is_empty(), "a 2-pixel speck");
    }

    #[test]
    fn masked_areas_never_report_motion() {
        let mask = Polygon(vec![
            Point { x: 0.5, y: 0.0 },
            Point { x: 1.0, y: 0.0 },
            Point { x: 1.0, y: 1.0 },
            Point { x: 0.5, y: 1.0 },
        ]);
        let mut m = MotionDetector::new(MotionConfig { masks: vec![mask], ..MotionConfig::default() });
        m.update(&frame(None), W, H);
        assert!(m.update(&frame(Some((120, 60, 24))), W, H).regions.is_empty());
        assert_eq!(m.update(&frame(Some((20, 60, 24))), W, H).regions.len(), 1);
    }

    #[test]
    fn bad_buffers_do_not_panic() {
        let mut m = MotionDetector::new(MotionConfig::default());
        assert_eq!(m.update(&[1, 2, 3], W, H), Motion::default());
        assert_eq!(m.update(&[], 0, 0), Motion::default());
    }
}
