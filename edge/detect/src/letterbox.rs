/// How a frame was fitted into the model input (`width`×`height`): scaled by `scale`, then offset
/// by the pad.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    pub width: u32,
    pub height: u32,
    pub scale: f32,
    pub pad_x: f32,
    pub pad_y: f32,
}

/// Model stride: a dynamic-size YOLO input's sides are multiples of it.
pub const STRIDE: u32 = 32;

impl Letterbox {
    /// The letterbox for a `width`×`height` frame in a `size`×`size` input (aspect kept, centred).
    pub fn new(width: u32, height: u32, size: u32) -> Letterbox {
        let scale = (size as f32 / width.max(1) as f32).min(size as f32 / height.max(1) as f32);
        Letterbox::centred(width, height, scale, size, size)
    }

    /// The smallest input for a dynamic-size model ("rect" letterbox, as Ultralytics' own predictor
    /// does): the frame scaled to fit `size` on its longer side — or by `max_scale` when that is
    /// smaller (a crop seen at its whole frame's scale) — then padded up to multiples of [`STRIDE`].
    pub fn rect(width: u32, height: u32, size: u32, max_scale: Option<f32>) -> Letterbox {
        let fit = (size as f32 / width.max(1) as f32).min(size as f32 / height.max(1) as f32);
        let scale = max_scale.map_or(fit, |m| fit.min(m.max(f32::MIN_POSITIVE)));
        let side = |px: u32| {
            let scaled = ((px as f32 * scale).round() as u32).max(1);
            scaled.div_ceil(STRIDE) * STRIDE
        };
        Letterbox::centred(width, height, scale, side(width).min(size), side(height).min(size))
    }

