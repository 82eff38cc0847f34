use super::*;
use crate::geometry::Point;

const SEC: i64 = 1_000_000;

fn pt(x: f32, y: f32) -> Point {
    Point { x, y }
}

fn classes() -> Vec<ClassRule> {
    vec![ClassRule { class_id: 0, label: "person".into(), kind: EventKind::DetectionPerson, min_score: 0.4 }]
}

fn config() -> AnalyzerConfig {
    let mut cfg = AnalyzerConfig::new(Uuid::nil(), Uuid::max(), Arc::from("cam-1"), "m".into(), classes());
    cfg.zone = Some("lobby".into());
    cfg.motion = None;
    cfg
}

/// A grey 64×48 frame at `t` (µs), with a white block at (`bx`, `by`) of 16×16 pixels when given.
fn frame(t: i64, block: Option<(usize, usize)>) -> Frame {
    let (w, h) = (64usize, 48usize);
    let mut rgb = vec![80u8; w * h * 3];
    if let Some((bx, by)) = block {
        for y in by..(by + 16).min(h) {
            for x in bx..(bx + 16).min(w) {
                rgb[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&[250, 250, 250]);
            }
        }
    }
    Frame {
        camera: Arc::from("cam-1"),
        seq: t as u64,
        captured_at: Timestamp(t),
        width: w as u32,
        height: h as u32,
        rgb,
    }
}

fn ids() -> impl FnMut(Timestamp) -> Uuid {
    let mut n = 0u128;
    move |_| {
        n += 1;
        Uuid::from_u128(n)
    }
}

/// A person whose feet are at (x, 0.6).
fn person(x: f32) -> Detected {
    Detected { class_id: 0, score: 0.9, x: x - 0.05, y: 0.3, w: 0.1, h: 0.3 }
}

fn short(e: &Event) -> String {
    match &e.payload {
        Payload::Detection(d) => {
            format!("{} {:?}", e.kind, d.objects.iter().map(|o| o.track).collect::<Vec<_>>())
        }
        Payload::Object(o) => format!("{} {} {}ms", e.kind, o.track, o.duration_ms),
        Payload::LineCrossing(l) => format!("{} {} {:?} {}/{}", e.kind, l.line, l.direction, l.count_in, l.count_out),
        Payload::ZonePresence(z) => format!("{} {} {}", e.kind, z.area, z.track),
        Payload::Motion(_) => e.kind.to_string(),
        other => format!("{other:?}"),
    }
}

#[test]
fn without_motion_gating_every_frame_is_analysed_in_full() {
    let mut a = CameraAnalyzer::new(config());
    for t in 0..5 {
        let (plan, events) = a.plan(&frame(t * SEC / 5, None), ids());
        assert_eq!(plan, Plan::Full);
        assert!(events.is_empty());
    }
    assert_eq!(a.counts().full, 5);
}

#[test]
fn motion_gates_the_detector_with_a_periodic_full_frame() {
    let mut cfg = config();
    cfg.motion = Some(crate::motion::MotionConfig { grid_width: 16, min_cells: 1, ..Default::default() });
    cfg.full_frame_every_us = 2 * SEC;
    cfg.motion_quiet_us = SEC;
    let mut a = CameraAnalyzer::new(cfg);
    let step = SEC / 5;
    // Frame 0: background learnt, first full check. Then a still picture: skipped.
    let mut plans = Vec::new();
    let motion_events = std::cell::Cell::new(0);
    let run = |a: &mut CameraAnalyzer, t: i64, block| {
        let (plan, events) = a.plan(&frame(t, block), ids());
        motion_events.set(motion_events.get() + events.iter().filter(|e| e.kind == EventKind::MotionDetected).count());
        plan
    };
    for i in 0..5 {
        plans.push(run(&mut a, i * step, None));
    }
    assert_eq!(plans[0], Plan::Full);
    assert!(plans[1..].iter().all(|p| *p == Plan::Skip), "{plans:?}");
    // Something appears at the top left: regions around it only.
    let plan = run(&mut a, 5 * step, Some((0, 0)));
    let Plan::Regions(regions) = plan else { panic!("expected regions, got {plan:?}") };
    let r = union(&regions).unwrap();
    assert!(r.x < 0.05 && r.y < 0.05 && r.x + r.w < 0.45 && r.y + r.h < 0.5, "{r:?}");
    // It keeps moving: same episode, no second motion event.
    assert!(matches!(run(&mut a, 6 * step, Some((8, 8))), Plan::Regions(_)));
    // Two seconds since the last full frame: a full check even though it moves.
    assert_eq!(run(&mut a, 10 * step, Some((20, 8))), Plan::Full);
    assert_eq!(motion_events.get(), 1);
    // Quiet for over a second, then motion again: a new episode.
    for i in 11..20 {
        run(&mut a, i * step, None);
    }
    run(&mut a, 20 * step, Some((40, 20)));
    assert_eq!(motion_events.get(), 2);
    assert_eq!(a.counts().motion_episodes, 2);
}

