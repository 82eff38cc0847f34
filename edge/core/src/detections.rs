//! Turning detector output into events.

use std::collections::BTreeMap;

use uuid::Uuid;
use vigil_proto::{BoundingBox, DetectedObject, Detection, Event, EventKind, Payload, Source, SourceKind, Timestamp};

use crate::Frame;

/// One object found by a detector, in normalised frame coordinates (0..=1, x/y = top-left).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detected {
    pub class_id: u32,
    pub score: f32,
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

/// How one model class becomes an event: its name, the event kind it reports and its own minimum
/// score (on top of the detector's global threshold).
#[derive(Debug, Clone, PartialEq)]
pub struct ClassRule {
    pub class_id: u32,
    pub label: String,
    pub kind: EventKind,
    pub min_score: f32,
}

/// Who the events belong to.
#[derive(Debug, Clone)]
pub struct EventContext<'a> {
    pub tenant: Uuid,
    pub site: Uuid,
    pub zone: Option<&'a str>,
    pub model: &'a str,
}

/// Builds at most one event per event kind for one analysed frame: all objects of classes that map
/// to `detection.person` go in one event, and so on. Classes without a rule, or below their rule's
/// score, are ignored. `new_id` mints an event id for a given occurrence time.
pub fn detections_to_events(
    cx: &EventContext<'_>,
    frame: &Frame,
    detected: &[Detected],
    rules: &[ClassRule],
    mut new_id: impl FnMut(Timestamp) -> Uuid,
) -> Vec<Event> {
    let mut by_kind: BTreeMap<&'static str, (EventKind, Vec<DetectedObject>)> = BTreeMap::new();
    for d in detected {
        let Some(rule) = rules.iter().find(|r| r.class_id == d.class_id) else { continue };
        if d.score < rule.min_score {
            continue;
        }
        by_kind.entry(rule.kind.as_str()).or_insert_with(|| (rule.kind, Vec::new())).1.push(DetectedObject {
            class_id: d.class_id,
            label: rule.label.clone(),
            score: d.score,
            bbox: BoundingBox { x: d.x, y: d.y, w: d.w, h: d.h },
            track: None,
        });
    }
    by_kind
        .into_values()
        .map(|(kind, mut objects)| {
            objects.sort_by(|a, b| b.score.total_cmp(&a.score));
            Event {
                id: new_id(frame.captured_at),
                tenant: cx.tenant,
                site: cx.site,
                zone: cx.zone.map(str::to_owned),
                source: Source { kind: SourceKind::Camera, id: frame.camera.to_string() },
                kind,
                occurred_at: frame.captured_at,
                payload: Payload::Detection(Detection {
                    model: cx.model.to_owned(),
                    frame_seq: frame.seq,
                    frame_width: frame.width,
                    frame_height: frame.height,
                    objects,
                    clip: None,
                }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Frame {
        Frame { camera: "cam-1".into(), seq: 7, captured_at: Timestamp(1_000), width: 640, height: 480, rgb: vec![] }
    }

    fn rules() -> Vec<ClassRule> {
        vec![
            ClassRule { class_id: 0, label: "person".into(), kind: EventKind::DetectionPerson, min_score: 0.4 },
            ClassRule { class_id: 2, label: "car".into(), kind: EventKind::DetectionVehicle, min_score: 0.5 },
            ClassRule { class_id: 7, label: "truck".into(), kind: EventKind::DetectionVehicle, min_score: 0.5 },
        ]
    }

    fn det(class_id: u32, score: f32) -> Detected {
        Detected { class_id, score, x: 0.1, y: 0.2, w: 0.3, h: 0.4 }
    }

    #[track_caller]
    fn check(input: &[Detected], expect: &[(EventKind, &[(&str, f32)])]) {
        let cx = EventContext { tenant: Uuid::nil(), site: Uuid::max(), zone: Some("lobby"), model: "m" };
        let mut n = 0u128;
        let events = detections_to_events(&cx, &frame(), input, &rules(), |_| {
            n += 1;
            Uuid::from_u128(n)
        });
        let got: Vec<(EventKind, Vec<(String, f32)>)> = events
            .iter()
            .map(|e| {
                let Payload::Detection(d) = &e.payload else { panic!("not a detection") };
                assert_eq!(e.occurred_at, Timestamp(1_000));
                assert_eq!(e.source.id, "cam-1");
                assert_eq!(e.zone.as_deref(), Some("lobby"));
                assert_eq!(d.frame_seq, 7);
                (e.kind, d.objects.iter().map(|o| (o.label.clone(), o.score)).collect())
            })
            .collect();
        let expect: Vec<(EventKind, Vec<(String, f32)>)> =
            expect.iter().map(|(k, o)| (*k, o.iter().map(|(l, s)| (l.to_string(), *s)).collect())).collect();
        assert_eq!(got, expect);
        let mut ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
        ids.dedup();
        assert_eq!(ids.len(), events.len(), "ids must be distinct");
    }

    #[test]
    fn nothing_detected_means_no_event() {
        check(&[], &[]);
    }

    #[test]
    fn unmapped_classes_and_low_scores_are_ignored() {
        check(&[det(5, 0.99), det(0, 0.39), det(2, 0.49)], &[]);
    }

    #[test]
    fn one_event_per_kind_with_objects_best_first() {
        check(
            &[det(0, 0.5), det(2, 0.6), det(0, 0.9), det(7, 0.8)],
            &[
                (EventKind::DetectionPerson, &[("person", 0.9), ("person", 0.5)]),
                (EventKind::DetectionVehicle, &[("truck", 0.8), ("car", 0.6)]),
            ],
        );
    }
}
