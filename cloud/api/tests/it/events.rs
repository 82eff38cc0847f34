//! `GET /api/events`.

use std::collections::HashSet;

use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use vigil_proto::EventKind;

use crate::common::{event, fresh_state, get, provision, send, upload};

/// `data` of a successful listing.
async fn list(state: &cloud_api::AppState, query: &str, key: &str) -> Value {
    let reply = send(state, get(&format!("/api/events{query}"), Some(key))).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", String::from_utf8_lossy(&reply.body));
    let body = reply.json();
    assert_eq!(body["success"], true);
    assert!(DateTime::parse_from_rfc3339(body["timestamp"].as_str().unwrap()).is_ok());
    body["data"].clone()
}

fn items(data: &Value) -> &Vec<Value> {
    data["items"].as_array().unwrap()
}

#[tokio::test]
async fn items_have_the_documented_shape() {
    let state = fresh_state().await;
    let p = provision(&state, "acme").await;
    let sent = event(&p, EventKind::DetectionPerson, Utc::now());
    upload(&state, &p, std::slice::from_ref(&sent)).await;

    let data = list(&state, "", &p.api_key).await;
    assert_eq!(data["next_cursor"], Value::Null);
    let item = &items(&data)[0];
    assert_eq!(item["id"], sent.id.to_string());
    assert_eq!(item["tenant_id"], p.tenant_id.to_string());
    assert_eq!(item["site_id"], p.site_id.to_string());
    assert_eq!(item["edge_id"], p.edge_id.to_string());
    assert_eq!(item["zone"], "lobby");
    assert_eq!(item["source"], serde_json::json!({ "kind": "camera", "id": "cam-1" }));
    assert_eq!(item["kind"], "detection.person");
    let occurred = DateTime::parse_from_rfc3339(item["occurred_at"].as_str().unwrap()).unwrap();
    assert_eq!(occurred.timestamp_micros(), sent.occurred_at.as_micros());
    assert!(item["occurred_at"].as_str().unwrap().ends_with('Z'));
    assert!(DateTime::parse_from_rfc3339(item["received_at"].as_str().unwrap()).is_ok());
    assert_eq!(item["payload"]["type"], "detection");
    assert_eq!(item["payload"]["objects"][0]["label"], "person");
    assert_eq!(item["payload"]["objects"][0]["score"], 0.875);
}

#[tokio::test]
async fn filters_and_pagination() {
    let state = fresh_state().await;
    let p = provision(&state, "acme").await;
    let w = state.store.provision_edge("acme", "warehouse", "edge-2", None).await.unwrap();
    let base = Utc::now() - Duration::minutes(30);
    let hq: Vec<_> = (0..25)
        .map(|i| {
            let kind = if i % 5 == 0 { EventKind::AccessDenied } else { EventKind::DetectionPerson };
            event(&p, kind, base + Duration::seconds(i))
        })
        .collect();
    upload(&state, &p, &hq).await;
    upload(&state, &w, &[event(&w, EventKind::AccessGranted, base)]).await;

    // Three pages of at most 10 over hq, newest first, no overlap.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("?site={}&limit=10&cursor={c}", p.site_id),
            None => format!("?site={}&limit=10", p.site_id),
        };
        let data = list(&state, &query, &p.api_key).await;
        pages += 1;
        seen.extend(items(&data).iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        match data["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 10);
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = hq.iter().rev().map(|e| e.id.to_string()).collect();
    assert_eq!(seen, expected);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 25);

    let denied = list(&state, "?kind=access.denied", &p.api_key).await;
    assert_eq!(items(&denied).len(), 5);
    assert!(items(&denied).iter().all(|i| i["kind"] == "access.denied"));

    let warehouse = list(&state, &format!("?site={}", w.site_id), &p.api_key).await;
    assert_eq!(items(&warehouse).len(), 1);

    // from inclusive, to exclusive: seconds 10..15 of hq.
    let from = (base + Duration::seconds(10)).to_rfc3339();
    let to = (base + Duration::seconds(15)).to_rfc3339();
    let window = format!("?from={}&to={}", urlencode(&from), urlencode(&to));
    assert_eq!(items(&list(&state, &window, &p.api_key).await).len(), 5);
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn invalid_parameters_name_the_field() {
    let state = fresh_state().await;
    let p = provision(&state, "acme").await;
    for (query, field) in [
        ("?kind=bogus", "kind"),
        ("?site=hq", "site"),
        ("?from=yesterday", "from"),
        ("?limit=0", "limit"),
        ("?limit=5000", "limit"),
        ("?cursor=zzz", "cursor"),
        ("?colour=red", "colour"),
        ("?from=2025-01-02T00:00:00Z&to=2025-01-01T00:00:00Z", "to"),
    ] {
        let reply = send(&state, get(&format!("/api/events{query}"), Some(&p.api_key))).await;
        let error = reply.error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert_eq!(error["details"]["field"], field, "{query}: {error}");
        assert!(error["message"].as_str().unwrap().contains(field), "{query}: {error}");
    }
}

#[tokio::test]
async fn tenants_are_isolated() {
    let state = fresh_state().await;
    let a = provision(&state, "acme").await;
    let b = provision(&state, "globex").await;
    upload(&state, &a, &[event(&a, EventKind::DetectionPerson, Utc::now())]).await;

    assert_eq!(items(&list(&state, "", &a.api_key).await).len(), 1);
    assert!(items(&list(&state, "", &b.api_key).await).is_empty());
    let probing = format!("?site={}", a.site_id);
    assert!(items(&list(&state, &probing, &b.api_key).await).is_empty());
}

#[tokio::test]
async fn listing_requires_an_api_key() {
    let state = fresh_state().await;
    let p = provision(&state, "acme").await;
    send(&state, get("/api/events", None)).await.error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    send(&state, get("/api/events", Some("nope"))).await.error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    // An edge token is not a read credential, and auth comes before parameter validation.
    send(&state, get("/api/events?kind=bogus", Some(&p.edge_token)))
        .await
        .error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
}