#[test]
fn a_walker_is_one_lifecycle_with_a_line_crossing() {
    let mut cfg = config();
    cfg.lines = vec![LineConfig { id: "door".into(), a: pt(0.5, 0.0), b: pt(0.5, 1.0) }];
    cfg.zones = vec![ZoneConfig {
        id: "right".into(),
        polygon: Polygon(vec![pt(0.6, 0.0), pt(1.0, 0.0), pt(1.0, 1.0), pt(0.6, 1.0)]),
        loiter_us: None,
    }];
    let mut a = CameraAnalyzer::new(cfg);
    let mut got = Vec::new();
    for i in 0..12 {
        let f = frame(i * SEC / 2, None);
        got.extend(a.observe(&f, &Plan::Full, &[person(0.30 + 0.04 * i as f32)], ids()).iter().map(short));
    }
    assert_eq!(a.live_objects(), 1);
    // Gone for longer than the tracker's max age.
    got.extend(a.observe(&frame(10 * SEC, None), &Plan::Full, &[], ids()).iter().map(short));
    assert_eq!(
        got,
        [
            "detection.person [Some(1)]",
            "line.crossed door In 1/0",
            "zone.entered right 1",
            "zone.exited right 1",
            "object.ended 1 5500ms",
        ]
    );
    assert_eq!(a.line_counts(), vec![("door".to_owned(), 1, 0)]);
    assert_eq!(a.live_objects(), 0);
}

#[test]
fn frames_mode_reports_every_analysed_frame_and_still_counts() {
    let mut cfg = config();
    cfg.mode = EventMode::Frames;
    cfg.lines = vec![LineConfig { id: "door".into(), a: pt(0.5, 0.0), b: pt(0.5, 1.0) }];
    let mut a = CameraAnalyzer::new(cfg);
    let mut got = Vec::new();
    for (i, x) in [0.36, 0.40, 0.44, 0.48, 0.52, 0.56].into_iter().enumerate() {
        got.extend(a.observe(&frame(i as i64 * SEC / 2, None), &Plan::Full, &[person(x)], ids()).iter().map(short));
    }
    let person = "detection.person [None]";
    assert_eq!(got, [person, person, person, person, person, person, "line.crossed door In 1/0"]);
}

#[test]
fn updates_follow_the_configured_cadence() {
    let mut cfg = config();
    cfg.update_every_us = 2 * SEC;
    let mut a = CameraAnalyzer::new(cfg);
    let mut updates = Vec::new();
    for i in 0..11 {
        let t = i * SEC / 2;
        for e in a.observe(&frame(t, None), &Plan::Full, &[person(0.5)], ids()) {
            if e.kind == EventKind::ObjectUpdated {
                updates.push(t);
            }
        }
    }
    // Confirmed at 0.5 s; updates every 2 s after that.
    assert_eq!(updates, vec![5 * SEC / 2, 9 * SEC / 2]);
}

