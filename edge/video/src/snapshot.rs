//! JPEG snapshots of a decoded frame with the boxes of the objects that caused them.
//!
//! Pure: no I/O, no GStreamer. The caller (the tracker) decides which frame is the best one of a track
//! and where the JPEG goes.

use std::collections::HashMap;
use std::sync::Arc;

use edge_core::Frame;
use edge_core::geometry::Rect;
use image::{ImageBuffer, Rgb, RgbImage};

/// How a snapshot is drawn and encoded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SnapshotOptions {
    /// Frames wider than this are downscaled (keeping the aspect ratio) before the boxes are drawn.
    pub max_width: u32,
    /// JPEG quality, 1..=100.
    pub quality: u8,
    /// Outline thickness in output pixels.
    pub thickness: u32,
    /// Outline colour (RGB).
    pub color: [u8; 3],
}

impl Default for SnapshotOptions {
    fn default() -> SnapshotOptions {
        SnapshotOptions { max_width: 1280, quality: 85, thickness: 3, color: [255, 32, 32] }
    }
}

/// Why a snapshot could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("frame is {width}x{height} but holds {len} bytes of RGB")]
    BadFrame { width: u32, height: u32, len: usize },
    #[error("cannot encode jpeg: {0}")]
    Encode(String),
}

/// A JPEG of `frame` with each box in `boxes` (normalised 0..=1 coordinates, as the detector reports
/// them) outlined, downscaled to at most `opts.max_width` pixels wide.
pub fn encode_snapshot(frame: &Frame, boxes: &[Rect], opts: &SnapshotOptions) -> Result<Vec<u8>, SnapshotError> {
    let bad = || SnapshotError::BadFrame { width: frame.width, height: frame.height, len: frame.rgb.len() };
    if frame.width == 0 || frame.height == 0 {
        return Err(bad());
    }
    let img: RgbImage = ImageBuffer::from_raw(frame.width, frame.height, frame.rgb.clone()).ok_or_else(bad)?;
    let mut img = if frame.width > opts.max_width.max(1) {
        let w = opts.max_width.max(1);
        let h = ((u64::from(frame.height) * u64::from(w)) / u64::from(frame.width)).max(1) as u32;
        image::imageops::resize(&img, w, h, image::imageops::FilterType::Triangle)
    } else {
        img
    };
    for b in boxes {
        draw_outline(&mut img, b, opts.thickness.max(1), Rgb(opts.color));
    }
    let mut out = Vec::with_capacity(img.as_raw().len() / 8);
    let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, opts.quality.clamp(1, 100));
    enc.encode_image(&img).map_err(|e| SnapshotError::Encode(e.to_string()))?;
    Ok(out)
}

/// The best frame seen so far of one track.
#[derive(Debug, Clone)]
pub struct BestShot {
    pub score: f32,
    pub frame: Arc<Frame>,
    /// The object's box in that frame (normalised).
    pub rect: Rect,
}

/// Keeps the best frame of each live track (by a caller-chosen score, e.g. confidence × box area),
/// so the snapshot of a track is taken from its best view rather than its first. Holds frames by
/// `Arc`: one decoded picture per live track at most.
#[derive(Debug, Default)]
pub struct BestShots {
    best: HashMap<u64, BestShot>,
}

impl BestShots {
    /// Offers a sighting of `track`; returns true when it became the track's best.
    pub fn offer(&mut self, track: u64, score: f32, frame: &Arc<Frame>, rect: Rect) -> bool {
        match self.best.get(&track) {
            Some(b) if b.score >= score => false,
            _ => {
                self.best.insert(track, BestShot { score, frame: frame.clone(), rect });
                true
            }
        }
    }

    pub fn get(&self, track: u64) -> Option<&BestShot> {
        self.best.get(&track)
    }

    /// Removes and returns the best shot of a track (when it ends or its snapshot is written).
    pub fn take(&mut self, track: u64) -> Option<BestShot> {
        self.best.remove(&track)
    }

    /// Forgets tracks for which `live` is false.
    pub fn retain(&mut self, mut live: impl FnMut(u64) -> bool) {
        self.best.retain(|&id, _| live(id));
    }

    pub fn len(&self) -> usize {
        self.best.len()
    }

    pub fn is_empty(&self) -> bool {
        self.best.is_empty()
    }
}

