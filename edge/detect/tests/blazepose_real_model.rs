//! The bundled BlazePose person detector on real images: the astronaut photo and hand-labelled CCTV frames
//! of vtest.mp4 (labels in `vtest_people.json`). Needs `tests/setup/fixtures.sh` (which also runs
//! `tests/setup/blazepose.py` and `tests/setup/blazepose_int8.py`); fails loudly when its files are missing.

use std::path::PathBuf;

use edge_core::geometry::Rect;
use edge_detect::{
    BlazeConfig, BlazePersonDetector, DetectError, Detector, OnnxRuntime, PERSON_LABEL, YoloConfig, YoloDetector,
    blazepose_anchors,
};

fn fixtures() -> PathBuf {
    let dir = PathBuf::from(std::env::var("VIGIL_FIXTURES").expect("VIGIL_FIXTURES is set by .cargo/config.toml"));
    for file in [
        "libonnxruntime.so",
        "blazepose-person.onnx",
        "blazepose-person-int8.onnx",
        "blazepose-anchors.json",
        "vtest-frames/0700.png",
    ] {
        assert!(
            dir.join(file).is_file(),
            "run tests/setup/fixtures.sh first ({} is missing)",
            dir.join(file).display()
        );
    }
    dir
}

fn runtime() -> OnnxRuntime {
    OnnxRuntime::load(&fixtures().join("libonnxruntime.so")).unwrap()
}

fn config() -> BlazeConfig {
    BlazeConfig::new(fixtures().join("blazepose-person.onnx"))
}

fn detector() -> BlazePersonDetector {
    BlazePersonDetector::build(&runtime(), &config()).unwrap()
}

fn png(path: PathBuf) -> (Vec<u8>, u32, u32) {
    let img = image::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_rgb8();
    let (w, h) = img.dimensions();
    (img.into_raw(), w, h)
}

fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let ix = a[2].min(b[2]) - a[0].max(b[0]);
    let iy = a[3].min(b[3]) - a[1].max(b[1]);
    if ix <= 0.0 || iy <= 0.0 {
        return 0.0;
    }
    let inter = ix * iy;
    inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
}

/// All numbers in `text`, in order (enough to read our own small JSON files without a JSON crate).
fn numbers(text: &str) -> Vec<f64> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == 'e' || c == 'E'))
        .filter(|s| s.chars().any(|c| c.is_ascii_digit()))
        .map(|s| s.parse().unwrap_or_else(|_| panic!("not a number: {s}")))
        .collect()
}

/// `(frame index, person boxes [x0, y0, x1, y1] in pixels)` from `vtest_people.json`.
fn labels() -> Vec<(u32, Vec<[f32; 4]>)> {
    let text = include_str!("vtest_people.json");
    let frames = &text[text.find("\"frames\"").expect("frames")..];
    frames
        .split("\"frame\":")
        .skip(1)
        .map(|chunk| {
            let n = numbers(chunk);
            assert!(n.len() % 4 == 1, "frame entry {chunk}");
            let boxes = n[1..].chunks(4).map(|b| [b[0] as f32, b[1] as f32, b[2] as f32, b[3] as f32]).collect();
            (n[0] as u32, boxes)
        })
        .collect()
}

#[test]
fn anchors_generated_in_rust_match_the_converters_json() {
    let text = std::fs::read_to_string(fixtures().join("blazepose-anchors.json")).unwrap();
    let list = &text[text.find("\"anchors\":").expect("anchors key") + "\"anchors\":".len()..];
    let want = numbers(list);
    let got = blazepose_anchors();
    assert_eq!(want.len(), 2 * got.len(), "2254 [x, y] pairs");
    for (i, a) in got.iter().enumerate() {
        // The JSON rounds to 9 decimals; f32 holds about 8 digits.
        for (c, &v) in a.iter().enumerate() {
            assert!((f64::from(v) - want[2 * i + c]).abs() < 1e-7, "anchor {i}[{c}]: {v} vs {}", want[2 * i + c]);
        }
    }
}