#[test]
fn filters_drop_by_class_score_size_ratio_and_mask() {
    let mut cfg = config();
    cfg.mode = EventMode::Frames;
    cfg.filter = ObjectFilter {
        min_area: 0.01,
        max_area: 0.5,
        min_ratio: 0.2,
        max_ratio: 1.0,
        masks: vec![Polygon(vec![pt(0.0, 0.8), pt(1.0, 0.8), pt(1.0, 1.0), pt(0.0, 1.0)])],
    };
    let table: [(&str, Detected, bool); 8] = [
        ("kept", Detected { class_id: 0, score: 0.9, x: 0.1, y: 0.1, w: 0.1, h: 0.3 }, true),
        ("unknown class", Detected { class_id: 3, score: 0.9, x: 0.1, y: 0.1, w: 0.1, h: 0.3 }, false),
        ("low score", Detected { class_id: 0, score: 0.3, x: 0.1, y: 0.1, w: 0.1, h: 0.3 }, false),
        ("too small", Detected { class_id: 0, score: 0.9, x: 0.1, y: 0.1, w: 0.05, h: 0.1 }, false),
        ("too big", Detected { class_id: 0, score: 0.9, x: 0.0, y: 0.0, w: 0.8, h: 0.75 }, false),
        ("too wide", Detected { class_id: 0, score: 0.9, x: 0.1, y: 0.1, w: 0.4, h: 0.2 }, false),
        ("too thin", Detected { class_id: 0, score: 0.9, x: 0.1, y: 0.1, w: 0.02, h: 0.6 }, false),
        ("feet in the mask", Detected { class_id: 0, score: 0.9, x: 0.1, y: 0.55, w: 0.1, h: 0.3 }, false),
    ];
    for (name, d, kept) in table {
        let mut a = CameraAnalyzer::new(cfg.clone());
        let events = a.observe(&frame(0, None), &Plan::Full, &[d], ids());
        assert_eq!(!events.is_empty(), kept, "{name}");
    }
}

/// The smallest rect holding every rect in `regions` (normalised), or `None` when empty.
fn union(regions: &[Rect]) -> Option<Rect> {
    let first = regions.first()?;
    let (mut x0, mut y0, mut x1, mut y1) = (first.x, first.y, first.x + first.w, first.y + first.h);
    for r in &regions[1..] {
        x0 = x0.min(r.x);
        y0 = y0.min(r.y);
        x1 = x1.max(r.x + r.w);
        y1 = y1.max(r.y + r.h);
    }
    Some(Rect { x: x0, y: y0, w: x1 - x0, h: y1 - y0 })
}

/// The crop `crops_for` gives one region.
fn crop_for(region: Rect, width: u32, height: u32, min_side: u32) -> Option<(u32, u32, u32, u32)> {
    crops_for(&[region], width, height, min_side).map(|crops| {
        assert_eq!(crops.len(), 1);
        crops[0]
    })
}

#[test]
fn crops_grow_to_a_minimum_clamp_to_the_frame_and_map_back() {
    // A small region near the right edge grows to 320 px and is pushed inside the frame.
    let crop = crop_for(Rect { x: 0.95, y: 0.5, w: 0.02, h: 0.05 }, 768, 576, 320).unwrap();
    assert_eq!(crop, (448, 142, 320, 320));
    // A region covering most of the frame is not worth a crop.
    assert_eq!(crop_for(Rect { x: 0.0, y: 0.0, w: 0.9, h: 0.9 }, 768, 576, 320), None);
    // A frame smaller than the minimum side is never cropped.
    assert_eq!(crop_for(Rect { x: 0.1, y: 0.1, w: 0.1, h: 0.1 }, 200, 100, 320), None);
    assert_eq!(crop_for(Rect { x: 0.1, y: 0.1, w: 0.1, h: 0.1 }, 0, 0, 320), None);

    let mut d = [Detected { class_id: 0, score: 1.0, x: 0.5, y: 0.25, w: 0.25, h: 0.5 }];
    uncrop(&mut d, (448, 142, 320, 320), 768, 576);
    let px = |v: f32, full: f32| (v * full).round();
    assert_eq!(
        (px(d[0].x, 768.0), px(d[0].y, 576.0), px(d[0].w, 768.0), px(d[0].h, 576.0)),
        (608.0, 222.0, 80.0, 160.0)
    );

    // Pixels come out of the right place.
    let (w, h) = (8u32, 4u32);
    let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i / 3) as u8).collect();
    let mut out = Vec::new();
    crop_rgb(&rgb, w, (2, 1, 3, 2), &mut out);
    let pixels: Vec<u8> = out.chunks(3).map(|p| p[0]).collect();
    assert_eq!(pixels, vec![10, 11, 12, 18, 19, 20]);
}

#[test]
fn finish_ends_every_object() {
    let mut a = CameraAnalyzer::new(config());
    for i in 0..3 {
        a.observe(&frame(i * SEC / 2, None), &Plan::Full, &[person(0.5)], ids());
    }
    let got: Vec<String> = a.finish(Timestamp(2 * SEC), ids()).iter().map(short).collect();
    assert_eq!(got, ["object.ended 1 1000ms"]);
}