    fn centred(width: u32, height: u32, scale: f32, in_w: u32, in_h: u32) -> Letterbox {
        let new_w = (width as f32 * scale).round();
        let new_h = (height as f32 * scale).round();
        Letterbox {
            width: in_w,
            height: in_h,
            scale,
            pad_x: ((in_w as f32 - new_w) / 2.0).floor().max(0.0),
            pad_y: ((in_h as f32 - new_h) / 2.0).floor().max(0.0),
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
pub fn letterbox(rgb: &[u8], width: u32, height: u32, size: u32, out: &mut Vec<f32>) -> Letterbox {
    let lb = Letterbox::new(width, height, size);
    letterbox_into(rgb, width, height, &lb, out);
    lb
}

/// Resizes packed RGB8 `rgb` (`width`×`height`) into `lb`'s input as a planar float tensor in 0..=1
/// (NCHW, batch 1), bilinear, padding with grey.
///
/// `out` is reused between calls to avoid an allocation per frame. Separable: each output row
/// first blends its two source rows over their whole width (contiguous, vectorised), then takes
/// the two horizontal taps of each output pixel from that blend, writing the three planes in order.
pub fn letterbox_into(rgb: &[u8], width: u32, height: u32, lb: &Letterbox, out: &mut Vec<f32>) {
    let (s, rows) = (lb.width as usize, lb.height as usize);
    let plane = s * rows;
    let (w, h) = (width as usize, height as usize);
    if w == 0 || h == 0 || rgb.len() < w * h * 3 {
        out.clear();
        out.resize(3 * plane, PAD);
        return;
    }
    out.resize(3 * plane, PAD);
    let (px, py) = (lb.pad_x as usize, lb.pad_y as usize);
    let new_w = ((width as f32 * lb.scale).round() as usize).min(s - px.min(s));
    let new_h = ((height as f32 * lb.scale).round() as usize).min(rows - py.min(rows));
    let inv = 1.0 / lb.scale;
    let row_len = w * 3;
    // Horizontal taps, as offsets into a blended row, once per call.
    let xs: Vec<(usize, usize, f32)> = (0..new_w)
        .map(|ox| {
            let sx = ((ox as f32 + 0.5) * inv - 0.5).clamp(0.0, (w - 1) as f32);
            let x0 = sx.floor() as usize;
            (x0 * 3, (x0 + 1).min(w - 1) * 3, sx - x0 as f32)
        })
        .collect();
    let mut blend = vec![0f32; row_len];
    let (r_plane, rest) = out.split_at_mut(plane);
    let (g_plane, b_plane) = rest.split_at_mut(plane);
    // padding (the whole plane outside the image), rewritten every call: `out` may hold another
    // frame size's image from the call before
    for plane in [&mut *r_plane, &mut *g_plane, &mut *b_plane] {
        plane[..py * s].fill(PAD);
        let below = ((py + new_h) * s).min(plane.len());
        plane[below..].fill(PAD);
        for oy in py..py + new_h {
            plane[oy * s..oy * s + px].fill(PAD);
            plane[oy * s + px + new_w..(oy + 1) * s].fill(PAD);
        }
    }
    for oy in 0..new_h {
        let sy = ((oy as f32 + 0.5) * inv - 0.5).clamp(0.0, (h - 1) as f32);
        let y0 = sy.floor() as usize;
        let y1 = (y0 + 1).min(h - 1);
        let fy = sy - y0 as f32;
        let row0 = &rgb[y0 * row_len..(y0 + 1) * row_len];
        let row1 = &rgb[y1 * row_len..(y1 + 1) * row_len];
        for ((v, &a), &b) in blend.iter_mut().zip(row0).zip(row1) {
            let (a, b) = (f32::from(a), f32::from(b));
            *v = (a + (b - a) * fy) * (1.0 / 255.0);
        }
        let base = (oy + py) * s + px;
        let r = &mut r_plane[base..base + new_w];
        let g = &mut g_plane[base..base + new_w];
        let b = &mut b_plane[base..base + new_w];
        for (((&(o0, o1, fx), r), g), b) in xs.iter().zip(r).zip(g).zip(b) {
            let (p0, p1) = (&blend[o0..o0 + 3], &blend[o1..o1 + 3]);
            *r = p0[0] + (p1[0] - p0[0]) * fx;
            *g = p0[1] + (p1[1] - p0[1]) * fx;
            *b = p0[2] + (p1[2] - p0[2]) * fx;
        }
    }
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

    /// The direct bilinear formula, pixel by pixel: what the separable version must equal.
    fn reference(rgb: &[u8], width: u32, height: u32, lb: &Letterbox) -> Vec<f32> {
        let (s, rows) = (lb.width as usize, lb.height as usize);
        let mut out = vec![PAD; 3 * s * rows];
        let (w, h) = (width as usize, height as usize);
        let new_w = ((width as f32 * lb.scale).round() as usize).min(s);
        let new_h = ((height as f32 * lb.scale).round() as usize).min(rows);
        let inv = 1.0 / lb.scale;
        for oy in 0..new_h {
            let sy = ((oy as f32 + 0.5) * inv - 0.5).clamp(0.0, (h - 1) as f32);
            let (y0, fy) = (sy.floor() as usize, sy - sy.floor());
            let y1 = (y0 + 1).min(h - 1);
            for ox in 0..new_w {
                let sx = ((ox as f32 + 0.5) * inv - 0.5).clamp(0.0, (w - 1) as f32);
                let (x0, fx) = (sx.floor() as usize, sx - sx.floor());
                let x1 = (x0 + 1).min(w - 1);
                for c in 0..3 {
                    let p = |x: usize, y: usize| f32::from(rgb[(y * w + x) * 3 + c]);
                    let top = p(x0, y0) + (p(x1, y0) - p(x0, y0)) * fx;
                    let bot = p(x0, y1) + (p(x1, y1) - p(x0, y1)) * fx;
                    let at = c * s * rows + (oy + lb.pad_y as usize) * s + ox + lb.pad_x as usize;
                    out[at] = (top + (bot - top) * fy) / 255.0;
                }
            }
        }
        out
    }

    #[test]
    fn separable_equals_the_direct_formula_and_pads_after_a_size_change() {
        let mut out = Vec::new();
        // wide, tall, upscaled, odd sizes; the same `out` throughout
        for (w, h, size) in [(768u32, 576u32, 320u32), (37, 91, 64), (5, 3, 16), (640, 640, 320), (100, 20, 64)] {
            let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
            for lb in
                [Letterbox::new(w, h, size), Letterbox::rect(w, h, size, None), Letterbox::rect(w, h, size, Some(0.3))]
            {
                letterbox_into(&rgb, w, h, &lb, &mut out);
                let want = reference(&rgb, w, h, &lb);
                assert_eq!(out.len(), want.len());
                for (i, (a, b)) in out.iter().zip(&want).enumerate() {
                    assert!((a - b).abs() < 1e-5, "{w}x{h}→{lb:?} at {i}: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn rect_inputs_are_the_smallest_stride_multiples() {
        // a 768×576 frame at 320: 320×240 of picture in a 320×256 input (not 320×320)
        let lb = Letterbox::rect(768, 576, 320, None);
        assert_eq!((lb.width, lb.height, lb.scale), (320, 256, 320.0 / 768.0));
        assert_eq!((lb.pad_x, lb.pad_y), (0.0, 8.0));
        // a 200×300 crop of that frame seen at the frame's scale: 83×125 of picture in 96×128
        let lb = Letterbox::rect(200, 300, 320, Some(320.0 / 768.0));
        assert_eq!((lb.width, lb.height), (96, 128));
        assert_eq!(lb.scale, 320.0 / 768.0);
        // a crop larger than the input still fits it
        let lb = Letterbox::rect(2000, 1000, 320, Some(1.0));
        assert_eq!((lb.width, lb.height), (320, 160));
        let (x, y) = lb.to_frame(320.0, 160.0);
        assert!((x - 2000.0).abs() < 1e-2 && (y - 1000.0).abs() < 1e-2);
    }

    #[test]
    fn short_buffers_do_not_panic() {
        let mut out = Vec::new();
        letterbox(&[1, 2, 3], 10, 10, 16, &mut out);
        assert_eq!(out.len(), 3 * 16 * 16);
        letterbox(&[], 0, 0, 16, &mut out);
    }
}
