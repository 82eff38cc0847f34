use edge_core::Detected;
use edge_core::geometry::Rect;

use crate::{DetectError, YoloDetector};

/// What the daemon runs on a frame, whichever model it is: YOLO ([`YoloDetector`]) or the bundled
/// BlazePose person detector ([`crate::BlazePersonDetector`]). Object-safe: hold it as
/// `Box<dyn Detector + Send>` and pick the implementation from the config.
///
/// Frames are packed RGB8 (`width`×`height`×3 bytes, rows top to bottom). Detections come back as
/// [`Detected`] (what `detections_to_events` and the tracker consume): class id, score, and a box
/// normalised to the frame (x, y = top-left, 0..=1), best first. [`Detector::label`] names a class id.
pub trait Detector {
    /// Model name for events and logs (the model file's stem).
    fn name(&self) -> &str;

    /// Class names indexed by class id (`class{i}` where the model names none).
    fn labels(&self) -> &[String];

    /// The name of one class id, if the model has that class.
    fn label(&self, class_id: u32) -> Option<&str> {
        self.labels().get(class_id as usize).map(String::as_str)
    }

    /// Detects objects in the whole frame.
    fn detect(&mut self, rgb: &[u8], width: u32, height: u32) -> Result<Vec<Detected>, DetectError>;

    /// Detects objects only within `regions` (normalised frame rectangles, e.g. motion regions); the
    /// caller decides when to run a full [`Detector::detect`] instead. An empty `regions` finds nothing.
    ///
    /// The default runs the whole frame and keeps the detections that overlap a region; detectors that
    /// can save work (tiling) override it.
    fn detect_in(
        &mut self,
        rgb: &[u8],
        width: u32,
        height: u32,
        regions: &[Rect],
    ) -> Result<Vec<Detected>, DetectError> {
        if regions.is_empty() {
            return Ok(Vec::new());
        }
        let mut found = self.detect(rgb, width, height)?;
        found.retain(|d| overlaps_any(d, regions));
        Ok(found)
    }
}

/// Whether a detection's box intersects one of `regions` (all normalised).
pub(crate) fn overlaps_any(d: &Detected, regions: &[Rect]) -> bool {
    regions.iter().any(|r| d.x < r.x + r.w && r.x < d.x + d.w && d.y < r.y + r.h && r.y < d.y + d.h)
}

impl Detector for YoloDetector {
    fn name(&self) -> &str {
        self.name_str()
    }

    fn labels(&self) -> &[String] {
        self.class_names()
    }

    fn detect(&mut self, rgb: &[u8], width: u32, height: u32) -> Result<Vec<Detected>, DetectError> {
        YoloDetector::detect(self, rgb, width, height)
    }
}

/// Parses Ultralytics' `names` metadata (`{0: 'person', 1: 'bicycle'}`) into a list indexed by id;
/// ids the map does not name become `class{i}`. Returns `None` when the text is not such a map.
pub(crate) fn parse_ultralytics_names(text: &str, classes: usize) -> Option<Vec<String>> {
    let mut names: Vec<String> = (0..classes).map(|i| format!("class{i}")).collect();
    let mut rest = text.trim().strip_prefix('{')?.strip_suffix('}')?;
    let mut any = false;
    loop {
        rest = rest.trim_start_matches([',', ' ', '\n']);
        if rest.is_empty() {
            break;
        }
        let colon = rest.find(':')?;
        let id: usize = rest[..colon].trim().parse().ok()?;
        rest = rest[colon + 1..].trim_start();
        let quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"')?;
        let end = rest[1..].find(quote)? + 1;
        if let Some(slot) = names.get_mut(id) {
            *slot = rest[1..end].to_owned();
            any = true;
        }
        rest = &rest[end + 1..];
    }
    any.then_some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ultralytics_names_parse() {
        let got = parse_ultralytics_names("{0: 'person', 1: \"bi, cycle\", 3: 'x'}", 4).unwrap();
        assert_eq!(got, ["person", "bi, cycle", "class2", "x"]);
        assert!(parse_ultralytics_names("not a map", 2).is_none());
        assert!(parse_ultralytics_names("{0: person}", 2).is_none());
    }

    #[test]
    fn region_overlap() {
        let d = Detected { class_id: 0, score: 1.0, x: 0.1, y: 0.1, w: 0.2, h: 0.2 };
        assert!(overlaps_any(&d, &[Rect { x: 0.25, y: 0.25, w: 0.5, h: 0.5 }]));
        assert!(!overlaps_any(&d, &[Rect { x: 0.35, y: 0.0, w: 0.5, h: 0.5 }]));
    }
}