#[test]
fn crops_split_people_far_apart_and_merge_what_overlaps() {
    let r = |x: f32, y: f32, w: f32, h: f32| Rect { x, y, w, h };
    let px = |c: &(u32, u32, u32, u32)| c.2 * c.3;
    // (regions, how many crops)
    let cases: Vec<(&str, Vec<Rect>, Option<usize>)> = vec![
        (
            "two people at opposite ends: two small crops",
            vec![r(0.02, 0.3, 0.08, 0.25), r(0.88, 0.3, 0.08, 0.25)],
            Some(2),
        ),
        ("overlapping regions: one crop", vec![r(0.4, 0.4, 0.1, 0.2), r(0.45, 0.45, 0.1, 0.2)], Some(1)),
        (
            "near neighbours: merging costs little, one crop",
            vec![r(0.40, 0.4, 0.1, 0.2), r(0.52, 0.4, 0.1, 0.2)],
            Some(1),
        ),
        (
            "six people far apart (in a 1080p frame): at most four crops",
            (0..6).map(|i| r(0.02 + 0.16 * i as f32, if i % 2 == 0 { 0.05 } else { 0.7 }, 0.05, 0.2)).collect(),
            Some(4),
        ),
        ("most of the frame: the whole frame", vec![r(0.0, 0.0, 0.9, 0.9)], None),
        (
            "people in three corners: crops would cover most of it",
            vec![r(0.0, 0.0, 0.48, 0.5), r(0.52, 0.0, 0.48, 0.5), r(0.0, 0.5, 0.48, 0.5)],
            None,
        ),
        ("nothing", vec![], None),
    ];
    for (name, regions, want) in cases {
        let (fw, fh) = if name.contains("1080p") { (1920, 1080) } else { (768, 576) };
        let got = crops_for(&regions, fw, fh, 160);
        assert_eq!(got.as_ref().map(Vec::len), want, "{name}: {got:?}");
        let Some(crops) = got else { continue };
        let total: u32 = crops.iter().map(px).sum();
        assert!(total < fw * fh * 7 / 10, "{name}");
        for c in &crops {
            assert!(c.2 >= 160 && c.3 >= 160 && c.0 + c.2 <= fw && c.1 + c.3 <= fh, "{name}: {c:?}");
        }
        // every region lies inside some crop
        let (w, h) = (fw as f32, fh as f32);
        for reg in &regions {
            let (x0, y0) = ((reg.x * w) as u32, (reg.y * h) as u32);
            let (x1, y1) = (((reg.x + reg.w) * w) as u32, ((reg.y + reg.h) * h) as u32);
            assert!(
                crops.iter().any(|c| c.0 <= x0 && c.1 <= y0 && x1 <= c.0 + c.2 && y1 <= c.1 + c.3),
                "{name}: {reg:?} not in {crops:?}"
            );
        }
    }
    // two crops cost less than the one holding both
    let two = crops_for(&[r(0.02, 0.3, 0.08, 0.25), r(0.88, 0.3, 0.08, 0.25)], 768, 576, 160).unwrap();
    let one = crop_for(union(&[r(0.02, 0.3, 0.08, 0.25), r(0.88, 0.3, 0.08, 0.25)]).unwrap(), 768, 576, 160).unwrap();
    assert!(two.iter().map(px).sum::<u32>() * 2 < px(&one));
}

#[test]
fn sweep_parts_tile_the_frame_exactly() {
    for parts in 1..=10u32 {
        let cells: Vec<Rect> = (0..parts).map(|k| sweep_part(k, parts)).collect();
        let area: f32 = cells.iter().map(|r| r.w * r.h).sum();
        assert!((area - 1.0).abs() < 1e-5, "{parts} parts cover {area}");
        for (i, a) in cells.iter().enumerate() {
            assert!(a.x >= 0.0 && a.y >= 0.0 && a.x + a.w <= 1.0 + 1e-6 && a.y + a.h <= 1.0 + 1e-6, "{parts}: {a:?}");
            for b in &cells[i + 1..] {
                let ix = (a.x + a.w).min(b.x + b.w) - a.x.max(b.x);
                let iy = (a.y + a.h).min(b.y + b.h) - a.y.max(b.y);
                assert!(ix <= 1e-6 || iy <= 1e-6, "{parts}: {a:?} overlaps {b:?}");
            }
        }
    }
    assert_eq!(sweep_part(7, 6), sweep_part(1, 6), "k wraps");
}