#[test]
fn the_astronaut_is_one_person() {
    let (rgb, w, h) = png(fixtures().join("astronaut.png"));
    // A close-up portrait: one tile holding the whole photo (as the Python reference checks it).
    let whole = BlazeConfig { tile: 512, overlap: 0, ..config() };
    let mut det = BlazePersonDetector::build(&runtime(), &whole).unwrap();
    let people = det.detect_persons(&rgb, w, h).unwrap().to_vec();
    assert_eq!(people.len(), 1, "{people:?}");
    assert_eq!(det.last_tiles().len(), 1);
    let p = people[0];
    assert!((p.score - 0.811).abs() < 0.02, "score {} (Python reference 0.811)", p.score);
    // Python reference: detector box [162,136,264,238], hip (157,540), person box [-55,12,368,1067].
    let near = |a: [f32; 4], b: [f32; 4]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 6.0);
    assert!(near(p.detector_box, [162.0, 136.0, 264.0, 238.0]), "{p:?}");
    assert!(near(p.person, [-55.0, 12.0, 368.0, 1067.0]), "{p:?}");
    let found = Detector::detect(&mut det, &rgb, w, h).unwrap();
    assert_eq!(found.len(), 1);
    let d = found[0];
    let px = [d.x * w as f32, d.y * h as f32, (d.x + d.w) * w as f32, (d.y + d.h) * h as f32];
    assert!(px[0] < 173.0 && px[1] < 82.0 && px[2] > 274.0 && px[3] > 400.0, "person box {px:?} holds her");
    assert_eq!((d.class_id, det.label(d.class_id)), (0, Some(PERSON_LABEL)));
    assert_eq!(det.name(), "blazepose-person");

    // The CCTV defaults (192 px tiles) cut someone this close into fragments: each tile sees part of her
    // and the model extrapolates a body from it (10 boxes, all on her). A whole-frame pass drops tile
    // boxes taller than 1.5 tiles, which leaves the whole-frame one plus at most one small fragment.
    let mut det = detector();
    let tiled = Detector::detect(&mut det, &rgb, w, h).unwrap();
    let mut det = BlazePersonDetector::build(&runtime(), &BlazeConfig { full_frame: true, ..config() }).unwrap();
    let with_whole = Detector::detect(&mut det, &rgb, w, h).unwrap();
    eprintln!("astronaut: {} detections with 192 px tiles, {} with a whole-frame pass", tiled.len(), with_whole.len());
    assert!(!tiled.is_empty());
    assert!((1..=2).contains(&with_whole.len()), "{with_whole:?}");
    assert!(with_whole[0].h > 0.9, "the best box is her whole body: {:?}", with_whole[0]);
}