/// Draws a `t`-pixel outline inside the box (clamped to the picture).
fn draw_outline(img: &mut RgbImage, r: &Rect, t: u32, color: Rgb<u8>) {
    let (w, h) = (img.width(), img.height());
    let px = |v: f32, size: u32| -> u32 { ((v.clamp(0.0, 1.0) * size as f32).round() as u32).min(size - 1) };
    let (x0, y0) = (px(r.x, w), px(r.y, h));
    let (x1, y1) = (px(r.x + r.w, w), px(r.y + r.h, h));
    if x1 < x0 || y1 < y0 {
        return;
    }
    for y in y0..=y1 {
        for x in x0..=x1 {
            let edge = x < x0 + t || x + t > x1 || y < y0 + t || y + t > y1;
            if edge {
                img.put_pixel(x, y, color);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grey_frame(w: u32, h: u32) -> Frame {
        Frame {
            camera: Arc::from("t"),
            seq: 0,
            captured_at: std::time::SystemTime::now().into(),
            width: w,
            height: h,
            rgb: vec![128; (w * h * 3) as usize],
        }
    }

    fn is_red(p: &Rgb<u8>) -> bool {
        p[0] > 200 && p[1] < 90 && p[2] < 90
    }

    fn is_grey(p: &Rgb<u8>) -> bool {
        p.0.iter().all(|&c| (110..=146).contains(&c))
    }

    #[test]
    fn box_outline_is_drawn_and_interior_untouched() {
        let frame = grey_frame(320, 240);
        let b = Rect { x: 0.25, y: 0.25, w: 0.5, h: 0.5 };
        let jpeg = encode_snapshot(&frame, &[b], &SnapshotOptions::default()).unwrap();
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "not a JPEG");
        let img = image::load_from_memory(&jpeg).unwrap().to_rgb8();
        assert_eq!((img.width(), img.height()), (320, 240));
        // Left edge of the box (x = 80), middle row, one pixel inside the 3 px outline.
        assert!(is_red(img.get_pixel(81, 120)), "{:?}", img.get_pixel(81, 120));
        assert!(is_red(img.get_pixel(160, 61)), "{:?}", img.get_pixel(160, 61));
        // Centre of the box and outside it are still grey.
        assert!(is_grey(img.get_pixel(160, 120)), "{:?}", img.get_pixel(160, 120));
        assert!(is_grey(img.get_pixel(20, 20)), "{:?}", img.get_pixel(20, 20));
    }

    #[test]
    fn wide_frames_are_downscaled_and_boxes_follow() {
        let frame = grey_frame(1920, 1080);
        let opts = SnapshotOptions { max_width: 640, ..SnapshotOptions::default() };
        let b = Rect { x: 0.5, y: 0.5, w: 0.25, h: 0.25 };
        let jpeg = encode_snapshot(&frame, &[b, Rect { x: 0.0, y: 0.0, w: 0.1, h: 0.1 }], &opts).unwrap();
        let img = image::load_from_memory(&jpeg).unwrap().to_rgb8();
        assert_eq!((img.width(), img.height()), (640, 360));
        assert!(is_red(img.get_pixel(321, 200)));
        assert!(is_red(img.get_pixel(1, 1)));
        assert!(is_grey(img.get_pixel(400, 225)));
        assert!(jpeg.len() < 200_000, "{} bytes", jpeg.len());
    }

    #[test]
    fn best_shots_keep_the_highest_score_per_track() {
        let (a, b) = (Arc::new(grey_frame(4, 4)), Arc::new(grey_frame(8, 8)));
        let r = Rect { x: 0.1, y: 0.1, w: 0.2, h: 0.2 };
        let mut shots = BestShots::default();
        assert!(shots.offer(1, 0.5, &a, r));
        assert!(!shots.offer(1, 0.4, &b, r));
        assert!(shots.offer(1, 0.9, &b, r));
        assert!(shots.offer(2, 0.1, &a, r));
        assert_eq!(shots.get(1).unwrap().frame.width, 8);
        shots.retain(|id| id == 1);
        assert_eq!(shots.len(), 1);
        let best = shots.take(1).unwrap();
        assert_eq!(best.score, 0.9);
        encode_snapshot(&best.frame, &[best.rect], &SnapshotOptions::default()).unwrap();
        assert!(shots.is_empty());
    }

    #[test]
    fn a_frame_with_the_wrong_length_is_an_error() {
        let mut frame = grey_frame(10, 10);
        frame.rgb.truncate(10);
        assert!(matches!(
            encode_snapshot(&frame, &[], &SnapshotOptions::default()),
            Err(SnapshotError::BadFrame { .. })
        ));
        // Boxes outside the picture are clamped, not a panic.
        let frame = grey_frame(10, 10);
        encode_snapshot(&frame, &[Rect { x: -1.0, y: 2.0, w: 5.0, h: 5.0 }], &SnapshotOptions::default()).unwrap();
    }
}