#[test]
fn a_sweep_in_parts_covers_the_whole_frame_without_a_whole_frame_look() {
    let mut cfg = config();
    cfg.motion = Some(crate::motion::MotionConfig { grid_width: 16, min_cells: 1, ..Default::default() });
    cfg.full_frame_every_us = 3 * SEC;
    cfg.full_frame_parts = 6;
    let mut a = CameraAnalyzer::new(cfg);
    let step = SEC / 5;
    // A still picture for 6 s at 5 frames/s: one part every 0.5 s, never the whole frame at once.
    let mut looked = Vec::new();
    for i in 0..30 {
        match a.plan(&frame(i * step, None), ids()).0 {
            Plan::Full => panic!("a whole-frame look at frame {i}"),
            Plan::Skip => {}
            Plan::Regions(r) => {
                assert_eq!(r.len(), 1, "frame {i}: only the sweep part, nothing moves");
                looked.push((i, r[0]));
            }
        }
    }
    let frames: Vec<i64> = looked.iter().map(|l| l.0).collect();
    assert_eq!(frames, (0..30).step_by(3).collect::<Vec<i64>>(), "one part every 0.6 s (3 frames)");
    // each run of six parts covers every cell of the frame, padded
    for run in looked.chunks_exact(6) {
        for k in 0..6 {
            let cell = sweep_part(k, 6);
            assert!(
                run.iter().any(|(_, r)| r.x <= cell.x
                    && r.y <= cell.y
                    && r.x + r.w >= cell.x + cell.w - 1e-6
                    && r.y + r.h >= cell.y + cell.h - 1e-6),
                "cell {k} not looked at in {run:?}"
            );
        }
    }
    assert_eq!(a.counts().full, 1, "a whole sweep (six parts) counts as one full look");
    // Motion meanwhile: the due part joins the motion regions.
    let (plan, _) = a.plan(&frame(30 * step, Some((40, 20))), ids());
    let Plan::Regions(r) = plan else { panic!("{plan:?}") };
    assert_eq!(r.len(), 2, "{r:?}");
}

#[test]
fn a_stationary_object_is_looked_for_only_now_and_then() {
    let mut cfg = config();
    cfg.motion = Some(crate::motion::MotionConfig { grid_width: 16, min_cells: 1, ..Default::default() });
    cfg.full_frame_every_us = 600 * SEC;
    let mut a = CameraAnalyzer::new(cfg);
    let step = SEC / 5;
    // A still picture where the detector keeps finding the same "person" (a coat on a hook, a
    // false positive on the background) whenever it looks there, for 10 s and then no more.
    let (mut looked, mut ended) = (Vec::new(), Vec::new());
    for i in 0..110 {
        let f = frame(i * step, None);
        let (plan, _) = a.plan(&f, ids());
        if plan == Plan::Skip {
            continue;
        }
        looked.push(i);
        let found = if i < 50 { vec![person(0.5)] } else { vec![] };
        ended
            .extend(a.observe(&f, &plan, &found, ids()).iter().filter(|e| e.kind == EventKind::ObjectEnded).map(|_| i));
    }
    // Every frame while it may be moving (the first 3 s); once a second after that, until it ends.
    let mut want: Vec<i64> = (0..15).collect();
    want.extend((19..=104).step_by(5));
    assert_eq!(looked, want);
    // Last seen at frame 49 (9.8 s), checked and missed once a second: it ends after 10 s.
    assert_eq!(ended, vec![104]);
    // Motion where it stands brings the detector back at once.
    let mut a = CameraAnalyzer::new(a.config().clone());
    for i in 0..20 {
        let f = frame(i * step, None);
        let (plan, _) = a.plan(&f, ids());
        if plan != Plan::Skip {
            a.observe(&f, &plan, &[person(0.5)], ids());
        }
    }
    assert_eq!(a.plan(&frame(20 * step, None), ids()).0, Plan::Skip, "stationary and checked 0.2 s ago");
    let (plan, _) = a.plan(&frame(21 * step, Some((28, 16))), ids());
    assert!(matches!(plan, Plan::Regions(_)), "{plan:?}");
}