/// Per labelled frame: (people, matched, detections, unmatched detections). A label matches a detection
/// (one to one, best IoU first) at IoU ≥ 0.3 of its box with the clipped person box.
fn score_frames(det: &mut dyn Detector) -> Vec<Row> {
    let dir = fixtures();
    let mut rows = Vec::new();
    for (frame, people) in labels() {
        let (rgb, w, h) = png(dir.join(format!("vtest-frames/{frame:04}.png")));
        let found = det.detect(&rgb, w, h).unwrap();
        let boxes: Vec<[f32; 4]> = found
            .iter()
            .map(|d| [d.x * w as f32, d.y * h as f32, (d.x + d.w) * w as f32, (d.y + d.h) * h as f32])
            .collect();
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (i, p) in people.iter().enumerate() {
            for (j, b) in boxes.iter().enumerate() {
                let v = iou(*p, *b);
                if v >= 0.3 {
                    pairs.push((v, i, j));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (mut used_p, mut used_d) = (vec![false; people.len()], vec![false; boxes.len()]);
        for (_, i, j) in pairs {
            if !used_p[i] && !used_d[j] {
                used_p[i] = true;
                used_d[j] = true;
            }
        }
        let matched = used_p.iter().filter(|&&u| u).count();
        let stray: Vec<String> = boxes
            .iter()
            .zip(&found)
            .zip(&used_d)
            .filter(|(_, u)| !**u)
            .map(|((b, d), _)| format!("{:.2}@{:?}", d.score, b.map(|v| v.round() as i32)))
            .collect();
        eprintln!(
            "frame {frame}: {matched}/{} people matched, {} detections, unmatched: {}",
            people.len(),
            boxes.len(),
            stray.join(" ")
        );
        rows.push((frame, people.len(), matched, boxes.len(), stray.len()));
    }
    rows
}

type Row = (u32, usize, usize, usize, usize);

/// Recall and precision over all labelled frames, plus (people, matched, detections, unmatched, rows).
fn recall_precision(det: &mut dyn Detector) -> (f32, f32, usize, usize, usize, usize, Vec<Row>) {
    let rows = score_frames(det);
    let people: usize = rows.iter().map(|r| r.1).sum();
    let matched: usize = rows.iter().map(|r| r.2).sum();
    let detections: usize = rows.iter().map(|r| r.3).sum();
    let stray: usize = rows.iter().map(|r| r.4).sum();
    let recall = matched as f32 / people as f32;
    let precision = (detections - stray) as f32 / detections.max(1) as f32;
    eprintln!(
        "recall {matched}/{people} = {recall:.2}, precision {}/{detections} = {precision:.2}",
        detections - stray
    );
    (recall, precision, people, matched, detections, stray, rows)
}

#[test]
fn finds_most_hand_labelled_people_on_cctv_footage() {
    let mut det = detector();
    let (recall, precision, people, matched, detections, stray, rows) = recall_precision(&mut det);
    assert_eq!(rows.len(), 6);
    assert!(recall >= 0.70, "recall {recall:.2} ({matched}/{people})");
    assert!(precision >= 0.90, "precision {precision:.2} ({stray} of {detections} detections match nobody)");
    // Every frame has people; none may come back empty.
    assert!(rows.iter().all(|r| r.2 > 0), "{rows:?}");
}

#[test]
fn the_int8_model_keeps_the_recall_of_the_float_one() {
    let (fp32, ..) = recall_precision(&mut detector());
    let cfg = BlazeConfig { model: fixtures().join("blazepose-person-int8.onnx"), ..config() };
    let mut int8 = BlazePersonDetector::build(&runtime(), &cfg).unwrap();
    let (recall, precision, people, matched, detections, stray, rows) = recall_precision(&mut int8);
    // within one labelled person of the float model's recall, on the same frames
    assert!(
        recall + 1.0 / people as f32 >= fp32 - 1e-6,
        "int8 recall {recall:.2} ({matched}/{people}) vs fp32 {fp32:.2}"
    );
    assert!(recall >= 0.70, "recall {recall:.2}");
    assert!(precision >= 0.85, "precision {precision:.2} ({stray} of {detections} detections match nobody)");
    assert!(rows.iter().all(|r| r.2 > 0), "{rows:?}");
}

#[test]
fn an_empty_room_has_nobody_and_leaning_bodies_are_not_people() {
    // The room without its people: the per-pixel median of the labelled frames.
    let frames: Vec<(Vec<u8>, u32, u32)> =
        labels().iter().map(|(f, _)| png(fixtures().join(format!("vtest-frames/{f:04}.png")))).collect();
    let (w, h) = (frames[0].1, frames[0].2);
    let room: Vec<u8> = (0..frames[0].0.len())
        .map(|i| {
            let mut v: Vec<u8> = frames.iter().map(|f| f.0[i]).collect();
            v.sort_unstable();
            v[v.len() / 2]
        })
        .collect();
    let int8 = BlazeConfig { model: fixtures().join("blazepose-person-int8.onnx"), ..config() };
    for cfg in [config(), int8.clone()] {
        let mut det = BlazePersonDetector::build(&runtime(), &cfg).unwrap();
        let found = det.detect(&room, w, h).unwrap();
        assert!(found.is_empty(), "{}: {found:?}", cfg.model.display());
    }
    // Keeping every pose finds more "people" on the labelled frames, all but at most one of them
    // strays: the upright limit costs at most one person and takes most strays.
    for cfg in [config(), int8] {
        let any_pose = BlazeConfig { max_tilt_deg: 180.0, ..cfg.clone() };
        let (.., upright_found, upright_all, upright_stray, _) =
            recall_precision(&mut BlazePersonDetector::build(&runtime(), &cfg).unwrap());
        let (.., any_found, any_all, any_stray, _) =
            recall_precision(&mut BlazePersonDetector::build(&runtime(), &any_pose).unwrap());
        assert!(upright_found + 1 >= any_found, "{upright_found} people found upright vs {any_found} in any pose");
        assert!(any_all > upright_all && upright_stray * 2 < any_stray, "strays {upright_stray} vs {any_stray}");
    }
    let bad = BlazeConfig { max_tilt_deg: 200.0, ..config() };
    assert!(matches!(BlazePersonDetector::build(&runtime(), &bad), Err(DetectError::Config(_))));
}

#[test]
fn a_whole_frame_pass_keeps_cctv_recall() {
    let cfg = BlazeConfig { full_frame: true, ..config() };
    let mut det = BlazePersonDetector::build(&runtime(), &cfg).unwrap();
    let (recall, precision, ..) = recall_precision(&mut det);
    assert!(recall >= 0.70 && precision >= 0.75, "recall {recall:.2} precision {precision:.2}");
}

#[test]
fn region_tiles_find_most_labelled_people_with_fewer_tiles_than_whole_frames() {
    // Each labelled person as the analysis hands it over: a motion region, padded by 2 % of the
    // frame. Measured (int8): 23/35 people in 23 tiles, against 20/35 in 24 tiles when regions within
    // the tile overlap of each other were merged into one box tiled as a grid; 28/35 in 120 tiles
    // for whole frames.
    let cfg = BlazeConfig { model: fixtures().join("blazepose-person-int8.onnx"), ..config() };
    let mut det = BlazePersonDetector::build(&runtime(), &cfg).unwrap();
    let (mut tiles, mut found, mut people) = (0, 0, 0);
    for (frame, boxes) in labels() {
        let (rgb, w, h) = png(fixtures().join(format!("vtest-frames/{frame:04}.png")));
        let (fw, fh) = (w as f32, h as f32);
        let regions: Vec<Rect> = boxes
            .iter()
            .map(|b| {
                let (x0, y0) = ((b[0] / fw - 0.02).max(0.0), (b[1] / fh - 0.02).max(0.0));
                let (x1, y1) = ((b[2] / fw + 0.02).min(1.0), (b[3] / fh + 0.02).min(1.0));
                Rect { x: x0, y: y0, w: x1 - x0, h: y1 - y0 }
            })
            .collect();
        let got = det.detect_in(&rgb, w, h, &regions).unwrap();
        tiles += det.last_tiles().len();
        people += boxes.len();
        found += boxes
            .iter()
            .filter(|p| got.iter().any(|d| iou(**p, [d.x * fw, d.y * fh, (d.x + d.w) * fw, (d.y + d.h) * fh]) >= 0.3))
            .count();
    }
    eprintln!("regions: {found}/{people} people in {tiles} tiles");
    assert!(found * 10 >= people * 6, "{found}/{people} people found in their regions");
    assert!(tiles * 4 <= labels().len() * 24, "{tiles} tiles");
}

#[test]
fn region_detection_covers_only_the_regions() {
    let mut det = detector();
    let (rgb, w, h) = png(fixtures().join("vtest-frames/0700.png"));
    let (fw, fh) = (w as f32, h as f32);
    let frame700 = labels().into_iter().find(|l| l.0 == 700).unwrap().1;
    // Motion-like regions: each labelled person, padded by 10 px.
    let regions: Vec<Rect> = frame700
        .iter()
        .map(|b| Rect {
            x: (b[0] - 10.0) / fw,
            y: (b[1] - 10.0) / fh,
            w: (b[2] - b[0] + 20.0) / fw,
            h: (b[3] - b[1] + 20.0) / fh,
        })
        .collect();
    let found = det.detect_in(&rgb, w, h, &regions).unwrap();
    let tiles = det.last_tiles().len();
    eprintln!("regions: {} tiles, {} found", tiles, found.len());
    assert!(tiles < 35, "region tiles {tiles}");
    let matched = frame700
        .iter()
        .filter(|p| found.iter().any(|d| iou(**p, [d.x * fw, d.y * fh, (d.x + d.w) * fw, (d.y + d.h) * fh]) >= 0.3))
        .count();
    assert!(matched * 10 >= frame700.len() * 6, "{matched}/{} people found in their regions", frame700.len());
    // An empty stretch of lawn and road (bottom right) has nobody; no regions, no work.
    let lawn = Rect { x: 560.0 / fw, y: 430.0 / fh, w: 180.0 / fw, h: 146.0 / fh };
    let found = det.detect_in(&rgb, w, h, &[lawn]).unwrap();
    assert!(found.is_empty(), "{found:?}");
    assert_eq!(det.last_tiles().len(), 1);
    assert!(det.detect_in(&rgb, w, h, &[]).unwrap().is_empty());
    assert!(det.last_tiles().is_empty());
}

#[test]
fn any_frame_size_works() {
    let mut det = detector();
    let (rgb, w, h) = png(fixtures().join("vtest-frames/0700.png"));
    // Crops smaller than a tile, odd sizes, a single pixel, a blank frame.
    for (cw, ch) in [(1, 1), (7, 3), (100, 50), (191, 193), (193, 191), (333, 197), (767, 1)] {
        let mut crop = Vec::with_capacity((cw * ch * 3) as usize);
        for y in 0..ch.min(h) {
            let row = (y * w * 3) as usize;
            crop.extend_from_slice(&rgb[row..row + (cw.min(w) * 3) as usize]);
        }
        let found = Detector::detect(&mut det, &crop, cw, ch).unwrap();
        for d in &found {
            assert!(d.x >= 0.0 && d.y >= 0.0 && d.x + d.w <= 1.0 + 1e-5 && d.y + d.h <= 1.0 + 1e-5, "{cw}x{ch}: {d:?}");
        }
    }
    // A crop of the frame smaller than a tile still finds the person in it (frame 700, x 280–308).
    let (cx, cy, cw, ch) = (230u32, 170u32, 120u32, 150u32);
    let mut crop = Vec::new();
    for y in cy..cy + ch {
        let row = ((y * w + cx) * 3) as usize;
        crop.extend_from_slice(&rgb[row..row + (cw * 3) as usize]);
    }
    let found = Detector::detect(&mut det, &crop, cw, ch).unwrap();
    assert_eq!(det.last_tiles().len(), 1);
    assert!(!found.is_empty(), "person in a {cw}x{ch} crop");
    // Empty, short and zero-sized buffers are not errors.
    assert!(Detector::detect(&mut det, &[], 0, 0).unwrap().is_empty());
    assert!(Detector::detect(&mut det, &rgb[..100], w, h).unwrap().is_empty());
    assert!(Detector::detect(&mut det, &vec![0u8; 64 * 64 * 3], 64, 64).unwrap().is_empty());
}

#[test]
fn both_detectors_work_behind_the_trait() {
    let rt = runtime();
    let dir = fixtures();
    let yolo = YoloDetector::build(
        &rt,
        &YoloConfig {
            model: dir.join("yolov8n-320-nudenet.onnx"),
            input_size: None,
            score_threshold: 0.25,
            iou_threshold: 0.45,
            threads: 1,
        },
    )
    .unwrap();
    let mut detectors: Vec<Box<dyn Detector + Send>> =
        vec![Box::new(yolo), Box::new(BlazePersonDetector::build(&rt, &config()).unwrap())];
    let (rgb, w, h) = png(dir.join("astronaut.png"));
    let mut names = Vec::new();
    for det in &mut detectors {
        let found = det.detect(&rgb, w, h).unwrap();
        let best = found.first().unwrap_or_else(|| panic!("{} found nothing", det.name()));
        names.push((det.name().to_owned(), det.label(best.class_id).unwrap().to_owned()));
        // Outside every region: nothing.
        let corner = Rect { x: 0.0, y: 0.0, w: 0.05, h: 0.05 };
        assert!(det.detect_in(&rgb, w, h, &[corner]).unwrap().iter().all(|d| d.x < 0.05 && d.y < 0.05));
    }
    assert_eq!(
        names,
        [("yolov8n-320-nudenet".to_owned(), "FACE_FEMALE".to_owned()), ("blazepose-person".into(), "person".into())]
    );
}

#[test]
fn bad_configs_are_clear_errors() {
    let rt = runtime();
    let bad = BlazeConfig { overlap: 192, ..config() };
    assert!(matches!(BlazePersonDetector::build(&rt, &bad), Err(DetectError::Config(_))));
    let missing = BlazeConfig::new(fixtures().join("missing.onnx"));
    let err = BlazePersonDetector::build(&rt, &missing).unwrap_err();
    assert!(err.to_string().contains("no such file"), "{err}");
    let yolo = BlazeConfig::new(fixtures().join("yolov8n-320-nudenet.onnx"));
    let err = BlazePersonDetector::build(&rt, &yolo).unwrap_err();
    assert!(matches!(err, DetectError::Shape { .. }), "{err}");
}

#[test]
fn a_frame_run_in_parts_finds_what_one_run_finds() {
    // Tiles of one frame may be shared between workers: any split, in any order, merges to the
    // same people as one run, for the whole frame and for regions.
    let mut det = detector();
    let mut other = detector();
    let (rgb, w, h) = png(fixtures().join("vtest-frames/0700.png"));
    let regions = [Rect { x: 0.1, y: 0.2, w: 0.5, h: 0.4 }, Rect { x: 0.8, y: 0.3, w: 0.15, h: 0.3 }];
    for regions in [None, Some(&regions[..])] {
        let one = match regions {
            None => det.detect(&rgb, w, h).unwrap(),
            Some(r) => det.detect_in(&rgb, w, h, r).unwrap(),
        };
        let (tiles, whole) = det.plan(w, h, regions);
        assert_eq!(tiles.as_slice(), det.last_tiles());
        let mut candidates = Vec::new();
        let mut parts: Vec<&[edge_detect::Tile]> = tiles.chunks(3).collect();
        parts.reverse();
        for (i, part) in parts.into_iter().enumerate() {
            let d = if i % 2 == 0 { &mut det } else { &mut other };
            d.run_some_tiles(&rgb, w, h, part, whole, &mut candidates).unwrap();
        }
        let parts = det.finish(&mut candidates, w, h, regions);
        assert!(candidates.is_empty());
        assert!(!one.is_empty());
        assert_eq!(parts.len(), one.len(), "{regions:?}");
        for (a, b) in parts.iter().zip(&one) {
            let close = |x: f32, y: f32| (x - y).abs() < 1e-4;
            assert!(close(a.x, b.x) && close(a.y, b.y) && close(a.w, b.w) && close(a.h, b.h), "{a:?} vs {b:?}");
        }
    }
}
