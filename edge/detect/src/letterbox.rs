/// How a frame was fitted into the square model input: scaled by `scale`, then offset by the pad.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    pub size: u32,
    pub scale: f32,
    pub pad_x: f32,
    pub pad_y: f32,
}

impl Letterbox {
    /// The letterbox for a `width`×`height` frame in a `size`×`size` input (aspect kept, centred).
    pub fn new(width: u32, height: u32, size: u32) -> Letterbox {
        let scale = (size as f32 / width.max(1) as f32).min(size as f32 / height.max(1) as f32);
        let new_w = (width as f32 * scale).round();
        let new_h = (height as f32 * scale).round();
        Letterbox {
            size,
            scale,
            pad_x: ((size as f32 - new_w) / 2.0).floor(),
            pad_y: ((size as f32 - new_h) / 2.0).floor(),
        }
    }

    /// Maps a point in model input pixels back to frame pixels.
    pub fn to_frame(&self, x: f32, y: f32) -> (f32, f32) {
        ((x - self.pad_x) / self.scale, (y - self.pad_y) / self.scale)
    }
}

/// Pad value Ultralytics uses (114/255 grey).
const PAD: f32 = 114.0 / 255.0;

/// Resizes packed RGB8 `rgb` (`width`×`height`) into a `size`×`size` planar float tensor in 0..=1
/// (NCHW, batch 1) with bilinear sampling, keeping the aspect ratio and padding with grey.
///
/// `out` is reused between calls to avoid an allocation per frame.
pub fn letterbox(rgb: &[u8], width: u32, height: u32, size: u32, out: &mut Vec<f32>) -> Letterbox {
    let lb = Letterbox::new(width, height, size);
    let s = size as usize;
    out.clear();
    out.resize(3 * s * s, PAD);
    let (w, h) = (width as usize, height as usize);
    if w == 0 || h == 0 || rgb.len() < w * h * 3 {
        return lb;
    }
    let new_w = ((width as f32 * lb.scale).round() as usize).min(s);
    let new_h = ((height as f32 * lb.scale).round() as usize).min(s);
    let (px, py) = (lb.pad_x as usize, lb.pad_y as usize);
    let inv = 1.0 / lb.scale;
    // Precompute horizontal taps once per call.
    let xs: Vec<(usize, usize, f32)> = (0..new_w)
        .map(|ox| {
            let sx = ((ox as f32 + 0.5) * inv - 0.5).clamp(0.0, (w - 1) as f32);
            let x0 = sx.floor() as usize;
            (x0, (x0 + 1).min(w - 1), sx - x0 as f32)
        })
        .collect();
    let plane = s * s;
    for oy in 0..new_h {
        let sy = ((oy as f32 + 0.5) * inv - 0.5).clamp(0.0, (h - 1) as f32);
        let y0 = sy.floor() as usize;
        let y1 = (y0 + 1).min(h - 1);
        let fy = sy - y0 as f32;
        let row0 = &rgb[y0 * w * 3..(y0 + 1) * w * 3];
        let row1 = &rgb[y1 * w * 3..(y1 + 1) * w * 3];
        let base = (oy + py) * s + px;
        for (ox, &(x0, x1, fx)) in xs.iter().enumerate() {
            for c in 0..3 {
                let a = row0[x0 * 3 + c] as f32;
                let b = row0[x1 * 3 + c] as f32;
                let cc = row1[x0 * 3 + c] as f32;
                let d = row1[x1 * 3 + c] as f32;
                let top = a + (b - a) * fx;
                let bot = cc + (d - cc) * fx;
                out[c * plane + base + ox] = (top + (bot - top) * fy) * (1.0 / 255.0);
            }
        }
    }
    lb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_frame_is_padded_top_and_bottom() {
        let lb = Letterbox::new(768, 576, 640);
        assert_eq!(lb.scale, 640.0 / 768.0);
        assert_eq!((lb.pad_x, lb.pad_y), (0.0, 80.0));
        let (x, y) = lb.to_frame(320.0, 80.0);
        assert!((x - 384.0).abs() < 1e-3 && y.abs() < 1e-3);
    }

    #[test]
    fn pixels_land_where_expected() {
        // 4×2 frame: left half red, right half blue.
        let mut rgb = vec![0u8; 4 * 2 * 3];
        for y in 0..2 {
            for x in 0..4 {
                let i = (y * 4 + x) * 3;
                if x < 2 { rgb[i] = 255 } else { rgb[i + 2] = 255 }
            }
        }
        let mut out = Vec::new();
        let lb = letterbox(&rgb, 4, 2, 8, &mut out);
        assert_eq!((lb.scale, lb.pad_x, lb.pad_y), (2.0, 0.0, 2.0));
        let at = |c: usize, x: usize, y: usize| out[c * 64 + y * 8 + x];
        assert_eq!(at(0, 0, 0), PAD, "top padding is grey");
        assert_eq!(at(0, 0, 3), 1.0, "left is red");
        assert_eq!(at(2, 0, 3), 0.0);
        assert_eq!(at(2, 7, 3), 1.0, "right is blue");
        assert_eq!(at(1, 7, 7), PAD, "bottom padding is grey");
    }

    #[test]
    fn short_buffers_do_not_panic() {
        let mut out = Vec::new();
        letterbox(&[1, 2, 3], 10, 10, 16, &mut out);
        assert_eq!(out.len(), 3 * 16 * 16);
        letterbox(&[], 0, 0, 16, &mut out);
    }
}
