//! Golden vectors and hostile input for the wire codec.

use uuid::Uuid;
use vigil_proto::*;

fn sample_event() -> Event {
    Event {
        id: Uuid::parse_str("01937c1e-7a00-7000-8000-000000000001").unwrap(),
        tenant: Uuid::parse_str("00000000-0000-4000-8000-0000000000aa").unwrap(),
        site: Uuid::parse_str("00000000-0000-4000-8000-0000000000bb").unwrap(),
        zone: Some("lobby".into()),
        source: Source { kind: SourceKind::Camera, id: "cam-1".into() },
        kind: EventKind::DetectionPerson,
        occurred_at: Timestamp(1_732_875_600_000_000),
        payload: Payload::Detection(Detection {
            model: "yolov8n".into(),
            frame_seq: 42,
            frame_width: 768,
            frame_height: 576,
            objects: vec![DetectedObject {
                class_id: 0,
                label: "person".into(),
                score: 0.5,
                bbox: BoundingBox { x: 0.25, y: 0.5, w: 0.125, h: 0.25 },
                track: None,
            }],
            clip: None,
        }),
    }
}

fn sample_batch() -> EventBatch {
    EventBatch { schema: SCHEMA_VERSION, sent_at: Timestamp(1_732_875_601_000_000), events: vec![sample_event()] }
}

const GOLDEN_BATCH: &str = concat!(
    "a366736368656d61026773656e745f61741b0006280a8aa33640666576656e747381a86269645001937c1e7a00700080",
    "000000000000016674656e616e7450000000000000400080000000000000aa6473697465500000000000004000800000",
    "00000000bb647a6f6e65656c6f62627966736f75726365a2646b696e646663616d6572616269646563616d2d31646b69",
    "6e6470646574656374696f6e2e706572736f6e6b6f636375727265645f61741b0006280a8a93f400677061796c6f6164",
    "a6647479706569646574656374696f6e656d6f64656c67796f6c6f76386e696672616d655f736571182a6b6672616d65",
    "5f77696474681903006c6672616d655f686569676874190240676f626a6563747381a468636c6173735f696400656c61",
    "62656c66706572736f6e6573636f7265f938006462626f78a46178f934006179f938006177f930006168f93400",
);
const GOLDEN_ACK: &str = concat!(
    "a266736368656d610267726573756c747383a26269645001937c1e7a007000800000000000000166737461747573a166",
    "7374617475736673746f726564a26269645001937c1e7a007000800000000000000166737461747573a1667374617475",
    "73696475706c6963617465a26269645001937c1e7a007000800000000000000166737461747573a26673746174757368",
    "72656a656374656466726561736f6e6d73697465206d69736d61746368",
);

#[test]
fn batch_encoding_is_stable() {
    let bytes = codec::encode(&sample_batch()).unwrap();
    assert_eq!(hex::encode(&bytes), GOLDEN_BATCH, "wire shape changed: bump SCHEMA_VERSION and the golden vector");
    let back: EventBatch = codec::decode(&hex::decode(GOLDEN_BATCH).unwrap()).unwrap();
    assert_eq!(back, sample_batch());
}

#[test]
fn ack_encoding_is_stable() {
    let ack = BatchAck {
        schema: SCHEMA_VERSION,
        results: vec![
            EventAck { id: sample_event().id, status: AckStatus::Stored },
            EventAck { id: sample_event().id, status: AckStatus::Duplicate },
            EventAck { id: sample_event().id, status: AckStatus::Rejected { reason: "site mismatch".into() } },
        ],
    };
    let bytes = codec::encode(&ack).unwrap();
    assert_eq!(hex::encode(&bytes), GOLDEN_ACK);
    assert_eq!(codec::decode::<BatchAck>(&bytes).unwrap(), ack);
}

#[test]
fn uuids_travel_as_16_bytes() {
    let bytes = codec::encode(&sample_event()).unwrap();
    let id = sample_event().id;
    // 0x50 = CBOR byte string of length 16, followed by the raw id.
    let mut needle = vec![0x50];
    needle.extend_from_slice(id.as_bytes());
    assert!(bytes.windows(17).any(|w| w == needle.as_slice()));
}

#[test]
fn every_kind_round_trips_and_has_its_dotted_name() {
    for kind in EventKind::ALL {
        let bytes = codec::encode(&kind).unwrap();
        assert_eq!(codec::decode::<EventKind>(&bytes).unwrap(), kind);
        assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{}\"", kind.as_str()));
    }
    assert_eq!(EventKind::parse("detection.dragon"), None);
}

#[test]
fn an_unknown_kind_decodes_as_unknown_instead_of_failing_the_batch() {
    let text = codec::encode(&"detection.dragon").unwrap();
    assert_eq!(codec::decode::<EventKind>(&text).unwrap(), EventKind::Unknown);
}

#[test]
fn kinds_accept_only_their_payload() {
    let ev = sample_event();
    assert!(EventKind::DetectionPerson.accepts(&ev.payload));
    assert!(!EventKind::AccessGranted.accepts(&ev.payload));
    assert!(!EventKind::Unknown.accepts(&ev.payload));
}

#[test]
fn garbage_is_an_error_never_a_panic() {
    let good = codec::encode(&sample_batch()).unwrap();
    // Every truncation of a valid batch.
    for n in 0..good.len() {
        assert!(codec::decode::<EventBatch>(&good[..n]).is_err(), "truncated to {n} decoded");
    }
    // Trailing bytes are rejected.
    let mut long = good.clone();
    long.push(0);
    assert!(codec::decode::<EventBatch>(&long).is_err());
    // Every single-byte corruption: may decode to something else, must never panic.
    for i in 0..good.len() {
        for v in [0x00, 0xff, 0x1b, 0x9f, 0xbf] {
            let mut bad = good.clone();
            bad[i] = v;
            let _ = codec::decode::<EventBatch>(&bad);
        }
    }
    // Pseudo-random garbage, deep nesting and absurd lengths.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for len in 0..2000 {
        let bytes: Vec<u8> = (0..len % 257)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let _ = codec::decode::<EventBatch>(&bytes);
    }
    assert!(codec::decode::<EventBatch>(&[0x81; 100_000]).is_err());
    assert!(codec::decode::<EventBatch>(&[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
    assert!(codec::decode::<EventBatch>(b"").is_err());
}

#[test]
fn json_form_of_the_payload_is_self_describing() {
    let v = serde_json::to_value(&sample_event().payload).unwrap();
    assert_eq!(v["type"], "detection");
    assert_eq!(v["objects"][0]["label"], "person");
}
